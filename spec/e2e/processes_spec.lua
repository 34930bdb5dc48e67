-- No process of a test outlives novapipe: not one that cleared its
-- environment and left for a session of its own (the subreaper adopts it,
-- without a tag to trace it by), and not one that stayed in pytest's
-- process group when novapipe itself is killed with SIGKILL (the watchdog
-- ends the group).
local fs = require "novapipe.fs"
local proc = require "novapipe.proc"
local time = require "novapipe.time"
local H = require "spec.support.h"

local TESTS = "backend/app/tests/standalone/"

-- Waits until no process runs `sleep marker`; true when it is gone.
local function gone(marker, seconds)
  local deadline = time.now() + (seconds or 10)
  while H.find_process("sleep", marker) do
    if time.now() > deadline then return false end
    time.sleep(0.05)
  end
  return true
end

local function wait_started(marker)
  local deadline = time.now() + 60
  while not H.find_process("sleep", marker) and time.now() < deadline do time.sleep(0.05) end
  assert.is_number(H.find_process("sleep", marker), "the test's process never started")
end

describe("processes", function()
  local keep = H.temporaries(after_each)
  local function project(body)
    local root = keep(H.tree({ [TESTS .. "test_p.py"] = "import subprocess, time\n\ndef test_p():\n" .. body }))
    assert(fs.mkdir_p(root .. "/" .. TESTS))
    return root
  end
  -- A test that starts a sleep with an environment of its own, in a new
  -- session: it carries no tag of novapipe's.
  local function stray(marker)
    return ("    subprocess.Popen(['sleep', '%s'], env={'PATH': '/usr/bin:/bin'}, start_new_session=True)\n"):format(marker)
  end

  it("end a stray that left the session with an environment of its own, after a normal end", function()
    local marker = H.marker()
    local root = project(stray(marker) .. "    time.sleep(0.5)\n")
    local r = H.novapipe({ "-C", root, "run", "run_tests", "--standalone" })
    assert.equal(0, r.code, r.stdout .. r.stderr)
    assert.is_true(gone(marker), "the stray survived novapipe")
  end)

  it("end such a stray after a timeout", function()
    local marker = H.marker()
    local root = project(stray(marker) .. "    time.sleep(60)\n")
    local r = H.novapipe({ "-C", root, "run", "run_tests", "--standalone", "--timeout", "3" })
    assert.equal(1, r.code)
    assert.is_true(gone(marker), "the stray survived the timeout")
  end)

  it("end such a stray after Ctrl-C", function()
    local marker, waiter = H.marker(), H.marker()
    local root = project(stray(marker) .. ("    subprocess.run(['sleep', '%s'])\n"):format(waiter))
    local p = assert(proc.spawn({ H.bin, "-C", root, "run", "run_tests", "--standalone" },
      { stdout = "capture", stderr = "capture" }))
    wait_started(waiter)
    assert.is_number(H.find_process("sleep", marker))
    p:kill("INT")
    assert.equal(130, p:wait().code)
    assert.is_true(gone(marker), "the stray survived Ctrl-C")
    assert.is_true(gone(waiter))
  end)

  it("end a grandchild in pytest's process group when novapipe is killed with SIGKILL", function()
    local marker = H.marker()
    local root = project(("    subprocess.run(['sleep', '%s'])\n"):format(marker))
    local p = assert(proc.spawn({ H.bin, "-C", root, "run", "run_tests", "--standalone" },
      { stdout = "capture", stderr = "capture" }))
    wait_started(marker)
    p:kill("KILL")
    p:wait()
    assert.is_true(gone(marker), "the grandchild survived novapipe's SIGKILL")
  end)
end)
