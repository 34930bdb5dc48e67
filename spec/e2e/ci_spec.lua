-- GitHub-native CI: the annotations' escaping, the step summary's bound,
-- the reporters in a real run with GITHUB_ACTIONS, and the workflow in
-- docs/ci that runs novapipe.
local lfs = require "lfs"
local process = require "novapipe.process"
local H = require "spec.support.h"

local github = require "novapipe.reporters.github"
local markdown = require "novapipe.reporters.markdown"

local TESTS = "backend/app/tests/"

local function identity(s) return s end

describe("GitHub annotations", function()
  it("escape %, CR and LF in messages, and : and , as well in properties", function()
    assert.equal("100%25 sure%0D%0Anext: a, b", github.escape_data("100% sure\r\nnext: a, b"))
    assert.equal("a%3A%3Ab%2C c%25%0A", github.escape_property("a::b, c%\n"))
    local line = github.annotation({ id = "t.py::test_x[a,b]", file = "t.py", line = 3, outcome = "failed",
      tier = "venv", message = "assert 1 == 2\nwhere: 50% of, it", location = "t.py:9" }, identity)
    assert.equal("::error file=t.py,line=9,title=t.py%3A%3Atest_x[a%2Cb]::assert 1 == 2%0Awhere: 50%25 of, it "
      .. "(failed, venv)", line)
  end)

  it("name the file relative to the workspace, and mask every field", function()
    local cwd = lfs.currentdir()
    local line = github.annotation({ id = "x::test_219-09-9999", file = cwd .. "/proj/t.py", line = 4,
      outcome = "error", message = "boom 219-09-9999" }, function(s) return (s:gsub("219%-09%-9999", "[PHI:ssn]")) end,
      cwd)
    assert.equal("::error file=proj/t.py,line=4,title=x%3A%3Atest_[PHI%3Assn]::boom [PHI:ssn]", line)
  end)

  it("make a stage's error an error and an unchecked stage a warning; other stages none", function()
    assert.equal("::error title=novapipe%3A integration ended in an error::PostgreSQL is not installed%0Anext",
      github.stage_annotation("integration", { status = "error", reason = "PostgreSQL is not installed\nnext" },
        identity))
    assert.equal("::warning title=novapipe%3A dependencies did not check::no advisory database",
      github.stage_annotation("dependencies", { status = "unchecked", reason = "no advisory database" }, identity))
    for _, status in ipairs({ "passed", "failed", "skipped", "empty" }) do
      assert.is_nil(github.stage_annotation("x", { status = status, reason = "r" }, identity))
    end
  end)

  it("in a real run, warn that the dependencies were not checked when there is no advisory database", function()
    local root = H.tree({ ["backend/requirements.txt"] = "fastapi==0.110.0\n", [TESTS .. "standalone/test_a.py"] =
      "import pytest\n\n@pytest.mark.security\ndef test_a():\n    pass\n",
      ["novapipe.lua"] = "return { security = { required_safeguards = {} } }\n" })
    finally(function() H.rmrf(root) end)
    local r = H.novapipe({ "-C", root, "--no-color", "run", "security" }, { env = { GITHUB_ACTIONS = "true" } })
    assert.matches("\n::warning title=novapipe%%3A dependencies did not check::no advisory database", r.stdout)
  end)
end)

describe("the step summary", function()
  it("is cut at a line's end within GitHub's 1 MiB, saying so", function()
    local text = string.rep(string.rep("x", 99) .. "\n", 21000) -- 2.1 MB
    local cut = markdown.bounded(text, markdown.LIMIT - 1000)
    assert.is_true(#cut <= markdown.LIMIT - 1000)
    assert.matches("\n\n%*%*The step summary was cut here: GitHub takes at most 1 MiB a step%.", cut)
    assert.equal(string.rep("x", 99) .. "\n", cut:sub(1, 100))
    assert.equal("small\n", markdown.bounded("small\n", 100))
  end)
end)

describe("a run under GitHub Actions", function()
  local root
  before_each(function()
    root = H.tree({
      [TESTS .. "standalone/test_ci.py"] = "def test_ok():\n    pass\n\n"
        .. "def test_bad():\n    assert 'a,b' == 'a:b', 'msg with 100% and\\na newline'\n",
    })
  end)
  after_each(function() H.rmrf(root) end)

  it("annotates each failure, and its step summary has the failure in a details block with a re-run command", function()
    local summary = root .. "/summary.md"
    H.write(summary, string.rep("earlier step\n", 10))
    local r = H.novapipe({ "-C", root, "--no-color", "run", "run_tests", "--standalone" },
      { env = { GITHUB_ACTIONS = "true", GITHUB_WORKSPACE = root, GITHUB_STEP_SUMMARY = summary } })
    assert.equal(1, r.code, r.stderr)
    local annotation = r.stdout:match("\n(::error [^\n]*)\n")
    assert.is_not_nil(annotation, r.stdout)
    assert.equal("::error file=" .. TESTS .. "standalone/test_ci.py,line=5,title=" .. TESTS
      .. "standalone/test_ci.py%3A%3Atest_bad::AssertionError: msg with 100%25 and (failed, standalone)", annotation)
    local _, n = r.stdout:gsub("\n::error ", "")
    assert.equal(1, n)
    local md = H.read(summary)
    assert.equal(string.rep("earlier step\n", 10), md:sub(1, 130))
    assert.is_not_nil(md:find("| standalone | ❌ failed |", 1, true), md)
    assert.is_not_nil(md:find("<details><summary><code>" .. TESTS .. "standalone/test_ci.py::test_bad</code> "
      .. "(failed, standalone): AssertionError: msg with 100% and</summary>", 1, true), md)
    assert.matches("novapipe run run_tests %-%-filter " .. TESTS .. "standalone/test_ci%.py::test_bad\n", md)
    assert.matches("#### Files written\n\n%- `%.novapipe/runs/", md)
  end)
end)

describe("a run with many failures under GitHub Actions", function()
  it("annotates 50 and counts the rest, and keeps the step summary within 1 MiB, saying where it was cut", function()
    local root = H.tree({
      [TESTS .. "standalone/test_many.py"] = "import pytest\n@pytest.mark.parametrize('n', range(70))\n"
        .. "def test_many(n):\n    raise AssertionError('\\n'.join(['line %d of a long report' % i for i in range(800)]))\n",
    })
    local summary = root .. "/summary.md"
    local r = H.novapipe({ "-C", root, "--no-color", "run", "run_tests", "--standalone" },
      { env = { GITHUB_ACTIONS = "true", GITHUB_WORKSPACE = root, GITHUB_STEP_SUMMARY = summary } })
    assert.equal(1, r.code, r.stderr)
    local _, errors = r.stdout:gsub("\n::error ", "")
    assert.equal(50, errors)
    assert.matches("\n::warning title=novapipe::20 more failures not annotated %(GitHub shows 50 a step%)", r.stdout)
    local md = H.read(summary)
    assert.is_true(#md <= 1024 * 1024, #md .. " bytes")
    assert.is_true(#md > 1000 * 1024, "the summary was not near the limit: " .. #md .. " bytes")
    assert.matches("%*%*The step summary was cut here: GitHub takes at most 1 MiB a step%. [^\n]*%*%*\n$", md)
    H.rmrf(root)
  end)
end)

describe("docs/ci/github-actions.yml", function()
  it("parses, runs novapipe's setup and `run all`, keeps the reports also when tests fail, and uploads the SARIF", function()
    local home = os.getenv("NOVAPIPE_HOME") or "."
    local r = assert(process.run({ "/usr/bin/python3", "-c", [[
import json, sys, yaml
doc = yaml.safe_load(open(sys.argv[1]))
print(json.dumps(doc["jobs"]["novapipe"]))
]], home .. "/docs/ci/github-actions.yml" }))
    assert.equal(0, r.code, r.stderr)
    local job = require("cjson").decode(r.stdout)
    assert.equal("debian:12", job.container)
    local runs, upload, sarif, cache, main = {}, nil, nil, nil, nil
    for _, step in ipairs(job.steps) do
      if step.run then runs[#runs + 1] = step.run end
      if step.run and step.run:find(" run all ", 1, true) then main = #runs end
      if step.uses and step.uses:match("^actions/upload%-artifact@") then upload = step end
      if step.uses and step.uses:match("^github/codeql%-action/upload%-sarif@") then sarif = step end
      if step.uses and step.uses:match("^actions/cache@") then cache = step end
    end
    assert.equal(".novapipe-src/scripts/setup.sh", runs[1])
    assert.truthy(lfs.attributes(home .. "/scripts/setup.sh", "mode") == "file")
    -- the advisory database: cached where novapipe keeps it, refreshed before the run
    assert.equal("~/.cache/novapipe/osv", cache.with.path)
    assert.equal(".novapipe-src/build/novapipe advisories update", runs[main - 1])
    assert.matches("update", H.novapipe({ "advisories", "--help" }).stdout) -- a command novapipe has
    -- the main job's command line is one novapipe accepts, and asks for the SARIF file
    assert.matches("%-%-format [%w,]*sarif", runs[main])
    local args = {}
    for w in runs[main]:gmatch("%S+") do args[#args + 1] = w end
    assert.equal(".novapipe-src/build/novapipe", args[1])
    assert.same({ "run", "all" }, { args[2], args[3] })
    local help = H.novapipe({ "run", "all", "--help" })
    for i = 4, #args do
      if args[i]:match("^%-%-") then assert.matches(args[i]:gsub("%-", "%%-"), help.stdout) end
    end
    assert.equal("always()", upload["if"])
    for _, p in ipairs({ "backend/test-results/", "backend/coverage_html/", "backend/security-reports/" }) do
      assert.is_not_nil(upload.with.path:find(p, 1, true), p)
    end
    -- the SARIF file where the security pipeline writes it, uploaded also on a failed run
    local sec = require("novapipe.config").defaults().security
    assert.equal(sec.reports .. "/" .. require("novapipe.security.sarif").FILE, sarif.with.sarif_file)
    assert.matches("!cancelled()", sarif["if"], 1, true)
    assert.equal("write", job.permissions["security-events"])
  end)
end)

describe("docs/ci/github-actions-sharded.yml", function()
  it("runs N shards that upload their directories, then a merge that needs them all; its commands, run here in "
    .. "order, give the whole suite", function()
    local home = os.getenv("NOVAPIPE_HOME") or "."
    local r = assert(process.run({ "/usr/bin/python3", "-c", [[
import json, sys, yaml
print(json.dumps(yaml.safe_load(open(sys.argv[1]))["jobs"]))
]], home .. "/docs/ci/github-actions-sharded.yml" }))
    assert.equal(0, r.code, r.stderr)
    local jobs = require("cjson").decode(r.stdout)
    local function steps(job)
      local runs, uses = {}, {}
      for _, s in ipairs(job.steps) do
        if s.run then runs[#runs + 1] = s.run end
        if s.uses then uses[s.uses:match("^([^@]+)")] = s end
      end
      return runs, uses
    end
    local matrix = jobs.shard.strategy.matrix.shard
    local shard_runs, shard_uses = steps(jobs.shard)
    local merge_runs, merge_uses = steps(jobs.merge)
    assert.equal("shard", jobs.merge.needs)
    assert.equal("always()", jobs.merge["if"])
    local command = shard_runs[2]
    assert.matches("%-%-shard %${{ matrix.shard }}/" .. #matrix .. " ", command)
    local upload = shard_uses["actions/upload-artifact"]
    assert.is_true(upload.with["include-hidden-files"])
    local shard_dir = command:match("%-%-shard%-dir (%S+)")
    assert.equal(shard_dir .. "/", upload.with.path)
    local download = merge_uses["actions/download-artifact"]
    assert.equal(upload.with.name:gsub("%${{ matrix.shard }}", "*"), download.with.pattern)

    -- the jobs' commands, here: each shard, its directory where the
    -- download puts it, then the merge
    local files = { ["backend/app/calc.py"] = "def double(x):\n    return 2 * x\n" }
    for i = 1, 5 do
      files[TESTS .. ("standalone/test_%d.py"):format(i)] = ("from app.calc import double\ndef test_%d():\n"
        .. "    assert double(%d) == %d\n"):format(i, i, 2 * i)
    end
    files["pytest.ini"] = "[pytest]\npythonpath = backend\n"
    local root = H.tree(files)
    local function sh(line, k)
      local args = {}
      line = line:gsub("%${{ matrix.shard }}", k and tostring(math.tointeger(k)) or "")
      for w in line:gmatch("%S+") do args[#args + 1] = w end
      assert.equal(".novapipe-src/build/novapipe", table.remove(args, 1))
      if args[1] == "merge" then
        -- the shell's glob
        local dirs = {}
        for d in lfs.dir(root .. "/" .. download.with.path) do
          if d:find(download.with.pattern:gsub("%-", "%%-"):gsub("%*", ".*")) then dirs[#dirs + 1] = d end
        end
        table.sort(dirs)
        table.remove(args, 2)
        for i, d in ipairs(dirs) do table.insert(args, 1 + i, download.with.path .. "/" .. d) end
      end
      table.insert(args, 1, "-C")
      table.insert(args, 2, root)
      return H.novapipe(args, { env = { GITHUB_ACTIONS = false, GITHUB_STEP_SUMMARY = false } })
    end
    for _, k in ipairs(matrix) do
      local s = sh(command, k)
      assert.equal(0, s.code, s.stdout .. s.stderr)
      local into = ("%s/%s/%s"):format(root, download.with.path, upload.with.name:gsub("%${{ matrix.shard }}", tostring(math.tointeger(k))))
      assert(process.run({ "mkdir", "-p", root .. "/" .. download.with.path }))
      assert.equal(0, assert(process.run({ "cp", "-a", root .. "/" .. shard_dir, into })).code)
    end
    local m = sh(merge_runs[2])
    assert.equal(0, m.code, m.stdout .. m.stderr)
    assert.matches("Total: 5 tests: 5 passed", m.stdout, 1, true)
    assert.matches("PASS  coverage [%d.]+s  total 100%%", m.stdout)
    local rec = require("cjson").decode((assert(H.read(root .. "/novapipe-run.json"))))
    assert.equal(5, rec.totals.passed)
    H.rmrf(root)
  end)
end)
