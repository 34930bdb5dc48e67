-- A property of the whole run, not of one channel: on a project whose test
-- names, fixture names, parametrize ids, output, failure messages and file
-- names are full of real-looking PHI, `novapipe run all` lets none of it
-- out, in anything it printed or wrote (console, step summary, JUnit,
-- coverage HTML and data, JSON, HTML and Markdown reports, pytest's cache,
-- the audit log); and with a symbolic link planted at every file it wrote,
-- a second run writes through none of them.
local fs = require "novapipe.fs"
local lfs = require "lfs"
local H = require "spec.support.h"

local PHI = { "219-09-9999", "415-867-5309", "jane.doe@gmail.com", "1980-02-03", "MRN1234567" }

local TESTS = "/backend/app/tests/"

-- The files this spec adds to the example: the project's own sources.
local ADDED = {
  ["standalone/test_phi_names.py"] = [[
import pytest

@pytest.fixture
def MRN1234567():
    return "DOB: 1980-02-03"

@pytest.mark.parametrize("ssn", ["219-09-9999"])
def test_ssn_as_id(ssn):
    print("patient", ssn, "jane.doe@gmail.com", "415-867-5309")
    assert ssn

def test_MRN1234567(MRN1234567):
    print(MRN1234567)
    assert MRN1234567
]],
  ["standalone/data/219-09-9999.csv"] = "name\nx\n",
  ["integration/test_phi_failure.py"] = [[
def test_fails_with_phi():
    record = {"ssn": "219-09-9999", "email": "jane.doe@gmail.com", "dob": "1980-02-03"}
    assert record["ssn"] == "000-00-0000", "DOB 1980-02-03 for MRN1234567 at 415-867-5309"
]],
}

local function leaks(text)
  local found = {}
  for _, v in ipairs(PHI) do
    if text:find(v, 1, true) then found[#found + 1] = v end
  end
  return found
end

describe("PHI everywhere", function()
  local copy, outside
  before_each(function()
    copy = H.clinic()
    outside = H.tmpdir()
    for rel, text in pairs(ADDED) do
      local path = copy .. TESTS .. rel
      assert(fs.mkdir_p(path:match("^(.*)/")))
      H.write(path, text)
    end
    -- pytest puts the tests' output into the JUnit XML too
    H.write(copy .. "/pytest.ini", H.read(copy .. "/pytest.ini") .. "junit_logging = all\n")
  end)
  after_each(function()
    H.rmrf(copy)
    H.rmrf(outside)
  end)

  local function run_all()
    local summary = copy .. "/step-summary.md"
    local r = H.novapipe({ "-C", copy, "--no-color", "run", "all" },
      { env = { DATABASE_URL = false, GITHUB_STEP_SUMMARY = summary } })
    return r, summary
  end

  -- What the project holds besides its own sources and what Python itself
  -- caches (bytecode holds the tests' constants, as their source does).
  local function written_files()
    local out = {}
    for _, rel in ipairs(fs.walk(copy) or {}) do
      local own = false
      for added in pairs(ADDED) do own = own or rel == "backend/app/tests/" .. added end
      if not own and not rel:find("__pycache__", 1, true) and not rel:match("%.py$")
        and rel ~= "pytest.ini" and rel ~= "novapipe.lua" and not rel:match("%.txt$") and not rel:match("^README") then
        out[#out + 1] = rel
      end
    end
    return out
  end

  it("lets none of it out of anything novapipe printed or wrote", function()
    local r, summary = run_all()
    assert.equal(1, r.code, r.stdout .. r.stderr) -- the failing test, and the PHI audit's findings
    assert.matches("FAIL%s+integration", r.stdout)
    assert.matches("FAIL%s+phi%-audit", r.stdout)
    assert.same({}, leaks(r.stdout .. r.stderr), "the console")
    assert.same({}, leaks(H.read(summary) or ""), "the step summary")
    local checked = 0
    for _, rel in ipairs(written_files()) do
      local text = H.read(copy .. "/" .. rel) or ""
      assert.same({}, leaks(text), rel)
      assert.same({}, leaks(rel), "a file name: " .. rel)
      checked = checked + 1
    end
    -- the channels the property is about were there to check
    assert.truthy(lfs.attributes(copy .. "/backend/test-results/integration-results.xml"))
    assert.truthy(lfs.attributes(copy .. "/backend/coverage_html/combined/index.html"))
    assert.truthy(checked > 50, ("only %d files checked"):format(checked))
    assert.matches("%[PHI:ssn%]", H.read(copy .. "/backend/test-results/standalone-results.xml"))
  end)

  it("writes through none of the symbolic links planted where it wrote", function()
    run_all()
    local planted = {}
    for i, rel in ipairs(written_files()) do
      local path = copy .. "/" .. rel
      if lfs.symlinkattributes(path, "mode") == "file" and not rel:find("%.lock$") then
        local victim = ("%s/victim-%d"):format(outside, i)
        H.write(victim, "untouched\n")
        assert(fs.chmod(victim, "0644"))
        assert(os.remove(path))
        assert(lfs.link(victim, path, true))
        planted[#planted + 1] = { rel = rel, victim = victim }
      end
    end
    assert.truthy(#planted > 50, ("only %d links planted"):format(#planted))
    local r = run_all()
    assert.is_not.equal(0, r.code)
    for _, p in ipairs(planted) do
      assert.equal("untouched\n", H.read(p.victim), p.rel .. " was written through")
      assert.equal("rw-r--r--", lfs.attributes(p.victim, "permissions"), p.rel .. " was chmodded through")
    end
    assert.is_nil(r.stderr:find("traceback", 1, true), r.stderr)
    -- the audit log, a link now, was refused in one line
    assert.matches("audit log not written: [^\n]*symbolic link", r.stderr)
  end)
end)
