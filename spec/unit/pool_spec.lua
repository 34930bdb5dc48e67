-- novapipe.services._pool under tiers at once: jobs (novapipe.run.jobs)
-- take from one pool at the same time, while a reset runs a process (a
-- `sleep` standing for psql); the servers are stand-ins that count.
local jobs = require "novapipe.run.jobs"
local process = require "novapipe.process"
local Pool = require "novapipe.services._pool"

-- A start function making stand-in servers; `fail` names the ids whose
-- reset fails.
local function servers(fail)
  local made = {}
  local function start()
    local s = { id = #made + 1 }
    function s:reset()
      process.run({ "sleep", "0.2" }, { stdin = "null" })
      return not (fail and fail[self.id]) or nil
    end
    function s:stop() self.stopped = (self.stopped or 0) + 1 end
    made[#made + 1] = s
    return s
  end
  return start, made
end

-- Two jobs taking a server at once: what each got.
local function take_at_once(pool, start)
  local got = {}
  local sched = jobs.new(2)
  sched:add("x", function() got.x = pool:take("pg", start, {}) return true end)
  sched:add("y", function() got.y = pool:take("pg", start, {}) return true end)
  sched:result("x")
  sched:result("y")
  return got
end

describe("the pool of kept servers, taken from by tiers at once", function()
  it("lends a server to one tier at a time, even while its reset runs", function()
    local pool = Pool.new()
    local start, made = servers()
    local a, b = pool:take("pg", start, {}), pool:take("pg", start, {})
    pool:give_back(a)
    pool:give_back(b)
    local got = take_at_once(pool, start)
    assert.are_not.equal(got.x, got.y)
    assert.equal(2, #made, "the two kept servers serve, no third is started")
    pool:close()
    for _, s in ipairs(made) do assert.equal(1, s.stopped) end
  end)

  it("stops and drops only the server whose reset failed, and keeps the other", function()
    local pool = Pool.new()
    local start, made = servers({ [1] = true })
    local a, b = pool:take("pg", start, {}), pool:take("pg", start, {})
    pool:give_back(a)
    pool:give_back(b)
    local got = take_at_once(pool, start)
    -- server 1 failed its reset: stopped once, replaced by a new one (3)
    assert.equal(1, made[1].stopped)
    assert.is_nil(made[2].stopped)
    assert.equal(3, #made)
    local ids = { got.x.id, got.y.id }
    table.sort(ids)
    assert.same({ 2, 3 }, ids)
    assert.is_false(pool:holds(made[1]))
    pool:close()
    assert.equal(1, made[2].stopped)
    assert.equal(1, made[3].stopped)
    assert.equal(1, made[1].stopped, "not stopped twice")
  end)
end)
