-- JSON through lua-cjson, with errors that name the file, line and column;
-- the text novapipe writes for people and diffs (encode_plain, rows,
-- pretty) made by the host's novapipe.jsontext, which writes what
-- lua-cjson writes but "/" as it is.
local cjson = require "cjson"
local fs = require "novapipe.fs"
local text = require "novapipe.jsontext"

local M = {}

M.null = cjson.null

local decoder = cjson.new()
decoder.decode_invalid_numbers(false)

local encoder = cjson.new()
encoder.encode_number_precision(14)

---Turns a character offset into "line:column".
local function position(text, offset)
  local line, col = 1, 1
  local last_nl = 0
  for i in text:sub(1, offset - 1):gmatch("()\n") do
    line = line + 1
    last_nl = i
  end
  col = offset - last_nl
  return line, col
end

---Decodes JSON text.
---@param text string
---@param name? string what the text is, for messages (a file name)
---@return any value
---@return string? error "name:line:col: message" when the text is not JSON
function M.decode(text, name)
  local ok, value = pcall(decoder.decode, text)
  if ok then return value end
  local msg = tostring(value)
  local at = tonumber(msg:match("at character (%d+)"))
  local where = name or "<json>"
  if at then
    local line, col = position(text, at)
    where = ("%s:%d:%d"):format(where, line, col)
  end
  msg = msg:gsub("^.-: ", ""):gsub(" at character %d+", "")
  return nil, ("%s: %s"):format(where, msg)
end

---Reads and decodes a JSON file.
---@param path string
---@return any value
---@return string? error
function M.read(path)
  local text, err = fs.read(path)
  if not text then return nil, err end
  return M.decode(text, path)
end

---Encodes a value as JSON (lua-cjson 2.1: an empty table becomes {}).
---@param value any
---@return string
function M.encode(value)
  return encoder.encode(value)
end

---Like M.encode, but "/" is written as it is (lua-cjson 2.1 escapes it,
---which JSON allows but people and diffs do not need).
---@param value any
---@return string
M.encode_plain = text.encode

---A string as a JSON string, "/" as it is (M.encode_plain of a string).
---@param s string
---@return string
M.quote = text.quote

local ARRAY = {}

---Marks a table as a JSON array, so M.pretty writes [] when it is empty.
---@generic T: table
---@param t T
---@return T
function M.array(t)
  return setmetatable(t or {}, ARRAY)
end

local ROW = {}
local row_text = setmetatable({}, { __mode = "k" })

---Marks a table that M.pretty writes on one line, compact, in lua-cjson's
---key order (not sorted: this is for speed): the rows of a long list, such
---as a run record's tests. An empty table in a row is written {}.
---@generic T: table
---@param t T
---@return T
function M.row(t)
  return setmetatable(t, ROW)
end

---Encodes a row now (one that will not change), so that M.pretty writes
---the text made then: work done early, while there is time for it.
---@generic T: table
---@param t T
---@return T
function M.encode_row(t)
  row_text[M.row(t)] = text.encode(t)
  return t
end

---JSON for people and diffs: indented by two spaces, keys sorted (as
---strings), tables marked with M.array written as arrays even when empty,
---a table whose keys are 1..n an array, rows (M.row) on one line, keys in
---lua-cjson's order, from the text M.encode_row made when there is one.
---With decimals (0 to 9), numbers outside rows are written with that many.
---@param value any
---@param decimals? integer
---@return string
function M.pretty(value, decimals)
  return text.pretty(value, ARRAY, ROW, row_text, decimals)
end

return M
