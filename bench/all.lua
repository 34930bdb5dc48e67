-- `novapipe run all` against `run_tests --all --junit --coverage` on a copy
-- of the bundled example (a real PostgreSQL for the integration tier), side
-- by side, interleaved: what the security stage, the PHI audit, the
-- dependency scan and the reports add to the tiers' run.
--   build/novapipe exec bench/all.lua [build/novapipe] [rounds]
local fs = require "novapipe.fs"
local proc = require "novapipe.proc"
local process = require "novapipe.process"
local python = require "novapipe.python"
local time = require "novapipe.time"

local bin = assert(fs.realpath(arg[1] or "build/novapipe"))
local rounds = tonumber(arg[2] or "5")
local home = assert(os.getenv("NOVAPIPE_HOME") or fs.realpath("."))
local py = assert(python.find({ "pytest", "pytest_cov" }))

local root = assert(fs.mkdtemp("novapipe-bench-"))
-- the postgres user must reach the project when novapipe runs as root
assert(fs.chmod(root, "0711"))
local r = assert(process.run({ "cp", "-a", home .. "/examples/clinic/.", root }))
assert(r.code == 0, r.stderr)

local function discard() end
local function timed(argv)
  local t0 = time.now()
  local p = assert(proc.spawn(argv, { cwd = root, stdout = discard, stderr = discard,
                                      env = { NOVAPIPE_PYTHON = py, DATABASE_URL = false } }))
  local res = p:wait()
  assert(res.code == 0, table.concat(argv, " ") .. " failed with " .. res.code)
  return time.now() - t0
end

local cases = {
  { "novapipe run all", { bin, "run", "all" } },
  { "novapipe run run_tests --all --junit --coverage", { bin, "run", "run_tests", "--all", "--junit", "--coverage" } },
}
local times = {}
for _ = 1, rounds do
  for i, c in ipairs(cases) do
    times[i] = times[i] or {}
    table.insert(times[i], timed(c[2]))
  end
end
local function median(xs)
  table.sort(xs)
  return xs[(#xs + 1) // 2]
end
local a, b = median(times[1]), median(times[2])
print(("%-48s median %6.3fs"):format(cases[1][1], a))
print(("%-48s median %6.3fs"):format(cases[2][1], b))
print(("all against the tiers alone: %.3f  (target <= 1.2)"):format(a / b))
if os.getenv("NOVAPIPE_BENCH_KEEP") then print("kept " .. root) else fs.rmtree(root) end
