-- Small table helpers several modules need.
local M = {}

---A table's keys, sorted: strings and numbers in their own order, keys of
---different types grouped by type (so a list entry among named settings
---sorts, and is reported, rather than failing the comparison).
---@param t table
---@return any[]
function M.sorted_keys(t)
  local keys = {}
  for k in pairs(t) do keys[#keys + 1] = k end
  table.sort(keys, function(a, b)
    local ta, tb = type(a), type(b)
    if ta ~= tb then return ta < tb end
    if ta == "string" or ta == "number" then return a < b end
    return tostring(a) < tostring(b)
  end)
  return keys
end

return M
