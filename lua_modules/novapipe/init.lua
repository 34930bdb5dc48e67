-- novapipe: the library pipelines are written with.
--   local np = require "novapipe"
--   return np.pipeline { description = ..., options = {...}, stages = function(opts) ... end }
local pipeline = require "novapipe.pipeline"

local np = {}

np.pipeline = pipeline.pipeline
np.stage = pipeline.stage
np.process = require "novapipe.process"
np.json = require "novapipe.json"
np.path = require "novapipe.path"
np.version = require("novapipe.host").version

-- Converters for options (the `convert` of np.pipeline's options): a value
-- or nil and the message argparse shows.
np.convert = {}

-- A whole number as a person writes one: decimal digits only ("1e3",
-- "0x10", "+2" and "1.0" are no whole numbers on a command line).
local function whole(s)
  return type(s) == "string" and s:match("^%d+$") and math.tointeger(tonumber(s)) or nil
end

---@param s string
---@return integer|nil, string?
function np.convert.positive_integer(s)
  local n = whole(s)
  if n and n >= 1 then return n end
  return nil, ("'%s' is not a whole number of at least 1"):format(s)
end

---@param s string
---@return integer|nil, string?
function np.convert.non_negative_integer(s)
  local n = whole(s)
  if n and n >= 0 then return n end
  return nil, ("'%s' is not a whole number of at least 0"):format(s)
end

---A number of pytest-xdist workers, or "auto".
---@param s string
---@return integer|"auto"|nil, string?
function np.convert.workers(s)
  if s == "auto" then return "auto" end
  local n = whole(s)
  if n and n >= 1 then return n end
  return nil, ("'%s' is not a whole number of at least 1, or auto"):format(s)
end

---@param s string
---@return number|nil, string?
function np.convert.positive_number(s)
  local n = tonumber(s)
  if n and n > 0 and n < math.huge then return n end
  return nil, ("'%s' is not a positive number"):format(s)
end

---Shards (--shard K/N, see novapipe.select.shard): `parse` is an option's
---convert, `setup(opts, ctx, only)` gives the tier options and the manifest stage.
np.shard = {
  parse = function(s) return require("novapipe.select.shard").parse(s) end,
  setup = function(opts, ctx, only, keep) return require("novapipe.select.shard").setup(opts, ctx, only, keep) end,
  ---Refuses --shard-by and --shard-dir without --shard (they would do nothing).
  check = function(opts)
    if opts.shard then return end
    for _, o in ipairs({ { "shard_by", "--shard-by" }, { "shard_dir", "--shard-dir" } }) do
      if opts[o[1]] then require("novapipe._errors").usage("%s needs --shard K/N (it says how to split a shard)", o[2]) end
    end
  end,
}

---Change-based selection (--changed [REF], see novapipe.select.changed):
---`setup(value, ctx, only, explain)`, value true (the working tree against
---HEAD) or a REF, asks git what changed and selects the test files of the
---tiers in scope (`only`, default all) a change reaches; returns the
---selection (np.tiers' `changed`; `keep`, the selected files as a set) and
---the stage that reports it. Outside a repository, or an unknown REF: one
---line, exit 2. A list of changed paths as value (novapipe watch's saved
---files) is taken as it is, git not asked.
np.changed = {
  setup = function(value, ctx, only, explain)
    local changed = require "novapipe.select.changed"
    local cfg = ctx.config
    local changes, against
    if type(value) == "table" then
      changes = value
    else
      changes, against = changed.git_changes(value ~= true and value or nil)
      if not changes then require("novapipe._errors").usage("%s", against) end
    end
    local wanted
    if only and #only > 0 then
      wanted = {}
      for _, n in ipairs(only) do wanted[n] = true end
    end
    local tiers, files = {}, {}
    local patterns = require("novapipe.pytest_config").python_files()
    local P = require "novapipe.path"
    for _, t in ipairs(cfg.tiers) do
      if not wanted or wanted[t.name] then
        local dir = P.normalize(cfg.tests .. "/" .. t.dir)
        tiers[#tiers + 1] = { name = t.name, dir = dir }
        for _, f in ipairs(require("novapipe.analyze").test_files(dir, patterns) or {}) do files[#files + 1] = f end
      end
    end
    local sel = changed.select(cfg, changes, { files = files })
    sel.keep = {}
    for _, f in ipairs(sel.files) do sel.keep[f] = true end
    return sel, changed.stage(sel, against, explain, tiers)
  end,
}

---Options the bundled pipelines share, each one entry for a pipeline's
---`options` list (`options = { np.options.parallel, np.options.jobs }`),
---so that their names, help and conversion are the same wherever they are.
np.options = {
  durations = { "--durations", "show the N slowest tests at the end (default 5; 0: none)", arg = "N",
                convert = np.convert.non_negative_integer },
  parallel = { "--parallel -p", "pytest-xdist workers per tier, or auto: the cores a tier has to itself", arg = "N",
               convert = np.convert.workers },
  jobs = { "--jobs -j", "tiers at once (default: one more than the cores novapipe may use, 1 on one core); each starts before the tiers it needs "
           .. "have passed, its results held until they have", arg = "N", convert = np.convert.positive_integer },
  sequential = { "--sequential", "one tier at a time, each started only after the tiers it needs passed" },
  reruns = { "--reruns", "run a failed test again up to N times; one that then passes is flaky, and its tier passes",
             arg = "N", convert = np.convert.non_negative_integer },
  shard = { "--shard", "run shard K of N: each tier's files split by recorded durations (novapipe merge puts them "
            .. "together)", arg = "K/N", convert = np.shard.parse },
  shard_dir = { "--shard-dir", "where the shard keeps what novapipe merge needs (default .novapipe/shards/K-of-N)",
                arg = "DIR", path = true },
  shard_by = { "--shard-by", "with --shard, split each tier's files (the default) or its tests", arg = "WHAT",
               choices = { "file", "test" } },
}

---The stages that run the project's test tiers (see novapipe.tiers): a
---group that goes into a pipeline's list of stages as it is.
---@param opts? novapipe.TierOpts
---@return novapipe.Stage[]
function np.tiers(opts)
  return require("novapipe.tiers").stages(opts or {})
end

---The stage that classifies the test files (see novapipe.analyze).
---@param opts? {path?: string, report?: boolean, output?: string, explain?: boolean}
---@return novapipe.Stage
function np.analyze(opts)
  return require("novapipe.analyze").stage(opts)
end

---The security stages: the tests marked security across the tiers, the
---PHI audit, the dependency scan, and with report = true the
---security-code coverage and the compliance report (see novapipe.security).
---@param opts? novapipe.SecurityOpts
---@return novapipe.Stage[]
function np.security(opts)
  return require("novapipe.security").stages(opts or {})
end

---The stage that ends a pipeline by saying where the reports the run wrote
---are: the directories (with how many files each) and the main files
---(combined coverage, the security report, the SARIF file); with `all`,
---every file.
---@param opts? {all?: boolean}
---@return novapipe.Stage
function np.written(opts)
  opts = opts or {}
  local MAIN = { ["coverage HTML, combined"] = "coverage", ["security report (HTML)"] = "security report",
                 ["HTML report"] = "run report", ["security findings (SARIF)"] = "security findings (SARIF)" }
  return pipeline.stage { name = "reports", run = function(ctx)
    local list = ctx.sink:list()
    local details = {}
    if opts.all then
      for _, r in ipairs(list) do details[#details + 1] = ("%s  (%s)"):format(r.path, r.what) end
      return { status = "passed", summary = ("%d written"):format(#list), details = details }
    end
    -- a few lines: the directories, with how many each holds, and the
    -- main files; --list-reports (or the run record) has every one
    local dirs, order = {}, {}
    for _, r in ipairs(list) do
      local dir = r.path:match("^(.*)/[^/]+$") or "."
      if not dirs[dir] then
        dirs[dir] = 0
        order[#order + 1] = dir
      end
      dirs[dir] = dirs[dir] + 1
      local main = MAIN[r.what]
      if main then
        local index = require("lfs").attributes(r.path, "mode") == "directory" and (r.path .. "/index.html") or r.path
        details[#details + 1] = ("%s: %s"):format(main, index)
      end
    end
    local where = {}
    for _, d in ipairs(order) do where[#where + 1] = ("%s (%d)"):format(d, dirs[d]) end
    if #list > 0 then
      details[#details + 1] = "every file: --list-reports, or the reports of .novapipe/last-run.json"
    end
    return { status = "passed", details = details,
             summary = #list > 0 and ("%d written, in %s"):format(#list, table.concat(where, ", ")) or "none written" }
  end }
end

return np
