-- The end of a run with 10,000 tests: the run record, the step summary,
-- the console's summary (and the HTML page when novapipe has its
-- reporter), timed in process on the results of a real run of a
-- synthetic suite of 10,000 tests, against that run's own time.
--   build/novapipe exec bench/reports.lua [build/novapipe] [rounds]
local fs = require "novapipe.fs"
local json = require "novapipe.json"
local proc = require "novapipe.proc"
local python = require "novapipe.python"
local time = require "novapipe.time"

local bin = assert(fs.realpath(arg[1] or "build/novapipe"))
local rounds = tonumber(arg[2] or "3")
local py = assert(python.find({ "pytest" }))

local root = assert(fs.mkdtemp("novapipe-bench-"))
local tests = root .. "/backend/app/tests/standalone"
assert(fs.mkdir_p(tests, "0755"))
for i = 1, 200 do
  local lines = { "import pytest", "" }
  for t = 1, 50 do
    -- one in a hundred fails, so the Failures part has work to do
    local bad = (i * 50 + t) % 100 == 0
    lines[#lines + 1] = ("def test_%d_%d():\n    assert %s\n"):format(i, t, bad and "1 == 2" or "True")
  end
  assert(fs.atomic_write(("%s/test_%03d.py"):format(tests, i), table.concat(lines, "\n"), "0644"))
end

local function discard() end

-- The run itself, with its record: the time to compare with.
local run_times = {}
for _ = 1, rounds do
  local t0 = time.now()
  local r = assert(proc.spawn({ bin, "run", "run_tests", "--standalone", "--json", root .. "/run.json" },
    { cwd = root, stdout = discard, stderr = discard, env = { NOVAPIPE_PYTHON = py } })):wait()
  assert(r.code == 1, "the run should fail (100 failing tests), exit " .. r.code)
  run_times[#run_times + 1] = time.now() - t0
end

-- Its results, as the reporters get them.
local rec = assert(json.read(root .. "/run.json"))
assert(#rec.tests == 10000, #rec.tests .. " tests")
local results = { { stage = { name = "standalone" }, result = { status = "failed", counts = rec.stages[1].counts,
  tests = rec.tests, duration = rec.stages[1].duration } } }
local outcome = { exit = 1, duration = rec.duration, results = results }

local function reporting()
  local cwd = require("lfs").currentdir()
  assert(require("lfs").chdir(root))
  local ctx = { name = "run_tests", args = { "--standalone" }, pytest_args = {}, outputs = {},
                sink = require("novapipe.run.sink").new({ out = discard, err = discard }) }
  local names = { "record", "markdown", "console" }
  if package.searchpath("novapipe.reporters.html", package.path) then
    table.insert(names, 2, "html")
    ctx.outputs.html = root .. "/report.html"
  end
  local t0 = time.now()
  for _, name in ipairs(names) do
    local r = name == "markdown" and require("novapipe.reporters.markdown").new(ctx, root .. "/summary.md")
      or require("novapipe.reporters." .. name).new(ctx)
    if r then
      if r.pipeline_start then r:pipeline_start({ description = "bench" }, {}) end
      for _, row in ipairs(results) do
        if r.stage_end then r:stage_end(row.stage, row.result) end
      end
      r:pipeline_end({ description = "bench" }, outcome)
    end
  end
  local took = time.now() - t0
  os.remove(root .. "/summary.md")
  assert(require("lfs").chdir(cwd))
  return took
end

local report_times = {}
for _ = 1, rounds do report_times[#report_times + 1] = reporting() end

local median = dofile(arg[0]:match("^(.*/)") .. "harness.lua").median
local run, rep = median(run_times), median(report_times)
print(("run_tests --standalone, 10,000 tests   median %6.3fs"):format(run))
print(("the record, summary and console for it median %6.3fs  share of the run %5.3f  (target < 0.05)"):format(rep,
  rep / run))
if os.getenv("NOVAPIPE_BENCH_KEEP") then print("kept " .. root) else fs.rmtree(root) end
