-- What the side-by-side benchmarks share: each case is {label, argv, env};
-- they run in turn, round after round (so the machine's drift falls on
-- every case alike), each writing into a pipe that is read, as in CI or a
-- terminal; a case that does not exit 0 stops the benchmark.
--   local harness = dofile(arg[0]:match("^(.*/)") .. "harness.lua")
local proc = require "novapipe.proc"
local time = require "novapipe.time"

local M = {}

---The median of a list of numbers (the list is sorted).
---@param xs number[]
---@return number
function M.median(xs)
  table.sort(xs)
  return xs[(#xs + 1) // 2]
end

local function discard() end

---Runs argv in cwd with env added; its wall time in seconds.
---@param argv string[]
---@param cwd string
---@param env? table<string, string|false>
---@return number
function M.timed(argv, cwd, env)
  local t0 = time.now()
  local r = assert(proc.spawn(argv, { cwd = cwd, stdout = discard, stderr = discard, env = env })):wait()
  assert(r.code == 0, table.concat(argv, " ") .. " failed with " .. r.code)
  return time.now() - t0
end

---Runs the cases interleaved `rounds` times in cwd; each case's median time.
---@param cases {[1]: string, [2]: string[], [3]?: table}[]
---@param rounds integer
---@param cwd string
---@return number[]
function M.medians(cases, rounds, cwd)
  local times = {}
  for _ = 1, rounds do
    for i, c in ipairs(cases) do
      times[i] = times[i] or {}
      table.insert(times[i], M.timed(c[2], cwd, c[3]))
    end
  end
  local out = {}
  for i in ipairs(cases) do out[i] = M.median(times[i]) end
  return out
end

return M
