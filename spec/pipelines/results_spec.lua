-- Results are data: every test as an event from novapipe's pytest plugin,
-- read defensively, giving the counts; JUnit XML only when asked for, and
-- then agreeing with the events.
local cjson = require "cjson"
local H = require "spec.support.h"

local TESTS = "backend/app/tests/standalone/"

-- A pipeline that runs the standalone tier and writes each test's result
-- (the stage result's `tests`) as JSON, through the sink.
local DUMP = [[
local np = require "novapipe"
return np.pipeline {
  description = "dump results",
  options = { { "--junit", "junit" }, { "--parallel", "workers", arg = "N", convert = np.convert.positive_integer } },
  stages = function(o)
    local stages = np.tiers { only = { "standalone" }, junit = o.junit, parallel = o.parallel }
    local run = stages[1].run
    stages[1].run = function(ctx)
      local r = run(ctx)
      assert(ctx.sink:write("results.json", np.json.encode({ tests = r.tests, counts = r.counts, notes = r.notes or {} })))
      return r
    end
    return stages
  end,
}
]]

local SUITE = [[
import pytest

@pytest.fixture
def broken():
    raise RuntimeError("setup went wrong")

def test_pass():
    pass

@pytest.mark.security
@pytest.mark.hipaa("164.312(b)")
def test_fail():
    x = 41
    assert x == 42, "the answer\nsecond line"

def test_error(broken):
    pass

def test_skip():
    pytest.skip("not today")

@pytest.mark.xfail(reason="known")
def test_xfail():
    assert False

@pytest.mark.xfail(reason="fixed?")
def test_xpass():
    pass
]]

describe("results", function()
  local keep = H.temporaries(after_each)
  local function project(files)
    files["pipelines/dump.lua"] = DUMP
    return keep(H.tree(files))
  end
  local function dump(root, args)
    local argv = { "-C", root, "--no-color", "run", "dump" }
    for _, a in ipairs(args or {}) do argv[#argv + 1] = a end
    local r = H.novapipe(argv)
    local text = H.read(root .. "/results.json")
    assert.truthy(text, r.stdout .. r.stderr)
    return cjson.decode(text), r
  end

  it("give every test as data: outcome, file and line, durations, message, location, report, markers", function()
    local root = project({ [TESTS .. "test_all.py"] = SUITE })
    local data, r = dump(root)
    assert.equal(1, r.code)
    local by = {}
    for _, t in ipairs(data.tests) do by[t.id:match("::(.*)$")] = t end
    assert.equal("passed", by.test_pass.outcome)
    local f = by.test_fail
    assert.equal("failed", f.outcome)
    assert.equal("backend/app/tests/standalone/test_all.py", f.file)
    assert.equal(10, f.line) -- pytest's line of a decorated test: its first decorator
    assert.equal("standalone", f.tier)
    assert.matches("^AssertionError: the answer$", f.message)
    assert.matches("test_all%.py:14$", f.location)
    assert.matches("assert x == 42", f.longrepr)
    assert.same({ "security", "hipaa" }, f.markers)
    assert.same({ "164.312(b)" }, f.hipaa)
    for _, k in ipairs({ "setup", "call", "teardown" }) do assert.is_number(f.durations[k]) end
    assert.equal("error", by.test_error.outcome)
    assert.matches("RuntimeError: setup went wrong", by.test_error.message)
    assert.equal("skipped", by.test_skip.outcome)
    assert.matches("not today", by.test_skip.message)
    assert.equal("xfailed", by.test_xfail.outcome)
    assert.equal("xpassed", by.test_xpass.outcome)
    assert.same({ tests = 6, passed = 1, failed = 1, errors = 1, skipped = 1, xfailed = 1, xpassed = 1, flaky = 0,
                  quarantined = 0 }, data.counts)
  end)

  it("give a collection error with its text", function()
    local root = project({ [TESTS .. "test_broken.py"] = "import no_such_module_anywhere\n" })
    local data = dump(root)
    assert.equal(1, #data.tests)
    local t = data.tests[1]
    assert.equal("error", t.outcome)
    assert.is_true(t.collect)
    assert.equal("ModuleNotFoundError: No module named 'no_such_module_anywhere'", t.message)
    assert.equal(TESTS .. "test_broken.py:1", t.location)
  end)

  it("give a syntax error in an imported module as the error and the line it names, not the line above it", function()
    local root = project({
      [TESTS .. "__init__.py"] = "",
      [TESTS .. "broken_helper.py"] = "X = 1\n\ndef f(:\n    pass\n",
      [TESTS .. "test_imports_it.py"] = "from . import broken_helper\n\ndef test_x():\n    pass\n",
    })
    local data = dump(root)
    assert.equal(1, #data.tests)
    local t = data.tests[1]
    assert.is_true(t.collect)
    assert.equal("SyntaxError: invalid syntax", t.message)
    assert.equal(TESTS .. "broken_helper.py:3", t.location)
  end)

  it("give a collection error of several lines by its first, and a chain by its last exception", function()
    local root = project({
      [TESTS .. "test_multi.py"] = 'raise RuntimeError("first line\\nsecond line")\n',
      [TESTS .. "test_chain.py"] = 'try:\n    import no_such_module_anywhere\nexcept ImportError as e:\n'
        .. '    raise ValueError("wrapped") from e\n',
    })
    local data = dump(root)
    local by = {}
    for _, t in ipairs(data.tests) do by[t.id] = t end
    assert.equal("RuntimeError: first line", by[TESTS .. "test_multi.py"].message)
    assert.equal("ValueError: wrapped", by[TESTS .. "test_chain.py"].message)
    assert.equal(TESTS .. "test_chain.py:4", by[TESTS .. "test_chain.py"].location)
  end)

  it("agree with pytest's JUnit XML, written only with --junit", function()
    local root = project({ [TESTS .. "test_all.py"] = SUITE })
    local without = dump(root)
    assert.is_nil(require("lfs").attributes(root .. "/backend/test-results"))
    local with = dump(root, { "--junit" })
    assert.same(without.counts, with.counts)
    assert.same({}, with.notes) -- a disagreement would be a note
    local xml = H.read(root .. "/backend/test-results/standalone-results.xml")
    local n = select(2, xml:gsub("<testcase ", ""))
    assert.equal(with.counts.tests, n)
  end)

  it("agree with pytest's JUnit XML on every outcome, also under --parallel 2", function()
    local more = SUITE .. [[

@pytest.mark.xfail(strict=True, reason="must fail")
def test_strict_xpass():
    pass

@pytest.fixture
def bad_teardown():
    yield
    raise RuntimeError("teardown went wrong")

def test_fails_then_teardown_errors(bad_teardown):
    assert False

def test_teardown_errors(bad_teardown):
    pass
]]
    local root = project({ [TESTS .. "test_all.py"] = more })
    local serial = dump(root, { "--junit" })
    -- as pytest counts them: "3 failed, 2 passed, 1 skipped, 1 xfailed, 1 xpassed, 3 errors"
    assert.same({ tests = 11, passed = 2, failed = 3, errors = 3, skipped = 1, xfailed = 1, xpassed = 1, flaky = 0,
                  quarantined = 0 }, serial.counts)
    assert.same({}, serial.notes)
    local parallel, r = dump(root, { "--junit", "--parallel", "2" })
    assert.equal(1, r.code, r.stderr)
    assert.same(serial.counts, parallel.counts)
    assert.same({}, parallel.notes) -- the JUnit XML's counts agree, or this would be a note
  end)

  it("say so when pytest's JUnit XML disagrees with the events, or is not JUnit XML", function()
    -- a conftest rewrites the file after pytest's JUnit writer and before
    -- the plugin's end event (sent when every sessionfinish has run)
    local function rewriting(text)
      return ("import pytest\n@pytest.hookimpl(trylast=True)\ndef pytest_sessionfinish(session):\n"
        .. "    open(session.config.option.xmlpath, 'w').write(%q)\n"):format(text)
    end
    local root = project({ [TESTS .. "test_one.py"] = "def test_pass():\n    pass\n",
      [TESTS .. "conftest.py"] = rewriting('<?xml version="1.0" encoding="utf-8"?><testsuites><testsuite name="pytest" '
        .. 'errors="0" failures="0" skipped="0" tests="0"></testsuite></testsuites>') })
    local got = dump(root, { "--junit" })
    assert.equal(1, got.counts.passed)
    assert.same({ "the JUnit XML counts no tests, novapipe's events 1 passed" }, got.notes)
    H.write(root .. "/" .. TESTS .. "conftest.py", rewriting("<testsuites><testsuite>"))
    got = dump(root, { "--junit" })
    assert.equal(1, #got.notes)
    assert.matches("standalone%-results%.xml:1: not valid JUnit XML", got.notes[1])
  end)

  it("come from novapipe's plugin loaded from its bytecode: not recompiled by pytest's assertion rewriting, no warning", function()
    local root = project({ [TESTS .. "test_loader.py"] = [[
import sys

def test_plugin_loaded_plainly():
    plugin = sys.modules["novapipe_pytest"]
    assert type(plugin.__loader__).__name__ == "SourceFileLoader", type(plugin.__loader__).__name__
]] })
    -- pytest's warning that a module came before its rewriting, made an
    -- error: pytest would stop before any test
    local got, r = dump(root, { "--", "-W", "error::pytest.PytestAssertRewriteWarning" })
    assert.equal(0, r.code, r.stdout)
    assert.equal(1, got.counts.passed)
    assert.same({}, got.notes)
  end)

  it("are missing, and the tier says why with exit 2, when pytest is told to leave the plugin out", function()
    local root = project({ [TESTS .. "test_one.py"] = "def test_pass():\n    pass\n" })
    local r = H.novapipe({ "-C", root, "--no-color", "run", "run_tests", "--standalone", "--", "-p", "no:novapipe_pytest" })
    assert.equal(2, r.code, r.stdout .. r.stderr)
    assert.matches("ERROR standalone [^\n]*\n%s*novapipe's pytest plugin sent no results %(is it disabled, as with "
      .. "%-p no:novapipe_pytest%?%)", r.stdout)
  end)

  it("keep the events channel out of a test's reach: descriptor 3, the variable and programs a test runs", function()
    local root = project({ [TESTS .. "test_reach.py"] = [[
import os

FORGED = b'{"e":"done","id":"backend/app/tests/standalone/test_reach.py::test_forged","o":"passed"}\n'

def test_cannot_reach_it():
    assert "NOVAPIPE_EVENTS_FD" not in os.environ
    try:
        os.write(3, FORGED)  # closed, or (reused) no longer the channel
    except OSError:
        pass
    # a program run by the shell inherits every descriptor not closed on exec
    os.system("echo '%s' >&3 2>/dev/null; for fd in $(ls /proc/self/fd); do echo '%s' >&$fd; done 2>/dev/null"
              % (FORGED.decode().strip(), FORGED.decode().strip()))
]] })
    local data, r = dump(root)
    assert.equal(0, r.code, r.stdout .. r.stderr)
    assert.equal(1, data.counts.tests)
    assert.equal(1, data.counts.passed)
    assert.same({}, data.notes)
    assert.equal("backend/app/tests/standalone/test_reach.py::test_cannot_reach_it", data.tests[1].id)
  end)

  it("ignore what a test writes on the events channel on purpose, with one note, never a traceback", function()
    -- (the plugin's own copy of the descriptor, which only a test that goes
    -- looking for it finds)
    local root = project({ [TESTS .. "test_hostile.py"] = [[
import os
import novapipe_pytest

def test_writes_garbage():
    for line in [b"\x00\xff\xfe garbage", b"not json", b"{\"e\": \"done\", \"id\": 5, \"o\": []}",
                 b"{\"e\": \"collected\", \"n\": \"many\"}", b"[1, 2, 3]", b"{\"e\": 42}",
                 b"{\"e\": \"done\", \"id\": \"x\", \"o\": \"exploded\"}", b"{" * 2000000]:
        os.write(novapipe_pytest._fd, line + b"\n")
]] })
    local data, r = dump(root)
    assert.equal(0, r.code, r.stdout .. r.stderr)
    assert.equal(1, data.counts.passed)
    assert.equal(1, data.counts.tests)
    assert.equal(1, #data.notes)
    assert.matches("ignored: not novapipe's plugin's", data.notes[1])
    assert.is_nil(r.stderr:find("traceback", 1, true))
    assert.matches("note: %d+ lines on the events channel ignored", r.stdout)
  end)
end)
