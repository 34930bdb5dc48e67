-- What the migrate specs share: a byte-for-byte picture of a tree, the
-- pipeline run on one, and real pytest over its tiers.
local fs = require "novapipe.fs"
local lfs = require "lfs"
local process = require "novapipe.process"
local H = require "spec.support.h"

local M = {}

---Every directory and file under root, with contents (a link as
---"<link>" and its target): a byte-for-byte picture of the tree, without
---the state every novapipe run changes (the audit log, the run records).
---@param root string
---@return table<string, string>
function M.snapshot(root)
  local pic = {}
  for _, rel in ipairs(assert(fs.walk(root, { dirs = true, exclude = { "__pycache__", ".pytest_cache" } }))) do
    local p = root .. "/" .. rel
    local mode = lfs.symlinkattributes(p, "mode")
    pic[rel] = mode == "link" and ("<link>" .. lfs.symlinkattributes(p, "target"))
      or mode == "directory" and "<dir>" or H.read(p)
  end
  pic[".novapipe"] = nil
  for rel in pairs(pic) do
    if rel:find("^%.novapipe/audit%.log") or rel:find("^%.novapipe/runs") or rel == ".novapipe/last-run.json"
        or rel == ".novapipe/key" then
      pic[rel] = nil
    end
  end
  return pic
end

---`novapipe -C root --no-color run migrate ARGS...`
---@param root string
---@param args string[]
---@param opts? table
function M.run(root, args, opts)
  local argv = { "-C", root, "--no-color", "run", "migrate" }
  for _, a in ipairs(args) do argv[#argv + 1] = a end
  return H.novapipe(argv, opts)
end

---Real pytest over the tests directory `tests` (relative to root) and
---each tier directory in it (a plain pytest skips venv/).
---@param root string
---@param tests string
---@param tiers? string[] default standalone, venv, integration
---@param env? table
function M.pytest(root, tests, tiers, env)
  local py = assert(require("novapipe.python").find({ "pytest" }))
  local args = { py, "-m", "pytest", "-q", "-p", "no:cacheprovider", tests }
  for _, d in ipairs(tiers or { "standalone", "venv", "integration" }) do
    if lfs.attributes(root .. "/" .. tests .. "/" .. d) then args[#args + 1] = tests .. "/" .. d end
  end
  return assert(process.run(args, { cwd = root, env = env }))
end

return M
