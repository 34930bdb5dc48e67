-- The HTML report of a run (--html FILE): the real binary and real pytest
-- on a copy of the bundled example with a failing test, an erroring
-- fixture, a strict xpass and PHI in a test's name and message; the page
-- rendered in headless Chromium and checked against the run's record, row
-- by row, and by a screenshot.
local json = require "novapipe.json"
local lfs = require "lfs"
local record = require "novapipe.run.record"
local H = require "spec.support.h"


-- Besides H.failing_clinic's failures: PHI in a test's id and message,
-- and a skip with its reason.
local MORE = [[


@_p.mark.parametrize("ssn", ["219-09-9999"])
def test_ssn_stays_hidden(ssn):
    assert ssn.startswith("***"), "patient 219-09-9999 (jane.roe@gmail.com) leaked"


@_p.mark.skip(reason="needs the lab's scanner")
def test_scanner():
    pass
]]

-- Text as Chromium serializes it (text: & < > and no-break spaces as
-- entities; attribute values: & and " too), back to what it says.
local function text_of(s)
  return (s:gsub("&(#?%w+);", { amp = "&", lt = "<", gt = ">", quot = '"', ["#39"] = "'", nbsp = "\u{a0}" }))
end

-- The DOM holds this text as it is (a failure says what is missing, not
-- the whole page).
local function has(dom, text)
  assert.is_not_nil(dom:find(text, 1, true), "the page does not hold: " .. text)
end

describe("the HTML report of a run", function()
  local copy, page, rec, dom, chrome

  lazy_setup(function()
    copy = H.failing_clinic(MORE)
    local r = H.novapipe({ "-C", copy, "--no-color", "run", "run_tests", "--coverage", "--html", "out/report.html",
                           "--json", "out/run.json" })
    assert.equal(1, r.code, r.stdout .. r.stderr)
    -- the console names the page at its end, just before the verdict
    assert.matches("\nHTML report: out/report%.html\nfailed in [%d.]+s\n$", r.stdout)
    page = H.read(copy .. "/out/report.html")
    rec = assert(json.read(copy .. "/out/run.json"))
    chrome = H.chromium(copy)
    local d = chrome("--dump-dom", "file://" .. copy .. "/out/report.html")
    assert.equal(0, d.code, d.stderr)
    dom = d.stdout
  end)

  lazy_teardown(function()
    if copy then H.rmrf(copy) end
  end)

  it("is written through the sink: owner-only, and in the run's list of files", function()
    assert.equal("rw-------", lfs.attributes(copy .. "/out/report.html", "permissions"))
    local entry = require("cjson").decode(H.read(copy .. "/.novapipe/audit.log"):match("[^\n]+\n$"))
    local listed = false
    for _, w in ipairs(entry.reports) do listed = listed or w.path == "out/report.html" end
    assert.is_true(listed, "the audit entry does not list out/report.html")
  end)

  it("shows each failure, row by row, with its id, message and location, in the order of the record", function()
    local rows = {}
    for id, body in dom:gmatch('<article class="failure" id="failure%-%d+" data%-id="([^"]*)"[^>]*>(.-)</article>') do
      rows[#rows + 1] = {
        id = text_of(id),
        shown = text_of(assert(body:match('<code class="id">(.-)</code>'), body)),
        message = text_of(assert(body:match('<p class="message[^"]*">(.-)</p>'), body)),
        location = body:match('<code class="location">(.-)</code>'),
        longrepr = body:match('<pre class="longrepr">(.-)</pre>'),
      }
    end
    local problems = record.problems(rec.tests)
    assert.equal(4, #problems)
    assert.equal(#problems, #rows)
    for i, t in ipairs(problems) do
      assert.equal(t.id, rows[i].id)
      assert.equal(t.id, rows[i].shown)
      assert.equal(t.message or "(no message)", rows[i].message)
      assert.equal(t.location, rows[i].location and text_of(rows[i].location))
      if t.longrepr and t.longrepr ~= t.message then
        -- the report is there in full, not trimmed as on the console
        assert.equal(t.longrepr, text_of(rows[i].longrepr))
      end
    end
    local by_id = {}
    for _, row in ipairs(rows) do by_id[row.id:match("::(.+)$")] = row end
    local mask = by_id.test_mask_keeps_last_two_digits
    assert.equal("AssertionError: assert 'MRN-****42' == 'MRN-****43'", mask.message)
    assert.equal("backend/app/tests/standalone/test_patients.py:17", mask.location)
    assert.matches("E%s+AssertionError", mask.longrepr)
    assert.equal("RuntimeError: database not reachable", by_id.test_uses_broken.message)
    assert.equal("[XPASS(strict)] should fail", by_id.test_strict_xpass.message)
    has(dom, '<h3><span class="badge error">ERROR</span> <code class="id">'
      .. "backend/app/tests/standalone/test_twin.py::test_uses_broken</code>")
  end)

  it("masks PHI in a test's name, its message and its report", function()
    for _, text in ipairs({ page, dom }) do
      assert.is_nil((text:find("219-09-9999", 1, true)))
      assert.is_nil((text:find("jane.roe@gmail.com", 1, true)))
    end
    has(dom, 'data-id="backend/app/tests/standalone/test_twin.py::test_ssn_stays_hidden[[PHI:ssn]]"')
    has(dom, '<p class="message">AssertionError: patient [PHI:ssn] ([PHI:email]) leaked</p>')
  end)

  it("has the counts of the run record: the totals and each stage's", function()
    for _, k in ipairs({ "tests", "passed", "failed", "errors", "skipped", "xfailed", "xpassed", "flaky", "quarantined" }) do
      local n = dom:match('<div class="[^"]*" data%-count="' .. k .. '"><b>(%d+)</b>')
      assert.equal(rec.totals[k], tonumber(n), k)
    end
    assert.same({ tests = 14, passed = 9, failed = 3, errors = 1, skipped = 1, xfailed = 0, xpassed = 0,
                  flaky = 0, quarantined = 0 }, rec.totals)
    local seen = {}
    for name, status, row in dom:gmatch('<tr class="%a+" data%-stage="([^"]+)" data%-status="(%a+)">(.-)</tr>') do
      local counts = {}
      for k, n in row:gmatch('data%-count="(%a+)">(%d+)<') do counts[k] = tonumber(n) end
      seen[#seen + 1] = { name = name, status = status, counts = next(counts) and counts or nil }
    end
    assert.equal(#rec.stages, #seen)
    for i, s in ipairs(rec.stages) do
      assert.equal(s.name, seen[i].name)
      assert.equal(s.status, seen[i].status)
      assert.same(s.counts, seen[i].counts)
    end
    has(dom, '<p id="verdict" data-exit="1"><span class="badge failed">failed</span> exit 1: a test failed</p>')
    -- the slowest test, and the skip with its reason
    assert.is_not_nil(dom:find('<tr class="ok" data%-id="backend/app/tests/standalone/test_twin%.py::test_slow">'
      .. '<td class="n">0%.%d%d s</td>'), "no row for test_slow among the slowest")
    has(dom, "<td class=\"n\">1</td><td>Skipped: needs the lab's scanner</td>")
  end)

  it("is self-contained: no script, no stylesheet or image to fetch, links relative to the page", function()
    for _, text in ipairs({ page, dom }) do
      for _, bad in ipairs({ "<script", "<link", "<img", "<iframe", "<object", "<embed", " src=", "url(", "@import",
                             "http:", "https:", "<[^>]- on%a+=" }) do
        assert.is_nil(text:lower():find(bad, 1, bad:find("%", 1, true) == nil), "the page holds " .. bad)
      end
    end
    local links = {}
    for href in dom:gmatch('<a[^>]- href="([^"]*)"') do
      href = text_of(href)
      if href:sub(1, 1) ~= "#" then
        assert.is_nil(href:find(":", 1, true), href)
        assert.is_not_nil(lfs.attributes(copy .. "/out/" .. href:gsub("%%(%x%x)", function(x)
          return string.char(tonumber(x, 16)) end)), href .. " leads nowhere")
        links[#links + 1] = href
      end
    end
    has(dom, '<a href="../backend/coverage_html/combined/index.html" data-report="coverage">combined</a>')
    assert.is_true(#links >= 4, "too few links: " .. #links)
  end)

  it("draws in Chromium: a screenshot of the page is a PNG of the window's size with content", function()
    local shot = copy .. "/page.png"
    local s = chrome("--window-size=1280,2000", "--screenshot=" .. shot, "file://" .. copy .. "/out/report.html")
    assert.equal(0, s.code, s.stderr)
    local png = H.read(shot)
    assert.equal("\137PNG\r\n\26\n", png:sub(1, 8))
    assert.equal("IHDR", png:sub(13, 16))
    local width, height = string.unpack(">I4I4", png, 17)
    assert.equal(1280, width)
    assert.equal(2000, height)
    -- a blank page of this size compresses to a few kilobytes
    assert.is_true(#png > 40000, "the screenshot is too small to hold the page: " .. #png .. " bytes")
  end)

  it("filters to what failed without JavaScript: #only-problems hides what passed", function()
    -- The page has no script; this harness page around it has, to ask
    -- the browser what it lays out in each view.
    local harness = copy .. "/harness.html"
    local url = "file://" .. copy .. "/out/report.html"
    H.write(harness, ([[<!DOCTYPE html><html><body><pre id="out">not loaded</pre>
<iframe id="all" src="%s" width="1280" height="900"></iframe>
<iframe id="problems" src="%s#only-problems" width="1280" height="900"></iframe>
<script>
function view(id) {
  var d = document.getElementById(id).contentDocument;
  function shown(sel) {
    var n = 0;
    d.querySelectorAll(sel).forEach(function (e) { if (e.offsetParent !== null) n++; });
    return n;
  }
  return { stages: shown("#stages tbody tr"), failures: shown("article.failure"), slowest: shown("#slowest tbody tr"),
           slow_problems: d.querySelectorAll("#slowest tr.problem").length, skipped: shown("#skipped"),
           overflow: d.documentElement.scrollWidth > d.documentElement.clientWidth };
}
var left = 2;
function loaded() {
  if (--left) return;
  document.getElementById("out").textContent = JSON.stringify({ all: view("all"), problems: view("problems") });
}
document.getElementById("all").onload = loaded;
document.getElementById("problems").onload = loaded;
</script></body></html>]]):format(url, url))
    local r = chrome("--allow-file-access-from-files", "--virtual-time-budget=10000", "--dump-dom", "file://" .. harness)
    assert.equal(0, r.code, r.stderr)
    local views = json.decode(text_of(assert(r.stdout:match('<pre id="out">(.-)</pre>'))))
    local failed_stages = 0
    for _, s in ipairs(rec.stages) do
      if s.status == "failed" or s.status == "error" then failed_stages = failed_stages + 1 end
    end
    local slow = views.all.slow_problems
    assert.same({ stages = #rec.stages, failures = 4, slowest = views.all.slowest, slow_problems = slow, skipped = 1,
                  overflow = false }, views.all)
    assert.is_true(views.all.slowest >= 1)
    assert.same({ stages = failed_stages, failures = 4, slowest = slow, slow_problems = slow, skipped = 0,
                  overflow = false }, views.problems)
    assert.is_true(failed_stages < #rec.stages)
  end)
end)
