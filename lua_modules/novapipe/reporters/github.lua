-- The GitHub reporter (with GITHUB_ACTIONS=true): each failed or errored
-- test as an error annotation, `::error file=F,line=L,title=ID::message`,
-- escaped as GitHub's workflow commands want and masked like every line;
-- at most 50 (GitHub shows no more a step), then one warning with the count
-- of the rest. A stage that ended in an error is an error annotation of its
-- own, one that did not check what it is for (UNCHECKED) a warning.
local record = require "novapipe.run.record"

local M = {}
M.__index = M

M.MAX = 50

---Escapes a command's message: %, CR and LF.
---@param s string
---@return string
function M.escape_data(s)
  return (s:gsub("%%", "%%25"):gsub("\r", "%%0D"):gsub("\n", "%%0A"))
end

---Escapes a command's property value: the same, and : and , as well.
---@param s string
---@return string
function M.escape_property(s)
  return (M.escape_data(s):gsub(":", "%%3A"):gsub(",", "%%2C"))
end

---@param ctx novapipe.Context
function M.new(ctx)
  if os.getenv("GITHUB_ACTIONS") ~= "true" then return nil end
  return setmetatable({ sink = ctx.sink, rows = {}, workspace = os.getenv("GITHUB_WORKSPACE") }, M)
end

function M:stage_end(stage, result)
  self.rows[#self.rows + 1] = { stage = stage, result = result }
end

-- A path as GitHub wants it: relative to the workspace (the repository's
-- root) when the project is inside it.
local function from_workspace(path, workspace)
  if not path or not workspace or workspace == "" then return path end
  local abs = path:sub(1, 1) == "/" and path or (require("lfs").currentdir() .. "/" .. path)
  workspace = workspace:gsub("/+$", "")
  if abs:sub(1, #workspace + 1) == workspace .. "/" then return abs:sub(#workspace + 2) end
  return path
end

---The annotation of one failed or errored test.
---@param t novapipe.TestResult
---@param mask fun(s: string): string
---@param workspace? string
---@return string
function M.annotation(t, mask, workspace)
  local file, line = t.file, t.line
  local at_file, at_line = (t.location or ""):match("^(.-):(%d+)$")
  if at_file and at_file:sub(1, 1) ~= "/" then file, line = at_file, tonumber(at_line) end
  local props = {}
  if file then props[#props + 1] = "file=" .. M.escape_property(mask(from_workspace(file, workspace))) end
  if line then props[#props + 1] = "line=" .. line end
  props[#props + 1] = "title=" .. M.escape_property(mask(t.id))
  local kind = record.kind_word(t)
  local message = t.message and t.message ~= "" and t.message or kind
  if t.tier then message = ("%s (%s, %s)"):format(message, kind, t.tier) end
  return ("::error %s::%s"):format(table.concat(props, ","), M.escape_data(mask(message)))
end

---The annotation of a stage that ended in an error or did not check what
---it is for (the dependency scan without advisories), or nil for any other:
---a test's failure has its own annotation, a stage's error may have none.
---@param name string
---@param result table
---@param mask fun(s: string): string
---@return string|nil
function M.stage_annotation(name, result, mask)
  local command = result.status == "error" and "error" or result.status == "unchecked" and "warning" or nil
  if not command then return nil end
  local what = result.status == "error" and "ended in an error" or "did not check"
  return ("::%s title=%s::%s"):format(command, M.escape_property(mask(("novapipe: %s %s"):format(name, what))),
    M.escape_data(mask(result.reason or result.summary or what)))
end

function M:pipeline_end()
  -- a stage's own error or unchecked verdict first (a tier that could not
  -- start, the dependencies not checked): no test carries it
  for _, row in ipairs(self.rows) do
    local line = M.stage_annotation(row.stage.name or "?", row.result or {}, self.sink.mask)
    if line then self.sink:print(line) end
  end
  local list = record.problems(record.unique_tests(self.rows))
  for i = 1, math.min(#list, M.MAX) do self.sink:print(M.annotation(list[i], self.sink.mask, self.workspace)) end
  if #list > M.MAX then
    self.sink:print(("::warning title=novapipe::%d more failures not annotated (GitHub shows %d a step); "
      .. "the step summary and the run record list them all"):format(#list - M.MAX, M.MAX))
  end
end

return M
