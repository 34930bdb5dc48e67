-- JSON through lua-cjson, with errors that name the file, line and column.
local cjson = require "cjson"
local fs = require "novapipe.fs"

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
function M.encode_plain(value)
  return (encoder.encode(value):gsub("\\/", "/"))
end

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
  row_text[M.row(t)] = (encoder.encode(t):gsub("\\/", "/"))
  return t
end

local function pretty(v, indent, out)
  local t = type(v)
  if t ~= "table" then
    out[#out + 1] = M.encode_plain(v)
    return
  end
  if getmetatable(v) == ROW then
    -- one call into lua-cjson a row (made ahead with M.encode_row when it
    -- could be): fast for long lists, keys in its order
    out[#out + 1] = row_text[v] or (encoder.encode(v):gsub("\\/", "/"))
    return
  end
  local inner = indent .. "  "
  if getmetatable(v) == ARRAY or (#v > 0 and next(v, #v) == nil) then
    if #v == 0 then out[#out + 1] = "[]" return end
    out[#out + 1] = "[\n"
    for i, x in ipairs(v) do
      out[#out + 1] = inner
      pretty(x, inner, out)
      out[#out + 1] = i < #v and ",\n" or "\n"
    end
    out[#out + 1] = indent .. "]"
    return
  end
  local keys = {}
  for k in pairs(v) do keys[#keys + 1] = tostring(k) end
  if #keys == 0 then out[#out + 1] = "{}" return end
  table.sort(keys)
  out[#out + 1] = "{\n"
  for i, k in ipairs(keys) do
    local x = v[k]
    if x == nil then x = v[tonumber(k)] end
    out[#out + 1] = inner .. M.encode_plain(k) .. ": "
    pretty(x, inner, out)
    out[#out + 1] = i < #keys and ",\n" or "\n"
  end
  out[#out + 1] = indent .. "}"
end

---JSON for people and diffs: indented, keys sorted, tables marked with
---M.array written as arrays even when empty. For reports, not bulk data.
---@param value any
---@return string
function M.pretty(value)
  local out = {}
  pretty(value, "", out)
  return table.concat(out)
end

return M
