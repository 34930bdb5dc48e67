-- The security findings as SARIF 2.1.0 (OASIS's Static Analysis Results
-- Interchange Format), for GitHub code scanning and other SARIF readers:
-- one run of the tool "novapipe", a rule per PHI kind ("phi/ssn", ...) and
-- per advisory (its OSV id), a result per finding with its file and line
-- relative to %SRCROOT% (the project root), the fingerprint the baseline
-- uses (partialFingerprints), the baseline state (new or unchanged) when
-- a baseline is in use, and waived findings as suppressed results with
-- their justification. Only masked values go in; the file is written
-- through the sink, which masks it again.
--
-- Severity as GitHub reads it: each rule's `security-severity` property
-- (a CVSS score, "0.1" to "10.0"), with the tag "security", and its level:
-- critical and high are "error", medium "warning", low "note"; an advisory
-- with no severity novapipe can read is a "warning" without a score. PHI
-- in test data is an "error" of security-severity 7.5 (high).
local fs = require "novapipe.fs"
local json = require "novapipe.json"
local pep440 = require "novapipe.security.pep440"
local fingerprint = require "novapipe.security.fingerprint"

local M = {}

M.VERSION = "2.1.0"
M.SCHEMA = "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
---The SARIF file's name in the reports directory.
M.FILE = "security.sarif"
---The key of novapipe's fingerprint in partialFingerprints (GitHub also
---reads primaryLocationLineHash, which carries the same value).
M.FINGERPRINT_KEY = "novapipeFingerprint/v1"

-- What each PHI kind is, for the rules' texts; a kind novapipe does not
-- describe gets a plain one.
local PHI_KINDS = {
  ssn = { "PhiSocialSecurityNumber", "a Social Security number" },
  phone = { "PhiTelephoneNumber", "a telephone number" },
  email = { "PhiEmailAddress", "an e-mail address" },
  dob = { "PhiDateOfBirth", "a date of birth" },
  mrn = { "PhiMedicalRecordNumber", "a medical record number" },
}

local LEVELS = { critical = "error", high = "error", medium = "warning", low = "note", none = "note" }
-- A score for an advisory that has only a rating (GitHub's
-- database_specific.severity), in the middle of the rating's range.
local RATING_SCORES = { critical = "9.5", high = "8.0", medium = "5.5", low = "2.0", none = "0.0" }
local PHI_SECURITY_SEVERITY = "7.5"

-- A relative path as a URI reference: every byte outside RFC 3986's
-- unreserved characters and "/" percent-encoded.
local function uri_path(path)
  return (path:gsub("[^%w%-%._~/]", function(c) return ("%%%02X"):format(c:byte()) end))
end

---An artifactLocation for a path: relative to %SRCROOT% (a "./" in front
---dropped), or a file: URI for an absolute path. `mask` (the run's PHI
---masker) is applied before the path is percent-encoded: the sink masks
---the file again, but it cannot see "jane.doe%40gmail.com" as an address.
---@param path string
---@param mask? fun(text: string): string
---@return table
function M.artifact(path, mask)
  path = mask and mask(path) or path
  if path:sub(1, 1) == "/" then return { uri = "file://" .. uri_path(path) } end
  return { uri = uri_path((path:gsub("^%./+", ""))), uriBaseId = "%SRCROOT%" }
end

-- The line of a requirement in a file that does not say it (pyproject.toml,
-- poetry.lock): the first line naming the package, or nil.
local function locate(file, package)
  local text = fs.read(file)
  if not text then return nil end
  local want = pep440.normalize_name(package):gsub("%p", "%%%0")
  local n = 0
  for line in (text:sub(-1) == "\n" and text or text .. "\n"):gmatch("([^\n]*)\n") do
    n = n + 1
    local norm = line:lower():gsub("[-_.]+", "-")
    if norm:find("%f[%w%-]" .. want .. "%f[^%w%-]") then return n end
  end
  return nil
end

local function location(file, line, mask)
  local loc = { physicalLocation = { artifactLocation = M.artifact(file, mask) } }
  if line and line >= 1 then loc.physicalLocation.region = { startLine = math.tointeger(line) or line } end
  return loc
end

local function fingerprints(fp)
  return { [M.FINGERPRINT_KEY] = fp, primaryLocationLineHash = fp }
end

local function suppression(w)
  return json.array({ { kind = "external", status = "accepted",
    justification = ("%s (until %s)"):format(w.justification, w.expires) } })
end

local function phi_rule(kind)
  local k = PHI_KINDS[kind] or { "Phi" .. kind:gsub("^%l", string.upper), "a value of the kind " .. kind }
  local text = ("The PHI audit found %s, or a value shaped like one, in the test suite or its data."):format(k[2])
  local help = "Test data should be synthetic, so that it can hold no patient's information. Replace the value with "
    .. "one that cannot belong to a person (SSNs in the areas 000, 666 or 900 to 999; telephone numbers from 555-0100 "
    .. "to 555-0199; e-mail addresses at example.com, example.org, example.net or under .test, .invalid and "
    .. ".example), let a project convention through with phi.allow in novapipe.lua, or, when the value must stay, "
    .. "waive it in security.waivers with a justification and an expiry date."
  return {
    id = "phi/" .. kind, name = k[1],
    shortDescription = { text = ("PHI in test data: %s."):format(k[2]) },
    fullDescription = { text = text },
    help = { text = help, markdown = help },
    defaultConfiguration = { level = "error" },
    properties = { tags = json.array({ "security", "phi", "hipaa" }), precision = "medium",
                   ["security-severity"] = PHI_SECURITY_SEVERITY },
  }
end

local function level_of(sev)
  return sev and LEVELS[sev.rating] or "warning"
end

local function dependency_rule(v)
  local aliases = #v.aliases > 0 and (" (" .. table.concat(v.aliases, ", ") .. ")") or ""
  local summary = v.summary ~= "" and v.summary or ("known vulnerability " .. v.id)
  local props = { tags = json.array({ "security", "dependency", "vulnerability" }), precision = "very-high" }
  local sev = v.severity
  if sev then
    props["security-severity"] = sev.score and ("%.1f"):format(sev.score) or RATING_SCORES[sev.rating]
    props.severity = sev.rating
    props.cvss = sev.vector
  end
  local help = ("The advisory %s%s affects %s %s, a pinned dependency. Upgrade it to a version the advisory names "
    .. "as fixed (%s) and pin that version, or, when the vulnerable code is never reached, add the advisory to "
    .. "security.ignore with a justification and an expiry date. The advisory: https://osv.dev/vulnerability/%s")
    :format(v.id, aliases, v.package, v.version, #v.fixed > 0 and table.concat(v.fixed, ", ") or "none yet", v.id)
  return {
    id = v.id, name = "VulnerableDependency",
    shortDescription = { text = summary },
    fullDescription = { text = ("%s%s: %s"):format(v.id, aliases, summary) },
    help = { text = help, markdown = help },
    helpUri = "https://osv.dev/vulnerability/" .. uri_path(v.id),
    defaultConfiguration = { level = level_of(sev) },
    properties = props,
  }
end

---@class novapipe.SarifInput
---@field root string the project root, absolute
---@field version string novapipe's
---@field phi? table the PHI audit (novapipe.security.phi_audit.run's), nil when it did not run
---@field deps? table the dependency scan's result, nil when it did not run
---@field errors? string[] why a scan did not finish, each one line
---@field baseline? {path: string, stale: novapipe.BaselineEntry[]} when a baseline is in use
---@field mask? fun(text: string): string the run's PHI masker, for paths before they are percent-encoded

---The SARIF log of the security findings.
---@param input novapipe.SarifInput
---@return table
function M.log(input)
  local rules, index = json.array(), {}
  local function rule(id, make)
    if not index[id] then
      rules[#rules + 1] = make()
      index[id] = #rules - 1
    end
    return index[id]
  end
  local results = json.array()
  local mask = input.mask or function(text) return text end
  local with_baseline = input.baseline ~= nil
  local function add(r, f, waived)
    if waived then r.suppressions = suppression(f.waiver)
    -- "recorded" (--update-baseline): in the baseline this run wrote, as on the console
    elseif with_baseline and f.baseline then r.baselineState = f.baseline == "new" and "new" or "unchanged" end
    results[#results + 1] = r
  end
  local phi = input.phi
  if phi then
    for _, list in ipairs({ { phi.findings, false }, { phi.waived or {}, true } }) do
      for _, f in ipairs(list[1]) do
        local k = PHI_KINDS[f.kind]
        add({
          ruleId = "phi/" .. f.kind, ruleIndex = rule("phi/" .. f.kind, function() return phi_rule(f.kind) end),
          level = "error", kind = "fail",
          message = { text = ("%s in test data, masked: %s."):format(
            k and (k[2]:gsub("^%l", string.upper)) or ("A value of the kind " .. f.kind), f.value) },
          locations = json.array({ location(f.file, f.line, mask) }),
          partialFingerprints = fingerprints(f.fingerprint),
          properties = { phiKind = f.kind, maskedValue = f.value },
        }, f, list[2])
      end
    end
  end
  local deps = input.deps
  if deps and deps.checked then
    for _, list in ipairs({ { deps.vulnerabilities, false }, { deps.ignored or {}, true } }) do
      for _, v in ipairs(list[1]) do
        local file, line = fingerprint.source_file(v.source)
        line = line or locate(file, v.package)
        local aliases = #v.aliases > 0 and (" (" .. table.concat(v.aliases, ", ") .. ")") or ""
        local fixed = #v.fixed > 0 and ("fixed in " .. table.concat(v.fixed, ", ")) or "no fixed version yet"
        local i = rule(v.id, function() return dependency_rule(v) end)
        add({
          ruleId = v.id, ruleIndex = i, level = rules[i + 1].defaultConfiguration.level, kind = "fail",
          message = { text = ("%s %s has a known vulnerability, %s%s: %s (%s)."):format(v.package, v.version, v.id,
            aliases, v.summary ~= "" and v.summary or "no summary", fixed) },
          locations = json.array({ location(file, line, mask) }),
          partialFingerprints = fingerprints(v.fingerprint),
          properties = { package = v.package, version = v.version, advisory = v.id, aliases = json.array(v.aliases),
                         fixedVersions = json.array(v.fixed), severity = v.severity and v.severity.rating or "unknown" },
        }, v, list[2])
      end
    end
  end
  local notes = json.array()
  local function note(level, text) notes[#notes + 1] = { level = level, message = { text = text } } end
  for _, e in ipairs(input.errors or {}) do note("error", e) end
  for _, e in ipairs(phi and phi.errors or {}) do note("error", "PHI audit: cannot read " .. e) end
  if deps and not deps.checked then
    note("warning", "The dependencies were not checked for known vulnerabilities: " .. tostring(deps.note or ""))
  end
  if with_baseline and #input.baseline.stale > 0 then
    note("note", ("%d entr%s of %s no longer found (fixed): refresh it with novapipe run security --update-baseline.")
      :format(#input.baseline.stale, #input.baseline.stale == 1 and "y" or "ies", input.baseline.path))
  end
  local ok = phi ~= nil and deps ~= nil and #(input.errors or {}) == 0 and #(phi.errors or {}) == 0
  local run = {
    tool = { driver = { name = "novapipe", version = input.version, rules = rules } },
    automationDetails = { id = "novapipe/security/" },
    originalUriBaseIds = { ["%SRCROOT%"] = { uri = "file://" .. uri_path((mask(input.root):gsub("/*$", "/"))) } },
    invocations = json.array({ { executionSuccessful = ok, toolExecutionNotifications = notes,
                                 endTimeUtc = os.date("!%Y-%m-%dT%H:%M:%SZ") } }),
    results = results,
  }
  if with_baseline then
    run.properties = { baseline = input.baseline.path, staleBaselineEntries = #input.baseline.stale }
  end
  return { ["$schema"] = M.SCHEMA, version = M.VERSION, runs = json.array({ run }) }
end

return M
