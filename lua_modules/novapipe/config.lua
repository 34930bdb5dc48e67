-- Project configuration: novapipe's defaults (those of the reference
-- scripts), changed by an optional novapipe.lua at the project root.
--
-- novapipe.lua returns a table of settings, or a function that receives the
-- configuration and changes it in place:
--
--   return {
--     python = "/usr/bin/python3",
--     tiers = {
--       integration = { services = { "postgresql" }, timeout = 900 },
--       contract = { dir = "contract", needs = { "venv" }, after = "venv" },
--     },
--   }
local errors = require "novapipe._errors"

local M = {}

M.FILE = "novapipe.lua"

---@class novapipe.Tier
---@field name string
---@field dir string directory under `tests`
---@field needs? string[] tiers that must pass first when all tiers run
---@field env? table<string, string> environment for the tier's pytest
---@field services? string[] services started for the tier ("postgresql")
---@field timeout? number seconds; the tier's whole process tree is ended then
---@field reruns? integer a failed test runs again up to this many times (--reruns wins)
---@field marker? string the pytest marker that puts a file in it for analyze and migrate (its name by default)

---@class novapipe.Config
---@field tests string the directory holding the tier directories
---@field python? string a Python (path or name) to try first
---@field results string where JUnit XML goes with --junit
---@field coverage {source: string[], html: string, data: string, omit_tests: boolean}
---@field database_url string DATABASE_URL for tiers without a database service
---@field tiers novapipe.Tier[]
---@field analyze novapipe.AnalyzeConfig
---@field audit {enabled: boolean, log: string} the audit log every pipeline run appends to
---@field security table the security pipeline's settings (README, "security")
---@field phi {enabled: boolean, mrn: string[], synthetic_domains: string[], synthetic_tlds: string[]}
---@field quarantine novapipe.QuarantineEntry[] tests whose failures do not fail their tier until an expiry date
---@field changed {ignore: string[]} --changed: `ignore`, patterns of changed files that are not Python, that no test names, and that select no test (default novapipe.select.changed.DEFAULT_IGNORE; a pattern with "/" matches the path from the project root, one without the base name)

---@class novapipe.AnalyzeConfig
---@field roots string[] package roots: with "backend", backend.app.x is also app.x for indicators
---@field standalone_exceptions string[] packages a standalone test may import
---@field indicators table<string, string[]> per tier, the import prefixes that put a file there (venv, integration, security keywords, and any custom tier's)
---@field fixture_hints table<string, string[]> per tier, fixture names that suggest it when no definition is found
---@field connects string[] calls that open a connection to a service: a test that reaches one is integration
---@field in_memory string[] Lua patterns of connection strings that open no service (sqlite://, :memory:)
---@field markers table<string, string[]> per tier, markers besides the tier's own that put a file there (django_db)
---@field security_names {words: string[], fixtures: string[]} keywords, as whole words of a test's path, file and function names, and of its fixtures' names, that make it a security test

-- The reference's indicator lists (analyze_tests.py), and what reaches a
-- service.
local function analyze_defaults()
  return {
    roots = { "backend" },
    standalone_exceptions = { "pytest", "unittest", "typing_extensions" },
    indicators = {
      -- importing a driver or a test client needs the package, not a
      -- service: a test is integration when it calls a connect function
      -- (connects below); the reference made these imports integration
      venv = { "fastapi", "sqlalchemy", "pydantic", "numpy", "pandas", "passlib", "cryptography", "httpx",
               "starlette", "jose", "jwt", "bcrypt", "redis", "celery", "alembic", "boto3", "requests",
               "psycopg2", "psycopg", "asyncpg", "aiobotocore", "aiohttp", "motor", "pymongo",
               "app.domain", "app.core", "app.application" },
      integration = { "docker", "kubernetes", "testcontainers",
                      "app.infrastructure.persistence", "app.infrastructure.external" },
      security = { "security", "hipaa", "phi", "authentication", "authorization", "encryption",
                   "app.infrastructure.security" },
    },
    fixture_hints = {
      -- pytest-django's fixtures (a plugin's: no definition to follow)
      integration = { "db_session", "database", "db", "transactional_db", "django_db_setup", "django_db_blocker",
                      "live_server", "django_db_reset_sequences", "postgresql", "postgresql_proc", "redis_proc" },
      venv = {},
    },
    connects = {
      "sqlalchemy.create_engine", "sqlalchemy.engine.create_engine", "sqlalchemy.ext.asyncio.create_async_engine",
      "sqlmodel.create_engine", "sqlalchemy_utils.create_database", "sqlalchemy_utils.database_exists",
      "sqlalchemy_utils.drop_database", "sqlalchemy_utils.functions.create_database",
      "sqlalchemy_utils.functions.database_exists", "sqlalchemy_utils.functions.drop_database",
      "psycopg2.connect", "psycopg2.pool", "psycopg.connect", "psycopg.Connection.connect",
      "psycopg.AsyncConnection.connect", "psycopg_pool", "asyncpg.connect", "asyncpg.create_pool",
      "aiopg.connect", "aiopg.create_pool", "pymysql.connect", "MySQLdb.connect", "mysql.connector.connect",
      "aiomysql.connect", "aiomysql.create_pool", "databases.Database", "tortoise.Tortoise.init",
      "tortoise.contrib.fastapi.register_tortoise", "tortoise.contrib.starlette.register_tortoise",
      "peewee.PostgresqlDatabase", "peewee.MySQLDatabase",
      "redis.Redis", "redis.StrictRedis", "redis.from_url", "redis.asyncio.Redis", "redis.asyncio.StrictRedis",
      "redis.asyncio.from_url", "aioredis.from_url", "aioredis.create_redis_pool", "aioredis.Redis",
      "pymongo.MongoClient", "motor.motor_asyncio.AsyncIOMotorClient", "mongoengine.connect",
      "boto3.client", "boto3.resource", "aioboto3", "elasticsearch.Elasticsearch", "elasticsearch.AsyncElasticsearch",
      "pika.BlockingConnection", "aio_pika.connect", "aio_pika.connect_robust", "kombu.Connection",
      "kafka.KafkaProducer", "kafka.KafkaConsumer", "aiokafka.AIOKafkaProducer", "aiokafka.AIOKafkaConsumer",
      "docker.from_env", "docker.DockerClient",
      -- Django's database test cases
      "django.test.TestCase", "django.test.TransactionTestCase", "django.test.LiveServerTestCase",
      "django.contrib.staticfiles.testing.StaticLiveServerTestCase", "rest_framework.test.APITestCase",
      "rest_framework.test.APITransactionTestCase", "rest_framework.test.APILiveServerTestCase",
    },
    in_memory = { "^sqlite[%w+]*://$", ":memory:", "mode=memory" },
    markers = { integration = { "django_db" } },
    security_names = {
      words = { "login", "logout", "signin", "signout", "password", "passwords", "csrf", "xss", "permission",
                "permissions", "auth", "authn", "authz", "authentication", "authorization", "authorize",
                "unauthorized", "unauthenticated", "oauth", "oauth2", "jwt", "security", "hipaa", "phi",
                "encryption", "encrypt", "decrypt", "rbac", "acl", "mfa", "totp", "2fa", "privilege",
                "privileges", "access_token", "refresh_token", "reset_password", "password_reset", "token", "tokens",
                "api_key", "apikey", "admin", "credentials", "forbidden", "session_cookie" },
      fixtures = { "auth", "token", "authenticated", "login", "logged_in", "superuser" },
    },
  }
end

-- The security pipeline's settings (see pipelines/security.lua).
local function security_defaults()
  return {
    reports = "backend/security-reports",
    formats = { "html", "json", "md" },
    coverage_paths = { "backend/app/infrastructure/security", "backend/app/domain/security" },
    phi_audit = { paths = nil, extensions = { "py", "json", "csv", "yaml", "yml", "sql", "txt" } },
    waivers = {},
    advisories = nil,
    -- novapipe's advisory database (novapipe.security.advisories): its
    -- directory (nil: $XDG_CACHE_HOME/novapipe/osv/PyPI), the age past
    -- which a scan is unchecked, and whether a run fails without one (nil:
    -- when the environment variable CI is set)
    advisories_cache = nil,
    advisories_max_age_days = 7,
    require_advisories = nil,
    ignore = {},
    dependency_files = nil,
    thresholds = { phi = 0, vulnerabilities = 0 },
    -- the 164.312 safeguards that must each have a passing test
    required_safeguards = { "164.312(a)", "164.312(b)", "164.312(c)", "164.312(d)", "164.312(e)" },
    -- the known findings (novapipe.security.baseline), from the project root
    baseline = "security-baseline.json",
  }
end

---The changed files `--changed` lets select no test when they are not
---Python and no test names them (changed.ignore's default): documentation,
---images, licences, and editor and CI files that no test reads.
M.CHANGED_IGNORE = { "*.md", "*.rst", "docs/**", "*.png", "*.jpg", "*.jpeg", "*.gif", "*.svg", "*.ico", "LICENSE",
                     "LICENSE.*", "COPYING", "AUTHORS", "CHANGELOG*", ".gitignore", ".gitattributes",
                     ".editorconfig", ".github/**", ".gitlab-ci.yml" }

---@return novapipe.Config
function M.defaults()
  return {
    phi = require("novapipe.phi").defaults(),
    audit = { enabled = true, log = ".novapipe/audit.log" },
    security = security_defaults(),
    analyze = analyze_defaults(),
    tests = "backend/app/tests",
    python = nil,
    results = "backend/test-results",
    coverage = { source = { "backend/app" }, html = "backend/coverage_html", data = "backend", omit_tests = true },
    -- the throwaway server's data on a memory file system unless on_disk
    postgresql = { on_disk = false },
    quarantine = {},
    changed = { ignore = { table.unpack(M.CHANGED_IGNORE) } },
    database_url = "postgresql://postgres:postgres@localhost:5432/novamind_test",
    tiers = {
      { name = "standalone", dir = "standalone" },
      { name = "venv", dir = "venv", needs = { "standalone" } },
      { name = "integration", dir = "integration", needs = { "venv" }, env = { TESTING = "True" } },
    },
  }
end

---Whether a tier is one of the reference's three in its own directory
---(standalone, venv, integration): the only tier directories novapipe
---creates when they are missing. Any other tier's directory must exist.
---@param tier novapipe.Tier
---@return boolean
function M.is_default_tier(tier)
  return (tier.name == "standalone" or tier.name == "venv" or tier.name == "integration") and tier.dir == tier.name
end

-- Whether novapipe.services.<name> exists: the registry is the modules.
local function service_exists(name)
  return type(name) == "string" and name:match("^%w[%w_]*$") ~= nil
    and package.searchpath("novapipe.services." .. name, package.path) ~= nil
end

-- The services the registry holds, for messages.
local function service_names()
  local names, seen = {}, {}
  for dir in package.path:gmatch("[^;]+") do
    local d = dir:match("^(.*)/%?%.lua$")
    if d then
      local ok, iter, state = pcall(require("lfs").dir, d .. "/novapipe/services")
      if ok then
        for f in iter, state do
          local n = f:match("^(%w[%w_]*)%.lua$")
          if n and not seen[n] then seen[n] = true; names[#names + 1] = n end
        end
      end
    end
  end
  table.sort(names)
  return table.concat(names, ", ")
end

local settings = {
  tests = "string", python = "string", results = "string", database_url = "string",
  coverage = "table", tiers = "table", analyze = "table", phi = "table", audit = "table", security = "table",
  postgresql = "table", quarantine = "table", changed = "table",
}
local audit_fields = { enabled = "boolean", log = "string" }
local security_fields = {
  reports = "string", formats = "table", coverage_paths = "table", phi_audit = "table", waivers = "table",
  advisories = "string", ignore = "table", dependency_files = "table", thresholds = "table",
  required_safeguards = "table", baseline = "string",
  advisories_cache = "string", advisories_max_age_days = "number", require_advisories = "boolean",
}
local FORMATS = { html = true, json = true, md = true, sarif = true }
local phi_fields = { enabled = "boolean", mrn = "table", synthetic_domains = "table", synthetic_tlds = "table", allow = "table" }
local analyze_fields = {
  roots = "table", standalone_exceptions = "table", indicators = "table", fixture_hints = "table", connects = "table",
  in_memory = "table", markers = "table", security_names = "table",
}
local tier_fields = {
  dir = "string", needs = "table", env = "table", services = "table", timeout = "number", after = "string",
  reruns = "number", marker = "string",
}
local coverage_fields = { source = "table", html = "string", data = "string", omit_tests = "boolean" }

local function fail(fmt, ...)
  errors.usage(M.FILE .. ": " .. fmt, ...)
end

-- A list of names: strings, none empty, at 1..n with no hole (ipairs
-- would stop at one, and drop what follows it).
local function check_names(what, list)
  local n = 0
  for k, x in pairs(list) do
    if math.type(k) ~= "integer" then fail("%s: '%s' is not a list entry (to extend the list: { add = {...} })", what, tostring(k)) end
    if type(x) ~= "string" then fail("%s must be a list of strings, not a %s in it", what, type(x)) end
    if x == "" then fail("%s: an empty name in it", what) end
    n = n + 1
  end
  for k in pairs(list) do
    if k < 1 or k > n then fail("%s: entry %d comes after a hole (a nil in the list)", what, k) end
  end
end

-- A list setting: a list replaces the default; { add = {...}, remove =
-- {...} } changes it (what is added comes after the default's entries).
local function extend_list(what, current, given)
  if type(given) ~= "table" then fail("%s must be a list of names, or { add = {...}, remove = {...} }", what) end
  if given.add == nil and given.remove == nil then
    check_names(what, given)
    return given
  end
  for k, v in pairs(given) do
    if k ~= "add" and k ~= "remove" then fail("%s: '%s' is neither add nor remove", what, tostring(k)) end
    if type(v) ~= "table" then fail("%s.%s must be a list of strings, not a %s", what, k, type(v)) end
    check_names(what .. "." .. k, v)
  end
  local drop = {}
  for _, x in ipairs(given.remove or {}) do drop[x] = true end
  local out, seen = {}, {}
  for _, x in ipairs(current or {}) do
    if not drop[x] and not seen[x] then out[#out + 1], seen[x] = x, true end
  end
  for _, x in ipairs(given.add or {}) do
    if not seen[x] then out[#out + 1], seen[x] = x, true end
  end
  return out
end

-- (keys of any types: a list entry among named settings is reported as
-- an unknown setting, not a failed comparison)
local sorted_keys = require("novapipe._tables").sorted_keys

-- Checks the settings of one section: `where` is its dotted name ("phi",
-- "tiers.venv"; "" for the top level). A setting novapipe does not know is
-- one line with the nearest known one, or the known ones when none is near.
local function check_fields(where, t, fields)
  local prefix = where == "" and "" or (where .. ".")
  for _, k in ipairs(sorted_keys(t)) do
    local want = fields[k]
    if not want then
      local known = sorted_keys(fields)
      local near = type(k) == "string" and require("novapipe._nearest").nearest(k, known)
      if near then
        errors.usage("unknown setting '%s%s' in %s; did you mean '%s%s'?", prefix, tostring(k), M.FILE, prefix, near)
      end
      errors.usage("unknown setting '%s%s' in %s (known%s: %s)", prefix, tostring(k), M.FILE,
        where == "" and "" or (" in " .. where), table.concat(known, ", "))
    end
    if type(t[k]) ~= want then
      fail("'%s' in %s must be a %s, not a %s", k, where == "" and "the settings" or where, want, type(t[k]))
    end
  end
end

local function find_tier(cfg, name)
  for i, t in ipairs(cfg.tiers) do
    if t.name == name then return t, i end
  end
end

local function validate_security(sec)
  local waivers = require "novapipe.security.waivers"
  waivers.validate("security.waivers", sec.waivers, { file = "string", line = "number", kind = "string" })
  waivers.validate("security.ignore", sec.ignore, { id = "string", package = "string" })
  for i, w in ipairs(sec.ignore) do
    if not w.id then fail("security.ignore[%d] needs the advisory's id (id = \"GHSA-...\" or \"PYSEC-...\")", i) end
  end
  for i, w in ipairs(sec.waivers) do
    if not w.file then fail("security.waivers[%d] needs the file it waives a finding in (file = \"...\")", i) end
  end
  for _, f in ipairs(sec.formats) do
    if not FORMATS[f] then fail("security.formats: unknown format '%s' (known: html, json, md, sarif)", tostring(f)) end
  end
  if not sec.baseline:find("%S") or sec.baseline:find("/$") then
    fail("security.baseline must name a file (the project's known findings; default security-baseline.json)")
  end
  for name, n in pairs(sec.thresholds) do
    if n < 0 then fail("security.thresholds.%s must be 0 or more", name) end
  end
  local hipaa = require "novapipe.security.hipaa"
  for i, id in ipairs(sec.required_safeguards) do
    local safeguard = type(id) == "string" and hipaa.safeguard(id)
    if not safeguard then
      fail("security.required_safeguards[%d]: '%s' names no 164.312 safeguard (164.312(a) to 164.312(e))", i, tostring(id))
    end
    sec.required_safeguards[i] = safeguard
  end
  local age = sec.advisories_max_age_days
  if type(age) ~= "number" or age <= 0 or age ~= age then
    fail("security.advisories_max_age_days must be a number of days above 0 (how old the advisory database may be)")
  end
  if sec.advisories_cache ~= nil and (type(sec.advisories_cache) ~= "string" or sec.advisories_cache == "") then
    fail("security.advisories_cache must be the path of a directory")
  end
  if sec.require_advisories ~= nil and type(sec.require_advisories) ~= "boolean" then
    fail("security.require_advisories must be true or false")
  end
end

-- Each PHI pattern must be a valid Lua pattern: a broken one would stop
-- every line from being masked.
local function validate_phi(p)
  local function check(where, list)
    if type(list) ~= "table" then fail("%s must be a list of Lua patterns", where) end
    for i, pat in ipairs(list) do
      if type(pat) ~= "string" then fail("%s[%d] must be a string (a Lua pattern)", where, i) end
      local ok, err = pcall(string.find, "", pat)
      if not ok then fail("%s[%d] = %q is not a valid Lua pattern: %s", where, i, pat, (tostring(err):gsub("^.-: ", ""))) end
    end
  end
  check("phi.mrn", p.mrn or {})
  for kind, list in pairs(p.allow or {}) do check("phi.allow." .. tostring(kind), list) end
end

---Checks a configuration, raising a usage error that names the setting.
---@param cfg novapipe.Config
-- The analyze settings that name tiers name configured ones (the
-- reference's three always count, as analyze knows them), and
-- security_names has its two lists: a misspelling is one line, with the
-- nearest name, not a list analyze never reads.
local function validate_analyze(a, tiers)
  local known = { standalone = "table", venv = "table", integration = "table" }
  for name in pairs(tiers) do known[name] = "table" end
  if type(a) ~= "table" then return end
  for _, key in ipairs({ "markers", "fixture_hints", "indicators" }) do
    if type(a[key]) == "table" then
      local fields = {}
      for k, v in pairs(known) do fields[k] = v end
      if key == "indicators" then fields.security = "table" end
      check_fields("analyze." .. key, a[key], fields)
    end
  end
  if type(a.security_names) == "table" then
    check_fields("analyze.security_names", a.security_names, { words = "table", fixtures = "table" })
  end
end

function M.validate(cfg)
  validate_security(cfg.security)
  validate_phi(cfg.phi)
  require("novapipe.pytest.quarantine").validate(cfg.quarantine or {})
  local seen = {}
  for i, t in ipairs(cfg.tiers) do
    if type(t) ~= "table" or type(t.name) ~= "string" then fail("tier %d has no name", i) end
    if seen[t.name] then fail("two tiers are named '%s'", t.name) end
    local fields = {}
    for k, v in pairs(t) do if k ~= "name" then fields[k] = v end end
    check_fields("tiers." .. t.name, fields, tier_fields)
    if type(t.dir) ~= "string" or t.dir == "" then fail("tier '%s' needs a dir (a directory under tests)", t.name) end
    if t.dir:find("^/") or ("/" .. t.dir .. "/"):find("/%.%./") then
      fail("tier '%s': dir '%s' leaves the tests directory (give a path inside %s)", t.name, t.dir, cfg.tests)
    end
    for name, value in pairs(t.env or {}) do
      if type(name) ~= "string" or type(value) ~= "string" then
        fail("tier '%s': env.%s must be a string, not a %s (env = { NAME = \"value\" })", t.name, tostring(name), type(value))
      end
    end
    for _, s in ipairs(t.services or {}) do
      if not service_exists(s) then
        fail("tier '%s' asks for service '%s'; novapipe provides: %s", t.name, tostring(s), service_names())
      end
    end
    for _, n in ipairs(t.needs or {}) do
      if n == t.name then fail("tier '%s' needs itself: a cycle (%s -> %s)", t.name, t.name, t.name) end
      if not seen[n] then
        local later = false
        for j = i + 1, #cfg.tiers do later = later or (type(cfg.tiers[j]) == "table" and cfg.tiers[j].name == n) end
        if later then
          fail("tier '%s' needs '%s', which comes after it (a tier may need only tiers before it, so needs never form a cycle)",
            t.name, tostring(n))
        end
        fail("tier '%s' needs '%s', which is not a tier", t.name, tostring(n))
      end
    end
    seen[t.name] = true
    if t.timeout and t.timeout <= 0 then fail("tier '%s': timeout must be positive", t.name) end
    if t.reruns ~= nil and (math.type(t.reruns) ~= "integer" and t.reruns ~= math.floor(t.reruns) or t.reruns < 0) then
      fail("tier '%s': reruns must be a whole number, 0 or more (how many times a failed test runs again)", t.name)
    end
  end
  validate_analyze(cfg.analyze, seen)
  return cfg
end

-- Checks a section of settings and copies its fields onto target.
local function merge_section(where, target, values, fields)
  check_fields(where, values, fields)
  for k, v in pairs(values) do target[k] = v end
end

-- Applies a table of settings onto cfg.
local function merge(cfg, user)
  check_fields("", user, settings)
  for k, v in pairs(user) do
    if k == "phi" then
      merge_section("phi", cfg.phi, v, phi_fields)
    elseif k == "audit" then
      merge_section("audit", cfg.audit, v, audit_fields)
    elseif k == "security" then
      check_fields("security", v, security_fields)
      for sk, sv in pairs(v) do
        if sk == "phi_audit" then
          merge_section("security.phi_audit", cfg.security.phi_audit, sv, { paths = "table", extensions = "table" })
        elseif sk == "thresholds" then
          merge_section("security.thresholds", cfg.security.thresholds, sv, { phi = "number", vulnerabilities = "number" })
        else
          cfg.security[sk] = sv
        end
      end
    elseif k == "analyze" then
      check_fields("analyze", v, analyze_fields)
      for _, ak in ipairs(sorted_keys(v)) do
        local av = v[ak]
        if ak == "indicators" or ak == "fixture_hints" or ak == "markers" or ak == "security_names" then
          for _, tk in ipairs(sorted_keys(av)) do
            if type(tk) ~= "string" then
              fail("analyze.%s holds a list per %s (analyze.%s = { %s = {...} }), not a list", ak,
                ak == "security_names" and "kind" or "tier", ak, ak == "security_names" and "words" or "integration")
            end
            cfg.analyze[ak][tk] = extend_list(("analyze.%s.%s"):format(ak, tk), cfg.analyze[ak][tk], av[tk])
          end
        else
          cfg.analyze[ak] = extend_list("analyze." .. ak, cfg.analyze[ak], av)
          if ak == "in_memory" then
            -- Lua patterns: a broken one is a mistake here, not an error
            -- in the middle of a run
            for _, pat in ipairs(cfg.analyze.in_memory) do
              local ok, err = pcall(string.find, "", pat)
              if not ok then fail("analyze.in_memory: '%s' is not a Lua pattern (%s)", pat, (tostring(err):gsub("^.-: ", ""))) end
            end
          end
        end
      end
    elseif k == "changed" then
      -- a list replaces the default patterns; { add = ..., remove = ... } changes them
      check_fields("changed", v, { ignore = "table" })
      if v.ignore ~= nil then cfg.changed.ignore = extend_list("changed.ignore", cfg.changed.ignore, v.ignore) end
    elseif k == "coverage" then
      merge_section("coverage", cfg.coverage, v, coverage_fields)
    elseif k == "postgresql" then
      merge_section("postgresql", cfg.postgresql, v, { on_disk = "boolean" })
    elseif k == "tiers" then
      for _, name in ipairs(sorted_keys(v)) do
        local change = v[name]
        if type(name) ~= "string" or type(change) ~= "table" then
          fail("tiers must map names to tables, as tiers = { integration = { timeout = 600 } }")
        end
        check_fields("tiers." .. name, change, tier_fields)
        local tier = find_tier(cfg, name)
        if not tier then
          tier = { name = name, dir = name }
          local _, at = find_tier(cfg, change.after or "")
          if change.after and not at then fail("tier '%s' comes after '%s', which is not a tier", name, change.after) end
          table.insert(cfg.tiers, at and at + 1 or #cfg.tiers + 1, tier)
        end
        for fk, fv in pairs(change) do
          if fk ~= "after" then tier[fk] = fv end
        end
      end
    else
      cfg[k] = v
    end
  end
end

-- An error novapipe.lua raised: an interrupt (Ctrl-C while it ran) goes on
-- as it is; anything else is a configuration error naming the file.
local function raise_from(path, e)
  if errors.is_interrupt(e) or errors.is_usage(e) then error(e, 0) end
  if type(e) ~= "string" then
    local mt = getmetatable(e)
    e = mt and mt.__tostring and tostring(e) or ("%s raised an error (a %s value)"):format(path, type(e))
  end
  errors.usage("%s", e)
end

-- The reference's rule: the integration tier, when no service of novapipe's
-- gives it a database, gets DATABASE_URL from the environment, else the
-- database_url setting.
local function with_database_url(cfg)
  for _, t in ipairs(cfg.tiers) do
    if t.name == "integration" and type(t.services or {}) == "table" then
      local served = false
      for _, s in ipairs(t.services or {}) do served = served or s == "postgresql" end
      local given = os.getenv("DATABASE_URL")
      if not served and not (given and given ~= "") and type(t.env or {}) == "table"
        and not (t.env and t.env.DATABASE_URL) and type(cfg.database_url) == "string" then
        t.env = t.env or {}
        t.env.DATABASE_URL = cfg.database_url
      end
    end
  end
  return cfg
end

---Loads the configuration: the defaults, changed by `path` (default
---novapipe.lua in the current directory) when it exists. A syntax error,
---an error it raises or a setting it gets wrong is one line and exit 2.
---@param path? string
---@return novapipe.Config
function M.load(path)
  path = path or M.FILE
  local cfg = M.defaults()
  local f = io.open(path, "rb")
  if not f then return M.validate(with_database_url(cfg)) end
  f:close()
  local chunk, err = loadfile(path)
  if not chunk then errors.usage("%s", err) end
  local ok, user = pcall(chunk)
  if not ok then raise_from(path, user) end
  if type(user) == "function" then
    local done, res = pcall(user, cfg)
    if not done then raise_from(path, res) end
    if type(res) == "table" then cfg = res end
  elseif type(user) == "table" then
    merge(cfg, user)
  elseif user ~= nil then
    fail("must return a table of settings or a function(config), not a %s", type(user))
  end
  return M.validate(with_database_url(cfg))
end

return M
