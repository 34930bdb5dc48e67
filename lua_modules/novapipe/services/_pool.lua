-- Services kept for longer than a tier: novapipe watch keeps the servers
-- its runs start (a throwaway PostgreSQL, a Redis) for as long as it
-- watches, instead of starting and removing one for each run of a tier.
-- A tier takes a server from the pool, reset to what a new one would be
-- (service:reset(opts): PostgreSQL drops and remakes its databases, Redis
-- forgets every key), and gives it back when it ends; a server that is
-- lent out is not lent again (two tiers at once get two), and one that
-- cannot be reset (it died, it is too small for the run's xdist workers)
-- is stopped and replaced. Closing the pool stops every server it holds,
-- also after Ctrl-C.
local M = {}
M.__index = M

---@class novapipe.ServicePool
---@field held {name: string, service: table, busy: boolean}[]

---@return novapipe.ServicePool
function M.new()
  return setmetatable({ held = {} }, M)
end

---A server of the service `name` for a tier: a kept one reset, or a new
---one (start(opts)), lent until give_back. Returns it, or nil and why.
---@param name string
---@param start fun(opts: table): table|nil, string?
---@param opts table the service's start options (workers, on_disk)
---@return table|nil service
---@return string? error
function M:take(name, start, opts)
  for _, h in ipairs(self.held) do
    if h.name == name and not h.busy then
      -- lent before the reset: a reset runs processes, during which
      -- another tier at once takes from the pool too
      h.busy = true
      -- (a service without reset is one novapipe did not start: the
      -- environment's DATABASE_URL, kept as it is)
      local ok = h.service.reset == nil or h.service:reset(opts)
      if ok then return h.service end
      -- (by identity: the list may have changed while the reset ran)
      for j, other in ipairs(self.held) do
        if other == h then
          table.remove(self.held, j)
          break
        end
      end
      h.service:stop()
      break
    end
  end
  local svc, err = start(opts)
  if not svc then return nil, err end
  self.held[#self.held + 1] = { name = name, service = svc, busy = true }
  return svc
end

---Takes back a server take lent: it stays for the next tier.
---@param svc table
function M:give_back(svc)
  for _, h in ipairs(self.held) do
    if h.service == svc then h.busy = false end
  end
end

---Whether the pool lent `svc` (a server a tier must give back, not stop).
---@param svc table
---@return boolean
function M:holds(svc)
  for _, h in ipairs(self.held) do
    if h.service == svc then return true end
  end
  return false
end

---Stops every server the pool holds, the last started first.
function M:close()
  for i = #self.held, 1, -1 do
    local h = self.held[i]
    self.held[i] = nil
    h.service:stop()
  end
end

M.__close = M.close

return M
