-- The run report: a run record (novapipe.run.record) as one HTML page
-- for people. Self-contained (styles inline, no scripts, no external
-- assets: it opens from disk and as a CI artifact) and compact, so that it
-- stays usable with 10,000 tests: one row per test only for the failures
-- and the slowest; passing tests are counts, per stage and per file. The
-- filter "only what failed" is CSS (`:target`), not JavaScript.
--
-- This module renders; the html reporter (novapipe.reporters.html) writes
-- the page through the run's sink, which masks its text and attribute
-- values for PHI. Every text here is escaped for HTML.
local record = require "novapipe.run.record"

local M = {}

---How many of the slowest tests the page lists unless told otherwise.
M.SLOWEST = 10
---Bytes of pytest's reports (longrepr) the page holds in full, in all: a
---report that would pass this is left out with a line saying so (the run
---record keeps every one).
M.LONGREPR_BUDGET = 1048576
---Distinct skip reasons listed.
M.MAX_SKIP_REASONS = 100

local ESC = { ["&"] = "&amp;", ["<"] = "&lt;", [">"] = "&gt;", ['"'] = "&quot;", ["'"] = "&#39;" }

---A text escaped for HTML, as text or as a double-quoted attribute value:
---& < > " ' as entities; terminal colour codes taken out and other control
---characters (but tab and newline) shown as U+FFFD.
---@param s any
---@return string
function M.escape(s)
  s = tostring(s == nil and "" or s)
  if s:find("%c") then
    s = s:gsub("\27%[[%d;?]*[%a@]", ""):gsub("\r\n", "\n"):gsub("[\0-\8\11-\31\127]", "\u{FFFD}")
  end
  return (s:gsub("[&<>\"']", ESC))
end
local esc = M.escape

local COUNT_KEYS, COUNT_OF = record.COUNT_KEYS, record.COUNT_OF

---What each exit code means, as the page says it: {badge, words}.
M.VERDICTS = {
  [0] = { "passed", "every requested test passed" },
  [1] = { "failed", "a test failed" },
  [2] = { "error", "a usage, configuration or environment error (a stage could not do its work)" },
  [130] = { "interrupted", "interrupted (Ctrl-C or SIGTERM); every child process was ended" },
}

local CSS = [[
:root{color-scheme:light}
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:1.5rem auto;max-width:80rem;padding:0 1rem;color:#1b1f24;line-height:1.4}
h1{margin:0 0 .3rem;font-size:1.6rem}h2{margin:1.8rem 0 .5rem;border-bottom:1px solid #d0d7de;padding-bottom:.2rem;font-size:1.25rem}
h3{margin:0 0 .3rem;font-size:1rem;font-weight:600}
table{border-collapse:collapse;width:100%;margin:.4rem 0}th,td{border:1px solid #d0d7de;padding:.25rem .5rem;text-align:left;vertical-align:top}
th{background:#f6f8fa;font-weight:600}td.n,th.n{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
td.bad,.files td.b{color:#a40e26;font-weight:600}.files td:nth-child(n+3),.files th:nth-child(n+3){text-align:right}
.files td:nth-child(2){font-family:ui-monospace,"SFMono-Regular",Menlo,Consolas,monospace;font-size:.86em;overflow-wrap:anywhere}td.zero{color:#8c959f}td.note{overflow-wrap:anywhere;min-width:10rem}td.name{white-space:nowrap}
code,pre{font-family:ui-monospace,"SFMono-Regular",Menlo,Consolas,monospace;font-size:.86em}
code{overflow-wrap:anywhere}pre{background:#f6f8fa;border:1px solid #d0d7de;border-radius:6px;padding:.6rem;overflow:auto;max-height:40rem;white-space:pre}
.badge{display:inline-block;padding:.05rem .5rem;border-radius:1rem;font-weight:600;font-size:.8rem;white-space:nowrap}
.passed{background:#dafbe1;color:#116329}.failed,.error,.interrupted{background:#ffebe9;color:#a40e26}
.skipped,.empty,.unchecked{background:#fff8c5;color:#7d4e00}.xfailed,.xpassed{background:#ddf4ff;color:#0a3069}
.muted{color:#57606a}.tiles{display:flex;flex-wrap:wrap;gap:.5rem;margin:.8rem 0}
.tile{border:1px solid #d0d7de;border-radius:6px;padding:.4rem .8rem;min-width:5.5rem}.tile b{display:block;font-size:1.4rem;font-variant-numeric:tabular-nums}
.tile.bad{border-color:#ff8182;background:#fff5f5}.tile.zero{color:#8c959f}
#verdict{font-size:1.1rem;margin:.3rem 0}nav{margin:.6rem 0}nav a{margin-right:.9rem}
.filters a{display:inline-block;padding:.15rem .6rem;border:1px solid #d0d7de;border-radius:1rem;text-decoration:none;color:#0969da}
.failure{content-visibility:auto;contain-intrinsic-size:auto 9rem;border:1px solid #ff8182;border-left:4px solid #cf222e;border-radius:6px;padding:.6rem .8rem;margin:.6rem 0}
.failure p{margin:.2rem 0}.failure .message{white-space:pre-wrap;font-weight:600}
details>summary{cursor:pointer;color:#0969da}.filter-note{display:none}
#only-problems:target~main .ok{display:none}#only-problems:target~main .filter-note{display:block}
#only-problems:target~header .filters a.all{border-color:#d0d7de;font-weight:400}
#only-problems:target~header .filters a.problems{border-color:#0969da;font-weight:600}
.filters a.all{border-color:#0969da;font-weight:600}
]]

local function seconds(d)
  return ("%.2f s"):format(tonumber(d) or 0)
end

local function badge(status)
  return ('<span class="badge %s">%s</span>'):format(esc(status), esc(status))
end

-- A count's cell: zero greyed, failures and errors above zero marked.
local function count_cell(key, n)
  if n == nil then return '<td class="n"></td>' end
  local class = n == 0 and "n zero" or ((key == "failed" or key == "errors") and "n bad" or "n")
  return ('<td class="%s" data-count="%s">%d</td>'):format(class, key, n)
end

local function count_headers()
  return '<th class="n">tests</th><th class="n">passed</th><th class="n">failed</th><th class="n">errors</th>'
    .. '<th class="n">skipped</th><th class="n">xfailed</th><th class="n">xpassed</th>'
    .. '<th class="n">flaky</th><th class="n">quarantined</th>'
end

local function is_problem(t)
  return t.outcome == "failed" or t.outcome == "error" or t.also == "failed"
end

-- The line count of a text.
local function lines_in(s)
  local _, n = s:gsub("\n", "")
  return n + (s:sub(-1) == "\n" and 0 or 1)
end

---@class novapipe.ReportOpts
---@field reports? {path: string, what: string}[] the files the run wrote (default: the record's `reports`)
---@field href? fun(path: string): string|nil the link to a report from the page, nil for none (default: the path as it is)
---@field slowest? integer how many of the slowest tests to list (default M.SLOWEST; 0: none)
---@field version? string novapipe's version, for the footer
---@field record_path? string where the run record was written, named in the footer

-- The page's parts, each appending to o.
local function header(o, rec, opts, problems)
  local v = M.VERDICTS[rec.exit] or { "error", "exit " .. tostring(rec.exit) }
  local args = table.concat(rec.args or {}, " ")
  o[#o + 1] = '<span id="only-problems"></span>'
  o[#o + 1] = "<header>"
  o[#o + 1] = ("<h1>novapipe run %s</h1>"):format(esc(rec.pipeline))
  o[#o + 1] = ('<p id="verdict" data-exit="%d">%s exit %d: %s</p>'):format(tonumber(rec.exit) or -1, badge(v[1]),
    tonumber(rec.exit) or -1, esc(v[2]))
  local meta = { ("Started %s, took %s."):format(esc(rec.started), seconds(rec.duration)) }
  meta[#meta + 1] = args ~= "" and ("Arguments: <code>%s</code>."):format(esc(args)) or "No arguments."
  if rec.pytest_args and #rec.pytest_args > 0 then
    meta[#meta + 1] = ("Given to pytest: <code>%s</code>."):format(esc(table.concat(rec.pytest_args, " ")))
  end
  o[#o + 1] = '<p class="muted">' .. table.concat(meta, " ") .. "</p>"
  o[#o + 1] = ('<nav class="filters">Show: <a class="all" href="#">everything</a>'
    .. '<a class="problems" href="#only-problems">only what failed (%d)</a></nav>'):format(#problems)
  o[#o + 1] = "</header>"
end

local function totals(o, rec)
  o[#o + 1] = '<section id="totals"><div class="tiles">'
  local t = rec.totals or {}
  for _, k in ipairs(COUNT_KEYS) do
    local n = tonumber(t[k]) or 0
    local class = n == 0 and "tile zero" or ((k == "failed" or k == "errors") and "tile bad" or "tile")
    o[#o + 1] = ('<div class="%s" data-count="%s"><b>%d</b>%s</div>'):format(class, k, n, k)
  end
  o[#o + 1] = ('<div class="tile" data-count="duration"><b>%s</b>in all</div>'):format(seconds(rec.duration))
  o[#o + 1] = "</div></section>"
end

local function stages(o, rec)
  o[#o + 1] = '<section id="stages"><h2>Stages</h2>'
  o[#o + 1] = '<p class="filter-note muted">Only the stages that failed or ended in an error are shown.</p>'
  o[#o + 1] = '<table><thead><tr><th>stage</th><th>status</th><th class="n">time</th>' .. count_headers()
    .. "<th>note</th></tr></thead><tbody>"
  for _, s in ipairs(rec.stages or {}) do
    local ok = s.status ~= "failed" and s.status ~= "error"
    local row = { ('<tr class="%s" data-stage="%s" data-status="%s"><td class="name">%s</td><td>%s</td><td class="n">%s</td>'):format(
      ok and "ok" or "problem", esc(s.name), esc(s.status), esc(s.name), badge(s.status), seconds(s.duration)) }
    for _, k in ipairs(COUNT_KEYS) do row[#row + 1] = count_cell(k, s.counts and tonumber(s.counts[k])) end
    local note = s.reason or (not s.counts and s.summary) or nil
    row[#row + 1] = '<td class="note">' .. (note and esc(note) or "") .. "</td></tr>"
    o[#o + 1] = table.concat(row)
  end
  o[#o + 1] = "</tbody></table></section>"
end

local function failures(o, problems)
  o[#o + 1] = '<section id="failures">'
  if #problems == 0 then
    o[#o + 1] = '<h2>Failures</h2><p class="muted">No test failed or errored.</p></section>'
    return
  end
  o[#o + 1] = ("<h2>Failures (%d)</h2>"):format(#problems)
  local budget = M.LONGREPR_BUDGET
  for i, t in ipairs(problems) do
    local kind = record.kind(t)
    o[#o + 1] = ('<article class="failure" id="failure-%d" data-id="%s" data-outcome="%s">'):format(i, esc(t.id),
      esc(t.outcome))
    o[#o + 1] = ('<h3><span class="badge %s">%s</span> <code class="id">%s</code> <span class="muted tier">(%s)</span></h3>')
      :format(t.outcome == "error" and "error" or "failed", esc(kind), esc(t.id), esc(t.tier or t.stage or "?"))
    local message = t.message and t.message ~= "" and t.message or nil
    o[#o + 1] = message and ('<p class="message">%s</p>'):format(esc(message))
      or '<p class="message muted">(no message)</p>'
    if t.location and t.location ~= "" then
      o[#o + 1] = ('<p class="where">at <code class="location">%s</code></p>'):format(esc(t.location))
    end
    o[#o + 1] = ('<p class="rerun muted">re-run: <code>%s</code></p>'):format(esc(record.rerun(t)))
    local long = t.longrepr
    if type(long) == "string" and long ~= "" and long ~= t.message then
      local n = lines_in(long)
      if #long <= budget then
        budget = budget - #long
        o[#o + 1] = ('<details><summary>pytest\'s report (%d line%s)</summary><pre class="longrepr">%s</pre></details>')
          :format(n, n == 1 and "" or "s", esc(long))
      else
        o[#o + 1] = ('<p class="muted">pytest\'s report (%d lines) is left out to keep this page small; '
          .. "the run record has it (the test's <code>longrepr</code>).</p>"):format(n)
      end
    end
    o[#o + 1] = "</article>"
  end
  o[#o + 1] = "</section>"
end

-- The flaky tests (passed only on a rerun) and the quarantined failures,
-- each named with what its earlier attempts or its quarantine entry said.
local function flaky(o, tests)
  local list, held = record.flaky(tests), record.quarantined(tests)
  if #list > 0 then
    o[#o + 1] = ('<section id="flaky" class="ok"><h2>Flaky (%d): passed only on a rerun</h2><ul>'):format(#list)
    for _, t in ipairs(list) do
      local n = type(t.attempts) == "table" and #t.attempts or 0
      local said = {}
      for i = 1, n - 1 do
        local a = t.attempts[i]
        said[#said + 1] = ("attempt %d: %s"):format(i, esc(type(a) == "table" and a.message or "?"))
      end
      o[#o + 1] = ('<li data-id="%s"><code>%s</code> <span class="muted">(%s, passed on attempt %d)</span><br>%s</li>')
        :format(esc(t.id), esc(t.id), esc(t.tier or t.stage or "?"), n, table.concat(said, "<br>"))
    end
    o[#o + 1] = "</ul></section>"
  end
  if #held > 0 then
    o[#o + 1] = ('<section id="quarantined" class="ok"><h2>Quarantined (%d): failed, not failing their tier</h2><ul>')
      :format(#held)
    for _, t in ipairs(held) do
      local q = type(t.quarantine) == "table" and t.quarantine or {}
      o[#o + 1] = ('<li data-id="%s"><code>%s</code> <span class="muted">(%s)</span>: %s<br>quarantined until %s: %s</li>')
        :format(esc(t.id), esc(t.id), esc(t.tier or t.stage or "?"), esc(t.message or ""), esc(q.expires or "?"),
          esc(q.why or "?"))
    end
    o[#o + 1] = "</ul></section>"
  end
end

local function slowest(o, rec, n)
  local timed = record.slowest(rec.tests or {}, n)
  if #timed == 0 then return end
  local any = false
  for _, s in ipairs(timed) do any = any or is_problem(s.t) end
  o[#o + 1] = ('<section id="slowest" class="%s"><h2>The slowest %d test%s</h2>'):format(any and "problem" or "ok",
    #timed, #timed == 1 and "" or "s")
  o[#o + 1] = '<table><thead><tr><th class="n">time</th><th>test</th><th>stage</th><th>outcome</th></tr></thead><tbody>'
  for _, s in ipairs(timed) do
    local t = s.t
    o[#o + 1] = ('<tr class="%s" data-id="%s"><td class="n">%s</td><td><code>%s</code></td><td class="name">%s</td><td>%s</td></tr>')
      :format(is_problem(t) and "problem" or "ok", esc(t.id), seconds(s.total), esc(t.id), esc(t.stage or t.tier or "?"),
        badge(t.outcome))
  end
  o[#o + 1] = "</tbody></table></section>"
end

-- Tests by stage and file: one row per file, its counts.
local function files(o, rec)
  local rows, by_key = {}, {}
  for _, t in ipairs(rec.tests or {}) do
    local file = t.file or (t.id and t.id:match("^([^:]+)")) or "?"
    local stage = t.stage or t.tier or "?"
    local key = stage .. "\0" .. file
    local row = by_key[key]
    if not row then
      row = { stage = stage, file = file, time = 0, problems = 0 }
      for _, k in ipairs(COUNT_KEYS) do row[k] = 0 end
      by_key[key] = row
      rows[#rows + 1] = row
    end
    local k = COUNT_OF[t.outcome]
    if k and not t.collect then
      row.tests = row.tests + 1
      row[k] = row[k] + 1
    elseif t.collect and t.outcome == "error" then
      row.errors = row.errors + 1
    end
    if t.also == "failed" then row.failed = row.failed + 1 end
    if is_problem(t) then row.problems = row.problems + 1 end
    row.time = row.time + (tonumber(t.duration) or 0)
  end
  if #rows == 0 then return end
  local order = {}
  for i, s in ipairs(rec.stages or {}) do order[s.name] = i end
  table.sort(rows, function(a, b)
    local oa, ob = order[a.stage] or math.huge, order[b.stage] or math.huge
    if oa ~= ob then return oa < ob end
    if a.stage ~= b.stage then return a.stage < b.stage end
    return a.file < b.file
  end)
  o[#o + 1] = ('<section id="files"><h2>Tests by file</h2><details><summary>%d file%s, %d test%s (time in seconds)</summary>')
    :format(#rows, #rows == 1 and "" or "s", #(rec.tests or {}), #(rec.tests or {}) == 1 and "" or "s")
  -- As few bytes a row as it can be (a suite of 10,000 tests has a
  -- thousand or two files): the counts right-aligned by the table's CSS,
  -- a zero left blank.
  o[#o + 1] = '<table class="files"><thead><tr><th>stage</th><th>file</th><th>time</th><th>tests</th><th>passed</th>'
    .. "<th>failed</th><th>errors</th><th>skipped</th><th>xfailed</th><th>xpassed</th><th>flaky</th><th>quarantined</th>"
    .. "</tr></thead><tbody>"
  for _, r in ipairs(rows) do
    local row = { ('<tr class="%s"><td>%s</td><td>%s</td><td>%.2f</td>'):format(r.problems > 0 and "problem" or "ok",
      esc(r.stage), esc(r.file), r.time) }
    for _, k in ipairs(COUNT_KEYS) do
      local n = r[k]
      row[#row + 1] = n == 0 and "<td></td>" or ((k == "failed" or k == "errors") and "<td class=\"b\">%d</td>"
        or "<td>%d</td>"):format(n)
    end
    row[#row + 1] = "</tr>"
    o[#o + 1] = table.concat(row)
  end
  o[#o + 1] = "</tbody></table></details></section>"
end

-- Skipped tests, one row per reason.
local function skips(o, rec)
  local reasons, list, total = {}, {}, 0
  for _, t in ipairs(rec.tests or {}) do
    if t.outcome == "skipped" then
      total = total + 1
      local why = t.message and t.message ~= "" and t.message or "(no reason given)"
      local r = reasons[why]
      if not r then
        r = { why = why, n = 0, first = t.id }
        reasons[why] = r
        list[#list + 1] = r
      end
      r.n = r.n + 1
    end
  end
  if total == 0 then return end
  table.sort(list, function(a, b) if a.n ~= b.n then return a.n > b.n end return a.why < b.why end)
  o[#o + 1] = ('<section id="skipped" class="ok"><h2>Skipped (%d)</h2>'):format(total)
  o[#o + 1] = '<table><thead><tr><th class="n">tests</th><th>reason</th><th>for example</th></tr></thead><tbody>'
  for i = 1, math.min(#list, M.MAX_SKIP_REASONS) do
    local r = list[i]
    o[#o + 1] = ('<tr><td class="n">%d</td><td>%s</td><td><code>%s</code></td></tr>'):format(r.n, esc(r.why), esc(r.first))
  end
  o[#o + 1] = "</tbody></table>"
  if #list > M.MAX_SKIP_REASONS then
    o[#o + 1] = ('<p class="muted">... and %d other reasons (the run record has each test).</p>')
      :format(#list - M.MAX_SKIP_REASONS)
  end
  o[#o + 1] = "</section>"
end

-- The links at the top (coverage HTML, the security report) and the list
-- of every file the run wrote.
local function links(reports, href)
  local coverage, security, all = {}, {}, {}
  for _, r in ipairs(reports) do
    local h = href(r.path)
    local label = esc(r.path)
    local item = h and ('<a href="%s">%s</a>'):format(esc(h), label) or ("<code>%s</code>"):format(label)
    all[#all + 1] = ('<li>%s <span class="muted">(%s)</span></li>'):format(item, esc(r.what or "report"))
    local what = r.what or ""
    if h and what:match("^coverage HTML") then
      local name = what:gsub("^coverage HTML,? ?", "")
      local link = ('<a href="%s" data-report="coverage">%s</a>'):format(esc(h), esc(name ~= "" and name or r.path))
      -- the combined report first: it is the one to open
      table.insert(coverage, name == "combined" and 1 or #coverage + 1, link)
    elseif h and what == "security report (HTML)" then
      security[#security + 1] = ('<a href="%s" data-report="security">%s</a>'):format(esc(h), esc(r.path))
    end
  end
  local main = {}
  if #coverage > 0 then main[#main + 1] = "Coverage HTML: " .. table.concat(coverage, " ") end
  if #security > 0 then main[#main + 1] = "Security report: " .. table.concat(security, " ") end
  return main, all
end

---The page of a run record, as one string of HTML.
---@param rec table a run record (schema novapipe.run/1)
---@param opts? novapipe.ReportOpts
---@return string
function M.html(rec, opts)
  opts = opts or {}
  local tests = rec.tests or {}
  local problems = record.problems(tests)
  local href = opts.href or function(p) return p end
  local o = {}
  local v = M.VERDICTS[rec.exit] or { "error" }
  o[#o + 1] = "<!DOCTYPE html>"
  o[#o + 1] = '<html lang="en"><head><meta charset="utf-8">'
  o[#o + 1] = '<meta name="viewport" content="width=device-width, initial-scale=1">'
  o[#o + 1] = ("<title>novapipe run %s: %s</title>"):format(esc(rec.pipeline), esc(v[1]))
  o[#o + 1] = "<style>" .. CSS .. "</style></head><body>"
  header(o, rec, opts, problems)
  local main_links, all_links = links(opts.reports or rec.reports or {}, href)
  o[#o + 1] = "<main>"
  if #main_links > 0 then
    o[#o + 1] = '<nav id="links">' .. table.concat(main_links, "<br>") .. "</nav>"
  end
  totals(o, rec)
  stages(o, rec)
  failures(o, problems)
  flaky(o, tests)
  slowest(o, rec, opts.slowest or M.SLOWEST)
  files(o, rec)
  skips(o, rec)
  if #all_links > 0 then
    o[#o + 1] = ('<section id="reports" class="ok"><h2>Files this run wrote</h2><details><summary>%d before this page'
      .. "</summary><ul>"):format(#all_links)
    for _, l in ipairs(all_links) do o[#o + 1] = l end
    o[#o + 1] = "</ul></details></section>"
  end
  o[#o + 1] = "</main>"
  local foot = ("Written by novapipe%s from the run record (schema <code>%s</code>)"):format(
    opts.version and (" " .. esc(opts.version)) or "", esc(rec.schema or record.SCHEMA))
  if opts.record_path then foot = foot .. (", which has every test: <code>%s</code>"):format(esc(opts.record_path)) end
  o[#o + 1] = ('<footer><p class="muted">%s. Every text is masked for PHI.</p></footer>'):format(foot)
  o[#o + 1] = "</body></html>"
  return table.concat(o, "\n") .. "\n"
end

return M
