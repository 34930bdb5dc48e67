-- migrate claims only what pytest proved: the real binary and real pytest
-- on trees pytest cannot collect, before or after the move.
local json = require "novapipe.json"
local lfs = require "lfs"
local H = require "spec.support.h"
local S = require "spec.support.migrate"

local T = "backend/app/tests/"

-- A legacy tree whose unit/test_api.py needs a package that is not
-- installed: pytest cannot import it.
local TREE = {
  ["pytest.ini"] = "[pytest]\n",
  [T .. "__init__.py"] = "", [T .. "unit/__init__.py"] = "",
  [T .. "unit/test_rules.py"] = "def test_rule():\n    assert 1 + 1 == 2\n",
  [T .. "unit/test_api.py"] = "import novapipe_missing_pkg\ndef test_api():\n    assert novapipe_missing_pkg\n",
}

describe("novapipe run migrate, when pytest cannot collect the tests as they are", function()
  local keep = H.temporaries(after_each)

  it("refuses with pytest's own error line, exit 1, and touches nothing", function()
    local root = keep(H.tree(TREE))
    local out = keep(H.tmpdir()) .. "/plan.json"
    local before = S.snapshot(root)
    local r = S.run(root, { "--execute", "--output", out })
    assert.equal(1, r.code, r.stdout .. r.stderr)
    assert.matches("FAIL  migrate", r.stdout)
    assert.matches("\n      pytest cannot collect backend/app/tests/unit/test_api%.py: ModuleNotFoundError: No module "
      .. "named 'novapipe_missing_pkg', so nothing could verify a move: nothing was moved %(fix that first, or give "
      .. "%-%-unverified to move them anyway, unverified%)\n", r.stdout)
    assert.is_nil(r.stdout:find("verified by", 1, true))
    assert.same(before, S.snapshot(root))
    assert.is_nil(lfs.attributes(root .. "/.novapipe/migration.undo"))
    local report = assert(json.read(out))
    assert.is_true(report.refused)
    assert.is_false(report.verified)
    assert.same({ "backend/app/tests/unit/test_api.py: ModuleNotFoundError: No module named 'novapipe_missing_pkg'" },
      report.problems)
  end)

  it("moves with --unverified, saying on the console and in the JSON that nothing verified it, and undoes", function()
    local root = keep(H.tree(TREE))
    local out = keep(H.tmpdir()) .. "/plan.json"
    local before = S.snapshot(root)
    local r = S.run(root, { "--execute", "--unverified", "--output", out })
    assert.equal(0, r.code, r.stdout .. r.stderr)
    assert.matches("PASS  migrate [^\n]*  2 files moved, NOT verified %(pytest could not collect the tests before the "
      .. "move%); undo with %-%-undo\n", r.stdout)
    assert.matches("note: the move was not verified %(%-%-unverified%): before it, pytest cannot collect "
      .. "backend/app/tests/unit/test_api%.py: ModuleNotFoundError: No module named 'novapipe_missing_pkg'", r.stdout)
    assert.is_nil(r.stdout:find("collects the same", 1, true))
    assert.equal(TREE[T .. "unit/test_api.py"], H.read(root .. "/" .. T .. "venv/test_api.py"))
    assert.equal(TREE[T .. "unit/test_rules.py"], H.read(root .. "/" .. T .. "standalone/test_rules.py"))
    local report = assert(json.read(out))
    assert.is_false(report.verified)
    assert.is_false(report.rolled_back)
    assert.matches("No module named 'novapipe_missing_pkg'", report.unverified)
    r = S.run(root, { "--undo" })
    assert.equal(0, r.code, r.stderr)
    assert.same(before, S.snapshot(root))
  end)

  it("refuses when pytest stops before collecting (a conftest.py it cannot import: exit 4), with its error", function()
    local tree = {}
    for k, v in pairs(TREE) do tree[k] = v end
    tree[T .. "unit/test_api.py"] = nil
    tree[T .. "conftest.py"] = "import novapipe_missing_conf\n"
    local root = keep(H.tree(tree))
    local before = S.snapshot(root)
    local r = S.run(root, { "--execute" })
    assert.equal(1, r.code, r.stdout .. r.stderr)
    assert.matches("pytest cannot collect %(pytest exit 4%): ImportError while loading conftest '[^\n]*conftest%.py'"
      .. ": ModuleNotFoundError: No module named 'novapipe_missing_conf', so nothing could verify a move", r.stdout)
    assert.same(before, S.snapshot(root))
  end)

  it("refuses when pytest collects no test while the test files hold tests", function()
    local tree = {}
    for k, v in pairs(TREE) do tree[k] = v end
    tree[T .. "unit/test_api.py"] = nil
    -- pytest collects only check_* functions here: test_rule is not one
    tree["pytest.ini"] = "[pytest]\npython_functions = check_*\n"
    local root = keep(H.tree(tree))
    local before = S.snapshot(root)
    local r = S.run(root, { "--execute" })
    assert.equal(1, r.code, r.stdout .. r.stderr)
    assert.matches("pytest collects no test, while 1 test file holds tests, so nothing could verify a move", r.stdout)
    assert.same(before, S.snapshot(root))
  end)

  it("rolls back a move that breaks collection, showing pytest's error", function()
    -- unit2/ is no package: pytest puts it on sys.path, and the test
    -- imports its neighbour by its bare name, which nothing can see
    local tree = {}
    for k, v in pairs(TREE) do tree[k] = v end
    tree[T .. "unit/test_api.py"] = nil
    tree[T .. "unit2/neighbour.py"] = "VALUE = 1\n"
    tree[T .. "unit2/test_bare.py"] = "import neighbour\ndef test_bare():\n    assert neighbour.VALUE\n"
    local root = keep(H.tree(tree))
    local before = S.snapshot(root)
    local r = S.run(root, { "--execute" })
    assert.equal(1, r.code, r.stdout .. r.stderr)
    assert.matches("the migration was rolled back: pytest does not collect or run the same tests", r.stdout)
    assert.matches("missing after the migration: backend/app/tests/standalone/test_bare%.py::test_bare %(ModuleNotFoundError: "
      .. "No module named 'neighbour'%)", r.stdout)
    assert.matches("new collection error: backend/app/tests/standalone/test_bare%.py: ModuleNotFoundError: No module named "
      .. "'neighbour'", r.stdout)
    assert.same(before, S.snapshot(root))
  end)

  it("masks PHI in pytest's error lines and in test file names, on the console, in the JSON and the journal", function()
    local tree = {}
    for k, v in pairs(TREE) do tree[k] = v end
    tree[T .. "unit/test_api.py"] = nil
    tree[T .. "unit/test_MRN1234567.py"] = "def test_patient():\n    pass\n"
    tree[T .. "unit/test_import.py"] = "raise RuntimeError('patient 219-09-9999, jane.doe@gmail.com')\n"
    local root = keep(H.tree(tree))
    local out = keep(H.tmpdir()) .. "/plan.json"
    local r = S.run(root, { "--execute", "--output", out })
    assert.equal(1, r.code, r.stdout .. r.stderr)
    local report = H.read(out)
    for _, v in ipairs({ "219-09-9999", "jane.doe@gmail.com", "MRN1234567" }) do
      assert.is_nil((r.stdout .. r.stderr):find(v, 1, true), "the console holds " .. v)
      assert.is_nil(report:find(v, 1, true), "the JSON holds " .. v)
    end
    assert.matches("RuntimeError: patient %[PHI:ssn%], %[PHI:email%]", r.stdout)
    assert.matches("test_%[PHI:mrn%]%.py %-> ", r.stdout)
    -- moved unverified: the journal is masked, the undo record exact, and
    -- --undo restores the names byte for byte
    local before = S.snapshot(root)
    r = S.run(root, { "--execute", "--unverified" })
    assert.equal(0, r.code, r.stdout .. r.stderr)
    assert.is_not_nil(lfs.attributes(root .. "/" .. T .. "standalone/test_MRN1234567.py"))
    local journal = H.read(root .. "/.novapipe/migration.json")
    assert.is_nil(journal:find("MRN1234567", 1, true))
    assert.is_not_nil(H.read(root .. "/.novapipe/migration.undo"):find("MRN1234567", 1, true))
    assert.equal(0, S.run(root, { "--undo" }).code)
    assert.same(before, S.snapshot(root))
  end)

  it("says a --unknown-to tier that is not configured in one line, exit 2", function()
    local root = keep(H.tree(TREE))
    local r = S.run(root, { "--analyze", "--unknown-to", "vnev" })
    assert.equal(2, r.code)
    assert.equal("novapipe: --unknown-to vnev: no such tier; did you mean 'venv'? (the tiers: standalone, venv, "
      .. "integration)\n", r.stderr)
  end)
end)
