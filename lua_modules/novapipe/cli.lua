-- The command line: novapipe [-C DIR] [--no-color] [--version] COMMAND ...
-- main(args) returns the exit code; the host calls it.
local lfs = require "lfs"
local errors = require "novapipe._errors"
local host = require "novapipe.host"
local proc = require "novapipe.proc"
local term = require "novapipe.term"

-- Loaded when a command needs them, so `novapipe exec` starts fast.
local function pipeline() return require "novapipe.pipeline" end

local M = {}

local function build_parser()
  local argparse = require "argparse"
  local p = argparse("novapipe", "A test pipeline engine: tiered, gated test runs and reports.")
    :add_help(false)
    :epilog("Exit codes: 0 passed, 1 tests failed, 2 usage or configuration error, 130 interrupted.\n"
      .. "Run 'novapipe run PIPELINE --help' for a pipeline's own options.")
  p:flag("-h --help", "Show this help and exit.")
  p:option("-C", "Work in DIR instead of the current directory."):argname("<DIR>")
  p:flag("--no-color", "No colour, whatever the terminal or FORCE_COLOR say.")
  p:flag("--version", "Print the version and exit.")
  p:command_target("command")
  p:require_command(false)
  local run = p:command("run", "Run a pipeline, by path or by name."):add_help(false):handle_options(false)
  run:argument("pipeline", "A file (pipelines/all.lua) or a name (all, run_tests).")
  run:argument("args", "The pipeline's own options."):args("*")
  p:command("list", "List the named pipelines."):add_help(false)
  local audit = p:command("audit", "Check the audit log every pipeline run appends to.")
  audit:command_target("audit_command")
  local verify = audit:command("verify", "Verify the log's hash chain; name any edited, deleted, inserted or reordered entry.")
  verify:option("--log", "The log (default: the project's, .novapipe/audit.log)."):argname("<PATH>")
  local init = audit:command("init", "Start a new chain (the old log is kept beside it); logged as the new chain's first entry.")
  init:option("--log", "The log (default: the project's, .novapipe/audit.log)."):argname("<PATH>")
  local dur = p:command("durations", "Show the recorded test durations, slowest files first, per tier.")
  dur:option("--export", "Write a copy to FILE, for the team to commit (.novapipe-durations.json is read by CI)."):argname("<FILE>")
  local merge = p:command("merge", "Merge the shards of a run (--shard K/N) into what one run writes.")
  merge:argument("dirs", "Each shard's directory (--shard-dir), as CI downloaded it."):args("+")
  merge:flag("--coverage-report", "The whole coverage table on the console, not a line a tier.")
  merge:option("--json", "Also write the merged run's record to FILE."):argname("<FILE>")
  merge:option("--html", "Write the HTML page of the merged run to FILE."):argname("<FILE>")
  p:command("flaky", "List the tests that were flaky (passed only on a rerun) in the recorded runs, with how often.")
  local adv = p:command("advisories", "Keep the advisory database the dependency scan reads: OSV's PyPI export, "
    .. "cached in $XDG_CACHE_HOME/novapipe/osv/PyPI (or security.advisories_cache).")
    :add_help(false)
    :epilog("Without a database younger than security.advisories_max_age_days (7), the dependency scan is "
      .. "unchecked, never passed; where advisories are required (security.require_advisories, or CI set) the "
      .. "run exits 2. See the README, \"Advisories\".")
  adv:flag("-h --help", "Show this help and exit."):target("advisories_help")
  adv:command_target("advisories_command")
  adv:require_command(false)
  local upd = adv:command("update", "Download OSV's PyPI export, verify it (a zip of OSV records), and swap it in; "
    .. "the database in use stays until the new one is complete and checked.")
  upd:option("--from", "A mirror's URL, or a local all.zip for a site without network "
    .. "(default: " .. "https://osv-vulnerabilities.storage.googleapis.com/PyPI/all.zip)."):argname("<URL|FILE>")
  adv:command("status", "Show the database a scan would use: where, fetched from where and when, its records; "
    .. "exit 2 when there is none or it is too old.")
  local watch = p:command("watch", "Run the tests, then again on each save: the test files the saved files affect "
    .. "and the tests that failed the run before."):add_help(false):handle_options(false)
  watch:argument("args", "run_tests's options (novapipe run run_tests --help)."):args("*")
  watch:epilog("Each run is 'novapipe run run_tests' with these options: the first runs them as given; each save "
    .. "then runs the test files the saved files affect (as --changed selects them) and the tests that failed in the "
    .. "run before. Saves during a run make one more run after it. The tiers' throwaway PostgreSQL and Redis are "
    .. "started once and made as new before each run; on a terminal each run starts on a cleared screen. "
    .. "Ignored: .git, __pycache__, .novapipe, coverage "
    .. "data (.coverage*), the configured results and coverage HTML directories, and what git check-ignore says "
    .. "(outside a git repository, the root .gitignore's lines). --changed, --last-failed, --failed-first and --shard "
    .. "are refused: watch selects each run itself; --explain explains each re-run. Ctrl-C ends it, and its servers "
    .. "(exit 130).")
  local ex = p:command("exec", "Run a Lua script inside the host."):add_help(false):handle_options(false)
  ex:argument("script", "The script; a first line starting with # is skipped.")
  ex:argument("args", "Arguments, given to the script as arg and ..."):args("*")
  return p
end

local function is_file(path)
  return lfs.attributes(path, "mode") == "file"
end

---Where a pipeline named on the command line lives. A path is taken as it
---is (relative to where novapipe started, then to the project root), or
---else relative to novapipe's own files; a name is looked up in the
---project's pipelines/ and then in novapipe's.
---@param name string
---@param project? novapipe.Project
---@return string path
function M.resolve(name, project)
  if name:find("/", 1, true) or name:match("%.lua$") then
    if project and project.start ~= project.root and not name:find("^/") then
      local typed = require("novapipe.path").normalize(project.start .. "/" .. name)
      if is_file(typed) then return typed end
    end
    if is_file(name) then return name end
    local bundled = host.root .. "/" .. name
    if not name:find("^/") and is_file(bundled) then return bundled end
    errors.usage("no pipeline file '%s' (looked in %s and %s)", name, lfs.currentdir(), host.root)
  end
  for _, dir in ipairs({ "pipelines", host.root .. "/pipelines" }) do
    local path = dir .. "/" .. name .. ".lua"
    if is_file(path) then return path end
  end
  local names = {}
  for _, dir in ipairs({ "pipelines", host.root .. "/pipelines" }) do
    if lfs.attributes(dir, "mode") == "directory" then
      for f in lfs.dir(dir) do names[#names + 1] = f:match("^(.+)%.lua$") end
    end
  end
  local near = require("novapipe._nearest").nearest(name, names)
  if near then
    errors.usage("unknown pipeline '%s'; did you mean '%s'? ('novapipe list' shows the available ones)", name, near)
  end
  errors.usage("unknown pipeline '%s'; 'novapipe list' shows the available ones", name)
end

---The named pipelines: the project's first, then novapipe's own.
---@return {name: string, path: string, description: string}[]
function M.available()
  local seen, list = {}, {}
  for _, dir in ipairs({ "pipelines", host.root .. "/pipelines" }) do
    if lfs.attributes(dir, "mode") == "directory" then
      local names = {}
      for f in lfs.dir(dir) do
        local n = f:match("^(.+)%.lua$")
        if n then names[#names + 1] = n end
      end
      table.sort(names)
      for _, n in ipairs(names) do
        if not seen[n] then
          seen[n] = true
          local path = dir .. "/" .. n .. ".lua"
          local ok, def = pcall(pipeline().load, path)
          local desc = ok and def.description or ("(cannot load: " .. tostring(def) .. ")")
          list[#list + 1] = { name = n, path = path, description = desc }
        end
      end
    end
  end
  return list
end

local function cmd_list()
  require("novapipe.run.project").enter()
  local list = M.available()
  local width = 4
  for _, p in ipairs(list) do width = math.max(width, #p.name) end
  local sink = require("novapipe.run.sink").new()
  for _, p in ipairs(list) do
    sink:print(("%s  %s"):format(term.style(("%-" .. width .. "s"):format(p.name), "bold"), p.description))
  end
  return errors.EXIT.passed
end

local OUTCOME = { [0] = "passed", [1] = "failed", [2] = "error", [130] = "interrupted" }

-- Arguments as the audit log keeps them: each masked, and when masking the
-- whole command line finds more than the arguments one by one (a date in
-- one argument, its "DOB" in the one before), the masked line instead.
local function masked_args(sink, args)
  local each = {}
  for i, a in ipairs(args) do each[i] = sink.mask(a) end
  local whole = sink.mask(table.concat(args, " "))
  if whole ~= table.concat(each, " ") then return { whole } end
  return each
end

-- Appends the run to the project's audit log (see novapipe.audit), also
-- for a run refused before it started. A run refused because it is outside
-- any project, and a read-only run (the pipeline's read_only: analyze
-- without --report), leave nothing behind: their entry goes only into a
-- log whose directory exists, never into a new .novapipe/. A log that
-- cannot be written is said on stderr; the run's own exit stands.
local function record_run(ctx, args, exit, outcome, failure)
  local cfg = ctx.config
  if not cfg.audit.enabled then return end
  local leaves_nothing = (type(failure) == "table" and failure.outside)
    or (ctx.def and ctx.opts and pipeline().read_only(ctx.def, ctx.opts))
  if leaves_nothing and lfs.attributes(require("novapipe.path").dirname(cfg.audit.log), "mode") ~= "directory" then
    return
  end
  local stages, changed = {}, nil
  for _, row in ipairs(outcome and outcome.results or {}) do
    stages[#stages + 1] = { name = row.stage.name, status = row.result.status }
    -- --changed: what was compared and how much it selected (the run
    -- record lists the files)
    local c = row.result.changed
    if c then
      changed = { against = c.against, changes = #c.changes, tests = c.tests, selected = #c.selected,
                  everything = c.everything ~= nil }
    end
  end
  local entry, err = require("novapipe.audit").append(cfg.audit.log, {
    pipeline = args.pipeline, args = masked_args(ctx.sink, args.args),
    outcome = { exit = exit, status = OUTCOME[exit] or "error", stages = stages, changed = changed,
                pytest_addopts = (os.getenv("PYTEST_ADDOPTS") or "") ~= "" and os.getenv("PYTEST_ADDOPTS") or nil },
    reports = ctx.sink:list(), mask = ctx.sink.mask,
  })
  if not entry then ctx.sink:error("novapipe: audit log not written: " .. tostring(err)) end
end

local function cmd_audit(args)
  local project = require("novapipe.run.project").enter()
  local ctx = require("novapipe.run.context").new({ project = project })
  local log = args.log and require("novapipe.path").rebase(args.log, project.start, project.root) or ctx.config.audit.log
  local audit = require("novapipe.audit")
  if args.audit_command == "init" then
    local ok, err = audit.init(log)
    if not ok then errors.usage("audit init: %s", err) end
    ctx.sink:print(("%s: a new chain is started (the old log, if any, was kept as %s)"):format(log, ok))
    return errors.EXIT.passed
  end
  local n, problems, head = audit.verify(log)
  if not n then
    errors.usage("audit verify: %s", problems)
  end
  if #problems == 0 then
    ctx.sink:print(("%s: %d entries, chain intact; last hash %s"):format(log, n, head))
    return errors.EXIT.passed
  end
  for _, p in ipairs(problems) do ctx.sink:print(("%s: %s"):format(log, p)) end
  ctx.sink:print(("%s: %d entries, %d problem%s"):format(log, n, #problems, #problems == 1 and "" or "s"))
  return errors.EXIT.failed
end

-- novapipe flaky: the flaky tests of the runs recorded in .novapipe/runs.
local function cmd_flaky()
  local project = require("novapipe.run.project").enter()
  local ctx = require("novapipe.run.context").new({ project = project })
  local flaky = require("novapipe.run.flaky")
  local list, runs = flaky.scan()
  for _, line in ipairs(flaky.lines(list, runs)) do ctx.sink:print(line) end
  return errors.EXIT.passed
end

-- What an error object says: a string, a value with __tostring, else its
-- type (lua.c's wording), never "table: 0x...".
local function message_of(e)
  if type(e) == "string" then return e end
  local mt = getmetatable(e)
  if mt and mt.__tostring then return tostring(e) end
  return ("(error object is a %s value)"):format(type(e))
end

-- The xpcall handler: a usage error or an interrupt as it is, anything
-- else (a bug) with its traceback.
local function traceback(e)
  if errors.is_usage(e) or errors.is_interrupt(e) then return e end
  return debug.traceback(message_of(e), 2)
end

local function run_pipeline(args, holder)
  local context = require("novapipe.run.context")
  -- What runs killed without a chance to clean up left in $TMPDIR (a
  -- PostgreSQL data directory, a private JUnit file) goes now.
  pcall(require("novapipe.tmp").sweep)
  local ctx
  local done, outcome = xpcall(function()
    -- The project: here, or the nearest directory above with novapipe.lua
    -- or the tests directory (novapipe.run.project), which becomes the
    -- current directory.
    local project = require("novapipe.run.project").enter()
    ctx = context.new({ name = args.pipeline, args = args.args, project = project })
    ctx.watch = args.watch -- novapipe watch's re-run: {changes = paths}
    holder.sink = ctx.sink
    local p = pipeline()
    ctx.path = M.resolve(args.pipeline, project)
    ctx.def = p.load(ctx.path)
    -- `--` ends novapipe's options: what follows goes to every pytest run
    local own, rest = {}, nil
    for _, a in ipairs(args.args) do
      if rest then rest[#rest + 1] = a
      elseif a == "--" then rest = {}
      else own[#own + 1] = a end
    end
    ctx.pytest_args = rest or {}
    local opts = p.parse(ctx.def, args.pipeline, own, function(s) ctx.sink:print((s:gsub("\n$", ""))) end)
    if not opts then return nil end
    ctx.opts = p.rebase_paths(ctx.def, opts, project.start, project.root)
    ctx.outputs = { json = opts.json, html = opts.html or ctx.def.html }
    -- A read-only run (analyze without --report) makes no .novapipe/ for
    -- its record; it keeps one only where the project has that directory.
    local record_dir = require("novapipe.path").dirname(require("novapipe.reporters.record").DIR)
    if p.read_only(ctx.def, opts) and lfs.attributes(record_dir, "mode") ~= "directory" then
      ctx.outputs.keep_record = false
    end
    -- in this order at the end: the record, the page made of it, the
    -- annotations, then the console, which names the page
    local reporters = { "record", "durations", "html", "github", "console" }
    local step_summary = os.getenv("GITHUB_STEP_SUMMARY")
    if step_summary and step_summary ~= "" then reporters[#reporters + 1] = "markdown" end
    context.subscribe(ctx, reporters)
    return p.run(ctx.def, opts, ctx)
  end, traceback)
  -- A configuration too broken to load still gets its run recorded and
  -- its error masked: with the defaults.
  ctx = ctx or context.new({ name = args.pipeline, args = args.args, config = require("novapipe.config").defaults() })
  holder.sink = ctx.sink
  if done and not outcome then return errors.EXIT.passed end -- --help
  local exit
  if done then exit = outcome.exit
  elseif errors.is_interrupt(outcome) or proc.interrupted() then exit = errors.EXIT.interrupted
  else exit = errors.EXIT.usage end
  local recorded, err = pcall(record_run, ctx, args, exit, done and outcome or nil, not done and outcome or nil)
  if not recorded then ctx.sink:error("novapipe: audit log not written: " .. message_of(err)) end
  if done then return exit end
  if errors.is_interrupt(outcome) then error(outcome, 0) end
  -- A usage error is one line; anything else is a bug in the pipeline,
  -- shown with its traceback. Both masked.
  ctx.sink:error("novapipe: " .. message_of(outcome))
  return exit
end

-- A run with the guard in place (novapipe.run.guard): print, io and
-- novapipe.fs's writers lead to the run's sink, the default one until the
-- configuration is loaded.
local function cmd_run(args)
  local guard = require "novapipe.run.guard"
  local holder = { sink = require("novapipe.run.sink").new() }
  guard.install(function() return holder.sink end)
  local res = table.pack(pcall(run_pipeline, args, holder))
  guard.uninstall()
  if not res[1] then error(res[2], 0) end
  return table.unpack(res, 2, res.n)
end

-- `novapipe durations [--export FILE]`: the recorded durations, through
-- a sink with the project's PHI settings (novapipe.select.durations).
local function cmd_durations(args)
  local project = require("novapipe.run.project").enter()
  local ctx = require("novapipe.run.context").new({ project = project })
  local d = require "novapipe.select.durations"
  for _, path in ipairs({ d.LOCAL, d.COMMITTED }) do
    local ok, why = d.read(path)
    if not ok and require("lfs").attributes(path) then
      errors.usage("durations: %s cannot be read: %s (remove it, and the next run records anew)", path, why)
    end
  end
  local data, from = d.load(false)
  if not data then
    errors.usage("no durations recorded yet (neither %s nor %s): run the tests once", d.LOCAL, d.COMMITTED)
  end
  if args.export then
    local path = require("novapipe.path").rebase(args.export, project.start, project.root)
    local parent = path:match("^(.*)/[^/]*$")
    if parent and parent ~= "" and require("lfs").attributes(parent, "mode") ~= "directory" then
      errors.usage("durations --export %s: no such directory %s (create it first)", args.export, parent)
    end
    local ok, err = ctx.sink:write(path, d.encode(d.rekey(data, d.keyer(ctx.config.phi))), "durations (export)",
      { premasked = true })
    if not ok then errors.usage("durations --export %s: %s", path, err) end
    ctx.sink:print(("%s: the durations of %s, for the team to commit (CI reads %s)"):format(path, from, d.COMMITTED))
    return errors.EXIT.passed
  end
  for _, line in ipairs(d.describe(data, ctx.config.tiers)) do ctx.sink:print(line) end
  ctx.sink:print(("(from %s)"):format(from))
  return errors.EXIT.passed
end

-- `novapipe merge DIR...`: the bundled merge pipeline, as `novapipe run
-- merge --from DIR ...` would run it (recorded and audited as a run).
local function cmd_merge(args)
  local a = {}
  for _, dir in ipairs(args.dirs) do a[#a + 1] = "--from"; a[#a + 1] = dir end
  if args.coverage_report then a[#a + 1] = "--coverage-report" end
  for _, o in ipairs({ "json", "html" }) do
    if args[o] then a[#a + 1] = "--" .. o; a[#a + 1] = args[o] end
  end
  return M.commands.run({ pipeline = "merge", args = a })
end

local function cmd_exec(args)
  local chunk, err = loadfile(args.script)
  if not chunk then errors.usage("%s", err) end
  -- `arg` as lua.c sets it, so scripts such as busted's runner work.
  local a = { [0] = args.script, [-1] = "novapipe" }
  for i, v in ipairs(args.args) do a[i] = v end
  _G.arg = a
  local r = chunk(table.unpack(args.args))
  if math.type(r) == "integer" then return r end
  return errors.EXIT.passed
end

-- What novapipe says outside a run (its help, its version, a mistake on
-- its own command line): through a sink with the default PHI settings.
local function say(msg)
  require("novapipe.run.sink").new():print(msg)
end

local function say_error(msg)
  require("novapipe.run.sink").new():error(msg)
end

-- `novapipe watch [run_tests options]`: novapipe.run.watch, each run a
-- run of run_tests as `novapipe run run_tests` makes it.
local function cmd_watch(args)
  for _, a in ipairs(args.args) do
    if a == "-h" or a == "--help" then
      for _, c in ipairs(build_parser()._commands) do
        if c._name == "watch" then say(c:get_help()) end
      end
      return errors.EXIT.passed
    end
  end
  return require("novapipe.run.watch").loop(args.args, M.commands.run)
end

-- `novapipe advisories [update [--from URL|FILE] | status]`: novapipe's
-- advisory database (novapipe.security.advisories). Alone, its help.
local function cmd_advisories(args)
  if args.advisories_help or not args.advisories_command then
    local parser = build_parser()
    for _, c in ipairs(parser._commands) do
      if c._name == "advisories" then say(c:get_help()) end
    end
    return errors.EXIT.passed
  end
  local project = require("novapipe.run.project").enter()
  local ctx = require("novapipe.run.context").new({ project = project })
  local adv = require "novapipe.security.advisories"
  if args.advisories_command == "status" then
    local lines, usable = adv.status(ctx.config, { given = ctx.config.security.advisories })
    for _, l in ipairs(lines) do ctx.sink:print(l) end
    return usable and errors.EXIT.passed or errors.EXIT.usage
  end
  local from = args.from
  if from and not from:find("^%a[%w+.-]*://") then
    from = require("novapipe.path").rebase(from, project.start, project.root)
    if lfs.attributes(from, "mode") ~= "file" then
      errors.usage("advisories update --from %s: no such file (give a mirror's URL or the path of an all.zip)", args.from)
    end
  end
  ctx.sink:print(("fetching %s into %s ..."):format(from or adv.URL, adv.cache_dir(ctx.config) or "?"))
  local rec, err = adv.update(ctx, from)
  if not rec then errors.usage("advisories update: %s", err) end
  ctx.sink:print(("%s/%s: %d OSV records from %s, sha256 %s: in use from now on"):format(rec.dir, adv.ZIP,
    rec.records, rec.source, rec.sha256))
  return errors.EXIT.passed
end

-- The fast path: the well-formed shapes `[-C DIR] [--no-color] run P ...`,
-- `exec S ...` and `list`, read without loading argparse. Anything else
-- (help, --version, every mistake) returns nil and goes to argparse, which
-- stays the one authority for usage text and errors.
local function scan(argv)
  local a, i = { args = {} }, 1
  while true do
    local w = argv[i]
    if w == "-C" and argv[i + 1] then
      a.C, i = argv[i + 1], i + 2
    elseif w == "--no-color" then
      a.no_color, i = true, i + 1
    else
      break
    end
  end
  local cmd, first = argv[i], argv[i + 1]
  if cmd == "list" and argv[i + 1] == nil then
    a.command = "list"
  elseif (cmd == "run" or cmd == "exec") and first then
    a.command = cmd
    a[cmd == "run" and "pipeline" or "script"] = first
    table.move(argv, i + 2, #argv, 1, a.args)
  else
    return nil
  end
  return a
end

M.commands = { run = cmd_run, list = cmd_list, exec = cmd_exec, audit = cmd_audit, durations = cmd_durations,
               merge = cmd_merge, flaky = cmd_flaky, advisories = cmd_advisories, watch = cmd_watch }

---Runs the command line. Returns the exit code; a bug in a pipeline or
---script is reported with its traceback and exits 2.
---@param argv string[]
---@return integer
function M.main(argv)
  local args = scan(argv)
  if not args then
    local parser = build_parser()
    local ok
    ok, args = parser:pparse(argv)
    if not ok then
      local names = { "-h", "--help", "-C", "--no-color", "--version", "run", "list", "exec", "audit", "verify", "init",
                      "--log", "durations", "--export", "merge", "--coverage-report", "--json", "--html", "flaky",
                      "advisories", "update", "status", "--from", "watch" }
      say_error(("novapipe: %s (try 'novapipe --help')"):format(require("novapipe._nearest").argparse_error(args, names)))
      return errors.EXIT.usage
    end
    if args.help then
      term.init({ no_color = args.no_color })
      say(parser:get_help())
      return errors.EXIT.passed
    end
  end
  term.init({ no_color = args.no_color })
  if args.version then
    say(("novapipe %s (%s)"):format(host.version, host.lua))
    return errors.EXIT.passed
  end
  if not args.command then
    say_error("novapipe: a command is required: run, watch, list, durations, merge, flaky, advisories, exec or audit "
      .. "(try 'novapipe --help')")
    return errors.EXIT.usage
  end
  if args.C then
    if lfs.attributes(args.C, "mode") ~= "directory" or not lfs.chdir(args.C) then
      say_error(("novapipe: -C %s: not a directory that can be entered"):format(args.C))
      return errors.EXIT.usage
    end
  end
  local done, code = xpcall(M.commands[args.command], traceback, args)
  if done then return code end
  if errors.is_interrupt(code) or proc.interrupted() then
    error(code, 0) -- the host turns it into exit 130
  end
  say_error("novapipe: " .. message_of(code))
  return errors.EXIT.usage
end

return M
