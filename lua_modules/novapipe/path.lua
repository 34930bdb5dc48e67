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

---An absolute path with "." and ".." components resolved as text (links
---are not followed): "/a/b/../c/./d" -> "/a/c/d".
---@param path string an absolute path
---@return string
function M.normalize(path)
  local parts = {}
  for c in path:gmatch("[^/]+") do
    if c == ".." then parts[#parts] = nil
    elseif c ~= "." then parts[#parts + 1] = c end
  end
  return "/" .. table.concat(parts, "/")
end

---A path typed in directory `from`, as seen from directory `root`: an
---absolute path stays; a relative one becomes relative to root when it is
---inside it ("." for root itself), else absolute. A pytest node id keeps
---its "::test" part. Both directories are absolute.
---@param path string
---@param from string
---@param root string
---@return string
function M.rebase(path, from, root)
  local file, node = path:match("^(.-)(::.*)$")
  file, node = file or path, node or ""
  if file:sub(1, 1) == "/" or from == root then return path end
  local abs = M.normalize(from .. "/" .. file)
  local prefix = root == "/" and "/" or (root .. "/")
  if abs == root then return "." .. node end
  if abs:sub(1, #prefix) == prefix then return abs:sub(#prefix + 1) .. node end
  return abs .. node
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
