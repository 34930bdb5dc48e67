-- Where the advisory database is found, how old it may be, and when a run
-- may go without one: novapipe.security.advisories with an environment
-- the spec gives, and the unchecked status through the pipeline runner.
local advisories = require "novapipe.security.advisories"
local config = require "novapipe.config"
local events = require "novapipe.events"
local fs = require "novapipe.fs"
local lfs = require "lfs"
local pipeline = require "novapipe.pipeline"
local H = require "spec.support.h"

local function env(t) return function(name) return t[name] end end

local function cfg(security)
  local c = config.defaults()
  for k, v in pairs(security or {}) do c.security[k] = v end
  return c
end

describe("the advisory database's place", function()
  it("is security.advisories_cache, else the XDG cache directory, else ~/.cache", function()
    assert.equal("/srv/osv", advisories.cache_dir(cfg({ advisories_cache = "/srv/osv/" }), env({ HOME = "/h" })))
    assert.equal("/x/novapipe/osv/PyPI", advisories.cache_dir(cfg(), env({ XDG_CACHE_HOME = "/x/", HOME = "/h" })))
    -- a relative XDG_CACHE_HOME is invalid by the specification: ignored
    assert.equal("/h/.cache/novapipe/osv/PyPI", advisories.cache_dir(cfg(), env({ XDG_CACHE_HOME = "rel", HOME = "/h" })))
    assert.equal("/h/.cache/novapipe/osv/PyPI", advisories.cache_dir(cfg(), env({ XDG_CACHE_HOME = "", HOME = "/h" })))
    assert.is_nil(advisories.cache_dir(cfg(), env({})))
  end)

  it("falls back to osv-scanner's offline database: its variables first, the newer layout before the older", function()
    assert.same({
      "/o/osv-scalibr/PyPI/all.zip", "/o/osv-scanner/PyPI/all.zip",
      "/s/osv-scalibr/PyPI/all.zip", "/s/osv-scanner/PyPI/all.zip",
      "/h/.cache/osv-scalibr/PyPI/all.zip", "/h/.cache/osv-scanner/PyPI/all.zip",
    }, advisories.osv_scanner_paths(env({ OSV_SCANNER_LOCAL_DB_CACHE_DIRECTORY = "/o/",
      OSV_SCALIBR_LOCAL_DB_CACHE_DIRECTORY = "/s", HOME = "/h", TMPDIR = "/tmp" })))
    -- the same directory twice is looked at once; the temporary directory never
    assert.same({ "/c/osv-scalibr/PyPI/all.zip", "/c/osv-scanner/PyPI/all.zip" },
      advisories.osv_scanner_paths(env({ OSV_SCANNER_LOCAL_DB_CACHE_DIRECTORY = "/c", XDG_CACHE_HOME = "/c" })))
    assert.same({}, advisories.osv_scanner_paths(env({ TMPDIR = "/tmp" })))
  end)
end)

describe("whether a run requires advisories", function()
  it("follows security.require_advisories, else whether CI is set to something true", function()
    for value, want in pairs({ ["true"] = true, ["1"] = true, yes = true, ["false"] = false, FALSE = false,
                               ["0"] = false, [""] = false }) do
      assert.equal(want, advisories.ci(env({ CI = value })), "CI=" .. value)
      assert.equal(want, (advisories.required(cfg(), env({ CI = value }))), "CI=" .. value)
    end
    assert.is_false(advisories.ci(env({})))
    assert.same({ true, "CI is set" }, { advisories.required(cfg(), env({ CI = "true" })) })
    assert.same({ true, "security.require_advisories" }, { advisories.required(cfg({ require_advisories = true }), env({})) })
    assert.is_false((advisories.required(cfg({ require_advisories = false }), env({ CI = "true" }))))
  end)

  it("is configured with checked settings: a wrong type or a misspelling is one line", function()
    local dir = H.tmpdir()
    local function load(text)
      H.write(dir .. "/novapipe.lua", text)
      local ok, err = pcall(config.load, dir .. "/novapipe.lua")
      return ok, tostring(err)
    end
    local ok, err = load("return { security = { advisories_max_age_days = 0 } }")
    assert.is_false(ok)
    assert.matches("security.advisories_max_age_days must be a number of days above 0", err)
    ok, err = load("return { security = { require_advisories = 'yes' } }")
    assert.is_false(ok)
    assert.matches("'require_advisories' in security must be a boolean, not a string", err)
    ok, err = load("return { security = { advisories_cach = '/x' } }")
    assert.is_false(ok)
    assert.matches("did you mean 'security.advisories_cache'", err)
    ok = load("return { security = { advisories_cache = '/srv/osv', advisories_max_age_days = 1.5, require_advisories = true } }")
    assert.is_true(ok)
    H.rmrf(dir)
  end)
end)

describe("finding the advisory database", function()
  local keep = H.temporaries(after_each)
  local NOW = 1800000000

  local function cache_with(dir, record)
    assert(fs.mkdir_p(dir, "0700"))
    H.write(dir .. "/all.zip", "PK-not-really")
    if record then
      local rec = { schema = advisories.SCHEMA, fetched_at = NOW - 3600, records = 12, bytes = #"PK-not-really",
                    sha256 = "ab", source = "https://mirror.example/all.zip" }
      for k, v in pairs(record) do rec[k] = v end
      H.write(dir .. "/metadata.json", require("cjson").encode(rec))
    end
  end

  it("prefers what is given, then novapipe's cache, then osv-scanner's", function()
    local home = keep(H.tmpdir())
    local e = env({ HOME = home })
    assert.is_nil((advisories.locate(cfg(), { getenv = e })))
    local scanner = home .. "/.cache/osv-scanner/PyPI"
    assert(fs.mkdir_p(scanner, "0700"))
    H.write(scanner .. "/all.zip", "old layout")
    local db = advisories.locate(cfg(), { getenv = e })
    assert.equal("osv-scanner", db.origin)
    assert.equal(scanner .. "/all.zip", db.path)
    assert.is_number(db.fetched_at)
    local scalibr = home .. "/.cache/osv-scalibr/PyPI"
    assert(fs.mkdir_p(scalibr, "0700"))
    H.write(scalibr .. "/all.zip", "new layout")
    assert.equal(scalibr .. "/all.zip", advisories.locate(cfg(), { getenv = e }).path)
    cache_with(home .. "/.cache/novapipe/osv/PyPI", {})
    db = advisories.locate(cfg(), { getenv = e })
    assert.same({ "cache", NOW - 3600, "https://mirror.example/all.zip", 12 }, { db.origin, db.fetched_at, db.source, db.records })
    assert.is_nil(db.problem)
    db = advisories.locate(cfg(), { getenv = e, given = scanner .. "/all.zip" })
    assert.equal("given", db.origin)
    assert.equal(scanner .. "/all.zip", db.path)
  end)

  it("finds no usable cache without its record, with another file than its record's, or behind a link", function()
    local home = keep(H.tmpdir())
    local e = env({ HOME = home })
    local dir = home .. "/.cache/novapipe/osv/PyPI"
    cache_with(dir, nil)
    assert.matches("has no usable record", advisories.locate(cfg(), { getenv = e }).problem)
    cache_with(dir, { schema = "something/else" })
    assert.matches("not a record novapipe wrote", advisories.locate(cfg(), { getenv = e }).problem)
    cache_with(dir, { bytes = 99999 })
    assert.matches("is not the file its record describes", advisories.locate(cfg(), { getenv = e }).problem)
    local real = keep(H.tmpdir())
    cache_with(real, {})
    H.rmrf(dir)
    assert(lfs.link(real, dir, true))
    local db = advisories.locate(cfg(), { getenv = e })
    assert.matches("refusing the symbolic link " .. dir:gsub("%p", "%%%0"), db.problem)
    assert.equal(db.problem, advisories.unusable(db, 7, NOW))
  end)

  it("is unusable once older than the limit, in days, and says how old", function()
    local file = keep(H.tmpdir()) .. "/all.zip"
    H.write(file, "zip")
    local db = { path = file, origin = "cache", fetched_at = NOW - 7 * 86400 }
    assert.is_nil(advisories.unusable(db, 7, NOW))
    db.fetched_at = NOW - 7 * 86400 - 1
    assert.equal("the advisory database " .. file .. " is 7 days old, older than the 7-day limit "
      .. "(security.advisories_max_age_days): run 'novapipe advisories update'", advisories.unusable(db, 7, NOW))
    assert.is_nil(advisories.unusable(db, 30, NOW))
    assert.matches("0%.5%-day limit", advisories.unusable({ path = file, origin = "given", fetched_at = NOW - 86400 }, 0.5, NOW))
    assert.is_nil(advisories.unusable({ path = file, origin = "cache", fetched_at = NOW + 60 }, 7, NOW), "a clock behind")
    assert.matches("its age cannot be told", advisories.unusable({ path = file, origin = "given" }, 7, NOW))
    assert.equal("/nowhere/all.zip: no such directory or zip of advisories",
      advisories.unusable({ path = "/nowhere/all.zip", origin = "given", fetched_at = NOW }, 7, NOW))
    assert.equal("5 minutes", advisories.age_words(300))
    assert.equal("1 hour", advisories.age_words(3600))
    assert.equal("47 hours", advisories.age_words(47 * 3600))
    assert.equal("2 days", advisories.age_words(2 * 86400))
    assert.equal("/c/all.zip (novapipe's cache, from https://m/all.zip, fetched 3 hours ago)",
      advisories.describe({ path = "/c/all.zip", origin = "cache", source = "https://m/all.zip",
                            fetched_at = NOW - 3 * 3600 }, NOW))
  end)
end)

describe("an unchecked stage", function()
  local function run(result, more)
    local stages = { pipeline.stage { name = "dependencies", run = function() return result end } }
    for _, s in ipairs(more or {}) do stages[#stages + 1] = s end
    local seen = {}
    local bus = events.new()
    bus:subscribe({ stage_end = function(_, st, r) seen[st.name] = r end })
    local def = pipeline.pipeline { description = "t", stages = function() return stages end }
    return pipeline.run(def, {}, { bus = bus }), seen
  end

  it("leaves the exit code alone unless its check is required: then it is a configuration error", function()
    assert.equal(0, run({ status = "unchecked", reason = "no database" }).exit)
    assert.equal(2, run({ status = "unchecked", required = true, reason = "no database" }).exit)
  end)

  it("is not a pass: a stage that needs it is skipped, naming it", function()
    local _, seen = run({ status = "unchecked" }, {
      pipeline.stage { name = "after", needs = { "dependencies" }, run = function() return true end } })
    assert.equal("skipped", seen.after.status)
    assert.equal("skipped: dependencies was not checked", seen.after.reason)
  end)
end)
