-- The main job on the bundled example, with real pytest.
local H = require "spec.support.h"
local fs = require "novapipe.fs"

describe("pipelines/all.lua", function()
  it("passes on the bundled example, running every tier", function()
    local r = H.novapipe({ "-C", "examples/clinic", "--no-color", "run", "pipelines/all.lua" })
    assert.equal(0, r.code, r.stdout .. r.stderr)
    for _, tier in ipairs({ "standalone", "venv", "integration" }) do
      assert.matches("PASS%s+" .. tier, r.stdout)
    end
  end)

  it("fails with exit 1 and skips the later tiers when a test fails", function()
    local dir = H.tmpdir()
    for _, tier in ipairs({ "standalone", "venv" }) do
      assert(fs.mkdir_p(dir .. "/backend/app/tests/" .. tier))
    end
    H.write(dir .. "/backend/app/tests/standalone/test_x.py", "def test_bad():\n    assert 1 == 2\n")
    H.write(dir .. "/backend/app/tests/venv/test_y.py", "def test_ok():\n    pass\n")
    local r = H.novapipe({ "-C", dir, "--no-color", "run", "all" })
    assert.equal(1, r.code)
    assert.matches("FAIL%s+standalone", r.stdout)
    assert.matches("SKIP%s+venv", r.stdout)
    H.rmrf(dir)
  end)
end)
