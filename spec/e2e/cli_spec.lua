-- End-to-end: the built novapipe binary, started as a real process.
local lfs = require "lfs"
local proc = require "novapipe.proc"
local time = require "novapipe.time"
local H = require "spec.support.h"

local function pipeline_file(dir, name, text)
  assert(require("novapipe.fs").mkdir_p(dir .. "/pipelines"))
  H.write(dir .. "/pipelines/" .. name .. ".lua", text)
end

local function lines_of(s)
  local n = 0
  for _ in s:gmatch("[^\n]+") do n = n + 1 end
  return n
end

local function wait_until(fn, seconds)
  local deadline = time.now() + seconds
  while time.now() < deadline do
    if fn() then return true end
    time.sleep(0.02)
  end
  return fn()
end

describe("novapipe (the binary)", function()
  local dir
  before_each(function() dir = H.tmpdir() end)
  after_each(function() H.rmrf(dir) end)

  describe("refuses bad input with exit 2 and one clear line", function()
    it("for a pipeline with a syntax error, naming file and line", function()
      pipeline_file(dir, "broken", "local np = require 'novapipe'\nreturn np.pipeline {\n  description = 'x'\n  stages = nil }\n")
      local r = H.novapipe({ "-C", dir, "run", "broken" })
      assert.equal(2, r.code)
      assert.matches("pipelines/broken.lua:4:", r.stderr)
      assert.equal(1, lines_of(r.stderr))
    end)

    it("for a pipeline that raises at run time, with file:line and a traceback", function()
      pipeline_file(dir, "raises", [[
local np = require "novapipe"
return np.pipeline {
  description = "raises",
  stages = function()
    return { np.stage { name = "boom", run = function()
      local t = nil
      return t.field
    end } }
  end,
}
]])
      local r = H.novapipe({ "-C", dir, "run", "raises" })
      assert.equal(2, r.code)
      assert.matches("pipelines/raises.lua:7: attempt to index a nil value", r.stderr)
      assert.matches("stack traceback:", r.stderr)
    end)

    it("for an unknown option", function()
      local r = H.novapipe({ "run", "all", "--no-such-option" })
      assert.equal(2, r.code)
      assert.equal("novapipe: all: unknown option '--no-such-option' (try 'novapipe run all --help')\n", r.stderr)
    end)

    it("for a pipeline name that does not exist", function()
      local r = H.novapipe({ "-C", dir, "run", "nightly" })
      assert.equal(2, r.code)
      assert.equal("novapipe: unknown pipeline 'nightly'; 'novapipe list' shows the available ones\n", r.stderr)
    end)

    it("for a file that does not return a pipeline", function()
      pipeline_file(dir, "empty", "return 42\n")
      local r = H.novapipe({ "-C", dir, "run", "empty" })
      assert.equal(2, r.code)
      assert.matches("does not return a pipeline", r.stderr)
    end)

    it("for an unknown command and a missing -C directory", function()
      assert.equal(2, H.novapipe({ "frobnicate" }).code)
      local r = H.novapipe({ "-C", dir .. "/missing", "list" })
      assert.equal(2, r.code)
      assert.matches("not a directory", r.stderr)
    end)
  end)

  describe("runs pipelines", function()
    it("gates a stage on the one it needs and sets the exit code", function()
      pipeline_file(dir, "gated", [[
local np = require "novapipe"
return np.pipeline {
  description = "gated",
  options = { { "--pass", "make the first stage pass" } },
  stages = function(opts)
    return {
      np.stage { name = "first", run = function() return opts.pass == true end },
      np.stage { name = "second", needs = { "first" }, run = function() return true end },
    }
  end,
}
]])
      local r = H.novapipe({ "-C", dir, "--no-color", "run", "gated" })
      assert.equal(1, r.code)
      assert.matches("SKIP%s+second", r.stdout)
      assert.matches("skipped: first failed", r.stdout)
      r = H.novapipe({ "-C", dir, "--no-color", "run", "pipelines/gated.lua", "--pass" })
      assert.equal(0, r.code)
      assert.matches("PASS%s+second", r.stdout)
    end)

    it("prefers the project's pipelines and lists both with descriptions", function()
      pipeline_file(dir, "mine", "local np = require 'novapipe'\nreturn np.pipeline { description = 'my own', stages = function() return {} end }\n")
      local r = H.novapipe({ "-C", dir, "--no-color", "list" })
      assert.equal(0, r.code)
      assert.matches("mine%s+my own", r.stdout)
      assert.matches("all%s+", r.stdout)
    end)

    it("generates --help from the declared options", function()
      local r = H.novapipe({ "run", "all", "--help" })
      assert.equal(0, r.code)
      assert.matches("Usage: novapipe run all", r.stdout)
    end)

    it("prints its version", function()
      local r = H.novapipe({ "--version" })
      assert.equal(0, r.code)
      assert.matches("^novapipe %d+%.%d+%.%d+ %(Lua 5%.4", r.stdout)
    end)

    it("execs a script with a shebang line and its arguments", function()
      H.write(dir .. "/s.lua", "#!/usr/bin/env novapipe\nlocal a, b = ...\nio.write(arg[0], ' ', a, ' ', b, ' ', require('novapipe.time').iso8601(0))\nreturn 3\n")
      local r = H.novapipe({ "exec", dir .. "/s.lua", "x", "--y" })
      assert.equal(3, r.code)
      assert.equal(dir .. "/s.lua x --y 1970-01-01T00:00:00.000Z", r.stdout)
    end)
  end)

  describe("leaves no process behind", function()
    for _, sig in ipairs({ "INT", "TERM" }) do
      it("on SIG" .. sig .. " with 4 children running: all end and it exits 130", function()
        local marker = H.marker()
        H.write(dir .. "/four.lua", ([[
local process = require "novapipe.process"
local jobs = {}
for i = 1, 4 do
  -- the last one ignores TERM: the grace period ends it with KILL
  local cmd = i == 4 and "trap '' TERM; sleep %s & wait" or "sleep %s"
  jobs[i] = { { "sh", "-c", cmd }, { grace = 0.3 } }
end
process.run_all(jobs, { max = 4 })
]]):format(marker, marker))
        local p = assert(proc.spawn({ H.bin, "exec", dir .. "/four.lua" }, { stdout = "capture", stderr = "capture" }))
        assert.is_true(wait_until(function()
          local n = 0
          for pid in lfs.dir("/proc") do
            if pid:match("^%d+$") and H.read("/proc/" .. pid .. "/cmdline") == "sleep\0" .. marker .. "\0" then n = n + 1 end
          end
          return n == 4
        end, 10), "the 4 children never ran")
        p:kill(sig)
        local r = p:wait()
        assert.equal(130, r.code)
        assert.matches("interrupted", r.stderr)
        assert.is_nil(H.find_process("sleep", marker))
      end)

    end

    it("when novapipe itself is killed with SIGKILL, its children do not run on", function()
      local marker = H.marker()
      H.write(dir .. "/hang.lua", ([[
local proc = require "novapipe.proc"
proc.spawn({ "sleep", "%s" }):wait()
]]):format(marker))
      local p = assert(proc.spawn({ H.bin, "exec", dir .. "/hang.lua" }))
      assert.is_true(wait_until(function() return H.find_process("sleep", marker) end, 10))
      p:kill("KILL")
      assert.equal(9, p:wait().signal)
      assert.is_true(wait_until(function() return H.find_process("sleep", marker) == nil end, 5))
    end)
  end)

  -- The RSS bound is a property of the release build: under AddressSanitizer
  -- the quarantine of freed memory (256 MB) holds every line string the
  -- callback saw. The runs themselves are checked in both builds.
  describe("installed with cmake --install", function()
    it("finds its Lua files beside itself, from any directory", function()
      local prefix = dir .. "/prefix"
      local build = H.bin:match("^(.*)/[^/]+$")
      local r = assert(require("novapipe.process").run({ "cmake", "--install", build, "--prefix", prefix }))
      assert.equal(0, r.code, r.stderr)
      local installed = prefix .. "/bin/novapipe"
      r = assert(require("novapipe.process").run({ installed, "--no-color", "list" }, { cwd = "/" }))
      assert.equal(0, r.code, r.stderr)
      assert.matches("all%s+Classify the tests, run every tier", r.stdout)
      assert.matches("run_tests%s+Run the test tiers", r.stdout)
      assert.matches("security%s+Security tests across the tiers", r.stdout)
      for _, py in ipairs({ "novapipe_read.py", "novapipe_pytest.py", "novapipe_advisories.py" }) do
        assert.truthy(lfs.attributes(prefix .. "/share/novapipe/python/" .. py), py)
      end
      -- the plugin's bytecode made ahead, for the Python that runs pytest here
      local tag = require("novapipe.process").run({ "/usr/bin/python3", "-c",
        "import sys; print(sys.implementation.cache_tag)" }).stdout:match("%S+")
      assert.truthy(lfs.attributes(("%s/share/novapipe/python/__pycache__/novapipe_pytest.%s.pyc"):format(prefix, tag)))
      -- its modules compiled ahead, each chunk naming the installed source
      local chunk = H.read(prefix .. "/share/novapipe/luac/lua_modules/novapipe/cli.luac")
      assert.equal(prefix .. "/share/novapipe/lua_modules/novapipe/cli.lua", chunk:match("^NPC1 %x+ %d+ ([^\n]+)\n"))
      -- install_manifest.txt names every file installed, the compiled ones
      -- too (what `xargs rm < install_manifest.txt` removes)
      local listed = {}
      for line in assert(H.read(build .. "/install_manifest.txt")):gmatch("[^\n]+") do listed[line] = true end
      local files = assert(require("novapipe.fs").walk(prefix))
      assert.is_true(#files > 100)
      for _, rel in ipairs(files) do assert.is_true(listed[prefix .. "/" .. rel], rel) end
      -- A tier run from the installed copy finds its pytest plugin there.
      -- On a copy of the example: a run leaves its record and audit log in
      -- the project, which the other specs' copies of it would take along.
      local clinic = dir .. "/clinic"
      assert.equal(0, require("novapipe.process").run({ "cp", "-a", "examples/clinic/.", clinic .. "/" }).code)
      r = assert(require("novapipe.process").run({ installed, "-C", clinic, "--no-color", "run", "run_tests", "--standalone" }))
      assert.equal(0, r.code, r.stdout .. r.stderr)
      assert.matches("PASS%s+standalone[^\n]*%d+ passed", r.stdout)
    end)

    it("without its Lua files, says where it looked and exits 2", function()
      local lonely = dir .. "/novapipe"
      assert(require("novapipe.fs").copy(H.bin, lonely))
      local r = assert(require("novapipe.process").run({ lonely, "list" }, { cwd = "/", env = { NOVAPIPE_HOME = false } }))
      assert.equal(2, r.code)
      assert.equal("novapipe: cannot find novapipe's Lua modules beside the executable; reinstall novapipe "
        .. "or set NOVAPIPE_HOME to its share/novapipe directory\n", r.stderr)
    end)
  end)

  describe("streams output in bounded memory", function()
    local limit = 32 * 1024 * 1024
    local function run_script(body)
      H.write(dir .. "/big.lua", body)
      local r = H.novapipe({ "exec", dir .. "/big.lua" })
      assert.equal(0, r.code, r.stderr)
      return r
    end

    it("captures 200 MB to a file with peak RSS under 32 MB", function()
      local r = run_script(([[
local proc = require "novapipe.proc"
local r = proc.spawn({ "head", "-c", "209715200", "/dev/zero" }, { stdout = { file = %q } }):wait()
io.write(r.code, " ", proc.self().maxrss)
]]):format(dir .. "/out.bin"))
      local code, rss = r.stdout:match("(%d+) (%d+)")
      assert.equal("0", code)
      assert.equal(209715200, lfs.attributes(dir .. "/out.bin", "size"))
      if not H.sanitized then assert.is_true(tonumber(rss) < limit, "peak RSS " .. rss) end
      -- The same run measured from outside, by the kernel.
      if not H.sanitized then assert.is_true(r.maxrss < limit, "peak RSS " .. r.maxrss) end
    end)

    it("passes 200 MB of 80-byte lines through a line callback with peak RSS under 32 MB", function()
      local r = run_script([[
local proc = require "novapipe.proc"
local n = 0
local script = "yes 0123456789012345678901234567890123456789012345678901234567890123456789012345678 | head -c 209715200"
local r = proc.spawn({ "sh", "-c", script }, { stdout = function() n = n + 1 end }):wait()
io.write(r.code, " ", n)
]])
      assert.equal("0 2621440", r.stdout)
      if not H.sanitized then assert.is_true(r.maxrss < limit, "peak RSS " .. r.maxrss) end
    end)
  end)
end)
