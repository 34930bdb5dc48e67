-- Tracking security findings: their fingerprints, the baseline's one-to-one
-- matching and its file, advisories' severities, and the SARIF log's parts.
local H = require "spec.support.h"
local baseline = require "novapipe.security.baseline"
local config = require "novapipe.config"
local fingerprint = require "novapipe.security.fingerprint"
local phi_audit = require "novapipe.security.phi_audit"
local sarif = require "novapipe.security.sarif"
local severity = require "novapipe.security.severity"

-- The PHI audit of one file holding `text`: its findings.
local function audit(dir, name, text)
  H.write(dir .. "/" .. name, text)
  local cfg = config.defaults()
  cfg.security.phi_audit.paths = { dir .. "/" .. name }
  return phi_audit.run(cfg).findings
end

local function fps(findings)
  local out = {}
  for i, f in ipairs(findings) do out[i] = f.fingerprint end
  return out
end

describe("a PHI finding's fingerprint", function()
  local keep = H.temporaries(after_each)

  it("stays when lines are added above it or it is re-indented", function()
    local dir = keep(H.tmpdir())
    local before = audit(dir, "data.py", 'PATIENT = {"ssn": "219-09-9999"}\n')
    local moved = audit(dir, "data.py", '"""Patients."""\n\n\n  PATIENT  =  {"ssn":   "219-09-9999"}\n')
    assert.equal(1, before[1].line)
    assert.equal(4, moved[1].line)
    assert.equal(before[1].fingerprint, moved[1].fingerprint)
    assert.matches("^%x+:1$", before[1].fingerprint)
  end)

  it("changes with the value, the line's other text, the kind and the file", function()
    local dir = keep(H.tmpdir())
    local base = audit(dir, "data.py", 'PATIENT = {"ssn": "219-09-9999"}\n')[1].fingerprint
    assert.are_not.equal(base, audit(dir, "data.py", 'PATIENT = {"ssn": "219-09-9988"}\n')[1].fingerprint)
    assert.are_not.equal(base, audit(dir, "data.py", 'OTHER = {"ssn": "219-09-9999"}\n')[1].fingerprint)
    assert.are_not.equal(base, audit(dir, "other.py", 'PATIENT = {"ssn": "219-09-9999"}\n')[1].fingerprint)
    local phone = audit(dir, "data.py", 'PATIENT = {"ssn": "415-867-5309"}\n')[1]
    assert.equal("phone", phone.kind)
    assert.are_not.equal(base, phone.fingerprint)
  end)

  it("is made of masked text only: a value that differs where it is masked keeps it", function()
    -- a hash of the raw value could be reversed by trying every SSN
    local dir = keep(H.tmpdir())
    local a = audit(dir, "data.py", 'SSN = "219-09-9999"\n')[1]
    local b = audit(dir, "data.py", 'SSN = "123-45-6799"\n')[1]
    assert.equal("***-**-**99", a.value)
    assert.equal(a.fingerprint, b.fingerprint)
    assert.equal(fingerprint.phi(a.file, "ssn", "***-**-**99", 'SSN = "[PHI:ssn]"') .. ":1", a.fingerprint)
  end)

  it("tells copies of one line apart by their order in the file", function()
    local dir = keep(H.tmpdir())
    local f = audit(dir, "data.csv", "name,ssn\nA,219-09-9999\nA,219-09-9999\n")
    local hex = f[1].fingerprint:match("^(%x+):1$")
    assert.is_string(hex)
    assert.same({ hex .. ":1", hex .. ":2" }, fps(f))
  end)
end)

describe("a vulnerable dependency's fingerprint", function()
  local function v(source, package, id, version)
    return { source = source, package = package, id = id, version = version or "1.0" }
  end

  it("stays when the requirement moves in its file or its version changes, whatever the name's spelling", function()
    local a = fingerprint.dependencies({ v("backend/requirements.txt:3", "Demo_Lib", "GHSA-1") })[1].fingerprint
    local b = fingerprint.dependencies({ v("backend/requirements.txt:9", "demo-lib", "GHSA-1", "1.1") })[1].fingerprint
    assert.equal(a, b)
  end)

  it("changes with the advisory, the package and the requirement file", function()
    local a = fingerprint.dependencies({ v("requirements.txt:3", "demo-lib", "GHSA-1") })[1].fingerprint
    for _, other in ipairs({ v("requirements.txt:3", "demo-lib", "GHSA-2"), v("requirements.txt:3", "other", "GHSA-1"),
                             v("requirements-dev.txt:3", "demo-lib", "GHSA-1") }) do
      assert.are_not.equal(a, fingerprint.dependencies({ other })[1].fingerprint)
    end
  end)

  it("reads the file from each kind of source", function()
    assert.same({ "backend/requirements.txt", 3 }, { fingerprint.source_file("backend/requirements.txt:3") })
    assert.same({ "pyproject.toml" }, { fingerprint.source_file("pyproject.toml [project.dependencies]") })
    assert.same({ "poetry.lock" }, { fingerprint.source_file("poetry.lock") })
  end)
end)

describe("a baseline", function()
  local keep = H.temporaries(after_each)
  local function entry(fp, kind) return { fingerprint = fp, kind = kind or "phi", file = "f" } end
  local function finding(fp) return { fingerprint = fp } end

  it("matches one to one: an entry absorbs one finding, never a second copy of it", function()
    local bl = { path = "b", entries = { entry("aa:1") } }
    local f1, f2 = finding("aa:1"), finding("aa:1")
    local new, known, stale = baseline.match(bl, "phi", { f1, f2 })
    assert.same({ f1 }, known)
    assert.same({ f2 }, new)
    assert.same({}, stale)
    assert.equal("known", f1.baseline)
    assert.equal("new", f2.baseline)
  end)

  it("reports the entries that match nothing as stale, one for each", function()
    local bl = { path = "b", entries = { entry("aa:1"), entry("aa:1"), entry("bb:1"), entry("cc:1", "dependency") } }
    local new, known, stale = baseline.match(bl, "phi", { finding("aa:1"), finding("dd:1") })
    assert.equal(1, #known)
    assert.equal(1, #new)
    assert.same({ "aa:1", "bb:1" }, { stale[1].fingerprint, stale[2].fingerprint })
  end)

  it("keeps its kinds apart", function()
    local bl = { path = "b", entries = { entry("aa:1", "dependency") } }
    local new = baseline.match(bl, "phi", { finding("aa:1") })
    assert.equal(1, #new)
  end)

  it("without one, every finding is new", function()
    local new, known, stale = baseline.match(nil, "phi", { finding("aa:1") })
    assert.same({ 1, 0, 0 }, { #new, #known, #stale })
  end)

  it("is written sorted and without a time, and read back", function()
    local dir = keep(H.tmpdir())
    local entries = {
      baseline.dependency_entry({ fingerprint = "bb:1", package = "demo", version = "1.0", id = "GHSA-1",
                                  source = "requirements.txt:2" }),
      baseline.phi_entry({ fingerprint = "aa:1", file = "t/data.csv", line = 2, kind = "ssn", value = "***-**-**99" }),
    }
    local text = baseline.encode(entries)
    assert.equal(text, baseline.encode({ entries[2], entries[1] }))
    assert.is_nil(text:find("%d%d%d%d%-%d%d%-%d%d"))
    H.write(dir .. "/b.json", text)
    local bl = baseline.read(dir .. "/b.json")
    assert.same({ "aa:1", "bb:1" }, { bl.entries[1].fingerprint, bl.entries[2].fingerprint })
    assert.equal("requirements.txt", bl.entries[2].file)
    assert.equal("2 entries (1 PHI, 1 dependency)", baseline.describe(bl.entries))
  end)

  it("that is not there is none; one that is not a baseline is one line naming it, a usage error", function()
    local dir = keep(H.tmpdir())
    assert.is_nil(baseline.read(dir .. "/none.json"))
    local function refused(text)
      H.write(dir .. "/b.json", text)
      local ok, err = pcall(baseline.read, dir .. "/b.json")
      assert.is_false(ok)
      assert.equal("usage", err.kind)
      assert.is_nil(err.message:find("\n"))
      return err.message
    end
    assert.matches("b%.json:1:%d+: .*not valid JSON.*%-%-update%-baseline", refused("{"))
    assert.matches("b%.json: not a novapipe security baseline %(schema missing", refused("{}"))
    assert.matches("entries%[1%] has no fingerprint", refused(
      '{"schema": "novapipe.security-baseline/1", "entries": [{"kind": "phi", "file": "x"}]}'))
    assert.matches("entries%[1%]: kind must be", refused(
      '{"schema": "novapipe.security-baseline/1", "entries": [{"fingerprint": "ab:1", "kind": "x", "file": "x"}]}'))
    assert.matches("entries%[1%]: line must be a whole number", refused(
      '{"schema": "novapipe.security-baseline/1", "entries": [{"fingerprint": "ab:1", "kind": "phi", "file": "x", '
      .. '"line": "zz"}]}'))
    assert.matches("entries%[1%]: type must be a string", refused(
      '{"schema": "novapipe.security-baseline/1", "entries": [{"fingerprint": "ab:1", "kind": "phi", "file": "x", '
      .. '"type": {}}]}'))
    -- replacing it (--update-baseline) is allowed: the line comes back instead
    local bl, why = baseline.read(dir .. "/b.json", true)
    assert.is_nil(bl)
    assert.matches("type must be a string", why)
  end)
end)

describe("an advisory's severity", function()
  it("is the base score of its CVSS v3 or v2 vector, as FIRST's calculators give it", function()
    assert.equal(9.8, severity.cvss3("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"))
    assert.equal(6.1, severity.cvss3("CVSS:3.1/AV:N/AC:L/PR:N/UI:R/S:C/C:L/I:L/A:N"))
    assert.equal(9.9, severity.cvss3("CVSS:3.0/AV:N/AC:L/PR:L/UI:N/S:C/C:H/I:H/A:H"))
    assert.equal(0, severity.cvss3("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:N"))
    assert.equal(7.5, severity.cvss2("AV:N/AC:L/Au:N/C:P/I:P/A:P"))
    assert.is_nil(severity.cvss3("CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N"))
    assert.is_nil(severity.cvss3("CVSS:3.1/AV:N"))
  end)

  it("takes the highest score, then GitHub's rating when no vector gives one", function()
    local s = severity.of({ severity = { { type = "CVSS_V3", score = "CVSS:3.1/AV:N/AC:L/PR:N/UI:R/S:C/C:L/I:L/A:N" } },
                            database_specific = { severity = "LOW" } },
      { severity = { { type = "CVSS_V3", score = "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H" } } })
    assert.same({ score = 9.8, rating = "critical", vector = "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H" }, s)
    assert.same({ rating = "medium" }, severity.of({ database_specific = { severity = "MODERATE" } }))
    assert.is_nil(severity.of({ id = "X" }))
  end)
end)

describe("the SARIF log", function()
  it("names files relative to %SRCROOT%, percent-encoded, and absolute ones as file: URIs", function()
    assert.same({ uri = "backend/app/tests/a%20b.csv", uriBaseId = "%SRCROOT%" }, sarif.artifact("./backend/app/tests/a b.csv"))
    assert.same({ uri = "file:///srv/p/x.py" }, sarif.artifact("/srv/p/x.py"))
  end)

  it("masks a path before percent-encoding it, where the sink could no longer see the PHI in it", function()
    local mask = require("novapipe.phi").masker()
    local a = sarif.artifact("backend/app/tests/test_jane.doe@gmail.com.py", function(t) return (mask(t)) end)
    assert.not_matches("jane", a.uri, 1, true)
    assert.matches("%5BPHI%3Aemail%5D", a.uri, 1, true)
    local log = sarif.log({ root = "/home/jane.doe@gmail.com/p", version = "0", mask = function(t) return (mask(t)) end,
      phi = { findings = { { file = "t/jane.doe@gmail.com.csv", line = 1, kind = "email", value = "****", fingerprint = "aa:1",
                             baseline = "recorded" } }, errors = {} },
      deps = { checked = true, vulnerabilities = {} }, baseline = { path = "security-baseline.json", stale = {} } })
    local text = require("novapipe.json").pretty(log)
    assert.not_matches("jane", text, 1, true)
    -- written by --update-baseline: in the baseline, as the console says
    assert.equal("unchanged", log.runs[1].results[1].baselineState)
  end)

  it("marks waived findings suppressed with their justification, and others new or unchanged against a baseline", function()
    local function f(fp, state)
      return { file = "t.csv", line = 2, kind = "ssn", value = "***-**-**99", fingerprint = fp, baseline = state }
    end
    local waived = f("cc:1")
    waived.waiver = { justification = "the clinic's switchboard", expires = "2999-01-01" }
    local log = sarif.log({ root = "/p", version = "0", phi = { findings = { f("aa:1", "known"), f("bb:1", "new") },
                            waived = { waived }, errors = {} }, deps = { checked = true, vulnerabilities = {} },
                            baseline = { path = "security-baseline.json", stale = {} } })
    local r = log.runs[1].results
    assert.same({ "unchanged", "new" }, { r[1].baselineState, r[2].baselineState })
    assert.is_nil(r[3].baselineState)
    assert.same({ { kind = "external", status = "accepted", justification = "the clinic's switchboard (until 2999-01-01)" } },
      r[3].suppressions)
    assert.equal(1, #log.runs[1].tool.driver.rules)
    assert.equal("file:///p/", log.runs[1].originalUriBaseIds["%SRCROOT%"].uri)
    assert.is_true(log.runs[1].invocations[1].executionSuccessful)
  end)
end)

describe("the baseline's and SARIF's settings", function()
  local keep = H.temporaries(after_each)
  local function load(text)
    local dir = keep(H.tmpdir())
    H.write(dir .. "/novapipe.lua", text)
    return pcall(config.load, dir .. "/novapipe.lua")
  end

  it("take security.baseline as a file and sarif among security.formats", function()
    local ok, cfg = load("return { security = { baseline = 'ci/known.json', formats = { 'html', 'sarif' } } }")
    assert.is_true(ok, tostring(cfg))
    assert.equal("ci/known.json", cfg.security.baseline)
    assert.equal("security-baseline.json", config.defaults().security.baseline)
  end)

  it("refuse a baseline that names no file, and a format novapipe does not write, in one line", function()
    local ok, err = load("return { security = { baseline = 'ci/' } }")
    assert.is_false(ok)
    assert.matches("novapipe.lua: security.baseline must name a file", tostring(err), 1, true)
    ok, err = load("return { security = { baseline = 3 } }")
    assert.is_false(ok)
    assert.matches("'baseline' in security must be a string", tostring(err), 1, true)
    ok, err = load("return { security = { formats = { 'sarif2' } } }")
    assert.is_false(ok)
    assert.matches("unknown format 'sarif2' (known: html, json, md, sarif)", tostring(err), 1, true)
  end)
end)
