-- migrate end to end on what a moved test needs: where it goes when names
-- collide, its conftest.py fixtures merged, its data files, the imports
-- of it rewritten, the team's own tiers, links in the way, and undoing
-- (and surviving a kill in) each kind of operation. The real binary and
-- real pytest.
local fs = require "novapipe.fs"
local json = require "novapipe.json"
local lfs = require "lfs"
local process = require "novapipe.process"
local H = require "spec.support.h"
local S = require "spec.support.migrate"

local T = "backend/app/tests/"

local function with(base, more)
  local t = {}
  for k, v in pairs(base) do t[k] = v end
  for k, v in pairs(more or {}) do t[k] = v end
  return t
end

local BASE = {
  ["pytest.ini"] = "[pytest]\nmarkers =\n  integration: needs services\n",
  ["backend/__init__.py"] = "", ["backend/app/__init__.py"] = "", [T .. "__init__.py"] = "",
}

describe("novapipe run migrate, for what a moved test needs", function()
  local keep = H.temporaries(after_each)

  it("moves two test_models.py bound for one tier each below its source directory, __init__.py as it had", function()
    local root = keep(H.tree(with(BASE, {
      [T .. "unit/__init__.py"] = "",
      [T .. "unit/test_models.py"] = "def test_unit_model():\n    pass\n",
      -- legacy/ is no package
      [T .. "legacy/test_models.py"] = "def test_legacy_model():\n    pass\n",
      [T .. "unit/api/__init__.py"] = "",
      [T .. "unit/api/test_x.py"] = "def test_x():\n    pass\n",
    })))
    local before = S.snapshot(root)
    for _, layout in ipairs({ "keep", "flatten" }) do
      local r = S.run(root, { "--execute", "--layout", layout })
      assert.equal(0, r.code, r.stdout .. r.stderr)
      assert.matches(T .. "unit/test_models%.py %-> " .. T .. "standalone/unit/test_models%.py\n", r.stdout)
      assert.matches(T .. "legacy/test_models%.py %-> " .. T .. "standalone/legacy/test_models%.py\n", r.stdout)
      assert.matches("3 files moved; pytest collects the same 3 tests before and after", r.stdout)
      assert.is_nil(r.stdout:find("stays:", 1, true))
      -- the sub-path below the first directory where nothing collides
      -- (flatten: straight into the tier)
      assert.matches(T .. "unit/api/test_x%.py %-> " .. T .. (layout == "keep" and "standalone/api/test_x%.py" or
        "standalone/test_x%.py") .. "\n", r.stdout)
      assert.equal("file", lfs.attributes(root .. "/" .. T .. "standalone/unit/__init__.py", "mode"))
      assert.is_nil(lfs.attributes(root .. "/" .. T .. "standalone/legacy/__init__.py"))
      local p = S.pytest(root, T)
      assert.equal(0, p.code, p.stdout)
      assert.matches("3 passed", p.stdout)
      assert.equal(0, S.run(root, { "--undo" }).code)
      assert.same(before, S.snapshot(root))
    end
  end)

  describe("with a conftest.py at the destination", function()
    local LEGACY_CONFTEST = table.concat({
      "import json",
      "import os.path as osp",
      "import pytest",
      "from collections import OrderedDict as OD",
      "",
      "",
      "def _helper():",
      "    return 1",
      "",
      "",
      "@pytest.fixture",
      "def record():",
      "    return json.loads('{\"a\": 1}')",
      "",
      "",
      "@pytest.fixture(params=[1, 2])",
      "def ordered(request, record):",
      "    # keeps the order",
      "    return OD(record, n=request.param, sep=osp.sep)",
      "",
      "",
      "@pytest.fixture",
      "def helped():",
      "    return _helper()",
      "",
    }, "\n")
    local STANDALONE_CONFTEST = "import pytest\n\n@pytest.fixture\ndef existing():\n    return 1\n"
    local TREE = with(BASE, {
      [T .. "legacy/conftest.py"] = LEGACY_CONFTEST,
      [T .. "legacy/test_rec.py"] = "def test_rec(ordered):\n    assert ordered['a'] == 1\n",
      [T .. "standalone/__init__.py"] = "",
      [T .. "standalone/conftest.py"] = STANDALONE_CONFTEST,
      [T .. "standalone/test_existing.py"] = "def test_existing(existing):\n    assert existing\n",
    })

    it("merges the fixtures the moved tests need into it, with the imports they use, and --undo restores it", function()
      local root = keep(H.tree(TREE))
      local before = S.snapshot(root)
      local r = S.run(root, { "--execute", "--verify-run" })
      assert.equal(0, r.code, r.stdout .. r.stderr)
      assert.matches(T .. "standalone/conftest%.py: fixtures record, ordered merged from " .. T
        .. "legacy/conftest%.py, with the imports they use\n", r.stdout)
      assert.equal(STANDALONE_CONFTEST .. "\n\n"
        .. "# Fixtures from " .. T .. "legacy/conftest.py, merged by novapipe migrate for the tests it moved here\n"
        .. "import json\nimport os.path as osp\nfrom collections import OrderedDict as OD\n\n\n"
        .. "@pytest.fixture\ndef record():\n    return json.loads('{\"a\": 1}')\n\n\n"
        .. "@pytest.fixture(params=[1, 2])\ndef ordered(request, record):\n    # keeps the order\n"
        .. "    return OD(record, n=request.param, sep=osp.sep)\n",
        H.read(root .. "/" .. T .. "standalone/conftest.py"))
      -- the original stays for the tests that stay
      assert.equal(LEGACY_CONFTEST, H.read(root .. "/" .. T .. "legacy/conftest.py"))
      local p = S.pytest(root, T)
      assert.equal(0, p.code, p.stdout)
      assert.matches("3 passed", p.stdout)
      assert.equal(0, S.run(root, { "--undo" }).code)
      assert.same(before, S.snapshot(root))
    end)

    it("keeps the test where it is, saying why, when a name would clash or a fixture uses more than imports", function()
      local root = keep(H.tree(with(TREE, {
        [T .. "legacy2/conftest.py"] = "import pytest\n@pytest.fixture\ndef existing():\n    return 2\n",
        [T .. "legacy2/test_clash.py"] = "def test_clash(existing):\n    assert existing == 2\n",
        [T .. "legacy/test_helped.py"] = "def test_helped(helped):\n    assert helped == 1\n",
      })))
      local before = S.snapshot(root)
      local r = S.run(root, { "--analyze" })
      assert.equal(0, r.code, r.stderr)
      assert.matches("stays: " .. T .. "legacy2/test_clash%.py: it needs fixture existing from " .. T
        .. "legacy2/conftest%.py, which is not in scope at " .. T .. "standalone; merging it into " .. T
        .. "standalone/conftest%.py would not be safe %(fixture existing: " .. T .. "standalone/conftest%.py already "
        .. "has a fixture of that name%)\n", r.stdout)
      assert.matches("stays: " .. T .. "legacy/test_helped%.py: [^\n]*%(fixture helped uses _helper, which " .. T
        .. "legacy/conftest%.py defines %(only fixtures and the imports they use are merged%)%)\n", r.stdout)
      -- the test that can move still does
      assert.matches(T .. "legacy/test_rec%.py %-> " .. T .. "standalone/test_rec%.py\n", r.stdout)
      assert.same(before, S.snapshot(root))
    end)

    it("keeps the test where it is when that conftest.py is a symbolic link", function()
      local root = keep(H.tree(TREE))
      local outside = keep(H.tmpdir())
      H.write(outside .. "/conftest.py", STANDALONE_CONFTEST)
      assert(os.remove(root .. "/" .. T .. "standalone/conftest.py"))
      assert(lfs.link(outside .. "/conftest.py", root .. "/" .. T .. "standalone/conftest.py", true))
      local r = S.run(root, { "--execute" })
      assert.equal(0, r.code, r.stdout .. r.stderr)
      assert.matches("stays: " .. T .. "legacy/test_rec%.py: [^\n]*" .. T .. "standalone/conftest%.py is not a "
        .. "regular file", r.stdout)
      assert.equal(STANDALONE_CONFTEST, H.read(outside .. "/conftest.py"))
    end)
  end)

  it("takes the data files a test reads through __file__ along, keeping the path valid, and --undo brings them back", function()
    local root = keep(H.tree(with(BASE, {
      [T .. "reports/__init__.py"] = "",
      [T .. "reports/test_report.py"] = table.concat({
        "import json",
        "import pathlib",
        "HERE = pathlib.Path(__file__).parent",
        "def test_rows():",
        "    assert json.loads((HERE / 'fixtures' / 'rows.json').read_text()) == [1, 2]",
        "def test_schema():",
        "    assert pathlib.Path(__file__).with_name('schema.txt').read_text() == 'id\\n'",
        "",
      }, "\n"),
      [T .. "reports/fixtures/rows.json"] = "[1, 2]",
      [T .. "reports/schema.txt"] = "id\n",
      -- read by a file that stays (a conftest.py): the test stays with it
      [T .. "shared/conftest.py"] = "import pathlib\nSHARED = (pathlib.Path(__file__).parent / 'shared.csv').read_text()\n",
      [T .. "shared/shared.csv"] = "x\n",
      [T .. "shared/test_shared.py"] = "import pathlib\n"
        .. "def test_shared():\n    assert (pathlib.Path(__file__).parent / 'shared.csv').read_text() == 'x\\n'\n",
    })))
    local before = S.snapshot(root)
    local r = S.run(root, { "--execute", "--verify-run" })
    assert.equal(0, r.code, r.stdout .. r.stderr)
    assert.matches(T .. "reports/fixtures %-> " .. T .. "standalone/fixtures  %(read through __file__ by the moved "
      .. "tests%)\n", r.stdout)
    assert.matches(T .. "reports/schema%.txt %-> " .. T .. "standalone/schema%.txt  %(read through __file__", r.stdout)
    assert.matches("stays: " .. T .. "shared/test_shared%.py: it reads shared%.csv through __file__, and " .. T
      .. "shared/conftest%.py, which stays, names it too\n", r.stdout)
    assert.matches("with the same outcomes", r.stdout)
    assert.equal("[1, 2]", H.read(root .. "/" .. T .. "standalone/fixtures/rows.json"))
    assert.is_nil(lfs.attributes(root .. "/" .. T .. "reports/fixtures"))
    assert.equal("x\n", H.read(root .. "/" .. T .. "shared/shared.csv"))
    local p = S.pytest(root, T)
    assert.equal(0, p.code, p.stdout)
    assert.matches("3 passed", p.stdout)
    assert.equal(0, S.run(root, { "--undo" }).code)
    assert.same(before, S.snapshot(root))
  end)

  describe("with a test module imported by its absolute name", function()
    local TREE = {
      ["pytest.ini"] = "[pytest]\nmarkers =\n  integration: needs services\n",
      ["novapipe.lua"] = 'return { tests = "tests" }\n',
      ["tests/__init__.py"] = "",
      ["tests/test_databases.py"] = "import pytest\npytestmark = pytest.mark.integration\nROWS = [1, 2]\n"
        .. "def test_db():\n    assert ROWS\n",
      ["tests/unit/__init__.py"] = "",
      ["tests/unit/test_uses_db.py"] = "from tests.test_databases import ROWS\n"
        .. "def test_rows():\n    assert len(ROWS) == 2\n",
      -- not a test: it stays, its import rewritten in place
      ["tests/support.py"] = "from tests.test_databases import (\n    ROWS as R,\n)\nCOUNT = len(R)\n",
      ["tests/unit/test_support.py"] = "from tests.support import COUNT\ndef test_count():\n    assert COUNT == 2\n",
    }

    it("rewrites the imports of it where it moves, in files that move and files that stay, and --undo restores them", function()
      local root = keep(H.tree(TREE))
      local before = S.snapshot(root)
      local r = S.run(root, { "--execute", "--verify-run" })
      assert.equal(0, r.code, r.stdout .. r.stderr)
      assert.matches("tests/test_databases%.py %-> tests/integration/test_databases%.py\n", r.stdout)
      assert.matches("tests/standalone/test_uses_db%.py: imports rewritten %(line 1: tests%.test_databases %-> "
        .. "tests%.integration%.test_databases%)\n", r.stdout)
      assert.matches("tests/support%.py: imports rewritten %(line 1: tests%.test_databases %-> "
        .. "tests%.integration%.test_databases%)\n", r.stdout)
      -- only files whose contents change are said to be rewritten
      assert.is_nil(r.stdout:find("test_support.py: imports rewritten", 1, true))
      assert.equal("from tests.integration.test_databases import ROWS\ndef test_rows():\n    assert len(ROWS) == 2\n",
        H.read(root .. "/tests/standalone/test_uses_db.py"))
      assert.equal("from tests.integration.test_databases import (\n    ROWS as R,\n)\nCOUNT = len(R)\n",
        H.read(root .. "/tests/support.py"))
      local p = S.pytest(root, "tests")
      assert.equal(0, p.code, p.stdout)
      assert.matches("3 passed", p.stdout)
      assert.equal(0, S.run(root, { "--undo" }).code)
      assert.same(before, S.snapshot(root))
    end)

    it("keeps it in place when a plain `import` names it, saying why", function()
      local root = keep(H.tree(with(TREE, {
        ["tests/unit/test_plain.py"] = "import tests.test_databases\ndef test_plain():\n    assert tests.test_databases.ROWS\n",
      })))
      local r = S.run(root, { "--analyze" })
      assert.equal(0, r.code, r.stderr)
      assert.matches("stays: tests/test_databases%.py: tests/unit/test_plain%.py imports it with `import "
        .. "tests%.test_databases` %(line 1%): only `import tests%.test_databases as NAME` and `from "
        .. "tests%.test_databases import %.%.%.` are rewritten\n", r.stdout)
      assert.is_nil(r.stdout:find("imports rewritten", 1, true))
    end)

    it("rewrites `import tests.x as NAME`, whose uses go through NAME, beside other modules on the line", function()
      local root = keep(H.tree(with(TREE, {
        ["tests/unit/test_alias.py"] = "import os, tests.test_databases as db\ndef test_alias():\n"
          .. "    assert db.ROWS and os.sep\n",
      })))
      local r = S.run(root, { "--execute", "--verify-run" })
      assert.equal(0, r.code, r.stdout .. r.stderr)
      assert.matches("tests/standalone/test_alias%.py: imports rewritten %(line 1: tests%.test_databases %-> "
        .. "tests%.integration%.test_databases%)\n", r.stdout)
      assert.equal("import os, tests.integration.test_databases as db\ndef test_alias():\n    assert db.ROWS and os.sep\n",
        H.read(root .. "/tests/standalone/test_alias.py"))
      local p = S.pytest(root, "tests")
      assert.equal(0, p.code, p.stdout)
      assert.matches("4 passed", p.stdout)
    end)
  end)

  describe("with a tier of the team's own", function()
    local TREE = with(BASE, {
      ["novapipe.lua"] = 'return { tiers = { contract = { after = "venv" } } }\n',
      [T .. "contract/__init__.py"] = "",
      [T .. "contract/test_api_contract.py"] = "import pytest\npytestmark = pytest.mark.integration\n"
        .. "def test_contract():\n    pass\n",
      [T .. "standalone/__init__.py"] = "",
      [T .. "standalone/test_needs_venv.py"] = "import json\nimport fastapi\ndef test_app():\n    assert json\n",
    })

    it("leaves a file in a configured tier's directory where the team put it, and --reclassify moves it", function()
      local root = keep(H.tree(TREE))
      local before = S.snapshot(root)
      local r = S.run(root, { "--execute" })
      assert.equal(0, r.code, r.stdout .. r.stderr)
      assert.matches("stays: " .. T .. "contract/test_api_contract%.py: it is in the contract tier's directory, where "
        .. "the team put it %(analyze says integration; %-%-reclassify moves it%)\n", r.stdout)
      assert.matches("stays: " .. T .. "standalone/test_needs_venv%.py: it is in the standalone tier's directory",
        r.stdout)
      assert.matches("nothing to move", r.stdout)
      assert.same(before, S.snapshot(root))
      r = S.run(root, { "--execute", "--reclassify", "--unverified" })
      assert.equal(0, r.code, r.stdout .. r.stderr)
      assert.matches(T .. "contract/test_api_contract%.py %-> " .. T .. "integration/test_api_contract%.py\n", r.stdout)
      assert.matches(T .. "standalone/test_needs_venv%.py %-> " .. T .. "venv/test_needs_venv%.py\n", r.stdout)
      assert.is_not_nil(lfs.attributes(root .. "/" .. T .. "integration/test_api_contract.py"))
      assert.equal(0, S.run(root, { "--undo" }).code)
      assert.same(before, S.snapshot(root))
    end)

    it("moves a file analyze puts in the team's tier by its marker there, and leaves an empty file", function()
      local root = keep(H.tree(with(TREE, {
        [T .. "unit/__init__.py"] = "",
        [T .. "unit/test_pact.py"] = "import pytest\n\n@pytest.mark.contract\ndef test_pact():\n    pass\n",
        [T .. "unit/test_nothing_yet.py"] = "# def test_later():\n#     pass\n",
      })))
      local before = S.snapshot(root)
      local r = S.run(root, { "--execute" })
      assert.equal(0, r.code, r.stdout .. r.stderr)
      assert.matches(T .. "unit/test_pact%.py %-> " .. T .. "contract/test_pact%.py\n", r.stdout)
      assert.matches("stays: " .. T .. "unit/test_nothing_yet%.py: no tests in it", r.stdout)
      assert.is_not_nil(lfs.attributes(root .. "/" .. T .. "contract/test_pact.py"))
      assert.is_not_nil(lfs.attributes(root .. "/" .. T .. "unit/test_nothing_yet.py"))
      assert.equal(0, S.run(root, { "--undo" }).code)
      assert.same(before, S.snapshot(root))
    end)
  end)

  it("says after a migration into venv/ that a plain pytest skips it, with the setting that fixes it", function()
    local tree = with(BASE, { [T .. "unit/test_app.py"] = "import json\nimport email.mime\nimport pytest\n"
      .. "pytest.importorskip('json')\ndef test_app():\n    assert json\n" })
    tree[T .. "unit/test_app.py"] = "import fastapi\ndef test_app():\n    assert fastapi\n"
    local root = keep(H.tree(tree))
    local r = S.run(root, { "--execute", "--unverified" })
    assert.equal(0, r.code, r.stdout .. r.stderr)
    assert.matches(T .. "unit/test_app%.py %-> " .. T .. "venv/test_app%.py", r.stdout)
    assert.matches("note: a plain `pytest backend/app/tests` skips the tier venv %(matches 'venv'%) through pytest's "
      .. "default norecursedirs; [^\n]*set in pytest%.ini %[pytest%]: norecursedirs = %*%.egg %.%* _darcs build CVS dist "
      .. "node_modules {arch}\n", r.stdout)
    assert.equal(0, S.run(root, { "--undo" }).code)
    -- a project whose norecursedirs leaves venv alone hears nothing
    H.write(root .. "/pytest.ini", "[pytest]\nnorecursedirs = .git\n")
    r = S.run(root, { "--execute", "--unverified" })
    assert.equal(0, r.code, r.stdout .. r.stderr)
    assert.is_nil(r.stdout:find("norecursedirs", 1, true))
  end)

  it("moves nothing through a tier directory that is a symbolic link, nor a test file that is one", function()
    local root = keep(H.tree(with(BASE, {
      [T .. "unit/test_rules.py"] = "def test_rule():\n    pass\n",
      ["elsewhere/test_real.py"] = "def test_real():\n    pass\n",
    })))
    local outside = keep(H.tmpdir())
    assert(lfs.link(outside, root .. "/" .. T .. "standalone", true))
    assert(lfs.link("../../../../elsewhere/test_real.py", root .. "/" .. T .. "unit/test_linked.py", true))
    local r = S.run(root, { "--execute" })
    assert.equal(0, r.code, r.stdout .. r.stderr)
    assert.matches("stays: " .. T .. "unit/test_rules%.py: " .. T .. "standalone is a symbolic link: nothing is moved "
      .. "through one\n", r.stdout)
    assert.matches("stays: " .. T .. "unit/test_linked%.py: it is a symbolic link, which is not moved\n", r.stdout)
    assert.equal("link", lfs.symlinkattributes(root .. "/" .. T .. "unit/test_linked.py", "mode"))
    assert.same({}, assert(fs.walk(outside)))
    assert.is_not_nil(lfs.attributes(root .. "/" .. T .. "unit/test_rules.py"))
  end)

  describe("killed with SIGKILL amid a merge, a data move and import rewrites", function()
    local TREE = {
      ["pytest.ini"] = "[pytest]\nmarkers =\n  integration: needs services\n",
      ["novapipe.lua"] = 'return { tests = "tests" }\n',
      ["tests/__init__.py"] = "",
      ["tests/test_databases.py"] = "import pytest\npytestmark = pytest.mark.integration\nROWS = [1, 2]\n"
        .. "def test_db():\n    assert ROWS\n",
      ["tests/support.py"] = "from tests.test_databases import ROWS\n",
      ["tests/legacy/conftest.py"] = "import json\nimport pytest\n@pytest.fixture\ndef record():\n"
        .. "    return json.loads('[1]')\n",
      ["tests/legacy/test_rec.py"] = "import pathlib\nfrom tests.test_databases import ROWS\n"
        .. "def test_rec(record):\n    assert record and ROWS\n"
        .. "    assert (pathlib.Path(__file__).parent / 'rec.txt').read_text() == 'r'\n",
      ["tests/legacy/rec.txt"] = "r",
      ["tests/standalone/__init__.py"] = "",
      -- merged into, and its import of the module that moves rewritten
      ["tests/standalone/conftest.py"] = "import pytest\nfrom tests.test_databases import ROWS as _ROWS\n",
      ["tests/standalone/test_here.py"] = "def test_here():\n    pass\n",
    }

    it("is undone byte for byte, or completed, after each kind of operation", function()
      -- a first migration of the same tree says which operations there are
      local probe = keep(H.tree(TREE))
      local r = S.run(probe, { "--execute" })
      assert.equal(0, r.code, r.stdout .. r.stderr)
      local completed = S.snapshot(probe)
      assert.equal("import pytest\nfrom tests.integration.test_databases import ROWS as _ROWS\n\n\n"
        .. "# Fixtures from tests/legacy/conftest.py, merged by novapipe migrate for the tests it moved here\n"
        .. "import json\n\n\n@pytest.fixture\ndef record():\n    return json.loads('[1]')\n",
        completed["tests/standalone/conftest.py"])
      assert.equal("r", completed["tests/standalone/rec.txt"])
      local ops = assert(json.read(probe .. "/.novapipe/migration.undo")).ops
      local kinds, points = {}, {}
      for i, op in ipairs(ops) do
        local kind = op.op == "move" and (op.from:find("rec.txt", 1, true) and "data" or "move")
          or op.op == "rewrite" and (op.path:find("conftest", 1, true) and "merge" or "rewrite") or op.op
        if not kinds[kind] then
          kinds[kind] = true
          points[#points + 1] = i
        end
      end
      for _, k in ipairs({ "mkdir", "create", "move", "data", "merge", "rewrite" }) do
        assert.is_true(kinds[k], k)
      end
      points[#points + 1] = #ops
      for rel in pairs(completed) do
        if rel:find("^%.novapipe/") then completed[rel] = nil end
      end
      for _, after in ipairs(points) do
        local root = keep(H.tree(TREE))
        local before = S.snapshot(root)
        r = S.run(root, { "--execute" }, { env = { NOVAPIPE_FAULT_KILL_AFTER_OPS = tostring(after) } })
        assert.equal(9, r.signal, after)
        local copy = keep(H.tmpdir())
        assert.equal(0, process.run({ "cp", "-a", root .. "/.", copy }).code)
        r = S.run(root, { "--undo" })
        assert.equal(0, r.code, r.stderr)
        assert.same(before, S.snapshot(root), "undo after " .. after)
        r = S.run(copy, { "--execute" })
        assert.equal(0, r.code, r.stdout .. r.stderr)
        assert.matches("Completing the migration", r.stdout)
        local now = S.snapshot(copy)
        for rel in pairs(now) do
          if rel:find("^%.novapipe/") then now[rel] = nil end
        end
        assert.same(completed, now, "completed after " .. after)
      end
    end)
  end)
end)
