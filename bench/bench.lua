-- novapipe's benchmarks: each case runs novapipe and its rival side by side,
-- interleaved, several times, and reports the medians and their ratio.
--   build/novapipe exec bench/bench.lua [build/novapipe] [rounds]
local proc = require "novapipe.proc"
local time = require "novapipe.time"

local bin = arg[1] or "build/novapipe"
local rounds = tonumber(arg[2] or "5")
local tmp = os.tmpname()
os.remove(tmp)

local function run(argv)
  local t0 = time.now()
  local r = assert(proc.spawn(argv, { stdout = "null" })):wait()
  local dt = time.now() - t0
  if r.code ~= 0 then error(("%s exited %d"):format(table.concat(argv, " "), r.code)) end
  return dt, r.maxrss
end

local median = dofile(arg[0]:match("^(.*/)") .. "harness.lua").median

-- Runs both commands `rounds` times, alternating; returns median times and
-- novapipe's largest peak RSS.
local function side_by_side(ours, rival, repeat_each)
  local a, b, rss = {}, {}, 0
  for _ = 1, rounds do
    local ta, tb = 0, 0
    for _ = 1, repeat_each or 1 do
      local dt, m = run(ours)
      ta = ta + dt
      rss = math.max(rss, m)
      tb = tb + run(rival)
    end
    a[#a + 1], b[#b + 1] = ta, tb
  end
  return median(a), median(b), rss
end

local cc = assert(proc.spawn({ "cc", "-O2", "-o", tmp .. ".spawn", "bench/spawn_loop.c" })):wait()
assert(cc.code == 0, "cannot compile bench/spawn_loop.c")

local rows = {}
local function report(name, ours, rival, ratio, target, rss)
  rows[#rows + 1] = ("%-34s novapipe %8.3fs  rival %8.3fs  ratio %5.2f  (target %s)%s"):format(
    name, ours, rival, ratio, target, rss and ("  peak RSS %.1f MB"):format(rss / 1048576) or "")
  print(rows[#rows])
end

do
  local ours, rival = side_by_side({ bin, "exec", "bench/empty.lua" }, { "lua5.4", "bench/empty.lua" }, 50)
  report("start-up (x50) vs lua5.4", ours, rival, ours / rival, "<= 2.0 time")
end
do
  local ours, rival = side_by_side({ bin, "exec", "bench/spawn.lua", "1000" }, { tmp .. ".spawn", "1000" })
  report("spawn+wait 1000 /bin/true vs C", ours, rival, ours / rival, "<= 1.15 time")
end
do
  local ours, rival, rss = side_by_side({ bin, "exec", "bench/capture_file.lua", tmp .. ".a" },
    { "sh", "-c", "head -c 209715200 /dev/zero | cat > " .. tmp .. ".b" })
  report("200 MB to a file vs cat > file", ours, rival, rival / ours, ">= 0.8 throughput", rss)
end
do
  local line = string.rep("0123456789", 8):sub(1, 79)
  local ours, rival, rss = side_by_side({ bin, "exec", "bench/lines.lua" },
    { "sh", "-c", "yes " .. line .. " | head -c 209715200 | cat > /dev/null" })
  report("200 MB lines via callback vs cat", ours, rival, rival / ours, ">= 0.25 throughput", rss)
end
os.remove(tmp .. ".a")
os.remove(tmp .. ".b")
os.remove(tmp .. ".spawn")
