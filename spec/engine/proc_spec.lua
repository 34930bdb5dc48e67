local fs = require "novapipe.fs"
local proc = require "novapipe.proc"
local time = require "novapipe.time"
local H = require "spec.support.h"

describe("novapipe.proc", function()
  describe("when things go wrong", function()
    it("reports a program that does not exist as nil, message, ENOENT", function()
      local p, msg, errname = proc.spawn({ "novapipe-no-such-program" })
      assert.is_nil(p)
      assert.equal("ENOENT", errname)
      assert.matches("spawn 'novapipe%-no%-such%-program': No such file or directory", msg)
    end)

    it("reports a working directory that does not exist", function()
      local p, msg, errname = proc.spawn({ "true" }, { cwd = "/nonexistent/novapipe" })
      assert.is_nil(p)
      assert.equal("ENOENT", errname)
      assert.matches("cannot enter '/nonexistent/novapipe'", msg)
    end)

    it("raises on a malformed argv or option", function()
      assert.has_error(function() proc.spawn({}) end)
      assert.has_error(function() proc.spawn({ "true", {} }) end)
      assert.has_error(function() proc.spawn({ "true" }, { stdout = "sideways" }) end)
      assert.has_error(function() proc.spawn({ "true" }, { timeout = "soon" }) end)
    end)

    it("reports a process that is gone as nil, message, ENOENT from proc.stat", function()
      local pid = assert(proc.spawn({ "true" })):wait().pid
      local st, msg, errname = proc.stat(pid)
      assert.is_nil(st)
      assert.equal("ENOENT", errname)
      assert.matches("stat of process " .. pid, msg)
      assert.has_error(function() proc.stat(0) end)
      assert.has_error(function() proc.stat("me") end)
    end)

    it("raises on an unknown option key, naming it and the keys spawn knows", function()
      local ok, err = pcall(function() return proc.spawn({ "true" }, { timout = 1 }) end)
      assert.is_false(ok)
      assert.matches("bad argument #2 to 'spawn' %(unknown option 'timout'; known: cwd, env, clear_env, stdin, "
        .. "stdout, stderr, filter, events, timeout, grace, cleanup, max_line, read_every%)", err)
      ok, err = pcall(function() return proc.spawn({ "true" }, { "positional" }) end)
      assert.is_false(ok)
      assert.matches("unknown option %[1%] %(a number key%)", err)
      ok, err = pcall(function() return proc.spawn({ "true" }, { stdout = { file = "/dev/null", apend = true } }) end)
      assert.is_false(ok)
      assert.matches("bad argument #2 to 'spawn' %(unknown option 'apend' in stdout; known: file, append%)", err)
      ok, err = pcall(function() return proc.spawn({ "true" }, { stdin = { file = "/dev/null", append = true } }) end)
      assert.is_false(ok)
      assert.matches("unknown option 'append' in stdin; known: file%)", err)
      assert.equal(0, proc.live())
    end)

    it("raises on an unknown option key in process.run, start and run_all", function()
      local process = require "novapipe.process"
      local ok, err = pcall(function() local _ = process.run({ "true" }, { timout = 1 }) end)
      assert.is_false(ok)
      assert.matches("proc_spec.lua:%d+: bad argument #2 to 'run' %(unknown option 'timout'; known: cwd, env, ", err)
      ok, err = pcall(function() local _ = process.start({ "true" }, { captur = true }) end)
      assert.is_false(ok)
      assert.matches("proc_spec.lua:%d+: bad argument #2 to 'start' %(unknown option 'captur'; known: cwd, ", err)
      ok, err = pcall(function() return process.run_all({ { { "true" } } }, { maximum = 2 }) end)
      assert.is_false(ok)
      assert.matches("bad argument #2 to 'run_all' %(unknown option 'maximum'; known: max, on_start, on_done%)", err)
      local started = 0
      ok, err = pcall(function()
        return process.run_all({ { { "true" } }, { { "true" }, { timout = 1 } } },
          { on_start = function() started = started + 1 end })
      end)
      assert.is_false(ok)
      assert.matches("bad argument #1 to 'run_all' %(jobs%[2%]: unknown option 'timout'; known: cwd, ", err)
      assert.equal(0, started)
    end)

    it("reports a child killed by a signal", function()
      local p = assert(proc.spawn({ "sh", "-c", "kill -SEGV $$" }))
      local r = p:wait()
      assert.equal(11, r.signal)
      assert.equal(128 + 11, r.code)
      assert.is_false(r.timed_out)
    end)

    it("kills a timed-out tree whose grandchild ignores TERM, reporting 124", function()
      local marker = H.marker()
      -- The grandchild ignores TERM and sleeps; only KILL ends it.
      local script = ("trap '' TERM; sleep %s"):format(marker)
      local p = assert(proc.spawn({ "sh", "-c", ("sh -c %q & wait"):format(script) },
        { timeout = 0.5, grace = 0.3 }))
      local t0 = time.now()
      assert.is_nil(p:wait(0.3))
      assert.is_number(H.find_process("sleep", marker), "the grandchild never ran")
      local r = p:wait()
      local elapsed = time.now() - t0
      assert.is_true(r.timed_out)
      assert.equal(124, r.code)
      assert.is_true(r.duration >= 0.5)
      assert.is_true(elapsed < 30)
      assert.is_nil(H.find_process("sleep", marker))
    end)

    it("ends a grandchild that left the process group with setsid", function()
      local marker = H.marker()
      local p = assert(proc.spawn({ "sh", "-c", ("setsid sleep %s & sleep 0.4"):format(marker) }, { grace = 0.3 }))
      assert.is_nil(p:wait(0.2))
      local pid = H.find_process("sleep", marker)
      assert.is_number(pid, "the grandchild never ran")
      assert.is_true(pid ~= p:pid())
      local r = p:wait()
      assert.equal(0, r.code)
      assert.is_nil(H.find_process("sleep", marker))
    end)

    it("ends leftovers of a tree when the leader exits", function()
      local marker = H.marker()
      local dir = H.tmpdir()
      local p = assert(proc.spawn({ "sh", "-c", ("sleep %s & echo $! > %s/pid"):format(marker, dir) }, { grace = 0.3 }))
      assert.equal(0, p:wait().code)
      local pid = tonumber(H.read(dir .. "/pid"))
      assert.is_number(pid, "the leftover never started")
      assert.is_false(proc.exists(pid))
      H.rmrf(dir)
    end)

    it("reaps an adopted orphan that ends on its own, leaving no zombie", function()
      local p = assert(proc.spawn({ "sh", "-c", "setsid sleep 0.2 &" }, { cleanup = false }))
      p:wait()
      time.sleep(0.4)
      local adopted = assert(proc.children())
      assert.is_true(#adopted >= 1, "the orphan was never adopted")
      -- Any child ending wakes the loop, which reaps the zombie orphan.
      assert(proc.spawn({ "true" })):wait()
      for _, pid in ipairs(assert(proc.children())) do
        local stat = H.read("/proc/" .. pid .. "/stat") or ""
        assert.is_nil(stat:match("%) Z "), "zombie child " .. pid)
      end
    end)

    it("raises a line callback's error from wait and ends the child", function()
      local marker = H.marker()
      local p = assert(proc.spawn({ "sh", "-c", "echo one; sleep " .. marker }, {
        stdout = function() error("callback broke") end, grace = 0.2,
      }))
      assert.has_error(function() p:wait() end, "callback broke")
      assert.is_nil(H.find_process("sleep", marker))
    end)
  end)

  describe("output", function()
    it("captures stdout and stderr separately", function()
      local r = assert(proc.spawn({ "sh", "-c", "echo out; echo err >&2; exit 3" },
        { stdout = "capture", stderr = "capture" })):wait()
      assert.equal(3, r.code)
      assert.equal("out\n", r.stdout)
      assert.equal("err\n", r.stderr)
    end)

    it("merges stderr into stdout in order", function()
      local r = assert(proc.spawn({ "sh", "-c", "echo a; echo b >&2; echo c" },
        { stdout = "capture", stderr = "stdout" })):wait()
      assert.equal("a\nb\nc\n", r.stdout)
    end)

    it("writes to a file, owner-only", function()
      local dir = H.tmpdir()
      local r = assert(proc.spawn({ "printf", "x\\ny" }, { stdout = { file = dir .. "/out.txt" } })):wait()
      assert.equal(0, r.code)
      assert.equal("x\ny", H.read(dir .. "/out.txt"))
      assert.equal("rw-------", require("lfs").attributes(dir .. "/out.txt", "permissions"))
      H.rmrf(dir)
    end)

    it("delivers whole lines across read boundaries, longer than the read buffer", function()
      local lines = {}
      -- 3 lines of 200,000 bytes, each far past the 64 KiB read buffer.
      local script = "for c in a b c; do head -c 200000 /dev/zero | tr '\\0' $c; echo; done; printf tail"
      local r = assert(proc.spawn({ "sh", "-c", script }, {
        stdout = function(line) lines[#lines + 1] = line end,
      })):wait()
      assert.equal(0, r.code)
      assert.equal(4, #lines)
      assert.equal(string.rep("a", 200000), lines[1])
      assert.equal(string.rep("c", 200000), lines[3])
      assert.equal("tail", lines[4])
    end)

    it("passes every line through the filter before any sink", function()
      local seen = {}
      local r = assert(proc.spawn({ "sh", "-c", "echo ssn 123-45-6789; echo ok; echo drop me >&2" }, {
        stdout = "capture",
        stderr = function(l) seen[#seen + 1] = l end,
        filter = function(line)
          if line:find("drop") then return false end
          return (line:gsub("%d%d%d%-%d%d%-%d%d%d%d", "***-**-****"))
        end,
      })):wait()
      assert.equal("ssn ***-**-****\nok\n", r.stdout)
      assert.same({}, seen)
    end)

    it("withholds what follows a filter's error, from a file and a callback alike", function()
      local dir = H.tmpdir()
      local script = "echo first 1; echo boom; echo ssn 123-45-6789; sleep 0.2; echo later 123-45-6789"
      for _, sink in ipairs({ "file", "lines" }) do
        local got = {}
        local stdout = sink == "file" and { file = dir .. "/out" } or function(l) got[#got + 1] = l end
        local p = assert(proc.spawn({ "sh", "-c", script }, {
          stdout = stdout, grace = 0.2,
          filter = function(line)
            if line == "boom" then error("filter broke") end
            return (line:gsub("%d", "#"))
          end,
        }))
        assert.has_error(function() p:wait() end, "filter broke")
        local text = sink == "file" and H.read(dir .. "/out") or table.concat(got, "\n")
        -- what came before is there, filtered; nothing after
        assert.matches("^first #", text)
        assert.is_nil(text:find("123", 1, true), sink .. ": " .. text)
      end
      H.rmrf(dir)
    end)

    it("gives the child an events descriptor 3, read as lines and never filtered", function()
      local events = {}
      local r = assert(proc.spawn({ "sh", "-c", "echo a 123-45-6789 >&3; echo out; printf 'b' >&3" }, {
        stdout = "capture",
        events = function(line) events[#events + 1] = line end,
        filter = function(line) return (line:gsub("%d", "#")) end,
      })):wait()
      assert.equal(0, r.code)
      assert.equal("out\n", r.stdout)
      assert.same({ "a 123-45-6789", "b" }, events)
    end)

    describe("with read_every", function()
      -- The child writes a line to stdout and one to stderr, then waits
      -- half a second for the file the stdout callback makes when it gets
      -- its line, then sends an event saying whether it came. Read every
      -- 30 s, the line is not read while the child waits (read at once, it
      -- would be, and the event would say "read"); it is handed on before
      -- the event, as it was written before it. The child writes its last
      -- line once the event is in.
      it("reads stdout and stderr no sooner than asked, and ahead of an event, and all of it at the end", function()
        local dir = H.tmpdir()
        local at_event
        local out, err = {}, {}
        local p = assert(proc.spawn({ "sh", "-c", 'echo a; echo e >&2; i=0; '
          .. 'while [ $i -lt 50 ] && [ ! -e "$1/ack" ]; do sleep 0.01; i=$((i+1)); done; '
          .. 'if [ -e "$1/ack" ]; then echo read >&3; else echo unread >&3; fi; '
          .. 'while [ ! -e "$1/ack2" ]; do sleep 0.01; done; echo b', "sh", dir }, {
          stdout = function(line)
            out[#out + 1] = line
            if line == "a" then assert(fs.atomic_write(dir .. "/ack", "")) end
          end,
          stderr = function(line) err[#err + 1] = line end,
          events = function(line)
            at_event = { line = line, out = { table.unpack(out) }, err = { table.unpack(err) } }
            assert(fs.atomic_write(dir .. "/ack2", ""))
          end,
          read_every = 30, timeout = 20,
        }))
        local r = p:wait()
        H.rmrf(dir)
        assert.is_false(r.timed_out)
        assert.same({ line = "unread", out = { "a" }, err = { "e" } }, at_event)
        assert.same({ "a", "b" }, out)
        assert.same({ "e" }, err)
      end)

      it("reads a stream that fills its pipe at once for the next interval: a fast writer waits one at most", function()
        -- 32 MiB in lines of 64 KiB: read once every 3 s, a pipe (1 MiB at
        -- most) at a time, it would take the child far past its timeout
        local n = 0
        local r = assert(proc.spawn({ "sh", "-c", "yes $(printf '%065535d' 0) | head -c 33554432" }, {
          stdout = function() n = n + 1 end, read_every = 3, timeout = 15,
        })):wait()
        assert.is_false(r.timed_out)
        assert.equal(0, r.code)
        assert.equal(512, n)
      end)

      it("notices the child's end though another reader of the signal pipe took SIGCHLD's byte", function()
        -- fs.watch reads the same signal pipe; a child that ends while the
        -- watcher waits leaves the loop no byte to wake on
        local dir = H.tmpdir()
        local w = assert(fs.watch(dir))
        local p = assert(proc.spawn({ "sh", "-c", "echo hi" }, { stdout = function() end, read_every = 30 }))
        w:read(0.3)
        w:close()
        local r = p:wait(10)
        H.rmrf(dir)
        assert.is_truthy(r, "p:wait(10) gave up: the end was not noticed")
        assert.equal(0, r.code)
      end)

      it("raises on a value that is not seconds from 0 to 3600", function()
        for _, v in ipairs({ -1, 0 / 0, 1e9, "soon" }) do
          local ok, err = pcall(proc.spawn, { "true" }, { read_every = v })
          assert.is_false(ok)
          assert.matches("bad option 'read_every'", err)
        end
      end)
    end)

    it("gives no descriptor 3 without an events callback", function()
      local r = assert(proc.spawn({ "sh", "-c", "echo x >&3" }, { stderr = "capture" })):wait()
      assert.equal(2, r.code)
      assert.matches("Bad file descriptor", r.stderr)
    end)

    it("does not leak descriptors into children", function()
      local keep = assert(io.open("/dev/null"))
      local r = assert(proc.spawn({ "sh", "-c", "ls /proc/self/fd" }, { stdout = "capture", stdin = "null" })):wait()
      keep:close()
      local fds = {}
      for fd in r.stdout:gmatch("%d+") do fds[#fds + 1] = tonumber(fd) end
      table.sort(fds)
      -- 0, 1, 2 and the descriptor ls itself opens to list the directory.
      assert.is_true(#fds <= 4, "child saw fds " .. table.concat(fds, ","))
      for _, fd in ipairs(fds) do
        assert.is_true(fd <= 3, "child inherited fd " .. fd)
      end
    end)
  end)

  describe("environment", function()
    it("honours cwd", function()
      local r = assert(proc.spawn({ "pwd" }, { cwd = "/tmp", stdout = "capture" })):wait()
      assert.equal("/tmp\n", r.stdout)
    end)

    it("inherits, adds and removes variables", function()
      local r = assert(proc.spawn({ "sh", "-c", "echo \"$HOME|$NP_ADDED|${PATH:+set}|${NP_GONE:-gone}\"" }, {
        env = { NP_ADDED = "yes", NP_GONE = false }, stdout = "capture",
      })):wait()
      assert.equal(os.getenv("HOME") .. "|yes|set|gone\n", r.stdout)
    end)

    it("replaces the environment with clear_env", function()
      local r = assert(proc.spawn({ "/usr/bin/env" }, { clear_env = true, env = { ONLY = "1" }, stdout = "capture" })):wait()
      local names = {}
      for name in r.stdout:gmatch("([%w_]+)=") do names[#names + 1] = name end
      table.sort(names)
      assert.same({ "NOVAPIPE_JOB", "ONLY" }, names)
    end)
  end)

  describe("handles", function()
    it("reports wall time, CPU time and peak RSS", function()
      local r = assert(proc.spawn({ "sh", "-c", "i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done" })):wait()
      assert.equal(0, r.code)
      assert.is_true(r.duration > 0)
      assert.is_true(r.cpu > 0)
      assert.is_true(r.maxrss > 100 * 1024)
    end)

    it("waits with a timeout of its own, leaving the child running", function()
      local p = assert(proc.spawn({ "sleep", "5" }))
      local r, why = p:wait(0.1)
      assert.is_nil(r)
      assert.equal("timeout", why)
      assert.is_true(p:running())
      p:kill("KILL")
      assert.equal(9, p:wait().signal)
    end)

    it("kills the whole group with TERM, then KILL after the grace period", function()
      local p = assert(proc.spawn({ "sh", "-c", "trap '' TERM; sleep 30 & wait" }, { grace = 0.2 }))
      time.sleep(0.1)
      assert.is_true(p:kill())
      local r = p:wait()
      assert.equal(9, r.signal)
      assert.is_false(p:kill())
    end)

    it("ends every live tree at once with proc.shutdown", function()
      local a = assert(proc.spawn({ "sleep", "30" }, { grace = 0.2 }))
      local b = assert(proc.spawn({ "sh", "-c", "trap '' TERM; sleep 30 & wait" }, { grace = 0.2 }))
      time.sleep(0.1)
      proc.shutdown()
      assert.equal(0, proc.live())
      assert.is_false(proc.exists(a:pid()))
      assert.is_false(proc.exists(b:pid()))
    end)

    it("describes a process with proc.stat, spaces and ')' in its name or not", function()
      local dir = H.tmpdir()
      local p
      -- (one finally: busted keeps only the last one given)
      finally(function()
        if p then
          p:kill("KILL")
          p:wait()
        end
        H.rmrf(dir)
      end)
      local prog = dir .. "/a) b c"
      assert(fs.copy("/bin/sleep", prog))
      p = assert(proc.spawn({ prog, "30" }))
      local me = assert(proc.stat(proc.self().pid))
      for _ = 1, 100 do -- until the child has exec'ed the copy
        if H.read("/proc/" .. p:pid() .. "/comm") == "a) b c\n" then break end
        time.sleep(0.01)
      end
      assert.equal("a) b c\n", H.read("/proc/" .. p:pid() .. "/comm"))
      local st = assert(proc.stat(p:pid()))
      assert.matches("^[RS]$", st.state)
      assert.equal(proc.self().pid, st.ppid)
      assert.equal(p:pid(), st.pgid)
      assert.is_true(math.type(st.start) == "integer" and st.start >= me.start)
      assert.equal(me.start, proc.stat(proc.self().pid).start)
    end)

    it("sends a signal to one process with proc.signal", function()
      local p = assert(proc.spawn({ "sleep", "30" }))
      assert.is_true(proc.signal(p:pid(), "USR1"))
      assert.equal(10, p:wait().signal)
      local ok, _, errname = proc.signal(p:pid(), "TERM")
      assert.is_nil(ok)
      assert.equal("ESRCH", errname)
      assert.has_error(function() proc.signal(p:pid(), "SPARKLE") end)
    end)

    it("shows its state in tostring", function()
      local p = assert(proc.spawn({ "true" }))
      assert.matches("novapipe.Process %(pid %d+, running%)", tostring(p))
      p:wait()
      assert.matches("done", tostring(p))
    end)

    it("closes a <close> handle by ending its tree", function()
      local pid
      do
        local p <close> = assert(proc.spawn({ "sleep", "30" }, { grace = 0.2 }))
        pid = p:pid()
      end
      assert.is_false(proc.exists(pid))
    end)

    it("runs 200 processes with at most 4 at once, each with its own status", function()
      local process = require "novapipe.process"
      local jobs = {}
      for i = 1, 200 do jobs[i] = { { "sh", "-c", "exit " .. (i % 7) }, { stdout = "null", stderr = "null" } } end
      local most = 0
      local results = process.run_all(jobs, {
        max = 4,
        on_start = function()
          -- The kernel's own list of our children (adopted orphans included).
          local n = #assert(proc.children())
          if n > most then most = n end
        end,
      })
      assert.equal(200, #results)
      for i, r in ipairs(results) do assert.equal(i % 7, r.code) end
      assert.is_true(most <= 4, "saw " .. most .. " children at once")
      assert.is_true(most >= 2)
    end)
  end)
end)
