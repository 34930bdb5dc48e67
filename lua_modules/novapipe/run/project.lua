-- The project a command works on, found as git finds its repository: the
-- directory novapipe starts in (the current one, or -C DIR) when it holds
-- novapipe.lua or the tests directory (backend/app/tests), else the
-- nearest directory above it that does. novapipe then works from there;
-- paths typed on the command line stay relative to where it started
-- (novapipe.pipeline rebases them).
--
-- A project found above is trusted as the current directory is only when
-- it is yours: its directory and its novapipe.lua (Lua that novapipe runs)
-- must belong to you or to root, and no one else may write them. Otherwise
-- a novapipe.lua someone left in /tmp would run as whoever typed
-- `novapipe run` in a directory under it.
local config = require "novapipe.config"
local errors = require "novapipe._errors"
local lfs = require "lfs"

local M = {}

---@class novapipe.Project
---@field root string the directory novapipe works from (absolute)
---@field start string where novapipe was started (absolute)
---@field found "here"|"above"|false where the project was found; false: nowhere, root is start
---@field marker? string what marked it: "novapipe.lua" or the tests directory

-- The tests directory a project without novapipe.lua has.
local function default_tests()
  return config.defaults().tests
end

-- What marks dir as a project's root, or nil.
local function marker_of(dir)
  local base = dir == "/" and "" or dir
  if lfs.attributes(base .. "/" .. config.FILE, "mode") == "file" then return config.FILE end
  if lfs.attributes(base .. "/" .. default_tests(), "mode") == "directory" then return default_tests() end
end

local function parent_of(dir)
  if dir == "/" then return nil end
  local p = dir:match("^(.*)/[^/]*$")
  return (p == nil or p == "") and "/" or p
end

-- Why a path found above may not be trusted, or nil when it may.
local function distrust(path)
  local a = lfs.attributes(path)
  if not a then return nil end
  local me = require("novapipe.proc").self().uid
  if a.uid ~= me and a.uid ~= 0 then return "belongs to another user" end
  local perm = a.permissions or ""
  if perm:sub(5, 5) == "w" or perm:sub(8, 8) == "w" then return "can be written by other users" end
end

---Finds the project from `start` (default: the current directory).
---Raises a usage error when the one found above cannot be trusted.
---@param start? string
---@return novapipe.Project
function M.find(start)
  start = start or lfs.currentdir()
  local dir = start
  while dir do
    local marker = marker_of(dir)
    if marker then
      if dir ~= start then
        for _, path in ipairs({ dir, (dir == "/" and "" or dir) .. "/" .. config.FILE }) do
          local why = distrust(path)
          if why then
            errors.outside("%s, found above %s, %s; novapipe does not work from it (run in your project, or use -C DIR)",
              path, start, why)
          end
        end
      end
      return { root = dir, start = start, found = dir == start and "here" or "above", marker = marker }
    end
    dir = parent_of(dir)
  end
  return { root = start, start = start, found = false }
end

---Finds the project and makes its root the current directory.
---@param start? string
---@return novapipe.Project
function M.enter(start)
  local p = M.find(start)
  if p.root ~= lfs.currentdir() and not lfs.chdir(p.root) then
    errors.usage("cannot enter the project's directory %s", p.root)
  end
  return p
end

---Raises the one-line error for a command that needs the tests directory
---when it is missing: outside any project, what was looked for (and the
---run leaves nothing behind, see errors.outside); in a project whose
---novapipe.lua names a tests directory that is not there, that setting.
---Returns quietly when the directory exists.
---@param cfg novapipe.Config
---@param project? novapipe.Project nil outside a run (a library call): the directory alone is checked
function M.require_tests(cfg, project)
  local mode = lfs.attributes(cfg.tests, "mode")
  if mode == "directory" then return end
  if project and project.found == false then
    errors.outside("no project here: neither %s nor any directory above it has a %s or a %s directory "
      .. "(run novapipe in your project, or use -C DIR)", project.start, config.FILE, default_tests())
  end
  errors.usage("test directory %s %s in %s (create it, or set tests in %s)", cfg.tests,
    mode and "is not a directory" or "does not exist", lfs.currentdir(), config.FILE)
end

return M
