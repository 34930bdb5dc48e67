-- The imports a migration must rewrite, on the scanner's tokens: each
-- `from` import's module reference ("..pkg.mod", "tests.test_db") is
-- replaced in place, nothing else on the line touched.
--
--   relative  in a file that moves, an import that no longer resolves from
--             its new directory is rewritten to reach the same module (or
--             the module's new place, when it moves too); in a file that
--             stays, one whose module moves is rewritten to its new place.
--             A rewrite needs packages on the way.
--   absolute  an import of a module of the test tree that moves
--             (`from tests.test_databases import rows`, `import
--             tests.test_databases as db`), in any file, is rewritten to
--             the module's new dotted name; a bare `import tests.x`,
--             whose uses say tests.x, keeps the module in place.
--
-- What cannot be rewritten keeps a file in place: the importer when it is
-- the one moving, else the module it imports.
local lfs = require "lfs"
local path = require "novapipe.path"

local dirname = path.dirname

local M = {}

local function is_file(p) return lfs.attributes(p, "mode") == "file" end

local above = require("novapipe.path").below -- dir is p's directory or one above it

---The relative reference from a module in `dir` to `target` (a path
---without .py: a module or a package directory), and the directories
---that must be packages for it to resolve (from dir up to the common
---ancestor, and from there down to the target's); nil when there is no
---way.
---@param dir string
---@param target string
---@return string|nil ref
---@return string[]? chain
function M.relative_ref(dir, target)
  local up, ancestor = 0, dir
  while not above(ancestor, target) do
    if ancestor == "." or ancestor == "" or not ancestor:find("/", 1, true) then return nil end
    ancestor = dirname(ancestor)
    up = up + 1
  end
  local below = target:sub(#ancestor + 2)
  local chain = {}
  local d = dir
  while true do
    chain[#chain + 1] = d
    if d == ancestor then break end
    d = dirname(d)
  end
  local at = ancestor
  for name in (below:match("^(.*)/[^/]*$") or ""):gmatch("[^/]+") do
    at = at .. "/" .. name
    chain[#chain + 1] = at
  end
  return string.rep(".", up + 1) .. (below:gsub("/", ".")), chain
end

-- A module's path without .py ("a/b" for a/b.py, "a/b" for
-- a/b/__init__.py): what a reference names.
local function module_path(file)
  return (file:gsub("/__init__%.py$", ""):gsub("%.py$", ""))
end

---The directories an absolute module name is looked up from, in the
---root's spelling: the project root (python -m pytest puts it on sys.path)
---and each package root of the configuration ("backend").
---@param root string
---@param roots string[]
---@return string[] prefixes ("" or "backend/", absolute when root is)
function M.bases(root, roots)
  local lead = ""
  if root:sub(1, 1) == "/" then lead = lfs.currentdir() .. "/"
  elseif root == "." or root:sub(1, 2) == "./" then lead = "./" end
  local list = { lead }
  for _, r in ipairs(roots or {}) do list[#list + 1] = lead .. r:gsub("/+$", "") .. "/" end
  return list
end

---The file of the test tree an absolute module name stands for, and the
---base it was found from; nil when it is not under root.
---@param root string
---@param bases string[] from M.bases
---@param module string
---@return string|nil file
---@return string? base
function M.module_file(root, bases, module)
  local rel = module:gsub("%.", "/")
  for _, b in ipairs(bases) do
    for _, cand in ipairs({ b .. rel .. ".py", b .. rel .. "/__init__.py" }) do
      if above(root, cand) and is_file(cand) then return cand, b end
    end
  end
  return nil
end

-- The directories from below `base` (a prefix: "", "backend/") down to
-- `dir`, top first.
local function chain_below(base, dir)
  local list, at = {}, base
  if dir:sub(1, #base) ~= base then return list end
  for name in dir:sub(#base + 1):gmatch("[^/]+") do
    at = at .. name
    list[#list + 1] = at
    at = at .. "/"
  end
  return list
end

---The dotted name of `file` (a module's new place) from `base`, when the
---directories on the way are packages wherever they were before (`old`,
---the module's place now); nil otherwise.
---@param base string
---@param old string
---@param file string
---@param is_pkg fun(dir: string): boolean
---@return string|nil
function M.dotted(base, old, file, is_pkg)
  local was_pkg = true
  for _, d in ipairs(chain_below(base, dirname(old))) do
    if not is_file(d .. "/__init__.py") then was_pkg = false end
  end
  if was_pkg then
    for _, d in ipairs(chain_below(base, dirname(file))) do
      if not is_pkg(d) then return nil end
    end
  end
  local rel = module_path(file):sub(#base + 1)
  return (rel:gsub("/", "."))
end

---@class novapipe.ImportPlan
---@field a table the analyzer
---@field root string
---@field bases string[] M.bases(root, roots)
---@field final table<string, string> each Python file that moves -> its new path
---@field is_pkg fun(dir: string): boolean whether a directory is (or becomes) a package

---The rewrites the moves need: edits (on each file's current text, by the
---file's current path) and the files that must stay, with why.
---@param p novapipe.ImportPlan
---@param files string[] every Python file under the root
---@return table<string, {first: integer, last: integer, text: string, line: integer, old: string}[]> edits
---@return table<string, string> stays
function M.plan(p, files)
  local a, final = p.a, p.final
  local edits, stays = {}, {}
  local function stay(file, why)
    if not stays[file] then stays[file] = why end
  end
  local function edit(file, imp, text, target)
    if not final[file] and lfs.symlinkattributes(file, "mode") ~= "file" then
      stay(target, ("%s imports it (line %d) and is not a regular file, so its import is not rewritten")
        :format(file, imp.line))
      return
    end
    edits[file] = edits[file] or {}
    table.insert(edits[file], { first = imp.ref_first, last = imp.ref_last, text = text, line = imp.line,
                                old = (imp.level > 0 and string.rep(".", imp.level) or "") .. imp.module })
  end
  for _, file in ipairs(files) do
    local moved = final[file]
    local here = dirname(moved or file)
    local facts = a:scan(file)
    for _, imp in ipairs(facts.imports or {}) do
      if imp.level > 0 then
        local targets = a:relative_files(file, imp)
        local base = dirname(file)
        for _ = 2, imp.level do base = dirname(base) end
        local named = imp.module ~= "" and (base .. "/" .. imp.module:gsub("%.", "/")) or base
        local module = is_file(named .. ".py") and named .. ".py" or is_file(named .. "/__init__.py")
          and named .. "/__init__.py" or nil
        local goes -- a target that moves
        for _, t in ipairs(targets) do
          if final[t] then goes = t end
        end
        if #targets > 0 and (moved or goes) then
          -- where the reference must now point: the named module's new
          -- place, or where it is
          local target = named
          local ok = true
          if goes then
            if module and final[module] and goes == module and #targets == 1 then
              target = module_path(final[module])
            else
              ok = false
            end
          end
          local ref, chain
          if ok then ref, chain = M.relative_ref(here, target) end
          for _, d in ipairs(chain or {}) do
            if not p.is_pkg(d) then ref = nil end
          end
          local old = string.rep(".", imp.level) .. imp.module
          if not ok then
            local why = ("%s imports %s as a name of its package (%s, line %d), which a rewrite cannot follow")
            if moved then
              stay(file, ("it imports %s relatively (line %d), which moves too, as a name of its package")
                :format(goes, imp.line))
            else
              stay(goes, why:format(file, "from " .. old .. " import ...", file, imp.line))
            end
          elseif not ref then
            local why = ("it imports %s relatively (line %d), and no relative import resolves from %s (not a package)")
              :format(old, imp.line, here)
            if moved then stay(file, why) else
              stay(goes, ("%s imports it relatively (line %d), and no relative import resolves from there to %s")
                :format(file, imp.line, dirname(final[goes])))
            end
          elseif ref ~= old then
            edit(file, imp, ref, goes or file)
          end
        end
      elseif imp.module ~= "" then
        local target, base = M.module_file(p.root, p.bases, imp.module)
        if target and final[target] then
          local new = M.dotted(base, target, final[target], p.is_pkg)
          local alias = not imp.from and imp.names and imp.names[1] and imp.names[1].alias
          if not imp.ref_first or (not imp.from and (alias == nil or alias == "")) then
            -- `import tests.x` binds `tests`, and the code says tests.x.f:
            -- renaming the import alone would break those uses
            stay(target, ("%s imports it with `import %s` (line %d): only `import %s as NAME` and `from %s import ...` "
              .. "are rewritten"):format(file, imp.module, imp.line, imp.module, imp.module))
          elseif not new then
            stay(target, ("%s imports it as %s (line %d), and its new place %s is not in a package")
              :format(file, imp.module, imp.line, final[target]))
          elseif new ~= imp.module then
            edit(file, imp, new, target)
          end
        elseif target and imp.from then
          -- `from pkg import mod`: a module that moves, named as a name
          local pkg = module_path(target)
          for _, n in ipairs(imp.names or {}) do
            for _, cand in ipairs({ pkg .. "/" .. n.name .. ".py", pkg .. "/" .. n.name .. "/__init__.py" }) do
              if final[cand] and target:match("/__init__%.py$") then
                stay(cand, ("%s imports it as `from %s import %s` (line %d), which a rewrite cannot follow")
                  :format(file, imp.module, n.name, imp.line))
              end
            end
          end
        end
      end
    end
    -- importlib.import_module("tests.test_x"), __import__("tests.test_x")
    for _, dyn in ipairs(facts.dynamic_imports or {}) do
      -- (a non-literal argument, module "", names no file)
      local target = dyn.module ~= "" and M.module_file(p.root, p.bases, dyn.module)
      if target and final[target] then
        stay(target, ("%s imports it dynamically (%s, line %d), which is not rewritten"):format(file, dyn.via, dyn.line))
      end
    end
  end
  return edits, stays
end

---A text with edits (byte ranges of it) applied.
---@param text string
---@param list {first: integer, last: integer, text: string}[]
---@return string
function M.apply(text, list)
  local sorted = {}
  for i, e in ipairs(list or {}) do sorted[i] = e end
  table.sort(sorted, function(x, y) return x.first > y.first end)
  for _, e in ipairs(sorted) do text = text:sub(1, e.first - 1) .. e.text .. text:sub(e.last + 1) end
  return text
end

return M
