-- Change-based selection (`run_tests --changed [REF]`): the test files
-- whose static dependency closure holds a changed file, each with the
-- chain that links it to the change.
--
-- The closure of a test file is what analyze follows (novapipe.analyze's
-- Analyzer:dependencies): the project modules it imports, transitively,
-- with each package's __init__.py; its conftest chain and what those
-- import; the plugins `pytest_plugins` names; where the fixtures its tests
-- request are defined; and the data files a file of the closure names by
-- a string literal (`Path(__file__).parent / "data" / "x.json"`).
-- Where static analysis cannot see, it is conservative, and says why:
--   * pytest's configuration (pytest.ini, pyproject.toml, setup.cfg,
--     tox.ini), novapipe.lua, requirements and lock files, and a
--     conftest.py at the tests' root or above it select every test;
--   * a file that imports with a non-literal argument (import_module(name))
--     makes every test whose closure holds it selected, whatever changed;
--   * a deleted (or renamed) file selects the tests that imported it, by
--     the module name or relative path their imports still give; a deleted
--     conftest.py or __init__.py, the tests under its directory;
--   * a changed file that is not Python and that no file of a closure
--     names selects every test, unless a `changed.ignore` pattern of
--     novapipe.lua matches it (docs, images: M.DEFAULT_IGNORE).
-- M.select is a pure function of (configuration, project root, changed
-- paths): `novapipe watch` and the mutation harness call it with their own
-- lists. M.git_changes is where run_tests gets the list.
local analyze = require "novapipe.analyze"
local fs = require "novapipe.fs"
local lfs = require "lfs"
local P = require "novapipe.path"
local pyscan = require "novapipe.pyscan"
local pytest_config = require "novapipe.pytest_config"

local M = {}

---@class novapipe.Change
---@field path string relative to the project root
---@field status "modified"|"added"|"deleted"|"renamed"|"untracked"
---@field from? string a rename's old path (a "renamed" change is its new path; the old one comes as a "deleted" change too)

---@class novapipe.ChangedSelection
---@field changes novapipe.Change[] what changed, as given
---@field tests string[] every test file in scope, sorted
---@field everything? string why every test is selected (a conservative rule), or nil
---@field files string[] the selected test files, sorted (every test when `everything`)
---@field why table<string, string> a selected file -> the chain from a change to it
---@field always table<string, boolean> the files selected whatever changed (a non-literal import reaches them)
---@field notes string[] one line a change that selected nothing, saying why (ignored, reaches no test)
---@field skipped string[] the test files left out, sorted

-- Files whose change can alter every test's run: pytest's configuration,
-- the project's dependencies, novapipe's own configuration.
M.EVERYTHING = { "pytest.ini", "pyproject.toml", "setup.cfg", "tox.ini", "setup.py", "novapipe.lua",
                 "requirements*.txt", "requirements*.in", "requirements/*", "constraints*.txt", "Pipfile",
                 "Pipfile.lock", "poetry.lock", "uv.lock", "pdm.lock" }

-- What a changed file that is not Python and that no test names may be
-- without selecting everything (novapipe.lua's changed.ignore replaces or
-- extends it): novapipe.config.CHANGED_IGNORE.
M.DEFAULT_IGNORE = require("novapipe.config").CHANGED_IGNORE

-- Whether a pattern matches a path: one with "/" the whole path, one
-- without the base name (as fs.walk's filters).
local function matches(pattern, path)
  if pattern:find("/", 1, true) then return fs.match(pattern, path) end
  return fs.match(pattern, P.basename(path))
end

---The first of `patterns` that matches `path`, or nil.
---@param patterns string[]
---@param path string
---@return string|nil
function M.matching(patterns, path)
  for _, p in ipairs(patterns) do
    if matches(p, path) then return p end
  end
end

-- ---- what git says changed ----

local function git(args, cwd)
  local argv = { "git", "-c", "core.quotepath=off" }
  for _, a in ipairs(args) do argv[#argv + 1] = a end
  local r, err = require("novapipe.process").run(argv, { cwd = cwd, stdin = "null" })
  if not r then return nil, err end
  return r
end

local function last_line(r)
  return ((r.stderr or "") .. "\n" .. (r.stdout or "")):match("([^\n]*%S[^\n]*)%s*$") or ("exit " .. r.code)
end

-- The changes of `git diff --name-status -z` output.
local function name_status(out, list)
  local fields = {}
  for f in out:gmatch("([^%z]*)%z") do fields[#fields + 1] = f end
  local i = 1
  while i <= #fields do
    local st = fields[i]
    local code = st:sub(1, 1)
    if code == "R" or code == "C" then
      local old, new = fields[i + 1], fields[i + 2]
      if code == "R" then list[#list + 1] = { path = old, status = "deleted", to = new } end
      list[#list + 1] = { path = new, status = code == "R" and "renamed" or "added", from = old }
      i = i + 3
    elseif code ~= "" then
      local status = ({ A = "added", D = "deleted" })[code] or "modified"
      list[#list + 1] = { path = fields[i + 1], status = status }
      i = i + 2
    else
      i = i + 1
    end
  end
end

---The files changed in the git repository holding `dir` (default the
---current directory), relative to it, each once: without `ref`, the
---working tree against HEAD (staged, unstaged and untracked files, not
---ignored ones); with `ref`, everything since the merge base of `ref` and
---HEAD (its commits, and what is not committed yet, untracked files
---included): what a pull request changes against its target branch.
---Renames come as the new path ("renamed", `from` the old) and the old
---path ("deleted"). Returns the changes and what was compared ("HEAD",
---"main (merge base 1a2b3c4d5e6f)"), or nil and one line saying what is
---wrong (not a repository, an unknown ref, no merge base).
---@param ref? string
---@param dir? string
---@return novapipe.Change[]|nil changes
---@return string against, or the error
function M.git_changes(ref, dir)
  dir = dir or "."
  local r, err = git({ "rev-parse", "--show-toplevel" }, dir)
  if not r then return nil, ("--changed needs git: %s"):format(err) end
  if r.code ~= 0 then
    return nil, ("--changed: %s is not in a git repository (%s)"):format(lfs.currentdir(), last_line(r))
  end
  local head = git({ "rev-parse", "--verify", "-q", "HEAD^{commit}" }, dir)
  local base, against
  if ref then
    local rr = git({ "rev-parse", "--verify", "-q", "--end-of-options", ref .. "^{commit}" }, dir)
    if not rr or rr.code ~= 0 then
      return nil, ("--changed %s: no such branch, tag or commit in this repository (in CI, fetch it: "
        .. "actions/checkout with fetch-depth: 0)"):format(ref)
    end
    if not head or head.code ~= 0 then
      return nil, ("--changed %s: the repository has no commit yet to compare with it"):format(ref)
    end
    local mb = git({ "merge-base", ref, "HEAD" }, dir)
    if not mb or mb.code ~= 0 then
      return nil, ("--changed %s: %s and HEAD have no common ancestor (a shallow clone? fetch the history: "
        .. "actions/checkout with fetch-depth: 0)"):format(ref, ref)
    end
    base = mb.stdout:match("%x+")
    against = ("%s (merge base %s)"):format(ref, base:sub(1, 12))
  elseif head and head.code == 0 then
    base, against = "HEAD", "HEAD"
  end
  local list = {}
  if base then
    local d = git({ "diff", "--name-status", "-z", "-M", "--relative", base, "--" }, dir)
    if not d or d.code ~= 0 then return nil, ("--changed: git diff failed: %s"):format(d and last_line(d) or "?") end
    name_status(d.stdout or "", list)
  else
    -- no commit yet: everything there is new
    against = "an empty repository (no commit yet)"
    local s = git({ "ls-files", "-z", "--cached" }, dir)
    for f in ((s and s.stdout) or ""):gmatch("([^%z]+)%z") do list[#list + 1] = { path = f, status = "added" } end
  end
  local u = git({ "ls-files", "-z", "--others", "--exclude-standard" }, dir)
  if not u or u.code ~= 0 then return nil, ("--changed: git ls-files failed: %s"):format(u and last_line(u) or "?") end
  for f in (u.stdout or ""):gmatch("([^%z]+)%z") do list[#list + 1] = { path = f, status = "untracked" } end
  -- each path once (a file staged as added and changed again is one change)
  local seen, out = {}, {}
  for _, c in ipairs(list) do
    if not seen[c.path] then
      seen[c.path] = true
      out[#out + 1] = c
    end
  end
  table.sort(out, function(a, b) return a.path < b.path end)
  return out, against
end

-- ---- the selection ----

-- The module names a deleted Python file had: its dotted path from the
-- project root and every dotted tail of it (a package root or pytest's
-- rootdir insertion imports it by a tail), and its path without ".py".
local function names_of(path)
  local stem = path:match("^(.*)/__init__%.py$") or path:match("^(.*)%.py$")
  if not stem then return nil end
  local names = {}
  local dotted = stem:gsub("/", ".")
  names[#names + 1] = dotted
  for i = 1, #dotted do
    if dotted:byte(i) == 46 then names[#names + 1] = dotted:sub(i + 1) end
  end
  return names, stem
end

-- Whether `dir` is `path`'s directory or one above it ("." holds all).
local function holds(dir, path)
  return dir == "." or dir == "" or path:sub(1, #dir + 1) == dir .. "/"
end

-- Whether the components of a string literal are a tail of `path`'s:
-- "patients.json", "data/patients.json", "./data/patients.json".
local function names_path(literal, path)
  local lit = literal:gsub("^%./", ""):gsub("/+$", "")
  if lit == "" or lit:find("[%*%?%[{]") or #lit > #path then return false end
  if lit == path then return true end
  return path:sub(-#lit - 1) == "/" .. lit
end

---The selection for `changes` in the project at `root` (default "."):
---see the module's comment for the rules. `opts.files` gives the test
---files in scope (default: those pytest collects under cfg.tests, by its
---python_files), as paths under `root` spelled as cfg.tests spells them.
---@param cfg novapipe.Config
---@param changes novapipe.Change[]|string[] changes, or paths (each then "modified", or "deleted" when it is not there)
---@param opts? {root?: string, files?: string[], ignore?: string[]}
---@return novapipe.ChangedSelection
function M.select(cfg, changes, opts)
  opts = opts or {}
  local root = opts.root or "."
  local function at(path) return root == "." and path or (root .. "/" .. path) end
  local function rel(path)
    if root == "." then return path end
    return path:sub(1, #root + 1) == root .. "/" and path:sub(#root + 2) or path
  end
  -- What novapipe, pytest and coverage.py write as tests run is no change
  -- of the project's (where .gitignore does not already leave it out).
  local own = { ".novapipe/**", "**/__pycache__/**", "*.pyc", ".pytest_cache/**", ".coverage", ".coverage.*" }
  for _, d in ipairs({ cfg.results, cfg.coverage and cfg.coverage.html }) do
    if type(d) == "string" then own[#own + 1] = P.normalize(d) .. "/**" end
  end
  local list = {}
  for _, c in ipairs(changes) do
    if type(c) == "string" then
      c = { path = c, status = lfs.attributes(at(c)) and "modified" or "deleted" }
    end
    if not (M.matching(own, c.path) or fs.match("__pycache__/**", c.path)) then list[#list + 1] = c end
  end
  local tests_dir = P.normalize(cfg.tests)
  local tests = opts.files
  if not tests then
    tests = analyze.test_files(at(tests_dir), pytest_config.python_files(root)) or {}
  end
  tests = { table.unpack(tests) }
  table.sort(tests)
  local sel = { changes = list, tests = tests, files = {}, why = {}, always = {}, notes = {}, skipped = {} }
  local ignore = opts.ignore or (cfg.changed and cfg.changed.ignore) or M.DEFAULT_IGNORE

  -- The conservative rules that select everything come first: nothing
  -- else need be worked out.
  for _, c in ipairs(list) do
    local base = P.basename(c.path)
    local pattern = M.matching(M.EVERYTHING, c.path)
    local why
    if pattern then
      why = ("%s changed (%s): pytest's configuration, the project's dependencies or novapipe's can change how "
        .. "every test runs"):format(c.path, c.status)
    elseif base == "conftest.py" and holds(P.dirname(c.path), tests_dir .. "/x") then
      why = ("%s changed (%s): a conftest.py at the tests' root (%s) or above it applies to every test")
        :format(c.path, c.status, tests_dir)
    end
    if why then
      sel.everything = why
      break
    end
  end

  -- The graph: every test file and what it depends on, transitively; and
  -- the other way, who depends on each file.
  local a = analyze.new(cfg, at(tests_dir), root)
  local used_by = {}   -- file -> {{file = dependent, how, name}}
  local missing_mod = {} -- dotted name -> {file, ...} importers that name it but find nothing
  local missing_path = {}
  local dynamic = {}   -- file -> {via, line}
  local nodes, order = {}, {}
  local is_test = {}
  for _, t in ipairs(tests) do is_test[t] = true end
  local mode = collectgarbage("generational")
  do
    local pf <close> = a:prefetch(tests)
    local queue = {}
    for i, t in ipairs(tests) do queue[i] = t; nodes[t] = true; order[#order + 1] = t end
    local i = 1
    while i <= #queue do
      local f = queue[i]
      i = i + 1
      local edges, miss, dyn = a:dependencies(f, is_test[f])
      for _, e in ipairs(edges) do
        local users = used_by[e.file]
        if not users then
          users = {}
          used_by[e.file] = users
        end
        users[#users + 1] = { file = f, how = e.how, name = e.name }
        if not nodes[e.file] then
          nodes[e.file] = true
          order[#order + 1] = e.file
          queue[#queue + 1] = e.file
        end
      end
      for _, m in ipairs(miss.modules) do
        local l = missing_mod[m] or {}
        missing_mod[m] = l
        l[#l + 1] = f
      end
      for _, p in ipairs(miss.paths) do
        local l = missing_path[p] or {}
        missing_path[p] = l
        l[#l + 1] = f
      end
      if #dyn > 0 then dynamic[f] = dyn[1] end
    end
  end
  collectgarbage(mode)

  -- Sources: the files a change reaches directly, each with how its
  -- chain starts (a deleted file, a data file, a non-literal import come
  -- before the first file of the graph); then a walk up the dependents
  -- gives each test its shortest chain.
  local sources = {}   -- {file, virtual?, how?}
  local function source(file, virtual, how) sources[#sources + 1] = { file = file, virtual = virtual, how = how } end
  for f, d in pairs(dynamic) do
    source(f, ("%s(...) at line %d, an import of a name no static analysis follows"):format(d.via, d.line), "in")
  end
  table.sort(sources, function(x, y) return x.file < y.file end)
  local n_always = #sources
  local text_of = {}
  local function text(file)
    local t = text_of[file]
    if t == nil then
      t = { text = fs.read(file) or "" }
      text_of[file] = t
    end
    return t
  end
  -- The files of the graph that name `path` by a string literal.
  local function readers(path)
    local found = {}
    local base = P.basename(path)
    for _, f in ipairs(order) do
      local t = text(f)
      if t.text:find(base, 1, true) then
        t.list = t.list or pyscan.strings(t.text)
        for _, lit in ipairs(t.list) do
          if not lit.fstring and names_path(lit.value, path) then
            found[#found + 1] = { file = f, line = lit.line }
            break
          end
        end
      end
    end
    return found
  end
  if not sel.everything then
    for _, c in ipairs(list) do
      local path = at(c.path)
      local gone = c.status == "deleted"
      local reached = false
      local python = c.path:match("%.py$") ~= nil
      if not gone and nodes[path] then
        source(path)
        reached = true
      end
      if gone and python then
        local names, stem = names_of(path)
        local by, seen = {}, {}
        for _, n in ipairs(names) do
          for _, f in ipairs(missing_mod[n] or {}) do by[#by + 1] = { f, n } end
        end
        for _, f in ipairs(missing_path[stem] or {}) do by[#by + 1] = { f, rel(stem) } end
        for _, b in ipairs(by) do
          if not seen[b[1]] then
            seen[b[1]] = true
            source(b[1], c.path, ("%s, imported as %s by"):format(c.to and ("renamed to " .. c.to) or "deleted", b[2]))
            reached = true
          end
        end
        local base = P.basename(c.path)
        if base == "conftest.py" or base == "__init__.py" then
          local dir = P.dirname(path)
          for _, t in ipairs(tests) do
            if holds(dir, t) then
              source(t, c.path, "deleted; it applied to")
              reached = true
            end
          end
        end
        if not reached then
          sel.notes[#sel.notes + 1] = ("%s (%s): nothing a test runs imports it"):format(c.path,
            c.to and ("renamed to " .. c.to) or c.status)
        end
      elseif not python then
        for _, r in ipairs(readers(c.path)) do
          source(r.file, c.path, ("%s; named at line %d of"):format(c.status, r.line))
          reached = true
        end
        if not reached then
          local pattern = M.matching(ignore, c.path)
          if pattern then
            sel.notes[#sel.notes + 1] = ("%s (%s): ignored (changed.ignore '%s')"):format(c.path, c.status, pattern)
          else
            sel.everything = ("%s changed (%s): it is not Python and no test names it, so what it changes cannot be "
              .. "known (if no test reads it, add a pattern for it to changed.ignore in novapipe.lua)")
              :format(c.path, c.status)
            break
          end
        end
      elseif not reached then
        sel.notes[#sel.notes + 1] = ("%s (%s): no test's imports, conftest files, plugins or fixtures reach it")
          :format(c.path, c.status)
      end
    end
  end

  if sel.everything then
    for _, t in ipairs(tests) do
      sel.files[#sel.files + 1] = t
      sel.why[t] = sel.everything
    end
    return sel
  end

  -- Breadth first from every source: each test's shortest chain.
  local via = {}       -- file -> {prev = file or nil, how, name, source}
  local queue = {}
  for i, s in ipairs(sources) do
    if not via[s.file] then
      via[s.file] = { source = s, always = i <= n_always }
      queue[#queue + 1] = s.file
    end
  end
  local i = 1
  while i <= #queue do
    local f = queue[i]
    i = i + 1
    local users = used_by[f]
    if users then
      table.sort(users, function(x, y) return x.file < y.file end)
      for _, u in ipairs(users) do
        if not via[u.file] then
          via[u.file] = { prev = f, how = u.how, name = u.name, always = via[f].always }
          queue[#queue + 1] = u.file
        end
      end
    end
  end
  -- The chain from a change to test t: each file shown, then what it is
  -- to the next in parentheses; a file between is shown by the dotted
  -- name the next one imports it by.
  local function chain(t)
    local back = { t }
    while via[back[#back]].prev do back[#back + 1] = via[back[#back]].prev end
    local src = via[back[#back]].source
    local parts = {}
    if src.virtual then parts[1] = ("%s (%s)"):format(src.virtual, src.how) end
    for k = #back, 1, -1 do
      local node = back[k]
      local shown
      if k == 1 or (k == #back and not src.virtual) then
        shown = rel(node)
      else
        shown = via[back[k - 1]].name or rel(node)
      end
      if k > 1 then shown = ("%s (%s)"):format(shown, via[back[k - 1]].how) end
      parts[#parts + 1] = shown
    end
    return table.concat(parts, " -> ")
  end
  for _, t in ipairs(tests) do
    if via[t] then
      sel.files[#sel.files + 1] = t
      sel.why[t] = chain(t)
      if via[t].always then sel.always[t] = true end
    else
      sel.skipped[#sel.skipped + 1] = t
    end
  end
  return sel
end

---The selection's files under `dir` (a tier's directory).
---@param sel novapipe.ChangedSelection
---@param dir string
---@return string[] selected
---@return integer left the test files under dir not selected
function M.under(sel, dir)
  local out, left = {}, 0
  for _, f in ipairs(sel.files) do
    if holds(dir, f) then out[#out + 1] = f end
  end
  for _, f in ipairs(sel.skipped) do
    if holds(dir, f) then left = left + 1 end
  end
  return out, left
end

---The selection as the run record keeps it: what was compared, the
---changes, why everything was selected (or nil), how many test files were
---in scope, and the selected ones (the audit entry keeps the counts).
---@param sel novapipe.ChangedSelection
---@param against? string what was compared (M.git_changes)
---@return table
function M.summary(sel, against)
  local changes = {}
  for i, c in ipairs(sel.changes) do changes[i] = { path = c.path, status = c.status, from = c.from } end
  local always = 0
  for _ in pairs(sel.always) do always = always + 1 end
  return { against = against, changes = changes, everything = sel.everything, tests = #sel.tests,
           selected = { table.unpack(sel.files) }, always = always }
end

local function plural(n, word)
  return ("%d %s%s"):format(n, word, n == 1 and "" or "s")
end

---The line that says what the selection is ("3 of 9 test files affected
---by 2 changed files, against HEAD"), or, when nothing is, that no test is
---affected.
---@param sel novapipe.ChangedSelection
---@param against? string
---@return string
function M.headline(sel, against)
  local vs = against and (", against " .. against) or ""
  if sel.everything then
    return ("every test file (%d): %s"):format(#sel.tests, sel.everything)
  end
  if #sel.files == 0 then
    return ("no test is affected by the change: %s, none reaches a test%s"):format(plural(#sel.changes, "changed file"), vs)
  end
  return ("%d of %s affected by %s%s"):format(#sel.files, plural(#sel.tests, "test file"),
    plural(#sel.changes, "changed file"), vs)
end

---The stage that says what --changed selected (run_tests puts it first):
---its summary is M.headline; its details, with `explain`, each change, each
---selected file with its chain, and each file left out; its result keeps
---the selection for the run record (`changed`, M.summary). Nothing
---affected is an "empty" stage: the run passes (exit 0), saying so, as no
---test could fail for this change. It never prints: reporters show it.
---@param sel novapipe.ChangedSelection
---@param against? string
---@param explain? boolean
---@param tiers? {name: string, dir: string}[] the tiers in scope, to count what each leaves out
---@return novapipe.Stage
function M.stage(sel, against, explain, tiers)
  return require("novapipe.pipeline").stage { name = "changed", run = function()
    local details = {}
    local rel = function(f) return f end
    if explain then
      details[#details + 1] = ("changed (%s):"):format(against or "as given")
      for _, c in ipairs(sel.changes) do
        details[#details + 1] = ("  %s %s%s"):format(c.status, rel(c.path), c.from and (" (from " .. c.from .. ")") or "")
      end
      if #sel.changes == 0 then details[#details + 1] = "  nothing" end
      if sel.everything then
        details[#details + 1] = "every test file is selected: " .. sel.everything
      else
        if #sel.files > 0 then details[#details + 1] = "selected:" end
        for _, f in ipairs(sel.files) do
          details[#details + 1] = ("  %s%s"):format(f, sel.always[f] and " (always)" or "")
          details[#details + 1] = "    " .. sel.why[f]
        end
        for _, n in ipairs(sel.notes) do details[#details + 1] = "note: " .. n end
      end
    end
    if not sel.everything and #sel.skipped > 0 then
      local by = {}
      for _, t in ipairs(tiers or {}) do
        local _, left = M.under(sel, t.dir)
        if left > 0 then by[#by + 1] = ("%s %d"):format(t.name, left) end
      end
      details[#details + 1] = ("left out, as nothing they depend on changed: %s%s"):format(
        plural(#sel.skipped, "test file"), #by > 0 and (" (" .. table.concat(by, ", ") .. ")") or "")
      if explain then
        for _, f in ipairs(sel.skipped) do details[#details + 1] = "  " .. f end
      end
    end
    local result = { status = "passed", summary = M.headline(sel, against), details = #details > 0 and details or nil,
                     changed = M.summary(sel, against) }
    if #sel.files == 0 then
      -- passed (exit 0), saying that nothing ran: no test can fail for
      -- this change, as pytest-testmon has it; never a silent green
      result.status, result.summary, result.reason = "empty", nil, M.headline(sel, against)
    end
    return result
  end }
end

return M
