---@meta novapipe.proc
-- LuaLS stubs for the C module novapipe.proc (engine/proc.c).

---@class novapipe.proc
local proc = {}

---A stream option: "inherit" (the child writes to novapipe's own stream
---directly, or through the filter when one is set), "null", "capture", a
---line callback, {file = path, append = bool} (created 0600), or for stderr
---"stdout" (merged into stdout, in order).
---@alias novapipe.StreamOpt "inherit"|"null"|"capture"|"stdout"|fun(line: string)|{file: string, append?: boolean}

---@class novapipe.SpawnOpts
---@field cwd? string working directory
---@field env? table<string, string|false> variables to add or change; false removes one
---@field clear_env? boolean start from an empty environment (plus env)
---@field stdin? "inherit"|"null"|{file: string}
---@field stdout? novapipe.StreamOpt
---@field stderr? novapipe.StreamOpt
---@field filter? (fun(line: string): string|false)|novapipe.PhiFilter every line of output passes here before any sink; false drops it; a PhiFilter (novapipe.phi.filter) masks in C
---@field events? fun(line: string) called with each line the child writes to its descriptor 3 (not filtered)
---@field timeout? number seconds; then the tree gets TERM, grace, KILL and the result says timed_out, code 124
---@field grace? number seconds between TERM and KILL (default 3)
---@field cleanup? boolean end what is left of the tree when the leader exits (default true)
---@field max_line? integer longest line handed on whole (default 1 MiB); longer ones come in pieces
---@field read_every? number seconds (0 to 3600): while the child runs, stdout and stderr are read at most this often on their own, and before each of its events; all of it once it ends (default 0: as it comes); a stream that fills half its pipe is read as it comes for the next interval

---@class novapipe.ProcResult
---@field code integer exit code; 124 after a timeout; 128+N when signal N ended it
---@field signal integer the signal that ended it, 0 for none
---@field timed_out boolean
---@field duration number wall seconds from spawn to reap
---@field cpu number user + system CPU seconds of the child and its waited-for descendants
---@field maxrss integer peak resident set size, bytes
---@field pid integer
---@field stdout? string when captured
---@field stderr? string when captured

---@class novapipe.Process
local Process = {}

---Starts argv[1] (searched in PATH) as the leader of a new process group.
---Raises on a malformed argument or an unknown option key (also in a
---{file = ...} table); returns nil, message, errname ("ENOENT")
---when the program cannot be started.
---@param argv string[]
---@param opts? novapipe.SpawnOpts
---@return novapipe.Process|nil
---@return string? message
---@return string? errname
function proc.spawn(argv, opts) end

---Waits for the first of several handles to finish.
---@param handles novapipe.Process[]
---@param timeout? number seconds; nil waits without end
---@return integer|nil index
---@return novapipe.ProcResult|string result, or "timeout"
function proc.wait_any(handles, timeout) end

---@return integer count of handles whose work is not finished
function proc.live() end

---@return integer[]|nil pids of novapipe's direct children, adopted orphans included
function proc.children() end

---@return {pid: integer, maxrss: integer, cpu: number, uid: integer, user: string, host: string}
function proc.self() end

---How many CPUs novapipe may run on (its affinity mask), at least 1.
---@return integer
function proc.cores() end

---@return false|"SIGINT"|"SIGTERM"
function proc.interrupted() end

---@param pid integer
---@return boolean
function proc.exists(pid) end

---@class novapipe.ProcStat
---@field state string one letter: "R" running, "S" sleeping, "D" in I/O, "Z" zombie, "T" stopped, ...
---@field ppid integer the parent's pid
---@field pgid integer the process group
---@field start integer start time in clock ticks since boot; with the pid it names one process across pid reuse

---What the kernel says of a process (/proc/<pid>/stat). Raises on a pid
---that is not positive; returns nil, message, "ENOENT" when there is no
---such process (or no /proc).
---@param pid integer
---@return novapipe.ProcStat|nil
---@return string? message
---@return string? errname
function proc.stat(pid) end

---Sends a signal to one process.
---@param pid integer
---@param signal string|integer "TERM", "KILL", "INT", "HUP", "QUIT", "USR1", "USR2", "STOP", "CONT" or a number
---@return true|nil ok
---@return string? message
---@return string? errname
function proc.signal(pid, signal) end

---Ends every live tree now (TERM, grace, KILL) and reaps it, running no Lua
---callback: clean-up after an interrupt.
function proc.shutdown() end

---Runs the loop until the process has ended and its output is delivered.
---Raises an error a filter or callback raised, and "interrupted" after
---Ctrl-C (once every child has ended).
---@param timeout? number give up waiting after this long, leaving it running
---@return novapipe.ProcResult|nil result
---@return string? "timeout"
function Process:wait(timeout) end

---Without a signal: TERM to the whole tree, KILL after the grace period.
---With one ("TERM", "KILL", "INT", "HUP", "QUIT", "USR1", "USR2", "STOP",
---"CONT" or a number): just that, to the process group.
---@param signal? string|integer
---@return boolean false when it had already ended
function Process:kill(signal) end

---@return integer
function Process:pid() end

---@return boolean whether the leader has not ended yet
function Process:running() end

return proc
