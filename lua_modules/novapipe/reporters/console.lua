-- The console reporter: a line per stage as it starts and ends, then a
-- summary table. Colour and the live status line come from novapipe.term.
local term = require "novapipe.term"

local M = {}
M.__index = M

local marks = {
  passed = { "PASS", "green" },
  failed = { "FAIL", "red" },
  error = { "ERROR", "red" },
  skipped = { "SKIP", "yellow" },
  empty = { "EMPTY", "yellow" },
}

local function badge(status)
  local m = marks[status] or { status:upper(), "bold" }
  return term.style(("%-5s"):format(m[1]), m[2], "bold")
end

local function seconds(d)
  return ("%.2fs"):format(d or 0)
end

---@param opts? {out?: fun(line: string)}
function M.new(opts)
  opts = opts or {}
  return setmetatable({ out = opts.out or term.print, rows = {} }, M)
end

function M:pipeline_start(pipeline)
  if pipeline.description then
    self.out(term.style(pipeline.description, "bold"))
  end
end

function M:stage_start(stage)
  term.status(("%s running..."):format(stage.name))
end

function M:stage_end(stage, result)
  term.status(nil)
  local line = ("%s %s %s"):format(badge(result.status), stage.name, term.style(seconds(result.duration), "gray"))
  if result.summary and result.summary ~= "" then line = line .. "  " .. result.summary end
  self.out(line)
  if result.reason then self.out("      " .. result.reason) end
  self.rows[#self.rows + 1] = { stage = stage, result = result }
end

function M:pipeline_end(_, outcome)
  if #self.rows == 0 then return end
  self.out("")
  self.out(term.style("Summary", "bold"))
  local width = 5
  for _, row in ipairs(self.rows) do width = math.max(width, #row.stage.name) end
  for _, row in ipairs(self.rows) do
    self.out(("  %-" .. width .. "s  %s  %8s"):format(row.stage.name, badge(row.result.status), seconds(row.result.duration)))
  end
  local verdict = ({ [0] = { "passed", "green" }, [1] = { "failed", "red" }, [2] = { "configuration error", "red" } })[outcome.exit]
    or { "exit " .. outcome.exit, "red" }
  self.out(("%s in %s"):format(term.style(verdict[1], verdict[2], "bold"), seconds(outcome.duration)))
end

return M
