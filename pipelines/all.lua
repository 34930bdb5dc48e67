-- The main job: the project's test tiers, each gated on the one before.
-- Later issues grow it (classification, coverage, the security report).
local np = require "novapipe"
local python = require "novapipe.python"
local lfs = require "lfs"

local tiers = { "standalone", "venv", "integration" }

return np.pipeline {
  description = "Run the project's test tiers in order, each gated on the one before",
  options = {
    { "--tests", "the directory holding the tier directories", arg = "DIR", default = "backend/app/tests" },
    { "--verbose -v", "stream pytest's own output" },
  },
  stages = function(opts)
    local py, err = python.find({ "pytest" })
    local stages, previous = {}, nil
    for _, tier in ipairs(tiers) do
      local dir = opts.tests .. "/" .. tier
      stages[#stages + 1] = np.stage {
        name = tier,
        needs = previous and { previous } or nil,
        run = function()
          if not py then return { status = "error", reason = err } end
          if lfs.attributes(dir, "mode") ~= "directory" then
            return { status = "empty", reason = "no directory " .. dir }
          end
          local out = opts.verbose and "inherit" or "capture"
          local r = assert(np.process.run({ py, "-m", "pytest", "-q", "-p", "no:cacheprovider", dir },
            { stdout = out, stderr = "stdout", stdin = "null" }))
          -- pytest's exit codes: 0 passed, 1 failed, 5 no tests collected.
          if r.code == 0 then return { status = "passed" } end
          if r.code == 5 then return { status = "empty", reason = "no tests collected in " .. dir } end
          local tail = r.stdout and r.stdout:match("([^\n]*)\n?$") or ""
          if r.code == 1 then return { status = "failed", summary = tail } end
          return { status = "error", reason = ("pytest exited %d: %s"):format(r.code, tail) }
        end,
      }
      previous = tier
    end
    return stages
  end,
}
