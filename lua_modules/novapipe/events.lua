-- A small event stream: reporters subscribe, the runner emits.
local M = {}
M.__index = M

---@return table bus
function M.new()
  return setmetatable({ handlers = {} }, M)
end

---Subscribes a reporter: a table whose fields named after events
---(pipeline_start, stage_start, stage_end, pipeline_end, ...) are called.
---@param reporter table
function M:subscribe(reporter)
  self.handlers[#self.handlers + 1] = reporter
end

---Calls every subscriber's handler for `event` with the arguments.
---@param event string
function M:emit(event, ...)
  for _, r in ipairs(self.handlers) do
    local fn = r[event]
    if fn then fn(r, ...) end
  end
end

return M
