-- The run record: one run as data (schema novapipe.run/1, docs/run-record.md).
-- Built from the outcome the runner returns; written by the record
-- reporter (novapipe.reporters.record), read back by --last-failed and by
-- whatever a team builds on it. Every text in it is masked when it is
-- written, as everything novapipe writes.
local json = require "novapipe.json"

local M = {}

M.SCHEMA = "novapipe.run/1"

local COUNT_KEYS = { "tests", "passed", "failed", "errors", "skipped", "xfailed", "xpassed" }

local function counts_of(c)
  if type(c) ~= "table" then return nil end
  local out = {}
  for _, k in ipairs(COUNT_KEYS) do out[k] = c[k] or 0 end
  return out
end

-- A test as the record keeps it: what a person or a tool acts on.
local function test_of(t, stage)
  local d = t.durations or {}
  return {
    id = t.id, tier = t.tier or stage, stage = stage, outcome = t.outcome, file = t.file, line = t.line,
    duration = (d.setup or 0) + (d.call or 0) + (d.teardown or 0),
    durations = t.durations, message = t.message, location = t.location, longrepr = t.longrepr,
    markers = json.array(t.markers or {}), collect = t.collect or nil, also = t.also,
  }
end

-- The time as the record's name and its `started` field use it.
local function utc(t)
  return os.date("!%Y-%m-%dT%H:%M:%SZ", math.floor(t))
end

---The record of a run.
---@param info {pipeline: string, args: string[], pytest_args?: string[], started: number, outcome: table, reports?: {path: string, what: string}[]}
---@return table
function M.build(info)
  local outcome = info.outcome
  local stages, tests = {}, {}
  local totals = {}
  for _, k in ipairs(COUNT_KEYS) do totals[k] = 0 end
  for _, row in ipairs(outcome.results or {}) do
    local r = row.result
    local s = { name = row.stage.name, status = r.status, reason = r.reason, summary = r.summary,
                duration = r.duration, counts = counts_of(r.counts), needs = nil }
    local needs = {}
    for _, dep in ipairs(row.stage.needs or {}) do needs[#needs + 1] = type(dep) == "table" and dep.name or dep end
    if #needs > 0 then s.needs = needs end
    stages[#stages + 1] = s
    if s.counts then
      for _, k in ipairs(COUNT_KEYS) do totals[k] = totals[k] + s.counts[k] end
    end
    for _, t in ipairs(r.tests or {}) do tests[#tests + 1] = test_of(t, row.stage.name) end
  end
  local reports = {}
  for _, w in ipairs(info.reports or {}) do
    reports[#reports + 1] = { path = w.path, what = w.what, sha256 = require("novapipe.audit").hash_report(w.path) }
  end
  return {
    schema = M.SCHEMA, pipeline = info.pipeline, args = json.array(info.args or {}),
    pytest_args = json.array(info.pytest_args or {}),
    started = utc(info.started), duration = outcome.duration, exit = outcome.exit,
    stages = json.array(stages), tests = json.array(tests), totals = totals, reports = json.array(reports),
  }
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
  return rec
end

return M
