-- 200 MB of 80-byte lines through a Lua line callback that discards them.
local proc = require "novapipe.proc"
local line = string.rep("0123456789", 8):sub(1, 79)
local r = proc.spawn({ "sh", "-c", "yes " .. line .. " | head -c 209715200" }, { stdout = function() end }):wait()
os.exit(r.code)
