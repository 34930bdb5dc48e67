-- Helpers the specs share: temporary directories, files, the binary.
local lfs = require "lfs"
local fs = require "novapipe.fs"

local H = {}

H.bin = os.getenv("NOVAPIPE_BIN") or (lfs.currentdir() .. "/build/novapipe")
H.sanitized = os.getenv("NOVAPIPE_SANITIZED") == "1" or os.getenv("NOVAPIPE_SANITIZED") == "ON"

---Makes a fresh temporary directory and returns its path.
function H.tmpdir()
  return assert(fs.mkdtemp("novapipe-spec-"))
end

---Removes a tree (rm -rf through a real process).
function H.rmrf(path)
  assert(fs.rmtree(path))
end

function H.write(path, text)
  local f = assert(io.open(path, "wb"))
  f:write(text)
  f:close()
end

function H.read(path)
  return (fs.read(path))
end

---Writes a tree into a new temporary directory: files maps paths (relative
---to it) to contents. Returns the directory.
function H.tree(files)
  local root = H.tmpdir()
  for path, text in pairs(files) do
    local dir = (root .. "/" .. path):match("^(.*)/")
    assert(fs.mkdir_p(dir, "0755"))
    H.write(root .. "/" .. path, text)
  end
  return root
end

---Runs git in root with a committer of the specs' own and main as the
---first branch; fails the spec when git fails. Returns the result.
---@param root string
---@return table
function H.git(root, ...)
  local argv = { "git", "-c", "user.email=dev@example.org", "-c", "user.name=dev", "-c", "init.defaultBranch=main" }
  for _, a in ipairs({ ... }) do argv[#argv + 1] = a end
  local r = assert(require("novapipe.process").run(argv, { cwd = root, stdin = "null" }))
  assert(r.code == 0, table.concat(argv, " ") .. ": " .. (r.stderr or ""))
  return r
end

---Makes `root` a git repository with everything in it committed ("start").
---@param root string
function H.git_repo(root)
  H.git(root, "init", "-q")
  H.git(root, "add", "-A")
  H.git(root, "commit", "-qm", "start")
end

---A project for run_tests: `files` maps paths (relative to the root) to
---contents; the tests directory (backend/app/tests) always exists.
---@param files? table<string, string>
---@return string root
function H.project(files)
  local root = H.tree(files or {})
  assert(fs.mkdir_p(root .. "/backend/app/tests/", "0755"))
  return root
end

---`novapipe -C root --no-color run run_tests ARGS...`, as H.novapipe.
---@param root string
---@param args? string[]
---@param opts? table
function H.run_tests(root, args, opts)
  local argv = { "-C", root, "--no-color", "run", "run_tests" }
  for _, a in ipairs(args or {}) do argv[#argv + 1] = a end
  return H.novapipe(argv, opts)
end

---Inside a describe, given busted's after_each: returns keep(path) -> path,
---and removes every path kept once each test is over.
function H.temporaries(after_each)
  local kept = {}
  after_each(function()
    for i = #kept, 1, -1 do
      H.rmrf(kept[i])
      kept[i] = nil
    end
  end)
  return function(path)
    kept[#kept + 1] = path
    return path
  end
end

-- An empty cache directory for the spawned novapipes, made once and
-- removed when the specs' Lua state closes.
local empty_cache
local function make_empty_cache()
  empty_cache = H.tmpdir()
  local path = empty_cache
  H._empty_cache_sentinel = setmetatable({}, { __gc = function() pcall(fs.rmtree, path) end })
end

---The environment that keeps a spawned novapipe's advisory database and
---CI detection off the machine's: XDG_CACHE_HOME an empty directory of the
---specs' (or `cache`), CI and osv-scanner's database variables unset. What
---`env` sets wins. H.novapipe starts from it.
---@param env? table<string, string|false>
---@param cache? string
---@return table<string, string|false>
function H.isolated_env(env, cache)
  if not cache and not empty_cache then make_empty_cache() end
  local out = { XDG_CACHE_HOME = cache or empty_cache, CI = false, OSV_SCANNER_LOCAL_DB_CACHE_DIRECTORY = false,
                OSV_SCALIBR_LOCAL_DB_CACHE_DIRECTORY = false }
  for k, v in pairs(env or {}) do out[k] = v end
  return out
end

---Runs the novapipe binary with args; returns the result (captured output).
---Its environment is H.isolated_env(opts.env): no spec's outcome depends
---on the machine's advisory cache or CI variable.
function H.novapipe(args, opts)
  local process = require "novapipe.process"
  local argv = { H.bin }
  for _, a in ipairs(args) do argv[#argv + 1] = a end
  opts = opts or {}
  opts.env = H.isolated_env(opts.env)
  return assert(process.run(argv, opts))
end

---A unique duration for `sleep`, so a spec can find its own processes by
---command line ("sleep 3600.123456").
function H.marker()
  H._n = (H._n or 0) + 1
  return ("3600.%d%03d"):format(math.random(100000, 999999), H._n)
end

---The pid of a process whose argv is exactly `argv`, or nil.
function H.find_process(...)
  local want = table.concat({ ... }, "\0") .. "\0"
  for pid in lfs.dir("/proc") do
    if pid:match("^%d+$") and H.read("/proc/" .. pid .. "/cmdline") == want then
      return tonumber(pid)
    end
  end
  return nil
end

---Headless Chromium with a private profile in `dir` (made there), quick
---to start and kept off the network: returns run(...) -> the result of
---chromium with these extra arguments, killed after `timeout` seconds
---(default 60). Fails the spec when chromium is not installed.
---@param dir string
---@param timeout? number
---@return fun(...: string): novapipe.Result
function H.chromium(dir, timeout)
  local process = require "novapipe.process"
  local exe = process.which("chromium")
  assert(exe, "chromium is not installed (scripts/setup.sh --test installs it)")
  local flags = { exe, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-extensions",
    "--user-data-dir=" .. dir .. "/chromium-profile" }
  return function(...)
    local argv = { table.unpack(flags) }
    for _, a in ipairs({ ... }) do argv[#argv + 1] = a end
    return assert(process.run(argv, { stdin = "null", timeout = timeout or 60, env = { HOME = dir } }))
  end
end

-- What H.failing_clinic adds to the example's test_twin.py.
local FAILURES = [[

import pytest as _p


@_p.fixture
def broken():
    raise RuntimeError("database not reachable")


def test_uses_broken(broken):
    pass


@_p.mark.xfail(strict=True, reason="should fail")
def test_strict_xpass():
    pass


def test_slow():
    import time
    time.sleep(0.05)
]]

---A copy of the bundled example in a new temporary directory, without
---what runs in the example itself left there (.novapipe). The caller
---removes it (or gives it to H.temporaries' keep).
---@return string root
function H.clinic()
  local copy = H.tmpdir()
  local r = require("novapipe.process").run({ "cp", "-a", "examples/clinic/.", copy })
  assert(r and r.code == 0, "cannot copy examples/clinic: " .. (r and r.stderr or ""))
  H.rmrf(copy .. "/.novapipe")
  return copy
end

---A copy of the bundled example (H.clinic)
---with the failures the daily loop's specs read: a failing test (the MRN
---mask expects the wrong digits, at test_patients.py:17), an erroring
---fixture, a strict xpass and a 50 ms test; `more` (Python) goes after
---them in test_twin.py. The caller removes the copy.
---@param more? string
---@return string root
function H.failing_clinic(more)
  local copy = H.clinic()
  local tests = copy .. "/backend/app/tests/standalone/"
  H.write(tests .. "test_patients.py", (H.read(tests .. "test_patients.py"):gsub('== "MRN%-%*%*%*%*42"', '== "MRN-****43"')))
  H.write(tests .. "test_twin.py", H.read(tests .. "test_twin.py") .. FAILURES .. (more or ""))
  return copy
end

return H
