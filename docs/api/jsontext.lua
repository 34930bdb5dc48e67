---@meta novapipe.jsontext
-- LuaLS stubs for the C module novapipe.jsontext (engine/jsontext.c): the
-- JSON text novapipe writes, as lua-cjson writes it but "/" as it is. A
-- pipeline uses novapipe.json, which is built on it.

---@class novapipe.jsontext
local jsontext = {}

---Compact JSON; a table's keys in traversal order. Raises on what JSON
---cannot hold (NaN, a function, a table key that is no string or number,
---an excessively sparse array, more than 1000 levels), as lua-cjson does.
---@param value any
---@return string
function jsontext.encode(value) end

---@param s string
---@return string json the string as a JSON string
function jsontext.quote(s) end

---Indented by two spaces, keys sorted as strings; tables with array_mt are
---arrays ([] when empty), so are tables whose keys are 1..n; tables with
---row_mt are written on one line, as rows[t] when it holds their text.
---With decimals (0 to 9), numbers outside rows are written with that many.
---@param value any
---@param array_mt table
---@param row_mt table
---@param rows table<table, string>
---@param decimals? integer
---@return string
function jsontext.pretty(value, array_mt, row_mt, rows, decimals) end

return jsontext
