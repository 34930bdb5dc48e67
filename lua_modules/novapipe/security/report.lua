-- The combined security report: one self-contained HTML page (styles
-- inline, no scripts, no external assets: it opens from disk), JSON with
-- everything, and a Markdown summary. Built from the data the security
-- stages gather (see novapipe.security).
local hipaa = require "novapipe.security.hipaa"
local json = require "novapipe.json"

local M = {}

local function esc(s)
  return (tostring(s):gsub("[&<>\"']", { ["&"] = "&amp;", ["<"] = "&lt;", [">"] = "&gt;", ['"'] = "&quot;", ["'"] = "&#39;" }))
end

---The JSON text.
function M.json(data)
  return json.pretty(data) .. "\n"
end

local function md_cell(s)
  return (tostring(s):gsub("|", "\\|"):gsub("\n", " "))
end

-- A finding's mark when a baseline knows it.
local function known(f)
  return f.baseline == "known" and " (known)" or ""
end

-- The baseline's line: where it is and what it knew.
local function baseline_line(b)
  if b.updated then return ("Baseline %s written with this run's %d finding(s)."):format(b.path, b.known) end
  return ("Baseline %s: %d finding(s) known, %d new (only new ones count toward the thresholds), %d known "
    .. "finding(s) no longer found."):format(b.path, b.known, b.new, #b.stale)
end

---The Markdown summary.
function M.markdown(data)
  local o = {}
  local function w(s) o[#o + 1] = s end
  w("# Security report")
  w("")
  w(("Generated %s for `%s`. Outcome: **%s**."):format(data.generated, md_cell(data.project), data.outcome.status))
  w("")
  for _, r in ipairs(data.outcome.reasons) do w("- " .. md_cell(r)) end
  for _, r in ipairs(data.outcome.notes) do w("- note: " .. md_cell(r)) end
  if data.baseline then w("- " .. md_cell(baseline_line(data.baseline))) end
  w("")
  w("## HIPAA technical safeguards (45 CFR 164.312)")
  w("")
  w("| Safeguard | | Tests | Passed | Failed | Not run | Findings | Status |")
  w("| --- | --- | ---: | ---: | ---: | ---: | ---: | --- |")
  for _, s in ipairs(data.safeguards) do
    w(("| %s | %s%s | %d | %d | %d | %d | %d | %s |"):format(s.id, s.title, s.required and " (required)" or "",
      #s.tests, s.passed, s.failed, s.not_run, s.findings, s.status == "verified" and s.status or ("**" .. s.status .. "**")))
  end
  w("")
  for _, s in ipairs(data.safeguards) do
    if s.status ~= "verified" and s.status ~= "no test" then
      w(("%s %s, %s:"):format(s.id, s.title, s.status))
      for _, t in ipairs(hipaa.not_passed(s)) do w(("- `%s`: %s"):format(md_cell(t[1]), md_cell(t[2]))) end
      w("")
    end
  end
  local t = data.tests
  w(("## Security tests: %s"):format(t.status))
  w("")
  w(t.summary)
  w("")
  for _, tier in ipairs(t.tiers) do
    w(("- %s: %s%s"):format(md_cell(tier.name), tier.status, tier.summary and (", " .. md_cell(tier.summary)) or ""))
  end
  for _, c in ipairs(t.cases) do
    if c.outcome == "failed" or c.outcome == "errors" then
      w(("- **%s** `%s`%s: %s"):format(c.outcome == "errors" and "error" or "failed", md_cell(c.id),
        c.location and (" (" .. md_cell(c.location) .. ")") or "", md_cell(c.message or "")))
    end
  end
  w("")
  w(("## PHI audit: %d finding(s) in %d file(s) scanned"):format(#data.phi_audit.findings, data.phi_audit.files))
  for _, f in ipairs(data.phi_audit.findings) do
    w(("- `%s:%d` %s `%s`%s"):format(md_cell(f.file), f.line, f.kind, md_cell(f.value), known(f)))
  end
  w("")
  local d = data.dependencies
  w("## Dependencies")
  w("")
  w(d.note)
  for _, v in ipairs(d.vulnerabilities) do
    w(("- **%s %s**: %s %s (%s)%s"):format(md_cell(v.package), md_cell(v.version), v.id, md_cell(v.summary),
      #v.fixed > 0 and ("fixed in " .. table.concat(v.fixed, ", ")) or "no fixed version", known(v)))
  end
  if #d.unpinned > 0 then
    w("")
    w(("Unverifiable (not pinned to one version): %d"):format(#d.unpinned))
    for _, u in ipairs(d.unpinned) do w(("- `%s` %s (%s)"):format(md_cell(u.name), md_cell(u.spec), md_cell(u.source))) end
  end
  w("")
  w("## Security code coverage")
  w("")
  w(data.coverage.summary)
  return table.concat(o, "\n") .. "\n"
end

local CSS = [[
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:2rem auto;max-width:72rem;padding:0 1rem;color:#1b1f24;line-height:1.4}
h1{margin-bottom:.2rem}h2{margin-top:2rem;border-bottom:1px solid #d0d7de;padding-bottom:.2rem}
table{border-collapse:collapse;width:100%;margin:.5rem 0}th,td{border:1px solid #d0d7de;padding:.3rem .5rem;text-align:left;vertical-align:top}
th{background:#f6f8fa}td.n{text-align:right}code{font-family:ui-monospace,monospace;font-size:.9em}td code{overflow-wrap:anywhere}
.badge{display:inline-block;padding:.1rem .5rem;border-radius:1rem;font-weight:600;font-size:.85rem}
.passed,.covered{background:#dafbe1;color:#116329}.failed,.failing,.error{background:#ffebe9;color:#a40e26}
.none,.warn{background:#fff8c5;color:#7d4e00}.muted{color:#57606a}
]]

local function badge(status)
  local class = ({ passed = "passed", verified = "covered", failed = "failed", failing = "failing", error = "error",
                   ["no test"] = "none", ["not verified"] = "none" })[status] or "warn"
  return ('<span class="badge %s">%s</span>'):format(class, esc(status))
end

---The HTML page.
function M.html(data)
  local o = {}
  local function w(s) o[#o + 1] = s end
  w("<!DOCTYPE html>")
  w('<html lang="en"><head><meta charset="utf-8">')
  w('<meta name="viewport" content="width=device-width, initial-scale=1">')
  w("<title>Security report " .. esc(data.generated) .. "</title>")
  w("<style>" .. CSS .. "</style></head><body>")
  w("<h1>Security report</h1>")
  w(('<p class="muted">Generated %s for <code>%s</code> by novapipe %s.</p>'):format(esc(data.generated),
    esc(data.project), esc(data.novapipe)))
  w(('<p id="outcome">Outcome: %s</p>'):format(badge(data.outcome.status)))
  if #data.outcome.reasons > 0 then
    w('<ul id="reasons">')
    for _, r in ipairs(data.outcome.reasons) do w("<li>" .. esc(r) .. "</li>") end
    w("</ul>")
  end
  if #data.outcome.notes > 0 then
    w('<ul id="notes">')
    for _, r in ipairs(data.outcome.notes) do w('<li class="muted">Note: ' .. esc(r) .. "</li>") end
    w("</ul>")
  end
  if data.baseline then w('<p id="baseline">' .. esc(baseline_line(data.baseline)) .. "</p>") end

  w("<h2>HIPAA technical safeguards (45 CFR 164.312)</h2>")
  w('<table id="safeguards"><thead><tr><th>Safeguard</th><th>Requirement</th><th>Tests</th><th>Passed</th>'
    .. "<th>Failed</th><th>Not run</th><th>Findings</th><th>Status</th></tr></thead><tbody>")
  for _, s in ipairs(data.safeguards) do
    w(('<tr data-safeguard="%s"><td><strong>%s</strong> %s%s</td><td>%s</td><td class="n">%d</td><td class="n">%d</td>'
      .. '<td class="n">%d</td><td class="n">%d</td><td class="n">%d</td><td>%s</td></tr>'):format(esc(s.id), esc(s.id),
      esc(s.title), s.required and ' <span class="muted">(required)</span>' or "", esc(s.text), #s.tests, s.passed,
      s.failed, s.not_run, s.findings, badge(s.status)))
  end
  w("</tbody></table>")
  local missing, unverified = {}, {}
  for _, s in ipairs(data.safeguards) do
    if s.status == "no test" then missing[#missing + 1] = s.id .. " " .. s.title
    elseif s.status ~= "verified" then unverified[#unverified + 1] = s end
  end
  if #missing > 0 then
    w('<p id="untested"><strong>No test at all for:</strong> ' .. esc(table.concat(missing, "; ")) .. ".</p>")
  else
    w('<p id="untested">Every safeguard has at least one test.</p>')
  end
  if #unverified > 0 then
    w('<div id="unverified"><p><strong>Tests exist but did not all pass for:</strong></p><ul>')
    for _, s in ipairs(unverified) do
      w(('<li data-safeguard="%s"><strong>%s %s</strong>: %s<ul>'):format(esc(s.id), esc(s.id), esc(s.title),
        esc(s.status)))
      for _, t in ipairs(hipaa.not_passed(s)) do w(("<li><code>%s</code>: %s</li>"):format(esc(t[1]), esc(t[2]))) end
      w("</ul></li>")
    end
    w("</ul></div>")
  end
  if #data.unmapped_sections > 0 then
    w('<p class="muted">hipaa markers naming no 164.312 safeguard: ' .. esc(table.concat(data.unmapped_sections, ", ")) .. "</p>")
  end

  local t = data.tests
  w(("<h2>Security tests %s</h2>"):format(badge(t.status)))
  w("<p>" .. esc(t.summary) .. "</p>")
  if #t.tiers > 0 then
    w('<table id="tiers"><thead><tr><th>Tier</th><th>Status</th><th>What ran</th></tr></thead><tbody>')
    for _, tier in ipairs(t.tiers) do
      w(("<tr><td>%s</td><td>%s</td><td>%s</td></tr>"):format(esc(tier.name), badge(tier.status), esc(tier.summary or "")))
    end
    w("</tbody></table>")
  end
  if #t.cases > 0 then
    w('<table id="tests"><thead><tr><th>Test</th><th>Outcome</th><th>Safeguards</th><th>Why</th></tr></thead><tbody>')
    for _, c in ipairs(t.cases) do
      local why = ""
      if c.outcome ~= "passed" and (c.message or c.location) then
        why = (c.location and ("<code>" .. esc(c.location) .. "</code> ") or "") .. esc(c.message or "")
      end
      w(("<tr><td><code>%s</code></td><td>%s</td><td>%s</td><td>%s</td></tr>"):format(esc(c.id), badge(c.outcome),
        esc(table.concat(c.hipaa, ", ")), why))
    end
    w("</tbody></table>")
  end

  local a = data.phi_audit
  w(("<h2>PHI audit of the test suite %s</h2>"):format(badge(a.status)))
  w(("<p>%d file(s) scanned, %d finding(s), %d waived.</p>"):format(a.files, #a.findings, #a.waived))
  if #a.findings > 0 then
    w('<table id="phi"><thead><tr><th>File</th><th>Line</th><th>Kind</th><th>Value (masked)</th></tr></thead><tbody>')
    for _, f in ipairs(a.findings) do
      w(('<tr><td><code>%s</code></td><td class="n">%d</td><td>%s</td><td><code>%s</code></td></tr>'):format(
        esc(f.file), f.line, esc(f.kind .. known(f)), esc(f.value)))
    end
    w("</tbody></table>")
  end
  for _, e in ipairs(a.expired_waivers) do
    w(('<p class="warn">Expired waiver (%s): %s: %s</p>'):format(esc(e.expires), esc(e.file), esc(e.justification)))
  end

  local d = data.dependencies
  w(("<h2>Dependencies %s</h2>"):format(badge(d.status)))
  w('<p id="dependency-note">' .. esc(d.note) .. "</p>")
  if #d.vulnerabilities > 0 then
    w('<table id="vulnerabilities"><thead><tr><th>Package</th><th>Version</th><th>Advisory</th><th>Summary</th>'
      .. "<th>Fixed in</th><th>Declared in</th></tr></thead><tbody>")
    for _, v in ipairs(d.vulnerabilities) do
      w(("<tr><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td><code>%s</code></td></tr>"):format(
        esc(v.package .. known(v)), esc(v.version), esc(v.id .. (#v.aliases > 0 and (" (" .. table.concat(v.aliases, ", ") .. ")") or "")),
        esc(v.summary), esc(#v.fixed > 0 and table.concat(v.fixed, ", ") or "none"), esc(v.source)))
    end
    w("</tbody></table>")
  end
  if #d.unpinned > 0 then
    w(("<p>Unverifiable, not pinned to one version: %d</p>"):format(#d.unpinned))
    w('<table id="unpinned"><thead><tr><th>Requirement</th><th>Why</th><th>Declared in</th></tr></thead><tbody>')
    for _, u in ipairs(d.unpinned) do
      w(("<tr><td><code>%s %s</code></td><td>%s</td><td><code>%s</code></td></tr>"):format(esc(u.name), esc(u.spec),
        esc(u.why or ""), esc(u.source)))
    end
    w("</tbody></table>")
  end

  w("<h2>Security code coverage</h2>")
  w('<p id="coverage">' .. esc(data.coverage.summary) .. "</p>")
  if data.coverage.files and #data.coverage.files > 0 then
    w('<table><thead><tr><th>File</th><th>Covered</th></tr></thead><tbody>')
    for _, f in ipairs(data.coverage.files) do
      w(('<tr><td><code>%s</code></td><td class="n">%s%%</td></tr>'):format(esc(f.path), esc(f.percent)))
    end
    w("</tbody></table>")
  end
  w("</body></html>")
  return table.concat(o, "\n") .. "\n"
end

return M
