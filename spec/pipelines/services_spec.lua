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

  it("kept in a pool (novapipe watch's), are lent once, reset as new between tiers, replaced when dead, stopped at the end", function()
    -- in a novapipe of its own, so the environment's DATABASE_URL and
    -- REDIS_URL cannot stand in for the servers
    local tmp = keep(H.tmpdir())
    local script = tmp .. "/pool.lua"
    H.write(script, [==[
local pool = require("novapipe.services._pool").new()
local pg, redis = require("novapipe.services.postgresql"), require("novapipe.services.redis")
local process = require("novapipe.process")
local lfs = require("lfs")
local function say(...) io.write(table.concat({ ... }, " "), "\n") end
local function psql(svc, db, sql)
  local r = assert(process.run({ pg.bindir() .. "/psql", "-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h", svc.dir,
    "-U", "postgres", "-d", db, "-c", sql }, { stdin = "null" }))
  return r.code == 0 and (r.stdout:gsub("%s+$", "")) or ("error: " .. r.stderr:gsub("%s+$", ""))
end
local function cli(svc, ...)
  local r = assert(process.run({ "redis-cli", "-s", svc.socket, ... }, { stdin = "null" }))
  return (r.stdout:gsub("%s+$", ""))
end
local a = assert(pool:take("postgresql", pg.start, { workers = 2 }))
say("worker url", tostring(a.worker_url ~= nil))
psql(a, "novapipe_test", "CREATE TABLE left_behind (x int)")
psql(a, "novapipe_test", "CREATE DATABASE made_by_a_test")
-- lent out: a second tier at once gets a second server
local b = assert(pool:take("postgresql", pg.start, {}))
say("second server", tostring(b ~= a and b.dir ~= a.dir))
pool:give_back(a)
pool:give_back(b)
local again = assert(pool:take("postgresql", pg.start, {}))
say("same server", tostring(again == a))
say("databases", psql(a, "postgres", "SELECT string_agg(datname, ',' ORDER BY datname) FROM pg_database"))
say("table", psql(a, "novapipe_test", "SELECT count(*) FROM pg_tables WHERE tablename = 'left_behind'"))
say("worker url", tostring(a.worker_url ~= nil))
pool:give_back(a)
-- a server that died is replaced
b.server:kill("KILL")
b.server:wait()
local c = assert(pool:take("postgresql", pg.start, {}))
local d = assert(pool:take("postgresql", pg.start, {}))
say("dead replaced", tostring(c == a or d == a), tostring(c ~= b and d ~= b), tostring(lfs.attributes(b.dir) == nil))
local r = assert(pool:take("redis", redis.start, {}))
cli(r, "set", "k", "v")
cli(r, "-n", "3", "set", "k3", "v")
pool:give_back(r)
assert(pool:take("redis", redis.start, {}) == r)
say("redis keys", cli(r, "dbsize"), cli(r, "-n", "3", "dbsize"))
pool:give_back(r)
-- more workers than its databases: a new Redis
local r2 = assert(pool:take("redis", redis.start, { workers = 40 }))
say("bigger redis", tostring(r2 ~= r), tostring(lfs.attributes(r.dir) == nil))
local dirs = { a.dir, c.dir, d.dir, r2.dir }
pool:close()
local left = 0
for _, dir in ipairs(dirs) do if lfs.attributes(dir) then left = left + 1 end end
say("left after close", tostring(left))
]==])
    local r = H.novapipe({ "exec", script }, { env = { DATABASE_URL = false, REDIS_URL = false, TMPDIR = tmp } })
    assert.equal(0, r.code, r.stdout .. r.stderr)
    assert.equal(table.concat({
      "worker url true",
      "second server true",
      "same server true",
      "databases novapipe_test,postgres,template0,template1",
      "table 0",
      "worker url false",
      "dead replaced true true true",
      "redis keys 0 0",
      "bigger redis true true",
      "left after close 0",
      "" }, "\n"), r.stdout)
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
