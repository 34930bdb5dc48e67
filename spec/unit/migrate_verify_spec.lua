-- Reading pytest --collect-only -q: the ids, and pytest's own error line
-- for each file it could not collect (the e2e specs run real pytest; this
-- one holds the shapes pytest 7 and 8 print, warnings summary included).
local verify = require "novapipe.migrate.verify"

local OUTPUT = [[
tests/unit/test_c.py::test_c
tests/unit/test_c.py::test_d[a b]

==================================== ERRORS ====================================
____________________ ERROR collecting tests/unit/test_a.py _____________________
ImportError while importing test module '/tmp/pt/tests/unit/test_a.py'.
Traceback:
tests/unit/test_a.py:1: in <module>
    import nonexistent_pkg_xyz
E   ModuleNotFoundError: No module named 'nonexistent_pkg_xyz'
_ ERROR collecting tests/unit/a long name/test_b.py _
E     File "/tmp/pt/tests/unit/test_b.py", line 1
E       def test_b(:
E                  ^
E   SyntaxError: invalid syntax
=============================== warnings summary ===============================
tests/unit/test_c.py:3
  tests/unit/test_c.py::test_c: PytestUnknownMarkWarning: Unknown pytest.mark.slow
=========================== short test summary info ============================
ERROR tests/unit/test_a.py
ERROR tests/unit/test_e.py - RuntimeError: boom
!!!!!!!!!!!!!!!!!!! Interrupted: 3 errors during collection !!!!!!!!!!!!!!!!!!!!
2 tests collected, 3 errors in 0.22s
]]

describe("novapipe.migrate.verify", function()
  it("reads the ids before any section, and each file's error as pytest gave it", function()
    local c = verify.parse(OUTPUT, "", 2)
    assert.same({ ["tests/unit/test_c.py::test_c"] = true, ["tests/unit/test_c.py::test_d[a b]"] = true }, c.ids)
    assert.same({
      "tests/unit/a long name/test_b.py: SyntaxError: invalid syntax",
      "tests/unit/test_a.py: ModuleNotFoundError: No module named 'nonexistent_pkg_xyz'",
      "tests/unit/test_e.py: RuntimeError: boom",
    }, verify.error_lines(c))
    assert.equal("pytest cannot collect tests/unit/a long name/test_b.py: SyntaxError: invalid syntax (and 2 more)",
      verify.unproven(c, 3))
  end)

  it("says why a run that stopped, or collected nothing, proves nothing, and nothing for one that collected", function()
    local stopped = verify.parse("", "ImportError while loading conftest '/p/tests/conftest.py'.\n"
      .. "tests/conftest.py:1: in <module>\n    import nope\nE   ModuleNotFoundError: No module named 'nope'\n", 4)
    assert.equal("pytest cannot collect (pytest exit 4): ImportError while loading conftest '/p/tests/conftest.py': "
      .. "ModuleNotFoundError: No module named 'nope'", verify.unproven(stopped, 1))
    local usage = verify.parse("", "ERROR: usage: pytest [options] [file_or_dir]\n", 4)
    assert.equal("pytest cannot collect (pytest exit 4): ERROR: usage: pytest [options] [file_or_dir]",
      verify.unproven(usage, 1))
    assert.equal("pytest collects no test, while 2 test files hold tests", verify.unproven(verify.parse("", "", 5), 2))
    assert.is_nil(verify.unproven(verify.parse("", "", 5), 0))
    assert.is_nil(verify.unproven(verify.parse("t.py::a\n", "", 0), 1))
  end)

  it("compares before and after through the moves, with pytest's error for what is missing", function()
    local before = verify.parse("a/test_x.py::test_1\nb/test_y.py::test_2\n", "", 0)
    local after = verify.parse("t/test_x.py::test_1\n\n=== ERRORS ===\n_ ERROR collecting t/test_y.py _\n"
      .. "E   ImportError: cannot import name 'z'\n", "", 2)
    assert.same({
      "missing after the migration: t/test_y.py::test_2 (ImportError: cannot import name 'z')",
      "new collection error: t/test_y.py: ImportError: cannot import name 'z'",
    }, verify.compare(before, after, { { from = "a/test_x.py", to = "t/test_x.py" },
                                       { from = "b/test_y.py", to = "t/test_y.py" } }))
  end)
end)
