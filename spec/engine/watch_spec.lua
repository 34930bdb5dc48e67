-- novapipe.fs.watch on real trees: each change is made with real files (or
-- by a real editor), then read back. Reads have generous timeouts so that
-- a missed event fails a spec instead of hanging it; nothing here asserts
-- how long anything took.
local fs = require "novapipe.fs"
local proc = require "novapipe.proc"
local process = require "novapipe.process"
local H = require "spec.support.h"

local LONG = 10 -- seconds: a change that is coming comes well before this

---The changes of one read as "kind path" (and "<from" for renames).
---@param w novapipe.Watcher
---@param timeout? number
---@return string[]
local function changes(w, timeout)
  local list = assert(w:read(timeout or LONG))
  local out = {}
  for i, c in ipairs(list) do out[i] = c.kind .. " " .. c.path .. (c.from and " <" .. c.from or "") end
  return out
end

describe("novapipe.fs.watch", function()
  local keep = H.temporaries(after_each)
  local root

  before_each(function()
    root = keep(H.tree({ ["pkg/x.py"] = "x = 1\n", ["pkg/y.py"] = "y = 1\n", ["README.md"] = "# r\n" }))
  end)

  describe("when things go wrong", function()
    it("reports a root that is not a directory, or is missing, as nil, message, errname", function()
      local w, msg, errname = fs.watch(root .. "/README.md")
      assert.is_nil(w)
      assert.equal("ENOTDIR", errname)
      assert.equal("watch '" .. root .. "/README.md': Not a directory", msg)
      w, msg, errname = fs.watch(root .. "/missing")
      assert.is_nil(w)
      assert.equal("ENOENT", errname)
      assert.matches("watch '.*/missing': No such file or directory", msg)
    end)

    it("raises on a malformed option, naming it", function()
      local ok, err = pcall(fs.watch, root, { setle = 1 })
      assert.is_false(ok)
      assert.matches("unknown option 'setle'; known: ignore, settle, max_delay, builtin", err)
      assert.has_error(function() fs.watch(root, { ignore = true }) end)
      assert.has_error(function() fs.watch(root, { settle = "soon" }) end)
      assert.has_error(function() fs.watch(root, { settle = 0 }) end)
      assert.has_error(function() fs.watch(root, { builtin = "no" }) end)
      assert.has_error(function() fs.watch({}) end)
      local w <close> = assert(fs.watch(root))
      assert.has_error(function() w:read(-1) end)
      assert.has_error(function() w:read("soon") end)
    end)

    it("raises with the ignore function's error, from fs.watch and from read (the watcher is then closed)", function()
      local ok, err = pcall(fs.watch, root, { ignore = function() error("broken ignore") end })
      assert.is_false(ok)
      assert.matches("broken ignore", err)
      local broken = false
      local w <close> = assert(fs.watch(root, { ignore = function()
        if broken then error("broken later") end
        return false
      end }))
      broken = true
      H.write(root .. "/pkg/new.py", "")
      ok, err = pcall(w.read, w, LONG)
      assert.is_false(ok)
      assert.matches("broken later", err)
      assert.matches("closed", tostring(w))
      assert.has_error(function() w:read(0) end, "read of a closed watcher")
    end)

    it("refuses to be read or closed from its own ignore function", function()
      local w
      local inner
      w = assert(fs.watch(root, { ignore = function()
        if w then inner = { pcall(w.read, w, 0) } end
        return false
      end }))
      H.write(root .. "/pkg/new.py", "")
      assert.same({ "created pkg/new.py" }, changes(w))
      assert.is_false(inner[1])
      assert.matches("from its own ignore function", inner[2])
      w:close()
    end)

    it("reports inotify's watch limit reached as ENOSPC, naming max_user_watches", function()
      -- the limit is lowered in a user namespace of the spec's own; the machine's is untouched
      if process.run({ "unshare", "-Ur", "true" }).code ~= 0 then
        return pending("no user namespace to lower inotify's limit in")
      end
      assert(fs.mkdir_p(root .. "/a/b/c"))
      local script = keep(H.tmpdir()) .. "/limit.lua"
      H.write(script, ("io.write(table.concat({ select(2, require('novapipe.fs').watch(%q)) }, '|'))"):format(root))
      local r = process.run({ "unshare", "-Ur", "sh", "-c", 'echo 3 > /proc/sys/user/max_inotify_watches && exec "$0" exec "$1"',
        H.bin, script })
      assert.equal(0, r.code, r.stderr)
      assert.equal("watch '" .. root .. "': inotify's limit on watched directories (3, /proc/sys/user/max_inotify_watches "
        .. "in this user namespace; /proc/sys/fs/inotify/max_user_watches outside it) is reached; raise it or ignore "
        .. "more directories|ENOSPC", r.stdout)
    end)

    it("fails every read once the root is removed", function()
      local w <close> = assert(fs.watch(root))
      H.rmrf(root)
      local list, msg, errname = w:read(LONG)
      assert.is_nil(list)
      assert.equal("ENOENT", errname)
      assert.equal("watch '" .. root .. "': the directory was removed or moved", msg)
      assert.equal("ENOENT", select(3, w:read(LONG)))
      assert.matches("the directory is gone", tostring(w))
    end)
  end)

  it("returns an empty list when the timeout passes with no change", function()
    local w <close> = assert(fs.watch(root))
    assert.same({}, w:read(0.2))
    assert.same({}, w:read(0))
  end)

  it("returns an empty list when the only changes are made and undone within a batch", function()
    local w <close> = assert(fs.watch(root))
    H.write(root .. "/pkg/4913", "")
    assert(os.remove(root .. "/pkg/4913"))
    assert.same({}, w:read(0.5))
  end)

  it("reports edits, new files, deletes and renames, relative to the root", function()
    local w <close> = assert(fs.watch(root))
    H.write(root .. "/pkg/x.py", "x = 2\n")
    assert.same({ "modified pkg/x.py" }, changes(w))
    H.write(root .. "/pkg/z.py", "z = 1\n")
    assert.same({ "created pkg/z.py" }, changes(w))
    assert(os.remove(root .. "/pkg/z.py"))
    assert.same({ "deleted pkg/z.py" }, changes(w))
    assert(os.rename(root .. "/pkg/y.py", root .. "/pkg/w.py"))
    local list = assert(w:read(LONG))
    assert.same({ { path = "pkg/w.py", kind = "renamed", from = "pkg/y.py" } }, list)
  end)

  describe("gives one change for a save by rename", function()
    it("a temporary file written and renamed over the file", function()
      local w <close> = assert(fs.watch(root))
      H.write(root .. "/pkg/x.py.tmp", "x = 3\n")
      assert(os.rename(root .. "/pkg/x.py.tmp", root .. "/pkg/x.py"))
      assert.same({ { path = "pkg/x.py", kind = "modified" } }, w:read(LONG))
    end)

    it("GNU sed -i", function()
      local w <close> = assert(fs.watch(root))
      local r = process.run({ "sed", "-i", "s/1/2/", root .. "/pkg/x.py" })
      assert.equal(0, r.code)
      assert.same({ "modified pkg/x.py" }, changes(w))
    end)

    it("vim: its swap files, the 4913 probe, the file renamed to a backup and written anew", function()
      assert(process.which("vim"), "vim is not installed (scripts/setup.sh --test installs it)")
      local function vim(settings, edit)
        -- backupskip is emptied: its default skips files under /tmp
        local r = process.run({ "vim", "-u", "NONE", "-i", "NONE", "-N", "-es", "-c", "set backupskip= " .. settings,
          "-c", edit, "-c", "wq", root .. "/pkg/x.py" }, { stdin = "null", timeout = 30, env = { HOME = root } })
        assert.equal(0, r.code)
      end
      local w <close> = assert(fs.watch(root))
      vim("backup writebackup backupcopy=auto", "%s/1/4/")
      assert.equal("x = 4\n", H.read(root .. "/pkg/x.py"))
      assert.equal("x = 1\n", H.read(root .. "/pkg/x.py~"), "vim made no backup: the rename did not happen")
      assert.same({ "modified pkg/x.py" }, changes(w))
      assert(os.remove(root .. "/pkg/x.py~"))
      vim("nobackup writebackup backupcopy=auto", "%s/4/5/")
      assert.equal("x = 5\n", H.read(root .. "/pkg/x.py"))
      assert.is_nil(H.read(root .. "/pkg/x.py~"))
      assert.same({ "modified pkg/x.py" }, changes(w))
    end)

    it("JetBrains' safe write", function()
      local w <close> = assert(fs.watch(root))
      H.write(root .. "/pkg/x.py___jb_tmp___", "x = 5\n")
      assert(os.rename(root .. "/pkg/x.py", root .. "/pkg/x.py___jb_old___"))
      assert(os.rename(root .. "/pkg/x.py___jb_tmp___", root .. "/pkg/x.py"))
      assert(os.remove(root .. "/pkg/x.py___jb_old___"))
      assert.same({ "modified pkg/x.py" }, changes(w))
    end)
  end)

  it("sees files in a new subdirectory, even those written before it was watched", function()
    local w <close> = assert(fs.watch(root))
    assert(fs.mkdir_p(root .. "/pkg/sub/deeper"))
    H.write(root .. "/pkg/sub/deeper/t.py", "t = 1\n")
    assert.same({ "created pkg/sub/deeper/t.py" }, changes(w))
    H.write(root .. "/pkg/sub/deeper/t.py", "t = 2\n")
    assert.same({ "modified pkg/sub/deeper/t.py" }, changes(w))
    assert(os.rename(root .. "/pkg/sub", root .. "/lib"))
    assert.same({ "renamed lib/deeper/t.py <pkg/sub/deeper/t.py" }, changes(w))
    H.rmrf(root .. "/lib")
    assert.same({ "deleted lib/deeper/t.py" }, changes(w))
    assert.matches("novapipe.Watcher %(" .. root:gsub("%p", "%%%0") .. ", 2 directories watched%)", tostring(w))
  end)

  it("skips what the ignore function says, and the built-in directories", function()
    local seen = {}
    local w <close> = assert(fs.watch(root, { ignore = function(rel, is_dir)
      seen[#seen + 1] = rel .. (is_dir and "/" or "")
      return rel == "build" or rel:match("%.log$") ~= nil
    end }))
    assert(fs.mkdir_p(root .. "/build/lib"))
    H.write(root .. "/build/lib/x.py", "")
    H.write(root .. "/pkg/run.log", "")
    assert(fs.mkdir_p(root .. "/.git/objects"))
    H.write(root .. "/.git/index", "")
    assert(fs.mkdir_p(root .. "/pkg/__pycache__"))
    H.write(root .. "/pkg/__pycache__/x.cpython-313.pyc", "")
    H.write(root .. "/pkg/kept.py", "")
    assert.same({ "created pkg/kept.py" }, changes(w))
    table.sort(seen)
    assert.same({ "build/", "pkg/", "pkg/kept.py", "pkg/run.log" }, seen)
  end)

  it("watches the built-in directories when told builtin = false", function()
    local w <close> = assert(fs.watch(root, { builtin = false }))
    assert(fs.mkdir_p(root .. "/.git"))
    H.write(root .. "/.git/HEAD", "ref: refs/heads/main\n")
    assert.same({ "created .git/HEAD" }, changes(w))
  end)

  it("closes twice, and through <close> and the collector, safely", function()
    local w = assert(fs.watch(root))
    assert.matches("directories watched", tostring(w))
    assert.is_true(w:close())
    assert.is_true(w:close())
    assert.matches("novapipe.Watcher %(.*, closed%)", tostring(w))
    do
      local c <close> = assert(fs.watch(root))
    end
    for _ = 1, 50 do fs.watch(root) end
    collectgarbage()
    collectgarbage()
    local fds = 0
    for _ in require("lfs").dir("/proc/self/fd") do fds = fds + 1 end
    assert.is_true(fds < 40, "inotify descriptors were not freed: " .. fds .. " open")
  end)

  describe("on Ctrl-C during a read", function()
    local dir
    before_each(function() dir = keep(H.tmpdir()) end)

    -- After SIGINT the host stops running Lua (its hook), so what read did
    -- is seen from outside: it returned (no timeout), the child it had
    -- started is gone, and the exit is the interrupted one.
    it("returns at once, leaves no child running and novapipe exits 130", function()
      local marker = H.marker()
      H.write(dir .. "/watch.lua", ([[
local fs = require "novapipe.fs"
local proc = require "novapipe.proc"
local w <close> = assert(fs.watch(%q))
assert(proc.spawn({ "sleep", %q }))
assert(proc.spawn({ "sh", "-c", "sleep 0.3; kill -INT $PPID" }))
io.write("reading\n")
io.flush()
w:read(60)
io.write("read returned\n")
]]):format(root, marker))
      local p = assert(proc.spawn({ H.bin, "exec", dir .. "/watch.lua" }, { stdout = "capture", stderr = "capture" }))
      local r = p:wait(LONG * 3)
      if not r then p:kill("KILL") end
      assert.truthy(r, "novapipe did not return from read after SIGINT")
      assert.equal("reading\n", r.stdout) -- the read raised: nothing after it ran
      assert.equal(130, r.code)
      assert.matches("interrupted", r.stderr)
      assert.is_nil(H.find_process("sleep", marker))
    end)
  end)
end)
