-- The advisory database the dependency scan reads: where it is, how old it
-- is, whether a run may go without one, and `novapipe advisories update`,
-- which fetches OSV's PyPI export into novapipe's cache.
--
-- The cache is a directory (security.advisories_cache, else
-- $XDG_CACHE_HOME/novapipe/osv/PyPI, else ~/.cache/novapipe/osv/PyPI)
-- holding all.zip and metadata.json, its record: where it came from, when,
-- its sha256, size and number of records. An update downloads into a new
-- directory beside them (through python/novapipe_advisories.py: the
-- standard library, proxies from the environment), verifies the archive
-- there, and only then replaces all.zip (atomically, through the sink) and
-- the record: a failed or cut-short update leaves the old database as it
-- was.
--
-- Which database a scan uses, first found first: the one given
-- (--advisories, security.advisories); novapipe's cache; osv-scanner's
-- offline database (M.osv_scanner_paths). It fails closed: none, one older
-- than security.advisories_max_age_days, or one that does not match its
-- record leaves the scan unchecked, and a run that requires advisories
-- (security.require_advisories; by default when CI is set) fails.
local fs = require "novapipe.fs"
local json = require "novapipe.json"
local lfs = require "lfs"

local M = {}

---OSV's public export of the PyPI advisories.
M.URL = "https://osv-vulnerabilities.storage.googleapis.com/PyPI/all.zip"
M.ZIP = "all.zip"
M.RECORD = "metadata.json"
M.SCHEMA = "novapipe.advisories/1"
M.DAY = 86400

---@class novapipe.AdvisoryDatabase
---@field path string the directory or zip read
---@field origin "given"|"cache"|"osv-scanner"
---@field fetched_at? integer when it was fetched (epoch seconds): the record's time, else the file's modification time
---@field source? string where novapipe's cache was fetched from
---@field records? integer how many records the record says it holds
---@field sha256? string
---@field problem? string why it cannot be used (a link, no record, not what its record says)

local function getter(getenv) return getenv or os.getenv end

local function set(v) return v ~= nil and v ~= "" end

---The user's cache directory as the XDG base directory specification
---defines it (and Go's os.UserCacheDir, which osv-scanner uses): an
---absolute $XDG_CACHE_HOME, else $HOME/.cache; nil without either.
---@param getenv? fun(name: string): string?
---@return string?
function M.user_cache(getenv)
  getenv = getter(getenv)
  local xdg = getenv("XDG_CACHE_HOME")
  if set(xdg) and xdg:find("^/") then return (xdg:gsub("/+$", "")) end
  local home = getenv("HOME")
  if set(home) then return (home:gsub("/+$", "")) .. "/.cache" end
  return nil
end

---novapipe's cache directory: security.advisories_cache, else
---<user cache>/novapipe/osv/PyPI; nil when neither can be told.
---@param cfg novapipe.Config
---@param getenv? fun(name: string): string?
---@return string?
function M.cache_dir(cfg, getenv)
  local own = cfg.security.advisories_cache
  if own then return (own:gsub("(.)/+$", "%1")) end
  local base = M.user_cache(getenv)
  return base and (base .. "/novapipe/osv/PyPI") or nil
end

---Whether the environment says this is CI: CI set, and not empty,
---"false" or "0".
---@param getenv? fun(name: string): string?
---@return boolean
function M.ci(getenv)
  local v = getter(getenv)("CI")
  return set(v) and v:lower() ~= "false" and v ~= "0"
end

---Whether a run must check its dependencies against advisories, and why:
---security.require_advisories when set, else whether this is CI.
---@param cfg novapipe.Config
---@param getenv? fun(name: string): string?
---@return boolean required
---@return string? why "security.require_advisories" or "CI is set"
function M.required(cfg, getenv)
  local r = cfg.security.require_advisories
  if r ~= nil then return r, r and "security.require_advisories" or nil end
  if M.ci(getenv) then return true, "CI is set" end
  return false
end

---Where osv-scanner keeps its offline PyPI database, in the order they
---are looked at: for each base directory, $OSV_SCANNER_LOCAL_DB_CACHE_DIRECTORY,
---$OSV_SCALIBR_LOCAL_DB_CACHE_DIRECTORY (each when set) and the user's
---cache directory, the layout of osv-scanner 2.5 and later
---(<base>/osv-scalibr/PyPI/all.zip) before that of earlier versions
---(<base>/osv-scanner/PyPI/all.zip). osv-scanner's last resort, the
---temporary directory, is not read: anyone can write there.
---@param getenv? fun(name: string): string?
---@return string[]
function M.osv_scanner_paths(getenv)
  getenv = getter(getenv)
  local bases, seen, out = {}, {}, {}
  for _, name in ipairs({ "OSV_SCANNER_LOCAL_DB_CACHE_DIRECTORY", "OSV_SCALIBR_LOCAL_DB_CACHE_DIRECTORY" }) do
    local v = getenv(name)
    if set(v) then bases[#bases + 1] = (v:gsub("(.)/+$", "%1")) end
  end
  bases[#bases + 1] = M.user_cache(getenv)
  for _, b in ipairs(bases) do
    for _, layout in ipairs({ "osv-scalibr", "osv-scanner" }) do
      local p = ("%s/%s/PyPI/all.zip"):format(b, layout)
      if not seen[p] then
        seen[p] = true
        out[#out + 1] = p
      end
    end
  end
  return out
end

---Reads a cache's record (metadata.json). Returns it, or nil and why.
---@param dir string
---@return table|nil record
---@return string? error
function M.read_record(dir)
  local path = dir .. "/" .. M.RECORD
  if lfs.symlinkattributes(path, "mode") == "link" then
    return nil, ("refusing the symbolic link %s (novapipe did not make it; remove it)"):format(path)
  end
  local rec, err = json.read(path)
  if not rec then return nil, err end
  local bad = type(rec) ~= "table" or rec.schema ~= M.SCHEMA or type(rec.sha256) ~= "string"
  for _, k in ipairs({ "fetched_at", "records", "bytes" }) do
    -- JSON numbers may decode as floats: whole ones are taken as integers
    local n = not bad and math.tointeger(rec[k])
    if n then rec[k] = n else bad = true end
  end
  if bad then return nil, path .. ": not a record novapipe wrote (schema " .. M.SCHEMA .. ")" end
  return rec
end

-- The newest modification time of a file, or of the *.json files under a
-- directory (the directory's own when it has none).
local function mtime_of(path)
  local attr = lfs.attributes(path)
  if not attr then return nil end
  local newest = attr.modification
  if attr.mode == "directory" then
    for _, rel in ipairs(fs.walk(path, { include = { "*.json" } }) or {}) do
      local m = lfs.attributes(path .. "/" .. rel, "modification")
      if m and m > newest then newest = m end
    end
  end
  return math.floor(newest)
end

-- novapipe's cache as a database, nil when it holds none.
local function from_cache(dir)
  local db = { path = dir .. "/" .. M.ZIP, origin = "cache" }
  local dmode = lfs.symlinkattributes(dir, "mode")
  if dmode == "link" then
    db.problem = ("refusing the symbolic link %s (novapipe did not make it; remove it)"):format(dir)
    return db
  end
  local zmode = lfs.symlinkattributes(db.path, "mode")
  if zmode == nil then return nil end
  if zmode ~= "file" then
    db.problem = ("%s is not a regular file (a %s): remove it and run 'novapipe advisories update'"):format(db.path, zmode)
    return db
  end
  local rec, err = M.read_record(dir)
  if not rec then
    db.problem = ("%s has no usable record (%s): run 'novapipe advisories update'"):format(db.path, err)
    return db
  end
  db.fetched_at, db.source, db.records, db.sha256, db.bytes = rec.fetched_at, rec.source, rec.records, rec.sha256, rec.bytes
  if lfs.attributes(db.path, "size") ~= rec.bytes then
    db.problem = ("%s is not the file its record describes (an update cut short?): run 'novapipe advisories update'")
      :format(db.path)
  end
  return db
end

---The advisory database a scan would use (see the module's comment), or
---nil when there is none. `given` is --advisories or security.advisories.
---@param cfg novapipe.Config
---@param opts? {given?: string, getenv?: fun(name: string): string?}
---@return novapipe.AdvisoryDatabase|nil
---@return string[] looked where novapipe looked, in order
function M.locate(cfg, opts)
  opts = opts or {}
  local looked = {}
  if opts.given then
    local db = { path = opts.given, origin = "given" }
    local mode = lfs.attributes(opts.given, "mode")
    local dir = mode == "file" and opts.given:match("^(.*)/" .. M.ZIP:gsub("%.", "%%.") .. "$")
    local rec = dir and lfs.attributes(dir .. "/" .. M.RECORD) and M.read_record(dir)
    if rec then
      db.fetched_at, db.source, db.records, db.sha256 = rec.fetched_at, rec.source, rec.records, rec.sha256
    else
      db.fetched_at = mtime_of(opts.given)
    end
    return db, { opts.given }
  end
  local dir = M.cache_dir(cfg, opts.getenv)
  if dir then
    looked[#looked + 1] = dir .. "/" .. M.ZIP
    local db = from_cache(dir)
    if db then return db, looked end
  end
  for _, p in ipairs(M.osv_scanner_paths(opts.getenv)) do
    looked[#looked + 1] = p
    if lfs.attributes(p, "mode") == "file" then
      return { path = p, origin = "osv-scanner", fetched_at = mtime_of(p) }, looked
    end
  end
  return nil, looked
end

---How long ago, in words: "5 minutes", "3 hours", "9 days".
---@param seconds number
---@return string
function M.age_words(seconds)
  seconds = math.max(0, seconds)
  local function n(v, unit) v = math.floor(v); return ("%d %s%s"):format(v, unit, v == 1 and "" or "s") end
  if seconds < 3600 then return n(seconds / 60, "minute") end
  if seconds < 2 * M.DAY then return n(seconds / 3600, "hour") end
  return n(seconds / M.DAY, "day")
end

---Why a database cannot be used now (its problem, or older than
---max_days), or nil when it can.
---@param db novapipe.AdvisoryDatabase
---@param max_days number
---@param now? integer epoch seconds (default: now)
---@return string?
function M.unusable(db, max_days, now)
  if db.problem then return db.problem end
  if not lfs.attributes(db.path) then return db.path .. ": no such directory or zip of advisories" end
  now = now or os.time()
  if not db.fetched_at then return ("%s: its age cannot be told"):format(db.path) end
  local age = now - db.fetched_at
  if age > max_days * M.DAY then
    local fix = db.origin == "cache" and "run 'novapipe advisories update'"
      or db.origin == "osv-scanner" and "run 'novapipe advisories update' (or update osv-scanner's)"
      or "update it, or run 'novapipe advisories update' and drop --advisories"
    return ("the advisory database %s is %s old, older than the %s-day limit (security.advisories_max_age_days): %s")
      :format(db.path, M.age_words(age), tostring(max_days), fix)
  end
  return nil
end

---One line naming a database: where, what it is, and how old.
---@param db novapipe.AdvisoryDatabase
---@param now? integer
---@return string
function M.describe(db, now)
  now = now or os.time()
  local what = ({ given = "given", cache = "novapipe's cache", ["osv-scanner"] = "osv-scanner's offline database" })[db.origin]
  local parts = { ("%s (%s"):format(db.path, what) }
  if db.source then parts[#parts + 1] = ", from " .. db.source end
  if db.fetched_at then
    parts[#parts + 1] = (", %s %s ago"):format(db.origin == "cache" and "fetched" or "modified",
      M.age_words(now - db.fetched_at))
  end
  return table.concat(parts) .. ")"
end

-- Removes what updates cut short left in the cache directory.
local function sweep(dir)
  for name in lfs.dir(dir) do
    if name:match("^%.update%-") and lfs.symlinkattributes(dir .. "/" .. name, "mode") == "directory" then
      fs.rmtree(dir .. "/" .. name)
    end
  end
end

---`novapipe advisories update`: fetches `source` (a URL or a path;
---default M.URL) into novapipe's cache, verified, then swapped in; writes
---the record. Returns the record, or nil and one line (the old database
---untouched).
---@param ctx novapipe.Context a context (config and sink)
---@param source? string
---@return table|nil record
---@return string? error
function M.update(ctx, source)
  local cfg, sink = ctx.config, ctx.sink
  source = source or M.URL
  local dir = M.cache_dir(cfg)
  if not dir then
    return nil, "no cache directory: neither XDG_CACHE_HOME nor HOME is set (set one, or security.advisories_cache)"
  end
  local ok, err = sink:dir(dir)
  if not ok then return nil, ("advisories cache %s: %s"):format(dir, err) end
  for _, name in ipairs({ M.ZIP, M.RECORD }) do
    local mode = lfs.symlinkattributes(dir .. "/" .. name, "mode")
    if mode == "link" then
      return nil, ("refusing the symbolic link %s/%s (novapipe did not make it; remove it)"):format(dir, name)
    end
  end
  local lock, lerr = fs.lock(dir .. "/.update.lock")
  if not lock then return nil, ("advisories cache %s: %s"):format(dir, lerr) end
  sweep(dir)
  local tmp, terr = fs.mkdtemp(".update-", dir)
  if not tmp then
    lock:unlock()
    return nil, ("advisories cache %s: %s"):format(dir, terr)
  end
  local done, rec, uerr = pcall(function()
    local exe, perr = require("novapipe.python").find({ "zipfile" }, cfg.python)
    if not exe then return nil, perr end
    local r, serr = require("novapipe.process").run({ exe, require("novapipe.host").root .. "/python/novapipe_advisories.py",
      "fetch", source, tmp .. "/" .. M.ZIP }, { stdin = "null" })
    if not r then return nil, serr end
    if r.code ~= 0 then
      local said = (r.stderr or ""):gsub("%s+$", "")
      return nil, said ~= "" and said:match("[^\n]*$") or ("the fetcher exited with %s"):format(r.code or r.signal)
    end
    local got, jerr = json.decode(r.stdout, "the fetcher's output")
    if type(got) ~= "table" then return nil, jerr end
    local fetched_at = os.time()
    local adopted, aerr = sink:adopt(tmp .. "/" .. M.ZIP, "advisory database", { kind = "bytes", to = dir .. "/" .. M.ZIP })
    if not adopted then return nil, aerr end
    local record = {
      schema = M.SCHEMA, ecosystem = "PyPI", source = sink.mask(source), fetched_at = fetched_at,
      fetched = os.date("!%Y-%m-%dT%H:%M:%SZ", fetched_at), sha256 = got.sha256, bytes = got.bytes,
      records = got.records, file = M.ZIP,
    }
    -- every value masked already (the source) or no text (time, digest, counts)
    local wrote, werr = sink:write(dir .. "/" .. M.RECORD, json.pretty(record) .. "\n", "advisory database record",
      { premasked = true })
    if not wrote then return nil, werr end
    return record
  end)
  fs.rmtree(tmp)
  lock:unlock()
  if not done then error(rec, 0) end
  if not rec then return nil, uerr end
  rec.dir = dir
  return rec
end

---The lines of `novapipe advisories status`: the database a scan would
---use, its record checked against the file (sha256), whether it is within
---the age limit and whether a run requires one. Returns the lines and
---whether a scan could use it.
---@param cfg novapipe.Config
---@param opts? {given?: string, getenv?: fun(name: string): string?, now?: integer}
---@return string[] lines
---@return boolean usable
function M.status(cfg, opts)
  opts = opts or {}
  local now = opts.now or os.time()
  local db, looked = M.locate(cfg, opts)
  local lines = {}
  local required, why = M.required(cfg, opts.getenv)
  local requirement = required and ("a run requires one (%s)"):format(why)
    or "a run does not require one (CI is not set, security.require_advisories is not)"
  if not db then
    lines[#lines + 1] = "no advisory database: run 'novapipe advisories update' (or pass --advisories DIR|ZIP)"
    lines[#lines + 1] = "looked for: " .. table.concat(looked, ", ")
    lines[#lines + 1] = requirement
    return lines, false
  end
  lines[#lines + 1] = "advisory database: " .. M.describe(db, now)
  if db.origin == "cache" and not db.problem then
    lines[#lines + 1] = ("  %d records, %d bytes, fetched %s"):format(db.records, db.bytes,
      os.date("!%Y-%m-%dT%H:%M:%SZ", db.fetched_at))
    local sum = require("novapipe.digest").sha256_file(db.path)
    if sum ~= db.sha256 then
      db.problem = ("%s does not match the sha256 its record holds: run 'novapipe advisories update'"):format(db.path)
    else
      lines[#lines + 1] = "  sha256 " .. sum .. " (matches its record)"
    end
  end
  local bad = M.unusable(db, cfg.security.advisories_max_age_days, now)
  if bad then
    lines[#lines + 1] = "not usable: " .. bad
  else
    lines[#lines + 1] = ("usable: within the %s-day limit (security.advisories_max_age_days)")
      :format(tostring(cfg.security.advisories_max_age_days))
  end
  lines[#lines + 1] = requirement
  return lines, bad == nil
end

return M
