-- The end of a run with many tests: the run record, the HTML report and
-- the console's summary for a synthetic run of N tests (10,000 unless
-- told), each timed through the real reporters and the real sink
-- (masking, atomic owner-only writes); then how long headless Chromium
-- takes to load and draw the page, against a page with one line.
--   build/novapipe exec bench/html.lua [tests] [rounds] [every]
-- (one test in `every` fails, 100 unless told: 1%; 5 makes it 20%)
-- Nothing is asserted: the figures go in bench/README.md.
-- NOVAPIPE_BENCH_KEEP=1 keeps the page (and the record) for a closer look.
local fs = require "novapipe.fs"
local lfs = require "lfs"
local process = require "novapipe.process"
local time = require "novapipe.time"

local N = tonumber(arg[1] or "10000")
local rounds = tonumber(arg[2] or "5")
local every = tonumber(arg[3] or "100")

local median = dofile(arg[0]:match("^(.*/)") .. "harness.lua").median

-- A run's outcome as the runner returns it: three tiers, one test in
-- `every` failed (each with a 30-line report), 0.5% errors, 2% skipped for a few reasons,
-- some xfailed; one test file in six tests.
local function outcome_of(n)
  local tiers = { { "standalone", 0.6 }, { "venv", 0.3 }, { "integration", 0.1 } }
  local results, k = {}, 0
  local longrepr = {}
  for i = 1, 30 do longrepr[i] = ("    assert patient.record(%d) == expected  # line %d of the report"):format(i, i) end
  longrepr = table.concat(longrepr, "\n") .. "\nE   AssertionError: assert 1 == 2"
  for ti, tier in ipairs(tiers) do
    local name, share = tier[1], tier[2]
    local count = ti == #tiers and (n - k) or math.floor(n * share)
    local tests = {}
    local c = { tests = 0, passed = 0, failed = 0, errors = 0, skipped = 0, xfailed = 0, xpassed = 0 }
    for j = 1, count do
      k = k + 1
      local file = ("backend/app/tests/%s/test_module_%04d.py"):format(name, (j - 1) // 6)
      local t = { id = ("%s::test_case_%05d"):format(file, k), tier = name, file = file, line = 10 + (j % 6) * 7,
                  outcome = "passed", markers = {},
                  durations = { setup = 0.0002, call = 0.001 + (k % 97) / 10000, teardown = 0.0001 } }
      if k % every == 0 then
        t.outcome, t.message = "failed", ("AssertionError: assert %d == %d"):format(k, k + 1)
        t.location, t.longrepr = ("%s:%d"):format(file, t.line + 2), longrepr
      elseif k % 200 == 1 then
        t.outcome, t.message = "error", "RuntimeError: database not reachable"
        t.location, t.longrepr = ("%s:%d"):format(file, t.line), longrepr
      elseif k % 50 == 3 then
        t.outcome, t.message = "skipped", ("Skipped: needs service %d"):format(k % 5)
      elseif k % 77 == 0 then
        t.outcome = "xfailed"
      end
      local key = ({ error = "errors" })[t.outcome] or t.outcome
      c[key] = c[key] + 1
      c.tests = c.tests + 1
      tests[#tests + 1] = t
    end
    results[#results + 1] = {
      stage = { name = name, needs = ti > 1 and { tiers[ti - 1][1] } or nil },
      result = { status = c.failed + c.errors > 0 and "failed" or "passed", counts = c, tests = tests,
                 duration = count * 0.0015 },
    }
  end
  return { exit = 1, duration = n * 0.0015, results = results }
end

local dir = assert(fs.mkdtemp("novapipe-bench-html-"))
local home = lfs.currentdir()
assert(lfs.chdir(dir))
local outcome = outcome_of(N)
local def = { description = "bench" }
local times = { record = {}, html = {}, console = {} }
local size
for _ = 1, rounds do
  local ctx = require("novapipe.run.context").new({ name = "run_tests", args = {}, out = function() end,
                                                    config = require("novapipe.config").defaults() })
  ctx.outputs = { html = "backend/test-results/report.html" }
  local reporters = {}
  for _, name in ipairs({ "record", "html", "console" }) do
    reporters[name] = require("novapipe.reporters." .. name).new(ctx)
  end
  reporters.console:pipeline_start(def, {})
  for _, row in ipairs(outcome.results) do reporters.console:stage_end(row.stage, row.result) end
  for _, name in ipairs({ "record", "html", "console" }) do
    local t0 = time.now()
    reporters[name]:pipeline_end(def, outcome)
    table.insert(times[name], time.now() - t0)
  end
  assert(ctx.html_report, "the page was not written")
  size = lfs.attributes("backend/test-results/report.html", "size")
end
print(("%d tests, %d failed or errored; %d rounds, medians:"):format(N, #require("novapipe.run.record").problems(
  require("novapipe.run.record").build({ pipeline = "x", started = 0, outcome = outcome }).tests), rounds))
print(("  run record (build, JSON, mask, write)  %7.3f s  (%.1f MB)"):format(median(times.record),
  lfs.attributes(".novapipe/last-run.json", "size") / 1048576))
print(("  HTML report (render, mask, write)      %7.3f s  (%.2f MB)"):format(median(times.html), size / 1048576))
print(("  console summary (slowest, failures)    %7.3f s"):format(median(times.console)))

local chromium = process.which("chromium")
if not chromium then
  print("chromium is not installed (scripts/setup.sh --test installs it): no load time")
else
  local flags = { chromium, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-extensions",
    "--user-data-dir=" .. dir .. "/profile" }
  local function chrome(...)
    local argv = { table.unpack(flags) }
    for _, a in ipairs({ ... }) do argv[#argv + 1] = a end
    local t0 = time.now()
    local r = assert(process.run(argv, { stdin = "null", timeout = 120, env = { HOME = dir } }))
    assert(r.code == 0, r.stderr)
    return time.now() - t0, r.stdout
  end
  local page = dir .. "/backend/test-results/report.html"
  fs.atomic_write(dir .. "/blank.html", "<!DOCTYPE html><html><body><p>blank</p></body></html>\n", "0600")
  -- The page's load in the browser, without the browser's start: a
  -- harness page (the report itself has no script) loads it in a frame
  -- of 1280x2000 and reads, once it has loaded and been laid out, the
  -- milliseconds since the harness started and the frame's own timings.
  fs.atomic_write(dir .. "/harness.html", ([[<!DOCTYPE html><html><body><pre id="out">none</pre>
<script>var t0 = performance.now();</script>
<iframe id="f" width="1280" height="2000" src="file://%s"></iframe>
<script>
document.getElementById("f").onload = function () {
  var height = this.contentDocument.documentElement.scrollHeight; // lays the page out
  var nav = this.contentWindow.performance.getEntriesByType("navigation")[0];
  document.getElementById("out").textContent = (performance.now() - t0) + " " + nav.domContentLoadedEventEnd
    + " " + height;
};
</script></body></html>
]]):format(page), "0600")
  chrome("--dump-dom", "file://" .. dir .. "/blank.html") -- the profile is made on the first start
  local ready, parsed, shot, blank, height = {}, {}, {}, {}, 0
  for _ = 1, rounds do
    local _, out = chrome("--allow-file-access-from-files", "--dump-dom", "file://" .. dir .. "/harness.html")
    local r, p, h = out:match('<pre id="out">([%d.]+) ([%d.]+) (%d+)</pre>')
    assert(r, "the harness did not report: " .. out:sub(1, 300))
    ready[#ready + 1], parsed[#parsed + 1], height = tonumber(r) / 1000, tonumber(p) / 1000, tonumber(h)
    shot[#shot + 1] = chrome("--window-size=1280,2000", "--screenshot=" .. dir .. "/shot.png", "file://" .. page)
    blank[#blank + 1] = chrome("--window-size=1280,2000", "--screenshot=" .. dir .. "/shot.png",
      "file://" .. dir .. "/blank.html")
  end
  print(("  Chromium, the page loaded and laid out  %7.3f s  (parsed in %.3f s; %d px tall; target: under 2 s)")
    :format(median(ready), median(parsed), height))
  print(("  Chromium, start to screenshot           %7.3f s  (a blank page: %.3f s)"):format(median(shot), median(blank)))
end
lfs.chdir(home)
if os.getenv("NOVAPIPE_BENCH_KEEP") == "1" then
  print("kept " .. dir)
else
  fs.rmtree(dir)
end
