-- The run context: one per `novapipe run`. It holds the project's
-- configuration (novapipe.lua evaluated once), the event bus, the sink (the
-- masker, the console, the files written) and what the audit entry needs.
-- Stages receive it as their argument; reporters are made with it.
local config = require "novapipe.config"
local events = require "novapipe.events"
local sink = require "novapipe.run.sink"

local M = {}

---@class novapipe.Context
---@field config novapipe.Config
---@field bus table the event bus (novapipe.events)
---@field sink novapipe.Sink
---@field name? string the pipeline as named on the command line
---@field path? string the pipeline's file
---@field def? novapipe.Pipeline
---@field args string[] the pipeline's arguments
---@field pytest_args? string[] what follows `--`, for every pytest run
---@field outputs? {json?: string, html?: string, keep_record?: boolean} where --json and --html (or the pipeline's `html`) asked the run's record and page to go
---@field project? novapipe.Project where the project was found (novapipe.run.project)
---@field tier_results table<string, table> each tier's result from the main group of tier stages, by tier name
---@field opts? table the pipeline's parsed options
---@field record? table the run record, once the record reporter has built it at pipeline_end
---@field html_report? string the HTML report's path, once the html reporter has written it

-- The context whose pipeline is building its stages, for library
-- functions a pipeline calls without passing it (np.tiers, np.analyze).
-- Set only around that call (M.building), never kept between runs.
local building = nil

---A new context. Loads the configuration (a configuration error raises a
---usage error); with `cfg` given, uses it as it is.
---@param info? {name?: string, path?: string, def?: table, args?: string[], config?: novapipe.Config, project?: novapipe.Project, out?: fun(line: string), err?: fun(line: string)}
---@return novapipe.Context
function M.new(info)
  info = info or {}
  local cfg = info.config or config.load()
  return {
    config = cfg,
    bus = events.new(),
    sink = sink.new({ phi = cfg.phi, out = info.out, err = info.err }),
    name = info.name, path = info.path, def = info.def, args = info.args or {}, project = info.project,
    tier_results = {},
  }
end

---Subscribes the reporters named (modules novapipe.reporters.<name>, each
---with new(ctx)) to the context's bus.
---@param ctx novapipe.Context
---@param names string[]
function M.subscribe(ctx, names)
  for _, name in ipairs(names) do
    local ok, mod = pcall(require, "novapipe.reporters." .. name)
    if not ok then require("novapipe._errors").usage("no reporter named '%s'", name) end
    local r = mod.new(ctx)
    if r then ctx.bus:subscribe(r) end
  end
end

---Runs fn with ctx as the context being built, and returns what it
---returns. The context is unset afterwards, also when fn raises.
---@param ctx novapipe.Context
---@param fn function
function M.building(ctx, fn, ...)
  local before = building
  building = ctx
  local res = table.pack(pcall(fn, ...))
  building = before
  if not res[1] then error(res[2], 0) end
  return table.unpack(res, 2, res.n)
end

---The project of the context being built (novapipe.run.project), or nil
---outside a run.
---@return novapipe.Project|nil
function M.project()
  return building and building.project
end

---The configuration of the context being built, else loaded now (a
---library function used outside a run, as in a spec).
---@return novapipe.Config
function M.config()
  return building and building.config or config.load()
end

return M
