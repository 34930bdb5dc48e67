-- novapipe.jsontext (engine/jsontext.c) against its references: lua-cjson
-- for the compact text, and novapipe.json's pretty layout as it was written
-- in Lua, on the same values, many of them made at random.
local cjson = require "cjson"
local json = require "novapipe.json"
local text = require "novapipe.jsontext"

local reference = cjson.new()
reference.encode_number_precision(14)

-- What the compact text must be: cjson's, "/" as it is.
local function cjson_plain(v)
  return (reference.encode(v):gsub("\\/", "/"))
end

-- novapipe.json's pretty as it was in Lua, the layout the C one keeps.
local function lua_pretty(v, array_mt, row_mt, rows)
  local function walk(x, indent, out)
    if type(x) ~= "table" then
      out[#out + 1] = cjson_plain(x)
      return
    end
    if getmetatable(x) == row_mt then
      out[#out + 1] = rows[x] or cjson_plain(x)
      return
    end
    local inner = indent .. "  "
    if getmetatable(x) == array_mt or (#x > 0 and next(x, #x) == nil) then
      if #x == 0 then out[#out + 1] = "[]" return end
      out[#out + 1] = "[\n"
      for i, y in ipairs(x) do
        out[#out + 1] = inner
        walk(y, inner, out)
        out[#out + 1] = i < #x and ",\n" or "\n"
      end
      out[#out + 1] = indent .. "]"
      return
    end
    local keys = {}
    for k in pairs(x) do keys[#keys + 1] = tostring(k) end
    if #keys == 0 then out[#out + 1] = "{}" return end
    table.sort(keys)
    out[#out + 1] = "{\n"
    for i, k in ipairs(keys) do
      local y = x[k]
      if y == nil then y = x[tonumber(k)] end
      out[#out + 1] = inner .. cjson_plain(k) .. ": "
      walk(y, inner, out)
      out[#out + 1] = i < #keys and ",\n" or "\n"
    end
    out[#out + 1] = indent .. "}"
  end
  local out = {}
  walk(v, "", out)
  return table.concat(out)
end

-- Random values from a seeded generator: strings of any bytes, numbers of
-- every kind JSON can hold, tables of every shape (lists, maps, mixed,
-- sparse, marked and rows).
local function generator(seed, marks)
  local state = seed
  local function rand(n)
    state = (state * 1103515245 + 12345) % 2147483648
    return state % n + 1
  end
  local WORDS = { "id", "tier", "backend/app/tests/test_a.py::test_x", "a/b", "é", "x\"y", "back\\slash", "", "0",
                  "1", "k\0z" }
  local function str()
    if rand(3) == 1 then return WORDS[rand(#WORDS)] end
    local bytes = {}
    for i = 1, rand(12) - 1 do bytes[i] = string.char(rand(256) - 1) end
    return table.concat(bytes)
  end
  local NUMBERS = { 0, -0.0, 1, -1, 3, 1.5, 0.1, 1e300, -2.5e-8, 2 ^ 53, 123456789012345, math.maxinteger,
                    math.mininteger, 0.000001, 1 / 3, 99999999999999, -99999999999999, 1e14, -1e14, 42.0 }
  local function value(depth)
    local kind = rand(depth > 3 and 4 or 9)
    if kind == 1 then return str()
    elseif kind == 2 then return NUMBERS[rand(#NUMBERS)]
    elseif kind == 3 then return rand(2) == 1
    elseif kind == 4 then return cjson.null
    end
    local t = {}
    local shape = rand(5)
    if shape == 1 or shape == 2 then -- a list
      for i = 1, rand(6) - 1 do t[i] = value(depth + 1) end
    elseif shape == 3 then -- a map
      for _ = 1, rand(6) - 1 do t[str()] = value(depth + 1) end
    elseif shape == 4 then -- mixed: a list with names, or numbers as keys
      for i = 1, rand(3) do t[i] = value(depth + 1) end
      -- (a name that is no number: the Lua layout wrote a key "1" beside 1 twice)
      t[rand(2) == 1 and ("n" .. str()) or 1.5] = value(depth + 1)
    else -- a list with a hole, sparse or not
      t[1], t[rand(3) + 1] = value(depth + 1), value(depth + 1)
    end
    if marks and kind == 5 then setmetatable(t, marks.array) end
    if marks and kind == 6 and depth > 0 then setmetatable(t, marks.row) end
    return t
  end
  return value
end

describe("novapipe.jsontext", function()
  it("writes what lua-cjson writes, \"/\" as it is, for values of every kind", function()
    local value = generator(12345)
    local compared = 0
    for _ = 1, 3000 do
      local v = value(0)
      local ok, want = pcall(cjson_plain, v)
      local got_ok, got = pcall(text.encode, v)
      assert.equal(ok, got_ok)
      if ok then
        assert.equal(want, got)
        compared = compared + 1
      else
        assert.equal(tostring(want):match("Cannot serialise.*$"), tostring(got):match("Cannot serialise.*$"))
      end
    end
    assert.is_true(compared > 2000)
  end)

  it("escapes every byte as lua-cjson does, but \"/\"", function()
    for c = 0, 255 do
      local s = "a" .. string.char(c) .. "b"
      assert.equal(cjson_plain(s), text.encode(s))
      assert.equal(cjson_plain(s), text.quote(s))
    end
    assert.equal('"backend/app/tests/test_a.py"', text.quote("backend/app/tests/test_a.py"))
  end)

  it("says what it cannot write, as lua-cjson does", function()
    assert.error_matches(function() text.encode(0 / 0) end, "must not be NaN or Inf")
    assert.error_matches(function() text.encode({ math.huge }) end, "must not be NaN or Inf")
    assert.error_matches(function() text.encode({ f = print }) end, "Cannot serialise function")
    assert.error_matches(function() text.encode({ [{}] = 1 }) end, "Cannot serialise table: table key must be")
    assert.error_matches(function() text.encode({ [true] = 1 }) end, "Cannot serialise boolean: table key must be")
    assert.error_matches(function() text.encode({ [2 ^ 63] = 1 }) end, "excessively sparse array")
    assert.error_matches(function() text.encode({ [1] = 1, [40] = 2 }) end, "excessively sparse array")
    local deep = {}
    local t = deep
    for _ = 1, 1000 do t[1] = {} t = t[1] end
    assert.error_matches(function() text.encode(deep) end, "excessive nesting")
    assert.error_matches(function() json.pretty(deep) end, "excessive nesting")
    local fine = {}
    t = fine
    for _ = 1, 998 do t[1] = {} t = t[1] end
    assert.equal(cjson_plain(fine), text.encode(fine))
  end)

  it("lays out as novapipe.json's pretty did: sorted, indented, marked arrays and rows", function()
    local marks = { array = {}, row = {} }
    local value = generator(777, marks)
    local rows = setmetatable({}, { __mode = "k" })
    local compared = 0
    for i = 1, 2000 do
      local v = value(0)
      -- some rows with their text made ahead, as json.encode_row does
      if i % 3 == 0 then
        local function mark(x, depth)
          if type(x) ~= "table" or depth > 6 then return end
          if getmetatable(x) == marks.row then
            local ok, s = pcall(cjson_plain, x)
            if ok then rows[x] = "ROW<" .. s .. ">" end
          end
          for _, y in pairs(x) do mark(y, depth + 1) end
        end
        mark(v, 0)
      end
      local ok, want = pcall(lua_pretty, v, marks.array, marks.row, rows)
      local got_ok, got = pcall(text.pretty, v, marks.array, marks.row, rows)
      assert.equal(ok, got_ok)
      if ok then
        assert.equal(want, got)
        compared = compared + 1
      end
    end
    assert.is_true(compared > 1500)
  end)

  it("is what novapipe.json writes: pretty, rows and plain text", function()
    local row = json.encode_row({ id = "a/b.py::t", d = { 1, 2 } })
    local doc = { tests = json.array({ row }), none = json.array({}), path = "x/y", n = 0.5 }
    assert.equal('{\n  "n": 0.5,\n  "none": [],\n  "path": "x/y",\n  "tests": [\n    '
      .. text.encode(row) .. '\n  ]\n}', json.pretty(doc))
    assert.equal('{"a":"x/y"}', json.encode_plain({ a = "x/y" }))
    assert.equal('"x/y"', json.encode_plain("x/y"))
  end)
end)
