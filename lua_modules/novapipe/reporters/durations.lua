-- The durations reporter: at the end of a run that keeps a record, each
-- test's time is averaged into .novapipe/durations.json
-- (novapipe.select.durations), keyed by masked paths and ids, through the
-- run's sink: atomic, owner-only, recorded. A run with no timed test
-- leaves the file as it was, and so does a shard (--shard): the shards of
-- a run must all split by the same durations, on one machine too; their
-- merge records them.
local durations = require "novapipe.select.durations"
local record = require "novapipe.run.record"

local M = {}
M.__index = M

---@param ctx novapipe.Context
function M.new(ctx)
  return setmetatable({ ctx = ctx }, M)
end

function M:pipeline_end(_, outcome)
  local ctx = self.ctx
  if ctx.outputs and ctx.outputs.keep_record == false then return end
  if ctx.opts and ctx.opts.shard then return end
  local tests = record.unique_tests(outcome.results or {})
  if #tests == 0 then return end
  local data = durations.read(durations.LOCAL) or durations.read(durations.COMMITTED) or durations.empty()
  local key = durations.keyer(ctx.config.phi)
  if durations.add(data, tests, key) == 0 then return end
  -- every key masked as it was made: written as it is
  local ok, err = ctx.sink:write(durations.LOCAL, durations.encode(data), "recorded durations", { premasked = true })
  if not ok then ctx.sink:error(("novapipe: durations not recorded in %s: %s"):format(durations.LOCAL, err)) end
end

return M
