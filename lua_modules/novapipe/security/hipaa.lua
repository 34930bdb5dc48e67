-- The HIPAA Security Rule's technical safeguards (45 CFR 164.312) and how
-- tests and findings map to them. A test says what it covers with
-- @pytest.mark.hipaa("164.312(b)") (any depth: "164.312(a)(2)(iv)" counts
-- for (a)); findings map by kind through M.FINDINGS.
local M = {}

M.SAFEGUARDS = {
  { id = "164.312(a)", title = "Access control",
    text = "Only authorised persons and software reach ePHI: unique user identification, emergency access, "
      .. "automatic logoff, encryption and decryption." },
  { id = "164.312(b)", title = "Audit controls",
    text = "Mechanisms that record and examine activity in systems that hold or use ePHI." },
  { id = "164.312(c)", title = "Integrity",
    text = "ePHI is protected from improper alteration or destruction, and alteration can be detected." },
  { id = "164.312(d)", title = "Person or entity authentication",
    text = "Whoever seeks access to ePHI is verified to be who they claim." },
  { id = "164.312(e)", title = "Transmission security",
    text = "ePHI sent over a network is guarded against unauthorised access and alteration." },
}

-- Which safeguards each kind of finding bears on: PHI in test data is
-- ePHI outside access control; a vulnerable dependency threatens the
-- integrity of the system that holds ePHI.
M.FINDINGS = { phi = { "164.312(a)" }, vulnerability = { "164.312(c)" } }

---The safeguard a marker argument names ("164.312(a)(2)(iv)" ->
---"164.312(a)"), or nil when it names none of them.
---@param section string
---@return string|nil
function M.safeguard(section)
  local letter = tostring(section):lower():match("164%.312%s*%((%a)%)")
  if not letter then return nil end
  local id = ("164.312(%s)"):format(letter)
  for _, s in ipairs(M.SAFEGUARDS) do
    if s.id == id then return id end
  end
  return nil
end

-- A test's outcome as a safeguard counts it.
local PASSED = { passed = true, xpassed = true, flaky = true }
local FAILED = { failed = true, errors = true, error = true }

---@class novapipe.SafeguardOpts
---@field known? novapipe.KnownTest[] the security tests the source holds (novapipe.security.inventory), run or not
---@field lookup? fun(id: string): novapipe.KnownTest|nil finds a case's known test (inventory.index)
---@field not_run? fun(t: novapipe.KnownTest): string why a known test that is among no case did not run
---@field required? string[] safeguards that must have a passing test (default: none)

---Maps test cases (with their `hipaa` properties), the known security
---tests that did not run, and finding counts to the safeguards. Each
---safeguard gets its tests ({id, outcome, message, location, reason}),
---counts (passed, failed, not_run), its findings and a status:
---  "verified"         tests, all of them run, all passed
---  "partly verified"  some passed, none failed, some did not run (or were
---                     skipped)
---  "not verified"     tests exist, none passed, none failed: skipped,
---                     deselected, gated, xfailed
---  "failing"          a test failed or erred
---  "no test"          no test names it, in the results or the source
---`required` is set on each safeguard `required` names, and `unmet` on a
---required one without a passing test. Marker arguments that name no
---safeguard are returned apart.
---@param cases {id: string, outcome: string, hipaa: string[], message?: string, location?: string}[]
---@param findings table<string, integer> kind -> count
---@param opts? novapipe.SafeguardOpts
---@return table[] safeguards, string[] unknown
function M.map(cases, findings, opts)
  opts = opts or {}
  local rows, by_id, unknown, seen_unknown = {}, {}, {}, {}
  for _, s in ipairs(M.SAFEGUARDS) do
    local row = { id = s.id, title = s.title, text = s.text, tests = {}, findings = 0, passed = 0, failed = 0,
                  not_run = 0 }
    rows[#rows + 1] = row
    by_id[s.id] = row
  end
  local function add(sections, test)
    local added = {}
    for _, section in ipairs(sections or {}) do
      local id = M.safeguard(section)
      if id and not added[id] then
        added[id] = true
        local row = by_id[id]
        table.insert(row.tests, test)
        if PASSED[test.outcome] then row.passed = row.passed + 1
        elseif FAILED[test.outcome] then row.failed = row.failed + 1
        else row.not_run = row.not_run + 1 end
      elseif not id and not seen_unknown[section] then
        seen_unknown[section] = true
        unknown[#unknown + 1] = section
      end
    end
  end
  local ran = {}
  for _, c in ipairs(cases) do
    local known = opts.lookup and opts.lookup(c.id)
    if known then ran[known] = true end
    local reason
    if not PASSED[c.outcome] and not FAILED[c.outcome] then
      -- pytest's own message often starts with the outcome ("Skipped: ...")
      local said = c.message and c.message:lower():sub(1, #c.outcome + 2) == c.outcome .. ": "
        and c.message:sub(#c.outcome + 3) or c.message
      reason = said and (c.outcome .. ": " .. said) or c.outcome
    end
    add(c.hipaa, { id = c.id, outcome = c.outcome, message = c.message, location = c.location, reason = reason })
  end
  for _, k in ipairs(opts.known or {}) do
    if not ran[k] then
      add(k.hipaa, { id = k.id, outcome = "not run", location = k.file .. ":" .. k.line,
                     reason = opts.not_run and opts.not_run(k) or "did not run" })
    end
  end
  for kind, n in pairs(findings) do
    for _, id in ipairs(M.FINDINGS[kind] or {}) do by_id[id].findings = by_id[id].findings + n end
  end
  local required = {}
  for _, id in ipairs(opts.required or {}) do required[id] = true end
  for _, row in ipairs(rows) do
    if #row.tests == 0 then row.status = "no test"
    elseif row.failed > 0 then row.status = "failing"
    elseif row.passed == 0 then row.status = "not verified"
    elseif row.not_run > 0 then row.status = "partly verified"
    else row.status = "verified" end
    row.required = required[row.id] == true
    row.unmet = row.required and (row.passed == 0 or row.failed > 0)
  end
  table.sort(unknown)
  return rows, unknown
end

---How a safeguard's test that did not pass reads in a list: its id with
---where (the line, or the location when it is in another file), and why.
---@param t {id: string, outcome: string, message?: string, location?: string, reason?: string}
---@return string test, string why
function M.describe(t)
  local where = ""
  if t.location then
    local file = t.id:match("^(.-)::")
    local line = file and t.location:sub(1, #file + 1) == file .. ":" and t.location:sub(#file + 2)
    where = line and (" (line " .. line .. ")") or (" (" .. t.location .. ")")
  end
  return t.id .. where, t.reason or (t.message and (t.outcome .. ": " .. t.message)) or t.outcome
end

---A safeguard's tests that did not pass, each as describe() reads it:
---{test, why} pairs, in the safeguard's order.
---@param row {tests: table[]}
---@return {[1]: string, [2]: string}[]
function M.not_passed(row)
  local out = {}
  for _, t in ipairs(row.tests) do
    if not PASSED[t.outcome] then out[#out + 1] = { M.describe(t) } end
  end
  return out
end

return M
