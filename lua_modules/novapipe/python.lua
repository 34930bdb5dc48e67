-- Finding the Python that can run pytest. `python3` on PATH may be one
-- without pytest (pyenv, a virtualenv), so each candidate is asked. A Python
-- chosen explicitly ($NOVAPIPE_PYTHON, or `python` in novapipe.lua) is the
-- only one tried: another would not be what was asked for.
local process = require "novapipe.process"

local M = {}

local debian = { pytest = "python3-pytest", pytest_cov = "python3-pytest-cov", xdist = "python3-pytest-xdist",
                 coverage = "python3-coverage" }

-- Asks a Python which of `modules` it cannot import, without importing them.
local CHECK = "import importlib.util as u, sys; m = [n for n in sys.argv[1:] if u.find_spec(n) is None]; "
  .. "print(' '.join(m)); sys.exit(1 if m else 0)"

---The Debian packages that provide Python modules.
---@param modules string[]
---@return string
function M.debian_packages(modules)
  local names = {}
  for _, m in ipairs(modules) do names[#names + 1] = debian[m] or ("python3-" .. m:gsub("_", "-")) end
  return table.concat(names, " ")
end

---The modules of `modules` that `exe` cannot import, or nil when it does
---not run at all.
---@return string[]|nil
local function missing(exe, modules)
  local argv = { exe, "-c", CHECK }
  for _, m in ipairs(modules) do argv[#argv + 1] = m end
  local r = process.run(argv, { stdin = "null" })
  if not r or (r.code ~= 0 and r.code ~= 1) then return nil end
  local list = {}
  for m in (r.stdout or ""):gmatch("%S+") do list[#list + 1] = m end
  return list
end

---Finds a Python that can import every module in `modules`.
---@param modules? string[] default {"pytest"}
---@param configured? string `python` from novapipe.lua
---@return string|nil python
---@return string? error one line naming what to install
function M.find(modules, configured)
  modules = modules or { "pytest" }
  local env = os.getenv("NOVAPIPE_PYTHON")
  local explicit, source = nil, nil
  if env and env ~= "" then explicit, source = env, "NOVAPIPE_PYTHON"
  elseif configured then explicit, source = configured, "python in novapipe.lua" end
  if explicit then
    local exe = process.which(explicit)
    local lacks = exe and missing(exe, modules)
    if not exe or not lacks then
      return nil, ("%s names '%s', which is not a Python that runs"):format(source, explicit)
    end
    if #lacks > 0 then
      return nil, ("%s names %s, which cannot import %s; install %s for it, or choose another Python")
        :format(source, exe, table.concat(lacks, ", "), M.debian_packages(lacks))
    end
    return exe
  end
  local seen, lacks = {}, nil
  for _, name in ipairs({ "python3", "/usr/bin/python3" }) do
    local exe = process.which(name)
    if exe and not seen[exe] then
      seen[exe] = true
      local m = missing(exe, modules)
      if m and #m == 0 then return exe end
      -- Name what the closest candidate lacks.
      if m and (not lacks or #m < #lacks) then lacks = m end
    end
  end
  lacks = lacks and #lacks > 0 and lacks or modules
  return nil, ("no Python can import %s; install it with: apt-get install %s (or set NOVAPIPE_PYTHON)")
    :format(table.concat(lacks, ", "), M.debian_packages(lacks))
end

return M
