-- --changed's selection on CPython's own test suite (Debian's
-- libpython3.11-testsuite): novapipe.select.changed.select for one changed
-- helper module, in process (what run_tests does before any tier starts;
-- git's own time is not in it), each round with a fresh analyzer; median.
--   build/novapipe exec bench/changed-select.lua [rounds] [changed path under /usr/lib/python3.11]
local changed = require "novapipe.select.changed"
local config = require "novapipe.config"
local time = require "novapipe.time"
local median = dofile(arg[0]:match("^(.*/)") .. "harness.lua").median

local rounds = tonumber(arg[1] or "7")
local change = arg[2] or "test/support/os_helper.py"
local root = "/usr/lib/python3.11"
local cfg = config.defaults()
cfg.tests = "test"
assert(io.open(root .. "/test/test_os.py"), "CPython's test suite is missing: apt-get install libpython3.11-testsuite")

local times, sel = {}, nil
for i = 1, rounds do
  collectgarbage()
  local t0 = time.now()
  sel = changed.select(cfg, { { path = change, status = "modified" } }, { root = root })
  times[i] = time.now() - t0
end
table.sort(times)
print(("%d test files under %s/test; %s changed: %d selected (%d always: a non-literal import reaches them)")
  :format(#sel.tests, root, change, #sel.files, (function()
    local n = 0
    for _ in pairs(sel.always) do n = n + 1 end
    return n
  end)()))
print(("selection median %.3fs, best %.3fs, worst %.3fs over %d rounds (target < 0.2 s)")
  :format(median(times), times[1], times[#times], rounds))

-- Beside it, analyze's classification of the same files in process (the
-- README's 0.1 s figure): the same scanner, the same machine, the same moment.
local analyze = require "novapipe.analyze"
local pytest_config = require "novapipe.pytest_config"
local files = analyze.test_files(root .. "/test", pytest_config.python_files(root))
local atimes = {}
for i = 1, rounds do
  collectgarbage()
  local t0 = time.now()
  local mode = collectgarbage("generational")
  analyze.new(cfg, root .. "/test", root):report(files)
  collectgarbage(mode)
  atimes[i] = time.now() - t0
end
table.sort(atimes)
print(("analyze   median %.3fs over the same files; the selection takes %.2fx analyze's time")
  :format(median(atimes), median(times) / median(atimes)))
