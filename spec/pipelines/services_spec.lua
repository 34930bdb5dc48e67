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

-- novapipe's Redis servers running now (those under `under`, when given:
-- other specs may run at the same time): {pid = socket directory}.
local function servers(under)
  local out = {}
  for pid in lfs.dir("/proc") do
    local cmd = pid:match("^%d+$") and H.read("/proc/" .. pid .. "/cmdline") or ""
    -- redis-server sets its title to "redis-server unixsocket:PATH"
    local dir = cmd:match("^%S*redis%-server unixsocket:([^%z]*novapipe%-redis%-[^%z]*)/redis%.sock")
    if dir and (not under or dir:sub(1, #under + 1) == under .. "/") then out[tonumber(pid)] = dir end
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
    assert.equal(0, count(servers(tmp)), "a Redis of novapipe's is still running")
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
    assert.equal(1, count(servers(tmp)))
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

  -- Every test creates the same table and keys: two xdist workers sharing
  -- a database would collide (the table exists, a key is the other's).
  local SAME_TABLE = [[
import os, socket, time
import psycopg2
import pytest

@pytest.mark.parametrize("n", range(4))
def test_same_table(n):
    worker = os.environ["PYTEST_XDIST_WORKER"]
    url = os.environ["DATABASE_URL"]
    assert url.startswith("postgresql://postgres@/novapipe_test_%s?host=" % worker), url
    with psycopg2.connect(url) as db, db.cursor() as c:
        c.execute("CREATE TABLE patients (id int PRIMARY KEY)")
        c.execute("INSERT INTO patients VALUES (1)")
        db.commit()
        time.sleep(0.1)
        c.execute("SELECT count(*) FROM patients")
        assert c.fetchone()[0] == 1
        c.execute("DROP TABLE patients")
    redis = os.environ["REDIS_URL"]
    assert redis.endswith("?db=%d" % (int(worker[2:]) + 1)), redis
    s = socket.socket(socket.AF_UNIX)
    s.connect(redis[len("unix://"):].split("?")[0])
    db = redis.split("db=")[1].encode()
    s.sendall(b"SELECT " + db + b"\r\nSET owner " + worker.encode() + b" NX\r\nGET owner\r\n")
    data = b""
    while data.count(b"\r\n") < 4:
        data += s.recv(100)
    assert data.endswith(worker.encode() + b"\r\n"), data
    with open(os.path.join(os.environ["NOVAPIPE_SPEC_OUT"], worker), "w") as f:
        f.write(url.split("host=")[1])
]]

  it("give each xdist worker a database of its own on both servers, the data in memory unless on_disk", function()
    local pg = require "novapipe.services.postgresql"
    local root = keep(H.tree({
      ["novapipe.lua"] = "return { tiers = { standalone = { services = { 'postgresql', 'redis' } } } }\n",
      [TESTS .. "standalone/test_a.py"] = SAME_TABLE,
      [TESTS .. "standalone/test_b.py"] = SAME_TABLE,
    }))
    local tmp, out = root .. "/tmp", root .. "/out"
    assert(fs.mkdir_p(tmp))
    assert(fs.mkdir_p(out))
    local env = { REDIS_URL = false, DATABASE_URL = false, TMPDIR = tmp, NOVAPIPE_SPEC_OUT = out }
    local r = H.novapipe({ "-C", root, "--no-color", "run", "run_tests", "--standalone", "-p", "2" }, { env = env })
    assert.equal(0, r.code, r.stdout .. r.stderr)
    assert.matches("8 passed", r.stdout)
    local hosts = {}
    for _, w in ipairs({ "gw0", "gw1" }) do hosts[#hosts + 1] = assert(H.read(out .. "/" .. w), w .. " ran no test") end
    assert.equal(hosts[1], hosts[2])
    local memory = pg.memory_dir()
    assert.equal((memory or tmp) .. "/", hosts[1]:sub(1, #(memory or tmp) + 1))
    assert.is_nil(lfs.attributes(hosts[1]), "the server's directory was left")
    nothing_left(tmp)
    -- on disk when the project says so (in $TMPDIR, which the postgres
    -- user must be able to reach when novapipe runs as root)
    assert(fs.chmod(root, "0711"))
    assert(fs.chmod(tmp, "0711"))
    assert(fs.atomic_write(root .. "/novapipe.lua",
      "return { postgresql = { on_disk = true }, tiers = { standalone = { services = { 'postgresql', 'redis' } } } }\n"))
    r = H.novapipe({ "-C", root, "--no-color", "run", "run_tests", "--standalone", "-p", "2" }, { env = env })
    assert.equal(0, r.code, r.stdout .. r.stderr)
    assert.equal(tmp .. "/", assert(H.read(out .. "/gw0")):sub(1, #tmp + 1))
  end)

  it("leave a DATABASE_URL of the user's alone under xdist", function()
    local root, tmp = project([[
import os
def test_url():
    assert os.environ["PYTEST_XDIST_WORKER"]
    assert os.environ["DATABASE_URL"] == "postgresql://me@db.internal/mine"
    assert "NOVAPIPE_WORKER_DATABASE_URL" not in os.environ
]])
    assert(fs.atomic_write(root .. "/novapipe.lua", "return { tiers = { standalone = { services = { 'postgresql' } } } }\n"))
    local r = H.novapipe({ "-C", root, "run", "run_tests", "--standalone", "-p", "2" },
      { env = { DATABASE_URL = "postgresql://me@db.internal/mine", TMPDIR = tmp } })
    assert.equal(0, r.code, r.stdout)
  end)
end)
