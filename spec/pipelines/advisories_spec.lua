-- novapipe's advisory database end to end, offline: generated OSV exports
-- served by a real HTTP server on 127.0.0.1 (spec/support/osv_server.py),
-- `novapipe advisories update` into a cache under a temporary HOME, and the
-- security pipeline's dependency scan reading it, failing closed.
local cjson = require "cjson"
local digest = require "novapipe.digest"
local fs = require "novapipe.fs"
local lfs = require "lfs"
local proc = require "novapipe.proc"
local process = require "novapipe.process"
local time = require "novapipe.time"
local H = require "spec.support.h"

local PY = "/usr/bin/python3"

-- Writes a zip of OSV records (each a table, encoded as its entry) or, for
-- a string value, that text as the entry.
local function osv_zip(path, entries)
  local spec = {}
  for name, v in pairs(entries) do spec[name] = type(v) == "string" and v or cjson.encode(v) end
  H.write(path .. ".json", cjson.encode(spec))
  local r = process.run({ PY, "-c", "import json, sys, zipfile\n"
    .. "with zipfile.ZipFile(sys.argv[1], 'w', zipfile.ZIP_DEFLATED) as z:\n"
    .. "    for n, t in sorted(json.load(open(sys.argv[1] + '.json')).items()): z.writestr(n, t)\n", path })
  assert.equal(0, r.code, r.stderr)
  os.remove(path .. ".json")
end

local VULNERABLE = {
  id = "GHSA-demo-0001", modified = "2024-05-01T00:00:00Z", aliases = { "CVE-2099-12345" },
  summary = "demo-lib leaks records",
  affected = { { package = { ecosystem = "PyPI", name = "demo-lib" },
                 ranges = { { type = "ECOSYSTEM", events = { { introduced = "0" }, { fixed = "1.0.1" } } } } } },
}

local function export(n)
  local entries = { ["GHSA-demo-0001.json"] = VULNERABLE }
  for i = 1, n or 40 do
    entries[("PYSEC-2024-%d.json"):format(i)] = { id = ("PYSEC-2024-%d"):format(i), modified = "2024-05-01T00:00:00Z",
      affected = { { package = { ecosystem = "PyPI", name = "unrelated-" .. i }, versions = { "1.0" } } } }
  end
  return entries
end

-- A project the security pipeline scans: a pinned vulnerable package, and
-- no tests to spend time on (so no safeguard is required).
local function project()
  return H.tree({
    ["novapipe.lua"] = "return { security = { required_safeguards = {} } }\n",
    ["backend/requirements.txt"] = "Demo_Lib==1.0.0\nother-lib==2.0\n",
    ["backend/app/tests/README"] = "no tests here\n",
  })
end

describe("novapipe advisories", function()
  local keep = H.temporaries(after_each)
  local home, server, served, port

  -- The cache of this HOME, and the environment of every novapipe run.
  local function cache() return home .. "/.cache/novapipe/osv/PyPI" end
  local function env(more)
    local e = { HOME = home, XDG_CACHE_HOME = false, CI = false, http_proxy = false, HTTP_PROXY = false,
                https_proxy = false, HTTPS_PROXY = false, all_proxy = false, ALL_PROXY = false, no_proxy = false,
                NO_PROXY = false }
    for k, v in pairs(more or {}) do e[k] = v end
    return e
  end
  local function novapipe(args, more)
    return H.novapipe(args, { env = env(more) })
  end
  local function update(from, more)
    return novapipe({ "--no-color", "advisories", "update", "--from", from }, more)
  end
  local function scan(root, more)
    return novapipe({ "-C", root, "--no-color", "run", "security" }, more)
  end

  local function start_server()
    served = keep(H.tmpdir())
    server = assert(proc.spawn({ PY, "spec/support/osv_server.py", served }, { stdout = "null", stderr = "null" }))
    local deadline = time.now() + 10
    while not lfs.attributes(served .. "/port") and time.now() < deadline do time.sleep(0.02) end
    port = assert(tonumber(H.read(served .. "/port")), "the server did not start")
  end

  before_each(function()
    home = keep(H.tmpdir())
    start_server()
  end)

  after_each(function()
    if server then
      server:kill()
      server:wait()
      server = nil
    end
  end)

  local function url(name) return ("http://127.0.0.1:%d/%s"):format(port, name) end

  it("explains itself when given no subcommand", function()
    local r = novapipe({ "--no-color", "advisories" })
    assert.equal(0, r.code, r.stderr)
    assert.matches("update", r.stdout)
    assert.matches("status", r.stdout)
    assert.matches("unchecked", r.stdout)
  end)

  it("says in one line, exit 2, that no server answers, and writes no database", function()
    server:kill()
    server:wait()
    server = nil
    local r = update(url("all.zip"))
    assert.equal(2, r.code)
    assert.equal(("novapipe: advisories update: %s: cannot download: the connection was refused (nothing listens "
      .. "there): check the URL and the proxy settings (https_proxy, no_proxy), or use --from a local copy\n")
      :format(url("all.zip")), r.stderr)
    assert.is_nil(lfs.attributes(cache() .. "/all.zip"))
    r = novapipe({ "--no-color", "advisories", "status" })
    assert.equal(2, r.code)
    assert.matches("no advisory database: run 'novapipe advisories update'", r.stdout)
  end)

  it("updates from a local HTTP server; the scan then uses the cache, finds the vulnerable pin, and fails closed "
    .. "once the database is too old", function()
    osv_zip(served .. "/all.zip", export())
    local r = update(url("all.zip"))
    assert.equal(0, r.code, r.stdout .. r.stderr)
    assert.matches("41 OSV records from " .. url("all.zip"):gsub("%p", "%%%0"), r.stdout)
    assert.equal("rwx------", lfs.attributes(cache(), "permissions"))
    assert.equal("rw-------", lfs.attributes(cache() .. "/all.zip", "permissions"))
    assert.equal("rw-------", lfs.attributes(cache() .. "/metadata.json", "permissions"))
    assert.equal(H.read(served .. "/all.zip"), H.read(cache() .. "/all.zip"))
    local rec = cjson.decode(H.read(cache() .. "/metadata.json"))
    assert.equal(url("all.zip"), rec.source)
    assert.equal(41, rec.records)
    assert.equal(digest.sha256_file(served .. "/all.zip"), rec.sha256)
    assert.equal(lfs.attributes(served .. "/all.zip", "size"), rec.bytes)
    assert.is_true(math.abs(os.time() - rec.fetched_at) < 3600)
    for name in lfs.dir(cache()) do assert.is_nil(name:match("^%.update%-"), "left behind: " .. name) end

    local root = keep(project())
    r = scan(root)
    assert.equal(1, r.code, r.stdout .. r.stderr)
    assert.matches("FAIL%s+dependencies[^\n]*2 package%(s%), 2 pinned, 1 vulnerable", r.stdout)
    assert.matches("Demo_Lib 1%.0%.0: GHSA%-demo%-0001 demo%-lib leaks records %(fixed in 1%.0%.1%)", r.stdout)
    assert.matches("checked against 41 advisories: [^\n]*novapipe/osv/PyPI/all%.zip %(novapipe's cache, from "
      .. url("all.zip"):gsub("%p", "%%%0") .. ", fetched %d+ minutes? ago%)", r.stdout)

    -- eight days later, by the record
    rec.fetched_at = rec.fetched_at - 8 * 86400
    H.write(cache() .. "/metadata.json", cjson.encode(rec))
    r = scan(root)
    assert.equal(0, r.code, r.stdout .. r.stderr)
    assert.matches("UNCHECKED dependencies[^\n]*not checked against advisories\n%s+the advisory database [^\n]*all%.zip "
      .. "is 8 days old, older than the 7%-day limit %(security%.advisories_max_age_days%): run 'novapipe advisories "
      .. "update'", r.stdout)
    assert.not_matches("PASS%s+dependencies", r.stdout)
    assert.matches("no test ran, but not checked: dependencies", r.stdout)
    r = scan(root, { CI = "true" })
    assert.equal(2, r.code, r.stdout .. r.stderr)
    assert.matches("UNCHECKED dependencies[^\n]*\n%s+advisories are required %(CI is set%): the advisory database [^\n]*"
      .. "is 8 days old", r.stdout)
    assert.matches("configuration error %(required, not checked: dependencies%)", r.stdout)
    r = novapipe({ "--no-color", "advisories", "status" })
    assert.equal(2, r.code)
    assert.matches("not usable: [^\n]*8 days old", r.stdout)
    -- a longer limit in novapipe.lua makes it usable again
    H.write(root .. "/novapipe.lua", "return { security = { advisories_max_age_days = 30, required_safeguards = {} } }\n")
    assert.equal(1, scan(root, { CI = "true" }).code)
  end)

  it("keeps the database in use, byte for byte, when a download is cut short, truncated, refused or not OSV",
    function()
    osv_zip(served .. "/all.zip", export())
    assert.equal(0, update(url("all.zip")).code)
    local zip, rec = H.read(cache() .. "/all.zip"), H.read(cache() .. "/metadata.json")
    local good = H.read(served .. "/all.zip")
    H.write(served .. "/truncated.zip", good:sub(1, #good // 2))
    osv_zip(served .. "/notosv.zip", { ["x.json"] = { id = "X-1" } }) -- no 'modified'
    osv_zip(served .. "/notjson.zip", { ["x.json"] = "{ not json" })
    osv_zip(served .. "/empty.zip", { ["README"] = "nothing" })
    for _, case in ipairs({
      { url("cut/all.zip"), "the download was cut short" },
      { url("truncated.zip"), "not an OSV export: not a readable zip archive" },
      { url("missing.zip"), "the server answered HTTP 404 Not Found" },
      { url("notosv.zip"), "x%.json is not an OSV record" },
      { url("notjson.zip"), "x%.json is not valid JSON" },
      { url("empty.zip"), "the archive holds no OSV records" },
    }) do
      local r = update(case[1])
      assert.equal(2, r.code, case[1])
      assert.matches("^novapipe: advisories update: " .. case[1]:gsub("%p", "%%%0") .. ": [^\n]*" .. case[2]
        .. "[^\n]*\n$", r.stderr)
      assert.equal(zip, H.read(cache() .. "/all.zip"), case[1])
      assert.equal(rec, H.read(cache() .. "/metadata.json"), case[1])
      for name in lfs.dir(cache()) do assert.is_nil(name:match("^%.update%-"), "left behind: " .. name) end
    end
    assert.equal(0, novapipe({ "--no-color", "advisories", "status" }).code)
  end)

  it("updates from a local file for a site without network, and through the proxy the environment names", function()
    local file = served .. "/mirror-all.zip"
    osv_zip(file, export(3))
    local r = update(file)
    assert.equal(0, r.code, r.stderr)
    assert.matches("4 OSV records from " .. file:gsub("%p", "%%%0"), r.stdout)
    r = update(served .. "/nothing.zip")
    assert.equal(2, r.code)
    assert.matches("no such file", r.stderr)
    -- advisories.invalid does not resolve: only the proxy can answer
    osv_zip(served .. "/all.zip", export(5))
    r = update("http://advisories.invalid/all.zip", { http_proxy = ("http://127.0.0.1:%d"):format(port) })
    assert.equal(0, r.code, r.stderr)
    assert.equal("http://advisories.invalid/all.zip", cjson.decode(H.read(cache() .. "/metadata.json")).source)
    r = update("http://advisories.invalid/all.zip", { http_proxy = ("http://127.0.0.1:%d"):format(port),
                                                      no_proxy = "advisories.invalid" })
    assert.equal(2, r.code)
    assert.matches("does not resolve", r.stderr)
  end)

  it("refuses a symbolic link planted at the cache, and writes nothing through it", function()
    osv_zip(served .. "/all.zip", export(2))
    local elsewhere = keep(H.tmpdir())
    assert(fs.mkdir_p(home .. "/.cache/novapipe/osv", "0700"))
    assert(lfs.link(elsewhere, cache(), true))
    local r = update(url("all.zip"))
    assert.equal(2, r.code)
    assert.matches("^novapipe: advisories update: advisories cache [^\n]*: [^\n]*symbolic link[^\n]*\n$", r.stderr)
    assert.is_nil(next((fs.walk(elsewhere))), "written through the link")
    local root = keep(project())
    r = scan(root)
    assert.matches("UNCHECKED dependencies[^\n]*\n%s+refusing the symbolic link", r.stdout)
    -- a link at the database itself
    os.remove(cache())
    assert(fs.mkdir_p(cache(), "0700"))
    H.write(elsewhere .. "/theirs.zip", "theirs")
    assert(lfs.link(elsewhere .. "/theirs.zip", cache() .. "/all.zip", true))
    r = update(url("all.zip"))
    assert.equal(2, r.code)
    assert.matches("refusing the symbolic link [^\n]*all%.zip", r.stderr)
    assert.equal("theirs", H.read(elsewhere .. "/theirs.zip"))
  end)

  it("reads osv-scanner's offline database when novapipe has none, and says so", function()
    assert(fs.mkdir_p(home .. "/.cache/osv-scalibr/PyPI", "0700"))
    osv_zip(home .. "/.cache/osv-scalibr/PyPI/all.zip", export(1))
    local r = scan(keep(project()))
    assert.equal(1, r.code, r.stdout .. r.stderr)
    assert.matches("checked against 2 advisories: [^\n]*/%.cache/osv%-scalibr/PyPI/all%.zip %(osv%-scanner's offline "
      .. "database, modified %d+ minutes? ago%)", r.stdout)
  end)
end)
