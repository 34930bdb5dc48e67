-- Tiers at once (speculative tiers): a tier starts before the tiers it
-- needs have passed, its results held back until they have; when one does
-- not pass, those that need it are ended and the run is the one a
-- sequential run gives. Each case runs the same suite both ways and
-- compares what a user and CI see: the console, the exit code, the run
-- record's tests and the reports written.
local cjson = require "cjson"
local fs = require "novapipe.fs"
local lfs = require "lfs"
local proc = require "novapipe.proc"
local time = require "novapipe.time"
local H = require "spec.support.h"

local TESTS = "backend/app/tests/"

-- Three tiers of two test files each; `change` adds or replaces files.
local function suite(change)
  local files = {}
  for _, tier in ipairs({ "standalone", "venv", "integration" }) do
    for i = 1, 2 do
      files[("%s%s/test_%s_%d.py"):format(TESTS, tier, tier, i)] =
        ("def test_one():\n    pass\n\ndef test_two():\n    assert 1 + %d\n"):format(i)
    end
  end
  for k, v in pairs(change or {}) do files[k] = v end
  return files
end

-- What a run shows, with its times taken out.
local function seen(root, r)
  local record = cjson.decode((assert(H.read(root .. "/.novapipe/last-run.json"))))
  local tests = {}
  for _, t in ipairs(record.tests) do tests[#tests + 1] = ("%s %s %s"):format(t.tier, t.id, t.outcome) end
  table.sort(tests)
  local reports = {}
  for _, rep in ipairs(record.reports) do reports[#reports + 1] = rep.path end
  local results = {}
  for name in lfs.dir(root .. "/backend/test-results") do
    if name:match("%.xml$") then results[#results + 1] = name end
  end
  table.sort(results)
  return {
    code = r.code,
    console = (r.stdout:gsub("%d+%.%d+s", "T")),
    stderr = r.stderr,
    tests = tests,
    reports = reports,
    results = results,
    totals = record.totals,
  }
end

describe("tiers at once", function()
  local keep = H.temporaries(after_each)

  local function both(files, args)
    local out = {}
    for _, mode in ipairs({ { "--jobs", "3" }, { "--sequential" } }) do
      local root = keep(H.tree(files))
      local argv = { "-C", root, "--no-color", "run", "run_tests", "--all", "--junit", "--durations", "0", table.unpack(mode) }
      for _, a in ipairs(args or {}) do argv[#argv + 1] = a end
      local r = H.novapipe(argv)
      out[#out + 1] = seen(root, r)
    end
    return out[1], out[2]
  end

  it("give the run a sequential run gives, with a failure in each tier in turn", function()
    for _, tier in ipairs({ "standalone", "venv", "integration" }) do
      local broken = ("%s%s/test_%s_2.py"):format(TESTS, tier, tier)
      local at_once, sequential = both(suite({ [broken] = "def test_two():\n    assert 1 == 2, 'broken'\n" }))
      assert.equal(1, at_once.code, at_once.console .. at_once.stderr)
      assert.same(sequential, at_once)
      assert.matches("FAILED " .. broken:gsub("%p", "%%%0") .. "::test_two", at_once.console)
      if tier ~= "integration" then assert.matches("skipped: " .. tier .. " failed", at_once.console) end
    end
  end)

  it("end the tiers that need one that timed out, as a sequential run never starts them", function()
    local slow = "import time\n\ndef test_one():\n    time.sleep(30)\n"
    local at_once, sequential = both(suite({ [TESTS .. "standalone/test_standalone_1.py"] = slow,
                                             [TESTS .. "venv/test_venv_1.py"] = slow }), { "--timeout", "4" })
    assert.equal(1, at_once.code, at_once.console .. at_once.stderr)
    assert.same(sequential, at_once)
    assert.matches("timed out after 4s", at_once.console)
    assert.matches("skipped: standalone failed", at_once.console)
  end)

  it("end every tier and its services at Ctrl-C, leaving nothing", function()
    local marker = H.marker()
    local wait = ("import subprocess\n\ndef test_one():\n    subprocess.run(['sleep', '%s'])\n"):format(marker)
    local root = keep(H.tree(suite({
      ["novapipe.lua"] = "return { tiers = { venv = { services = { 'redis' } } } }\n",
      [TESTS .. "standalone/test_standalone_1.py"] = wait,
      [TESTS .. "venv/test_venv_1.py"] = wait,
    })))
    local tmp = root .. "/tmp"
    assert(fs.mkdir_p(tmp))
    local p = assert(proc.spawn({ H.bin, "-C", root, "run", "run_tests", "--all", "--junit", "--jobs", "2" },
      { stdout = "capture", stderr = "capture", env = { REDIS_URL = false, TMPDIR = tmp } }))
    -- both tiers' tests are running: the venv tier started before standalone passed
    local deadline = time.now() + 60
    -- processes whose command line holds `text`
    local function count(text)
      local n = 0
      for pid in lfs.dir("/proc") do
        local cmd = pid:match("^%d+$") and H.read("/proc/" .. pid .. "/cmdline") or ""
        if cmd:find(text, 1, true) then n = n + 1 end
      end
      return n
    end
    local function sleeping() return count("sleep\0" .. marker) end
    while sleeping() < 2 and time.now() < deadline do time.sleep(0.05) end
    assert.equal(2, sleeping(), "the two tiers did not run at once")
    p:kill("INT")
    local r = p:wait()
    assert.equal(130, r.code)
    assert.equal(0, sleeping())
    assert.equal(0, count(tmp .. "/novapipe-redis-"), "a Redis is still running")
    for name in lfs.dir(tmp) do assert.is_nil(name:find("^novapipe%-"), name .. " was left") end
    -- what pytest wrote is masked and ours, as after Ctrl-C in a sequential run
    for name in lfs.dir(root .. "/backend/test-results") do
      if name:match("%.xml$") then
        assert.equal("rw-------", lfs.attributes(root .. "/backend/test-results/" .. name, "permissions"))
      end
    end
  end)

  it("runs a tier under --parallel auto in one process until its recorded time is worth xdist's workers", function()
    local test = "import os\n\ndef test_where():\n    with open(os.environ['NOVAPIPE_SPEC_OUT'], 'w') as f:\n"
      .. "        f.write(os.environ.get('PYTEST_XDIST_WORKER', 'none'))\n"
    local root = keep(H.tree({ [TESTS .. "standalone/test_w.py"] = test }))
    local function worker()
      local r = H.novapipe({ "-C", root, "--no-color", "run", "run_tests", "--standalone", "-p", "auto" },
        { env = { NOVAPIPE_SPEC_OUT = root .. "/worker" } })
      assert.equal(0, r.code, r.stdout .. r.stderr)
      return H.read(root .. "/worker")
    end
    assert.equal("none", worker())
    -- recorded: a tier of 10 s
    H.write(root .. "/.novapipe/durations.json", cjson.encode({ schema = "novapipe.durations/1", tiers = {
      standalone = { [TESTS .. "standalone/test_w.py"] = { [TESTS .. "standalone/test_w.py::test_where"] = 10 } } } }))
    -- (whichever worker gets the test)
    assert.matches(proc.cores() > 1 and "^gw%d+$" or "^none$", worker())
  end)
  it("find the Python for each tier when PATH's first one lacks pytest and another tier finds it meanwhile", function()
    -- python3 on PATH cannot import pytest (no site-packages) and takes as
    -- long as the tier's SLOW says to answer: standalone finds
    -- /usr/bin/python3 while venv and integration are still asking PATH's
    local root = keep(H.tree(suite({
      ["novapipe.lua"] = 'return { tiers = { venv = { env = { SLOW = "1.5" } }, integration = { env = { SLOW = "1.5" } } } }\n',
    })))
    local bin = root .. "/bin"
    assert(fs.mkdir_p(bin, "0755"))
    H.write(bin .. "/python3", '#!/bin/sh\nsleep "${SLOW:-0}"\nexec /usr/bin/python3 -S "$@"\n')
    assert(os.execute("chmod 755 '" .. bin .. "/python3'"))
    local r = H.novapipe({ "-C", root, "--no-color", "run", "run_tests", "--all", "--jobs", "3" },
      { env = { NOVAPIPE_PYTHON = false, PATH = bin .. ":" .. os.getenv("PATH") } })
    assert.equal(0, r.code, r.stdout .. r.stderr)
    assert.matches("PASS%s+venv%s+%S+%s+4 passed", r.stdout)
    assert.matches("PASS%s+integration%s+%S+%s+4 passed", r.stdout)
  end)
end)
