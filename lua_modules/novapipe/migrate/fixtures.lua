-- The fixtures a moved test needs at its destination, and how they get
-- there. A test needs a fixture from a conftest.py when the definition it
-- sees now (its own file's, then the nearest conftest.py's) is not the one
-- it would see at its destination; the fixtures those request count too.
-- They get there in one of two ways, per destination directory:
--
--   copy   no conftest.py there, every fixture needed comes from one
--          conftest.py, and that file is safe to copy whole: no relative
--          import, no autouse fixture, none of its fixtures already visible
--          there. The copy goes beside the moved tests; the original stays.
--   merge  otherwise: each fixture needed is appended, on the scanner's
--          tokens (its text from its first decorator to the end of its
--          body), to the conftest.py there (made when there is none), with
--          the imports it uses, when nothing clashes: no name already bound
--          there (an identical import is not added again), no fixture of
--          that name visible there, no autouse fixture, nothing else of
--          its conftest.py that it uses (a helper function, a constant), no
--          relative, optional or star import to bring along.
--
-- A test whose fixtures can get there neither way stays, saying why.
local fs = require "novapipe.fs"
local lfs = require "lfs"
local path = require "novapipe.path"
local pyscan = require "novapipe.pyscan"

local dirname = path.dirname

local M = {}

local function is_file(p) return lfs.attributes(p, "mode") == "file" end

local above = require("novapipe.path").below -- dir is p's directory or one above it

-- Python's built-in names: a fixture may use them freely.
local BUILTINS = {}
for n in ([[abs aiter all anext any ascii bin bool breakpoint bytearray bytes callable chr classmethod compile
  complex delattr dict dir divmod enumerate eval exec filter float format frozenset getattr globals hasattr hash
  help hex id input int isinstance issubclass iter len list locals map max memoryview min next object oct open
  ord pow print property range repr reversed round set setattr slice sorted staticmethod str sum super tuple
  type vars zip __import__ __name__ None True False Ellipsis NotImplemented Exception BaseException
  ValueError TypeError KeyError IndexError RuntimeError OSError AttributeError ImportError StopIteration
  AssertionError NotImplementedError]]):gmatch("%S+") do
  BUILTINS[n] = true
end

-- The names Python source text uses (a decorator's raw argument):
-- identifiers outside string literals, not attributes (after a dot).
local function names_in(text)
  local out, i = {}, 1
  while i <= #text do
    local c = text:sub(i, i)
    if c == "'" or c == '"' then
      local q = text:sub(i, i + 2) == c:rep(3) and c:rep(3) or c
      local j = i + #q
      while j <= #text and text:sub(j, j + #q - 1) ~= q do j = j + (text:sub(j, j) == "\\" and 2 or 1) end
      i = j + #q
    elseif c:match("%d") then
      i = i + #text:match("^[%w_.]+", i)
    elseif c:match("[%a_]") then
      local word = text:match("^[%w_]+", i)
      if not text:sub(1, i - 1):match("%.%s*$") and not text:sub(i + #word, i + #word):match("['\"]") then
        out[#out + 1] = word
      end
      i = i + #word
    else
      i = i + 1
    end
  end
  return out
end

-- What a module binds at its top level, from its facts: name ->
-- {import = statement text} or {def = kind}; and whether it has a star
-- import. `rewrite(imp)` gives an import's module as it will be written.
local function bindings(facts, rewrite)
  local bound, star = {}, false
  for _, fn in ipairs(facts.functions or {}) do
    if not fn.class and not fn.parent then bound[fn.name] = { def = "function" } end
  end
  for _, c in ipairs(facts.classes or {}) do bound[c.name] = bound[c.name] or { def = "class" } end
  for _, asg in ipairs(facts.assignments or {}) do bound[asg.target] = bound[asg.target] or { def = "assignment" } end
  for _, imp in ipairs(facts.imports or {}) do
    if not imp["function"] then
      local module = rewrite and rewrite(imp) or imp.module
      if imp.star then star = true end
      for _, n in ipairs(imp.names or {}) do
        local name, text
        if imp.from then
          name = n.alias or n.name
          text = ("from %s%s import %s%s"):format(string.rep(".", imp.level), module, n.name,
            n.alias and (" as " .. n.alias) or "")
        else
          name = n.alias or n.name:match("^[^.]+")
          text = ("import %s%s"):format(module, n.alias and (" as " .. n.alias) or "")
        end
        local b = bound[name]
        if not b or not b.import then b = { import = {} } end
        -- `import a.b` and `import a.c` both bind a: both are kept
        table.insert(b.import, { text = text, imp = imp })
        bound[name] = b
      end
    end
  end
  return bound, star
end

---@class novapipe.FixturePlan
---@field a table the analyzer
---@field root string
---@field rewrite fun(file: string, imp: table): string the module an import will name (import rewrites applied)
---@field content fun(file: string): string|nil a conftest.py's text as it will be (import rewrites applied)

---Plans the conftest.py files the moves need. `moves` are {from, to} of
---the tests that move (in order). Returns the operations ({kind = "copy"
---| "create" | "merge", path, content or old/new, from, fixtures}) and
---the tests that must stay (path -> why).
---@param p novapipe.FixturePlan
---@param moves {from: string, to: string}[]
---@return table[] ops
---@return table<string, string> stays
function M.plan(p, moves)
  local a, root = p.a, p.root
  local planned = {} -- dest conftest path -> state
  local stays = {}
  local full = {} -- file -> its facts with every body's names

  local function facts_of(file)
    if full[file] == nil then
      local text = p.content(file) or fs.read(file) or ""
      full[file] = { facts = pyscan.scan(text, { names = "all" }), text = text }
    end
    return full[file]
  end

  -- The fixtures a conftest.py defines, as it will be.
  local function defined(c)
    local st = planned[c]
    if st then return st.fixtures end
    return is_file(c) and a:fixtures(c) or {}
  end

  -- The conftest.py files that apply in dir, nearest first, planned ones
  -- included: up to the root by name (dir may not exist yet), then the
  -- root's own chain.
  local function chain(dir)
    local list, d = {}, dir
    while above(root, d .. "/x") and d ~= root do
      local c = d .. "/conftest.py"
      if planned[c] or is_file(c) then list[#list + 1] = c end
      local parent = dirname(d)
      if parent == d then break end
      d = parent
    end
    for _, c in ipairs(a:conftests(root .. "/x.py")) do list[#list + 1] = c end
    return list
  end

  local function visible(dir, name)
    for _, c in ipairs(chain(dir)) do
      local fx = defined(c)[name]
      if fx then return fx, c end
    end
  end

  -- The fixtures test `file` would lack at `dir`: {file, name, fx}.
  local function needs(file, dir)
    local own = a:fixtures(file)
    local queue, seen, list = {}, {}, {}
    for _, r in ipairs(a:requested(file, a:scan(file))) do queue[#queue + 1] = r.name end
    local i = 1
    while i <= #queue do
      local name = queue[i]
      i = i + 1
      if not seen[name] then
        seen[name] = true
        local fx = a:find_fixture(file, name)
        if fx then
          if fx.file ~= file and (own[name] or visible(dir, name)) ~= fx then
            list[#list + 1] = { file = fx.file, name = name, fx = fx }
          end
          for _, prm in ipairs(require("novapipe.analyze").requests(fx.fn)) do queue[#queue + 1] = prm end
        end
      end
    end
    return list
  end

  -- Why conftest `c` cannot be copied whole into dir (which has none), or nil.
  local function copy_blocker(c, dir)
    local facts = a:scan(c)
    for _, imp in ipairs(facts.imports or {}) do
      if imp.level > 0 then return "it imports relatively" end
    end
    local line = require("novapipe.migrate.data").file_line(c, facts)
    if line then return ("it reads files beside it through __file__ (line %d)"):format(line) end
    local names = {}
    for name in pairs(a:fixtures(c)) do names[#names + 1] = name end
    table.sort(names)
    for _, name in ipairs(names) do
      local fx = a:fixtures(c)[name]
      if fx.autouse then return ("it has autouse fixture %s, which would reach other tests there"):format(name) end
      local seen_fx, where = visible(dir, name)
      if seen_fx then return ("fixture %s is already visible there (%s)"):format(name, where) end
    end
    return nil
  end

  -- A merge's state for the conftest.py at dir: its text as it is (or
  -- nothing), what it binds, what is added.
  local function merge_state(dir)
    local target = dir .. "/conftest.py"
    local st = planned[target]
    if st then return st end
    local mode = lfs.symlinkattributes(target, "mode")
    if mode and mode ~= "file" then return nil, ("%s is not a regular file"):format(target) end
    -- as it is (what --undo restores), and as it will be (its imports
    -- rewritten, when they name a module that moves)
    local old = mode and fs.read(target) or nil
    if mode and not old then return nil, ("%s cannot be read"):format(target) end
    local base = old and (p.content(target) or old) or ""
    local facts = old and pyscan.scan(base, { names = "none" }) or { functions = {}, imports = {} }
    if facts.error then return nil, ("%s does not parse (line %d)"):format(target, facts.error.line) end
    local bound = bindings(facts)
    st = { kind = mode and "merge" or "create", path = target, old = old, base = base, bound = bound,
           fixtures = {}, blocks = {}, imports = {}, from = {}, names = {}, encoding = facts.encoding or "utf-8" }
    for name, fx in pairs(old and a:fixtures(target) or {}) do st.fixtures[name] = fx end
    return st
  end

  -- Tries to add the needed fixtures to a merge state; true, or nil and
  -- why (the state is left as it was).
  local function merge(st, list, dir)
    local add_fx, add_imports, add_blocks, taken = {}, {}, {}, {}
    local merged_names = {}
    for _, n in ipairs(list) do merged_names[n.fx.fn.name] = true end
    for _, n in ipairs(list) do
      local key = n.file .. "\0" .. n.name
      if not st.names[key] and not taken[key] then
        taken[key] = true
        local src = facts_of(n.file)
        local where = n.file == list[1].file and ("fixture " .. n.name) or ("fixture %s (from %s)"):format(n.name, n.file)
        if n.fx.autouse then
          return nil, ("%s is autouse, and would reach every test there"):format(where)
        end
        if (src.facts.encoding or "utf-8") ~= st.encoding then
          return nil, ("%s is in %s, and %s in %s"):format(n.file, src.facts.encoding, st.path, st.encoding)
        end
        local fn
        for _, f in ipairs(src.facts.functions or {}) do
          if f.name == n.fx.fn.name and f.line == n.fx.fn.line and not f.class and not f.parent then fn = f end
        end
        if not fn or not (fn.first == 1 or src.text:sub(fn.first - 1, fn.first - 1) == "\n") then
          return nil, ("%s is not defined at the top level of its file"):format(where)
        end
        local there, at = visible(dir, n.name)
        if st.bound[n.name] or st.bound[fn.name] or st.fixtures[n.name] or add_fx[n.name] then
          return nil, ("%s: %s already has %s"):format(where, st.path, st.fixtures[n.name] and "a fixture of that name"
            or ("a binding of " .. (st.bound[fn.name] and fn.name or n.name)))
        elseif there and at ~= st.path then
          return nil, ("%s: a fixture of that name is already visible there (%s)"):format(where, at)
        end
        local bound, star = bindings(src.facts, function(imp) return p.rewrite(n.file, imp) end)
        local params = {}
        for _, prm in ipairs(fn.params or {}) do params[(prm:gsub("^%*+", ""))] = true end
        local used = {}
        for _, nm in ipairs(fn.names or {}) do used[#used + 1] = nm:match("^[^.]+") end
        for _, d in ipairs(fn.decorators or {}) do
          used[#used + 1] = d.name:match("^[^.]+")
          for _, arg in ipairs(d.args or {}) do
            if arg.kind == "name" then used[#used + 1] = arg.value:match("^[^.]+")
            elseif arg.kind == "raw" then
              for _, w in ipairs(names_in(arg.value)) do used[#used + 1] = w end
            end
          end
        end
        for _, h in ipairs(used) do
          local b = bound[h]
          if h == "__file__" then
            return nil, ("%s reads files beside %s through __file__"):format(where, n.file)
          elseif params[h] or BUILTINS[h] or h == fn.name then
            -- its own parameters, Python's names, itself
          elseif b and b.def then
            if not merged_names[h] then
              return nil, ("%s uses %s, which %s defines (only fixtures and the imports they use are merged)")
                :format(where, h, n.file)
            end
          elseif b and b.import then
            for _, it in ipairs(b.import) do
              if it.imp.level > 0 then
                return nil, ("%s uses %s, which %s imports relatively (line %d)"):format(where, h, n.file, it.imp.line)
              elseif it.imp.optional or it.imp.type_checking then
                return nil, ("%s uses %s, which %s imports only %s (line %d)"):format(where, h, n.file,
                  it.imp.optional and "when it can" or "under TYPE_CHECKING", it.imp.line)
              end
              local mine = st.bound[h]
              if mine and mine.def then
                return nil, ("%s uses %s, which %s defines otherwise"):format(where, h, st.path)
              end
              local same = false
              for _, other in ipairs(mine and mine.import or {}) do
                if other.text == it.text then same = true end
              end
              if mine and not same then
                return nil, ("%s uses %s, which %s imports otherwise"):format(where, h, st.path)
              end
              if not same and not add_imports[it.text] then
                add_imports[it.text] = h
                add_imports[#add_imports + 1] = { text = it.text, file = n.file, line = it.imp.line }
              end
            end
          elseif star then
            return nil, ("%s uses %s, and %s imports with *: where it comes from cannot be told"):format(where, h,
              n.file)
          end
        end
        add_fx[n.name] = n.fx
        add_blocks[#add_blocks + 1] = { file = n.file, text = src.text:sub(fn.first, fn.last), name = n.name, key = key,
                                        at = fn.first }
      end
    end
    -- nothing clashed: the state takes it all
    for name, fx in pairs(add_fx) do st.fixtures[name] = fx end
    for _, it in ipairs(add_imports) do
      local text = it.text
      if not st.imports[text] then
        st.imports[text] = true
        st.imports[#st.imports + 1] = it
        local h = add_imports[text]
        st.bound[h] = st.bound[h] or { import = {} }
        if st.bound[h].import then table.insert(st.bound[h].import, { text = text }) end
      end
    end
    for _, b in ipairs(add_blocks) do
      st.names[b.key] = true
      st.blocks[#st.blocks + 1] = b
      st.bound[b.name] = { def = "function" }
      if not st.from[b.file] then
        st.from[b.file] = true
        st.from[#st.from + 1] = b.file
      end
    end
    return true
  end

  for _, m in ipairs(moves) do
    local dir = dirname(m.to)
    local list = needs(m.from, dir)
    if #list > 0 then
      local target = dir .. "/conftest.py"
      local single = list[1].file
      for _, n in ipairs(list) do
        if n.file ~= single then single = nil end
      end
      local here = lfs.symlinkattributes(target) or planned[target]
      local why = single and not here and copy_blocker(single, dir)
      if single and not here and not why then
        planned[target] = { kind = "copy", path = target, from = { single }, copy = single,
                            content = p.content(single) or fs.read(single), fixtures = a:fixtures(single) }
      else
        local st, serr = merge_state(dir)
        if st and st.kind == "copy" then
          -- a copy planned already: what more is needed is merged into it
          local copied = st
          st = { kind = "create", path = target, base = copied.content, bound = bindings(facts_of(copied.copy).facts),
                 fixtures = {}, blocks = {}, imports = {}, from = { copied.copy }, names = {},
                 encoding = facts_of(copied.copy).facts.encoding or "utf-8", copy = copied.copy }
          st.from[copied.copy] = true
          for name, fx in pairs(copied.fixtures) do st.fixtures[name] = fx end
        end
        local ok, merr
        if st then ok, merr = merge(st, list, dir) end
        if ok then
          planned[target] = st
        else
          local n = list[1]
          local tail = ("merging %s into %s would not be safe (%s)"):format(#list == 1 and "it" or "them", target,
            merr or serr)
          if why then tail = ("a copy of %s would not be safe (%s), and %s"):format(n.file, why, tail) end
          local names = {}
          for _, x in ipairs(list) do names[#names + 1] = x.name end
          stays[m.from] = ("it needs fixture%s %s from %s, which %s not in scope at %s; %s"):format(
            #list == 1 and "" or "s", table.concat(names, ", "), n.file, #list == 1 and "is" or "are", dir, tail)
        end
      end
    end
  end

  -- The operations, in the order of the moves.
  local ops, done = {}, {}
  for _, m in ipairs(moves) do
    local target = dirname(m.to) .. "/conftest.py"
    local st = planned[target]
    if st and not done[target] and not stays[m.from] then
      done[target] = true
      local fixtures = {}
      for _, b in ipairs(st.blocks or {}) do fixtures[#fixtures + 1] = b.name end
      if st.kind == "copy" then
        ops[#ops + 1] = { kind = "copy", path = target, from = st.copy, content = st.content }
      else
        -- in the order of their files and of their places there
        local sources, blocks, rank = {}, {}, {}
        for i, file in ipairs(st.from) do rank[file] = i end
        local function before(x, y)
          if rank[x.file] ~= rank[y.file] then return rank[x.file] < rank[y.file] end
          return x.at < y.at
        end
        table.sort(st.blocks, before)
        fixtures = {}
        for _, b in ipairs(st.blocks) do
          fixtures[#fixtures + 1] = b.name
          blocks[#blocks + 1] = b.text
          if sources[#sources] ~= b.file then sources[#sources + 1] = b.file end
        end
        local lines = {}
        for _, it in ipairs(st.imports) do it.at = it.line end
        table.sort(st.imports, before)
        for i, it in ipairs(st.imports) do lines[i] = it.text end
        local text = st.base
        if text ~= "" and not text:match("\n$") then text = text .. "\n" end
        if text ~= "" then text = text .. "\n\n" end
        text = text .. ("# Fixtures from %s, merged by novapipe migrate for the tests it moved here\n")
          :format(table.concat(sources, ", "))
        if #lines > 0 then text = text .. table.concat(lines, "\n") .. "\n" end
        text = text .. "\n\n" .. table.concat(blocks, "\n\n\n") .. "\n"
        if st.kind == "merge" then
          ops[#ops + 1] = { kind = "merge", path = target, old = st.old, new = text, from = sources, fixtures = fixtures }
        else
          ops[#ops + 1] = { kind = "create", path = target, content = text, from = sources, fixtures = fixtures,
                            copy = st.copy }
        end
      end
    end
  end
  return ops, stays
end

return M
