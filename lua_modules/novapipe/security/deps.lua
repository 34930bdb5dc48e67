-- A project's Python dependencies, read offline: requirements*.txt (with
-- -r includes), pyproject.toml (PEP 621 `dependencies` and
-- `optional-dependencies`, and Poetry's dependency tables) and poetry.lock.
-- Each dependency: name, version when pinned to one, pinned, the specifier
-- as written, and where it was read ("requirements.txt:3").
local fs = require "novapipe.fs"
local lfs = require "lfs"
local pep440 = require "novapipe.security.pep440"

local M = {}

---Parses one PEP 508 requirement string. Returns {name, spec, version,
---pinned} or nil when the line is no requirement (a URL, a path, an
---option novapipe does not follow).
---@param text string
function M.requirement(text)
  -- per-requirement options (pip-compile's --hash=...) and markers go
  local s = text:gsub("%s%-%-.*$", ""):gsub(";.*$", ""):match("^%s*(.-)%s*$")
  if s:find("^%a[%w+.-]*://") then return nil end -- a URL, not a name
  local name, rest = s:match("^([%w][%w._-]*)%s*(.*)$")
  if not name then return nil end
  rest = rest:gsub("^%[[^%]]*%]%s*", "") -- extras
  if rest:find("^@") then
    return { name = name, spec = rest, pinned = false, why = "a direct URL" }
  end
  rest = rest:gsub("^%((.*)%)$", "%1")
  local specs = {}
  for part in rest:gmatch("[^,]+") do
    local p = part:match("^%s*(.-)%s*$")
    if p ~= "" then specs[#specs + 1] = p end
  end
  local dep = { name = name, spec = table.concat(specs, ","), pinned = false }
  if #specs == 1 then
    local op, v = specs[1]:match("^(===?)%s*([^%s*]+)$")
    if op and pep440.parse(v) then
      dep.pinned, dep.version = true, v
    end
  end
  if not dep.pinned then
    dep.why = #specs == 0 and "no version given" or "not pinned to one version (" .. dep.spec .. ")"
  end
  return dep
end

local dirname = require("novapipe.path").dirname

-- Logical lines of a requirements file: comments gone, continuations joined.
local function logical_lines(text)
  local out, acc, start = {}, nil, nil
  local n = 0
  for line in (text:sub(-1) == "\n" and text or text .. "\n"):gmatch("([^\n]*)\n") do
    n = n + 1
    line = line:gsub("\r$", "")
    if not acc then start = n end
    if line:find("\\$") then
      acc = (acc or "") .. line:sub(1, -2)
    else
      local whole = (acc or "") .. line
      acc = nil
      whole = whole:gsub("^#.*$", ""):gsub("%s+#.*$", "")
      if whole:find("%S") then out[#out + 1] = { line = start, text = whole:match("^%s*(.-)%s*$") } end
    end
  end
  return out
end

---Reads a requirements file and what it includes with -r. Returns the
---dependencies, or nil and one line (a missing include, a cycle).
---@return table[]|nil deps
---@return string? error
function M.requirements(path, seen, out)
  seen, out = seen or {}, out or {}
  local real = fs.realpath(path) or path
  if seen[real] then return out end
  seen[real] = true
  local text, err = fs.read(path)
  if not text then return nil, err end
  for _, l in ipairs(logical_lines(text)) do
    local where = ("%s:%d"):format(path, l.line)
    local inc = l.text:match("^%-r%s*(%S+)$") or l.text:match("^%-%-requirement[=%s]%s*(%S+)$")
    if inc then
      local target = inc:find("^/") and inc or (dirname(path) .. "/" .. inc)
      if not lfs.attributes(target, "mode") then
        return nil, ("%s: -r %s: no such file"):format(where, inc)
      end
      local _, ierr = M.requirements(target, seen, out)
      if ierr then return nil, ierr end
    elseif l.text:find("^%-e%s") or l.text:find("^%-%-editable") then
      out[#out + 1] = { name = l.text:gsub("^%-%S*%s*", ""), spec = "", pinned = false,
                        why = "an editable install", source = where }
    elseif not l.text:find("^%-") then
      local dep = M.requirement(l.text)
      if dep then
        dep.source = where
        out[#out + 1] = dep
      else
        out[#out + 1] = { name = l.text, spec = "", pinned = false, why = "not a package name (a path or URL)", source = where }
      end
    end
  end
  return out
end

-- A Poetry constraint: a bare version or ==v is pinned; anything else is a range.
local function poetry_dep(name, value, where)
  local spec = type(value) == "string" and value or type(value) == "table" and value.version or nil
  if type(spec) ~= "string" then
    return { name = name, spec = "", pinned = false, why = "not from PyPI (git, path or url)", source = where }
  end
  local v = spec:match("^%s*==%s*(%S+)%s*$") or spec:match("^%s*([%d][^%s,<>=~^*|]*)%s*$")
  if v and pep440.parse(v) then
    return { name = name, spec = spec, version = v, pinned = true, source = where }
  end
  return { name = name, spec = spec, pinned = false, why = "not pinned to one version (" .. spec .. ")", source = where }
end

local function sorted_pairs(t)
  local keys = {}
  for k in pairs(t) do keys[#keys + 1] = k end
  table.sort(keys)
  local i = 0
  return function()
    i = i + 1
    return keys[i], keys[i] and t[keys[i]]
  end
end

---Dependencies from a decoded pyproject.toml.
---@param path string
---@param data table
---@return table[]
function M.pyproject(path, data, out)
  out = out or {}
  local project = type(data.project) == "table" and data.project or {}
  for _, r in ipairs(type(project.dependencies) == "table" and project.dependencies or {}) do
    local dep = M.requirement(tostring(r))
    if dep then
      dep.source = path .. " [project.dependencies]"
      out[#out + 1] = dep
    end
  end
  for group, list in sorted_pairs(type(project["optional-dependencies"]) == "table" and project["optional-dependencies"] or {}) do
    for _, r in ipairs(type(list) == "table" and list or {}) do
      local dep = M.requirement(tostring(r))
      if dep then
        dep.source = ("%s [project.optional-dependencies.%s]"):format(path, group)
        out[#out + 1] = dep
      end
    end
  end
  local poetry = type(data.tool) == "table" and type(data.tool.poetry) == "table" and data.tool.poetry or nil
  if poetry then
    local tables = { { "tool.poetry.dependencies", poetry.dependencies },
                     { "tool.poetry.dev-dependencies", poetry["dev-dependencies"] } }
    for group, g in sorted_pairs(type(poetry.group) == "table" and poetry.group or {}) do
      tables[#tables + 1] = { ("tool.poetry.group.%s.dependencies"):format(group), type(g) == "table" and g.dependencies }
    end
    for _, t in ipairs(tables) do
      for name, value in sorted_pairs(type(t[2]) == "table" and t[2] or {}) do
        if name:lower() ~= "python" then
          out[#out + 1] = poetry_dep(name, value, ("%s [%s]"):format(path, t[1]))
        end
      end
    end
  end
  return out
end

---Dependencies from a decoded poetry.lock: every package, pinned.
function M.poetry_lock(path, data, out)
  out = out or {}
  for _, p in ipairs(type(data.package) == "table" and data.package or {}) do
    if type(p) == "table" and type(p.name) == "string" and type(p.version) == "string" then
      out[#out + 1] = { name = p.name, version = p.version, spec = "==" .. p.version, pinned = true,
                        source = path }
    end
  end
  return out
end

---The dependency files of a project: requirements*.txt, pyproject.toml
---and poetry.lock at its root and in backend/.
---@return string[]
function M.discover()
  local found = {}
  for _, dir in ipairs({ ".", "backend" }) do
    if lfs.attributes(dir, "mode") == "directory" then
      local names = {}
      for f in lfs.dir(dir) do
        if f:match("^requirements.*%.txt$") or f == "pyproject.toml" or f == "poetry.lock" then
          names[#names + 1] = f
        end
      end
      table.sort(names)
      for _, f in ipairs(names) do found[#found + 1] = dir == "." and f or (dir .. "/" .. f) end
    end
  end
  return found
end

---Reads the given files. `read_toml(paths)` decodes TOML files (through
---Python's tomllib) into {path = {data=...}|{error=...}}. Returns the
---dependencies (one entry per name and version, first source kept) or nil
---and one line.
---@param files string[]
---@param read_toml fun(paths: string[]): table|nil, string?
---@return table[]|nil deps
---@return string? error
function M.read(files, read_toml)
  local out, toml_files, seen = {}, {}, {}
  for _, f in ipairs(files) do
    if not lfs.attributes(f, "mode") then return nil, f .. ": no such dependency file" end
    if f:match("%.toml$") or f:match("%.lock$") then
      toml_files[#toml_files + 1] = f
    else
      local _, err = M.requirements(f, seen, out)
      if err then return nil, err end
    end
  end
  if #toml_files > 0 then
    local decoded, err = read_toml(toml_files)
    if not decoded then return nil, err end
    for _, f in ipairs(toml_files) do
      local d = decoded[f]
      if not d or d.error then return nil, ("%s: not valid TOML: %s"):format(f, d and d.error or "not read") end
      if f:match("%.lock$") then M.poetry_lock(f, d.data, out) else M.pyproject(f, d.data, out) end
    end
  end
  -- One row per package and version; a range that a pin elsewhere (a
  -- lock file, another requirements file) settles is not listed.
  local pinned_names = {}
  for _, d in ipairs(out) do
    if d.pinned then pinned_names[pep440.normalize_name(d.name)] = true end
  end
  local unique, key_seen = {}, {}
  for _, d in ipairs(out) do
    if not d.pinned and pinned_names[pep440.normalize_name(d.name)] then goto continue end
    local key = pep440.normalize_name(d.name) .. "@" .. (d.version or ("?" .. d.spec))
    if not key_seen[key] then
      key_seen[key] = true
      unique[#unique + 1] = d
    end
    ::continue::
  end
  return unique
end

return M
