-- Typos fail loudly (issue #12): a mistyped path, a selection of nothing, a
-- tier directory that is not there, a run outside any project, a Python
-- without pytest, a misspelled setting or option. Each is one line and the
-- exit code that says what kind of mistake it was; the real binary, real
-- pytest, projects written into temporary directories.
local fs = require "novapipe.fs"
local H = require "spec.support.h"

local TESTS = "backend/app/tests/"
local PASSING = "def test_ok():\n    pass\n"

local function lines_of(s)
  local n = 0
  for _ in s:gmatch("[^\n]+") do n = n + 1 end
  return n
end

describe("typos fail loudly", function()
  local keep = H.temporaries(after_each)

  -- A project: files maps paths (relative to the root) to contents; the
  -- tests directory always exists.
  local function project(files) return keep(H.project(files)) end
  local run = H.run_tests

  describe("a --filter path that does not exist", function()
    -- The integration tier asks for a PostgreSQL that cannot start: had any
    -- tier or service started, the output would say so.
    local function clinic()
      return project({
        ["novapipe.lua"] = "return { tiers = { integration = { services = { 'postgresql' } } } }\n",
        [TESTS .. "standalone/test_a.py"] = PASSING,
        [TESTS .. "integration/test_db.py"] = PASSING,
      })
    end
    local env = { DATABASE_URL = false, NOVAPIPE_PG_BINDIR = "/nonexistent" }

    for _, filter in ipairs({ TESTS .. "standalone/test_nope.py", "test_nope.py",
                              TESTS .. "standalone/test_nope.py::test_ok", TESTS .. "nodir/" }) do
      it(("is one line and exit 2 before any tier starts: %s"):format(filter), function()
        local r = run(clinic(), { "--filter", filter }, { env = env })
        assert.equal(2, r.code, r.stdout)
        assert.equal(1, lines_of(r.stderr), r.stderr)
        local file = filter:match("^(.-)::") or filter
        assert.matches("^novapipe: %-%-filter " .. file:gsub("%p", "%%%0") .. ": no such file or directory", r.stderr)
        assert.is_nil(r.stdout:find("standalone", 1, true), r.stdout)
        assert.is_nil(r.stdout:find("PostgreSQL", 1, true), r.stdout)
      end)
    end

    it("is a path only when it looks like one: a name is a -k expression", function()
      local r = run(clinic(), { "--standalone", "--filter", "test_ok" })
      assert.equal(0, r.code, r.stdout .. r.stderr)
      assert.matches("PASS%s+standalone[^\n]*1 passed", r.stdout)
    end)
  end)

  describe("a --filter or --markers that selects no test in any tier", function()
    local function suite()
      return project({
        [TESTS .. "standalone/test_a.py"] = "def test_alpha(): pass\n",
        [TESTS .. "venv/test_b.py"] = "def test_beta(): pass\n",
        [TESTS .. "venv/test_empty.py"] = "# no tests yet\n",
        ["pytest.ini"] = "[pytest]\nmarkers =\n  slow: slow\n",
      })
    end

    for _, args in ipairs({ { "--filter", "no_such_test" }, { "--markers", "slow" },
                            { "--filter", TESTS .. "venv/test_empty.py" } }) do
      local said = table.concat(args, " ")
      it(("fails with one line saying so and exit 1: %s"):format(said), function()
        local r = run(suite(), args)
        assert.equal(1, r.code, r.stdout .. r.stderr)
        local _, n = r.stdout:gsub(said:gsub("%p", "%%%0") .. " selected no test in any tier", "")
        assert.equal(1, n, r.stdout)
        -- no tier is blamed for it: the tiers are as pytest left them
        assert.is_nil(r.stdout:find("FAIL%s+standalone"), r.stdout)
        assert.is_nil(r.stdout:find("FAIL%s+venv"), r.stdout)
        assert.is_nil(r.stdout:find("FAIL%s+integration"), r.stdout)
        assert.matches("FAIL%s+selection", r.stdout)
        assert.matches("\nfailed in [%d.]+s\n$", r.stdout)
      end)

      it(("passes with --allow-empty, saying plainly that no test ran: %s"):format(said), function()
        local a = { "--allow-empty" }
        for _, x in ipairs(args) do a[#a + 1] = x end
        local r = run(suite(), a)
        assert.equal(0, r.code, r.stdout .. r.stderr)
        assert.matches(said:gsub("%p", "%%%0") .. " selected no test in any tier", r.stdout)
        assert.matches("\nno test ran in [%d.]+s\n$", r.stdout)
        assert.is_nil(r.stdout:find("passed in", 1, true), r.stdout)
      end)
    end

    it("passes when the selection ran a test somewhere, saying how many", function()
      local r = run(suite(), { "--filter", "beta" })
      assert.equal(0, r.code, r.stdout)
      assert.matches("PASS%s+selection[^\n]*1 test selected by %-%-filter beta", r.stdout)
      assert.matches("\npassed in [%d.]+s\n$", r.stdout)
    end)

    it("says nothing about the selection when a tier could not run", function()
      local root = suite()
      H.write(root .. "/pytest.ini", "[pytest]\naddopts = --no-such-pytest-option\n")
      local r = run(root, { "--filter", "no_such_test" })
      assert.equal(2, r.code, r.stdout)
      assert.is_nil(r.stdout:find("selected no test", 1, true), r.stdout)
    end)
  end)

  describe("a tier whose directory does not exist", function()
    for _, case in ipairs({
      { "added in novapipe.lua", "contract = { dir = 'contract', after = 'venv' }", "contract", "contract" },
      { "moved by novapipe.lua", "venv = { dir = 'packages' }", "venv", "packages" },
    }) do
      it(("is a configuration error naming it, exit 2, when %s"):format(case[1]), function()
        local root = project({ ["novapipe.lua"] = ("return { tiers = { %s } }\n"):format(case[2]),
                               [TESTS .. "standalone/test_a.py"] = PASSING })
        for _, args in ipairs({ {}, { "--tier", case[3] } }) do
          local r = run(root, args)
          assert.equal(2, r.code, r.stdout)
          assert.equal("", r.stdout)
          assert.equal(("novapipe: novapipe.lua: tier '%s': its directory %s%s does not exist "
            .. "(create it, or correct the tier's dir)\n"):format(case[3], TESTS, case[4]), r.stderr)
          assert.is_nil(fs.realpath(root .. "/" .. TESTS .. case[4]), "it was created")
        end
      end)
    end

    it("is created only for the three default tiers, with an __init__.py", function()
      local root = project({ [TESTS .. "standalone/test_a.py"] = PASSING })
      assert.equal(0, run(root).code)
      for _, tier in ipairs({ "standalone", "venv", "integration" }) do
        assert.truthy(fs.realpath(root .. "/" .. TESTS .. tier .. "/__init__.py"), tier)
      end
    end)
  end)

  describe("a run outside a project", function()
    local lfs = require "lfs"

    -- novapipe started in dir (no -C), as a user types it there.
    local function novapipe_in(dir, args)
      local argv = { "--no-color" }
      for _, a in ipairs(args) do argv[#argv + 1] = a end
      return H.novapipe(argv, { cwd = dir })
    end

    local function clinic()
      return project({
        ["novapipe.lua"] = "return { tiers = { integration = { timeout = 300 } } }\n",
        [TESTS .. "standalone/test_a.py"] = "def test_alpha(): pass\n",
        [TESTS .. "standalone/test_b.py"] = "def test_beta(): pass\n",
      })
    end

    it("finds the project's novapipe.lua above, as git finds .git, and works from there", function()
      local root = clinic()
      local sub = root .. "/" .. TESTS .. "standalone"
      local r = novapipe_in(sub, { "run", "run_tests", "--standalone" })
      assert.equal(0, r.code, r.stdout .. r.stderr)
      assert.matches("PASS%s+standalone[^\n]*2 passed", r.stdout)
      assert.equal("", r.stderr)
      assert.is_nil(lfs.attributes(sub .. "/.novapipe"), "a .novapipe/ where it started")
      assert.truthy(lfs.attributes(root .. "/.novapipe/audit.log"))
    end)

    it("takes the paths typed there as relative to where it started", function()
      local root = clinic()
      local r = novapipe_in(root .. "/" .. TESTS .. "standalone", { "run", "run_tests", "--filter", "test_b.py" })
      assert.equal(0, r.code, r.stdout .. r.stderr)
      assert.matches("1 test selected by %-%-filter " .. (TESTS .. "standalone/test_b.py"):gsub("%p", "%%%0"), r.stdout)
      r = novapipe_in(root .. "/backend", { "run", "analyze", "--path", "app/tests/standalone", "--report",
                                            "--output", "report.json" })
      assert.equal(0, r.code, r.stdout .. r.stderr)
      assert.truthy(lfs.attributes(root .. "/backend/report.json"))
      assert.matches("Total test files: 2", r.stdout)
    end)

    it("does not run a novapipe.lua above that is not yours", function()
      local root = clinic()
      assert(require("novapipe.process").run({ "chown", "nobody", root .. "/novapipe.lua" }))
      local r = novapipe_in(root .. "/backend", { "run", "run_tests" })
      assert.equal(2, r.code)
      assert.equal(("novapipe: %s/novapipe.lua, found above %s/backend, belongs to another user; novapipe does "
        .. "not work from it (run in your project, or use -C DIR)\n"):format(root, root), r.stderr)
      assert.equal("", r.stdout)
    end)

    it("finding none, is one line naming what it looked for, and leaves nothing behind", function()
      local dir = keep(H.tmpdir())
      for _, args in ipairs({ { "run", "all" }, { "run", "run_tests" }, { "run", "analyze" },
                              { "run", "migrate", "--analyze" }, { "run", "security", "--report" } }) do
        local r = novapipe_in(dir, args)
        assert.equal(2, r.code, table.concat(args, " "))
        assert.equal(("novapipe: no project here: neither %s nor any directory above it has a novapipe.lua or a "
          .. "backend/app/tests directory (run novapipe in your project, or use -C DIR)\n"):format(dir), r.stderr)
        assert.equal("", r.stdout)
        assert.same({}, fs.walk(dir, { dirs = true }), table.concat(args, " "))
      end
    end)

    it("read-only commands create no .novapipe/; a run that writes one does", function()
      local root = clinic()
      for _, args in ipairs({ { "run", "analyze" }, { "run", "analyze", "--explain" }, { "list" }, { "--help" },
                              { "run", "analyze", "--help" }, { "run", "migrate", "--analyze" } }) do
        local r = novapipe_in(root, args)
        assert.equal(0, r.code, table.concat(args, " ") .. r.stdout .. r.stderr)
        assert.is_nil(lfs.attributes(root .. "/.novapipe"), table.concat(args, " "))
      end
      assert.equal(0, novapipe_in(root, { "run", "analyze", "--report" }).code)
      local log = root .. "/.novapipe/audit.log"
      local _, before = H.read(log):gsub("\n", "")
      assert.equal(1, before)
      -- once the project keeps a log, a read-only run is recorded in it
      assert.equal(0, novapipe_in(root, { "run", "analyze" }).code)
      local _, after = H.read(log):gsub("\n", "")
      assert.equal(2, after)
    end)
  end)

  describe("a Python without pytest", function()
    local process = require "novapipe.process"

    -- An executable script at root/rel that runs Debian's python3 without
    -- its site packages (so without pytest).
    local function python_without_pytest(root, rel)
      local path = root .. "/" .. rel
      assert(fs.mkdir_p(path:match("^(.*)/"), "0755"))
      H.write(path, "#!/bin/sh\nexec /usr/bin/python3 -S \"$@\"\n")
      assert(fs.chmod(path, "0755"))
      return path
    end

    local function advice(root, python)
      local r = run(root, { "--standalone" }, { env = { NOVAPIPE_PYTHON = python } })
      assert.equal(2, r.code, r.stdout .. r.stderr)
      local line = r.stdout:match("ERROR%s+standalone[^\n]*\n%s+([^\n]+)")
      assert.is_string(line, r.stdout)
      return line
    end

    it("is told to apt-get the Debian package when it is Debian's python3", function()
      local root = project({ [TESTS .. "standalone/test_a.py"] = PASSING })
      local line = advice(root, python_without_pytest(root, "bin/python3"))
      assert.matches("cannot import pytest; install it with: apt%-get install python3%-pytest", line)
      assert.is_nil(line:find("-m pip", 1, true), line)
    end)

    it("is told to pip install into it when it is a virtualenv", function()
      local root = project({ [TESTS .. "standalone/test_a.py"] = PASSING })
      assert.equal(0, assert(process.run({ "/usr/bin/python3", "-m", "venv", "--without-pip", root .. "/venv" })).code)
      local line = advice(root, root .. "/venv/bin/python3")
      assert.matches(("cannot import pytest %%(a virtualenv%%); install it with: %s %%-m pip install pytest")
        :format((root .. "/venv/bin/python3"):gsub("%p", "%%%0")), line)
      assert.is_nil(line:find("apt-get", 1, true), line)
    end)

    it("is told to pip install into it when it is pyenv's", function()
      local root = project({ [TESTS .. "standalone/test_a.py"] = PASSING })
      local py = python_without_pytest(root, ".pyenv/versions/3.11.9/bin/python3")
      local line = advice(root, py)
      assert.matches(("cannot import pytest %%(a pyenv Python%%); install it with: %s %%-m pip install pytest")
        :format(py:gsub("%p", "%%%0")), line)
    end)

    it("names every module the options need, as pip knows them", function()
      local root = project({ [TESTS .. "standalone/test_a.py"] = PASSING })
      assert.equal(0, assert(process.run({ "/usr/bin/python3", "-m", "venv", "--without-pip", root .. "/venv" })).code)
      local r = run(root, { "--standalone", "--coverage", "--parallel", "2" },
        { env = { NOVAPIPE_PYTHON = root .. "/venv/bin/python3" } })
      assert.equal(2, r.code)
      assert.matches("%-m pip install pytest pytest%-cov coverage pytest%-xdist", r.stdout)
    end)
  end)

  describe("a misspelled setting in novapipe.lua", function()
    for _, case in ipairs({
      { "return { tirs = {} }", "unknown setting 'tirs' in novapipe.lua; did you mean 'tiers'?" },
      { "return { phi = { enabeld = false } }", "unknown setting 'phi.enabeld' in novapipe.lua; did you mean 'phi.enabled'?" },
      { "return { tiers = { integration = { timout = 5 } } }",
        "unknown setting 'tiers.integration.timout' in novapipe.lua; did you mean 'tiers.integration.timeout'?" },
      { "return function(c) c.tiers[1].sevices = {} end",
        "unknown setting 'tiers.standalone.sevices' in novapipe.lua; did you mean 'tiers.standalone.services'?" },
      { "return { zzz = 1 }", "unknown setting 'zzz' in novapipe.lua (known: analyze, audit, changed, coverage, database_url, "
        .. "phi, postgresql, python, quarantine, results, security, tests, tiers)" },
      { "return { audit = { zzz = 1 } }", "unknown setting 'audit.zzz' in novapipe.lua (known in audit: enabled, log)" },
    }) do
      it(("suggests the nearest known one, or lists them: %s"):format(case[1]), function()
        local r = run(project({ ["novapipe.lua"] = case[1] .. "\n" }), { "--standalone" })
        assert.equal(2, r.code)
        assert.equal("novapipe: " .. case[2] .. "\n", r.stderr)
      end)
    end
  end)

  describe("a misspelled option", function()
    local function novapipe(args)
      local argv = { "-C", project({ [TESTS .. "standalone/test_a.py"] = PASSING }), "--no-color" }
      for _, a in ipairs(args) do argv[#argv + 1] = a end
      return H.novapipe(argv)
    end

    for _, case in ipairs({
      { { "run", "run_tests", "--fitler", "x" },
        "run_tests: unknown option '--fitler'; did you mean '--filter'? (try 'novapipe run run_tests --help')" },
      { { "run", "run_tests", "--standalon" },
        "run_tests: unknown option '--standalon'; did you mean '--standalone'? (try 'novapipe run run_tests --help')" },
      { { "run", "run_tests", "-n", "2" },
        "run_tests: unknown option '-n'; did you mean '--parallel' (pytest-xdist's -n)? (try 'novapipe run run_tests --help')" },
      { { "run", "all", "-x" }, "all: unknown option '-x' (try 'novapipe run all --help')" },
      { { "run", "all", "--frobnicate" }, "all: unknown option '--frobnicate' (try 'novapipe run all --help')" },
      { { "--nocolor", "list" }, "unknown option '--nocolor'; did you mean '--no-color'? (try 'novapipe --help')" },
      { { "-x", "list" }, "unknown option '-x' (try 'novapipe --help')" },
      { { "rn", "all" }, "unknown command 'rn'; did you mean 'run'? (try 'novapipe --help')" },
      { { "run", "run_test" }, "unknown pipeline 'run_test'; did you mean 'run_tests'? ('novapipe list' shows the available ones)" },
      { { "run", "run_tests", "--tier", "integraton" },
        "unknown tier 'integraton'; did you mean 'integration'? (tiers: standalone, venv, integration)" },
      -- options that would do nothing, or contradict each other
      { { "run", "run_tests", "--shard-by", "test" }, "--shard-by needs --shard K/N (it says how to split a shard)" },
      { { "run", "all", "--shard-dir", "d" }, "--shard-dir needs --shard K/N (it says how to split a shard)" },
      { { "run", "run_tests", "--jobs", "2", "--sequential" },
        "--jobs 2 and --sequential: choose one (--sequential runs one tier at a time)" },
    }) do
      it(("is one line suggesting the nearest real one, or none: %s"):format(table.concat(case[1], " ")), function()
        local r = novapipe(case[1])
        assert.equal(2, r.code)
        assert.equal("novapipe: " .. case[2] .. "\n", r.stderr)
        assert.equal("", r.stdout)
      end)
    end
  end)
end)
