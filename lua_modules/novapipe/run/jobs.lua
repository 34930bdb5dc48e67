-- Jobs: Lua functions that run at once, each in a coroutine, at most `max`
-- at a time, started in the order they were added. Inside a job,
-- novapipe.process.run yields while its process runs instead of waiting;
-- the scheduler waits for whichever process of any job ends first
-- (proc.wait_any; while it waits, the host serves every live process's
-- output, callbacks and timeouts) and resumes that job. Speculative tiers
-- are built on it (novapipe.tiers).
--
-- A cancelled job starts no process any more (process.run returns nil and
-- the reason), and the process it waits for is ended (its whole tree), so
-- it unwinds through its own failure paths: services stopped, files
-- adopted. An error in one job (Ctrl-C, a bug) is raised in every other
-- suspended job, so their clean-up runs, and then raised to the caller.
local process = require "novapipe.process"
local proc = require "novapipe.proc"

local M = {}
M.__index = M

---@class novapipe.Jobs
---@field max integer

---A scheduler running at most `max` jobs at once.
---@param max integer
---@return novapipe.Jobs
function M.new(max)
  return setmetatable({ max = math.max(1, max), queue = {}, jobs = {}, running = 0 }, M)
end

---Adds a job under `key`; it starts when fewer than `max` run.
---@param key string
---@param fn fun(): any
function M:add(key, fn)
  local job = { key = key, fn = fn, state = {} }
  self.jobs[key] = job
  self.queue[#self.queue + 1] = job
end

-- Resumes a job's coroutine with the given values and files what it did:
-- waiting for a process again, or finished (its returns kept).
local function resume(self, job, ...)
  local out = table.pack(coroutine.resume(job.co, ...))
  if not out[1] then
    -- a bug keeps its traceback; an interrupt (a table) goes as it is
    job.done, job.failed = true, type(out[2]) == "string" and debug.traceback(job.co, out[2]) or out[2]
    self.running = self.running - 1
    -- a coroutine that raised keeps its to-be-closed variables open
    -- until it is closed: its clean-up runs now, told of the error
    coroutine.close(job.co)
    return
  end
  if coroutine.status(job.co) == "dead" then
    job.done, job.returns = true, table.pack(table.unpack(out, 2, out.n))
    self.running = self.running - 1
    job.waiting = nil
  elseif out[2] == process.WAIT then
    job.waiting = out[3]
    -- cancelled while it was starting this one: end it at once
    if job.state.cancelled then job.waiting:kill() end
  else
    error(("job '%s' yielded outside process.run"):format(job.key), 0)
  end
end

local function start(self)
  while self.running < self.max and #self.queue > 0 do
    local job = table.remove(self.queue, 1)
    if job.state.cancelled then
      job.done, job.returns = true, table.pack(nil)
    else
      job.co = coroutine.create(job.fn)
      process.jobs[job.co] = job.state
      self.running = self.running + 1
      job.started = true
      resume(self, job)
    end
  end
end

-- Raises `err` in every suspended job (its clean-up runs), then to the
-- caller.
local function fail(self, err)
  -- First every job's process ends (a pytest still handling Ctrl-C would
  -- write into a cache its job is about to remove).
  if proc.interrupted() then
    proc.shutdown()
  else
    for _, job in pairs(self.jobs) do
      if job.waiting then
        job.waiting:kill()
        pcall(job.waiting.wait, job.waiting)
      end
    end
  end
  for _, job in pairs(self.jobs) do
    if job.co and not job.done and coroutine.status(job.co) == "suspended" then
      job.state.cancelled = tostring(err)
      job.waiting = nil
      if not coroutine.resume(job.co, process.RAISE, err) then coroutine.close(job.co) end
    end
  end
  error(err, 0)
end

-- One turn: start what may start, then wait for one process to end and
-- resume its job.
local function step(self)
  start(self)
  for _, job in pairs(self.jobs) do
    if job.failed then fail(self, job.failed) end
  end
  local handles, owners = {}, {}
  for _, job in pairs(self.jobs) do
    if job.waiting then
      handles[#handles + 1] = job.waiting
      owners[#handles] = job
    end
  end
  if #handles == 0 then return false end
  local ok, k, r = pcall(proc.wait_any, handles)
  if not ok then fail(self, k) end
  local job = owners[k]
  job.waiting = nil
  resume(self, job, r)
  if job.failed then fail(self, job.failed) end
  return true
end

-- Runs fn(...) in a coroutine of its own and returns what it returns, or
-- raises what it raised. The scheduler's loop runs there: the host stops
-- the main thread's Lua code at Ctrl-C (a hook that raises at the next
-- instruction), which would otherwise cut the jobs' clean-up short.
local function apart(fn, ...)
  local out = table.pack(coroutine.resume(coroutine.create(fn), ...))
  if not out[1] then error(out[2], 0) end
  return table.unpack(out, 2, out.n)
end

local result

---Runs jobs until the one under `key` has finished; returns what it
---returned. Raises what a job raised.
---@param key string
function M:result(key)
  return apart(result, self, key)
end

function result(self, key)
  local job = assert(self.jobs[key], key)
  while not job.done do
    if not step(self) and not job.done then
      start(self)
      if not job.done and not job.waiting and self.running == 0 and #self.queue == 0 then
        error(("job '%s' can never finish"):format(key), 0)
      end
    end
  end
  if job.failed then fail(self, job.failed) end
  return table.unpack(job.returns, 1, job.returns.n)
end

---Cancels the job under `key`: one not started never starts; a running
---one starts no process any more and the one it waits for is ended.
---@param key string
---@param reason string
function M:cancel(key, reason)
  local job = self.jobs[key]
  if not job or job.done then return end
  job.state.cancelled = reason
  if job.waiting then job.waiting:kill() end
end

local settle

---Runs until every cancelled job has unwound (so their processes and
---services are gone before anything else is shown).
function M:settle()
  return apart(settle, self)
end

function settle(self)
  while true do
    local pending = false
    for _, job in pairs(self.jobs) do
      if job.state.cancelled and job.started and not job.done then pending = true end
    end
    if not pending then return end
    step(self)
  end
end

---The keys of the jobs running now, in the order they were added.
---@param order string[]
---@return string[]
function M:running_keys(order)
  local out = {}
  for _, key in ipairs(order) do
    local job = self.jobs[key]
    if job and job.started and not job.done then out[#out + 1] = key end
  end
  return out
end

return M
