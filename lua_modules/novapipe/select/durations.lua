-- Recorded durations: each test's time (setup + call + teardown) as a
-- moving average over the runs, by tier, file and test, in
-- .novapipe/durations.json (written by the durations reporter, through the
-- sink), and a copy a team commits for CI, .novapipe-durations.json at the
-- project root (`novapipe durations --export`). --shard balances its parts
-- by them (novapipe.select.shard).
--
-- Keys are the masked file path and the masked node id, the same text the
-- run record keeps: a node id can hold PHI (a parametrized SSN), and the
-- committed copy must hold none. Masking is deterministic (a fresh masker
-- for a text with a birth word), so every machine finds the same key for
-- the same test; two tests whose ids differ only in a masked value share
-- one entry, which for an estimate of time is harmless.
local json = require "novapipe.json"
local lfs = require "lfs"
local phi = require "novapipe.phi"

local M = {}

M.SCHEMA = "novapipe.durations/1"
---The run's own, updated by every run that keeps a record.
M.LOCAL = ".novapipe/durations.json"
---The copy a team commits, read when the local one is missing (and first
---by --shard, so that every shard of a run splits the same way).
M.COMMITTED = ".novapipe-durations.json"
---The weight of a new measurement in the moving average.
M.ALPHA = 0.3

---@class novapipe.Durations
---@field schema string
---@field tiers table<string, table<string, table<string, number>>> tier -> masked file -> masked node id -> seconds

---A keyer: the masked form of a file path or node id, the same on every
---machine for the same text and PHI settings (phi = nil: masking off).
---@param cfg? table the configuration's phi section
---@return fun(text: string): string
function M.keyer(cfg)
  if cfg and cfg.enabled == false then return function(s) return s end end
  local shared, quiet = phi.masker(cfg)
  local seen = {}
  return function(text)
    local k = seen[text]
    if k then return k end
    -- most ids hold nothing to hide: a few scans in C say so
    if quiet(text) then
      seen[text] = text
      return text
    end
    local low = text:lower()
    -- only a birth word leaves the masker expecting a date on the next
    -- call: such a text gets a masker of its own
    if low:find("dob", 1, true) or low:find("born", 1, true) or low:find("birth", 1, true) then
      k = (phi.masker(cfg)(text))
    else
      k = (shared(text))
    end
    seen[text] = k
    return k
  end
end

---An empty set of durations.
---@return novapipe.Durations
function M.empty()
  return { schema = M.SCHEMA, tiers = {} }
end

---Reads a durations file; what is not of the right shape is left out.
---Returns nil and why when the file is missing, not JSON or of another schema.
---@param path string
---@return novapipe.Durations|nil
---@return string? why
function M.read(path)
  if not lfs.attributes(path) then return nil, path .. " does not exist" end
  local data, err = json.read(path)
  if not data then return nil, err end
  if type(data) ~= "table" or data.schema ~= M.SCHEMA or type(data.tiers) ~= "table" then
    return nil, ("%s: not recorded durations (schema %s expected)"):format(path, M.SCHEMA)
  end
  local out = M.empty()
  for tier, files in pairs(data.tiers) do
    if type(tier) == "string" and type(files) == "table" then
      local t = {}
      for file, tests in pairs(files) do
        if type(file) == "string" and type(tests) == "table" then
          local f = {}
          for id, s in pairs(tests) do
            if type(id) == "string" and type(s) == "number" and s >= 0 and s < math.huge then f[id] = s end
          end
          if next(f) then t[file] = f end
        end
      end
      if next(t) then out.tiers[tier] = t end
    end
  end
  return out
end

---The durations a run reads: the local ones, else the committed copy; with
---committed_first (--shard), the committed copy when there is one.
---@param committed_first? boolean
---@return novapipe.Durations|nil data
---@return string? path where they came from
function M.load(committed_first)
  local order = committed_first and { M.COMMITTED, M.LOCAL } or { M.LOCAL, M.COMMITTED }
  for _, path in ipairs(order) do
    local data = M.read(path)
    if data then return data, path end
  end
  return nil
end

---Adds a run's tests to the durations (in place): each test's time is
---averaged into its entry (M.ALPHA), a new test starts at its time.
---Collection errors and tests without durations are left out.
---@param data novapipe.Durations
---@param tests novapipe.TestResult[]
---@param key fun(text: string): string a keyer (M.keyer)
---@return integer added how many tests were recorded
function M.add(data, tests, key)
  local n = 0
  for _, t in ipairs(tests) do
    local d = t.durations
    if not t.collect and type(d) == "table" and t.tier and t.id then
      local secs = (d.setup or 0) + (d.call or 0) + (d.teardown or 0)
      local tier = data.tiers[t.tier] or {}
      data.tiers[t.tier] = tier
      local file = key(t.file or t.id:match("^([^:]+)") or t.id)
      local f = tier[file] or {}
      tier[file] = f
      local id = key(t.id)
      local old = f[id]
      f[id] = old and (old + M.ALPHA * (secs - old)) or secs
      n = n + 1
    end
  end
  return n
end

---The durations as text: keys sorted, indented, a test a line (a diff a
---team reads), times to the microsecond.
---@param data novapipe.Durations
---@return string
function M.encode(data)
  -- {schema, tiers}: in novapipe.json's layout, which sorts the keys
  return require("novapipe.json").pretty({ schema = M.SCHEMA, tiers = data.tiers }, 6) .. "\n"
end

local function median(list)
  if #list == 0 then return nil end
  table.sort(list)
  local m = (#list + 1) // 2
  if #list % 2 == 1 then return list[m] end
  return (list[m] + list[m + 1]) / 2
end

---A tier's recorded files: {file = {seconds = total, tests = n}}, by masked path.
---@param data novapipe.Durations
---@param tier string
---@return table<string, {seconds: number, tests: integer}>
function M.files(data, tier)
  local out = {}
  for file, tests in pairs(data.tiers[tier] or {}) do
    local s, n = 0, 0
    for _, v in pairs(tests) do s, n = s + v, n + 1 end
    out[file] = { seconds = s, tests = n }
  end
  return out
end

---A tier's recorded seconds (the sum of its tests'), or nil when it has none.
---@param data? novapipe.Durations
---@param tier string
---@return number|nil
function M.tier_seconds(data, tier)
  if not data or not data.tiers[tier] then return nil end
  local total = 0
  for _, r in pairs(M.files(data, tier)) do total = total + r.seconds end
  return total
end

---The estimated time of each of a tier's files (real paths, relative to
---the project root): its tests' recorded times; a file with none takes the
---median of the tier's recorded files. Returns nil when the tier has no
---recorded file at all.
---@param data? novapipe.Durations
---@param tier string
---@param files string[]
---@param key fun(text: string): string
---@return table<string, number>|nil
function M.file_estimates(data, tier, files, key)
  if not data or not data.tiers[tier] then return nil end
  local recorded = M.files(data, tier)
  local all = {}
  for _, r in pairs(recorded) do all[#all + 1] = r.seconds end
  local mid = median(all) or 0
  local out = {}
  for _, f in ipairs(files) do
    local r = recorded[key(f)]
    out[f] = r and r.seconds or mid
  end
  return out
end

---The estimated time of each of a tier's tests (real node ids): its
---recorded time; a new test takes the median of its file's recorded tests,
---else of the tier's. Returns nil when the tier has no recorded test.
---@param data? novapipe.Durations
---@param tier string
---@param ids string[] node ids, "file::name"
---@param key fun(text: string): string
---@return table<string, number>|nil
function M.test_estimates(data, tier, ids, key)
  local t = data and data.tiers[tier]
  if not t then return nil end
  local every = {}
  for _, tests in pairs(t) do
    for _, s in pairs(tests) do every[#every + 1] = s end
  end
  local tier_mid = median(every) or 0
  local file_mid = {}
  local out = {}
  for _, id in ipairs(ids) do
    local fkey = key(id:match("^(.-)::") or id)
    local tests = t[fkey]
    local s = tests and tests[key(id)]
    if not s then
      if tests and file_mid[fkey] == nil then
        local l = {}
        for _, v in pairs(tests) do l[#l + 1] = v end
        file_mid[fkey] = median(l)
      end
      s = tests and file_mid[fkey] or tier_mid
    end
    out[id] = s
  end
  return out
end

---The durations with every key made again by `key` (an export: whatever
---an older or edited file held goes out masked).
---@param data novapipe.Durations
---@param key fun(text: string): string
---@return novapipe.Durations
function M.rekey(data, key)
  local out = M.empty()
  for tier, files in pairs(data.tiers) do
    local t = {}
    for file, tests in pairs(files) do
      local f = t[key(file)] or {}
      for id, s in pairs(tests) do f[key(id)] = s end
      t[key(file)] = f
    end
    out.tiers[key(tier)] = t
  end
  return out
end

---Lines for people: per tier (the configured order, then any other), its
---files slowest first with their time and number of tests.
---@param data novapipe.Durations
---@param tiers? {name: string}[] the configured tiers
---@return string[]
function M.describe(data, tiers)
  local order, seen = {}, {}
  for _, t in ipairs(tiers or {}) do
    if data.tiers[t.name] then order[#order + 1] = t.name; seen[t.name] = true end
  end
  local rest = {}
  for name in pairs(data.tiers) do if not seen[name] then rest[#rest + 1] = name end end
  table.sort(rest)
  for _, name in ipairs(rest) do order[#order + 1] = name end
  local lines = {}
  for _, tier in ipairs(order) do
    local files, list, total, n = M.files(data, tier), {}, 0, 0
    for file, r in pairs(files) do
      list[#list + 1] = { file = file, seconds = r.seconds, tests = r.tests }
      total, n = total + r.seconds, n + r.tests
    end
    table.sort(list, function(a, b)
      if a.seconds ~= b.seconds then return a.seconds > b.seconds end
      return a.file < b.file
    end)
    lines[#lines + 1] = ("%s: %.2fs, %d test%s in %d file%s"):format(tier, total, n, n == 1 and "" or "s", #list,
      #list == 1 and "" or "s")
    for _, r in ipairs(list) do
      lines[#lines + 1] = ("  %8.3fs  %5d  %s"):format(r.seconds, r.tests, r.file)
    end
  end
  return lines
end

return M
