-- The audit log: every pipeline run appends a chained entry; `novapipe
-- audit verify` finds every kind of tampering and names the entry.
local cjson = require "cjson"
local digest = require "novapipe.digest"
local lfs = require "lfs"
local process = require "novapipe.process"
local H = require "spec.support.h"

local PIPELINE = [[
local np = require "novapipe"
return np.pipeline {
  description = "writes a report",
  options = { { "--fail", "fail" } },
  stages = function(o)
    return { np.stage { name = "write", run = function(ctx)
      assert(ctx.sink:write("report.txt", "the report\n", "a report"))
      return not o.fail
    end } }
  end,
}
]]

local function lines(path)
  local out = {}
  for l in (H.read(path) or ""):gmatch("[^\n]+") do out[#out + 1] = l end
  return out
end

local function write_lines(path, list)
  H.write(path, table.concat(list, "\n") .. "\n")
end

-- An entry edited and its own hash recomputed, as a careful forger would.
local function rehash(line, from, to)
  local body = line:match('^(.*),"hash":"%x+"}$') .. "}"
  body = body:gsub(from, to)
  return body:sub(1, -2) .. ',"hash":"' .. digest.sha256(body) .. '"}'
end

describe("the audit log", function()
  local dir, log
  before_each(function()
    dir = H.tree({ ["pipelines/w.lua"] = PIPELINE })
    log = dir .. "/.novapipe/audit.log"
  end)
  after_each(function() H.rmrf(dir) end)

  local function run(...)
    return H.novapipe({ "-C", dir, "run", "w", ... })
  end
  local function verify()
    return H.novapipe({ "-C", dir, "audit", "verify" })
  end

  it("gets one owner-only entry per run, chained, with each report's sha256", function()
    assert.equal(0, run().code)
    assert.equal(1, run("--fail").code)
    assert.equal(2, run("--no-such-option", "123-45-6789").code)
    local l = lines(log)
    assert.equal(3, #l)
    local e1, e2, e3 = cjson.decode(l[1]), cjson.decode(l[2]), cjson.decode(l[3])
    assert.equal(1, e1.seq)
    assert.equal(string.rep("0", 64), e1.prev)
    assert.equal(e1.hash, e2.prev)
    assert.equal(e2.hash, e3.prev)
    assert.equal("w", e1.pipeline)
    assert.same({ "--fail" }, e2.args)
    assert.same({ "--no-such-option", "[PHI:ssn]" }, e3.args) -- masked as output is
    assert.same({ 0, "passed" }, { e1.outcome.exit, e1.outcome.status })
    assert.same({ 1, "failed" }, { e2.outcome.exit, e2.outcome.status })
    assert.same({ 2, "error" }, { e3.outcome.exit, e3.outcome.status })
    assert.equal(require("novapipe.proc").self().user, e1.user)
    assert.matches("^%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%dZ$", e1.time)
    -- the pipeline's report, then the run's record and its copy
    assert.equal(3, #e1.reports)
    assert.equal("report.txt", e1.reports[1].path)
    assert.equal(digest.sha256("the report\n"), e1.reports[1].sha256)
    assert.matches("^%.novapipe/runs/%d+T%d+%-w%.json$", e1.reports[2].path)
    assert.equal(".novapipe/last-run.json", e1.reports[3].path)
    assert.equal(e1.reports[2].sha256, e1.reports[3].sha256)
    assert.equal("rw-------", lfs.attributes(log, "permissions"))
    assert.equal("rwx------", lfs.attributes(dir .. "/.novapipe", "permissions"))
    local r = verify()
    assert.equal(0, r.code)
    assert.matches("3 entries, chain intact; last hash " .. e3.hash, r.stdout, 1, true)
  end)

  it("records the git commit when the project is a repository", function()
    assert.is_string(process.which("git"), "git is not installed (scripts/setup.sh installs it)")
    local git = { "git", "-C", dir, "-c", "user.name=t", "-c", "user.email=t@example.com" }
    local function g(...)
      local argv = { table.unpack(git) }
      for _, a in ipairs({ ... }) do argv[#argv + 1] = a end
      assert.equal(0, process.run(argv).code)
    end
    g("init", "-q")
    g("add", "pipelines")
    g("commit", "-q", "-m", "x")
    local head = process.run({ "git", "-C", dir, "rev-parse", "HEAD" }).stdout:match("%x+")
    run()
    assert.equal(head, cjson.decode(lines(log)[1]).commit)
  end)

  describe("verify names each kind of tampering, exit 1", function()
    local orig
    before_each(function()
      for _ = 1, 4 do run() end
      orig = lines(log)
      assert.equal(0, verify().code)
    end)

    local function expect(pattern)
      local r = verify()
      assert.equal(1, r.code)
      assert.matches(pattern, r.stdout)
      return r
    end

    it("an edited entry", function()
      local l = { table.unpack(orig) }
      l[2] = l[2]:gsub('"passed"', '"failed"', 1)
      write_lines(log, l)
      expect("line 2: entry 2 was edited")
    end)

    it("an edited entry whose hash was recomputed", function()
      local l = { table.unpack(orig) }
      l[2] = rehash(l[2], '"passed"', '"failed"')
      write_lines(log, l)
      expect("line 3: entry 3 does not follow entry 2")
    end)

    it("the last entry edited and re-hashed", function()
      local l = { table.unpack(orig) }
      l[4] = rehash(l[4], '"passed"', '"failed"')
      write_lines(log, l)
      expect("line 4: entry 4, the last, was replaced")
    end)

    it("a deleted entry", function()
      local l = { table.unpack(orig) }
      table.remove(l, 2)
      write_lines(log, l)
      expect("line 2: entry 2 is missing before entry 3: it was deleted")
    end)

    it("a deleted last entry", function()
      local l = { table.unpack(orig) }
      table.remove(l, 4)
      write_lines(log, l)
      expect("entry 4 was deleted")
    end)

    it("an inserted copy of an entry", function()
      local l = { table.unpack(orig) }
      table.insert(l, 3, l[2])
      write_lines(log, l)
      expect("line 3: entry 2 appears a second time")
    end)

    it("an inserted line that is no entry", function()
      local l = { table.unpack(orig) }
      table.insert(l, 2, '{"seq":2,"note":"hello"}')
      write_lines(log, l)
      expect("line 2: not an audit entry")
    end)

    it("reordered entries", function()
      local l = { table.unpack(orig) }
      l[2], l[3] = l[3], l[2]
      write_lines(log, l)
      expect("line 2: entry 3 comes before entry 2: entries were reordered")
    end)
  end)

  it("stays valid when pipelines run at once", function()
    H.write(dir .. "/pipelines/v.lua", PIPELINE)
    local handles = {}
    for i = 1, 12 do
      handles[i] = assert(process.start({ H.bin, "-C", dir, "run", i % 2 == 0 and "w" or "v" }, { stdout = "null" }))
    end
    for _, h in ipairs(handles) do assert.equal(0, h:wait().code) end
    local r = verify()
    assert.equal(0, r.code, r.stdout)
    assert.matches("12 entries, chain intact", r.stdout)
  end)

  it("records an interrupted run, exit 130", function()
    local marker = H.marker()
    H.write(dir .. "/pipelines/slow.lua", ([[
local np = require "novapipe"
return np.pipeline { description = "slow", stages = function()
  return { np.stage { name = "wait", run = function() return np.process.run({ "sleep", "%s" }).code == 0 end } }
end }
]]):format(marker))
    local p = assert(process.start({ H.bin, "-C", dir, "run", "slow" }))
    local deadline = require("novapipe.time").now() + 30
    while not H.find_process("sleep", marker) and require("novapipe.time").now() < deadline do
      require("novapipe.time").sleep(0.02)
    end
    assert.is_number(H.find_process("sleep", marker))
    p:kill("INT")
    assert.equal(130, p:wait().code)
    local e = cjson.decode(lines(log)[1])
    assert.same({ "slow", 130, "interrupted" }, { e.pipeline, e.outcome.exit, e.outcome.status })
    assert.equal(0, verify().code)
  end)

  it("is not written when the project turns it off", function()
    H.write(dir .. "/novapipe.lua", "return { audit = { enabled = false } }\n")
    assert.equal(0, run().code)
    assert.is_nil(lfs.attributes(log))
  end)

  it("has help, and wants a subcommand", function()
    local r = H.novapipe({ "audit", "--help" })
    assert.equal(0, r.code)
    assert.matches("verify%s+Verify the log's hash chain", r.stdout)
    r = H.novapipe({ "audit" })
    assert.equal(2, r.code)
    assert.equal("novapipe: a command is required (try 'novapipe --help')\n", r.stderr)
  end)

  it("verify of a log that does not exist is one line, exit 2", function()
    local r = verify()
    assert.equal(2, r.code)
    assert.matches("^novapipe: audit verify: read '.novapipe/audit.log': No such file or directory\n$", r.stderr)
  end)
end)
