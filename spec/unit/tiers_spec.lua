local tiers = require "novapipe.tiers"
local pytest_config = require "novapipe.pytest_config"
local H = require "spec.support.h"
local lfs = require "lfs"

describe("a tier's pytest run", function()
  it("combines --markers and --security", function()
    assert.is_nil(tiers.marker_expr({}))
    assert.equal("slow", tiers.marker_expr({ markers = "slow" }))
    assert.equal("security", tiers.marker_expr({ security = true }))
    assert.equal("(slow or db) and security", tiers.marker_expr({ security = true, markers = "slow or db" }))
  end)

  it("passes the options on to pytest", function()
    local argv = tiers.pytest_args("t/venv", { parallel = 2, failfast = true, markers = "m" }, "j.xml", "name", { "src" })
    assert.same({ "t/venv", "-p", "novapipe_pytest", "--junitxml=j.xml", "-q", "-m", "m", "-k", "name",
                  "-n", "2", "--exitfirst", "--cov=src", "--cov-report=" }, argv)
    assert.same({ "t", "-p", "novapipe_pytest", "--junitxml=j.xml", "-v" }, tiers.pytest_args("t", { verbose = true, parallel = 1 }, "j.xml"))
  end)

  it("describes counts with the kinds that are not zero, in English", function()
    local describe = require("novapipe.junit").describe
    assert.equal("no tests", describe({ tests = 0, passed = 0 }))
    assert.equal("2 passed, 1 error, 1 xpassed", describe({ passed = 2, errors = 1, xpassed = 1, failed = 0 }))
    assert.equal("2 errors", describe({ errors = 2 }))
  end)

  it("sends --filter to the tier holding the path, else to -k", function()
    local dir = H.tmpdir()
    local cwd = lfs.currentdir()
    assert(lfs.chdir(dir))
    assert(require("novapipe.fs").mkdir_p("t/venv"))
    H.write("t/venv/test_x.py", "")
    assert.same({ path = "t/venv/test_x.py::test_a" }, tiers.filter_target("t/venv/test_x.py::test_a", "t/venv"))
    assert.same({ outside = true }, tiers.filter_target("t/venv/test_x.py", "t/standalone"))
    assert.same({ k = "login and not slow" }, tiers.filter_target("login and not slow", "t/venv"))
    assert(lfs.chdir(cwd))
    H.rmrf(dir)
  end)
end)

describe("reading the project's pytest configuration", function()
  local dir, cwd
  before_each(function()
    dir, cwd = H.tmpdir(), lfs.currentdir()
    assert(lfs.chdir(dir))
  end)
  after_each(function()
    assert(lfs.chdir(cwd))
    H.rmrf(dir)
  end)

  it("finds norecursedirs the way pytest does", function()
    assert.same({}, { pytest_config.norecursedirs() })
    H.write("setup.cfg", "[tool:pytest]\nnorecursedirs =\n    build\n    .git\n")
    assert.same({ "setup.cfg", { "build", ".git" } }, { pytest_config.norecursedirs() })
    H.write("tox.ini", "[tox]\nenvlist = py3\n[pytest]\nnorecursedirs = dist\n")
    assert.same({ "tox.ini", { "dist" } }, { pytest_config.norecursedirs() })
    H.write("pyproject.toml", '[tool.pytest.ini_options]\nnorecursedirs = [\n  "a", "b",\n]\n[tool.other]\nx = 1\n')
    assert.same({ "pyproject.toml", { "a", "b" } }, { pytest_config.norecursedirs() })
    -- pytest.ini wins even without the setting
    H.write("pytest.ini", "[pytest]\nmarkers = x\n")
    assert.same({ "pytest.ini" }, { pytest_config.norecursedirs() })
  end)

  it("names the tier a plain pytest would skip, and the setting that fixes it", function()
    local cfg = require("novapipe.config").defaults()
    local note = pytest_config.skipped_tiers(cfg)
    assert.matches("skips the tier venv %(matches 'venv'%) through pytest's default norecursedirs", note)
    assert.matches("set in pytest.ini %[pytest%]: norecursedirs = %*%.egg %.%* _darcs build CVS dist node_modules {arch}$", note)
    H.write("pyproject.toml", '[tool.pytest.ini_options]\nnorecursedirs = ["venv", "build"]\n')
    assert.matches('pyproject.toml %[tool.pytest.ini_options%]: norecursedirs = %["build"%]$', pytest_config.skipped_tiers(cfg))
    H.write("pyproject.toml", '[tool.pytest.ini_options]\nnorecursedirs = ["build"]\n')
    assert.is_nil(pytest_config.skipped_tiers(cfg))
    -- a tier that is the tests directory itself is no hidden directory; a
    -- directory on the way to a tier counts as the tier's own does
    os.remove("pyproject.toml")
    cfg.tiers = { { name = "all", dir = "." }, { name = "deep", dir = "build/unit" } }
    assert.equal("a plain `pytest backend/app/tests` skips the tier deep (matches 'build') through pytest's default norecursedirs;",
      pytest_config.skipped_tiers(cfg):match("^[^;]*;"))
  end)

  it("runs one tier more than the cores at once by default, one at a time on one core", function()
    assert.equal(1, tiers.default_jobs(1))
    assert.equal(3, tiers.default_jobs(2))
    assert.equal(9, tiers.default_jobs(8))
  end)

  it("gives --parallel auto the cores a tier has to itself, once its recorded time is worth xdist's start", function()
    local workers = tiers.workers
    assert.equal(2, workers(2, 1, 10))
    assert.equal(1, workers(2, 2, 10)) -- two tiers at once on two cores
    assert.equal(4, workers(8, 2, 10))
    assert.equal(1, workers(1, 1, 10))
    assert.equal(1, workers(8, 1, nil)) -- nothing recorded yet: the first run measures
    assert.equal(1, workers(8, 1, tiers.AUTO_MIN_SECONDS / 2))
    assert.same({ "t", "-p", "novapipe_pytest", "-q", "-n", "2", "--dist", "loadfile" },
      tiers.pytest_args("t", { parallel = 2, dist = "loadfile" }))
  end)
end)
