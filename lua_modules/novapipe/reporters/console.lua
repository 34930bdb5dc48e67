-- The console reporter: a line per stage as it ends (with its counts, and
-- what pytest said about failures), notes, progress (a live status line on
-- a terminal, a plain line every 15 s elsewhere), then a summary table and
-- the totals. Everything it prints passes the run's sink (masked); colour
-- and the live line come from novapipe.term.
local junit = require "novapipe.junit"
local term = require "novapipe.term"
local time = require "novapipe.time"

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

---@param ctx novapipe.Context the run's context: its sink prints
function M.new(ctx)
  local sink = ctx.sink
  return setmetatable({ sink = sink, out = function(line) sink:print(line) end, rows = {}, last_plain = {} }, M)
end

-- A block of lines a stage has to show (analyze's summary, migrate's
-- plan): a bold title (or none) and its lines.
function M:section(title, lines, colour)
  if title then self.out(term.style(title, colour or "bold", "bold")) end
  for _, l in ipairs(lines or {}) do self.out(l) end
end

function M:note(text)
  self.out(term.style("note: ", "yellow", "bold") .. text)
end

function M:progress(stage_name, p)
  if not p then
    self.sink:status(nil)
    return
  end
  local total = p.collected and ("/%d"):format(p.collected) or ""
  local text = ("%s  %d%s tests  %d failed  %.1fs"):format(stage_name, p.done, total, p.failed, p.elapsed)
  if term.live() then
    self.sink:status(text)
  else
    local now = time.now()
    local last = self.last_plain[stage_name]
    if not last then
      self.last_plain[stage_name] = now
    elseif now - last >= 15 then
      self.last_plain[stage_name] = now
      self.out(text)
    end
  end
end

function M:pipeline_start(pipeline)
  if pipeline.description then
    self.out(term.style(pipeline.description, "bold"))
  end
end

function M:stage_start(stage)
  if term.live() then self.sink:status(("%s ..."):format(stage.name)) end
end

function M:stage_end(stage, result)
  self.sink:status(nil)
  local line = ("%s %s %s"):format(badge(result.status), stage.name, term.style(seconds(result.duration), "gray"))
  if result.summary and result.summary ~= "" then line = line .. "  " .. result.summary
  elseif result.counts then line = line .. "  " .. junit.describe(result.counts) end
  self.out(line)
  if result.reason then self.out("      " .. result.reason) end
  for _, n in ipairs(result.notes or {}) do self.out("      " .. term.style("note: ", "yellow") .. n) end
  if result.details then
    for _, l in ipairs(result.details) do self.out("      " .. term.style(l, "dim")) end
  end
  self.rows[#self.rows + 1] = { stage = stage, result = result }
end

function M:pipeline_end(_, outcome)
  if #self.rows == 0 then return end
  self.out("")
  self.out(term.style("Summary", "bold"))
  local width = 5
  local any_counts = false
  for _, row in ipairs(self.rows) do
    width = math.max(width, #row.stage.name)
    any_counts = any_counts or row.result.counts ~= nil
  end
  local total = junit.zero()
  for _, row in ipairs(self.rows) do
    local r = row.result
    local line = ("  %-" .. width .. "s  %s  %8s"):format(row.stage.name, badge(r.status), seconds(r.duration))
    if r.counts then
      junit.add(total, r.counts)
      line = line .. "  " .. junit.describe(r.counts)
    end
    self.out(line)
  end
  if any_counts then
    self.out(("Total: %d tests: %s"):format(total.tests, junit.describe(total)))
  end
  local verdict = ({ [0] = { "passed", "green" }, [1] = { "failed", "red" }, [2] = { "configuration error", "red" } })[outcome.exit]
    or { "exit " .. outcome.exit, "red" }
  self.out(("%s in %s"):format(term.style(verdict[1], verdict[2], "bold"), seconds(outcome.duration)))
end

return M
