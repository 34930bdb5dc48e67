-- Classifying test files into tiers, with the evidence for each verdict.
--
-- The facts come from the C scanner (novapipe.pyscan); every rule is here:
--   1. an explicit tier marker wins (the strongest: the tier latest in the
--      pipeline's order), also a marker configured for a tier (django_db);
--   2. otherwise the strongest tier evidence raises it to, else standalone;
--   3. a file that does not parse is unknown, with its error; a file with no
--      test in it is empty.
-- Integration evidence is reaching a service: following what a test runs
-- (its body, its fixtures transitively, autouse fixtures in scope, and the
-- project functions, classes and module-level objects they use, across
-- modules) to a call that opens a connection (cfg.analyze.connects), unless
-- its connection string is literally in memory. Tier evidence besides is
-- what a file imports (not optional ones: try/except ImportError,
-- suppress(ImportError), `if TYPE_CHECKING:`), what its local helpers and
-- the packages' __init__.py import, and what its fixtures' bodies use.
-- Indicators match dotted prefixes at component boundaries, also with a
-- package root ("backend") taken off. Project code (outside the test tree)
-- that is imported but not called into tells only whether it needs
-- packages: venv at most.
local fs = require "novapipe.fs"
local lfs = require "lfs"
local pyscan = require "novapipe.pyscan"
local stdlib = require "novapipe.data.stdlib"

local M = {}

-- Test files, read in bulk: decorated functions (fixtures: a name that
-- ends in "fixture", pytest.fixture, or a plain name, an alias) with the
-- names their bodies use, tests that request something (lean), the other
-- tests' names in brief (left_tests), classes decorated or with a base (and
-- in brief the Test* others: left_classes), imports and module-level
-- assignments.
-- What a test's body uses is read (FULL) only for a file that can reach a
-- service at all.
local SCAN_OPTS = { names = "decorated", decorator = "fixture", functions = "test", lean = true }
-- A file followed to what it calls (a test file that can reach a service,
-- conftest.py, helpers, project code): every function with the names its
-- body uses.
local FULL = { names = "all" }

-- The categories every report has; a team's own tiers come after
-- integration (M.categories).
M.CATEGORIES = { "standalone", "venv", "integration", "security", "unknown", "empty" }
local BUILTIN_TIERS = { "standalone", "venv", "integration" }

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

---The fixtures a fixture function requests: its parameters, but self,
---cls, request (pytest's own) and *args, **kw.
---@param fn table a function's facts
---@return string[]
function M.requests(fn)
  local list = {}
  for _, p in ipairs(fn.params or EMPTY) do
    if p ~= "self" and p ~= "cls" and p ~= "request" and not p:find("^%*") then list[#list + 1] = p end
  end
  return list
end

-- A category of every report (not one of a team's tiers).
local BUILTIN_CATEGORY = set_of(M.CATEGORIES)

local P = require "novapipe.path"

-- dirname and basename, memoized: a classification asks for the same
-- few hundred paths' parts thousands of times, and each is a pattern
-- match that backtracks over the path. (The memos are dropped when they
-- grow large: a long watch sees many trees.)
local dir_memo, base_memo, memo_size = {}, {}, 0
local function remember(dir, path, v)
  memo_size = memo_size + 1
  if memo_size > 100000 then dir_memo, base_memo, memo_size = {}, {}, 1 end
  if dir then dir_memo[path] = v else base_memo[path] = v end
  return v
end
local function dirname(path)
  return dir_memo[path] or remember(true, path, P.dirname(path))
end
local function basename(path)
  return base_memo[path] or remember(false, path, P.basename(path))
end

-- t[k], a table made there when there is none (the memos by import base,
-- then by module, are tables of tables: no key string is made for a call).
local function sub(t, k)
  local v = t[k]
  if not v then
    v = {}
    t[k] = v
  end
  return v
end

-- A path under `dir` ("." is the current directory: no "./" in front).
local function join(dir, rel)
  return dir == "." and rel or dir .. "/" .. rel
end

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

-- A keyword set for pyscan.words: word -> true, or, for a two-word
-- keyword (access_token), word -> {next = true}.
local function keyword_set(list)
  local set = {}
  for _, kw in ipairs(list or EMPTY) do
    local a, b = kw:lower():match("^([^_]+)_([^_]+)$")
    if a then
      if set[a] ~= true then
        set[a] = set[a] or {}
        set[a][b] = true
      end
    else
      set[kw:lower()] = true
    end
  end
  return set
end

-- ---- memoized walks over graphs with cycles ----
-- Imports and calls go round (a imports b imports a; f calls g calls f).
-- An answer worked out while a node it leads back to is still open is
-- partial: it misses what that node adds. Such an answer is kept only
-- until the first node it depends on (the root of the cycle) is answered,
-- then settled with it: for a yes/no question (`found`: the first thing
-- found ends the walk), a root found nothing means none of them finds
-- anything; otherwise they are worked out again when next asked. A depth
-- cap is the other way an answer is partial: "nothing within d hops" is
-- kept with its depth, and holds for a walk at that depth or deeper.
-- (Tarjan's strongly connected components, as a memo: each node is worked
-- out once per cycle it is in, not once per path to it.)
local Walk = {}
Walk.__index = Walk

---@param found boolean a yes/no question: a truthy answer is final at once
local function new_walk(found)
  return setmetatable({ final = {}, partial = {}, open = {}, count = 0, low = math.huge, capped = false,
                        pending = {}, found = found }, Walk)
end

-- The walk has hit its depth cap: what it finds now holds at this depth.
function Walk:cap()
  self.capped = true
end

-- The answer for `key` at `depth` (0 for a question without one), from
-- compute(...) the first time; false for a node on the way to it (a
-- cycle). (The arguments are passed on, so that no closure is made for
-- an answer known.)
function Walk:get(key, depth, compute, ...)
  local f = self.final[key]
  if f ~= nil then
    if type(f) ~= "number" then return f end
    if depth >= f then
      self.capped = true
      return false
    end
  end
  local open = self.open[key]
  if open then
    if open < self.low then self.low = open end
    return false
  end
  local p = self.partial[key]
  if p and depth >= p.depth then
    if p.low < self.low then self.low = p.low end
    if p.capped then self.capped = true end
    return p.value
  end
  -- nodes are numbered in the order they are opened (not by depth: a
  -- partial answer's `low` must name one node for good)
  local level = self.count + 1
  local outer_low, outer_capped, mark = self.low, self.capped, #self.pending
  self.count, self.low, self.capped = level, math.huge, false
  self.open[key] = level
  local value = compute(...)
  self.open[key] = nil
  local low, capped = self.low, self.capped
  local settled = self.found and value
  if low >= level then
    -- nothing open before it was used: settled, with what its walk left
    -- partial
    for i = #self.pending, mark + 1, -1 do
      local e = self.pending[i]
      self.pending[i] = nil
      self.partial[e.key] = nil
      if self.found and not value then self.final[e.key] = capped and e.depth or false end
    end
    if self.found and not value then
      self.final[key] = capped and depth or false
    else
      self.final[key] = value
    end
  elseif settled then
    self.final[key] = value
  else
    self.partial[key] = { value = value, low = low, depth = depth, capped = capped }
    self.pending[#self.pending + 1] = { key = key, depth = depth }
  end
  self.low = low < level and math.min(outer_low, low) or outer_low
  self.capped = outer_capped or capped
  return value
end

M._new_walk = new_walk -- (for the specs)

local Analyzer = {}
Analyzer.__index = Analyzer

-- The tiers in the pipeline's order (weakest first): the configured ones,
-- and the reference's three where the configuration has none of them.
local function tier_order(cfg)
  local order, seen = {}, {}
  for _, t in ipairs(cfg.tiers or EMPTY) do
    if type(t) == "table" and type(t.name) == "string" and not seen[t.name] then
      order[#order + 1], seen[t.name] = t.name, true
    end
  end
  for i, b in ipairs(BUILTIN_TIERS) do
    if not seen[b] then table.insert(order, math.min(i, #order + 1), b) end
  end
  return order
end

---The categories of a report under `cfg`: M.CATEGORIES with the team's
---own tiers after integration.
---@param cfg novapipe.Config
---@return string[]
function M.categories(cfg)
  local list = {}
  for _, c in ipairs(M.CATEGORIES) do
    list[#list + 1] = c
    if c == "integration" then
      for _, t in ipairs(tier_order(cfg)) do
        if not BUILTIN_CATEGORY[t] then list[#list + 1] = t end
      end
    end
  end
  return list
end

---@param cfg novapipe.Config
---@param root string the directory analysed
---@param project? string the project root (default the current directory)
function M.new(cfg, root, project)
  local a = cfg.analyze
  local order = tier_order(cfg)
  local self = setmetatable({
    cfg = cfg, acfg = a, root = P.normalize(root), project = P.normalize(project or "."),
    facts = {}, full_of = {}, helper_walk = new_walk(false), helper_keys = {}, fixtures_of = {}, conftests_of = {}, bindings_of = {}, needs_walk = new_walk(true), defs_of = {},
    exceptions = set_of(a.standalone_exceptions),
    order = order, rank = {}, raising = {}, marker_tier = {},
    ind_sets = {}, ind_tops = {}, ind_longest = {}, ind_memo = {},
    sec_words = {}, sec_dotted = {}, sec_memo = {}, sec_parents = {},
    sec_names = keyword_set(a.security_names and a.security_names.words),
    sec_fixtures = keyword_set(a.security_names and a.security_names.fixtures),

    mock_words = { mock = true, mocked = true, fake = true, stub = true, dummy = true },
    connects = set_of(a.connects), connect_tops = {}, connect_mod = {}, may_walk = new_walk(true), connect_memo = {}, reach_walk = new_walk(true), in_memory = a.in_memory or EMPTY,
    plain_memo = {}, top_bindings = {}, spellings_of = {}, ind_parents = {},
    module_files = {}, module_files_at = {}, files_of_module = {}, in_tree_of = {}, bases_of = {}, local_tops = {}, plugins_of = {}, plugins_in = {}, stars_of = {}, submodules = {},
    hints = {},
    errors = {},
  }, Analyzer)
  for i, t in ipairs(order) do self.rank[t] = i end
  -- the tests directory as the project's modules are found (relative to
  -- the project): an absolute --path names the same tree
  if self.root:sub(1, 1) == "/" then
    local proj, real = fs.realpath(self.project), fs.realpath(self.root)
    if proj and real == proj then
      self.root_in_project = "."
    elseif proj and real and real:sub(1, #proj + 1) == proj .. "/" then
      self.root_in_project = real:sub(#proj + 2)
    end
  end
  self.connect_longest = 0
  for _, c in ipairs(a.connects or EMPTY) do
    self.connect_tops[c:match("^[^.]+")] = true
    self.connect_longest = math.max(self.connect_longest, #c)
  end
  -- Markers: each tier's own (its name unless it says marker = "..."),
  -- then the markers configured for a tier (django_db).
  for _, t in ipairs(cfg.tiers or EMPTY) do
    if type(t) == "table" and type(t.name) == "string" then self.marker_tier[t.marker or t.name] = t.name end
  end
  for _, b in ipairs(BUILTIN_TIERS) do self.marker_tier[b] = self.marker_tier[b] or b end
  for tier, list in pairs(a.markers or EMPTY) do
    for _, m in ipairs(list) do
      if self.rank[tier] then self.marker_tier[m] = self.marker_tier[m] or tier end
    end
  end
  -- The tiers evidence can raise a file to, strongest first: integration
  -- (reaching a service) and every tier with indicators or fixture hints.
  for i = #order, 2, -1 do
    local t = order[i]
    if t == "integration" or (a.indicators[t] and #a.indicators[t] > 0) or (a.fixture_hints[t] and #a.fixture_hints[t] > 0) then
      self.raising[#self.raising + 1] = t
    end
  end
  for _, tier in ipairs(self.raising) do
    self.ind_sets[tier], self.ind_memo[tier], self.ind_longest[tier] = set_of(a.indicators[tier]), {}, 0
    self.hints[tier] = set_of(a.fixture_hints[tier])
  end
  -- An indicator as an imported name: the strongest tier it names.
  self.ind_name_tier = {}
  for i = #self.raising, 1, -1 do
    for n in pairs(self.ind_sets[self.raising[i]]) do self.ind_name_tier[n] = self.raising[i] end
  end
  -- First components of the indicators: a module under none of them (and
  -- no package root) needs no prefix matching at all.
  for _, tier in ipairs(self.raising) do
    for _, ind in ipairs(a.indicators[tier] or EMPTY) do
      self.ind_tops[ind:match("^[^.]+")] = true
      self.ind_longest[tier] = math.max(self.ind_longest[tier], #ind)
    end
  end
  for _, r in ipairs(a.roots) do self.ind_tops[r] = true end
  -- Modules whose imported names may complete an indicator (with and
  -- without a package root): only for them is `module.name` looked up.
  for _, tier in ipairs(self.raising) do
    for _, ind in ipairs(a.indicators[tier] or EMPTY) do
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

-- The facts of a file with every function's names (a test file is read
-- again for them).
function Analyzer:full(path)
  local f = self.full_of[path]
  if f == nil then
    local facts, err = pyscan.file(path, FULL)
    f = facts or { read_error = err }
    self.full_of[path] = f
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

-- Whether a top-level module is the interpreter's own: the standard
-- library (data/stdlib.lua: sys.stdlib_module_names and the modules in the
-- interpreter's directories, such as CPython's test-support extensions),
-- and by CPython's naming, any _test* or xx* extension of another version.
local extra_stdlib = {} -- (top-level names: few, and strings)
local function is_stdlib(top)
  if stdlib[top] then return true end
  local known = extra_stdlib[top]
  if known == nil then
    known = top == "__main__" or top:find("^_test") ~= nil or top:find("^_?xx") ~= nil
    extra_stdlib[top] = known
  end
  return known
end
M.is_stdlib = is_stdlib

-- The directory Python imports a file's absolute imports from besides the
-- project root: pytest's rootdir insertion puts the first directory up
-- from the file that is not a package (has no __init__.py) on sys.path.
function Analyzer:import_base(file)
  local base = self.bases_of[file]
  if base then return base end
  local dir = dirname(file)
  base = self.bases_of[dir]
  if base then
    self.bases_of[file] = base
    return base
  end
  base = dir
  while is_file(join(base, "__init__.py")) do
    local up = dirname(base)
    if up == base or base == "." then break end
    base = up
  end
  self.bases_of[dir], self.bases_of[file] = base, base
  return base
end

local function find_module(base, rel)
  for _, cand in ipairs({ join(base, rel .. ".py"), join(base, rel .. "/__init__.py") }) do
    if is_file(cand) then return cand end
  end
end

-- Resolves a dotted module to a file under the project: a/b.py or
-- a/b/__init__.py, from the project root, each package root, then (for an
-- import in `from`) pytest's rootdir insertion for that file.
function Analyzer:module_file(module, from)
  local known = self.module_files[module]
  if known == nil then
    local rel = module:gsub("%.", "/")
    known = find_module(self.project, rel) or false
    for _, r in ipairs(self.acfg.roots) do
      known = known or find_module(join(self.project, r), rel) or false
    end
    self.module_files[module] = known
  end
  if known or not from then return known or nil end
  local base = self:import_base(from)
  local by_base = sub(self.module_files_at, base)
  local found = by_base[module]
  if found == nil then
    found = find_module(base, (module:gsub("%.", "/"))) or false
    by_base[module] = found
  end
  return found or nil
end

-- Whether a dotted module is a directory with no __init__.py under the
-- project (a namespace package, which Python imports all the same).
function Analyzer:namespace_package(module, from)
  local rel = module:gsub("%.", "/")
  for _, base in ipairs({ self.project, from and self:import_base(from) or self.project }) do
    if lfs.attributes(join(base, rel), "mode") == "directory" then return true end
  end
  return false
end

-- Whether a dotted module is a directory under the project, a package
-- root or the import base of `from` (a package, with or without an
-- __init__.py).
function Analyzer:package_dir(module, from)
  local rel = module:gsub("%.", "/")
  local bases = { self.project, self:import_base(from) }
  for _, r in ipairs(self.acfg.roots) do bases[#bases + 1] = join(self.project, r) end
  for _, base in ipairs(bases) do
    if lfs.attributes(join(base, rel), "mode") == "directory" then return true end
  end
  return false
end

-- The __init__.py files importing `module` runs first (a.b.c: a's, a.b's),
-- where they are under the project; and the module's own file.
function Analyzer:module_files_of(module, from)
  local base = from and self:import_base(from) or ""
  local by_base = sub(self.files_of_module, base)
  local list = by_base[module]
  if list then return list end
  list = self:module_files_uncached(module, from)
  by_base[module] = list
  return list
end

function Analyzer:module_files_uncached(module, from)
  local list = {}
  -- each package on the way must be one (a.b.c needs a/ and a/b/ to be
  -- packages): the first that is not ends the walk, so a long dotted name
  -- costs its length
  local stop = 0
  while true do
    local dot = module:find(".", stop + 1, true)
    if not dot then break end
    local f = self:module_file(module:sub(1, dot - 1), from)
    if f and basename(f) == "__init__.py" then
      list[#list + 1] = f
    elseif not (f == nil and self:namespace_package(module:sub(1, dot - 1), from)) then
      return list
    end
    stop = dot
  end
  local own = self:module_file(module, from)
  if own then list[#list + 1] = own end
  return list
end

-- Resolves a relative import from `file`: {files} it may refer to, the
-- __init__.py of each package between first (`from ..a.b import x` runs
-- a/__init__.py before a/b.py).
function Analyzer:relative_files(file, imp)
  local dir = dirname(file)
  for _ = 2, imp.level do dir = dirname(dir) end
  local base = imp.module ~= "" and join(dir, (imp.module:gsub("%.", "/"))) or dir
  local out = {}
  local at = dir
  for part in imp.module:gmatch("([^.]+)%.") do
    at = join(at, part)
    local init = join(at, "__init__.py")
    if not is_file(init) then break end
    out[#out + 1] = init
  end
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
  local memo = self.in_tree_of[path]
  if memo == nil then
    local r = self.root_in_project
    memo = self.root == "." or path:sub(1, #self.root + 1) == self.root .. "/"
      or (r ~= nil and (r == "." or path:sub(1, #r + 1) == r .. "/"))
    self.in_tree_of[path] = memo
  end
  return memo
end

-- Whether project code (a file outside the test tree) needs packages:
-- returns the first non-standard-library package it (or project code it
-- imports, or the __init__.py of its packages) needs, or false. Memoized,
-- cycle-safe.
function Analyzer:needs_packages(path)
  return self.needs_walk:get(path, 0, self.needs_packages_uncached, self, path)
end

function Analyzer:needs_packages_uncached(path)
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
        if not is_stdlib(top) and not self.exceptions[top] then
          local files = self:module_files_of(imp.module, path)
          if #files > 0 then
            for _, f in ipairs(files) do found = found or self:needs_packages(f) end
            -- `from app import db`: the submodule db runs too
            local last = files[#files]
            if not found and imp.from and basename(last) == "__init__.py" then
              for _, n in ipairs(imp.names or EMPTY) do
                local sub = self:module_file(imp.module .. "." .. n.name, path)
                found = found or (sub and self:needs_packages(sub))
              end
            end
          else
            found = found or top
          end
        end
      end
    end
    if found then break end
  end
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
        if target == "pytest.fixture" or target == "pytest_asyncio.fixture" or target == "pytest.yield_fixture" then
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
-- (Memoized by directory, with the directory's own conftest.py: a
-- conftest.py asking is given the ones above it, and the first file of a
-- directory to ask decides nothing for the others.)
function Analyzer:conftests(file)
  local dir = dirname(file)
  local c = self.conftests_of[dir]
  if not c then
    c = {}
    local d = dir
    local stop = fs.realpath(self.project) or self.project
    while true do
      local cand = join(d, "conftest.py")
      if is_file(cand) then c[#c + 1] = cand end
      local real = fs.realpath(d)
      if not real or real == stop or real == "/" or d == "." then break end
      local parent = dirname(d)
      if parent == d then break end
      d = parent
    end
    self.conftests_of[dir] = c
    c.above = { table.unpack(c, 2) }
  end
  if c[1] == file then return c.above end
  return c
end

-- The files a module-level import in `path` names: a relative import's
-- candidates, or the absolute module's file under the project.
function Analyzer:import_targets(path, imp)
  if imp.level > 0 then return self:relative_files(path, imp) end
  local f = imp.module ~= "" and self:module_file(imp.module, path)
  return f and { f } or EMPTY
end

-- The modules `path` star-imports (`from x import *`), as files.
function Analyzer:stars(path)
  local list = self.stars_of[path]
  if list then return list end
  list = {}
  for _, imp in ipairs(self:scan(path).imports or EMPTY) do
    if imp.star and not imp.optional and not imp.type_checking and imp["function"] == nil then
      for _, f in ipairs(self:import_targets(path, imp)) do list[#list + 1] = f end
    end
  end
  self.stars_of[path] = list
  return list
end

-- Fixture `name` as `path` has it: defined there (also in its classes),
-- imported by name (`from tests.fixtures import db_session`), or by a star
-- import; cycle-safe.
function Analyzer:fixture_in(path, name, seen)
  local own = self:fixtures(path)[name]
  if own then return own end
  seen = seen or {}
  if seen[path] then return nil end
  seen[path] = true
  local b = self:bindings(path)[name]
  if b and b.name then
    local files
    if b.level > 0 then
      files = self:relative_files(path, { level = b.level, module = b.module })
    else
      files = { self:module_file(b.module, path) }
    end
    for _, f in ipairs(files) do
      local fx = self:fixture_in(f, b.name, seen)
      if fx then return fx end
    end
  end
  for _, f in ipairs(self:stars(path)) do
    local fx = self:fixture_in(f, name, seen)
    if fx then return fx end
  end
end

-- The plugin modules (`pytest_plugins = [...]` in a test file, in a
-- conftest.py that applies, or in a plugin itself), as files.
function Analyzer:plugins(file)
  local own = self:own_plugins(file)
  local dir = dirname(file)
  if #own == 0 and self.plugins_in[dir] then return self.plugins_in[dir] end
  local list = self:plugins_uncached(file)
  if #own == 0 then self.plugins_in[dir] = list end
  return list
end

-- The plugin modules `pytest_plugins` names in a file, as files.
function Analyzer:own_plugins(f)
  local own = self.plugins_of[f]
  if not own then
    own = {}
    for _, a in ipairs(self:scan(f).assignments or EMPTY) do
      if a.target == "pytest_plugins" then
        for _, m in ipairs(a.strings or EMPTY) do
          local mf = self:module_file(m, f)
          if mf then own[#own + 1] = mf end
        end
      end
    end
    self.plugins_of[f] = own
  end
  return own
end

function Analyzer:plugins_uncached(file)
  local scopes = { file }
  for _, c in ipairs(self:conftests(file)) do scopes[#scopes + 1] = c end
  local list, seen = {}, {}
  local i = 1
  while i <= #scopes do
    local f = scopes[i]
    i = i + 1
    for _, mf in ipairs(self:own_plugins(f)) do
      if not seen[mf] then
        seen[mf] = true
        list[#list + 1] = mf
        scopes[#scopes + 1] = mf
      end
    end
  end
  return list
end

-- The definition of fixture `name` seen from `file`, in pytest's order: the
-- file itself, the nearest conftest.py (nearer shadows farther), then the
-- plugins.
function Analyzer:find_fixture(file, name)
  return self:fixture_in(file, name) or self:find_fixture_above(file, name)
end

-- The definition of fixture `name` that one defined in `file` under the
-- same name overrides: in the conftest.py files above it, then the plugins.
function Analyzer:find_fixture_above(file, name)
  for _, c in ipairs(self:conftests(file)) do
    local f = self:fixture_in(c, name)
    if f then return f end
  end
  for _, p in ipairs(self:plugins(file)) do
    if p ~= file then
      local f = self:fixture_in(p, name)
      if f then return f end
    end
  end
end

-- ---- reaching a service ----

-- Module-level definitions of a file: name -> {fn} (a def), {class, line,
-- methods} or {assign}. A def's scope takes in the functions nested in it
-- (a handler it registers, a closure it returns): their names and strings.
function Analyzer:defs(path)
  local d = self.defs_of[path]
  if d then return d end
  d = {}
  local facts = self:full(path)
  for _, c in ipairs(facts.classes or EMPTY) do d[c.name] = d[c.name] or { class = c, line = c.line, methods = {} } end
  local nested = {}
  for _, fn in ipairs(facts.functions or EMPTY) do
    if fn.parent then
      nested[fn.parent] = nested[fn.parent] or {}
      table.insert(nested[fn.parent], fn)
    elseif fn.class then
      local c = d[fn.class]
      if c and c.methods then c.methods[fn.name] = c.methods[fn.name] or fn end
    elseif not d[fn.name] then
      d[fn.name] = { fn = fn, line = fn.line }
    end
  end
  for _, v in pairs(d) do v.nested = nested end
  for _, a in ipairs(facts.assignments or EMPTY) do
    local had = d[a.target]
    if not had then
      d[a.target] = { assign = a, line = a.line }
    elseif had.assign then
      -- assigned in more than one place (`if TESTING: engine = ...
      -- else: engine = None`): what any of them uses
      local m = had.merged
      if not m then
        m = { target = a.target, line = had.assign.line, names = {}, strings = {} }
        for _, n in ipairs(had.assign.names or EMPTY) do m.names[#m.names + 1] = n end
        for _, x in ipairs(had.assign.strings or EMPTY) do m.strings[#m.strings + 1] = x end
        had.merged, had.assign = m, m
      end
      for _, n in ipairs(a.names or EMPTY) do m.names[#m.names + 1] = n end
      for _, x in ipairs(a.strings or EMPTY) do m.strings[#m.strings + 1] = x end
    end
  end
  self.defs_of[path] = d
  return d
end

-- A def's scope with the functions nested in it (to a depth of 4): their
-- names and strings. Made when first followed.
local function scope_of(fn, nested)
  local inner = nested[fn.name]
  if not inner then return fn end
  local names, strings, seen = {}, {}, {}
  local function take(f, depth)
    for _, n in ipairs(f.names or EMPTY) do names[#names + 1] = n end
    for _, x in ipairs(f.strings or EMPTY) do strings[#strings + 1] = x end
    if depth < 4 and not seen[f.name] then
      seen[f.name] = true
      for _, g in ipairs(nested[f.name] or EMPTY) do take(g, depth + 1) end
    end
  end
  take(fn, 0)
  return { name = fn.name, line = fn.line, params = fn.params, names = names, strings = strings }
end

-- The connect function `full` is, or is under (redis.Redis.from_url):
-- its dotted prefixes up to the longest connect (a long dotted name costs
-- its length, not its length squared).
function Analyzer:connect_of(full)
  local memo = self.connect_memo[full]
  if memo ~= nil then return memo or nil end
  local found = false
  local from = 1
  while true do
    local dot = full:find(".", from, true)
    if (dot or #full + 1) - 1 > self.connect_longest then break end
    local prefix = dot and full:sub(1, dot - 1) or full
    if self.connects[prefix] then
      found = prefix
      break
    end
    if not dot then break end
    from = dot + 1
  end
  self.connect_memo[full] = found
  return found or nil
end

-- Whether the connection strings of a scope (its literals, and those of
-- the module-level constants it names) are all in memory, and there is one.
function Analyzer:in_memory_scope(file, scope)
  local seen_one = false
  local function check(strings)
    for _, str in ipairs(strings or EMPTY) do
      if str:find("://", 1, true) or str:find(":memory:", 1, true) then
        local memory = false
        for _, pat in ipairs(self.in_memory) do
          if str:find(pat) then memory = true break end
        end
        if not memory then return false end
        seen_one = true
      end
    end
    return true
  end
  if not check(scope.strings) then return false end
  local defs = self:defs(file)
  for _, n in ipairs(scope.names or EMPTY) do
    local d = defs[n]
    if not d then
      -- a constant of another module of the project: `from app.core.config
      -- import DATABASE_URL`, `config.DATABASE_URL`
      local t = self:target(file, n)
      d = t and t.file and not t.member and self:defs(t.file)[t.attr]
    end
    if d and d.assign and d.assign.strings and not check(d.assign.strings) then return false end
  end
  return seen_one
end

local MAX_HOPS = 12

-- The connects an in-memory connection string can be given to (SQL
-- engines, which take sqlite:// and :memory:): an in-memory SQLite beside
-- redis.Redis(host=...) in one fixture leaves the Redis a service.
local MEMORY_CAPABLE = { sqlalchemy = true, sqlmodel = true, sqlalchemy_utils = true, databases = true, tortoise = true,
                         peewee = true, aiosqlite = true, sqlite3 = true }

-- Whether code in `path` can reach a connect call at all: it, or a module
-- of the project it imports (transitively), imports the package of one.
-- Where none does (a library's suite, CPython's), nothing is followed.
function Analyzer:may_connect(path)
  -- (a settled answer, as get would give it, without the call: most are)
  local f = self.may_walk.final[path]
  if f ~= nil and type(f) ~= "number" then return f end
  return self.may_walk:get(path, 0, self.may_connect_uncached, self, path)
end

function Analyzer:may_connect_uncached(path)
  local found = false
  for _, imp in ipairs(self:scan(path).imports or EMPTY) do
    if imp.level > 0 then
      found = self:files_may(self:relative_files(path, imp))
    elseif imp.module ~= "" and not self.plain_memo[imp.module] then
      -- (plain_memo: what module_evidence found to be the standard library)
      local top = imp.module:match("^[^.]+")
      if self.connect_tops[top] then
        found = true
      elseif not is_stdlib(top) and not self.exceptions[top] and self:local_top(top, path) then
        local files = self:module_files_of(imp.module, path)
        found = self:files_may(files) or self:names_may(imp.module, imp.from and imp.names, files, path)
      end
    end
    if found then break end
  end
  return found
end

-- Whether one of `files` can reach a connect call.
function Analyzer:files_may(files)
  for _, f in ipairs(files) do
    if self:may_connect(f) then return true end
  end
  return false
end

-- The file of the submodule `from module import name` runs, seen from
-- `from`, or false. Memoized by import base, module and name: no string is
-- made for a name seen.
function Analyzer:submodule_file(module, name, from)
  local known = sub(sub(self.submodules, self:import_base(from)), module)
  local f = known[name]
  if f == nil then
    f = self:module_file(module .. "." .. name, from) or false
    known[name] = f
  end
  return f
end

-- Whether a module imported from a package (`from pkg import db`, `files`
-- being pkg's) can reach a connect call.
function Analyzer:names_may(module, names, files, from)
  local last = files[#files]
  if not (names and last and basename(last) == "__init__.py") then return false end
  for i = 1, #names do
    local f = self:submodule_file(module, names[i].name, from)
    if f and self:may_connect(f) then return true end
  end
  return false
end

-- Whether a top-level name is a module or package of the project (seen
-- from `file`): only then is what it names followed. Memoized.
function Analyzer:local_top(top, file)
  local base = self:import_base(file)
  local by_base = sub(self.local_tops, base)
  local memo = by_base[top]
  if memo ~= nil then return memo end
  memo = self:module_file(top, file) ~= nil
  for _, dir in ipairs({ self.project, base }) do
    memo = memo or lfs.attributes(join(dir, top), "mode") == "directory"
  end
  for _, r in ipairs(self.acfg.roots) do
    memo = memo or lfs.attributes(join(join(self.project, r), top), "mode") == "directory"
  end
  by_base[top] = memo
  return memo
end

-- What a use of `dotted` in `file` stands for: {connect = entry}, or a
-- definition to follow {file, attr, label}; nil for anything else (a
-- local variable, the standard library, a package's own function).
function Analyzer:target(file, dotted)
  local head = dotted:match("^[^.]+")
  if not head then return nil end
  local full, rel = self:resolve(file, dotted)
  if full then
    local c = self:connect_of(full)
    if c then return { connect = c } end
    local top = full:match("^[^.]+")
    if is_stdlib(top) or self.exceptions[top] or not self:local_top(top, file) then return nil end
    -- the longest prefix that is a module under the project; the next
    -- component is what is used of it. Walked from the top: a module that
    -- is no package (or a name that is neither a module nor a directory)
    -- ends it, so a long dotted name costs the depth of the tree, not its
    -- length squared.
    local parts = {}
    for part in full:gmatch("[^.]+") do parts[#parts + 1] = part end
    local best, mod
    for k = 1, #parts - 1 do
      mod = k == 1 and parts[1] or (mod .. "." .. parts[k])
      local mf = self:module_file(mod, file)
      if mf then
        best = { file = mf, attr = parts[k + 1], member = parts[k + 2], label = mod .. "." .. parts[k + 1] }
        if basename(mf) ~= "__init__.py" then break end
      elseif not self:package_dir(mod, file) then
        break
      end
    end
    return best
  elseif rel then
    local dir = dirname(file)
    for _ = 2, rel.level do dir = dirname(dir) end
    local base = rel.module ~= "" and join(dir, (rel.module:gsub("%.", "/"))) or dir
    local rest, more = dotted:match("^[^.]+%.([^.]+)%.?([^.]*)")
    -- `from . import db` then db.engine: the module db, its engine
    local sub = find_module(base, rel.name)
    if sub then
      return rest and { file = sub, attr = rest, member = more ~= "" and more or nil, label = rel.name .. "." .. rest } or nil
    end
    local mf = find_module(dirname(base), basename(base))
    return mf and { file = mf, attr = rel.name, member = rest, label = rel.name } or nil
  end
  if self:defs(file)[head] then return { file = file, attr = head, member = dotted:match("^[^.]+%.([^.]+)"), label = head } end
  if #self:stars(file) > 0 then return self:star_target(file, dotted, head, {}) end
end

-- What `dotted` stands for when a star import (`from app.db import *`)
-- brings its head into `file`: the use as the module that defines or
-- imports the head has it (a name with a leading "_" is not brought);
-- through star imports of star imports, cycle-safe.
function Analyzer:star_target(file, dotted, head, seen)
  if seen[file] or head:byte(1) == 95 then return nil end
  seen[file] = true
  for _, f in ipairs(self:stars(file)) do
    if self:bindings(f)[head] or self:defs(f)[head] then return self:target(f, dotted) end
    local t = self:star_target(f, dotted, head, seen)
    if t then return t end
  end
end

-- Where a definition is, for a hop: the path under the project and line.
function Analyzer:hop(label, file, line)
  if not line then return ("%s (%s)"):format(label, file) end -- a name the module imports: no line of its own
  return ("%s (%s:%d)"):format(label, file, line)
end

-- The hops from a scope (a function's or an assignment's {names,
-- strings}) in `file` to a connect call, or nil.
function Analyzer:scope_reach(file, scope, depth)
  if depth > MAX_HOPS then
    self.reach_walk:cap()
    return nil
  end
  -- a function's parameters shadow the module's names (a fixture's
  -- requests are followed as fixtures)
  local params
  if scope.params then
    params = {}
    for _, p in ipairs(scope.params) do params[(p:gsub("^%*+", ""))] = true end
  end
  for _, used in ipairs(scope.names or EMPTY) do
    local t = not (params and params[used:match("^[^.]+")]) and self:target(file, used)
    if t and t.connect then
      if not (MEMORY_CAPABLE[t.connect:match("^[^.]+")] and self:in_memory_scope(file, scope)) then return { t.connect } end
    elseif t then
      local hops = self:def_reach(t.file, t.attr, depth + 1, t.member or scope.member)
      if hops then
        local d = self:defs(t.file)[t.attr]
        local out = { self:hop(t.label, t.file, d and d.line) }
        for _, h in ipairs(hops) do out[#out + 1] = h end
        return out
      end
    end
  end
end

-- What using a class runs: making one (__init__ and kin), and for a test
-- case, what runs before each test.
local CONSTRUCTION = { "__init__", "__new__", "__post_init__", "__enter__", "__aenter__", "setUp", "setUpClass",
                       "asyncSetUp", "setup_method", "setup_class", "setup" }

-- The hops from definition `attr` of `file` to a connect call, or nil:
-- a function's body; a class's bases and construction (or its method
-- `member`, as in Model.create); an assignment's value; or what the file
-- imports under that name. Memoized; a cycle reaches nothing.
function Analyzer:def_reach(file, attr, depth, member)
  local key = file .. "\0" .. attr .. "\0" .. (member or "")
  return self.reach_walk:get(key, depth, self.def_reach_uncached, self, file, attr, depth, member) or nil
end

function Analyzer:def_reach_uncached(file, attr, depth, member)
  local d = self:defs(file)[attr]
  local hops
  if d and d.fn then
    hops = self:scope_reach(file, scope_of(d.fn, d.nested), depth)
  elseif d and d.assign then
    hops = self:scope_reach(file, d.assign, depth)
  elseif d and d.class then
    local m = member and d.methods[member]
    if m then
      hops = self:scope_reach(file, scope_of(m, d.nested), depth)
    else
      for _, name in ipairs(CONSTRUCTION) do
        hops = hops or (d.methods[name] and self:scope_reach(file, scope_of(d.methods[name], d.nested), depth))
      end
    end
    -- an inherited method, or the bases' construction
    hops = hops or self:scope_reach(file, { names = d.class.bases, member = not m and member or nil }, depth)
  elseif self:bindings(file)[attr] then
    local t = self:target(file, attr)
    if t and t.connect then
      hops = { t.connect }
    elseif t then
      hops = self:def_reach(t.file, t.attr, depth + 1, member)
    end
  end
  return hops or false
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

-- `from`: the file whose imports resolve the module; `in_function`, `via`:
-- the function a module nothing here knows is imported in, or the call
-- that imports it dynamically: it then does not raise the tier.
function Analyzer:module_evidence(module, names, text, file_at, line_at, ev, seen, from, in_function, via)
  -- ev.may: the file can reach a connect call at all (it imports the
  -- package of one, or project code that can): only then is what its
  -- tests run followed
  local cm = self.connect_mod[module]
  if cm == nil then
    cm = self.connect_tops[module:match("^[^.]*")] or false
    self.connect_mod[module] = cm
  end
  if cm then ev.may = true end
  local list = names or EMPTY
  for i = 1, #list do
    local n = list[i].name
    local tier = self.ind_name_tier[n]
    if tier then
      ev[#ev + 1] = { tier = tier, text = ("%s: %s %s from %s%s"):format(tier, text, n, module, at(file_at, line_at)) }
      return
    end
  end
  -- plain: the standard library or an exception; "skip": that, and no
  -- indicator under it (the common case). Memoized: modules recur.
  local plain = self.plain_memo[module]
  if plain == nil then
    local top = module:match("^[^.]+")
    plain = (top == nil or is_stdlib(top) or self.exceptions[top]) and (self.ind_tops[top] and true or "skip") or false
    self.plain_memo[module] = plain
  end
  if plain == "skip" then return end
  -- the module, then module.name for each imported name (only under a
  -- module that can complete an indicator)
  local with_names = names and self.ind_parents[module]
  for _, tier in ipairs(self.raising) do
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
      -- (an indicator may name project code: app.core)
      if not ev.may and not plain then
        local files = self:module_files_of(module, from or file_at)
        if self:files_may(files) or self:names_may(module, names, files, from or file_at) then ev.may = true end
      end
      return
    end
  end
  if plain then return end
  -- a module of the test tree (however imported: relatively, through the
  -- tests package, from pytest's rootdir) is a local helper; project code
  -- tells whether it needs packages; its packages' __init__.py run first
  local files = self:module_files_of(module, from or file_at)
  if #files > 0 then
    if not ev.may and (self:files_may(files) or self:names_may(module, names, files, from or file_at)) then
      ev.may = true
    end
    -- `from app import db` at module level: the submodule db runs too
    -- (inside a function, most often one a test expects to fail: CPython's
    -- badsyntax_* modules)
    if names and not in_function and not via and basename(files[#files]) == "__init__.py" then
      local with_subs = { table.unpack(files) }
      for i = 1, #names do
        local f = self:submodule_file(module, names[i].name, from or file_at)
        if f then with_subs[#with_subs + 1] = f end
      end
      files = with_subs
    end
    for _, file in ipairs(files) do
      if self:in_tree(file) then
        self:file_evidence(file, ev, seen, module)
      else
        local pkg = self:needs_packages(file)
        if pkg then
          ev[#ev + 1] = { tier = "venv", text = ("venv: %s %s%s, project code that needs %s"):format(text, module,
            at(file_at, line_at), pkg) }
          break
        end
      end
    end
  elseif in_function or via then
    -- imported inside a function, and nothing here knows it: most often a
    -- module the test makes as it runs (or one a helper no test calls
    -- needs), not a package the tier must install
    ev.notes[#ev.notes + 1] = ("unknown: %s %s%s %s is neither the standard library, the project nor an "
      .. "indicator, so it does not raise the tier"):format(text, module, at(file_at, line_at),
      in_function and ("inside %s()"):format(in_function) or ("through %s()"):format(via))
  else
    ev[#ev + 1] = { tier = "venv", text = ("venv: %s %s%s, a package, not the standard library"):format(text, module,
      at(file_at, line_at)) }
  end
end

-- Evidence from a file's imports (a test file, or a local helper the module
-- `via` names). A helper's is worked out once (with what it imports,
-- transitively) and copied to each test that uses it the same way.
function Analyzer:file_evidence(path, ev, seen, via)
  if seen[path] then return end
  seen[path] = true
  if via then
    -- worked out on its own (what the caller has seen is no part of it),
    -- as a walk: helpers may import each other
    -- (the key made once for each helper and module)
    local keys = sub(self.helper_keys, path)
    local key = keys[via]
    if not key then
      key = path .. "\0" .. via
      keys[via] = key
    end
    local memo = self.helper_walk.final[key]
    if memo == nil or type(memo) == "number" then
      memo = self.helper_walk:get(key, 0, self.helper_evidence, self, path, via)
    end
    if memo and (memo.may or self:may_connect(path)) then ev.may = true end
    -- (a helper's own optional imports are its business: its notes stay;
    -- an entry reached through two helpers is copied once)
    local copied = ev.copied or {}
    ev.copied = copied
    for _, e in ipairs(memo or EMPTY) do
      if not copied[e] then
        copied[e] = true
        ev[#ev + 1] = e
      end
    end
    return
  end
  self:file_evidence_of(path, ev, seen, via)
end

-- A local helper's evidence, worked out on its own.
function Analyzer:helper_evidence(path, via)
  local m = { notes = {} }
  self:file_evidence_of(path, m, { [path] = true }, ("local helper %s"):format(via))
  return m
end

function Analyzer:file_evidence_of(path, ev, seen, via)
  local facts = self:scan(path)
  local prefix = via and (via .. ": ") or ""
  local imports, dynamically = prefix .. "imports", prefix .. "imports dynamically"
  local list = facts.imports or EMPTY
  for i = 1, #list do
    local imp = list[i]
    if imp.optional or imp.type_checking then
      ev.notes[#ev.notes + 1] = ("optional: %simport %s (%s) %s, so it does not raise the tier"):format(prefix,
        imp.module ~= "" and imp.module or ".", where(path, imp.line), imp.type_checking and "is under `if TYPE_CHECKING:`" or "is guarded against ImportError")
    elseif imp.level > 0 then
      for _, f in ipairs(self:relative_files(path, imp)) do
        self:file_evidence(f, ev, seen, basename(f))
      end
    else
      self:module_evidence(imp.module, imp.from and imp.names or nil, imports, path, imp.line, ev, seen, path,
        imp["function"])
    end
  end
  for _, d in ipairs(facts.dynamic_imports or EMPTY) do
    -- a literal dynamic import is most often of a module the test makes
    -- (importlib's own tests): it raises the tier only when it is known
    -- (a non-literal one, module "", names nothing to follow)
    if d.module ~= "" then
      self:module_evidence(d.module, nil, dynamically, path, d.line, ev, seen, path, nil, d.via)
    end
  end
end

-- Evidence from a fixture: what its body uses (through its file's
-- imports) and the fixtures it requests, transitively.
-- `above`: the fixture requests its own name, which pytest gives it from
-- the scopes above its file (a conftest's db(db) wraps its parent's db).
-- `depth`: how many fixtures requested it; a chain is followed to
-- MAX_FIXTURE_DEPTH (each reason names the whole chain: a longer one
-- cost its length squared, and the Lua stack).
local MAX_FIXTURE_DEPTH = 64
function Analyzer:fixture_evidence(file, name, ev, visiting, chain, above, depth)
  if BUILTIN_FIXTURES[name] then return end
  depth = depth or 1
  if depth > MAX_FIXTURE_DEPTH then
    if not ev.fixtures_cut then
      ev.fixtures_cut = true
      ev.notes[#ev.notes + 1] = ("unknown: fixture %s -> %s is not followed: a chain of more than %d fixtures")
        :format(chain, name, MAX_FIXTURE_DEPTH)
    end
    return
  end
  local fx
  if above then fx = self:find_fixture_above(file, name) else fx = self:find_fixture(file, name) end
  -- (by definition: two fixtures of one name, one overriding the other,
  -- are both followed)
  local key = fx and (fx.file .. "\0" .. name) or name
  if visiting[key] then return end
  visiting[key] = true
  local start = #ev
  local label = chain and (chain .. " -> " .. name) or name
  if not fx then
    for _, tier in ipairs(self.raising) do
      if self.hints[tier][name] then
        ev[#ev + 1] = { tier = tier, text = ("%s: fixture %s has no definition; its name suggests it"):format(tier, label) }
        return
      end
    end
    return
  end
  local at = where(fx.file, fx.fn.line)
  local hops
  if self:may_connect(fx.file) then
    local full = self:defs(fx.file)[fx.fn.name]
    hops = self:scope_reach(fx.file, full and full.fn and scope_of(full.fn, full.nested) or fx.fn, 1)
  end
  if hops then
    ev[#ev + 1] = { tier = "integration", text = ("integration: fixture %s (%s) -> %s"):format(label, at,
      table.concat(hops, " -> ")) }
  end
  local how = ("fixture %s (%s) uses"):format(label, at)
  for _, used in ipairs(fx.fn.names or EMPTY) do
    local full, rel = self:resolve(fx.file, used)
    if full then
      self:module_evidence(full, nil, how, nil, nil, ev, {}, fx.file)
    elseif rel then
      local imp = { level = rel.level, module = rel.module, names = { { name = rel.name } } }
      for _, f in ipairs(self:relative_files(fx.file, imp)) do
        self:file_evidence_of(f, ev, {}, ("fixture %s (%s) uses local helper %s"):format(label, at, basename(f)))
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
  for _, p in ipairs(M.requests(fx.fn)) do
    self:fixture_evidence(fx.file, p, ev, visiting, label, p == name, depth + 1)
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
  local imports = self:scan(path).imports or EMPTY
  for i = 1, #imports do
    local imp = imports[i]
    if not imp.optional and not imp.type_checking then
      local m, absolute = imp.module, imp.level == 0
      local names = imp.names
      for k = 1, #names do
        local n = names[k]
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
  for _, defs in ipairs({ facts.functions or EMPTY, facts.classes or EMPTY }) do
    for i = 1, #defs do
      local decorators = defs[i].decorators
      if decorators then
        for k = 1, #decorators do add(decorators[k].name, decorators[k].line) end
      end
    end
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
  local function add(name, line, autouse)
    if not seen[name] then
      seen[name] = true
      list[#list + 1] = { name = name, line = line, autouse = autouse }
    end
  end
  -- (the names a test's decorators parametrize; EMPTY for none, as most)
  local function parametrized(decorators)
    local p
    for _, d in ipairs(decorators or EMPTY) do
      -- (plain finds at the end: an unanchored pattern tries every position)
      if d.name:find("mark.parametrize", -16, true) and d.args then
        -- argnames: "a,b", "a, b", ["a", "b"], ("a", "b"), argnames=...;
        -- indirect=True (or a list naming some) makes them fixtures
        local names, indirect
        for i, a in ipairs(d.args) do
          if (i == 1 and not a.key) or a.key == "argnames" then names = a end
          if a.key == "indirect" then indirect = a end
        end
        local fixtures = {}
        if indirect and indirect.kind == "raw" then
          for q in indirect.value:gmatch("[\"']([%w_]+)[\"']") do fixtures[q] = true end
        end
        local all_indirect = indirect and indirect.kind == "name" and indirect.value == "True"
        if names and (names.kind == "string" or names.kind == "raw") and not all_indirect then
          local text = names.value
          if names.kind == "raw" then
            local quoted = {}
            for q in text:gmatch("[\"']([^\"']*)[\"']") do quoted[#quoted + 1] = q end
            text = table.concat(quoted, ",")
          end
          for n in text:gmatch("[%w_]+") do
            if not fixtures[n] then
              p = p or {}
              p[n] = true
            end
          end
        end
      end
      if d.name:find("mark.usefixtures", -16, true) then
        for _, a in ipairs(d.args or EMPTY) do
          if a.kind == "string" then usefix[#usefix + 1] = { name = a.value, line = d.line } end
        end
      end
    end
    return p or EMPTY
  end
  for _, c in ipairs(facts.classes or EMPTY) do
    if c.name:find("^Test") then class_params[c.name] = parametrized(c.decorators) end
  end
  local functions = facts.functions or EMPTY
  for i = 1, #functions do
    local fn = functions[i]
    local is_test = fn.name:find("^test") and not fn.parent and (not fn.class or fn.class:find("^Test"))
    if is_test then
      local skip = parametrized(fn.decorators)
      local class_skip = fn.class and class_params[fn.class] or EMPTY
      local params = fn.params or EMPTY
      for k = 1, #params do
        local p = params[k]
        if p ~= "self" and p ~= "cls" and p:byte(1) ~= 42 and not skip[p] and not class_skip[p] then -- 42: "*"
          add(p, fn.line)
        end
      end
    end
  end
  for _, u in ipairs(usefix) do add(u.name, u.line) end
  -- autouse fixtures in scope: this file's, its conftests', the plugins',
  -- and those they star-import
  local scopes = { path }
  for _, c in ipairs(self:conftests(path)) do scopes[#scopes + 1] = c end
  for _, p in ipairs(self:plugins(path)) do scopes[#scopes + 1] = p end
  local done = {}
  local i = 1
  while i <= #scopes do
    local f = scopes[i]
    i = i + 1
    if not done[f] then
      done[f] = true
      local names = {}
      for name, fx in pairs(self:fixtures(f)) do
        if fx.autouse then names[#names + 1] = name end
      end
      table.sort(names)
      for _, n in ipairs(names) do add(n, 0, true) end
      for _, st in ipairs(self:stars(f)) do scopes[#scopes + 1] = st end
    end
  end
  return list
end

-- The test functions of a file: test* functions at module level and test*
-- methods of any class (a mixin's are collected through its subclasses);
-- and the names of all of them, with those a lean scan leaves out.
local function tests_of(facts)
  local list, names = {}, {}
  local functions = facts.functions or EMPTY
  for i = 1, #functions do
    local fn = functions[i]
    if fn.name:find("^test") and not fn.parent then
      list[#list + 1] = fn
      names[#names + 1] = fn.name
    end
  end
  if facts.left_tests then names[#names + 1] = facts.left_tests end
  return list, names
end

-- How many tests the names of tests_of hold.
local function count_tests(names)
  local n = 0
  for _, entry in ipairs(names) do
    local _, spaces = entry:gsub(" ", "")
    n = n + spaces + 1
  end
  return n
end

-- Whether a file holds nothing pytest or unittest could collect: no test
-- function, no load_tests, no __test__ (doctests), and no class that may
-- inherit tests: one with a base defined here or in the project (a
-- package's TestCase, unittest's or Django's, brings none).
function Analyzer:is_empty(path, facts, names)
  if #names > 0 or facts.load_tests or self:bindings(path).load_tests then return false end
  for _, a in ipairs(facts.assignments or EMPTY) do
    if a.target == "__test__" or a.target == "load_tests" then return false end
  end
  for _, c in ipairs(facts.classes or EMPTY) do
    for _, base in ipairs(c.bases or EMPTY) do
      local resolved, rel = self:resolve(path, base)
      -- a relative import, a name defined here or from nowhere: say nothing
      if rel or not resolved then return false end
      local top = resolved:match("^[^.]+")
      if not is_stdlib(top) and self:local_top(top, path) then return false end
    end
  end
  return true
end

-- Why a file is a security test by what it tests, or nil: a keyword among
-- the words of its path under the tests directory, of a test class's
-- name, of a fixture its tests request (not a mock's or a fake's); or in
-- the names of a quarter of its tests (two at least, unless it has one or
-- two): one test about a password among many is not what the file tests.
function Analyzer:security_by_name(path, facts, test_names, requested)
  local words = pyscan.words -- (in C: a name's words, at "_" and camel case)
  local rel = path:sub(1, #self.root + 1) == self.root .. "/" and path:sub(#self.root + 2) or basename(path)
  local _, _, kw = words((rel:gsub("%.py$", ""):gsub("/", "_")), self.sec_names)
  if kw then return ("security: its path %s has the word '%s'"):format(rel, kw) end
  for _, r in ipairs(requested) do
    -- (an autouse fixture is requested by no test: a conftest's
    -- override_auth_dependency says nothing of what each file tests)
    kw = nil
    if not r.autouse then _, _, kw = words(r.name, self.sec_fixtures) end
    if kw and not words(r.name, self.mock_words) then
      return ("security: it requests fixture %s, with the word '%s'"):format(r.name, kw)
    end
  end
  local classes = {}
  for _, c in ipairs(facts.classes or EMPTY) do
    if c.name:match("^Test") then classes[#classes + 1] = c.name end
  end
  classes[#classes + 1] = facts.left_classes
  local name
  _, name, kw = words(table.concat(classes, " "), self.sec_names)
  if kw then return ("security: test class %s has the word '%s'"):format(name, kw) end
  local hits
  hits, name, kw = words(table.concat(test_names, " "), self.sec_names)
  if not hits then return nil end
  local total = count_tests(test_names)
  if hits * 4 >= total and (hits >= 2 or total <= 2) then
    return ("security: %d of its %d tests are about it: %s has the word '%s'"):format(hits, total, name, kw)
  end
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
  local imports = facts.imports
  for i = 1, #imports do
    local imp = imports[i]
    local m = imp.level > 0 and string.rep(".", imp.level) .. imp.module or imp.module
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
  local _, test_names = tests_of(facts)
  if self:is_empty(path, facts, test_names) then
    -- nothing runs: an autouse fixture in scope never does either
    detail.category = "empty"
    detail.reasons = { "empty: no test in it (no test* function or method, no test case class, no load_tests)" }
    self:forget(path)
    return detail
  end
  local requested = self:requested(path, facts)
  for _, r in ipairs(requested) do detail.fixtures[#detail.fixtures + 1] = r.name end

  local ev = { notes = {} }
  self:file_evidence(path, ev, {}, nil)
  local imported = ev
  ev = { notes = imported.notes }
  -- reaching a service: what the tests run, the test classes' bases, what
  -- the module does as it is imported (first: it says the most); only in
  -- a file that can reach one at all
  local may = imported.may
  local full = may and self:full(path)
  for _, fn in ipairs(may and tests_of(full) or EMPTY) do
    local hops = self:scope_reach(path, fn, 1)
    if hops then
      ev[#ev + 1] = { tier = "integration", text = ("integration: test %s (%s) -> %s"):format(fn.name,
        where(path, fn.line), table.concat(hops, " -> ")) }
      break
    end
  end
  for _, c in ipairs(may and full.classes or EMPTY) do
    -- a test case's bases, and what runs before its tests
    local hops = self:def_reach(path, c.name, 1)
    if hops then
      ev[#ev + 1] = { tier = "integration", text = ("integration: class %s (%s) -> %s"):format(c.name,
        where(path, c.line), table.concat(hops, " -> ")) }
      break
    end
  end
  for _, a in ipairs(may and facts.assignments or EMPTY) do
    local hops = self:scope_reach(path, a, 1)
    if hops then
      ev[#ev + 1] = { tier = "integration", text = ("integration: %s (%s) -> %s"):format(a.target,
        where(path, a.line), table.concat(hops, " -> ")) }
      break
    end
  end
  for _, e in ipairs(imported) do ev[#ev + 1] = e end
  local visiting = {}
  for _, r in ipairs(requested) do self:fixture_evidence(path, r.name, ev, visiting, nil) end

  -- security: a marker, what it tests (its path's, tests' and fixtures'
  -- words), or an import of project security code
  local reasons = {}
  for _, m in ipairs(markers) do
    if m == "security" then
      detail.is_security = true
      reasons[#reasons + 1] = ("security: marker security (line %d)"):format(marker_lines[m])
      break
    end
  end
  if not detail.is_security then
    local why = self:security_by_name(path, facts, test_names, requested)
    if why then
      detail.is_security = true
      reasons[#reasons + 1] = why
    end
  end
  if not detail.is_security then
    local imports = facts.imports
    for i = 1, #imports do
      local imp = imports[i]
      local hit, kw = nil, imp.module ~= "" and self:security_path(imp.module)
      if kw then hit = imp.module end
      -- module.name: its components are the module's and the name; a
      -- dotted keyword can only be the whole path.
      local names = imp.names
      for k = 1, #names do
        local n = names[k]
        if hit then break end
        if self.sec_words[n.name] then
          hit, kw = imp.module .. "." .. n.name, n.name
        elseif self.sec_parents[imp.module] then
          local full = imp.module .. "." .. n.name
          kw = self:security_path(full)
          if kw then hit = full end
        end
      end
      -- a helper of the test tree (to log a user in) is not what is tested
      if hit and imp.level == 0 then
        local f = self:module_file(imp.module, path)
        if f and self:in_tree(f) then hit = nil end
      elseif hit then
        hit = nil
      end
      if hit then
        detail.is_security = true
        reasons[#reasons + 1] = ("security: imports %s (line %d), matching '%s'"):format(hit, imp.line, kw)
        break
      end
    end
  end

  -- an explicit marker: the strongest tier one names
  local category, marked
  for _, m in ipairs(markers) do
    local tier = self.marker_tier[m]
    if tier and (not category or self.rank[tier] > self.rank[category]) then category, marked = tier, m end
  end
  if category then
    table.insert(reasons, 1, ("%s: marker %s (line %d) decides"):format(category, marked, marker_lines[marked]))
  end
  if not category then
    for _, tier in ipairs(self.raising) do
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
  self:forget(path)
  return detail
end

-- classify, with a file whose imports, calls or fixtures go deeper than
-- the Lua stack (a chain of 40,000 modules) unknown, with why, and the
-- run going on; any other error is raised.
function Analyzer:classify_guarded(path)
  local ok, d = pcall(self.classify, self, path)
  if ok then return d end
  if not tostring(d):find("stack overflow", 1, true) then error(d, 0) end
  -- the walks were left mid-way: start them again
  self.helper_walk, self.needs_walk, self.may_walk, self.reach_walk =
    new_walk(false), new_walk(true), new_walk(true), new_walk(true)
  local msg = "what it imports, calls or requests goes deeper than analyze can follow"
  self.errors[#self.errors + 1] = ("%s: %s"):format(path, msg)
  self:forget(path)
  return { path = path, file_name = basename(path), category = "unknown", imports = {}, fixtures = {}, markers = {},
           is_security = false, reasons = { "unknown: " .. msg }, errors = { msg } }
end

-- A test file's facts are not needed again (conftests and helpers, read
-- through other files, stay cached).
function Analyzer:forget(path)
  if not basename(path):match("^conftest") then
    self.facts[path], self.defs_of[path], self.full_of[path] = nil, nil, nil
  end
end

-- ---- what a file depends on (novapipe.select.changed) ----

---Starts reading and scanning `files` on the scanner's second thread;
---the analyzer's scans take them from it. Returns the handle, to close
---(`local pf <close> = a:prefetch(files)`) once the files are read.
---@param files string[]
function Analyzer:prefetch(files)
  local index = {}
  for i, f in ipairs(files) do index[f] = i end
  local pf = pyscan.prefetch(files, SCAN_OPTS)
  self.prefetched = { pf = pf, index = index }
  return setmetatable({}, { __close = function()
    self.prefetched = nil
    pf:close()
  end })
end

-- The package __init__.py files above a file that Python runs before it
-- (each directory up that is a package), nearest first.
function Analyzer:packages_of(path)
  local list = {}
  local dir = dirname(path)
  while dir ~= "." and dir ~= "/" and dir ~= "" do
    local init = join(dir, "__init__.py")
    if not is_file(init) then break end
    if init ~= path then list[#list + 1] = init end
    local up = dirname(dir)
    if up == dir then break end
    dir = up
  end
  return list
end

---The project files `path` depends on as Python and pytest run it, each
---edge `{file, how, name, line}` (`how` says what the file is to `path`:
---"imported by", "imported dynamically by", "conftest of", "plugin of",
---"package of", "fixture NAME of"; `name` is the module's dotted name
---where an import gives one), and what it names that is not there:
---`missing.modules` (dotted names of absolute imports, `module.name` of
---each from-import too) and `missing.paths` (a relative import's target,
---without .py), so that a deleted file is matched by its name; `dynamic`
---lists its imports with a non-literal argument (`{via, line}`).
---Every import counts, also optional ones, under `if TYPE_CHECKING:` and
---inside functions: a dependency missed is a test not run. The standard
---library is not followed.
---@param path string
---@param test? boolean a test file: its conftest chain, its packages' __init__.py and the fixtures its tests request count too
---@return {file: string, how: string, name?: string, line?: integer}[] edges
---@return {modules: string[], paths: string[]} missing
---@return {via: string, line: integer}[] dynamic
function Analyzer:dependencies(path, test)
  local facts = self:scan(path)
  local edges, seen = {}, {}
  local missing = { modules = {}, paths = {} }
  local dynamic = {}
  local function add(file, how, name, line)
    if file and file ~= path and not seen[file] then
      seen[file] = true
      edges[#edges + 1] = { file = file, how = how, name = name, line = line }
    end
  end
  local function absolute(module, names, how, line)
    local top = module:match("^[^.]+")
    if not top or is_stdlib(top) then return end
    local files = self:module_files_of(module, path)
    local own = self:module_file(module, path)
    for _, f in ipairs(files) do add(f, f == own and how or "package of", f == own and module or nil, line) end
    if not own then missing.modules[#missing.modules + 1] = module end
    -- `from app import db`: the submodule db runs too (or, deleted, was it)
    for _, n in ipairs(names or EMPTY) do
      local full = module .. "." .. n.name
      local sub = own and basename(own) == "__init__.py" and self:module_file(full, path)
      if sub then add(sub, how, full, line) else missing.modules[#missing.modules + 1] = full end
    end
  end
  for _, imp in ipairs(facts.imports or EMPTY) do
    if imp.level > 0 then
      local dir = dirname(path)
      for _ = 2, imp.level do dir = dirname(dir) end
      local base = imp.module ~= "" and join(dir, (imp.module:gsub("%.", "/"))) or dir
      local found = self:relative_files(path, imp)
      for _, f in ipairs(found) do add(f, "imported by", nil, imp.line) end
      if imp.module ~= "" and not (is_file(base .. ".py") or is_file(base .. "/__init__.py")) then
        missing.paths[#missing.paths + 1] = base
      end
      for _, n in ipairs(imp.names or EMPTY) do
        local sub = base .. "/" .. n.name
        if not (is_file(sub .. ".py") or is_file(sub .. "/__init__.py")) then missing.paths[#missing.paths + 1] = sub end
      end
    elseif imp.module ~= "" then
      absolute(imp.module, imp.from and imp.names or nil, "imported by", imp.line)
    end
  end
  for _, d in ipairs(facts.dynamic_imports or EMPTY) do
    if d.module == "" then
      dynamic[#dynamic + 1] = { via = d.via, line = d.line }
    else
      absolute(d.module, nil, "imported dynamically by", d.line)
    end
  end
  for _, a in ipairs(facts.assignments or EMPTY) do
    if a.target == "pytest_plugins" then
      for _, m in ipairs(a.strings or EMPTY) do
        local mf = self:module_file(m, path)
        if mf then
          for _, f in ipairs(self:module_files_of(m, path)) do add(f, f == mf and "plugin of" or "package of", f == mf and m or nil, a.line) end
        else
          missing.modules[#missing.modules + 1] = m
        end
      end
    end
  end
  -- where each fixture its tests request is defined, when a conftest.py or
  -- a plugin may define it: the explanation names it. (Every file that
  -- can define one is an edge already: this finds no file the others
  -- miss, so a file without conftest or plugin is spared the work.)
  if test and not facts.error and not facts.read_error and (#self:conftests(path) > 0 or #self:plugins(path) > 0) then
    for _, r in ipairs(self:requested(path, facts)) do
      if not BUILTIN_FIXTURES[r.name] then
        local fx = self:find_fixture(path, r.name)
        if fx then add(fx.file, ("fixture %s of"):format(r.name), nil, r.line ~= 0 and r.line or nil) end
      end
    end
  end
  if test or basename(path) == "conftest.py" then
    for _, init in ipairs(self:packages_of(path)) do add(init, "package of") end
    for _, c in ipairs(self:conftests(path)) do add(c, "conftest of") end
  end
  return edges, missing, dynamic
end

-- What the walks leave out, as pytest's norecursedirs would (hidden
-- directories: .git, .venv, .tox; installed packages), but not "venv" or
-- "build": a tier may be named so.
local NORECURSE = { "__pycache__", ".*", "*.egg", "node_modules", "site-packages", "dist-packages", "_darcs", "CVS",
                    "{arch}" }

---The test files pytest would collect under root, by `python_files`.
---@param root string
---@param patterns string[]
---@return string[]|nil files
---@return string? error
function M.test_files(root, patterns)
  local files, err = fs.walk(root, { include = patterns, exclude = NORECURSE })
  if not files then return nil, err end
  for i, f in ipairs(files) do files[i] = root .. "/" .. f end
  return files
end

---The test files under root (as test_files gives them) and the tree's
---other Python files (conftests, helpers, packages' __init__.py), from one
---walk of the tree.
---@param root string
---@param patterns string[]
---@return {tests: string[], helpers: string[]}|nil
---@return string? error
function M.tree_files(root, patterns)
  local include = { "*.py" }
  for _, p in ipairs(patterns) do include[#include + 1] = p end
  local all, err = fs.walk(root, { include = include, exclude = NORECURSE })
  if not all then return nil, err end
  local tests, helpers = {}, {}
  for _, f in ipairs(all) do
    -- (as fs.walk matches: a pattern with "/" the relative path, one
    -- without the base name)
    local name = f:match("[^/]*$")
    local test = false
    for _, p in ipairs(patterns) do
      if fs.match(p, p:find("/", 1, true) and f or name) then
        test = true
        break
      end
    end
    if test then
      tests[#tests + 1] = root .. "/" .. f
    elseif f:find(".py", -3, true) then
      helpers[#helpers + 1] = root .. "/" .. f
    end
  end
  return { tests = tests, helpers = helpers }
end

-- The tree's other Python files (conftests, helpers, packages'
-- __init__.py), which the test files import; none when it cannot be read.
-- No more of them than test files: a --path that holds a whole project
-- would otherwise have the second thread read its code first, mostly for
-- nothing.
local function helper_files(root, files, helpers)
  if not helpers then
    -- (every .py but the test files given)
    local is_test = {}
    for _, f in ipairs(files) do is_test[f] = true end
    helpers = {}
    local tree = M.tree_files(root, {})
    for _, f in ipairs(tree and tree.helpers or {}) do
      if not is_test[f] then helpers[#helpers + 1] = f end
    end
  end
  local list = {}
  for i = 1, math.min(#helpers, #files) do list[i] = helpers[i] end
  return list
end

---Analyses every test file under the analyzer's root; returns the report
---(the reference's keys: summary, categorized_tests, test_details, errors).
---`helpers`, the tree's other Python files (tree_files), saves a walk.
---@param files string[]
---@param helpers? string[]
function Analyzer:report(files, helpers)
  -- The files are read and scanned on a second thread while this one
  -- classifies those already scanned: the tree's helpers first (the
  -- first test files import them, and scanned there they are off this
  -- thread), then the test files.
  local order = helper_files(self.root, files, helpers)
  for _, f in ipairs(files) do order[#order + 1] = f end
  local index = {}
  for i, f in ipairs(order) do index[f] = i end
  local pf <close> = pyscan.prefetch(order, SCAN_OPTS)
  self.prefetched = { pf = pf, index = index }
  local categories = M.categories(self.cfg)
  local categorized = {}
  for _, c in ipairs(categories) do categorized[c] = {} end
  local details = {}
  for _, f in ipairs(files) do
    local d = self:classify_guarded(f)
    details[f] = d
    table.insert(categorized[d.category], f)
    if d.is_security then table.insert(categorized.security, f) end
  end
  local total = #files
  local summary = { total_tests = total }
  for _, c in ipairs(categories) do
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
  -- one spelling of the path (./tests, tests/ and tests alike)
  local root = P.normalize(opts.path or cfg.tests)
  if not opts.path then
    require("novapipe.run.project").require_tests(cfg, require("novapipe.run.context").project())
  elseif lfs.attributes(root, "mode") ~= "directory" then
    errors.usage("--path %s: %s", root, lfs.attributes(root) and "not a directory" or "no such directory")
  end
  return pipeline.stage {
    name = "analyze",
    run = function(ctx)
      local tree, ferr = M.tree_files(root, pytest_config.python_files())
      if not tree then return { status = "error", reason = ferr } end
      local files = tree.tests
      -- Many short-lived tables: the generational collector suits them.
      local mode = collectgarbage("generational")
      local report = M.new(cfg, root):report(files, tree.helpers)
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
      }
      for _, c in ipairs(M.categories(cfg)) do
        if not BUILTIN_CATEGORY[c] then lines[#lines + 1] = c:sub(1, 1):upper() .. c:sub(2) .. ": " .. pct(s, c) end
      end
      lines[#lines + 1] = "Security: " .. pct(s, "security")
      lines[#lines + 1] = "Unknown: " .. pct(s, "unknown")
      if s.empty_count > 0 then lines[#lines + 1] = "Empty (no tests): " .. pct(s, "empty") end
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
      local parts = { ("%d files: %d standalone, %d venv, %d integration"):format(#files, s.standalone_count,
        s.venv_count, s.integration_count) }
      for _, c in ipairs(M.categories(cfg)) do
        if not BUILTIN_CATEGORY[c] then parts[#parts + 1] = ("%d %s"):format(s[c .. "_count"], c) end
      end
      parts[#parts + 1] = ("%d unknown"):format(s.unknown_count)
      if s.empty_count > 0 then parts[#parts + 1] = ("%d empty"):format(s.empty_count) end
      return { status = "passed", summary = table.concat(parts, ", "), report = report }
    end,
  }
end

return M
