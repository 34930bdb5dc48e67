local analyze = require "novapipe.analyze"
local config = require "novapipe.config"

-- The memory a call allocates, in bytes, with the collector stopped.
local function allocated(f)
  collectgarbage("collect")
  collectgarbage("stop")
  local before = collectgarbage("count")
  f()
  local after = collectgarbage("count")
  collectgarbage("restart")
  return (after - before) * 1024
end

describe("matching a module against the tier indicators", function()
  local a = analyze.new(config.defaults(), "backend/app/tests")

  it("finds the shortest indicator at a component boundary, with or without a package root", function()
    assert.equal("app.infrastructure.persistence", a:indicator("app.infrastructure.persistence.db", "integration"))
    assert.equal("redis", a:indicator("redis.asyncio.client", "venv"))
    assert.is_nil(a:indicator("redisx.asyncio", "venv"))
    assert.equal("app.infrastructure.persistence", a:indicator("backend.app.infrastructure.persistence.x", "integration"))
    -- empty components are no part of a prefix, as import_module strings may have them
    assert.equal("app.infrastructure.persistence", a:indicator(".app..infrastructure.persistence.", "integration"))
  end)

  it("costs a long dotted name its length, not its length squared", function()
    local module = ("a."):rep(4000) .. "a"
    local bytes = allocated(function()
      assert.is_nil(a:indicator(module, "venv"))
      assert.is_nil(a:indicator("backend." .. module, "integration"))
    end)
    -- each prefix built in turn would allocate some 16 MB here
    assert.is_true(bytes < 64 * #module, ("%d bytes allocated"):format(bytes))
  end)
end)

describe("a memoized walk over a graph with cycles", function()
  -- random graphs: node -> successors; some nodes are targets
  local function graph(seed, n, edges)
    math.randomseed(seed)
    local succ, target = {}, {}
    for v = 1, n do
      succ[v] = {}
      target[v] = math.random() < 0.08
    end
    for _ = 1, edges do
      local a, b = math.random(n), math.random(n)
      table.insert(succ[a], b)
    end
    return succ, target
  end

  -- the distance from v to the nearest target, by breadth first
  local function distance(succ, target, v)
    local dist, queue, i = { [v] = 0 }, { v }, 1
    while i <= #queue do
      local u = queue[i]
      i = i + 1
      if target[u] then return dist[u] end
      for _, w in ipairs(succ[u]) do
        if not dist[w] then
          dist[w] = dist[u] + 1
          queue[#queue + 1] = w
        end
      end
    end
  end

  it("answers a yes/no question as a search would, whatever it was asked before", function()
    for seed = 1, 60 do
      local n = 5 + seed % 30
      local succ, target = graph(seed, n, n * 2)
      local walk = analyze._new_walk(true)
      local function reach(v)
        return walk:get(v, 0, function()
          if target[v] then return true end
          for _, w in ipairs(succ[v]) do
            if reach(w) then return true end
          end
          return false
        end)
      end
      for _ = 1, 3 * n do
        local v = math.random(n)
        assert.equal(distance(succ, target, v) ~= nil, reach(v) and true or false, ("seed %d, node %d"):format(seed, v))
      end
    end
  end)

  it("keeps what a depth cap cut short for that depth only", function()
    local K = 4
    for seed = 1, 60 do
      local n = 5 + seed % 30
      local succ, target = graph(seed, n, n * 2)
      local walk = analyze._new_walk(true)
      local function reach(v, depth)
        return walk:get(v, depth, function()
          if depth > K then
            walk:cap()
            return false
          end
          if target[v] then return true end
          for _, w in ipairs(succ[v]) do
            if reach(w, depth + 1) then return true end
          end
          return false
        end)
      end
      for _ = 1, 3 * n do
        local v, depth = math.random(n), math.random(0, K)
        local d, got = distance(succ, target, v), reach(v, depth) and true or false
        local why = ("seed %d, node %d at depth %d"):format(seed, v, depth)
        -- within the hops left: found; not reachable at all: not found
        if d and d <= K - depth then assert.is_true(got, why) end
        if not d then assert.is_false(got, why) end
      end
    end
  end)

  it("gives each node everything it reaches, cycles and all", function()
    for seed = 1, 60 do
      local n = 5 + seed % 30
      local succ = graph(seed, n, n * 2)
      local walk = analyze._new_walk(false)
      local function all(v)
        return walk:get(v, 0, function()
          local set = { [v] = true }
          for _, w in ipairs(succ[v]) do
            for x in pairs(all(w) or {}) do set[x] = true end
          end
          return set
        end)
      end
      for _ = 1, 3 * n do
        local v = math.random(n)
        local want, queue, i = { [v] = true }, { v }, 1
        while i <= #queue do
          for _, w in ipairs(succ[queue[i]]) do
            if not want[w] then
              want[w] = true
              queue[#queue + 1] = w
            end
          end
          i = i + 1
        end
        assert.same(want, all(v), ("seed %d, node %d"):format(seed, v))
      end
    end
  end)

  it("works a node out once per cycle, not once per path to it", function()
    -- a ladder of diamonds, each rung leading back to the first
    local n, calls = 40, 0
    local succ = {}
    for v = 1, n do succ[v] = { v + 1, v + 2, 1 } end
    local walk = analyze._new_walk(true)
    local function reach(v)
      return walk:get(v, 0, function()
        calls = calls + 1
        for _, w in ipairs(v <= n and succ[v] or {}) do
          if reach(w) then return true end
        end
        return false
      end)
    end
    assert.is_false(reach(1))
    assert.is_true(calls <= 2 * (n + 2), ("%d calls"):format(calls))
  end)
end)

describe("pyscan.words", function()
  local words = require("novapipe.pyscan").words
  local set = { login = true, password = true, auth = true, access = { token = true } }

  it("finds a keyword however many words come before it", function()
    -- (the 17th word and after were not read)
    local name = "test_" .. ("a_"):rep(40) .. "password"
    local hits, which, kw = words(name, set)
    assert.equal(1, hits)
    assert.equal(name, which)
    assert.equal("password", kw)
    assert.equal("access_token", select(3, words("test_" .. ("b_"):rep(20) .. "access_token", set)))
  end)

  it("splits at _, - and . and where camel case turns, and passes over words too long to be keywords", function()
    assert.equal("login", select(3, words("testLoginPage", set)))
    assert.equal("auth", select(3, words("HTTPAuthHandler", set)))
    assert.equal(2, (words(("x"):rep(64) .. "_login " .. ("y"):rep(63) .. "Login", set)))
    assert.is_nil(words("test_author_list test_access " .. ("z"):rep(100), set))
    assert.is_nil(words("", set))
  end)

  it("reads each set as it is at the first call with it, and many sets apart", function()
    -- (only true marks a keyword, and a two-word one only with its second word)
    local odd = { login = false, session = { cookie = true, id = false }, [7] = true, sso = true }
    assert.is_nil(words("test_login test_session test_session_id test_cookie", odd))
    assert.same({ 2, "test_session_cookie", "session_cookie" },
      { words("test_session_cookie test_sso test_login", odd) })
    -- a set made apart is its own, however many there are
    for i = 1, 50 do
      local one = { ["word" .. i] = true }
      assert.equal("word" .. i, select(3, words("test_word" .. i, one)))
      assert.is_nil(words("test_word" .. (i + 1), one))
    end
    collectgarbage()
    assert.equal("auth", select(3, words("test_auth", set)))
  end)
end)

describe("a file analyze cannot follow to the end", function()
  it("is unknown, with why, when its chains go deeper than the Lua stack; another error is raised", function()
    local a = analyze.new(config.defaults(), "tests")
    -- (a chain of 40,000 helpers importing each other does this for real)
    local function deep(n) return n == 0 and 0 or 1 + deep(n - 1) end
    a.classify = function() return deep(1e7) end
    local d = a:classify_guarded("tests/test_deep.py")
    assert.equal("unknown", d.category)
    assert.matches("deeper than analyze can follow", d.reasons[1])
    assert.equal(1, #a.errors)
    a.classify = function() error("a bug") end
    assert.has_error(function() a:classify_guarded("tests/test_bug.py") end, "a bug")
  end)

  it("cuts a chain of fixtures after 64, with a note", function()
    local dir = os.tmpname()
    os.remove(dir)
    assert(require("lfs").mkdir(dir))
    local lines = { "import pytest" }
    for i = 0, 199 do lines[#lines + 1] = ("@pytest.fixture\ndef f%d(f%d):\n    return 1"):format(i, i + 1) end
    local f = assert(io.open(dir .. "/conftest.py", "w"))
    f:write(table.concat(lines, "\n"), "\n")
    f:close()
    f = assert(io.open(dir .. "/test_chain.py", "w"))
    f:write("def test_a(f0):\n    pass\n")
    f:close()
    local a = analyze.new(config.defaults(), dir, dir)
    local d = a:classify(dir .. "/test_chain.py")
    os.remove(dir .. "/conftest.py")
    os.remove(dir .. "/test_chain.py")
    os.remove(dir)
    assert.equal("standalone", d.category)
    assert.matches("f63 %-> f64 is not followed: a chain of more than 64 fixtures", d.reasons[#d.reasons])
  end)
end)

describe("analyze.tree_files", function()
  local H = require "spec.support.h"

  it("gives the test files test_files gives and the tree's other Python files, from one walk", function()
    local root = H.tree({
      ["test_a.py"] = "", ["b_test.py"] = "", ["conftest.py"] = "", ["helpers.py"] = "", ["notes.txt"] = "",
      ["pkg/__init__.py"] = "", ["pkg/test_c.py"] = "", ["pkg/util.py"] = "", ["pkg/check_d.py"] = "",
      ["deep/x/check_e.py"] = "", ["__pycache__/test_f.py"] = "", [".venv/test_g.py"] = "",
    })
    finally(function() H.rmrf(root) end)
    for _, patterns in ipairs({ { "test_*.py", "*_test.py" }, { "test_*.py", "pkg/check_*.py" }, { "*.py" },
                                { "deep/**/check_*.py" } }) do
      local tree = assert(analyze.tree_files(root, patterns))
      assert.same(assert(analyze.test_files(root, patterns)), tree.tests)
      local is_test, helpers = {}, {}
      for _, f in ipairs(tree.tests) do is_test[f] = true end
      for _, f in ipairs(assert(require("novapipe.fs").walk(root, { include = { "*.py" },
        exclude = { "__pycache__", ".*" } }))) do
        if not is_test[root .. "/" .. f] then helpers[#helpers + 1] = root .. "/" .. f end
      end
      assert.same(helpers, tree.helpers)
    end
    local tree = analyze.tree_files(root, { "test_*.py" })
    assert.same({ root .. "/pkg/test_c.py", root .. "/test_a.py" }, tree.tests)
    assert.is_nil(analyze.tree_files(root .. "/missing", { "test_*.py" }))
  end)
end)
