-- The run record: one run as data (schema novapipe.run/1, docs/run-record.md).
-- Built from the outcome the runner returns; written by the record
-- reporter (novapipe.reporters.record), read back by --last-failed and by
-- whatever a team builds on it. Every text in it is masked when it is
-- written, as everything novapipe writes.
local digest = require "novapipe.digest"
local fs = require "novapipe.fs"
local json = require "novapipe.json"
local lfs = require "lfs"

local M = {}

M.SCHEMA = "novapipe.run/1"

---The project's secret for the tests' keys: a node id can hold PHI, so the
---record is masked, and a test is found again (--last-failed) by the
---sha256 of this secret and its node id, which no one without the secret
---can turn back into the id.
M.KEY = ".novapipe/key"
---The newest record (the record reporter writes it).
M.LAST_RUN = ".novapipe/last-run.json"

---The secret, made (32 random bytes, hex, 0600) when there is none yet.
---@param sink novapipe.Sink
---@return string|nil secret
---@return string? error
function M.secret(sink)
  local text = fs.read(M.KEY)
  if text and text:match("^%x+\n?$") and #text >= 64 then return (text:gsub("\n$", "")) end
  -- .novapipe taken over first (sink:dir finishes a take-over cut short)
  local dok, derr = sink:dir((M.KEY:match("^(.*)/")))
  if not dok then return nil, derr end
  local f, err = io.open("/dev/urandom", "rb")
  if not f then return nil, err end
  local bytes = f:read(32)
  f:close()
  local hex = bytes:gsub(".", function(c) return ("%02x"):format(c:byte()) end)
  local ok, werr = sink:write(M.KEY, hex .. "\n", "run record key", { raw = true, record = false })
  if not ok then return nil, werr end
  return hex
end

---A test's key: sha256 of the secret and its node id, hex.
---@param secret string
---@param id string
---@return string
function M.key(secret, id)
  return digest.sha256(secret .. id)
end

local COUNT_KEYS = { "tests", "passed", "failed", "errors", "skipped", "xfailed", "xpassed", "flaky", "quarantined" }
-- A test's outcome as the counts name it (the same as the events').
local COUNT_OF = require("novapipe.pytest.results").COUNT_OF
---The counts' keys, in the order reports show them, and the count each
---outcome goes to.
M.COUNT_KEYS, M.COUNT_OF = COUNT_KEYS, COUNT_OF

local function counts_of(c)
  if type(c) ~= "table" then return nil end
  local out = {}
  for _, k in ipairs(COUNT_KEYS) do out[k] = c[k] or 0 end
  return out
end

---Whether a test gets a key in the record: the failures (where --lf and
-----ff look) and the flaky tests (where `novapipe flaky` counts).
---@param t table
---@return boolean
function M.keyed(t)
  return t.outcome == "failed" or t.outcome == "error" or t.also == "failed" or t.outcome == "flaky"
end

-- The earlier attempts of a rerun test, as the record keeps them.
local function attempts_of(list, mask)
  if not list then return nil end
  local out = {}
  for i, a in ipairs(list) do
    out[i] = { outcome = a.outcome, message = mask(a.message), location = mask(a.location), longrepr = mask(a.longrepr) }
  end
  return json.array(out)
end

-- A test as the record keeps it: what a person or a tool acts on.
local function test_of(t, stage, secret, mask)
  local d = t.durations or {}
  local q = t.quarantine
  return json.row {
    id = mask(t.id), key = secret and M.keyed(t) and M.key(secret, t.id) or nil,
    tier = mask(t.tier or stage), stage = mask(stage),
    outcome = t.outcome, file = mask(t.file), line = t.line,
    duration = (d.setup or 0) + (d.call or 0) + (d.teardown or 0),
    durations = t.durations, message = mask(t.message), location = mask(t.location), longrepr = mask(t.longrepr),
    markers = t.markers and #t.markers > 0 and json.array(t.markers) or nil, collect = t.collect or nil, also = t.also,
    attempts = attempts_of(t.attempts, mask),
    quarantine = q and { pattern = mask(q.pattern), why = mask(q.why), expires = q.expires, outcome = q.outcome } or nil,
  }
end

-- A masker that masks each distinct text once (a file's path comes back
-- with every test in it); nil passes through. Without one, identity.
local function memo(mask)
  if not mask then return function(v) return v end end
  local seen = {}
  return function(v)
    if v == nil then return nil end
    local m = seen[v]
    if m == nil then
      m = mask(v)
      seen[v] = m
    end
    return m
  end
end

M.memo = memo

---The record as text: indented, keys sorted, a test a line. Every text in
---it was masked by build (given the sink's masker).
---@param rec table
---@return string
function M.encode(rec)
  return json.pretty(rec) .. "\n"
end

-- The time as the record's name and its `started` field use it.
local function utc(t)
  return os.date("!%Y-%m-%dT%H:%M:%SZ", math.floor(t))
end

---The record of a run.
---A test as the record keeps it, masked (mask: a masker as build's): for
---a reporter that makes each test's row as it ends (info.made of build).
---@param t novapipe.TestResult
---@param stage string
---@param secret? string
---@param mask? fun(s: string): string
---@return table
function M.test(t, stage, secret, mask)
  return json.encode_row(test_of(t, stage, secret, mask or function(v) return v end))
end

---Every text is masked with info.mask (a masker of several lines, the
---sink's mask_lines), each distinct text once.
---@param info {pipeline: string, args: string[], pytest_args?: string[], pytest_addopts?: string, started: number, outcome: table, reports?: {path: string, what: string}[], secret?: string, mask?: fun(s: string): string, made?: table<string, table[]>}
---@return table
function M.build(info)
  local mask = memo(info.mask)
  local outcome = info.outcome
  local stages, tests = {}, {}
  local totals = M.totals(outcome.results or {})
  for _, row in ipairs(outcome.results or {}) do
    local r = row.result
    local s = { name = mask(row.stage.name), status = r.status, reason = mask(r.reason), summary = mask(r.summary),
                duration = r.duration, counts = counts_of(r.counts), needs = nil,
                required = r.status == "unchecked" and r.required or nil }
    local needs = {}
    for _, dep in ipairs(row.stage.needs or {}) do needs[#needs + 1] = mask(type(dep) == "table" and dep.name or dep) end
    if #needs > 0 then s.needs = needs end
    stages[#stages + 1] = s
    -- what the reporter made of each test while it ran, else made now
    local made = info.made and info.made[row.stage.name]
    if made and #made == #(r.tests or {}) then
      for _, t in ipairs(made) do tests[#tests + 1] = t end
    else
      for _, t in ipairs(r.tests or {}) do tests[#tests + 1] = test_of(t, row.stage.name, info.secret, mask) end
    end
  end
  local reports = {}
  for _, w in ipairs(info.reports or {}) do
    reports[#reports + 1] = { path = mask(w.path), what = mask(w.what), sha256 = w.sha256 or require("novapipe.audit").hash_report(w.path) }
  end
  local function each(list)
    local out = {}
    for i, a in ipairs(list or {}) do out[i] = mask(a) end
    return json.array(out)
  end
  -- --changed: what was compared, the changes, and what was selected
  local changed
  for _, row in ipairs(outcome.results or {}) do
    local c = row.result.changed
    if c then
      local changes = {}
      for i, ch in ipairs(c.changes) do
        changes[i] = { path = mask(ch.path), status = ch.status, from = ch.from and mask(ch.from) or nil }
      end
      changed = { against = mask(c.against), changes = json.array(changes), everything = mask(c.everything),
                  tests = c.tests, selected = each(c.selected), always = c.always }
    end
  end
  return {
    schema = M.SCHEMA, pipeline = mask(info.pipeline), args = each(info.args), changed = changed,
    pytest_args = each(info.pytest_args), pytest_addopts = mask(info.pytest_addopts),
    started = utc(info.started), duration = outcome.duration, exit = outcome.exit,
    stages = json.array(stages), tests = json.array(tests), totals = totals, reports = json.array(reports),
  }
end


---The totals of a run's stages ({stage, result} rows), each test counted
---once: a test that ran in two stages (a security test, in its tier and
---in the security stages) counts where it ran first. A stage with counts
---but no tests as data adds its counts.
---@param rows {stage: table, result: table}[]
---@return table counts
function M.totals(rows)
  local totals, seen = {}, {}
  for _, k in ipairs(COUNT_KEYS) do totals[k] = 0 end
  for _, row in ipairs(rows) do
    local r = row.result
    if r.tests and r.counts then
      for _, t in ipairs(r.tests) do
        local id = t.id
        if not seen[id] then
          seen[id] = true
          -- (no table a test: this runs over every test at the end of a run)
          local kind = COUNT_OF[t.outcome]
          totals[kind] = totals[kind] + 1
          local also = t.also and COUNT_OF[t.also]
          if also then totals[also] = totals[also] + 1 end
          totals.tests = totals.tests + (also and 2 or 1)
        end
      end
    elseif r.counts then
      for _, k in ipairs(COUNT_KEYS) do totals[k] = totals[k] + (r.counts[k] or 0) end
    end
  end
  return totals
end

---The tests of a run's stages, each once (where it ran first).
---@param rows {stage: table, result: table}[]
---@return novapipe.TestResult[]
function M.unique_tests(rows)
  local out, seen = {}, {}
  for _, row in ipairs(rows) do
    for _, t in ipairs(row.result.tests or {}) do
      if not seen[t.id] then
        seen[t.id] = true
        out[#out + 1] = t
      end
    end
  end
  return out
end

---The flaky tests (passed only on a rerun) of a record or of a run's
---results, in the order they ended.
---@param tests table[]
---@return table[]
function M.flaky(tests)
  local out = {}
  for _, t in ipairs(tests) do
    if t.outcome == "flaky" then out[#out + 1] = t end
  end
  return out
end

---The quarantined tests (failed or errored, covered by a live quarantine
---entry) of a record or of a run's results.
---@param tests table[]
---@return table[]
function M.quarantined(tests)
  local out = {}
  for _, t in ipairs(tests) do
    if t.outcome == "quarantined" then out[#out + 1] = t end
  end
  return out
end

---The failed and errored tests of a record (or of a run's results), in
---the order they ended.
---@param tests table[]
---@return table[]
function M.problems(tests)
  local out = {}
  for _, t in ipairs(tests) do
    if t.outcome == "failed" or t.outcome == "error" or t.also == "failed" then out[#out + 1] = t end
  end
  return out
end

---What went wrong with a failed or errored test, in words for people:
---`FAILED`, `ERROR`, `COLLECTION ERROR`, or `FAILED, then ERROR in
---teardown`.
---@param t table a test of a record or of a run's results
---@return string
function M.kind(t)
  if t.collect then return "COLLECTION ERROR" end
  if t.outcome == "error" and t.also == "failed" then return "FAILED, then ERROR in teardown" end
  return t.outcome == "error" and "ERROR" or "FAILED"
end

---The same in lower case, for a line that names it in passing (the step
---summary's and an annotation's): "collection error", "error" or
---"failed".
---@param t table
---@return string
function M.kind_word(t)
  return t.collect and "collection error" or t.outcome == "error" and "error" or "failed"
end

-- A text quoted for a POSIX shell.
local function shell_quote(s)
  if s:match("^[%w_./:%-=]+$") then return s end
  return "'" .. s:gsub("'", "'\\''") .. "'"
end

---The command that re-runs one test (or one file, for a collection error).
---@param t table a test of a record or of a run's results
---@return string
function M.rerun(t)
  local target = t.collect and (t.file or t.id) or t.id
  return "novapipe run run_tests --filter " .. shell_quote(target)
end

---A test's time, setup + call + teardown, in seconds (nil when unknown).
---@param t table a test of a record or of a run's results
---@return number|nil
function M.duration(t)
  local d = t.durations
  if type(d) == "table" then return (d.setup or 0) + (d.call or 0) + (d.teardown or 0) end
  return t.duration
end

---The n slowest tests of those that took at least `min` seconds (pytest's
-----durations-min, 0.005 by default), slowest first, each as {t = test,
---total = seconds}; collection errors are not tests and are left out.
---@param tests table[]
---@param n integer
---@param min? number
---@return {t: table, total: number}[]
function M.slowest(tests, n, min)
  min = min or 0.005
  local timed = {}
  if n <= 0 then return timed end
  for _, t in ipairs(tests) do
    local total = not t.collect and M.duration(t)
    if total and total >= min then timed[#timed + 1] = { t = t, total = total } end
  end
  table.sort(timed, function(a, b) return a.total > b.total end)
  for i = #timed, n + 1, -1 do timed[i] = nil end
  return timed
end

---The file name of a run's record in the runs directory: its start and
---its pipeline (a path's last name, without .lua).
---@param started number seconds since the epoch
---@param pipeline string
---@return string
function M.file_name(started, pipeline)
  local name = pipeline:match("([^/]+)$"):gsub("%.lua$", ""):gsub("[^%w_.-]", "_")
  local frac = math.floor((started % 1) * 1000)
  return ("%s%03d-%s.json"):format(os.date("!%Y%m%dT%H%M%S", math.floor(started)), frac, name)
end

---What --last-failed (mode "only") or --failed-first ("first") select
---from the project's newest record: {mode, secret, by_tier = {tier =
---{key, ...}}, count}, or nil and a note saying why everything runs (no
---record, no failure in it, a record without keys).
---@param sink novapipe.Sink
---@param mode "only"|"first"
---@param path? string default M.LAST_RUN
---@return table|nil selection
---@return string? note
function M.selection(sink, mode, path)
  path = path or M.LAST_RUN
  local rec, why = M.read(path)
  if not rec then
    return nil, ("no run recorded yet (%s): running every test"):format(lfs.attributes(path) and why or (path .. " does not exist"))
  end
  local secret, serr = M.secret(sink)
  if not secret then return nil, ("cannot read the run record's key (%s): running every test"):format(serr) end
  local by_tier, count, keyless = {}, 0, 0
  for _, t in ipairs(M.problems(rec.tests)) do
    if type(t.key) == "string" and type(t.tier) == "string" then
      by_tier[t.tier] = by_tier[t.tier] or {}
      table.insert(by_tier[t.tier], t.key)
      count = count + 1
    else
      keyless = keyless + 1
    end
  end
  if count == 0 then
    if keyless > 0 then
      return nil, ("the last run's failures were recorded without keys (an earlier novapipe): running every test")
    end
    return nil, ("no test failed in the last run (%s, %s): running every test"):format(tostring(rec.pipeline or "?"),
      tostring(rec.started or "?"))
  end
  return { mode = mode, secret = secret, by_tier = by_tier, count = count }
end

---Reads the newest record of a project (`.novapipe/last-run.json` by
---default). Returns the record, or nil and why (none, or unreadable).
---@param path string
---@return table|nil
---@return string? why
function M.read(path)
  local rec, err = json.read(path)
  if not rec then return nil, err end
  if type(rec) ~= "table" or rec.schema ~= M.SCHEMA or type(rec.tests) ~= "table" then
    return nil, ("%s: not a run record of this novapipe (schema %s expected)"):format(path, M.SCHEMA)
  end
  -- a record is a file anyone with the project's rights can edit: what is
  -- not a test of the right shape is left out
  local tests = {}
  for _, t in ipairs(rec.tests) do
    if type(t) == "table" and type(t.outcome) == "string" and (t.key == nil or type(t.key) == "string")
        and (t.tier == nil or type(t.tier) == "string") and (t.also == nil or type(t.also) == "string") then
      tests[#tests + 1] = t
    end
  end
  rec.tests = tests
  return rec
end

return M
