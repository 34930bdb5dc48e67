-- The mutation harness of --changed (bench/changed/mutate.lua), run for
-- real: the real binary, real pytest on copies of the projects.
-- On the clinic example it is limited to the standalone and venv tiers and
-- to the modules they test (backend/app/domain, the security package):
-- with the integration tier (a throwaway PostgreSQL) and every module the
-- run takes some 40 s, too long for the suite; bench/README.md has that
-- run's figures. Two small projects check the mutations themselves (every
-- shape of def the raise mutation must handle) and that a test file the
-- selection cannot see is reported as missed, with exit 1.
local H = require "spec.support.h"

local function harness(args)
  local argv = { "exec", "bench/changed/mutate.lua" }
  for _, a in ipairs(args) do argv[#argv + 1] = a end
  return H.novapipe(argv, { env = { PYTHONDONTWRITEBYTECODE = "1" } })
end

local function result(r)
  local line = r.stdout:match("\nRESULT ([^\n]*)")
  assert(line, "no RESULT line:\n" .. r.stdout .. r.stderr)
  local out = {}
  for k, v in line:gmatch("([%w_]+)=(%S+)") do out[k] = tonumber(v) end
  return out
end

-- A row of the table: module, mutation, failed, selected, in scope, missed.
local function row(r, module, mutation)
  local f, s, n, m = r.stdout:match("\n" .. module:gsub("%p", "%%%0") .. "%s+" .. mutation
    .. "%s+(%d+)%s+(%d+)/(%d+)%s+(%d+)")
  assert(f, ("no row for %s %s:\n%s"):format(module, mutation, r.stdout))
  return { failed = tonumber(f), selected = tonumber(s), scope = tonumber(n), missed = tonumber(m) }
end

local SHAPES = [[
"""Functions of every shape the raise mutation must handle."""
import functools

LIMIT: int = 3  # the most a call gives


def one_liner(x): return x + 1


def wrapped(fn):
    @functools.wraps(fn)
    def inner(*args, **kw):
        return fn(*args, **kw)
    return inner


@wrapped
def decorated(a,
              key=lambda v: v,
              sep: str = "a:b") -> dict:
    '''A docstring
    on two lines: with a colon.'''
    return {"a": key(a), "sep": sep}


async def later(value):
    # a comment first
    """Async, with a comment before its docstring."""
    return value


class Box:
    """A class docstring."""

    def __init__(self, items=(1, 2)):
        self.items = list(items)[:LIMIT]

    @property
    def name(self):
        r"""A raw docstring \ with a backslash."""
        return "box"
]]

local function small_project(keep)
  return keep(H.tree({
    ["novapipe.lua"] = 'return { tests = "tests" }\n',
    ["app/__init__.py"] = "",
    ["app/shapes.py"] = SHAPES,
    -- read by path, not imported: no static analysis sees it
    ["app/hidden.py"] = "def answer():\n    return 42\n",
    ["tests/standalone/test_shapes.py"] = [[
import asyncio

from app.shapes import Box, decorated, later, one_liner


def test_one_liner():
    assert one_liner(1) == 2


def test_decorated():
    assert decorated(1) == {"a": 1, "sep": "a:b"}


def test_later():
    assert asyncio.run(later(3)) == 3


def test_box():
    assert Box((1, 2, 3, 4)).items == [1, 2, 3]
    assert Box().name == "box"
]],
    ["tests/standalone/test_hidden.py"] = [[
import pathlib
import runpy

ROOT = pathlib.Path(__file__).resolve().parents[2]


def test_hidden():
    assert runpy.run_path(str(ROOT / "app" / ("hid" + "den.py")))["answer"]() == 42
]],
    ["tests/standalone/test_alone.py"] = "def test_alone():\n    assert True\n",
  }))
end

describe("the mutation harness of --changed", function()
  local keep = H.temporaries(after_each)

  it("misses no failing test file on the clinic example, and its mutants do make tests fail", function()
    local r = harness({ "examples/clinic", "--tiers", "standalone,venv",
                        "--modules", "backend/app/domain/**", "--modules", "backend/app/infrastructure/security/**" })
    assert.equal(0, r.code, r.stdout .. r.stderr)
    assert.matches("5 test files in scope %(backend/app/tests/standalone backend/app/tests/venv%)", r.stdout)
    local res = result(r)
    -- patients, twin, audit, crypto, transport raise; transport's HSTS constant
    assert.equal(6, res.mutants)
    assert.equal(0, res.missed)
    assert.equal(0, res.invalid)
    assert.is_true(res.failing >= 5, r.stdout)
    assert.equal(res.failing, res.caught)
    assert.is_true(res.mean_fraction > 0 and res.mean_fraction < 1, r.stdout)
    -- a change to twin.py breaks test_twin.py alone, and only it is selected
    assert.same({ failed = 1, selected = 1, scope = 5, missed = 0 }, row(r, "backend/app/domain/twin.py", "raise"))
    -- the crypto module is tested by the venv tier's test_crypto.py
    local crypto = row(r, "backend/app/infrastructure/security/crypto.py", "raise")
    assert.is_true(crypto.failed >= 1 and crypto.missed == 0, r.stdout)
    local hsts = row(r, "backend/app/infrastructure/security/transport.py", "constant")
    assert.equal(1, hsts.failed)
    assert.equal(0, hsts.missed)
    assert.matches("no constant mutant %(no literal constant%): [^\n]*backend/app/domain/twin.py", r.stdout)
  end)

  it("makes every shape of def raise and changes a constant, each mutant valid Python that fails its test", function()
    local root = small_project(keep)
    local r = harness({ root, "--tiers", "standalone", "--modules", "app/shapes.py", "--diff" })
    assert.equal(0, r.code, r.stdout .. r.stderr)
    local res = result(r)
    assert.same({ mutants = 2, failing = 2, caught = 2, missed = 0, invalid = 0 },
      { mutants = res.mutants, failing = res.failing, caught = res.caught, missed = res.missed, invalid = res.invalid })
    assert.matches('%+def one_liner%(x%): raise RuntimeError%("mutant"%); return x %+ 1', r.stdout)
    assert.matches("on two lines: with a colon.'''\n%+    raise RuntimeError", r.stdout)
    assert.matches('comment before its docstring."""\n%+    raise RuntimeError', r.stdout)
    assert.matches('with a backslash."""\n%+        raise RuntimeError', r.stdout)
    assert.matches("%+        raise RuntimeError%(\"mutant\"%)\n         return fn", r.stdout)
    assert.matches("%+LIMIT: int = 4  # the most a call gives", r.stdout)
    assert.same({ failed = 1, selected = 1, scope = 3, missed = 0 }, row(r, "app/shapes.py", "raise"))
    -- the project's own files are untouched: the harness works on a copy
    assert.equal(SHAPES, H.read(root .. "/app/shapes.py"))
  end)

  it("reports a failing test file the selection does not see as missed, and exits 1", function()
    local root = small_project(keep)
    local r = harness({ root, "--tiers", "standalone", "--modules", "app/hidden.py" })
    assert.equal(1, r.code, r.stdout .. r.stderr)
    assert.matches("app/hidden.py%s+raise%s+1%s+0/3%s+1", r.stdout)
    assert.matches("MISSED tests/standalone/test_hidden.py", r.stdout)
    assert.matches("no constant mutant %(no literal constant%): app/hidden.py", r.stdout)
    assert.equal(1, result(r).missed)
  end)

  it("refuses a project whose unmutated suite fails, with exit 2", function()
    local root = small_project(keep)
    H.write(root .. "/tests/standalone/test_alone.py", "def test_alone():\n    assert False\n")
    local r = harness({ root, "--tiers", "standalone" })
    assert.equal(2, r.code, r.stdout .. r.stderr)
    assert.matches("the unmutated suite does not pass: tests/standalone/test_alone.py", r.stderr)
  end)
end)
