local config = require "novapipe.config"
local errors = require "novapipe._errors"
local H = require "spec.support.h"

local function load_text(text)
  local dir = H.tmpdir()
  H.write(dir .. "/novapipe.lua", text)
  local ok, cfg = pcall(config.load, dir .. "/novapipe.lua")
  H.rmrf(dir)
  return ok, cfg
end

local function names(cfg)
  local list = {}
  for i, t in ipairs(cfg.tiers) do list[i] = t.name end
  return list
end

describe("configuration", function()
  it("defaults to the reference's tiers, paths and DATABASE_URL", function()
    local cfg = config.load("/nonexistent/novapipe.lua")
    assert.same({ "standalone", "venv", "integration" }, names(cfg))
    assert.equal("backend/app/tests", cfg.tests)
    assert.same({ "venv" }, cfg.tiers[3].needs)
    assert.equal("postgresql://postgres:postgres@localhost:5432/novamind_test", cfg.database_url)
    local given = os.getenv("DATABASE_URL")
    if given and given ~= "" then
      assert.same({ TESTING = "True" }, cfg.tiers[3].env) -- the environment's reaches pytest as it is
    else
      assert.same({ TESTING = "True", DATABASE_URL = cfg.database_url }, cfg.tiers[3].env)
    end
  end)

  it("gives the integration tier no default DATABASE_URL when a service of novapipe's provides one", function()
    local ok, cfg = load_text("return { tiers = { integration = { services = { 'postgresql' } } } }")
    assert.is_true(ok, tostring(cfg))
    assert.is_nil(cfg.tiers[3].env.DATABASE_URL)
  end)

  it("refuses reruns that are not a whole number of 0 or more, and quarantine entries with an unknown field", function()
    for _, text in ipairs({ "return { tiers = { venv = { reruns = -1 } } }", "return { tiers = { venv = { reruns = 1.5 } } }",
                            "return { tiers = { venv = { rerun = 2 } } }",
                            "return { quarantine = { { pattern = '*', why = 'x', expires = '2999-01-01', expiry = 'x' } } }",
                            "return { quarantine = { a = 1 } }" }) do
      local ok, err = load_text(text)
      assert.is_false(ok, text)
      assert.is_true(errors.is_usage(err), text)
    end
    local ok, cfg = load_text("return { tiers = { venv = { reruns = 2 } }, quarantine = { { pattern = 'a.py', why = 'x', expires = '2999-01-01' } } }")
    assert.is_true(ok, tostring(cfg))
    assert.equal(2, cfg.tiers[2].reruns)
  end)

  it("quarantines by node id, * for any characters, and what is under a named file, class or test", function()
    local q = require "novapipe.pytest.quarantine"
    local id = "backend/app/tests/standalone/test_x.py::TestA::test_b[1]"
    for _, p in ipairs({ "backend/app/tests/standalone/test_x.py", "*test_b", "*::TestA", "*/test_x.py::TestA::test_b[1]" }) do
      assert.is_true(q.matches(p, id), p)
    end
    for _, p in ipairs({ "test_x.py", "*test_c*", "*/test_x.py::TestA::test_b*2*", "backend/app/tests/standalone/test_x" }) do
      assert.is_false(q.matches(p, id), p)
    end
    local live, expired = q.split({ { pattern = "a", why = "x", expires = "2026-12-01" },
                                    { pattern = "b", why = "x", expires = "2026-11-30" } }, "2026-12-01")
    assert.same({ "a" }, { live[1].pattern, live[2] })
    assert.equal(2, expired[1].index)
  end)

  it("changes a tier by name and adds one after another", function()
    local ok, cfg = load_text([[return {
      tiers = {
        integration = { services = { "postgresql" }, timeout = 600 },
        contract = { dir = "contract", needs = { "venv" }, after = "venv" },
      },
      coverage = { source = { "src" } },
    }]])
    assert.is_true(ok, tostring(cfg))
    assert.same({ "standalone", "venv", "contract", "integration" }, names(cfg))
    assert.same({ "postgresql" }, cfg.tiers[4].services)
    assert.equal(600, cfg.tiers[4].timeout)
    assert.same({ "src" }, cfg.coverage.source)
    assert.equal("backend/coverage_html", cfg.coverage.html)
  end)

  it("lets a function change the configuration in place", function()
    local ok, cfg = load_text("return function(c) table.remove(c.tiers, 3); c.tests = 'tests' end")
    assert.is_true(ok, tostring(cfg))
    assert.same({ "standalone", "venv" }, names(cfg))
    assert.equal("tests", cfg.tests)
  end)

  local function refused(text, pattern)
    local ok, e = load_text(text)
    assert.is_false(ok)
    assert.is_true(errors.is_usage(e), tostring(e))
    assert.matches(pattern, e.message)
  end

  it("replaces an analyze list, or adds to and removes from it", function()
    local ok, cfg = load_text([[return { tiers = { contract = { after = "venv" } }, analyze = {
      connects = { add = { "mydb.open", "redis.Redis" }, remove = { "boto3.client" } },
      indicators = { integration = { "only.this" }, contract = { add = { "pact" } } },
      security_names = { fixtures = { remove = { "token" } } },
    } }]])
    assert.is_true(ok, tostring(cfg))
    local connects = {}
    for i, c in ipairs(cfg.analyze.connects) do connects[c] = i end
    assert.is_not_nil(connects["sqlalchemy.create_engine"])
    assert.is_not_nil(connects["mydb.open"])
    assert.is_nil(connects["boto3.client"])
    -- what is added comes once, after the defaults
    assert.equal(#cfg.analyze.connects, connects["mydb.open"])
    assert.same({ "only.this" }, cfg.analyze.indicators.integration)
    assert.same({ "pact" }, cfg.analyze.indicators.contract)
    for _, f in ipairs(cfg.analyze.security_names.fixtures) do assert.not_equal("token", f) end
    assert.is_not_nil(cfg.analyze.security_names.words[1])
  end)

  it("refuses analyze settings for a tier that is not one, and an unknown security list, with the nearest name", function()
    refused("return { analyze = { markers = { integation = { 'django_db' } } } }",
      "unknown setting 'analyze.markers.integation' in novapipe.lua; did you mean 'analyze.markers.integration'%?")
    refused("return { analyze = { indicators = { contract = { 'pact' } } } }", "unknown setting 'analyze.indicators.contract'")
    refused("return { analyze = { security_names = { word = { 'x' } } } }",
      "did you mean 'analyze.security_names.words'%?")
    local ok, cfg = load_text("return { tiers = { contract = { after = 'venv' } }, analyze = { indicators = { contract = { 'pact' } } } }")
    assert.is_true(ok, tostring(cfg))
    assert.same({ "pact" }, cfg.analyze.indicators.contract)
  end)

  it("refuses an analyze list that is not one, with one line", function()
    refused("return { analyze = { connects = 'x' } }", "'connects' in analyze must be a table, not a string")
    refused("return { analyze = { connects = { add = 'x' } } }", "analyze.connects.add")
    refused("return { analyze = { connects = { 1, 2 } } }", "analyze.connects must be a list of strings, not a number in it")
    refused("return { analyze = { in_memory = { add = { 'x' }, plus = {} } } }", "analyze.in_memory: 'plus' is neither add nor remove")
    -- each was a Lua error in the middle of a run, or an entry silently dropped
    refused("return { analyze = { in_memory = { add = { '[' } } } }", "analyze.in_memory: '%[' is not a Lua pattern %(malformed pattern")
    refused("return { analyze = { connects = { '' } } }", "analyze.connects: an empty name in it")
    refused("return { analyze = { indicators = { venv = { add = { '' } } } } }", "analyze.indicators.venv.add: an empty name in it")
    refused("return { analyze = { connects = { [1] = 'a', [3] = 'b' } } }", "analyze.connects: entry 3 comes after a hole")
    refused("return { analyze = { indicators = { 'x', venv = { 'y' } } } }", "analyze.indicators holds a list per tier")
    refused("return { 1, tests = 'x' }", "unknown setting '1' in novapipe.lua")
  end)

  it("refuses mistakes with one line naming the setting", function()
    refused("return { tierz = {} }", "unknown setting 'tierz' in novapipe.lua; did you mean 'tiers'%?")
    refused("return { tests = 3 }", "'tests' in the settings must be a string, not a number")
    refused("return { tiers = { venv = { timout = 3 } } }", "unknown setting 'tiers.venv.timout' in novapipe.lua; did you mean 'tiers.venv.timeout'%?")
    refused("return { postgresql = { on_disk = 'yes' } }", "'on_disk' in postgresql must be a boolean, not a string")
    refused("return { postgresql = { ondisk = true } }", "unknown setting 'postgresql.ondisk' in novapipe.lua; did you mean 'postgresql.on_disk'%?")
    refused("return { tiers = { x = { after = 'nope' } } }", "tier 'x' comes after 'nope', which is not a tier")
    refused("return { tiers = { venv = { needs = { 'integration' } } } }", "tier 'venv' needs 'integration', which comes after it")
    refused("return { tiers = { venv = { needs = { 'ghost' } } } }", "tier 'venv' needs 'ghost', which is not a tier")
    refused("return { tiers = { venv = { timeout = -1 } } }", "tier 'venv': timeout must be positive")
    refused("return 42", "must return a table of settings or a function")
    refused("return {", "novapipe.lua:1: ")
    refused("error('boom')", "boom")
  end)

  it("refuses a tier that needs itself, a dir outside the tests, a non-string env and a broken PHI pattern", function()
    refused("return { tiers = { venv = { needs = { 'venv' } } } }", "tier 'venv' needs itself: a cycle %(venv %-> venv%)")
    refused("return { tiers = { venv = { dir = '../../x' } } }", "tier 'venv': dir '%.%./%.%./x' leaves the tests directory")
    refused("return { tiers = { venv = { dir = '/tmp/x' } } }", "leaves the tests directory")
    refused("return { tiers = { venv = { env = { X = {} } } } }", "tier 'venv': env.X must be a string, not a table")
    refused("return { phi = { mrn = { '[' } } }", "phi.mrn%[1%] = \"%[\" is not a valid Lua pattern")
    refused("return { phi = { allow = { ssn = { '%' } } } }", "phi.allow.ssn%[1%]")
    refused("error({})", "novapipe.lua raised an error %(a table value%)")
  end)
end)
