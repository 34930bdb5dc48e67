-- Errors a user sees as one line: raised as tables so the CLI can tell them
-- from a pipeline's bugs (which get a traceback) and pick the exit code.
local M = {}

M.EXIT = { passed = 0, failed = 1, usage = 2, interrupted = 130 }

local Error = {}
Error.__index = Error
Error.__tostring = function(e) return e.message end

---Raises a usage or configuration error: exit code 2, one line, no traceback.
---@param fmt string
---@param ... any
function M.usage(fmt, ...)
  error(setmetatable({ kind = "usage", message = fmt:format(...), exit = M.EXIT.usage }, Error), 0)
end

---Raises the usage error of a run outside any project (exit 2, one line):
---such a run leaves nothing in the directory, not even the .novapipe/ an
---audit entry would need.
---@param fmt string
---@param ... any
function M.outside(fmt, ...)
  error(setmetatable({ kind = "usage", outside = true, message = fmt:format(...), exit = M.EXIT.usage }, Error), 0)
end

---@param e any
---@return boolean
function M.is_usage(e)
  return type(e) == "table" and e.kind == "usage"
end

---@param e any
---@return boolean
function M.is_interrupt(e)
  return type(e) == "table" and e.interrupted == true
end

return M
