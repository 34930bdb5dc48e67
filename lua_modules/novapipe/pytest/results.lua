-- A tier's results, read from the events novapipe's pytest plugin sends
-- (python/novapipe_pytest.py): the counts, each test as data, what is
-- running now. The channel is read defensively: a test can write to the
-- descriptor too, so a line that is not JSON, is too long or has fields of
-- the wrong types is ignored and counted, never a traceback; fields are
-- data for reporters (which print through the masked sink), never text
-- trusted as it is.
local cjson = require "cjson"
local junit = require "novapipe.junit"
local lfs = require "lfs"

local M = {}

M.MAX_LINE = 1048576

---@class novapipe.TestResult
---@field id string pytest's node id
---@field tier? string
---@field file? string
---@field line? integer
---@field outcome "passed"|"failed"|"error"|"skipped"|"xfailed"|"xpassed"|"flaky"|"quarantined"
---@field durations? {setup: number, call: number, teardown: number}
---@field message? string a failure's or error's first line (or a skip's reason)
---@field location? string file:line where it failed
---@field longrepr? string the longer report, bounded by the plugin
---@field markers string[] of "security", "hipaa"
---@field hipaa string[] the sections of @pytest.mark.hipaa
---@field collect? boolean a collection error or skip, not a test
---@field also? string the call's outcome when its teardown then errored (outcome "error"): pytest counts both
---@field attempts? {outcome: string, message?: string, location?: string, longrepr?: string}[] with --reruns, a rerun test's every attempt, oldest first, the last the one whose outcome counts
---@field quarantine? {pattern: string, why: string, expires: string, outcome: string} the quarantine entry that kept this failure from failing its tier, and the outcome it had

-- Outcome names as events give them, and the count each goes to.
local COUNT_OF = { passed = "passed", failed = "failed", error = "errors", skipped = "skipped",
                   xfailed = "xfailed", xpassed = "xpassed", flaky = "flaky", quarantined = "quarantined" }
-- What the plugin may send: a test is quarantined here, never by it.
local SENT = { passed = true, failed = true, error = true, skipped = true, xfailed = true, xpassed = true, flaky = true }
M.COUNT_OF = COUNT_OF

local function str(v, max)
  if type(v) ~= "string" then return nil end
  if max and #v > max then return v:sub(1, max) end
  return v
end

local function list_of_strings(v)
  local out = {}
  if type(v) ~= "table" then return out end
  for i = 1, math.min(#v, 64) do
    if type(v[i]) == "string" then out[#out + 1] = str(v[i], 256) end
  end
  return out
end

-- A location relative to the working directory when it is under it (pytest
-- gives a failure's crash location as an absolute path).
local function relative(loc, cwd)
  if loc and cwd and loc:sub(1, #cwd + 1) == cwd .. "/" then return loc:sub(#cwd + 2) end
  return loc
end

-- A done event as a TestResult, or nil when it is not well formed.
local function test_of(ev, tier, cwd)
  local id, o = str(ev.id, 4096), ev.o
  if not id or not SENT[o] then return nil end
  local t = { id = id, tier = tier, outcome = o, file = str(ev.f, 4096), line = math.tointeger(ev.l),
              message = str(ev.m, 4096), location = relative(str(ev.at, 4096), cwd), longrepr = str(ev.r, 65536),
              markers = list_of_strings(ev.k), hipaa = list_of_strings(ev.h), collect = ev.collect == true,
              also = ev.also ~= "error" and SENT[ev.also] and ev.also or nil }
  if type(ev.a) == "table" then
    local attempts = {}
    for i = 1, math.min(#ev.a, 64) do
      local a = ev.a[i]
      if type(a) == "table" and (a.o == "failed" or a.o == "error") then
        attempts[#attempts + 1] = { outcome = a.o, message = str(a.m, 4096), location = relative(str(a.at, 4096), cwd),
                                    longrepr = str(a.r, 65536) }
      end
    end
    if #attempts > 0 then
      -- and the last attempt, the one whose outcome counts
      attempts[#attempts + 1] = { outcome = o == "flaky" and "passed" or o, message = t.message, location = t.location,
                                  longrepr = t.longrepr }
      t.attempts = attempts
    end
  end
  if type(ev.d) == "table" then
    local d = {}
    for i, k in ipairs({ "setup", "call", "teardown" }) do
      d[k] = type(ev.d[i]) == "number" and ev.d[i] >= 0 and ev.d[i] or 0
    end
    t.durations = d
  end
  return t
end

-- Adds a test's outcomes (and its teardown's, when that errored after the
-- call) to counts.
local function count(counts, t)
  for _, o in ipairs({ t.outcome, t.also }) do
    local kind = COUNT_OF[o]
    counts[kind] = counts[kind] + 1
    counts.tests = counts.tests + 1
  end
end

---The tests of a tier's results that `keep` keeps, with their counts and
---problems (failed and errored tests), as a tier's results give them.
---@param tests novapipe.TestResult[]
---@param keep fun(t: novapipe.TestResult): boolean
---@return {tests: novapipe.TestResult[], counts: novapipe.JUnitCounts, problems: novapipe.TestResult[]}
function M.subset(tests, keep)
  local out = { tests = {}, counts = junit.zero(), problems = {} }
  for _, t in ipairs(tests) do
    if keep(t) then
      out.tests[#out.tests + 1] = t
      count(out.counts, t)
      if t.outcome == "failed" or t.outcome == "error" then out.problems[#out.problems + 1] = t end
    end
  end
  return out
end

---A collector for one tier. on_progress(state), when given, is called
---after each event that changes the counts or what runs. quarantined(id),
---when given, returns the live quarantine entry of a test's node id (see
---novapipe.pytest.quarantine): a failed or errored test it covers gets the
---outcome "quarantined". st.counts count that; st.pytest_counts count
---as pytest does (what the JUnit XML holds).
---@param tier? string
---@param on_progress? fun(st: table)
---@param quarantined? fun(id: string): table|nil
function M.new(tier, on_progress, quarantined)
  local st = { tier = tier, collected = nil, done = 0, failed = 0, running = {}, tests = {},
               counts = junit.zero(), pytest_counts = junit.zero(), malformed = 0, ended = false, events = 0,
               cwd = lfs.currentdir() }
  local function bad()
    st.malformed = st.malformed + 1
  end
  ---Reads one line of the channel.
  function st.line(line)
    if type(line) ~= "string" or #line > M.MAX_LINE or line:sub(1, 1) ~= "{" then return bad() end
    local ok, ev = pcall(cjson.decode, line)
    if not ok or type(ev) ~= "table" or type(ev.e) ~= "string" then return bad() end
    st.events = st.events + 1
    if ev.e == "collected" then
      local n = math.tointeger(ev.n)
      if not n or n < 0 then return bad() end
      st.collected = n
    elseif ev.e == "start" then
      local id = str(ev.id, 4096)
      if not id then return bad() end
      st.running[id] = true
    elseif ev.e == "done" then
      local t = test_of(ev, tier, st.cwd)
      if not t then return bad() end
      st.running[t.id] = nil
      st.tests[#st.tests + 1] = t
      count(st.pytest_counts, t)
      local entry = quarantined and not t.collect and (t.outcome == "failed" or t.outcome == "error")
        and quarantined(t.id)
      if entry then
        t.quarantine = { pattern = entry.pattern, why = entry.why, expires = entry.expires, outcome = t.outcome }
        t.outcome, t.also = "quarantined", nil
      end
      count(st.counts, t)
      st.done = st.done + 1
      if t.outcome == "failed" or t.outcome == "error" then st.failed = st.failed + 1 end
    elseif ev.e == "end" then
      st.ended = true
      -- pytest's JUnit writer is done: the file can be taken while pytest exits
      st.junit_written = ev.junit == true
    else
      return bad()
    end
    if on_progress then on_progress(st) end
  end
  ---The tests running now, sorted.
  function st.running_now()
    local ids = {}
    for id in pairs(st.running) do ids[#ids + 1] = id end
    table.sort(ids)
    return ids
  end
  ---The failed and errored tests, in the order they ended.
  function st.problems()
    local out = {}
    for _, t in ipairs(st.tests) do
      if t.outcome == "failed" or t.outcome == "error" then out[#out + 1] = t end
    end
    return out
  end
  ---The node ids of collection errors.
  function st.collection_errors()
    local out = {}
    for _, t in ipairs(st.tests) do
      if t.collect and t.outcome == "error" then out[#out + 1] = t.id end
    end
    return out
  end
  return st
end

return M
