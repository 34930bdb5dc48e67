-- A baseline: the security findings a project knows of and tracks, kept in
-- a file it commits (security-baseline.json at the project root, or
-- `security.baseline`), written by `novapipe run security
-- --update-baseline`. With a baseline, a finding it records is reported as
-- known and does not count toward the failure thresholds; every other one
-- is new and does. Entries are matched one to one by fingerprint
-- (novapipe.security.fingerprint): an entry stands for one finding, never
-- for every finding that looks like it, so a second copy of a known
-- finding is new. Entries that match nothing are stale: the finding was
-- fixed, and `--update-baseline` drops them.
--
-- A baseline is not a waiver: it carries no justification and no expiry,
-- it says only "this was there when we started tracking". Waivers
-- (security.waivers, security.ignore) keep their own rules; a waived
-- finding is not recorded in a baseline.
--
-- The file holds no time and is sorted, so it changes only when the
-- findings do, and its diff in a review is the findings that came and went.
local errors = require "novapipe._errors"
local fingerprint = require "novapipe.security.fingerprint"
local fs = require "novapipe.fs"
local json = require "novapipe.json"
local lfs = require "lfs"

local M = {}

M.SCHEMA = "novapipe.security-baseline/1"
---Where the baseline is when `security.baseline` does not say.
M.DEFAULT = "security-baseline.json"
---The kinds of finding a baseline records.
M.KINDS = { phi = true, dependency = true }

---@class novapipe.BaselineEntry
---@field fingerprint string "<sha256>:<occurrence>"
---@field kind "phi"|"dependency"
---@field file string
---@field line? integer where it was when the baseline was written (for people; not matched)
---@field type? string a PHI finding's kind ("ssn", "phone", ...)
---@field value? string a PHI finding's value, masked
---@field package? string
---@field version? string
---@field advisory? string

---@class novapipe.Baseline
---@field path string
---@field entries novapipe.BaselineEntry[]

local FIX = "write it again with novapipe run security --update-baseline"

-- One line for a baseline that cannot be used, exit 2.
local function bad(path, fmt, ...)
  errors.usage("%s: %s; %s (or remove it)", path, fmt:format(...), FIX)
end

---Checks decoded baseline data; returns the entries or raises a usage error
---naming the file and what is wrong.
---@param path string
---@param data any
---@return novapipe.BaselineEntry[]
function M.validate(path, data)
  if type(data) ~= "table" then bad(path, "not a novapipe security baseline (not a JSON object)") end
  if data.schema ~= M.SCHEMA then
    bad(path, "not a novapipe security baseline (schema %s, expected %s)",
      type(data.schema) == "string" and ("'" .. data.schema .. "'") or "missing", M.SCHEMA)
  end
  if type(data.entries) ~= "table" then bad(path, "'entries' is not a list") end
  local n = 0
  for _ in pairs(data.entries) do n = n + 1 end
  if n ~= #data.entries then bad(path, "'entries' is not a list") end
  for i, e in ipairs(data.entries) do
    if type(e) ~= "table" then bad(path, "entries[%d] is not an object", i) end
    if type(e.fingerprint) ~= "string" or not e.fingerprint:match("^%x+:%d+$") then
      bad(path, "entries[%d] has no fingerprint (\"<sha256>:<n>\")", i)
    end
    if not M.KINDS[e.kind] then bad(path, "entries[%d]: kind must be \"phi\" or \"dependency\"", i) end
    if type(e.file) ~= "string" then bad(path, "entries[%d] has no file", i) end
    -- what is shown of an entry, and kept from it by --update-baseline
    if e.line ~= nil and not math.tointeger(e.line) then bad(path, "entries[%d]: line must be a whole number", i) end
    for _, k in ipairs({ "type", "value", "package", "version", "advisory" }) do
      if e[k] ~= nil and type(e[k]) ~= "string" then bad(path, "entries[%d]: %s must be a string", i, k) end
    end
  end
  return data.entries
end

local read

---Reads a baseline. Returns nil when there is no file at `path`; raises a
---usage error (one line, exit 2) when it cannot be read or is not a
---baseline, unless `replacing` (--update-baseline, which writes a new
---one): then it returns nil and that line.
---@param path string
---@param replacing? boolean
---@return novapipe.Baseline|nil
---@return string? error
function M.read(path, replacing)
  if not replacing then return read(path) end
  local ok, bl = pcall(read, path)
  if ok then return bl end
  if not errors.is_usage(bl) then error(bl, 0) end
  return nil, bl.message
end

read = function(path)
  local mode = lfs.symlinkattributes(path, "mode")
  if mode == nil then return nil end
  if mode ~= "file" and mode ~= "link" then bad(path, "not a file") end
  local text, err = fs.read(path)
  if not text then errors.usage("the security baseline: %s; make it readable, %s", tostring(err), FIX) end
  local data, jerr = json.decode(text, path)
  if data == nil then errors.usage("%s (not valid JSON); %s (or remove it)", jerr, FIX) end
  return { path = path, entries = M.validate(path, data) }
end

---Matches findings of one kind against a baseline, one to one: each entry
---matches at most one finding with its fingerprint, in the findings'
---order. Sets `baseline` on each finding ("known" or "new"). Returns the
---new findings, the known ones, and the entries of that kind that matched
---nothing (stale). Without a baseline every finding is new.
---@param bl novapipe.Baseline|nil
---@param kind "phi"|"dependency"
---@param findings {fingerprint: string}[]
---@return table[] new, table[] known, novapipe.BaselineEntry[] stale
function M.match(bl, kind, findings)
  local pool = {}
  for _, e in ipairs(bl and bl.entries or {}) do
    if e.kind == kind then pool[e.fingerprint] = (pool[e.fingerprint] or 0) + 1 end
  end
  local new, known = {}, {}
  for _, f in ipairs(findings) do
    local left = pool[f.fingerprint]
    if left and left > 0 then
      pool[f.fingerprint] = left - 1
      f.baseline = "known"
      known[#known + 1] = f
    else
      f.baseline = "new"
      new[#new + 1] = f
    end
  end
  local stale = {}
  for _, e in ipairs(bl and bl.entries or {}) do
    if e.kind == kind and (pool[e.fingerprint] or 0) > 0 then
      pool[e.fingerprint] = pool[e.fingerprint] - 1
      stale[#stale + 1] = e
    end
  end
  return new, known, stale
end

---A baseline entry for a PHI finding (novapipe.security.phi_audit's).
---@param f {file: string, line: integer, kind: string, value: string, fingerprint: string}
---@return novapipe.BaselineEntry
function M.phi_entry(f)
  return { fingerprint = f.fingerprint, kind = "phi", file = f.file, line = f.line, type = f.kind, value = f.value }
end

---A baseline entry for a vulnerable dependency (novapipe.security.osv's).
---@param v {package: string, version: string, id: string, source: string, fingerprint: string}
---@return novapipe.BaselineEntry
function M.dependency_entry(v)
  local file, line = fingerprint.source_file(v.source)
  return { fingerprint = v.fingerprint, kind = "dependency", file = file, line = line, package = v.package,
           version = v.version, advisory = v.id }
end

---The text of a baseline file: entries sorted by kind, file, line and
---fingerprint, no time in it.
---@param entries novapipe.BaselineEntry[]
---@return string
function M.encode(entries)
  local sorted = {}
  for i, e in ipairs(entries) do sorted[i] = e end
  table.sort(sorted, function(a, b)
    if a.kind ~= b.kind then return a.kind > b.kind end -- phi first
    if a.file ~= b.file then return a.file < b.file end
    if (a.line or 0) ~= (b.line or 0) then return (a.line or 0) < (b.line or 0) end
    return a.fingerprint < b.fingerprint
  end)
  return json.pretty({
    schema = M.SCHEMA,
    about = "Security findings known when this file was written, matched one to one by fingerprint: "
      .. "novapipe reports them as known and fails only on new ones. Refresh it with "
      .. "novapipe run security --update-baseline.",
    entries = json.array(sorted),
  }) .. "\n"
end

---Counts of entries by kind, as "3 entries (2 PHI, 1 dependency)".
---@param entries novapipe.BaselineEntry[]
---@return string
function M.describe(entries)
  local phi, dep = 0, 0
  for _, e in ipairs(entries) do
    if e.kind == "phi" then phi = phi + 1 else dep = dep + 1 end
  end
  return ("%d entr%s (%d PHI, %d dependenc%s)"):format(#entries, #entries == 1 and "y" or "ies", phi,
    dep, dep == 1 and "y" or "ies")
end

return M
