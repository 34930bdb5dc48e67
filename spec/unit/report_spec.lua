-- The run report's renderer (novapipe.run.report) on records made here,
-- and the path arithmetic its links use. The page in a real browser, from
-- a real run, is spec/pipelines/html_spec.lua.
local path = require "novapipe.path"
local record = require "novapipe.run.record"
local report = require "novapipe.run.report"

-- A record as record.build makes it, from a runner's outcome.
local function rec_of(tests, exit)
  local counts = { tests = 0, passed = 0, failed = 0, errors = 0, skipped = 0, xfailed = 0, xpassed = 0 }
  for _, t in ipairs(tests) do
    local k = ({ error = "errors" })[t.outcome] or t.outcome
    counts[k] = counts[k] + 1
    counts.tests = counts.tests + 1
  end
  return record.build({
    pipeline = "run_tests", args = { "--standalone" }, started = 0,
    outcome = { exit = exit or 1, duration = 1.5, results = {
      { stage = { name = "standalone" }, result = { status = "failed", counts = counts, tests = tests, duration = 1 } },
      { stage = { name = "venv", needs = { "standalone" } },
        result = { status = "skipped", reason = "skipped: standalone failed", duration = 0 } },
    } },
  })
end

local function test(id, outcome, extra)
  local t = { id = "backend/app/tests/standalone/test_a.py::" .. id, tier = "standalone", outcome = outcome,
              file = "backend/app/tests/standalone/test_a.py", line = 3,
              durations = { setup = 0, call = 0.01, teardown = 0 } }
  for k, v in pairs(extra or {}) do t[k] = v end
  return t
end

describe("the run report's renderer", function()
  it("escapes & < > \" ' and takes out terminal colours and control characters", function()
    assert.equal("a &amp; b &lt;i&gt; &quot;c&quot; &#39;d&#39;", report.escape("a & b <i> \"c\" 'd'"))
    assert.equal("red \u{FFFD}bell\nnext\tcol", report.escape("\27[31mred\27[0m \7bell\r\nnext\tcol"))
    assert.equal("", report.escape(nil))
    assert.equal("12", report.escape(12))
  end)

  it("says what the exit code means, for every code novapipe exits with", function()
    for code, words in pairs({ [0] = "every requested test passed", [1] = "a test failed",
                               [2] = "a usage, configuration or environment error",
                               [130] = "interrupted" }) do
      local html = report.html(rec_of({}, code))
      local verdict = html:match('<p id="verdict" data%-exit="' .. code .. '"><span class="badge %a+">%a+</span> (.-)</p>')
      assert.equal(("exit %d: "):format(code), verdict:sub(1, #("exit %d: "):format(code)))
      assert.is_not_nil(verdict:find(words, 1, true), verdict)
    end
  end)

  it("escapes every text it shows: ids, messages, reports, arguments", function()
    local html = report.html(rec_of({
      test("test_x[<script>alert(1)</script>]", "failed", { message = "AssertionError: '<b>' & \"q\"",
        location = "backend/app/tests/standalone/test_a.py:4", longrepr = "E   <script>x</script>\nE   more" }),
    }))
    assert.is_nil((html:find("<script", 1, true)))
    assert.is_nil((html:find("'<b>'", 1, true)))
    assert.matches("<p class=\"message\">AssertionError: &#39;&lt;b&gt;&#39; &amp; &quot;q&quot;</p>", html, 1, true)
    assert.matches('data-id="backend/app/tests/standalone/test_a.py::test_x[&lt;script&gt;alert(1)&lt;/script&gt;]"', html,
      1, true)
  end)

  it("lists each failure in the order it ended, with its report in full while the budget lasts", function()
    local long = ("E   line\n"):rep(200)
    local budget = report.LONGREPR_BUDGET
    report.LONGREPR_BUDGET = #long * 2
    local html = report.html(rec_of({
      test("test_1", "failed", { message = "m1", location = "l1", longrepr = long }),
      test("test_ok", "passed"),
      test("test_2", "error", { message = "m2", location = "l2", longrepr = long }),
      test("test_3", "failed", { message = "m3", location = "l3", longrepr = long }),
      test("test_4", "failed", { message = "m4", longrepr = "m4" }),
    }))
    report.LONGREPR_BUDGET = budget
    local ids = {}
    for id in html:gmatch('<article class="failure" id="failure%-%d+" data%-id="[^"]-::(test_%w+)"') do ids[#ids + 1] = id end
    assert.same({ "test_1", "test_2", "test_3", "test_4" }, ids)
    local _, full = html:gsub('<pre class="longrepr">', "")
    assert.equal(2, full)
    assert.matches("pytest's report (200 lines) is left out to keep this page small", html, 1, true)
    -- a report that only repeats the message is not shown twice
    local last = html:match('<article class="failure" id="failure%-4".-</article>')
    assert.is_nil((last:find("<details>", 1, true)))
    assert.is_nil((last:find('class="location"', 1, true)))
    assert.matches('<span class="badge error">ERROR</span> <code class="id">[^<]*::test_2</code>', html)
  end)

  it("shows passing tests only as counts, whatever their number, and the slowest as asked", function()
    local tests = {}
    for i = 1, 3000 do tests[i] = test(("test_%04d"):format(i), "passed", { durations = { setup = 0, call = i / 1000, teardown = 0 } }) end
    tests[#tests + 1] = test("test_bad", "failed", { message = "no" })
    local rec = rec_of(tests)
    local html = report.html(rec)
    assert.is_nil((html:find("test_0001", 1, true)))
    assert.matches('<div class="tile" data%-count="passed"><b>3000</b>passed</div>', html)
    local _, rows = html:gsub('<tr class="ok" data%-id=', "")
    assert.equal(report.SLOWEST, rows)
    assert.matches('data%-id="[^"]*::test_3000"><td class="n">3%.00 s</td>', html)
    _, rows = report.html(rec, { slowest = 25 }):gsub('<tr class="ok" data%-id=', "")
    assert.equal(25, rows)
    assert.is_nil((report.html(rec, { slowest = 0 }):find('id="slowest"', 1, true)))
    assert.is_true(#html < 20000, "a page of 3,001 tests takes " .. #html .. " bytes")
  end)

  it("links the coverage HTML and the security report with the links it is given, and lists every file", function()
    local html = report.html(rec_of({}), {
      reports = { { path = "backend/coverage_html/standalone_tests", what = "coverage HTML, standalone" },
                  { path = "backend/coverage_html/combined", what = "coverage HTML, combined" },
                  { path = "backend/security-reports/security-report-1.html", what = "security report (HTML)" },
                  { path = "backend/.coverage", what = "coverage data, combined" } },
      href = function(p) return p ~= "backend/.coverage" and ("../" .. p .. "?") or nil end,
    })
    assert.matches('<nav id="links">Coverage HTML: <a href="../backend/coverage_html/combined?" data-report="coverage">'
      .. 'combined</a> <a href="../backend/coverage_html/standalone_tests?" data-report="coverage">standalone</a><br>'
      .. 'Security report: <a href="../backend/security-reports/security-report-1.html?" data-report="security">', html, 1, true)
    assert.matches("<li><code>backend/.coverage</code> <span class=\"muted\">(coverage data, combined)</span></li>", html, 1,
      true)
  end)
end)

describe("path arithmetic", function()
  it("normalizes . and .. and repeated slashes", function()
    assert.equal("a/c", path.normalize("a/./b//../c"))
    assert.equal("/", path.normalize("/x/.."))
    assert.equal("/", path.normalize("/.."))
    assert.equal("../a", path.normalize("../a"))
    assert.equal(".", path.normalize("a/.."))
    assert.equal(".", path.normalize(""))
  end)

  it("gives a path as seen from a directory", function()
    assert.equal("../coverage_html/combined/index.html",
      path.relative("/p/backend/coverage_html/combined/index.html", "/p/backend/test-results"))
    assert.equal("report.json", path.relative("/p/out/report.json", "/p/out/"))
    assert.equal("../../q/x", path.relative("/q/x", "/p/out"))
    assert.equal(".", path.relative("/p", "/p"))
    assert.equal("sub/x", path.relative("a/sub/x", "a"))
  end)
end)
