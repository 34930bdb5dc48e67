-- The guard: while a run is under way, Lua's own ways out lead to the
-- run's sink, so that a stage, a reporter or a novapipe.lua that uses them
-- by mistake cannot write unmasked.
--
--   print, io.write, io.stdout, io.stderr   lines, masked, on the console
--                                            (standard error for io.stderr)
--   io.open(path, "w"/"a"), io.output(path) a file written through the sink
--                                            when it is closed: masked,
--                                            atomic, owner-only, recorded
--   io.open(path, "r+"/"w+"/"a+")           refused (nil and a message)
--   novapipe.fs's atomic_write, append,     the sink's masked writes
--   writer and copy
--   os.execute, io.popen                     refused: a child started so
--                                            writes to the terminal past
--                                            the masker (novapipe.process
--                                            runs children through it)
--
-- Reading stays as it is. The few writes that must stay exact (migrate's
-- moves, its undo record, the audit log) use the sink's raw writers.
local fs = require "novapipe.fs"
local sink_mod = require "novapipe.run.sink"

local M = {}

local saved = nil -- what install replaced, restored by uninstall
local open_files = setmetatable({}, { __mode = "k" })

local function text_of(fname, i, v)
  if type(v) == "string" then return v end
  if type(v) == "number" then return tostring(v) end
  error(("bad argument #%d to '%s' (string expected, got %s)"):format(i, fname, type(v)), 3)
end

-- A console stream: what is written is cut into lines, each passed to
-- emit; a line without its end waits for the next write or a flush.
local function console(emit)
  local pending = {}
  local f = {}
  function f.write(self, ...)
    for i = 1, select("#", ...) do
      pending[#pending + 1] = text_of("write", i, (select(i, ...)))
    end
    local text = table.concat(pending)
    pending = {}
    local start = 1
    for line, stop in text:gmatch("([^\n]*)\n()") do
      emit(line)
      start = stop
    end
    if start <= #text then pending[1] = text:sub(start) end
    return self
  end
  function f.flush(self)
    if #pending > 0 then
      local rest = table.concat(pending)
      pending = {}
      emit(rest)
    end
    return self
  end
  function f.close() return nil, "novapipe's console cannot be closed" end
  function f.setvbuf() return true end
  function f.seek() return nil, "novapipe's console cannot seek" end
  function f.lines() error("novapipe's console cannot be read", 2) end
  function f.read() return nil, "novapipe's console cannot be read" end
  return f
end

-- A file opened for writing: its text is kept, and written through the
-- sink when it is closed (or collected).
local function file(path, append)
  local parts, closed = {}, false
  local f = {}
  local function commit()
    if closed then return true end
    closed = true
    open_files[f] = nil
    local sink = saved.sink()
    local text = table.concat(parts)
    if append then return sink:append(path, text) end
    return sink:write(path, text, "file")
  end
  function f.write(self, ...)
    if closed then return nil, "attempt to use a closed file" end
    for i = 1, select("#", ...) do parts[#parts + 1] = text_of("write", i, (select(i, ...))) end
    return self
  end
  function f.flush(self) return self end
  function f.setvbuf() return true end
  function f.seek() return nil, ("%s: novapipe writes it when it is closed, it cannot seek"):format(path) end
  function f.read() return nil, ("%s: opened for writing"):format(path) end
  function f.lines() error(("%s: opened for writing"):format(path), 2) end
  function f.abort()
    closed = true
    open_files[f] = nil
    return true
  end
  function f.close()
    local ok, err = commit()
    if not ok then return nil, err end
    return true
  end
  open_files[f] = true
  return setmetatable(f, { __gc = commit, __close = commit, __name = "FILE*" })
end

local function refuse(what)
  return function()
    error(("%s is not available during a run: a child started so writes past novapipe's PHI masker "
      .. "(run it with novapipe.process.run, whose output is masked)"):format(what), 2)
  end
end

---Puts the guard in place. `current` returns the sink to write through
---(the run's, once its configuration is loaded). Installing twice is an
---error; uninstall restores everything.
---@param current fun(): novapipe.Sink
function M.install(current)
  if saved then error("the guard is already installed", 2) end
  saved = {
    sink = current,
    print = print, stdout = io.stdout, stderr = io.stderr, write = io.write, open = io.open,
    output = io.output, popen = io.popen, execute = os.execute,
    fs = { atomic_write = fs.atomic_write, append = fs.append, writer = fs.writer, copy = fs.copy },
  }
  local out = console(function(line) current():print(line) end)
  local err = console(function(line) current():error(line) end)
  local default = out
  saved.streams = { out, err }
  _G.print = function(...)
    local parts = {}
    for i = 1, select("#", ...) do parts[i] = tostring((select(i, ...))) end
    current():print(table.concat(parts, "\t"))
  end
  io.stdout, io.stderr = out, err
  io.write = function(...) return default:write(...) end
  io.open = function(path, mode)
    mode = mode or "r"
    if type(mode) ~= "string" or not mode:match("^[rwa]%+?b?$") then
      error(("bad argument #2 to 'open' (invalid mode '%s')"):format(tostring(mode)), 2)
    end
    if mode:find("+", 1, true) then
      return nil, ("%s: novapipe does not open files for reading and writing during a run "
        .. "(write them whole through the sink)"):format(tostring(path))
    end
    if mode:sub(1, 1) == "r" then return saved.open(path, mode) end
    return file(path, mode:sub(1, 1) == "a")
  end
  io.output = function(f)
    if f == nil then return default end
    if type(f) == "string" then f = file(f, false) end
    default = f
    return f
  end
  io.popen, os.execute = refuse("io.popen"), refuse("os.execute")
  fs.atomic_write = function(path, data) return current():write(path, data, "file") end
  fs.append = function(path, text) return current():append(path, text) end
  fs.writer = function(path)
    local w = file(path, false)
    return { write = function(_, s) return w:write(s) and true end,
             commit = function() return w:close() end,
             abort = function() return w:abort() end }
  end
  fs.copy = function(src, dst)
    local ok, err = sink_mod.raw.copy(src, dst)
    if not ok then return nil, err end
    return current():adopt(dst, "file")
  end
end

---Removes the guard: the console's last partial lines are written, files
---still open are written, and everything install replaced is back.
function M.uninstall()
  if not saved then return end
  for f in pairs(open_files) do f:close() end
  for _, s in ipairs(saved.streams) do s:flush() end
  _G.print, io.stdout, io.stderr, io.write = saved.print, saved.stdout, saved.stderr, saved.write
  io.open, io.output, io.popen, os.execute = saved.open, saved.output, saved.popen, saved.execute
  for k, v in pairs(saved.fs) do fs[k] = v end
  saved = nil
end

---Whether the guard is in place.
function M.installed() return saved ~= nil end

return M
