-- Finding the Python that can run pytest. `python3` on PATH may be one
-- without pytest (pyenv, a virtualenv), so each candidate is asked. A Python
-- chosen explicitly ($NOVAPIPE_PYTHON, or `python` in novapipe.lua) is the
-- only one tried: another would not be what was asked for.
--
-- The tiers ask without a separate start: pytest runs through a bootstrap
-- that checks the modules first and exits with a marker when one is
-- missing, so a Python that has them costs nothing extra.
local process = require "novapipe.process"

local M = {}

local debian = { pytest = "python3-pytest", pytest_cov = "python3-pytest-cov", xdist = "python3-pytest-xdist",
                 coverage = "python3-coverage",
                 -- in the standard library from Python 3.11 (Debian 12's python3)
                 tomllib = "python3 (3.11 or later)", zipfile = "python3" }

-- What pip calls the modules novapipe needs; nil for those of the standard
-- library (no pip installs them: they come with the Python).
local pip = { pytest = "pytest", pytest_cov = "pytest-cov", xdist = "pytest-xdist", coverage = "coverage",
              tomllib = false, zipfile = false }

-- Python code that says how the running Python was installed, so the
-- advice for a missing module fits it: "venv" (sys.prefix is not
-- sys.base_prefix), "pyenv" (under ~/.pyenv or $PYENV_ROOT), "debian"
-- (Debian's own, in /usr with its dist-packages), else "other".
local KIND = "k = ('venv' if sys.prefix != getattr(sys, 'base_prefix', sys.prefix) else "
  .. "'pyenv' if '/.pyenv/' in sys.prefix + '/' or (os.environ.get('PYENV_ROOT') and "
  .. "sys.prefix.startswith(os.environ['PYENV_ROOT'])) else "
  .. "'debian' if sys.prefix == '/usr' and os.path.isdir('/usr/lib/python3/dist-packages') else 'other')"

-- Asks a Python which of `modules` it cannot import, without importing
-- them, and how it was installed: prints the kind, then the modules.
local CHECK = "import importlib.util as u, os, sys; " .. KIND .. "; "
  .. "m = [n for n in sys.argv[1:] if u.find_spec(n) is None]; "
  .. "print(' '.join([k] + m)); sys.exit(1 if m else 0)"

---The Debian packages that provide Python modules.
---@param modules string[]
---@return string
function M.debian_packages(modules)
  local names = {}
  for _, m in ipairs(modules) do names[#names + 1] = debian[m] or ("python3-" .. m:gsub("_", "-")) end
  return table.concat(names, " ")
end

---The modules of `modules` that `exe` cannot import and how that Python
---was installed (see KIND), or nil when it does not run at all.
---@return string[]|nil missing
---@return string? kind
local function missing(exe, modules)
  local argv = { exe, "-c", CHECK }
  for _, m in ipairs(modules) do argv[#argv + 1] = m end
  local r = process.run(argv, { stdin = "null" })
  if not r or (r.code ~= 0 and r.code ~= 1) then return nil end
  local list, kind = {}, nil
  for m in (r.stdout or ""):gmatch("%S+") do
    if kind then list[#list + 1] = m else kind = m end
  end
  return list, kind
end

-- Starts pytest after checking, without importing them, that the modules
-- novapipe needs are there; when one is missing, says how this Python was
-- installed and which are missing ("novapipe-missing: venv pytest") and
-- exits with MISSING_EXIT before pytest does anything.
M.MISSING_EXIT = 97
M.MISSING_MARK = "novapipe-missing:"
-- The events channel (NOVAPIPE_EVENTS_FD) is moved before pytest opens
-- anything: to a descriptor of 100 or above (10 or above when the limit on
-- open files is lower; where it is when neither can be had), closed on
-- exec, the one given closed; the variable then names the copy (the plugin
-- takes it out of the environment), or is gone when no such descriptor
-- was open. Done later,
-- in the plugin, descriptor 3 could already be one of pytest's own (its
-- capture saves stdout in the lowest free descriptor).
local BOOTSTRAP = table.concat({
  "import importlib.util as u, os, sys",
  "e = os.environ.pop('NOVAPIPE_EVENTS_FD', '')",
  "if e.isdigit():",
  "    import fcntl",
  "    for low in (100, 10, None):",
  "        try:",
  "            if low is None:",
  "                os.fstat(int(e)); os.environ['NOVAPIPE_EVENTS_FD'] = e",
  "            else:",
  "                os.environ['NOVAPIPE_EVENTS_FD'] = str(fcntl.fcntl(int(e), fcntl.F_DUPFD_CLOEXEC, low))",
  "                os.close(int(e))",
  "            break",
  "        except OSError:",
  "            pass",
  "m = [n for n in os.environ.pop('NOVAPIPE_REQUIRE', 'pytest').split(',') if u.find_spec(n) is None]",
  "if m:",
  "    " .. KIND,
  "    sys.stderr.write('" .. M.MISSING_MARK .. " ' + ' '.join([k] + m) + '\\n'); sys.exit(" .. M.MISSING_EXIT .. ")",
  "import pytest",
  -- novapipe's plugin from its bytecode, not recompiled by pytest's
  -- assertion rewriting (see the plugin's docstring; under -OO there is
  -- no docstring, and pytest would warn that it came first)
  "if sys.flags.optimize < 2 and any(a == '-p' and b == 'novapipe_pytest' for a, b in zip(sys.argv, sys.argv[1:])):",
  "    try:",
  "        import novapipe_pytest",
  "    except ImportError:",
  "        pass",
  "sys.argv[0] = 'pytest'",
  "sys.exit(pytest.console_main())",
}, "\n")

---The candidates for running pytest, in order: the explicitly chosen one
---alone ($NOVAPIPE_PYTHON, else `python` in novapipe.lua), or python3 on
---PATH then /usr/bin/python3. Each with where it came from.
---@param configured? string
---@return {exe: string|nil, name: string, source?: string}[]
function M.candidates(configured)
  local env = os.getenv("NOVAPIPE_PYTHON")
  if env and env ~= "" then return { { exe = process.which(env), name = env, source = "NOVAPIPE_PYTHON" } } end
  if configured then return { { exe = process.which(configured), name = configured, source = "python in novapipe.lua" } } end
  local list, seen = {}, {}
  for _, name in ipairs({ "python3", "/usr/bin/python3" }) do
    local exe = process.which(name)
    if exe and not seen[exe] then
      seen[exe] = true
      list[#list + 1] = { exe = exe, name = name }
    end
  end
  return list
end

---The command line that runs pytest with `args` under `exe`, checking
---first for `modules` (the environment must carry NOVAPIPE_REQUIRE, see
---M.require_env).
---@param exe string
---@param args string[]
---@return string[]
function M.pytest_argv(exe, args)
  local argv = { exe, "-c", BOOTSTRAP }
  for _, a in ipairs(args) do argv[#argv + 1] = a end
  return argv
end

---@param modules string[]
---@return string
function M.require_env(modules)
  return table.concat(modules, ",")
end

---How to install `lacks` into the Python `exe`, which was installed as
---`kind` says: Debian's own takes Debian's packages (apt-get), any other
---(a virtualenv, pyenv's, one built by hand) pip, run by that Python.
---@param exe? string
---@param kind? string "debian", "venv", "pyenv" or "other"; nil when unknown (Debian's is advised)
---@param lacks string[]
---@return string
function M.install_advice(exe, kind, lacks)
  if not exe or kind == nil or kind == "debian" then
    return "apt-get install " .. M.debian_packages(lacks)
  end
  local names, stdlib = {}, {}
  for _, m in ipairs(lacks) do
    if pip[m] == false then stdlib[#stdlib + 1] = m
    else names[#names + 1] = pip[m] or m:gsub("_", "-") end
  end
  local advice = #names > 0 and ("%s -m pip install %s"):format(exe, table.concat(names, " ")) or ""
  if #stdlib > 0 then
    advice = advice .. (advice ~= "" and "; " or "")
      .. ("%s comes with Python 3.11 or later: use one"):format(table.concat(stdlib, ", "))
  end
  return advice
end

local KIND_NAMES = { venv = "a virtualenv", pyenv = "a pyenv Python", other = "not Debian's" }

---The one line for a search that found no Python with `lacks` (what the
---closest candidate missed), with the advice that fits how that Python
---was installed (`kind`, see M.install_advice).
---@param candidate? {exe: string|nil, name: string, source?: string}
---@param lacks string[]|nil
---@param kind? string
---@return string
function M.not_found(candidate, lacks, kind)
  -- pyenv's shims are scripts: the path says what the Python cannot.
  local pyenv_root = os.getenv("PYENV_ROOT")
  if candidate and candidate.exe and (candidate.exe:find("/.pyenv/", 1, true)
      or (pyenv_root and pyenv_root ~= "" and candidate.exe:sub(1, #pyenv_root + 1) == pyenv_root .. "/")) then
    kind = kind == "venv" and "venv" or "pyenv"
  end
  local what = KIND_NAMES[kind] and (" (%s)"):format(KIND_NAMES[kind]) or ""
  if candidate and candidate.source then
    if not candidate.exe or not lacks then
      return ("%s names '%s', which is not a Python that runs"):format(candidate.source, candidate.name)
    end
    return ("%s names %s, which cannot import %s%s; install it with: %s, or choose another Python")
      :format(candidate.source, candidate.exe, table.concat(lacks, ", "), what,
        M.install_advice(candidate.exe, kind, lacks))
  end
  lacks = lacks or { "pytest" }
  if candidate and candidate.exe and kind and kind ~= "debian" then
    return ("no Python can import %s (the closest, %s, is %s); install it with: %s (or set NOVAPIPE_PYTHON)")
      :format(table.concat(lacks, ", "), candidate.exe, KIND_NAMES[kind], M.install_advice(candidate.exe, kind, lacks))
  end
  return ("no Python can import %s; install it with: %s (or set NOVAPIPE_PYTHON)")
    :format(table.concat(lacks, ", "), M.install_advice(nil, nil, lacks))
end

---Finds a Python that can import every module in `modules` (one Python
---start per candidate; the tiers avoid even that, see M.pytest_argv).
---@param modules? string[] default {"pytest"}
---@param configured? string `python` from novapipe.lua
---@return string|nil python
---@return string? error one line naming what to install
function M.find(modules, configured)
  modules = modules or { "pytest" }
  local list = M.candidates(configured)
  local lacks, closest, kind
  for _, c in ipairs(list) do
    local m, k
    if c.exe then m, k = missing(c.exe, modules) end
    if m and #m == 0 then return c.exe end
    -- Name what the closest candidate lacks.
    if m and (not lacks or #m < #lacks) then lacks, closest, kind = m, c, k end
  end
  local explicit = list[1] and list[1].source and list[1] or nil
  return nil, M.not_found(explicit or closest, lacks or (not explicit and modules or nil), kind)
end

return M
