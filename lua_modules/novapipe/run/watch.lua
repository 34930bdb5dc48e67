-- novapipe watch: run_tests once, then again on each save, on the test
-- files the saved files affect (novapipe.select.changed) plus the tests
-- that failed in the run before (novapipe.run.record's selection). Each
-- run is a run of run_tests as `novapipe run run_tests` makes it, with the
-- saved files given to it (ctx.watch): its stages, services, results,
-- record and audit entry are those of any run.
local errors = require "novapipe._errors"
local fs = require "novapipe.fs"
local lfs = require "lfs"
local P = require "novapipe.path"

local M = {}

-- What watch refuses: it selects each run itself.
local REFUSED = { "--changed", "--last-failed", "--lf", "--failed-first", "--ff", "--shard", "--shard-by", "--shard-dir" }

local function refuse(args)
  for _, a in ipairs(args) do
    if a == "--" then return end
    for _, name in ipairs(REFUSED) do
      if a == name or a:sub(1, #name + 1) == name .. "=" then
        errors.usage("watch: %s cannot be used here (watch selects what each run runs)", name)
      end
    end
  end
end

local function below(dir, rel)
  return dir ~= nil and (rel == dir or P.below(dir, rel))
end

---The ignore function given to fs.watch: coverage data and the results
---and coverage HTML directories of the configuration (.git, __pycache__
---and .novapipe the watch skips by itself).
---@param cfg novapipe.Config
---@return fun(rel: string, is_dir: boolean): boolean
function M.ignorer(cfg)
  local dirs = {}
  for _, d in ipairs({ cfg.results, cfg.coverage and cfg.coverage.html }) do
    if type(d) == "string" and d ~= "" then dirs[#dirs + 1] = P.normalize(d) end
  end
  return function(rel)
    if P.basename(rel):match("^%.coverage") then return true end
    for _, d in ipairs(dirs) do
      if below(d, rel) then return true end
    end
    return false
  end
end

-- The lines of a .gitignore that watch follows outside a git repository:
-- each a pattern (fs.match) on the path, with "/" in it, or else on any
-- component; a trailing "/" is a directory, "!" lines are not followed.
local function gitignore_patterns(root)
  local text = fs.read(root .. "/.gitignore")
  local out = {}
  for line in (text or ""):gmatch("[^\n]+") do
    line = line:gsub("%s+$", "")
    if line ~= "" and not line:match("^#") and not line:match("^!") then
      local dir = line:match("/$") ~= nil
      line = line:gsub("/$", "")
      local anchored = line:find("/", 1, true) ~= nil
      out[#out + 1] = { pattern = line:gsub("^/", ""), anchored = anchored, dir = dir }
    end
  end
  return out
end

local function gitignored(patterns, rel)
  local parts = {}
  for c in rel:gmatch("[^/]+") do parts[#parts + 1] = c end
  for _, p in ipairs(patterns) do
    if p.anchored then
      -- the path, or a directory above it
      local prefix = ""
      for i, c in ipairs(parts) do
        prefix = prefix == "" and c or (prefix .. "/" .. c)
        if (i < #parts or not p.dir) and fs.match(p.pattern, prefix) then return true end
      end
    else
      for i, c in ipairs(parts) do
        if (i < #parts or not p.dir) and fs.match(p.pattern, c) then return true end
      end
    end
  end
  return false
end

---What of `paths` git ignores: a set. In a git repository one
---`git check-ignore` for the batch (a tracked file is never ignored);
---outside one, the patterns of the root's .gitignore.
---@param root string
---@param paths string[]
---@param git_repo boolean
---@return table<string, boolean>
function M.ignored(root, paths, git_repo)
  local out = {}
  if #paths == 0 then return out end
  if git_repo then
    -- the paths as arguments, a few hundred a call (no file to write);
    -- git prints the ignored ones a line each, C-quoted when they hold a
    -- quote, a backslash or a control character
    local function unquote(line)
      if line:sub(1, 1) ~= '"' then return line end
      local esc = { n = "\n", t = "\t", ['"'] = '"', ["\\"] = "\\", a = "\a", b = "\b", f = "\f", r = "\r", v = "\v" }
      local body, parts, j = line:sub(2, -2), {}, 1
      while j <= #body do
        local c = body:sub(j, j)
        local octal = c == "\\" and body:match("^%d%d%d", j + 1)
        if octal then
          parts[#parts + 1], j = string.char(tonumber(octal, 8)), j + 4
        elseif c == "\\" then
          local e = body:sub(j + 1, j + 1)
          parts[#parts + 1], j = esc[e] or e, j + 2
        else
          parts[#parts + 1], j = c, j + 1
        end
      end
      return table.concat(parts)
    end
    for first = 1, #paths, 200 do
      local argv = { "git", "-c", "core.quotePath=false", "check-ignore", "--" }
      for i = first, math.min(#paths, first + 199) do argv[#argv + 1] = paths[i] end
      local r = require("novapipe.process").run(argv, { cwd = root, stdin = "null" })
      if r and (r.code == 0 or r.code == 1) then
        for line in (r.stdout or ""):gmatch("[^\n]+") do out[unquote(line)] = true end
      end
    end
    return out
  end
  local patterns = gitignore_patterns(root)
  for _, p in ipairs(paths) do
    if gitignored(patterns, p) then out[p] = true end
  end
  return out
end

---A batch of fs.watch's changes as changed.select takes them (a rename is
---its new path and its old one deleted), without the ignored paths, and
---the paths to show; a "rescan" (events lost) is returned as `true`.
---@return novapipe.Change[]|true|nil changes, nil when all are ignored
---@return string[] shown
function M.changes(batch, root, git_repo)
  local paths = {}
  for _, c in ipairs(batch) do
    if c.kind == "rescan" then return true, { "(events lost: everything)" } end
    paths[#paths + 1] = c.path
    if c.from then paths[#paths + 1] = c.from end
  end
  local ignored = M.ignored(root, paths, git_repo)
  local STATUS = { modified = "modified", created = "added", deleted = "deleted", renamed = "renamed" }
  local list, shown = {}, {}
  for _, c in ipairs(batch) do
    if not ignored[c.path] then
      list[#list + 1] = { path = c.path, status = STATUS[c.kind] or "modified", from = c.from }
      shown[#shown + 1] = c.from and (c.from .. " -> " .. c.path) or c.path
    end
    if c.from and not ignored[c.from] then list[#list + 1] = { path = c.from, status = "deleted" } end
  end
  if #list == 0 then return nil, shown end
  return list, shown
end

---Runs the loop: the first run, then a run per batch of saves, until
---Ctrl-C (the interrupt goes up: the host ends every child and exits
---130). Returns the exit code when it ends otherwise: the first run's
---when it was a usage or configuration error (2), or 2 when the tree
---cannot be watched.
---@param args string[] run_tests's options
---@param run fun(args: table): integer `novapipe run` (cli.commands.run)
---@return integer
function M.loop(args, run)
  refuse(args)
  local start = lfs.currentdir()
  local project = require("novapipe.run.project").find(start)
  local root = project.root
  local ok_cd = lfs.chdir(root)
  if not ok_cd then errors.usage("cannot enter the project's directory %s", root) end
  local ctx = require("novapipe.run.context").new({ project = project })
  lfs.chdir(start)
  local cfg = ctx.config
  local w <close>, err = fs.watch(root, { ignore = M.ignorer(cfg) })
  if not w then errors.usage("watch: %s", err) end
  local r = require("novapipe.process").run({ "git", "rev-parse", "--is-inside-work-tree" }, { cwd = root, stdin = "null" })
  local git_repo = r ~= nil and r.code == 0 and (r.stdout or ""):match("true") ~= nil

  -- The servers the runs' tiers start (a throwaway PostgreSQL) are kept
  -- for the whole watch, reset between runs, and stopped when it ends,
  -- however it ends (Ctrl-C included).
  local pool <close> = require("novapipe.services._pool").new()
  local function one(changes)
    local code = run({ pipeline = "run_tests", args = args, watch = { changes = changes, services = pool } })
    -- each run finds the project from where watch started, as the first
    lfs.chdir(start)
    return code
  end
  local code = one(nil)
  if code == errors.EXIT.usage then return code end
  local watching = ("watching %s (%s); Ctrl-C ends"):format(root,
    git_repo and "git's ignores" or "no git repository: .gitignore's lines")
  ctx.sink:print(watching)
  while true do
    local batch, rerr = w:read()
    if not batch then errors.usage("watch: %s", rerr) end
    local changes, shown = M.changes(batch, root, git_repo)
    if changes then
      -- on a terminal each run is drawn on a clear screen; elsewhere the
      -- runs follow each other
      ctx.sink:clear()
      ctx.sink:print(("---- %s  saved: %s ----"):format(os.date("%H:%M:%S"), table.concat(shown, ", ")))
      one(changes ~= true and changes or nil)
      ctx.sink:print(watching)
    end
  end
end

return M
