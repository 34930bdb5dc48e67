-- The record reporter: at the end of a run, its record (novapipe.run.record)
-- goes into .novapipe/runs/<start>-<pipeline>.json, the newest 20 kept, with
-- .novapipe/last-run.json a copy of the newest, and into the file --json
-- names. Through the run's sink: masked, atomic, owner-only, recorded.
-- The record built is left in ctx.record for the reporters after it.
local lfs = require "lfs"
local record = require "novapipe.run.record"
local time = require "novapipe.time"

local M = {}
M.__index = M

M.DIR = ".novapipe/runs"
M.LAST = record.LAST_RUN
M.KEEP = 20

---@param ctx novapipe.Context
function M.new(ctx)
  local sink = ctx.sink
  return setmetatable({ ctx = ctx, started = time.wall(), made = {},
                        mask = record.memo(function(s) return sink:mask_lines(s) end) }, M)
end

-- The secret for the failures' keys, made the first time one is needed
-- (nil for a run that keeps no record).
function M:key_secret()
  if self.secret == nil then
    self.secret = false
    local ctx = self.ctx
    if not (ctx.outputs and ctx.outputs.keep_record == false) then
      -- .novapipe first: sink:dir finishes a take-over of it cut short,
      -- which a file made inside a new .novapipe would stop
      local ok, err = ctx.sink:dir(".novapipe")
      local secret
      if ok then secret, err = record.secret(ctx.sink) end
      if secret then
        self.secret = secret
      else
        ctx.sink:error(("novapipe: no key for the run record's tests (%s): --last-failed cannot find them"):format(err))
      end
    end
  end
  return self.secret or nil
end

-- Each test as it ends: masked and made into the record's row now, while
-- pytest runs, not after it.
function M:test(stage_name, t)
  local list = self.made[stage_name]
  if not list then
    list = {}
    self.made[stage_name] = list
    -- libcrypto, which the reports' digests and the audit entry need at
    -- the end, is loaded now, while pytest runs (a failure to load is
    -- said then, by the first digest)
    if not self.loaded then
      self.loaded = true
      require("novapipe.digest").load()
    end
  end
  list[#list + 1] = record.test(t, stage_name, record.keyed(t) and self:key_secret() or nil, self.mask)
end

---The names of the run records in the runs directory, oldest first (links
---and anything not named as a record left out).
---@param dir string
---@return string[]
function M.names(dir)
  local names = {}
  for name in lfs.dir(dir) do
    if name:match("^%d+T%d+%-.+%.json$") and lfs.symlinkattributes(dir .. "/" .. name, "mode") == "file" then
      names[#names + 1] = name
    end
  end
  table.sort(names)
  return names
end

-- Removes all but the newest `keep` records of the runs directory.
local function prune(dir, keep)
  local names = M.names(dir)
  for i = 1, #names - keep do os.remove(dir .. "/" .. names[i]) end
end

function M:pipeline_end(_, outcome)
  local ctx = self.ctx
  local sink = ctx.sink
  local keep = not (ctx.outputs and ctx.outputs.keep_record == false)
  if keep then
    -- .novapipe first: sink:dir finishes a take-over of it cut short, which
    -- a file made inside a new .novapipe would stop
    local dok, derr = sink:dir(".novapipe")
    if not dok then
      sink:error(("novapipe: the run record was not written: .novapipe: %s"):format(derr))
      return
    end
  end
  local secret = keep and self:key_secret() or nil
  local addopts = os.getenv("PYTEST_ADDOPTS")
  local rec = record.build({ pipeline = ctx.name or "?", args = ctx.args, pytest_args = ctx.pytest_args,
                             pytest_addopts = addopts ~= "" and addopts or nil, secret = secret,
                             started = self.started, outcome = outcome, reports = sink:list(),
                             mask = self.mask, made = self.made })
  ctx.record = rec
  -- masked as it was built, each text once: written as it is
  local text = record.encode(rec)
  local function put(path, what)
    local ok, err = sink:write(path, text, what, { premasked = true })
    if not ok then sink:error(("novapipe: the run record was not written to %s: %s"):format(path, err)) end
    return ok
  end
  if ctx.outputs and ctx.outputs.json then put(ctx.outputs.json, "run record (--json)") end
  if not keep then return end
  local ok, err = sink:dir(M.DIR)
  if not ok then
    sink:error(("novapipe: the run record was not written to %s: %s"):format(M.DIR, err))
    return
  end
  if put(M.DIR .. "/" .. record.file_name(self.started, ctx.name or "run"), "run record") then
    put(M.LAST, "run record, the newest")
    pcall(prune, M.DIR, M.KEEP)
  end
end

return M
