-- The console reporter: a line per stage as it ends (with its counts),
-- notes, progress (a live status line on a terminal, a plain line every
-- 15 s elsewhere), then a summary table, the totals, the slowest tests,
-- and last, so that it stays on screen, each failure with its message,
-- where it failed and the command that re-runs it, then where the HTML
-- report is when one was written (ctx.html_report), and the verdict.
-- Everything it prints passes the run's sink (masked); colour and the live
-- line come from novapipe.term.
local junit = require "novapipe.junit"
local record = require "novapipe.run.record"
local term = require "novapipe.term"
local time = require "novapipe.time"

local M = {}
M.__index = M

local marks = {
  passed = { "PASS", "green" },
  failed = { "FAIL", "red" },
  error = { "ERROR", "red" },
  skipped = { "SKIP", "yellow" },
  empty = { "EMPTY", "yellow" },
  unchecked = { "UNCHECKED", "yellow" },
}

-- A stage's badge, padded to `width` (5: every word but UNCHECKED's);
-- an unchecked stage the run requires is red.
local function badge(result, width)
  local status = result.status
  local m = marks[status] or { status:upper(), "bold" }
  local colour = status == "unchecked" and result.required and "red" or m[2]
  return term.style(("%-" .. (width or 5) .. "s"):format(m[1]), colour, "bold")
end

local function seconds(d)
  return ("%.2fs"):format(d or 0)
end

---@param ctx novapipe.Context the run's context: its sink prints
function M.new(ctx)
  local sink = ctx.sink
  return setmetatable({ ctx = ctx, sink = sink, out = function(line) sink:print(line) end, rows = {}, last_plain = {} },
    M)
end

-- A block of lines a stage has to show (analyze's summary, migrate's
-- plan): a bold title (or none) and its lines.
function M:section(title, lines, colour)
  if title then self.out(term.style(title, colour or "bold", "bold")) end
  for _, l in ipairs(lines or {}) do self.out(l) end
end

function M:note(text)
  self.out(term.style("note: ", "yellow", "bold") .. text)
end

function M:progress(stage_name, p)
  if not p then
    self.sink:status(nil)
    return
  end
  local total = p.collected and ("/%d"):format(p.collected) or ""
  local text = ("%s  %d%s tests  %d failed  %.1fs"):format(stage_name, p.done, total, p.failed, p.elapsed)
  -- tiers running at once: the others, after the one whose turn it is
  if p.also then text = text .. "  (also running: " .. table.concat(p.also, ", ") .. ")" end
  if term.live() then
    self.sink:status(text)
  else
    local now = time.now()
    local last = self.last_plain[stage_name]
    if not last then
      self.last_plain[stage_name] = now
    elseif now - last >= 15 then
      self.last_plain[stage_name] = now
      self.out(text)
    end
  end
end

-- How many lines of a failure's longer report the Failures section shows
-- without --verbose, and how many failures.
M.TRIM_LINES = 12
M.MAX_FAILURES = 30

function M:pipeline_start(pipeline, opts)
  self.verbose = opts and opts.verbose
  self.durations = opts and opts.durations
  if pipeline.description then
    self.out(term.style(pipeline.description, "bold"))
  end
end

function M:stage_start(stage)
  if term.live() then self.sink:status(("%s ..."):format(stage.name)) end
end

function M:stage_end(stage, result)
  self.sink:status(nil)
  local line = ("%s %s %s"):format(badge(result), stage.name, term.style(seconds(result.duration), "gray"))
  if result.summary and result.summary ~= "" then line = line .. "  " .. result.summary
  elseif result.counts then line = line .. "  " .. junit.describe(result.counts) end
  self.out(line)
  if result.reason then self.out("      " .. result.reason) end
  for _, n in ipairs(result.warnings or {}) do self.out("      " .. term.style("warning: ", "yellow") .. n) end
  for _, n in ipairs(result.notes or {}) do self.out("      " .. term.style("note: ", "yellow") .. n) end
  if result.details then
    for _, l in ipairs(result.details) do self.out("      " .. term.style(l, "dim")) end
  end
  self.rows[#self.rows + 1] = { stage = stage, result = result }
end

function M:pipeline_end(_, outcome)
  if #self.rows == 0 then return end
  self.out("")
  self.out(term.style("Summary", "bold"))
  local width, badge_width = 5, 5
  local any_counts = false
  local unchecked, required = {}, {}
  for _, row in ipairs(self.rows) do
    width = math.max(width, #row.stage.name)
    any_counts = any_counts or row.result.counts ~= nil
    badge_width = math.max(badge_width, #(marks[row.result.status] or { row.result.status })[1])
    if row.result.status == "unchecked" then
      table.insert(row.result.required and required or unchecked, row.stage.name)
    end
  end
  for _, row in ipairs(self.rows) do
    local r = row.result
    local line = ("  %-" .. width .. "s  %s  %8s"):format(row.stage.name, badge(r, badge_width), seconds(r.duration))
    if r.counts then line = line .. "  " .. junit.describe(r.counts) end
    self.out(line)
  end
  -- each test once, where it ran first (the security stages run tests
  -- the tiers ran already)
  local total = record.totals(self.rows)
  if any_counts then
    self.out(("Total: %d test%s: %s"):format(total.tests, total.tests == 1 and "" or "s", junit.describe(total)))
  end
  local tests = record.unique_tests(self.rows)
  self:slowest(tests)
  self:flaky(tests)
  self:quarantined(tests)
  self:failures(tests)
  if self.ctx.html_report then
    self.out("")
    self.out("HTML report: " .. self.ctx.html_report)
  end
  local verdict = ({ [0] = { "passed", "green" }, [1] = { "failed", "red" }, [2] = { "configuration error", "red" } })[outcome.exit]
    or { "exit " .. outcome.exit, "red" }
  -- A run of tests in which no test ran did not pass anything: it says so.
  if outcome.exit == 0 and any_counts and total.tests == 0 then verdict = { "no test ran", "yellow" } end
  -- Nor did a run whose stage could not check what it is for.
  if outcome.exit == 0 and #unchecked > 0 then
    verdict = { verdict[1] .. ", but not checked: " .. table.concat(unchecked, ", "), "yellow" }
  end
  if #required > 0 then verdict[1] = verdict[1] .. " (required, not checked: " .. table.concat(required, ", ") .. ")" end
  self.out(("%s in %s"):format(term.style(verdict[1], verdict[2], "bold"), seconds(outcome.duration)))
end

-- The slowest tests: --durations N of them (5 unless said; 0: none), of
-- those that took at least pytest's --durations-min default (record.slowest).

function M:slowest(tests)
  local n = self.durations
  if n == nil then n = 5 end
  local timed = record.slowest(tests, n)
  if #timed == 0 then return end
  self.out("")
  self.out(term.style(("Slowest %d test%s"):format(#timed, #timed == 1 and "" or "s"), "bold"))
  for _, s in ipairs(timed) do
    self.out(("  %7.2fs  %s  %s"):format(s.total, s.t.id, term.style("(" .. (s.t.tier or "?") .. ")", "gray")))
  end
end

-- The Flaky section: each test that passed only on a rerun, with how
-- many attempts it took and the first attempt's message.
function M:flaky(tests)
  local list = record.flaky(tests)
  if #list == 0 then return end
  self.out("")
  self.out(term.style(("Flaky (%d): passed only on a rerun"):format(#list), "yellow", "bold"))
  for _, t in ipairs(list) do
    local n = #(t.attempts or {})
    self.out(("%s %s  %s"):format(term.style("FLAKY", "yellow", "bold"), t.id,
      term.style(("(%s, passed on attempt %d of %d)"):format(t.tier or "?", n, n), "gray")))
    for i = 1, n - 1 do
      local a = t.attempts[i]
      self.out(("    attempt %d: %s%s"):format(i, a.outcome == "error" and "ERROR " or "", a.message or ""))
    end
  end
end

-- The Quarantined section: each failure a quarantine entry of novapipe.lua
-- keeps from failing its tier, with the entry's justification and expiry.
function M:quarantined(tests)
  local list = record.quarantined(tests)
  if #list == 0 then return end
  self.out("")
  self.out(term.style(("Quarantined (%d): failed, not failing their tier"):format(#list), "yellow", "bold"))
  for _, t in ipairs(list) do
    local q = t.quarantine or {}
    self.out(("%s %s  %s"):format(term.style("QUARANTINED", "yellow", "bold"), t.id,
      term.style(("(%s, %s)"):format(t.tier or "?", q.outcome == "error" and "error" or "failed"), "gray")))
    if t.message and t.message ~= "" then self.out("    " .. t.message) end
    self.out(("    quarantined until %s: %s"):format(q.expires or "?", q.why or "?"))
  end
end

-- The Failures section: each failed or errored test with its message,
-- where it failed, its report (trimmed without --verbose) and the command
-- that re-runs it.
function M:failures(tests)
  local list = record.problems(tests)
  if #list == 0 then return end
  self.out("")
  self.out(term.style(("Failures (%d)"):format(#list), "red", "bold"))
  local shown = self.verbose and #list or math.min(#list, M.MAX_FAILURES)
  for i = 1, shown do
    local t = list[i]
    local kind = record.kind(t)
    self.out(("%s %s  %s"):format(term.style(kind, "red", "bold"), t.id, term.style("(" .. (t.tier or "?") .. ")", "gray")))
    if t.message and t.message ~= "" then self.out("    " .. t.message) end
    if t.location and t.location ~= "" then self.out("    at " .. t.location) end
    if t.attempts then self.out(("    failed on every one of %d attempts (--reruns)"):format(#t.attempts)) end
    if t.longrepr and t.longrepr ~= "" and t.longrepr ~= t.message then
      local lines = {}
      for l in t.longrepr:gmatch("[^\n]+") do lines[#lines + 1] = l end
      local from = 1
      if not self.verbose and #lines > M.TRIM_LINES then
        from = #lines - M.TRIM_LINES + 1
        self.out(term.style(("    ... %d lines above (--verbose shows them, the run record keeps them)"):format(from - 1), "gray"))
      end
      for j = from, #lines do self.out("    " .. term.style(lines[j], "dim")) end
    end
    self.out("    re-run: " .. record.rerun(t))
  end
  if shown < #list then
    self.out(("... and %d more failures (--verbose shows every one; .novapipe/last-run.json has them all)"):format(#list - shown))
  end
end

return M
