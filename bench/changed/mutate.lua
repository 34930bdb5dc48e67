-- The proof of --changed: mutation testing of the selection. On a copy of
-- a project, each non-test Python module in turn gets two mutations, one at
-- a time:
--   raise     every function raises (`raise RuntimeError("mutant")` as the
--             first statement of each def body, after its docstring);
--   constant  the first module-level assignment of a number or string
--             literal gets another value (a module without one has none).
-- For each mutant the whole suite runs under real pytest (one process,
-- --junitxml, to know which test files had a failing test), and
-- novapipe.select.changed.select computes what `run_tests --changed` would
-- run for that one modified file. A test file that failed in the full run
-- and is not selected is missed. Then pytest runs again on just the
-- selected files, to compare the times. Before any mutant, the unmutated
-- suite must pass.
--   build/novapipe exec bench/changed/mutate.lua PROJECT [--config FILE] [--limit N] [--tiers a,b] [--modules GLOB]... [--diff]
-- --config FILE: this novapipe.lua instead of PROJECT's own (for a public
-- project that has none: bench/changed/real/);
-- --limit N: the first N mutants only (modules in path order); --tiers: only these
-- tiers' test directories run and count (default every tier; a tier's
-- services, PostgreSQL for the clinic's integration tier, are started once
-- for the whole run, and its env set); --modules: only the modules whose
-- path (relative to PROJECT) matches one of the globs are mutated; --diff
-- prints each mutant as a diff before it runs.
-- Prints a table a mutant and a summary; exits 1 when a test file was
-- missed, 2 on a usage error or when the unmutated suite does not pass.
local changed = require "novapipe.select.changed"
local config = require "novapipe.config"
local fs = require "novapipe.fs"
local junit = require "novapipe.junit"
local lfs = require "lfs"
local P = require "novapipe.path"
local process = require "novapipe.process"
local pyscan = require "novapipe.pyscan"
local pytest_config = require "novapipe.pytest_config"

local function usage(msg)
  io.stderr:write("mutate: ", msg, "\n",
    "usage: novapipe exec bench/changed/mutate.lua PROJECT [--config FILE] [--limit N] [--tiers a,b] [--modules GLOB]... [--diff]\n")
  os.exit(2)
end

local project, config_file, limit, only_tiers, globs, show_diff = nil, nil, nil, nil, {}, false
do
  local i = 1
  while i <= #arg do
    local a = arg[i]
    if a == "--limit" then
      limit = tonumber(arg[i + 1]) or usage("--limit needs a number")
      i = i + 1
    elseif a == "--tiers" then
      only_tiers = {}
      for t in (arg[i + 1] or usage("--tiers needs a list")):gmatch("[^,]+") do only_tiers[t] = true end
      i = i + 1
    elseif a == "--config" then
      config_file = arg[i + 1] or usage("--config needs a file")
      i = i + 1
    elseif a == "--diff" then
      show_diff = true
    elseif a == "--modules" then
      globs[#globs + 1] = arg[i + 1] or usage("--modules needs a glob")
      i = i + 1
    elseif a:sub(1, 1) == "-" or project then
      usage("unknown argument " .. a)
    else
      project = a
    end
    i = i + 1
  end
end
if not project or lfs.attributes(project, "mode") ~= "directory" then usage("PROJECT must be a directory") end

-- ---- the copy ----

-- (the configuration first: a wrong novapipe.lua is exit 2 before anything is made)
if config_file and lfs.attributes(config_file, "mode") ~= "file" then usage("--config " .. config_file .. ": no such file") end
local cfg = config.load(config_file or project .. "/novapipe.lua")

local work = assert(fs.mkdtemp("novapipe-mutate-"))
local copy = work .. "/project"
assert(lfs.mkdir(copy))
local function sh(argv)
  local r = assert(process.run(argv, { stdin = "null" }))
  assert(r.code == 0, table.concat(argv, " ") .. ": " .. (r.stderr or ""))
end
sh({ "cp", "-a", project .. "/.", copy })
for _, d in ipairs({ ".novapipe", ".pytest_cache", ".git" }) do
  if lfs.attributes(copy .. "/" .. d) then assert(fs.rmtree(copy .. "/" .. d)) end
end
sh({ "find", copy, "-name", "__pycache__", "-type", "d", "-prune", "-exec", "rm", "-rf", "{}", "+" })

local tests_dir = cfg.tests
-- the Python the tiers would run, as novapipe finds it (NOVAPIPE_PYTHON,
-- novapipe.lua's python, then python3 and /usr/bin/python3 with pytest)
local python, perr = require("novapipe.python").find({ "pytest" }, cfg.python)
if not python then
  io.stderr:write("mutate: ", perr, "\n")
  os.exit(2)
end

-- The tiers in scope: their directories, their env, their services.
local dirs, env, services = {}, { PYTHONDONTWRITEBYTECODE = "1" }, {}
for _, t in ipairs(cfg.tiers) do
  if not only_tiers or only_tiers[t.name] then
    dirs[#dirs + 1] = P.normalize(tests_dir .. "/" .. t.dir)
    for k, v in pairs(t.env or {}) do env[k] = v end
    for _, s in ipairs(t.services or {}) do services[#services + 1] = s end
  end
end
if #dirs == 0 then usage("no tier in scope") end

local started = {}
local function cleanup()
  for i = #started, 1, -1 do started[i]:stop() end
  fs.rmtree(work)
end
for _, name in ipairs(services) do
  local svc, err = require("novapipe.services." .. name).start({})
  if not svc then
    cleanup()
    io.stderr:write("mutate: ", name, ": ", tostring(err), "\n")
    os.exit(2)
  end
  started[#started + 1] = svc
  for k, v in pairs(svc:env()) do env[k] = v end
end

local function exists(rel) return lfs.attributes(copy .. "/" .. rel, "mode") == "file" end

-- The test files in scope, relative to the copy, sorted.
local in_scope = {}
for _, d in ipairs(dirs) do
  for _, f in ipairs(require("novapipe.analyze").test_files(copy .. "/" .. d, pytest_config.python_files(copy)) or {}) do
    in_scope[#in_scope + 1] = f:sub(#copy + 2)
  end
end
table.sort(in_scope)
local scoped = {}
for _, f in ipairs(in_scope) do scoped[f] = true end

-- ---- pytest ----

-- The test file of a JUnit testcase: its file attribute (xunit1), else
-- the dotted module its classname or name gives (a collection error).
local function case_file(c)
  if c.file and c.file ~= "" then return c.file end
  for _, dotted in ipairs({ c.name or "", c.classname or "" }) do
    local parts = {}
    for p in dotted:gmatch("[^.]+") do parts[#parts + 1] = p end
    for n = #parts, 1, -1 do
      local rel = table.concat(parts, "/", 1, n) .. ".py"
      if exists(rel) then return rel end
    end
  end
  return "?"
end

local last_counts -- the last run's JUnit counts

-- Runs pytest on `paths` in the copy: the seconds it took and the set of
-- test files with a failed or errored test, or nil and why.
local function pytest(paths)
  local xml = work .. "/junit.xml"
  os.remove(xml)
  local argv = { python, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rfE", "-o", "junit_family=xunit1",
                 "--junitxml=" .. xml }
  for _, p in ipairs(paths) do argv[#argv + 1] = p end
  local r = assert(process.run(argv, { cwd = copy, env = env, stdin = "null", timeout = 900 }))
  local rep = junit.read(xml, { cases = true })
  if not rep or r.code > 2 then
    return nil, ("pytest exited %d: %s"):format(r.code, ((r.stdout or "") .. (r.stderr or "")):sub(-600))
  end
  local failing = {}
  last_counts = rep.counts
  for _, c in ipairs(rep.cases) do
    if c.outcome == "failed" or c.outcome == "errors" then failing[case_file(c)] = true end
  end
  return r.duration, failing
end

local function keys(set)
  local list = {}
  for k in pairs(set) do list[#list + 1] = k end
  table.sort(list)
  return list
end

-- ---- the mutations ----

local function lines_of(text)
  local lines = {}
  for l in (text .. (text:sub(-1) == "\n" and "" or "\n")):gmatch("([^\n]*)\n") do lines[#lines + 1] = l end
  return lines
end

-- Where the header of the def on line `i` ends: the line and the column of
-- its colon (the first ':' outside brackets, strings and comments).
local function header_end(lines, i)
  local depth, quote = 0, nil
  while lines[i] do
    local l, c = lines[i], 1
    while c <= #l do
      local ch = l:sub(c, c)
      if quote then
        if ch == "\\" then c = c + 1
        elseif l:sub(c, c + #quote - 1) == quote then c = c + #quote - 1; quote = nil end
      elseif ch == "#" then break
      elseif ch == '"' or ch == "'" then
        quote = l:sub(c, c + 2) == ch:rep(3) and ch:rep(3) or ch
        c = c + #quote - 1
      elseif ch:find("[%(%[{]") then depth = depth + 1
      elseif ch:find("[%)%]}]") then depth = depth - 1
      elseif ch == ":" and depth == 0 then return i, c
      end
      c = c + 1
    end
    if quote and #quote == 1 then quote = nil end
    i = i + 1
  end
end

-- The last line of a docstring opening `lines[i]` (after `indent`), or nil
-- when the body does not start with a string literal.
local function docstring_end(lines, i)
  local rest = lines[i]:match("^%s*(.*)$")
  local prefix, q = rest:match("^([rRuUbBfF]?[rRbB]?)([\"'])")
  if not q then return nil end
  local body = rest:sub(#prefix + 1)
  local quote = body:sub(1, 3) == q:rep(3) and q:rep(3) or q
  local from = #prefix + #quote + 1
  local j = i
  local text = rest
  while text do
    local s = from
    while true do
      local a = text:find(quote, s, true)
      if not a then break end
      local bs = 0
      while text:sub(a - 1 - bs, a - 1 - bs) == "\\" do bs = bs + 1 end
      if bs % 2 == 0 then return j end
      s = a + 1
    end
    if #quote == 1 then return j end
    j = j + 1
    text, from = lines[j], 1
  end
end

-- Mutation 1: every def body raises first. Returns the new source and how
-- many functions were changed, or nil when the module has none.
local function raise_everywhere(src, facts)
  local lines = lines_of(src)
  local edits = {}
  for _, fn in ipairs(facts.functions or {}) do
    local d = fn.line
    while lines[d] and not lines[d]:find("^%s*async%s+def%s") and not lines[d]:find("^%s*def%s") do d = d + 1 end
    local hl, hc = header_end(lines, d)
    if hl then
      local after = lines[hl]:sub(hc + 1)
      if after:find("^%s*[^%s#]") then
        -- a body on the def's own line: `def f(): return 1`
        edits[#edits + 1] = { line = hl, col = hc, inline = true }
      else
        local b = hl + 1
        while lines[b] and (lines[b]:find("^%s*$") or lines[b]:find("^%s*#")) do b = b + 1 end
        if lines[b] then
          local indent = lines[b]:match("^(%s*)")
          local doc = docstring_end(lines, b)
          if doc then
            edits[#edits + 1] = { line = doc + 1, indent = indent }
          else
            edits[#edits + 1] = { line = b, indent = indent }
          end
        end
      end
    end
  end
  if #edits == 0 then return nil end
  table.sort(edits, function(x, y) return x.line > y.line end)
  for _, e in ipairs(edits) do
    if e.inline then
      local l = lines[e.line]
      lines[e.line] = l:sub(1, e.col) .. ' raise RuntimeError("mutant");' .. l:sub(e.col + 1)
    else
      table.insert(lines, e.line, e.indent .. 'raise RuntimeError("mutant")')
    end
  end
  return table.concat(lines, "\n") .. "\n", #edits
end

-- Another value for a literal, or nil when `value` is not a plain number or
-- string literal.
local function other_value(value)
  local n = tonumber((value:gsub("_", "")))
  if n and value:find("^%-?[%d.]") then
    if math.type(n) == "integer" then return tostring(n + 1) end
    return ("%.17g"):format(n + 1)
  end
  local prefix, q, inner = value:match("^([rRuUbB]?[rRbB]?)([\"'])(.*)[\"']$")
  if not q or value:sub(-1) ~= q or inner:find(q, 1, true) or inner:find("\\$") then return nil end
  if inner:sub(1, 2) == q:rep(2) then return nil end -- a triple-quoted string
  return prefix .. q .. inner .. "_mutant" .. q
end

-- Mutation 2: the first module-level assignment of a literal gets another
-- value. Returns the new source and what changed, or nil.
local function change_constant(src, facts)
  local lines = lines_of(src)
  local list = { table.unpack(facts.assignments or {}) }
  table.sort(list, function(x, y) return x.line < y.line end)
  for _, a in ipairs(list) do
    local l = lines[a.line] or ""
    local head, value = l:match("^(" .. a.target:gsub("%p", "%%%0") .. "%s*[^=]*=%s*)(.-)%s*$")
    if head and not head:find("[=!<>]=") and not value:find("^=") then
      local new, comment = other_value(value), ""
      if not new then
        local v, c = value:match("^(.-)(%s+#.*)$")
        new = v and other_value(v)
        value, comment = v or value, c or ""
      end
      if new then
        lines[a.line] = head .. new .. comment
        return table.concat(lines, "\n") .. "\n", ("%s: %s -> %s"):format(a.target, value, new)
      end
    end
  end
end

local function compiles(path)
  local r = assert(process.run({ python, "-c", "import sys; compile(open(sys.argv[1], 'rb').read(), sys.argv[1], 'exec')",
                                 path }, { stdin = "null", env = env }))
  return r.code == 0, r.stderr
end

-- ---- the modules ----

local is_test_pattern = pytest_config.python_files(copy)
local modules = {}
for _, rel in ipairs(assert(fs.walk(copy, { include = { "*.py" }, exclude = { "__pycache__", ".*", "site-packages",
  "dist-packages", "node_modules" } }))) do
  local base = rel:match("[^/]+$")
  local test = base == "conftest.py" or changed.matching(is_test_pattern, rel)
    or rel:sub(1, #tests_dir + 1) == tests_dir .. "/"
  local wanted = #globs == 0
  for _, g in ipairs(globs) do wanted = wanted or fs.match(g, rel) end
  if not test and wanted then modules[#modules + 1] = rel end
end
table.sort(modules)

-- ---- the run ----

local base_t, base_fail = pytest(dirs)
if not base_t or next(base_fail) then
  cleanup()
  io.stderr:write("mutate: the unmutated suite does not pass: ",
    base_t and table.concat(keys(base_fail), ", ") or tostring(base_fail), "\n")
  os.exit(2)
end
print(("%s: %d test files in scope (%s), %d modules to mutate; the unmutated suite passes in %.2fs (%s)")
  :format(project, #in_scope, table.concat(dirs, " "), #modules, base_t, junit.describe(last_counts)))
if #started > 0 then print(("services for the whole run: %s"):format(table.concat(services, ", "))) end
print()
print(("%-52s %-9s %6s %9s %6s %8s %8s"):format("module", "mutation", "failed", "selected", "missed", "full s",
  "sel. s"))

local rows, missed_total, none_fail, skipped, invalid, made = {}, 0, {}, {}, {}, 0
for _, rel in ipairs(modules) do
  local path = copy .. "/" .. rel
  local fh = assert(io.open(path, "rb"))
  local src = fh:read("a")
  fh:close()
  local facts = pyscan.scan(src)
  for _, m in ipairs({ { "raise", raise_everywhere }, { "constant", change_constant } }) do
    local new, what = nil, nil
    if not limit or made < limit then new, what = m[2](src, facts) end
    if new then made = made + 1 end
    if not new then
      if not limit or made < limit then
        skipped[m[1]] = skipped[m[1]] or {}
        table.insert(skipped[m[1]], rel)
      end
    else
      local f = assert(io.open(path, "wb"))
      f:write(new)
      f:close()
      if show_diff then
        local orig = work .. "/original.py"
        local o = assert(io.open(orig, "wb"))
        o:write(src)
        o:close()
        local d = assert(process.run({ "diff", "-u", "--label", "a/" .. rel, "--label", "b/" .. rel, orig, path },
          { stdin = "null" }))
        io.write(d.stdout or "")
      end
      local ok, err = compiles(path)
      if not ok then
        invalid[#invalid + 1] = ("%s %s: %s"):format(rel, m[1], (err or ""):match("([^\n]*%S)%s*$") or "")
      else
        local full_t, failing = pytest(dirs)
        if not full_t then
          invalid[#invalid + 1] = ("%s %s: %s"):format(rel, m[1], failing)
        else
          local sel = changed.select(cfg, { { path = rel, status = "modified" } }, { root = copy })
          local selected, chosen = {}, {}
          for _, s in ipairs(sel.files) do
            local r = s:sub(1, #copy + 1) == copy .. "/" and s:sub(#copy + 2) or s
            if scoped[r] then
              selected[#selected + 1] = r
              chosen[r] = true
            end
          end
          local missed = {}
          for file in pairs(failing) do
            if not chosen[file] then missed[#missed + 1] = file end
          end
          table.sort(missed)
          local sel_t = 0
          if #selected > 0 then
            local t, sfail = pytest(selected)
            sel_t = t or 0
            -- what failed in the full run among the selected fails here too
            for file in pairs(failing) do
              if chosen[file] and not (sfail and sfail[file]) then
                invalid[#invalid + 1] = ("%s %s: %s failed in the full run, not alone"):format(rel, m[1], file)
              end
            end
          end
          local nfail = #keys(failing)
          local row = { module = rel, mutation = m[1], what = what, failed = nfail, selected = #selected,
                        fraction = #selected / #in_scope, missed = missed, full = full_t, sel = sel_t,
                        everything = sel.everything }
          rows[#rows + 1] = row
          missed_total = missed_total + #missed
          if nfail == 0 then none_fail[#none_fail + 1] = ("%s %s"):format(rel, m[1]) end
          print(("%-52s %-9s %6d %4d/%-4d %6d %8.2f %8.2f"):format(rel, m[1], nfail, #selected, #in_scope, #missed,
            full_t, sel_t))
          for _, file in ipairs(missed) do print("    MISSED " .. file) end
        end
      end
      f = assert(io.open(path, "wb"))
      f:write(src)
      f:close()
    end
  end
end

-- ---- the summary ----

local function median(xs)
  table.sort(xs)
  if #xs == 0 then return 0 end
  local k = (#xs + 1) // 2
  return #xs % 2 == 1 and xs[k] or (xs[k] + xs[k + 1]) / 2
end
local fractions, saved, saved_share, caught = {}, {}, {}, 0
for _, r in ipairs(rows) do
  fractions[#fractions + 1] = r.fraction
  saved[#saved + 1] = r.full - r.sel
  saved_share[#saved_share + 1] = (r.full - r.sel) / r.full
  if r.failed > 0 and #r.missed == 0 then caught = caught + 1 end
end
local mean = 0
for _, x in ipairs(fractions) do mean = mean + x / #fractions end
print()
print(("mutants: %d run: %d made a test fail (every failing file selected in %d of them), %d broke nothing a "
  .. "test sees"):format(#rows, #rows - #none_fail, caught, #none_fail))
for _, s in ipairs(none_fail) do print("  no test failed: " .. s) end
for _, k in ipairs({ "raise", "constant" }) do
  if skipped[k] then
    print(("  no %s mutant (%s): %s"):format(k, k == "raise" and "no function" or "no literal constant",
      table.concat(skipped[k], ", ")))
  end
end
for _, s in ipairs(invalid) do print("  HARNESS PROBLEM: " .. s) end
print(("missed: %d test files"):format(missed_total))
print(("selected fraction: mean %.3f of %d test files"):format(mean, #in_scope))
print(("time saved: median %.2fs a mutant (%.0f%% of the full run)"):format(median(saved), 100 * median(saved_share)))
-- machine-readable last line, for the suite's spec
print(("RESULT mutants=%d failing=%d caught=%d missed=%d invalid=%d mean_fraction=%.4f"):format(#rows,
  #rows - #none_fail, caught, missed_total, #invalid, mean))
cleanup()
os.exit(missed_total > 0 and 1 or 0)
