-- The main job: every test tier, gated, with JUnit and coverage.
local np = require "novapipe"

return np.pipeline {
  description = "Every test tier in order, gated, with JUnit XML and combined coverage",
  options = {
    { "--verbose -v", "stream pytest's own output" },
    { "--parallel -p", "pytest-xdist workers per tier", arg = "N", convert = math.tointeger },
  },
  stages = function(opts)
    return { np.tiers { junit = true, coverage = true, verbose = opts.verbose, parallel = opts.parallel } }
  end,
}
