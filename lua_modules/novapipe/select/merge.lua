-- novapipe merge: the shards of one run (`--shard K/N`, each one's
-- directory as CI downloaded it) put back together into what one run
-- writes. Every shard of the same run (same commit, same N, the same
-- split) must be there exactly once; then each stage of the shards'
-- records becomes one stage whose tests are all the shards' tests, each
-- tier's JUnit files become one, and the coverage data is combined
-- (novapipe.tiers.coverage_stage). The run's reporters do the rest: the
-- record, the HTML report, the step summary, the annotations, the audit
-- entry, the recorded durations, and the exit code of the whole.
local errors = require "novapipe._errors"
local fs = require "novapipe.fs"
local junit = require "novapipe.junit"
local lfs = require "lfs"
local pipeline = require "novapipe.pipeline"
local record = require "novapipe.run.record"
local shard = require "novapipe.select.shard"

local M = {}

---@class novapipe.Shard
---@field dir string
---@field manifest table its manifest.json
---@field record table its record.json (novapipe.run/1)

-- One shard's directory, read; a usage error (one line) when it is not one.
local function read_shard(dir)
  if lfs.attributes(dir, "mode") ~= "directory" then
    errors.usage("merge: %s is not a directory (name each shard's --shard-dir, as CI downloaded it)", dir)
  end
  local mpath = dir .. "/" .. shard.MANIFEST
  local m, merr = require("novapipe.json").read(mpath)
  if not m then
    errors.usage("merge: %s is not a shard's directory (%s)", dir,
      lfs.attributes(mpath) and merr or (shard.MANIFEST .. " is missing: the --shard-dir of a run with --shard"))
  end
  if type(m) ~= "table" or m.schema ~= shard.SCHEMA or not math.tointeger(m.k) or not math.tointeger(m.n) then
    errors.usage("merge: %s: not a shard manifest of this novapipe (schema %s expected)", mpath, shard.SCHEMA)
  end
  m.k, m.n = math.tointeger(m.k), math.tointeger(m.n)
  if m.n < 1 or m.k < 1 or m.k > m.n then
    errors.usage("merge: %s says shard %d/%d: not a shard of a run (1 <= K <= N)", mpath, m.k, m.n)
  end
  local rpath = dir .. "/" .. shard.RECORD
  local rec, rerr = record.read(rpath)
  if not rec then errors.usage("merge: shard %d/%d in %s has no run record: %s", m.k, m.n, dir, rerr) end
  if type(rec.stages) ~= "table" then errors.usage("merge: %s: a run record without stages", rpath) end
  return { dir = dir, manifest = m, record = rec }
end

---Reads the shards' directories and checks they are every shard of one
---run exactly once, in order of K. A missing, duplicated or foreign shard
---is a usage error naming it.
---@param dirs string[]
---@return novapipe.Shard[]
function M.read(dirs)
  if #dirs == 0 then errors.usage("merge: name each shard's directory (novapipe merge DIR...)") end
  local shards, by_k = {}, {}
  for _, dir in ipairs(dirs) do shards[#shards + 1] = read_shard(dir) end
  local first = shards[1]
  for _, s in ipairs(shards) do
    local m, f = s.manifest, first.manifest
    if m.n ~= f.n then
      errors.usage("merge: %s is shard %d/%d, %s is %d/%d: shards of one run only", s.dir, m.k, m.n, first.dir, f.k, f.n)
    end
    if m.commit ~= f.commit then
      errors.usage("merge: %s ran on commit %s, %s on %s: shards of one run only", s.dir, tostring(m.commit),
        first.dir, tostring(f.commit))
    end
    if m.split ~= f.split then
      errors.usage("merge: %s and %s were split differently (other test files or durations): every shard of a run "
        .. "must read the same committed .novapipe-durations.json", s.dir, first.dir)
    end
    if by_k[m.k] then
      errors.usage("merge: shard %d/%d is given twice: %s and %s", m.k, m.n, by_k[m.k].dir, s.dir)
    end
    by_k[m.k] = s
  end
  local n = first.manifest.n
  for k = 1, n do
    if not by_k[k] then
      local have = {}
      for i = 1, n do if by_k[i] then have[#have + 1] = ("%d/%d"):format(i, n) end end
      errors.usage("merge: shard %d/%d is missing (given: %s): download every shard's directory", k, n,
        table.concat(have, ", "))
    end
  end
  local ordered = {}
  for k = 1, n do ordered[k] = by_k[k] end
  return ordered
end

-- A record's test as a test result again (the record keeps it masked).
local function result_of(t)
  return { id = t.id, tier = t.tier, file = t.file, line = t.line, outcome = t.outcome, durations = t.durations,
           message = t.message, location = t.location, longrepr = t.longrepr, markers = t.markers or {},
           hipaa = {}, collect = t.collect, also = t.also }
end

-- What the shards say of one stage, as one result: the worst status (an
-- error, a failure, a stage skipped because one it needed failed), else
-- passed when a shard passed; every test; the counts summed.
local RANK = { error = 6, failed = 5, gated = 4, unchecked = 3, passed = 2, empty = 1, skipped = 0 }
local function merged_result(name, rows)
  local tests, counts, status, rank, duration = {}, nil, "skipped", -1, 0
  local reasons, summary = {}, nil
  for _, row in ipairs(rows) do
    local st = row.stage
    local kind = st.status
    if kind == "skipped" and st.reason and not st.reason:find("^no tests in this shard") then kind = "gated" end
    if (RANK[kind] or 0) > rank then status, rank = st.status, RANK[kind] or 0 end
    duration = math.max(duration, tonumber(st.duration) or 0)
    if st.reason and (st.status ~= "skipped" or kind == "gated") then
      reasons[#reasons + 1] = ("shard %d/%d: %s"):format(row.k, row.n, st.reason)
    end
    summary = summary or st.summary
    if type(st.counts) == "table" then
      counts = counts or junit.zero()
      for _, key in ipairs(record.COUNT_KEYS) do counts[key] = counts[key] + (tonumber(st.counts[key]) or 0) end
    end
    for _, t in ipairs(row.tests) do tests[#tests + 1] = result_of(t) end
  end
  local result = { status = status, counts = counts, tests = tests, duration = duration,
                   reason = #reasons > 0 and table.concat(reasons, "; ") or nil, neutral = status == "skipped" or nil }
  if status == "skipped" and not result.reason then
    -- no shard had a test of it: what one run says of a tier with none
    result.status, result.neutral, result.counts = "empty", nil, junit.zero()
    result.reason, result.summary = "no tests in any shard", "no tests"
  end
  if not result.counts then result.summary = summary end
  return result, name
end

-- The `<testsuite ...>` attributes summed and the test cases of each
-- shard's JUnit file, one file of pytest's shape.
local function merge_junit(paths)
  local sum = { tests = 0, errors = 0, failures = 0, skipped = 0, time = 0 }
  local body, stamp = {}, nil
  for _, path in ipairs(paths) do
    local text = fs.read(path) or ""
    local s, e, attrs, closed = text:find("<testsuite([%s][^>]-)(/?)>")
    if s then
      for k in pairs(sum) do sum[k] = sum[k] + (tonumber(attrs:match("%s" .. k .. '="([%d.]+)"')) or 0) end
      stamp = stamp or attrs:match('%stimestamp="([^"]*)"')
      if closed == "" then
        local last = text:match(".*()</testsuite>")
        if last and last > e then body[#body + 1] = text:sub(e + 1, last - 1) end
      end
    end
  end
  return ('<?xml version="1.0" encoding="utf-8"?><testsuites><testsuite name="pytest" errors="%d" failures="%d" '
    .. 'skipped="%d" tests="%d" time="%.3f" timestamp="%s" hostname="novapipe-merge">%s</testsuite></testsuites>')
    :format(sum.errors, sum.failures, sum.skipped, sum.tests, sum.time, stamp or "", table.concat(body))
end

-- Stages the merge makes itself, or leaves out.
local OWN = { shard = true, reports = true, coverage = true }

---The merge's stages: one a stage of the shards' records, in their order,
---each writing its tier's merged JUnit; the combined coverage when the
---shards kept coverage data; the list of reports when the shards had one.
---@param opts {from: string[], coverage_report?: boolean}
---@param ctx novapipe.Context
---@return novapipe.Stage[]
function M.stages(opts, ctx)
  local cfg = ctx.config
  local shards = M.read(opts.from or {})
  local order, rows, had = {}, {}, {}
  for _, s in ipairs(shards) do
    local by_stage = {}
    for _, t in ipairs(s.record.tests) do
      local list = by_stage[t.stage or t.tier or "?"] or {}
      by_stage[t.stage or t.tier or "?"] = list
      list[#list + 1] = t
    end
    for _, st in ipairs(s.record.stages) do
      if type(st) == "table" and type(st.name) == "string" then
        had[st.name] = true
        if not OWN[st.name] then
          if not rows[st.name] then
            rows[st.name] = {}
            order[#order + 1] = st.name
          end
          table.insert(rows[st.name], { k = s.manifest.k, n = s.manifest.n, stage = st, tests = by_stage[st.name] or {} })
        end
      end
    end
  end
  local stages, coverage = {}, {}
  for _, name in ipairs(order) do
    local paths, cov = {}, {}
    for _, s in ipairs(shards) do
      local j = ("%s/junit/%s-results.xml"):format(s.dir, name)
      if lfs.attributes(j, "mode") == "file" then paths[#paths + 1] = j end
      local c = ("%s/coverage/.coverage.%s"):format(s.dir, name)
      if lfs.attributes(c, "mode") == "file" then cov[#cov + 1] = c end
    end
    if #cov > 0 then coverage[#coverage + 1] = { name = name, files = cov } end
    stages[#stages + 1] = pipeline.stage { name = name, run = function(c)
      local result = merged_result(name, rows[name])
      if #paths > 0 then
        local ok, err = c.sink:dir(cfg.results)
        local out = ("%s/%s-results.xml"):format(cfg.results, name)
        if ok then ok, err = c.sink:write(out, merge_junit(paths), "JUnit XML, " .. name, { markup = true }) end
        if not ok then return { status = "error", reason = ("merged JUnit XML: %s"):format(err) } end
        local report, jerr = junit.read(out)
        if not report then
          result.notes = { jerr }
        elseif result.counts and junit.describe(report.counts) ~= junit.describe(result.counts) then
          result.notes = { ("the merged JUnit XML counts %s, the shards' records %s"):format(
            junit.describe(report.counts), junit.describe(result.counts)) }
        end
      end
      return result
    end }
  end
  if #coverage > 0 then
    stages[#stages + 1] = require("novapipe.tiers").coverage_stage(cfg, coverage, { coverage_report = opts.coverage_report })
  end
  if had.reports then stages[#stages + 1] = require("novapipe").written() end
  stages[#stages + 1] = pipeline.stage { name = "merge", run = function()
    local m = shards[1].manifest
    return { status = "passed", summary = ("%d shards of commit %s"):format(m.n, tostring(m.commit):sub(1, 12)) }
  end }
  return stages
end

return M
