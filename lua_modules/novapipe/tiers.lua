-- Test tiers: one stage per tier, each a pytest run over the tier's
-- directory, with exact counts from JUnit, live progress from novapipe's
-- pytest plugin, services (a throwaway PostgreSQL), coverage and timeouts.
local config = require "novapipe.config"
local digest = require "novapipe.digest"
local errors = require "novapipe._errors"
local fs = require "novapipe.fs"
local host = require "novapipe.host"
local junit = require "novapipe.junit"
local lfs = require "lfs"
local pipeline = require "novapipe.pipeline"
local process = require "novapipe.process"
local pytest_config = require "novapipe.pytest_config"
local term = require "novapipe.term"
local test_results = require "novapipe.pytest.results"
local python = require "novapipe.python"
local time = require "novapipe.time"

local M = {}

---@class novapipe.TierOpts
---@field only? string[] run just these tiers (no gating between them)
---@field coverage? boolean
---@field junit? boolean keep JUnit XML in the results directory
---@field verbose? boolean stream pytest's own output
---@field markers? string a pytest -m expression
---@field filter? string a path (run just it, in the tier holding it) or a -k expression
---@field parallel? integer|"auto" pytest-xdist workers; "auto": the cores a tier has to itself (M.workers)
---@field failfast? boolean stop at the first failure
---@field strict? boolean an empty tier fails
---@field allow_empty? boolean a markers or filter selection that runs no test in any tier passes (it fails otherwise)
---@field security? boolean only tests marked security
---@field timeout? number seconds, for every tier (a tier's own timeout wins)
---@field reruns? integer a failed test runs again up to this many times, in every tier (wins over a tier's own reruns)
---@field label? string names this group of tier stages ("security/standalone") and its files, so two groups can share a pipeline
---@field results? string where JUnit XML goes with junit (default: the configured results)
---@field cases? boolean keep each tier's test cases (with their properties) in its stage result
---@field tier_html? boolean with coverage, an HTML report per tier too (default true; the combined one is always written)
---@field config? novapipe.Config default: the run's (novapipe.run.context)
---@field taken? table<string, boolean> tiers whose results the group's stages took from another run (set by the caller as they do)
---@field cov_context? boolean with coverage, record which test ran each line (coverage.py's contexts, by the tests' keys)
---@field jobs? integer tiers at once (default: M.default_jobs())
---@field sequential? boolean one tier after another, each only after the tiers it needs passed
---@field shard? table a split of the tiers' files (novapipe.select.shard's plan): each tier runs its part
---@field coverage_data? string where each tier's coverage data goes (default: the configured coverage.data)
---@field changed? novapipe.ChangedSelection --changed: only these test files run (novapipe.select.changed); a tier with none of them is skipped

local PYTEST_EXIT = {
  [2] = "pytest was interrupted",
  [3] = "internal error in pytest or one of its plugins",
  [4] = "pytest usage error",
}

-- A name within a labelled group: "security-standalone".
local function labelled(opts, name)
  return opts.label and (opts.label .. "-" .. name) or name
end

-- A stage's name within a labelled group: "security/standalone".
local function stage_name(opts, name)
  return opts.label and (opts.label .. "/" .. name) or name
end

---The combined coverage data file of a group of tiers.
---@param cfg novapipe.Config
---@param label? string
---@return string
function M.combined_data(cfg, label)
  return cfg.coverage.data .. "/.coverage" .. (label and ("." .. label) or "")
end

---The -m expression: --markers and --security together.
---@param opts novapipe.TierOpts
---@return string|nil
function M.marker_expr(opts)
  if opts.security and opts.markers then return ("(%s) and security"):format(opts.markers) end
  if opts.security then return "security" end
  return opts.markers
end

---Where --filter points: a path (possibly with ::node) under this tier's
---directory gives {path = ...}, a directory holding the tier's directory
---gives {path = dir}; a path elsewhere gives {outside = true};
---anything that is not a path gives {k = expr}.
---@param filter string
---@param dir string the tier's directory
function M.filter_target(filter, dir)
  local file = filter:match("^(.-)::") or filter
  if lfs.attributes(file) then
    local real = fs.realpath(file)
    local rdir = fs.realpath(dir) or (dir:find("^/") and dir or (lfs.currentdir() .. "/" .. dir))
    if real and (real == rdir or rdir:sub(1, #real + 1) == real .. "/") and not filter:find("::", 1, true) then
      return { path = dir } -- a directory holding the tier's: the whole tier
    end
    if real and (real:sub(1, #rdir + 1) == rdir .. "/") then
      return { path = filter }
    end
    return { outside = true }
  end
  return { k = filter }
end

---pytest's arguments for one tier.
---@param target string|string[] what pytest runs (the tier's directory, a path in it, or test files)
---@param opts novapipe.TierOpts
---@param junit_path? string where pytest writes JUnit XML (none without)
---@param k? string a -k expression
---@param cov_sources? string[]
---@return string[]
function M.pytest_args(target, opts, junit_path, k, cov_sources)
  local argv = type(target) == "table" and { table.unpack(target) } or { target }
  argv[#argv + 1] = "-p"
  argv[#argv + 1] = "novapipe_pytest"
  if junit_path then argv[#argv + 1] = "--junitxml=" .. junit_path end
  local function add(...) for _, a in ipairs({ ... }) do argv[#argv + 1] = a end end
  -- -v when pytest's output is streamed, -q when only novapipe reads it.
  add(opts.verbose and "-v" or "-q")
  local m = M.marker_expr(opts)
  if m then add("-m", m) end
  if k then add("-k", k) end
  if opts.parallel and opts.parallel > 1 then add("-n", tostring(opts.parallel)) end
  if opts.dist then add("--dist", opts.dist) end
  if opts.failfast then add("--exitfirst") end
  for _, src in ipairs(cov_sources or {}) do add("--cov=" .. src) end
  if cov_sources then add("--cov-report=") end
  return argv
end

-- The Python modules a run needs, for python.find.
local function needed_modules(opts)
  local m = { "pytest" }
  if opts.coverage then m[#m + 1] = "pytest_cov"; m[#m + 1] = "coverage" end
  local auto = opts.parallel == "auto" and require("novapipe.proc").cores() > 1
  if auto or (type(opts.parallel) == "number" and opts.parallel > 1) then m[#m + 1] = "xdist" end
  return m
end

-- Keeps what a failed run should show: pytest's short summary section and
-- the last lines, in bounded memory.
local function output_keeper()
  local keep = { summary = {}, tail = {} }
  local in_summary = false
  function keep.line(line)
    -- bounded: a line of megabytes keeps its first 4 KiB
    if #line > 4096 then line = line:sub(1, 4096) .. " [...]" end
    if line:find("short test summary info", 1, true) then in_summary = true end
    if in_summary and #keep.summary < 200 then keep.summary[#keep.summary + 1] = line end
    keep.tail[#keep.tail + 1] = line
    if #keep.tail > 30 then table.remove(keep.tail, 1) end
  end
  return keep
end

-- Stops what a tier started; what it took from a pool goes back there.
local function stop_all(services, pool)
  for i = #services, 1, -1 do
    if pool and pool:holds(services[i]) then pool:give_back(services[i]) else services[i]:stop() end
  end
end

-- Starts the services a tier asks for, each from the registry (the module
-- novapipe.services.<name>: start(opts) -> service with env() and stop());
-- returns the environment to add and the list of services to stop, or nil
-- and an error (the ones already started are stopped).
-- The tier's services, each told how many xdist workers will share it
-- (each worker gets a database of its own) and the project's settings.
-- With a pool (novapipe watch's: novapipe.services._pool), servers are
-- taken from it, reset, and given back by stop_all instead of stopped.
local function start_services(tier, opts, cfg, pool)
  local env, started = {}, {}
  local sopts = { workers = opts.parallel, on_disk = cfg.postgresql and cfg.postgresql.on_disk }
  for _, name in ipairs(tier.services or {}) do
    local start = require("novapipe.services." .. name).start
    local svc, err
    if pool then svc, err = pool:take(name, start, sopts) else svc, err = start(sopts) end
    if not svc then
      stop_all(started, pool)
      err = tostring(err)
      return nil, err:lower():find(name:lower(), 1, true) and err or ("%s: %s"):format(name, err)
    end
    started[#started + 1] = svc
    for k, v in pairs(svc:env()) do env[k] = v end
  end
  return env, started
end

-- What a failed process said last: its stderr's last line, else its
-- stdout's, else its exit code.
local function last_words(r)
  for _, text in ipairs({ r.stderr or "", r.stdout or "" }) do
    local last = text:match("([^\n]*%S[^\n]*)%s*$")
    if last then return last:match("^%s*(.-)%s*$") end
  end
  return ("exit %d, nothing on stderr"):format(r.code)
end

-- Writes coverage HTML for a data file into html (a directory the sink
-- makes, refusing a link there), then adopts it: coverage.py copies the
-- tests' source into it, so it is masked like any report. Returns nil, or
-- the reason it could not.
-- coverage.py's --omit for the project's test files, unless the
-- configuration keeps them (coverage.omit_tests = false), as pytest-cov
-- users expect: the tests' own lines are not what is measured.
local function omit_args(cfg)
  if cfg.coverage.omit_tests == false then return {} end
  return { "--omit=" .. cfg.tests .. "/*" }
end

-- The total a coverage HTML report shows on its index page, "84%".
local function html_total(html)
  local text = fs.read(html .. "/index.html")
  return text and text:match('class="pc_cov">%s*([%d.]+%%)%s*<')
end

-- Writes and adopts a coverage HTML report; returns nil and the total it
-- shows, or an error.
local function coverage_html(session, ctx, data, html, what)
  local sink = ctx.sink
  -- coverage.py writes into html following links: what was there goes
  -- first (rmtree removes links, never what they point to).
  local ok, err = sink:dir(session.cfg.coverage.html)
  if ok then ok, err = fs.rmtree(html) end
  if ok then ok, err = sink:dir(html) end
  if not ok then return "coverage HTML: " .. err end
  local argv = { session.python, "-m", "coverage", "html", "-q", "--data-file=" .. data, "-d", html }
  for _, a in ipairs(omit_args(session.cfg)) do argv[#argv + 1] = a end
  local r, perr = process.run(argv, { stdin = "null" })
  if not r then return "coverage html: " .. perr end
  if r.code ~= 0 then
    sink:adopt(html, what)
    -- nothing measured besides the test files, which are left out
    if last_words(r):find("No data to report", 1, true) then return nil, nil, true end
    return "coverage html failed: " .. last_words(r)
  end
  ok, err = sink:adopt(html, what)
  if not ok then return err end
  return nil, html_total(html)
end

-- A tier whose recorded tests take less than this, in seconds, runs in one
-- process under --parallel auto: pytest-xdist's workers take about half a
-- second to start, which a short tier does not win back.
M.AUTO_MIN_SECONDS = 2

---The xdist workers for `--parallel auto`: the cores the tier has to
---itself (the cores shared among the tiers that run at once), with
---`--dist loadfile` (a file's tests, and their module fixtures, stay in one
---worker); 1 (no xdist) when that is one core, when the tier has no
---recorded durations yet (novapipe.select.durations: the first run
---measures), or when they say it is shorter than M.AUTO_MIN_SECONDS.
---@param cores integer
---@param at_once integer how many tiers run at the same time
---@param recorded? number the tier's recorded seconds, when there are any
---@return integer workers
function M.workers(cores, at_once, recorded)
  local n = math.max(1, cores // math.max(1, at_once))
  if not recorded or recorded < M.AUTO_MIN_SECONDS then return 1 end
  return n
end

---How many tiers run at once by default on `cores` cores: one more than
---the cores (with exactly as many, the last tier to start runs alone while
---the other cores idle; bench/tiers.lua measures it), one on one core.
---@param cores integer
---@return integer
function M.default_jobs(cores)
  return cores > 1 and cores + 1 or 1
end

-- Runs one tier; returns a stage result.
local function run_tier(session, tier, ctx)
  local cfg, opts = session.cfg, session.opts
  if opts.parallel == "auto" then
    local durations = require "novapipe.select.durations"
    local n = M.workers(require("novapipe.proc").cores(), session.width or 1,
      durations.tier_seconds(durations.load(false), tier.name))
    opts = setmetatable({ parallel = n, dist = n > 1 and "loadfile" or nil }, { __index = opts })
  end
  local sink = ctx.sink
  local dir = cfg.tests .. "/" .. tier.dir
  local target, k = dir, nil
  if opts.filter then
    local f = M.filter_target(opts.filter, dir)
    if f.outside then
      return { status = "skipped", neutral = true, reason = ("--filter %s is not in this tier"):format(opts.filter) }
    end
    target, k = f.path or dir, f.k
  end
  if opts.keyword then k = k and ("(%s) and (%s)"):format(k, opts.keyword) or opts.keyword end
  -- --changed: only the affected test files (within a --filter path)
  local affected, changed_note
  -- novapipe watch: the affected files and, besides, the tests that failed
  -- in the run before (their keys; the plugin's "also" mode keeps both)
  local also = opts.select and opts.select.mode == "also" and opts.select.by_tier[tier.name]
  if opts.changed and not opts.changed.everything then
    local P = require "novapipe.path"
    local files, left = require("novapipe.select.changed").under(opts.changed, P.normalize(dir))
    if target ~= dir then
      local file = P.normalize(target:match("^(.-)::") or target)
      local kept = {}
      for _, f in ipairs(files) do
        if f == file or P.below(file, f) then kept[#kept + 1] = f end
      end
      left = left + #files - #kept
      if #kept == 0 then
        return { status = "skipped", neutral = true,
                 reason = ("no affected tests under --filter %s (nothing they depend on changed)"):format(opts.filter) }
      end
      files = lfs.attributes(file, "mode") == "file" and { target } or kept
    end
    if #files == 0 and not also then
      if left == 0 then return { status = "skipped", neutral = true, reason = "no affected tests (the tier has no test file)" } end
      return { status = "skipped", neutral = true, reason = ("no affected tests (%d test file%s left out: nothing %s depend%s on changed)")
        :format(left, left == 1 and "" or "s", left == 1 and "it" or "they", left == 1 and "s" or "") }
    end
    affected = files
    -- (with failures to rerun, the whole tier is collected: the record
    -- knows them by key, not by file)
    target = also and target or files
    if also then
      changed_note = ("watch: %d of %d test files affected, and the tests that failed in the run before")
        :format(#files, #files + left)
    elseif left > 0 then
      changed_note = ("--changed: %d of %d test files (%d left out: nothing they depend on changed)")
        :format(#files, #files + left, left)
    end
  end
  local chosen = opts.select and opts.select.by_tier[tier.name]
  if opts.select and opts.select.mode == "also" and not opts.changed then
    error("np.tiers: select mode \"also\" needs a changed selection", 0)
  end
  if opts.select and opts.select.mode == "only" and not chosen then
    return { status = "skipped", neutral = true, reason = "--last-failed: no test of this tier failed in the last run" }
  end
  -- --shard: only this shard's part of the tier (none: said, not green)
  local part = opts.shard and opts.shard.tiers[tier.name]
  -- (with --changed the shard's part is of the affected files: pytest is
  -- given them)
  if part and affected and opts.shard.by ~= "test" then target = part.mine end
  if part and #part.mine == 0 then
    return { status = "skipped", neutral = true, reason = ("no tests in this shard (%d/%d)"):format(opts.shard.k, opts.shard.n) }
  end
  local name = labelled(opts, tier.name)
  local junit_path, cov_file
  -- Whatever happens from here (a failure, a timeout, Ctrl-C), the
  -- services are stopped, pytest's private cache is removed, and what it
  -- wrote for novapipe (JUnit XML, coverage data) is adopted by the sink:
  -- masked, owner-only.
  local scope <close> = setmetatable({ services = {} }, { __close = function(self, err)
    stop_all(self.services, self.pool)
    if self.cache then fs.rmtree(self.cache) end
    if err ~= nil then
      -- Interrupted or broken: nothing reads these files any more, but
      -- they must not stay unmasked and readable.
      if opts.junit and junit_path then pcall(sink.adopt, sink, junit_path, "JUnit XML, " .. name, { kind = "markup" }) end
      if cov_file then pcall(sink.adopt, sink, cov_file, "coverage data, " .. name, { kind = "bytes" }) end
    end
  end })
  if opts.junit then
    local into = opts.results or cfg.results
    local ok, err = sink:dir(into)
    if not ok then return { status = "error", reason = ("results directory: %s"):format(err) } end
    junit_path = ("%s/%s-results.xml"):format(into, tier.name)
    os.remove(junit_path)
  end
  if opts.coverage then
    local into = opts.coverage_data or cfg.coverage.data
    -- a shard's own directory is novapipe's (0700); the project's is the project's
    local ok, err = fs.mkdir_p(into, opts.coverage_data and "0700" or "0755")
    if not ok then return { status = "error", reason = ("coverage.data: %s"):format(err) } end
    cov_file = ("%s/.coverage.%s"):format(into, name)
    os.remove(cov_file)
  end

  local pool = ctx.watch and ctx.watch.services
  local env, services = start_services(tier, opts, cfg, pool)
  if not env then return { status = "error", reason = services } end
  scope.services, scope.pool = services, pool
  for var, value in pairs(tier.env or {}) do env[var] = value end
  env.NOVAPIPE_EVENTS_FD = "3"
  local reruns = M.reruns(opts, tier)
  if reruns > 0 then env.NOVAPIPE_RERUNS = tostring(reruns) end
  local pypath = os.getenv("PYTHONPATH")
  env.PYTHONPATH = host.root .. "/python" .. (pypath and pypath ~= "" and (":" .. pypath) or "")
  if cov_file then env.COVERAGE_FILE = cov_file end
  -- pytest writes into a pipe: it would take 80 columns, whatever the
  -- terminal's width (novapipe's own, $COLUMNS, else 80).
  if env.COLUMNS == nil then env.COLUMNS = tostring(term.width()) end

  local args = M.pytest_args(target, opts, junit_path, k, opts.coverage and cfg.coverage.source or nil)
  -- pytest's cache (last failed, node ids: test names that can hold PHI)
  -- lives in a private directory for the tier and goes with it: nothing of
  -- it stays on disk (novapipe's own run record is what remembers).
  local cache, cerr = require("novapipe.tmp").dir("novapipe-cache-")
  if not cache then return { status = "error", reason = ("pytest's cache: %s"):format(cerr) } end
  scope.cache = cache
  args[#args + 1] = "-o"
  args[#args + 1] = "cache_dir=" .. cache
  if chosen then
    -- the plugin keeps (or runs first) the tests whose keyed digests it is
    -- given: node ids can hold PHI, the record keeps only these
    local select_file = cache .. "/novapipe-select"
    local lines = { table.unpack(chosen) }
    if also then
      local here = lfs.currentdir()
      for _, f in ipairs(affected or {}) do lines[#lines + 1] = "file:" .. here .. "/" .. f end
    end
    local ok, serr = sink:write(select_file, ("%s\n%s\n%s\n"):format(opts.select.mode, opts.select.secret,
      table.concat(lines, "\n")), "selection", { raw = true, record = false })
    if not ok then return { status = "error", reason = ("the tests to select: %s"):format(serr) } end
    env.NOVAPIPE_SELECT = select_file
  end
  if opts.cov_context and opts.coverage then
    -- which test ran each line, by keyed digest (the plugin), so the
    -- security stage can take its coverage from this run
    local secret, serr = require("novapipe.run.record").secret(sink)
    local context_file = cache .. "/novapipe-context"
    local ok, werr = true, nil
    if secret then ok, werr = sink:write(context_file, secret .. "\n", "contexts", { raw = true, record = false }) end
    if not secret or not ok then return { status = "error", reason = ("coverage contexts: %s"):format(serr or werr) } end
    env.NOVAPIPE_COV_CONTEXT = context_file
  end
  if part and opts.shard.by == "test" then
    local sel, n = require("novapipe.select.shard").select_tests(session.run_pytest, target, env, cache, ctx,
      opts.shard, tier.name)
    if not sel and n == 0 then
      return { status = "skipped", neutral = true, reason = ("no tests in this shard (%d/%d)"):format(opts.shard.k, opts.shard.n) }
    end
    if not sel then return { status = "error", reason = ("this shard's tests: %s"):format(n) } end
    env.NOVAPIPE_SELECT = sel
  elseif part and not affected then
    local shard_file, serr = require("novapipe.select.shard").write_part(sink, cache, opts.shard, part)
    if not shard_file then return { status = "error", reason = ("this shard's files: %s"):format(serr) } end
    env.NOVAPIPE_SHARD = shard_file
  end
  -- what follows `--` on novapipe's command line, for every pytest run
  for _, a in ipairs(ctx.pytest_args or {}) do args[#args + 1] = a end
  local keep = output_keeper()
  local sname, started = stage_name(opts, tier.name), time.now()
  local shown = 0
  local emitted = 0
  -- The JUnit file, asked for, holds the tests' output and failure
  -- messages: adopted (masked by its text, never its markup; owner-only)
  -- before anything reads or keeps it, and its counts must agree. Taken as
  -- soon as the plugin says pytest wrote it (pytest still has its exit
  -- ahead), else once pytest is gone; taken early, it is taken again after
  -- unless it is still what was taken (a plugin, a conftest or a test may
  -- write it later, or send the end event before pytest wrote it).
  local junit_done
  local function take_junit(st)
    if not (junit_path and lfs.attributes(junit_path)) then return end
    junit_done = {}
    local adopted, aerr = sink:adopt(junit_path, "JUnit XML, " .. name, { kind = "markup" })
    if not adopted then
      junit_done.error = "cannot mask " .. junit_path .. ": " .. aerr
      return
    end
    local report, jerr = junit.read(junit_path)
    if not report then
      junit_done.note = jerr
    elseif junit.describe(report.counts) ~= junit.describe(st.pytest_counts) then
      -- as pytest counts (quarantine is novapipe's): a flaky test once, as flaky
      junit_done.note = ("the JUnit XML counts %s, novapipe's events %s"):format(junit.describe(report.counts),
        junit.describe(st.pytest_counts))
    end
    -- (the digest also spares the run record and the audit entry hashing it)
    local ok, sha = pcall(digest.sha256_file, junit_path)
    junit_done.sha256 = ok and sha or nil
    if junit_done.sha256 then sink:record(junit_path, "JUnit XML, " .. name, junit_done.sha256) end
  end
  -- Whether the JUnit file taken while pytest exited is still what was taken.
  local function junit_unchanged()
    if lfs.symlinkattributes(junit_path, "mode") ~= "file" or not junit_done.sha256 then return false end
    local ok, sha = pcall(digest.sha256_file, junit_path)
    return ok and sha == junit_done.sha256
  end
  local results = test_results.new(tier.name, function(st)
    -- each test as it ends, for reporters that work while pytest runs
    -- (the record masks and encodes it then, on the other core)
    while emitted < #st.tests do
      emitted = emitted + 1
      ctx.bus:emit("test", sname, st.tests[emitted])
    end
    if st.junit_written and not junit_done then
      local ok, terr = pcall(take_junit, st)
      if not ok then
        if errors.is_interrupt(terr) then error(terr, 0) end
        junit_done = { error = "cannot mask " .. junit_path .. ": " .. tostring(terr) }
      end
    end
    -- at most ten progress events a second, however fast tests end
    local now = time.now()
    if now - shown < 0.1 then return end
    shown = now
    ctx.bus:emit("progress", sname, { done = st.done, collected = st.collected, failed = st.failed,
                                      elapsed = now - started })
  end, session.quarantined)
  local timeout = tier.timeout or opts.timeout
  local r, err = session.run_pytest(args, {
    env = env, stdin = "null",
    -- stderr: see session.run_pytest
    stdout = opts.verbose and "inherit" or keep.line,
    -- Kept, not shown, pytest's output is read every 50 ms: a test's dot
    -- or line then wakes no one (some 1% of a run of quick tests went to
    -- those wake-ups). Its events still come as they are written.
    read_every = not opts.verbose and 0.05 or nil,
    events = results.line,
    timeout = timeout,
    filter = session.phi_filter,
  }, sink)
  ctx.bus:emit("progress", sname, nil)
  if not r then return { status = "error", reason = err } end

  -- The counts and every test's result come from the plugin's events.
  local counts = results.counts
  local result = { counts = counts, duration = r.duration, tests = results.tests, problems = results.problems() }
  if opts.cases then result.cases = results.tests end
  if changed_note then result.notes = { changed_note } end
  if results.malformed > 0 then
    result.notes = result.notes or {}
    table.insert(result.notes, ("%d line%s on the events channel ignored: not novapipe's plugin's (a test writing to the plugin's descriptor?)")
      :format(results.malformed, results.malformed == 1 and "" or "s"))
  end
  if not (junit_done and (junit_done.error or junit_unchanged())) then
    junit_done = nil
    take_junit(results)
  end
  local taken = junit_done or {}
  if taken.error then return { status = "error", reason = taken.error } end
  if taken.note then
    result.notes = result.notes or {}
    table.insert(result.notes, taken.note)
  end
  if r.timed_out then
    local running = results.running_now()
    result.status = "failed"
    result.timed_out = true
    result.reason = ("timed out after %gs%s"):format(timeout,
      #running > 0 and ("; running: " .. table.concat(running, ", ")) or "")
    result.summary = ("%d tests done before the timeout"):format(results.done)
  elseif r.signal ~= 0 then
    result.status = "error"
    result.reason = ("pytest was ended by signal %d"):format(r.signal)
  elseif r.code == 0 then
    result.status = "passed"
  elseif r.code == 1 and #result.problems == 0 and counts.quarantined > 0 then
    -- every failure is quarantined (novapipe.lua): the tier passes, saying so
    result.status = "passed"
    result.notes = result.notes or {}
    table.insert(result.notes, ("%d quarantined test%s failed; quarantine keeps %s from failing the tier")
      :format(counts.quarantined, counts.quarantined == 1 and "" or "s", counts.quarantined == 1 and "it" or "them"))
  elseif r.code == 1 then
    result.status = "failed"
  elseif r.code == 5 then
    result.status = opts.strict and "failed" or "empty"
    result.reason = "no tests collected in " .. (affected and ("the affected files of " .. dir) or target)
      .. (opts.strict and " (--strict)" or "")
    result.summary = "no tests"
  elseif r.code == 2 and #results.collection_errors() > 0 then
    result.status = "failed"
    result.reason = "collection errors in " .. table.concat(results.collection_errors(), ", ")
  else
    result.status = "error"
    local last = ""
    for i = #keep.tail, 1, -1 do
      if keep.tail[i]:find("%S") then
        last = keep.tail[i]:match("^%s*(.-)%s*$")
        break
      end
    end
    result.reason = ("%s (exit %d): %s"):format(PYTEST_EXIT[r.code] or "pytest failed", r.code, last)
  end
  if results.events == 0 and not r.timed_out and (result.status == "passed" or result.status == "failed") then
    result.status = "error"
    result.reason = "novapipe's pytest plugin sent no results (is it disabled, as with -p no:novapipe_pytest?)"
  end
  -- What pytest said, for a run that did not pass (its own output was not
  -- streamed): the short test summary, else its last lines.
  -- What pytest said, when no test's own result says why (an internal
  -- error, a usage error): the Failures section shows each test's.
  if (result.status == "failed" or result.status == "error") and not opts.verbose and #result.problems == 0 then
    result.details = #keep.summary > 0 and keep.summary or keep.tail
  end
  if cov_file and lfs.attributes(cov_file) then
    local ok, cerr = sink:adopt(cov_file, "coverage data, " .. name, { kind = "bytes" })
    if not ok then return { status = "error", reason = cerr } end
    session.coverage_files[#session.coverage_files + 1] = cov_file
    if opts.tier_html ~= false then
      local html = ("%s/%s_tests"):format(cfg.coverage.html, name)
      local herr, total, nothing = coverage_html(session, ctx, cov_file, html, "coverage HTML, " .. name)
      if herr then
        result.notes = { herr }
      end
      session.tier_coverage[#session.tier_coverage + 1] = { name = tier.name, total = total or (nothing and "no code measured") }
    end
  end
  return result
end

-- Combines coverage data files into `into` with coverage.py; nil, or why it
-- could not. coverage.py skips a data file it cannot read with a warning
-- and goes on: a total without it would be a claim about what it did not
-- see, so that is a failure too.
local function combine(py, into, files)
  os.remove(into)
  local argv = { py, "-m", "coverage", "combine", "--keep", "-q", "--data-file=" .. into }
  for _, f in ipairs(files) do argv[#argv + 1] = f end
  local r, err = process.run(argv, { stdin = "null" })
  if not r then return "coverage combine: " .. err end
  local unusable = ((r.stdout or "") .. (r.stderr or "")):match("Couldn't use data file ([^\n]*)")
  if unusable then return "coverage combine could not read a data file: " .. unusable end
  if r.code ~= 0 then return "coverage combine failed: " .. last_words(r) end
end

-- Combines the tiers' coverage data into one file, an HTML report and a
-- terminal report.
local function run_coverage(session, ctx)
  local cfg, sink = session.cfg, ctx.sink
  if #session.coverage_files == 0 then return { status = "skipped", reason = "no coverage data from this run" } end
  local py = session.python
  local combined = M.combined_data(cfg, session.opts.label)
  local cerr = combine(py, combined, session.coverage_files)
  if cerr then return { status = "error", reason = cerr } end
  local ok, aerr = sink:adopt(combined, "coverage data, " .. labelled(session.opts, "combined"), { kind = "bytes" })
  if not ok then return { status = "error", reason = aerr } end
  local html = cfg.coverage.html .. "/" .. labelled(session.opts, "combined")
  local herr, _, nothing = coverage_html(session, ctx, combined, html, "coverage HTML, " .. labelled(session.opts, "combined"))
  if herr then return { status = "error", reason = herr } end
  if nothing then
    return { status = "empty", summary = "no code measured",
             reason = ("no code under %s ran besides the test files, which are left out (coverage.omit_tests)")
               :format(table.concat(cfg.coverage.source, ", ")) }
  end
  local argv = { py, "-m", "coverage", "report", "--data-file=" .. combined }
  for _, a in ipairs(omit_args(cfg)) do argv[#argv + 1] = a end
  local r, err = process.run(argv, { stdin = "null" })
  if not r then return { status = "error", reason = "coverage report: " .. err } end
  local report = {}
  for line in (r.stdout or ""):gmatch("[^\n]+") do report[#report + 1] = line end
  local total = (report[#report] or ""):match("^TOTAL.-(%d+%%)%s*$")
  -- one line a tier, the whole table with --coverage-report
  local details = {}
  if session.opts.coverage_report then
    details = report
  else
    local width = 5
    for _, t in ipairs(session.tier_coverage) do width = math.max(width, #t.name) end
    for _, t in ipairs(session.tier_coverage) do
      details[#details + 1] = ("%-" .. width .. "s  %s"):format(t.name, t.total or "?")
    end
  end
  local result = { status = "passed", summary = total and ("total " .. total .. ", HTML in " .. html) or ("HTML in " .. html),
                   details = details, coverage = { total = total, tiers = session.tier_coverage } }
  -- what did not run is not covered: said, not hidden in the total
  -- (a tier whose results this group took from another run, `taken`, ran there)
  local not_run, taken = {}, {}
  for _, name in ipairs(session.in_group) do
    if session.opts.taken and session.opts.taken[name] then taken[#taken + 1] = name
    elseif not session.ran_tier[name] then not_run[#not_run + 1] = name end
  end
  result.notes = {}
  if #not_run > 0 then
    result.notes[#result.notes + 1] = ("covers only what ran: %s did not run"):format(table.concat(not_run, ", "))
  end
  if #taken > 0 then
    result.notes[#result.notes + 1] = ("covers only what this group ran: %s ran in the main tiers' run, whose "
      .. "coverage has them"):format(table.concat(taken, ", "))
  end
  if #result.notes == 0 then result.notes = nil end
  return result
end

---A coverage stage over data already on disk (novapipe merge's shards):
---each tier's files combined into the tier's own data file with its HTML
---report, then every tier's into the combined data, HTML and total, as a
---run's coverage stage writes them.
---@param cfg novapipe.Config
---@param by_tier {name: string, files: string[]}[]
---@param opts? {coverage_report?: boolean}
---@return novapipe.Stage
function M.coverage_stage(cfg, by_tier, opts)
  local session = { cfg = cfg, opts = { coverage_report = opts and opts.coverage_report }, coverage_files = {},
                    tier_coverage = {}, ran_tier = {}, in_group = {} }
  return pipeline.stage { name = "coverage", run = function(ctx)
    local py, perr = python.find({ "coverage" }, cfg.python)
    if not py then return { status = "error", reason = perr } end
    session.python = py
    local ok, err = fs.mkdir_p(cfg.coverage.data, "0755")
    if not ok then return { status = "error", reason = ("coverage.data: %s"):format(err) } end
    for _, t in ipairs(by_tier) do
      session.in_group[#session.in_group + 1] = t.name
      session.ran_tier[t.name] = true
      local data = ("%s/.coverage.%s"):format(cfg.coverage.data, t.name)
      local cerr = combine(py, data, t.files)
      if cerr then return { status = "error", reason = cerr } end
      ok, err = ctx.sink:adopt(data, "coverage data, " .. t.name, { kind = "bytes" })
      if not ok then return { status = "error", reason = err } end
      session.coverage_files[#session.coverage_files + 1] = data
      local html = ("%s/%s_tests"):format(cfg.coverage.html, t.name)
      local _, total, nothing = coverage_html(session, ctx, data, html, "coverage HTML, " .. t.name)
      session.tier_coverage[#session.tier_coverage + 1] = { name = t.name, total = total or (nothing and "no code measured") }
    end
    return run_coverage(session, ctx)
  end }
end

-- Creates the default tiers' missing directories (standalone, venv,
-- integration), and gives each tier directory an __init__.py (the
-- reference's behaviour). The tests directory itself must exist, and so
-- must every other tier's directory (M.stages checks). Returns nil, or why
-- it cannot.
local function ensure_dirs(cfg, sink)
  if lfs.attributes(cfg.tests, "mode") ~= "directory" then
    return ("test directory %s does not exist in %s (run from the project root, use -C DIR, or set tests in %s)")
      :format(cfg.tests, lfs.currentdir(), config.FILE)
  end
  for _, tier in ipairs(cfg.tiers) do
    local dir = cfg.tests .. "/" .. tier.dir
    if lfs.attributes(dir, "mode") ~= "directory" and config.is_default_tier(tier) then
      local ok, err = fs.mkdir_p(dir, "0755")
      if not ok then return ("tier %s: %s"):format(tier.name, err) end
    end
    local init = dir .. "/__init__.py"
    if not lfs.attributes(init) then
      local ok, err = sink:write(init, "", nil, { mode = "0644", record = false })
      if not ok then return ("tier %s: %s"):format(tier.name, err) end
    end
  end
end

-- Whether a --filter path names no tier: it exists nowhere, or it is a
-- file or directory outside every tier's directory and holds none of them.
local function filter_in_no_tier(cfg, filter)
  local file = filter:match("^(.-)::") or filter
  if not lfs.attributes(file) then return false end -- a -k expression
  for _, tier in ipairs(cfg.tiers) do
    if not M.filter_target(filter, cfg.tests .. "/" .. tier.dir).outside then return false end
  end
  return true
end

-- The selection the user typed, as they typed it ("--markers slow
-- --filter x"), or nil without one. --markers comes first: the PHI masker
-- reads a value in the context of the word before it.
local function selection_words(opts)
  local what = {}
  if opts.markers then what[#what + 1] = "--markers " .. opts.markers end
  if opts.filter then what[#what + 1] = "--filter " .. opts.filter end
  if opts.keyword then what[#what + 1] = "-k " .. opts.keyword end
  return #what > 0 and table.concat(what, " ") or nil
end

-- What a tier running ahead of its turn does is held back until the run
-- reaches it: its events (each test's result) and the files it recorded
-- are kept, and given on when its stage's turn comes, so reporters see
-- them in the order of a sequential run. Progress is live: one line for
-- the tier whose turn it is, naming the others running.
local function held(session, ctx)
  local h = { events = {}, records = {}, coverage_files = {}, tier_coverage = {} }
  local bus = { emit = function(_, kind, stage, payload)
    if kind == "progress" then
      session.live[stage] = payload
      session.show_progress(ctx)
    else
      h.events[#h.events + 1] = table.pack(kind, stage, payload)
    end
  end }
  h.sink = setmetatable({ record = function(_, path, what) h.records[#h.records + 1] = { path, what } end },
    { __index = ctx.sink })
  h.ctx = setmetatable({ bus = bus, sink = h.sink }, { __index = ctx })
  -- the session as the tier sees it: its coverage lists its own
  h.session = setmetatable({ coverage_files = h.coverage_files, tier_coverage = h.tier_coverage },
    { __index = session })
  return h
end

---Runs a group's tier stages at once (speculative tiers): each starts when
---a core is free, before the tiers it needs have passed; its results are
---held back until its turn, and shown in order. When a tier does not pass,
---the tiers that need it (directly or not) are ended at once and what they
---wrote removed: the pipeline then skips them as gating does, so the
---outcome, the reports and the exit code are those of a sequential run.
---Returns the function a tier stage calls for its result.
---@param session table
---@param stages novapipe.Stage[] the group's tier stages, in order
---@param tier_of table<string, novapipe.Tier>
---@param jobs integer at most this many tiers at once
---@param run_tier fun(session: table, tier: novapipe.Tier, ctx: novapipe.Context): table
---@return fun(ctx: novapipe.Context, name: string): table
function M.at_once(session, stages, tier_of, jobs, run_tier)
  local sched, holds, order = nil, {}, {}
  -- the list as it is now: the group's selection and coverage stages come after
  stages = { table.unpack(stages) }
  for i, st in ipairs(stages) do order[i] = st.name end
  session.live = {}
  local awaiting
  function session.show_progress(ctx)
    -- the line follows the tier whose turn it is: until it reports, or
    -- once it has ended, the others' progress does not redraw it
    local own = awaiting and session.live[awaiting]
    if not own then return end
    local also = {}
    for _, key in ipairs(sched:running_keys(order)) do
      local p = session.live[key]
      if key ~= awaiting and p then
        also[#also + 1] = ("%s %d%s"):format(key, p.done, p.collected and ("/" .. p.collected) or "")
      end
    end
    local shown = {}
    for k, v in pairs(own) do shown[k] = v end
    shown.also = #also > 0 and also or nil
    ctx.bus:emit("progress", awaiting, shown)
  end
  -- Every stage that needs `name`, directly or through others.
  local function dependents(name)
    local out, seen = {}, { [name] = true }
    for _, st in ipairs(stages) do
      for _, dep in ipairs(st.needs or {}) do
        if seen[type(dep) == "table" and dep.name or dep] and not seen[st.name] then
          seen[st.name] = true
          out[#out + 1] = st.name
        end
      end
    end
    return out
  end
  local function passes(r)
    return r.status == "passed" or r.status == "empty" or (r.status == "skipped" and r.neutral)
  end
  return function(ctx, name)
    if not sched then
      sched = require("novapipe.run.jobs").new(jobs)
      for _, st in ipairs(stages) do
        local h = held(session, ctx)
        holds[st.name] = h
        sched:add(st.name, function() return run_tier(h.session, tier_of[st.name], h.ctx) end)
      end
    end
    awaiting = name
    local result = sched:result(name)
    awaiting = nil
    ctx.bus:emit("progress", name, nil)
    local h = holds[name]
    for _, e in ipairs(h.events) do ctx.bus:emit(e[1], e[2], e[3]) end
    for _, r in ipairs(h.records) do ctx.sink:record(r[1], r[2]) end
    for _, f in ipairs(h.coverage_files) do session.coverage_files[#session.coverage_files + 1] = f end
    for _, t in ipairs(h.tier_coverage) do session.tier_coverage[#session.tier_coverage + 1] = t end
    if not passes(result) then
      local ended = dependents(name)
      for _, key in ipairs(ended) do sched:cancel(key, name .. " did not pass") end
      sched:settle()
      -- what they wrote goes: a sequential run would not have run them
      for _, key in ipairs(ended) do
        for _, r in ipairs(holds[key].records) do fs.rmtree(r[1]) end
        holds[key].records = {}
      end
    end
    return result
  end
end

---How many times a failed test of `tier` runs again: --reruns, else the
---tier's own reruns, else 0.
---@param opts novapipe.TierOpts
---@param tier novapipe.Tier
---@return integer
function M.reruns(opts, tier)
  return math.tointeger(opts.reruns or tier.reruns or 0) or 0
end

---The stages that run the configured tiers.
---@param opts novapipe.TierOpts
---@return novapipe.Stage[]
function M.stages(opts)
  local context = require "novapipe.run.context"
  local cfg = opts.config or context.config()
  -- No tests directory: one line, before anything runs (outside any
  -- project, what novapipe looked for).
  require("novapipe.run.project").require_tests(cfg, context.project())
  local selected = {}
  if opts.only and #opts.only > 0 then
    local known = {}
    for _, t in ipairs(cfg.tiers) do known[t.name] = true end
    for _, name in ipairs(opts.only) do
      if not known[name] then
        local names = {}
        for _, t in ipairs(cfg.tiers) do names[#names + 1] = t.name end
        local near = require("novapipe._nearest").nearest(name, names)
        errors.usage("unknown tier '%s'%s (tiers: %s)", name, near and ("; did you mean '%s'?"):format(near) or "",
          table.concat(names, ", "))
      end
      selected[name] = true
    end
  end
  -- A --filter that looks like a path names a file: a typo in it is one
  -- line here, before any tier or service starts, not a -k expression
  -- that matches nothing.
  local filter_file = opts.filter and (opts.filter:match("^(.-)::") or opts.filter)
  if filter_file and require("novapipe.path").looks_like_path(opts.filter) and not lfs.attributes(filter_file) then
    errors.usage("--filter %s: no such file or directory in %s (a name for pytest's -k has no '/', '.py' or '::')",
      filter_file, lfs.currentdir())
  end
  if opts.filter and filter_in_no_tier(cfg, opts.filter) then
    local dirs = {}
    for _, t in ipairs(cfg.tiers) do dirs[#dirs + 1] = cfg.tests .. "/" .. t.dir end
    errors.usage("--filter %s is in no tier's directory (%s): name a test file or directory inside one",
      opts.filter, table.concat(dirs, ", "))
  end
  -- A tier directory that is not there is a typo in novapipe.lua, unless
  -- it is one of the three novapipe creates: said before anything runs.
  if lfs.attributes(cfg.tests, "mode") == "directory" then
    for _, tier in ipairs(cfg.tiers) do
      local dir = cfg.tests .. "/" .. tier.dir
      if not config.is_default_tier(tier) and lfs.attributes(dir, "mode") ~= "directory" then
        errors.usage("%s: tier '%s': its directory %s %s (create it, or correct the tier's dir)", config.FILE,
          tier.name, dir, lfs.attributes(dir) and "is not a directory" or "does not exist")
      end
    end
  end
  local gated = not (opts.only and #opts.only > 0)
  if opts.jobs and opts.sequential then
    errors.usage("--jobs %d and --sequential: choose one (--sequential runs one tier at a time)", opts.jobs)
  end

  local session = { cfg = cfg, opts = opts, coverage_files = {}, python = nil, tier_coverage = {}, ran_tier = {}, in_group = {},
                    phi_filter = cfg.phi.enabled and require("novapipe.phi").filter(cfg.phi) or nil,
                    quarantined = require("novapipe.pytest.quarantine").matcher(cfg.quarantine or {}) }
  local candidates = python.candidates(cfg.python)
  local required = python.require_env(needed_modules(opts))
  local missing_line = "^" .. python.MISSING_MARK:gsub("%-", "%%-") .. " (.*)$"
  -- Runs pytest with the first candidate Python that has what the run
  -- needs (the bootstrap says, see novapipe.python); remembers it.
  function session.run_pytest(args, spawn_opts, sink)
    spawn_opts.env.NOVAPIPE_REQUIRE = required
    local lacks, closest, kind
    -- (a copy: tiers at once run this at the same time, and one that finds
    -- a Python reorders the list while another is going through it)
    for _, c in ipairs({ table.unpack(candidates) }) do
      if c.exe then
        local saw_missing, saw_kind
        local out = spawn_opts.stdout
        local o = {}
        for key, v in pairs(spawn_opts) do o[key] = v end
        -- The bootstrap's marker goes to stderr before pytest starts; the
        -- rest of stderr (through the PHI filter, like every line) goes
        -- where stdout's lines go, or, streamed, to novapipe's stderr.
        o.stderr = function(line)
          local m = line:match(missing_line)
          if m then
            saw_missing = {}
            for name in m:gmatch("%S+") do
              if saw_kind then saw_missing[#saw_missing + 1] = name else saw_kind = name end
            end
          elseif type(out) == "function" then
            out(line)
          else
            sink:error(line)
          end
        end
        local r, err = process.run(python.pytest_argv(c.exe, args), o)
        if not r then return nil, err end
        if not (r.code == python.MISSING_EXIT and saw_missing) then
          session.python = c.exe
          -- A Python that worked goes first from now on.
          for j, other in ipairs(candidates) do
            if other == c then
              table.remove(candidates, j)
              table.insert(candidates, 1, c)
              break
            end
          end
          return r, nil, c.exe
        end
        if not lacks or #saw_missing < #lacks then lacks, closest, kind = saw_missing, c, saw_kind end
      end
    end
    local explicit = candidates[1] and candidates[1].source and candidates[1] or nil
    return nil, python.not_found(explicit or closest, lacks, kind)
  end

  -- The first tier stage to run checks the tree once for all of them, and
  -- says what the project's pytest configuration leaves out.
  local prepared, problem
  local function prepare(ctx)
    if prepared then return problem end
    prepared = true
    problem = ensure_dirs(cfg, ctx.sink)
    local note = pytest_config.skipped_tiers(cfg)
    if note then ctx.bus:emit("note", note) end
    -- an expired quarantine entry is said aloud, once a run
    if not ctx.quarantine_said then
      ctx.quarantine_said = true
      local _, expired = require("novapipe.pytest.quarantine").split(cfg.quarantine or {})
      for _, q in ipairs(expired) do ctx.bus:emit("note", require("novapipe.pytest.quarantine").expired_line(q)) end
    end
    return problem
  end

  session.ran = 0
  local stages, tier_of = {}, {}
  for _, tier in ipairs(cfg.tiers) do
    if gated or selected[tier.name] then
      local needs
      if gated and tier.needs then
        needs = {}
        for i, n in ipairs(tier.needs) do needs[i] = stage_name(opts, n) end
      end
      session.in_group[#session.in_group + 1] = tier.name
      local name = stage_name(opts, tier.name)
      tier_of[name] = tier
      stages[#stages + 1] = pipeline.stage {
        name = name,
        needs = needs,
        run = function(ctx)
          local err = prepare(ctx)
          if err then return { status = "error", reason = err } end
          local result = session.at_once and session.at_once(ctx, name) or run_tier(session, tier, ctx)
          session.ran_tier[tier.name] = result.status ~= "skipped" and result.status ~= "error"
          session.ran = session.ran + (result.counts and result.counts.tests or 0)
          -- the main group's results, for stages that take tests' results
          -- from them instead of running the tests again (security in all)
          if not opts.label then
            ctx.tier_results = ctx.tier_results or {}
            ctx.tier_results[tier.name] = result
          end
          return result
        end,
      }
    end
  end
  -- Tiers at once: more than one tier, cores for more than one, and
  -- pytest's own output not streamed (two would interleave).
  local jobs = opts.jobs or M.default_jobs(require("novapipe.proc").cores())
  if #stages > 1 and jobs > 1 and not opts.sequential and not opts.verbose then
    session.at_once = M.at_once(session, stages, tier_of, jobs, run_tier)
    session.width = math.min(jobs, #stages)
  end
  local asked = selection_words(opts)
  if asked then
    -- A selection the user typed that runs no test in any tier is a
    -- mistake, not a pass: a stage of its own says so (exit 1), unless
    -- allow_empty. It needs every tier, so it judges only when they all
    -- ran (a tier that failed or could not run says so itself).
    local tier_stages = {}
    for i, st in ipairs(stages) do tier_stages[i] = st.name end
    stages[#stages + 1] = pipeline.stage { name = stage_name(opts, "selection"), needs = tier_stages,
      run = function()
        if session.ran > 0 then
          return { status = "passed", summary = ("%d test%s selected by %s")
            :format(session.ran, session.ran == 1 and "" or "s", asked) }
        end
        if opts.changed and not opts.changed.everything then
          return { status = "empty", reason = ("%s with --changed: no affected test ran"):format(asked) }
        end
        local said = ("%s selected no test in any tier"):format(asked)
        if opts.allow_empty then
          return { status = "empty", reason = said .. "; nothing ran (--allow-empty)" }
        end
        return { status = "failed",
                 reason = said .. ": nothing ran (check the name, path or expression; --allow-empty accepts it)" }
      end }
  end
  if opts.coverage then
    stages[#stages + 1] = pipeline.stage { name = stage_name(opts, "coverage"),
      run = function(ctx) return run_coverage(session, ctx) end }
  end
  return stages
end

return M
