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
    np.options.durations,
    np.options.parallel,
    np.options.jobs,
    np.options.sequential,
    np.options.reruns,
    { "--coverage-report", "the whole coverage table on the console, not a line a tier" },
    { "--list-reports", "list every file the run wrote, not only where they are" },
    { "--advisories", "OSV advisories for the dependency scan: a directory or a .zip "
      .. "(default: novapipe's cache, which 'novapipe advisories update' fills)", arg = "PATH", path = true },
    { "--format", "the security report's formats: html, json, md, sarif (repeatable or comma-separated; default "
      .. "security.formats)", arg = "FMT", count = "*" },
    np.options.shard,
    np.options.shard_dir,
    np.options.shard_by,
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
      np.security { report = true, advisories = opts.advisories, formats = opts.format, verbose = opts.verbose, parallel = opts.parallel,
                    jobs = opts.jobs, sequential = opts.sequential, reuse = true, shard = shard.shard },
      np.written { all = opts.list_reports },
      shard_stage,
    }
  end,
}
