-- analyze: classify test files into tiers (standalone, venv, integration),
-- flag security tests, and say why. The options are those of the team's
-- original analyze_tests.py.
local np = require "novapipe"
local analyze = require "novapipe.analyze"
local config = require "novapipe.config"
local errors = require "novapipe._errors"
local lfs = require "lfs"
local pytest_config = require "novapipe.pytest_config"
local term = require "novapipe.term"

local DEFAULT_OUTPUT = "backend/test-classification-report.json"

local function pct(summary, c)
  return ("%d (%.1f%%)"):format(summary[c .. "_count"], summary[c .. "_percentage"])
end

return np.pipeline {
  description = "Classify test files into tiers and flag security tests, with the evidence for each",
  options = {
    { "--path", "the directory to analyse", arg = "DIR" },
    { "--report", "write the JSON report (to backend/test-classification-report.json unless --output says)" },
    { "--output", "where the JSON report goes", arg = "FILE" },
    { "--explain", "print each file's category and the reasons for it" },
  },
  stages = function(opts)
    local cfg = config.load()
    local root = (opts.path or cfg.tests):gsub("/+$", "")
    if lfs.attributes(root, "mode") ~= "directory" then
      errors.usage("--path %s: %s", root, lfs.attributes(root) and "not a directory" or "no such directory")
    end
    return {
      np.stage {
        name = "analyze",
        run = function()
          local files = assert(analyze.test_files(root, pytest_config.python_files()))
          local a = analyze.new(cfg, root)
          local report = a:report(files)
          local s = report.summary
          term.print(term.style("Test Analysis Summary", "bold"))
          term.print(("Total tests: %d"):format(s.total_tests))
          term.print("Standalone tests: " .. pct(s, "standalone"))
          term.print("VENV tests: " .. pct(s, "venv"))
          term.print("Integration tests: " .. pct(s, "integration"))
          term.print("Security tests: " .. pct(s, "security"))
          term.print("Unknown tests: " .. pct(s, "unknown"))
          if opts.explain then
            for _, f in ipairs(files) do
              local d = report.test_details[f]
              term.print(("%s: %s%s"):format(f, d.category, d.is_security and " (security)" or ""))
              for _, r in ipairs(d.reasons) do term.print("    " .. r) end
            end
          end
          if #report.errors > 0 then
            term.print(term.style("Errors:", "red", "bold"))
            for _, e in ipairs(report.errors) do term.print("- " .. e) end
          end
          local out = opts.output or (opts.report and DEFAULT_OUTPUT or nil)
          if out then
            local dir = out:match("^(.*)/[^/]*$")
            if dir then assert(require("novapipe.fs").mkdir_p(dir)) end
            local ok, err = np.json.write(out, report)
            if not ok then return { status = "error", reason = err } end
            term.print(("Detailed report written to %s"):format(out))
          end
          return { status = "passed", summary = ("%d files"):format(#files) }
        end,
      },
    }
  end,
}
