-- migrate end to end: the real binary and real pytest on legacy trees
-- written into temporary directories.
local fs = require "novapipe.fs"
local lfs = require "lfs"
local process = require "novapipe.process"
local H = require "spec.support.h"

local T = "backend/app/tests/"

local snapshot = require("spec.support.migrate").snapshot

local LEGACY = {
  ["backend/__init__.py"] = "", ["backend/app/__init__.py"] = "", [T .. "__init__.py"] = "",
  [T .. "unit/__init__.py"] = "",
  [T .. "unit/test_rules.py"] = "def test_rule():\n    assert 1 + 1 == 2\n",
  [T .. "unit/api/__init__.py"] = "",
  [T .. "unit/api/test_same.py"] = "import json\ndef test_api_json():\n    assert json.dumps(1) == '1'\n",
  [T .. "unit/models/__init__.py"] = "",
  [T .. "unit/models/test_same.py"] = "import fastapi\ndef test_models():\n    assert fastapi\n",
  [T .. "integration_old/__init__.py"] = "",
  [T .. "integration_old/conftest.py"] = "import pytest\n@pytest.fixture\ndef local_db():\n    return {}\n",
  [T .. "integration_old/test_needs_fixture.py"] = "def test_uses(local_db):\n    assert local_db == {}\n",
  [T .. "integration_old/test_db.py"] = "try:\n    import psycopg2\nexcept ImportError:\n    psycopg2 = None\nimport pytest\n"
    .. "pytestmark = pytest.mark.integration\ndef test_db():\n    pass\n",
  [T .. "helpers_pkg/__init__.py"] = "",
  [T .. "helpers_pkg/helpers.py"] = "def make():\n    return 3\n",
  [T .. "helpers_pkg/test_helper_user.py"] = "from .helpers import make\ndef test_make():\n    assert make() == 3\n",
  [T .. "data/__init__.py"] = "",
  [T .. "data/test_reads_data.py"] = "import pathlib\nDATA = pathlib.Path(__file__).parent / 'rows.csv'\n"
    .. "def test_rows():\n    assert DATA.read_text() == 'a,b\\n'\n",
  [T .. "data/rows.csv"] = "a,b\n",
  [T .. "data/test_where_it_is.py"] = "import pathlib\nHERE = pathlib.Path(__file__).parent\n"
    .. "def test_here():\n    assert HERE.name == 'data'\n",
  [T .. "data/test_reads_in_body.py"] = "import pathlib\ndef test_rows():\n"
    .. "    assert (pathlib.Path(__file__).parent / 'rows.csv').read_text() == 'a,b\\n'\n",
  [T .. "README.md"] = "# tests\n",
  ["pytest.ini"] = "[pytest]\nmarkers =\n  integration: needs services\n",
}

local function run(root, args, opts)
  local argv = { "-C", root, "--no-color", "run", "migrate" }
  for _, a in ipairs(args) do argv[#argv + 1] = a end
  return H.novapipe(argv, opts)
end

local function pytest(root, env)
  local py = assert(require("novapipe.python").find({ "pytest" }))
  local args = { py, "-m", "pytest", "-q", "-p", "no:cacheprovider", T }
  for _, d in ipairs({ "standalone", "venv", "integration" }) do
    if lfs.attributes(root .. "/" .. T .. d) then args[#args + 1] = T .. d end
  end
  return assert(process.run(args, { cwd = root, env = env }))
end

-- Every file under root whose name atomic_write gives its temporary files.
local function temporaries(root)
  local found = {}
  for _, rel in ipairs(assert(fs.walk(root, {}))) do
    if rel:match("%.tmp%.%x%x%x%x%x%x%x%x$") then found[#found + 1] = rel end
  end
  table.sort(found)
  return found
end

-- strace runs a program here (scripts/setup.sh --test installs it; it
-- needs ptrace): asserted, so a machine without it fails this spec.
local function assert_strace()
  local r = process.run({ "strace", "-o", "/dev/null", "true" })
  assert(r and r.code == 0, "strace cannot run here: install it (apt-get install strace) and allow ptrace")
end

-- The number of novapipe's fsync call (counted from 1 in its main thread,
-- in a trace of openat and fsync) that makes durable a temporary file
-- whose name starts with `name`.
local function fsync_number(trace, name)
  local open, n = {}, 0
  for line in trace:gmatch("[^\n]+") do
    local file, fd = line:match('^openat%([^,]+, "([^"]+)", .*%) = (%d+)$')
    if file then open[fd] = file end
    fd = line:match("^fsync%((%d+)%)")
    if fd then
      n = n + 1
      local f = open[fd] or ""
      if f:sub(1, #name + 5) == name .. ".tmp." then return n end
    end
  end
end

describe("novapipe run migrate", function()
  local root
  before_each(function() root = H.tree(LEGACY) end)
  after_each(function() H.rmrf(root) end)

  it("with neither --analyze nor --execute shows the help and exits 1", function()
    local r = run(root, {})
    assert.equal(1, r.code)
    assert.matches("Usage: novapipe run migrate", r.stdout)
    assert.matches("nothing to do: give %-%-analyze", r.stdout)
  end)

  it("--undo without a migration is one line and exit 2", function()
    local r = run(root, { "--undo" })
    assert.equal(2, r.code)
    assert.equal("novapipe: no migration to undo (.novapipe/migration.json does not exist)\n", r.stderr)
  end)

  it("--analyze shows the plan, says why files stay, and changes nothing", function()
    local before = snapshot(root)
    local r = run(root, { "--analyze", "--output", root .. "/../plan-" .. lfs.attributes(root, "ino") .. ".json" })
    assert.equal(0, r.code, r.stderr)
    assert.matches("backend/app/tests/unit/test_rules.py %-> backend/app/tests/standalone/test_rules.py", r.stdout)
    assert.matches("unit/api/test_same.py %-> backend/app/tests/standalone/api/test_same.py", r.stdout)
    assert.matches("unit/models/test_same.py %-> backend/app/tests/venv/models/test_same.py", r.stdout)
    assert.matches("integration_old/test_needs_fixture.py %-> backend/app/tests/standalone/test_needs_fixture.py", r.stdout)
    assert.matches("integration_old/conftest.py copied to backend/app/tests/standalone/conftest.py", r.stdout)
    assert.matches("helpers_pkg/test_helper_user.py %-> backend/app/tests/standalone/test_helper_user.py", r.stdout)
    assert.matches("helpers_pkg/helpers.py %-> backend/app/tests/standalone/helpers.py", r.stdout)
    -- the helper goes along: its importer's import resolves as it is
    assert.is_nil(r.stdout:find("imports rewritten", 1, true))
    -- the data file two tests read through __file__ goes with them
    assert.matches("data/test_reads_data.py %-> backend/app/tests/standalone/test_reads_data.py", r.stdout)
    assert.matches("data/test_reads_in_body.py %-> backend/app/tests/standalone/test_reads_in_body.py", r.stdout)
    assert.matches("data/rows.csv %-> backend/app/tests/standalone/rows.csv  %(read through __file__ by the moved tests%)",
      r.stdout)
    -- one that names nothing beside it: what it reads cannot be told
    assert.matches("stays: [^\n]*test_where_it_is.py: it reads files beside it through __file__ %(line 2%)", r.stdout)
    assert.matches("%(dry run%)", r.stdout)
    assert.same(before, snapshot(root))
    os.remove(root .. "/../plan-" .. lfs.attributes(root, "ino") .. ".json")
  end)

  it("--execute moves (never copies), keeps every file, and pytest collects and passes the same tests", function()
    local before_run = pytest(root)
    assert.equal(0, before_run.code, before_run.stdout)
    local r = run(root, { "--execute", "--verify-run" })
    assert.equal(0, r.code, r.stdout .. r.stderr)
    assert.matches("10 files moved; pytest collects the same 9 tests before and after, with the same outcomes", r.stdout)
    -- the fixture went with the test; the original conftest.py stays
    assert.equal(LEGACY[T .. "integration_old/conftest.py"], H.read(root .. "/" .. T .. "standalone/conftest.py"))
    -- moved: gone from the old place, present once in the new
    assert.is_nil(lfs.attributes(root .. "/" .. T .. "unit/test_rules.py"))
    assert.equal("def test_rule():\n    assert 1 + 1 == 2\n", H.read(root .. "/" .. T .. "standalone/test_rules.py"))
    assert.is_not_nil(lfs.attributes(root .. "/" .. T .. "standalone/api/test_same.py"))
    assert.is_not_nil(lfs.attributes(root .. "/" .. T .. "venv/models/test_same.py"))
    assert.is_not_nil(lfs.attributes(root .. "/" .. T .. "integration/test_db.py"))
    -- what stays, stays; non-test files are all there
    assert.equal("def make():\n    return 3\n", H.read(root .. "/" .. T .. "standalone/helpers.py"))
    assert.equal("a,b\n", H.read(root .. "/" .. T .. "standalone/rows.csv"))
    assert.is_nil(lfs.attributes(root .. "/" .. T .. "data/rows.csv"))
    for _, p in ipairs({ "README.md", "integration_old/conftest.py", "data/test_where_it_is.py",
                         "helpers_pkg/__init__.py" }) do
      assert.is_not_nil(lfs.attributes(root .. "/" .. T .. p), p)
    end
    local after_run = pytest(root)
    assert.equal(0, after_run.code, after_run.stdout)
    assert.equal(before_run.stdout:match("(%d+) passed"), after_run.stdout:match("(%d+) passed"))
    -- idempotent: nothing more to do, nothing changed
    local now = snapshot(root)
    r = run(root, { "--execute" })
    assert.equal(0, r.code)
    assert.matches("nothing to move", r.stdout)
    assert.same(now, snapshot(root))
  end)

  it("--undo restores the tree byte for byte", function()
    local before = snapshot(root)
    assert.equal(0, run(root, { "--execute" }).code)
    assert.are_not.same(before, snapshot(root))
    local r = run(root, { "--undo" })
    assert.equal(0, r.code, r.stderr)
    assert.same(before, snapshot(root))
  end)

  it("writes a journal with none of the tests' PHI, keeps the undo record exact, and undoes byte for byte", function()
    H.write(root .. "/" .. T .. "unit/test_phi.py", "import pytest\n@pytest.mark.parametrize('ssn', ['219-09-9999'])\n"
      .. "def test_patient(ssn):\n    assert {'email': 'jane.doe@gmail.com'}['email'] != ssn\n")
    H.write(root .. "/" .. T .. "integration_old/conftest.py",
      "import pytest\n@pytest.fixture\ndef local_db():\n    assert 'jane.doe@gmail.com'\n    return {}\n")
    local before = snapshot(root)
    local r = run(root, { "--execute" })
    assert.equal(0, r.code, r.stdout .. r.stderr)
    local journal = H.read(root .. "/.novapipe/migration.json")
    local record = H.read(root .. "/.novapipe/migration.undo")
    for _, v in ipairs({ "219-09-9999", "jane.doe@gmail.com" }) do
      assert.is_nil(journal:find(v, 1, true), "the journal holds " .. v)
      assert.is_nil((r.stdout .. r.stderr):find(v, 1, true), "the console holds " .. v)
      assert.is_not_nil(record:find(v, 1, true), "the undo record lacks " .. v)
    end
    -- the masked ids and the contents' sizes are there, the contents not
    assert.matches("test_patient%[%[PHI:ssn%]%]", journal)
    assert.matches('"content": "%d+ bytes"', journal)
    assert.equal("rw-------", lfs.attributes(root .. "/.novapipe/migration.undo", "permissions"))
    assert.equal("rw-------", lfs.attributes(root .. "/.novapipe/migration.json", "permissions"))
    r = run(root, { "--undo" })
    assert.equal(0, r.code, r.stderr)
    assert.same(before, snapshot(root))
    assert.is_nil(lfs.attributes(root .. "/.novapipe/migration.undo"))
    assert.is_nil(lfs.attributes(root .. "/.novapipe/migration.json"))
  end)

  it("with its undo record gone, --undo says so in one line and changes nothing", function()
    assert.equal(0, run(root, { "--execute" }).code)
    assert(os.remove(root .. "/.novapipe/migration.undo"))
    local moved = snapshot(root)
    local r = run(root, { "--undo" })
    assert.equal(2, r.code)
    assert.matches("^novapipe: %.novapipe/migration%.json: the undo record %.novapipe/migration%.undo is missing[^\n]*\n$",
      r.stderr)
    assert.same(moved, snapshot(root))
  end)

  it("--undo reads a journal an earlier novapipe wrote exact, without an undo record", function()
    local before = snapshot(root)
    assert.equal(0, run(root, { "--execute" }).code)
    assert(os.rename(root .. "/.novapipe/migration.undo", root .. "/.novapipe/migration.json"))
    local r = run(root, { "--undo" })
    assert.equal(0, r.code, r.stderr)
    assert.same(before, snapshot(root))
  end)

  it("rolls itself back, byte for byte, when pytest no longer collects the same tests", function()
    -- A test that only imports from where it is: nothing analyze can see.
    H.write(root .. "/" .. T .. "unit/test_placed.py",
      "import pathlib\nassert pathlib.Path(__spec__.origin).parent.name == 'unit'\ndef test_here():\n    pass\n")
    local before = snapshot(root)
    local r = run(root, { "--execute" })
    assert.equal(1, r.code)
    assert.matches("the migration was rolled back", r.stdout)
    assert.matches("test_placed.py", r.stdout)
    assert.same(before, snapshot(root))
  end)

  it("--verify-run rolls back when a moved test's outcome changes", function()
    -- Passes only where it is now; collects the same anywhere.
    H.write(root .. "/" .. T .. "unit/test_where.py",
      "import pathlib\ndef test_where():\n    assert pathlib.Path(__spec__.origin).parent.name == 'unit'\n")
    local before = snapshot(root)
    local r = run(root, { "--execute", "--verify-run" })
    assert.equal(1, r.code)
    assert.matches("rolled back", r.stdout)
    assert.matches("test_where.py::test_where: passed before, failed after", r.stdout)
    assert.same(before, snapshot(root))
    -- without the outcome check, the same migration goes through
    assert.equal(0, run(root, { "--execute" }).code)
  end)

  for _, after in ipairs({ 1, 4, 9, 12 }) do
    it(("killed with SIGKILL after %d operations, is undone byte for byte, or completed"):format(after), function()
      local before = snapshot(root)
      local r = run(root, { "--execute" }, { env = { NOVAPIPE_FAULT_KILL_AFTER_OPS = tostring(after) } })
      assert.equal(9, r.signal)
      assert.is_not_nil(lfs.attributes(root .. "/.novapipe/migration.json"))
      local copy = H.tmpdir()
      assert.equal(0, process.run({ "cp", "-a", root .. "/.", copy }).code)
      -- --undo restores the tree exactly
      r = run(root, { "--undo" })
      assert.equal(0, r.code, r.stderr)
      assert.same(before, snapshot(root))
      -- --execute, on the other copy, completes it
      r = run(copy, { "--execute" })
      assert.equal(0, r.code, r.stdout .. r.stderr)
      assert.matches("Completing the migration", r.stdout)
      assert.is_not_nil(lfs.attributes(copy .. "/" .. T .. "standalone/test_rules.py"))
      assert.is_nil(lfs.attributes(copy .. "/" .. T .. "unit/test_rules.py"))
      H.rmrf(copy)
    end)
  end

  it("killed in the fsync of a file it writes, is undone or completed byte for byte, leaving no temporary file", function()
    assert_strace()
    -- a first migration of the same tree, traced, says which fsync makes
    -- the conftest.py it copies durable
    local probe = H.tree(LEGACY)
    local trace_file = probe .. "/../trace-" .. lfs.attributes(probe, "ino")
    -- LeakSanitizer cannot run under ptrace: off for the traced runs
    local traced = { env = { ASAN_OPTIONS = "detect_leaks=0:abort_on_error=1" } }
    local r = assert(process.run({ "strace", "-o", trace_file, "-e", "trace=openat,fsync", H.bin,
                                   "-C", probe, "--no-color", "run", "migrate", "--execute" }, traced))
    local n = fsync_number(H.read(trace_file) or "", "conftest.py")
    local completed = snapshot(probe)
    os.remove(trace_file)
    H.rmrf(probe)
    assert.equal(0, r.code, r.stdout .. r.stderr)
    assert.is_number(n)
    local before = snapshot(root)
    r = assert(process.run({ "strace", "-o", "/dev/null", "-e", "trace=fsync", "-e",
                             ("inject=fsync:signal=KILL:when=%d"):format(n), H.bin,
                             "-C", root, "--no-color", "run", "migrate", "--execute" }, traced))
    assert.is_true(r.signal == 9 or r.code == 137, r.stdout .. r.stderr)
    assert.equal(1, #temporaries(root))
    assert.matches("^" .. T .. "standalone/conftest%.py%.tmp%.", temporaries(root)[1])
    local copy = H.tmpdir()
    assert.equal(0, process.run({ "cp", "-a", root .. "/.", copy }).code)
    -- --undo: as before, with no temporary file left
    r = run(root, { "--undo" })
    assert.equal(0, r.code, r.stderr)
    assert.same({}, temporaries(root))
    assert.same(before, snapshot(root))
    -- --execute: as a migration that was never interrupted
    r = run(copy, { "--execute" })
    assert.equal(0, r.code, r.stdout .. r.stderr)
    assert.same({}, temporaries(copy))
    local now = snapshot(copy)
    for rel in pairs(now) do
      if rel:find("^%.novapipe/") then now[rel] = nil end
    end
    for rel in pairs(completed) do
      if rel:find("^%.novapipe/") then completed[rel] = nil end
    end
    assert.same(completed, now)
    H.rmrf(copy)
  end)

  it("--undo after pytest wrote bytecode beside the moved tests removes it, and the directories it made", function()
    local before = snapshot(root)
    assert.equal(0, run(root, { "--execute" }).code)
    assert.equal(0, pytest(root, { PYTHONDONTWRITEBYTECODE = false }).code)
    assert.is_not_nil(lfs.attributes(root .. "/" .. T .. "standalone/__pycache__"))
    assert.is_not_nil(lfs.attributes(root .. "/" .. T .. "standalone/api/__pycache__"))
    local r = run(root, { "--undo" })
    assert.equal(0, r.code, r.stderr)
    for _, d in ipairs({ "standalone", "venv", "integration" }) do
      assert.is_nil(lfs.attributes(root .. "/" .. T .. d), d)
    end
    assert.same(before, snapshot(root))
  end)

  it("--undo keeps a directory it made that holds bytecode of a file it did not put there", function()
    assert.equal(0, run(root, { "--execute" }).code)
    H.write(root .. "/" .. T .. "standalone/test_new.py", "def test_new():\n    pass\n")
    assert.equal(0, pytest(root, { PYTHONDONTWRITEBYTECODE = false }).code)
    os.remove(root .. "/" .. T .. "standalone/test_new.py")
    assert.equal(0, run(root, { "--undo" }).code)
    local left = {}
    for _, rel in ipairs(assert(fs.walk(root .. "/" .. T .. "standalone", {}))) do left[#left + 1] = rel end
    assert.equal(1, #left)
    assert.matches("^__pycache__/test_new%.", left[1])
  end)

  it("keeps a test in place when a decorator's argument reads __file__, saying why", function()
    H.write(root .. "/" .. T .. "unit/test_decorated.py", table.concat({
      "import os",
      "import pytest",
      "@pytest.mark.skipif(not os.path.exists(os.path.join(os.path.dirname(__file__), \"data.csv\")), reason=\"x\")",
      "def test_data():",
      "    pass",
      "",
    }, "\n"))
    -- (no data.csv beside them: what they read cannot be told)
    H.write(root .. "/" .. T .. "unit/test_decorated_class.py", table.concat({
      "import pathlib",
      "import pytest",
      "@pytest.mark.skipif(not (pathlib.Path(__file__).parent / 'data.csv').exists(), reason='x')",
      "class TestData:",
      "    def test_data(self):",
      "        pass",
      "",
    }, "\n"))
    -- only the word, in a string or as another module's attribute: it moves
    H.write(root .. "/" .. T .. "unit/test_decorated_string.py", table.concat({
      "import os",
      "import pytest",
      "@pytest.mark.skipif('__file__' in os.environ or not os.__file__, reason='__file__')",
      "def test_env():",
      "    pass",
      "",
    }, "\n"))
    local r = run(root, { "--analyze" })
    assert.equal(0, r.code, r.stderr)
    assert.matches("stays: [^\n]*unit/test_decorated%.py: it reads files beside it through __file__ %(line 3%)", r.stdout)
    assert.matches("stays: [^\n]*unit/test_decorated_class%.py: it reads files beside it through __file__ %(line 3%)",
      r.stdout)
    assert.matches("unit/test_decorated_string%.py %-> backend/app/tests/standalone/test_decorated_string%.py", r.stdout)
  end)

  it("ends as a one-line stage error when the environment fails an operation, and --undo still restores the tree", function()
    -- a file where the standalone tier's directory must be made
    H.write(root .. "/" .. T .. "standalone", "not a directory\n")
    local before = snapshot(root)
    local r = run(root, { "--execute" })
    assert.equal(2, r.code, r.stdout .. r.stderr)
    assert.matches("ERROR migrate", r.stdout)
    assert.matches("\n%s*the migration stopped halfway: mkdir '[^\n]*standalone': Not a directory "
      .. "%(%-%-execute completes it, %-%-undo reverts it%)\n", r.stdout)
    assert.matches("configuration error in", r.stdout)
    assert.is_nil((r.stdout .. r.stderr):find("traceback", 1, true))
    r = run(root, { "--undo" })
    assert.equal(0, r.code, r.stderr)
    assert.same(before, snapshot(root))
  end)

  it("--layout flatten moves files straight into the tier unless names collide", function()
    local r = run(root, { "--analyze", "--layout", "flatten" })
    assert.matches("unit/api/test_same.py %-> backend/app/tests/standalone/test_same.py", r.stdout)
    assert.matches("unit/models/test_same.py %-> backend/app/tests/venv/test_same.py", r.stdout)
    H.write(root .. "/" .. T .. "unit/models/test_rules.py", "def test_other():\n    pass\n")
    r = run(root, { "--analyze", "--layout", "flatten" })
    -- two test_rules.py would land in standalone/: both keep their sub-path
    assert.matches("unit/test_rules.py %-> backend/app/tests/standalone/test_rules.py", r.stdout)
    assert.matches("unit/models/test_rules.py %-> backend/app/tests/standalone/models/test_rules.py", r.stdout)
  end)

  it("keeps a test in place when its conftest.py cannot be copied safely", function()
    H.write(root .. "/" .. T .. "integration_old/conftest.py",
      "import pytest\n@pytest.fixture\ndef local_db():\n    return {}\n@pytest.fixture(autouse=True)\ndef everywhere():\n    pass\n")
    local r = run(root, { "--analyze" })
    assert.matches("stays: [^\n]*test_needs_fixture.py: it needs fixtures local_db, everywhere from [^\n]*; a copy of "
      .. "[^\n]* would not be safe %(it has autouse fixture everywhere, which would reach other tests there%), and "
      .. "merging them into [^\n]*standalone/conftest.py would not be safe %(fixture everywhere is autouse, and would "
      .. "reach every test there%)\n", r.stdout)
  end)

  it("rewrites a relative import when the helper stays for a file that stays, and undoes it byte for byte", function()
    H.write(root .. "/" .. T .. "helpers_pkg/other_user.py", "from .helpers import make\nVALUE = make()\n")
    local before = snapshot(root)
    local r = run(root, { "--analyze" })
    assert.matches("test_helper_user.py %-> backend/app/tests/standalone/test_helper_user.py", r.stdout)
    assert.matches("standalone/test_helper_user.py: imports rewritten %(line 1: %.helpers %-> %.%.helpers_pkg%.helpers%)\n",
      r.stdout)
    assert.is_nil(r.stdout:find("helpers.py ->", 1, true))
    r = run(root, { "--execute", "--verify-run" })
    assert.equal(0, r.code, r.stdout .. r.stderr)
    assert.equal("from ..helpers_pkg.helpers import make\ndef test_make():\n    assert make() == 3\n",
      H.read(root .. "/" .. T .. "standalone/test_helper_user.py"))
    assert.equal(0, pytest(root).code)
    assert.equal(0, run(root, { "--undo" }).code)
    assert.same(before, snapshot(root))
  end)

  it("sends unknown files to venv, saying so, and writes the plan as JSON", function()
    H.write(root .. "/" .. T .. "unit/test_broken.py", "def test_x(:\n    pass\n")
    local out = root .. "/.novapipe-plan.json"
    -- pytest cannot collect it either: only --unverified moves it
    local r = run(root, { "--execute", "--unverified", "--output", out })
    assert.equal(0, r.code, r.stdout .. r.stderr)
    assert.matches("note: [^\n]*unit/test_broken.py is unknown %(unknown: syntax error at line 1: '%(' was never closed%)", r.stdout)
    assert.matches("it goes to venv", r.stdout)
    assert.is_not_nil(lfs.attributes(root .. "/" .. T .. "venv/test_broken.py"))
    local report = assert(require("novapipe.json").read(out))
    assert.is_false(report.dry_run)
    assert.is_false(report.rolled_back)
    assert.is_false(report.verified)
    assert.matches("^pytest cannot collect backend/app/tests/unit/test_broken.py: SyntaxError", report.unverified)
    local found = false
    for _, m in ipairs(report.moves) do
      if m.to == T .. "venv/test_broken.py" then found = true end
    end
    assert.is_true(found)
  end)

  it("keeps a helper in place when one of its importers must stay, rewriting the others' imports", function()
    -- a second importer that stays: it reads __file__, naming nothing beside it
    H.write(root .. "/" .. T .. "helpers_pkg/test_second_user.py", "import pathlib\nfrom .helpers import make\n"
      .. "HERE = pathlib.Path(__file__).parent\ndef test_again():\n    assert make() and HERE.name\n")
    local r = run(root, { "--execute" })
    assert.equal(0, r.code, r.stdout .. r.stderr)
    assert.matches("stays: [^\n]*helpers_pkg/test_second_user.py: it reads files beside it through __file__", r.stdout)
    assert.is_not_nil(lfs.attributes(root .. "/" .. T .. "helpers_pkg/helpers.py"))
    assert.equal("from ..helpers_pkg.helpers import make\ndef test_make():\n    assert make() == 3\n",
      H.read(root .. "/" .. T .. "standalone/test_helper_user.py"))
    assert.equal(0, pytest(root).code)
  end)

  it("never overwrites a file already at the destination: it keeps its source directory below the tier, or stays", function()
    assert(fs.mkdir_p(root .. "/" .. T .. "standalone"))
    H.write(root .. "/" .. T .. "standalone/test_rules.py", "# already here\n")
    local r = run(root, { "--analyze" })
    assert.matches("unit/test_rules.py %-> backend/app/tests/standalone/unit/test_rules.py\n", r.stdout)
    -- that place taken too (a dangling link counts): it stays
    assert(fs.mkdir_p(root .. "/" .. T .. "standalone/unit"))
    assert(lfs.link("/nonexistent/novapipe", root .. "/" .. T .. "standalone/unit/test_rules.py", true))
    r = run(root, { "--execute" })
    assert.equal(0, r.code, r.stdout .. r.stderr)
    assert.matches("stays: [^\n]*unit/test_rules.py: [^\n]*standalone/unit/test_rules.py exists: nothing is overwritten",
      r.stdout)
    assert.equal("# already here\n", H.read(root .. "/" .. T .. "standalone/test_rules.py"))
    assert.equal("/nonexistent/novapipe", lfs.symlinkattributes(root .. "/" .. T .. "standalone/unit/test_rules.py",
      "target"))
    assert.is_not_nil(lfs.attributes(root .. "/" .. T .. "unit/test_rules.py"))
  end)

  it("inside a git work tree moves with git mv, so history follows, and commits nothing", function()
    local function git(...)
      local r = assert(process.run({ "git", "-c", "user.email=t@example.com", "-c", "user.name=t", ... }, { cwd = root }))
      assert.equal(0, r.code, r.stderr)
      return r.stdout
    end
    git("init", "-q")
    git("add", ".")
    git("commit", "-q", "-m", "legacy")
    assert.equal(0, run(root, { "--execute" }).code)
    local status = git("status", "--porcelain")
    assert.matches("R  backend/app/tests/unit/test_rules.py %-> backend/app/tests/standalone/test_rules.py", status)
    assert.equal("1", git("rev-list", "--count", "HEAD"):match("%d+"))
    -- --no-git: a plain rename, nothing staged
    assert.equal(0, run(root, { "--undo" }).code)
    git("reset", "-q", "--hard")
    assert.equal(0, run(root, { "--execute", "--no-git" }).code)
    status = git("status", "--porcelain")
    assert.matches(" D backend/app/tests/unit/test_rules.py", status)
    assert.is_nil(status:find("R  ", 1, true))
  end)
end)
