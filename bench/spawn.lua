-- 1,000 /bin/true through the Lua API, one after another.
local proc = require "novapipe.proc"
local n = tonumber(... or "1000")
for _ = 1, n do
  local r = proc.spawn({ "/bin/true" }):wait()
  if r.code ~= 0 then os.exit(1) end
end
