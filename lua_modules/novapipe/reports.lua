-- What a pipeline run wrote: every stage that writes a report says so here.
-- The audit log records each one's sha256, and a pipeline's final summary
-- can list them.
local lfs = require "lfs"

local M = {}

local written, seen = {}, {}

---Records a report (a file, or a directory such as coverage HTML).
---@param path string
---@param what? string a short description ("JUnit XML", "coverage HTML")
function M.add(path, what)
  if seen[path] then return end
  seen[path] = true
  written[#written + 1] = { path = path, what = what or "report" }
end

---The reports written so far in this run, in order; only those that exist.
---@return {path: string, what: string}[]
function M.list()
  local out = {}
  for _, r in ipairs(written) do
    if lfs.attributes(r.path, "mode") then out[#out + 1] = r end
  end
  return out
end

---Forgets what was recorded (a new run in the same process).
function M.reset()
  written, seen = {}, {}
end

return M
