-- Flaky tests, recorded honestly: --reruns, every attempt in the JUnit XML
-- (as Maven Surefire writes them) and in the run record, quarantine with
-- its expiry, and `novapipe flaky`. The real binary, real pytest, one
-- project run several times (the standalone tier only, to stay fast).
local json = require "novapipe.json"
local H = require "spec.support.h"

local TESTS = "backend/app/tests/standalone/"

-- Fails twice, then passes: a counter file beside it.
local FLAKY = [[
import pathlib

def test_flaky():
    counter = pathlib.Path(__file__).with_name("count.txt")
    n = int(counter.read_text()) if counter.exists() else 0
    counter.write_text(str(n + 1))
    print("attempt", n)
    assert n >= 2, "not yet %d" % n

def test_ok():
    pass
]]

local ALWAYS = "def test_bad():\n    assert 1 == 2, 'always'\n"

local function count(text, what)
  return select(2, (text or ""):gsub(what, ""))
end

describe("flaky tests", function()
  local keep = H.temporaries(after_each)

  it("pass on a rerun as flaky, fail on every rerun with each attempt kept, and can be quarantined until an expiry", function()
    local root = keep(H.tree({ [TESTS .. "test_flaky.py"] = FLAKY }))
    local function run(args)
      local argv = { "-C", root, "--no-color", "run", "run_tests", "--standalone" }
      for _, a in ipairs(args) do argv[#argv + 1] = a end
      return H.novapipe(argv)
    end
    local junit_file = root .. "/backend/test-results/standalone-results.xml"

    -- fails twice, then passes under --reruns 3: the tier passes, flaky
    local r = run({ "--reruns", "3", "--junit" })
    assert.equal(0, r.code, r.stdout .. r.stderr)
    assert.matches("PASS  standalone [^\n]*1 passed, 1 flaky", r.stdout)
    assert.matches("Flaky %(1%)[^\n]*\nFLAKY [^\n]*test_flaky%.py::test_flaky[^\n]*passed on attempt 3 of 3", r.stdout)
    assert.matches("attempt 1: AssertionError: not yet 0", r.stdout)
    assert.not_matches("the JUnit XML counts", r.stdout) -- the JUnit's and the events' counts agree
    local xml = H.read(junit_file)
    assert.equal(2, count(xml, "<flakyFailure message=\"AssertionError: not yet %d\" type=\"AssertionError\">"))
    assert.equal(2, count(xml, "<stackTrace>"))
    assert.equal(0, count(xml, "<failure"))
    local rec = assert(json.read(root .. "/.novapipe/last-run.json"))
    assert.equal(1, rec.totals.flaky)
    assert.equal(1, rec.totals.passed)
    assert.equal(2, rec.totals.tests)
    local flaky
    for _, t in ipairs(rec.tests) do if t.id:find("test_flaky$") then flaky = t end end
    assert.equal("flaky", flaky.outcome)
    assert.equal(3, #flaky.attempts)
    assert.same({ "failed", "failed", "passed" },
      { flaky.attempts[1].outcome, flaky.attempts[2].outcome, flaky.attempts[3].outcome })
    assert.equal("AssertionError: not yet 1", flaky.attempts[2].message)
    assert.is_string(flaky.key)

    -- a test that fails every time under --reruns 2: exit 1, the two
    -- earlier failures as <rerunFailure>, the last as <failure>
    H.write(root .. "/" .. TESTS .. "test_always.py", ALWAYS)
    r = run({ "--reruns", "2", "--junit" })
    assert.equal(1, r.code, r.stdout .. r.stderr)
    assert.matches("FAIL  standalone [^\n]*1 failed", r.stdout)
    assert.matches("failed on every one of 3 attempts", r.stdout)
    xml = H.read(junit_file)
    assert.equal(2, count(xml, "<rerunFailure message=\"AssertionError: always"))
    assert.equal(1, count(xml, "<failure "))
    rec = assert(json.read(root .. "/.novapipe/last-run.json"))
    assert.equal(1, rec.totals.failed)
    assert.equal(0, rec.totals.flaky)

    -- quarantined, its failure does not fail the tier, and it is reported
    H.write(root .. "/novapipe.lua", [[return { quarantine = {
  { pattern = "*/test_always.py", why = "OPS-1: the sandbox drops calls", expires = "2999-12-31" } } }
]])
    r = run({})
    assert.equal(0, r.code, r.stdout .. r.stderr)
    assert.matches("PASS  standalone [^\n]*2 passed, 1 quarantined", r.stdout)
    assert.matches("QUARANTINED [^\n]*test_always%.py::test_bad", r.stdout)
    assert.matches("quarantined until 2999%-12%-31: OPS%-1: the sandbox drops calls", r.stdout)
    rec = assert(json.read(root .. "/.novapipe/last-run.json"))
    assert.equal(1, rec.totals.quarantined)
    assert.equal(0, rec.totals.failed)

    -- expired: it counts again, and the run says so in one line
    H.write(root .. "/novapipe.lua", [[return { quarantine = {
  { pattern = "*/test_always.py", why = "OPS-1", expires = "2020-01-31" } } }
]])
    r = run({})
    assert.equal(1, r.code, r.stdout .. r.stderr)
    assert.equal(1, count(r.stdout, "quarantine%[1%] %*/test_always%.py expired on 2020%-01%-31"))

    -- an entry without a justification, or with a malformed date: exit 2, one line
    for _, entry in ipairs({ [[{ pattern = "*", expires = "2999-01-01" }]], [[{ pattern = "*", why = "x", expires = "2999-02-30" }]] }) do
      H.write(root .. "/novapipe.lua", "return { quarantine = { " .. entry .. " } }\n")
      r = run({})
      assert.equal(2, r.code, r.stdout .. r.stderr)
      assert.equal(1, count(r.stderr, "\n"), r.stderr)
      assert.matches("^novapipe: novapipe%.lua: quarantine%[1%]", r.stderr)
    end

    -- novapipe flaky: the flaky test, with how often, of the recorded runs
    os.remove(root .. "/novapipe.lua")
    r = H.novapipe({ "-C", root, "--no-color", "flaky" })
    assert.equal(0, r.code, r.stdout .. r.stderr)
    assert.matches("1 flaky test in the 4 recorded runs", r.stdout)
    assert.matches("flaky in 1 of 4 runs  backend/app/tests/standalone/test_flaky%.py::test_flaky  %(standalone; 3 attempts", r.stdout)
  end)
end)
