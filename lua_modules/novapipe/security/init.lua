-- The security pipeline's stages: the tests marked security across the
-- tiers (through novapipe.tiers: gating, JUnit and coverage as there), the
-- PHI audit of the test suite, the offline dependency scan, and with a
-- report the security-code coverage and the combined HTML/JSON/Markdown
-- compliance report. Stages share what they found through one table.
local baseline = require "novapipe.security.baseline"
local errors = require "novapipe._errors"
local json = require "novapipe.json"
local lfs = require "lfs"
local pipeline = require "novapipe.pipeline"
local process = require "novapipe.process"
local python = require "novapipe.python"

local M = {}

local LABEL = "security"

---@class novapipe.SecurityOpts
---@field report? boolean write the reports (per part and combined)
---@field output_dir? string default: security.reports from the configuration
---@field formats? string[] of "html", "json", "md", "sarif" (sarif: written with or without report when given here)
---@field advisories? string a directory or zip of OSV advisories (default: novapipe.security.advisories finds one)
---@field verbose? boolean
---@field filter? string only the security tests of this path or -k expression (novapipe.tiers' filter)
---@field parallel? integer
---@field jobs? integer tiers at once
---@field reuse? boolean take the security tests' results from the main tiers' runs in this pipeline (all) instead of running them again
---@field sequential? boolean
---@field shard? table a split of the tiers (novapipe.select.shard): only this shard's part of each tier's security tests
---@field config? novapipe.Config
---@field baseline? string the baseline file (default: security.baseline from the configuration)
---@field update_baseline? boolean write the baseline of this run's findings; they do not fail the run

-- Runs python/novapipe_read.py (`mode` and its arguments) with a Python
-- that has `module`; its JSON output decoded, or nil and one line.
local function run_reader(cfg, module, mode, args, name)
  local exe, err = python.find({ module }, cfg.python)
  if not exe then return nil, err end
  local argv = { exe, require("novapipe.host").root .. "/python/novapipe_read.py", mode }
  for _, a in ipairs(args) do argv[#argv + 1] = a end
  local r, perr = process.run(argv, { stdin = "null" })
  if not r then return nil, perr end
  if r.code ~= 0 then return nil, ((r.stderr or ""):gsub("%s+$", "")) end
  return json.decode(r.stdout, name)
end

local function read_toml(cfg)
  return function(paths) return run_reader(cfg, "tomllib", "toml", paths, "TOML reader output") end
end

-- The zip reader osv.load takes: the entries (only those naming one of
-- `names` when given) and the number of records in the archive.
local function read_zip(cfg)
  return function(path, names)
    local args = { path }
    for _, n in ipairs(names or {}) do args[#args + 1] = n end
    local out, err = run_reader(cfg, "zipfile", "zip", args, path)
    if not out then return nil, err end
    return out.entries or {}, out.records
  end
end

local function write_report(state, name, text, what)
  local path = state.dir .. "/" .. name
  local ok, err = state.sink:write(path, text, what, { markup = name:match("%.html$") ~= nil })
  if not ok then return nil, err end
  return path
end

-- A test's outcome as the report names it (the counts' words).
local COUNT_OF = { error = "errors" }

-- The tests stage group's results, gathered for the report: every tier
-- (run, failed or skipped, with why) and every case that ran.
local function gather_tests(state, stage_results)
  local junit = require "novapipe.junit"
  local cases, tiers = json.array(), json.array()
  local status = "passed"
  local counts = junit.zero()
  for _, st in ipairs(state.test_stages) do
    local r = stage_results[st.name]
    if r then
      tiers[#tiers + 1] = { name = st.name:gsub("^" .. LABEL .. "/", ""), status = r.status,
                            summary = r.summary or (r.counts and junit.describe(r.counts))
                              or (r.reason and r.reason:gsub("^skipped: ", "")), reason = r.reason }
      if r.status == "failed" or r.status == "error" then status = "failed" end
      if r.counts then counts = junit.add(counts, r.counts) end
      for _, t in ipairs(r.cases or {}) do
        if not t.collect then
          cases[#cases + 1] = { id = t.id, outcome = COUNT_OF[t.outcome] or t.outcome, hipaa = json.array(t.hipaa),
                                message = t.message, location = t.location }
        end
      end
    end
  end
  return { status = status, tiers = tiers, cases = cases, counts = counts,
           summary = counts.tests > 0 and junit.describe(counts) or "no security tests ran" }
end

-- Why a known security test is among no case that ran, from its tier
-- stage's result.
local function why_not_run(state, stage_results, t)
  if not t.security then
    return "marked hipaa but not security: the security stages do not select it (add @pytest.mark.security)"
  end
  local r = stage_results[LABEL .. "/" .. t.tier]
  if not r then return ("its tier %s did not run"):format(t.tier) end
  if r.status == "skipped" and r.neutral and state.filter then
    return ("not selected by --filter %s (not in the %s tier)"):format(state.filter, t.tier)
  elseif r.status == "skipped" then
    return ("its tier %s was skipped (%s)"):format(t.tier, (r.reason or "skipped"):gsub("^skipped: ", ""))
  end
  if r.status == "error" then return ("its tier %s ended in an error"):format(t.tier) end
  if r.timed_out then return ("its tier %s timed out before it ran"):format(t.tier) end
  -- pytest runs no test of a tier that has a collection error (exit 2,
  -- "Interrupted"): neither a filter nor a marker kept this one out
  if r.status == "failed" and (r.reason or ""):find("^collection errors in ") then
    for _, c in ipairs(r.cases or {}) do
      if c.collect and c.outcome == "error" and (c.id == t.file or t.file:sub(-#c.id - 1) == "/" .. c.id) then
        return ("its file could not be collected (a collection error in the %s tier)"):format(t.tier)
      end
    end
    return ("its tier %s ran no test: %s"):format(t.tier, r.reason)
  end
  if state.shard then return "not in this shard" end
  if state.filter then return ("not selected by --filter %s"):format(state.filter) end
  return ("not selected in the %s tier's run (a filter, or a marker pytest did not see)"):format(t.tier)
end

-- The lines the safeguards stage shows for one safeguard that is not
-- verified: its tests that did not pass, at most five.
local function safeguard_lines(s)
  local out = {}
  local line = ("%s %s: %s"):format(s.id, s.title, s.status)
  if s.status ~= "no test" then
    line = line .. (" (%d passed, %d failed, %d not run)"):format(s.passed, s.failed, s.not_run)
  end
  out[1] = line .. (s.unmet and ", required" or "")
  local list = require("novapipe.security.hipaa").not_passed(s)
  for i = 1, math.min(#list, 5) do out[#out + 1] = ("  %s: %s"):format(list[i][1], list[i][2]) end
  if #list > 5 then out[#out + 1] = ("  ... and %d more (the report lists them all)"):format(#list - 5) end
  return out
end

---The safeguards stage: what the security tests that ran, and those the
---source holds that did not, say of each 164.312 safeguard; a required
---one without a passing test fails it.
local function safeguards_stage(state)
  return pipeline.stage { name = "safeguards", run = function(c)
    local hipaa = require "novapipe.security.hipaa"
    local inventory = require "novapipe.security.inventory"
    local results = c.stage_results or {}
    local tests = gather_tests(state, results)
    local known, errs = inventory.list(state.cfg)
    local phi = state.phi or { findings = {} }
    local deps = state.deps or { vulnerabilities = {} }
    local rows, unknown = hipaa.map(tests.cases, { phi = #phi.findings, vulnerability = #deps.vulnerabilities }, {
      known = known, lookup = inventory.index(known), required = state.cfg.security.required_safeguards,
      not_run = function(t) return why_not_run(state, results, t) end,
    })
    for _, s in ipairs(rows) do s.tests = json.array(s.tests) end
    state.tests, state.safeguards, state.unmapped = tests, rows, unknown
    local verified, unmet, details = 0, 0, {}
    for _, s in ipairs(rows) do
      if s.status == "verified" then verified = verified + 1 end
      if s.unmet then unmet = unmet + 1 end
      if s.status ~= "verified" then
        for _, l in ipairs(safeguard_lines(s)) do details[#details + 1] = l end
      end
    end
    local warnings, notes = {}, {}
    for _, e in ipairs(errs) do warnings[#warnings + 1] = "cannot read a test file: " .. e end
    if #unknown > 0 then
      notes[#notes + 1] = "hipaa markers naming no 164.312 safeguard: " .. table.concat(unknown, ", ")
    end
    local failed = unmet > 0 and not state.shard
    if unmet > 0 and state.shard then
      notes[#notes + 1] = "a shard runs part of the tests: required safeguards are not checked per shard"
    elseif unmet > 0 then
      notes[#notes + 1] = "required by security.required_safeguards in novapipe.lua (default: all five): give each "
        .. "a passing test marked security and hipaa(\"164.312(x)\"), or change the list"
    end
    return {
      status = failed and "failed" or "passed",
      summary = ("%d of %d verified%s"):format(verified, #rows,
        unmet > 0 and (", %d required without a passing test"):format(unmet) or ""),
      details = #details > 0 and details or nil,
      warnings = #warnings > 0 and warnings or nil,
      notes = #notes > 0 and notes or nil,
    }
  end }
end

-- How a finding's baseline state shows beside it on the console.
local KNOWN = { known = " (known)" }

-- Marks findings of one kind new or known against the run's baseline
-- (state.baseline, novapipe.security.baseline), keeps the baseline's
-- entries of that kind that matched none (stale) and returns the new
-- findings: those that count toward the thresholds. Without a baseline
-- every finding is new and none is marked; with --update-baseline none is
-- new, as this run records them all.
local function known_findings(state, kind, findings)
  local b = state.baseline
  if not b then return findings end
  local new, _, stale = baseline.match(b.file, kind, findings)
  b.stale[kind] = stale
  if b.update then
    for _, f in ipairs(new) do f.baseline = "recorded" end
    return {}
  end
  return new
end

-- The baseline's part of a stage's summary: " (1 new, 2 known)", and
-- when the new ones are more than the threshold `limit`, that.
local function baseline_summary(state, findings, new, limit)
  local b = state.baseline
  local over = limit and new > limit
  if not b or #findings == 0 then return over and (" (more than " .. limit .. ")") or "" end
  if b.update then return " (recorded in the baseline)" end
  return (" (%d new%s, %d known)"):format(new, over and (", more than " .. limit) or "", #findings - new)
end

-- One line for a baseline entry, as the console shows a finding.
local function entry_line(e)
  if e.kind == "phi" then
    return ("%s:%s: %s %s"):format(e.file, math.tointeger(e.line) or "?", e.type or "?", e.value or "?")
  end
  return ("%s %s: %s (%s)"):format(e.package or "?", e.version or "?", e.advisory or "?", e.file)
end

-- The baseline's entries of one kind that matched nothing, as details.
local function stale_details(state, kind, details)
  local b = state.baseline
  local stale = b and b.stale[kind] or {}
  if #stale == 0 then return end
  details[#details + 1] = b.update
    and ("%d entr%s dropped from %s, no longer found:"):format(#stale, #stale == 1 and "y" or "ies", b.path)
    or ("%d known finding(s) of %s no longer found (fixed; refresh it with --update-baseline):"):format(#stale, b.path)
  for i, e in ipairs(stale) do
    if i > 10 then details[#details + 1] = ("  ... and %d more"):format(#stale - 10) break end
    details[#details + 1] = "  " .. entry_line(e)
  end
end

---The PHI audit stage.
local function phi_stage(state)
  return pipeline.stage { name = "phi-audit", run = function()
    local cfg = state.cfg
    local audit = require("novapipe.security.phi_audit").run(cfg)
    state.phi = audit
    local new = known_findings(state, "phi", audit.findings)
    audit.new = #new
    local details = {}
    for i, f in ipairs(audit.findings) do
      if i > 20 then details[#details + 1] = ("... and %d more"):format(#audit.findings - 20) break end
      details[#details + 1] = ("%s:%d: %s %s%s"):format(f.file, f.line, f.kind, f.value, KNOWN[f.baseline] or "")
    end
    stale_details(state, "phi", details)
    for _, w in ipairs(audit.expired) do
      details[#details + 1] = ("waiver for %s expired on %s: it no longer applies"):format(w.file, w.expires)
    end
    for _, e in ipairs(audit.errors) do details[#details + 1] = "cannot read: " .. e end
    local limit = cfg.security.thresholds.phi
    local over = #new > limit
    audit.status = over and "failed" or "passed"
    if state.report then
      local path, err = write_report(state, ("hipaa_security_report_%s.json"):format(state.stamp), json.pretty({
        files = audit.files, findings = json.array(audit.findings), waived = json.array(audit.waived),
        expired_waivers = json.array(audit.expired), unused_waivers = json.array(audit.unused),
        errors = json.array(audit.errors), threshold = limit,
      }) .. "\n", "PHI audit")
      if not path then return { status = "error", reason = err } end
    end
    return {
      status = audit.status,
      summary = ("%d finding(s) in %d file(s)%s%s"):format(#audit.findings, audit.files,
        #audit.waived > 0 and (", " .. #audit.waived .. " waived") or "",
        baseline_summary(state, audit.findings, #new, limit)),
      details = #details > 0 and details or nil,
    }
  end }
end

-- The stage result of a scan that did not happen: `unchecked`, never
-- passed; with `required`, a configuration problem (exit 2).
local function unchecked(result, deps, pinned, unpinned, why, required, required_why)
  result.checked, result.status, result.required = false, "unchecked", required
  result.reason = why
  result.note = ("The %d pinned package(s) were not checked for known vulnerabilities: %s."):format(#pinned, why)
  local reason = required and ("advisories are required (%s): %s"):format(required_why, why) or why
  return {
    status = "unchecked", required = required or nil, reason = reason,
    summary = ("%d package(s), %d pinned, %d unpinned: not checked against advisories"):format(#deps, #pinned, #unpinned),
  }
end

---The dependency scan stage: the pinned packages against the advisory
---database novapipe.security.advisories finds (--advisories and
---security.advisories first); unchecked, never passed, without a usable one.
local function deps_stage(state, opts)
  return pipeline.stage { name = "dependencies", run = function()
    local cfg = state.cfg
    local sec = cfg.security
    local deps_mod = require "novapipe.security.deps"
    local adv_db = require "novapipe.security.advisories"
    local pep440 = require "novapipe.security.pep440"
    local files = sec.dependency_files or deps_mod.discover()
    local deps, err = deps_mod.read(files, read_toml(cfg))
    if not deps then return { status = "error", reason = err } end
    local pinned, unpinned = {}, json.array()
    for _, d in ipairs(deps) do
      if d.pinned then pinned[#pinned + 1] = d else unpinned[#unpinned + 1] = d end
    end
    local result = { files = json.array(files), packages = #deps, pinned = #pinned, unpinned = unpinned,
                     vulnerabilities = json.array(), ignored = json.array(), expired_ignores = json.array(),
                     advisories = json.null }
    state.deps = result
    local details = {}
    local required, required_why = adv_db.required(cfg)
    local now = os.time()
    local db = adv_db.locate(cfg, { given = opts.advisories or sec.advisories })
    local why
    if not db then
      why = "no advisory database: run 'novapipe advisories update' (or pass --advisories DIR|ZIP)"
    elseif not (db.origin == "given" and not lfs.attributes(db.path)) then
      -- (a given path that is not there is osv.load's error below)
      why = adv_db.unusable(db, sec.advisories_max_age_days, now)
    end
    local stage_result, advisories, records
    if db then
      result.advisories = db.path
      result.database = { path = db.path, origin = db.origin, source = db.source, records = db.records,
                          fetched_at = db.fetched_at, described = adv_db.describe(db, now) }
    end
    if not why then
      local names = {}
      for _, d in ipairs(pinned) do names[#names + 1] = pep440.normalize_name(d.name) end
      local aerr
      advisories, aerr = require("novapipe.security.osv").load(db.path, read_zip(cfg), names)
      if not advisories and db.origin == "given" then return { status = "error", reason = "advisories: " .. aerr } end
      if not advisories then
        why = ("the advisory database %s cannot be read (%s): run 'novapipe advisories update'"):format(db.path, aerr)
      elseif aerr == 0 then
        why = ("the advisory database %s holds no advisories"):format(db.path)
      end
      records = aerr
    end
    if why then
      stage_result = unchecked(result, deps, pinned, unpinned, why, required, required_why)
    else
      result.checked = true
      local vulns = require("novapipe.security.fingerprint").dependencies(
        require("novapipe.security.osv").match(pinned, advisories))
      local kept, ignored, expired = require("novapipe.security.waivers").apply(vulns, sec.ignore, function(w, v)
        if w.package and pep440.normalize_name(w.package) ~= pep440.normalize_name(v.package) then return false end
        if w.id == v.id then return true end
        for _, a in ipairs(v.aliases) do
          if a == w.id then return true end
        end
        return false
      end)
      result.vulnerabilities, result.ignored, result.expired_ignores = json.array(kept), json.array(ignored), json.array(expired)
      result.advisory_count = records
      result.new = #known_findings(state, "dependency", kept)
      result.note = ("%d pinned package(s) checked against %d advisories from %s: %d known vulnerabilit%s%s.")
        :format(#pinned, records, adv_db.describe(db, now), #kept, #kept == 1 and "y" or "ies",
          #ignored > 0 and (", " .. #ignored .. " ignored") or "")
      for _, v in ipairs(kept) do
        details[#details + 1] = ("%s %s: %s %s (%s)%s"):format(v.package, v.version, v.id, v.summary,
          #v.fixed > 0 and ("fixed in " .. table.concat(v.fixed, ", ")) or "no fixed version", KNOWN[v.baseline] or "")
      end
      stale_details(state, "dependency", details)
      for _, w in ipairs(expired) do
        details[#details + 1] = ("ignore of %s expired on %s: it no longer applies"):format(w.id, w.expires)
      end
      -- with a baseline, only new findings count toward the threshold
      local over = result.new > sec.thresholds.vulnerabilities
      result.status = over and "failed" or "passed"
      stage_result = {
        status = result.status,
        summary = ("%d package(s), %d pinned, %d vulnerable%s, %d unpinned"):format(#deps, #pinned,
          #result.vulnerabilities, baseline_summary(state, result.vulnerabilities, result.new), #unpinned),
        notes = { ("checked against %d advisories: %s"):format(records, adv_db.describe(db, now)) },
      }
    end
    if #unpinned > 0 then
      details[#details + 1] = ("%d requirement(s) not pinned to one version, so not verifiable:"):format(#unpinned)
      for _, u in ipairs(unpinned) do details[#details + 1] = ("  %s %s (%s)"):format(u.name, u.spec, u.source) end
    end
    if state.report then
      local path, werr = write_report(state, ("dependency_report_%s.json"):format(state.stamp),
        json.pretty(result) .. "\n", "dependency scan")
      if not path then return { status = "error", reason = werr } end
    end
    stage_result.details = #details > 0 and details or nil
    return stage_result
  end }
end

-- The baseline in the combined report: where it is, how many findings it
-- knew and did not, and its entries no longer found; nil without one.
local function baseline_report(state)
  local b = state.baseline
  if not b then return nil end
  local known, new, stale = 0, 0, json.array()
  for _, list in ipairs({ state.phi and state.phi.findings or {}, state.deps and state.deps.vulnerabilities or {} }) do
    for _, f in ipairs(list) do
      if f.baseline == "new" then new = new + 1 else known = known + 1 end
    end
  end
  for _, kind in ipairs({ "phi", "dependency" }) do
    for _, e in ipairs(b.stale[kind] or {}) do stale[#stale + 1] = e end
  end
  return { path = b.path, updated = b.update == true, known = known, new = new, stale = stale }
end

-- Whether a stage of this run ended in an error; its reason.
local function errored(state, name)
  local r = state.results[name]
  if r and r.status == "error" then return r.reason or "an error" end
end

---The baseline stage (--update-baseline): writes the baseline of the
---findings the PHI audit and the dependency scan kept (waived ones are not
---recorded). When the dependencies were not checked, the old baseline's
---dependency entries are kept: a run that could not look does not say they
---were fixed.
local function baseline_stage(state)
  return pipeline.stage { name = "security-baseline", run = function()
    local b = state.baseline
    for _, name in ipairs({ "phi-audit", "dependencies" }) do
      local why = errored(state, name)
      if why then return { status = "skipped", reason = ("not written: %s ended in an error"):format(name) } end
    end
    local entries, kept_old = {}, 0
    for _, f in ipairs(state.phi and state.phi.findings or {}) do entries[#entries + 1] = baseline.phi_entry(f) end
    if state.deps and state.deps.checked then
      for _, v in ipairs(state.deps.vulnerabilities) do entries[#entries + 1] = baseline.dependency_entry(v) end
    else
      for _, e in ipairs(b.file and b.file.entries or {}) do
        if e.kind == "dependency" then
          entries[#entries + 1] = e
          kept_old = kept_old + 1
        end
      end
    end
    local ok, err = state.sink:write(b.path, baseline.encode(entries), "security baseline")
    if not ok then return { status = "error", reason = ("--update-baseline: %s"):format(err) } end
    local details = { "the findings in it are known from now on: they do not fail this run or the next ones" }
    if b.replaced then details[#details + 1] = "replaced a baseline that could not be used: " .. b.replaced end
    if kept_old > 0 then
      details[#details + 1] = ("%d dependency entr%s kept from the old baseline: the dependencies were not checked")
        :format(kept_old, kept_old == 1 and "y" or "ies")
    end
    return { status = "passed", summary = ("wrote %s: %s"):format(b.path, baseline.describe(entries)), details = details }
  end }
end

---The SARIF stage: the findings as SARIF 2.1.0 in <output dir>/security.sarif.
local function sarif_stage(state)
  return pipeline.stage { name = "security-sarif", run = function()
    local sarif = require "novapipe.security.sarif"
    local errs = {}
    for _, name in ipairs({ "phi-audit", "dependencies" }) do
      local why = errored(state, name)
      if why then errs[#errs + 1] = ("%s: %s"):format(name, why) end
    end
    local b = state.baseline
    local stale = {}
    for _, kind in ipairs({ "phi", "dependency" }) do
      for _, e in ipairs(b and not b.update and b.stale[kind] or {}) do stale[#stale + 1] = e end
    end
    local path = state.dir .. "/" .. sarif.FILE
    local log = sarif.log({ root = lfs.currentdir(), version = require("novapipe.host").version, phi = state.phi,
      deps = state.deps, errors = errs, baseline = b and { path = b.path, stale = stale } or nil, mask = state.sink.mask })
    local ok, err = state.sink:write(path, json.pretty(log) .. "\n", "security findings (SARIF)")
    if not ok then return { status = "error", reason = err } end
    local results = log.runs[1].results
    local new = 0
    for _, r in ipairs(results) do if r.baselineState == "new" then new = new + 1 end end
    return { status = "passed", summary = ("%d result(s)%s in %s"):format(#results,
      b and not b.update and (" (" .. new .. " new)") or "", path) }
  end }
end

---A Python regular expression for coverage.py's `--contexts` that matches
---the contexts novapipe's plugin records for one test: its key (the sha256
---of the project's secret and its node id, as in the run record), then
---`|setup`, `|run` or `|teardown`.
---@param secret string
---@param id string
---@return string
function M.context_pattern(secret, id)
  return "^" .. require("novapipe.run.record").key(secret, id) .. "\\|"
end

-- The security tests' results from the main group's run of `tier` in this
-- pipeline (`all`), as a stage result, or nil when that tier did not run
-- there (or was cut short by its timeout): then the security group runs
-- them itself. A collection error counts, as it would in a run of its own.
local function from_main(ctx, tier)
  local main = ctx.tier_results and ctx.tier_results[tier]
  if not main or not main.tests or main.timed_out then return nil end
  local sub = require("novapipe.pytest.results").subset(main.tests, function(t)
    if t.collect then return true end
    for _, m in ipairs(t.markers or {}) do if m == "security" then return true end end
    return false
  end)
  local r = { counts = sub.counts, tests = sub.tests, cases = sub.tests, problems = sub.problems,
              notes = { ("the security tests' results from the %s tier's run: not run again"):format(tier) } }
  if sub.counts.failed > 0 or sub.counts.errors > 0 then
    r.status = "failed"
  elseif sub.counts.tests == 0 then
    r.status, r.reason, r.summary = "empty", "no security tests in " .. tier, "no tests"
  else
    r.status = "passed"
  end
  return r
end

---The security-code coverage stage: coverage.py's JSON for the configured
---security paths, from the security tests' combined coverage data.
local function coverage_stage(state)
  return pipeline.stage { name = "security-coverage", run = function()
    local cfg = state.cfg
    local tiers = require "novapipe.tiers"
    local data = tiers.combined_data(cfg, LABEL)
    -- A configured path that is not there is named, never measured as a
    -- silent 100% of nothing.
    local paths, warnings = {}, {}
    for _, p in ipairs(cfg.security.coverage_paths) do
      if lfs.attributes(p) then
        paths[#paths + 1] = p
      else
        warnings[#warnings + 1] = ("%s (security.coverage_paths) does not exist: no security code measured there")
          :format(p)
      end
    end
    state.coverage = { paths = json.array(paths), files = json.array(), warnings = json.array(warnings) }
    local function result(r)
      r.warnings = #warnings > 0 and warnings or nil
      return r
    end
    if #paths == 0 then
      state.coverage.summary = "No security code measured: none of security.coverage_paths exists."
      return result { status = "skipped", neutral = true, reason = "none of security.coverage_paths exists" }
    end
    local exe, err = python.find({ "coverage" }, cfg.python)
    local contexts
    if next(state.taken) then
      -- The security tests' results came from the main tiers' runs: their
      -- lines are those those runs recorded for them (coverage.py's
      -- contexts), with what importing the tests ran, as a run of the
      -- security tests alone would import them too; and what the security
      -- group ran itself, for tiers the main group did not run.
      local main = tiers.combined_data(cfg)
      if lfs.attributes(main) then
        if not exe then return { status = "error", reason = err } end
        local mixed = tiers.combined_data(cfg, LABEL .. "-all")
        os.remove(mixed)
        local argv = { exe, "-m", "coverage", "combine", "--keep", "-q", "--data-file=" .. mixed, main }
        if lfs.attributes(data) then argv[#argv + 1] = data end
        local r, perr = process.run(argv, { stdin = "null" })
        if not r then return { status = "error", reason = "coverage combine: " .. perr } end
        if r.code ~= 0 then return { status = "error", reason = "coverage combine failed: " .. (r.stderr or "") } end
        local ok, aerr = state.sink:adopt(mixed, "coverage data, security tests", { kind = "bytes" })
        if not ok then return { status = "error", reason = aerr } end
        data = mixed
        local secret, serr = require("novapipe.run.record").secret(state.sink)
        if not secret then return { status = "error", reason = "coverage contexts: " .. tostring(serr) } end
        contexts = { "^$" }
        for _, id in ipairs(state.security_ids) do contexts[#contexts + 1] = M.context_pattern(secret, id) end
      end
    end
    if not lfs.attributes(data) then
      state.coverage.summary = "No coverage data: no security test ran."
      return result { status = "skipped", neutral = true, reason = "no coverage data from the security tests" }
    end
    if not exe then return { status = "error", reason = err } end
    local include = {}
    for _, p in ipairs(paths) do include[#include + 1] = p:gsub("/+$", "") .. "/*" end
    local out = ("%s/security_coverage_%s.json"):format(state.dir, state.stamp)
    local argv = { exe, "-m", "coverage", "json", "-q", "--data-file=" .. data,
      "--include=" .. table.concat(include, ","), "-o", out }
    if contexts then argv[#argv + 1] = "--contexts=" .. table.concat(contexts, ",") end
    local r, perr = process.run(argv, { stdin = "null" })
    if not r then return { status = "error", reason = "coverage json: " .. perr } end
    if r.code ~= 0 then
      local said = ((r.stdout or "") .. (r.stderr or "")):gsub("%s+$", "")
      if said:find("No data to report") then
        state.coverage.summary = ("The security tests ran no code under %s."):format(table.concat(paths, ", "))
        return result { status = "passed", summary = "no code measured under " .. table.concat(paths, ", ") }
      end
      return { status = "error", reason = "coverage json failed: " .. said:match("[^\n]*$") }
    end
    local adopted, aerr = state.sink:adopt(out, "security-code coverage", { kind = "text" })
    if not adopted then return { status = "error", reason = aerr } end
    local cov = json.read(out)
    local pct = cov and cov.totals and cov.totals.percent_covered
    local files = {}
    for path, f in pairs(cov and cov.files or {}) do
      files[#files + 1] = { path = path, percent = ("%.1f"):format(f.summary.percent_covered) }
    end
    table.sort(files, function(a, b) return a.path < b.path end)
    state.coverage.files = json.array(files)
    state.coverage.percent = pct
    state.coverage.summary = pct and ("%.1f%% of the security code (%s) run by the security tests."):format(pct,
      table.concat(paths, ", ")) or "no totals"
    return result { status = "passed", summary = pct and ("%.1f%% of %s, JSON in %s"):format(pct, table.concat(paths, ", "), out) }
  end }
end

---The combined report stage.
local function report_stage(state)
  return pipeline.stage { name = "security-report", run = function()
    local tests = state.tests
    local phi = state.phi or { findings = {}, waived = {}, expired = {}, files = 0, status = "not run" }
    local deps = state.deps or { vulnerabilities = {}, unpinned = {}, note = "The dependency scan did not run.",
                                 status = "not run" }
    local safeguards, unknown = state.safeguards, state.unmapped
    local reasons = json.array()
    if tests.status ~= "passed" then reasons[#reasons + 1] = "security tests failed" end
    -- with a baseline, only new findings count toward the thresholds
    local new = state.baseline and not state.baseline.update and "new " or ""
    if phi.status == "failed" then
      reasons[#reasons + 1] = ("%d %sPHI finding(s), more than the threshold %d"):format(phi.new or #phi.findings,
        new, state.cfg.security.thresholds.phi)
    end
    if deps.status == "failed" then
      local n = deps.new or #deps.vulnerabilities
      reasons[#reasons + 1] = ("%d %svulnerable dependenc%s, more than the threshold %d"):format(n, new,
        n == 1 and "y" or "ies", state.cfg.security.thresholds.vulnerabilities)
    end
    local notes = json.array()
    if deps.status == "unchecked" then
      notes[#notes + 1] = "dependencies not checked: " .. tostring(deps.reason)
      if deps.required then reasons[#reasons + 1] = "dependencies not checked, and advisories are required" end
    end
    local unmet = {}
    for _, s in ipairs(safeguards) do
      if s.unmet then unmet[#unmet + 1] = s.id end
      if s.status == "no test" then
        notes[#notes + 1] = ("no test covers %s %s"):format(s.id, s.title)
      elseif s.status ~= "verified" then
        notes[#notes + 1] = ("%s %s is %s: %d of its %d test%s passed"):format(s.id, s.title, s.status, s.passed,
          #s.tests, #s.tests == 1 and "" or "s")
      end
    end
    if #unmet > 0 and not state.shard then
      reasons[#reasons + 1] = ("required safeguard%s without a passing test: %s"):format(#unmet == 1 and "" or "s",
        table.concat(unmet, ", "))
    end
    for _, w in ipairs(state.coverage and state.coverage.warnings or {}) do notes[#notes + 1] = w end
    local failed = #reasons > 0
    local data = {
      generated = os.date("!%Y-%m-%dT%H:%M:%SZ"), project = lfs.currentdir(),
      novapipe = require("novapipe.host").version,
      outcome = { status = failed and "failed" or "passed", reasons = reasons, notes = notes },
      tests = tests, safeguards = json.array(safeguards), unmapped_sections = json.array(unknown),
      phi_audit = { status = phi.status, files = phi.files, findings = json.array(phi.findings),
                    waived = json.array(phi.waived), expired_waivers = json.array(phi.expired) },
      dependencies = deps, baseline = baseline_report(state),
      coverage = state.coverage or { summary = "Security-code coverage was not measured." },
    }
    local render = require "novapipe.security.report"
    -- Whatever a test name or message holds, the report is masked too.
    local function masked(text)
      if not state.cfg.phi.enabled then return text end
      return (require("novapipe.phi").mask_text(text, state.cfg.phi))
    end
    local written = {}
    local base = ("security-report-%s"):format(state.stamp)
    for _, f in ipairs(state.formats) do
      local text = f == "html" and render.html(data) or f == "json" and render.json(data) or render.markdown(data)
      local path, err = write_report(state, base .. "." .. f, masked(text),
        ({ html = "security report (HTML)", json = "security report (JSON)", md = "security report (Markdown)" })[f])
      if not path then return { status = "error", reason = err } end
      written[#written + 1] = path
    end
    local verified = 0
    for _, s in ipairs(safeguards) do if s.status == "verified" then verified = verified + 1 end end
    return {
      status = "passed",
      summary = ("%d of %d safeguards verified; %s"):format(verified, #safeguards, #written > 0
        and table.concat(written, ", ") or "no combined report: --format names none of html, json, md"),
    }
  end }
end

-- For the specs: the TOML reader the dependency stage uses.
M._read_toml = read_toml
-- For the specs: why a known security test did not run.
M._why_not_run = why_not_run

-- The formats asked for: the combined report's (html, json, md), and
-- whether the SARIF file is.
local function split_formats(list, cfg)
  local out, seen, sarif = {}, {}, false
  for _, item in ipairs(list or cfg.security.formats) do
    for f in tostring(item):gmatch("[^,%s]+") do
      f = f:lower()
      if f == "markdown" then f = "md" end
      if f ~= "html" and f ~= "json" and f ~= "md" and f ~= "sarif" then
        errors.usage("--format: unknown format '%s' (html, json, md, sarif)", f)
      end
      if f == "sarif" then
        sarif = true
      elseif not seen[f] then
        seen[f] = true
        out[#out + 1] = f
      end
    end
  end
  return out, sarif
end

---The security stages.
---@param opts novapipe.SecurityOpts
---@return novapipe.Stage[]
function M.stages(opts)
  local cfg = opts.config or require("novapipe.run.context").config()
  local dir = opts.output_dir or cfg.security.reports
  local given = opts.formats and #opts.formats > 0 and opts.formats or nil
  local formats, sarif = split_formats(given, cfg)
  local state = {
    cfg = cfg, report = opts.report, dir = dir, stamp = os.date("%Y%m%d_%H%M%S"), formats = formats,
    -- SARIF: when the formats given name it, with or without a report;
    -- from security.formats, with a report
    sarif = sarif and (given ~= nil or opts.report), results = {},
  }
  -- The baseline, read now: a bad one is one line before anything runs.
  local bpath = opts.baseline or cfg.security.baseline or baseline.DEFAULT
  local bfile, berr = baseline.read(bpath, opts.update_baseline)
  if bfile or opts.update_baseline then
    state.baseline = { path = bpath, file = bfile, update = opts.update_baseline, stale = {},
                       replaced = berr and berr:gsub("; write it again.*$", "") }
  end
  -- The reports directory is made (0700) by the first stage that runs.
  local function prepare(c)
    state.sink = c.sink
    if (opts.report or state.sarif) and not state.dir_ready then
      local ok, err = c.sink:dir(dir)
      if not ok then return ("--output-dir %s: %s"):format(dir, err) end
      state.dir_ready = true
    end
  end
  state.taken, state.shard, state.filter = {}, opts.shard, opts.filter
  local tests = require("novapipe.tiers").stages({
    config = cfg, label = LABEL, security = true, junit = opts.report, results = dir .. "/junit",
    coverage = opts.report, tier_html = false, cases = true, verbose = opts.verbose, parallel = opts.parallel,
    jobs = opts.jobs, sequential = opts.sequential, cov_context = opts.reuse, taken = state.taken,
    shard = opts.shard, filter = opts.filter,
  })
  -- Keep each tier's result for the report; with reuse, take it from the
  -- main group's run of the tier when there was one.
  state.test_stages, state.security_ids = {}, {}
  for i, st in ipairs(tests) do
    local run = st.run
    local tier = st.name:match("^" .. LABEL .. "/(.+)$")
    tests[i] = pipeline.stage { name = st.name, needs = st.needs, run = function(c)
      local r = opts.reuse and tier and from_main(c, tier)
      if r then state.taken[tier] = true else r = run(c) end
      for _, t in ipairs(r.tests or {}) do
        if not t.collect then state.security_ids[#state.security_ids + 1] = t.id end
      end
      return r
    end }
    if st.name ~= LABEL .. "/coverage" then state.test_stages[#state.test_stages + 1] = tests[i] end
  end
  local own = { phi_stage(state), deps_stage(state, opts), safeguards_stage(state) }
  if opts.update_baseline then own[#own + 1] = baseline_stage(state) end
  if state.sarif then own[#own + 1] = sarif_stage(state) end
  if opts.report then
    own[#own + 1] = coverage_stage(state)
    own[#own + 1] = report_stage(state)
  end
  for _, st in ipairs(own) do
    local run = st.run
    st.run = function(c)
      local err = prepare(c)
      if err then return { status = "error", reason = err } end
      local r = run(c)
      state.results[st.name] = r
      return r
    end
  end
  return { tests, table.unpack(own) }
end

return M
