-- What the side-by-side benchmarks share: each case is {label, argv, env};
-- they run in turn, round after round (so the machine's drift falls on
-- every case alike), each writing into a pipe that is read, as in CI or a
-- terminal; a case that does not exit 0 stops the benchmark.
--   local harness = dofile(arg[0]:match("^(.*/)") .. "harness.lua")
local proc = require "novapipe.proc"
local time = require "novapipe.time"

local M = {}

---The median of a list of numbers (the list is sorted): the middle value,
---or of an even count the mean of the two middle ones.
---@param xs number[]
---@return number
function M.median(xs)
  table.sort(xs)
  local n = #xs
  if n % 2 == 1 then return xs[(n + 1) // 2] end
  return (xs[n // 2] + xs[n // 2 + 1]) / 2
end

local function discard() end

---Runs argv in cwd with env added; its wall time in seconds, and the
---processor time (user and system) of it and the children it waited for.
---@param argv string[]
---@param cwd string
---@param env? table<string, string|false>
---@return number wall
---@return number cpu
function M.timed(argv, cwd, env)
  local t0 = time.now()
  local r = assert(proc.spawn(argv, { cwd = cwd, stdout = discard, stderr = discard, env = env })):wait()
  assert(r.code == 0, table.concat(argv, " ") .. " failed with " .. r.code)
  return time.now() - t0, r.cpu
end

---Runs the cases interleaved `rounds` times in cwd, every other round in
---the reverse order (so no case always follows the same one); each case's
---median time, and every time, by case and round (and the processor
---times the same way).
---@param cases {[1]: string, [2]: string[], [3]?: table}[]
---@param rounds integer
---@param cwd string
---@return number[] medians
---@return number[][] times times[case][round]
---@return number[][] cpu cpu[case][round]
function M.medians(cases, rounds, cwd)
  local times, cpu = {}, {}
  for i in ipairs(cases) do times[i], cpu[i] = {}, {} end
  for round = 1, rounds do
    for n = 1, #cases do
      local i = round % 2 == 1 and n or #cases + 1 - n
      times[i][round], cpu[i][round] = M.timed(cases[i][2], cwd, cases[i][3])
    end
  end
  local out = {}
  for i in ipairs(cases) do
    local copy = { table.unpack(times[i]) }
    out[i] = M.median(copy)
  end
  return out, times, cpu
end

---The median, over the rounds, of case a's time over case b's in the same
---round: runs side by side share the machine's state of the moment, so the
---ratio of a pair moves less than either time (times from M.medians).
---@param times number[][]
---@param a integer
---@param b integer
---@return number
function M.paired_ratio(times, a, b)
  local ratios = {}
  for r = 1, #times[a] do ratios[r] = times[a][r] / times[b][r] end
  return M.median(ratios)
end

---Case a's fastest time over case b's: the rounds the machine disturbed
---least (its noise only ever adds time), a figure beside the paired one.
---@param times number[][]
---@param a integer
---@param b integer
---@return number
function M.min_ratio(times, a, b)
  return math.min(table.unpack(times[a])) / math.min(table.unpack(times[b]))
end

return M
