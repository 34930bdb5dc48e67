-- Finding the Python that can run pytest. `python3` on PATH may be one
-- without pytest (pyenv, a virtualenv), so each candidate is asked.
local process = require "novapipe.process"

local M = {}

---The candidates, in order: $NOVAPIPE_PYTHON, the configured one, python3
---on PATH, then Debian's /usr/bin/python3.
---@param configured? string
---@return string[]
function M.candidates(configured)
  local list, seen = {}, {}
  local function add(p)
    if p and p ~= "" and not seen[p] then
      seen[p] = true
      list[#list + 1] = p
    end
  end
  add(os.getenv("NOVAPIPE_PYTHON"))
  add(configured)
  add(process.which("python3"))
  add("/usr/bin/python3")
  return list
end

---Finds a Python that can import every module in `modules`.
---@param modules? string[] default {"pytest"}
---@param configured? string a path or name to try first
---@return string|nil python
---@return string? error one line naming what to install
function M.find(modules, configured)
  modules = modules or { "pytest" }
  local check = "import " .. table.concat(modules, ", ")
  for _, py in ipairs(M.candidates(configured)) do
    local exe = process.which(py)
    if exe then
      local r = process.run({ exe, "-c", check }, { stdin = "null" })
      if r and r.code == 0 then return exe end
    end
  end
  return nil, ("no Python can import %s; install it with: apt-get install %s (or set NOVAPIPE_PYTHON)")
    :format(table.concat(modules, ", "), M.debian_packages(modules))
end

local debian = { pytest = "python3-pytest", pytest_cov = "python3-pytest-cov", xdist = "python3-pytest-xdist",
                 coverage = "python3-coverage" }

---The Debian packages that provide Python modules.
---@param modules string[]
---@return string
function M.debian_packages(modules)
  local names = {}
  for _, m in ipairs(modules) do names[#names + 1] = debian[m] or ("python3-" .. m:gsub("_", "-")) end
  return table.concat(names, " ")
end

return M
