-- PHI masking, measured: recall and false positives on the labelled
-- corpus (spec/support/phi_corpus.lua), then the speed of the filter
-- point masking ~200 MB of the corpus's lines (repeated) from a child,
-- side by side with `cat FILE | cat > /dev/null`, several rounds.
--   build/novapipe exec bench/phi.lua [build/novapipe] [rounds] [megabytes]
local fs = require "novapipe.fs"
local phi = require "novapipe.phi"
local proc = require "novapipe.proc"
local time = require "novapipe.time"
local corpus = dofile("spec/support/phi_corpus.lua")

local bin = arg[1] or "build/novapipe"
local rounds = tonumber(arg[2] or "5")
local megabytes = tonumber(arg[3] or "200")
local tmp = assert(fs.mkdtemp("novapipe-bench-"))

local median = dofile(arg[0]:match("^(.*/)") .. "harness.lua").median

-- the corpus and its figures
local positives = corpus.positives()
local negatives, notes = corpus.negatives(tmp)
for _, n in ipairs(notes) do print("note: " .. n) end
local kinds, neg = corpus.measure(function() return (phi.masker()) end, positives, negatives)
local names = {}
for kind in pairs(kinds) do names[#names + 1] = kind end
table.sort(names)
print(("positives: %d"):format(#positives))
for _, kind in ipairs(names) do
  local k = kinds[kind]
  print(("  %-6s recall %6.2f%%  (%d of %d)"):format(kind, 100 * k.found / k.n, k.found, k.n))
  for _, m in ipairs(k.misses) do print("    miss " .. m) end
end
local relabelled = {}
for kind, n in pairs(neg.by_kind) do relabelled[#relabelled + 1] = kind .. " " .. n end
table.sort(relabelled)
print(("negatives: %d lines of real test output (%d more relabelled PHI-like by format: %s)"):format(
  neg.lines, neg.relabelled, table.concat(relabelled, ", ")))
print(("  false positives %d (%.3f%% of the lines)"):format(#neg.false_positives,
  100 * #neg.false_positives / math.max(neg.lines, 1)))
for _, f in ipairs(neg.false_positives) do print("    fp " .. f) end

-- ~megabytes of mixed output: every line of the corpus, repeated
local lines = {}
for _, p in ipairs(positives) do
  for _, l in ipairs(p.lines) do lines[#lines + 1] = l end
end
for _, n in ipairs(negatives) do lines[#lines + 1] = n.line end
local block = table.concat(lines, "\n") .. "\n"
local input = tmp .. "/input.txt"
local f = assert(io.open(input, "wb"))
local size = 0
while size < megabytes * 1048576 do
  f:write(block)
  size = size + #block
end
f:close()
print(("input: %.1f MB, %d lines a copy (%.1f bytes a line on average), %d copies"):format(
  size / 1048576, #lines, #block / #lines, size // #block))

-- wall seconds and CPU seconds (user and system, the process and the
-- children it waited for)
local function run(argv)
  local t0 = time.now()
  local r = assert(proc.spawn(argv, { stdout = "null" })):wait()
  assert(r.code == 0, table.concat(argv, " ") .. " exited " .. r.code)
  return time.now() - t0, r.cpu
end

local cases = {
  { "novapipe filter (C)", { bin, "exec", "bench/phi_filter.lua", input, "/dev/null" } },
  { "cat | cat", { "sh", "-c", "cat '" .. input .. "' | cat > /dev/null" } },
  { "novapipe, Lua per line", { bin, "exec", "bench/phi_filter.lua", input, "/dev/null", "lua" } },
}
local times, cpus = {}, {}
for _ = 1, rounds do
  for i, c in ipairs(cases) do
    times[i], cpus[i] = times[i] or {}, cpus[i] or {}
    local wall, cpu = run(c[2])
    table.insert(times[i], wall)
    table.insert(cpus[i], cpu)
  end
end
local mb = size / 1e6
local med = {}
for i, c in ipairs(cases) do
  med[i] = median(times[i])
  local cpu = median(cpus[i])
  print(("%-24s median %7.3fs  %8.1f MB/s   CPU %6.3fs (%.1f MB per CPU second)"):format(c[1], med[i], mb / med[i],
    cpu, mb / cpu))
end
print(("ratio novapipe / cat (throughput): %.2f  (target: at least 200 MB/s)"):format(med[2] / med[1]))
os.remove(input)
fs.rmtree(tmp)
