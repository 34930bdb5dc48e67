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

---Maps test cases (with their `hipaa` properties) and finding counts to
---the safeguards. Each safeguard gets its tests, its findings, and a
---status: "covered" (tests, all passed), "failing" (a test failed),
---"no tests". Marker arguments that name no safeguard are returned apart.
---@param cases {id: string, outcome: string, hipaa: string[]}[]
---@param findings table<string, integer> kind -> count
---@return table[] safeguards, string[] unknown
function M.map(cases, findings)
  local rows, by_id, unknown, seen_unknown = {}, {}, {}, {}
  for _, s in ipairs(M.SAFEGUARDS) do
    local row = { id = s.id, title = s.title, text = s.text, tests = {}, findings = 0 }
    rows[#rows + 1] = row
    by_id[s.id] = row
  end
  for _, c in ipairs(cases) do
    local added = {}
    for _, section in ipairs(c.hipaa or {}) do
      local id = M.safeguard(section)
      if id and not added[id] then
        added[id] = true
        table.insert(by_id[id].tests, { id = c.id, outcome = c.outcome })
      elseif not id and not seen_unknown[section] then
        seen_unknown[section] = true
        unknown[#unknown + 1] = section
      end
    end
  end
  for kind, n in pairs(findings) do
    for _, id in ipairs(M.FINDINGS[kind] or {}) do by_id[id].findings = by_id[id].findings + n end
  end
  for _, row in ipairs(rows) do
    local failed = 0
    for _, t in ipairs(row.tests) do
      if t.outcome == "failed" or t.outcome == "errors" then failed = failed + 1 end
    end
    row.status = #row.tests == 0 and "no tests" or failed > 0 and "failing" or "covered"
  end
  table.sort(unknown)
  return rows, unknown
end

return M
