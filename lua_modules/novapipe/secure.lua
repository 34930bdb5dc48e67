-- Owner-only reports: what novapipe writes, and what its child processes
-- write for it (JUnit, coverage data and HTML), is made readable by its
-- owner alone: files 0600, directories 0700.
local fs = require "novapipe.fs"
local lfs = require "lfs"

local M = {}

---Makes a file, or a directory and everything under it, owner-only.
---@param path string
---@return boolean|nil ok
---@return string? error
function M.tree(path)
  local mode = lfs.attributes(path, "mode")
  if mode == nil then return true end
  if mode ~= "directory" then return fs.chmod(path, "0600") end
  local ok, err = fs.chmod(path, "0700")
  if not ok then return nil, err end
  for _, rel in ipairs(fs.walk(path, { dirs = true }) or {}) do
    local p = path .. "/" .. rel
    local kind = lfs.symlinkattributes(p, "mode")
    if kind == "directory" then ok, err = fs.chmod(p, "0700")
    elseif kind == "file" then ok, err = fs.chmod(p, "0600") end
    if not ok then return nil, err end
  end
  return true
end

return M
