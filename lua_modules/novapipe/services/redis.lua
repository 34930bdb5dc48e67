-- A throwaway Redis for a test tier: Debian's redis-server listening on a
-- Unix socket (0700) in a private temporary directory only (no TCP port),
-- nothing saved to disk, REDIS_URL for the tier. stop() ends the server
-- and removes the directory, also after a failure, a timeout and Ctrl-C.
-- A REDIS_URL already in the environment is used as it is: no server.
local fs = require "novapipe.fs"
local lfs = require "lfs"
local proc = require "novapipe.proc"
local process = require "novapipe.process"
local shared = require "novapipe.services._server"
local time = require "novapipe.time"

local M = {}

M.description = "a throwaway Redis on a private Unix socket (REDIS_URL)"

local Service = {}
Service.__index = Service

---The environment the tier gets.
---@return table<string, string>
function Service:env()
  return { REDIS_URL = self.url, NOVAPIPE_WORKER_REDIS_URL = self.worker_url }
end

---Ends the server and removes its directory. Safe to call twice, and after
---Ctrl-C (then without starting any process).
function Service:stop()
  if self.stopped then return end
  self.stopped = true
  shared.stop(self.server, "TERM", self.dir)
end

---Makes the server as a new one would be for another run (novapipe watch
---keeps it): every key of every database goes (FLUSHALL). Returns true, or
---nil when it cannot serve `opts` (it is gone, it has too few databases
---for the workers, there is no redis-cli): then a new one is started.
---@param opts {workers?: integer}
---@return boolean|nil
function Service:reset(opts)
  if self.stopped or not self.server or not self.server:running() then return nil end
  if (opts.workers or 0) + 1 > self.databases then return nil end
  local cli = process.which("redis-cli")
  local r = cli and process.run({ cli, "-s", self.socket, "flushall" }, { stdin = "null" })
  if not r or r.code ~= 0 or not (r.stdout or ""):find("OK", 1, true) then return nil end
  self.worker_url = (opts.workers or 0) > 1 and self.url .. "?db={n}" or nil
  return true
end

Service.__close = Service.stop
Service.__gc = Service.stop

---Starts a server, or takes the environment's REDIS_URL. Returns the
---service or nil and one line saying what is missing.
---With xdist workers, each worker gets a database number of its own (the
---worker gwN number N + 1; 0 stays the tier's), which novapipe's plugin
---puts in its REDIS_URL.
---@param opts? {timeout?: number, workers?: integer}
---@return table|nil service {url, env(), stop()}
---@return string? error
function M.start(opts)
  opts = opts or {}
  local given = os.getenv("REDIS_URL")
  if given and given ~= "" then return shared.given("REDIS_URL", given) end
  local exe = process.which("redis-server")
  if not exe then return nil, "Redis is not installed; install it with: apt-get install redis-server" end
  local dir, err = require("novapipe.tmp").dir("novapipe-redis-")
  if not dir then return nil, err end
  local svc = setmetatable({ dir = dir, socket = dir .. "/redis.sock", log = dir .. "/server.log",
                             databases = math.max(16, (opts.workers or 0) + 1) }, Service)
  local server, perr = proc.spawn({ exe, "--port", "0", "--unixsocket", svc.socket, "--unixsocketperm", "700",
    "--dir", dir, "--save", "", "--appendonly", "no", "--daemonize", "no", "--logfile", svc.log,
    "--databases", tostring(svc.databases) },
    { stdin = "null", stdout = "null", stderr = "null", grace = 5 })
  if not server then
    svc:stop()
    return nil, "redis-server: " .. perr
  end
  svc.server = server
  -- Ready when the socket exists and answers PING.
  local deadline = time.now() + (opts.timeout or 30)
  local cli = process.which("redis-cli")
  while true do
    if lfs.symlinkattributes(svc.socket, "mode") == "socket" then
      if not cli then break end
      local r = process.run({ cli, "-s", svc.socket, "ping" }, { stdin = "null" })
      if r and r.code == 0 and (r.stdout or ""):find("PONG", 1, true) then break end
    end
    if not server:running() or time.now() > deadline then
      local why = (fs.read(svc.log) or ""):match("([^\n]*)\n?$") or ""
      svc:stop()
      return nil, "Redis did not start: " .. why
    end
    time.sleep(0.02)
  end
  svc.url = "unix://" .. svc.socket
  if (opts.workers or 0) > 1 then svc.worker_url = svc.url .. "?db={n}" end
  return svc
end

return M
