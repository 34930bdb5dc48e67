-- Temporary directories that say whose they are, and the sweep that removes
-- those of novapipe processes that died without cleaning up (SIGKILL, a
-- power cut): a PostgreSQL data directory or a JUnit file holding test
-- output should not outlive its run by more than the next run's start.
--
-- A directory is named <prefix><pid>.<start>-XXXXXX, where start is the
-- process's start time (proc.stat, from /proc/<pid>/stat), so a process
-- that reuses the pid is not taken for its owner.
local fs = require "novapipe.fs"
local lfs = require "lfs"
local proc = require "novapipe.proc"

local M = {}

-- A process's start time (clock ticks since boot, as text), or nil when
-- there is no such process (or no /proc). `pid` may be text from a name.
local function start_time(pid)
  pid = math.tointeger(tonumber(pid))
  if not pid or pid <= 0 or pid > 0x7fffffff then return nil end
  local st = proc.stat(pid)
  return st and tostring(st.start) or nil
end

local own -- this process's "<pid>.<start>"

local function tag()
  if not own then
    local pid = proc.self().pid
    own = ("%d.%s"):format(pid, start_time(pid) or "0")
  end
  return own
end

local function tmpdir()
  local t = os.getenv("TMPDIR")
  return (t and t ~= "") and t or "/tmp"
end

---A new directory (0700) under `under` (default $TMPDIR), named for this
---process. The sweep looks in $TMPDIR and in M.ALSO.
---@param prefix string such as "novapipe-junit-"
---@param under? string
---@return string|nil path
---@return string? error
function M.dir(prefix, under)
  return fs.mkdtemp(prefix .. tag() .. "-", under)
end

---Where else M.dir is given directories (the PostgreSQL data on a memory
---file system), for the sweep.
M.ALSO = { "/dev/shm" }

---Removes the directories M.dir made for processes that are gone (this
---user's, or anyone's when root), in `root` ($TMPDIR by default). Without
---/proc it does nothing: it could not tell a live owner from a dead one.
---Without `root`, $TMPDIR and the directories in M.ALSO.
---@param root? string
---@return string[] removed
function M.sweep(root)
  local removed = {}
  local me = proc.self()
  if not start_time(me.pid) then return removed end
  local uid = me.uid
  local roots = root and { root } or { tmpdir(), table.unpack(M.ALSO) }
  for _, at in ipairs(roots) do
    local ok, iter, state = pcall(lfs.dir, at)
    if ok then
      for name in iter, state do
        local pid, start = name:match("^novapipe%-%w+%-(%d+)%.(%d+)%-%w+$")
        if pid and start_time(pid) ~= start then
          local path = at .. "/" .. name
          local a = lfs.symlinkattributes(path)
          if a and a.mode == "directory" and (a.uid == uid or uid == 0) and fs.rmtree(path) then
            removed[#removed + 1] = path
          end
        end
      end
    end
  end
  return removed
end

return M
