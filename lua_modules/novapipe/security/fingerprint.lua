-- Fingerprints of security findings: what a baseline (novapipe.security.
-- baseline) and a SARIF file's partialFingerprints name a finding by, so
-- that it is recognised again on a later run after the lines around it
-- moved.
--
-- A PHI finding's fingerprint is the sha256 of its file, its kind, its
-- value as the audit shows it (masked: "***-**-**99") and its line as the
-- masker leaves it ("A,[PHI:ssn]"), whitespace runs made one space and the
-- ends trimmed. The line number is not in it: a finding keeps its
-- fingerprint when lines are added or removed above it, or when it is
-- re-indented. Nothing unmasked goes in: a plain hash of a raw value would
-- be no protection (an SSN is one of 10^9 values, hashed back in minutes),
-- and a keyed hash would need the same key everywhere the baseline is read
-- (every CI machine), so it would be a secret in the repository. What goes
-- in is text the audit already shows; the price is that a value changed
-- in a way its masked form does not show (a middle digit of an SSN) keeps
-- the fingerprint.
--
-- A vulnerable dependency's fingerprint is the sha256 of the requirement
-- file, the package's PEP 503 name and the advisory's id: it survives the
-- requirement moving in the file and a version bump that does not fix it.
--
-- Findings that would share a fingerprint (two copies of one line) are
-- told apart by their occurrence in file order: "<sha256>:1", ":2", as
-- GitHub numbers its own line hashes. A copy of a known finding is then a
-- new fingerprint, never absorbed by the known one.
local digest = require "novapipe.digest"
local pep440 = require "novapipe.security.pep440"

local M = {}

---The fingerprints' version, part of what is hashed: a change to what goes
---in changes every fingerprint, so it comes with a new version.
M.VERSION = "novapipe-fingerprint/1"

---A line with its whitespace runs made one space, and its ends trimmed.
---@param text string
---@return string
function M.normalise(text)
  return (tostring(text):gsub("%s+", " "):gsub("^ ", ""):gsub(" $", ""))
end

local function hash(...)
  return digest.sha256(table.concat({ M.VERSION, ... }, "\0"))
end

---The base fingerprint (no occurrence) of a PHI finding.
---@param file string
---@param kind string "ssn", "phone", ...
---@param masked_value string the value as the audit shows it
---@param masked_line string the finding's line, masked
---@return string hex
function M.phi(file, kind, masked_value, masked_line)
  return hash("phi", file, kind, masked_value, M.normalise(masked_line))
end

---The requirement file of a dependency's source ("backend/requirements.txt:3",
---"pyproject.toml [project.dependencies]", "poetry.lock"), and the line
---when the source names one.
---@param source string
---@return string file
---@return integer|nil line
function M.source_file(source)
  source = tostring(source or "")
  local file, line = source:match("^(.-):(%d+)$")
  if file then return file, tonumber(line) end
  return (source:match("^(.-) %[") or source), nil
end

---The base fingerprint (no occurrence) of a vulnerable dependency.
---@param file string the requirement file
---@param package string
---@param id string the advisory's id
---@return string hex
function M.dependency(file, package, id)
  return hash("dependency", file, pep440.normalize_name(package), id)
end

---Sets `fingerprint` on each item: base(item) and its occurrence among the
---items with the same base, in the list's order ("<hex>:1", "<hex>:2").
---Returns the list.
---@generic T
---@param items T[]
---@param base fun(item: T): string
---@return T[]
function M.number(items, base)
  local seen = {}
  for _, item in ipairs(items) do
    local b = base(item)
    seen[b] = (seen[b] or 0) + 1
    item.fingerprint = b .. ":" .. seen[b]
  end
  return items
end

---Sets the fingerprints of vulnerabilities (novapipe.security.osv.match's).
---@param vulns {package: string, id: string, source: string}[]
---@return table[] vulns
function M.dependencies(vulns)
  return M.number(vulns, function(v)
    return M.dependency((M.source_file(v.source)), v.package, v.id)
  end)
end

return M
