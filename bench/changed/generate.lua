-- A generated project for the mutation harness of --changed
-- (bench/changed/mutate.lua): N application modules (default 200) in
-- packages four levels deep, importing each other in a seeded DAG, and a
-- tests tree whose dependency structure is known, written beside it as
-- expected-closure.json (test file -> the files its run depends on).
--   build/novapipe exec bench/changed/generate.lua DIR [--modules N] [--seed S]
-- The same N and S give the same project, byte for byte.
--
-- What it holds:
--   * app/ with 20 packages (app/pK, app/pK/sJ, app/pK/sJ/d0); module i
--     (mNNN.py) lives in package i % 21 (the 21st is app itself). The
--     first module of each package imports nothing and its package's
--     __init__.py re-exports its function (relatively or absolutely), so
--     an __init__.py never imports a module that imports anything: no
--     import cycle, whatever the seed.
--   * every other module imports 1 to 3 modules of lower index, each edge
--     in one of these spellings: `import a.b.mX as dep_mX`, `from a.b
--     import mX`, `from a.b.mX import *` (each module has __all__), a
--     relative `from . import mX` / `from ..s1.mX import *`, or the
--     function a package's __init__.py re-exports (`from app.p1 import
--     f_X`).
--   * about one module in ten reads a JSON file named relative to its
--     `__file__` (`Path(__file__).parent / "data" / "mNNN.json"`).
--   * every module's function f_NNN returns a number from its BASE (its
--     first module-level literal), its data file and its imports' values:
--     a module that raises or a changed BASE changes every value above it.
--   * testkit/plugin.py, named by `pytest_plugins` in tests/conftest.py,
--     with a fixture; conftest.py files at tests/, each tier's directory
--     and some group directories, each with a fixture that calls a module;
--     helpers in tests/support imported absolutely (`from tests.support.h2
--     import h_2`) and relatively (`from ...support import h2`), one of
--     them reading tests/support/data/factors.json.
--   * the tests: the tiers standalone, venv and integration, groups g0..g2
--     in each (g0 holds a nested package), about N/3 test files, each
--     asserting the exact values of what it imports and of the fixtures
--     it requests.
-- The closure of a test file is what Python and pytest really execute or
-- read for it: the test file, the tests packages' __init__.py above it,
-- its conftest chain, the plugin, and, transitively, every module any of
-- those imports, each package __init__.py that import runs, and every
-- data file a module of it reads.
local fs = require "novapipe.fs"
local json = require "novapipe.json"

local function usage(msg)
  io.stderr:write("generate: ", msg, "\n",
    "usage: novapipe exec bench/changed/generate.lua DIR [--modules N] [--seed S]\n")
  os.exit(2)
end

local dir, n_modules, seed = nil, 200, 1
do
  local i = 1
  while i <= #arg do
    local a = arg[i]
    if a == "--modules" then
      n_modules = math.tointeger(tonumber(arg[i + 1])) or usage("--modules needs a number")
      i = i + 1
    elseif a == "--seed" then
      seed = math.tointeger(tonumber(arg[i + 1])) or usage("--seed needs a number")
      i = i + 1
    elseif a:sub(1, 1) == "-" or dir then
      usage("unknown argument " .. a)
    else
      dir = a
    end
    i = i + 1
  end
end
if not dir then usage("DIR is needed") end
if n_modules < 21 then usage("--modules must be at least 21 (one a package)") end

-- A generator of its own (a 64-bit LCG), so that the project does not
-- depend on Lua's math.random.
local state = (seed * 6364136223846793005 + 1442695040888963407) & 0x7fffffffffffffff
local function rand(n) -- 1..n
  state = (state * 6364136223846793005 + 1442695040888963407) & 0xffffffffffffffff
  return ((state >> 33) % n) + 1
end

local MOD = 1000003

-- ---- the packages ----

local packages = {} -- list of {"app", "p0", "s1"}
for p = 0, 3 do
  packages[#packages + 1] = { "app", "p" .. p }
  for s = 0, 1 do
    packages[#packages + 1] = { "app", "p" .. p, "s" .. s }
    packages[#packages + 1] = { "app", "p" .. p, "s" .. s, "d0" }
  end
end
packages[#packages + 1] = { "app" }
local function dotted(parts) return table.concat(parts, ".") end
local function slashed(parts) return table.concat(parts, "/") end

-- The __init__.py files importing `pkg` (a list of parts) runs.
local function inits_of(pkg)
  local out = {}
  for k = 1, #pkg do out[#out + 1] = slashed({ table.unpack(pkg, 1, k) }) .. "/__init__.py" end
  return out
end

-- ---- the modules ----

local modules = {}
for i = 0, n_modules - 1 do
  local pkg = packages[i % #packages + 1]
  local name = ("m%03d"):format(i)
  modules[i] = {
    index = i, name = name, pkg = pkg, fn = ("f_%03d"):format(i),
    file = slashed(pkg) .. "/" .. name .. ".py", dotted = dotted(pkg) .. "." .. name,
    base = 100 + rand(900), leaf = i < #packages, deps = {}, imported = false,
  }
end

-- The relative spelling of package `to` from a module in package `from`:
-- the dots and the rest ("..s1"), or nil when the two share no package.
local function relative(from, to)
  local c = 0
  while c < #from and c < #to and from[c + 1] == to[c + 1] do c = c + 1 end
  if c == 0 then return nil end
  local dots = ("."):rep(#from - c + 1)
  return dots .. table.concat({ table.unpack(to, c + 1) }, ".")
end

for i = 0, n_modules - 1 do
  local m = modules[i]
  if not m.leaf then
    local want, seen = rand(3), {}
    for _ = 1, want do
      -- mostly near below, sometimes far: a deep DAG
      local span = rand(4) == 1 and i or math.min(i, 25)
      local j = i - rand(span)
      if not seen[j] then
        seen[j] = true
        local d = modules[j]
        d.imported = true
        local styles = { "import_as", "from_pkg", "star" }
        if relative(m.pkg, d.pkg) then
          styles[#styles + 1] = "relative"
          styles[#styles + 1] = "relative_star"
        end
        if d.leaf and #d.pkg > 1 then styles[#styles + 1] = "reexport"; styles[#styles + 1] = "reexport" end
        m.deps[#m.deps + 1] = { mod = d, style = styles[rand(#styles)] }
      end
    end
    if i % 10 == 7 then m.data = { file = slashed(m.pkg) .. "/data/" .. m.name .. ".json", weight = rand(50) } end
  end
end

-- Each import's line and the expression that calls it.
local function spell(m, e)
  local d = e.mod
  if e.style == "import_as" then
    return ("import %s as dep_%s"):format(d.dotted, d.name), ("dep_%s.%s()"):format(d.name, d.fn)
  elseif e.style == "from_pkg" then
    return ("from %s import %s"):format(dotted(d.pkg), d.name), ("%s.%s()"):format(d.name, d.fn)
  elseif e.style == "star" then
    return ("from %s import *"):format(d.dotted), d.fn .. "()"
  elseif e.style == "relative" then
    return ("from %s import %s"):format(relative(m.pkg, d.pkg), d.name), ("%s.%s()"):format(d.name, d.fn)
  elseif e.style == "relative_star" then
    local r = relative(m.pkg, d.pkg)
    return ("from %s%s%s import *"):format(r, r:match("^%.+$") and "" or ".", d.name), d.fn .. "()"
  else -- reexport: the package's __init__.py gives the function
    return ("from %s import %s"):format(dotted(d.pkg), d.fn), d.fn .. "()"
  end
end

-- The values, bottom up (deps have lower indices).
for i = 0, n_modules - 1 do
  local m = modules[i]
  local v = m.base * 7 + (m.data and m.data.weight * 13 or 0)
  for _, e in ipairs(m.deps) do v = v + e.mod.value end
  m.value = v % MOD
end

-- The files each file depends on directly (what executing it runs or reads).
local direct = {}
local function dep(file, on) direct[file] = direct[file] or {}; direct[file][#direct[file] + 1] = on end
-- importing module d (or its package) from anywhere
local function import_edges(file, d)
  for _, init in ipairs(inits_of(d.pkg)) do dep(file, init) end
  dep(file, d.file)
end

local files = {} -- path -> text
local function put(path, text) files[path] = text end

for i = 0, n_modules - 1 do
  local m = modules[i]
  local lines = { ('"""Module %s of the generated project (package %s)."""'):format(m.name, dotted(m.pkg)) }
  local imports, terms = {}, {}
  if m.data then
    imports[#imports + 1] = "import json"
    imports[#imports + 1] = "from pathlib import Path"
  end
  for _, e in ipairs(m.deps) do
    local line, call = spell(m, e)
    imports[#imports + 1] = line
    terms[#terms + 1] = call
    import_edges(m.file, e.mod)
  end
  for _, l in ipairs(imports) do lines[#lines + 1] = l end
  lines[#lines + 1] = ""
  lines[#lines + 1] = ("BASE = %d"):format(m.base)
  if m.data then
    lines[#lines + 1] = ('WEIGHT = json.loads((Path(__file__).parent / "data" / "%s.json").read_text())["weight"]')
      :format(m.name)
    put(m.data.file, ('{"weight": %d}\n'):format(m.data.weight))
    dep(m.file, m.data.file)
  end
  lines[#lines + 1] = ('__all__ = ["%s"]'):format(m.fn)
  lines[#lines + 1] = ""
  lines[#lines + 1] = ""
  lines[#lines + 1] = ("def %s():"):format(m.fn)
  lines[#lines + 1] = ('    """The value of %s: its BASE%s and its imports\' values."""'):format(m.name,
    m.data and ", its data file's weight" or "")
  local expr = "BASE * 7"
  if m.data then expr = expr .. " + WEIGHT * 13" end
  for _, t in ipairs(terms) do expr = expr .. " + " .. t end
  lines[#lines + 1] = ("    return (%s) %% %d"):format(expr, MOD)
  put(m.file, table.concat(lines, "\n") .. "\n")
  for _, init in ipairs(inits_of(m.pkg)) do dep(m.file, init) end
end

-- The packages' __init__.py: each re-exports its leaf's function (app's is
-- a docstring: every import of the project runs it).
for k, pkg in ipairs(packages) do
  local path = slashed(pkg) .. "/__init__.py"
  local leaf = modules[k - 1]
  local text = ('"""Package %s."""\n'):format(dotted(pkg))
  if #pkg > 1 then
    if k % 2 == 0 then
      text = text .. ("from .%s import %s\n"):format(leaf.name, leaf.fn)
    else
      text = text .. ("from %s import %s\n"):format(leaf.dotted, leaf.fn)
    end
    text = text .. ('\n__all__ = ["%s"]\n'):format(leaf.fn)
    dep(path, leaf.file)
  end
  for _, init in ipairs(inits_of({ table.unpack(pkg, 1, #pkg - 1) })) do dep(path, init) end
  put(path, text)
end

-- ---- the tests tree ----

-- Fixtures: name -> {file (where defined), mod (the module it calls), value}
local fixtures = {}
local function fixture_module(text_lines, file, name, d, factor)
  text_lines[#text_lines + 1] = ""
  text_lines[#text_lines + 1] = ""
  text_lines[#text_lines + 1] = "@pytest.fixture"
  text_lines[#text_lines + 1] = ("def %s():"):format(name)
  text_lines[#text_lines + 1] = ("    return %s.%s() * %d"):format(d.name, d.fn, factor)
  fixtures[name] = { file = file, value = d.value * factor }
  import_edges(file, d)
end

local function pick() return modules[rand(n_modules) - 1] end

-- testkit/plugin.py (pytest_plugins)
do
  local d = pick()
  local l = { '"""Fixtures of every test, loaded by tests/conftest.py\'s pytest_plugins."""', "import pytest", "",
              ("from %s import %s"):format(dotted(d.pkg), d.name) }
  fixture_module(l, "testkit/plugin.py", "kit_value", d, 3)
  put("testkit/__init__.py", '"""Test fixtures shared as a pytest plugin."""\n')
  put("testkit/plugin.py", table.concat(l, "\n") .. "\n")
  dep("testkit/plugin.py", "testkit/__init__.py")
end

-- conftest.py files: the tests' root, each tier, groups g0 and g1, and g0's nested package
local TIERS = { "standalone", "venv", "integration" }
local conftests = {} -- dir -> true
local function conftest(dirpath, name, factor, extra)
  local d = pick()
  local file = dirpath .. "/conftest.py"
  local l = { ('"""Fixtures of the tests under %s."""'):format(dirpath), "import pytest", "" }
  for _, x in ipairs(extra or {}) do l[#l + 1] = x end
  l[#l + 1] = ("from %s import %s"):format(dotted(d.pkg), d.name)
  fixture_module(l, file, name, d, factor)
  put(file, table.concat(l, "\n") .. "\n")
  conftests[dirpath] = true
  dep(file, dirpath .. "/__init__.py")
end
put("tests/__init__.py", "")
conftest("tests", "root_value", 2, { 'pytest_plugins = ["testkit.plugin"]', "" })
dep("tests/conftest.py", "testkit/plugin.py")
local group_dirs = {}
for ti, tier in ipairs(TIERS) do
  local tdir = "tests/" .. tier
  put(tdir .. "/__init__.py", "")
  conftest(tdir, tier .. "_value", 4 + ti)
  for g = 0, 2 do
    local gdir = tdir .. "/g" .. g
    put(gdir .. "/__init__.py", "")
    group_dirs[#group_dirs + 1] = gdir
    if g < 2 then conftest(gdir, ("%s_g%d_value"):format(tier, g), 10 + g) end
    if g == 0 then
      local inner = gdir .. "/inner"
      put(inner .. "/__init__.py", "")
      group_dirs[#group_dirs + 1] = inner
      conftest(inner, tier .. "_inner_value", 17)
    end
  end
end

-- helpers in tests/support: h_K calls a module; h0 reads a data file
local helpers = {}
put("tests/support/__init__.py", '"""Helpers of the tests."""\n')
put("tests/support/data/factors.json", '{"factor": 5}\n')
for k = 0, 5 do
  local d = pick()
  local file = ("tests/support/h%d.py"):format(k)
  local l = { ('"""Helper h%d of the tests."""'):format(k) }
  local factor = k + 2
  if k == 0 then
    l[#l + 1] = "import json"
    l[#l + 1] = "from pathlib import Path"
    factor = 5
  end
  l[#l + 1] = ""
  l[#l + 1] = ("from %s import %s"):format(d.dotted, d.fn)
  l[#l + 1] = ""
  if k == 0 then
    l[#l + 1] = 'FACTOR = json.loads((Path(__file__).parent / "data" / "factors.json").read_text())["factor"]'
    dep(file, "tests/support/data/factors.json")
  else
    l[#l + 1] = ("FACTOR = %d"):format(factor)
  end
  l[#l + 1] = ""
  l[#l + 1] = ""
  l[#l + 1] = ("def h_%d():"):format(k)
  l[#l + 1] = ("    return %s() * FACTOR"):format(d.fn)
  put(file, table.concat(l, "\n") .. "\n")
  import_edges(file, d)
  dep(file, "tests/support/__init__.py")
  dep(file, "tests/__init__.py")
  helpers[k] = { file = file, value = d.value * factor, name = "h" .. k }
end

-- The test files: every module no other imports is imported by one (round
-- robin), each file one module more at random, a helper, some fixtures.
local roots = {}
for i = 0, n_modules - 1 do
  if not modules[i].imported then roots[#roots + 1] = modules[i] end
end
local n_tests = math.max(#group_dirs, n_modules // 3)
local tests = {}
for t = 1, n_tests do
  local gdir = group_dirs[(t - 1) % #group_dirs + 1]
  tests[t] = { dir = gdir, file = ("%s/test_t%03d.py"):format(gdir, t), mods = {} }
end
for r, m in ipairs(roots) do table.insert(tests[(r - 1) % n_tests + 1].mods, m) end
for _, t in ipairs(tests) do t.mods[#t.mods + 1] = pick() end

-- The fixtures a test file can request: those of its conftest chain, and the plugin's.
local function chain_dirs(d)
  local out = {}
  local parts = {}
  for p in d:gmatch("[^/]+") do
    parts[#parts + 1] = p
    out[#out + 1] = table.concat(parts, "/")
  end
  return out
end

for ti, t in ipairs(tests) do
  local depth = select(2, t.dir:gsub("/", "")) -- tests/standalone/g0 -> 2
  local l = { ('"""Test file %d of the generated project."""'):format(ti) }
  local body = {}
  local seen = {}
  for k, m in ipairs(t.mods) do
    if not seen[m] then
      seen[m] = true
      local style = (ti + k) % 3
      local call
      if style == 0 then
        l[#l + 1] = ("from %s import %s"):format(dotted(m.pkg), m.name)
        call = ("%s.%s()"):format(m.name, m.fn)
      elseif style == 1 then
        l[#l + 1] = ("from %s import *"):format(m.dotted)
        call = m.fn .. "()"
      else
        l[#l + 1] = ("import %s"):format(m.dotted)
        call = ("%s.%s()"):format(m.dotted, m.fn)
      end
      import_edges(t.file, m)
      body[#body + 1] = ""
      body[#body + 1] = ""
      body[#body + 1] = ("def test_%s_%d():"):format(m.name, k)
      body[#body + 1] = ("    assert %s == %d"):format(call, m.value)
    end
  end
  local h = helpers[ti % 6]
  if ti % 2 == 0 then
    l[#l + 1] = ("from tests.support.%s import h_%d"):format(h.name, ti % 6)
  else
    l[#l + 1] = ("from %ssupport.%s import h_%d"):format(("."):rep(depth + 1), h.name, ti % 6)
  end
  dep(t.file, h.file)
  body[#body + 1] = ""
  body[#body + 1] = ""
  body[#body + 1] = "def test_helper():"
  body[#body + 1] = ("    assert h_%d() == %d"):format(ti % 6, h.value)
  -- the fixtures: the nearest conftest's always, the others every third file
  local requested = {}
  local dirs = chain_dirs(t.dir)
  for k = #dirs, 1, -1 do
    if conftests[dirs[k]] then
      for name, f in pairs(fixtures) do
        if f.file == dirs[k] .. "/conftest.py" and (#requested == 0 or ti % 3 == 0) then
          requested[#requested + 1] = name
        end
      end
    end
    dep(t.file, dirs[k] .. "/__init__.py")
    if conftests[dirs[k]] then dep(t.file, dirs[k] .. "/conftest.py") end
  end
  if ti % 4 == 1 then requested[#requested + 1] = "kit_value" end
  table.sort(requested)
  body[#body + 1] = ""
  body[#body + 1] = ""
  body[#body + 1] = ("def test_fixtures(%s):"):format(table.concat(requested, ", "))
  for _, name in ipairs(requested) do
    body[#body + 1] = ("    assert %s == %d"):format(name, fixtures[name].value)
  end
  for _, b in ipairs(body) do l[#l + 1] = b end
  put(t.file, table.concat(l, "\n") .. "\n")
end

put("pytest.ini", table.concat({
  "[pytest]",
  "# pytest's default norecursedirs includes \"venv\", which would hide the venv",
  "# tier from a plain `pytest tests`; this keeps the rest.",
  "norecursedirs = *.egg .* _darcs build CVS dist node_modules {arch}",
  "",
}, "\n"))
put("novapipe.lua", '-- novapipe\'s configuration for the generated project.\nreturn { tests = "tests" }\n')

-- ---- the closures ----

local closure = {}
for _, t in ipairs(tests) do
  local seen, list, queue = { [t.file] = true }, { t.file }, { t.file }
  local i = 1
  while i <= #queue do
    for _, f in ipairs(direct[queue[i]] or {}) do
      if not seen[f] then
        seen[f] = true
        list[#list + 1] = f
        queue[#queue + 1] = f
      end
    end
    i = i + 1
  end
  table.sort(list)
  closure[t.file] = list
end

-- ---- the writing ----

local function write(path, text)
  local full = dir .. "/" .. path
  assert(fs.mkdir_p(full:match("^(.*)/"), "0755"))
  local f = assert(io.open(full, "wb"))
  f:write(text)
  f:close()
end
local paths = {}
for p in pairs(files) do paths[#paths + 1] = p end
table.sort(paths)
for _, p in ipairs(paths) do write(p, files[p]) end
local ordered = {}
for _, t in ipairs(tests) do ordered[#ordered + 1] = t.file end
table.sort(ordered)
local out = { "{" }
for k, f in ipairs(ordered) do
  local items = {}
  for _, c in ipairs(closure[f]) do items[#items + 1] = json.encode(c) end
  out[#out + 1] = ("  %s: [%s]%s"):format(json.encode(f), table.concat(items, ", "), k < #ordered and "," or "")
end
out[#out + 1] = "}"
write("expected-closure.json", table.concat(out, "\n") .. "\n")
print(("%s: %d modules in %d packages, %d test files, %d files in all; seed %d"):format(dir, n_modules, #packages,
  #tests, #paths + 1, seed))
