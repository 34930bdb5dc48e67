-- Services are a registry (novapipe.services.<name>): a tier names them,
-- the runner starts and stops them without knowing which they are. Redis,
-- the second one, end to end: started, used by a test, gone after success,
-- failure, timeout and Ctrl-C.
local fs = require "novapipe.fs"
local lfs = require "lfs"
local proc = require "novapipe.proc"
local time = require "novapipe.time"
local H = require "spec.support.h"

local TESTS = "backend/app/tests/"

-- A test that talks to the tier's Redis over its socket (RESP by hand:
-- no client library needed), then does what `then_` says.
local function redis_test(then_)
  return ([[
import os, socket, subprocess, time

def test_redis():
    url = os.environ["REDIS_URL"]
    assert url.startswith("unix://")
    s = socket.socket(socket.AF_UNIX)
    s.connect(url[len("unix://"):])
    s.sendall(b"SET k v\r\nGET k\r\n")
    data = b""
    while b"$1\r\nv\r\n" not in data:
        data += s.recv(100)
    assert data.startswith(b"+OK")
    %s
]]):format(then_)
end

-- novapipe's Redis servers running now: {pid = socket directory}.
local function servers()
  local out = {}
  for pid in lfs.dir("/proc") do
    local cmd = pid:match("^%d+$") and H.read("/proc/" .. pid .. "/cmdline") or ""
    -- redis-server sets its title to "redis-server unixsocket:PATH"
    local dir = cmd:match("^%S*redis%-server unixsocket:([^%z]*novapipe%-redis%-[^%z]*)/redis%.sock")
    if dir then out[tonumber(pid)] = dir end
  end
  return out
end

local function count(t)
  local n = 0
  for _ in pairs(t) do n = n + 1 end
  return n
end

describe("services", function()
  local keep = H.temporaries(after_each)
  local function project(test)
    local root = keep(H.tree({
      ["novapipe.lua"] = "return { tiers = { standalone = { services = { 'redis' } } } }\n",
      [TESTS .. "standalone/test_r.py"] = test,
    }))
    local tmp = root .. "/tmp"
    assert(fs.mkdir_p(tmp))
    return root, tmp
  end
  local function run(root, tmp, args)
    local argv = { "-C", root, "--no-color", "run", "run_tests", "--standalone" }
    for _, a in ipairs(args or {}) do argv[#argv + 1] = a end
    return H.novapipe(argv, { env = { REDIS_URL = false, TMPDIR = tmp } })
  end
  local function nothing_left(tmp)
    assert.equal(0, count(servers()), "a Redis of novapipe's is still running")
    for name in lfs.dir(tmp) do assert.is_nil(name:find("^novapipe%-redis"), name .. " was left") end
  end

  it("start Redis for a tier that names it, and remove it after the tier passes", function()
    local root, tmp = project(redis_test("pass"))
    local r = run(root, tmp)
    assert.equal(0, r.code, r.stdout .. r.stderr)
    assert.matches("1 passed", r.stdout)
    nothing_left(tmp)
  end)

  it("remove Redis after a failing tier", function()
    local root, tmp = project(redis_test("assert False"))
    assert.equal(1, run(root, tmp).code)
    nothing_left(tmp)
  end)

  it("remove Redis after a tier timed out", function()
    local root, tmp = project(redis_test("time.sleep(60)"))
    local r = run(root, tmp, { "--timeout", "3" })
    assert.equal(1, r.code)
    assert.matches("timed out after 3s", r.stdout)
    nothing_left(tmp)
  end)

  it("remove Redis after Ctrl-C", function()
    local marker = H.marker()
    local root, tmp = project(redis_test(("subprocess.run(['sleep', '%s'])"):format(marker)))
    local p = assert(proc.spawn({ H.bin, "-C", root, "run", "run_tests", "--standalone" },
      { stdout = "capture", stderr = "capture", env = { REDIS_URL = false, TMPDIR = tmp } }))
    local deadline = time.now() + 60
    while not H.find_process("sleep", marker) and time.now() < deadline do time.sleep(0.05) end
    assert.is_number(H.find_process("sleep", marker), "the test never started")
    assert.equal(1, count(servers()))
    p:kill("INT")
    assert.equal(130, p:wait().code)
    nothing_left(tmp)
  end)

  it("use the environment's REDIS_URL as it is, starting nothing", function()
    local root, tmp = project("import os\ndef test_url():\n    assert os.environ['REDIS_URL'] == 'redis://elsewhere:6379/3'\n")
    local r = H.novapipe({ "-C", root, "run", "run_tests", "--standalone" },
      { env = { REDIS_URL = "redis://elsewhere:6379/3", TMPDIR = tmp } })
    assert.equal(0, r.code, r.stdout)
    nothing_left(tmp)
  end)

  it("name the registry's services when a tier asks for one it does not hold", function()
    local root = keep(H.tree({ ["novapipe.lua"] = "return { tiers = { venv = { services = { 'kafka' } } } }\n" }))
    assert(fs.mkdir_p(root .. "/" .. TESTS))
    local r = H.novapipe({ "-C", root, "run", "run_tests" })
    assert.equal(2, r.code)
    assert.matches("asks for service 'kafka'; novapipe provides: postgresql, redis", r.stderr)
  end)
end)
