-- The specs themselves: busted keeps only the last function a test gives
-- finally(), so a test that gives two loses the first cleanup (a temporary
-- directory, a process) without a word. Each test gives at most one.
local fs = require "novapipe.fs"

local home = os.getenv("NOVAPIPE_HOME") or "."

-- The tests of a spec file that call finally() more than once, as
-- "file:line" (a test runs from its `it(` line to the `end)` indented as
-- it is).
local function twice(path, text)
  local lines = {}
  for line in (text .. "\n"):gmatch("([^\n]*)\n") do lines[#lines + 1] = line end
  local found = {}
  for i, line in ipairs(lines) do
    local indent = line:match("^(%s*)it%(")
    if indent then
      local n = 0
      for j = i + 1, #lines do
        if lines[j]:find("^" .. indent .. "end%)") then break end
        for _ in lines[j]:gmatch("%f[%w_]finally%(") do n = n + 1 end
      end
      if n > 1 then found[#found + 1] = ("%s:%d"):format(path, i) end
    end
  end
  return found
end

describe("the specs", function()
  it("tell a test that gives finally() twice from one that gives it once", function()
    -- (F( in the fixtures, the call's name put in below: this file is
    -- one of the specs the next test reads)
    local function fix(text) return (text:gsub("F%(", "final" .. "ly(")) end
    local one = fix(table.concat({
      'it("a", function()',
      '  F(function() cleanup() end)',
      'end)',
    }, "\n"))
    local two = fix(table.concat({
      'describe("x", function()',
      '  it("b", function()',
      '    F(function() a() end)',
      '    local p = spawn()',
      '    F(function() p:kill() end)',
      '  end)',
      '  it("c", function()',
      '    F(function() c() end)',
      '  end)',
      'end)',
    }, "\n"))
    assert.same({}, twice("one_spec.lua", one))
    assert.same({ "two_spec.lua:2" }, twice("two_spec.lua", two))
  end)

  it("give finally() at most once in each test (busted keeps only the last)", function()
    local files = assert(fs.walk(home .. "/spec", { include = { "*_spec.lua" } }))
    assert.is_true(#files > 10, "no specs found under " .. home .. "/spec")
    local found = {}
    for _, f in ipairs(files) do
      local text = assert(fs.read(home .. "/spec/" .. f))
      for _, at in ipairs(twice("spec/" .. f, text)) do found[#found + 1] = at end
    end
    assert.same({}, found)
  end)
end)
