-- run_tests: the test tiers, each a pytest run, gated under --all, with
-- exact counts. The options are those of the team's original run_tests.py,
-- with pytest's habits (-x, -k, -m, --lf, --ff) beside them.
local np = require "novapipe"

return np.pipeline {
  description = "Run the test tiers (standalone, venv, integration) with pytest, gated, with exact counts",
  options = {
    { "--all", "every tier, each gated on the one before (the default when no tier is named)" },
    { "--standalone", "the standalone tier" },
    { "--venv", "the venv tier" },
    { "--integration", "the integration tier" },
    { "--tier", "a tier by name, e.g. one the project's novapipe.lua adds (repeatable)", arg = "NAME", count = "*" },
    { "--security", "only tests marked security, across the selected tiers" },
    { "--coverage", "coverage per tier, then combined: HTML, and a line a tier and the total on the console" },
    { "--coverage-report", "with --coverage, the whole coverage table on the console" },
    { "--junit", "keep JUnit XML per tier in backend/test-results/" },
    { "--verbose -v", "stream pytest's own output, and show each failure's whole report" },
    np.options.durations,
    { "--markers -m", "only tests matching this pytest -m expression", arg = "EXPR" },
    { "--keyword -k", "only tests whose names match this pytest -k expression", arg = "EXPR" },
    { "--filter", "a test path (runs in the tier holding it) or a -k name expression", arg = "PATH_OR_NAME",
      path = np.path.looks_like_path },
    np.options.parallel,
    np.options.jobs,
    np.options.sequential,
    { "--failfast -x", "stop at the first failure" },
    { "--last-failed --lf", "run only the tests that failed or errored in the last run, each in its tier" },
    { "--failed-first --ff", "run every test, the last run's failures first" },
    { "--strict", "a tier with no tests collected fails" },
    { "--allow-empty", "a --filter or --markers that selects no test in any tier passes (it fails otherwise)" },
    np.options.reruns,
    { "--timeout", "seconds per tier; then its whole process tree is ended", arg = "SECONDS", convert = np.convert.positive_number },
    { "--changed", "only the test files a change can affect (their imports, conftest files, plugins, fixtures and "
      .. "data files, statically): the working tree against HEAD, or with REF everything since the merge base of REF "
      .. "and HEAD", arg = "REF", optional = true },
    { "--explain", "with --changed, each selected file's chain from a change, and the files left out" },
    np.options.shard,
    np.options.shard_dir,
    np.options.shard_by,
  },
  stages = function(opts, ctx)
    np.shard.check(opts)
    local select
    -- novapipe watch's re-runs: the files its saved changes affect (as
    -- --changed selects them) plus the tests that failed in the run before
    local saved = ctx.watch and ctx.watch.changes
    if saved then
      for _, o in ipairs({ "changed", "last_failed", "failed_first", "shard" }) do
        if opts[o] then require("novapipe._errors").usage("watch selects what each run runs: leave out --%s", (o:gsub("_", "-"))) end
      end
      select = require("novapipe.run.record").selection(ctx.sink, "also")
    end
    if opts.last_failed or opts.failed_first then
      local note
      select, note = require("novapipe.run.record").selection(ctx.sink, opts.last_failed and "only" or "first")
      if note then ctx.bus:emit("note", note) end
    end
    local only = {}
    if select and select.mode == "only" then
      -- each tier with failures reruns them, none gated on another
      for _, t in ipairs(ctx.config.tiers) do
        if select.by_tier[t.name] then only[#only + 1] = t.name end
      end
    elseif not opts.all then
      for _, name in ipairs({ "standalone", "venv", "integration" }) do
        if opts[name] then only[#only + 1] = name end
      end
      for _, name in ipairs(opts.tier) do only[#only + 1] = name end
    end
    local changed, changed_stage
    -- (under watch, --explain explains each re-run's selection; the first
    -- run selects everything and has nothing to explain)
    if opts.explain and not opts.changed and not ctx.watch then
      require("novapipe._errors").usage("--explain explains a --changed selection: add --changed (analyze --explain explains tiers)")
    end
    if opts.changed or saved then
      changed, changed_stage = np.changed.setup(saved or opts.changed, ctx, only, opts.explain)
      -- (every test runs: the failures with them)
      if saved and changed.everything then select = nil end
    end
    local shard_opts, shard_stage = {}, nil
    if opts.shard then
      shard_opts, shard_stage = np.shard.setup(opts, ctx, only, changed and not changed.everything and changed.keep or nil)
    end
    local tiers = np.tiers {
      shard = shard_opts.shard, results = shard_opts.results, coverage_data = shard_opts.coverage_data,
      only = only, coverage = opts.coverage, verbose = opts.verbose,
      markers = opts.markers, filter = opts.filter, parallel = opts.parallel, failfast = opts.failfast,
      strict = opts.strict, reruns = opts.reruns, allow_empty = opts.allow_empty, security = opts.security, timeout = opts.timeout,
      keyword = opts.keyword, select = select, coverage_report = opts.coverage_report, junit = opts.junit or opts.shard ~= nil,
      jobs = opts.jobs, sequential = opts.sequential, changed = changed,
    }
    -- (a list with no hole: the stages there are, in order)
    local stages = {}
    for _, st in ipairs({ changed_stage or false, tiers, shard_stage or false }) do
      if st then stages[#stages + 1] = st end
    end
    return stages
  end,
}
