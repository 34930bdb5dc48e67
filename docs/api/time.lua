---@meta novapipe.time
-- LuaLS stubs for the C module novapipe.time (engine/time.c).

---@class novapipe.time
local time = {}

---@return number seconds on the monotonic clock, for durations
function time.now() end

---@return number seconds since the epoch, with fractions
function time.wall() end

---@param epoch? number default now
---@param localtime? boolean with the local offset ("+01:00") instead of "Z"
---@return string "2026-01-02T03:04:05.678Z"
function time.iso8601(epoch, localtime) end

---Sleeps; raises "interrupted" on Ctrl-C.
---@param seconds number
function time.sleep(seconds) end

return time
