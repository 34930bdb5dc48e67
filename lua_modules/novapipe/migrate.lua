-- Moving test files into their tiers, safely.
--
--   plan     what analyze says, turned into moves: each test file not in its
--            tier's directory goes there, keeping its sub-path under the tier
--            (unit/api/test_x.py -> venv/api/test_x.py) or, with
--            layout = "flatten", straight into the tier where no collision
--            arises. Nothing is ever overwritten: a destination that exists,
--            or that two files would share, keeps both files where they are.
--            A file stays, with the reason, when moving it alone would break
--            it: it reads files beside it through __file__ (in a body, at
--            module level or in a decorator's arguments), it imports a
--            local helper relatively that can neither move along (a helper
--            moves with its tests when every file importing it goes to the
--            same directory) nor be reached by a rewritten relative import
--            (the rewrite works on the scanner's tokens, and needs packages
--            on the way), or it needs a fixture from a
--            conftest.py that would not be in scope at the destination and
--            cannot be copied there safely. When it can (no conftest.py at
--            the destination, no fixture of it already visible there, no
--            autouse fixture, no relative import), the conftest.py is copied
--            beside the moved test; the original stays for the others.
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
--   verify   pytest --collect-only before and after, naming every directory
--            (pytest's default norecursedirs skips one called venv); a test
--            missing afterwards, or a new collection error, rolls the
--            migration back.
local analyze = require "novapipe.analyze"
local fs = require "novapipe.fs"
local json = require "novapipe.json"
local lfs = require "lfs"
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

local function is_file(p) return lfs.attributes(p, "mode") == "file" end
local function is_dir(p) return lfs.attributes(p, "mode") == "directory" end
local dirname, basename = require("novapipe.path").dirname, require("novapipe.path").basename

-- Whether dir is path's directory or one above it.
local function above(dir, path)
  return path:sub(1, #dir + 1) == dir .. "/"
end

-- Which files under root import each module file relatively or by its
-- module path: path -> {importer = true}.
local function importers(a, root)
  local map = {}
  for _, rel in ipairs(fs.walk(root, { include = { "*.py" }, exclude = { "__pycache__" } }) or {}) do
    local file = root .. "/" .. rel
    for _, imp in ipairs(a:scan(file).imports or {}) do
      local targets = imp.level > 0 and a:relative_files(file, imp) or { a:module_file(imp.module) }
      for _, t in ipairs(targets) do
        map[t] = map[t] or {}
        map[t][file] = true
      end
    end
  end
  return map
end

---Plans a migration of the tests under root.
---@param cfg novapipe.Config
---@param root string
---@param opts {layout?: "keep"|"flatten", unknown_to?: string}
---@return table|nil plan {moves = {{from, to, category, reasons}}, stays = {{path, why}}, notes, mkdirs, creates}
---@return string? error
function M.plan(cfg, root, opts)
  local layout = opts.layout or "keep"
  local unknown_to = opts.unknown_to or "venv"
  local tier_dir = {}
  for _, t in ipairs(cfg.tiers) do tier_dir[t.name] = t.dir end
  local files, ferr = analyze.test_files(root, require("novapipe.pytest_config").python_files())
  if not files then return nil, ferr end
  local a = analyze.new(cfg, root)
  local plan = { moves = {}, stays = {}, notes = {}, mkdirs = {}, creates = {}, copies = {}, rewrites = {} }
  local copies = {}
  local wanted = {}
  for _, file in ipairs(files) do
    local d = a:classify(file)
    local rel = file:sub(#root + 2)
    local first, rest = rel:match("^([^/]+)/(.+)$")
    local category = d.category
    if category == "unknown" then
      plan.notes[#plan.notes + 1] = ("%s is unknown (%s): it goes to %s"):format(rel, d.reasons[1] or "", unknown_to)
      category = unknown_to
    end
    local dir = tier_dir[category]
    if not dir then
      plan.stays[#plan.stays + 1] = { path = file, why = ("no tier '%s' is configured"):format(category) }
    elseif first ~= dir then
      local sub = rest or rel
      local dest = ("%s/%s/%s"):format(root, dir, layout == "flatten" and basename(rel) or sub)
      local why, needs, relatives = M.blockers(a, file, dest)
      if why then
        plan.stays[#plan.stays + 1] = { path = file, why = why }
      else
        wanted[#wanted + 1] = { from = file, to = dest, category = category, reasons = d.reasons,
                                keep = ("%s/%s/%s"):format(root, dir, sub), conftests = needs,
                                relatives = relatives }
      end
    end
  end
  -- Collisions: an existing destination, or one shared by two files.
  local count = {}
  for _, m in ipairs(wanted) do count[m.to] = (count[m.to] or 0) + 1 end
  if layout == "flatten" then
    -- flattened only where no collision arises; else the sub-path is kept
    for _, m in ipairs(wanted) do
      if count[m.to] > 1 or lfs.attributes(m.to) then
        count[m.to] = count[m.to] - 1
        m.to = m.keep
        count[m.to] = (count[m.to] or 0) + 1
      end
    end
  end
  -- Helpers imported relatively may move along: decided once the tests
  -- are (every file that imports a helper must move to the same place).
  local dest_of = {}
  for _, m in ipairs(wanted) do dest_of[m.from] = dirname(m.to) end
  local helpers = {} -- helper path -> {to = target, refs = {relative import records}}
  for _, m in ipairs(wanted) do
    for _, r in ipairs(m.relatives or {}) do
      local h = r.beside and #r.targets == 1 and r.targets[1]
      local target = h and (dirname(m.to) .. "/" .. basename(h))
      if h and (not helpers[h] or helpers[h].to == target) then
        helpers[h] = helpers[h] or { to = target, refs = {} }
        table.insert(helpers[h].refs, r)
      else
        if h then helpers[h].to = false end -- wanted in two places
        r.rewrite = true
      end
    end
  end
  -- The tests: each moves, or stays saying why.
  for _, m in ipairs(wanted) do
    if lfs.attributes(m.to) then
      plan.stays[#plan.stays + 1] = { path = m.from, why = ("%s exists: nothing is overwritten"):format(m.to) }
    elseif count[m.to] > 1 then
      plan.stays[#plan.stays + 1] = { path = m.from, why = ("another file would also go to %s"):format(m.to) }
    else
      -- The conftest.py files it needs at its destination: one per
      -- directory, and the same one for every file that goes there.
      local dest_dir, ok = dirname(m.to), true
      for _, c in ipairs(m.conftests or {}) do
        local target = dest_dir .. "/conftest.py"
        if copies[target] and copies[target] ~= c then
          plan.stays[#plan.stays + 1] = { path = m.from, why = ("%s would need two conftest.py files"):format(dest_dir) }
          ok = false
        end
      end
      if ok then
        for _, c in ipairs(m.conftests or {}) do
          local target = dest_dir .. "/conftest.py"
          if not copies[target] then
            local content, rerr = fs.read(c)
            if not content then return nil, rerr end
            copies[target] = c
            plan.copies[#plan.copies + 1] = { from = c, path = target, content = content }
          end
        end
        plan.moves[#plan.moves + 1] = { from = m.from, to = m.to, category = m.category, reasons = m.reasons }
      end
    end
  end
  -- The helpers: a helper moves when all its importers move to its new
  -- directory, it imports nothing relatively itself, and its place is free;
  -- otherwise the importers' imports are rewritten.
  local moved = {}
  for _, m in ipairs(plan.moves) do moved[m.from] = dirname(m.to) end
  local users
  local paths = {}
  for h in pairs(helpers) do paths[#paths + 1] = h end
  table.sort(paths)
  for _, h in ipairs(paths) do
    local info, ok = helpers[h], helpers[h].to ~= false
    if ok then
      users = users or importers(a, root)
      for importer in pairs(users[h] or {}) do
        if moved[importer] ~= dirname(info.to) then ok = false end
      end
      for _, imp in ipairs(a:scan(h).imports or {}) do
        if imp.level > 0 then ok = false end
      end
      if lfs.attributes(info.to) or count[info.to] then ok = false end
    end
    if ok then
      plan.moves[#plan.moves + 1] = { from = h, to = info.to, category = "helper",
                                      reasons = { "a helper the moved tests import" } }
    else
      for _, r in ipairs(info.refs) do r.rewrite = true end
    end
  end
  -- Rewrites come last: they need to know which directories will be
  -- packages. Directories to make: each tier, and the sub-directories moves need, with
  -- an __init__.py where the source directory has one (and in a new tier).
  local made = {}
  local function need(dir, with_init)
    if made[dir] or is_dir(dir) then return end
    need(dirname(dir), with_init)
    made[dir] = true
    plan.mkdirs[#plan.mkdirs + 1] = dir
    if with_init then plan.creates[#plan.creates + 1] = dir .. "/__init__.py" end
  end
  for _, t in ipairs(cfg.tiers) do need(root .. "/" .. t.dir, true) end
  for _, m in ipairs(plan.moves) do need(dirname(m.to), is_file(dirname(m.from) .. "/__init__.py")) end
  local ok, rerr = M.plan_rewrites(plan, wanted)
  if not ok then return nil, rerr end
  return plan
end

-- The relative reference from a module in `dir` to `target` (a path
-- without .py: a module or a package directory), and the directories that
-- must be packages for it to resolve; nil when there is no way.
local function relative_ref(dir, target)
  local up, ancestor = 0, dir
  while not above(ancestor, target) do
    if ancestor == "." or ancestor == "" or not ancestor:find("/", 1, true) then return nil end
    ancestor = dirname(ancestor)
    up = up + 1
  end
  local down = target:sub(#ancestor + 2):gsub("/", ".")
  local chain = {}
  local d = dir
  while true do
    chain[#chain + 1] = d
    if d == ancestor then break end
    d = dirname(d)
  end
  return string.rep(".", up + 1) .. down, chain
end

---Turns the relative imports of moving files that need it into rewrite
---operations, or moves the file back to the stays when no rewrite resolves.
---@return true|nil ok
---@return string? error when a file to rewrite cannot be read
function M.plan_rewrites(plan, wanted)
  local init = {}
  for _, c in ipairs(plan.creates) do init[dirname(c)] = true end
  local moving = {}
  for _, m in ipairs(plan.moves) do moving[m.from] = m end
  local keep = {}
  for _, m in ipairs(plan.moves) do
    local w
    for _, x in ipairs(wanted) do if x.from == m.from then w = x end end
    local edits, why = {}, nil
    for _, r in ipairs(w and w.relatives or {}) do
      if r.rewrite then
        local imp = r.imp
        local base = dirname(m.from)
        for _ = 2, imp.level do base = dirname(base) end
        local target = imp.module ~= "" and (base .. "/" .. imp.module:gsub("%.", "/")) or base
        for _, t in ipairs(r.targets) do
          if moving[t] then why = ("its relative import on line %d points at %s, which moves too"):format(imp.line, t) end
        end
        local ref, chain = relative_ref(dirname(m.to), target)
        for _, d in ipairs(chain or {}) do
          if not is_file(d .. "/__init__.py") and not init[d] then ref = nil end
        end
        if not ref then
          why = why or ("it imports %s%s relatively (line %d), and no relative import resolves from %s (not a package)")
            :format(string.rep(".", imp.level), imp.module, imp.line, dirname(m.to))
        elseif not why then
          edits[#edits + 1] = { first = imp.ref_first, last = imp.ref_last, text = ref }
        end
      end
    end
    if why then
      plan.stays[#plan.stays + 1] = { path = m.from, why = why }
    else
      keep[#keep + 1] = m
      if #edits > 0 then
        local old, rerr = fs.read(m.from)
        if not old then return nil, rerr end
        table.sort(edits, function(x, y) return x.first > y.first end)
        local new = old
        for _, e in ipairs(edits) do new = new:sub(1, e.first - 1) .. e.text .. new:sub(e.last + 1) end
        plan.rewrites[#plan.rewrites + 1] = { path = m.to, old = old, new = new }
      end
    end
  end
  plan.moves = keep
  return true
end

-- Where a string literal whose quote is at `i` ends: the index of its
-- text's first and last characters, and of what follows it.
local function literal(text, i)
  local c = text:sub(i, i)
  local q = text:sub(i, i + 2) == c:rep(3) and c:rep(3) or c
  local j = i + #q
  while j <= #text and text:sub(j, j + #q - 1) ~= q do
    j = j + (text:sub(j, j) == "\\" and 2 or 1)
  end
  return i + #q, j - 1, j + #q
end

-- Whether Python source text (a decorator's argument) reads the module's
-- own __file__: the bare name, outside string literals (an f-string's
-- text counts, as it may interpolate the name), not another object's
-- attribute (os.__file__).
local function reads_own_file(text)
  local i = 1
  while i <= #text do
    local c = text:sub(i, i)
    if c == "'" or c == '"' then
      local _, _, after = literal(text, i)
      i = after
    elseif c:match("%d") then
      i = i + #text:match("^[%w_.]+", i) -- a number (1e5, 0x1f, 1_000): no name in it
    elseif c:match("[%a_]") then
      local word = text:match("^[%w_]+", i)
      local next_c = text:sub(i + #word, i + #word)
      if (next_c == "'" or next_c == '"') and word:lower():match("^[rbuf][rbf]?$") then
        -- a prefixed string
        local first, last, after = literal(text, i + #word)
        if word:lower():find("f", 1, true) and reads_own_file(text:sub(first, last)) then return true end
        i = after
      else
        if word == "__file__" and not text:sub(1, i - 1):match("%.%s*$") then return true end
        i = i + #word
      end
    else
      i = i + 1
    end
  end
  return false
end

---Why moving `file` alone to `dest` would break it, or nil.
function M.blockers(a, file, dest)
  local facts = a:scan(file)
  if facts.error or facts.read_error then
    return nil -- a file that does not parse is moved as unknown says; pytest will tell
  end
  -- every function's body (the analyzer's scan keeps names only where a
  -- decorator can be a fixture's)
  local bodies = require("novapipe.pyscan").file(file, { names = "all" }) or facts
  for _, fn in ipairs(bodies.functions or {}) do
    for _, n in ipairs(fn.names or {}) do
      if n == "__file__" then return "it reads files beside it through __file__ (line " .. fn.line .. ")" end
    end
  end
  for _, asg in ipairs(facts.assignments or {}) do
    for _, n in ipairs(asg.names) do
      if n == "__file__" then return "it reads files beside it through __file__ (line " .. asg.line .. ")" end
    end
  end
  -- decorators' arguments (@pytest.mark.skipif(not os.path.exists(
  -- os.path.join(os.path.dirname(__file__), "data.csv")), ...)), of
  -- functions and of classes
  for _, defs in ipairs({ bodies.functions or {}, bodies.classes or {} }) do
    for _, def in ipairs(defs) do
      for _, d in ipairs(def.decorators or {}) do
        for _, arg in ipairs(d.args or {}) do
          if arg.kind ~= "string" and reads_own_file(arg.value) then
            return "it reads files beside it through __file__ (line " .. d.line .. ")"
          end
        end
      end
    end
  end
  -- Relative imports: a helper module beside it may move along; otherwise
  -- the import is rewritten to resolve from the destination (both decided
  -- for the whole plan).
  local relatives = {}
  for _, imp in ipairs(facts.imports or {}) do
    if imp.level > 0 then
      local targets = a:relative_files(file, imp)
      if #targets == 0 then
        return ("it imports %s%s relatively (line %d), and that cannot be found"):format(
          string.rep(".", imp.level), imp.module, imp.line)
      end
      local beside = imp.level == 1 and imp.module ~= ""
      for _, t in ipairs(targets) do
        if dirname(t) ~= dirname(file) or basename(t) == "__init__.py" then beside = false end
      end
      relatives[#relatives + 1] = { imp = imp, targets = targets, beside = beside }
    end
  end
  -- Fixtures from a conftest.py that would not be in scope at the
  -- destination: that conftest.py is copied there when that is safe.
  local dest_dir = dirname(dest)
  local needs, seen = {}, {}
  for _, r in ipairs(a:requested(file, facts)) do
    local fx = a:find_fixture(file, r.name)
    if fx and fx.file ~= file and not above(dirname(fx.file), dest_dir .. "/x") and not seen[fx.file] then
      seen[fx.file] = true
      local why = M.copy_blocker(a, fx.file, dest_dir)
      if why then
        return ("it needs fixture %s from %s, which would not be in scope at %s, and %s"):format(r.name, fx.file,
          dest_dir, why)
      end
      needs[#needs + 1] = fx.file
    end
  end
  return nil, needs, relatives
end



---Why conftest.py `conftest` cannot be copied into `dir`, or nil.
function M.copy_blocker(a, conftest, dir)
  if lfs.attributes(dir .. "/conftest.py") then
    return ("%s/conftest.py exists (novapipe does not merge conftest files)"):format(dir)
  end
  local facts = a:scan(conftest)
  for _, imp in ipairs(facts.imports or {}) do
    if imp.level > 0 then return "its conftest.py imports relatively" end
  end
  local visible = {}
  for _, c in ipairs(a:conftests(dir .. "/x.py")) do
    for name in pairs(a:fixtures(c)) do visible[name] = c end
  end
  for name, fx in pairs(a:fixtures(conftest)) do
    if fx.autouse then return ("its conftest.py has autouse fixture %s, which would reach other tests there"):format(name) end
    if visible[name] then return ("fixture %s is already visible there (%s)"):format(name, visible[name]) end
  end
  return nil
end

-- ------------------------------------------------------------------
-- The journal and its operations

---The operations of a plan, in order.
function M.operations(plan, use_git)
  local ops = {}
  for _, d in ipairs(plan.mkdirs) do ops[#ops + 1] = { op = "mkdir", path = d } end
  for _, c in ipairs(plan.creates) do ops[#ops + 1] = { op = "create", path = c, content = "" } end
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

-- Moves a file (git mv when it is tracked); true, or nil and an error.
local function move(from, to, use_git)
  if use_git and tracked(from) then
    local r = git({ "mv", "--", from, to })
    if r and r.code == 0 then return true end
  end
  local ok, err = os.rename(from, to)
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
    if not lfs.attributes(op.path) then return raw.atomic_write(op.path, op.content, "0644") end
  elseif op.op == "move" then
    if lfs.attributes(op.from) and not lfs.attributes(op.to) then return move(op.from, op.to, op.git) end
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
    if lfs.attributes(op.to) and not lfs.attributes(op.from) then return move(op.to, op.from, op.git) end
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

-- ------------------------------------------------------------------
-- Verification

---Collects the tests under root with pytest, naming root and every
---directory that holds test files. Returns {ids = set, errors = set of
---files} or nil and an error.
function M.collect(py, root)
  local args = { py, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", root }
  local dirs = fs.walk(root, { dirs = true, exclude = { "__pycache__", ".*" } }) or {}
  for _, d in ipairs(dirs) do
    if is_dir(root .. "/" .. d) then args[#args + 1] = root .. "/" .. d end
  end
  local r, err = process.run(args, { stdin = "null" })
  if not r then return nil, err end
  local ids, errors = {}, {}
  for line in (r.stdout or ""):gmatch("[^\n]+") do
    local bad = line:match("^ERROR (%S+)")
    if bad then
      errors[bad] = true
    elseif line:find("::", 1, true) and not line:find("^[=_!]") then
      ids[line] = true
    end
  end
  if r.code ~= 0 and r.code ~= 5 and not next(errors) then
    errors["(pytest exit " .. r.code .. ")"] = true
  end
  return { ids = ids, errors = errors }
end

---Runs the given test files with pytest; returns outcome by test
---(file::class::name, with the file mapped through `map` when given), or
---nil and an error.
function M.outcomes(py, files, map)
  local junit = require "novapipe.junit"
  local dir, derr = require("novapipe.tmp").dir("novapipe-verify-")
  if not dir then return nil, derr end
  local xml = dir .. "/run.xml"
  local args = { py, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-o", "junit_family=xunit1", "--junitxml=" .. xml }
  for _, f in ipairs(files) do args[#args + 1] = f end
  local r, err = process.run(args, { stdin = "null" })
  local report, jerr = r and junit.read(xml, { cases = true })
  fs.rmtree(dir)
  if not r then return nil, err end
  if not report then return nil, jerr end
  local out = {}
  for _, c in ipairs(report.cases) do
    local file = c.file and (map and map[c.file] or c.file) or "?"
    local module = (c.file or ""):gsub("%.py$", ""):gsub("/", ".")
    local class = c.classname and c.classname:sub(#module + 2) or ""
    out[("%s::%s%s"):format(file, class ~= "" and (class .. "::") or "", c.name or "?")] = c.outcome
  end
  return out
end

---The tests whose outcome differs between two runs (before keyed by the
---moved paths already).
function M.changed(before, after)
  local diffs = {}
  for id, outcome in pairs(before) do
    if after[id] ~= outcome then
      diffs[#diffs + 1] = ("%s: %s before, %s after"):format(id, outcome, after[id] or "not run")
    end
  end
  table.sort(diffs)
  return diffs
end

---Compares collections before and after the moves: tests missing
---afterwards (mapped through the moves) and new collection errors.
---@return string[] problems
function M.compare(before, after, moves)
  local map = {}
  for _, m in ipairs(moves) do map[m.from] = m.to end
  local problems = {}
  local ids = {}
  for id in pairs(before.ids) do ids[#ids + 1] = id end
  table.sort(ids)
  for _, id in ipairs(ids) do
    local file, rest = id:match("^(.-)(::.*)$")
    local want = map[file] and (map[file] .. rest) or id
    if not after.ids[want] then problems[#problems + 1] = "missing after the migration: " .. want end
  end
  -- a file that failed to collect before may fail in its new place too
  local known = {}
  for f in pairs(before.errors) do known[map[f] or f] = true end
  for f in pairs(after.errors) do
    if not known[f] then problems[#problems + 1] = "new collection error: " .. f end
  end
  table.sort(problems)
  return problems
end

return M
