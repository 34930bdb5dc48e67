-- The security tests a project has, read from its source with the C
-- scanner (novapipe.pyscan), whether or not they run: every test function
-- of a tier's test files that is marked `security` or `hipaa`, on itself,
-- on its class, or by the module's `pytestmark`, with the sections its
-- hipaa markers name. The compliance report compares this with what ran,
-- so a safeguard whose tests exist but were not run (gating, a filter, a
-- skip) reads "not verified", never "no test".
--
-- What the source does not say is not seen: markers added by a conftest
-- hook, a class's own `pytestmark`, or a marker held in a variable. Such a
-- test is still reported from its results when it runs. A module's
-- `pytestmark` that holds other markers beside hipaa gives hipaa only its
-- strings shaped like a section ("164.312(e)"), as the scanner does not
-- say which call each string is in.
local analyze = require "novapipe.analyze"
local pyscan = require "novapipe.pyscan"
local pytest_config = require "novapipe.pytest_config"

local M = {}

---@class novapipe.KnownTest
---@field id string the node id without parameters: file::Class::name
---@field file string
---@field line integer
---@field tier string
---@field hipaa string[] the sections its hipaa markers name
---@field security boolean marked security (so the security stages run it)

-- The marker a decorator or name applies: "security", "hipaa" or nil.
local function marker_of(name)
  local m = name:match("^pytest%.mark%.(%w+)$") or name:match("^mark%.(%w+)$")
  if m == "security" or m == "hipaa" then return m end
  return nil
end

-- Adds what a list of decorators marks to `into` ({security, hipaa}).
local function read_marks(decorators, into)
  for _, d in ipairs(decorators or {}) do
    local m = marker_of(d.name)
    if m == "security" then
      into.security = true
    elseif m == "hipaa" then
      into.hipaa_marked = true
      for _, a in ipairs(d.args or {}) do
        if a.kind == "string" and a.key == nil then into.hipaa[#into.hipaa + 1] = a.value end
      end
    end
  end
end

-- Whether a name matches one of pytest's python_functions or
-- python_classes entries (prefixes, or globs with *).
local function collected(name, patterns)
  for _, p in ipairs(patterns) do
    if p:find("*", 1, true) then
      local lua = "^" .. p:gsub("[%^%$%(%)%%%.%[%]%+%-%?]", "%%%0"):gsub("%*", ".*") .. "$"
      if name:find(lua) then return true end
    elseif name:sub(1, #p) == p then
      return true
    end
  end
  return false
end

---The security tests of one file.
---@param file string
---@param tier string
---@param functions string[] python_functions
---@param classes string[] python_classes
---@return novapipe.KnownTest[]|nil
---@return string? error
function M.file(file, tier, functions, classes)
  local facts, err = pyscan.file(file)
  if not facts then return nil, err end
  local module = { security = false, hipaa = {} }
  for _, a in ipairs(facts.assignments or {}) do
    if a.target == "pytestmark" then
      local others = false
      for _, n in ipairs(a.names or {}) do
        local m = marker_of(n)
        if m == "security" then module.security = true elseif m == "hipaa" then module.hipaa_marked = true
        else others = true end
      end
      -- the scanner gives the assignment's strings, not each call's: with
      -- other markers beside hipaa (filterwarnings, skipif's reason), only
      -- those shaped like a CFR section ("164.312(e)") are hipaa's
      if module.hipaa_marked then
        for _, s in ipairs(a.strings or {}) do
          if not others or s:find("%d%d%d%.%d%d%d") then module.hipaa[#module.hipaa + 1] = s end
        end
      end
    end
  end
  local class_marks = {}
  for _, c in ipairs(facts.classes or {}) do
    local marks = { security = false, hipaa = {} }
    read_marks(c.decorators, marks)
    class_marks[c.name] = marks
  end
  local out = {}
  for _, fn in ipairs(facts.functions or {}) do
    local cls = fn.class
    if not fn.parent and collected(fn.name, functions) and (not cls or collected(cls, classes)) then
      local marks = { security = module.security, hipaa = { table.unpack(module.hipaa) },
                      hipaa_marked = module.hipaa_marked }
      local cm = cls and class_marks[cls]
      if cm then
        marks.security = marks.security or cm.security
        marks.hipaa_marked = marks.hipaa_marked or cm.hipaa_marked
        for _, s in ipairs(cm.hipaa) do marks.hipaa[#marks.hipaa + 1] = s end
      end
      read_marks(fn.decorators, marks)
      if marks.security or marks.hipaa_marked then
        out[#out + 1] = { id = file .. "::" .. (cls and (cls .. "::") or "") .. fn.name, file = file, line = fn.line,
                          tier = tier, hipaa = marks.hipaa, security = marks.security }
      end
    end
  end
  return out
end

---Every security test of the configured tiers, in tier and file order,
---and the files that could not be read.
---@param cfg novapipe.Config
---@return novapipe.KnownTest[] tests
---@return string[] errors
function M.list(cfg)
  local _, functions = pytest_config.setting("python_functions")
  local _, classes = pytest_config.setting("python_classes")
  functions, classes = functions or { "test" }, classes or { "Test" }
  local tests, errs = {}, {}
  for _, tier in ipairs(cfg.tiers) do
    local files = analyze.test_files(cfg.tests .. "/" .. tier.dir, pytest_config.python_files())
    for _, f in ipairs(files or {}) do
      local found, err = M.file(f, tier.name, functions, classes)
      if not found then errs[#errs + 1] = err end
      for _, t in ipairs(found or {}) do tests[#tests + 1] = t end
    end
  end
  return tests, errs
end

---An index of known tests by every tail of their ids that starts at a
---path component, so a node id relative to another rootdir
---("app/tests/x.py::t" for "backend/app/tests/x.py::t") finds its test;
---`lookup(id)` takes a result's id, parameters and all.
---@param tests novapipe.KnownTest[]
---@return fun(id: string): novapipe.KnownTest|nil lookup
function M.index(tests)
  local by = {}
  for _, t in ipairs(tests) do
    by[t.id] = by[t.id] or t
    for at in t.id:gmatch("()/") do
      local tail = t.id:sub(at + 1)
      if tail:find("::", 1, true) then by[tail] = by[tail] or t end
    end
  end
  return function(id)
    local bare = id:gsub("%[.*%]$", "")
    return by[bare]
  end
end

return M
