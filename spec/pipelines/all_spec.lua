-- The main job on the bundled example: real pytest, a real PostgreSQL.
local H = require "spec.support.h"
local lfs = require "lfs"

describe("pipelines/all.lua on the bundled example", function()
  local copy
  before_each(function()
    -- A copy, so reports written by the run do not land in the source tree.
    copy = H.tmpdir()
    local r = require("novapipe.process").run({ "cp", "-a", "examples/clinic/.", copy })
    assert.equal(0, r.code, r.stderr)
  end)
  after_each(function() H.rmrf(copy) end)

  it("passes every tier, the integration tier against PostgreSQL, with JUnit and coverage", function()
    local r = H.novapipe({ "-C", copy, "--no-color", "run", "pipelines/all.lua" }, { env = { DATABASE_URL = false } })
    assert.equal(0, r.code, r.stdout .. r.stderr)
    for _, tier in ipairs({ "standalone", "venv", "integration" }) do
      assert.matches("PASS%s+" .. tier .. "[^\n]*%d+ passed", r.stdout)
      assert.is_not_nil(lfs.attributes(copy .. "/backend/test-results/" .. tier .. "-results.xml"))
      assert.is_not_nil(lfs.attributes(copy .. "/backend/coverage_html/" .. tier .. "_tests/index.html"))
    end
    assert.matches("PASS%s+coverage[^\n]*total %d+%%", r.stdout)
    assert.is_not_nil(lfs.attributes(copy .. "/backend/coverage_html/combined/index.html"))
    -- test_the_database_is_postgresql ran and passed in the integration tier
    local xml = H.read(copy .. "/backend/test-results/integration-results.xml")
    assert.matches('name="test_the_database_is_postgresql"', xml)
    assert.is_nil(xml:find("<failure", 1, true))
  end)

  it("fails with exit 1 and skips the later tiers when a test fails", function()
    H.write(copy .. "/backend/app/tests/standalone/test_broken_rule.py", "def test_bad():\n    assert 1 == 2\n")
    local r = H.novapipe({ "-C", copy, "--no-color", "run", "all" })
    assert.equal(1, r.code)
    assert.matches("FAIL%s+standalone", r.stdout)
    assert.matches("SKIP%s+venv", r.stdout)
    assert.matches("SKIP%s+integration", r.stdout)
  end)
end)
