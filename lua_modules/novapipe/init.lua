-- novapipe: the library pipelines are written with.
--   local np = require "novapipe"
--   return np.pipeline { description = ..., options = {...}, stages = function(opts) ... end }
local pipeline = require "novapipe.pipeline"

local np = {}

np.pipeline = pipeline.pipeline
np.stage = pipeline.stage
np.process = require "novapipe.process"
np.json = require "novapipe.json"
np.version = require("novapipe.host").version

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

return np
