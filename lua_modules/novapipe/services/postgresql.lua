-- A throwaway PostgreSQL for a test tier: initdb into a temporary directory,
-- a server listening on a Unix socket in that directory only (no TCP), a
-- fresh database, and DATABASE_URL for the tier. stop() ends the server and
-- removes the directory, also after Ctrl-C. With xdist workers, each gets
-- a database of its own (novapipe_test_gw0, ...), made from the first as a
-- template, which novapipe's plugin puts in the worker's DATABASE_URL: two
-- workers never create the same table in one database. The server's data
-- directory is on a memory file system when there is one (/dev/shm), with
-- fsync off: test data never reaches a disk (`postgresql.on_disk = true`
-- in novapipe.lua puts it under the temporary directory instead). reset()
-- makes a kept server as a new one would be (novapipe watch keeps one for
-- as long as it watches). PostgreSQL refuses to run as
-- root: then its programs run as the `postgres` user (Debian's package
-- creates it) through setpriv.
local lfs = require "lfs"
local proc = require "novapipe.proc"
local process = require "novapipe.process"
local shared = require "novapipe.services._server"
local time = require "novapipe.time"

local M = {}

M.description = "a throwaway PostgreSQL on a private Unix socket (DATABASE_URL)"

local DB = "novapipe_test"

---The directory of PostgreSQL's server programs (Debian keeps them out of
---PATH), the newest version first.
---@return string|nil
function M.bindir()
  local env = os.getenv("NOVAPIPE_PG_BINDIR")
  if env and env ~= "" then return env end
  local versions = {}
  if lfs.attributes("/usr/lib/postgresql", "mode") == "directory" then
    for v in lfs.dir("/usr/lib/postgresql") do
      if tonumber(v) and lfs.attributes("/usr/lib/postgresql/" .. v .. "/bin/initdb") then
        versions[#versions + 1] = tonumber(v)
      end
    end
  end
  table.sort(versions)
  if #versions > 0 then return ("/usr/lib/postgresql/%d/bin"):format(versions[#versions]) end
  local initdb = process.which("initdb")
  return initdb and initdb:match("^(.*)/") or nil
end

local function is_root()
  for line in io.lines("/proc/self/status") do
    local uid = line:match("^Uid:%s+(%d+)")
    if uid then return uid == "0" end
  end
  return false
end

local function tail(path, n)
  local lines = {}
  local f = io.open(path, "rb")
  if not f then return "" end
  for line in f:lines() do
    lines[#lines + 1] = line
    if #lines > n then table.remove(lines, 1) end
  end
  f:close()
  return table.concat(lines, "\n")
end

-- The least a memory file system must have free to take the server's data
-- (initdb's files are some 40 MB; the tests' data comes on top).
M.MEMORY_NEEDED = 256 * 1024 * 1024

---A directory on a memory file system for the server's data, or nil: /dev/shm
---when it is a tmpfs with M.MEMORY_NEEDED free (a container's default
---/dev/shm of 64 MB is too small, and then the data goes to $TMPDIR).
---@return string|nil
function M.memory_dir()
  local shm = "/dev/shm"
  local ok, lines = pcall(io.lines, "/proc/self/mounts")
  if not ok then return nil end
  for line in lines do
    local at, kind = line:match("^%S+ (%S+) (%S+)")
    if at == shm and kind == "tmpfs" then
      local free = require("novapipe.fs").space(shm)
      return free and free >= M.MEMORY_NEEDED and shm or nil
    end
  end
  return nil
end

local Service = {}
Service.__index = Service

---Ends the server and removes its directory. Safe to call twice, and after
---Ctrl-C (then without starting any process).
function Service:stop()
  if self.stopped then return end
  self.stopped = true
  -- SIGINT is PostgreSQL's fast shutdown.
  shared.stop(self.server, "INT", self.dir)
end

Service.__close = Service.stop
Service.__gc = Service.stop

---The environment the tier gets.
---@return table<string, string>
function Service:env()
  return { DATABASE_URL = self.url, NOVAPIPE_WORKER_DATABASE_URL = self.worker_url }
end

---Starts a server, or takes the environment's DATABASE_URL. Returns the
---service ({url, dir, env(), stop()}) or nil and one line saying what is
---missing.
---@param opts? {timeout?: number, workers?: integer, on_disk?: boolean}
---@return table|nil service
---@return string? error
function M.start(opts)
  opts = opts or {}
  local given = os.getenv("DATABASE_URL")
  if given and given ~= "" then return shared.given("DATABASE_URL", given) end
  local bin = M.bindir()
  if not bin or not lfs.attributes(bin .. "/initdb") or not lfs.attributes(bin .. "/postgres") then
    return nil, ("PostgreSQL is not installed%s; install it with: apt-get install postgresql")
      :format(bin and (" (no initdb and postgres in " .. bin .. ")") or "")
  end
  local root = is_root()
  local as = {}
  if root then
    if not process.which("setpriv") then return nil, "setpriv is missing; install it with: apt-get install util-linux" end
    -- --pdeathsig: changing credentials clears the parent-death signal
    -- novapipe gave the child; setpriv sets it again after the change.
    as = { "setpriv", "--reuid=postgres", "--regid=postgres", "--clear-groups", "--pdeathsig", "KILL", "--" }
  end
  local tmp = require("novapipe.tmp")
  local memory = not opts.on_disk and M.memory_dir() or nil
  local dir, err = nil, nil
  if memory then dir = tmp.dir("novapipe-pg-", memory) end
  if not dir then dir, err = tmp.dir("novapipe-pg-") end
  if not dir then return nil, err end
  local svc = setmetatable({ dir = dir, data = dir .. "/data", log = dir .. "/server.log",
                             in_memory = memory ~= nil and dir:sub(1, #memory + 1) == memory .. "/" }, Service)
  if root then
    local r = process.run({ "chown", "postgres:postgres", dir })
    if not r or r.code ~= 0 then
      svc:stop()
      return nil, "cannot give the PostgreSQL directory to the postgres user (is there one? apt-get install postgresql)"
    end
  end
  local function run(argv)
    local full = {}
    for _, a in ipairs(as) do full[#full + 1] = a end
    for _, a in ipairs(argv) do full[#full + 1] = a end
    return process.run(full, { stdin = "null", cwd = dir })
  end
  local r, serr = run({ bin .. "/initdb", "-D", svc.data, "-U", "postgres", "-A", "trust", "-E", "UTF8",
                        "--no-sync", "--no-instructions" })
  if not r or r.code ~= 0 then
    svc:stop()
    return nil, "initdb failed: " .. (serr or ((r.stderr or "") .. (r.stdout or "")):gsub("%s+$", ""))
  end
  local argv = {}
  for _, a in ipairs(as) do argv[#argv + 1] = a end
  for _, a in ipairs({ bin .. "/postgres", "-D", svc.data, "-k", dir, "-c", "listen_addresses=",
                       "-c", "fsync=off", "-c", "full_page_writes=off", "-c", "synchronous_commit=off",
                       -- shared memory segments in the data directory, which goes with
                       -- it, even after kill -9 (not in /dev/shm, where they would stay)
                       "-c", "dynamic_shared_memory_type=mmap" }) do
    argv[#argv + 1] = a
  end
  local server, perr = proc.spawn(argv, { stdin = "null", stdout = { file = svc.log }, stderr = "stdout", grace = 5 })
  if not server then
    svc:stop()
    return nil, perr
  end
  svc.server = server
  -- Ready when it answers on the socket.
  local deadline = time.now() + (opts.timeout or 30)
  while true do
    local pr = process.run({ bin .. "/pg_isready", "-q", "-h", dir, "-U", "postgres" }, { stdin = "null" })
    if pr and pr.code == 0 then break end
    if not server:running() or time.now() > deadline then
      local why = tail(svc.log, 5)
      svc:stop()
      return nil, "PostgreSQL did not start: " .. why
    end
    time.sleep(0.05)
  end
  svc.bin, svc.on_disk = bin, opts.on_disk or false
  local ok, derr = svc:databases(opts.workers)
  if not ok then
    svc:stop()
    return nil, derr
  end
  svc.url = ("postgresql://postgres@/%s?host=%s"):format(DB, dir)
  return svc
end

-- psql on the server's socket, as its superuser, stopping at the first
-- error: one command a -c (each its own transaction).
function Service:psql(database, commands, extra)
  local argv = { self.bin .. "/psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", self.dir, "-U", "postgres",
                 "-d", database }
  for _, a in ipairs(extra or {}) do argv[#argv + 1] = a end
  for _, c in ipairs(commands) do
    argv[#argv + 1] = "-c"
    argv[#argv + 1] = c
  end
  local r, err = process.run(argv, { stdin = "null" })
  if not r or r.code ~= 0 then return nil, err or ((r.stderr or ""):gsub("%s+$", "")) end
  return r.stdout or ""
end

-- Makes the tier's database and, for xdist workers, one a worker from it
-- as a template. Returns true, or nil and why.
function Service:databases(workers)
  local r = process.run({ self.bin .. "/createdb", "-h", self.dir, "-U", "postgres", DB }, { stdin = "null" })
  if not r or r.code ~= 0 then return nil, "createdb failed: " .. (r and r.stderr or "") end
  self.worker_url = nil
  if (workers or 0) > 1 then
    local sql = {}
    for w = 0, workers - 1 do sql[#sql + 1] = ("CREATE DATABASE %s_gw%d TEMPLATE %s"):format(DB, w, DB) end
    local ok, err = self:psql(DB, sql)
    if not ok then return nil, "cannot create the workers' databases: " .. err end
    self.worker_url = ("postgresql://postgres@/%s_{worker}?host=%s"):format(DB, self.dir)
  end
  return true
end

---Makes the server as a new one would be for another run (novapipe watch
---keeps it): every database but postgres and the templates is dropped,
---however the tests made it, and the tier's databases are made again.
---What a test changed outside them (a role, the postgres database) stays.
---Returns true, or nil when the server cannot serve `opts` (it is gone;
---`on_disk` changed): then a new one is started instead.
---@param opts {workers?: integer, on_disk?: boolean}
---@return boolean|nil
function Service:reset(opts)
  if self.stopped or not self.server or not self.server:running()
    or (opts.on_disk or false) ~= self.on_disk then return nil end
  local list = self:psql("postgres", { "SELECT datname FROM pg_database WHERE datname NOT IN "
    .. "('postgres', 'template0', 'template1') ORDER BY 1" }, { "-A", "-t" })
  if not list then return nil end
  -- the sessions left on them ended first (DROP DATABASE waits a few
  -- seconds for them to go); DROP ... WITH (FORCE) would do both, but only
  -- from PostgreSQL 13
  local drops = { "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname NOT IN "
    .. "('postgres', 'template0', 'template1') AND pid <> pg_backend_pid()" }
  for name in list:gmatch("[^\n]+") do
    drops[#drops + 1] = ('DROP DATABASE "%s"'):format((name:gsub('"', '""')))
  end
  if #drops > 1 and not self:psql("postgres", drops) then return nil end
  return self:databases(opts.workers)
end

return M
