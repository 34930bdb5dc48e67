-- Pipelines: a definition (declared options and stages), how a file is
-- loaded, and how stages run with gating between them.
local errors = require "novapipe._errors"
local events = require "novapipe.events"
local time = require "novapipe.time"

local M = {}

local PIPELINE = {}

---@class novapipe.Option
---@field [1] string names, e.g. "--parallel -p"
---@field [2] string help text
---@field arg? string the value's name; without it the option is a flag
---@field default? any
---@field convert? fun(s: string): any
---@field choices? string[]
---@field count? string|integer how often it may appear ("*" for a list)
---@field optional? boolean with arg: the value may be left out (`--changed` or `--changed main`); the option is then true, else its value
---@field path? boolean|fun(value: string): boolean the value is a path (or, a function: is one when it says so), typed relative to where novapipe started; rebased when novapipe works from a project root found above

---@class novapipe.Stage
---@field name string
---@field needs? (string|novapipe.Stage)[] stages that must pass first
---@field run fun(ctx: table): novapipe.StageResult|boolean

---@class novapipe.StageResult
---@field status "passed"|"failed"|"error"|"skipped"|"empty"|"unchecked"
---@field summary? string one line shown beside the stage
---@field reason? string why it was skipped, errored or not checked
---@field required? boolean an unchecked stage whose check the run requires: the run ends in a configuration error (exit 2)
---@field notes? string[] shown under the stage as "note: ..."
---@field warnings? string[] shown under the stage as "warning: ...": something the user should fix, which did not fail the stage
---@field details? string[] lines shown under the stage
---@field neutral? boolean a skipped stage the user left out by choice: it does not stop those that need it
---@field duration? number

---@class novapipe.Pipeline
---@field description string
---@field options? novapipe.Option[]
---@field stages fun(opts: table, ctx: table): novapipe.Stage[]
---@field read_only? boolean|fun(opts: table): boolean the run writes nothing (analyze without --report): it creates no .novapipe/ for its audit entry, and appends one only to a log that exists
---@field html? string where the run's HTML report goes when --html does not say (`all`: backend/test-results/report.html); without it, only --html writes one

local option_keys = { [1] = true, [2] = true, arg = true, default = true, convert = true, choices = true, count = true,
                      path = true, optional = true }

---Options every pipeline has, after its own: where the run's record and
---its HTML page go besides .novapipe/ (the record reporter and the html
---reporter read them from ctx.outputs).
M.COMMON = {
  { "--json", "also write the run's record (JSON, schema novapipe.run/1) to FILE", arg = "FILE", path = true },
  { "--html", "write an HTML page of the run to FILE", arg = "FILE", path = true },
}

---Declares a pipeline. Raises (a programmer error) on a malformed one.
---@param def novapipe.Pipeline
---@return novapipe.Pipeline
function M.pipeline(def)
  if type(def) ~= "table" then error("pipeline: a table expected", 2) end
  if type(def.description) ~= "string" then error("pipeline: description must be a string", 2) end
  if type(def.stages) ~= "function" then error("pipeline: stages must be a function(opts, ctx)", 2) end
  if def.html ~= nil and (type(def.html) ~= "string" or def.html == "") then
    error("pipeline: html must be the path of the run's HTML report (a string)", 2)
  end
  for i, o in ipairs(def.options or {}) do
    if type(o[1]) ~= "string" or type(o[2]) ~= "string" then
      error(("pipeline: option %d needs a name and a help text"):format(i), 2)
    end
    for k in pairs(o) do
      if not option_keys[k] then error(("pipeline: option %s has an unknown key '%s'"):format(o[1], tostring(k)), 2) end
    end
    if o.path ~= nil and type(o.path) ~= "boolean" and type(o.path) ~= "function" then
      error(("pipeline: option %s: path must be true or a function(value)"):format(o[1]), 2)
    end
  end
  if def.read_only ~= nil and type(def.read_only) ~= "boolean" and type(def.read_only) ~= "function" then
    error("pipeline: read_only must be a boolean or a function(opts)", 2)
  end
  local names = {}
  for _, o in ipairs(def.options or {}) do
    for n in o[1]:gmatch("%S+") do names[n] = true end
  end
  def.options = def.options or {}
  for _, o in ipairs(M.COMMON) do
    if not names[o[1]] then def.options[#def.options + 1] = o end
  end
  return setmetatable(def, PIPELINE)
end

---Declares a stage.
---@param def novapipe.Stage
---@return novapipe.Stage
function M.stage(def)
  if type(def) ~= "table" or type(def.name) ~= "string" then error("stage: a name is required", 2) end
  if type(def.run) ~= "function" then error(("stage '%s': run must be a function"):format(def.name), 2) end
  return def
end

---Whether a value was made by M.pipeline.
function M.is_pipeline(v)
  return getmetatable(v) == PIPELINE
end

---Loads a pipeline file. A syntax error or a file that does not return a
---pipeline is a configuration error (exit 2) naming the file.
---@param path string
---@return novapipe.Pipeline
function M.load(path)
  local chunk, err = loadfile(path)
  if not chunk then errors.usage("%s", err) end
  local def = chunk()
  if not M.is_pipeline(def) then
    errors.usage("%s: does not return a pipeline (end it with `return np.pipeline { ... }`)", path)
  end
  return def
end

---Builds the argparse parser of a pipeline's declared options.
---@param def novapipe.Pipeline
---@param name string how the pipeline was named on the command line
function M.parser(def, name)
  local p = require("argparse")("novapipe run " .. name, def.description):add_help(false)
  p:flag("-h --help", "Show this help and exit.")
  for _, o in ipairs(def.options or {}) do
    local opt
    if o.arg then
      opt = p:option(o[1], o[2]):argname("<" .. o.arg .. ">")
      if o.convert then opt:convert(o.convert) end
      if o.choices then opt:choices(o.choices) end
      if o.count then opt:count(o.count) end
      if o.count == "*" and o.default == nil then opt:default({}) end
      if o.optional then opt:args("?") end
    else
      opt = p:flag(o[1], o[2])
    end
    if o.default ~= nil then opt:default(o.default) end
  end
  return p
end

-- The option table's key for an option: its first long name, "-" as "_".
local function target_of(o)
  local long = o[1]:match("%-%-([%w-]+)")
  return long and long:gsub("-", "_")
end

-- The fast path: well-formed `--name value`, `-n value` and `--flag`
-- tokens of declared options, read without loading argparse (1.7 ms).
-- Anything else (help, a mistake, `--name=value`, a value that starts with
-- "-", an option used twice, a declared default) returns nil and goes to
-- argparse, which stays the one authority for usage text and errors.
local function quick_parse(def, args)
  local by_name = {}
  for _, o in ipairs(def.options or {}) do
    if o.default ~= nil then return nil end
    local target = target_of(o)
    if not target then return nil end
    for n in o[1]:gmatch("%S+") do by_name[n] = { o = o, target = target } end
  end
  local opts = {}
  for _, o in ipairs(def.options or {}) do
    if o.count == "*" then opts[target_of(o)] = {} end
  end
  local i = 1
  while i <= #args do
    local spec = by_name[args[i]]
    if not spec then return nil end
    local o, key = spec.o, spec.target
    if not o.arg then
      if opts[key] ~= nil then return nil end
      opts[key] = true
      i = i + 1
    elseif o.optional then
      if opts[key] ~= nil then return nil end
      local raw = args[i + 1]
      if raw == nil or raw:sub(1, 1) == "-" then
        opts[key] = true
        i = i + 1
      else
        opts[key] = raw
        i = i + 2
      end
    else
      local raw = args[i + 1]
      if raw == nil or raw:sub(1, 1) == "-" then return nil end
      local value = raw
      if o.convert then
        value = o.convert(raw)
        if value == nil then return nil end
      end
      if o.choices then
        local ok = false
        for _, c in ipairs(o.choices) do ok = ok or c == value end
        if not ok then return nil end
      end
      if o.count == "*" then
        table.insert(opts[key], value)
      else
        if opts[key] ~= nil then return nil end
        opts[key] = value
      end
      i = i + 2
    end
  end
  return opts
end

M._quick_parse = quick_parse

-- pytest's short options a pytest user types out of habit, and the
-- option of novapipe's that means the same: suggested for an unknown
-- option when the pipeline has it (run_tests takes -x, -k and -m itself;
-- all does not).
local PYTEST_HABITS = {
  ["-x"] = { "--failfast", "pytest's -x" },
  ["-k"] = { "--filter", "pytest's -k" },
  ["-m"] = { "--markers", "pytest's -m" },
  ["-n"] = { "--parallel", "pytest-xdist's -n" },
}

---Parses a pipeline's arguments. Prints help and returns nil for --help;
---raises a usage error for anything it does not know.
---@return table|nil opts
function M.parse(def, name, args, print_fn)
  local quick = quick_parse(def, args)
  if quick then return quick end
  local parser = M.parser(def, name)
  local ok, opts = parser:pparse(args)
  if not ok then
    local names = { "-h", "--help" }
    for _, o in ipairs(def.options or {}) do
      for n in o[1]:gmatch("%S+") do names[#names + 1] = n end
    end
    errors.usage("%s: %s (try 'novapipe run %s --help')", name,
      require("novapipe._nearest").argparse_error(opts, names, PYTEST_HABITS), name)
  end
  if opts.help then
    local help = parser:get_help()
    if print_fn then print_fn(help .. "\n") else require("novapipe.run.sink").new():print(help) end
    return nil
  end
  opts.help = nil
  -- an optional value: argparse gives {} or {value}
  for _, o in ipairs(def.options or {}) do
    local key = o.optional and target_of(o)
    if key and type(opts[key]) == "table" then opts[key] = opts[key][1] or true end
  end
  return opts
end

---Rebases the values of options declared `path` from the directory the
---user typed them in to the project root novapipe works from (see
---novapipe.path.rebase). Changes opts in place and returns it.
---@param def novapipe.Pipeline
---@param opts table parsed options
---@param from string where novapipe was started (absolute)
---@param root string the project root (absolute)
---@return table opts
function M.rebase_paths(def, opts, from, root)
  if from == root then return opts end
  local rebase = require("novapipe.path").rebase
  for _, o in ipairs(def.options or {}) do
    local key = target_of(o)
    local function one(v)
      if type(v) ~= "string" then return v end
      if o.path == true or (type(o.path) == "function" and o.path(v)) then return rebase(v, from, root) end
      return v
    end
    if o.path and key and opts[key] ~= nil then
      if type(opts[key]) == "table" then
        for i, v in ipairs(opts[key]) do opts[key][i] = one(v) end
      else
        opts[key] = one(opts[key])
      end
    end
  end
  return opts
end

---Whether a run of def with opts writes nothing (its `read_only`).
---@param def novapipe.Pipeline
---@param opts table
---@return boolean
function M.read_only(def, opts)
  local ro = def.read_only
  if type(ro) == "function" then return ro(opts) == true end
  return ro == true
end

local function name_of(dep)
  return type(dep) == "table" and dep.name or dep
end

-- "unchecked": the stage could not check what it is for (the dependency
-- scan without a usable advisory database); never passed.
local statuses = { passed = true, failed = true, error = true, skipped = true, empty = true, unchecked = true }

local function normalise(stage, result, started)
  if result == true then result = { status = "passed" }
  elseif result == false then result = { status = "failed" } end
  if type(result) ~= "table" or not statuses[result.status] then
    error(("stage '%s' returned %s: return true, false or a table whose status is passed, failed, "
      .. "error, skipped, empty or unchecked"):format(stage.name, type(result) == "table" and "a table without a valid status"
      or tostring(result)), 0)
  end
  result.duration = result.duration or (time.now() - started)
  return result
end

-- Stages may come in groups (np.tiers returns one): a list of stages.
local function flatten(list, out)
  out = out or {}
  for _, st in ipairs(list) do
    if type(st) == "table" and st.run == nil and st[1] ~= nil then
      flatten(st, out)
    else
      out[#out + 1] = st
    end
  end
  return out
end

---Runs stages in order. A stage runs only when every stage it needs passed
---(an "empty" stage counts as passed, and so does a "skipped" one marked
---neutral); otherwise it is skipped with the reason. A stage that raises is a bug in the pipeline: the error goes up
---with its traceback. The exit code: 2 when a stage ended in an error or
---was unchecked where the run requires the check, else 1 when one failed,
---else 0 (an unchecked stage not required leaves it alone). Returns the
---outcome {exit, duration, results}.
---@param def novapipe.Pipeline
---@param opts table parsed options
---@param ctx novapipe.Context the run's context (novapipe.run.context); stages get it
function M.run(def, opts, ctx)
  local bus = ctx.bus or events.new()
  local started = time.now()
  -- Stages are built first: a mistake found while building them (a usage
  -- error) is then the only line the run prints.
  local stages = flatten(require("novapipe.run.context").building(ctx, def.stages, opts, ctx) or {})
  bus:emit("pipeline_start", def, opts)
  local by_name, results, order = {}, {}, {}
  -- Stages read the results of those before them (a report of what ran
  -- and what was skipped): ctx.stage_results, by stage name.
  ctx.stage_results = results
  for i, st in ipairs(stages) do
    if type(st) ~= "table" or type(st.run) ~= "function" then
      error(("stage %d is not a stage (make it with np.stage)"):format(i), 0)
    end
    if by_name[st.name] then error(("two stages are named '%s'"):format(st.name), 0) end
    by_name[st.name] = st
  end
  for _, st in ipairs(stages) do
    for _, dep in ipairs(st.needs or {}) do
      if not by_name[name_of(dep)] then
        error(("stage '%s' needs '%s', which is not in this pipeline"):format(st.name, name_of(dep)), 0)
      end
    end
  end
  for _, st in ipairs(stages) do
    local blocked, cause
    for _, dep in ipairs(st.needs or {}) do
      local r = results[name_of(dep)]
      if r == nil then
        blocked = ("needs '%s', which comes later"):format(name_of(dep))
      elseif r.status ~= "passed" and r.status ~= "empty" and not (r.status == "skipped" and r.neutral) then
        -- the root cause: the stage that failed, not the one it skipped
        cause = r.cause or { name = name_of(dep), status = r.status }
        local said = ({ failed = "failed", error = "ended in an error", skipped = "was skipped",
                        unchecked = "was not checked" })[cause.status]
          or cause.status
        blocked = ("skipped: %s %s"):format(cause.name, said)
      end
      if blocked then break end
    end
    bus:emit("stage_start", st)
    local t0 = time.now()
    local result
    if blocked then
      result = { status = "skipped", reason = blocked, duration = 0, cause = cause }
    else
      result = normalise(st, st.run(ctx), t0)
    end
    results[st.name] = result
    order[#order + 1] = { stage = st, result = result }
    bus:emit("stage_end", st, result)
  end
  local exit = errors.EXIT.passed
  for _, row in ipairs(order) do
    local s = row.result.status
    if s == "error" or (s == "unchecked" and row.result.required) then exit = errors.EXIT.usage
    elseif s == "failed" and exit == errors.EXIT.passed then exit = errors.EXIT.failed end
  end
  local outcome = { exit = exit, duration = time.now() - started, results = order }
  bus:emit("pipeline_end", def, outcome)
  return outcome
end

return M
