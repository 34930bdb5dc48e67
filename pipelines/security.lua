-- security: the tests marked security across every tier (gated, as
-- run_tests --all), the PHI audit of the test suite, the offline dependency
-- scan; with --report the security-code coverage and the combined
-- compliance report; with --format sarif the findings as SARIF; with
-- --update-baseline the baseline of the known findings. The team's
-- run_security.py, with the three scripts it called but which never
-- existed.
local np = require "novapipe"

return np.pipeline {
  description = "Security tests across the tiers, PHI audit, dependency scan and the HIPAA compliance report",
  options = {
    { "--report", "write the reports: PHI audit, dependency scan, security-code coverage, combined HTML/JSON/Markdown" },
    { "--output-dir", "where reports go (default backend/security-reports)", arg = "DIR", path = true },
    { "--format", "report formats: html, json, md, and sarif (the findings as SARIF 2.1.0 in <output-dir>/security.sarif, "
      .. "also without --report); repeatable or comma-separated; default html, json, md", arg = "FMT", count = "*" },
    { "--advisories", "OSV advisories to check pinned dependencies against: a directory or a .zip "
      .. "(default: novapipe's cache, which 'novapipe advisories update' fills)", arg = "PATH",
      path = true },
    { "--update-baseline", "write the baseline (security-baseline.json, or security.baseline) of this run's findings: "
      .. "known from then on, they do not fail this run or later ones; only new findings do" },
    { "--filter", "only the security tests of this path (in the tier holding it) or matching this -k name expression; "
      .. "the others are reported as not run", arg = "PATH_OR_NAME", path = np.path.looks_like_path },
    { "--verbose -v", "stream pytest's own output" },
    np.options.parallel,
  },
  stages = function(opts)
    return np.security {
      report = opts.report, output_dir = opts.output_dir, formats = opts.format, advisories = opts.advisories,
      verbose = opts.verbose, parallel = opts.parallel, update_baseline = opts.update_baseline, filter = opts.filter,
    }
  end,
}
