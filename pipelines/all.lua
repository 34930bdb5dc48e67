-- The main job: the test files' classification, then every test tier in
-- order, gated, with JUnit XML and combined coverage.
local np = require "novapipe"

return np.pipeline {
  description = "Classify the tests, then run every tier in order, gated, with JUnit XML and combined coverage",
  options = {
    { "--verbose -v", "stream pytest's own output" },
    { "--parallel -p", "pytest-xdist workers per tier", arg = "N", convert = math.tointeger },
  },
  stages = function(opts)
    return {
      np.analyze(),
      np.tiers { junit = true, coverage = true, verbose = opts.verbose, parallel = opts.parallel },
    }
  end,
}
