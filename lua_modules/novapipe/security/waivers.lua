-- Waivers and ignores: an exception a team takes on purpose, with a
-- justification and an expiry date. An expired one no longer applies and is
-- shown as expired; one that matches nothing is shown as unused.
local errors = require "novapipe._errors"

local M = {}

---Today, UTC, as YYYY-MM-DD.
function M.today()
  return os.date("!%Y-%m-%d")
end

local function valid_date(s)
  local y, m, d = tostring(s):match("^(%d%d%d%d)%-(%d%d)%-(%d%d)$")
  if not y then return false end
  y, m, d = tonumber(y), tonumber(m), tonumber(d)
  if m < 1 or m > 12 or d < 1 then return false end
  local days = { 31, (y % 4 == 0 and (y % 100 ~= 0 or y % 400 == 0)) and 29 or 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 }
  return d <= days[m]
end

---Whether a text is a date written YYYY-MM-DD (a real day of the year).
---@param s any
---@return boolean
M.valid_date = valid_date

---Checks a list of waivers from novapipe.lua: each needs a justification
---and an expiry date (YYYY-MM-DD); `fields` names what else it may hold.
---Raises a configuration error naming the entry.
---@param where string e.g. "security.waivers"
---@param list table
---@param fields table<string, string> allowed field -> Lua type
function M.validate(where, list, fields)
  if type(list) ~= "table" then errors.usage("novapipe.lua: %s must be a list", where) end
  for i, w in ipairs(list) do
    local at = ("novapipe.lua: %s[%d]"):format(where, i)
    if type(w) ~= "table" then errors.usage("%s must be a table", at) end
    for k, v in pairs(w) do
      local want = (k == "justification" or k == "expires") and "string" or fields[k]
      if not want then errors.usage("%s: unknown field '%s'", at, tostring(k)) end
      if type(v) ~= want then errors.usage("%s: '%s' must be a %s", at, k, want) end
    end
    if not w.justification or not w.justification:find("%S") then
      errors.usage("%s needs a justification: say why this exception is acceptable", at)
    end
    if not w.expires then errors.usage("%s needs an expiry date: expires = \"YYYY-MM-DD\"", at) end
    if not valid_date(w.expires) then
      errors.usage("%s: expires '%s' is not a date written YYYY-MM-DD", at, w.expires)
    end
  end
  return list
end

---Splits items into those a live waiver covers and the rest. matches(w, item)
---says whether waiver w covers item. Returns kept, waived (each item with
---.waiver set), and the waivers that expired or matched nothing.
---@return table kept, table waived, table expired, table unused
function M.apply(items, list, matches, today)
  today = today or M.today()
  local kept, waived, used = {}, {}, {}
  for _, item in ipairs(items) do
    local by
    for i, w in ipairs(list) do
      if w.expires >= today and matches(w, item) then
        by = w
        used[i] = true
        break
      end
    end
    if by then
      item.waiver = { justification = by.justification, expires = by.expires }
      waived[#waived + 1] = item
    else
      kept[#kept + 1] = item
    end
  end
  local expired, unused = {}, {}
  for i, w in ipairs(list) do
    if w.expires < today then expired[#expired + 1] = w
    elseif not used[i] then unused[#unused + 1] = w end
  end
  return kept, waived, expired, unused
end

return M
