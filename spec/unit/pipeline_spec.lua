local pipeline = require "novapipe.pipeline"
local events = require "novapipe.events"
local errors = require "novapipe._errors"

local function recorder()
  local seen = {}
  local bus = events.new()
  bus:subscribe({
    stage_end = function(_, stage, result) seen[#seen + 1] = stage.name .. "=" .. result.status end,
  })
  return bus, seen
end

local function def(stages, options)
  return pipeline.pipeline {
    description = "test",
    options = options,
    stages = function() return stages end,
  }
end

local function stage(name, result, needs)
  return pipeline.stage { name = name, needs = needs, run = function() return result end }
end

describe("a pipeline definition", function()
  it("is refused without a description or stages", function()
    assert.has_error(function() pipeline.pipeline { stages = function() end } end, "pipeline: description must be a string")
    assert.has_error(function() pipeline.pipeline { description = "x" } end)
  end)

  it("keeps the path of its HTML report, and refuses one that is not a path", function()
    local d = pipeline.pipeline { description = "x", stages = function() end, html = "backend/test-results/report.html" }
    assert.equal("backend/test-results/report.html", d.html)
    assert.has_error(function() pipeline.pipeline { description = "x", stages = function() end, html = true } end,
      "pipeline: html must be the path of the run's HTML report (a string)")
    assert.has_error(function() pipeline.pipeline { description = "x", stages = function() end, html = "" } end,
      "pipeline: html must be the path of the run's HTML report (a string)")
  end)

  it("is refused with an option key it does not know", function()
    assert.has_error(function()
      pipeline.pipeline { description = "x", stages = function() end, options = { { "--a", "help", argh = "N" } } }
    end, "pipeline: option --a has an unknown key 'argh'")
  end)

  it("parses declared flags and options, with conversions and defaults", function()
    local d = def({}, {
      { "--quick", "fast" },
      { "--parallel -p", "workers", arg = "N", convert = tonumber },
      { "--format", "fmt", arg = "F", choices = { "html", "json" }, default = "html" },
    })
    local opts = pipeline.parse(d, "t", { "--quick", "-p", "4" })
    assert.same({ quick = true, parallel = 4, format = "html" }, opts)
  end)

  it("reads well-formed arguments without argparse exactly as argparse does, and leaves the rest to it", function()
    local d = def({}, {
      { "--quick", "fast" },
      { "--output-dir", "dir", arg = "DIR" },
      { "--parallel -p", "workers", arg = "N", convert = function(v)
        local n = math.tointeger(tonumber(v))
        if n and n > 0 then return n end
        return nil, "bad"
      end },
      { "--format", "fmt", arg = "F", count = "*" },
      { "--kind", "kind", arg = "K", choices = { "a", "b" } },
    })
    local function argparse_says(args)
      local ok, opts = pipeline.parser(d, "t"):pparse(args)
      assert.is_true(ok, tostring(opts))
      opts.help = nil
      return opts
    end
    for _, args in ipairs({
      {}, { "--quick" }, { "-p", "3" }, { "--parallel", "3", "--quick" }, { "--output-dir", "x/y" },
      { "--format", "html", "--format", "md" }, { "--kind", "b" },
      { "--quick", "--output-dir", "o", "-p", "2", "--format", "json", "--kind", "a" },
    }) do
      local quick = pipeline._quick_parse(d, args)
      assert.is_table(quick, table.concat(args, " "))
      assert.same(argparse_says(args), quick, table.concat(args, " "))
    end
    -- what only argparse reads, or refuses with its own message
    for _, args in ipairs({
      { "--help" }, { "-h" }, { "--nope" }, { "--quick", "--quick" }, { "-p", "0" }, { "-p" }, { "-p", "-1" },
      { "--parallel=2" }, { "-p2" }, { "--kind", "c" }, { "--output-dir", "a", "--output-dir", "b" }, { "extra" },
    }) do
      assert.is_nil(pipeline._quick_parse(d, args), table.concat(args, " "))
    end
    -- a declared default: argparse always
    assert.is_nil(pipeline._quick_parse(def({}, { { "--f", "f", arg = "F", default = "x" } }), {}))
  end)

  it("raises a usage error naming the pipeline for an unknown option", function()
    local ok, e = pcall(pipeline.parse, def({}), "t", { "--nope" })
    assert.is_false(ok)
    assert.is_true(errors.is_usage(e))
    assert.equal("t: unknown option '--nope' (try 'novapipe run t --help')", e.message)
  end)

  it("prints help and returns nil for --help", function()
    local out = {}
    assert.is_nil(pipeline.parse(def({}, { { "--quick", "fast run" } }), "t", { "--help" }, function(s) out[#out + 1] = s end))
    assert.matches("%-%-quick%s+fast run", table.concat(out))
  end)
end)

describe("running stages", function()
  it("skips a stage whose dependency failed and exits 1", function()
    local bus, seen = recorder()
    local out = pipeline.run(def({ stage("a", false), stage("b", true, { "a" }), stage("c", true) }), {}, { bus = bus })
    assert.same({ "a=failed", "b=skipped", "c=passed" }, seen)
    assert.equal(1, out.exit)
    assert.matches("skipped: a failed", out.results[2].result.reason)
  end)

  it("skips transitively and lets empty stages count as passed", function()
    local bus, seen = recorder()
    local out = pipeline.run(def({
      stage("a", { status = "empty" }), stage("b", true, { "a" }),
      stage("x", false), stage("y", true, { "x" }), stage("z", true, { "y" }),
    }), {}, { bus = bus })
    assert.same({ "a=empty", "b=passed", "x=failed", "y=skipped", "z=skipped" }, seen)
    assert.equal(1, out.exit)
    -- the reason names the root cause, not the stage skipped before
    assert.equal("skipped: x failed", out.results[5].result.reason)
  end)

  it("exits 2 when a stage reports a configuration error, 0 when all passed", function()
    assert.equal(2, pipeline.run(def({ stage("a", false), stage("b", { status = "error" }) }), {}, {}).exit)
    assert.equal(0, pipeline.run(def({ stage("a", true), stage("b", { status = "passed" }) }), {}, {}).exit)
  end)

  it("refuses a stage that returns nothing or an unknown status", function()
    assert.has_error(function() pipeline.run(def({ stage("a", nil) }), {}, {}) end)
    assert.has_error(function() pipeline.run(def({ stage("a", { status = "ok" }) }), {}, {}) end)
  end)

  it("refuses duplicate names and dependencies that do not exist", function()
    assert.has_error(function() pipeline.run(def({ stage("a", true), stage("a", true) }), {}, {}) end,
      "two stages are named 'a'")
    assert.has_error(function() pipeline.run(def({ stage("a", true, { "ghost" }) }), {}, {}) end,
      "stage 'a' needs 'ghost', which is not in this pipeline")
  end)

  it("lets a stage left out by choice (skipped, neutral) not stop those that need it", function()
    local bus, seen = recorder()
    pipeline.run(def({ stage("a", { status = "skipped", neutral = true }), stage("b", true, { "a" }),
                       stage("c", { status = "skipped" }), stage("d", true, { "c" }) }), {}, { bus = bus })
    assert.same({ "a=skipped", "b=passed", "c=skipped", "d=skipped" }, seen)
  end)

  it("accepts a stage object as a dependency", function()
    local a = stage("a", false)
    local out = pipeline.run(def({ a, stage("b", true, { a }) }), {}, {})
    assert.equal("skipped", out.results[2].result.status)
  end)
  it("takes whole numbers for counts only as decimal digits, not 1e3, 0x10, +2, 1.0 or 2 with spaces", function()
    local convert = require("novapipe").convert
    assert.equal(3, convert.non_negative_integer("3"))
    assert.equal(0, convert.non_negative_integer("0"))
    assert.equal(2, convert.workers("2"))
    assert.equal("auto", convert.workers("auto"))
    for _, bad in ipairs({ "1e3", "0x10", "+2", "1.0", " 2", "-1", "", "99999999999999999999" }) do
      local n, err = convert.non_negative_integer(bad)
      assert.is_nil(n, bad)
      assert.equal(("'%s' is not a whole number of at least 0"):format(bad), err)
      assert.is_nil((convert.positive_integer(bad)), bad)
      assert.is_nil((convert.workers(bad)), bad)
    end
    assert.is_nil((convert.positive_integer("0")))
  end)
end)
