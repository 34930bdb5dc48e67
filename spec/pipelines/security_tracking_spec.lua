-- Findings that are tracked, end to end: the real binary and a project in a
-- temporary directory with a PHI finding and a vulnerable pinned
-- dependency (a small OSV directory the spec writes); the SARIF file
-- checked against the official SARIF 2.1.0 schema (a fixture) with
-- Debian's python3-jsonschema; a baseline written, then known findings
-- passed and a new copy of one failed. One project serves every test, in
-- order: the security stages run on it in a couple of seconds.
local cjson = require "cjson"
local lfs = require "lfs"
local process = require "novapipe.process"
local H = require "spec.support.h"

local TESTS = "backend/app/tests/"
local SCHEMA = lfs.currentdir() .. "/spec/fixtures/sarif-schema-2.1.0.json"

local ADVISORY = cjson.encode({
  id = "GHSA-demo-0001", aliases = { "CVE-2099-12345" }, summary = "demo-lib leaks records",
  severity = { { type = "CVSS_V3", score = "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:N/A:N" } },
  affected = { { package = { ecosystem = "PyPI", name = "demo-lib" },
                 ranges = { { type = "ECOSYSTEM", events = { { introduced = "0" }, { fixed = "1.0.1" } } } } } },
})
local LOW = cjson.encode({
  id = "PYSEC-2099-7", summary = "other-lib logs a header", database_specific = { severity = "LOW" },
  affected = { { package = { ecosystem = "PyPI", name = "other-lib" }, versions = { "2.0" } } },
})

local DATA = "name,ssn\nAda,219-09-9999\n"

-- Validates a file against the SARIF schema: nil, or the errors found.
local VALIDATE = [[
import json, sys
import jsonschema
schema = json.load(open(sys.argv[1]))
doc = json.load(open(sys.argv[2]))
validator = jsonschema.Draft4Validator(schema, format_checker=jsonschema.FormatChecker())
errors = ["/".join(map(str, e.absolute_path)) + ": " + e.message for e in validator.iter_errors(doc)]
print("\n".join(errors))
sys.exit(1 if errors else 0)
]]

describe("tracked security findings", function()
  local root, home
  local function run(...)
    -- the environment the spec controls: no cache, no CI, a home of its own
    return H.novapipe({ "-C", root, "--no-color", "run", "security", "--advisories", root .. "/osv", ... },
      { env = { HOME = home, XDG_CACHE_HOME = home .. "/cache", CI = false, GITHUB_ACTIONS = false } })
  end
  local function sarif_file() return root .. "/backend/security-reports/security.sarif" end

  lazy_setup(function()
    root = H.tree({
      ["backend/__init__.py"] = "", ["backend/app/__init__.py"] = "", [TESTS .. "__init__.py"] = "",
      [TESTS .. "standalone/__init__.py"] = "",
      [TESTS .. "standalone/data.csv"] = DATA,
      -- findings are what this spec is about: no safeguard is required
      ["novapipe.lua"] = "return { security = { required_safeguards = {} } }\n",
      ["backend/requirements.txt"] = "fastapi==0.110.0\nDemo_Lib==1.0.0\nother-lib==2.0\n",
      ["osv/GHSA-demo-0001.json"] = ADVISORY,
      ["osv/PYSEC-2099-7.json"] = LOW,
    })
    home = H.tmpdir()
  end)
  lazy_teardown(function()
    H.rmrf(root)
    H.rmrf(home)
  end)

  it("writes SARIF 2.1.0 the official schema accepts: the PHI finding and the vulnerable dependency, where they are",
    function()
    local py = process.which("python3")
    local has = process.run({ py, "-c", "import jsonschema" })
    assert.equal(0, has.code, "python3-jsonschema is not installed (scripts/setup.sh --test installs it)")
    local r = run("--format", "sarif")
    assert.equal(1, r.code, r.stdout .. r.stderr)
    assert.matches("PASS%s+security%-sarif[^\n]*3 result%(s%) in backend/security%-reports/security%.sarif", r.stdout)
    assert.is_nil(lfs.attributes(root .. "/backend/security-reports/junit"), "no other report without --report")
    assert.equal("rw-------", lfs.attributes(sarif_file(), "permissions"))
    local v = process.run({ py, "-c", VALIDATE, SCHEMA, sarif_file() })
    assert.equal(0, v.code, v.stdout .. v.stderr)

    local text = H.read(sarif_file())
    assert.is_nil(text:find("219-09-9999", 1, true), "the raw value is in the SARIF file")
    local log = cjson.decode(text)
    assert.equal("2.1.0", log.version)
    local run1 = log.runs[1]
    assert.equal("novapipe", run1.tool.driver.name)
    assert.equal("file://" .. root .. "/", run1.originalUriBaseIds["%SRCROOT%"].uri)
    assert.is_true(run1.invocations[1].executionSuccessful)
    local rules = {}
    for i, rule in ipairs(run1.tool.driver.rules) do rules[rule.id] = { i - 1, rule } end
    local got = {}
    for _, res in ipairs(run1.results) do
      local loc = res.locations[1].physicalLocation
      assert.equal("%SRCROOT%", loc.artifactLocation.uriBaseId)
      assert.equal(res.ruleIndex, rules[res.ruleId][1])
      assert.matches("^%x+:1$", res.partialFingerprints["novapipeFingerprint/v1"])
      assert.is_nil(res.baselineState, "no baseline yet")
      got[#got + 1] = ("%s %s:%d %s"):format(res.ruleId, loc.artifactLocation.uri, loc.region.startLine, res.level)
    end
    assert.same({ "phi/ssn backend/app/tests/standalone/data.csv:2 error",
                  "GHSA-demo-0001 backend/requirements.txt:2 error",
                  "PYSEC-2099-7 backend/requirements.txt:3 note" }, got)
    local phi = run1.results[1]
    assert.equal("***-**-**99", phi.properties.maskedValue)
    assert.matches("***-**-**99", phi.message.text, 1, true)
    local dep = run1.results[2]
    assert.same({ "1.0.1" }, dep.properties.fixedVersions)
    assert.same({ "CVE-2099-12345" }, dep.properties.aliases)
    assert.matches("fixed in 1.0.1", dep.message.text, 1, true)
    local ghsa = rules["GHSA-demo-0001"][2]
    assert.equal("7.5", ghsa.properties["security-severity"])
    assert.equal("error", ghsa.defaultConfiguration.level)
    assert.equal("https://osv.dev/vulnerability/GHSA-demo-0001", ghsa.helpUri)
    assert.matches("fixed (1.0.1)", ghsa.help.text, 1, true)
    assert.equal("2.0", rules["PYSEC-2099-7"][2].properties["security-severity"])
    assert.equal("7.5", rules["phi/ssn"][2].properties["security-severity"])
    assert.truthy(rules["phi/ssn"][2].help.text:find("security.waivers", 1, true))
  end)

  it("writes a baseline that passes its known findings, and fails a new copy moved right next to one", function()
    local r = run("--update-baseline")
    assert.equal(0, r.code, r.stdout .. r.stderr)
    assert.matches("PASS%s+security%-baseline[^\n]*wrote security%-baseline%.json: 3 entries %(1 PHI, 2 dependencies%)",
      r.stdout)
    assert.matches("they do not fail this run", r.stdout)
    local path = root .. "/security-baseline.json"
    assert.equal("rw-------", lfs.attributes(path, "permissions"))
    local text = H.read(path)
    assert.is_nil(text:find("219-09-9999", 1, true))
    assert.equal(3, #cjson.decode(text).entries)

    -- known: the run passes and says so, also after the finding moved down
    H.write(root .. "/" .. TESTS .. "standalone/data.csv", "name,ssn\n\n\nAda,219-09-9999\n")
    r = run("--format", "sarif")
    assert.equal(0, r.code, r.stdout .. r.stderr)
    assert.matches("PASS%s+phi%-audit[^\n]*1 finding%(s%) in %d+ file%(s%) %(0 new, 1 known%)", r.stdout)
    assert.matches("data%.csv:4: ssn %*%*%*%-%*%*%-%*%*99 %(known%)", r.stdout)
    assert.matches("PASS%s+dependencies[^\n]*2 vulnerable %(0 new, 2 known%)", r.stdout)

    -- a second copy, right next to the known one: new, and the run fails
    H.write(root .. "/" .. TESTS .. "standalone/data.csv", "name,ssn\n\n\nAda,219-09-9999\nAda,219-09-9999\n")
    r = run("--report", "--format", "sarif")
    assert.equal(1, r.code, r.stdout .. r.stderr)
    assert.matches("PASS%s+security%-report[^\n]*verified; no combined report: %-%-format names none of html, json, md\n",
      r.stdout)
    assert.matches("FAIL%s+phi%-audit[^\n]*2 finding%(s%) in %d+ file%(s%) %(1 new, more than 0, 1 known%)", r.stdout)
    assert.matches("data%.csv:4: ssn [^\n]*%(known%)\n[^\n]*data%.csv:5: ssn %*%*%*%-%*%*%-%*%*99\n", r.stdout)
    local states = {}
    for _, res in ipairs(cjson.decode(H.read(sarif_file())).runs[1].results) do
      states[#states + 1] = res.ruleId .. " " .. res.baselineState
    end
    assert.same({ "phi/ssn unchanged", "phi/ssn new", "GHSA-demo-0001 unchanged", "PYSEC-2099-7 unchanged" }, states)

    -- fixed: the known findings no longer found are named, to refresh the baseline
    H.write(root .. "/" .. TESTS .. "standalone/data.csv", "name,ssn\n")
    H.write(root .. "/backend/requirements.txt", "fastapi==0.110.0\nDemo_Lib==1.0.1\nother-lib==2.0\n")
    r = run()
    assert.equal(0, r.code, r.stdout .. r.stderr)
    assert.matches("1 known finding%(s%) of security%-baseline%.json no longer found %(fixed; refresh it with "
      .. "%-%-update%-baseline%):\n%s+backend/app/tests/standalone/data%.csv:2: ssn %*%*%*%-%*%*%-%*%*99\n", r.stdout)
    assert.matches("no longer found[^\n]*\n%s+Demo_Lib 1%.0%.0: GHSA%-demo%-0001 %(backend/requirements%.txt%)", r.stdout)

    -- a baseline that is not one: one line, exit 2, before anything runs
    H.write(path, '{"schema": "novapipe.security-baseline/1", "entries": {"a": 1}}\n')
    r = run()
    assert.equal(2, r.code, r.stdout .. r.stderr)
    assert.equal("novapipe: security-baseline.json: 'entries' is not a list; write it again with novapipe run security "
      .. "--update-baseline (or remove it)\n", r.stderr)
    assert.is_nil(r.stdout:find("phi%-audit"))
  end)
end)
