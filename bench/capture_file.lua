-- 200 MB from a child, through novapipe's output path, into a file.
local proc = require "novapipe.proc"
local out = ...
local r = proc.spawn({ "head", "-c", "209715200", "/dev/zero" }, { stdout = { file = out } }):wait()
os.exit(r.code)
