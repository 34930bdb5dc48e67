---@meta novapipe.fs
-- LuaLS stubs for the C module novapipe.fs (engine/fs.c). Failures return
-- nil, message, errname; malformed arguments raise. Every function that
-- writes (atomic_write, writer, append, mkdir_p, chmod, own_dir, lock)
-- refuses to go through a symbolic link (ELOOP, the message naming the
-- link); see docs/host-api.md.

---@class novapipe.fs
local fs = {}

---@alias novapipe.Mode integer|string an octal mode, 384 or "0600"

---Temporary file beside path, fsync, rename: readers see old or new, never half.
---@param path string
---@param data string
---@param mode? novapipe.Mode default "0600"
---@return true|nil ok
---@return string? message
---@return string? errname
function fs.atomic_write(path, data, mode) end

---A whole file's bytes.
---@param path string
---@return string|nil content
---@return string? message
---@return string? errname
function fs.read(path) end

---@param path string
---@param mode? novapipe.Mode default "0700"
---@return true|nil ok
---@return string? message
---@return string? errname
function fs.mkdir_p(path, mode) end

---Renames src to dst (a file or a directory), never replacing what is at
---dst (EEXIST, a dangling link included) and never through a symbolic link
---in either path's directories (ELOOP).
---@param src string
---@param dst string
---@return true|nil ok
---@return string? message
---@return string? errname
function fs.move(src, dst) end

---Copies a regular file's bytes and permission bits.
---@param src string
---@param dst string
---@return true|nil ok
---@return string? message
---@return string? errname
function fs.copy(src, dst) end

---rm -rf: symbolic links are removed, not followed; a missing path is fine.
---@param path string
---@return true|nil ok
---@return string? message
---@return string? errname
function fs.rmtree(path) end

---A new directory (0700) under dir, else $TMPDIR or /tmp.
---@param prefix? string default "novapipe-"
---@param dir? string
---@return string|nil path
---@return string? message
---@return string? errname
function fs.mkdtemp(prefix, dir) end

---The bytes free to an unprivileged user on the file system holding path.
---@param path string
---@return number|nil bytes
---@return string? message
---@return string? errname
function fs.space(path) end

---@param path string
---@param mode novapipe.Mode
---@return true|nil ok
---@return string? message
---@return string? errname
function fs.chmod(path, mode) end

---Makes path a directory of the caller's at mode (default "0700"); its
---parent must exist. Missing: made. The caller's: chmodded. Another
---user's: replaced by a new directory of the caller's holding its entries
---(each moved with rename(2), not copied: files keep their owner), via
---`<name>.novapipe-own` beside it; a take-over cut short leaves every entry
---in one of the two, and the next call finishes it. Fails with EEXIST when
---`<name>.novapipe-own` is not a directory of the caller's, ENOTEMPTY when
---a name is in both, EXDEV for a mount point, ELOOP for a link at either.
---@param path string
---@param mode? novapipe.Mode default "0700"
---@return true|nil ok
---@return string? message
---@return string? errname
function fs.own_dir(path, mode) end

---@param path string
---@return string|nil absolute
---@return string? message
---@return string? errname
function fs.realpath(path) end

---'*' and '?' stay within a path component, '**' crosses them, '[a-z]' and
---'[!x]' are classes.
---@param pattern string
---@param path string
---@return boolean
function fs.match(pattern, path) end

---Files under root, relative to it, sorted depth first. A pattern with '/'
---matches the relative path, one without the base name; an excluded
---directory is not entered; symbolic links are not followed. Raises on an
---unknown option key.
---@param root string
---@param opts? {include?: string[], exclude?: string[], dirs?: boolean}
---@return string[]|nil paths
---@return string? message
---@return string? errname
function fs.walk(root, opts) end

---One O_APPEND write, then fsync; creates the file with mode.
---@param path string
---@param data string
---@param mode? novapipe.Mode default "0600"
---@return true|nil ok
---@return string? message
---@return string? errname
function fs.append(path, data, mode) end

---@class novapipe.Lock
local Lock = {}
---Releases the lock (also done by `<close>` and the garbage collector).
function Lock:unlock() end

---An exclusive flock(2) on path (created 0600), waited for.
---@param path string
---@return novapipe.Lock|nil lock
---@return string? message
---@return string? errname
function fs.lock(path) end

---@class novapipe.Writer
local Writer = {}

---Appends bytes to the temporary file.
---@param s string
---@return novapipe.Writer|nil writer itself
---@return string? error
function Writer:write(s) end

---fsync, the mode, rename over the path: the file appears whole.
---@return boolean|nil ok
---@return string? error
function Writer:commit() end

---Removes the temporary file; nothing appears. Closing or collecting an
---uncommitted writer does the same.
function Writer:abort() end

---A file written piece by piece that appears at path, whole, on commit
---(a new file of the caller's, `mode`, default "0600"). Links refused.
---@param path string
---@param mode? string|integer
---@return novapipe.Writer|nil writer
---@return string? error
---@return string? errname
function fs.writer(path, mode) end

---@alias novapipe.WatchKind "modified"|"created"|"deleted"|"renamed"|"rescan"

---One change to a file under a watched root. `rescan` (path ".") means
---inotify's queue overflowed and events were lost: anything may have
---changed, so treat the whole tree as changed.
---@class novapipe.WatchChange
---@field path string relative to the root
---@field kind novapipe.WatchKind
---@field from? string the old relative path, for "renamed"

---@class novapipe.WatchOptions
---@field ignore? fun(relpath: string, is_dir: boolean): boolean true skips a directory (not watched) or a file (not reported)
---@field settle? number quiet seconds that end a batch, default 0.1 (more than 0, at most 60)
---@field max_delay? number a batch ends this long after its first event even while events keep coming, default 2
---@field builtin? boolean false also watches .git, .hg, .svn, .novapipe, __pycache__, .pytest_cache, .mypy_cache, .ruff_cache, .hypothesis and node_modules (default true: skipped)

---@class novapipe.Watcher
local Watcher = {}

---Waits up to timeout seconds (nil: without end) for a change, then until
---the tree has been quiet for `settle` seconds, and returns the batch's
---net changes sorted by path: a save by rename is one "modified", editors'
---temporary names are never reported. An empty list means the timeout
---passed. After Ctrl-C or SIGTERM ends every child and raises
---`{interrupted = true, message = "interrupted"}` (the host exits 130).
---Raises on a closed watcher and with the ignore function's error (the
---watcher is then closed). Fails with ENOENT once the root is removed or
---moved, with ENOSPC when inotify's limit kept a new directory from being
---watched (the changes read so far come with the next read).
---@param timeout? number seconds, 0 or more
---@return novapipe.WatchChange[]|nil changes
---@return string? message
---@return string? errname
function Watcher:read(timeout) end

---Frees the inotify descriptor; closing twice is fine, and so are
---`<close>` and the garbage collector.
---@return true
function Watcher:close() end

---Watches the directory root and every directory below it (made later
---ones included, symbolic links not followed) with inotify. Fails with
---ENOTDIR, ENOENT, ENOSPC (inotify's max_user_watches reached, the message
---naming /proc/sys/fs/inotify/max_user_watches) or EMFILE. Raises on a
---malformed option and with the ignore function's error.
---@param root string
---@param opts? novapipe.WatchOptions
---@return novapipe.Watcher|nil watcher
---@return string? message
---@return string? errname
function fs.watch(root, opts) end

return fs
