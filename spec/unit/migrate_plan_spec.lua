-- migrate's plan for the categories analyze gives besides the three
-- tiers: "empty" (a file with no tests) and the name of a tier a project
-- configured. The classifier is replaced here (a unit spec of the plan);
-- the files, the scanner and everything else are real.
local analyze = require "novapipe.analyze"
local config = require "novapipe.config"
local migrate = require "novapipe.migrate"
local H = require "spec.support.h"

describe("novapipe.migrate.plan", function()
  local dir, new
  before_each(function()
    dir = H.tree({
      ["tests/__init__.py"] = "",
      ["tests/legacy/__init__.py"] = "",
      ["tests/legacy/test_nothing.py"] = "import json\n",
      ["tests/legacy/test_contract.py"] = "import pytest\n@pytest.mark.contract\ndef test_api():\n    pass\n",
      ["tests/legacy/test_rules.py"] = "def test_rule():\n    pass\n",
    })
    new = analyze.new
  end)
  after_each(function()
    analyze.new = new
    H.rmrf(dir)
  end)

  -- An analyzer whose verdicts are `categories` (by file name).
  local function classify_as(categories)
    analyze.new = function(...)
      local a = new(...)
      a.classify = function(_, path)
        return { path = path, category = categories[path:match("[^/]+$")] or "standalone", reasons = { "given" },
                 is_security = false }
      end
      return a
    end
  end

  local function cfg_with_contract()
    local cfg = config.defaults()
    table.insert(cfg.tiers, 3, { name = "contract", dir = "contract", needs = { "venv" } })
    return cfg
  end

  it("leaves a file with no tests where it is, saying so, and counts it out of the files with tests", function()
    classify_as({ ["test_nothing.py"] = "empty" })
    local root = dir .. "/tests"
    local plan = assert(migrate.plan(cfg_with_contract(), root, {}))
    assert.same({ { path = root .. "/legacy/test_nothing.py", why = "no tests in it: it stays where it is" } }, plan.stays)
    assert.equal(2, plan.with_tests)
    for _, m in ipairs(plan.moves) do assert.is_nil(m.from:find("test_nothing", 1, true)) end
  end)

  it("moves a file into the directory of the configured tier its category names, making it as a package", function()
    classify_as({ ["test_contract.py"] = "contract" })
    local root = dir .. "/tests"
    local plan = assert(migrate.plan(cfg_with_contract(), root, {}))
    local to = {}
    for _, m in ipairs(plan.moves) do to[m.from] = m.to end
    assert.equal(root .. "/contract/test_contract.py", to[root .. "/legacy/test_contract.py"])
    assert.equal(root .. "/standalone/test_rules.py", to[root .. "/legacy/test_rules.py"])
    local made, inits = {}, {}
    for _, d in ipairs(plan.mkdirs) do made[d] = true end
    for _, c in ipairs(plan.creates) do inits[c.path] = c.content end
    assert.is_true(made[root .. "/contract"])
    assert.equal("", inits[root .. "/contract/__init__.py"])
    -- a custom tier's directory is made only when something goes there
    classify_as({})
    plan = assert(migrate.plan(cfg_with_contract(), root, {}))
    for _, d in ipairs(plan.mkdirs) do assert.is_nil(d:find("contract", 1, true)) end
  end)

  it("keeps a file whose category names no configured tier where it is", function()
    classify_as({ ["test_contract.py"] = "contract" })
    local root = dir .. "/tests"
    local plan = assert(migrate.plan(config.defaults(), root, {}))
    assert.same({ { path = root .. "/legacy/test_contract.py", why = "no tier 'contract' is configured" } }, plan.stays)
  end)
end)
