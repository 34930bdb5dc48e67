-- analyze end to end: the real binary on trees written into temporary
-- directories; verdicts read from its JSON report.
local fs = require "novapipe.fs"
local json = require "novapipe.json"
local lfs = require "lfs"
local H = require "spec.support.h"

local T = "backend/app/tests/"

local function tree(files)
  local root = H.tree(files)
  assert(fs.mkdir_p(root .. "/" .. T, "0755"))
  return root
end

local function analyze(root, extra)
  local args = { "-C", root, "--no-color", "run", "analyze", "--report", "--output", "report.json" }
  for _, a in ipairs(extra or {}) do args[#args + 1] = a end
  local r = H.novapipe(args)
  local report = json.read(root .. "/report.json")
  return report, r
end

-- The detail of one file, by its path under the tests directory.
local function detail(report, rel)
  local d = report.test_details[T .. rel]
  assert(d, "no detail for " .. rel)
  return d
end

local function has_reason(d, pattern)
  for _, r in ipairs(d.reasons) do
    if r:find(pattern) then return true end
  end
  return false, table.concat(d.reasons, " | ")
end

describe("novapipe run analyze", function()
  local keep = H.temporaries(after_each)
  local function new_tree(files) return keep(tree(files)) end

  it("refuses a --path that does not exist or is not a directory, with exit 2", function()
    local root = new_tree({ ["f.txt"] = "x" })
    local r = H.novapipe({ "-C", root, "run", "analyze", "--path", "nowhere" })
    assert.equal(2, r.code)
    assert.equal("novapipe: --path nowhere: no such directory\n", r.stderr)
    r = H.novapipe({ "-C", root, "run", "analyze", "--path", "f.txt" })
    assert.equal(2, r.code)
    assert.equal("novapipe: --path f.txt: not a directory\n", r.stderr)
  end)

  describe("reads imports as Python does", function()
    local report, setup_root
    teardown(function() H.rmrf(setup_root) end)
    setup(function()
      local root = tree({
        [T .. "test_multiline.py"] = "from psycopg2 import (\n    connect,\n    extras,\n)\ndef test_a(): pass\n",
        [T .. "test_backslash.py"] = "import os, \\\n    psycopg2\ndef test_a(): pass\n",
        [T .. "test_strings.py"] = table.concat({
          '"""A docstring that says import psycopg2 and @pytest.mark.integration."""',
          "import json",
          "X = 'import psycopg2'",
          "Y = '''",
          "import fastapi",
          "'''",
          "# import psycopg2",
          "# @pytest.mark.integration",
          "def test_a():",
          "    s = f\"{'import psycopg2'}\"",
          "",
        }, "\n"),
        [T .. "test_docker_models.py"] = "import docker.models\ndef test_a(): pass\n",
        [T .. "test_redis.py"] = "import redis\ndef test_a(): pass\n",
        [T .. "test_from_submodule.py"] = "from app.infrastructure import persistence\ndef test_a(): pass\n",
        [T .. "test_prefix.py"] = "from app.infrastructure.persistence.repositories import Repo\ndef test_a(): pass\n",
        [T .. "test_not_a_prefix.py"] = "import redisx\nimport json\ndef test_a(): pass\n",
        [T .. "test_imported_name.py"] = "import json\nfrom fastapi.testclient import TestClient\ndef test_a(): pass\n",
        [T .. "test_stdlib.py"] = "import logging, socket\nfrom unittest import mock\nimport __future__\ndef test_a(): pass\n",
        [T .. "test_optional.py"] = "try:\n    import psycopg2\nexcept ImportError:\n    psycopg2 = None\n"
          .. "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import fastapi\ndef test_a(): pass\n",
        [T .. "test_dynamic.py"] = "import importlib\nm = importlib.import_module('psycopg2')\ndef test_a(): pass\n",
        [T .. "test_bom_crlf.py"] = "\239\187\191import psycopg2\r\ndef test_a():\r\n    pass\r\n",
        [T .. "test_latin1.py"] = "# -*- coding: latin-1 -*-\nname = 'caf\233'\nimport fastapi\ndef test_a(): pass\n",
        [T .. "test_syntax.py"] = "import json\ndef test_a(:\n    x = 'unterminated\n",
        [T .. "module_test.py"] = "import fastapi\ndef test_a(): pass\n",
        [T .. "helper_not_collected.py"] = "import psycopg2\n",
      })
      setup_root = root
      report = analyze(root)
    end)

    it("multi-line and backslash-continued imports count", function()
      assert.equal("venv", detail(report, "test_multiline.py").category)
      assert.equal("venv", detail(report, "test_backslash.py").category)
      assert.is_true(has_reason(detail(report, "test_multiline.py"), "^venv: imports psycopg2 %(test_multiline.py:1%)$"))
    end)

    it("imports and markers inside docstrings, strings and comments do not", function()
      local d = detail(report, "test_strings.py")
      assert.equal("standalone", d.category)
      assert.same({}, d.markers)
    end)

    it("match indicators by dotted prefix at component boundaries", function()
      assert.equal("integration", detail(report, "test_docker_models.py").category)
      assert.equal("venv", detail(report, "test_redis.py").category)
      -- module.name completes an indicator
      assert.equal("integration", detail(report, "test_from_submodule.py").category)
      assert.equal("integration", detail(report, "test_prefix.py").category)
      -- redisx is a package (venv) but not redis, and no indicator
      local d = detail(report, "test_not_a_prefix.py")
      assert.equal("venv", d.category)
      assert.is_true(has_reason(d, "redisx .*a package, not the standard library"))
      -- importing a test client needs the package: it reaches no service
      d = detail(report, "test_imported_name.py")
      assert.equal("venv", d.category)
      assert.same({ "venv: imports fastapi.testclient (test_imported_name.py:2)" }, d.reasons)
    end)

    it("knows the whole standard library", function()
      assert.equal("standalone", detail(report, "test_stdlib.py").category)
    end)

    it("lets optional and TYPE_CHECKING imports not raise the tier, and says so", function()
      local d = detail(report, "test_optional.py")
      assert.equal("standalone", d.category)
      assert.is_true(has_reason(d, "optional: import psycopg2 %(test_optional.py:2%) is guarded against ImportError"))
      assert.is_true(has_reason(d, "optional: import fastapi %(test_optional.py:7%) is under `if TYPE_CHECKING:`"))
    end)

    it("counts literal dynamic imports", function()
      assert.is_true(has_reason(detail(report, "test_dynamic.py"), "^venv: imports dynamically psycopg2 %(test_dynamic.py:2%)$"))
    end)

    it("reads a BOM, CRLF lines and a PEP 263 encoding", function()
      assert.equal("venv", detail(report, "test_bom_crlf.py").category)
      assert.equal("venv", detail(report, "test_latin1.py").category)
    end)

    it("calls a file with a syntax error unknown, with its line, and goes on", function()
      local d = detail(report, "test_syntax.py")
      assert.equal("unknown", d.category)
      assert.matches("syntax error at line 3: unterminated string literal", d.errors[1])
      assert.matches("test_syntax.py:3: unterminated string literal", table.concat(report.errors, "\n"))
    end)

    it("collects test_*.py and *_test.py, not other modules", function()
      assert.equal("venv", detail(report, "module_test.py").category)
      assert.is_nil(report.test_details[T .. "helper_not_collected.py"])
    end)

    it("keeps the reference's report keys", function()
      assert.equal(16, report.summary.total_tests)
      for _, k in ipairs({ "standalone", "venv", "integration", "security", "unknown" }) do
        assert.is_number(report.summary[k .. "_count"])
        assert.is_number(report.summary[k .. "_percentage"])
        assert.is_table(report.categorized_tests[k])
      end
      local d = detail(report, "test_redis.py")
      for _, k in ipairs({ "path", "file_name", "category", "imports", "fixtures", "markers", "is_security", "reasons" }) do
        assert.is_not_nil(d[k], k)
      end
    end)

    it("writes the report the same way every time, lists as arrays even when empty", function()
      local text = H.read(setup_root .. "/report.json")
      local again = analyze(setup_root)
      assert.is_table(again)
      assert.equal(text, H.read(setup_root .. "/report.json"))
      assert.matches('"unknown": %[\n', text)
      assert.matches('"fixtures": %[%]', text)
      assert.matches('\n  "categorized_tests": {\n', text)
    end)
  end)

  describe("fixtures", function()
    local report, setup_root
    teardown(function() H.rmrf(setup_root) end)
    setup(function()
      local root = tree({
        [T .. "conftest.py"] = table.concat({
          "import pytest",
          "import psycopg2",
          "import fastapi",
          "",
          "@pytest.fixture",
          "def db():",
          "    return psycopg2.connect('')",
          "",
          "@pytest.fixture",
          "def api_app():",
          "    return fastapi.FastAPI()",
          "",
          "@pytest.fixture",
          "def shadowed():",
          "    return psycopg2.connect('')",
          "",
          "@pytest.fixture",
          "def wraps_db(db):",
          "    return db",
          "",
          "@pytest.fixture(name='renamed')",
          "def _renamed_impl():",
          "    return psycopg2.connect('')",
        }, "\n"),
        [T .. "sub/conftest.py"] = "import pytest\n@pytest.fixture\ndef shadowed():\n    return {}\n",
        [T .. "sub/test_shadow.py"] = "def test_a(shadowed): pass\n",
        [T .. "test_param.py"] = "def test_a(db): pass\n",
        [T .. "test_transitive.py"] = "def test_a(wraps_db): pass\n",
        [T .. "test_renamed.py"] = "def test_a(renamed): pass\n",
        [T .. "test_class.py"] = "class TestX:\n    def test_a(self, api_app): pass\n    def helper(self, db): pass\n",
        [T .. "test_helper_param.py"] = "def make(db_session):\n    return db_session\ndef test_a(): assert make(1) == 1\n",
        [T .. "test_usefixtures.py"] = "import pytest\n@pytest.mark.usefixtures('db')\ndef test_a(): pass\n",
        [T .. "test_hint.py"] = "def test_a(db_session): pass\n",
        [T .. "test_builtin.py"] = "def test_a(tmp_path, monkeypatch): pass\n",
        [T .. "test_parametrize.py"] = "import pytest\n@pytest.mark.parametrize('db', [1, 2])\ndef test_a(db): pass\n",
        [T .. "test_class_parametrize.py"] = "import pytest\n@pytest.mark.parametrize('db', [1, 2])\n"
          .. "class TestX:\n    def test_a(self, db): pass\nclass TestY:\n    def test_b(self, api_app): pass\n",
        [T .. "test_local_fixture.py"] = "import pytest\nimport fastapi\n@pytest.fixture\ndef db():\n    return fastapi.FastAPI()\ndef test_a(db): pass\n",
        ["backend/app/other/conftest.py"] = "import pytest\n@pytest.fixture(autouse=True)\ndef everywhere():\n    import psycopg2\n",
        [T .. "auto/conftest.py"] = "import pytest\nimport psycopg2\n@pytest.fixture(autouse=True)\ndef connect_all():\n    psycopg2.connect('')\n",
        [T .. "auto/test_autouse.py"] = "def test_a(): pass\n",
        [T .. "alias/conftest.py"] = table.concat({
          "import psycopg2",
          "import pytest as pt",
          "from pytest import fixture as fx",
          "@fx",
          "def plain_alias():",
          "    return psycopg2.connect('')",
          "@pt.fixture(scope='session')",
          "def module_alias():",
          "    return psycopg2.connect('')",
          "@pt.mark.slow",
          "def not_a_fixture():",
          "    return psycopg2.connect('')",
        }, "\n"),
        [T .. "alias/test_plain_alias.py"] = "def test_a(plain_alias): pass\n",
        [T .. "alias/test_module_alias.py"] = "def test_a(module_alias): pass\n",
        [T .. "alias/test_not_a_fixture.py"] = "def test_a(not_a_fixture): pass\n",
      })
      setup_root = root
      report = analyze(root)
    end)

    it("follow a test's parameters to their definition in the nearest conftest.py", function()
      local d = detail(report, "test_param.py")
      assert.equal("integration", d.category)
      assert.is_true(has_reason(d, "^integration: fixture db %(conftest.py:6%) %-> psycopg2.connect$"))
      assert.same({ "db" }, d.fixtures)
    end)

    it("are found under any spelling of the fixture decorator", function()
      local d = detail(report, "alias/test_plain_alias.py")
      assert.equal("integration", d.category)
      assert.is_true(has_reason(d, "^integration: fixture plain_alias %(conftest.py:5%) %-> psycopg2.connect$"))
      assert.equal("integration", detail(report, "alias/test_module_alias.py").category)
      assert.equal("standalone", detail(report, "alias/test_not_a_fixture.py").category)
    end)

    it("let a nearer conftest.py shadow a farther one", function()
      assert.equal("standalone", detail(report, "sub/test_shadow.py").category)
    end)

    it("follow the fixtures a fixture requests, and fixture names set by name=", function()
      assert.is_true(has_reason(detail(report, "test_transitive.py"), "^integration: fixture wraps_db %-> db %(conftest.py:6%) %-> psycopg2.connect$"))
      assert.equal("integration", detail(report, "test_renamed.py").category)
    end)

    it("take test methods of Test classes, never self or helpers' parameters", function()
      local d = detail(report, "test_class.py")
      assert.equal("venv", d.category)
      assert.same({ "api_app" }, d.fixtures)
      local h = detail(report, "test_helper_param.py")
      assert.equal("standalone", h.category)
      assert.same({}, h.fixtures)
    end)

    it("count usefixtures and autouse fixtures in scope, not those of other trees", function()
      assert.equal("integration", detail(report, "test_usefixtures.py").category)
      local d = detail(report, "auto/test_autouse.py")
      assert.equal("integration", d.category)
      assert.is_true(has_reason(d, "^integration: fixture connect_all %(conftest.py:4%) %-> psycopg2.connect$"))
      assert.equal("standalone", detail(report, "test_builtin.py").category)
    end)

    it("fall back to the name for a fixture with no definition", function()
      local d = detail(report, "test_hint.py")
      assert.equal("integration", d.category)
      assert.is_true(has_reason(d, "fixture db_session has no definition; its name suggests it"))
    end)

    it("leave out parametrized arguments, and prefer the file's own definition", function()
      assert.equal("standalone", detail(report, "test_parametrize.py").category)
      -- parametrized on the class: its methods' argument is no fixture; another class's is
      local c = detail(report, "test_class_parametrize.py")
      assert.same({ "api_app" }, c.fixtures)
      assert.equal("venv", c.category)
      assert.equal("venv", detail(report, "test_local_fixture.py").category)
    end)
  end)

  describe("markers and security", function()
    local report, setup_root
    teardown(function() H.rmrf(setup_root) end)
    setup(function()
      local root = tree({
        [T .. "test_mark.py"] = "import psycopg2\nimport pytest\n@pytest.mark.standalone\ndef test_a(): pass\n",
        [T .. "test_from_mark.py"] = "from pytest import mark\n@mark.venv\ndef test_a(): pass\n",
        [T .. "test_alias.py"] = "import pytest as pt\n@pt.mark.integration\ndef test_a(): pass\n",
        [T .. "test_class_mark.py"] = "import pytest\n@pytest.mark.integration\nclass TestX:\n    def test_a(self): pass\n",
        [T .. "test_pytestmark.py"] = "import pytest\npytestmark = pytest.mark.venv\ndef test_a(): pass\n",
        [T .. "test_pytestmark_list.py"] = "import pytest\npytestmark = [pytest.mark.integration, pytest.mark.security]\ndef test_a(): pass\n",
        [T .. "test_sec_import.py"] = "from app.auth import encryption\ndef test_a(): pass\n",
        [T .. "test_sec_prefix.py"] = "import app.infrastructure.security.tokens\ndef test_a(): pass\n",
        [T .. "test_not_sec.py"] = "import app.phishing_reports\nimport graphite\ndef test_a(): pass\n",
        [T .. "test_helper_rel.py"] = "from .helpers import build\ndef test_a(): pass\n",
        [T .. "test_helper_called.py"] = "from .helpers import build\ndef test_a():\n    assert build()\n",
        [T .. "helpers.py"] = "import psycopg2\ndef build():\n    return connect()\ndef connect():\n    return psycopg2.connect('')\n",
      })
      setup_root = root
      report = analyze(root)
    end)

    it("an explicit tier marker wins, in every spelling", function()
      local d = detail(report, "test_mark.py")
      assert.equal("standalone", d.category)
      assert.is_true(has_reason(d, "standalone: marker standalone %(line 3%) decides"))
      assert.equal("venv", detail(report, "test_from_mark.py").category)
      assert.equal("integration", detail(report, "test_alias.py").category)
      assert.equal("integration", detail(report, "test_class_mark.py").category)
      assert.equal("venv", detail(report, "test_pytestmark.py").category)
      local l = detail(report, "test_pytestmark_list.py")
      assert.equal("integration", l.category)
      assert.is_true(l.is_security)
    end)

    it("flags security by marker or by a component of an import path, not a substring", function()
      assert.is_true(detail(report, "test_sec_import.py").is_security)
      assert.is_true(detail(report, "test_sec_prefix.py").is_security)
      assert.is_false(detail(report, "test_not_sec.py").is_security)
      assert.equal(3, report.summary.security_count)
    end)

    it("follows a relative import of a local helper: its imports need packages, calling it reaches the service", function()
      local d = detail(report, "test_helper_rel.py")
      assert.equal("venv", d.category)
      assert.is_true(has_reason(d, "local helper helpers.py: imports psycopg2 %(helpers.py:1%)"))
      d = detail(report, "test_helper_called.py")
      assert.equal("integration", d.category)
      assert.is_true(has_reason(d, "^integration: test test_a %(test_helper_called.py:2%) %-> build %(.*/helpers.py:2%) "
        .. "%-> connect %(.*/helpers.py:4%) %-> psycopg2.connect$"), table.concat(d.reasons, " | "))
    end)
  end)

  describe("robustness", function()
    it("classifies the rest of a tree with hostile files in it", function()
      local big = { "import json\ndef test_a(): pass\n" }
      for i = 1, 120000 do big[#big + 1] = ("def f%d(x):\n    return x + %d\n"):format(i, i) end
      local root = new_tree({
        [T .. "test_nul.py"] = "import json\nx = 1\0\n",
        [T .. "test_utf8.py"] = "x = '\255\254'\n",
        [T .. "test_deep.py"] = "x = " .. string.rep("(", 500) .. string.rep(")", 500)
          .. "\nimport psycopg2\ndef test_a(): psycopg2.connect('')\n",
        [T .. "test_too_deep.py"] = "x = " .. string.rep("[", 5000) .. "\n",
        [T .. "test_unterminated.py"] = "x = '''\nimport psycopg2\n",
        [T .. "test_big.py"] = table.concat(big),
        [T .. "test_fine.py"] = "import fastapi\ndef test_a(): pass\n",
      })
      assert(lfs.link(root .. "/" .. T, root .. "/" .. T .. "loop", true))
      assert(lfs.link(root .. "/" .. T .. "missing.py", root .. "/" .. T .. "test_dangling.py", true))
      assert.is_true(#H.read(root .. "/" .. T .. "test_big.py") > 3 * 1024 * 1024)
      local report, r = analyze(root)
      assert.equal(0, r.code, r.stderr)
      assert.equal("unknown", detail(report, "test_nul.py").category)
      assert.matches("null bytes", detail(report, "test_nul.py").errors[1])
      assert.matches("invalid UTF%-8", detail(report, "test_utf8.py").errors[1])
      assert.equal("integration", detail(report, "test_deep.py").category)
      assert.matches("too many nested parentheses", detail(report, "test_too_deep.py").errors[1])
      assert.matches("unterminated triple%-quoted string", detail(report, "test_unterminated.py").errors[1])
      assert.equal("standalone", detail(report, "test_big.py").category)
      assert.equal("venv", detail(report, "test_fine.py").category)
      assert.matches("test_dangling.py: read", table.concat(report.errors, "\n"))
    end)

    it("classifies a file importing a dotted name of a million bytes, in time linear in its length", function()
      -- 500000 components: prefixes built one by one would take many minutes
      local long = ("a."):rep(500000) .. "a"
      local root = new_tree({
        [T .. "standalone/test_x.py"] = "import " .. long .. "\ndef test_a(): pass\n",
        [T .. "standalone/test_y.py"] = "import docker." .. long .. "\ndef test_a(): pass\n",
      })
      local report, r = analyze(root)
      assert.equal(0, r.code, r.stderr)
      local d = detail(report, "standalone/test_x.py")
      assert.equal("venv", d.category)
      assert.same({ long }, d.imports)
      assert.is_true(has_reason(d, "^venv: imports a%.a%.a.*, a package, not the standard library$"))
      assert.equal("integration", detail(report, "standalone/test_y.py").category)
    end)
  end)
end)
