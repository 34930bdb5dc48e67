-- merge: the shards of one run (--shard K/N on run_tests or all, each
-- shard's directory as CI downloaded it) put back together into what a
-- single run writes: JUnit per tier, combined coverage, the run record,
-- the HTML report, the step summary and annotations, and the exit code of
-- the whole. `novapipe merge DIR...` runs it.
local np = require "novapipe"

return np.pipeline {
  description = "Merge the shards of a run (--shard K/N) into what one run writes",
  html = "backend/test-results/report.html",
  options = {
    { "--from", "a shard's directory (its --shard-dir), once for each shard", arg = "DIR", count = "*", path = true },
    { "--coverage-report", "the whole coverage table on the console, not a line a tier" },
  },
  stages = function(opts, ctx)
    return require("novapipe.select.merge").stages(opts, ctx)
  end,
}
