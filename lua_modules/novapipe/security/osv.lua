-- Advisories in the OSV format (https://ossf.github.io/osv-schema/), read
-- offline from a directory or a zip, and matched against pinned packages:
-- `affected[].package` (ecosystem PyPI, names compared in their PEP 503
-- form), explicit `versions`, and ECOSYSTEM ranges whose `introduced`,
-- `fixed`, `last_affected` and `limit` events are evaluated as the schema
-- defines, with PEP 440 ordering.
local fs = require "novapipe.fs"
local json = require "novapipe.json"
local lfs = require "lfs"
local pep440 = require "novapipe.security.pep440"

local M = {}

-- Checks the parts of an advisory novapipe relies on; nil or a reason.
local function malformed(adv)
  if type(adv) ~= "table" then return "not a JSON object" end
  if type(adv.id) ~= "string" then return "no 'id'" end
  if adv.affected ~= nil and type(adv.affected) ~= "table" then return "'affected' is not a list" end
  for i, a in ipairs(adv.affected or {}) do
    if type(a) ~= "table" then return ("affected[%d] is not an object"):format(i) end
    if a.package ~= nil and (type(a.package) ~= "table" or type(a.package.name) ~= "string") then
      return ("affected[%d].package has no name"):format(i)
    end
    for j, r in ipairs(type(a.ranges) == "table" and a.ranges or {}) do
      if type(r) ~= "table" or type(r.events) ~= "table" then
        return ("affected[%d].ranges[%d] has no events"):format(i, j)
      end
    end
  end
end

-- An advisory from its JSON text; raises nothing, returns nil, error.
local function decode(text, name)
  local adv, err = json.decode(text, name)
  if adv == nil then return nil, ("%s (not valid JSON)"):format(err) end
  local why = malformed(adv)
  if why then return nil, ("%s: not an OSV advisory: %s"):format(name, why) end
  return adv
end

---Loads advisories from a directory (every *.json under it) or a zip
---archive (read through Python's zipfile: `read_zip(path, names)` gives its
---entries and how many records it holds; with `names`, the PEP 503 names
---of the packages to check, only the records that name one of them, so a
---whole OSV export need not be decoded in Lua). Returns the list and the
---number of records in the source, or nil and one line naming the bad file.
---@param path string
---@param read_zip fun(path: string, names?: string[]): ({name: string, text: string}[]|nil), (integer|string)?
---@param names? string[]
---@return table[]|nil advisories
---@return string|integer error, or the number of records read
function M.load(path, read_zip, names)
  local mode = lfs.attributes(path, "mode")
  local entries, records = {}, nil
  if mode == "directory" then
    local files, err = fs.walk(path, { include = { "*.json" } })
    if not files then return nil, err end
    for _, rel in ipairs(files) do
      local full = path:gsub("/+$", "") .. "/" .. rel
      local text, rerr = fs.read(full)
      if not text then return nil, rerr end
      entries[#entries + 1] = { name = full, text = text }
    end
  elseif mode == "file" and path:match("%.zip$") then
    local list, count = read_zip(path, names)
    if not list then return nil, count end
    records = count
    for _, e in ipairs(list) do entries[#entries + 1] = { name = path .. ":" .. e.name, text = e.text } end
  elseif mode == "file" then
    return nil, ("%s: advisories must be a directory of OSV JSON files or a .zip of them"):format(path)
  else
    return nil, ("%s: no such directory or zip of advisories"):format(path)
  end
  local out = {}
  for _, e in ipairs(entries) do
    local adv, err = decode(e.text, e.name)
    if not adv then return nil, err end
    out[#out + 1] = adv
  end
  return out, records or #out
end

local function version_of(s)
  if s == "0" then return "zero" end
  return pep440.parse(s)
end

-- Whether v lies in one range, as the OSV schema's evaluation defines it.
local function in_range(v, range)
  if range.type ~= "ECOSYSTEM" and range.type ~= "SEMVER" then return false end
  local events = {}
  for _, e in ipairs(range.events) do
    local kind, value
    for _, k in ipairs({ "introduced", "fixed", "last_affected", "limit" }) do
      if type(e[k]) == "string" then kind, value = k, e[k] end
    end
    local parsed = kind and version_of(value)
    if parsed then events[#events + 1] = { kind = kind, v = parsed } end
  end
  table.sort(events, function(a, b)
    if a.v == "zero" then return b.v ~= "zero" end
    if b.v == "zero" then return false end
    return pep440.compare(a.v, b.v) < 0
  end)
  local affected = false
  for _, e in ipairs(events) do
    if e.kind == "limit" then
      if pep440.compare(v, e.v) >= 0 then return false end
    elseif e.kind == "introduced" then
      if e.v == "zero" or pep440.compare(v, e.v) >= 0 then affected = true end
    elseif e.kind == "fixed" then
      if e.v ~= "zero" and pep440.compare(v, e.v) >= 0 then affected = false end
    elseif e.kind == "last_affected" then
      if e.v ~= "zero" and pep440.compare(v, e.v) > 0 then affected = false end
    end
  end
  return affected
end

-- The fixed versions an affected entry names, for the report.
local function fixes(entry)
  local out = {}
  for _, r in ipairs(type(entry.ranges) == "table" and entry.ranges or {}) do
    for _, e in ipairs(r.events) do
      if type(e.fixed) == "string" then out[#out + 1] = e.fixed end
    end
  end
  return out
end

---Whether an advisory affects a package at a version; the affected entry.
---@param adv table
---@param name string PEP 503 normal name
---@param version novapipe.Version
---@return table|nil affected
function M.affects(adv, name, version)
  if type(adv.withdrawn) == "string" then return nil end
  for _, a in ipairs(adv.affected or {}) do
    local pkg = a.package
    if type(pkg) == "table" and tostring(pkg.ecosystem or ""):lower() == "pypi" and pep440.normalize_name(pkg.name) == name then
      for _, s in ipairs(type(a.versions) == "table" and a.versions or {}) do
        local listed = pep440.parse(tostring(s))
        if listed and pep440.compare(listed, version) == 0 then return a end
      end
      for _, r in ipairs(type(a.ranges) == "table" and a.ranges or {}) do
        if in_range(version, r) then return a end
      end
    end
  end
  return nil
end

---Matches pinned packages against advisories. Returns the vulnerabilities,
---each {package, version, id, aliases, summary, fixed, source, severity}
---(severity: novapipe.security.severity.of's, or nil).
---@param deps {name: string, version?: string, pinned: boolean, source: string}[]
---@param advisories table[]
---@return table[]
function M.match(deps, advisories)
  local by_name = {}
  for _, adv in ipairs(advisories) do
    for _, a in ipairs(adv.affected or {}) do
      if type(a.package) == "table" then
        local n = pep440.normalize_name(a.package.name)
        by_name[n] = by_name[n] or {}
        table.insert(by_name[n], adv)
      end
    end
  end
  local out = {}
  for _, d in ipairs(deps) do
    local v = d.pinned and pep440.parse(d.version)
    local n = pep440.normalize_name(d.name)
    local seen = {}
    for _, adv in ipairs(v and by_name[n] or {}) do
      local a = not seen[adv.id] and M.affects(adv, n, v)
      seen[adv.id] = true
      if a then
        out[#out + 1] = {
          package = d.name, version = d.version, id = adv.id,
          aliases = type(adv.aliases) == "table" and adv.aliases or {},
          summary = type(adv.summary) == "string" and adv.summary
            or type(adv.details) == "string" and adv.details:match("^[^\n]*") or "",
          fixed = fixes(a), source = d.source,
          severity = require("novapipe.security.severity").of(adv, a),
        }
      end
    end
  end
  table.sort(out, function(a, b)
    if a.package ~= b.package then return a.package < b.package end
    return a.id < b.id
  end)
  return out
end

return M
