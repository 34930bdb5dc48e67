-- Classifying test files into tiers, with the evidence for each verdict.
--
-- The facts come from the C scanner (novapipe.pyscan); every rule is here:
--   1. an explicit tier marker wins (integration, then venv, then standalone);
--   2. otherwise integration evidence, then venv evidence, else standalone;
--   3. a file that does not parse is unknown, with its error.
-- Evidence is what the file imports (not optional ones: try/except
-- ImportError, suppress(ImportError), `if TYPE_CHECKING:`), what its local
-- helpers import, and what the fixtures its tests request use. Indicators
-- match dotted prefixes at component boundaries, also with a package root
-- ("backend") taken off. Project code the test imports (outside the test
-- tree) is followed only to learn whether it needs packages: at most venv
-- evidence, since code that imports a database layer is not a test that
-- talks to a database.
local fs = require "novapipe.fs"
local lfs = require "lfs"
local pyscan = require "novapipe.pyscan"
local stdlib = require "novapipe.data.stdlib"

local M = {}

-- Body names matter only for fixtures, and fixtures are decorated with a
-- name that ends in "fixture" (pytest.fixture, pytest_asyncio.fixture) or
-- a plain name (an alias); the functions that matter are decorated ones
-- and tests (named test*) that request fixtures (lean: a test with no
-- parameter tells nothing).
local SCAN_OPTS = { names = "decorated", decorator = "fixture", functions = "test", lean = true }

M.CATEGORIES = { "standalone", "venv", "integration", "security", "unknown" }
-- The tiers evidence can raise a file to, strongest first.
local RAISING = { "integration", "venv" }
M.TIER_MARKERS = { "integration", "venv", "standalone" }

-- Fixtures pytest itself provides: no evidence either way.
local BUILTIN_FIXTURES = {}
for _, n in ipairs({ "request", "tmp_path", "tmp_path_factory", "tmpdir", "tmpdir_factory", "monkeypatch", "capsys",
                     "capsysbinary", "capfd", "capfdbinary", "caplog", "recwarn", "pytestconfig", "cache",
                     "doctest_namespace", "record_property", "record_xml_attribute", "record_testsuite_property",
                     "testdir", "pytester", "worker_id", "event_loop" }) do
  BUILTIN_FIXTURES[n] = true
end

-- What an absent list reads as (`ipairs(x or EMPTY)` makes no table).
local EMPTY = setmetatable({}, { __newindex = function() error("EMPTY is read-only", 2) end })

local function set_of(list)
  local s = {}
  for _, v in ipairs(list or EMPTY) do s[v] = true end
  return s
end

local dirname, basename = require("novapipe.path").dirname, require("novapipe.path").basename

local function is_file(path)
  return lfs.attributes(path, "mode") == "file"
end

-- Whether `module` is `prefix` or below it, at a component boundary.
local function under(module, prefix)
  if module == prefix then return true end
  local n = #prefix
  -- byte checks first: no string is made for the common "no"
  return #module > n and module:byte(n + 1) == 46 and module:find(prefix, 1, true) == 1
end

local Analyzer = {}
Analyzer.__index = Analyzer

---@param cfg novapipe.Config
---@param root string the directory analysed
---@param project? string the project root (default the current directory)
function M.new(cfg, root, project)
  local a = cfg.analyze
  local self = setmetatable({
    cfg = cfg, acfg = a, root = root:gsub("/+$", ""), project = project or ".",
    facts = {}, fixtures_of = {}, conftests_of = {}, bindings_of = {}, needs_of = {},
    exceptions = set_of(a.standalone_exceptions),
    ind_sets = { venv = set_of(a.indicators.venv), integration = set_of(a.indicators.integration) },
    ind_tops = {}, ind_longest = { venv = 0, integration = 0 },
    sec_words = {}, sec_dotted = {}, sec_memo = {}, sec_parents = {},
    ind_memo = { venv = {}, integration = {} },
    plain_memo = {}, top_bindings = {}, spellings_of = {}, ind_parents = {},
    module_files = {},
    hints = { integration = set_of(a.fixture_hints.integration), venv = set_of(a.fixture_hints.venv) },
    errors = {},
  }, Analyzer)
  -- First components of the indicators: a module under none of them (and
  -- no package root) needs no prefix matching at all.
  for _, tier in ipairs({ "venv", "integration" }) do
    for _, ind in ipairs(a.indicators[tier]) do
      self.ind_tops[ind:match("^[^.]+")] = true
      self.ind_longest[tier] = math.max(self.ind_longest[tier], #ind)
    end
  end
  for _, r in ipairs(a.roots) do self.ind_tops[r] = true end
  -- Modules whose imported names may complete an indicator (with and
  -- without a package root): only for them is `module.name` looked up.
  for _, tier in ipairs({ "venv", "integration" }) do
    for _, ind in ipairs(a.indicators[tier]) do
      local parent = ind:match("^(.*)%.[^.]+$")
      if parent then
        self.ind_parents[parent] = true
        for _, r in ipairs(a.roots) do self.ind_parents[r .. "." .. parent] = true end
      end
    end
  end
  for _, kw in ipairs(a.indicators.security or EMPTY) do
    if kw:find(".", 1, true) then
      self.sec_dotted[#self.sec_dotted + 1] = kw
      -- modules whose names may complete it, with and without a root
      local parent = kw:match("^(.*)%.[^.]+$")
      self.sec_parents[parent] = true
      for _, r in ipairs(a.roots) do self.sec_parents[r .. "." .. parent] = true end
    else
      self.sec_words[kw] = true
    end
  end
  return self
end

-- The facts of a file, scanned once; nil and an error when unreadable.
function Analyzer:scan(path)
  local f = self.facts[path]
  if f == nil then
    local at = self.prefetched and self.prefetched.index[path]
    local facts, err
    if at then
      facts, err = self.prefetched.pf:take(at)
    else
      facts, err = pyscan.file(path, SCAN_OPTS)
    end
    f = facts or { read_error = err }
    self.facts[path] = f
  end
  return f
end

-- The module's names for indicator matching: itself, and with each
-- package root taken off.
function Analyzer:aliases(module)
  local list = { module }
  for _, r in ipairs(self.acfg.roots) do
    if under(module, r) and module ~= r then list[#list + 1] = module:sub(#r + 2) end
  end
  return list
end

-- The indicator of `tier` that `module` matches (the shortest), or nil:
-- each dotted prefix of the module, and of its aliases, looked up, up to
-- the longest indicator (so a long module costs its length, not its
-- length squared). Memoized: modules recur from file to file.
function Analyzer:indicator(module, tier)
  local memo = self.ind_memo[tier]
  local found = memo[module]
  if found ~= nil then return found or nil end
  local set, longest = self.ind_sets[tier], self.ind_longest[tier]
  found = false
  for _, m in ipairs(self:aliases(module)) do
    -- empty components (a literal "a..b" or ".a" given to import_module)
    -- are no part of a prefix
    if m:byte(1) == 46 or m:find("..", 1, true) then m = m:gsub("%.+", "."):gsub("^%.", "") end
    local from = 1
    while true do
      local dot = m:find(".", from, true)
      local stop = (dot or #m + 1) - 1
      if stop > longest then break end
      if stop >= from then
        local prefix = m:sub(1, stop)
        if set[prefix] then
          found = prefix
          break
        end
      end
      if not dot then break end
      from = dot + 1
    end
    if found then break end
  end
  memo[module] = found
  return found or nil
end

-- Whether a dotted path is a security one: a component equal to a keyword,
-- or under a dotted keyword.
-- Components are the same with or without a package root, so only dotted
-- keywords are matched against the aliases. Memoized: imports recur.
function Analyzer:security_path(path)
  local memo = self.sec_memo[path]
  if memo ~= nil then return memo or nil end
  local found = false
  for c in path:gmatch("[^.]+") do
    if self.sec_words[c] then
      found = c
      break
    end
  end
  if not found and #self.sec_dotted > 0 then
    for _, m in ipairs(self:aliases(path)) do
      for _, kw in ipairs(self.sec_dotted) do
        if under(m, kw) then found = kw end
      end
      if found then break end
    end
  end
  self.sec_memo[path] = found
  return found or nil
end

-- Resolves a dotted module to a file under the project: a/b.py or
-- a/b/__init__.py, relative to the project root and to each package root.
function Analyzer:module_file(module)
  local known = self.module_files[module]
  if known ~= nil then return known or nil end
  local rel = module:gsub("%.", "/")
  local found = false
  for _, cand in ipairs({ self.project .. "/" .. rel .. ".py", self.project .. "/" .. rel .. "/__init__.py" }) do
    if is_file(cand) then
      found = cand
      break
    end
  end
  self.module_files[module] = found
  return found or nil
end

-- Resolves a relative import from `file`: {files} it may refer to.
function Analyzer:relative_files(file, imp)
  local dir = dirname(file)
  for _ = 2, imp.level do dir = dirname(dir) end
  local base = imp.module ~= "" and (dir .. "/" .. imp.module:gsub("%.", "/")) or dir
  local out = {}
  for _, cand in ipairs({ base .. ".py", base .. "/__init__.py" }) do
    if is_file(cand) then out[#out + 1] = cand end
  end
  for _, n in ipairs(imp.names or EMPTY) do
    for _, cand in ipairs({ base .. "/" .. n.name .. ".py", base .. "/" .. n.name .. "/__init__.py" }) do
      if is_file(cand) then out[#out + 1] = cand end
    end
  end
  return out
end

function Analyzer:in_tree(path)
  return path:sub(1, #self.root + 1) == self.root .. "/"
end

-- Whether project code (a file outside the test tree) needs packages:
-- returns the first non-standard-library package it (or project code it
-- imports) needs, or false. Memoized, cycle-safe.
function Analyzer:needs_packages(path)
  local memo = self.needs_of[path]
  if memo ~= nil then return memo end
  self.needs_of[path] = false -- cycles: assume not while visiting
  local facts = self:scan(path)
  local found = false
  for _, imp in ipairs(facts.imports or EMPTY) do
    if not imp.optional and not imp.type_checking then
      if imp.level and imp.level > 0 then
        for _, f in ipairs(self:relative_files(path, imp)) do
          found = found or self:needs_packages(f)
        end
      elseif imp.module ~= "" then
        local top = imp.module:match("^[^.]+")
        if not stdlib[top] and not self.exceptions[top] then
          local local_file = self:module_file(imp.module)
          if local_file then found = found or self:needs_packages(local_file)
          else found = found or top end
        end
      end
    end
    if found then break end
  end
  self.needs_of[path] = found
  return found
end

-- Name -> {level, module, name} for what a file's imports bind: `import
-- a.b` binds a, `import a.b as m` binds m to a.b, `from .x import y as z`
-- binds z to {level = 1, module = "x", name = "y"}.
function Analyzer:bindings(path)
  local b = self.bindings_of[path]
  if b then return b end
  b = {}
  for _, imp in ipairs(self:scan(path).imports or {}) do
    if not imp.optional and not imp.type_checking then
      if imp.from then
        for _, n in ipairs(imp.names) do
          b[n.alias or n.name] = { level = imp.level, module = imp.module, name = n.name }
        end
      else
        for _, n in ipairs(imp.names) do
          if n.alias then b[n.alias] = { level = 0, module = imp.module }
          else
            -- `import a.b` binds a: one shared (read-only) binding per name
            local top = imp.module:match("^[^.]+")
            local shared = self.top_bindings[top]
            if not shared then
              shared = { level = 0, module = top }
              self.top_bindings[top] = shared
            end
            b[top] = shared
          end
        end
      end
    end
  end
  self.bindings_of[path] = b
  return b
end

-- The absolute dotted name a dotted use in `path` stands for, through the
-- file's imports; nil for names that are not imported, and for relative ones
-- (then the binding is returned second).
function Analyzer:resolve(path, dotted)
  local head = dotted:match("^[^.]+")
  local bnd = head and self:bindings(path)[head]
  if not bnd then return nil end
  if bnd.level > 0 then return nil, bnd end
  local base = bnd.name and (bnd.module ~= "" and (bnd.module .. "." .. bnd.name) or bnd.name) or bnd.module
  return base .. dotted:sub(#head + 1)
end

-- The fixtures a file defines: name -> function facts.
function Analyzer:fixtures(path)
  local fx = self.fixtures_of[path]
  if fx then return fx end
  fx = {}
  local facts = self:scan(path)
  for _, fn in ipairs(facts.functions or EMPTY) do
    if not fn.parent then
      for _, d in ipairs(fn.decorators or EMPTY) do
        -- only a name ending in "fixture" can be one, or a plain name
        -- bound to one (`from pytest import fixture as fx`)
        local target = d.name:sub(-7) == "fixture" and (self:resolve(path, d.name) or d.name)
          or self:spellings(path).fixtures[d.name] or d.name
        if target == "pytest.fixture" or target == "pytest_asyncio.fixture" then
          local name, autouse = fn.name, false
          for _, a in ipairs(d.args or EMPTY) do
            if a.key == "name" and a.kind == "string" then name = a.value end
            if a.key == "autouse" and a.value == "True" then autouse = true end
          end
          fx[name] = { fn = fn, file = path, autouse = autouse }
        end
      end
    end
  end
  self.fixtures_of[path] = fx
  return fx
end

-- conftest.py files that apply to a file, nearest first, up to the project.
function Analyzer:conftests(file)
  local dir = dirname(file)
  local c = self.conftests_of[dir]
  if c then return c end
  c = {}
  local d = dir
  local stop = fs.realpath(self.project) or self.project
  while true do
    local cand = d .. "/conftest.py"
    if is_file(cand) and cand ~= file then c[#c + 1] = cand end
    local real = fs.realpath(d)
    if not real or real == stop or real == "/" or d == "." then break end
    local parent = dirname(d)
    if parent == d then break end
    d = parent
  end
  self.conftests_of[dir] = c
  return c
end

-- The definition of fixture `name` seen from `file`: the file itself, then
-- the nearest conftest.py (nearer shadows farther).
function Analyzer:find_fixture(file, name)
  local own = self:fixtures(file)[name]
  if own then return own end
  for _, c in ipairs(self:conftests(file)) do
    local f = self:fixtures(c)[name]
    if f then return f end
  end
end

local function where(path, line)
  return ("%s:%d"):format(basename(path), line)
end

-- Evidence from one module a file uses (through an import, a dynamic
-- import or a fixture's body): `text` says how ("imports"); `file` and
-- `line` say where (formatted only when there is evidence to show; a nil
-- line means nowhere to show).
-- Imported `names` count too (from fastapi.testclient import TestClient).
-- Adds {tier, text} entries to ev.
local function at(file, line)
  return line and (" (%s)"):format(where(file, line)) or ""
end

function Analyzer:module_evidence(module, names, text, file_at, line_at, ev, seen)
  for _, imported in ipairs(names or EMPTY) do
    local n = imported.name
    for _, tier in ipairs(RAISING) do
      if self.ind_sets[tier][n] then
        ev[#ev + 1] = { tier = tier, text = ("%s: %s %s from %s%s"):format(tier, text, n, module, at(file_at, line_at)) }
        return
      end
    end
  end
  -- plain: the standard library or an exception; "skip": that, and no
  -- indicator under it (the common case). Memoized: modules recur.
  local plain = self.plain_memo[module]
  if plain == nil then
    local top = module:match("^[^.]+")
    plain = (top == nil or stdlib[top] or self.exceptions[top]) and (self.ind_tops[top] and true or "skip") or false
    self.plain_memo[module] = plain
  end
  if plain == "skip" then return end
  -- the module, then module.name for each imported name (only under a
  -- module that can complete an indicator)
  local with_names = names and self.ind_parents[module]
  for _, tier in ipairs(RAISING) do
    local m = self:indicator(module, tier) and module
    if not m and with_names then
      for _, n in ipairs(names) do
        local full = module .. "." .. n.name
        if self:indicator(full, tier) then
          m = full
          break
        end
      end
    end
    if m then
      ev[#ev + 1] = { tier = tier, text = ("%s: %s %s%s"):format(tier, text, m, at(file_at, line_at)) }
      return
    end
  end
  if plain then return end
  local file = self:module_file(module)
  if file and self:in_tree(file) then
    self:file_evidence(file, ev, seen, ("local helper %s"):format(module))
  elseif file then
    local pkg = self:needs_packages(file)
    if pkg then
      ev[#ev + 1] = { tier = "venv", text = ("venv: %s %s%s, project code that needs %s"):format(text, module,
        at(file_at, line_at), pkg) }
    end
  else
    ev[#ev + 1] = { tier = "venv", text = ("venv: %s %s%s, a package, not the standard library"):format(text, module,
      at(file_at, line_at)) }
  end
end

-- Evidence from a file's imports (a test file or a local helper).
function Analyzer:file_evidence(path, ev, seen, via)
  if seen[path] then return end
  seen[path] = true
  local facts = self:scan(path)
  local prefix = via and (via .. ": ") or ""
  local imports, dynamically = prefix .. "imports", prefix .. "imports dynamically"
  for _, imp in ipairs(facts.imports or EMPTY) do
    local what = imp.module ~= "" and imp.module or "."
    if imp.optional or imp.type_checking then
      ev.notes[#ev.notes + 1] = ("optional: %simport %s (%s) %s, so it does not raise the tier"):format(prefix,
        what, where(path, imp.line), imp.type_checking and "is under `if TYPE_CHECKING:`" or "is guarded against ImportError")
    elseif imp.level > 0 then
      for _, f in ipairs(self:relative_files(path, imp)) do
        self:file_evidence(f, ev, seen, ("local helper %s"):format(basename(f)))
      end
    else
      self:module_evidence(imp.module, imp.from and imp.names or nil, imports, path, imp.line, ev, seen)
    end
  end
  for _, d in ipairs(facts.dynamic_imports or EMPTY) do
    self:module_evidence(d.module, nil, dynamically, path, d.line, ev, seen)
  end
end

-- Evidence from a fixture: what its body uses (through its file's
-- imports) and the fixtures it requests, transitively.
function Analyzer:fixture_evidence(file, name, ev, visiting, chain)
  if visiting[name] then return end
  visiting[name] = true
  local start = #ev
  if BUILTIN_FIXTURES[name] then return end
  local fx = self:find_fixture(file, name)
  local label = chain and (chain .. " -> " .. name) or name
  if not fx then
    for _, tier in ipairs(RAISING) do
      if self.hints[tier][name] then
        ev[#ev + 1] = { tier = tier, text = ("%s: fixture %s has no definition; its name suggests it"):format(tier, label) }
        return
      end
    end
    return
  end
  local at = where(fx.file, fx.fn.line)
  local how = ("fixture %s (%s) uses"):format(label, at)
  for _, used in ipairs(fx.fn.names or EMPTY) do
    local full, rel = self:resolve(fx.file, used)
    if full then
      self:module_evidence(full, nil, how, nil, nil, ev, {})
    elseif rel then
      local imp = { level = rel.level, module = rel.module, names = { { name = rel.name } } }
      for _, f in ipairs(self:relative_files(fx.file, imp)) do
        self:file_evidence(f, ev, {}, ("fixture %s (%s) uses local helper %s"):format(label, at, basename(f)))
      end
    end
  end
  -- One reason per fixture and tier: the first use that decides.
  local kept, by_tier = start, {}
  for i = start + 1, #ev do
    if not by_tier[ev[i].tier] then
      by_tier[ev[i].tier] = true
      kept = kept + 1
      ev[kept] = ev[i]
    end
  end
  for i = #ev, kept + 1, -1 do ev[i] = nil end
  for _, p in ipairs(fx.fn.params or EMPTY) do
    if p ~= "self" and p ~= "cls" and p ~= "request" and not p:find("^%*") then
      self:fixture_evidence(fx.file, p, ev, visiting, label)
    end
  end
end

-- How a file spells markers and fixture decorators, from what its imports
-- bind (the last binding of a name wins, as in Python): `marks`, the
-- prefixes of marker names (pytest.mark., pt.mark. after `import pytest as
-- pt`, mark. after `from pytest import mark`); `fixtures`, plain names
-- bound to a fixture decorator (fx after `from pytest import fixture as
-- fx`) and what they stand for.
function Analyzer:spellings(path)
  local sp = self.spellings_of[path]
  if sp then return sp end
  -- name -> {mark = prefix} or {fixture = target}; a later import of the
  -- name takes it back (names bound to nothing of pytest's are not kept)
  local bound, any = {}, false
  local function bind(name, what)
    if what then
      bound[name], any = what, true
    elseif any and bound[name] then
      bound[name] = nil
    end
  end
  for _, imp in ipairs(self:scan(path).imports or {}) do
    if not imp.optional and not imp.type_checking then
      local m, absolute = imp.module, imp.level == 0
      for _, n in ipairs(imp.names) do
        if imp.from then
          local what
          if absolute and m == "pytest" and n.name == "mark" then what = { mark = (n.alias or n.name) .. "." }
          elseif absolute and n.name == "fixture" and (m == "pytest" or m == "pytest_asyncio") then
            what = { fixture = m .. ".fixture" }
          end
          bind(n.alias or n.name, what)
        elseif n.alias then
          bind(n.alias, (m == "pytest" and { mark = n.alias .. ".mark." })
            or (m == "pytest.mark" and { mark = n.alias .. "." }))
        elseif any then
          bind(m:match("^[^.]+")) -- `import pytest.mark` binds pytest: pytest.mark. is always there
        end
      end
    end
  end
  sp = { marks = { "pytest.mark." }, fixtures = {}, heads = { pytest = true } }
  for name, what in pairs(bound) do
    if what.mark then
      sp.marks[#sp.marks + 1] = what.mark
      sp.heads[what.mark:match("^[^.]+")] = true -- the first components marker names can have
    end
    if what.fixture then sp.fixtures[name] = what.fixture end
  end
  self.spellings_of[path] = sp
  return sp
end

-- The marker names a file's decorators and pytestmark use.
function Analyzer:markers(path, facts)
  local sp = self:spellings(path)
  local prefixes, heads = sp.marks, sp.heads
  local found, list = {}, {}
  local function add(dotted, line)
    if not heads[dotted:match("^[^.]+")] then return end
    for _, p in ipairs(prefixes) do
      if dotted:find(p, 1, true) == 1 then
        local m = dotted:sub(#p + 1):match("^[^.]+")
        if m and not found[m] then
          found[m] = line
          list[#list + 1] = m
        end
      end
    end
  end
  for _, fn in ipairs(facts.functions or EMPTY) do
    for _, d in ipairs(fn.decorators or EMPTY) do add(d.name, d.line) end
  end
  for _, c in ipairs(facts.classes or EMPTY) do
    for _, d in ipairs(c.decorators or EMPTY) do add(d.name, d.line) end
  end
  for _, a in ipairs(facts.assignments or EMPTY) do
    if a.target == "pytestmark" then
      for _, n in ipairs(a.names) do add(n, a.line) end
    end
  end
  return list, found
end

-- The fixtures a file's tests request: parameters of test functions and
-- of test methods in Test* classes (not self/cls, not arguments the test or
-- its class parametrizes), usefixtures, and autouse fixtures in scope.
function Analyzer:requested(path, facts)
  local class_params, usefix = {}, {}
  local list, seen = {}, {}
  local function add(name, line)
    if not seen[name] then
      seen[name] = true
      list[#list + 1] = { name = name, line = line }
    end
  end
  local function parametrized(decorators)
    local p = {}
    for _, d in ipairs(decorators or EMPTY) do
      -- (plain finds at the end: an unanchored pattern tries every position)
      if d.name:find("mark.parametrize", -16, true) and d.args and d.args[1] and d.args[1].kind == "string" then
        for n in d.args[1].value:gmatch("[%w_]+") do p[n] = true end
      end
      if d.name:find("mark.usefixtures", -16, true) then
        for _, a in ipairs(d.args or EMPTY) do
          if a.kind == "string" then usefix[#usefix + 1] = { name = a.value, line = d.line } end
        end
      end
    end
    return p
  end
  -- Only decorated classes are scanned (lean): the others add nothing here.
  for _, c in ipairs(facts.classes or EMPTY) do
    if c.name:match("^Test") then class_params[c.name] = parametrized(c.decorators) end
  end
  local none = {}
  for _, fn in ipairs(facts.functions or EMPTY) do
    local is_test = fn.name:match("^test") and not fn.parent and
      (not fn.class or (fn.class:match("^Test") ~= nil))
    if is_test then
      local skip = parametrized(fn.decorators)
      local class_skip = fn.class and class_params[fn.class] or none
      for _, p in ipairs(fn.params or EMPTY) do
        if p ~= "self" and p ~= "cls" and not p:find("^%*") and not skip[p] and not class_skip[p] then
          add(p, fn.line)
        end
      end
    end
  end
  for _, u in ipairs(usefix) do add(u.name, u.line) end
  -- autouse fixtures in scope: this file's, then its conftests'
  local scopes = { path }
  for _, c in ipairs(self:conftests(path)) do scopes[#scopes + 1] = c end
  for _, f in ipairs(scopes) do
    local names = {}
    for name, fx in pairs(self:fixtures(f)) do
      if fx.autouse then names[#names + 1] = name end
    end
    table.sort(names)
    for _, n in ipairs(names) do add(n, 0) end
  end
  return list
end

---Classifies one test file.
---@param path string
---@return table detail (the reference's test_details entry, with reasons)
function Analyzer:classify(path)
  local detail = { path = path, file_name = basename(path), category = "unknown", imports = {}, fixtures = {},
                   markers = {}, is_security = false, reasons = {} }
  local facts = self:scan(path)
  if facts.read_error then
    detail.errors = { facts.read_error }
    detail.reasons = { "unknown: the file cannot be read: " .. facts.read_error }
    self.errors[#self.errors + 1] = ("%s: %s"):format(path, facts.read_error)
    return detail
  end
  local seen_imp = {}
  for _, imp in ipairs(facts.imports) do
    local m = (imp.level > 0 and string.rep(".", imp.level) or "") .. imp.module
    if not seen_imp[m] then
      seen_imp[m] = true
      detail.imports[#detail.imports + 1] = m
    end
  end
  if facts.error then
    local msg = ("syntax error at line %d: %s"):format(facts.error.line, facts.error.message)
    detail.errors = { msg }
    detail.reasons = { "unknown: " .. msg }
    self.errors[#self.errors + 1] = ("%s:%d: %s"):format(path, facts.error.line, facts.error.message)
    return detail
  end
  local markers, marker_lines = self:markers(path, facts)
  detail.markers = markers
  local requested = self:requested(path, facts)
  for _, r in ipairs(requested) do detail.fixtures[#detail.fixtures + 1] = r.name end

  local ev = { notes = {} }
  self:file_evidence(path, ev, {}, nil)
  local visiting = {}
  for _, r in ipairs(requested) do self:fixture_evidence(path, r.name, ev, visiting, nil) end

  -- security: a marker, or a security import path
  local reasons = {}
  for _, m in ipairs(markers) do
    if m == "security" then
      detail.is_security = true
      reasons[#reasons + 1] = ("security: marker security (line %d)"):format(marker_lines[m])
      break
    end
  end
  if not detail.is_security then
    for _, imp in ipairs(facts.imports) do
      local hit, kw = nil, imp.module ~= "" and self:security_path(imp.module)
      if kw then hit = imp.module end
      -- module.name: its components are the module's and the name; a
      -- dotted keyword can only be the whole path.
      for _, n in ipairs(imp.names) do
        if hit then break end
        if self.sec_words[n.name] then
          hit, kw = imp.module .. "." .. n.name, n.name
        elseif self.sec_parents[imp.module] then
          local full = imp.module .. "." .. n.name
          kw = self:security_path(full)
          if kw then hit = full end
        end
      end
      if hit then
        detail.is_security = true
        reasons[#reasons + 1] = ("security: imports %s (line %d), matching '%s'"):format(hit, imp.line, kw)
        break
      end
    end
  end

  local category
  for _, tier in ipairs(M.TIER_MARKERS) do
    if marker_lines[tier] then
      category = tier
      table.insert(reasons, 1, ("%s: marker %s (line %d) decides"):format(tier, tier, marker_lines[tier]))
      break
    end
  end
  if not category then
    for _, tier in ipairs(RAISING) do
      for _, e in ipairs(ev) do
        if e.tier == tier then
          category = category or tier
          if category == tier then table.insert(reasons, #reasons + 1, e.text) end
        end
      end
      if category then break end
    end
  end
  if not category then
    category = "standalone"
    table.insert(reasons, 1, "standalone: only the standard library, pytest and local helpers")
  end
  for _, n in ipairs(ev.notes) do reasons[#reasons + 1] = n end
  detail.category = category
  detail.reasons = reasons
  -- A test file's facts are not needed again (conftests and helpers, read
  -- through other files, stay cached).
  if not basename(path):match("^conftest") then self.facts[path] = nil end
  return detail
end

---The test files pytest would collect under root, by `python_files`.
---@param root string
---@param patterns string[]
---@return string[]|nil files
---@return string? error
function M.test_files(root, patterns)
  local files, err = fs.walk(root, { include = patterns, exclude = { "__pycache__", ".git", ".hg", "node_modules", ".tox" } })
  if not files then return nil, err end
  for i, f in ipairs(files) do files[i] = root .. "/" .. f end
  return files
end

---Analyses every test file under the analyzer's root; returns the report
---(the reference's keys: summary, categorized_tests, test_details, errors).
---@param files string[]
function Analyzer:report(files)
  -- The files are read and scanned on a second thread while this one
  -- classifies those already scanned.
  local index = {}
  for i, f in ipairs(files) do index[f] = i end
  local pf <close> = pyscan.prefetch(files, SCAN_OPTS)
  self.prefetched = { pf = pf, index = index }
  local categorized = {}
  for _, c in ipairs(M.CATEGORIES) do categorized[c] = {} end
  local details = {}
  for _, f in ipairs(files) do
    local d = self:classify(f)
    details[f] = d
    table.insert(categorized[d.category], f)
    if d.is_security then table.insert(categorized.security, f) end
  end
  local total = #files
  local summary = { total_tests = total }
  for _, c in ipairs(M.CATEGORIES) do
    summary[c .. "_count"] = #categorized[c]
    summary[c .. "_percentage"] = total > 0 and (#categorized[c] / total * 100) or 0
  end
  self.prefetched = nil
  return { summary = summary, categorized_tests = categorized, test_details = details, errors = self.errors }
end

local DEFAULT_OUTPUT = "backend/test-classification-report.json"

-- The report's lists are JSON arrays even when empty, as the reference
-- wrote them ([] where an encoder would write {}).
local function mark_arrays(report, json)
  for _, list in pairs(report.categorized_tests) do json.array(list) end
  json.array(report.errors)
  for _, d in pairs(report.test_details) do
    for _, k in ipairs({ "imports", "fixtures", "markers", "reasons", "errors" }) do
      if d[k] then json.array(d[k]) end
    end
  end
end

local function pct(summary, c)
  local n = summary[c .. "_count"]
  return ("%d file%s (%.1f%%)"):format(n, n == 1 and "" or "s", summary[c .. "_percentage"])
end

---The stage that classifies a tree's test files and prints the summary
---(np.analyze). A path that is not a directory is a usage error.
---@param opts? {path?: string, report?: boolean, output?: string, explain?: boolean, config?: novapipe.Config}
---@return novapipe.Stage
function M.stage(opts)
  opts = opts or {}
  local errors = require "novapipe._errors"
  local json = require "novapipe.json"
  local pipeline = require "novapipe.pipeline"
  local pytest_config = require "novapipe.pytest_config"
  local cfg = opts.config or require("novapipe.run.context").config()
  local root = (opts.path or cfg.tests):gsub("/+$", "")
  if not opts.path then
    require("novapipe.run.project").require_tests(cfg, require("novapipe.run.context").project())
  elseif lfs.attributes(root, "mode") ~= "directory" then
    errors.usage("--path %s: %s", root, lfs.attributes(root) and "not a directory" or "no such directory")
  end
  return pipeline.stage {
    name = "analyze",
    run = function(ctx)
      local files, ferr = M.test_files(root, pytest_config.python_files())
      if not files then return { status = "error", reason = ferr } end
      -- Many short-lived tables: the generational collector suits them.
      local mode = collectgarbage("generational")
      local report = M.new(cfg, root):report(files)
      collectgarbage(mode)
      local s = report.summary
      -- What the console shows, as data: a title and lines (reporters
      -- render them, masked by the sink).
      local lines = {
        -- files, not tests: analyze classifies files (the reference said
        -- "tests"; its JSON key total_tests stays)
        ("Total test files: %d"):format(s.total_tests),
        "Standalone: " .. pct(s, "standalone"),
        "VENV: " .. pct(s, "venv"),
        "Integration: " .. pct(s, "integration"),
        "Security: " .. pct(s, "security"),
        "Unknown: " .. pct(s, "unknown"),
      }
      if opts.explain then
        for _, f in ipairs(files) do
          local d = report.test_details[f]
          lines[#lines + 1] = ("%s: %s%s"):format(f, d.category, d.is_security and " (security)" or "")
          for _, r in ipairs(d.reasons) do lines[#lines + 1] = "    " .. r end
        end
      end
      ctx.bus:emit("section", "Test Analysis Summary", lines)
      if #report.errors > 0 then
        local errs = {}
        for _, e in ipairs(report.errors) do errs[#errs + 1] = "- " .. e end
        ctx.bus:emit("section", "Errors:", errs, "red")
      end
      local out = opts.output or (opts.report and DEFAULT_OUTPUT or nil)
      if out then
        mark_arrays(report, json)
        local ok, err = ctx.sink:write(out, json.pretty(report) .. "\n", "test classification")
        if not ok then return { status = "error", reason = err } end
        ctx.bus:emit("section", nil, { ("Detailed report written to %s"):format(out) })
      end
      return { status = "passed", summary = ("%d files: %d standalone, %d venv, %d integration, %d unknown")
        :format(#files, s.standalone_count, s.venv_count, s.integration_count, s.unknown_count), report = report }
    end,
  }
end

return M
