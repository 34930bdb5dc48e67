-- Typos fail loudly (issue #12): a mistyped path, a selection of nothing, a
-- tier directory that is not there, a run outside any project, a Python
-- without pytest, a misspelled setting or option. Each is one line and the
-- exit code that says what kind of mistake it was; the real binary, real
-- pytest, projects written into temporary directories.
local fs = require "novapipe.fs"
local H = require "spec.support.h"

local TESTS = "backend/app/tests/"
local PASSING = "def test_ok():\n    pass\n"

local function lines_of(s)
  local n = 0
  for _ in s:gmatch("[^\n]+") do n = n + 1 end
  return n
end

describe("typos fail loudly", function()
  local keep = H.temporaries(after_each)

  -- A project: files maps paths (relative to the root) to contents; the
  -- tests directory always exists.
  local function project(files)
    local root = keep(H.tree(files or {}))
    assert(fs.mkdir_p(root .. "/" .. TESTS, "0755"))
    return root
  end

  local function run(root, args, opts)
    local argv = { "-C", root, "--no-color", "run", "run_tests" }
    for _, a in ipairs(args or {}) do argv[#argv + 1] = a end
    return H.novapipe(argv, opts)
  end

  describe("a --filter path that does not exist", function()
    -- The integration tier asks for a PostgreSQL that cannot start: had any
    -- tier or service started, the output would say so.
    local function clinic()
      return project({
        ["novapipe.lua"] = "return { tiers = { integration = { services = { 'postgresql' } } } }\n",
        [TESTS .. "standalone/test_a.py"] = PASSING,
        [TESTS .. "integration/test_db.py"] = PASSING,
      })
    end
    local env = { DATABASE_URL = false, NOVAPIPE_PG_BINDIR = "/nonexistent" }

    for _, filter in ipairs({ TESTS .. "standalone/test_nope.py", "test_nope.py",
                              TESTS .. "standalone/test_nope.py::test_ok", TESTS .. "nodir/" }) do
      it(("is one line and exit 2 before any tier starts: %s"):format(filter), function()
        local r = run(clinic(), { "--filter", filter }, { env = env })
        assert.equal(2, r.code, r.stdout)
        assert.equal(1, lines_of(r.stderr), r.stderr)
        local file = filter:match("^(.-)::") or filter
        assert.matches("^novapipe: %-%-filter " .. file:gsub("%p", "%%%0") .. ": no such file or directory", r.stderr)
        assert.is_nil(r.stdout:find("standalone", 1, true), r.stdout)
        assert.is_nil(r.stdout:find("PostgreSQL", 1, true), r.stdout)
      end)
    end

    it("is a path only when it looks like one: a name is a -k expression", function()
      local r = run(clinic(), { "--standalone", "--filter", "test_ok" })
      assert.equal(0, r.code, r.stdout .. r.stderr)
      assert.matches("PASS%s+standalone[^\n]*1 passed", r.stdout)
    end)
  end)
end)
