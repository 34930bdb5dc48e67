local analyze = require "novapipe.analyze"
local config = require "novapipe.config"

-- The memory a call allocates, in bytes, with the collector stopped.
local function allocated(f)
  collectgarbage("collect")
  collectgarbage("stop")
  local before = collectgarbage("count")
  f()
  local after = collectgarbage("count")
  collectgarbage("restart")
  return (after - before) * 1024
end

describe("matching a module against the tier indicators", function()
  local a = analyze.new(config.defaults(), "backend/app/tests")

  it("finds the shortest indicator at a component boundary, with or without a package root", function()
    assert.equal("app.infrastructure.persistence", a:indicator("app.infrastructure.persistence.db", "integration"))
    assert.equal("redis", a:indicator("redis.asyncio.client", "venv"))
    assert.is_nil(a:indicator("redisx.asyncio", "venv"))
    assert.equal("app.infrastructure.persistence", a:indicator("backend.app.infrastructure.persistence.x", "integration"))
    -- empty components are no part of a prefix, as import_module strings may have them
    assert.equal("app.infrastructure.persistence", a:indicator(".app..infrastructure.persistence.", "integration"))
  end)

  it("costs a long dotted name its length, not its length squared", function()
    local module = ("a."):rep(4000) .. "a"
    local bytes = allocated(function()
      assert.is_nil(a:indicator(module, "venv"))
      assert.is_nil(a:indicator("backend." .. module, "integration"))
    end)
    -- each prefix built in turn would allocate some 16 MB here
    assert.is_true(bytes < 64 * #module, ("%d bytes allocated"):format(bytes))
  end)
end)
