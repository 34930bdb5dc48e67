-- run_tests: the test tiers, each a pytest run, gated under --all, with
-- exact counts from JUnit. The options are those of the team's original
-- run_tests.py.
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
    { "--coverage", "coverage per tier, then combined: HTML and a terminal report" },
    { "--junit", "keep JUnit XML per tier in backend/test-results/" },
    { "--verbose -v", "stream pytest's own output, and show each failure's whole report" },
    { "--durations", "show the N slowest tests at the end (default 5; 0: none)", arg = "N",
      convert = np.convert.non_negative_integer },
    { "--markers", "only tests matching this pytest -m expression", arg = "EXPR" },
    { "--filter", "a test path (runs in the tier holding it) or a -k name expression", arg = "PATH_OR_NAME" },
    { "--parallel -p", "pytest-xdist workers per tier", arg = "N", convert = np.convert.positive_integer },
    { "--failfast", "stop at the first failure" },
    { "--strict", "a tier with no tests collected fails" },
    { "--timeout", "seconds per tier; then its whole process tree is ended", arg = "SECONDS", convert = np.convert.positive_number },
  },
  stages = function(opts)
    local only = {}
    if not opts.all then
      for _, name in ipairs({ "standalone", "venv", "integration" }) do
        if opts[name] then only[#only + 1] = name end
      end
      for _, name in ipairs(opts.tier) do only[#only + 1] = name end
    end
    return np.tiers {
      only = only, coverage = opts.coverage, junit = opts.junit, verbose = opts.verbose,
      markers = opts.markers, filter = opts.filter, parallel = opts.parallel, failfast = opts.failfast,
      strict = opts.strict, security = opts.security, timeout = opts.timeout,
    }
  end,
}
