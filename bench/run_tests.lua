-- run_tests against a bare pytest run on a synthetic suite of 120 files
-- (6 tests each), side by side, interleaved; the team's original
-- run_tests.py as a second rival when its path is given.
--   build/novapipe exec bench/run_tests.lua [build/novapipe] [rounds] [path/to/run_tests.py]
local fs = require "novapipe.fs"
local python = require "novapipe.python"
local harness = dofile(arg[0]:match("^(.*/)") .. "harness.lua")

local bin = assert(fs.realpath(arg[1] or "build/novapipe"))
local rounds = tonumber(arg[2] or "5")
local reference = arg[3] and assert(fs.realpath(arg[3]))
local py = assert(python.find({ "pytest" }))

local root = assert(fs.mkdtemp("novapipe-bench-"))
local tests = root .. "/backend/app/tests/standalone"
assert(fs.mkdir_p(tests, "0755"))
for _, d in ipairs({ "/backend", "/backend/app", "/backend/app/tests", "/backend/app/tests/standalone" }) do
  assert(fs.atomic_write(root .. d .. "/__init__.py", "", "0644"))
end
for i = 1, 120 do
  local lines = { "import pytest", "" }
  for t = 1, 6 do
    lines[#lines + 1] = ("def test_%d_%d():\n    assert sum(range(%d)) == %d\n"):format(i, t, t * 10, (t * 10) * (t * 10 - 1) // 2)
  end
  assert(fs.atomic_write(("%s/test_%03d.py"):format(tests, i), table.concat(lines, "\n"), "0644"))
end

-- `python` for the reference script, which runs "python -m pytest".
local shim = root .. "/bin"
assert(fs.mkdir_p(shim))
assert(require("lfs").link(py, shim .. "/python", true))

-- Both sides write into a pipe that is read (as a CI log or a terminal
-- would), not into /dev/null, where pytest's writes cost nothing: see
-- bench/harness.lua.
-- The target row runs novapipe with the interpreter the bare run uses; the
-- next one lets it search PATH, to show what the search costs here.
local cases = {
  { "novapipe run run_tests --standalone", { bin, "run", "run_tests", "--standalone" }, { NOVAPIPE_PYTHON = py } },
  { "python3 -m pytest <tier>", { py, "-m", "pytest", "-q", "backend/app/tests/standalone" } },
  { "novapipe ..., searching PATH for Python", { bin, "run", "run_tests", "--standalone" }, { NOVAPIPE_PYTHON = false } },
  { "novapipe run run_tests --standalone --junit", { bin, "run", "run_tests", "--standalone", "--junit" },
    { NOVAPIPE_PYTHON = py } },
  { "python3 -m pytest --junitxml=FILE <tier>", { py, "-m", "pytest", "-q", "--junitxml=" .. root .. "/junit.xml",
    "backend/app/tests/standalone" } },
}
if reference then
  cases[#cases + 1] = { "reference run_tests.py --standalone", { py, reference, "--standalone" },
                        { PATH = shim .. ":" .. os.getenv("PATH") } }
end
local m, times, cpu = harness.medians(cases, rounds, root)
for i, c in ipairs(cases) do
  -- the --junit row is compared with pytest writing its JUnit XML
  local junit = i == 4 or i == 5
  local against = junit and 5 or 2
  -- the ratio of medians, and the median of each round's ratio (the
  -- figure the target is read from: a pair shares the machine's moment)
  -- and the processor time (novapipe's and pytest's), paired the same way;
  -- then the fastest round's over the fastest (the least disturbed)
  print(("%-44s median %6.3fs  ratio to bare pytest%s %5.3f, paired %5.3f, cpu paired %5.3f, fastest %5.3f%s")
    :format(c[1], m[i], junit and " --junitxml" or "", m[i] / m[against], harness.paired_ratio(times, i, against),
      harness.paired_ratio(cpu, i, against), harness.min_ratio(times, i, against),
      (i == 1 or i == 4) and "  (target <= 1.03)" or ""))
end
if os.getenv("NOVAPIPE_BENCH_KEEP") then print("kept " .. root) else fs.rmtree(root) end
