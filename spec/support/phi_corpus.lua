-- The labelled corpus that PHI masking is measured on (spec/e2e/phi_corpus_spec.lua,
-- bench/phi.lua).
--
-- Positives are generated with a seeded generator: every kind and every
-- format of it that novapipe.phi's header lists, each value in a line
-- of the kind tests print (an assertion message, a log line, a repr, JSON,
-- pytest's E lines), with the line as it must read once masked.
--
-- Negatives are real test output, collected by running real processes:
-- pytest (-v, -rA, --durations, a failing test's traceback, captured logs
-- with timestamps) and coverage's report on a generated project, pytest's
-- collection of the bundled example, CPython's own test suite (a few fast
-- modules with -v), and the source lines of CPython's tests for volume.
--
-- The labelling rule: a negative line that holds a value of a listed
-- format by the textbook shapes below (independent of the scanner) is
-- PHI-like by format, whoever printed it (a test of an e-mail parser
-- printing "jane@mail.org" is a positive): it is taken out of the
-- negatives and counted as `relabelled`, never counted against the
-- masker. Every other negative line must come out of the masker as it went
-- in.
local lfs = require "lfs"
local process = require "novapipe.process"

local M = {}

-- A small seeded generator (a 64-bit LCG, high bits): the same corpus on
-- every machine and every Lua.
local function prng(seed)
  local state = seed
  return function(lo, hi)
    state = state * 6364136223846793005 + 1442695040888963407
    local r = (state >> 33) & 0x7fffffff
    return lo + r % (hi - lo + 1)
  end
end

local function pick(rand, list) return list[rand(1, #list)] end

local FIRST = { "jane", "john", "maria", "li", "ahmed", "olga", "pat", "sam", "noor", "ken" }
local LAST = { "roe", "doe", "garcia", "smith", "nguyen", "kowalski", "okafor", "tanaka", "berg", "silva" }
local UTF8_LOCAL = { "jané", "müller", "zoë", "françois", "søren", "łukasz", "ñandú", "josé.garcía", "дарья", "山田" }
local DOMAINS = { "gmail.com", "hospital.org", "mail.co.uk", "clinic-east.net", "yahoo.fr", "uni.edu", "HEALTH.IO",
                  "Outlook.com" }
local MONTHS = { "January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
                 "November", "December" }
local UDASH = { "\u{2010}", "\u{2011}", "\u{2012}", "\u{2013}", "\u{2014}", "\u{2015}", "\u{2212}", "\u{FE58}",
                "\u{FE63}", "\u{FF0D}" }

-- Lines values stand in, as tests print them: {v} is the value.
local CONTEXTS = {
  "AssertionError: assert patient.%s == '{v}'",
  "E       AssertionError: expected {v}, got None",
  "2026-12-01 20:24:54,123 INFO app.api.patients: updated %s {v} for patient 17",
  "Patient(id=17, name='Jane Roe', %s='{v}', created=datetime.datetime(2026, 12, 1, 20, 24, 54))",
  '{"id": 17, "%s": "{v}", "updated_at": "2026-12-01T20:24:54.123456+00:00"}',
  "E         +  where '{v}' = Patient(id=17).%s",
  "    %s: {v}",
  "WARNING  app.audit:audit.py:88 %s={v} seen in request 3f2b9c1e-8d4a-4f6b-9a7e-2c1d0e5f6a7b",
  "FAILED tests/test_patients.py::test_update - ValueError: bad %s {v}",
  "| 17 | {v} | 2026-12-01 |",
}

local function ssn_value(rand, format)
  local area = rand(1, 899)
  if area == 666 then area = 665 end
  local a, g, s = ("%03d"):format(area), ("%02d"):format(rand(1, 99)), ("%04d"):format(rand(1, 9999))
  if format == "dashes" then return a .. "-" .. g .. "-" .. s
  elseif format == "spaces" then return a .. " " .. g .. " " .. s
  elseif format == "unicode dash" then
    local d = pick(rand, UDASH)
    return a .. d .. g .. d .. s
  else return a .. g .. s end
end

-- SSN words before nine digits, and the field names used elsewhere.
local SSN_CONTEXTS = {
  "SSN: {v}", "ssn={v}", "{\"ssn\": \"{v}\"}", "social security number {v}", "Social: {v}",
  "AssertionError: assert patient.ssn == '{v}'", "patientSSN={v}", "E       ssn mismatch: {v}",
  "2026-12-01 20:24:54,123 DEBUG app.db: SSN lookup {v}", "social_security_number='{v}'",
}

local function phone_value(rand, format)
  local area, ex, line = rand(201, 989), rand(201, 989), ("%04d"):format(rand(0, 9999))
  if ex == 555 then ex = 556 end
  local forms = {
    parens = ("(%d) %d-%s"):format(area, ex, line),
    ["parens tight"] = ("(%d)%d-%s"):format(area, ex, line),
    dashes = ("%d-%d-%s"):format(area, ex, line),
    dots = ("%d.%d.%s"):format(area, ex, line),
    spaces = ("%d %d %s"):format(area, ex, line),
    ["+1 spaces"] = ("+1 %d %d %s"):format(area, ex, line),
    ["+1 dashes"] = ("+1-%d-%d-%s"):format(area, ex, line),
    ["+1 parens"] = ("+1 (%d) %d-%s"):format(area, ex, line),
    ["+1 digits"] = ("+1%d%d%s"):format(area, ex, line),
    ["1 dashes"] = ("1-%d-%d-%s"):format(area, ex, line),
    ["x extension"] = ("(%d) %d-%s x%d"):format(area, ex, line, rand(1, 9999)),
    ["ext. extension"] = ("%d-%d-%s ext. %d"):format(area, ex, line, rand(1, 999)),
    ["ext extension"] = ("%d.%d.%s ext %d"):format(area, ex, line, rand(1, 99)),
  }
  return forms[format]
end
local PHONE_FORMATS = { "parens", "parens tight", "dashes", "dots", "spaces", "+1 spaces", "+1 dashes", "+1 parens",
                        "+1 digits", "1 dashes", "x extension", "ext. extension", "ext extension" }

local function email_value(rand, format)
  local f, l = pick(rand, FIRST), pick(rand, LAST)
  local local_part
  if format == "plain" then local_part = f .. rand(1, 99)
  elseif format == "dotted" then local_part = f .. "." .. l
  elseif format == "plus tag" then local_part = f .. "." .. l .. "+" .. pick(rand, { "test", "lab", "x1", "appt" })
  elseif format == "upper case" then local_part = (f .. "." .. l):upper()
  else local_part = pick(rand, UTF8_LOCAL) end
  return local_part .. "@" .. pick(rand, DOMAINS)
end
local EMAIL_FORMATS = { "plain", "dotted", "plus tag", "upper case", "utf-8" }

local BIRTH = { "DOB", "dob", "D.O.B.", "born", "Born on", "birth", "date of birth", "Date of Birth", "birthdate",
                "birthday", "date_of_birth", "dateOfBirth", "birth_date", "patient_dob" }
local BIRTH_CONTEXTS = {
  "%s: {v}", "%s={v}", "{\"%s\": \"{v}\"}", "AssertionError: assert p.%s == {v}", "  '%s': {v},",
  "2026-12-01 20:24:54,123 INFO app.api: %s {v} recorded", "E       %s was {v}",
  "Patient(id=17, %s={v})",
}

local function dob_value(rand, format)
  local y, m, d = rand(1930, 2010), rand(1, 12), rand(1, 28)
  local mon = MONTHS[m]
  local forms = {
    iso = ("%d-%02d-%02d"):format(y, m, d),
    ["us slashes"] = ("%d/%d/%d"):format(m, d, y),
    ["us padded"] = ("%02d/%02d/%d"):format(m, d, y),
    ["us dashes"] = ("%02d-%02d-%d"):format(m, d, y),
    ["long"] = ("%s %d, %d"):format(mon, d, y),
    ["day month"] = ("%d %s %d"):format(d, mon, y),
    ["abbreviated"] = ("%s %d, %d"):format(mon:sub(1, 3), d, y),
    ["abbreviated dot"] = ("%s. %d %d"):format(mon:sub(1, 3), d, y),
    ["day abbreviated"] = ("%02d-%s-%d"):format(d, mon:sub(1, 3):upper(), y),
    ["python date"] = ("date(%d, %d, %d)"):format(y, m, d),
  }
  return forms[format]
end
local DOB_FORMATS = { "iso", "us slashes", "us padded", "us dashes", "long", "day month", "abbreviated",
                      "abbreviated dot", "day abbreviated", "python date" }

local function mrn_value(rand)
  local digits = rand(6, 10)
  local n = ""
  for _ = 1, digits do n = n .. rand(0, 9) end
  return "MRN" .. pick(rand, { "-", ":", " ", "" }) .. n
end

local function fill(template, field, value, mask)
  local line = template:gsub("%%s", field)
  return (line:gsub("{v}", function() return value end)), (line:gsub("{v}", function() return mask end))
end

---The positives: {kind, format, lines = {..}, want = {..}} (most one
---line; a date of birth on the line after its word is two).
---@param seed? integer
---@return table[]
function M.positives(seed)
  local rand = prng(seed or 20261201)
  local out = {}
  local function add(kind, format, lines, want) out[#out + 1] = { kind = kind, format = format, lines = lines, want = want } end
  local mask = function(kind) return ("[PHI:%s]"):format(kind) end
  for i = 1, 600 do
    local format = ({ "dashes", "spaces", "unicode dash", "no separator" })[i % 4 + 1]
    local v = ssn_value(rand, format)
    local ctx = format == "no separator" and pick(rand, SSN_CONTEXTS) or pick(rand, CONTEXTS)
    local l, w = fill(ctx, "ssn", v, mask("ssn"))
    add("ssn", format, { l }, { w })
  end
  for i = 1, 650 do
    local format = PHONE_FORMATS[i % #PHONE_FORMATS + 1]
    local l, w = fill(pick(rand, CONTEXTS), "phone", phone_value(rand, format), mask("phone"))
    add("phone", format, { l }, { w })
  end
  for i = 1, 500 do
    local format = EMAIL_FORMATS[i % #EMAIL_FORMATS + 1]
    local l, w = fill(pick(rand, CONTEXTS), "email", email_value(rand, format), mask("email"))
    add("email", format, { l }, { w })
  end
  for i = 1, 900 do
    local format = DOB_FORMATS[i % #DOB_FORMATS + 1]
    local v = dob_value(rand, format)
    if format == "python date" then v = pick(rand, { "datetime.", "" }) .. v end
    local word = pick(rand, BIRTH)
    if i % 9 == 0 then
      -- the word closes a line, the date opens the next
      local head = pick(rand, { "%s:", '  "%s":', "%s =", "E       %s" }):format(word)
      local shown = v:gsub("^datetime%.", "")
      add("dob", format .. ", next line", { head, "    " .. v .. "," },
          { head, "    " .. v:sub(1, #v - #shown) .. mask("dob") .. "," })
    else
      local shown = v:gsub("^datetime%.", "")
      local l, w = fill(pick(rand, BIRTH_CONTEXTS), word, v, v:sub(1, #v - #shown) .. mask("dob"))
      add("dob", format, { l }, { w })
    end
  end
  for _ = 1, 300 do
    local l, w = fill(pick(rand, CONTEXTS), "mrn", mrn_value(rand), mask("mrn"))
    add("mrn", "default pattern", { l }, { w })
  end
  return out
end

-- The generated project whose real pytest and coverage output are
-- negatives: logs with timestamps, UUIDs, digests, addresses and ports,
-- versions, durations, memory addresses, epoch times, a failing test with
-- its traceback, parametrized ids, words that merely hold "dob" or "born".
local PROJECT = {
  ["app/__init__.py"] = "",
  ["app/core.py"] = [[
import hashlib, ipaddress, logging, time, uuid

log = logging.getLogger("app.core")


def digest(text):
    return hashlib.sha256(text.encode()).hexdigest()


def endpoint(host, port):
    addr = ipaddress.ip_address(host)
    log.info("connecting to %s port %d (v%d)", addr, port, addr.version)
    return f"{addr}:{port}" if addr.version == 4 else f"[{addr}]:{port}"


def stamp():
    now = time.time()
    log.info("stamp epoch=%d ms=%d id=%s", int(now), int(now * 1000), uuid.uuid4())
    return now


def classify(n):
    if n < 0:
        return "negative"
    if n == 0:
        return "zero"
    if n > 1000000:
        return "large"
    return "positive"
]],
  ["tests/__init__.py"] = "",
  ["tests/test_core.py"] = [[
import datetime, hashlib, logging, os, platform, sys, time, uuid

import pytest

from app import core

log = logging.getLogger("tests")


@pytest.mark.parametrize("host,port", [("127.0.0.1", 8080), ("10.0.12.7", 5432), ("192.168.100.254", 6379),
                                       ("::1", 443), ("2001:db8:85a3::8a2e:370:7334", 8443), ("fe80::1ff:fe23:4567:890a", 22)])
def test_endpoint(host, port):
    log.info("endpoint %s", core.endpoint(host, port))
    assert str(port) in core.endpoint(host, port)


@pytest.mark.parametrize("version", ["3.11.7", "1.2.3.4", "2024.1.15", "0.52.1rc2", "10.4.12-1"])
def test_versions(version):
    print("python", platform.python_version(), "package", version, "build", sys.hexversion)
    assert version.count(".") >= 2


@pytest.mark.parametrize("n", [0, 1, -5, 219099999, 1733084694, 4158675309])
def test_classify(n):
    print(f"id={n} kind={core.classify(n)} at 0x{id(n):x}")
    assert core.classify(n)


def test_digests():
    for text in ["a", "patient", "2026-12-01"]:
        print("sha256", core.digest(text), "sha1", hashlib.sha1(text.encode()).hexdigest(),
              "md5", hashlib.md5(text.encode()).hexdigest()[:12])
    print("git", hashlib.sha1(b"commit").hexdigest()[:7], "uuid", uuid.uuid4(), uuid.uuid5(uuid.NAMESPACE_DNS, "x"))


def test_times():
    t = core.stamp()
    now = datetime.datetime.now(datetime.timezone.utc)
    log.warning("at %s local %s", now.isoformat(), datetime.datetime.now().isoformat(timespec="milliseconds"))
    print("elapsed 0.52s, 1:02:03, 00:00:01.250, took %.3f ms" % ((time.time() - t) * 1000))
    print("Adobe 2024-01-15 export; stubborn retry at 2026-12-01; Osborne, Dobson and the unborn queue", now.date())
    print(repr(object()), repr(test_times), os.getpid())


@pytest.mark.parametrize("delay", [0.01, 0.02])
def test_slow(delay):
    time.sleep(delay)


def test_failure():
    record = {"id": 17, "uuid": str(uuid.uuid4()), "created": "2026-12-01T20:24:54.123456+00:00",
              "host": "10.0.12.7:5432", "sha": core.digest("x")[:40], "version": "3.11.7"}
    log.error("record %r", record)
    assert record == {"id": 18, "uuid": record["uuid"], "created": "2026-12-01T20:24:54.123+00:00",
                      "host": "10.0.12.7:5433", "sha": record["sha"], "version": "3.11.8"}


def recurse(depth):
    if depth == 0:
        raise ValueError(f"depth exhausted at {time.time():.0f}")
    return recurse(depth - 1)


def test_traceback():
    recurse(5)


@pytest.fixture
def broken():
    raise RuntimeError("fixture broke at 0x7f3a2c1d4e50")


def test_error(broken):
    pass


@pytest.mark.skip(reason="skipped on 2026-12-01 until 3.12.1")
def test_skipped():
    pass
]],
  ["pytest.ini"] = "[pytest]\nlog_format = %(asctime)s %(levelname)s %(name)s: %(message)s\nlog_level = INFO\n",
}

local CPYTHON_TESTS = "/usr/lib/python3.11/test"
local CPYTHON_MODULES = { "test_ipaddress", "test_uuid", "test_strptime", "test_pprint", "test_urlparse",
                          "test_statistics" }
local CPYTHON_SOURCES = { "test_ipaddress.py", "test_uuid.py", "datetimetester.py", "test_statistics.py",
                          "test_logging.py", "test_hashlib.py", "test_traceback.py", "test_strptime.py",
                          "test_time.py", "test_urlparse.py", "test_pprint.py", "test_decimal.py" }

local function lines_of(text, out, source)
  for line in text:gmatch("[^\n]+") do out[#out + 1] = { source = source, line = line } end
end

---Collects the negatives by running real processes (in `tmp`, a fresh
---directory): {source, line} each, in the order printed.
---@param tmp string
---@return {source: string, line: string}[]
---@return string[] notes what could not be collected
function M.negatives(tmp)
  local root = M.ROOT or "."
  for path, text in pairs(PROJECT) do
    local dir = (tmp .. "/" .. path):match("^(.*)/")
    lfs.mkdir(dir)
    local f = assert(io.open(tmp .. "/" .. path, "w"))
    f:write(text)
    f:close()
  end
  local env = { PYTHONDONTWRITEBYTECODE = "1", PYTHONHASHSEED = "0", COLUMNS = "120" }
  local py = require("novapipe.python").find({ "pytest", "coverage" }) or "python3"
  local pytest = { py, "-m", "pytest", "-p", "no:cacheprovider", "-v", "-rA", "--durations=0", "tests" }
  local jobs = {
    { { py, "-m", "coverage", "run", "--branch", "--source=app", "-m", "pytest", "-p", "no:cacheprovider", "-v",
        "-rA", "--durations=0", "tests" }, { cwd = tmp, env = env } },
    { pytest, { cwd = tmp, env = env } },
    { { py, "-m", "pytest", "-p", "no:cacheprovider", "--collect-only", "-q", "app/tests" },
      { cwd = root .. "/examples/clinic/backend", env = env } },
    { { py, "-m", "test", "-v", table.unpack(CPYTHON_MODULES) }, { cwd = tmp, env = env, timeout = 120 } },
  }
  local names = { "pytest+coverage", "pytest", "pytest --collect-only (examples/clinic)", "CPython test -v" }
  local out, notes = {}, {}
  local results = process.run_all(jobs, { max = 2 })
  for i, r in ipairs(results) do
    if not r.stdout or r.stdout == "" then notes[#notes + 1] = names[i] .. ": no output (" .. tostring(r.error or r.code) .. ")" end
    lines_of((r.stdout or "") .. "\n" .. (r.stderr or ""), out, names[i])
  end
  local cov = process.run({ py, "-m", "coverage", "report", "-m" }, { cwd = tmp, env = env })
  lines_of(cov and cov.stdout or "", out, "coverage report")
  if not cov or cov.code ~= 0 then notes[#notes + 1] = "coverage report failed" end
  for _, name in ipairs(CPYTHON_SOURCES) do
    local f = io.open(CPYTHON_TESTS .. "/" .. name)
    if f then
      lines_of(f:read("a"), out, "CPython " .. name)
      f:close()
    else
      notes[#notes + 1] = "missing " .. CPYTHON_TESTS .. "/" .. name .. " (Debian's libpython3.11-testsuite)"
    end
  end
  return out, notes
end

-- The textbook shapes of the labelling rule (see the top of the file).
local SYNTHETIC = { "example%.com$", "example%.org$", "example%.net$", "%.test$", "%.invalid$", "%.example$" }
local function synthetic_domain(d)
  d = d:lower()
  for _, p in ipairs(SYNTHETIC) do if d:find(p) then return true end end
  return false
end

---Whether a line holds a PHI-like value by format (the labelling rule).
---@param line string
---@param before? string the line before (a birth word closing it)
---@return string|nil kind
function M.by_format(line, before)
  for d in line:gmatch("[%w._%%+-]@([%w-]+%.[%w.-]*%a%a)") do
    if not synthetic_domain(d:gsub("%.+$", "")) then return "email" end
  end
  for a in line:gmatch("%f[%d](%d%d%d)[- ]%d%d[- ]%d%d%d%d%f[%D]") do
    local n = tonumber(a)
    if n ~= 0 and n ~= 666 and n < 900 then return "ssn" end
  end
  for ex, l in line:gmatch("%f[%d]%d%d%d[-. )] ?(%d%d%d)[-. ](%d%d%d%d)%f[%D]") do
    if not (ex == "555" and tonumber(l) >= 100 and tonumber(l) <= 199) then return "phone" end
  end
  local low = line:lower()
  if low:find("%f[%a]ssn%f[%A][^%d]*%d%d%d%d%d%d%d%d%d%f[%D]") then return "ssn" end
  for _, w in ipairs({ "dob", "born", "birth", "birthday", "birthdate" }) do
    local at = low:find("%f[%a]" .. w .. "%f[%A]")
    if at then
      local after = low:sub(at, at + 60)
      if after:find("%d+[-/.]%d+[-/.]%d+") or after:find("date%(%d") or after:find("%a%a%a%.? %d%d?%a*,? %d%d%d%d")
        or after:find("%d%d? %a%a%a+ %d%d%d%d") then
        return "dob"
      end
    end
  end
  if before and (before:lower():find("%f[%a]dob[%p%s]*$") or before:lower():find("%f[%a]birth[%p%s]*$")) then
    return "dob"
  end
  if line:find("MRN[-: ]?%d%d%d%d%d%d") then return "mrn" end
  return nil
end

---Measures a masker factory on the corpus: per kind {n, found, misses},
---and the negatives' {lines, relabelled, false_positives}.
---@param make fun(): fun(line: string): string a fresh masker
---@param positives table[]
---@param negatives {source: string, line: string}[]
function M.measure(make, positives, negatives)
  local kinds = {}
  for _, p in ipairs(positives) do
    local k = kinds[p.kind] or { n = 0, found = 0, misses = {} }
    kinds[p.kind] = k
    k.n = k.n + 1
    local mask = make()
    local ok = true
    for i, line in ipairs(p.lines) do
      local got = (mask(line))
      if got ~= p.want[i] then
        ok = false
        k.misses[#k.misses + 1] = ("%s (%s): %q -> %q"):format(p.kind, p.format, line, got)
      end
    end
    if ok then k.found = k.found + 1 end
  end
  local neg = { lines = 0, relabelled = 0, false_positives = {}, by_kind = {} }
  local mask = make()
  local before
  for _, n in ipairs(negatives) do
    local kind = M.by_format(n.line, before)
    local got = (mask(n.line))
    if kind then
      neg.relabelled = neg.relabelled + 1
      neg.by_kind[kind] = (neg.by_kind[kind] or 0) + 1
    else
      neg.lines = neg.lines + 1
      if got ~= n.line then
        neg.false_positives[#neg.false_positives + 1] = ("%s: %q -> %q"):format(n.source, n.line, got)
      end
    end
    before = n.line
  end
  return kinds, neg
end

return M
