-- Moving test files into their tiers, safely.
--
--   plan     what analyze says, turned into moves: each test file goes to
--            the directory of the tier its category names (a custom tier's
--            too; a file with no tests stays), unless it is in a configured
--            tier's directory already: the team put it there, and it stays
--            (--reclassify moves it). It keeps its sub-path below its first
--            directory (unit/api/test_x.py -> venv/api/test_x.py), or with
--            layout = "flatten" goes straight into the tier; where that
--            place exists or another file would share it, it keeps more of
--            its path, its whole path below the tests directory last
--            (unit/test_models.py -> standalone/unit/test_models.py).
--            Nothing is ever overwritten, nor moved through a symbolic link.
--            What a moved test needs goes with it, or it stays, with the
--            reason: the fixtures of a conftest.py that would not be in
--            scope (copied or merged: novapipe.migrate.fixtures), the data
--            files it reads through __file__ (novapipe.migrate.data), a
--            helper it imports relatively (it moves along when every file
--            importing it goes to the same directory); imports that would
--            no longer resolve, relative or absolute, are rewritten on the
--            scanner's tokens (novapipe.migrate.imports).
--   journal  before anything is touched, the operations are written
--            (atomically) to the undo record, exact (names and contents as
--            they are, for byte for byte), and to the journal beside it,
--            masked as everything novapipe writes (contents shown as their
--            size); each operation is idempotent, so a
--            migration killed at any moment is completed by --execute or
--            undone, byte for byte, by --undo: both first remove the
--            temporary files of the atomic writes a kill cut short, and
--            --undo removes the bytecode Python wrote for the moved files in
--            the directories it made, then those directories.
--   verify   novapipe.migrate.verify: pytest --collect-only before and
--            after; what it proves and what it cannot.
local analyze = require "novapipe.analyze"
local data = require "novapipe.migrate.data"
local fixtures = require "novapipe.migrate.fixtures"
local fs = require "novapipe.fs"
local imports = require "novapipe.migrate.imports"
local json = require "novapipe.json"
local lfs = require "lfs"
local path = require "novapipe.path"
local process = require "novapipe.process"
local raw = require("novapipe.run.sink").raw

local M = {}

---The undo record: what --undo and --execute read.
M.UNDO = ".novapipe/migration.undo"
---The journal a person reads (masked): M.journal_of(M.UNDO).
M.JOURNAL = ".novapipe/migration.json"

---The journal beside an undo record.
---@param undo string
---@return string
function M.journal_of(undo)
  return (undo:gsub("%.undo$", "")) .. ".json"
end

local dirname, basename = path.dirname, path.basename

local function is_file(p) return lfs.attributes(p, "mode") == "file" end
local function is_dir(p) return lfs.attributes(p, "mode") == "directory" end
-- Anything there, a dangling link included.
local function exists(p) return lfs.symlinkattributes(p) ~= nil end

local above = require("novapipe.path").below -- dir is p's directory or one above it

local sorted_keys = require("novapipe._tables").sorted_keys

-- A tier's directory under root, as paths are spelled.
local function tier_path(root, tier)
  return root .. "/" .. (tier.dir:gsub("/+$", ""))
end

-- The configured tier whose directory holds file (the deepest), or nil.
local function home_tier(tiers, root, file)
  local best, len = nil, -1
  for _, t in ipairs(tiers) do
    local dir = tier_path(root, t)
    if above(dir, file) and #dir > len then best, len = t, #dir end
  end
  return best
end

-- The symbolic link on the way from below root down to p (p included), or nil.
local function link_on_way(root, p)
  local d = p
  while above(root, d) do
    if lfs.symlinkattributes(d, "mode") == "link" then return d end
    d = dirname(d)
  end
end

-- Which files under root import each module file relatively or by its
-- module path: path -> {importer = true}.
local function importers(a, root, bases, pyfiles)
  local map = {}
  for _, file in ipairs(pyfiles) do
    for _, imp in ipairs(a:scan(file).imports or {}) do
      local targets = imp.level > 0 and a:relative_files(file, imp) or { imports.module_file(root, bases, imp.module) }
      for _, t in ipairs(targets) do
        map[t] = map[t] or {}
        map[t][file] = true
      end
    end
  end
  return map
end

-- Where a file may go in its tier, one place for each level of
-- preference (two levels may name the same place): flatten: its name;
-- then its path below its first directory (or below the tier it is in);
-- then its whole path below the tests directory. A collision moves the
-- files in it to their next level together, so files that collide with
-- nothing stay at the first.
local function candidates(tier_dir, rel, sub, layout)
  local list = {}
  if layout == "flatten" then list[1] = tier_dir .. "/" .. basename(rel) end
  list[#list + 1] = tier_dir .. "/" .. sub
  list[#list + 1] = tier_dir .. "/" .. rel
  return list
end

-- Gives each mover a destination (m.to), or a reason it has none
-- (m.blocked): where a place exists or two would share it, those that
-- have a next candidate take it; one that has none keeps the place when
-- it is free and it is alone there, else it stays.
local function resolve(movers)
  for _, m in ipairs(movers) do
    m.k, m.blocked = 1, nil
  end
  local changed = true
  while changed do
    changed = false
    local at = {}
    for _, m in ipairs(movers) do
      if not m.blocked then
        local d = m.candidates[m.k]
        at[d] = at[d] or {}
        table.insert(at[d], m)
      end
    end
    for d, group in pairs(at) do
      local taken = exists(d)
      if #group > 1 or taken then
        local stuck = 0
        for _, m in ipairs(group) do
          if m.k == #m.candidates then stuck = stuck + 1 end
        end
        for _, m in ipairs(group) do
          if m.k < #m.candidates then
            m.k, changed = m.k + 1, true
          elseif taken then
            m.blocked, changed = ("%s exists: nothing is overwritten"):format(d), true
          elseif stuck > 1 then
            m.blocked, changed = ("another file would also go to %s"):format(d), true
          end
        end
      end
    end
  end
  for _, m in ipairs(movers) do
    m.to = not m.blocked and m.candidates[m.k] or nil
  end
end

-- Why a test cannot move wherever it goes, or nil; notes on the mover
-- what it reads through __file__ (m.data) and its relative imports.
local function static_blocker(a, m)
  if lfs.symlinkattributes(m.from, "mode") == "link" then return "it is a symbolic link, which is not moved" end
  local facts = a:scan(m.from)
  if facts.error or facts.read_error then
    return nil -- a file that does not parse is moved as unknown says; pytest will tell
  end
  local line = data.file_line(m.from, facts)
  if line then
    local items, why = data.items(m.from, line)
    if not items then return why end
    m.data = items
  end
  m.relatives = {}
  for _, imp in ipairs(facts.imports or {}) do
    if imp.level > 0 then
      local targets = a:relative_files(m.from, imp)
      if #targets == 0 then
        return ("it imports %s%s relatively (line %d), and that cannot be found"):format(
          string.rep(".", imp.level), imp.module, imp.line)
      end
      local beside = imp.level == 1 and imp.module ~= ""
      for _, t in ipairs(targets) do
        if dirname(t) ~= dirname(m.from) or basename(t) == "__init__.py" then beside = false end
      end
      m.relatives[#m.relatives + 1] = { imp = imp, targets = targets, beside = beside }
    end
  end
  return nil
end

-- One attempt at a plan with the files of `forced` staying: the plan, or
-- nil and the files that must stay too (path -> why), found on the way.
local function attempt(s, forced)
  local a, root = s.a, s.root
  local movers, stays, more = {}, {}, {}
  for _, m in ipairs(s.movers) do
    if not forced[m.from] then movers[#movers + 1] = m end
  end
  resolve(movers)
  local kept, mover_of, claimed = {}, {}, {}
  for _, m in ipairs(movers) do
    local link = m.to and link_on_way(root, dirname(m.to))
    if m.blocked then
      stays[#stays + 1] = { path = m.from, why = m.blocked }
    elseif link then
      stays[#stays + 1] = { path = m.from, why = ("%s is a symbolic link: nothing is moved through one"):format(link) }
    else
      kept[#kept + 1] = m
      mover_of[m.from] = m
      claimed[m.to] = true
    end
  end
  movers = kept

  -- Helpers imported relatively from beside a moving test move along when
  -- every file importing them goes to the same directory, they import
  -- nothing relatively themselves, and their place is free.
  local helpers = {}
  for _, m in ipairs(movers) do
    for _, r in ipairs(m.relatives or {}) do
      local h = r.beside and #r.targets == 1 and r.targets[1]
      if h and not s.tests[h] then
        local target = dirname(m.to) .. "/" .. basename(h)
        if not helpers[h] then helpers[h] = { to = target, dir = dirname(m.to), tier = m.tier }
        elseif helpers[h].to ~= target then helpers[h].to = false end
      end
    end
  end
  local helper_moves = {}
  for _, h in ipairs(sorted_keys(helpers)) do
    local info = helpers[h]
    local ok = info.to and not forced[h]
    if ok then
      s.users = s.users or importers(a, root, s.bases, s.pyfiles)
      for importer in pairs(s.users[h] or {}) do
        if not mover_of[importer] or dirname(mover_of[importer].to) ~= info.dir then ok = false end
      end
      for _, imp in ipairs(a:scan(h).imports or {}) do
        if imp.level > 0 then ok = false end
      end
      if exists(info.to) or claimed[info.to] then ok = false end
    end
    if ok then
      claimed[info.to] = true
      helper_moves[#helper_moves + 1] = { from = h, to = info.to, category = "helper", tier = info.tier,
                                          reasons = { "a helper the moved tests import" } }
    end
  end

  -- Data files read through __file__ travel with their tests.
  s.users_of = s.users_of or data.users(s.pyfiles)
  local data_moves, data_to = {}, {}
  for _, m in ipairs(movers) do
    for _, it in ipairs(m.data or {}) do
      local to = dirname(m.to) .. "/" .. it.rel
      local why
      for _, u in ipairs(s.users_of(it)) do
        local mu = mover_of[u]
        if not why and u ~= m.from then
          if not mu then
            why = ("it reads %s through __file__, and %s, which stays, names it too"):format(it.rel, u)
          elseif dirname(u) ~= dirname(m.from) then
            why = ("it reads %s through __file__, and %s names it too from another directory"):format(it.rel, u)
          elseif dirname(mu.to) ~= dirname(m.to) then
            why = ("it reads %s through __file__, and %s, which names it too, goes to %s"):format(it.rel, u,
              dirname(mu.to))
          end
        end
      end
      if not why and not data_to[it.path] then
        local link = link_on_way(root, dirname(to))
        if exists(to) or claimed[to] then
          why = ("it reads %s through __file__, and %s exists: nothing is overwritten"):format(it.rel, to)
        elseif link then
          why = ("it reads %s through __file__, and %s is a symbolic link"):format(it.rel, link)
        else
          data_to[it.path], claimed[to] = to, true
          data_moves[#data_moves + 1] = { from = it.path, to = to, category = "data", tier = m.tier,
                                          reasons = { "read through __file__ by the moved tests" } }
        end
      end
      if why then
        more[m.from] = why
        break
      end
    end
  end

  -- The directories to make: each default tier's, then each level the
  -- moves need, with an __init__.py where the level it mirrors has one
  -- (and in a new tier).
  local mkdirs, creates, init, made = {}, {}, {}, {}
  local function need(dir, with_init)
    if made[dir] or is_dir(dir) then return end
    need(dirname(dir), with_init)
    made[dir] = true
    mkdirs[#mkdirs + 1] = dir
    if with_init then
      creates[#creates + 1] = { path = dir .. "/__init__.py", content = "" }
      init[dir] = true
    end
  end
  local function place(dest_dir, src_dir, tier)
    local top = tier_path(root, tier)
    need(top, true)
    local levels, d, src = {}, dest_dir, src_dir
    while above(top, d) do
      table.insert(levels, 1, { d, src })
      d, src = dirname(d), dirname(src)
    end
    for _, l in ipairs(levels) do need(l[1], is_file(l[2] .. "/__init__.py")) end
  end
  for _, t in ipairs(s.cfg.tiers) do
    if require("novapipe.config").is_default_tier(t) then need(tier_path(root, t), true) end
  end
  local all = {}
  for _, list in ipairs({ movers, helper_moves, data_moves }) do
    for _, m in ipairs(list) do
      all[#all + 1] = m
      place(dirname(m.to), dirname(m.from), m.tier)
    end
  end

  -- Imports, relative and absolute, that the moves would break.
  local final = {}
  for _, list in ipairs({ movers, helper_moves }) do
    for _, m in ipairs(list) do final[m.from] = m.to end
  end
  local function is_pkg(dir) return init[dir] or is_file(dir .. "/__init__.py") end
  local edits, import_stays = imports.plan({ a = a, root = root, bases = s.bases, final = final, is_pkg = is_pkg },
    s.pyfiles)
  for p, why in pairs(import_stays) do
    if not more[p] then more[p] = why end
  end

  -- The fixtures the moved tests need where they go.
  local texts = {}
  local function content(file)
    if not edits[file] then return nil end
    if texts[file] == nil then
      local old = fs.read(file)
      texts[file] = old and imports.apply(old, edits[file]) or false
    end
    return texts[file] or nil
  end
  local function rewrite(file, imp)
    for _, e in ipairs(edits[file] or {}) do
      if e.first == imp.ref_first then return e.text end
    end
    return imp.module
  end
  local conftest_ops, fixture_stays = fixtures.plan({ a = a, root = root, rewrite = rewrite, content = content }, movers)
  for p, why in pairs(fixture_stays) do
    if not more[p] then more[p] = why end
  end
  if next(more) then return nil, more end

  -- The plan.
  local plan = { moves = {}, stays = stays, mkdirs = mkdirs, creates = creates, copies = {}, rewrites = {} }
  for _, m in ipairs(all) do
    plan.moves[#plan.moves + 1] = { from = m.from, to = m.to, category = m.category, reasons = m.reasons }
  end
  local merged = {}
  for _, op in ipairs(conftest_ops) do
    if op.kind == "copy" then
      plan.copies[#plan.copies + 1] = { from = op.from, path = op.path, content = op.content }
    elseif op.kind == "create" then
      plan.copies[#plan.copies + 1] = { from = op.copy, path = op.path, content = op.content, merged = op.from,
                                        fixtures = op.fixtures }
    else
      merged[op.path] = true
      plan.rewrites[#plan.rewrites + 1] = { path = op.path, old = op.old, new = op.new, merged = op.from,
                                            fixtures = op.fixtures, imports = edits[op.path] }
    end
  end
  for _, file in ipairs(sorted_keys(edits)) do
    local at = final[file] or file
    if not merged[at] then
      local old, rerr = fs.read(file)
      if not old then return nil, nil, rerr end
      local new = content(file)
      if new ~= old then
        plan.rewrites[#plan.rewrites + 1] = { path = at, old = old, new = new, imports = edits[file] }
      end
    end
  end
  return plan
end

---@class novapipe.MigrationPlan
---@field moves {from: string, to: string, category: string, reasons: string[]}[] tests, then helpers and data
---@field stays {path: string, why: string}[]
---@field notes string[]
---@field mkdirs string[]
---@field creates {path: string, content: string}[] __init__.py files
---@field copies {from?: string, path: string, content: string, merged?: string[], fixtures?: string[]}[] conftest.py files made
---@field rewrites {path: string, old: string, new: string, imports?: table[], merged?: string[], fixtures?: string[]}[]
---@field with_tests integer test files with tests in them

---Plans a migration of the tests under root.
---@param cfg novapipe.Config
---@param root string
---@param opts {layout?: "keep"|"flatten", unknown_to?: string, reclassify?: boolean}
---@return novapipe.MigrationPlan|nil plan
---@return string? error
function M.plan(cfg, root, opts)
  root = root:gsub("/+$", "")
  if root:sub(1, 1) ~= "/" then root = path.normalize(root) end
  local layout = opts.layout or "keep"
  local unknown_to = opts.unknown_to or "venv"
  local by_name = {}
  for _, t in ipairs(cfg.tiers) do by_name[t.name] = t end
  local files, ferr = analyze.test_files(root, require("novapipe.pytest_config").python_files())
  if not files then return nil, ferr end
  local pyfiles, werr = fs.walk(root, { include = { "*.py" }, exclude = { "__pycache__", ".*" } })
  if not pyfiles then return nil, werr end
  for i, rel in ipairs(pyfiles) do pyfiles[i] = root .. "/" .. rel end
  local a = analyze.new(cfg, root)
  local s = { cfg = cfg, a = a, root = root, movers = {}, tests = {}, pyfiles = pyfiles,
              bases = imports.bases(root, cfg.analyze.roots) }
  local statics, notes, with_tests = {}, {}, 0
  for _, file in ipairs(files) do
    s.tests[file] = true
    local rel = file:sub(#root + 2)
    local home = home_tier(cfg.tiers, root, file)
    local d = a:classify(file)
    local category = d.category
    local function stay(why) statics[#statics + 1] = { path = file, why = why } end
    if category ~= "empty" then with_tests = with_tests + 1 end
    if category == "empty" then
      if not home then stay("no tests in it: it stays where it is") end
    elseif home and category == home.name then
      -- in its tier already
    elseif home and category == "unknown" then
      if opts.reclassify then
        stay(("analyze cannot classify it (%s): it stays in the %s tier"):format(d.reasons[1] or "", home.name))
      end
    elseif home and not opts.reclassify then
      stay(("it is in the %s tier's directory, where the team put it (analyze says %s; --reclassify moves it)")
        :format(home.name, category))
    else
      if category == "unknown" then
        notes[#notes + 1] = ("%s is unknown (%s): it goes to %s"):format(rel, d.reasons[1] or "", unknown_to)
        category = unknown_to
      end
      local tier = by_name[category]
      if not tier then
        stay(("no tier '%s' is configured"):format(category))
      else
        local sub = home and file:sub(#tier_path(root, home) + 2) or rel:match("^[^/]+/(.+)$") or rel
        local m = { from = file, category = category, reasons = d.reasons, tier = tier,
                    candidates = candidates(tier_path(root, tier), rel, sub, layout) }
        local why = static_blocker(a, m)
        if why then stay(why) else s.movers[#s.movers + 1] = m end
      end
    end
  end
  local forced = {}
  for _ = 1, #s.movers + #pyfiles + 1 do
    local plan, more, err = attempt(s, forced)
    if err then return nil, err end
    if plan then
      for _, st in ipairs(statics) do plan.stays[#plan.stays + 1] = st end
      for _, p in ipairs(sorted_keys(forced)) do plan.stays[#plan.stays + 1] = { path = p, why = forced[p] } end
      table.sort(plan.stays, function(x, y) return x.path < y.path end)
      plan.notes, plan.with_tests = notes, with_tests
      return plan
    end
    local progressed = false
    for p, why in pairs(more) do
      if not forced[p] then forced[p], progressed = why, true end
    end
    if not progressed then error("migrate: a file must stay that stays already: " .. next(more)) end
  end
  error("migrate: the plan does not settle")
end

-- ------------------------------------------------------------------
-- The journal and its operations

---The operations of a plan, in order.
---@param plan novapipe.MigrationPlan
---@param use_git boolean move tracked files with git mv
---@return table[]
function M.operations(plan, use_git)
  local ops = {}
  for _, d in ipairs(plan.mkdirs) do ops[#ops + 1] = { op = "mkdir", path = d } end
  for _, c in ipairs(plan.creates) do ops[#ops + 1] = { op = "create", path = c.path, content = c.content } end
  for _, c in ipairs(plan.copies) do ops[#ops + 1] = { op = "create", path = c.path, content = c.content } end
  for _, m in ipairs(plan.moves) do ops[#ops + 1] = { op = "move", from = m.from, to = m.to, git = use_git } end
  for _, r in ipairs(plan.rewrites) do ops[#ops + 1] = { op = "rewrite", path = r.path, old = r.old, new = r.new } end
  return ops
end

local function git(args, cwd)
  local argv = { "git" }
  for _, a in ipairs(args) do argv[#argv + 1] = a end
  return process.run(argv, { cwd = cwd, stdin = "null" })
end

---Whether path is a file git tracks (so a move can be `git mv`).
local function tracked(path)
  local r = git({ "ls-files", "--error-unmatch", "--", basename(path) }, dirname(path))
  return r and r.code == 0
end

---Whether dir is inside a git work tree.
function M.in_git(dir)
  local r = git({ "rev-parse", "--is-inside-work-tree" }, dir)
  return r and r.code == 0 and (r.stdout or ""):match("true") ~= nil
end

-- Moves a file or a directory (git mv when it is tracked), never over
-- anything and never through a link; true, or nil and an error.
local function move(from, to, use_git)
  if use_git and tracked(from) then
    -- git mv refuses a destination that exists; the directory on the way
    -- must hold no link (mkdir_p refuses one, and the directory is there)
    local ok, err = fs.mkdir_p(dirname(to), "0755")
    if not ok then return nil, ("cannot move %s to %s: %s"):format(from, to, err) end
    local r = not exists(to) and git({ "mv", "--", from, to })
    if r and r.code == 0 then return true end
  end
  local ok, err = fs.move(from, to)
  if not ok then return nil, ("cannot move %s to %s: %s"):format(from, to, err) end
  return true
end

-- Replaces a file's content atomically, keeping its permission bits;
-- true, or nil and an error.
local function replace(path, content)
  local perm = lfs.attributes(path, "permissions") or "rw-r--r--"
  local mode = 0
  for i = 1, 9 do
    if perm:sub(i, i) ~= "-" then mode = mode | (1 << (9 - i)) end
  end
  return raw.atomic_write(path, content, mode)
end

-- The entries of a directory (not . and ..), or nil and an error.
local function entries(dir)
  local ok, iter, state = pcall(lfs.dir, dir)
  if not ok then return nil, ("cannot read the directory %s: %s"):format(dir, iter) end
  local list = {}
  for e in iter, state do
    if e ~= "." and e ~= ".." then list[#list + 1] = e end
  end
  return list
end

-- Removes the files fs.atomic_write leaves beside `path` when it is killed
-- midway: <name>.tmp.<8 hex digits> (the name cut at 200 bytes, as it cuts
-- it), regular files holding the start of one of `contents` (any, when nil:
-- the journal's). Returns true, or nil and an error.
local function remove_temporaries(path, contents)
  local dir, name = dirname(path), basename(path):sub(1, 200)
  if not is_dir(dir) then return true end
  local list, err = entries(dir)
  if not list then return nil, err end
  for _, e in ipairs(list) do
    local p = dir .. "/" .. e
    if e:sub(1, #name + 5) == name .. ".tmp." and e:sub(#name + 6):match("^%x%x%x%x%x%x%x%x$")
        and lfs.symlinkattributes(p, "mode") == "file" then
      local ours = contents == nil
      local text = contents and fs.read(p)
      for _, c in ipairs(contents or {}) do
        if text and c:sub(1, #text) == text then ours = true end
      end
      if ours then
        local ok, rerr = os.remove(p)
        if not ok then return nil, rerr end
      end
    end
  end
  return true
end

---Removes the temporary files interrupted writes of a journal's
---operations (and of the undo record and the journal themselves) left.
---@param path string the undo record's
---@param journal? table nil when only the journal's own are left
---@return true|nil ok
---@return string? error
function M.remove_journal_temporaries(path, journal)
  local ok, err = remove_temporaries(path)
  if ok then ok, err = remove_temporaries(M.journal_of(path)) end
  for _, op in ipairs(journal and journal.ops or {}) do
    if not ok then break end
    if op.op == "create" then
      ok, err = remove_temporaries(op.path, { op.content })
    elseif op.op == "rewrite" then
      ok, err = remove_temporaries(op.path, { op.new, op.old })
    end
  end
  if not ok then return nil, err end
  return true
end

-- Removes from dir/__pycache__ the bytecode Python wrote for the modules
-- `names` (the files migrate put in dir), then __pycache__ if that empties
-- it. Returns true, or nil and an error.
local function remove_bytecode(dir, names)
  local cache = dir .. "/__pycache__"
  if lfs.symlinkattributes(cache, "mode") ~= "directory" then return true end
  local list, err = entries(cache)
  if not list then return nil, err end
  local left = #list
  for _, e in ipairs(list) do
    -- test_x.cpython-311.pyc, test_x.cpython-311-pytest-8.3.2.pyc, and
    -- the temporary files of their writes (test_x.cpython-311.pyc.1234)
    local stem = e:match("^([^.]+)%.")
    if stem and names[stem .. ".py"] and e:find(".pyc", #stem + 1, true)
        and lfs.symlinkattributes(cache .. "/" .. e, "mode") == "file" then
      local ok, rerr = os.remove(cache .. "/" .. e)
      if not ok then return nil, rerr end
      left = left - 1
    end
  end
  if left == 0 then
    local ok, rerr = lfs.rmdir(cache)
    if not ok then return nil, ("cannot remove %s: %s"):format(cache, rerr) end
  end
  return true
end

-- Applies one operation if it is not applied yet (idempotent); true, or
-- nil and an error.
local function apply(op)
  if op.op == "mkdir" then
    if not is_dir(op.path) then return fs.mkdir_p(op.path, "0755") end
  elseif op.op == "create" then
    if not exists(op.path) then return raw.atomic_write(op.path, op.content, "0644") end
  elseif op.op == "move" then
    if exists(op.from) and not exists(op.to) then return move(op.from, op.to, op.git) end
  elseif op.op == "rewrite" then
    if fs.read(op.path) == op.old then return replace(op.path, op.new) end
  end
  return true
end

-- Reverts one operation if it is applied (idempotent); `placed` maps each
-- directory migrate made to the names of the files it put there. True, or
-- nil and an error.
local function revert(op, placed)
  if op.op == "mkdir" then
    if is_dir(op.path) then
      local ok, err = remove_bytecode(op.path, placed[op.path] or {})
      if not ok then return nil, err end
      local list, lerr = entries(op.path)
      if not list then return nil, lerr end
      if #list == 0 then
        local rok, rerr = lfs.rmdir(op.path)
        if not rok then return nil, ("cannot remove %s: %s"):format(op.path, rerr) end
      end
    end
  elseif op.op == "create" then
    if fs.read(op.path) == op.content then return os.remove(op.path) end
  elseif op.op == "move" then
    if exists(op.to) and not exists(op.from) then return move(op.to, op.from, op.git) end
  elseif op.op == "rewrite" then
    if fs.read(op.path) == op.new then return replace(op.path, op.old) end
  end
  return true
end

-- Fault injection for the crash specs: NOVAPIPE_FAULT_KILL_AFTER_OPS=N
-- ends novapipe with SIGKILL after N operations.
local function maybe_crash(n)
  local after = tonumber(os.getenv("NOVAPIPE_FAULT_KILL_AFTER_OPS") or "")
  if after and n >= after then
    local proc = require "novapipe.proc"
    proc.signal(proc.self().pid, "KILL")
  end
end

-- The journal a person reads: the undo record with each content shown as
-- its size (the sink masks the rest), marked as having an undo record.
local function readable(journal)
  local ops = {}
  for i, op in ipairs(journal.ops) do
    local o = {}
    for k, v in pairs(op) do
      o[k] = (k == "content" or k == "old" or k == "new") and ("%d bytes"):format(#v) or v
    end
    ops[i] = o
  end
  local out = {}
  for k, v in pairs(journal) do out[k] = v end
  out.ops, out.undo_record = ops, true
  return out
end

---Reads the undo record at `path`: the record, or nil when there is no
---migration; raises a usage error when only its journal is left. A
---journal an earlier novapipe wrote (exact, without an undo record) is
---read as the record.
---@param path string
---@return table|nil
function M.read_journal(path)
  local record, err = json.read(path)
  if record then return record end
  if lfs.symlinkattributes(path, "mode") then
    require("novapipe._errors").usage("%s: the undo record cannot be read (%s); restore it, or the tree from "
      .. "version control", path, err)
  end
  local view = M.journal_of(path)
  local journal = lfs.attributes(view, "mode") == "file" and json.read(view)
  if not journal then return nil end
  if journal.undo_record then
    require("novapipe._errors").usage("%s: the undo record %s is missing, and the journal (masked) cannot restore "
      .. "the tree; restore the record or the tree from version control", view, path)
  end
  return journal
end

---Writes the undo record at `path`, exact (it is the one file novapipe
---writes unmasked besides the user's own moved source: --undo restores
---names and contents byte for byte from it), and the journal beside it
---through the sink, masked. Both atomically, owner-only, never through a
---link.
---@param path string the undo record's
---@param journal table
---@param sink novapipe.Sink
---@return true|nil ok
---@return string? error
function M.write_journal(path, journal, sink)
  local ok, err = fs.mkdir_p(dirname(path))
  if ok then ok, err = raw.atomic_write(path, json.pretty(journal) .. "\n", "0600") end
  if not ok then return nil, ("cannot write the undo record %s: %s"):format(path, err) end
  local view = M.journal_of(path)
  ok, err = sink:write(view, json.pretty(readable(journal)) .. "\n", "migration journal")
  if not ok then return nil, ("cannot write the journal %s: %s"):format(view, err) end
  return true
end

---Applies every operation of a journal, writing its status first (and
---removing first what interrupted writes of an earlier attempt left).
---@param path string the undo record's
---@param journal table
---@param sink novapipe.Sink the run's, for the masked journal
---@return true|nil ok
---@return string? error (the journal stays, for --execute or --undo)
function M.apply_journal(path, journal, sink)
  local ok, err = M.remove_journal_temporaries(path, journal)
  if not ok then return nil, err end
  journal.status = "applying"
  ok, err = M.write_journal(path, journal, sink)
  if not ok then return nil, err end
  for i, op in ipairs(journal.ops) do
    ok, err = apply(op)
    if not ok then return nil, err end
    maybe_crash(i)
  end
  journal.status = "applied"
  return M.write_journal(path, journal, sink)
end

---Reverts every operation of a journal, last first, and removes it: the
---temporary files interrupted writes left go first, and the directories
---it made go last, with the bytecode Python wrote there for the files it
---put in them.
---@param path string the undo record's
---@param journal table
---@param sink novapipe.Sink the run's, for the masked journal
---@return true|nil ok
---@return string? error (the journal stays, for another --undo)
function M.undo_journal(path, journal, sink)
  local ok, err = M.remove_journal_temporaries(path, journal)
  if not ok then return nil, err end
  journal.status = "undoing"
  ok, err = M.write_journal(path, journal, sink)
  if not ok then return nil, err end
  local placed = {}
  for _, op in ipairs(journal.ops) do
    local to = op.op == "move" and op.to or op.op == "create" and op.path
    if to then
      local dir = dirname(to)
      placed[dir] = placed[dir] or {}
      placed[dir][basename(to)] = true
    end
  end
  for i = #journal.ops, 1, -1 do
    ok, err = revert(journal.ops[i], placed)
    if not ok then return nil, err end
  end
  for _, p in ipairs({ M.journal_of(path), path }) do
    if lfs.symlinkattributes(p, "mode") then
      ok, err = os.remove(p)
      if not ok then return nil, err end
    end
  end
  pcall(lfs.rmdir, dirname(path))
  return true
end


return M
