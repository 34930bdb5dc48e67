-- run_tests end to end: the real binary, real pytest, projects written into
-- temporary directories.
local fs = require "novapipe.fs"
local lfs = require "lfs"
local proc = require "novapipe.proc"
local time = require "novapipe.time"
local H = require "spec.support.h"

local TESTS = "backend/app/tests/"

local project, run = H.project, H.run_tests

local PASSING = "def test_ok():\n    pass\n"

-- Starts `run_tests --integration` on a project whose test waits, with a
-- PostgreSQL of novapipe's, in a TMPDIR of the project's own; returns once
-- the test runs: {p, marker, tmp, server (pid), data (its directory)}.
local function start_integration(new_project)
  local marker = H.marker()
  local root = new_project({
    ["novapipe.lua"] = "return { tiers = { integration = { services = { 'postgresql' } } } }\n",
    [TESTS .. "integration/test_db.py"] =
      ("import subprocess\ndef test_waits():\n    subprocess.run(['sleep', '%s'])\n"):format(marker),
  })
  local tmp = root .. "/tmp"
  assert(fs.mkdir_p(tmp, "0711"))
  assert(fs.chmod(root, "0711")) -- the postgres user must reach its directory
  local p = assert(proc.spawn({ H.bin, "-C", root, "run", "run_tests", "--integration" },
    { stdout = "capture", stderr = "capture", env = { DATABASE_URL = false, TMPDIR = tmp } }))
  local deadline = time.now() + 60
  while not H.find_process("sleep", marker) and time.now() < deadline do time.sleep(0.05) end
  assert.is_number(H.find_process("sleep", marker), "the integration test never started")
  local server, data
  for pid in lfs.dir("/proc") do
    local cmd = pid:match("^%d+$") and H.read("/proc/" .. pid .. "/cmdline") or ""
    local d = cmd:match("^[^%z]*postgres%z%-D%z([^%z]*novapipe%-pg%-[^%z]*)%z")
    if d then server, data = tonumber(pid), d end
  end
  assert.is_number(server, "no PostgreSQL of novapipe's is running")
  return { p = p, marker = marker, tmp = tmp, server = server, data = data }
end
local FAILING = "def test_bad():\n    assert 1 == 2\n"

describe("novapipe run run_tests", function()
  local roots = {}
  local function new_project(files)
    local root = project(files)
    roots[#roots + 1] = root
    return root
  end
  after_each(function()
    for _, r in ipairs(roots) do H.rmrf(r) end
    roots = {}
  end)

  describe("refuses bad input with exit 2 and one line", function()
    it("for an invalid option", function()
      local r = run(new_project({}), { "--parallel", "zero" })
      assert.equal(2, r.code)
      assert.equal(1, select(2, r.stderr:gsub("\n", "")))
      assert.matches("'zero' is not a whole number of at least 1", r.stderr)
    end)

    it("for a novapipe.lua with a syntax error, naming its line", function()
      local r = run(new_project({ ["novapipe.lua"] = "return {\n  tiers = {\n}\n" }))
      assert.equal(2, r.code)
      assert.matches("^novapipe: novapipe.lua:%d+: ", r.stderr)
      assert.equal(1, select(2, r.stderr:gsub("\n", "")))
    end)

    it("for a novapipe.lua with a setting it does not know", function()
      local r = run(new_project({ ["novapipe.lua"] = "return { tierz = {} }\n" }))
      assert.equal(2, r.code)
      assert.equal("novapipe: unknown setting 'tierz' in novapipe.lua; did you mean 'tiers'?\n", r.stderr)
    end)

    it("for a tier asking for a service novapipe does not have", function()
      local r = run(new_project({ ["novapipe.lua"] = "return { tiers = { integration = { services = { 'mongodb' } } } }\n" }))
      assert.equal(2, r.code)
      assert.matches("tier 'integration' asks for service 'mongodb'; novapipe provides: postgresql, redis", r.stderr)
    end)

    it("when the tests directory novapipe.lua names does not exist", function()
      local root = H.tmpdir()
      roots[#roots + 1] = root
      H.write(root .. "/novapipe.lua", "return { tests = 'tests' }\n")
      local r = run(root)
      assert.equal(2, r.code)
      assert.equal("", r.stdout)
      assert.matches("^novapipe: test directory tests does not exist in [^\n]* %(create it, or set tests in novapipe.lua%)\n$",
        r.stderr)
    end)

    it("when the project asks for PostgreSQL and it is not installed, naming the package", function()
      local root = new_project({
        ["novapipe.lua"] = "return { tiers = { integration = { services = { 'postgresql' } } } }\n",
        [TESTS .. "integration/test_db.py"] = PASSING,
      })
      local r = run(root, { "--integration" }, { env = { DATABASE_URL = false, NOVAPIPE_PG_BINDIR = root .. "/no-pg" } })
      assert.equal(2, r.code)
      assert.matches("ERROR%s+integration[^\n]*\n%s+PostgreSQL is not installed %(no initdb and postgres in [^)]*%); "
        .. "install it with: apt%-get install postgresql", r.stdout)
    end)

    it("when no Python can import pytest, naming the package", function()
      local root = new_project({ [TESTS .. "standalone/test_a.py"] = PASSING })
      H.write(root .. "/python", "#!/bin/sh\nexec /usr/bin/python3 -S \"$@\"\n")
      assert(fs.chmod(root .. "/python", "0755"))
      local r = run(root, {}, { env = { NOVAPIPE_PYTHON = root .. "/python" } })
      assert.equal(2, r.code)
      assert.matches("cannot import pytest; install it with: apt%-get install python3%-pytest", r.stdout)
    end)
  end)

  describe("gating", function()
    it("skips venv and integration when standalone fails, saying why, and exits 1", function()
      local root = new_project({
        [TESTS .. "standalone/test_a.py"] = FAILING,
        [TESTS .. "venv/test_b.py"] = PASSING,
        [TESTS .. "integration/test_c.py"] = PASSING,
      })
      local r = run(root)
      assert.equal(1, r.code)
      assert.matches("FAIL%s+standalone[^\n]*1 failed", r.stdout)
      assert.matches("SKIP%s+venv[^\n]*\n%s+skipped: standalone failed", r.stdout)
      assert.matches("SKIP%s+integration[^\n]*\n%s+skipped: standalone failed", r.stdout)
      assert.matches("FAILED [^\n]*test_a.py::test_bad", r.stdout)
    end)

    it("runs only venv with --venv, and without gating", function()
      local root = new_project({
        [TESTS .. "standalone/test_a.py"] = FAILING,
        [TESTS .. "venv/test_b.py"] = PASSING,
      })
      local r = run(root, { "--venv" })
      assert.equal(0, r.code)
      assert.matches("PASS%s+venv", r.stdout)
      assert.is_nil(r.stdout:find("%u+%s+standalone"))
    end)

    it("creates missing tier directories with an __init__.py", function()
      local root = new_project({ [TESTS .. "standalone/test_a.py"] = PASSING })
      local r = run(root)
      assert.equal(0, r.code)
      assert.matches("EMPTY%s+venv", r.stdout)
      assert.is_not_nil(lfs.attributes(root .. "/" .. TESTS .. "integration/__init__.py"))
    end)
  end)

  describe("counts", function()
    local SUITE = [[
import pytest

def test_pass(): pass
def test_pass2(): pass
def test_fail(): assert 0
@pytest.mark.skip(reason="no")
def test_skip(): pass
@pytest.mark.xfail(reason="known")
def test_xfail(): assert 0
@pytest.mark.xfail(reason="fixed?")
def test_xpass(): pass
@pytest.mark.xfail(reason="strict", strict=True)
def test_xpass_strict(): pass
@pytest.fixture
def broken(): raise RuntimeError("setup")
def test_error(broken): pass
@pytest.fixture
def bad_teardown():
    yield
    raise RuntimeError("teardown")
def test_fail_and_teardown_error(bad_teardown): assert 0
]]

    -- pytest's own closing line, parsed: {passed = 2, failed = 3, ...}
    local function pytest_says(root, dir)
      local py = assert(require("novapipe.python").find({ "pytest" }))
      local r = assert(require("novapipe.process").run({ py, "-m", "pytest", "-q", "-p", "no:cacheprovider", dir },
        { cwd = root }))
      local last = r.stdout:match("([^\n]+)\n$")
      local counts = {}
      for n, kind in last:gmatch("(%d+) (%a+)") do counts[kind] = tonumber(n) end
      return counts
    end

    it("equal pytest's own for passed, failed, errors, skipped, xfailed and xpassed", function()
      local root = new_project({ [TESTS .. "standalone/test_all.py"] = SUITE })
      local want = pytest_says(root, TESTS .. "standalone")
      assert.same({ passed = 2, failed = 3, skipped = 1, xfailed = 1, xpassed = 1, errors = 2 }, want)
      local r = run(root, { "--standalone" })
      assert.equal(1, r.code)
      assert.matches(("FAIL%%s+standalone[^\n]*%d passed, %d failed, %d errors, %d skipped, %d xfailed, %d xpassed")
        :format(want.passed, want.failed, want.errors, want.skipped, want.xfailed, want.xpassed), r.stdout)
      assert.matches("Total: 10 tests: 2 passed, 3 failed, 2 errors, 1 skipped, 1 xfailed, 1 xpassed", r.stdout)
    end)

    it("stay exact under --parallel 2 and end up in a GitHub step summary", function()
      local root = new_project({ [TESTS .. "standalone/test_all.py"] = SUITE })
      local summary = root .. "/step-summary.md"
      local r = run(root, { "--standalone", "--parallel", "2" }, { env = { GITHUB_STEP_SUMMARY = summary } })
      assert.equal(1, r.code)
      assert.matches("2 passed, 3 failed, 2 errors, 1 skipped, 1 xfailed, 1 xpassed", r.stdout)
      local md = H.read(summary)
      assert.matches("| standalone | ❌ failed | [%d.]+s | 2 | 3 | 2 | 1 | 1 | 1 |", md)
    end)
  end)

  describe("pytest's exit codes", function()
    it("shows a tier with no tests as empty, and fails it under --strict", function()
      local root = new_project({ [TESTS .. "standalone/test_a.py"] = PASSING })
      local r = run(root, { "--venv" })
      assert.equal(0, r.code)
      assert.matches("EMPTY%s+venv[^\n]*no tests", r.stdout)
      r = run(root, { "--venv", "--strict" })
      assert.equal(1, r.code)
      assert.matches("FAIL%s+venv", r.stdout)
      assert.matches("no tests collected in backend/app/tests/venv %(%-%-strict%)", r.stdout)
    end)

    it("reports collection errors as a failure naming the file", function()
      local root = new_project({
        [TESTS .. "standalone/test_a.py"] = PASSING,
        [TESTS .. "standalone/test_broken.py"] = "import novapipe_no_such_module\n",
      })
      local r = run(root, { "--standalone" })
      assert.equal(1, r.code)
      assert.matches("collection errors in [^\n]*test_broken", r.stdout)
    end)

    it("reports a pytest usage error as a configuration error, not a test failure", function()
      local root = new_project({ [TESTS .. "standalone/test_a.py"] = PASSING,
                                 ["pytest.ini"] = "[pytest]\naddopts = --no-such-pytest-option\n" })
      local r = run(root, { "--standalone" })
      assert.equal(2, r.code)
      assert.matches("ERROR%s+standalone", r.stdout)
      assert.matches("pytest usage error %(exit 4%): %S", r.stdout)
    end)
  end)

  describe("options reach pytest", function()
    it("--markers selects by marker, --security by the security marker", function()
      local root = new_project({ [TESTS .. "standalone/test_m.py"] = [[
import pytest
@pytest.mark.slow
def test_slow(): pass
@pytest.mark.security
def test_sec(): pass
def test_plain(): pass
]], ["pytest.ini"] = "[pytest]\nmarkers =\n  slow: slow\n  security: security\n" })
      assert.matches("PASS%s+standalone[^\n]*2 passed", run(root, { "--standalone", "--markers", "not slow" }).stdout)
      assert.matches("PASS%s+standalone[^\n]*1 passed", run(root, { "--standalone", "--security" }).stdout)
      assert.matches("PASS%s+standalone[^\n]*1 passed",
        run(root, { "--standalone", "--security", "--markers", "slow or security" }).stdout)
    end)

    it("--filter runs a path in the tier holding it, or selects by name", function()
      local root = new_project({
        [TESTS .. "standalone/test_a.py"] = "def test_alpha(): pass\ndef test_beta(): pass\n",
        [TESTS .. "venv/test_b.py"] = "def test_alpha_two(): pass\ndef test_gamma(): pass\n",
      })
      local r = run(root, { "--filter", TESTS .. "venv/test_b.py" })
      assert.equal(0, r.code)
      assert.matches("SKIP%s+standalone[^\n]*\n%s+%-%-filter [^\n]* is not in this tier", r.stdout)
      assert.matches("PASS%s+venv[^\n]*2 passed", r.stdout)
      assert.matches("SKIP%s+integration[^\n]*\n%s+%-%-filter", r.stdout)
      r = run(root, { "--filter", "alpha" })
      assert.matches("PASS%s+standalone[^\n]*1 passed", r.stdout)
      assert.matches("PASS%s+venv[^\n]*1 passed", r.stdout)
    end)

    it("--failfast stops at the first failure", function()
      local root = new_project({ [TESTS .. "standalone/test_f.py"] = FAILING .. "def test_bad2():\n    assert 0\n" })
      assert.matches("2 failed", run(root, { "--standalone" }).stdout)
      local r = run(root, { "--standalone", "--failfast" })
      assert.matches("FAIL%s+standalone[^\n]*  1 failed\n", r.stdout)
    end)

    it("--verbose streams pytest's own output, its stderr to stderr", function()
      local root = new_project({
        [TESTS .. "standalone/test_v.py"] = "def test_visible(): pass\n",
        [TESTS .. "standalone/conftest.py"] = "import sys\ndef pytest_unconfigure(config):\n"
          .. "    sys.stderr.write('written to stderr\\n')\n",
      })
      local r = run(root, { "--standalone", "--verbose" })
      assert.equal(0, r.code)
      assert.matches("test_v.py::test_visible PASSED", r.stdout)
      assert.matches("written to stderr", r.stderr)
      assert.is_nil(r.stdout:find("written to stderr", 1, true))
      -- without --verbose, pytest's lines are not shown (nor the slowest)
      assert.is_nil(run(root, { "--standalone", "--durations", "0" }).stdout:find("test_visible", 1, true))
    end)

    it("--tier runs a tier the project's novapipe.lua adds, with its environment", function()
      local root = new_project({
        ["novapipe.lua"] = "return { tiers = { contract = { dir = 'contract', after = 'venv', env = { CONTRACT = 'yes' } } } }\n",
        [TESTS .. "contract/test_c.py"] = "import os\ndef test_env():\n    assert os.environ['CONTRACT'] == 'yes'\n",
        [TESTS .. "standalone/test_a.py"] = PASSING,
      })
      local r = run(root, { "--tier", "contract" })
      assert.equal(0, r.code, r.stdout)
      assert.matches("PASS%s+contract[^\n]*1 passed", r.stdout)
      r = run(root)
      assert.matches("PASS%s+standalone.*EMPTY%s+venv.*PASS%s+contract.*EMPTY%s+integration", r.stdout)
      r = run(root, { "--tier", "nope" })
      assert.equal(2, r.code)
      assert.matches("unknown tier 'nope' %(tiers: standalone, venv, contract, integration%)", r.stderr)
    end)

    it("--parallel 2 runs the tests in pytest-xdist workers", function()
      local root = new_project({ [TESTS .. "standalone/test_w.py"] =
        "import os\ndef test_in_a_worker():\n    assert os.environ.get('PYTEST_XDIST_WORKER', '').startswith('gw')\n" })
      assert.equal(1, run(root, { "--standalone" }).code)
      assert.equal(0, run(root, { "--standalone", "--parallel", "2" }).code)
    end)

    it("--junit and --coverage write the reference's report files", function()
      local root = new_project({
        [TESTS .. "standalone/test_a.py"] = "from backend.app import code\ndef test_a():\n    assert code.f() == 1\n",
        ["backend/__init__.py"] = "", ["backend/app/__init__.py"] = "", [TESTS .. "__init__.py"] = "",
        ["backend/app/code.py"] = "def f():\n    return 1\n\ndef g():\n    return 2\n",
      })
      local r = run(root, { "--standalone", "--junit", "--coverage" })
      assert.equal(0, r.code, r.stdout .. r.stderr)
      assert.is_not_nil(lfs.attributes(root .. "/backend/test-results/standalone-results.xml"))
      assert.is_not_nil(lfs.attributes(root .. "/backend/coverage_html/standalone_tests/index.html"))
      assert.is_not_nil(lfs.attributes(root .. "/backend/coverage_html/combined/index.html"))
      -- the total and a line a tier; the whole table with --coverage-report
      assert.matches("PASS%s+coverage [^\n]*total 75%%, HTML in backend/coverage_html/combined\n%s+standalone  75%%\n",
        r.stdout)
      assert.is_nil(r.stdout:find("backend/app/code.py", 1, true))
      local full = run(root, { "--standalone", "--coverage", "--coverage-report" })
      assert.matches("backend/app/code.py%s+4%s+1%s+75%%", full.stdout)
      -- the test files are not measured
      assert.is_nil(full.stdout:find("test_a%.py%s+%d+%s+%d+%s+%d+%%"), full.stdout)
      -- reports are owner-only: files 0600, directories 0700
      for _, f in ipairs({ "backend/test-results/standalone-results.xml", "backend/.coverage.standalone", "backend/.coverage",
                           "backend/coverage_html/combined/index.html", "backend/coverage_html/standalone_tests/index.html" }) do
        assert.equal("rw-------", lfs.attributes(root .. "/" .. f, "permissions"), f)
      end
      for _, d in ipairs({ "backend/test-results", "backend/coverage_html", "backend/coverage_html/combined" }) do
        assert.equal("rwx------", lfs.attributes(root .. "/" .. d, "permissions"), d)
      end
      -- Without --junit no report is left behind.
      H.rmrf(root .. "/backend/test-results")
      assert.equal(0, run(root, { "--standalone" }).code)
      assert.is_nil(lfs.attributes(root .. "/backend/test-results"))
    end)
  end)

  describe("PHI in test output", function()
    it("is masked on the console and in JUnit, also across read boundaries; synthetic values stay", function()
      local root = new_project({ [TESTS .. "standalone/test_phi.py"] = table.concat({
        "import logging",
        "def test_prints_phi():",
        "    logging.getLogger('clinic').warning('logged ssn 345-67-8901')",
        "    print('ssn 123-45-6789 mail jane.doe@gmail.com phone 212-867-5309 DOB: 1980-02-03')",
        -- 65,500 bytes first, so the SSN straddles the 64 KiB read boundary
        "    print('x' * 65500 + ' 321-54-9876 tail')",
        "    print('synthetic 900-12-3456 test@example.com 212-555-0123')",
        "    assert False, 'patient 234-56-7890'",
        "",
      }, "\n") })
      local r = run(root, { "--standalone", "--verbose", "--junit" })
      assert.equal(1, r.code)
      assert.matches("logged ssn %[PHI:ssn%]", r.stdout) -- the captured log, shown with the failure
      local xml = H.read(root .. "/backend/test-results/standalone-results.xml")
      for _, where in ipairs({ r.stdout, xml }) do
        for _, real in ipairs({ "123-45-6789", "jane.doe@gmail.com", "212-867-5309", "1980-02-03", "321-54-9876",
                                "234-56-7890", "345-67-8901" }) do
          assert.is_nil(where:find(real, 1, true), real .. " was not masked")
        end
        assert.matches("%[PHI:ssn%]", where)
        assert.matches("900%-12%-3456 test@example%.com 212%-555%-0123", where)
      end
      assert.equal("rw-------", lfs.attributes(root .. "/backend/test-results/standalone-results.xml", "permissions"))
    end)

    it("can be turned off in novapipe.lua", function()
      local root = new_project({ ["novapipe.lua"] = "return { phi = { enabled = false } }\n",
        [TESTS .. "standalone/test_phi.py"] = "def test_a():\n    print('ssn 123-45-6789')\n    assert False\n" })
      local r = run(root, { "--standalone", "--verbose" })
      assert.matches("123%-45%-6789", r.stdout)
    end)
  end)

  describe("progress", function()
    it("shows a live line on a terminal: the tier, tests done, failures, time", function()
      local root = new_project({ [TESTS .. "standalone/test_a.py"] =
        "import time\ndef test_a(): time.sleep(0.3)\ndef test_b(): time.sleep(0.3)\ndef test_c(): assert 0\n" })
      local cmd = ("%s -C %s run run_tests --standalone"):format(H.bin, root)
      local r = assert(require("novapipe.process").run({ "script", "-qec", cmd, "/dev/null" },
        { env = { CI = false, TERM = "xterm", NO_COLOR = "1" } }))
      assert.equal(1, r.code)
      assert.matches("\r\27%[2Kstandalone  2/3 tests  0 failed  [%d.]+s", r.stdout)
      assert.matches("FAIL%s+standalone", r.stdout)
    end)
  end)

  describe("norecursedirs", function()
    it("says once that a plain pytest would skip the venv tier, with the fix", function()
      local root = new_project({ [TESTS .. "venv/test_b.py"] = PASSING })
      local r = run(root)
      local _, n = r.stdout:gsub("note: a plain `pytest backend/app/tests` skips the tier venv", "")
      assert.equal(1, n)
      assert.matches("norecursedirs = %*%.egg %.%* _darcs build CVS dist node_modules {arch}", r.stdout)
      assert.matches("PASS%s+venv[^\n]*1 passed", r.stdout)
    end)

    it("is quiet when the project's configuration lets pytest see every tier", function()
      local root = new_project({ [TESTS .. "venv/test_b.py"] = PASSING,
                                 ["pyproject.toml"] = "[tool.pytest.ini_options]\nnorecursedirs = [\".*\", \"build\"]\n" })
      assert.is_nil(run(root).stdout:find("note:", 1, true))
    end)
  end)

  describe("timeouts and interrupts", function()
    it("ends a hung test at the tier timeout, naming it, with nothing left running", function()
      local marker = H.marker()
      local root = new_project({ [TESTS .. "standalone/test_hang.py"] =
        ("import subprocess\ndef test_hangs():\n    subprocess.run(['sleep', '%s'])\n"):format(marker) })
      local r = run(root, { "--standalone", "--timeout", "2" })
      assert.equal(1, r.code)
      assert.matches("timed out after 2s; running: [^\n]*test_hang.py::test_hangs", r.stdout)
      assert.is_nil(H.find_process("sleep", marker))
    end)

    it("killed with SIGKILL during the integration tier, leaves no PostgreSQL running, "
      .. "and the next run removes its data directory", function()
      local run_ = start_integration(new_project)
      run_.p:kill("KILL")
      run_.p:wait()
      local deadline = time.now() + 10
      while proc.exists(run_.server) and time.now() < deadline do time.sleep(0.05) end
      assert.is_false(proc.exists(run_.server))
      -- its data directory is left: nothing
      -- alive could remove them
      local function left()
        local names = {}
        for name in lfs.dir(run_.tmp) do
          if name:find("^novapipe%-") then names[#names + 1] = name end
        end
        table.sort(names)
        return names
      end
      local dead = left()
      -- pytest's private cache and the database (without --junit, no JUnit
      -- file); the database's directory is in $TMPDIR or, on a memory file
      -- system, in /dev/shm
      local pg = assert(run_.data:match("^(.*/novapipe%-pg%-%d+%.%d+%-%w+)/data$"), run_.data)
      assert.equal("directory", lfs.attributes(pg, "mode"))
      local in_tmp = pg:sub(1, #run_.tmp + 1) == run_.tmp .. "/"
      assert.equal(in_tmp and 2 or 1, #dead)
      assert.matches("^novapipe%-cache%-%d+%.%d+%-", dead[1])
      -- a directory of a live process's (this one's) stays; the next run
      -- removes the dead one's
      local start = H.read("/proc/self/stat"):match("^.*%) (.*)$"):match("^" .. ("%S+%s+"):rep(19) .. "(%d+)")
      local me = ("%s/novapipe-junit-%d.%s-abcdef"):format(run_.tmp, proc.self().pid, start)
      assert(fs.mkdir_p(me))
      local r = H.novapipe({ "-C", run_.root or run_.tmp .. "/..", "run", "run_tests", "--standalone" },
        { env = { TMPDIR = run_.tmp, DATABASE_URL = false } })
      assert.is_true(r.code == 0 or r.code == 1, r.stderr)
      assert.same({ me:match("[^/]+$") }, left())
      assert.is_nil(lfs.attributes(pg), pg .. " was left")
      fs.rmtree(me)
    end)

    it("on Ctrl-C during the integration tier leaves no PostgreSQL and no data directory", function()
      local run_ = start_integration(new_project)
      local p, marker, tmp, data = run_.p, run_.marker, run_.tmp, run_.data
      p:kill("INT")
      local r = p:wait()
      assert.equal(130, r.code)
      assert.is_nil(H.find_process("sleep", marker))
      for pid in lfs.dir("/proc") do
        local cmd = pid:match("^%d+$") and H.read("/proc/" .. pid .. "/cmdline") or ""
        assert.is_nil(cmd:find(data, 1, true), "a PostgreSQL process is left: " .. cmd:gsub("%z", " "))
      end
      assert.is_nil(lfs.attributes((data:gsub("/data$", ""))))
      assert.same({}, fs.walk(tmp, { dirs = true }))
    end)
  end)
end)
