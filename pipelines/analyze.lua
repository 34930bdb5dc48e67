-- analyze: classify test files into tiers (standalone, venv, integration),
-- flag security tests, and say why. The options are those of the team's
-- original analyze_tests.py, plus --explain.
local np = require "novapipe"

return np.pipeline {
  description = "Classify test files into tiers and flag security tests, with the evidence for each",
  options = {
    { "--path", "the directory to analyse (default backend/app/tests)", arg = "DIR", path = true },
    { "--report", "write the JSON report (to backend/test-classification-report.json unless --output says)" },
    { "--output", "where the JSON report goes", arg = "FILE", path = true },
    { "--explain", "print each file's category and the reasons for it" },
  },
  -- Without a report it only reads: no .novapipe/ is made for it.
  read_only = function(opts) return not (opts.report or opts.output) end,
  stages = function(opts)
    return { np.analyze { path = opts.path, report = opts.report, output = opts.output, explain = opts.explain } }
  end,
}
