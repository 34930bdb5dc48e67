-- analyze on trees that reproduce what real projects do (the patterns the
-- corpus in bench/analyze-corpus found): the real binary, verdicts read
-- from its JSON report. Projects keep their tests in tests/ at the root.
local json = require "novapipe.json"
local H = require "spec.support.h"

local function analyze(root, path, extra)
  local args = { "-C", root, "--no-color", "run", "analyze", "--path", path or "tests", "--output", "report.json" }
  for _, a in ipairs(extra or {}) do args[#args + 1] = a end
  local r = H.novapipe(args)
  assert(r.code == 0, r.stderr)
  return json.read(root .. "/report.json"), r
end

local function detail(report, rel)
  local d = report.test_details["tests/" .. rel]
  assert(d, "no detail for " .. rel)
  return d
end

local function reason(d, pattern)
  for _, r in ipairs(d.reasons) do
    if r:find(pattern) then return true end
  end
  return false, table.concat(d.reasons, " | ")
end

local roots = {}
local function project(files)
  local root = H.tree(files)
  roots[#roots + 1] = root
  return root
end

describe("analyze on real patterns", function()
  teardown(function()
    for _, r in ipairs(roots) do H.rmrf(r) end
  end)

  describe("reaching a service", function()
    local report
    setup(function()
      report = analyze(project({
        ["app/__init__.py"] = "",
        ["app/core/__init__.py"] = "",
        ["app/core/config.py"] = "class Settings:\n    DATABASE_URI = 'postgresql://db/app'\nsettings = Settings()\n",
        ["app/core/db.py"] = table.concat({
          "from sqlalchemy import create_engine",
          "from app.core.config import settings",
          "",
          "engine = create_engine(settings.DATABASE_URI)",
          "",
        }, "\n"),
        ["app/models.py"] = "import sqlalchemy\nclass User:\n    pass\n",
        ["app/main.py"] = table.concat({
          "from contextlib import asynccontextmanager",
          "import asyncpg",
          "from fastapi import FastAPI",
          "",
          "@asynccontextmanager",
          "async def lifespan(app):",
          "    app.state.pool = await asyncpg.create_pool('postgresql://db/app')",
          "    yield",
          "",
          "def create_app():",
          "    return FastAPI(lifespan=lifespan)",
          "",
        }, "\n"),
        ["tests/__init__.py"] = "",
        ["tests/conftest.py"] = table.concat({
          "import pytest",
          "from sqlmodel import Session",
          "from app.core.db import engine",
          "",
          "@pytest.fixture",
          "def db():",
          "    with Session(engine) as session:",
          "        yield session",
          "",
        }, "\n"),
        ["tests/test_users.py"] = "from app.models import User\n\ndef test_create(db):\n    db.add(User())\n",
        -- importing the database layer without calling into it
        ["tests/test_import_only.py"] = "from app.core import db\n\ndef test_a():\n    assert db\n",
        ["tests/recreate/conftest.py"] = table.concat({
          "import pytest",
          "from sqlalchemy_utils import create_database, database_exists",
          "",
          "@pytest.fixture(scope='session', autouse=True)",
          "def database():",
          "    if not database_exists('postgresql://db/test'):",
          "        create_database('postgresql://db/test')",
          "",
        }, "\n"),
        ["tests/recreate/test_any.py"] = "def test_a():\n    assert True\n",
        ["tests/api/helpers.py"] = "from fastapi.testclient import TestClient\nfrom app.main import create_app\n\n"
          .. "def client():\n    return TestClient(create_app())\n",
        ["tests/api/test_health.py"] = "from tests.api.helpers import client\n\ndef test_health():\n    assert client().get('/')\n",
        ["tests/test_memory.py"] = table.concat({
          "from sqlalchemy import create_engine",
          "URL = 'sqlite:///:memory:'",
          "",
          "def test_literal():",
          "    create_engine('sqlite://')",
          "",
          "def test_constant():",
          "    create_engine(URL)",
          "",
        }, "\n"),
        ["tests/test_file_sqlite.py"] = "from sqlalchemy import create_engine\n\ndef test_a():\n"
          .. "    create_engine('sqlite:///./test.db')\n",
      }))
    end)

    it("follows a fixture into project code that makes the engine, and says each hop", function()
      local d = detail(report, "test_users.py")
      assert.equal("integration", d.category)
      assert.is_true(reason(d, "^integration: fixture db %(conftest.py:6%) %-> app.core.db.engine %(app/core/db.py:4%) "
        .. "%-> sqlalchemy.create_engine$"))
    end)

    it("keeps a test that imports the database layer without calling into it venv", function()
      local d = detail(report, "test_import_only.py")
      assert.equal("venv", d.category)
    end)

    it("counts an autouse session fixture that recreates the database", function()
      local d = detail(report, "recreate/test_any.py")
      assert.equal("integration", d.category)
      assert.is_true(reason(d, "^integration: fixture database %(conftest.py:5%) %-> sqlalchemy_utils.database_exists$"))
    end)

    it("follows a test helper to an app whose lifespan opens a pool", function()
      local d = detail(report, "api/test_health.py")
      assert.equal("integration", d.category)
      assert.is_true(reason(d, "^integration: test test_health %(test_health.py:3%) %-> tests.api.helpers.client "
        .. "%(tests/api/helpers.py:4%) %-> app.main.create_app %(app/main.py:10%) %-> lifespan %(app/main.py:6%) "
        .. "%-> asyncpg.create_pool$"))
    end)

    it("lets a literally in-memory database be, not a file one", function()
      assert.equal("venv", detail(report, "test_memory.py").category)
      assert.equal("integration", detail(report, "test_file_sqlite.py").category)
    end)
  end)

  describe("fixtures wherever pytest finds them", function()
    local report
    setup(function()
      local pg = "import pytest\nimport psycopg2\n\n@pytest.fixture\ndef pg():\n    return psycopg2.connect('')\n"
      report = analyze(project({
        ["tests/__init__.py"] = "",
        ["tests/fixtures/__init__.py"] = "",
        ["tests/fixtures/db.py"] = pg,
        ["tests/fixtures/cache.py"] = "import pytest\nimport redis\n\n@pytest.fixture\ndef store():\n"
          .. "    return redis.Redis()\n",
        ["tests/plugins/conftest.py"] = "pytest_plugins = ['tests.fixtures.db']\n",
        ["tests/plugins/test_plugin.py"] = "def test_a(pg):\n    pass\n",
        ["tests/star/conftest.py"] = "from tests.fixtures.cache import *\n",
        ["tests/star/test_star.py"] = "def test_a(store):\n    pass\n",
        ["tests/named/conftest.py"] = "from tests.fixtures.db import pg\n",
        ["tests/named/test_named.py"] = "def test_a(pg):\n    pass\n",
        ["tests/test_class_fixture.py"] = "import pytest\nimport psycopg2\n\nclass TestX:\n    @pytest.fixture\n"
          .. "    def conn(self):\n        return psycopg2.connect('')\n\n    def test_a(self, conn):\n        pass\n",
        ["tests/test_argnames.py"] = table.concat({
          "import pytest",
          "",
          "@pytest.mark.parametrize(['pg', 'n'], [(1, 2)])",
          "def test_list(pg, n):",
          "    pass",
          "",
          "@pytest.mark.parametrize(argnames=('pg', 'n'), argvalues=[(1, 2)])",
          "def test_keyword(pg, n):",
          "    pass",
          "",
          "@pytest.mark.parametrize('pg, n', [(1, 2)])",
          "def test_spaced(pg, n):",
          "    pass",
          "",
        }, "\n"),
        ["tests/plugins/test_indirect.py"] = "import pytest\n\n@pytest.mark.parametrize('pg', [1], indirect=True)\n"
          .. "def test_a(pg):\n    pass\n",
      }))
    end)

    it("finds a fixture in a pytest_plugins module", function()
      local d = detail(report, "plugins/test_plugin.py")
      assert.equal("integration", d.category)
      assert.is_true(reason(d, "^integration: fixture pg %(db.py:5%) %-> psycopg2.connect$"))
    end)

    it("finds fixtures a conftest star-imports or imports by name", function()
      assert.equal("integration", detail(report, "star/test_star.py").category)
      assert.equal("integration", detail(report, "named/test_named.py").category)
    end)

    it("finds a fixture a test class defines", function()
      assert.equal("integration", detail(report, "test_class_fixture.py").category)
    end)

    it("reads parametrize argnames in every form, and indirect ones as fixtures", function()
      local d = detail(report, "test_argnames.py")
      assert.equal("standalone", d.category, table.concat(d.reasons, " | "))
      assert.same({}, d.fixtures)
      assert.equal("integration", detail(report, "plugins/test_indirect.py").category)
    end)
  end)

  describe("the test tree, its paths and its packages", function()
    local root
    setup(function()
      root = project({
        ["app/__init__.py"] = "",
        ["app/models/__init__.py"] = "import sqlalchemy\n",
        ["app/models/plain.py"] = "def f():\n    return 1\n",
        ["tests/__init__.py"] = "",
        ["tests/helpers.py"] = "import json\n\ndef fake_pool():\n    return {}\n",
        ["tests/test_helper_abs.py"] = "from tests.helpers import fake_pool\n\ndef test_a():\n    assert fake_pool() == {}\n",
        ["tests/test_helper_rel.py"] = "from .helpers import fake_pool\n\ndef test_a():\n    assert fake_pool() == {}\n",
        ["tests/test_package_init.py"] = "from app.models.plain import f\n\ndef test_a():\n    assert f()\n",
        ["tests/test_cpython_support.py"] = "import _testcapi\nimport _testinternalcapi\nimport xxsubtype\n\n"
          .. "def test_a():\n    pass\n",
        ["tests/test_runtime_module.py"] = "def test_a(tmp_path):\n    import made_by_the_test\n",
        ["tests/test_empty.py"] = "",
        ["tests/test_commented.py"] = "# def test_a():\n#     pass\n",
        ["tests/test_only_autouse.py"] = "import pytest\nimport psycopg2\n\n@pytest.fixture(autouse=True)\n"
          .. "def conn():\n    return psycopg2.connect('')\n",
      })
    end)

    it("takes test-tree modules as local helpers however they are imported", function()
      local report = analyze(root)
      assert.equal("standalone", detail(report, "test_helper_abs.py").category)
      assert.equal("standalone", detail(report, "test_helper_rel.py").category)
    end)

    it("does not collect what pytest would not recurse into: a virtualenv, installed packages, hidden directories", function()
      local r2 = project({
        ["tests/test_a.py"] = "def test_a():\n    pass\n",
        [".venv/lib/python3.11/site-packages/pkg/tests/test_pkg.py"] = "import numpy\ndef test_b():\n    pass\n",
        ["env/lib/python3.11/site-packages/other/test_other.py"] = "def test_c():\n    pass\n",
        [".tox/py311/test_tox.py"] = "def test_d():\n    pass\n",
      })
      local report = analyze(r2, ".")
      local files = {}
      for f in pairs(report.test_details) do files[#files + 1] = f end
      assert.same({ "./tests/test_a.py" }, files)
    end)

    it("gives the same report for every spelling of --path", function()
      analyze(root, "tests")
      local a = H.read(root .. "/report.json")
      for _, spelling in ipairs({ "./tests", "tests/", "./tests//" }) do
        analyze(root, spelling)
        assert.equal(a, H.read(root .. "/report.json"), spelling)
      end
    end)

    it("counts what a package's __init__.py imports", function()
      local d = detail(analyze(root), "test_package_init.py")
      assert.equal("venv", d.category)
      assert.is_true(reason(d, "project code that needs sqlalchemy"))
    end)

    it("takes CPython's test-support modules for the standard library", function()
      assert.equal("standalone", detail(analyze(root), "test_cpython_support.py").category)
    end)

    it("does not raise the tier for a module a test makes as it runs, and says so", function()
      local d = detail(analyze(root), "test_runtime_module.py")
      assert.equal("standalone", d.category)
      assert.is_true(reason(d, "^unknown: imports made_by_the_test %(test_runtime_module.py:2%) inside test_a%(%)"))
    end)

    it("reports a file with no test as empty, not by an autouse fixture that never runs", function()
      local report = analyze(root)
      for _, f in ipairs({ "test_empty.py", "test_commented.py", "test_only_autouse.py" }) do
        assert.equal("empty", detail(report, f).category, f)
      end
      assert.equal(3, report.summary.empty_count)
      assert.same({ "tests/test_commented.py", "tests/test_empty.py", "tests/test_only_autouse.py" },
        (function() local l = report.categorized_tests.empty; table.sort(l); return l end)())
      local _, r = analyze(root)
      assert.matches("Empty %(no tests%): 3 files", r.stdout)
    end)
  end)

  describe("security by what a file tests", function()
    local report
    setup(function()
      report = analyze(project({
        ["tests/__init__.py"] = "",
        ["tests/security_helpers.py"] = "def log_in(client):\n    return client\n",
        ["tests/conftest.py"] = "import pytest\n\n@pytest.fixture\ndef superuser_token_headers():\n    return {}\n"
          .. "@pytest.fixture\ndef mock_auth():\n    return {}\n",
        ["tests/test_login.py"] = "def test_ok():\n    pass\n",
        ["tests/test_items.py"] = "def test_login_works():\n    pass\n\ndef test_login_refused():\n    pass\n"
          .. "def test_list():\n    pass\n",
        ["tests/test_headers.py"] = "def test_read(superuser_token_headers):\n    pass\n",
        ["tests/test_author.py"] = "def test_author_name():\n    pass\n\ndef test_authored():\n    pass\n",
        ["tests/test_one_of_many.py"] = "def test_password_field_is_nullable():\n    pass\n"
          .. table.concat((function() local t = {} for i = 1, 8 do t[i] = ("def test_other_%d():\n    pass\n"):format(i) end return t end)()),
        ["tests/test_uses_helper.py"] = "from tests.security_helpers import log_in\n\ndef test_orders():\n    assert log_in(1)\n",
        ["tests/test_mocked.py"] = "def test_a(mock_auth):\n    pass\n",
        ["tests/test_classes.py"] = "class TestPermissions:\n    def test_a(self):\n        pass\n",
      }))
    end)

    it("by a word of the path, of its tests' names, of a fixture's name or of a test class's", function()
      for _, f in ipairs({ "test_login.py", "test_items.py", "test_headers.py", "test_classes.py" }) do
        assert.is_true(detail(report, f).is_security, f)
      end
      assert.is_true(reason(detail(report, "test_items.py"), "^security: 2 of its 3 tests are about it: test_login_works"))
      assert.is_true(reason(detail(report, "test_headers.py"), "^security: it requests fixture superuser_token_headers, with the word"))
    end)

    it("as whole words, not for one test among many, a mock, or a helper imported to log in", function()
      for _, f in ipairs({ "test_author.py", "test_one_of_many.py", "test_uses_helper.py", "test_mocked.py" }) do
        assert.is_false(detail(report, f).is_security, f)
      end
    end)
  end)

  describe("the team's own settings", function()
    local report
    setup(function()
      local root = project({
        ["novapipe.lua"] = table.concat({
          "return {",
          "  tests = 'tests',",
          "  tiers = { contract = { after = 'venv' } },",
          "  analyze = {",
          "    indicators = { integration = { add = { 'app.core.db' } }, contract = { 'pact' } },",
          "    connects = { add = { 'mydb.open' } },",
          "  },",
          "}",
        }, "\n"),
        ["tests/test_marked.py"] = "import pytest\n\n@pytest.mark.contract\ndef test_a():\n    pass\n",
        ["tests/test_pact.py"] = "import pact\n\ndef test_a():\n    pass\n",
        ["tests/test_added.py"] = "import app.core.db\n\ndef test_a():\n    pass\n",
        ["tests/test_default_kept.py"] = "import docker\n\ndef test_a():\n    pass\n",
        ["tests/test_connect_added.py"] = "import mydb\n\ndef test_a():\n    mydb.open('x')\n",
        ["tests/test_django.py"] = "from django.test import TestCase\n\nclass T(TestCase):\n    def test_a(self):\n        pass\n",
        ["tests/test_django_db.py"] = "import pytest\n\n@pytest.mark.django_db\ndef test_a():\n    pass\n",
      })
      report = analyze(root)
    end)

    it("puts a file in a custom tier by its marker or its indicators", function()
      assert.equal("contract", detail(report, "test_marked.py").category)
      assert.equal("contract", detail(report, "test_pact.py").category)
      assert.equal(2, report.summary.contract_count)
      assert.equal(2, #report.categorized_tests.contract)
    end)

    it("extends a list with add, keeping the defaults", function()
      assert.equal("integration", detail(report, "test_added.py").category)
      assert.equal("integration", detail(report, "test_default_kept.py").category)
      assert.equal("integration", detail(report, "test_connect_added.py").category)
    end)

    it("knows Django's database test cases and marker", function()
      assert.equal("integration", detail(report, "test_django.py").category)
      assert.equal("integration", detail(report, "test_django_db.py").category)
    end)

    it("refuses a list setting that is neither a list nor add/remove, in one line", function()
      local root = project({ ["novapipe.lua"] = "return { analyze = { connects = { plus = { 'x' } } } }\n" })
      local r = H.novapipe({ "-C", root, "run", "analyze", "--path", "." })
      assert.equal(2, r.code)
      assert.equal("novapipe: novapipe.lua: analyze.connects: 'plus' is not a list entry (to extend the list: "
        .. "{ add = {...} })\n", r.stderr)
    end)
  end)

  describe("a test file that is not a regular file", function()
    it("refuses a FIFO named like a test file instead of waiting for a writer", function()
      local root = project({ ["tests/test_ok.py"] = "def test_a():\n    pass\n" })
      assert.equal(0, os.execute(("mkfifo '%s/tests/test_fifo.py'"):format(root)) and 0 or 1)
      local report = analyze(root)
      local d = detail(report, "test_fifo.py")
      assert.equal("unknown", d.category)
      assert.matches("Invalid argument", d.errors[1], 1, true)
      assert.equal("standalone", detail(report, "test_ok.py").category)
    end)
  end)

  describe("a long dotted name", function()
    it("reads a million-component dotted name in a body in linear time", function()
      local dotted = ("x."):rep(1000000) .. "x"
      local root = project({
        ["app/__init__.py"] = "",
        ["app/db.py"] = "from sqlalchemy import create_engine\n",
        ["tests/test_long.py"] = "import app.db\n\ndef test_a():\n    app.db." .. dotted .. "()\n\n"
          .. "def test_b():\n    app." .. dotted .. "\n",
      })
      local t = os.time()
      local report = analyze(root)
      assert.equal("venv", detail(report, "test_long.py").category)
      -- (each prefix built in turn took minutes)
      assert.is_true(os.time() - t < 20, ("%d s"):format(os.time() - t))
    end)
  end)

  describe("answers that do not depend on the files read before", function()
    -- each pair: the same file, analysed after a file that walks the same
    -- cycle (or chain) first, and alone
    local shared = {
      ["app/__init__.py"] = "",
      ["app/db.py"] = "from sqlalchemy import create_engine\n\ndef get_engine():\n"
        .. "    return create_engine('postgresql://db/app')\n",
      -- a calls b calls a; a connects
      ["app/svc.py"] = "from app import db\n\ndef a():\n    b()\n    db.get_engine()\n\ndef b():\n    a()\n",
      -- x imports y imports x; x connects
      ["app/x.py"] = "from app import y\nfrom sqlalchemy import create_engine\n\ndef eng():\n"
        .. "    return create_engine('postgresql://db/x')\n",
      ["app/y.py"] = "from app import x\n\ndef f():\n    return x.eng()\n",
      -- c imports d imports c; c needs numpy
      ["app/c.py"] = "from app.d import v\nimport numpy\nv = 1\n",
      ["app/d.py"] = "from app.c import v\n",
      ["tests/__init__.py"] = "",
      ["tests/h2.py"] = "import numpy\nv = 1\n",
      ["tests/h1.py"] = "from .h2 import v\nw = 2\n",
    }
    local function chain()
      local lines = { "from app import db" }
      for i = 1, 12 do lines[#lines + 1] = ("def f%d():\n    return f%d()"):format(i, i + 1) end
      lines[#lines + 1] = "def f13():\n    return db.get_engine()\n"
      return table.concat(lines, "\n")
    end
    local first = {
      ["tests/test_1_cycle.py"] = "from app.svc import a\nfrom app.x import eng\nfrom app.c import v\n"
        .. "from .h2 import v\nfrom .h1 import w\nfrom app.chain import f1\n\n"
        .. "def test_a():\n    a()\n\ndef test_f():\n    f1()\n\ndef test_eng():\n    eng()\n",
    }
    local later = {
      ["tests/test_2_b.py"] = "from app.svc import b\n\ndef test_b():\n    b()\n",
      ["tests/test_3_f12.py"] = "from app.chain import f12\n\ndef test_f12():\n    f12()\n",
      ["tests/test_4_y.py"] = "from app.y import f\n\ndef test_y():\n    f()\n",
      ["tests/test_5_d.py"] = "from app.d import v\n\ndef test_d():\n    pass\n",
      ["tests/test_6_h1.py"] = "from .h1 import w\n\ndef test_h1():\n    pass\n",
      ["tests/test_7_pkg.py"] = "from app import d\n\ndef test_pkg():\n    pass\n",
    }
    local function files(...)
      local t = { ["app/chain.py"] = chain() }
      for _, part in ipairs({ ... }) do
        for k, v in pairs(part) do t[k] = v end
      end
      return t
    end

    it("follows a cycle or a long chain the same after another file walked it first", function()
      local together = analyze(project(files(shared, first, later)))
      local alone = analyze(project(files(shared, later)))
      local want = { ["test_2_b.py"] = "integration", ["test_3_f12.py"] = "integration", ["test_4_y.py"] = "integration",
                     ["test_5_d.py"] = "venv", ["test_6_h1.py"] = "venv", ["test_7_pkg.py"] = "venv" }
      for f, category in pairs(want) do
        assert.equal(category, detail(alone, f).category, f .. " alone")
        assert.equal(category, detail(together, f).category, f .. " after test_1_cycle.py")
        assert.same(detail(alone, f).reasons, detail(together, f).reasons)
      end
    end)
  end)

  describe("a module's objects made in a block at its top", function()
    it("follows `engine = create_engine(...)` under `if TESTING:`, and every branch's", function()
      local report = analyze(project({
        ["app/__init__.py"] = "",
        ["app/config.py"] = "import os\nTESTING = os.environ.get('TESTING')\n",
        ["app/db.py"] = table.concat({
          "from sqlalchemy import create_engine",
          "from app.config import TESTING",
          "",
          "if TESTING:",
          "    engine = create_engine('postgresql://db/test')",
          "else:",
          "    engine = None",
          "",
          "try:",
          "    cache = None",
          "except ImportError:",
          "    cache = create_engine('postgresql://db/cache')",
          "",
        }, "\n"),
        ["tests/test_engine.py"] = "from app.db import engine\n\ndef test_a():\n    engine.connect()\n",
        ["tests/test_cache.py"] = "from app.db import cache\n\ndef test_a():\n    cache.connect()\n",
      }))
      local d = detail(report, "test_engine.py")
      assert.equal("integration", d.category)
      assert.is_true(reason(d, "app%.db%.engine %(app/db%.py:5%) %-> sqlalchemy%.create_engine"))
      assert.equal("integration", detail(report, "test_cache.py").category)
    end)
  end)

  describe("an in-memory connection string kept in another module", function()
    it("reads the constant where it is defined", function()
      local report = analyze(project({
        ["app/__init__.py"] = "",
        ["app/config.py"] = "DATABASE_URL = 'sqlite://'\nPG_URL = 'postgresql://db/app'\n",
        ["app/db.py"] = table.concat({
          "from sqlalchemy import create_engine",
          "from app import config",
          "from app.config import DATABASE_URL, PG_URL",
          "",
          "by_name = create_engine(DATABASE_URL)",
          "by_module = create_engine(config.DATABASE_URL)",
          "real = create_engine(PG_URL)",
          "",
        }, "\n"),
        ["tests/test_by_name.py"] = "from app.db import by_name\n\ndef test_a():\n    by_name.connect()\n",
        ["tests/test_by_module.py"] = "from app.db import by_module\n\ndef test_a():\n    by_module.connect()\n",
        ["tests/test_real.py"] = "from app.db import real\n\ndef test_a():\n    real.connect()\n",
      }))
      assert.equal("venv", detail(report, "test_by_name.py").category)
      assert.equal("venv", detail(report, "test_by_module.py").category)
      assert.equal("integration", detail(report, "test_real.py").category)
    end)
  end)

  describe("names a star import brings", function()
    it("follows them to the module that defines them", function()
      local report = analyze(project({
        ["app/__init__.py"] = "",
        ["app/db.py"] = "from sqlalchemy import create_engine\nengine = create_engine('postgresql://db/app')\n\n"
          .. "def get_session():\n    return engine.connect()\n\ndef _private():\n    return engine.connect()\n",
        ["app/reexport.py"] = "from app.db import *\n",
        ["tests/conftest.py"] = "import pytest\nfrom app.reexport import *\n\n@pytest.fixture\ndef session():\n"
          .. "    return get_session()\n",
        ["tests/test_fixture.py"] = "def test_a(session):\n    pass\n",
        ["tests/test_direct.py"] = "from app.db import *\n\ndef test_a():\n    engine.connect()\n",
        ["tests/test_private.py"] = "from app.db import *\n\ndef test_a():\n    _private()\n",
      }))
      local d = detail(report, "test_fixture.py")
      assert.equal("integration", d.category)
      assert.is_true(reason(d, "fixture session %(conftest%.py:5%) %-> get_session %(app/db%.py:4%) %-> engine"))
      assert.equal("integration", detail(report, "test_direct.py").category)
      -- (not brought by *: a name of the test's own, unknown)
      assert.equal("venv", detail(report, "test_private.py").category)
    end)
  end)

  describe("an absolute --path", function()
    it("gives the verdicts the relative one does", function()
      local root = project({
        ["tests/__init__.py"] = "",
        ["tests/security.py"] = "def make_token():\n    return 't'\n",
        ["tests/test_items.py"] = "from tests.security import make_token\n\ndef test_items():\n    assert make_token()\n",
      })
      local relative = analyze(root)
      local absolute = analyze(root, root .. "/tests")
      local a = absolute.test_details[root .. "/tests/test_items.py"]
      assert.is_false(detail(relative, "test_items.py").is_security)
      assert.is_false(a.is_security, table.concat(a.reasons, " | "))
      assert.same(detail(relative, "test_items.py").reasons, a.reasons)
    end)
  end)

  describe("an in-memory SQLite beside another service", function()
    it("leaves the other service a service", function()
      local report = analyze(project({
        ["tests/conftest.py"] = table.concat({
          "import pytest",
          "import redis",
          "from sqlalchemy import create_engine",
          "",
          "@pytest.fixture",
          "def services():",
          "    engine = create_engine('sqlite://')",
          "    cache = redis.Redis(host='localhost')",
          "    return engine, cache",
          "",
          "@pytest.fixture",
          "def memory():",
          "    return create_engine('sqlite://')",
          "",
        }, "\n"),
        ["tests/test_services.py"] = "def test_a(services):\n    pass\n",
        ["tests/test_memory.py"] = "def test_a(memory):\n    pass\n",
      }))
      local d = detail(report, "test_services.py")
      assert.equal("integration", d.category)
      assert.is_true(reason(d, "fixture services %(conftest%.py:6%) %-> redis%.Redis"))
      assert.equal("venv", detail(report, "test_memory.py").category)
    end)
  end)

  describe("a fixture that overrides one of its name", function()
    it("follows the one it wraps, in the conftest.py above", function()
      local report = analyze(project({
        ["tests/conftest.py"] = "import pytest\nfrom sqlalchemy import create_engine\n\n@pytest.fixture\ndef db():\n"
          .. "    return create_engine('postgresql://db/app').connect()\n",
        ["tests/api/conftest.py"] = "import pytest\n\n@pytest.fixture\ndef db(db):\n    tx = db.begin()\n    yield db\n"
          .. "    tx.rollback()\n",
        ["tests/api/test_api.py"] = "def test_a(db):\n    pass\n",
        ["tests/api/test_own.py"] = "import pytest\n\n@pytest.fixture\ndef db(db):\n    return db\n\n"
          .. "def test_a(db):\n    pass\n",
      }))
      for _, f in ipairs({ "api/test_api.py", "api/test_own.py" }) do
        local d = detail(report, f)
        assert.equal("integration", d.category, f)
        assert.is_true(reason(d, "%-> sqlalchemy%.create_engine"))
      end
    end)
  end)

  describe("the conftest.py files of a directory", function()
    it("are the same for every file there, whichever asked first", function()
      -- tests/a/test_1.py is read first; its fixture session (tests/conftest.py)
      -- requests engine, looked for from tests/conftest.py itself
      local report = analyze(project({
        ["conftest.py"] = "import pytest\nfrom sqlalchemy import create_engine\n\n@pytest.fixture\ndef engine():\n"
          .. "    return create_engine('postgresql://db/app')\n",
        ["tests/conftest.py"] = "import pytest\n\n@pytest.fixture\ndef session(engine):\n    return engine.connect()\n",
        ["tests/a/test_1.py"] = "def test_1(session):\n    pass\n",
        ["tests/test_2.py"] = "def test_2(session):\n    pass\n",
      }))
      assert.equal("integration", detail(report, "a/test_1.py").category)
      assert.equal("integration", detail(report, "test_2.py").category)
    end)
  end)

  describe("an autouse fixture with a security word", function()
    it("makes no file a security test: no test requests it", function()
      local report = analyze(project({
        ["tests/conftest.py"] = "import pytest\n\n@pytest.fixture(autouse=True)\ndef override_auth_dependency():\n"
          .. "    yield\n",
        ["tests/test_books.py"] = "def test_books():\n    pass\n\ndef test_shelves():\n    pass\n",
        ["tests/test_asks.py"] = "def test_books(override_auth_dependency):\n    pass\n",
      }))
      assert.is_false(detail(report, "test_books.py").is_security)
      assert.is_true(detail(report, "test_asks.py").is_security)
    end)
  end)
end)
