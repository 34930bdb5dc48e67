-- novapipe watch end to end: the real binary in the background on a small
-- project (a git repository), real inotify, real pytest, a real SIGINT.
local fs = require "novapipe.fs"
local lfs = require "lfs"
local proc = require "novapipe.proc"
local time = require "novapipe.time"
local H = require "spec.support.h"

-- A standalone tier of two test files, each importing its own module;
-- test_beta.py sleeps for as long as the file scratch/slow says (none: no
-- sleep), after writing scratch/started; scratch/ is ignored (.gitignore),
-- so neither file is a change the watch sees.
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
      "    scratch = os.path.join(os.path.dirname(__file__), '..', '..', '..', '..', 'scratch')",
      "    slow = os.path.join(scratch, 'slow')",
      "    if os.path.exists(slow):",
      "        open(os.path.join(scratch, 'started'), 'w').close()",
      "        time.sleep(float(open(slow).read()))",
      "    assert VALUE == 2",
      "" }, "\n"),
  }))
  H.git_repo(root)
  assert(fs.mkdir_p(root .. "/scratch", "0755"))
  return root
end

-- A save as editors make it: a temporary written, then renamed over.
local function save(path, text)
  H.write(path .. ".tmp", text)
  assert(os.rename(path .. ".tmp", path))
end

-- `novapipe watch` in the background, its output into a file (opts.tier:
-- the tier option, default --standalone; opts.env: more environment;
-- opts.terminal: on a pseudo-terminal, through script(1)).
local function start(root, keep, args, opts)
  opts = opts or {}
  local out = keep(H.tmpdir()) .. "/out"
  -- (redirected by the shell, which then becomes novapipe: proc.spawn's
  -- file output is copied by a wait of this process, which polls instead)
  local argv = { "/bin/sh", "-c", 'exec "$0" "$@" >"$WATCH_OUT" 2>"$WATCH_OUT.err"' }
  if opts.terminal then
    -- script runs the command line on a terminal of its own and copies
    -- what it shows to its output
    local line = { "exec", H.bin, "-C", root, "--no-color", "watch", opts.tier or "--standalone" }
    for _, a in ipairs(args or {}) do line[#line + 1] = a end
    for i, a in ipairs(line) do line[i] = "'" .. a:gsub("'", "'\\''") .. "'" end
    for _, a in ipairs({ "script", "-q", "-e", "-c", table.concat(line, " "), "/dev/null" }) do argv[#argv + 1] = a end
  else
    for _, a in ipairs({ H.bin, "-C", root, "--no-color", "watch", opts.tier or "--standalone" }) do
      argv[#argv + 1] = a
    end
    for _, a in ipairs(args or {}) do argv[#argv + 1] = a end
  end
  local vars = { PYTHONDONTWRITEBYTECODE = "1", WATCH_OUT = out }
  for k, v in pairs(opts.env or {}) do vars[k] = v end
  local p = assert(proc.spawn(argv, { stdin = "null", env = H.isolated_env(vars) }))
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
    if count(text, "\n[a-z]+ in [%d.]+s\r?\n") >= n then
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

-- The pids of the processes whose command line holds `word` (a watch's
-- novapipe, a PostgreSQL by its data directory).
local function processes_with(word)
  local found = {}
  for pid in lfs.dir("/proc") do
    if pid:match("^%d+$") and (H.read("/proc/" .. pid .. "/cmdline") or ""):find(word, 1, true) then
      found[#found + 1] = pid
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
    H.write(root .. "/scratch/slow", "2")
    save(root .. "/backend/app/alpha.py", "VALUE = 1  # saved\n")
    -- mid-run (test_beta sleeps, having imported beta.py), two saves: one
    -- more run, for both
    local deadline = time.now() + 30
    while not lfs.attributes(root .. "/scratch/started") do
      assert(time.now() < deadline, "test_beta did not start:\n" .. (H.read(out) or ""))
      time.sleep(0.05)
    end
    os.remove(root .. "/scratch/started")
    save(root .. "/backend/app/beta.py", "VALUE = 2\n")
    save(root .. "/backend/app/alpha.py", "VALUE = 1  # again\n")
    os.remove(root .. "/scratch/slow")
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
    H.write(root .. "/scratch/slow", "60")
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

  it("keeps one throwaway PostgreSQL for the whole watch, its databases made anew for each run", function()
    -- an integration tier whose test leaves a table and a database behind:
    -- a second run on the same databases would fail
    local root = keep(H.project({
      ["pytest.ini"] = "[pytest]\n",
      ["novapipe.lua"] = 'return { tiers = { integration = { services = { "postgresql" } } } }\n',
      ["backend/__init__.py"] = "",
      ["backend/app/__init__.py"] = "",
      ["backend/app/db.py"] = "import os\n\nURL = os.environ['DATABASE_URL']\n",
      ["backend/app/tests/__init__.py"] = "",
      ["backend/app/tests/standalone/__init__.py"] = "",
      ["backend/app/tests/venv/__init__.py"] = "",
      ["backend/app/tests/integration/__init__.py"] = "",
      ["backend/app/tests/integration/test_db.py"] = table.concat({
        "import os",
        "import psycopg2",
        "from backend.app.db import URL",
        "",
        "",
        "def test_a_fresh_database():",
        "    with open(os.environ['SEEN_FILE'], 'a') as f:",
        "        f.write(URL + '\\n')",
        "    conn = psycopg2.connect(URL)",
        "    conn.autocommit = True",
        "    cur = conn.cursor()",
        "    cur.execute(\"SELECT count(*) FROM pg_database WHERE datname = 'made_by_a_test'\")",
        "    assert cur.fetchone()[0] == 0",
        "    cur.execute('CREATE DATABASE made_by_a_test')",
        "    cur.execute('CREATE TABLE left_behind (x int)')",
        "    conn.close()",
        "" }, "\n"),
    }))
    H.git_repo(root)
    local seen = keep(H.tmpdir()) .. "/seen"
    local p, out = start(root, keep, {}, { tier = "--integration", env = { SEEN_FILE = seen } })
    local text = wait_runs(out, 1)
    assert.matches("PASS%s+integration%s+%S+%s+1 passed", text)
    save(root .. "/backend/app/db.py", "import os\n\nURL = os.environ['DATABASE_URL']  # saved\n")
    text = wait_runs(out, 2)
    assert.matches("saved: backend/app/db%.py.*PASS%s+integration%s+%S+%s+1 passed", text)
    -- both runs on one server: one DATABASE_URL
    local urls = {}
    for line in (H.read(seen) or ""):gmatch("[^\n]+") do urls[#urls + 1] = line end
    assert.equal(2, #urls, text)
    assert.equal(urls[1], urls[2])
    local dir = urls[1]:match("host=(/[^&]+)")
    assert.is_not_nil(dir, urls[1])
    assert.equal("directory", lfs.attributes(dir, "mode"))
    assert.equal(1, #processes_with(dir), "one PostgreSQL")
    -- Ctrl-C: the server and its data go
    local r = interrupt(p)
    assert.equal(130, r.code, H.read(out) .. (H.read(out .. ".err") or ""))
    assert.is_nil(lfs.attributes(dir))
    assert.same({}, processes_with(dir))
  end)

  it("on a terminal, clears the screen before each re-run; off one, never", function()
    local root = project(keep)
    local p, out = start(root, keep, {}, { terminal = true })
    local text = wait_runs(out, 1)
    save(root .. "/backend/app/alpha.py", "VALUE = 1  # saved\n")
    text = wait_runs(out, 2)
    local clear = "\27[H\27[2J"
    local at = text:find(clear, 1, true)
    assert.is_not_nil(at, text)
    -- the clear comes once, after the first run and before the re-run's header
    assert.is_nil(text:find(clear, at + 1, true))
    assert.truthy(text:find("passed in", 1, true) < at)
    assert.matches("^[^\n]*%-%-%-%- %d%d:%d%d:%d%d  saved: backend/app/alpha%.py", text:sub(at + #clear))
    -- the watch's novapipe (script's child) takes the Ctrl-C
    local mine
    for _, pid in ipairs(processes_with(root)) do
      local st = proc.stat(pid)
      if st and st.ppid == p:pid() then mine = tonumber(pid) end
    end
    assert.is_not_nil(mine, "novapipe under script")
    assert(proc.signal(mine, "INT"))
    local r = p:wait(20)
    assert.equal(130, r.code)
    assert.same({}, project_pytests(root))
    -- off a terminal: plain lines, no control sequence at all
    local p2, out2 = start(root, keep)
    wait_runs(out2, 1)
    save(root .. "/backend/app/alpha.py", "VALUE = 1  # again\n")
    local plain = wait_runs(out2, 2)
    assert.is_nil(plain:find("\27", 1, true), plain)
    assert.equal(130, interrupt(p2).code)
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
