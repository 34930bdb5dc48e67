-- What migrate proves with pytest, and nothing more: the tests pytest
-- collects before and after the move (pytest --collect-only, naming every
-- directory, since pytest's default norecursedirs skips one called venv),
-- with pytest's own error line for each file it cannot collect, and with
-- --verify-run the outcomes of the moved tests before and after.
local fs = require "novapipe.fs"
local lfs = require "lfs"
local process = require "novapipe.process"

local M = {}

---@class novapipe.Collection
---@field ids table<string, true> node ids collected
---@field errors table<string, string> what pytest could not collect (a file, or "(pytest exit N)") -> its error line
---@field code integer pytest's exit code

-- The last line of `text` that pytest starts with "E   " (the exception),
-- or nil.
local function exception_line(text)
  local found
  for line in text:gmatch("[^\r\n]+") do
    local e = line:match("^E   (%S.*)$")
    if e then found = e end
  end
  return found
end

-- pytest's own error line for a run that ended before collecting (exit
-- 3, 4, or a crash): an exception it printed, INTERNALERROR or ERROR:
-- lines, else its first line of output.
local function run_error(stdout, stderr)
  local e = exception_line(stderr) or exception_line(stdout)
  local head = (stderr .. "\n" .. stdout):match("[^\r\n]*conftest[^\r\n]*") -- "ImportError while loading conftest '...'."
  if e and head then return (head:gsub("%.$", "")) .. ": " .. e end
  if e then return e end
  local internal
  for line in stdout:gmatch("[^\r\n]+") do
    internal = line:match("^INTERNALERROR> (%S.*)$") or internal
  end
  if internal then return internal end
  for _, text in ipairs({ stderr, stdout }) do
    for line in text:gmatch("[^\r\n]+") do
      if line:match("%S") then return (line:gsub("^%s+", "")) end
    end
  end
  return nil
end

---Reads the output of `pytest --collect-only -q`: the ids, and for each
---file pytest could not collect the error line it gave ("ERROR
---collecting" sections, the exception's "E   " line).
---@param stdout string
---@param stderr string
---@param code integer
---@return novapipe.Collection
function M.parse(stdout, stderr, code)
  local ids, errors = {}, {}
  local section -- the file an "ERROR collecting" section is about
  local listing = true -- the ids come first, before any "===" header
  for line in stdout:gmatch("[^\r\n]+") do
    local title = line:match("^_+ ERROR collecting (.-) _+$")
    if title then
      section = title
      errors[section] = errors[section] or "pytest could not import it"
    elseif line:match("^[_=]+ ") or line:match("^[_=]+$") then
      section = nil
      if line:match("^=") then listing = false end
    elseif section then
      local e = line:match("^E   (%S.*)$")
      if e then errors[section] = e end
    else
      local bad = line:match("^ERROR (%S+)")
      if bad then
        local why = line:match("^ERROR %S+ %- (.+)$")
        if not errors[bad] or (why and errors[bad] == "pytest could not import it") then
          errors[bad] = why or errors[bad] or "pytest could not collect it"
        end
      elseif listing and line:find("::", 1, true) and not line:find("^[=_!]") then
        ids[line] = true
      end
    end
  end
  if code ~= 0 and code ~= 5 and not next(errors) then
    errors[("(pytest exit %d)"):format(code)] = run_error(stdout, stderr) or ("pytest ended with exit code %d"):format(code)
  end
  return { ids = ids, errors = errors, code = code }
end

---Collects the tests under root with pytest, naming root and every
---directory under it.
---@param py string the Python that has pytest
---@param root string
---@return novapipe.Collection|nil
---@return string? error
function M.collect(py, root)
  local args = { py, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", root }
  local dirs = fs.walk(root, { dirs = true, exclude = { "__pycache__", ".*" } }) or {}
  for _, d in ipairs(dirs) do
    if lfs.attributes(root .. "/" .. d, "mode") == "directory" then args[#args + 1] = root .. "/" .. d end
  end
  local r, err = process.run(args, { stdin = "null" })
  if not r then return nil, err end
  return M.parse(r.stdout or "", r.stderr or "", r.code or -1)
end

local sorted = require("novapipe._tables").sorted_keys

---Each collection error as one line: "file: pytest's error line".
---@param c novapipe.Collection
---@return string[]
function M.error_lines(c)
  local lines = {}
  for _, f in ipairs(sorted(c.errors)) do lines[#lines + 1] = ("%s: %s"):format(f, c.errors[f]) end
  return lines
end

---Why a collection proves nothing about a move (pytest ended with exit
---2, 3 or 4, could not collect a file, or collected no test while
---`with_tests` files hold tests), as one line with pytest's own error;
---nil when it proves what it can.
---@param c novapipe.Collection
---@param with_tests integer test files analyze found tests in
---@return string|nil
function M.unproven(c, with_tests)
  local errs = M.error_lines(c)
  if #errs > 0 then
    local more = #errs > 1 and (" (and %d more)"):format(#errs - 1) or ""
    return ("pytest cannot collect %s%s"):format(errs[1], more)
  end
  if c.code == 2 or c.code == 3 or c.code == 4 then
    return ("pytest ended with exit code %d while collecting"):format(c.code)
  end
  if not next(c.ids) and with_tests > 0 then
    return ("pytest collects no test, while %d test file%s hold%s tests"):format(with_tests,
      with_tests == 1 and "" or "s", with_tests == 1 and "s" or "")
  end
  return nil
end

---Runs the given test files with pytest; returns outcome by test
---(file::class::name, with the file mapped through `map` when given), or
---nil and an error.
---@param py string
---@param files string[]
---@param map? table<string, string>
---@return table<string, string>|nil
---@return string? error
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
---@return string[]
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
---afterwards (mapped through the moves) and new collection errors, each
---with pytest's error line.
---@param before novapipe.Collection
---@param after novapipe.Collection
---@param moves {from: string, to: string}[]
---@return string[] problems
function M.compare(before, after, moves)
  local map = {}
  for _, m in ipairs(moves) do map[m.from] = m.to end
  local problems = {}
  for _, id in ipairs(sorted(before.ids)) do
    local file, rest = id:match("^(.-)(::.*)$")
    local want = map[file] and (map[file] .. rest) or id
    if not after.ids[want] then
      local why = after.errors[map[file] or file]
      problems[#problems + 1] = "missing after the migration: " .. want .. (why and (" (" .. why .. ")") or "")
    end
  end
  -- a file that failed to collect before may fail in its new place too
  local known = {}
  for f in pairs(before.errors) do known[map[f] or f] = true end
  for _, f in ipairs(sorted(after.errors)) do
    if not known[f] then problems[#problems + 1] = ("new collection error: %s: %s"):format(f, after.errors[f]) end
  end
  table.sort(problems)
  return problems
end

return M
