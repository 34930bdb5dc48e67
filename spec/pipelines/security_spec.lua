-- The security pipeline end to end: the real binary, real pytest, projects
-- in temporary directories, advisories the spec writes, and the HTML
-- report rendered by a real headless Chromium.
local cjson = require "cjson"
local fs = require "novapipe.fs"
local lfs = require "lfs"
local process = require "novapipe.process"
local H = require "spec.support.h"

local TESTS = "backend/app/tests/"

local SECURITY_CODE = "def allowed(role):\n    return role == 'clinician'\n"
local SECURITY_TESTS = table.concat({
  "import pytest",
  "from backend.app.infrastructure.security.guard import allowed",
  "",
  "@pytest.mark.security",
  "@pytest.mark.hipaa('164.312(a)(1)')",
  "def test_only_clinicians():",
  "    assert allowed('clinician') and not allowed('visitor')",
  "",
  "@pytest.mark.security",
  "@pytest.mark.hipaa('164.312(b)')",
  "@pytest.mark.hipaa('164.312(c)(2)')",
  "def test_audit_and_integrity():",
  "    assert True",
  "",
  "def test_not_security():",
  "    assert True",
  "",
}, "\n")

-- What these projects require: the safeguards their tests cover (the
-- default asks for all five).
local REQUIRED = 'required_safeguards = { "164.312(a)", "164.312(b)", "164.312(c)" }'

local function project(extra)
  local files = {
    ["novapipe.lua"] = "return { security = { " .. REQUIRED .. " } }\n",
    ["backend/__init__.py"] = "", ["backend/app/__init__.py"] = "", [TESTS .. "__init__.py"] = "",
    ["backend/app/infrastructure/__init__.py"] = "",
    ["backend/app/infrastructure/security/__init__.py"] = "",
    ["backend/app/infrastructure/security/guard.py"] = SECURITY_CODE,
    [TESTS .. "standalone/__init__.py"] = "",
    [TESTS .. "standalone/test_guard.py"] = SECURITY_TESTS,
    ["backend/requirements.txt"] = "Demo_Lib==1.0.0\nother-lib==2.0\nloose>=1\n",
  }
  for k, v in pairs(extra or {}) do files[k] = v or nil end
  return H.tree(files)
end

local function run(root, ...)
  return H.novapipe({ "-C", root, "--no-color", "run", "security", ... })
end

local function advisory(dir, name, text)
  assert(fs.mkdir_p(dir))
  H.write(dir .. "/" .. name, text)
end

local VULNERABLE = cjson.encode({
  id = "GHSA-demo-0001", aliases = { "CVE-2099-12345" }, summary = "demo-lib leaks records",
  affected = { { package = { ecosystem = "PyPI", name = "demo-lib" },
                 ranges = { { type = "ECOSYSTEM", events = { { introduced = "0" }, { fixed = "1.0.1" } } } } } },
})

local function only(dir, pattern)
  local found
  for f in lfs.dir(dir) do
    if f:match(pattern) then
      assert.is_nil(found, "two files match " .. pattern)
      found = dir .. "/" .. f
    end
  end
  assert.is_string(found, "no file matches " .. pattern)
  return found
end

describe("novapipe run security", function()
  local keep = H.temporaries(after_each)
  local function new(extra) return keep(project(extra)) end

  it("runs only the tests marked security, and passes when they pass", function()
    local root = new()
    local r = run(root)
    assert.equal(0, r.code, r.stdout .. r.stderr)
    assert.matches("PASS%s+security/standalone[^\n]*2 passed", r.stdout)
    assert.matches("EMPTY%s+security/venv", r.stdout)
    assert.matches("PASS%s+phi%-audit[^\n]*0 finding", r.stdout)
    assert.matches("UNCHECKED dependencies[^\n]*not checked against advisories\n%s+no advisory database: run "
      .. "'novapipe advisories update'", r.stdout)
    assert.not_matches("PASS%s+dependencies", r.stdout)
    assert.matches("passed, but not checked: dependencies", r.stdout)
    assert.is_nil(lfs.attributes(root .. "/backend/security-reports"), "no reports without --report")
  end)

  it("in all, takes the security tests' results and coverage from the tiers' runs, the lines they ran", function()
    local root = new({
      ["backend/app/infrastructure/security/guard.py"] = SECURITY_CODE .. "\ndef other(x):\n    return x * 2\n",
      [TESTS .. "standalone/test_other.py"] =
        "from backend.app.infrastructure.security.guard import other\n\ndef test_other():\n    assert other(2) == 4\n",
    })
    local all = H.novapipe({ "-C", root, "--no-color", "run", "all" })
    assert.equal(0, all.code, all.stdout .. all.stderr)
    assert.matches("security tests' results from the standalone tier's run: not run again", all.stdout)
    -- other() ran only in a test that is not a security test: 3 of 4 lines,
    -- as `security --report` measures them (importing ran the two defs)
    assert.matches("PASS%s+security/standalone[^\n]*2 passed", all.stdout)
    assert.matches("PASS%s+security%-coverage[^\n]*75%.0%% of backend/app/infrastructure/security", all.stdout)
  end)

  it("fails when a security test fails", function()
    local root = new({ [TESTS .. "standalone/test_guard.py"] = SECURITY_TESTS:gsub("assert True", "assert False", 1) })
    local r = run(root, "--report", "--format", "json")
    assert.equal(1, r.code)
    assert.matches("FAIL%s+security/standalone[^\n]*1 passed, 1 failed", r.stdout)
    local data = cjson.decode(H.read(only(root .. "/backend/security-reports", "^security%-report%-.*%.json$")))
    assert.equal("failed", data.outcome.status)
    assert.same({ "security tests failed", "required safeguards without a passing test: 164.312(b), 164.312(c)" },
      data.outcome.reasons)
    assert.matches("FAIL%s+safeguards[^\n]*1 of 5 verified, 2 required without a passing test", r.stdout)
    assert.matches("\n      164.312%(b%) Audit controls: failing %(0 passed, 1 failed, 0 not run%), required\n"
      .. "        backend/app/tests/standalone/test_guard.py::test_audit_and_integrity %(line 13%): failed: assert False\n",
      r.stdout)
  end)

  it("fails when a required safeguard has no passing test: by default all five, each named", function()
    local root = new({ ["novapipe.lua"] = "return {}\n" })
    local r = run(root)
    assert.equal(1, r.code, r.stdout .. r.stderr)
    assert.matches("PASS%s+security/standalone[^\n]*2 passed", r.stdout)
    assert.matches("FAIL%s+safeguards[^\n]*3 of 5 verified, 2 required without a passing test", r.stdout)
    assert.matches("\n      164.312%(d%) Person or entity authentication: no test, required\n"
      .. "      164.312%(e%) Transmission security: no test, required\n", r.stdout)
    assert.matches("required by security.required_safeguards in novapipe.lua", r.stdout, 1, true)
    -- a filter runs part of the tests: what it leaves out is not verified
    H.write(root .. "/novapipe.lua", "return { security = { " .. REQUIRED .. " } }\n")
    r = run(root, "--filter", TESTS .. "standalone/test_guard.py::test_only_clinicians")
    assert.equal(1, r.code, r.stdout .. r.stderr)
    assert.matches("PASS%s+security/standalone[^\n]*1 passed", r.stdout)
    assert.matches("\n      164.312%(b%) Audit controls: not verified %(0 passed, 0 failed, 1 not run%), required\n"
      .. "        backend/app/tests/standalone/test_guard.py::test_audit_and_integrity %(line 12%): not selected by "
      .. "%-%-filter backend/app/tests/standalone/test_guard.py::test_only_clinicians\n", r.stdout)
    -- a list that names no safeguard is one line, exit 2
    H.write(root .. "/novapipe.lua", "return { security = { required_safeguards = { '164.312(f)' } } }\n")
    r = run(root)
    assert.equal(2, r.code)
    assert.equal("novapipe: novapipe.lua: security.required_safeguards[1]: '164.312(f)' names no 164.312 safeguard "
      .. "(164.312(a) to 164.312(e))\n", r.stderr)
  end)

  it("with --report writes every report, owner-only, mapped to 164.312", function()
    local root = new()
    local r = run(root, "--report")
    assert.equal(0, r.code, r.stdout .. r.stderr)
    local dir = root .. "/backend/security-reports"
    assert.equal("rwx------", lfs.attributes(dir, "permissions"))
    for _, pattern in ipairs({ "^security%-report%-%d+_%d+%.html$", "^security%-report%-%d+_%d+%.json$",
                               "^security%-report%-%d+_%d+%.md$", "^hipaa_security_report_%d+_%d+%.json$",
                               "^dependency_report_%d+_%d+%.json$", "^security_coverage_%d+_%d+%.json$" }) do
      assert.equal("rw-------", lfs.attributes(only(dir, pattern), "permissions"), pattern)
    end
    local data = cjson.decode(H.read(only(dir, "^security%-report%-.*%.json$")))
    local by = {}
    for _, s in ipairs(data.safeguards) do by[s.id] = s end
    assert.equal("verified", by["164.312(a)"].status)
    assert.equal("backend/app/tests/standalone/test_guard.py::test_only_clinicians", by["164.312(a)"].tests[1].id)
    assert.equal("verified", by["164.312(b)"].status)
    assert.equal("verified", by["164.312(c)"].status)
    assert.equal("no test", by["164.312(d)"].status)
    assert.equal("no test", by["164.312(e)"].status)
    assert.equal(2, data.tests.counts.tests) -- test_not_security did not run
    assert.same({ "loose" }, { data.dependencies.unpinned[1].name })
    assert.is_false(data.dependencies.checked)
    local cov = cjson.decode(H.read(only(dir, "^security_coverage_.*%.json$")))
    local files = {}
    for path in pairs(cov.files) do files[#files + 1] = path end
    table.sort(files)
    assert.same({ "backend/app/infrastructure/security/__init__.py", "backend/app/infrastructure/security/guard.py" }, files)
    assert.equal(100, cov.totals.percent_covered)
    local md = H.read(only(dir, "^security%-report%-.*%.md$"))
    assert.matches("| 164.312(e) | Transmission security | 0 | 0 | 0 | 0 | 0 | **no test** |", md, 1, true)
    -- a security path that is not there is named, not measured as 100% of nothing
    assert.matches("PASS%s+security%-coverage[^\n]*100%.0%% of backend/app/infrastructure/security, JSON", r.stdout)
    assert.matches("\n      warning: backend/app/domain/security %(security.coverage_paths%) does not exist: no "
      .. "security code measured there\n", r.stdout)
    assert.matches("backend/app/domain/security (security.coverage_paths) does not exist", md, 1, true)
  end)

  it("fails on PHI in test data, naming file, line and kind, until the threshold allows it", function()
    local root = new({ [TESTS .. "standalone/data.csv"] = "name,ssn\nA,219-09-9999\n" })
    local r = H.novapipe({ "-C", root, "--no-color", "run", "security" },
      { env = { GITHUB_STEP_SUMMARY = root .. "/summary.md" } })
    assert.equal(1, r.code)
    assert.matches("FAIL%s+phi%-audit[^\n]*1 finding%(s%)", r.stdout)
    local md = H.read(root .. "/summary.md")
    assert.matches("| phi-audit | ❌ failed | ", md, 1, true)
    assert.matches(" |  |  |  |  |  |  | 1 finding(s) in 6 file(s) (more than 0) |", md, 1, true)
    assert.matches("backend/app/tests/standalone/data%.csv:2: ssn %*%*%*%-%*%*%-%*%*99", r.stdout)
    assert.is_nil(r.stdout:find("219-09-9999", 1, true))
    H.write(root .. "/novapipe.lua", "return { security = { thresholds = { phi = 1 }, " .. REQUIRED .. " } }\n")
    assert.equal(0, run(root).code)
  end)

  it("checks pinned packages against OSV advisories in a directory, and honours live ignores only", function()
    local root = new()
    local adv = root .. "/osv"
    advisory(adv, "GHSA-demo-0001.json", VULNERABLE)
    local r = run(root, "--advisories", adv)
    assert.equal(1, r.code)
    assert.matches("FAIL%s+dependencies[^\n]*3 package%(s%), 2 pinned, 1 vulnerable, 1 unpinned", r.stdout)
    assert.matches("Demo_Lib 1%.0%.0: GHSA%-demo%-0001 demo%-lib leaks records %(fixed in 1%.0%.1%)", r.stdout)
    assert.matches("loose >=1 %(backend/requirements%.txt:3%)", r.stdout)
    H.write(root .. "/novapipe.lua", [[return { security = { ]] .. REQUIRED .. [[, ignore = {
      { id = "CVE-2099-12345", justification = "the leaking call is never made", expires = "2999-12-31" } } } }]])
    assert.equal(0, run(root, "--advisories", adv).code)
    H.write(root .. "/novapipe.lua", [[return { security = { ]] .. REQUIRED .. [[, ignore = {
      { id = "GHSA-demo-0001", justification = "was fine", expires = "2001-01-01" } } } }]])
    r = run(root, "--advisories", adv)
    assert.equal(1, r.code)
    assert.matches("ignore of GHSA%-demo%-0001 expired on 2001%-01%-01", r.stdout)
  end)

  it("scans a requirements file against an OSV directory: ranges, lists, pre-releases, epochs, name spellings", function()
    local root = new({ ["backend/requirements.txt"] = table.concat({
      "Mixed_Case.Pkg==1.0.0", "fixedpkg==2.0", "lastpkg==1.4", "lastpkg-two==1.4.1", "listed==3.1",
      "prepkg==2.0rc1", "epochpkg==1!1.0", "loose>=1", "",
    }, "\n") })
    local adv = root .. "/osv"
    local function write(id, name, events, versions)
      advisory(adv .. "/PyPI", id .. ".json", cjson.encode({ id = id, summary = id .. " flaw",
        affected = { { package = { ecosystem = "PyPI", name = name }, versions = versions,
                       ranges = events and { { type = "ECOSYSTEM", events = events } } or nil } } }))
    end
    write("OSV-1", "mixed-case-pkg", { { introduced = "0" }, { fixed = "1.0.1" } })
    write("OSV-2", "FixedPkg", { { introduced = "1.0" }, { fixed = "2.0" } })
    write("OSV-3", "lastpkg", { { introduced = "0" }, { last_affected = "1.4" } })
    write("OSV-4", "lastpkg_two", { { introduced = "0" }, { last_affected = "1.4" } })
    write("OSV-5", "listed", nil, { "3.0", "3.1" })
    write("OSV-6", "prepkg", { { introduced = "1.0" }, { fixed = "2.0" } })
    write("OSV-7", "epochpkg", { { introduced = "0" }, { fixed = "2.0" } })
    local r = run(root, "--report", "--format", "json", "--advisories", adv)
    assert.equal(1, r.code, r.stdout)
    local data = cjson.decode(H.read(only(root .. "/backend/security-reports", "^dependency_report_.*%.json$")))
    local found = {}
    for _, v in ipairs(data.vulnerabilities) do found[#found + 1] = v.package .. " " .. v.version .. " " .. v.id end
    assert.same({ "Mixed_Case.Pkg 1.0.0 OSV-1", "lastpkg 1.4 OSV-3", "listed 3.1 OSV-5", "prepkg 2.0rc1 OSV-6" }, found)
    assert.same({ "loose" }, { data.unpinned[1].name })
    assert.equal(7, data.advisory_count)
    assert.matches("7 pinned package%(s%) checked against 7 advisories", data.note)
    -- one malformed file stops the scan with exit 2, naming it
    advisory(adv .. "/PyPI", "OSV-8.json", '{"id": "OSV-8", "affected": [{"package": {"name": "x"}, "ranges": [{"events": 5}]}]}')
    r = run(root, "--advisories", adv)
    assert.equal(2, r.code)
    assert.matches("OSV%-8%.json: not an OSV advisory: affected%[1%]%.ranges%[1%] has no events", r.stdout)
  end)

  it("reads advisories from a zip", function()
    local root = new()
    advisory(root .. "/src", "GHSA-demo-0001.json", VULNERABLE)
    local py = process.which("python3")
    local z = process.run({ py, "-c", "import sys, zipfile\nwith zipfile.ZipFile(sys.argv[1], 'w') as z:\n"
      .. "    z.write(sys.argv[2], 'PyPI/GHSA-demo-0001.json')", root .. "/all.zip", root .. "/src/GHSA-demo-0001.json" })
    assert.equal(0, z.code, z.stderr)
    local r = run(root, "--advisories", root .. "/all.zip")
    assert.equal(1, r.code)
    assert.matches("GHSA%-demo%-0001", r.stdout)
    H.write(root .. "/broken.zip", "not a zip")
    r = run(root, "--advisories", root .. "/broken.zip")
    assert.equal(2, r.code)
    assert.matches("broken%.zip: not a readable zip archive", r.stdout)
  end)

  it("stops with exit 2 on unreadable advisories or bad configuration, one line each", function()
    local root = new()
    advisory(root .. "/osv", "bad.json", '{"id": "X", "affected": [}')
    local r = run(root, "--advisories", root .. "/osv")
    assert.equal(2, r.code)
    assert.matches("ERROR%s+dependencies[^\n]*\n%s+advisories: [^\n]*/osv/bad%.json:1:%d+: [^\n]*not valid JSON", r.stdout)
    r = run(root, "--advisories", root .. "/nowhere")
    assert.equal(2, r.code)
    assert.matches("nowhere: no such directory or zip of advisories", r.stdout)
    H.write(root .. "/novapipe.lua", "return { security = { waivers = { { file = 'x.csv', expires = '2030-01-01' } } } }\n")
    r = run(root)
    assert.equal(2, r.code)
    assert.equal("novapipe: novapipe.lua: security.waivers[1] needs a justification: say why this exception is "
      .. "acceptable\n", r.stderr)
    H.write(root .. "/novapipe.lua", "return {}\n")
    r = run(root, "--format", "pdf")
    assert.equal(2, r.code)
    assert.matches("unknown format 'pdf'", r.stderr)
  end)

  it("renders its HTML report of a gated run in headless Chromium: not verified apart from no test, the findings", function()
    local chromium = process.which("chromium")
    assert.is_string(chromium, "chromium is not installed (scripts/setup.sh --test installs it)")
    -- the audit test fails, so the venv tier, which holds the only
    -- authentication test, is gated off: (d) has a test that did not run
    local root = new({
      [TESTS .. "standalone/data.csv"] = "name,ssn\nA,219-09-9999\n",
      [TESTS .. "standalone/test_guard.py"] = SECURITY_TESTS:gsub("assert True", "assert 1 + 1 == 3", 1),
      [TESTS .. "venv/__init__.py"] = "",
      [TESTS .. "venv/test_login.py"] = "import pytest\n\n@pytest.mark.security\n@pytest.mark.hipaa('164.312(d)')\n"
        .. "def test_a_wrong_password_is_refused():\n    assert True\n",
    })
    local adv = root .. "/osv"
    advisory(adv, "GHSA-demo-0001.json", VULNERABLE)
    local r = run(root, "--report", "--format", "html", "--advisories", adv)
    assert.equal(1, r.code)
    assert.matches("SKIP%s+security/venv[^\n]*\n      skipped: security/standalone failed", r.stdout)
    -- the PHI findings are on the console with --report too, masked
    assert.matches("\n      backend/app/tests/standalone/data%.csv:2: ssn %*%*%*%-%*%*%-%*%*99\n", r.stdout)
    local page = only(root .. "/backend/security-reports", "^security%-report%-.*%.html$")
    local profile = root .. "/chromium-profile"
    local flags = { chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync",
      "--user-data-dir=" .. profile }
    local function chrome(...)
      local argv = { table.unpack(flags) }
      for _, a in ipairs({ ... }) do argv[#argv + 1] = a end
      return assert(process.run(argv, { stdin = "null", timeout = 120, env = { HOME = root } }))
    end
    local dom = chrome("--dump-dom", "file://" .. page)
    assert.equal(0, dom.code, dom.stderr)
    local text = dom.stdout
    -- what the parsed page holds, row by row
    local rows = {}
    for id, status in text:gmatch('<tr data%-safeguard="(164%.312%(%a%))">.-<span class="badge [%w ]+">([^<]+)</span></td></tr>') do
      rows[#rows + 1] = id .. " " .. status
    end
    assert.same({ "164.312(a) verified", "164.312(b) failing", "164.312(c) failing", "164.312(d) not verified",
                  "164.312(e) no test" }, rows)
    assert.matches("No test at all for:</strong> 164.312(e) Transmission security.", text, 1, true)
    assert.matches('<li data-safeguard="164.312(d)"><strong>164.312(d) Person or entity authentication</strong>: '
      .. "not verified<ul>\n<li><code>backend/app/tests/venv/test_login.py::test_a_wrong_password_is_refused "
      .. "(line 5)</code>: its tier venv was skipped (security/standalone failed)</li>\n</ul></li>", text, 1, true)
    -- the failed test with its message and where it failed
    assert.matches("<code>backend/app/tests/standalone/test_guard.py::test_audit_and_integrity</code></td><td>"
      .. '<span class="badge failed">failed</span></td><td>164.312(c)(2), 164.312(b)</td><td>'
      .. "<code>backend/app/tests/standalone/test_guard.py:13</code> assert (1 + 1) == 3</td>", text, 1, true)
    -- what ran and what did not
    assert.matches("<tr><td>venv</td><td><span class=\"badge warn\">skipped</span></td><td>security/standalone failed"
      .. "</td></tr>", text, 1, true)
    assert.matches("Outcome: <span class=\"badge failed\">failed</span>", text, 1, true)
    assert.matches("<code>backend/app/tests/standalone/data.csv</code></td><td class=\"n\">2</td><td>ssn</td>", text, 1, true)
    assert.matches("GHSA-demo-0001 (CVE-2099-12345)", text, 1, true)
    assert.is_nil(text:find("219-09-9999", 1, true))
    -- and it draws: a screenshot of a page with content is not blank
    local shot = root .. "/page.png"
    local s = chrome("--window-size=1200,1600", "--screenshot=" .. shot, "file://" .. page)
    assert.equal(0, s.code, s.stderr)
    local png = H.read(shot)
    assert.equal("\137PNG", png:sub(1, 4))
    assert.is_true(#png > 20000, "the screenshot is too small to hold the page: " .. #png .. " bytes")
  end)
end)
