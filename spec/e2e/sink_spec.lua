-- One way out: what novapipe prints and writes passes one sink that masks
-- PHI, writes owner-only and atomically, never through a link it did not
-- make. Each case reproduces a way PHI or a file once escaped.
local fs = require "novapipe.fs"
local lfs = require "lfs"
local proc = require "novapipe.proc"
local time = require "novapipe.time"
local H = require "spec.support.h"
local Sink = require "novapipe.run.sink"

local TESTS = "backend/app/tests/"
local SSN = "219-09-9999"

local function run(root, args, opts)
  local argv = { "-C", root, "--no-color", "run" }
  for _, a in ipairs(args) do argv[#argv + 1] = a end
  return H.novapipe(argv, opts)
end

-- Every file under dir (links included), as relative paths.
local function files_under(dir)
  return fs.walk(dir) or {}
end

-- Asserts that no file under root (but the tests' own sources) holds text.
local function nowhere_but_sources(root, text)
  for _, rel in ipairs(files_under(root)) do
    if not rel:match("^backend/app/tests/.*%.py$") and not rel:match("__pycache__") then
      local data = H.read(root .. "/" .. rel) or ""
      assert.is_nil(data:find(text, 1, true), rel .. " holds " .. text)
    end
  end
end

-- Gives path and everything under it to another user (uid 65534, nobody's).
local function give_away(path)
  local r = require("novapipe.process").run({ "chown", "-R", "65534:65534", path })
  assert(r.code == 0, r.stderr)
end

-- Owner, permissions and where the path is: what a take-over must leave.
local function owner_mode(path)
  return { uid = lfs.attributes(path, "uid"), mode = lfs.attributes(path, "permissions") }
end

-- The names in a directory, sorted.
local function names(dir)
  local out = {}
  for e in lfs.dir(dir) do
    if e ~= "." and e ~= ".." then out[#out + 1] = e end
  end
  table.sort(out)
  return out
end

describe("the sink", function()
  local keep = H.temporaries(after_each)
  local function project(files)
    local root = keep(H.tree(files))
    assert(fs.mkdir_p(root .. "/" .. TESTS .. "standalone", "0755"))
    return root
  end

  it("masks the running tests' ids in a timeout's reason, on the console and in the step summary", function()
    local root = project({
      [TESTS .. "standalone/test_slow.py"] = ("import time, pytest\n@pytest.mark.parametrize('ssn', ['%s'])\n"
        .. "def test_waits(ssn):\n    time.sleep(60)\n"):format(SSN),
    })
    local summary = root .. "/summary.md"
    local r = run(root, { "run_tests", "--standalone", "--timeout", "2" }, { env = { GITHUB_STEP_SUMMARY = summary } })
    assert.equal(1, r.code)
    assert.matches("timed out after 2s; running: .*test_waits%[%[PHI:ssn%]%]", r.stdout)
    assert.is_nil((r.stdout .. r.stderr):find(SSN, 1, true))
    local md = assert(H.read(summary))
    assert.matches("timed out", md)
    assert.is_nil(md:find(SSN, 1, true))
  end)

  -- A --junit run of one failing test that prints a value, whose pytest
  -- waits in `sleep MARKER`, run by `waiting` (Python: the body of a
  -- conftest, formatted with the marker), once it waits; and the JUnit file.
  local function junit_run_waiting(waiting)
    local marker = H.marker()
    local root = project({
      [TESTS .. "standalone/test_p.py"] = ("def test_prints():\n    print('patient %s')\n    assert False\n"):format(SSN),
      [TESTS .. "standalone/conftest.py"] = "import subprocess, pytest\n" .. waiting:format(marker),
    })
    local p = assert(proc.spawn({ H.bin, "-C", root, "run", "run_tests", "--standalone", "--junit" },
      { stdout = "capture", stderr = "capture" }))
    local deadline = time.now() + 60
    while not H.find_process("sleep", marker) and time.now() < deadline do time.sleep(0.05) end
    assert.is_number(H.find_process("sleep", marker), "pytest never reached its end")
    return p, root .. "/backend/test-results/standalone-results.xml", marker
  end

  local function assert_masked_and_ours(xml)
    local text = assert(H.read(xml))
    assert.is_nil(text:find(SSN, 1, true))
    assert.matches("%[PHI:ssn%]", text)
    assert.equal("rw-------", lfs.attributes(xml, "permissions"))
  end

  it("masks and tightens the JUnit file when the run is interrupted after pytest wrote it", function()
    -- after pytest's JUnit writer (its sessionfinish) and before the
    -- plugin's end event (sent when every sessionfinish has run) says so,
    -- pytest waits: novapipe is interrupted then
    local p, xml = junit_run_waiting("@pytest.hookimpl(trylast=True)\n"
      .. "def pytest_sessionfinish(session):\n    subprocess.run(['sleep', '%s'])\n")
    assert.truthy(H.read(xml):find(SSN, 1, true), "pytest wrote the value (the spec's premise)")
    p:kill("INT")
    assert.equal(130, p:wait().code)
    assert_masked_and_ours(xml)
  end)

  it("masks, tightens and counts the JUnit file while pytest is still exiting", function()
    -- pytest's session is over (the plugin's end event sent); it waits in
    -- unconfigure, and novapipe has the file already
    local p, xml, marker = junit_run_waiting("def pytest_unconfigure(config):\n    subprocess.run(['sleep', '%s'])\n")
    -- the adoption is novapipe's reply to an event: give it the moment it takes
    local soon = time.now() + 10
    while (H.read(xml) or SSN):find(SSN, 1, true) and time.now() < soon do time.sleep(0.02) end
    assert_masked_and_ours(xml)
    os.execute("kill " .. H.find_process("sleep", marker))
    local r = p:wait()
    assert.equal(1, r.code)
    assert.matches("1 failed", r.stdout)
    -- the counts check ran on the file taken early: no disagreement noted
    assert.is_nil(r.stdout:find("the JUnit XML counts", 1, true))
    assert.is_nil((r.stdout .. r.stderr):find(SSN, 1, true))
  end)

  it("masks the JUnit file again when something writes it after it was taken, or before the real end", function()
    local xml = "/backend/test-results/standalone-results.xml"
    -- a conftest's hook wrapper rewrites the file after the plugin's end
    -- event (and after novapipe took it: it waits a moment first)
    local root = project({
      [TESTS .. "standalone/test_p.py"] = "def test_passes():\n    pass\n",
      [TESTS .. "standalone/conftest.py"] = ("import time, pytest\n@pytest.hookimpl(hookwrapper=True)\n"
        .. "def pytest_sessionfinish(session):\n    yield\n    time.sleep(0.5)\n"
        .. "    path = session.config.option.xmlpath\n    text = open(path).read()\n"
        .. "    open(path, 'w').write(text.replace('</testsuites>', '<x>patient %s</x></testsuites>'))\n"):format(SSN),
    })
    local r = run(root, { "run_tests", "--standalone", "--junit" })
    assert.equal(0, r.code, r.stdout .. r.stderr)
    local text = assert(H.read(root .. xml))
    assert.truthy(text:find("<x>patient [PHI:ssn]</x>", 1, true), text)
    assert.equal("rw-------", lfs.attributes(root .. xml, "permissions"))
    -- a test sends the end event itself, before pytest wrote the file
    root = project({
      [TESTS .. "standalone/test_p.py"] = ("import sys\ndef test_ends_early():\n"
        .. "    plugin = sys.modules['novapipe_pytest']\n"
        .. "    plugin._send('{\"e\":\"end\",\"exit\":0,\"junit\":true}\\n'); plugin._flush()\n"
        .. "    print('patient %s')\n    assert False\n"):format(SSN),
    })
    r = run(root, { "run_tests", "--standalone", "--junit" })
    assert.equal(1, r.code, r.stdout .. r.stderr)
    text = assert(H.read(root .. xml))
    assert.is_nil(text:find(SSN, 1, true))
    assert.matches("%[PHI:ssn%]", text)
    assert.equal("rw-------", lfs.attributes(root .. xml, "permissions"))
  end)

  it("masks a value that straddles the end of a 1 MiB piece of a long line", function()
    local root = project({
      [TESTS .. "standalone/test_long.py"] = ("def test_long():\n    print('x' * (1048576 - 5) + ' %s')\n"):format(SSN),
    })
    local r = run(root, { "run_tests", "--standalone", "--verbose" }, { env = { PYTEST_ADDOPTS = "-s" } })
    assert.equal(0, r.code)
    assert.is_nil(r.stdout:find(SSN, 1, true))
    assert.matches("%[PHI:ssn%]", r.stdout)
  end)

  it("masks each adopted document in a context of its own, in every piece, quiet ones let through whole", function()
    local dir = assert(fs.mkdtemp("novapipe-spec-doc-"))
    local xml = dir .. "/results.xml"
    local quiet = '<testcase classname="app.tests.test_001" name="test_1" time="0.001" />\n'
    local body = '<testsuite timestamp="2026-12-01T15:25:25.405261">' .. quiet:rep(2000)
      .. '<testcase name="t"><failure message="' .. SSN .. '">DOB:\n1980-02-03</failure></testcase></testsuite>\n'
    assert(fs.atomic_write(xml, body, "0644"))
    local sink = Sink.new({ out = function() end })
    -- a birth word ending a console line does not reach into the file
    sink:print("patient DOB:")
    assert(sink:adopt(xml, "JUnit XML"))
    local got = H.read(xml)
    assert.is_nil(got:find(SSN, 1, true))
    assert.is_nil(got:find("1980-02-03", 1, true))
    assert.truthy(got:find('timestamp="2026-12-01T15:25:25.405261"', 1, true))
    assert.equal(body:gsub((SSN:gsub("%-", "%%-")), "[PHI:ssn]"):gsub("1980%-02%-03", "[PHI:dob]"), got)
    fs.rmtree(dir)
  end)

  it("masks user input echoed in usage errors, and the whole command line in the audit log", function()
    local root = project({ [TESTS .. "standalone/test_ok.py"] = "def test_ok():\n    pass\n" })
    local r = run(root, { "run_tests", "--no-such-flag", SSN })
    assert.equal(2, r.code)
    assert.is_nil((r.stdout .. r.stderr):find(SSN, 1, true))
    r = run(root, { "run_tests", "--standalone", "--markers", "DOB", "--filter", "1980-02-03" })
    local log = assert(H.read(root .. "/.novapipe/audit.log"))
    assert.is_nil(log:find(SSN, 1, true))
    assert.is_nil(log:find("1980-02-03", 1, true))
    assert.is_nil((r.stdout .. r.stderr):find("1980-02-03", 1, true))
    -- every text of the entry passes the masker: a project directory named for a patient too
    local named = root .. "/p-" .. SSN
    assert(fs.mkdir_p(named .. "/" .. TESTS .. "standalone"))
    H.write(named .. "/" .. TESTS .. "standalone/test_ok.py", "def test_ok():\n    pass\n")
    r = run(named, { "run_tests", "--standalone" })
    assert.equal(0, r.code, r.stdout .. r.stderr)
    local entry = assert(H.read(named .. "/.novapipe/audit.log"))
    assert.is_nil(entry:find(SSN, 1, true))
    assert.matches('"cwd":"[^"]*p%-%[PHI:ssn%]"', entry)
  end)

  it("masks the coverage HTML, which copies the tests' source, and every report novapipe writes", function()
    local root = project({
      -- the tests' own lines measured, so their source is in the HTML
      ["novapipe.lua"] = "return { coverage = { omit_tests = false } }\n",
      [TESTS .. "standalone/test_cov.py"] = ("import pytest\n@pytest.mark.parametrize('v', ['%s'])\n"
        .. "def test_value(v):\n    assert v\n"):format(SSN),
    })
    local r = run(root, { "run_tests", "--standalone", "--junit", "--coverage" })
    assert.equal(0, r.code, r.stdout .. r.stderr)
    assert.truthy(lfs.attributes(root .. "/backend/coverage_html/standalone_tests", "mode"))
    nowhere_but_sources(root, SSN)
    r = run(root, { "analyze", "--report" })
    assert.equal(0, r.code, r.stdout .. r.stderr)
    nowhere_but_sources(root, SSN)
  end)

  it("refuses a symbolic link at the audit log, its lock file and the coverage HTML directory", function()
    local root = project({ [TESTS .. "standalone/test_ok.py"] = "def test_ok():\n    pass\n" })
    local elsewhere = keep(H.tmpdir())
    H.write(elsewhere .. "/victim", "untouched\n")
    assert(fs.chmod(elsewhere .. "/victim", "0644"))
    assert(fs.mkdir_p(root .. "/.novapipe"))
    assert(lfs.link(elsewhere .. "/victim", root .. "/.novapipe/audit.log", true))
    local r = run(root, { "run_tests", "--standalone" })
    assert.matches("audit log not written: .*symbolic link '%.novapipe/audit%.log'", r.stderr)
    assert.equal("untouched\n", H.read(elsewhere .. "/victim"))
    os.remove(root .. "/.novapipe/audit.log")
    os.remove(root .. "/.novapipe/audit.log.lock")
    assert(lfs.link(elsewhere .. "/victim", root .. "/.novapipe/audit.log.lock", true))
    r = run(root, { "run_tests", "--standalone" })
    assert.matches("symbolic link '%.novapipe/audit%.log%.lock'", r.stderr)
    assert.equal("untouched\n", H.read(elsewhere .. "/victim"))
    assert.equal("rw-r--r--", lfs.attributes(elsewhere .. "/victim", "permissions"))
    os.remove(root .. "/.novapipe/audit.log.lock")
    -- a coverage HTML directory that is a link to a directory of someone else's
    assert(lfs.link(elsewhere, root .. "/backend/coverage_html", true))
    r = run(root, { "run_tests", "--standalone", "--coverage" })
    -- the tests passed; the HTML is not written, and the coverage stage says why
    assert.equal(2, r.code)
    assert.matches("PASS%s+standalone", r.stdout)
    assert.matches("ERROR%s+coverage.*symbolic link 'backend/coverage_html'", r.stdout)
    assert.same({ "victim" }, files_under(elsewhere))
    assert.equal("rw-r--r--", lfs.attributes(elsewhere .. "/victim", "permissions"))
  end)

  it("replaces a report another user owns instead of chmodding it, and tightens .novapipe", function()
    local root = project({ [TESTS .. "standalone/test_ok.py"] = "def test_ok():\n    pass\n" })
    local xml = root .. "/backend/test-results/standalone-results.xml"
    assert(fs.mkdir_p(root .. "/backend/test-results"))
    H.write(xml, "old")
    assert(fs.mkdir_p(root .. "/.novapipe", "0755"))
    assert(fs.chmod(root .. "/.novapipe", "0755"))
    local me = require("novapipe.proc").self().user
    local r0 = require("novapipe.process").run({ "chown", "nobody", xml })
    assert.equal(0, r0.code, r0.stderr)
    local r = run(root, { "run_tests", "--standalone", "--junit" })
    assert.equal(0, r.code, r.stdout .. r.stderr)
    local st = require("novapipe.process").run({ "stat", "-c", "%U %a", xml })
    assert.equal(me .. " 600\n", st.stdout)
    assert.equal("rwx------", lfs.attributes(root .. "/.novapipe", "permissions"))
  end)

  it("takes over a report directory another user made: it ends ours at 0700, with what it held", function()
    local root = keep(H.tmpdir())
    local results = root .. "/test-results"
    assert(fs.mkdir_p(results .. "/older", "0755"))
    H.write(results .. "/notes.txt", "kept\n")
    H.write(results .. "/older/standalone-results.xml", "<testsuites/>")
    give_away(results)
    assert.equal(65534, lfs.attributes(results, "uid"), "chown worked (the spec's premise)")
    local sink = Sink.new()
    assert(sink:dir(results))
    local me = proc.self().uid
    assert.same({ uid = me, mode = "rwx------" }, owner_mode(results))
    assert.equal("kept\n", H.read(results .. "/notes.txt"))
    assert.equal("<testsuites/>", H.read(results .. "/older/standalone-results.xml"))
    assert.same({ "notes.txt", "older/standalone-results.xml" }, files_under(results))
    assert.same({ "test-results" }, names(root)) -- nothing left beside it
    -- a second time it is ours already: nothing moves
    assert(sink:dir(results))
    assert.same({ "test-results" }, names(root))
  end)

  it("adopts a directory tree another user made: every directory ours at 0700, every file masked and ours", function()
    local root = keep(H.tmpdir())
    local html = root .. "/coverage_html"
    assert(fs.mkdir_p(html .. "/d_1/d_2", "0755"))
    H.write(html .. "/index.html", "<p>" .. SSN .. "</p>")
    H.write(html .. "/d_1/d_2/page.html", "<p>page</p>")
    give_away(html)
    local sink = Sink.new()
    assert(sink:adopt(html, "coverage HTML"))
    local me = proc.self().uid
    for _, d in ipairs({ html, html .. "/d_1", html .. "/d_1/d_2" }) do
      assert.same({ uid = me, mode = "rwx------" }, owner_mode(d), d)
    end
    for _, f in ipairs({ html .. "/index.html", html .. "/d_1/d_2/page.html" }) do
      assert.same({ uid = me, mode = "rw-------" }, owner_mode(f), f)
    end
    assert.equal("<p>[PHI:ssn]</p>", H.read(html .. "/index.html"))
    assert.equal("<p>page</p>", H.read(html .. "/d_1/d_2/page.html"))
    assert.same({ "d_1", "d_1/d_2", "d_1/d_2/page.html", "index.html" }, fs.walk(html, { dirs = true }))
    assert.same({ "coverage_html" }, names(root))
  end)

  it("still refuses a symbolic link inside a directory another user made, naming it", function()
    local root = keep(H.tmpdir())
    local elsewhere = keep(H.tmpdir())
    H.write(elsewhere .. "/victim", "untouched\n")
    assert(fs.chmod(elsewhere .. "/victim", "0644"))
    local html = root .. "/coverage_html"
    assert(fs.mkdir_p(html .. "/d_1", "0755"))
    H.write(html .. "/index.html", "<p>index</p>")
    assert(lfs.link(elsewhere .. "/victim", html .. "/d_1/page.html", true))
    give_away(html)
    local ok, err = Sink.new():adopt(html, "coverage HTML")
    assert.is_nil(ok)
    assert.matches("symbolic link '" .. html:gsub("%p", "%%%0") .. "/d_1/page%.html'", err)
    assert.is_nil(err:find("\n", 1, true))
    assert.equal("untouched\n", H.read(elsewhere .. "/victim"))
    assert.equal("rw-r--r--", lfs.attributes(elsewhere .. "/victim", "permissions"))
    assert.equal("link", lfs.symlinkattributes(html .. "/d_1/page.html", "mode"))
    assert.equal("<p>index</p>", H.read(html .. "/index.html"))
    -- a link at the directory itself is refused before anything is made
    local linked = root .. "/linked"
    assert(lfs.link(elsewhere, linked, true))
    ok, err = Sink.new():dir(linked)
    assert.is_nil(ok)
    assert.matches("symbolic link '" .. linked:gsub("%p", "%%%0") .. "'", err)
    assert.same({ "victim" }, names(elsewhere))
  end)

  it("takes over .novapipe, the results and the coverage HTML directories another user made, in a real run", function()
    local root = project({ [TESTS .. "standalone/test_ok.py"] = "def test_ok():\n    pass\n",
                           ["novapipe.lua"] = "return { coverage = { omit_tests = false } }\n" })
    local dirs = { root .. "/.novapipe", root .. "/backend/test-results", root .. "/backend/coverage_html" }
    for _, d in ipairs(dirs) do
      assert(fs.mkdir_p(d, "0755"))
      H.write(d .. "/keep.txt", "kept\n")
      give_away(d)
    end
    local r = run(root, { "run_tests", "--standalone", "--junit", "--coverage" })
    assert.equal(0, r.code, r.stdout .. r.stderr)
    local me = proc.self().uid
    for _, d in ipairs(dirs) do
      assert.same({ uid = me, mode = "rwx------" }, owner_mode(d), d)
      assert.equal("kept\n", H.read(d .. "/keep.txt"), d)
    end
    assert.truthy(H.read(root .. "/.novapipe/audit.log"))
    assert.truthy(H.read(root .. "/backend/test-results/standalone-results.xml"))
    assert.truthy(lfs.attributes(root .. "/backend/coverage_html/standalone_tests/index.html", "mode"))
    assert.same({ uid = me, mode = "rwx------" }, owner_mode(root .. "/backend/coverage_html/standalone_tests"))
    for _, rel in ipairs(fs.walk(root, { dirs = true })) do
      assert.is_nil(rel:find("novapipe-own", 1, true), rel .. " was left behind")
    end
  end)

  it("finishes a take-over of .novapipe that was cut short: the next run loses no entry of the audit log", function()
    local root = project({ [TESTS .. "standalone/test_ok.py"] = "def test_ok():\n    pass\n" })
    assert.equal(0, run(root, { "run_tests", "--standalone" }).code)
    local np, left = root .. "/.novapipe", root .. "/.novapipe.novapipe-own"
    -- killed midway: the log moved into the new directory, its head not yet
    assert(fs.mkdir_p(left))
    assert(os.rename(np .. "/audit.log", left .. "/audit.log"))
    give_away(np)
    local r = run(root, { "run_tests", "--standalone" })
    assert.equal(0, r.code, r.stdout .. r.stderr)
    assert.same({ uid = proc.self().uid, mode = "rwx------" }, owner_mode(np))
    assert.is_nil(lfs.symlinkattributes(left, "mode"))
    local v = H.novapipe({ "-C", root, "audit", "verify" })
    assert.equal(0, v.code, v.stdout .. v.stderr)
    local _, entries = H.read(np .. "/audit.log"):gsub("\n", "")
    assert.equal(2, entries)
    -- killed after the old one was removed: only the new directory is there
    assert(os.rename(np, left))
    assert.equal(0, run(root, { "run_tests", "--standalone" }).code)
    assert.is_nil(lfs.symlinkattributes(left, "mode"))
    assert.equal(0, H.novapipe({ "-C", root, "audit", "verify" }).code)
    _, entries = H.read(np .. "/audit.log"):gsub("\n", "")
    assert.equal(3, entries)
  end)

  it("never rebuilds a missing audit head: the run says so, verify says so, audit init starts anew", function()
    local root = project({ [TESTS .. "standalone/test_ok.py"] = "def test_ok():\n    pass\n" })
    assert.equal(0, run(root, { "run_tests", "--standalone" }).code)
    assert.equal(0, run(root, { "run_tests", "--standalone" }).code)
    local log = root .. "/.novapipe/audit.log"
    local first = H.read(log):match("^[^\n]+\n")
    H.write(log, first) -- the tail cut
    os.remove(log .. ".head") -- and the head that would show it
    local r = run(root, { "run_tests", "--standalone" })
    assert.matches("audit log not written: .*audit%.log%.head is missing", r.stderr)
    assert.equal(first, H.read(log))
    local v = H.novapipe({ "-C", root, "audit", "verify" })
    assert.equal(1, v.code)
    assert.matches("head: missing", v.stdout)
    local i = H.novapipe({ "-C", root, "audit", "init" })
    assert.equal(0, i.code, i.stderr)
    v = H.novapipe({ "-C", root, "audit", "verify" })
    assert.equal(0, v.code, v.stdout)
    assert.matches('"pipeline":"audit init"', H.read(log))
    assert.equal(0, run(root, { "run_tests", "--standalone" }).code)
    assert.equal(0, H.novapipe({ "-C", root, "audit", "verify" }).code)
  end)

  it("records refused runs in the audit log: an unknown pipeline, a syntax error", function()
    local root = project({ ["pipelines/broken.lua"] = "return 1 +\n" })
    assert.equal(2, run(root, { "no_such_pipeline" }).code)
    assert.equal(2, run(root, { "broken" }).code)
    local log = H.read(root .. "/.novapipe/audit.log")
    local n = 0
    for line in log:gmatch("[^\n]+") do
      n = n + 1
      assert.matches('"exit":2', line)
    end
    assert.equal(2, n)
  end)

  it("refuses a --filter that is in no tier or selects no test, and runs every tier for a directory holding them", function()
    local root = project({ [TESTS .. "standalone/test_ok.py"] = "def test_ok():\n    pass\n",
                           ["docs/x.txt"] = "x" })
    local r = run(root, { "run_tests", "--all", "--filter", root .. "/docs/x.txt", "--strict" })
    assert.equal(2, r.code)
    assert.matches("in no tier's directory", r.stderr)
    r = run(root, { "run_tests", "--standalone", "--filter", root .. "/backend/app/tests" })
    assert.equal(0, r.code, r.stdout)
    assert.matches("1 passed", r.stdout)
    -- a name expression that selects nothing anywhere is not a silent pass
    r = run(root, { "run_tests", "--filter", "no_such_test" })
    assert.equal(1, r.code, r.stdout)
    assert.matches("%-%-filter no_such_test selected no test in any tier: nothing ran", r.stdout)
    r = run(root, { "run_tests", "--filter", "test_ok" })
    assert.equal(0, r.code, r.stdout)
  end)

  it("stops a novapipe.lua that loops forever at the first SIGTERM", function()
    local root = project({ ["novapipe.lua"] = "while true do end\n" })
    local p = assert(proc.spawn({ H.bin, "-C", root, "run", "run_tests" }, { stdout = "capture", stderr = "capture" }))
    time.sleep(0.5)
    p:kill("TERM")
    local r = p:wait(10)
    assert.truthy(r, "still running 10 s after one SIGTERM")
    assert.equal(130, r.code)
    assert.matches("interrupted", r.stderr)
    assert.is_nil(r.stderr:find("table: 0x", 1, true))
  end)
end)

describe("the sink's memory", function()
  local keep = H.temporaries(after_each)

  -- The peak resident size of a running process: the kernel's high-water
  -- mark, read until the process is gone (the last reading is the peak).
  local function peak_kb(pid)
    local peak = 0
    while true do
      local status = H.read("/proc/" .. pid .. "/status")
      local hwm = status and tonumber(status:match("VmHWM:%s+(%d+)"))
      if not hwm then break end
      peak = math.max(peak, hwm)
      time.sleep(0.02)
    end
    return peak
  end

  it("stays small while a test prints 50 MB into the JUnit XML (junit_logging = system-out)", function()
    local root = keep(H.tree({
      ["pytest.ini"] = "[pytest]\njunit_logging = system-out\n",
      [TESTS .. "standalone/test_big.py"] = "import sys\ndef test_big():\n    line = 'x' * 999 + '\\n'\n"
        .. "    for _ in range(50000):\n        sys.stdout.write(line)\n    print('ssn " .. SSN .. "')\n",
    }))
    -- AddressSanitizer keeps freed memory in quarantine (256 MB by
    -- default): a small one, so the figure is about novapipe's own use.
    local asan = os.getenv("ASAN_OPTIONS")
    local env = H.sanitized and { ASAN_OPTIONS = (asan and asan ~= "" and (asan .. ":") or "") .. "quarantine_size_mb=4" } or {}
    local p = assert(proc.spawn({ H.bin, "-C", root, "run", "run_tests", "--standalone", "--junit" },
      { stdout = "capture", stderr = "capture", env = env }))
    local peak = peak_kb(p:pid())
    local r = p:wait()
    assert.equal(0, r.code, r.stdout .. r.stderr)
    local xml = root .. "/backend/test-results/standalone-results.xml"
    assert.truthy(lfs.attributes(xml, "size") > 50000000)
    local f = assert(io.open(xml, "rb"))
    f:seek("end", -65536)
    local tail = f:read("a")
    f:close()
    assert.matches("%[PHI:ssn%]", tail)
    -- sanitizer builds carry shadow memory and their own allocator: a
    -- looser bound there
    local limit = H.sanitized and 160 * 1024 or 32 * 1024
    assert.truthy(peak > 0 and peak < limit, ("novapipe's peak RSS was %d kB"):format(peak))
  end)
end)
