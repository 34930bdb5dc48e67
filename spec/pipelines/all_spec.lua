-- The main job on the bundled example: real pytest, a real PostgreSQL.
local H = require "spec.support.h"
local lfs = require "lfs"

describe("pipelines/all.lua on the bundled example", function()
  local copy
  before_each(function()
    -- A copy, so reports written by the run do not land in the source tree.
    copy = H.clinic()
  end)
  after_each(function() H.rmrf(copy) end)

  it("passes every tier, the integration tier against PostgreSQL, with JUnit and coverage", function()
    local r = H.novapipe({ "-C", copy, "--no-color", "run", "pipelines/all.lua", "--list-reports" },
      { env = { DATABASE_URL = false } })
    assert.equal(0, r.code, r.stdout .. r.stderr)
    for _, tier in ipairs({ "standalone", "venv", "integration" }) do
      assert.matches("PASS%s+" .. tier .. "[^\n]*%d+ passed", r.stdout)
      assert.is_not_nil(lfs.attributes(copy .. "/backend/test-results/" .. tier .. "-results.xml"))
      assert.is_not_nil(lfs.attributes(copy .. "/backend/coverage_html/" .. tier .. "_tests/index.html"))
    end
    -- coverage: the total, then a line a tier (test files left out)
    assert.matches("PASS%s+coverage[^\n]*total %d+%%, HTML in backend/coverage_html/combined\n"
      .. "      standalone   %d+%%\n      venv         %d+%%\n      integration  %d+%%\n", r.stdout)
    assert.is_nil(H.read(copy .. "/backend/coverage_html/combined/index.html"):find("backend/app/tests", 1, true))
    -- each test counted once: the security tests ran in their tiers too
    local counted = 0
    for _, tier in ipairs({ "standalone", "venv", "integration" }) do
      counted = counted + tonumber(r.stdout:match("\n  " .. tier .. "%s+PASS%s+[%d.]+s  (%d+) passed"))
    end
    assert.matches("\nTotal: " .. counted .. " tests: " .. counted .. " passed\n", r.stdout)
    assert.is_not_nil(lfs.attributes(copy .. "/backend/coverage_html/combined/index.html"))
    -- test_the_database_is_postgresql ran and passed in the integration tier
    local xml = H.read(copy .. "/backend/test-results/integration-results.xml")
    assert.matches('name="test_the_database_is_postgresql"', xml)
    assert.is_nil(xml:find("<failure", 1, true))
    -- then security, with its report, and the list of everything written;
    -- every test ran once: the security stages took the tiers' results
    -- (no pytest wrote the security stages' JUnit), and the security-code
    -- coverage came from the tiers' runs, by test
    assert.matches("PASS%s+security/integration[^\n]*%d+ passed", r.stdout)
    assert.matches("the security tests' results from the integration tier's run: not run again", r.stdout)
    assert.is_nil(lfs.attributes(copy .. "/backend/security-reports/junit"))
    -- (all of it, as when the security tests ran alone: importing alone would not cover it all)
    assert.matches("PASS%s+security%-coverage[^\n]*100%.0%% of backend/app/infrastructure/security", r.stdout)
    assert.matches("PASS%s+phi%-audit[^\n]*0 finding", r.stdout)
    assert.matches("PASS%s+safeguards[^\n]*5 of 5 verified", r.stdout)
    assert.matches("PASS%s+security%-report[^\n]*5 of 5 safeguards verified", r.stdout)
    local listed = r.stdout:match("PASS%s+reports[^\n]*(.-)\n\nSummary")
    assert.is_string(listed)
    local n = 0
    for path in listed:gmatch("\n%s+(%S+)  %(") do
      n = n + 1
      assert.is_not_nil(lfs.attributes(copy .. "/" .. path), path .. " is listed but does not exist")
    end
    assert.matches("security%-report%-%d+_%d+%.html", listed)
    assert.matches("integration%-results%.xml", listed)
    assert.matches("PASS%s+reports[^\n]*" .. n .. " written", r.stdout)
    -- the run's HTML report, always written by all and named at the end,
    -- links the combined coverage and the security report from where it is
    -- without an advisory database (none in this spec's cache, no network
    -- needed): the dependency scan is unchecked, not passed, and with CI
    -- unset the exit code stays 0
    assert.matches("UNCHECKED dependencies[^\n]*\n%s+no advisory database: run 'novapipe advisories update'", r.stdout)
    assert.matches("\nHTML report: backend/test%-results/report%.html\npassed, but not checked: dependencies in [%d.]+s\n$",
      r.stdout)
    local page = H.read(copy .. "/backend/test-results/report.html")
    assert.matches('<a href="../coverage_html/combined/index.html" data-report="coverage">combined</a>', page, 1, true)
    local security = page:match('<a href="(%.%./security%-reports/security%-report%-%d+_%d+%.html)" data%-report="security">')
    assert.is_string(security)
    assert.is_not_nil(lfs.attributes(copy .. "/backend/test-results/" .. security))
    -- and the run is in the audit log, with every report's hash: those
    -- listed, and what came after the list (the run record, in .novapipe/runs
    -- and as last-run.json, and the HTML report)
    local v = H.novapipe({ "-C", copy, "audit", "verify" })
    assert.equal(0, v.code, v.stdout)
    local entry = require("cjson").decode(H.read(copy .. "/.novapipe/audit.log"):match("[^\n]+\n$"))
    -- and the run's record with its copy, the recorded durations and the
    -- HTML page, written after the list
    assert.equal(n + 4, #entry.reports)
    assert.equal(".novapipe/durations.json", entry.reports[#entry.reports - 1].path)
    assert.equal("backend/test-results/report.html", entry.reports[#entry.reports].path)
  end)

  it("fails with exit 1 and skips the later tiers when a test fails", function()
    H.write(copy .. "/backend/app/tests/standalone/test_broken_rule.py", "def test_bad():\n    assert 1 == 2\n")
    local r = H.novapipe({ "-C", copy, "--no-color", "run", "all" })
    assert.equal(1, r.code)
    assert.matches("FAIL%s+standalone", r.stdout)
    assert.matches("SKIP%s+venv", r.stdout)
    assert.matches("SKIP%s+integration", r.stdout)
    -- the coverage stage says what it does not cover
    assert.matches("PASS%s+coverage[^\n]*\n%s+note: covers only what ran: venv, integration did not run\n"
      .. "%s+standalone  %d+%%\n", r.stdout)
    -- where the reports are, in a few lines
    local reports = r.stdout:match("\nPASS%s+reports [^\n]*\n(.-)\n\nSummary")
    assert.matches("^%s+coverage: backend/coverage_html/combined/index%.html\n%s+security report: "
      .. "backend/security%-reports/security%-report%-[%d_]+%.html\n%s+every file: %-%-list%-reports", reports)
    assert.matches("PASS%s+reports [^\n]*%d+ written, in [^\n]*backend/test%-results %(%d+%)", r.stdout)
    local page = H.read(copy .. "/backend/test-results/report.html")
    assert.matches('<article class="failure" id="failure-1" data-id="backend/app/tests/standalone/test_broken_rule.py::test_bad"',
      page, 1, true)
    assert.matches('<p id="verdict" data-exit="1">', page, 1, true)
  end)
end)
