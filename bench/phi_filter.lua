-- A child's output through novapipe's PHI filter into a file:
--   novapipe exec bench/phi_filter.lua INPUT OUTPUT [lua]
-- `lua` masks with a plain Lua function a line (the masker called for
-- every line) instead of the filter the filter point runs in C.
local phi = require "novapipe.phi"
local proc = require "novapipe.proc"
local input, output, how = ...
local filter = phi.filter()
if how == "lua" then
  local mask = phi.masker()
  filter = function(line) return (mask(line)) end
end
local r = proc.spawn({ "cat", input }, { stdout = { file = output }, filter = filter }):wait()
os.exit(r.code)
