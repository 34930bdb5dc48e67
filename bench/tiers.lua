-- Tiers at once against the ideal and against pytest-xdist by hand, on a
-- synthetic suite of three gated tiers (40 files a tier, 6 tests a file,
-- each test burning 3 ms of CPU: 720 tests), side by side, interleaved.
--   build/novapipe exec bench/tiers.lua [build/novapipe] [rounds] [path/to/run_tests.py]
-- The ideal is one pytest start plus one pytest run's work spread over the
-- cores: start + (serial - start) / cores, where serial is one pytest
-- process over the three tiers and start a pytest run of one empty test.
local fs = require "novapipe.fs"
local proc = require "novapipe.proc"
local python = require "novapipe.python"
local harness = dofile(arg[0]:match("^(.*/)") .. "harness.lua")

local bin = assert(fs.realpath(arg[1] or "build/novapipe"))
local rounds = tonumber(arg[2] or "3")
local reference = arg[3] and assert(fs.realpath(arg[3]))
local py = assert(python.find({ "pytest", "xdist" }))
local cores = proc.cores()

local root = assert(fs.mkdtemp("novapipe-bench-"))
local TIERS = { "standalone", "venv", "integration" }
for _, d in ipairs({ "/backend", "/backend/app", "/backend/app/tests", "/start" }) do
  assert(fs.mkdir_p(root .. d, "0755"))
  if d ~= "/start" then assert(fs.atomic_write(root .. d .. "/__init__.py", "", "0644")) end
end
assert(fs.atomic_write(root .. "/start/test_start.py", "def test_start():\n    pass\n", "0644"))
for _, tier in ipairs(TIERS) do
  local dir = root .. "/backend/app/tests/" .. tier
  assert(fs.mkdir_p(dir, "0755"))
  assert(fs.atomic_write(dir .. "/__init__.py", "", "0644"))
  for i = 1, 40 do
    local lines = { "import time", "", "def burn():", "    t = time.process_time()",
                    "    while time.process_time() - t < 0.003:", "        pass", "" }
    for t = 1, 6 do lines[#lines + 1] = ("def test_%d_%d():\n    burn()\n"):format(i, t) end
    assert(fs.atomic_write(("%s/test_%s_%02d.py"):format(dir, tier, i), table.concat(lines, "\n"), "0644"))
  end
end
local shim = root .. "/bin"
assert(fs.mkdir_p(shim))
assert(require("lfs").link(py, shim .. "/python", true))

local dirs = {}
for i, tier in ipairs(TIERS) do dirs[i] = "backend/app/tests/" .. tier end
local env = { NOVAPIPE_PYTHON = py }
local cases = {
  { "novapipe run run_tests --all (tiers at once, default --jobs)", { bin, "run", "run_tests", "--all" }, env },
  { "novapipe run run_tests --all --sequential", { bin, "run", "run_tests", "--all", "--sequential" }, env },
  { ("pytest -n %d over the three tiers by hand"):format(cores),
    { py, "-m", "pytest", "-q", "-p", "xdist", "-n", tostring(cores), table.unpack(dirs) } },
  { "pytest over the three tiers (serial)", { py, "-m", "pytest", "-q", table.unpack(dirs) } },
  { "pytest start (one empty test)", { py, "-m", "pytest", "-q", "start" } },
}
-- as many tiers at once as cores (the default is one more: the last tier
-- to start then no longer runs alone while the other cores idle)
cases[#cases + 1] = { ("novapipe run run_tests --all --jobs %d"):format(cores),
                      { bin, "run", "run_tests", "--all", "--jobs", tostring(cores) }, env }
if reference then
  cases[#cases + 1] = { "reference run_tests.py --all", { py, reference, "--all" },
                        { PATH = shim .. ":" .. os.getenv("PATH") } }
end
local m = harness.medians(cases, rounds, root)
print(("%d cores; the default --jobs is %d"):format(cores, require("novapipe.tiers").default_jobs(cores)))
local ideal = m[5] + (m[4] - m[5]) / cores
print(("ideal (start + work / %d cores)%s %6.3fs"):format(cores, (" "):rep(13), ideal))
for i, c in ipairs(cases) do
  print(("%-46s median %6.3fs  ratio to the ideal %5.3f%s"):format(c[1], m[i], m[i] / ideal,
    i == 1 and "  (target <= 1.25, and below pytest -n by hand)" or ""))
end
print(("tiers at once against pytest -n %d by hand: %.3f"):format(cores, m[1] / m[3]))
if os.getenv("NOVAPIPE_BENCH_KEEP") then print("kept " .. root) else fs.rmtree(root) end
