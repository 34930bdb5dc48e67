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

return np
