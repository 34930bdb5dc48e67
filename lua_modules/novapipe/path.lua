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

---Whether a word typed where a path or a name may go (run_tests'
---`--filter`) is meant as a path: it has a "/", ends in ".py", or names a
---test in a file ("test_x.py::test_a"). Anything else is a name.
---@param word string
---@return boolean
function M.looks_like_path(word)
  return word:find("/", 1, true) ~= nil or word:find("%.py$") ~= nil or word:find("::", 1, true) ~= nil
end

return M
