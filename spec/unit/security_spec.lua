-- The security pipeline's parts: PEP 440, OSV matching, dependency files,
-- the PHI audit, waivers, the 164.312 mapping and the report's HTML.
local fs = require "novapipe.fs"
local lfs = require "lfs"
local H = require "spec.support.h"
local pep440 = require "novapipe.security.pep440"
local osv = require "novapipe.security.osv"
local deps = require "novapipe.security.deps"

local function V(s) return assert(pep440.parse(s)) end

describe("PEP 440 versions", function()
  it("order development, pre-, final, local and post-releases and epochs as PEP 440 does", function()
    local order = { "0.9", "1.0.dev0", "1.0a1.dev2", "1.0a1", "1.0a2", "1.0b1", "1.0rc1", "1.0rc2.post1", "1.0",
                    "1.0+abc", "1.0+abc.5", "1.0+5", "1.0.post1.dev0", "1.0.post1", "1.0.1", "1.1", "10.0", "1!0.1" }
    for i = 1, #order do
      for j = 1, #order do
        local want = i < j and -1 or i > j and 1 or 0
        assert.equal(want, pep440.compare(V(order[i]), V(order[j])), order[i] .. " vs " .. order[j])
      end
    end
  end)

  it("read every spelling PEP 440 normalises", function()
    assert.equal("1.0rc1", pep440.normal(V("v1.0-RC1")))
    assert.equal("1.0a2", pep440.normal(V("1.0.alpha.2")))
    assert.equal("1.0b0", pep440.normal(V("1.0beta")))
    assert.equal("1.0rc3", pep440.normal(V("1.0c3")))
    assert.equal("1.0rc1", pep440.normal(V("1.0pre1")))
    assert.equal("1.0.post2", pep440.normal(V("1.0-2")))
    assert.equal("1.0.post0", pep440.normal(V("1.0.rev")))
    assert.equal("1.0.dev0", pep440.normal(V("1.0-dev")))
    assert.equal("2!1.0+ubuntu.1", pep440.normal(V("2!1.0+ubuntu-1")))
    assert.equal(0, pep440.compare(V("1.0"), V("1.0.0.0")))
  end)

  it("refuse what is not a version", function()
    for _, s in ipairs({ "", "abc", "1.0-foo", "1.0+", "1.0+a..b.", "1..0", "=1.0" }) do
      assert.is_nil(pep440.parse(s), s)
    end
  end)

  it("normalise project names per PEP 503", function()
    assert.equal("friendly-bard", pep440.normalize_name("Friendly.__Bard"))
    assert.equal("sqlalchemy", pep440.normalize_name("SQLAlchemy"))
  end)
end)

describe("OSV advisories", function()
  local function adv(affected, extra)
    local a = { id = "TEST-1", summary = "a flaw", affected = affected }
    for k, v in pairs(extra or {}) do a[k] = v end
    return a
  end
  local function pypi(name, ranges, versions)
    return { package = { ecosystem = "PyPI", name = name }, ranges = ranges, versions = versions }
  end
  local function hits(a, name, version)
    return osv.affects(a, pep440.normalize_name(name), V(version)) ~= nil
  end

  it("evaluate introduced/fixed ranges, pre-releases included", function()
    local a = adv({ pypi("Demo", { { type = "ECOSYSTEM", events = { { introduced = "1.2" }, { fixed = "2.0" } } } }) })
    assert.is_false(hits(a, "demo", "1.1"))
    assert.is_true(hits(a, "demo", "1.2"))
    assert.is_true(hits(a, "demo", "1.9.9"))
    assert.is_true(hits(a, "demo", "2.0rc1"))
    assert.is_false(hits(a, "demo", "2.0"))
    assert.is_false(hits(a, "demo", "2.0.post1"))
  end)

  it("evaluate introduced 0 and last_affected", function()
    local a = adv({ pypi("demo", { { type = "ECOSYSTEM", events = { { introduced = "0" }, { last_affected = "1.4" } } } }) })
    assert.is_true(hits(a, "demo", "0.0.1"))
    assert.is_true(hits(a, "demo", "1.4"))
    assert.is_false(hits(a, "demo", "1.4.post1"))
    assert.is_false(hits(a, "demo", "1.5"))
  end)

  it("evaluate several introduced/fixed pairs in one range, in any order", function()
    local a = adv({ pypi("demo", { { type = "ECOSYSTEM", events = {
      { fixed = "2.5" }, { introduced = "1.0" }, { introduced = "2.2" }, { fixed = "1.5" } } } }) })
    assert.is_true(hits(a, "demo", "1.2"))
    assert.is_false(hits(a, "demo", "1.7"))
    assert.is_true(hits(a, "demo", "2.3"))
    assert.is_false(hits(a, "demo", "3.0"))
  end)

  it("compare epochs: 1!0.5 is later than any version without one", function()
    local a = adv({ pypi("demo", { { type = "ECOSYSTEM", events = { { introduced = "0" }, { fixed = "5.0" } } } }) })
    assert.is_true(hits(a, "demo", "4.9"))
    assert.is_false(hits(a, "demo", "1!0.5"))
  end)

  it("match explicit versions by PEP 440 equality, and names in any spelling", function()
    local a = adv({ pypi("Zope_Interface", nil, { "5.0", "5.1.0" }) })
    assert.is_true(hits(a, "zope.interface", "5.0.0"))
    assert.is_true(hits(a, "ZOPE-interface", "5.1"))
    assert.is_false(hits(a, "zope-interface", "5.2"))
  end)

  it("ignore withdrawn advisories, other ecosystems and GIT ranges", function()
    local r = { { type = "ECOSYSTEM", events = { { introduced = "0" } } } }
    assert.is_false(hits(adv({ pypi("demo", r) }, { withdrawn = "2024-01-01T00:00:00Z" }), "demo", "1.0"))
    assert.is_false(hits(adv({ { package = { ecosystem = "npm", name = "demo" }, ranges = r } }), "demo", "1.0"))
    assert.is_false(hits(adv({ pypi("demo", { { type = "GIT", events = { { introduced = "0" } } } }) }), "demo", "1.0"))
  end)

  it("list each pinned package's advisories with the fixed versions, and pass over unpinned ones", function()
    local a = adv({ pypi("demo", { { type = "ECOSYSTEM", events = { { introduced = "0" }, { fixed = "1.5" } } } }) },
      { aliases = { "CVE-2099-0001" } })
    local found = osv.match({
      { name = "Demo", version = "1.0", pinned = true, source = "r.txt:1" },
      { name = "demo", spec = ">=1", pinned = false, source = "r.txt:2" },
      { name = "other", version = "1.0", pinned = true, source = "r.txt:3" },
    }, { a })
    assert.equal(1, #found)
    assert.same({ package = "Demo", version = "1.0", id = "TEST-1", aliases = { "CVE-2099-0001" }, summary = "a flaw",
                  fixed = { "1.5" }, source = "r.txt:1" }, found[1])
  end)

  describe("loaded from disk", function()
    local dir
    before_each(function() dir = H.tmpdir() end)
    after_each(function() H.rmrf(dir) end)

    it("reads every JSON file under a directory", function()
      assert(fs.mkdir_p(dir .. "/PyPI/demo"))
      H.write(dir .. "/PyPI/demo/TEST-1.json", '{"id":"TEST-1","affected":[]}')
      H.write(dir .. "/TEST-2.json", '{"id":"TEST-2"}')
      H.write(dir .. "/README.md", "not an advisory")
      local list = assert(osv.load(dir, function() error("no zip here") end))
      assert.equal(2, #list)
    end)

    it("names a malformed file, with the line and column", function()
      H.write(dir .. "/good.json", '{"id":"A"}')
      H.write(dir .. "/bad.json", '{\n  "id": "B",\n  "affected": [,]\n}')
      local list, err = osv.load(dir)
      assert.is_nil(list)
      assert.matches("bad%.json:3:%d+: .*not valid JSON", err)
    end)

    it("names a file that is JSON but not an advisory", function()
      H.write(dir .. "/x.json", '{"affected": []}')
      local _, err = osv.load(dir)
      assert.matches("x%.json: not an OSV advisory: no 'id'", err)
      H.write(dir .. "/x.json", '{"id": "X", "affected": [{"package": {"ecosystem": "PyPI", "name": "a"}, "ranges": [{"type": "ECOSYSTEM"}]}]}')
      _, err = osv.load(dir)
      assert.matches("x%.json: not an OSV advisory: affected%[1%]%.ranges%[1%] has no events", err)
    end)

    it("refuses a path that is neither a directory nor a zip", function()
      local _, err = osv.load(dir .. "/nothing")
      assert.matches("no such directory or zip", err)
      H.write(dir .. "/list.txt", "")
      _, err = osv.load(dir .. "/list.txt")
      assert.matches("must be a directory of OSV JSON files or a %.zip", err)
    end)
  end)
end)

describe("dependency files", function()
  local dir
  before_each(function() dir = H.tmpdir() end)
  after_each(function() H.rmrf(dir) end)

  local function by_name(list)
    local out = {}
    for _, d in ipairs(list) do out[d.name] = d end
    return out
  end

  it("reads requirements with -r includes, comments, continuations, extras, markers and pins", function()
    H.write(dir .. "/requirements.txt", table.concat({
      "# the app", "-r base.txt", "--index-url https://example.org/simple",
      "Flask[async]==2.0.1 ; python_version >= '3.8'  # web", "requests >=2, <3",
      "numpy \\", "  ==1.26.0", "legacy===1.0-custom", "django", "-e git+https://example.org/x.git#egg=x",
      "https://example.org/pkgs/thing-1.0.tar.gz",
      "certifi==2023.7.22 \\", "    --hash=sha256:92d6037539857d8206b8f6ae472e8b77db8058fec5937a1ef3f54304089edbb9", "",
    }, "\n"))
    H.write(dir .. "/base.txt", "urllib3==1.26.5\n-r requirements.txt\n")
    local list = assert(deps.requirements(dir .. "/requirements.txt"))
    local d = by_name(list)
    assert.same({ true, "1.26.5", dir .. "/base.txt:1" }, { d.urllib3.pinned, d.urllib3.version, d.urllib3.source })
    assert.same({ true, "2.0.1", dir .. "/requirements.txt:4" }, { d.Flask.pinned, d.Flask.version, d.Flask.source })
    assert.same({ true, "1.26.0", dir .. "/requirements.txt:6" }, { d.numpy.pinned, d.numpy.version, d.numpy.source })
    assert.is_false(d.requests.pinned)
    assert.matches("not pinned to one version %(>=2,<3%)", d.requests.why)
    assert.is_false(d.django.pinned)
    assert.equal("no version given", d.django.why)
    assert.is_false(d.legacy.pinned) -- not a PEP 440 version: cannot be compared
    assert.same({ true, "2023.7.22" }, { d.certifi.pinned, d.certifi.version }) -- pip-compile's --hash
    assert.equal("not a package name (a path or URL)", d["https://example.org/pkgs/thing-1.0.tar.gz"].why)
    assert.equal(9, #list)
  end)

  it("says which line includes a file that does not exist", function()
    H.write(dir .. "/requirements.txt", "a==1\n-r missing.txt\n")
    local list, err = deps.requirements(dir .. "/requirements.txt")
    assert.is_nil(list)
    assert.equal(dir .. "/requirements.txt:2: -r missing.txt: no such file", err)
  end)

  it("reads PEP 621 and Poetry tables from a decoded pyproject.toml", function()
    local list = deps.pyproject("pyproject.toml", {
      project = { dependencies = { "httpx==0.23.3", "anyio>=3" }, ["optional-dependencies"] = { pg = { "psycopg2==2.9.5" } } },
      tool = { poetry = {
        dependencies = { python = "^3.11", fastapi = "0.92.0", pydantic = { version = "==1.10.4", extras = { "email" } },
                         mylib = { path = "../mylib" }, starlette = "^0.26" },
        group = { dev = { dependencies = { pytest = "7.2.1" } } },
      } },
    })
    local d = by_name(list)
    assert.same({ true, "0.23.3" }, { d.httpx.pinned, d.httpx.version })
    assert.is_false(d.anyio.pinned)
    assert.equal("pyproject.toml [project.optional-dependencies.pg]", d.psycopg2.source)
    assert.same({ true, "0.92.0" }, { d.fastapi.pinned, d.fastapi.version })
    assert.same({ true, "1.10.4" }, { d.pydantic.pinned, d.pydantic.version })
    assert.is_false(d.starlette.pinned)
    assert.is_false(d.mylib.pinned)
    assert.equal("pyproject.toml [tool.poetry.group.dev.dependencies]", d.pytest.source)
    assert.is_nil(d.python)
  end)

  it("reads real TOML through Python, and a lock file's pins settle a range", function()
    H.write(dir .. "/pyproject.toml", '[tool.poetry.dependencies]\npython = "^3.11"\nrequests = "^2.31"\n')
    H.write(dir .. "/poetry.lock", '[[package]]\nname = "requests"\nversion = "2.31.0"\n\n[[package]]\nname = "idna"\nversion = "3.4"\n')
    H.write(dir .. "/broken.toml", 'x = [\n')
    local security = require "novapipe.security"
    local cfg = require("novapipe.config").defaults()
    local read_toml = security._read_toml(cfg)
    local list = assert(deps.read({ dir .. "/pyproject.toml", dir .. "/poetry.lock" }, read_toml))
    local d = by_name(list)
    assert.equal(2, #list)
    assert.same({ true, "2.31.0", dir .. "/poetry.lock" }, { d.requests.pinned, d.requests.version, d.requests.source })
    assert.equal("3.4", d.idna.version)
    local none, err = deps.read({ dir .. "/broken.toml" }, read_toml)
    assert.is_nil(none)
    assert.matches("broken%.toml: not valid TOML: ", err)
  end)
end)

describe("the PHI audit", function()
  local audit = require "novapipe.security.phi_audit"
  local dir
  after_each(function() if dir then H.rmrf(dir) end end)

  local function run(tree, security)
    dir = H.tree(tree)
    local cfg = require("novapipe.config").defaults()
    cfg.tests = dir .. "/tests"
    for k, v in pairs(security or {}) do cfg.security[k] = v end
    return audit.run(cfg)
  end

  local function where(findings)
    local out = {}
    for _, f in ipairs(findings) do out[#out + 1] = ("%s:%d:%s:%s"):format(f.file:sub(#dir + 2), f.line, f.kind, f.value) end
    return out
  end

  it("finds planted values with their file, line and kind, masked", function()
    local r = run({
      ["tests/test_a.py"] = "def test_x():\n    ssn = '123-45-6789'\n    return ssn\n",
      ["tests/data/people.csv"] = "name,phone,email\nA,212-867-5309,jane.roe@gmail.com\n",
      ["tests/data/p.json"] = '{\n  "note": "patient DOB: 1961-04-12",\n  "mrn": "MRN-00123456"\n}\n',
      ["tests/data/seed.sql"] = "insert into p values ('(415) 555-2671');\n",
      ["tests/data/cfg.yaml"] = "contact: ops@hospital.org\n",
      ["tests/notes.txt"] = "born 3/14/1950\n",
      ["tests/skip.bin"] = "123-45-6789\n",
    })
    assert.same({}, r.errors)
    assert.equal(6, r.files)
    assert.same({
      "tests/data/cfg.yaml:1:email:***@********.*rg",
      "tests/data/p.json:2:dob:****-**-12",
      "tests/data/p.json:3:mrn:***-******56",
      "tests/data/people.csv:2:phone:***-***-**09",
      "tests/data/people.csv:2:email:****.***@*****.*om",
      "tests/data/seed.sql:1:phone:(***) ***-**71",
      "tests/notes.txt:1:dob:*/**/**50",
      "tests/test_a.py:2:ssn:***-**-**89",
    }, where(r.findings))
  end)

  it("finds nothing in values that are synthetic by construction", function()
    local r = run({
      ["tests/test_ok.py"] = table.concat({
        "SSNS = ['000-12-3456', '666-12-3456', '900-12-3456', '999-99-9999']",
        "PHONES = ['212-555-0100', '(212) 555-0199', '212.555.0150']",
        "MAILS = ['a@example.com', 'b@mail.example.org', 'c@example.net', 'd@host.test', 'e@x.invalid', 'f@y.example']",
        "VISIT = '2024-01-02'  # a date with no word of birth before it",
      }, "\n") .. "\n",
    })
    assert.same({}, where(r.findings))
  end)

  it("applies live waivers, and shows expired and unused ones", function()
    dir = H.tree({ ["tests/a.txt"] = "123-45-6789\n212-867-5309\n" })
    local file = dir .. "/tests/a.txt"
    local cfg = require("novapipe.config").defaults()
    cfg.tests = dir .. "/tests"
    cfg.security.waivers = {
      { file = file, line = 1, kind = "ssn", justification = "a documented test fixture", expires = "2999-01-01" },
      { file = file, line = 2, justification = "was fine once", expires = "2000-01-01" },
      { file = file, line = 9, justification = "nothing there", expires = "2999-01-01" },
    }
    local r = audit.run(cfg)
    assert.same({ "tests/a.txt:2:phone:***-***-**09" }, where(r.findings))
    assert.equal(1, #r.waived)
    assert.equal("a documented test fixture", r.waived[1].waiver.justification)
    assert.equal("2000-01-01", r.expired[1].expires)
    assert.equal(9, r.unused[1].line)
  end)

  it("refuses waivers without a justification or an expiry, naming the entry", function()
    local waivers = require "novapipe.security.waivers"
    local fields = { file = "string", line = "number", kind = "string" }
    local function err(list)
      local ok, e = pcall(waivers.validate, "security.waivers", list, fields)
      assert.is_false(ok)
      return tostring(e)
    end
    assert.matches("security.waivers%[1%] needs a justification", err({ { file = "a", expires = "2030-01-01" } }))
    assert.matches("security.waivers%[2%] needs an expiry date", err({
      { file = "a", justification = "x", expires = "2030-01-01" }, { file = "a", justification = "x" } }))
    assert.matches("expires '2030%-02%-30' is not a date", err({ { file = "a", justification = "x", expires = "2030-02-30" } }))
    assert.matches("unknown field 'reason'", err({ { file = "a", reason = "x", justification = "x", expires = "2030-01-01" } }))
  end)
end)

describe("the 164.312 mapping and the report", function()
  local hipaa = require "novapipe.security.hipaa"

  it("maps marker sections at any depth, counts findings, and shows safeguards without tests", function()
    local rows, unknown = hipaa.map({
      { id = "t1", outcome = "passed", hipaa = { "164.312(a)(2)(iv)", "164.312(b)" } },
      { id = "t2", outcome = "failed", hipaa = { "45 CFR 164.312(b)" } },
      { id = "t3", outcome = "passed", hipaa = { "164.308(a)(1)" } },
    }, { phi = 2, vulnerability = 1 })
    local by = {}
    for _, r in ipairs(rows) do by[r.id] = r end
    assert.equal("verified", by["164.312(a)"].status)
    assert.equal(2, by["164.312(a)"].findings)
    assert.equal("failing", by["164.312(b)"].status)
    assert.equal(2, #by["164.312(b)"].tests)
    assert.equal(1, by["164.312(c)"].findings)
    assert.equal("no test", by["164.312(d)"].status)
    assert.equal("no test", by["164.312(e)"].status)
    assert.same({ "164.308(a)(1)" }, unknown)
  end)

  it("tells a safeguard whose tests did not run (not verified) from one with no test", function()
    local known = {
      { id = "tests/a/test_x.py::test_ran", file = "tests/a/test_x.py", line = 3, tier = "a", hipaa = { "164.312(a)" }, security = true },
      { id = "tests/b/test_y.py::TestY::test_gated", file = "tests/b/test_y.py", line = 9, tier = "b",
        hipaa = { "164.312(a)", "164.312(d)" }, security = true },
      { id = "tests/b/test_y.py::test_skipped", file = "tests/b/test_y.py", line = 20, tier = "b", hipaa = { "164.312(c)" }, security = true },
    }
    local inventory = require "novapipe.security.inventory"
    local rows = hipaa.map({
      -- the results name the tests from another rootdir, with parameters
      { id = "a/test_x.py::test_ran[1]", outcome = "passed", hipaa = { "164.312(a)" } },
      { id = "b/test_y.py::test_skipped", outcome = "skipped", message = "Skipped: needs a TLS key", hipaa = { "164.312(c)" } },
    }, {}, { known = known, lookup = inventory.index(known), required = { "164.312(a)", "164.312(c)", "164.312(e)" },
             not_run = function(t) return "its tier " .. t.tier .. " was skipped" end })
    local by = {}
    for _, r in ipairs(rows) do by[r.id] = r end
    assert.equal("partly verified", by["164.312(a)"].status)
    assert.same({ 1, 0, 1 }, { by["164.312(a)"].passed, by["164.312(a)"].failed, by["164.312(a)"].not_run })
    assert.is_false(by["164.312(a)"].unmet)
    assert.equal("not verified", by["164.312(d)"].status)
    assert.equal("its tier b was skipped", by["164.312(d)"].tests[1].reason)
    assert.equal("tests/b/test_y.py:9", by["164.312(d)"].tests[1].location)
    assert.is_false(by["164.312(d)"].required)
    assert.equal("not verified", by["164.312(c)"].status)
    assert.is_true(by["164.312(c)"].unmet)
    assert.equal("skipped: needs a TLS key", by["164.312(c)"].tests[1].reason)
    assert.equal("no test", by["164.312(e)"].status)
    assert.is_true(by["164.312(e)"].unmet)
    assert.same({ "tests/b/test_y.py::TestY::test_gated (line 9)", "its tier b was skipped" },
      { hipaa.describe(by["164.312(d)"].tests[1]) })
  end)

  it("says a test did not run because its tier stopped at a collection error, not that nothing selected it", function()
    local why = require("novapipe.security")._why_not_run
    local known = { id = "backend/tests/a/test_x.py::test_t", file = "backend/tests/a/test_x.py", tier = "a", security = true }
    local results = { ["security/a"] = { status = "failed", reason = "collection errors in tests/a/test_y.py",
      cases = { { id = "tests/a/test_y.py", outcome = "error", collect = true } } } }
    assert.equal("its tier a ran no test: collection errors in tests/a/test_y.py", why({}, results, known))
    results["security/a"].cases[1].id = "tests/a/test_x.py"
    assert.equal("its file could not be collected (a collection error in the a tier)", why({}, results, known))
    results["security/a"] = { status = "passed", cases = {} }
    assert.matches("^not selected in the a tier's run", why({}, results, known))
  end)

  it("reads security tests from the source: function, class and module markers", function()
    local inventory = require "novapipe.security.inventory"
    local dir = H.tmpdir()
    finally(function() H.rmrf(dir) end)
    local file = dir .. "/test_marks.py"
    H.write(file, table.concat({
      "import pytest",
      "from pytest import mark",
      -- another marker's string is not a hipaa section
      "pytestmark = [pytest.mark.hipaa('164.312(e)(1)'), pytest.mark.filterwarnings('ignore::DeprecationWarning')]",
      "",
      "@pytest.mark.security",
      "def test_module_and_own():",
      "    pass",
      "",
      "def helper_not_a_test():",
      "    pass",
      "",
      "@mark.security",
      "@mark.hipaa('164.312(b)')",
      "class TestAudit:",
      "    def test_in_class(self):",
      "        pass",
      "",
      "    def check_not_collected(self):",
      "        pass",
      "",
      "class Helper:",
      "    def test_not_in_a_test_class(self):",
      "        pass",
      "",
    }, "\n"))
    local found = assert(inventory.file(file, "standalone", { "test" }, { "Test" }))
    local got = {}
    for _, t in ipairs(found) do got[#got + 1] = { t.id:gsub("^.*/", ""), t.line, table.concat(t.hipaa, " "), t.security } end
    assert.same({
      { "test_marks.py::test_module_and_own", 6, "164.312(e)(1)", true },
      { "test_marks.py::TestAudit::test_in_class", 15, "164.312(e)(1) 164.312(b)", true },
    }, got)
  end)

  it("writes HTML that escapes what it shows and loads nothing from outside", function()
    local report = require "novapipe.security.report"
    local json = require "novapipe.json"
    local rows = hipaa.map({ { id = "t<script>::x", outcome = "passed", hipaa = { "164.312(a)" } } }, {})
    local html = report.html({
      generated = "2026-01-01T00:00:00Z", project = "/p", novapipe = "0",
      outcome = { status = "passed", reasons = {}, notes = { "a & b" } },
      tests = { status = "passed", summary = "1 passed", tiers = {}, cases = { { id = "t<script>::x", outcome = "passed", hipaa = { "164.312(a)" } } } },
      safeguards = rows, unmapped_sections = {},
      phi_audit = { status = "passed", files = 1, findings = {}, waived = {}, expired_waivers = {} },
      dependencies = { status = "unchecked", note = "not checked", vulnerabilities = {}, unpinned = {} },
      coverage = { summary = "none" },
    })
    assert.matches("t&lt;script&gt;::x", html, 1, true)
    assert.is_nil(html:find("<script", 1, true))
    assert.is_nil(html:find("src=", 1, true))
    assert.is_nil(html:find("href=", 1, true))
    assert.matches("a &amp; b", html, 1, true)
    assert.equal("{}", json.pretty({}))
  end)

  it("matches one test's coverage contexts by its key, as the plugin names them", function()
    local id = "backend/app/tests/test_x.py::test_it[a,b|c.d-\195\169 219-09-9999]"
    local secret = ("ab"):rep(32)
    local pattern = require("novapipe.security").context_pattern(secret, id)
    assert.is_nil(pattern:find("219", 1, true))
    -- the key the plugin computes for a context, in Python
    local py = [[
import hashlib, re, sys
p, secret, nodeid = sys.argv[1], sys.argv[2].encode(), sys.argv[3]
key = hashlib.sha256(secret + nodeid.encode("utf-8", "surrogateescape")).hexdigest()
ok = [bool(re.search(p, key + w)) for w in ("|run", "|setup", "|teardown")]
bad = [bool(re.search(p, c)) for c in (key + "x|run", "", "x" + key + "|run")]
print(all(ok), any(bad))
]]
    local exe = assert(require("novapipe.python").find({ "re" }))
    local r = assert(require("novapipe.process").run({ exe, "-c", py, pattern, secret, id }))
    assert.equal("True False\n", r.stdout, r.stderr)
  end)
end)
