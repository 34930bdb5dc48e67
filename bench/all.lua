-- `novapipe run all` against `run_tests --all --junit --coverage` on a copy
-- of the bundled example (a real PostgreSQL for the integration tier), side
-- by side, interleaved: what the security stage, the PHI audit, the
-- dependency scan and the reports add to the tiers' run.
--   build/novapipe exec bench/all.lua [build/novapipe] [rounds]
local fs = require "novapipe.fs"
local process = require "novapipe.process"
local python = require "novapipe.python"
local harness = dofile(arg[0]:match("^(.*/)") .. "harness.lua")

local bin = assert(fs.realpath(arg[1] or "build/novapipe"))
local rounds = tonumber(arg[2] or "5")
local home = assert(os.getenv("NOVAPIPE_HOME") or fs.realpath("."))
local py = assert(python.find({ "pytest", "pytest_cov" }))

local root = assert(fs.mkdtemp("novapipe-bench-"))
-- the postgres user must reach the project when novapipe runs as root
assert(fs.chmod(root, "0711"))
local r = assert(process.run({ "cp", "-a", home .. "/examples/clinic/.", root }))
assert(r.code == 0, r.stderr)

local env = { NOVAPIPE_PYTHON = py, DATABASE_URL = false }
local cases = {
  { "novapipe run all", { bin, "run", "all" }, env },
  { "novapipe run run_tests --all --junit --coverage", { bin, "run", "run_tests", "--all", "--junit", "--coverage" }, env },
}
local a, b = table.unpack((harness.medians(cases, rounds, root)))
print(("%-48s median %6.3fs"):format(cases[1][1], a))
print(("%-48s median %6.3fs"):format(cases[2][1], b))
print(("all against the tiers alone: %.3f  (target <= 1.2)"):format(a / b))
if os.getenv("NOVAPIPE_BENCH_KEEP") then print("kept " .. root) else fs.rmtree(root) end
