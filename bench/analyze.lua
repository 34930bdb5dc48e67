-- analyze on CPython's own test suite (Debian's libpython3.11-testsuite),
-- side by side with the team's original analyze_tests.py and with simply
-- reading the same files (cat), interleaved; medians and ratios.
--   build/novapipe exec bench/analyze.lua [build/novapipe] [rounds] [path/to/analyze_tests.py]
local fs = require "novapipe.fs"
local proc = require "novapipe.proc"
local python = require "novapipe.python"
local time = require "novapipe.time"

local bin = assert(fs.realpath(arg[1] or "build/novapipe"))
local rounds = tonumber(arg[2] or "5")
local reference = arg[3] and assert(fs.realpath(arg[3]))
local suite = "/usr/lib/python3.11/test"
local files = fs.walk(suite, { include = { "test_*.py", "*_test.py" } })
assert(files and #files > 500, "CPython's test suite is missing: apt-get install libpython3.11-testsuite")
local list = assert(fs.mkdtemp("novapipe-bench-"))
local names = {}
for i, f in ipairs(files) do names[i] = suite .. "/" .. f end
assert(fs.atomic_write(list .. "/files", table.concat(names, "\0") .. "\0"))

local function timed(argv)
  local t0 = time.now()
  local r = assert(proc.spawn(argv, { stdout = "null", stderr = "null", cwd = list })):wait()
  assert(r.code == 0, table.concat(argv, " ") .. " exited " .. r.code)
  return time.now() - t0
end

local cases = {
  { "novapipe run analyze", { bin, "run", "analyze", "--path", suite } },
  { "reading the files (cat)", { "sh", "-c", "xargs -0 cat < files > /dev/null" } },
}
if reference then
  cases[#cases + 1] = { "reference analyze_tests.py", { assert(python.find({})), reference, "--path", suite } }
end
local times = {}
for round = 1, rounds do
  for i, c in ipairs(cases) do
    -- the reference takes seconds: three rounds of it are plenty
    if i < 3 or round <= 3 then
      times[i] = times[i] or {}
      table.insert(times[i], timed(c[2]))
    end
  end
end
local median = dofile(arg[0]:match("^(.*/)") .. "harness.lua").median
local ours = median(times[1])
print(("%d files under %s"):format(#files, suite))
for i, c in ipairs(cases) do
  local m = median(times[i])
  print(("%-30s median %7.3fs  %s"):format(c[1], m,
    i == 1 and "" or i == 2 and ("novapipe takes %.1fx this (target <= 5)"):format(ours / m)
      or ("novapipe is %.0fx faster (target >= 100)"):format(m / ours)))
end
fs.rmtree(list)
