-- The main job: the test files' classification, then every test tier in
-- order, gated, with JUnit XML and combined coverage, then the security
-- tests (their results taken from the tiers' runs: each test runs once),
-- PHI audit, dependency scan and compliance report; it ends with
-- the list of every report written, and always writes the run's HTML
-- report (backend/test-results/report.html unless --html says otherwise).
local np = require "novapipe"

return np.pipeline {
  description = "Classify the tests, run every tier gated with JUnit and coverage, then security with its report",
  html = "backend/test-results/report.html",
  options = {
    { "--verbose -v", "stream pytest's own output, and show each failure's whole report" },
    { "--durations", "show the N slowest tests at the end (default 5; 0: none)", arg = "N",
      convert = np.convert.non_negative_integer },
    { "--parallel -p", "pytest-xdist workers per tier, or auto: the cores a tier has to itself", arg = "N", convert = np.convert.workers },
    { "--jobs -j", "tiers at once (default: the cores novapipe may use); each starts before the tiers it needs have passed, its results held until they have", arg = "N", convert = np.convert.positive_integer },
    { "--sequential", "one tier at a time, each started only after the tiers it needs passed" },
    { "--reruns", "run a failed test again up to N times; one that then passes is flaky, and its tier passes",
      arg = "N", convert = np.convert.non_negative_integer },
    { "--coverage-report", "the whole coverage table on the console, not a line a tier" },
    { "--list-reports", "list every file the run wrote, not only where they are" },
    { "--advisories", "OSV advisories for the dependency scan: a directory or a .zip", arg = "PATH", path = true },
    { "--shard", "run shard K of N: each tier's files split by recorded durations (novapipe merge puts them together)",
      arg = "K/N", convert = np.shard.parse },
    { "--shard-dir", "where the shard keeps what novapipe merge needs (default .novapipe/shards/K-of-N)", arg = "DIR",
      path = true },
    { "--shard-by", "with --shard, split each tier's files (the default) or its tests", arg = "WHAT",
      choices = { "file", "test" } },
  },
  stages = function(opts, ctx)
    np.shard.check(opts)
    local shard, shard_stage = {}, nil
    if opts.shard then shard, shard_stage = np.shard.setup(opts, ctx) end
    return {
      np.analyze(),
      np.tiers { junit = true, coverage = true, verbose = opts.verbose, parallel = opts.parallel, reruns = opts.reruns,
                 coverage_report = opts.coverage_report, jobs = opts.jobs, sequential = opts.sequential,
                 cov_context = true, shard = shard.shard, results = shard.results, coverage_data = shard.coverage_data },
      np.security { report = true, advisories = opts.advisories, verbose = opts.verbose, parallel = opts.parallel,
                    jobs = opts.jobs, sequential = opts.sequential, reuse = true, shard = shard.shard },
      np.written { all = opts.list_reports },
      shard_stage,
    }
  end,
}
