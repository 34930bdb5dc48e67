-- Quarantine: tests a team lets fail for a while, on purpose, each entry
-- with a justification and an expiry date (the security waivers' rules,
-- novapipe.security.waivers). novapipe.lua:
--
--   quarantine = {
--     { pattern = "backend/app/tests/integration/test_sync.py::test_retry*",
--       why = "upstream sandbox drops 1 call in 50, ticket OPS-112", expires = "2027-01-31" },
--   }
--
-- A pattern is a pytest node id in which `*` stands for any run of
-- characters (a file's `/` and `::` included); it covers the node ids it
-- matches whole, and, without a `*` at its end, also the tests under what
-- it names (a file, a class: `pattern::...`, a parametrized test:
-- `pattern[...]`). Quarantined tests run and are reported; their failures
-- do not fail their tier. From the day after `expires` the entry no longer
-- applies and the run says so.
local errors = require "novapipe._errors"
local waivers = require "novapipe.security.waivers"

local M = {}

---@class novapipe.QuarantineEntry
---@field pattern string
---@field why string
---@field expires string YYYY-MM-DD

-- The Lua pattern of a glob: `*` is any run of characters, the rest literal.
local function lua_pattern(glob)
  local parts = {}
  for piece in (glob .. "*"):gmatch("([^*]*)%*") do
    parts[#parts + 1] = (piece:gsub("[%^%$%(%)%%%.%[%]%+%-%?]", "%%%0"))
  end
  -- the glob's pieces joined by ".-"; the extra "*" made one piece too many
  return "^" .. table.concat(parts, ".-", 1, #parts) .. "$"
end

---Checks the quarantine list of novapipe.lua: each entry a pattern (a
---non-empty string), a justification (why) and an expiry date written
---YYYY-MM-DD. Raises a configuration error (exit 2) naming the entry.
---@param list any
function M.validate(list)
  local at0 = "novapipe.lua: quarantine"
  local n = 0
  for _ in pairs(type(list) == "table" and list or {}) do n = n + 1 end
  if type(list) ~= "table" or n ~= #list then
    errors.usage("%s must be a list of { pattern = ..., why = ..., expires = ... }", at0)
  end
  for i, q in ipairs(list) do
    local at = ("%s[%d]"):format(at0, i)
    if type(q) ~= "table" then errors.usage("%s must be a table { pattern = ..., why = ..., expires = ... }", at) end
    for k, v in pairs(q) do
      if k ~= "pattern" and k ~= "why" and k ~= "expires" then
        local near = type(k) == "string" and require("novapipe._nearest").nearest(k, { "pattern", "why", "expires" })
        errors.usage("%s: unknown field '%s'%s (fields: pattern, why, expires)", at, tostring(k),
          near and ("; did you mean '%s'?"):format(near) or "")
      end
      if type(v) ~= "string" then errors.usage("%s: '%s' must be a string, not a %s", at, k, type(v)) end
    end
    if not q.pattern or not q.pattern:find("%S") then
      errors.usage("%s needs a pattern: the node id of the tests it covers, * for any characters", at)
    end
    if not q.why or not q.why:find("%S") then
      errors.usage("%s needs a justification: why = \"...\" saying why its tests may fail for now", at)
    end
    if not q.expires then errors.usage("%s needs an expiry date: expires = \"YYYY-MM-DD\"", at) end
    if not waivers.valid_date(q.expires) then
      errors.usage("%s: expires '%s' is not a date written YYYY-MM-DD", at, q.expires)
    end
  end
  return list
end

---Whether an entry's pattern covers a node id.
---@param pattern string
---@param id string
---@return boolean
function M.matches(pattern, id)
  if id:find(lua_pattern(pattern)) then return true end
  if pattern:sub(-1) == "*" then return false end
  for _, sep in ipairs({ "::", "[" }) do
    local at = 1
    while true do
      local s = id:find(sep, at, true)
      if not s then break end
      if id:sub(1, s - 1):find(lua_pattern(pattern)) then return true end
      at = s + 1
    end
  end
  return false
end

---The entries in force and the expired ones, on `today` (YYYY-MM-DD, UTC;
---default today): an entry applies up to and including its expiry date.
---@param list novapipe.QuarantineEntry[]
---@param today? string
---@return novapipe.QuarantineEntry[] live
---@return novapipe.QuarantineEntry[] expired, each with .index, its place in the list
function M.split(list, today)
  today = today or waivers.today()
  local live, expired = {}, {}
  for i, q in ipairs(list or {}) do
    if q.expires >= today then
      live[#live + 1] = q
    else
      expired[#expired + 1] = { pattern = q.pattern, why = q.why, expires = q.expires, index = i }
    end
  end
  return live, expired
end

---A function giving the live entry that covers a node id, or nil; nil
---when no entry is live.
---@param list novapipe.QuarantineEntry[]
---@param today? string
---@return (fun(id: string): novapipe.QuarantineEntry|nil)|nil
function M.matcher(list, today)
  local live = M.split(list, today)
  if #live == 0 then return nil end
  return function(id)
    for _, q in ipairs(live) do
      if M.matches(q.pattern, id) then return q end
    end
  end
end

---The line a run says for an expired entry.
---@param q novapipe.QuarantineEntry the entry, with .index
---@return string
function M.expired_line(q)
  return ("quarantine[%d] %s expired on %s: its tests' failures count again (fix them, or renew the entry in novapipe.lua)")
    :format(q.index, q.pattern, q.expires)
end

return M
