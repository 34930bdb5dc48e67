-- The Markdown reporter: appends a summary table to the file GitHub
-- Actions names in GITHUB_STEP_SUMMARY, through the run's sink (masked,
-- never through a link).
local junit = require "novapipe.junit"

local M = {}
M.__index = M

---@param ctx novapipe.Context
---@param path? string the file to append to (default: $GITHUB_STEP_SUMMARY)
function M.new(ctx, path)
  path = path or os.getenv("GITHUB_STEP_SUMMARY")
  if not path or path == "" then return nil end
  return setmetatable({ sink = ctx.sink, path = path, rows = {} }, M)
end

function M:stage_end(stage, result)
  self.rows[#self.rows + 1] = { stage = stage, result = result }
end

local icons = { passed = "✅", failed = "❌", error = "❌", skipped = "⏭️", empty = "⚪" }

local function cell(s)
  return (tostring(s or ""):gsub("|", "\\|"):gsub("\n", " "))
end

function M:pipeline_end(def, outcome)
  local lines = {
    ("### novapipe: %s"):format(cell(def.description)),
    "",
    "| stage | status | time | passed | failed | errors | skipped | xfailed | xpassed | note |",
    "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
  }
  local total = junit.zero()
  for _, row in ipairs(self.rows) do
    local r, c = row.result, row.result.counts or {}
    if r.counts then junit.add(total, r.counts) end
    lines[#lines + 1] = ("| %s | %s %s | %.2fs | %s | %s | %s | %s | %s | %s | %s |"):format(
      cell(row.stage.name), icons[r.status] or "", r.status, r.duration or 0,
      c.passed or "", c.failed or "", c.errors or "", c.skipped or "", c.xfailed or "", c.xpassed or "",
      cell(r.reason or (not r.counts and r.summary) or nil))
  end
  lines[#lines + 1] = ("| **total** | exit %d | %.2fs | %d | %d | %d | %d | %d | %d | |"):format(outcome.exit,
    outcome.duration, total.passed, total.failed, total.errors, total.skipped, total.xfailed, total.xpassed)
  local ok, err = self.sink:append(self.path, table.concat(lines, "\n") .. "\n\n")
  if not ok then self.sink:error(("novapipe: cannot append the step summary: %s"):format(err)) end
end

return M
