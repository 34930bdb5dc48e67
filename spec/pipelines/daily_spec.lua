-- The daily loop: a failure a person can act on (the Failures section,
-- the re-run command), the slowest tests, skip reasons that name the root
-- cause, and the run record every run leaves. The real binary and real
-- pytest on a copy of the bundled example.
local fs = require "novapipe.fs"
local json = require "novapipe.json"
local lfs = require "lfs"
local process = require "novapipe.process"
local H = require "spec.support.h"

local TESTS = "/backend/app/tests/"


describe("the daily loop", function()
  local copy
  before_each(function() copy = H.failing_clinic() end)
  after_each(function() H.rmrf(copy) end)

  local function run(args, opts)
    local argv = { "-C", copy, "--no-color", "run" }
    for _, a in ipairs(args) do argv[#argv + 1] = a end
    return H.novapipe(argv, opts)
  end

  it("ends with each failure's message, where it failed and a re-run command that works when pasted", function()
    local r = run({ "run_tests" })
    assert.equal(1, r.code, r.stderr)
    local failures = r.stdout:match("\nFailures %(3%)\n(.*)$")
    assert.is_not_nil(failures, r.stdout)
    -- the Failures section is last, before the verdict alone
    assert.matches("\nfailed in [%d.]+s\n$", failures)
    local id = "backend/app/tests/standalone/test_patients.py::test_mask_keeps_last_two_digits"
    assert.is_not_nil(failures:find("FAILED " .. id .. "  (standalone)\n"
      .. "    AssertionError: assert 'MRN-****42' == 'MRN-****43'\n"
      .. "    at backend/app/tests/standalone/test_patients.py:17\n", 1, true), failures)
    assert.is_not_nil(failures:find("ERROR backend/app/tests/standalone/test_twin.py::test_uses_broken  (standalone)\n"
      .. "    RuntimeError: database not reachable\n", 1, true), failures)
    assert.is_not_nil(failures:find("FAILED backend/app/tests/standalone/test_twin.py::test_strict_xpass  (standalone)\n"
      .. "    [XPASS(strict)] should fail\n    re-run: ", 1, true), failures)
    -- the tiers after it name the root cause
    assert.matches("SKIP%s+integration[^\n]*\n%s+skipped: standalone failed\n", r.stdout)
    -- pasted into a shell in the project, the re-run command runs that test alone
    local cmd = failures:match("re%-run: (novapipe run run_tests %-%-filter [^\n]*test_mask_keeps_last_two_digits)\n")
    assert.is_not_nil(cmd, failures)
    local again = assert(process.run({ "sh", "-c", cmd:gsub("^novapipe", H.bin .. " --no-color") }, { cwd = copy }))
    assert.equal(1, again.code, again.stderr)
    assert.matches("Total: 1 test: 1 failed\n", again.stdout)
  end)

  it("shows the slowest tests, as many as --durations asks, none with 0", function()
    local r = run({ "run_tests", "--standalone" })
    -- the sleeping test first (others may pass 5 ms on a loaded machine)
    assert.matches("\nSlowest %d tests?\n%s+[%d.]+s  backend/app/tests/standalone/test_twin%.py::test_slow  %(standalone%)\n",
      r.stdout)
    r = run({ "run_tests", "--standalone", "--durations", "0" })
    assert.is_nil(r.stdout:find("Slowest", 1, true), r.stdout)
    r = run({ "run_tests", "--standalone", "--durations", "many" })
    assert.equal(2, r.code)
    assert.matches("not a whole number of at least 0", r.stderr)
  end)

  it("leaves a record of the run in .novapipe/runs, the newest as last-run.json, and with --json where asked", function()
    -- 21 records of earlier runs: after this one, the newest 20 are kept
    assert(fs.mkdir_p(copy .. "/.novapipe/runs", "0700"))
    for i = 1, 21 do
      H.write(("%s/.novapipe/runs/20200101T0000%02d000-run_tests.json"):format(copy, i), "{}\n")
    end
    local r = run({ "run_tests", "--standalone", "--json", "out/run.json" })
    assert.equal(1, r.code, r.stderr)
    local rec = assert(json.read(copy .. "/.novapipe/last-run.json"))
    assert.equal(H.read(copy .. "/.novapipe/last-run.json"), H.read(copy .. "/out/run.json"))
    assert.equal("rw-------", lfs.attributes(copy .. "/out/run.json", "permissions"))
    assert.equal("novapipe.run/1", rec.schema)
    assert.equal("run_tests", rec.pipeline)
    assert.same({ "--standalone", "--json", "out/run.json" }, rec.args)
    assert.equal(1, rec.exit)
    assert.equal("standalone", rec.stages[1].name)
    assert.equal("failed", rec.stages[1].status)
    assert.same({ tests = 12, passed = 9, failed = 2, errors = 1, skipped = 0, xfailed = 0, xpassed = 0,
                  flaky = 0, quarantined = 0 }, rec.stages[1].counts)
    assert.same(rec.stages[1].counts, rec.totals)
    local by_id = {}
    for _, t in ipairs(rec.tests) do by_id[t.id] = t end
    local t = by_id["backend/app/tests/standalone/test_patients.py::test_mask_keeps_last_two_digits"]
    assert.equal("failed", t.outcome)
    assert.equal("standalone", t.tier)
    assert.equal("AssertionError: assert 'MRN-****42' == 'MRN-****43'", t.message)
    assert.equal("backend/app/tests/standalone/test_patients.py:17", t.location)
    assert.matches("E%s+AssertionError", t.longrepr)
    assert.is_number(t.durations.call)
    assert.is_true(by_id["backend/app/tests/standalone/test_twin.py::test_slow"].duration >= 0.05)
    local kept = {}
    for name in lfs.dir(copy .. "/.novapipe/runs") do
      if name:match("%.json$") then kept[#kept + 1] = name end
    end
    table.sort(kept)
    assert.equal(20, #kept)
    assert.equal("20200101T000003000-run_tests.json", kept[1])
    assert.matches("%-run_tests%.json$", kept[20])
    assert.equal(H.read(copy .. "/.novapipe/last-run.json"), H.read(copy .. "/.novapipe/runs/" .. kept[20]))
  end)
end)

describe("pytest's habits", function()
  local copy
  before_each(function()
    copy = H.clinic()
    H.write(copy .. TESTS .. "standalone/test_habits.py", table.concat({
      "import pytest",
      "def test_a_passes():\n    pass",
      "def test_b_fails():\n    assert 1 == 2",
      "@pytest.mark.parametrize('ssn', ['219-09-9999', '000-00-0000'])",
      "def test_c_patient(ssn):\n    assert ssn.startswith('0')",
    }, "\n") .. "\n")
    assert(fs.mkdir_p(copy .. "/.novapipe", "0700"))
    H.write(copy .. TESTS .. "venv/test_venv_habits.py", "def test_v_fails():\n    assert False\n"
      .. "def test_v_passes():\n    pass\n")
  end)
  after_each(function() H.rmrf(copy) end)

  local function run(args, opts)
    local argv = { "-C", copy, "--no-color", "run", "run_tests" }
    for _, a in ipairs(args) do argv[#argv + 1] = a end
    return H.novapipe(argv, opts)
  end

  it("--lf after failures in two tiers runs exactly those tests, each in its tier, PHI in ids included", function()
    local r = run({ "--standalone", "--venv" })
    assert.equal(1, r.code, r.stderr)
    local record = H.read(copy .. "/.novapipe/last-run.json")
    assert.is_nil(record:find("219-09-9999", 1, true), "the record holds the id's SSN")
    r = run({ "--lf" })
    assert.equal(1, r.code, r.stderr)
    assert.matches("FAIL%s+standalone[^\n]*  2 failed\n", r.stdout)
    assert.matches("FAIL%s+venv[^\n]*  1 failed\n", r.stdout)
    assert.is_nil(r.stdout:find("\n%u+%s+integration"), r.stdout)
    local rec = assert(json.read(copy .. "/.novapipe/last-run.json"))
    local ran = {}
    for _, t in ipairs(rec.tests) do ran[#ran + 1] = t.id end
    table.sort(ran)
    assert.same({ "backend/app/tests/standalone/test_habits.py::test_b_fails",
                  "backend/app/tests/standalone/test_habits.py::test_c_patient[[PHI:ssn]]",
                  "backend/app/tests/venv/test_venv_habits.py::test_v_fails" }, ran)
  end)

  it("--lf with nothing recorded, or nothing failed, says so and runs everything", function()
    local r = run({ "--standalone", "--lf" })
    assert.matches("note: no run recorded yet %(%.novapipe/last%-run%.json does not exist%): running every test\n", r.stdout)
    assert.matches("FAIL%s+standalone[^\n]*  %d+ passed, 2 failed\n", r.stdout)
    assert.equal(0, run({ "--venv", "-k", "passes" }).code)
    r = run({ "--venv", "--lf" })
    assert.matches("note: no test failed in the last run %(run_tests, [^)]*%): running every test\n", r.stdout)
  end)

  it("--lf reads a damaged record as no record, and runs a tier whole when none of its failures is there any more", function()
    H.write(copy .. "/.novapipe/last-run.json", '{"schema":"novapipe.run/1","tests":[5,"x",{"id":1,"key":{},"tier":[]},'
      .. '{"id":"gone","key":"00","tier":"standalone","outcome":"failed"}]}')
    local r = run({ "--lf" })
    assert.is_nil(r.stderr:find("traceback", 1, true), r.stderr)
    assert.matches("FAIL%s+standalone[^\n]*  %d+ passed, 2 failed\n", r.stdout)
    H.write(copy .. "/.novapipe/last-run.json", "not json{")
    r = run({ "--standalone", "--lf" })
    assert.matches("note: no run recorded yet %(%.novapipe/last%-run%.json:1:1: [^\n]*%): running every test\n", r.stdout)
  end)

  it("--ff runs the last failures first; -x stops at the first", function()
    assert.equal(1, run({ "--standalone" }).code)
    local r = run({ "--standalone", "--ff", "-x" })
    assert.equal(1, r.code)
    local rec = assert(json.read(copy .. "/.novapipe/last-run.json"))
    assert.equal(1, #rec.tests)
    assert.equal("failed", rec.tests[1].outcome)
  end)

  it("-k, -m and what follows -- reach pytest, and the audit entry records them with PYTEST_ADDOPTS", function()
    local r = run({ "--standalone", "-k", "test_a_passes or test_b_fails", "-m", "not security", "--", "-W", "error",
                    "--tb=line" }, { env = { PYTEST_ADDOPTS = "-p no:randomly" } })
    assert.equal(1, r.code, r.stderr)
    assert.matches("FAIL%s+standalone[^\n]*  1 passed, 1 failed\n", r.stdout)
    local last
    for line in H.read(copy .. "/.novapipe/audit.log"):gmatch("[^\n]+") do last = line end
    local entry = json.decode(last)
    assert.same({ "--standalone", "-k", "test_a_passes or test_b_fails", "-m", "not security", "--", "-W", "error",
                  "--tb=line" }, entry.args)
    assert.equal("-p no:randomly", entry.outcome.pytest_addopts)
    local rec = assert(json.read(copy .. "/.novapipe/last-run.json"))
    assert.same({ "-W", "error", "--tb=line" }, rec.pytest_args)
    assert.equal("-p no:randomly", rec.pytest_addopts)
    -- a -k that selects nothing is a failed selection, not a pass
    local none = run({ "--standalone", "-k", "no_such_test_name" })
    assert.equal(1, none.code)
    assert.matches("\nFAIL%s+selection[^\n]*\n[^\n]*%-k no_such_test_name", none.stdout)
    -- --tb=line reached pytest: the report is one line
    local failed = assert(rec.tests[#rec.tests].outcome == "failed" and rec.tests[#rec.tests] or rec.tests[1])
    assert.is_string(failed.longrepr)
  end)
end)

describe("coverage on the console", function()
  it("leaves the test files out, and says so plainly when nothing else ran", function()
    local root = H.tree({ ["backend/app/tests/standalone/test_only.py"] = "def test_only():\n    pass\n" })
    local r = H.novapipe({ "-C", root, "--no-color", "run", "run_tests", "--standalone", "--coverage" })
    assert.equal(0, r.code, r.stdout .. r.stderr)
    assert.matches("\nEMPTY coverage [%d.]+s  no code measured\n%s+no code under backend/app ran besides the test files, "
      .. "which are left out %(coverage%.omit_tests%)\n", r.stdout)
    H.rmrf(root)
  end)
end)
