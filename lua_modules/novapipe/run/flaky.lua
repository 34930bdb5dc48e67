-- `novapipe flaky`: the tests that were flaky (passed only on a rerun,
-- --reruns) in the runs novapipe recorded, with how often. It reads the
-- run records the record reporter keeps (.novapipe/runs/, the newest 20):
-- no history of its own. A test is the same from run to run by its key
-- (sha256 of the project's secret and its node id, which every flaky test
-- gets in the record), else by its tier and its (masked) node id.
local lfs = require "lfs"
local record = require "novapipe.run.record"

local M = {}

---@class novapipe.FlakyTest
---@field id string the node id, masked as the record keeps it
---@field tier string
---@field flaky integer runs in which it was flaky
---@field ran integer runs in which it ran at all
---@field attempts integer attempts in all in the runs it was flaky
---@field last string when the newest of those runs started

---The flaky tests of the records in `dir`, most often flaky first.
---Returns the list and how many records were read, or nil and why none
---could be (no directory yet).
---@param dir? string default .novapipe/runs
---@return novapipe.FlakyTest[]|nil
---@return integer|string runs, or why
function M.scan(dir)
  dir = dir or require("novapipe.reporters.record").DIR
  if lfs.attributes(dir, "mode") ~= "directory" then
    return nil, ("no run recorded yet (%s does not exist): run the tests with --reruns N first"):format(dir)
  end
  local names = require("novapipe.reporters.record").names(dir)
  local runs, by, order = 0, {}, {}
  for _, name in ipairs(names) do
    local rec = record.read(dir .. "/" .. name)
    if rec then
      runs = runs + 1
      -- the tests of this run by tier and id, for "ran in"
      local here = {}
      for _, t in ipairs(rec.tests) do
        if type(t.id) == "string" and not t.collect then here[(t.tier or "?") .. "\0" .. t.id] = t end
      end
      for _, t in ipairs(rec.tests) do
        if t.outcome == "flaky" and type(t.id) == "string" then
          local k = t.key or ((t.tier or "?") .. "\0" .. t.id)
          local f = by[k]
          if not f then
            f = { id = t.id, tier = t.tier or "?", flaky = 0, ran = 0, attempts = 0, seen = {} }
            by[k] = f
            order[#order + 1] = f
          end
          f.flaky = f.flaky + 1
          f.attempts = f.attempts + (type(t.attempts) == "table" and #t.attempts or 0)
          f.last = tostring(rec.started or "?")
          f.id, f.tier = t.id, t.tier or "?"
        end
      end
      for _, f in ipairs(order) do
        if here[f.tier .. "\0" .. f.id] and not f.seen[runs] then
          f.seen[runs] = true
          f.ran = f.ran + 1
        end
      end
    end
  end
  for _, f in ipairs(order) do f.seen = nil end
  table.sort(order, function(a, b)
    if a.flaky ~= b.flaky then return a.flaky > b.flaky end
    if a.last ~= b.last then return a.last > b.last end
    return a.id < b.id
  end)
  return order, runs
end

---The lines `novapipe flaky` prints.
---@param list novapipe.FlakyTest[]|nil
---@param runs integer|string
---@param dir? string
---@return string[]
function M.lines(list, runs, dir)
  dir = dir or require("novapipe.reporters.record").DIR
  if not list then return { tostring(runs) } end
  local plural = runs == 1 and "" or "s"
  if #list == 0 then
    return { ("no flaky test in the %d recorded run%s (%s)"):format(runs, plural, dir) }
  end
  local out = { ("%d flaky test%s in the %d recorded run%s (%s):"):format(#list, #list == 1 and "" or "s", runs, plural, dir) }
  for _, f in ipairs(list) do
    out[#out + 1] = ("  flaky in %d of %d run%s  %s  (%s; %d attempts in those runs; last %s)"):format(f.flaky,
      math.max(f.ran, f.flaky), math.max(f.ran, f.flaky) == 1 and "" or "s", f.id, f.tier, f.attempts, f.last)
  end
  return out
end

return M
