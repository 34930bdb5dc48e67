local fs = require "novapipe.fs"
local lfs = require "lfs"
local time = require "novapipe.time"
local term = require "novapipe.term"
local H = require "spec.support.h"

describe("the host's Lua", function()
  it("has LuaFileSystem, lua-cjson, LuaExpat and argparse without any path set-up", function()
    assert.is_function(require("lfs").attributes)
    assert.equal('[1,2]', require("cjson").encode({ 1, 2 }))
    local names = {}
    local p = require("lxp").new({ StartElement = function(_, name) names[#names + 1] = name end })
    assert.truthy(p:parse("<testsuite><testcase/></testsuite>"))
    p:close()
    assert.same({ "testsuite", "testcase" }, names)
    assert.is_table(require("argparse")("x"))
  end)
end)

describe("novapipe.fs", function()
  local dir
  local function proc_uid() return require("novapipe.proc").self().uid end
  before_each(function() dir = H.tmpdir() end)
  after_each(function() H.rmrf(dir) end)

  it("reports failures as nil, message, errname", function()
    local ok, msg, errname = fs.atomic_write("/nonexistent/dir/file", "x")
    assert.is_nil(ok)
    assert.equal("ENOENT", errname)
    assert.matches("write '/nonexistent/dir/file'", msg)
    assert.equal("ENOENT", select(3, fs.copy(dir .. "/missing", dir .. "/x")))
    assert.equal("ENOENT", select(3, fs.realpath(dir .. "/missing")))
    assert.equal("ENOTDIR", select(3, fs.walk("/etc/hostname")))
    assert.equal("ENOENT", select(3, fs.read(dir .. "/missing")))
    assert.equal("EISDIR", select(3, fs.read(dir)))
    -- a FIFO is refused, not waited on for a writer (a pytest.ini made one)
    assert(os.execute("mkfifo " .. dir .. "/fifo"))
    assert.equal("EINVAL", select(3, fs.read(dir .. "/fifo")))
    assert.equal("", fs.read("/dev/null"))
    assert.equal("ENOENT", select(3, fs.space(dir .. "/missing")))
  end)

  it("makes a temporary directory where it is told, and says how much room a file system has", function()
    local d = assert(fs.mkdtemp("novapipe-here-", dir))
    assert.equal(dir .. "/novapipe-here-", d:sub(1, #dir + 15))
    assert.equal("directory", require("lfs").attributes(d, "mode"))
    local free = assert(fs.space(dir))
    assert.is_true(free > 0 and free == math.floor(free))
  end)

  it("writes atomically, owner-only, replacing the old file whole", function()
    assert.is_true(fs.atomic_write(dir .. "/r.json", "old"))
    assert.is_true(fs.atomic_write(dir .. "/r.json", "new"))
    assert.equal("new", fs.read(dir .. "/r.json"))
    local big = string.rep("0123456789", 100000) .. "\0end"
    assert.is_true(fs.atomic_write(dir .. "/big", big))
    assert.equal(big, fs.read(dir .. "/big"))
    assert(os.remove(dir .. "/big"))
    assert.equal("rw-------", lfs.attributes(dir .. "/r.json", "permissions"))
    -- no temporary file is left beside it
    assert.same({ "r.json" }, fs.walk(dir))
  end)

  it("makes directories with parents, owner-only by default", function()
    assert.is_true(fs.mkdir_p(dir .. "/a/b/c"))
    assert.is_true(fs.mkdir_p(dir .. "/a/b/c"))
    assert.equal("rwx------", lfs.attributes(dir .. "/a/b/c", "permissions"))
    assert.is_true(fs.mkdir_p(dir .. "/open", "0755"))
    assert.equal("rwxr-xr-x", lfs.attributes(dir .. "/open", "permissions"))
  end)

  it("removes a tree without following links, and a missing path is fine", function()
    local outside = H.tmpdir()
    H.write(outside .. "/keep", "k")
    assert(fs.mkdir_p(dir .. "/t/a/b"))
    H.write(dir .. "/t/a/b/f", "x")
    assert(lfs.link(outside, dir .. "/t/link", true))
    assert.is_true(fs.rmtree(dir .. "/t"))
    assert.is_nil(lfs.attributes(dir .. "/t"))
    assert.equal("k", H.read(outside .. "/keep"))
    assert.is_true(fs.rmtree(dir .. "/t"))
    assert.is_true(fs.rmtree(outside))
  end)

  it("copies and chmods", function()
    H.write(dir .. "/a", "data")
    assert.is_true(fs.chmod(dir .. "/a", "0640"))
    assert.is_true(fs.copy(dir .. "/a", dir .. "/b"))
    assert.equal("data", H.read(dir .. "/b"))
    assert.equal("rw-r-----", lfs.attributes(dir .. "/b", "permissions"))
    assert.has_error(function() fs.chmod(dir .. "/a", "999") end)
  end)

  it("moves without ever replacing what is there, a dangling link included, and never through a link", function()
    H.write(dir .. "/a", "a")
    H.write(dir .. "/b", "b")
    local ok, msg, errname = fs.move(dir .. "/a", dir .. "/b")
    assert.is_nil(ok)
    assert.equal("EEXIST", errname)
    assert.matches("move '.*/a' to '.*/b'", msg)
    assert(lfs.link("/nonexistent/novapipe", dir .. "/dangling", true))
    assert.equal("EEXIST", select(3, fs.move(dir .. "/a", dir .. "/dangling")))
    assert.equal("a", H.read(dir .. "/a"))
    assert.equal("b", H.read(dir .. "/b"))
    -- a directory moves whole; a missing source is ENOENT
    assert(fs.mkdir_p(dir .. "/d/e"))
    H.write(dir .. "/d/e/f", "f")
    assert.is_true(fs.move(dir .. "/d", dir .. "/moved"))
    assert.equal("f", H.read(dir .. "/moved/e/f"))
    assert.equal("ENOENT", select(3, fs.move(dir .. "/d", dir .. "/again")))
  end)

  it("takes over a directory another user owns: a new one of ours holds its entries, and a cut-short one is finished", function()
    local process = require "novapipe.process"
    local function give_away(path)
      assert.equal(0, process.run({ "chown", "-R", "65534:65534", path }).code)
    end
    local d, left = dir .. "/reports", dir .. "/reports.novapipe-own"
    -- what is in the way, a name in both, a link: refused, nothing lost
    assert(fs.mkdir_p(d, "0755"))
    H.write(d .. "/a.xml", "a")
    give_away(d)
    assert(fs.mkdir_p(left))
    give_away(left)
    local ok, msg, errname = fs.own_dir(d)
    assert.is_nil(ok)
    assert.equal("EEXIST", errname)
    assert.equal(("take over '%s': '%s' is in the way (not a directory of yours); move it away and run again")
      :format(d, left), msg)
    assert(fs.rmtree(left))
    assert(fs.mkdir_p(left))
    H.write(left .. "/a.xml", "newer")
    ok, msg, errname = fs.own_dir(d)
    assert.equal("ENOTEMPTY", errname)
    assert.matches("'" .. (d .. "/a.xml"):gsub("%p", "%%%0") .. "' and '" .. (left .. "/a.xml"):gsub("%p", "%%%0")
      .. "' both exist %(a take%-over was cut short%); keep one", msg)
    assert.equal("a", H.read(d .. "/a.xml"))
    assert.equal("newer", H.read(left .. "/a.xml"))
    assert(os.remove(left .. "/a.xml"))
    assert(fs.rmtree(left))
    assert(lfs.link(dir .. "/elsewhere", left, true))
    ok, msg, errname = fs.own_dir(d)
    assert.equal("ELOOP", errname)
    assert.matches("symbolic link '" .. left:gsub("%p", "%%%0") .. "'", msg)
    assert(os.remove(left))
    -- taken over: ours, 0700, a new directory with the same entries
    local ino = lfs.attributes(d, "ino")
    assert.is_true(fs.own_dir(d))
    assert.equal(proc_uid(), lfs.attributes(d, "uid"))
    assert.equal("rwx------", lfs.attributes(d, "permissions"))
    assert.are_not.equal(ino, lfs.attributes(d, "ino"))
    assert.same({ "a.xml" }, fs.walk(d))
    assert.equal(65534, lfs.attributes(d .. "/a.xml", "uid")) -- moved, not rewritten
    -- ours already: chmodded in place
    assert(fs.chmod(d, "0755"))
    ino = lfs.attributes(d, "ino")
    assert.is_true(fs.own_dir(d, "0750"))
    assert.equal("rwxr-x---", lfs.attributes(d, "permissions"))
    assert.equal(ino, lfs.attributes(d, "ino"))
    -- cut short after the old one was removed: the new one is renamed
    assert(os.rename(d, left))
    assert.is_true(fs.own_dir(d))
    assert.same({ "a.xml" }, fs.walk(d))
    assert.is_nil(lfs.symlinkattributes(left, "mode"))
    -- missing: made
    assert.is_true(fs.own_dir(dir .. "/new"))
    assert.equal("rwx------", lfs.attributes(dir .. "/new", "permissions"))
    assert.equal("ENOENT", select(3, fs.own_dir(dir .. "/no/such")))
  end)

  it("raises on an unknown option key of walk", function()
    local ok, err = pcall(function() return fs.walk(dir, { includes = { "*.py" } }) end)
    assert.is_false(ok)
    assert.matches("bad argument #2 to 'walk' %(unknown option 'includes'; known: include, exclude, dirs%)", err)
  end)

  it("walks a tree sorted, with include and exclude patterns", function()
    for _, p in ipairs({ "tests/unit/test_a.py", "tests/unit/helper.py", "tests/venv/test_b.py",
                         "tests/venv/__pycache__/test_b.pyc", "tests/test_c.py", "README.md" }) do
      local parent = p:match("^(.*)/")
      if parent then assert(fs.mkdir_p(dir .. "/" .. parent)) end
      H.write(dir .. "/" .. p, "")
    end
    assert.same({ "tests/test_c.py", "tests/unit/test_a.py", "tests/venv/test_b.py" },
      fs.walk(dir, { include = { "test_*.py" }, exclude = { "__pycache__" } }))
    assert.same({ "tests/unit/helper.py", "tests/unit/test_a.py" }, fs.walk(dir, { include = { "tests/unit/**" } }))
    assert.same({ "README.md", "tests", "tests/test_c.py" },
      fs.walk(dir, { exclude = { "unit", "venv" }, dirs = true }))
  end)

  it("does not follow symbolic links to directories", function()
    assert(fs.mkdir_p(dir .. "/real"))
    H.write(dir .. "/real/f", "")
    assert(lfs.link(dir .. "/real", dir .. "/loop", true))
    assert.same({ "loop", "real/f" }, fs.walk(dir))
  end)

  it("appends in one write, creating the file owner-only", function()
    local p = dir .. "/log"
    assert(fs.append(p, "one\n"))
    assert(fs.append(p, "two\n", "0644"))
    assert.equal("one\ntwo\n", H.read(p))
    assert.equal("rw-------", lfs.attributes(p, "permissions"))
    assert.equal("ENOENT", select(3, fs.append(dir .. "/no/such/log", "x")))
  end)

  it("holds an exclusive lock that another process cannot take until it is released", function()
    local process = require "novapipe.process"
    local p = dir .. "/lock"
    local function other_can_lock()
      return process.run({ "flock", "-n", p, "true" }).code == 0
    end
    local lock = assert(fs.lock(p))
    assert.is_false(other_can_lock())
    lock:unlock()
    lock:unlock() -- twice is harmless
    assert.is_true(other_can_lock())
    do
      local held <close> = assert(fs.lock(p))
      assert.is_false(other_can_lock())
    end
    assert.is_true(other_can_lock())
    assert.equal("rw-------", lfs.attributes(p, "permissions"))
    assert.equal("ENOENT", select(3, fs.lock(dir .. "/no/such/lock")))
  end)

  it("resolves real paths and matches patterns", function()
    assert.equal("/", fs.realpath("/tmp/.."))
    assert.is_true(fs.match("**/test_*.py", "a/b/test_x.py"))
    assert.is_false(fs.match("*.py", "a/x.py"))
  end)
end)

describe("novapipe.pyscan.prefetch", function()
  local pyscan = require "novapipe.pyscan"
  local OPTS = { names = "decorated", functions = "test", lean = true }

  local function python_files()
    local list = {}
    for _, root in ipairs({ "spec/fixtures/pyscan-corpus", "examples/clinic/backend" }) do
      for _, rel in ipairs(assert(fs.walk(root, { include = { "*.py" } }))) do list[#list + 1] = root .. "/" .. rel end
    end
    return list
  end

  it("raises on an unknown option key of scan, file and prefetch", function()
    local known = "known: names, functions, lean, decorator%)"
    local ok, err = pcall(function() return pyscan.scan("x = 1", { name = "all" }) end)
    assert.is_false(ok)
    assert.matches("bad argument #2 to 'scan' %(unknown option 'name'; " .. known, err)
    ok, err = pcall(function() return pyscan.file("spec/fixtures/none.py", { lean = true, decorators = "fixture" }) end)
    assert.is_false(ok)
    assert.matches("bad argument #2 to 'file' %(unknown option 'decorators'; " .. known, err)
    ok, err = pcall(function() return pyscan.prefetch({}, { function_prefix = "test" }) end)
    assert.is_false(ok)
    assert.matches("bad argument #2 to 'prefetch' %(unknown option 'function_prefix'; " .. known, err)
  end)

  it("gives what file() gives, for every file, scanned on the second thread or this one", function()
    local files = python_files()
    assert.is_true(#files > 10)
    for _, opts in ipairs({ OPTS, { names = "all" }, {} }) do
      local pf = pyscan.prefetch(files, opts)
      -- take them out of order too: some are claimed here before the worker gets to them
      for i = #files, 1, -1 do
        assert.same(pyscan.file(files[i], opts), pf:take(i), files[i])
      end
      pf:close()
    end
  end)

  it("leaves out, when lean, tests that request nothing and carry no marker, and plain classes, saying so in brief", function()
    local facts = pyscan.scan("def test_a(): pass\ndef test_b(self): pass\ndef test_c(db): pass\n"
      .. "@mark.slow\ndef test_d(): pass\nclass TestE(Base): pass\n@mark.db\nclass TestF: pass\n"
      .. "class TestG:\n    def test_h(self): pass\nclass Plain: pass\ndef load_tests(loader, tests, pattern): pass\n", OPTS)
    local names = {}
    for _, fn in ipairs(facts.functions) do names[#names + 1] = fn.name end
    assert.same({ "test_c", "test_d" }, names)
    -- a class with a base is reported only until a test is seen (then its
    -- bases say nothing: the file is not empty)
    assert.same({ { name = "TestF", line = 8, decorators = { { name = "mark.db", line = 7 } } } },
      facts.classes)
    assert.equal("test_a test_b test_h", facts.left_tests)
    assert.equal("TestE TestG", facts.left_classes)
    assert.is_true(facts.load_tests)
    local first = pyscan.scan("class Mixin(Base): pass\nclass TestE(Mixin): pass\ndef test_a(): pass\n"
      .. "class TestF(Mixin): pass\nclass Other(Base): pass\n", OPTS)
    assert.same({ { name = "Mixin", line = 1, bases = { "Base" } }, { name = "TestE", line = 2, bases = { "Mixin" } } },
      first.classes)
    assert.equal("TestF", first.left_classes)
    -- in a file with no test, every class with a base (its tests may come from it)
    assert.same({ "A", "TestB" }, (function()
      local out = {}
      for _, c in ipairs(pyscan.scan("class A(Base): pass\nclass TestB(A): pass\n", OPTS).classes) do out[#out + 1] = c.name end
      return out
    end)())
    -- the same through prefetch's record
    local d = H.tmpdir()
    H.write(d .. "/t.py", "def test_a(): pass\nclass TestG:\n    def test_h(self): pass\ndef load_tests(l, t, p): pass\n")
    local pf = pyscan.prefetch({ d .. "/t.py" }, OPTS)
    local taken = pf:take(1)
    pf:close()
    H.rmrf(d)
    assert.equal("test_a test_h", taken.left_tests)
    assert.equal("TestG", taken.left_classes)
    assert.is_true(taken.load_tests)
    -- decorator: body names only where a decorator can be a fixture's
    local fx = pyscan.scan("from pytest import fixture as fx\n@fx\ndef a(): return x\n@pt.fixture\ndef b(): return y\n"
      .. "@unittest.skip\ndef c(): return z\n@cpython_only\ndef d(): return w\n@fx2\ndef e(): return v\n"
      .. "from pytest import fixture as fx2\n", { names = "decorated", decorator = "fixture" }).functions
    assert.same({ "x" }, fx[1].names)
    assert.same({ "y" }, fx[2].names)
    assert.equal("c", fx[3].name)
    assert.is_nil(fx[3].names)
    -- a plain name keeps them only when an import before it binds it to
    -- one (fx2 is bound after its function: Python would not find it)
    assert.same({ "d", "e" }, { fx[4].name, fx[5].name })
    assert.is_nil(fx[4].names)
    assert.is_nil(fx[5].names)
    -- without lean, every class, and lists that would be empty are absent
    local all = pyscan.scan("class A(B): pass\nclass C: pass\n").classes
    assert.same({ { name = "A", line = 1, bases = { "B" } }, { name = "C", line = 2 } }, all)
  end)

  it("keeps the strings an assignment holds and the connection strings a body uses", function()
    local facts = pyscan.scan('pytest_plugins = ["tests.fixtures.db", f"x{y}", \'tests.users\']\n'
      .. 'URL = "sqlite://"\n'
      .. 'def make():\n    print("hello")\n    e = create_engine("sqlite:///:memory:", echo=True)\n'
      .. '    return e, "sqlite:///:memory:", b"redis://cache", "postgresql://db/x"\n'
      .. 'def plain(): return "no url here"\n')
    assert.same({ "tests.fixtures.db", "tests.users" }, facts.assignments[1].strings)
    assert.same({ "sqlite://" }, facts.assignments[2].strings)
    local by = {}
    for _, fn in ipairs(facts.functions) do by[fn.name] = fn end
    assert.same({ "sqlite:///:memory:", "redis://cache", "postgresql://db/x" }, by.make.strings)
    assert.is_nil(by.plain.strings)
    -- only bodies whose names are kept keep their strings
    local lean = pyscan.scan('def make(): return create_engine("sqlite://")\n', { names = "none" })
    assert.is_nil(lean.functions[1].strings)
  end)

  it("says where each function is, from its first decorator to its body's last line, and lists string literals", function()
    local src = "import pytest\n\n@pytest.fixture(params=[1,\n  2])\ndef db(request):\n    return request.param  # x\n"
      .. "\n\n# after\nclass T:\n    def m(self): return 1\n"
    local fns = pyscan.scan(src).functions
    assert.equal("@pytest.fixture(params=[1,\n  2])\ndef db(request):\n    return request.param  # x",
      src:sub(fns[1].first, fns[1].last))
    assert.equal("def m(self): return 1", src:sub(fns[2].first, fns[2].last))
    -- the same through prefetch's record
    local d = H.tmpdir()
    H.write(d .. "/c.py", src)
    local pf = pyscan.prefetch({ d .. "/c.py" })
    assert.same(fns, pf:take(1).functions)
    pf:close()
    H.rmrf(d)
    local strings = pyscan.strings("p = Path(__file__).parent / 'rows.csv'\nq = f\"{x}.json\" + r'''a\nb'''\n")
    assert.same({ { value = "rows.csv", line = 1 }, { value = "{x}.json", line = 2, fstring = true },
                  { value = "a\nb", line = 2 } }, strings)
    local list, err, line = pyscan.strings("ok = 'a'\nbad = 'b\n")
    assert.same({ { value = "a", line = 1 } }, list)
    assert.matches("unterminated string", err)
    assert.equal(2, line)
  end)

  it("reports a file it cannot read as file() does, and can take a file twice", function()
    local dir = H.tmpdir()
    H.write(dir .. "/ok.py", "import os\n")
    local files = { dir .. "/missing.py", dir, dir .. "/ok.py" }
    local pf = pyscan.prefetch(files, OPTS)
    local ok, msg, errname = pf:take(1)
    assert.is_nil(ok)
    assert.equal("ENOENT", errname)
    assert.matches("read '.*/missing.py'", msg)
    assert.equal("EISDIR", select(3, pf:take(2)))
    assert.equal("os", pf:take(3).imports[1].module)
    assert.equal("os", pf:take(3).imports[1].module)
    assert.has_error(function() pf:take(4) end)
    pf:close()
    pf:close()
    H.rmrf(dir)
  end)
end)

describe("novapipe.digest", function()
  local digest = require "novapipe.digest"

  it("gives SHA-256 in hex, of strings and of files", function()
    assert.equal("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", digest.sha256(""))
    assert.equal("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", digest.sha256("abc"))
    local dir = H.tmpdir()
    local big = string.rep("0123456789abcdef", 10000) -- more than one read
    H.write(dir .. "/f", big)
    assert.equal(digest.sha256(big), digest.sha256_file(dir .. "/f"))
    local ok, msg, errname = digest.sha256_file(dir .. "/missing")
    assert.is_nil(ok)
    assert.equal("ENOENT", errname)
    assert.matches("read '.*/missing'", msg)
    H.rmrf(dir)
  end)

  it("loads libcrypto at the first digest, not at start-up or when required", function()
    local dir = H.tmpdir()
    finally(function() H.rmrf(dir) end)
    H.write(dir .. "/maps.lua", [[
      local function mapped()
        for line in io.lines("/proc/self/maps") do
          if line:find("libcrypto", 1, true) then return "yes" end
        end
        return "no"
      end
      local before = mapped()
      local digest = require "novapipe.digest"
      local required = mapped()
      local hex = digest.sha256("abc")
      io.write(before, " ", required, " ", mapped(), " ", hex)
    ]])
    local r = H.novapipe({ "exec", dir .. "/maps.lua" })
    assert.equal(0, r.code, r.stderr)
    assert.equal("no no yes ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", r.stdout)
  end)
end)

describe("novapipe.python", function()
  local python = require "novapipe.python"

  it("finds a Python that can import pytest, even when python3 on PATH cannot", function()
    local py = assert(python.find({ "pytest" }))
    local r = require("novapipe.process").run({ py, "-c", "import pytest" })
    assert.equal(0, r.code)
  end)

  it("names the Debian package to install when no Python has a module", function()
    local py, err = python.find({ "pytest", "novapipe_no_such_module" })
    assert.is_nil(py)
    assert.equal("no Python can import novapipe_no_such_module; install it with: "
      .. "apt-get install python3-novapipe-no-such-module (or set NOVAPIPE_PYTHON)", err)
  end)

  it("advises pip, run by that Python, for a virtualenv's", function()
    local dir = H.tmpdir()
    assert.equal(0, require("novapipe.process").run({ "/usr/bin/python3", "-m", "venv", "--without-pip", dir .. "/v" }).code)
    local py, err = python.find({ "pytest", "tomllib" }, dir .. "/v/bin/python3")
    assert.is_nil(py)
    assert.equal(("python in novapipe.lua names %s/v/bin/python3, which cannot import pytest (a virtualenv); "
      .. "install it with: %s/v/bin/python3 -m pip install pytest, or choose another Python"):format(dir, dir), err)
    H.rmrf(dir)
  end)

  it("tries only the Python named explicitly, and says what it lacks", function()
    local dir = H.tmpdir()
    -- A real Python without site-packages: no pytest.
    H.write(dir .. "/python", "#!/bin/sh\nexec /usr/bin/python3 -S \"$@\"\n")
    assert(require("novapipe.fs").chmod(dir .. "/python", "0755"))
    local py, err = python.find({ "pytest" }, dir .. "/python")
    assert.is_nil(py)
    assert.equal(("python in novapipe.lua names %s/python, which cannot import pytest; install it with: "
      .. "apt-get install python3-pytest, or choose another Python"):format(dir), err)
    py, err = python.find({ "pytest" }, dir .. "/nothing-here")
    assert.is_nil(py)
    assert.matches("is not a Python that runs", err)
    H.rmrf(dir)
  end)
end)

describe("novapipe.time", function()
  it("has a monotonic clock that moves forward through a sleep", function()
    local t0 = time.now()
    time.sleep(0.05)
    assert.is_true(time.now() - t0 >= 0.05)
  end)

  it("formats ISO 8601 in UTC and local time", function()
    assert.equal("2001-09-09T01:46:40.000Z", time.iso8601(1000000000))
    assert.equal("1970-01-01T00:00:01.500Z", time.iso8601(1.5))
    assert.matches("^%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%d%.%d%d%d[+-]%d%d:%d%d$", time.iso8601(nil, true))
    assert.is_true(math.abs(time.wall() - os.time()) < 2)
  end)
end)

describe("novapipe.term", function()
  local function child(env, code, flag)
    local process = require "novapipe.process"
    local f = os.tmpname()
    H.write(f, code)
    local argv = { H.bin, flag or "--version", "exec", f }
    if not flag then table.remove(argv, 2) end
    local r = assert(process.run(argv, { env = env }))
    os.remove(f)
    return r.stdout
  end

  it("decides colour from NO_COLOR, FORCE_COLOR and the terminal", function()
    local code = "local t = require 'novapipe.term'; io.write(t.style('x', 'red', 'bold'))"
    assert.equal("x", child({ NO_COLOR = false, FORCE_COLOR = false }, code))
    assert.equal("\27[31m\27[1mx\27[0m", child({ FORCE_COLOR = "1", NO_COLOR = false }, code))
    assert.equal("x", child({ FORCE_COLOR = "1", NO_COLOR = "1" }, code))
    assert.equal("x", child({ FORCE_COLOR = "1", NO_COLOR = false }, code, "--no-color"))
  end)

  it("prints status lines as plain lines off a terminal, once per change", function()
    local out = child({}, "local t = require 'novapipe.term'; t.status('a'); t.status('a'); t.status('b'); t.print('done')")
    assert.equal("a\nb\ndone\n", out)
  end)

  it("draws the status line in place on a terminal, and colour there by default", function()
    local f = os.tmpname()
    H.write(f, "local t = require 'novapipe.term'; t.status('a'); t.status('b'); t.print(t.style('done', 'green')); t.status(nil)")
    -- util-linux's script gives the child a pseudo-terminal.
    local r = assert(require("novapipe.process").run({ "script", "-qec", H.bin .. " exec " .. f, "/dev/null" },
      { env = { CI = false, NO_COLOR = false, FORCE_COLOR = false, TERM = "xterm" } }))
    os.remove(f)
    assert.equal(0, r.code)
    local out = r.stdout:gsub("\r\n", "\n")
    assert.equal("a\r\27[2Kb\r\27[2K\27[32mdone\27[0m\nb\r\27[2K", out)
  end)

  it("raises on an unknown style", function()
    assert.has_error(function() term.style("x", "sparkly") end)
  end)

  it("raises on an unknown option key of init", function()
    local ok, err = pcall(function() term.init({ nocolor = true }) end)
    assert.is_false(ok)
    assert.matches("bad argument #1 to 'init' %(unknown option 'nocolor'; known: no_color%)", err)
  end)
end)
