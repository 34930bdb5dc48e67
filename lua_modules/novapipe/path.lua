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
  -- (anchored: "([^/]*)$" would try every position, a cost that grows
  -- with the square of the path's length)
  return path:match("^.*/(.*)$") or path
end

---A path with "." components and repeated slashes gone and each ".."
---taken with the name before it: "a/./b//../c" -> "a/c", "/x/.." -> "/",
---"../a" stays (nothing before it to take), "" and "a/.." are ".".
---@param path string
---@return string
function M.normalize(path)
  local absolute = path:sub(1, 1) == "/"
  local parts = {}
  for name in path:gmatch("[^/]+") do
    if name == ".." then
      if #parts > 0 and parts[#parts] ~= ".." then
        parts[#parts] = nil
      elseif not absolute then
        parts[#parts + 1] = ".."
      end
    elseif name ~= "." then
      parts[#parts + 1] = name
    end
  end
  local joined = table.concat(parts, "/")
  if absolute then return "/" .. joined end
  return joined == "" and "." or joined
end

---A path as seen from the directory `from`: relative("backend/a/b.html",
---"backend/c") -> "../a/b.html". Both are taken from the same starting
---point (both absolute, or both relative to the same directory); `from`
---must not climb above it with "..".
---@param path string
---@param from string a directory
---@return string
function M.relative(path, from)
  local function split(p)
    local out = {}
    p = M.normalize(p)
    if p == "." then return out end
    for name in p:gmatch("[^/]+") do out[#out + 1] = name end
    return out
  end
  local to, base = split(path), split(from)
  local common = 0
  while common < #to and common < #base and to[common + 1] == base[common + 1] do common = common + 1 end
  local out = {}
  for _ = common + 1, #base do out[#out + 1] = ".." end
  for i = common + 1, #to do out[#out + 1] = to[i] end
  return #out == 0 and "." or table.concat(out, "/")
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

---Whether `path` is below the directory `dir` ("a/b" is below "a", "a" is
---not, nor is "ab/c"), as both are spelled.
---@param dir string
---@param path string
---@return boolean
function M.below(dir, path)
  return path:sub(1, #dir + 1) == dir .. "/"
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
