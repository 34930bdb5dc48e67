-- --shard K/N and novapipe merge end to end: the real binary, real pytest,
-- a project written into a temporary directory; one full run, three
-- shards and their merge, checked against each other.
local cjson = require "cjson"
local lfs = require "lfs"
local H = require "spec.support.h"

local TESTS = "backend/app/tests/"

local function run(root, args)
  local argv = { "-C", root, "--no-color" }
  for _, a in ipairs(args) do argv[#argv + 1] = a end
  return H.novapipe(argv)
end

local function ids_of(path)
  local rec = cjson.decode((assert(H.read(path))))
  local ids = {}
  for _, t in ipairs(rec.tests) do ids[#ids + 1] = t.id end
  table.sort(ids)
  return ids, rec
end

describe("--shard K/N and novapipe merge", function()
  local root
  setup(function()
    local files = {}
    -- seven standalone files of different sizes, one venv file: two of
    -- three shards have no venv test
    for i = 1, 7 do
      local body = {}
      for j = 1, i do body[#body + 1] = ("def test_%d_%d():\n    pass\n"):format(i, j) end
      files[TESTS .. ("standalone/test_f%d.py"):format(i)] = table.concat(body)
    end
    files[TESTS .. "standalone/test_param.py"] =
      "import pytest\n@pytest.mark.parametrize('n', range(4))\ndef test_p(n):\n    pass\n"
    files[TESTS .. "venv/test_v.py"] = "def test_v():\n    pass\n"
    root = H.tree(files)
  end)
  teardown(function() H.rmrf(root) end)

  it("refuses a shard that is not K/N with 1 <= K <= N, with exit 2 and one line", function()
    for _, bad in ipairs({ "0/3", "4/3", "x" }) do
      local r = run(root, { "run", "run_tests", "--shard", bad })
      assert.equal(2, r.code)
      assert.equal(1, select(2, r.stderr:gsub("\n", "")))
      assert.matches("'" .. bad .. "' is not a shard K/N", r.stderr, 1, true)
    end
  end)

  it("splits every tier into shards whose union is a full run's tests, none twice, the same each time, "
    .. "and merges them into what the full run gave", function()
    local full = run(root, { "run", "run_tests", "--json", root .. "/full.json" })
    assert.equal(0, full.code, full.stdout .. full.stderr)
    -- the full run recorded durations; the shards read them
    assert.truthy(lfs.attributes(root .. "/.novapipe/durations.json"))
    local seen, union, splits = {}, {}, {}
    for k = 1, 3 do
      local r = run(root, { "run", "run_tests", "--shard", k .. "/3" })
      assert.equal(0, r.code, r.stdout .. r.stderr)
      local dir = ("%s/.novapipe/shards/%d-of-3"):format(root, k)
      local ids = ids_of(dir .. "/record.json")
      assert.is_true(#ids > 0)
      for _, id in ipairs(ids) do
        assert.is_nil(seen[id], id .. " ran in two shards")
        seen[id] = k
        union[#union + 1] = id
      end
      local m = cjson.decode((assert(H.read(dir .. "/manifest.json"))))
      splits[#splits + 1] = m.split
      if r.stdout:find("no tests in this shard (" .. k .. "/3)", 1, true) then
        splits.empty = true
      end
    end
    table.sort(union)
    local full_ids, full_rec = ids_of(root .. "/full.json")
    assert.same(full_ids, union)
    assert.equal(28 + 4 + 1, #full_ids) -- 1+..+7, 4 parametrized, the venv test
    -- each shard computed the same split, and so does this process
    assert.equal(splits[1], splits[2])
    assert.equal(splits[1], splits[3])
    assert.is_true(splits.empty, "a shard with no venv file said so")
    local here = lfs.currentdir()
    assert(lfs.chdir(root))
    local shard = require "novapipe.select.shard"
    local tiers = { { name = "standalone", dir = TESTS .. "standalone" }, { name = "venv", dir = TESTS .. "venv" } }
    local a, b = shard.plan(tiers, 2, 3), shard.plan(tiers, 2, 3)
    lfs.chdir(here)
    assert.equal(a.digest, b.digest)
    assert.equal(splits[1], a.digest)

    -- a missing and a duplicated shard: one line naming it, exit 2
    local d = root .. "/.novapipe/shards/"
    local r = run(root, { "merge", d .. "1-of-3", d .. "3-of-3" })
    assert.equal(2, r.code)
    assert.equal("novapipe: merge: shard 2/3 is missing (given: 1/3, 3/3): download every shard's directory\n", r.stderr)
    r = run(root, { "merge", d .. "1-of-3", d .. "2-of-3", d .. "2-of-3", d .. "3-of-3" })
    assert.equal(2, r.code)
    assert.matches("^novapipe: merge: shard 2/3 is given twice: [^\n]+\n$", r.stderr)
    -- a manifest that names a shard no run has is said to be one, not dropped
    local bad = root .. "/bad-shard"
    assert(require("novapipe.process").run({ "cp", "-a", d .. "2-of-3", bad }).code == 0)
    local manifest = H.read(bad .. "/manifest.json"):gsub('"k": *2', '"k": 7')
    H.write(bad .. "/manifest.json", manifest)
    r = run(root, { "merge", d .. "1-of-3", bad, d .. "3-of-3" })
    assert.equal(2, r.code)
    assert.matches("^novapipe: merge: [^\n]*bad%-shard/manifest%.json says shard 7/3: not a shard of a run", r.stderr)

    r = run(root, { "merge", d .. "1-of-3", d .. "2-of-3", d .. "3-of-3", "--json", root .. "/merged.json" })
    assert.equal(0, r.code, r.stdout .. r.stderr)
    local merged_ids, merged = ids_of(root .. "/merged.json")
    assert.same(full_ids, merged_ids)
    assert.same(full_rec.totals, merged.totals)
    local function tier_counts(rec)
      local out = {}
      for _, s in ipairs(rec.stages) do if s.counts then out[s.name] = s.counts end end
      return out
    end
    assert.same(tier_counts(full_rec), tier_counts(merged))
    -- one JUnit file a tier, with every test
    assert.matches('tests="32"', H.read(root .. "/backend/test-results/standalone-results.xml"), 1, true)

    -- --shard-by test: a file's tests spread over the shards, the union
    -- again the full run's
    local by_test, spread = {}, {}
    for k = 1, 3 do
      local dir = ("%s/by-test-%d"):format(root, k)
      local s = run(root, { "run", "run_tests", "--shard", k .. "/3", "--shard-by", "test", "--shard-dir", dir })
      assert.equal(0, s.code, s.stdout .. s.stderr)
      for _, id in ipairs((ids_of(dir .. "/record.json"))) do
        assert.is_nil(seen[id .. "#"], id .. " ran in two shards")
        seen[id .. "#"] = k
        by_test[#by_test + 1] = id
        local file = id:match("^(.-)::")
        spread[file] = spread[file] or {}
        spread[file][k] = true
      end
    end
    table.sort(by_test)
    assert.same(full_ids, by_test)
    local split_files = 0
    for _, ks in pairs(spread) do
      local n = 0
      for _ in pairs(ks) do n = n + 1 end
      if n > 1 then split_files = split_files + 1 end
    end
    assert.is_true(split_files > 0, "no file had its tests in two shards")
    -- durations: an export into a directory that is not there, and a
    -- recorded file that is not JSON, are one line each, exit 2
    r = run(root, { "durations", "--export", root .. "/no/such/dir/d.json" })
    assert.equal(2, r.code)
    assert.matches("no such directory [^\n]*/no/such/dir %(create it first%)\n$", r.stderr)
    assert.is_nil(lfs.attributes(root .. "/no"))
    H.write(root .. "/.novapipe/durations.json", "{bad")
    r = run(root, { "durations" })
    assert.equal(2, r.code)
    assert.matches("^novapipe: durations: %.novapipe/durations%.json cannot be read: ", r.stderr)
  end)

  it("with --changed, shards the affected files only: the shards together run what --changed runs, none twice", function()
    local files = { ["app/__init__.py"] = "", ["app/a.py"] = "A = 1\n", ["app/b.py"] = "B = 1\n",
                    ["backend/__init__.py"] = "", ["backend/app/__init__.py"] = "",
                    [TESTS .. "__init__.py"] = "", [TESTS .. "standalone/__init__.py"] = "",
                    [TESTS .. "venv/__init__.py"] = "", [TESTS .. "integration/__init__.py"] = "" }
    for i = 1, 5 do
      files[TESTS .. ("standalone/test_a%d.py"):format(i)] = ("from app.a import A\n\ndef test_a%d():\n    assert A == 1\n")
        :format(i)
    end
    files[TESTS .. "standalone/test_b.py"] = "from app.b import B\n\ndef test_b():\n    assert B == 1\n"
    files[TESTS .. "venv/test_vb.py"] = "from app.b import B\n\ndef test_vb():\n    assert B == 1\n"
    local repo = H.tree(files)
    local out = H.tmpdir()
    -- (one finally: busted keeps only the last one given)
    finally(function()
      H.rmrf(repo)
      H.rmrf(out)
    end)
    H.git_repo(repo)
    H.write(repo .. "/app/a.py", "A = 1  # changed\n")
    -- (the report outside the repository: a new file in it is a change)
    local all = run(repo, { "run", "run_tests", "--all", "--changed", "--json", out .. "/changed.json" })
    assert.equal(0, all.code, all.stdout .. all.stderr)
    local want = ids_of(out .. "/changed.json")
    assert.equal(5, #want)
    local union, seen = {}, {}
    for k = 1, 2 do
      local r = run(repo, { "run", "run_tests", "--all", "--changed", "--shard", k .. "/2" })
      assert.equal(0, r.code, r.stdout .. r.stderr)
      assert.matches("5 of 7 test files affected by 1 changed file", r.stdout)
      -- the venv tier has no affected file, in either shard; the
      -- integration tier no file at all
      assert.matches("SKIP%s+venv[^\n]*\n%s+no affected tests %(1 test file left out", r.stdout)
      assert.matches("SKIP%s+integration[^\n]*\n%s+no affected tests %(the tier has no test file%)", r.stdout)
      for _, id in ipairs((ids_of(("%s/.novapipe/shards/%d-of-2/record.json"):format(repo, k)))) do
        assert.is_nil(seen[id], id .. " ran in two shards")
        seen[id] = true
        union[#union + 1] = id
      end
    end
    table.sort(union)
    assert.same(want, union)
  end)

  it("fails the merged coverage when a shard's coverage data cannot be read, naming it", function()
    local dir = H.tmpdir()
    finally(function() H.rmrf(dir) end)
    H.write(dir .. "/.coverage.standalone-2", "garbage, not a coverage.py database")
    local cfg = require("novapipe.config").defaults()
    cfg.coverage.data, cfg.coverage.html = dir, dir .. "/html"
    local stage = require("novapipe.tiers").coverage_stage(cfg, { { name = "standalone",
      files = { dir .. "/.coverage.standalone-2" } } })
    local ctx = { sink = require("novapipe.run.sink").new({ out = function() end }), bus = require("novapipe.events").new() }
    local r = stage.run(ctx)
    assert.equal("error", r.status)
    assert.matches("could not read a data file: '" .. dir:gsub("%p", "%%%0") .. "/%.coverage%.standalone%-2'", r.reason)
  end)

  it("splits by longest time first, ties broken by path", function()
    local split = require("novapipe.select.shard").split
    local parts = split({ { name = "b", weight = 1 }, { name = "a", weight = 1 }, { name = "c", weight = 5 },
                          { name = "d", weight = 2 } }, 2)
    assert.same({ "c" }, parts[1].items)
    assert.same({ "a", "b", "d" }, parts[2].items)
  end)
end)
