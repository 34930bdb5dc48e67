-- novapipe.select.changed: each rule on a small tree made a real git
-- repository, committed, then changed; the selection and its chains.
local changed = require "novapipe.select.changed"
local config = require "novapipe.config"
local fs = require "novapipe.fs"
local process = require "novapipe.process"
local H = require "spec.support.h"

local git = H.git

local function put(root, files)
  for path, text in pairs(files) do
    if text == false then
      assert(os.remove(root .. "/" .. path))
    else
      assert(fs.mkdir_p((root .. "/" .. path):match("^(.*)/"), "0755"))
      H.write(root .. "/" .. path, text)
    end
  end
end

-- A project: app/ (a package) and tests/ (a package), committed.
local BASE = {
  ["app/__init__.py"] = "",
  ["app/domain/__init__.py"] = "",
  ["app/domain/patients.py"] = "LIMIT = 3\n",
  ["app/api.py"] = "from app.domain import patients\n",
  ["app/other.py"] = "X = 1\n",
  ["tests/__init__.py"] = "",
  ["tests/unit/__init__.py"] = "",
  ["tests/unit/test_api.py"] = "from app import api\ndef test_a():\n    assert api\n",
  ["tests/unit/test_plain.py"] = "def test_b():\n    pass\n",
}

local function repo(keep, files)
  local root = keep(H.tmpdir())
  local all = {}
  for k, v in pairs(BASE) do all[k] = v end
  for k, v in pairs(files or {}) do all[k] = v end
  put(root, all)
  H.git_repo(root)
  return root
end

local function cfg()
  local c = config.defaults()
  c.tests = "tests"
  return c
end

-- The selection after `change` (files to write, false to delete), the
-- test files relative to the root.
local function after(root, change, opts)
  put(root, change or {})
  local changes, against = changed.git_changes(opts and opts.ref, root)
  assert(changes, against)
  local sel = changed.select((opts and opts.cfg) or cfg(), changes, { root = root })
  local function rel(list)
    local out = {}
    for i, f in ipairs(list) do out[i] = f:sub(#root + 2) end
    return out
  end
  local why = {}
  for f, w in pairs(sel.why) do why[f:sub(#root + 2)] = w end
  return { files = rel(sel.files), skipped = rel(sel.skipped), why = why, everything = sel.everything,
           notes = sel.notes, changes = changes, against = against, sel = sel }
end

describe("change-based selection", function()
  local keep = H.temporaries(after_each)

  describe("what git says changed", function()
    it("outside a git repository is one line that says so", function()
      local dir = keep(H.tmpdir())
      local changes, err = changed.git_changes(nil, dir)
      assert.is_nil(changes)
      assert.matches("is not in a git repository", err)
      assert.not_matches("\n", err)
    end)

    it("an unknown REF is one line naming it and what to do in CI", function()
      local root = repo(keep)
      local changes, err = changed.git_changes("no-such-branch", root)
      assert.is_nil(changes)
      assert.matches("%-%-changed no%-such%-branch: no such branch, tag or commit", err)
      assert.matches("fetch%-depth: 0", err)
    end)

    it("gives staged, unstaged and untracked files, not ignored ones", function()
      local root = repo(keep, { [".gitignore"] = "*.log\n" })
      put(root, { ["app/other.py"] = "X = 2\n", ["app/new.py"] = "", ["debug.log"] = "x" })
      git(root, "add", "app/new.py")
      put(root, { ["app/untracked.py"] = "" })
      local changes, against = changed.git_changes(nil, root)
      assert.equal("HEAD", against)
      local by = {}
      for _, c in ipairs(changes) do by[c.path] = c.status end
      assert.same({ ["app/other.py"] = "modified", ["app/new.py"] = "added", ["app/untracked.py"] = "untracked" }, by)
    end)

    it("with REF, everything since the merge base of REF and HEAD, committed or not", function()
      local root = repo(keep)
      git(root, "checkout", "-qb", "feature")
      put(root, { ["app/other.py"] = "X = 2\n" })
      git(root, "commit", "-qam", "change")
      git(root, "checkout", "-q", "main")
      put(root, { ["app/api.py"] = "# main moved on\nfrom app.domain import patients\n" })
      git(root, "commit", "-qam", "main")
      git(root, "checkout", "-q", "feature")
      put(root, { ["app/domain/patients.py"] = "LIMIT = 4\n" })
      local changes, against = changed.git_changes("main", root)
      assert.matches("^main %(merge base %x+%)$", against)
      local paths = {}
      for _, c in ipairs(changes) do paths[#paths + 1] = c.path end
      -- main's own commit since the merge base is not this branch's change
      assert.same({ "app/domain/patients.py", "app/other.py" }, paths)
    end)
  end)

  it("selects the tests whose imports reach a changed module, with the chain, and leaves the others out", function()
    local s = after(repo(keep), { ["app/domain/patients.py"] = "LIMIT = 4\n" })
    assert.same({ "tests/unit/test_api.py" }, s.files)
    assert.same({ "tests/unit/test_plain.py" }, s.skipped)
    assert.equal("app/domain/patients.py (imported by) -> app.api (imported by) -> tests/unit/test_api.py",
      s.why["tests/unit/test_api.py"])
    assert.equal("1 of 2 test files affected by 1 changed file, against HEAD", changed.headline(s.sel, s.against))
  end)

  it("a module no test reaches selects nothing, and says so plainly", function()
    local s = after(repo(keep), { ["app/other.py"] = "X = 2\n" })
    assert.same({}, s.files)
    assert.matches("app/other.py %(modified%): no test's imports", s.notes[1])
    assert.equal("no test is affected by the change: 1 changed file, none reaches a test, against HEAD",
      changed.headline(s.sel, s.against))
  end)

  it("a package's __init__.py runs before its modules: its change selects their importers", function()
    local s = after(repo(keep), { ["app/domain/__init__.py"] = "# changed\n" })
    assert.same({ "tests/unit/test_api.py" }, s.files)
    assert.equal("app/domain/__init__.py (imported by) -> app.api (imported by) -> tests/unit/test_api.py",
      s.why["tests/unit/test_api.py"])
  end)

  it("a changed test file selects itself, a new untracked one too", function()
    local s = after(repo(keep), { ["tests/unit/test_plain.py"] = "def test_b():\n    assert 1\n",
                                  ["tests/unit/test_new.py"] = "def test_n():\n    pass\n" })
    assert.same({ "tests/unit/test_new.py", "tests/unit/test_plain.py" }, s.files)
    assert.equal("tests/unit/test_plain.py", s.why["tests/unit/test_plain.py"])
  end)

  it("follows test-tree helpers, relative and absolute, and star imports", function()
    local root = repo(keep, {
      ["tests/helpers.py"] = "from app.other import X\n",
      ["tests/unit/stars.py"] = "from app.domain.patients import *\n",
      ["tests/unit/test_rel.py"] = "from .stars import *\ndef test_r():\n    pass\n",
      ["tests/unit/test_abs.py"] = "from tests.helpers import X\ndef test_h():\n    assert X\n",
    })
    local s = after(root, { ["app/other.py"] = "X = 2\n", ["app/domain/patients.py"] = "LIMIT = 5\n" })
    assert.same({ "tests/unit/test_abs.py", "tests/unit/test_api.py", "tests/unit/test_rel.py" }, s.files)
    assert.equal("app/other.py (imported by) -> tests.helpers (imported by) -> tests/unit/test_abs.py",
      s.why["tests/unit/test_abs.py"])
    assert.matches("tests/unit/stars.py %(imported by%) %-> tests/unit/test_rel.py$", s.why["tests/unit/test_rel.py"])
  end)

  it("a relative import through a package runs that package's __init__.py first: its change selects the importer",
    function()
    local root = repo(keep, {
      ["app/domain/rules/__init__.py"] = "",
      ["app/domain/rules/limits.py"] = "MAX = 3\n",
      ["app/api2.py"] = "from .domain.rules.limits import *\n",
      ["tests/support/__init__.py"] = "",
      ["tests/support/calc.py"] = "VALUE = 1\n",
      ["tests/unit/test_api2.py"] = "from app.api2 import MAX\ndef test_m():\n    assert MAX\n",
      ["tests/unit/test_calc.py"] = "from ..support.calc import VALUE\ndef test_c():\n    assert VALUE\n",
    })
    local s = after(root, { ["app/domain/rules/__init__.py"] = "# changed\n", ["tests/support/__init__.py"] = "# changed\n" })
    assert.same({ "tests/unit/test_api2.py", "tests/unit/test_calc.py" }, s.files)
    assert.equal("app/domain/rules/__init__.py (imported by) -> app.api2 (imported by) -> tests/unit/test_api2.py",
      s.why["tests/unit/test_api2.py"])
    assert.equal("tests/support/__init__.py (imported by) -> tests/unit/test_calc.py", s.why["tests/unit/test_calc.py"])
  end)

  it("follows the conftest chain and what a conftest imports, and the fixtures tests request", function()
    local root = repo(keep, {
      ["tests/unit/conftest.py"] = "import pytest\nfrom app import other\n@pytest.fixture\ndef thing():\n    return other.X\n",
      ["tests/unit/test_fx.py"] = "def test_f(thing):\n    assert thing\n",
      ["tests/slow/__init__.py"] = "",
      ["tests/slow/test_far.py"] = "def test_far():\n    pass\n",
    })
    local s = after(root, { ["app/other.py"] = "X = 3\n" })
    -- every test under tests/unit has the conftest; tests/slow does not
    assert.same({ "tests/unit/test_api.py", "tests/unit/test_fx.py", "tests/unit/test_plain.py" }, s.files)
    assert.same({ "tests/slow/test_far.py" }, s.skipped)
    assert.equal("app/other.py (imported by) -> tests/unit/conftest.py (fixture thing of) -> tests/unit/test_fx.py",
      s.why["tests/unit/test_fx.py"])
    assert.equal("app/other.py (imported by) -> tests/unit/conftest.py (conftest of) -> tests/unit/test_plain.py",
      s.why["tests/unit/test_plain.py"])
  end)

  it("follows the plugins pytest_plugins names, and the fixtures defined there", function()
    local root = repo(keep, {
      ["tests/plugins/__init__.py"] = "",
      ["tests/plugins/db.py"] = "import pytest\n@pytest.fixture\ndef db():\n    return 1\n",
      ["tests/unit/conftest.py"] = "pytest_plugins = ['tests.plugins.db']\n",
      ["tests/unit/test_db.py"] = "def test_d(db):\n    assert db\n",
    })
    local s = after(root, { ["tests/plugins/db.py"] = "import pytest\n@pytest.fixture\ndef db():\n    return 2\n" })
    assert.same({ "tests/unit/test_api.py", "tests/unit/test_db.py", "tests/unit/test_plain.py" }, s.files)
    assert.equal("tests/plugins/db.py (fixture db of) -> tests/unit/test_db.py", s.why["tests/unit/test_db.py"])
    assert.equal("tests/plugins/db.py (plugin of) -> tests/unit/conftest.py (conftest of) -> tests/unit/test_plain.py",
      s.why["tests/unit/test_plain.py"])
  end)

  it("selects the tests that name a changed data file by a path relative to __file__", function()
    local root = repo(keep, {
      ["tests/unit/data/patients.json"] = "[]\n",
      ["tests/unit/data.csv"] = "a,b\n",
      ["tests/unit/test_json.py"] = 'from pathlib import Path\nDATA = Path(__file__).parent / "data" / "patients.json"\n'
        .. "def test_j():\n    assert DATA.read_text()\n",
      ["tests/unit/test_csv.py"] = 'import os\nCSV = os.path.join(os.path.dirname(__file__), "data.csv")\n'
        .. "def test_c():\n    assert open(CSV).read()\n",
    })
    local s = after(root, { ["tests/unit/data/patients.json"] = "[1]\n", ["tests/unit/data.csv"] = "a,b\n1,2\n" })
    assert.same({ "tests/unit/test_csv.py", "tests/unit/test_json.py" }, s.files)
    assert.equal("tests/unit/data/patients.json (modified; named at line 2 of) -> tests/unit/test_json.py",
      s.why["tests/unit/test_json.py"])
  end)

  describe("is conservative where static analysis cannot see", function()
    for _, file in ipairs({ "pytest.ini", "pyproject.toml", "setup.cfg", "tox.ini", "novapipe.lua", "requirements.txt",
                            "backend/requirements-dev.txt", "poetry.lock" }) do
      it(("a change to %s selects every test, saying why"):format(file), function()
        local s = after(repo(keep), { [file] = "# changed\n" })
        assert.same({ "tests/unit/test_api.py", "tests/unit/test_plain.py" }, s.files)
        assert.matches("^" .. file:gsub("%p", "%%%0") .. " changed %(untracked%): pytest's configuration", s.everything)
      end)
    end

    it("a conftest.py at the tests' root or above selects every test; a deeper one, the tests under it", function()
      local root = repo(keep, { ["tests/conftest.py"] = "", ["tests/unit/conftest.py"] = "",
                                ["tests/slow/test_far.py"] = "def test_far():\n    pass\n" })
      local s = after(root, { ["tests/conftest.py"] = "# changed\n" })
      assert.equal(3, #s.files)
      assert.matches("a conftest.py at the tests' root %(tests%) or above it applies to every test", s.everything)
      git(root, "commit", "-qam", "root conftest")
      s = after(root, { ["tests/unit/conftest.py"] = "# changed\n" })
      assert.same({ "tests/unit/test_api.py", "tests/unit/test_plain.py" }, s.files)
    end)

    it("a file that imports with a non-literal argument makes its importers always selected", function()
      local root = repo(keep, {
        ["app/loader.py"] = "import importlib\ndef load(name):\n    return importlib.import_module(name)\n",
        ["tests/unit/test_load.py"] = "from app.loader import load\ndef test_l():\n    assert load('json')\n",
      })
      local s = after(root, { ["app/other.py"] = "X = 9\n" })
      assert.same({ "tests/unit/test_load.py" }, s.files)
      assert.is_true(s.sel.always[root .. "/tests/unit/test_load.py"])
      assert.equal("importlib.import_module(...) at line 3, an import of a name no static analysis follows (in) -> "
        .. "app.loader (imported by) -> tests/unit/test_load.py", s.why["tests/unit/test_load.py"])
    end)

    it("a deleted module selects the tests that imported it, by module name", function()
      local root = repo(keep, { ["tests/unit/test_other.py"] = "from app import other\ndef test_o():\n    pass\n" })
      local s = after(root, { ["app/other.py"] = false })
      assert.same({ "tests/unit/test_other.py" }, s.files)
      assert.equal("app/other.py (deleted, imported as app.other by) -> tests/unit/test_other.py",
        s.why["tests/unit/test_other.py"])
    end)

    it("a renamed module selects the tests of its old name and of its new one", function()
      local root = repo(keep, {
        ["tests/unit/test_old.py"] = "import app.other\ndef test_o():\n    pass\n",
        ["tests/unit/test_rel.py"] = "from ..helpers import old\ndef test_r():\n    pass\n",
        ["tests/helpers/__init__.py"] = "",
        ["tests/helpers/old.py"] = "Y = 1\n",
      })
      git(root, "mv", "app/other.py", "app/renamed.py")
      git(root, "mv", "tests/helpers/old.py", "tests/helpers/new.py")
      put(root, { ["tests/unit/test_new.py"] = "from app import renamed\ndef test_n():\n    pass\n" })
      local s = after(root)
      local statuses = {}
      for _, c in ipairs(s.changes) do statuses[c.path] = c.status end
      assert.equal("deleted", statuses["app/other.py"])
      assert.equal("renamed", statuses["app/renamed.py"])
      assert.same({ "tests/unit/test_new.py", "tests/unit/test_old.py", "tests/unit/test_rel.py" }, s.files)
      assert.equal("app/other.py (renamed to app/renamed.py, imported as app.other by) -> tests/unit/test_old.py",
        s.why["tests/unit/test_old.py"])
      assert.equal("tests/helpers/old.py (renamed to tests/helpers/new.py, imported as tests/helpers/old by) -> "
        .. "tests/unit/test_rel.py", s.why["tests/unit/test_rel.py"])
    end)

    it("a deleted conftest.py selects the tests under its directory", function()
      local root = repo(keep, { ["tests/unit/conftest.py"] = "", ["tests/slow/test_far.py"] = "def test_far():\n    pass\n" })
      local s = after(root, { ["tests/unit/conftest.py"] = false })
      assert.same({ "tests/unit/test_api.py", "tests/unit/test_plain.py" }, s.files)
    end)

    it("a changed file that is not Python and that no test names selects everything", function()
      local s = after(repo(keep), { ["app/templates/page.html"] = "<p>\n" })
      assert.equal(2, #s.files)
      assert.matches("^app/templates/page.html changed %(untracked%): it is not Python and no test names it", s.everything)
    end)

    it("unless changed.ignore matches it: the defaults leave documentation out, novapipe.lua changes the list", function()
      local root = repo(keep)
      local s = after(root, { ["README.md"] = "# x\n", ["docs/guide.txt"] = "x\n" })
      assert.same({}, s.files)
      assert.is_nil(s.everything)
      assert.same({ "README.md (untracked): ignored (changed.ignore '*.md')",
                    "docs/guide.txt (untracked): ignored (changed.ignore 'docs/**')" }, s.notes)
      local c = cfg()
      c.changed.ignore = { "*.html" }
      s = after(root, { ["app/templates/page.html"] = "<p>\n" }, { cfg = c })
      assert.matches("^README.md changed", s.everything)
    end)
  end)

  it("selects, for each module of a generated project, exactly the tests whose known closure holds it", function()
    -- bench/changed/generate.lua: packages four levels deep, absolute,
    -- relative and star imports, __init__.py re-exports, conftest files at
    -- four levels, pytest_plugins, test-tree helpers, data files named
    -- relative to __file__; expected-closure.json is what each test runs
    local root = keep(H.tmpdir())
    local r = H.novapipe({ "exec", "bench/changed/generate.lua", root, "--modules", "30", "--seed", "7" })
    assert.equal(0, r.code, r.stdout .. r.stderr)
    local expected = require("novapipe.json").read(root .. "/expected-closure.json")
    local users, n_tests = {}, 0
    for t, list in pairs(expected) do
      n_tests = n_tests + 1
      for _, f in ipairs(list) do
        users[f] = users[f] or {}
        table.insert(users[f], t)
      end
    end
    assert.equal(12, n_tests)
    local c = config.load(root .. "/novapipe.lua")
    local checked = 0
    for f, list in pairs(users) do
      if not f:find("conftest.py", 1, true) and not f:find("/test_", 1, true) then
        local sel = changed.select(c, { f }, { root = root })
        local got = {}
        for i, s in ipairs(sel.files) do got[i] = s:sub(#root + 2) end
        table.sort(list)
        assert.same(list, got, f)
        checked = checked + 1
      end
    end
    assert.is_true(checked > 60, tostring(checked))
  end)

  it("is a function of the configuration, the root and a list of paths", function()
    local root = repo(keep)
    local sel = changed.select(cfg(), { "app/domain/patients.py" }, { root = root })
    assert.same({ root .. "/tests/unit/test_api.py" }, sel.files)
  end)
end)
