-- Path names as strings ("/"-separated), without touching the file system.
local M = {}

---The directory part: "a/b/c.py" -> "a/b", "c.py" -> ".".
---@param path string
---@return string
function M.dirname(path)
  return path:match("^(.*)/[^/]*$") or "."
end

---The last component: "a/b/c.py" -> "c.py".
---@param path string
---@return string
function M.basename(path)
  return (path:match("([^/]*)$"))
end

return M
