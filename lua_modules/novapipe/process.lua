-- Processes, the Lua layer over novapipe.proc, modelled on neovim's
-- vim.system: process.run(argv, opts):wait() returns a result table.
local lfs = require "lfs"
local proc = require "novapipe.proc"

local M = {}

---@class novapipe.Result
---@field code integer exit code; 124 after a timeout, 128+N after signal N
---@field signal integer the signal that ended the process, 0 for none
---@field timed_out boolean
---@field duration number wall seconds
---@field cpu number user+system CPU seconds
---@field maxrss integer peak resident set size in bytes
---@field stdout? string captured standard output
---@field stderr? string captured standard error
---@field pid integer

-- The keys proc.spawn takes (engine/proc.c, spawn_options), and run_all's.
local SPAWN_OPTIONS = { "cwd", "env", "clear_env", "stdin", "stdout", "stderr", "filter", "events",
                        "timeout", "grace", "cleanup", "max_line", "read_every" }
local RUN_ALL_OPTIONS = { "max", "on_start", "on_done" }

-- Raises, at the level of whoever called `fname`, when opts (argument
-- `arg`) is not a table or nil, or has a key not in `known`. `where`
-- prefixes the message (which job of run_all).
local function check_options(opts, known, fname, arg, where)
  if opts == nil then return end
  local prefix = where and (where .. ": ") or ""
  if type(opts) ~= "table" then
    error(("bad argument #%d to '%s' (%stable expected, got %s)"):format(arg, fname, prefix, type(opts)), 3)
  end
  for key in pairs(opts) do
    local ok = false
    for _, k in ipairs(known) do
      if key == k then ok = true break end
    end
    if not ok then
      local what = type(key) == "string" and ("'" .. key .. "'") or ("[%s] (a %s key)"):format(tostring(key), type(key))
      error(("bad argument #%d to '%s' (%sunknown option %s; known: %s)"):format(
        arg, fname, prefix, what, table.concat(known, ", ")), 3)
    end
  end
end

local function with_defaults(opts)
  local o = {}
  for k, v in pairs(opts or {}) do o[k] = v end
  if o.stdout == nil then o.stdout = "capture" end
  if o.stderr == nil then o.stderr = "capture" end
  return o
end

local function start(argv, opts)
  return proc.spawn(argv, with_defaults(opts))
end

---Starts a process. Output is captured unless opts say otherwise. Raises
---on an unknown option key.
---@param argv string[]
---@param opts? novapipe.SpawnOpts
---@return novapipe.Process|nil handle
---@return string? error
---@return string? errname
function M.start(argv, opts)
  check_options(opts, SPAWN_OPTIONS, "start", 2)
  return start(argv, opts)
end

---Runs a process to its end. Raises on an unknown option key.
---@param argv string[]
---@param opts? novapipe.SpawnOpts
---@return novapipe.Result|nil result
---@return string? error
---@return string? errname
function M.run(argv, opts)
  check_options(opts, SPAWN_OPTIONS, "run", 2)
  local job = M.jobs[coroutine.running()]
  -- a job that was cancelled starts nothing more (novapipe.run.jobs)
  if job and job.cancelled then return nil, job.cancelled end
  local p, err, errname = start(argv, opts)
  if not p then return nil, err, errname end
  if job then
    -- the scheduler waits for it beside the other jobs' processes, and
    -- resumes this one with the result, or with an error to raise
    local r, raise = coroutine.yield(M.WAIT, p)
    if r == M.RAISE then error(raise, 0) end
    return r
  end
  return p:wait()
end

---The coroutines novapipe.run.jobs runs, each with its state: in them,
---M.run yields (M.WAIT, handle) instead of waiting, so several run at once.
M.jobs = setmetatable({}, { __mode = "k" })
M.WAIT = setmetatable({}, { __name = "process.WAIT" })
M.RAISE = setmetatable({}, { __name = "process.RAISE" })

---Runs many processes with at most `max` at once, in the order given.
---Each job is {argv, opts}. on_start(i, handle) and on_done(i, result)
---are called as jobs start and end. A job that cannot start gets a result
---with code 127 and `error` set. Raises on an unknown option key, in opts
---or in a job's options.
---@param jobs table[]
---@param opts? {max?: integer, on_start?: fun(i: integer, p: novapipe.Process), on_done?: fun(i: integer, r: novapipe.Result)}
---@return novapipe.Result[]
function M.run_all(jobs, opts)
  check_options(opts, RUN_ALL_OPTIONS, "run_all", 2)
  for i, job in ipairs(jobs) do check_options(job[2], SPAWN_OPTIONS, "run_all", 1, ("jobs[%d]"):format(i)) end
  opts = opts or {}
  local max = opts.max or 4
  assert(max >= 1, "max must be at least 1")
  local results, running, index_of = {}, {}, {}
  local next_job = 1
  local function finish(i, r)
    results[i] = r
    if opts.on_done then opts.on_done(i, r) end
  end
  while next_job <= #jobs or #running > 0 do
    while #running < max and next_job <= #jobs do
      local i = next_job
      next_job = next_job + 1
      local p, err, errname = start(jobs[i][1], jobs[i][2])
      if p then
        running[#running + 1] = p
        index_of[p] = i
        if opts.on_start then opts.on_start(i, p) end
      else
        finish(i, { code = 127, signal = 0, timed_out = false, duration = 0, cpu = 0,
                    maxrss = 0, error = err, errname = errname })
      end
    end
    if #running > 0 then
      local k, r = proc.wait_any(running)
      local p = table.remove(running, k)
      finish(index_of[p], r)
      index_of[p] = nil
    end
  end
  return results
end

local function executable(path)
  local a = lfs.attributes(path)
  return a ~= nil and a.mode == "file" and a.permissions:find("x", 1, true) ~= nil
end

---Finds a program in PATH (or checks a path that has a '/').
---@param name string
---@return string|nil path
function M.which(name)
  if name:find("/", 1, true) then
    return executable(name) and name or nil
  end
  for dir in (os.getenv("PATH") or ""):gmatch("[^:]+") do
    local path = dir .. "/" .. name
    if executable(path) then return path end
  end
  return nil
end

return M
