-- The Markdown reporter: appends to the file GitHub Actions names in
-- GITHUB_STEP_SUMMARY, through the run's sink (masked, never through a
-- link): the stages table, each failure in a <details> block with its
-- message, report and re-run command, the coverage total, the security
-- report's Markdown when the run made one, and the files the run wrote.
-- GitHub takes at most 1 MiB a step: what would pass it is cut, saying so.
local lfs = require "lfs"
local record = require "novapipe.run.record"

local M = {}
M.__index = M

---GitHub's limit on a step's summary, in bytes.
M.LIMIT = 1024 * 1024

---@param ctx novapipe.Context
---@param path? string the file to append to (default: $GITHUB_STEP_SUMMARY)
function M.new(ctx, path)
  path = path or os.getenv("GITHUB_STEP_SUMMARY")
  if not path or path == "" then return nil end
  return setmetatable({ sink = ctx.sink, path = path, rows = {} }, M)
end

function M:stage_end(stage, result)
  self.rows[#self.rows + 1] = { stage = stage, result = result }
end

local icons = { passed = "✅", failed = "❌", error = "❌", skipped = "⏭️", empty = "⚪", unchecked = "⚠️" }

local function cell(s)
  return (tostring(s or ""):gsub("|", "\\|"):gsub("\n", " "))
end

local function html_escape(s)
  return (tostring(s):gsub("[&<>\"]", { ["&"] = "&amp;", ["<"] = "&lt;", [">"] = "&gt;", ['"'] = "&quot;" }))
end

-- A fenced block that no run of backticks in text can close early.
local function fenced(text)
  local longest = 2
  for run in text:gmatch("`+") do longest = math.max(longest, #run) end
  local fence = string.rep("`", longest + 1)
  return fence .. "text\n" .. text:gsub("\n$", "") .. "\n" .. fence
end

-- The Failures part: a <details> block a failure.
local function failures(lines, tests)
  local list = record.problems(tests)
  if #list == 0 then return end
  lines[#lines + 1] = ("#### Failures (%d)"):format(#list)
  lines[#lines + 1] = ""
  for _, t in ipairs(list) do
    local kind = record.kind_word(t)
    lines[#lines + 1] = ("<details><summary><code>%s</code> (%s, %s): %s</summary>"):format(html_escape(t.id),
      kind, html_escape(t.tier or "?"), html_escape(t.message or ""))
    lines[#lines + 1] = ""
    if t.location then lines[#lines + 1] = ("At `%s`."):format(t.location:gsub("`", "'")) end
    lines[#lines + 1] = ""
    if t.longrepr and t.longrepr ~= "" then
      lines[#lines + 1] = fenced(t.longrepr)
      lines[#lines + 1] = ""
    end
    lines[#lines + 1] = fenced(record.rerun(t))
    lines[#lines + 1] = ""
    lines[#lines + 1] = "</details>"
    lines[#lines + 1] = ""
  end
end

-- The flaky tests and the quarantined failures, a line each.
local function flaky(lines, tests)
  local list, held = record.flaky(tests), record.quarantined(tests)
  if #list > 0 then
    lines[#lines + 1] = ("#### Flaky (%d): passed only on a rerun"):format(#list)
    lines[#lines + 1] = ""
    for _, t in ipairs(list) do
      local n = #(t.attempts or {})
      local first = t.attempts and t.attempts[1] and t.attempts[1].message or ""
      lines[#lines + 1] = ("- <code>%s</code> (%s): passed on attempt %d; attempt 1: %s"):format(html_escape(t.id),
        html_escape(t.tier or "?"), n, html_escape(first))
    end
    lines[#lines + 1] = ""
  end
  if #held > 0 then
    lines[#lines + 1] = ("#### Quarantined (%d): failed, not failing their tier"):format(#held)
    lines[#lines + 1] = ""
    for _, t in ipairs(held) do
      local q = t.quarantine or {}
      lines[#lines + 1] = ("- <code>%s</code> (%s): %s; quarantined until %s: %s"):format(html_escape(t.id),
        html_escape(t.tier or "?"), html_escape(t.message or ""), html_escape(q.expires or "?"), html_escape(q.why or "?"))
    end
    lines[#lines + 1] = ""
  end
end

function M:pipeline_end(def, outcome)
  local lines = {
    ("### novapipe: %s"):format(cell(def.description)),
    "",
    "| stage | status | time | passed | failed | errors | skipped | xfailed | xpassed | flaky | quarantined | note |",
    "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
  }
  local total = record.totals(self.rows)
  local tests, coverage = record.unique_tests(self.rows), nil
  for _, row in ipairs(self.rows) do
    local r, c = row.result, row.result.counts or {}
    if row.stage.name:match("coverage$") and r.status == "passed" then
      coverage = (r.summary or ""):match("total (%d+%%)") or coverage
    end
    lines[#lines + 1] = ("| %s | %s %s | %.2fs | %s | %s | %s | %s | %s | %s | %s | %s | %s |"):format(
      cell(row.stage.name), icons[r.status] or "", r.status, r.duration or 0,
      c.passed or "", c.failed or "", c.errors or "", c.skipped or "", c.xfailed or "", c.xpassed or "",
      c.flaky or "", c.quarantined or "",
      cell(r.reason or (not r.counts and r.summary) or nil))
  end
  lines[#lines + 1] = ("| **total** | exit %d | %.2fs | %d | %d | %d | %d | %d | %d | %d | %d | |"):format(outcome.exit,
    outcome.duration, total.passed, total.failed, total.errors, total.skipped, total.xfailed, total.xpassed,
    total.flaky, total.quarantined)
  lines[#lines + 1] = ""
  if coverage then
    lines[#lines + 1] = ("Coverage: **%s** in total."):format(coverage)
    lines[#lines + 1] = ""
  end
  flaky(lines, tests)
  failures(lines, tests)
  local written = self.sink:list()
  for _, w in ipairs(written) do
    if w.what == "security report (Markdown)" then
      local text = require("novapipe.fs").read(w.path)
      if text then
        lines[#lines + 1] = "#### Security report"
        lines[#lines + 1] = ""
        lines[#lines + 1] = text
        lines[#lines + 1] = ""
      end
    end
  end
  if #written > 0 then
    lines[#lines + 1] = "#### Files written"
    lines[#lines + 1] = ""
    for _, w in ipairs(written) do
      lines[#lines + 1] = ("- `%s`: %s"):format(w.path:gsub("`", "'"), cell(w.what))
    end
    lines[#lines + 1] = ""
  end
  local text = M.bounded(table.concat(lines, "\n") .. "\n", M.LIMIT - (lfs.attributes(self.path, "size") or 0))
  local ok, err = self.sink:append(self.path, text)
  if not ok then self.sink:error(("novapipe: cannot append the step summary: %s"):format(err)) end
end

---Text cut to at most `room` bytes at a line's end, with a line saying so.
---@param text string
---@param room integer
---@return string
function M.bounded(text, room)
  if #text <= room then return text end
  local note = "\n**The step summary was cut here: GitHub takes at most 1 MiB a step. "
    .. "The run record (`.novapipe/last-run.json`, `--json`) has everything.**\n"
  local keep = text:sub(1, math.max(0, room - #note))
  keep = keep:match("^(.*\n)") or ""
  return keep .. note
end

return M
