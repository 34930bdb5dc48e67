-- Shards: `--shard K/N` splits each selected tier's test files into N parts
-- balanced by recorded durations (novapipe.select.durations), longest
-- first onto the least loaded part, ties broken by path, so every machine
-- computes the same split from the same files and durations; without
-- durations, by file size. Each shard runs its part of every tier (gated
-- within the shard: novapipe.tiers collects only its files, through the
-- plugin's NOVAPIPE_SHARD) and keeps what `novapipe merge` needs under one
-- directory: manifest.json, record.json, junit/, coverage/.
local digest = require "novapipe.digest"
local durations = require "novapipe.select.durations"
local errors = require "novapipe._errors"
local fs = require "novapipe.fs"
local json = require "novapipe.json"
local lfs = require "lfs"
local pipeline = require "novapipe.pipeline"
local pytest_config = require "novapipe.pytest_config"

local M = {}

M.SCHEMA = "novapipe.shard/1"
M.MANIFEST = "manifest.json"
M.RECORD = "record.json"

---Parses "K/N" (1 <= K <= N): an option's convert, so a bad value is
---argparse's one line (exit 2).
---@param s string
---@return {k: integer, n: integer}|nil
---@return string? message
function M.parse(s)
  local k, n = tostring(s):match("^(%d+)/(%d+)$")
  k, n = math.tointeger(tonumber(k)), math.tointeger(tonumber(n))
  if not k or not n or n < 1 or k < 1 or k > n then
    return nil, ("'%s' is not a shard K/N with 1 <= K <= N (e.g. 2/4)"):format(tostring(s))
  end
  return { k = k, n = n }
end

---The shard directory's default: .novapipe/shards/K-of-N.
---@param k integer
---@param n integer
---@return string
function M.default_dir(k, n)
  return (".novapipe/shards/%d-of-%d"):format(k, n)
end

---A tier's test files, as pytest finds them: under dir, matching the
---project's python_files, not in a norecursedirs directory; sorted paths
---relative to the project root.
---@param dir string
---@return string[]
function M.test_files(dir)
  local _, norecurse = pytest_config.norecursedirs()
  local list = fs.walk(dir, { include = pytest_config.python_files(),
                              exclude = norecurse or pytest_config.DEFAULT_NORECURSE }) or {}
  local out = {}
  for _, rel in ipairs(list) do
    if rel:match("%.py$") and not rel:find("__pycache__", 1, true) then out[#out + 1] = dir .. "/" .. rel end
  end
  table.sort(out)
  return out
end

---Splits weighted items into n parts: longest processing time first (by
---weight, heaviest first, ties by name), each onto the part with the least
---load so far (ties: the lowest part). Deterministic for the same input.
---@param items {name: string, weight: number}[]
---@param n integer
---@return {items: string[], load: number}[]
function M.split(items, n)
  local sorted = {}
  for i, it in ipairs(items) do sorted[i] = it end
  table.sort(sorted, function(a, b)
    if a.weight ~= b.weight then return a.weight > b.weight end
    return a.name < b.name
  end)
  local parts = {}
  for i = 1, n do parts[i] = { items = {}, load = 0 } end
  for _, it in ipairs(sorted) do
    local best = 1
    for i = 2, n do
      if parts[i].load < parts[best].load then best = i end
    end
    local p = parts[best]
    p.items[#p.items + 1] = it.name
    p.load = p.load + it.weight
  end
  for _, p in ipairs(parts) do table.sort(p.items) end
  return parts
end

---The split of a run: for each tier, every part's files, and this
---shard's. `weights` says how they were weighed: "durations" (from the
---file named in `from`), "size", or per tier "size" where a tier has no
---recorded durations.
---@param tiers {name: string, dir: string}[] the selected tiers, dir relative to the project root
---@param k integer
---@param n integer
---@param phi? table the configuration's phi section (the durations' keys)
---@param by? "file"|"test" what is split (default file; tests are split when each tier runs, M.select_tests)
---@param keep? table<string, boolean> only these files are split (--changed: the affected ones)
---@return {k: integer, n: integer, tiers: table<string, {mine: string[], theirs: string[], load: number}>, by_size: string[], from?: string, digest: string}
function M.plan(tiers, k, n, phi, by, keep)
  local data, from = durations.load(true)
  local key = durations.keyer(phi)
  local plan = { k = k, n = n, tiers = {}, by_size = {}, from = from, by = by or "file", data = data }
  local lines = { ("%d %s\n"):format(n, plan.by) }
  for _, tier in ipairs(tiers) do
    local files = M.test_files(tier.dir)
    if keep then
      local kept = {}
      for _, f in ipairs(files) do
        if keep[require("novapipe.path").normalize(f)] then kept[#kept + 1] = f end
      end
      files = kept
    end
    if plan.by == "test" then
      -- split at run time, test by test (M.select_tests): every file is
      -- this shard's to collect
      plan.tiers[tier.name] = { mine = files, theirs = {}, load = 0 }
      for _, f in ipairs(files) do lines[#lines + 1] = ("%s\0%s\n"):format(tier.name, f) end
      goto continue
    end
    local est
    est = durations.file_estimates(data, tier.name, files, key)
    if not est and #files > 0 then plan.by_size[#plan.by_size + 1] = tier.name end
    local items = {}
    for i, f in ipairs(files) do
      items[i] = { name = f, weight = est and est[f] or (lfs.attributes(f, "size") or 0) }
    end
    local parts = M.split(items, n)
    local theirs = {}
    for i, p in ipairs(parts) do
      for _, f in ipairs(p.items) do
        if i ~= k then theirs[#theirs + 1] = f end
        lines[#lines + 1] = ("%s\0%d\0%s\n"):format(tier.name, i, f)
      end
    end
    plan.tiers[tier.name] = { mine = parts[k].items, theirs = theirs, load = parts[k].load, parts = parts }
    ::continue::
  end
  plan.digest = digest.sha256(table.concat(lines))
  return plan
end

---With --shard-by test: collects the tier's node ids (a pytest
-----collect-only run with the tier's environment, the ids written by the
---plugin into the tier's private directory), splits them by their recorded
---durations (each 1 without any) and writes the selection the plugin keeps
---(NOVAPIPE_SELECT, mode "exact", the tests' keys under the project's
---secret, as --last-failed selects). Returns the selection file and how many tests this shard runs, or
---nil and an error.
---@param run_pytest fun(args: string[], opts: table, sink: novapipe.Sink): table|nil, string?
---@param target string|string[] what pytest runs (the tier's directory, or --changed's files)
---@param env table the tier's environment
---@param dir string the tier's private directory
---@param ctx novapipe.Context
---@param plan table M.plan's
---@param tier string
---@return string|nil path
---@return integer|string count, or the error
function M.select_tests(run_pytest, target, env, dir, ctx, plan, tier)
  local list = dir .. "/novapipe-collect"
  local e = {}
  for k, v in pairs(env) do e[k] = v end
  e.NOVAPIPE_COLLECT = list
  e.NOVAPIPE_EVENTS_FD = false -- (this run is given no events channel)
  local argv = type(target) == "table" and { table.unpack(target) } or { target }
  for _, a in ipairs({ "-p", "novapipe_pytest", "--collect-only", "-q", "-o", "cache_dir=" .. dir }) do argv[#argv + 1] = a end
  local r, err = run_pytest(argv,
    { env = e, stdin = "null", stdout = function() end }, ctx.sink)
  if not r then return nil, err end
  if r.code ~= 0 and r.code ~= 5 then return nil, ("collecting the tests to split: pytest exit %d"):format(r.code) end
  local ids = {}
  for id in (fs.read(list) or ""):gmatch("[^\n]+") do ids[#ids + 1] = id end
  os.remove(list)
  local est = durations.test_estimates(plan.data, tier, ids, durations.keyer(ctx.config.phi))
  if not est and #ids > 0 then
    ctx.bus:emit("note", ("no recorded durations for %s: its tests are balanced by count"):format(tier))
  end
  local items = {}
  for i, id in ipairs(ids) do items[i] = { name = id, weight = est and est[id] or 1 } end
  local parts = M.split(items, plan.n)
  local mine = parts[plan.k].items
  if #mine == 0 then return nil, 0 end
  -- keyed as --last-failed keys its tests: the project's secret
  local secret, serr = require("novapipe.run.record").secret(ctx.sink)
  if not secret then return nil, serr end
  local keys = {}
  for i, id in ipairs(mine) do keys[i] = require("novapipe.run.record").key(secret, id) end
  local path = dir .. "/novapipe-select"
  local ok, werr = ctx.sink:write(path, ("exact\n%s\n%s\n"):format(secret, table.concat(keys, "\n")), "selection",
    { raw = true, record = false })
  if not ok then return nil, werr end
  return path, #mine
end

---Writes the file the plugin reads (NOVAPIPE_SHARD) for a tier's part,
---into the tier's private directory: K/N, this shard's files, "--", the
---other shards' files, absolute.
---@param sink novapipe.Sink
---@param dir string a private directory (the tier's pytest cache)
---@param plan table M.plan's
---@param part {mine: string[], theirs: string[]}
---@return string|nil path
---@return string? error
function M.write_part(sink, dir, plan, part)
  local cwd = lfs.currentdir()
  local lines = { ("%d/%d"):format(plan.k, plan.n) }
  for _, f in ipairs(part.mine) do lines[#lines + 1] = cwd .. "/" .. f end
  lines[#lines + 1] = "--"
  for _, f in ipairs(part.theirs) do lines[#lines + 1] = cwd .. "/" .. f end
  local path = dir .. "/novapipe-shard"
  -- paths as they are (pytest compares them), in a private directory that
  -- goes with the tier
  local ok, err = sink:write(path, table.concat(lines, "\n") .. "\n", "shard", { raw = true, record = false })
  if not ok then return nil, err end
  return path
end

-- The commit the shards run on: the CI's variable (the same in every job
-- of a run, where git may be missing from the container), else the one
-- the audit log records (read from .git).
local function commit()
  for _, var in ipairs({ "GITHUB_SHA", "CI_COMMIT_SHA", "BUILDKITE_COMMIT" }) do
    local v = os.getenv(var)
    if v and v ~= "" then return v end
  end
  return require("novapipe.audit").git_commit() or "unknown"
end

---What a pipeline adds for --shard (opts.shard from M.parse, opts.shard_dir):
---the tier options that make np.tiers run this shard's part and keep
---JUnit and coverage data in the shard directory, and the stage that
---writes the shard's manifest last. Sets the run record's copy
---(ctx.outputs.json) to the shard directory. A --filter or --last-failed
---with --shard is a usage error.
---@param opts table the pipeline's parsed options
---@param ctx novapipe.Context
---@param only? string[] the tiers selected (default: every configured one)
---@param keep? table<string, boolean> with --changed, the affected test files: only they are split
---@return table tier_opts to merge into np.tiers' options
---@return novapipe.Stage manifest
function M.setup(opts, ctx, only, keep)
  local s = opts.shard
  for _, o in ipairs({ "filter", "last_failed", "failed_first" }) do
    if opts[o] then
      errors.usage("--shard with --%s: a shard runs its part of whole tiers (drop one of them)", o:gsub("_", "-"))
    end
  end
  local cfg = ctx.config
  local dir = opts.shard_dir or M.default_dir(s.k, s.n)
  local wanted
  if only and #only > 0 then
    wanted = {}
    for _, name in ipairs(only) do wanted[name] = true end
  end
  local selected = {}
  for _, t in ipairs(cfg.tiers) do
    if not wanted or wanted[t.name] then selected[#selected + 1] = { name = t.name, dir = cfg.tests .. "/" .. t.dir } end
  end
  local plan = M.plan(selected, s.k, s.n, cfg.phi, opts.shard_by, keep)
  if #plan.by_size > 0 then
    ctx.bus:emit("note", ("no recorded durations for %s (%s, %s): its files are balanced by size")
      :format(table.concat(plan.by_size, ", "), durations.COMMITTED, durations.LOCAL))
  end
  -- what an earlier shard left here goes (only novapipe's own files: the
  -- directory may be one the user named)
  for _, f in ipairs({ "junit", "coverage", M.RECORD, M.MANIFEST }) do
    if lfs.symlinkattributes(dir .. "/" .. f) then fs.rmtree(dir .. "/" .. f) end
  end
  ctx.outputs = ctx.outputs or {}
  ctx.outputs.json = dir .. "/" .. M.RECORD
  local tier_opts = { shard = plan, junit = true, results = dir .. "/junit", coverage_data = dir .. "/coverage" }
  local stage = pipeline.stage { name = "shard", run = function(c)
    local tiers = {}
    for name, p in pairs(plan.tiers) do tiers[name] = { files = #p.mine, estimate = p.load } end
    local manifest = { schema = M.SCHEMA, k = s.k, n = s.n, by = plan.by, commit = commit(), split = plan.digest,
                       pipeline = c.name, durations = plan.from, by_size = json.array(plan.by_size), tiers = tiers }
    local ok, err = c.sink:write(dir .. "/" .. M.MANIFEST, json.pretty(manifest) .. "\n", "shard manifest")
    if not ok then return { status = "error", reason = ("shard manifest: %s"):format(err) } end
    return { status = "passed", summary = ("%d/%d of commit %s, for novapipe merge: %s"):format(s.k, s.n,
      manifest.commit:sub(1, 12), dir) }
  end }
  return tier_opts, stage
end

return M
