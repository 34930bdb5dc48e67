-- novapipe watch end to end: the real binary in the background on a small
-- project (a git repository), real inotify, real pytest, a real SIGINT.
local fs = require "novapipe.fs"
local lfs = require "lfs"
local proc = require "novapipe.proc"
local time = require "novapipe.time"
local H = require "spec.support.h"

local git = H.git

-- A standalone tier of two test files, each importing its own module;
-- test_beta.py sleeps for as long as the file `slow` says (none: no sleep).
local function project(keep)
  local root = keep(H.project({
    ["pytest.ini"] = "[pytest]\n",
    [".gitignore"] = "scratch/\n",
    ["backend/__init__.py"] = "",
    ["backend/app/__init__.py"] = "",
    ["backend/app/alpha.py"] = "VALUE = 1\n",
    ["backend/app/beta.py"] = "VALUE = 2\n",
    ["backend/app/tests/__init__.py"] = "",
    ["backend/app/tests/standalone/__init__.py"] = "",
    -- (the tiers' directories a first run would make: made here, they are
    -- not a change the watch sees)
    ["backend/app/tests/venv/__init__.py"] = "",
    ["backend/app/tests/integration/__init__.py"] = "",
    ["backend/app/tests/standalone/test_alpha.py"] =
      "from backend.app.alpha import VALUE\n\n\ndef test_alpha():\n    assert VALUE == 1\n",
    ["backend/app/tests/standalone/test_beta.py"] = table.concat({
      "import os, time",
      "from backend.app.beta import VALUE",
      "",
      "",
      "def test_beta():",
      "    slow = os.path.join(os.path.dirname(__file__), '..', '..', '..', '..', 'slow')",
      "    if os.path.exists(slow):",
      "        time.sleep(float(open(slow).read()))",
      "    assert VALUE == 2",
      "" }, "\n"),
  }))
  git(root, "init", "-q")
  git(root, "add", "-A")
  git(root, "commit", "-qm", "start")
  return root
end

-- A save as editors make it: a temporary written, then renamed over.
local function save(path, text)
  H.write(path .. ".tmp", text)
  assert(os.rename(path .. ".tmp", path))
end

-- `novapipe watch` in the background, its output into a file.
local function start(root, keep, args)
  local out = keep(H.tmpdir()) .. "/out"
  -- (redirected by the shell, which then becomes novapipe: proc.spawn's
  -- file output is copied by a wait of this process, which polls instead)
  local argv = { "/bin/sh", "-c", 'exec "$0" "$@" >"$WATCH_OUT" 2>"$WATCH_OUT.err"', H.bin, "-C", root, "--no-color",
                 "watch", "--standalone" }
  for _, a in ipairs(args or {}) do argv[#argv + 1] = a end
  local env = H.isolated_env({ PYTHONDONTWRITEBYTECODE = "1", WATCH_OUT = out })
  local p = assert(proc.spawn(argv, { stdin = "null", env = env }))
  return p, out
end

local function count(text, pattern)
  local n = 0
  for _ in text:gmatch(pattern) do n = n + 1 end
  return n
end

-- Waits (at most 30 s: only so a broken watch cannot hang the specs) until
-- the output holds `n` summaries; returns it.
local function wait_runs(out, n)
  local deadline = time.now() + 30
  while true do
    local text = H.read(out) or ""
    if count(text, "\n[a-z]+ in [%d.]+s\n") >= n then
      return text
    end
    assert(time.now() < deadline, "no " .. n .. " runs in time:\n" .. text .. (H.read(out .. ".err") or ""))
    time.sleep(0.1)
  end
end

-- The pids of the pytest processes of this project still alive.
local function project_pytests(root)
  local found = {}
  for pid in lfs.dir("/proc") do
    if pid:match("^%d+$") then
      local cmd = H.read("/proc/" .. pid .. "/cmdline") or ""
      local cwd = lfs.symlinkattributes("/proc/" .. pid .. "/cwd", "target")
      if cmd:find("pytest", 1, true) and (cwd == root or cmd:find(root, 1, true)) then found[#found + 1] = pid end
    end
  end
  return found
end

local function interrupt(p)
  assert(p:kill("INT"))
  local r = p:wait(20)
  return r
end

describe("novapipe watch", function()
  local keep = H.temporaries(after_each)

  it("runs the tests, then on a save only the affected file; Ctrl-C exits 130 with no pytest left", function()
    local root = project(keep)
    local p, out = start(root, keep)
    local text = wait_runs(out, 1)
    assert.matches("PASS%s+standalone%s+%S+%s+2 passed", text)
    -- saves of ignored files trigger nothing: git's ignores, coverage data
    assert(fs.mkdir_p(root .. "/scratch", "0755"))
    H.write(root .. "/scratch/notes.py", "x = 1\n")
    H.write(root .. "/.coverage.standalone", "data")
    time.sleep(0.5)
    save(root .. "/backend/app/alpha.py", "VALUE = 1  # saved\n")
    text = wait_runs(out, 2)
    local rerun = text:match("\n(%-%-%-%- [^\n]*saved: [^\n]*\n.*)$")
    assert.is_not_nil(rerun, text)
    assert.matches("^%-%-%-%- %d%d:%d%d:%d%d  saved: backend/app/alpha%.py %-%-%-%-\n", rerun)
    assert.matches("PASS%s+changed%s+%S+%s+1 of 2 test files affected by 1 changed file", rerun)
    assert.matches("PASS%s+standalone%s+%S+%s+1 passed", rerun)
    assert.equal(1, count(text, "saved: "), text)
    assert.not_matches("scratch", text)
    local rec = H.read(root .. "/.novapipe/last-run.json")
    assert.matches('"file":"backend/app/tests/standalone/test_alpha.py"', rec)
    assert.not_matches("test_beta", rec)
    local r = interrupt(p)
    assert.equal(130, r.code, H.read(out) .. (H.read(out .. ".err") or ""))
    assert.same({}, project_pytests(root))
  end)

  it("reruns the last failures with the affected files; a save during a run makes one more run; Ctrl-C ends pytest", function()
    local root = project(keep)
    save(root .. "/backend/app/beta.py", "VALUE = 3\n")
    local p, out = start(root, keep)
    local text = wait_runs(out, 1)
    assert.matches("FAIL%s+standalone%s+%S+%s+1 passed, 1 failed", text)
    assert.matches("Failures", text)
    -- a save of alpha.py: test_alpha.py, and test_beta's failure again
    H.write(root .. "/slow", "2")
    save(root .. "/backend/app/alpha.py", "VALUE = 1  # saved\n")
    -- mid-run (test_beta sleeps), two saves: one more run, for both
    local deadline = time.now() + 20
    while not (H.read(out) or ""):find("saved: backend/app/alpha", 1, true) do
      assert(time.now() < deadline, "no re-run began")
      time.sleep(0.05)
    end
    time.sleep(0.8)
    save(root .. "/backend/app/beta.py", "VALUE = 2\n")
    save(root .. "/backend/app/alpha.py", "VALUE = 1  # again\n")
    os.remove(root .. "/slow")
    text = wait_runs(out, 3)
    time.sleep(1.5) -- no fourth run comes
    text = H.read(out)
    assert.equal(2, count(text, "saved: "), text)
    local second, third = text:match("\n(%-%-%-%- [^\n]*saved: [^\n]*\n.-)\n(%-%-%-%- [^\n]*saved: [^\n]*\n.*)$")
    assert.is_not_nil(second, text)
    assert.matches("FAIL%s+standalone%s+%S+%s+1 passed, 1 failed", second)
    assert.matches("saved: backend/app/alpha%.py, backend/app/beta%.py", third)
    assert.matches("PASS%s+standalone%s+%S+%s+2 passed", third)
    -- Ctrl-C while pytest runs: it goes too
    H.write(root .. "/slow", "60")
    save(root .. "/backend/app/beta.py", "VALUE = 2  # saved\n")
    deadline = time.now() + 20
    while #project_pytests(root) == 0 do
      assert(time.now() < deadline, "no pytest began:\n" .. H.read(out))
      time.sleep(0.05)
    end
    local r = interrupt(p)
    assert.equal(130, r.code)
    assert.same({}, project_pytests(root))
  end)

  it("refuses the options it selects by itself, and explains itself with --help", function()
    local r = H.novapipe({ "--no-color", "watch", "--changed" })
    assert.equal(2, r.code)
    assert.matches("watch: %-%-changed cannot be used here", r.stderr)
    r = H.novapipe({ "--no-color", "watch", "--help" })
    assert.equal(0, r.code)
    assert.matches("Usage: novapipe watch", r.stdout)
    assert.matches("novapipe run run_tests %-%-help", r.stdout)
  end)
end)
