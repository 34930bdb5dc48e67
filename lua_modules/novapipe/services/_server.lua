-- What the bundled services share: ending a server of theirs, and the
-- service that stands for a server the user already has.
local fs = require "novapipe.fs"
local proc = require "novapipe.proc"

local M = {}

---Ends `server` (a novapipe.Process) with `signal` (the server's own clean
---shutdown), KILL after 10 s, then removes `dir`. After Ctrl-C it starts no
---process and waits for nothing: every tree is ended at once.
---@param server? novapipe.Process
---@param signal string
---@param dir? string
function M.stop(server, signal, dir)
  if server then
    if proc.interrupted() then
      proc.shutdown()
    elseif server:running() then
      server:kill(signal)
      if not server:wait(10) then
        server:kill("KILL")
        server:wait()
      end
    end
  end
  if dir then fs.rmtree(dir) end
end

---A service for a server the environment names (DATABASE_URL, REDIS_URL):
---nothing to start or stop; the tier gets the variable as it is.
---@param var string
---@param url string
function M.given(var, url)
  return { url = url, env = function() return { [var] = url } end, stop = function() end }
end

return M
