-- What the project's pytest configuration says, read the way pytest finds
-- it: pytest.ini (always, even without a [pytest] section), else
-- pyproject.toml with [tool.pytest.ini_options], else tox.ini with [pytest],
-- else setup.cfg with [tool:pytest]; in the project root (the current
-- directory).
local fs = require "novapipe.fs"

local M = {}

-- pytest's default norecursedirs.
M.DEFAULT_NORECURSE = { "*.egg", ".*", "_darcs", "build", "CVS", "dist", "node_modules", "venv", "{arch}" }

local read = fs.read

-- The body of an ini section (lines up to the next section), or nil.
local function ini_section(text, name)
  local body, inside = {}, false
  for line in (text .. "\n"):gmatch("([^\n]*)\n") do
    local sec = line:match("^%s*%[([^%]]+)%]%s*$")
    if sec then
      if inside then break end
      inside = (sec == name)
    elseif inside then
      body[#body + 1] = line
    end
  end
  return inside and table.concat(body, "\n") or nil
end

-- An ini value, continuation lines included (indented lines that follow).
local function ini_value(body, key)
  local value, taking = nil, false
  for line in (body .. "\n"):gmatch("([^\n]*)\n") do
    local k, v = line:match("^([%w_%-]+)%s*[=:]%s*(.-)%s*$")
    if k then
      taking = (k == key)
      if taking then value = v end
    elseif taking and line:match("^%s+%S") then
      value = value .. " " .. line:match("^%s*(.-)%s*$")
    elseif not line:match("^%s*[#;]") then
      taking = false
    end
  end
  return value
end

local function words(s)
  local list = {}
  for w in s:gmatch("%S+") do list[#list + 1] = w end
  return list
end

-- A TOML string array value in [tool.pytest.ini_options], or a string.
local function toml_list(body, key)
  local raw = body:match("\n%s*" .. key .. "%s*=%s*(%b[])")
  if raw then
    local list = {}
    for item in raw:gmatch("[\"']([^\"']*)[\"']") do list[#list + 1] = item end
    return list
  end
  local str = body:match("\n%s*" .. key .. "%s*=%s*[\"']([^\"']*)[\"']")
  return str and words(str) or nil
end

---The configuration file pytest would use and a setting's value there
---as a list of words (nil when the file does not set it).
---@param key string an ini setting: norecursedirs, python_files, ...
---@param root? string default "."
---@return string|nil file
---@return string[]|nil value
function M.setting(key, root)
  root = root or "."
  local ini = read(root .. "/pytest.ini")
  if ini then
    local body = ini_section(ini, "pytest") or ""
    local v = ini_value(body, key)
    return "pytest.ini", v and words(v) or nil
  end
  local toml = read(root .. "/pyproject.toml")
  local body = toml and ini_section(toml, "tool.pytest.ini_options")
  if body then return "pyproject.toml", toml_list("\n" .. body, key) end
  for _, c in ipairs({ { "tox.ini", "pytest" }, { "setup.cfg", "tool:pytest" } }) do
    local text = read(root .. "/" .. c[1])
    local sec = text and ini_section(text, c[2])
    if sec then
      local v = ini_value(sec, key)
      return c[1], v and words(v) or nil
    end
  end
  return nil, nil
end

---The configuration file pytest would use and its norecursedirs.
function M.norecursedirs(root)
  return M.setting("norecursedirs", root)
end

---The patterns of files pytest collects (python_files), default
---test_*.py and *_test.py.
---@return string[]
function M.python_files(root)
  local _, v = M.setting("python_files", root)
  return v or { "test_*.py", "*_test.py" }
end

local SECTION = { ["pytest.ini"] = "[pytest]", ["tox.ini"] = "[pytest]", ["setup.cfg"] = "[tool:pytest]",
                  ["pyproject.toml"] = "[tool.pytest.ini_options]" }

-- The norecursedirs setting with `patterns`, as the file writes it.
local function setting(file, patterns)
  if file == "pyproject.toml" then
    local quoted = {}
    for i, p in ipairs(patterns) do quoted[i] = ('"%s"'):format(p) end
    return "norecursedirs = [" .. table.concat(quoted, ", ") .. "]"
  end
  return "norecursedirs = " .. table.concat(patterns, " ")
end

---When a plain `pytest <tests>` would skip a tier because pytest's
---norecursedirs matches its directory, one line that says so and names the
---setting that fixes it; nil otherwise.
---@param cfg novapipe.Config
---@param only? table<string, boolean> the tiers to look at (default all)
---@param tests? string the tests directory to name (default cfg.tests)
---@return string|nil
function M.skipped_tiers(cfg, only, tests)
  local file, patterns = M.norecursedirs()
  local source = patterns and (file .. "'s norecursedirs") or "pytest's default norecursedirs"
  patterns = patterns or M.DEFAULT_NORECURSE
  local hits, matched = {}, {}
  for _, tier in ipairs(cfg.tiers) do
    -- pytest recurses through each directory of the tier's path (none when
    -- the tier is the tests directory itself, dir = ".")
    local hit
    for part in require("novapipe.path").normalize(tier.dir):gmatch("[^/]+") do
      for _, p in ipairs(not (only and not only[tier.name]) and patterns or {}) do
        if not hit and part ~= "." and fs.match(p, part) then hit = p end
      end
    end
    if hit then
      hits[#hits + 1] = ("%s (matches '%s')"):format(tier.name, hit)
      matched[hit] = true
    end
  end
  if #hits == 0 then return nil end
  local kept = {}
  for _, p in ipairs(patterns) do
    if not matched[p] then kept[#kept + 1] = p end
  end
  file = file or "pytest.ini"
  return ("a plain `pytest %s` skips the tier %s through %s; novapipe names each tier to pytest, so it runs here."
    .. " To make plain pytest run it too, set in %s %s: %s"):format(tests or cfg.tests, table.concat(hits, ", "), source,
    file, SECTION[file], setting(file, kept))
end

return M
