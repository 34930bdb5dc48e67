-- The files a test reads beside it through __file__, so that they can
-- travel with it. A test reads through __file__ when the name appears in a
-- body, at module level or in a decorator's arguments; what it reads is
-- what its string literals name beside it (a file, or a directory of
-- data, relative to the test's directory, with no `..`). A data file moves
-- along, to the same place relative to the test (so the path the test
-- builds stays valid), when every Python file of the tree that names it is
-- a test moving from the same directory to the same directory: the
-- helpers' rule. A test that reads through __file__ but names nothing that
-- is there stays: what it reads cannot be told.
local fs = require "novapipe.fs"
local lfs = require "lfs"
local path = require "novapipe.path"
local pyscan = require "novapipe.pyscan"

local dirname, basename = path.dirname, path.basename

local M = {}

-- Where a string literal whose quote is at `i` ends: the index of its
-- text's first and last characters, and of what follows it.
local function literal(text, i)
  local c = text:sub(i, i)
  local q = text:sub(i, i + 2) == c:rep(3) and c:rep(3) or c
  local j = i + #q
  while j <= #text and text:sub(j, j + #q - 1) ~= q do
    j = j + (text:sub(j, j) == "\\" and 2 or 1)
  end
  return i + #q, j - 1, j + #q
end

---Whether Python source text (a decorator's argument) reads the module's
---own __file__: the bare name, outside string literals (an f-string's
---text counts, as it may interpolate the name), not another object's
---attribute (os.__file__).
---@param text string
---@return boolean
function M.reads_own_file(text)
  local i = 1
  while i <= #text do
    local c = text:sub(i, i)
    if c == "'" or c == '"' then
      local _, _, after = literal(text, i)
      i = after
    elseif c:match("%d") then
      i = i + #text:match("^[%w_.]+", i) -- a number (1e5, 0x1f, 1_000): no name in it
    elseif c:match("[%a_]") then
      local word = text:match("^[%w_]+", i)
      local next_c = text:sub(i + #word, i + #word)
      if (next_c == "'" or next_c == '"') and word:lower():match("^[rbuf][rbf]?$") then
        -- a prefixed string
        local first, last, after = literal(text, i + #word)
        if word:lower():find("f", 1, true) and M.reads_own_file(text:sub(first, last)) then return true end
        i = after
      else
        if word == "__file__" and not text:sub(1, i - 1):match("%.%s*$") then return true end
        i = i + #word
      end
    else
      i = i + 1
    end
  end
  return false
end

---The line where a file first reads its own __file__, or nil.
---@param file string
---@param facts table its facts (the analyzer's scan)
---@return integer|nil
function M.file_line(file, facts)
  -- every function's body (the analyzer's scan keeps names only where a
  -- decorator can be a fixture's)
  local bodies = pyscan.file(file, { names = "all" }) or facts
  local first
  local function at(line)
    if not first or line < first then first = line end
  end
  for _, fn in ipairs(bodies.functions or {}) do
    for _, n in ipairs(fn.names or {}) do
      if n == "__file__" or n:sub(1, 9) == "__file__." then at(fn.line) end
    end
  end
  for _, asg in ipairs(facts.assignments or {}) do
    for _, n in ipairs(asg.names) do
      if n == "__file__" or n:sub(1, 9) == "__file__." then at(asg.line) end
    end
  end
  -- decorators' arguments (@pytest.mark.skipif(not os.path.exists(
  -- os.path.join(os.path.dirname(__file__), "data.csv")), ...)), of
  -- functions and of classes
  for _, defs in ipairs({ bodies.functions or {}, bodies.classes or {} }) do
    for _, def in ipairs(defs) do
      for _, d in ipairs(def.decorators or {}) do
        for _, arg in ipairs(d.args or {}) do
          if arg.kind ~= "string" and M.reads_own_file(arg.value) then at(d.line) end
        end
      end
    end
  end
  return first
end

-- A literal as a path below a directory: "rows.csv", "data/rows.csv",
-- "./data/"; nil for anything else (absolute, `..`, a pattern, empty).
local function below(value)
  local v = value:gsub("^%./", ""):gsub("/+$", "")
  if v == "" or v == "." or #v > 255 or v:find("^/") or v:find("[%c\\*?%[%]{}]") then return nil end
  for name in v:gmatch("[^/]+") do
    if name == ".." or name == "." then return nil end
  end
  return v
end

-- Whether a directory holds a Python file (then it is code, not data).
local function holds_python(dir)
  local list = fs.walk(dir, { include = { "*.py" } })
  return list == nil or #list > 0
end

---@class novapipe.DataItem
---@field path string the file or directory beside the test
---@field rel string its path from the test's directory
---@field dir boolean a directory of data

---What a test that reads its own __file__ names beside it: the data items,
---or nil and why it must stay.
---@param file string
---@param line integer where it reads __file__
---@return novapipe.DataItem[]|nil items
---@return string? why
function M.items(file, line)
  local text = fs.read(file)
  if not text then return nil, ("it reads files beside it through __file__ (line %d)"):format(line) end
  local strings = pyscan.strings(text)
  local here = dirname(file)
  local items, seen = {}, {}
  for _, s in ipairs(strings) do
    local rel = not s.fstring and below(s.value)
    local p = rel and (here .. "/" .. rel)
    local mode = p and p ~= file and lfs.symlinkattributes(p, "mode")
    if mode == "link" then
      return nil, ("it reads %s through __file__ (line %d), a symbolic link, which is not moved"):format(rel, line)
    elseif mode == "file" and not rel:match("%.pyc?$") and not seen[p] then
      seen[p] = true
      items[#items + 1] = { path = p, rel = rel, dir = false }
    elseif mode == "directory" and basename(rel) ~= "__pycache__" and not seen[p] then
      if holds_python(p) then
        return nil, ("it reads %s through __file__ (line %d), a directory with Python files in it"):format(rel, line)
      end
      seen[p] = true
      items[#items + 1] = { path = p, rel = rel, dir = true }
    end
  end
  -- a file inside a directory that travels goes with it
  local kept = {}
  for _, it in ipairs(items) do
    local inside = false
    for _, other in ipairs(items) do
      if other.dir and other ~= it and it.path:sub(1, #other.path + 1) == other.path .. "/" then inside = true end
    end
    if not inside then kept[#kept + 1] = it end
  end
  if #kept == 0 then return nil, ("it reads files beside it through __file__ (line %d)"):format(line) end
  table.sort(kept, function(x, y) return x.path < y.path end)
  return kept
end

-- Whether a literal names `name`: as one of its path components.
local function names(value, name)
  if value == name then return true end
  if not value:find(name, 1, true) then return false end
  for part in value:gmatch("[^/\\]+") do
    if part == name then return true end
  end
  return false
end

---The Python files under root that may read a data item: those with a
---string literal naming it (as a path component); beside it, any such
---file, elsewhere one whose literal does not name a file of its own
---directory. users(item) -> list of paths. The literals are read once,
---when first asked.
---@param files string[] every Python file under the root
---@return fun(item: novapipe.DataItem): string[]
function M.users(files)
  local literals
  return function(item)
    if not literals then
      literals = {}
      for _, f in ipairs(files) do
        local text = fs.read(f)
        local list = {}
        for _, s in ipairs(text and pyscan.strings(text) or {}) do list[#list + 1] = s.value end
        literals[f] = list
      end
    end
    local name, home = basename(item.path), dirname(item.path)
    local out = {}
    for _, f in ipairs(files) do
      for _, v in ipairs(literals[f]) do
        if names(v, name) then
          local rel = below(v)
          local own = dirname(f) ~= home and rel and lfs.symlinkattributes(dirname(f) .. "/" .. rel)
          if not own then
            out[#out + 1] = f
            break
          end
        end
      end
    end
    return out
  end
end

return M
