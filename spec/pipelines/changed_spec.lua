-- run_tests --changed end to end: a copy of the clinic example made a git
-- repository, the real binary, real git and real pytest.
local cjson = require "cjson"
local H = require "spec.support.h"

local function clinic(keep)
  local root = keep(H.clinic())
  H.git_repo(root)
  return root
end

describe("run_tests --changed", function()
  local keep = H.temporaries(after_each)

  it("runs only the affected test files; the tiers with none are skipped, and the record and the audit keep it", function()
    local root = clinic(keep)
    H.write(root .. "/backend/app/domain/twin.py", H.read(root .. "/backend/app/domain/twin.py") .. "\n# changed\n")
    local r = H.run_tests(root, { "--changed", "--explain" })
    assert.equal(0, r.code, r.stdout .. r.stderr)
    assert.matches("PASS%s+changed%s+%S+%s+1 of 8 test files affected by 1 changed file, against HEAD", r.stdout)
    assert.matches("backend/app/domain/twin.py %(imported by%) %-> backend/app/tests/standalone/test_twin.py", r.stdout)
    assert.matches("left out, as nothing they depend on changed: 7 test files %(standalone 2, venv 2, integration 3%)",
      r.stdout)
    assert.matches("PASS%s+standalone%s+%S+%s+3 passed", r.stdout)
    assert.matches("note: %-%-changed: 1 of 3 test files %(2 left out", r.stdout)
    assert.matches("SKIP%s+venv%s+%S+\n%s+no affected tests %(2 test files left out", r.stdout)
    assert.matches("SKIP%s+integration%s+%S+\n%s+no affected tests %(3 test files left out", r.stdout)
    -- only test_twin.py's tests ran
    local rec = cjson.decode(H.read(root .. "/.novapipe/last-run.json"))
    assert.equal(3, #rec.tests)
    for _, t in ipairs(rec.tests) do assert.equal("backend/app/tests/standalone/test_twin.py", t.file) end
    assert.same({ "backend/app/tests/standalone/test_twin.py" }, rec.changed.selected)
    assert.equal("HEAD", rec.changed.against)
    assert.same({ { path = "backend/app/domain/twin.py", status = "modified" } }, rec.changed.changes)
    local log = H.read(root .. "/.novapipe/audit.log")
    local last = cjson.decode(log:match("([^\n]+)\n$"))
    assert.same({ against = "HEAD", changes = 1, tests = 8, selected = 1, everything = false }, last.outcome.changed)
  end)

  it("says plainly when no test is affected, and passes; outside a repository it is one line, exit 2", function()
    local root = clinic(keep)
    H.write(root .. "/NOTES.md", "# notes\n")
    local r = H.run_tests(root, { "--changed" })
    assert.equal(0, r.code, r.stdout .. r.stderr)
    assert.matches("EMPTY%s+changed%s+%S+\n%s+no test is affected by the change: 1 changed file, none reaches a test",
      r.stdout)
    assert.not_matches("PASS%s+standalone", r.stdout)
    H.rmrf(root .. "/.git")
    r = H.run_tests(root, { "--changed", "main" })
    assert.equal(2, r.code)
    assert.matches("^novapipe: %-%-changed: .* is not in a git repository", r.stderr)
    assert.equal(1, select(2, r.stderr:gsub("\n", "")))
  end)
end)
