-- Shards: how even the split is, and how fast the merge is.
--   build/novapipe exec bench/shards.lua build/novapipe [rounds]
-- 1. Balance: a synthetic tier of 120 test files whose recorded durations
--    are skewed 100:1 (each file 1 to 100 units, fixed pseudo-random), put
--    through the recorded durations and split into 4 (novapipe.select.shard):
--    the slowest shard against a quarter of the total (target: within 1.10).
-- 2. Merge: 4 shard directories of 2,500 tests each (a record and a JUnit
--    file of pytest's shape each), merged by the real binary,
--    `novapipe merge` (target: under 2 s), the median of the rounds.
-- Nothing is asserted: the figures go in bench/README.md.
local cjson = require "cjson"
local durations = require "novapipe.select.durations"
local median = dofile(arg[0]:match("^(.*/)") .. "harness.lua").median
local fs = require "novapipe.fs"
local lfs = require "lfs"
local process = require "novapipe.process"
local shard = require "novapipe.select.shard"
local time = require "novapipe.time"

local bin = arg[1] or "build/novapipe"
local rounds = tonumber(arg[2] or "5")

-- 1. balance, two suites: file times drawn from 1 to 100 units, and ten
-- files of 100 units among 110 of 1
local seed = 12345
local function rand(lo, hi)
  seed = (seed * 1103515245 + 12345) % 2147483648
  return lo + seed % (hi - lo + 1)
end
local function balance(what, units_of)
  local data, files = durations.empty(), {}
  data.tiers.standalone = {}
  for i = 1, 120 do
    local file = ("backend/app/tests/standalone/test_%03d.py"):format(i)
    files[i] = file
    local units = units_of(i)
    -- ten tests a file, the file's time spread over them
    local tests = {}
    for j = 1, 10 do tests[("%s::test_%d"):format(file, j)] = units / 10 end
    data.tiers.standalone[file] = tests
  end
  local est = durations.file_estimates(data, "standalone", files, durations.keyer(nil))
  local items, total = {}, 0
  for i, f in ipairs(files) do
    items[i] = { name = f, weight = est[f] }
    total = total + est[f]
  end
  local t0 = time.now()
  local parts = shard.split(items, 4)
  local split_ms = (time.now() - t0) * 1000
  local slowest = 0
  for _, p in ipairs(parts) do slowest = math.max(slowest, p.load) end
  print(("balance, %s: total %g; shards %g %g %g %g; slowest / (total/4) = %.4f (split in %.2f ms)")
    :format(what, total, parts[1].load, parts[2].load, parts[3].load, parts[4].load, slowest / (total / 4), split_ms))
end
balance("120 files of 1 to 100 units", function() return rand(1, 100) end)
balance("10 files of 100 units, 110 of 1", function(i) return i % 12 == 0 and 100 or 1 end)

-- 2. merge
local root = assert(fs.mkdtemp("novapipe-bench-shards-"))
assert(fs.mkdir_p(root .. "/backend/app/tests/standalone", "0755"))
local function write(path, text)
  assert(fs.mkdir_p(path:match("^(.*)/"), "0700"))
  assert(fs.atomic_write(path, text, "0600"))
end
local N, PER = 4, 2500
local dirs = {}
for k = 1, N do
  local dir = ("%s/shards/%d-of-%d"):format(root, k, N)
  dirs[k] = dir
  local tests, cases = {}, {}
  for j = 1, PER do
    local i = (k - 1) * PER + j
    local file = ("backend/app/tests/standalone/test_%04d.py"):format(i // 10)
    local name = ("test_case_%d"):format(i)
    tests[j] = { id = file .. "::" .. name, tier = "standalone", stage = "standalone", outcome = "passed",
                 file = file, line = i % 50, duration = 0.003,
                 durations = { setup = 0.001, call = 0.001, teardown = 0.001 } }
    cases[j] = ('<testcase classname="%s" name="%s" time="0.003" />'):format(
      file:gsub("%.py$", ""):gsub("/", "."), name)
  end
  local counts = { tests = PER, passed = PER, failed = 0, errors = 0, skipped = 0, xfailed = 0, xpassed = 0 }
  write(dir .. "/record.json", cjson.encode({ schema = "novapipe.run/1", pipeline = "run_tests", args = {},
    stages = { { name = "standalone", status = "passed", counts = counts, duration = 1 } }, tests = tests,
    totals = counts, exit = 0 }))
  write(dir .. "/manifest.json", cjson.encode({ schema = shard.SCHEMA, k = k, n = N, commit = "bench", split = "bench" }))
  write(dir .. "/junit/standalone-results.xml", '<?xml version="1.0" encoding="utf-8"?><testsuites>'
    .. ('<testsuite name="pytest" errors="0" failures="0" skipped="0" tests="%d" time="7.5" timestamp="x" hostname="h">'):format(PER)
    .. table.concat(cases) .. "</testsuite></testsuites>")
end
local times = {}
for _ = 1, rounds do
  local argv = { bin, "-C", root, "--no-color", "merge" }
  for _, d in ipairs(dirs) do argv[#argv + 1] = d end
  local r = assert(process.run(argv, { env = { GITHUB_ACTIONS = false, GITHUB_STEP_SUMMARY = false } }))
  assert(r.code == 0, r.stdout .. r.stderr)
  times[#times + 1] = r.duration
end
table.sort(times)
print(("merge: %d shards of %d tests (%d in all), %d rounds: median %.3f s (min %.3f, max %.3f)")
  :format(N, PER, N * PER, rounds, median(times), times[1], times[#times]))
if os.getenv("NOVAPIPE_BENCH_KEEP") ~= "1" then fs.rmtree(root) end
