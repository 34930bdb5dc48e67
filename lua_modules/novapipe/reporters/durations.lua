-- The durations reporter: at the end of a run that keeps a record, each
-- test's time is averaged into .novapipe/durations.json
-- (novapipe.select.durations), keyed by masked paths and ids, through the
-- run's sink: atomic, owner-only, recorded. A run with no timed test
-- leaves the file as it was, and so does a shard (--shard): the shards of
-- a run must all split by the same durations, on one machine too; their
-- merge records them.
local record = require "novapipe.run.record"
-- (novapipe.select.durations, loaded by a run that records durations: a
-- read-only analyze never does)
local durations

local M = {}
M.__index = M

---@param ctx novapipe.Context
function M.new(ctx)
  return setmetatable({ ctx = ctx }, M)
end

-- Whether this run records no durations.
local function off(ctx)
  return (ctx.outputs and ctx.outputs.keep_record == false) or (ctx.opts and ctx.opts.shard) and true or false
end

-- The durations so far and the keyer, read at the first test.
function M:start()
  durations = durations or require "novapipe.select.durations"
  self.data = durations.read(durations.LOCAL) or durations.read(durations.COMMITTED) or durations.empty()
  self.key = durations.keyer(self.ctx.config.phi)
  self.added = 0
end

-- Each test as it ends, while pytest runs: its keys masked then, so what
-- is left for the end of the run is writing the file.
function M:test(_, t)
  if self.off == nil then self.off = off(self.ctx) end
  if self.off then return end
  if not self.data then self:start() end
  self.added = self.added + durations.add(self.data, { t }, self.key)
end

function M:pipeline_end(_, outcome)
  local ctx = self.ctx
  if off(ctx) then return end
  if not self.data then
    -- no test event came (novapipe merge: the shards' records): the results
    self:start()
    local tests = record.unique_tests(outcome.results or {})
    self.added = durations.add(self.data, tests, self.key)
  end
  if self.added == 0 then return end
  -- every key masked as it was made: written as it is
  local ok, err = ctx.sink:write(durations.LOCAL, durations.encode(self.data), "recorded durations", { premasked = true })
  if not ok then ctx.sink:error(("novapipe: durations not recorded in %s: %s"):format(durations.LOCAL, err)) end
end

return M
