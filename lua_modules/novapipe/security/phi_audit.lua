-- The PHI audit of the test suite and its data: values that look like PHI
-- in Python files, fixtures, JSON, CSV, YAML, SQL and text. Uses the same
-- patterns and synthetic allow-lists as the output masking (novapipe.phi).
-- Each finding: file, line, kind, the value masked, and its fingerprint
-- (novapipe.security.fingerprint: of the masked value and masked line).
local fingerprint = require "novapipe.security.fingerprint"
local fs = require "novapipe.fs"
local lfs = require "lfs"
local phi = require "novapipe.phi"
local waivers = require "novapipe.security.waivers"

local M = {}

---A value with all but its last two letters and digits starred:
---"123-45-6789" -> "***-**-**89".
---@param value string
---@return string
function M.redact(value)
  local alnum = select(2, value:gsub("%w", ""))
  local keep_from = alnum - 1
  local i = 0
  return (value:gsub("%w", function(c)
    i = i + 1
    return i >= keep_from and c or "*"
  end))
end

---Lists the files to audit under the given paths (files or directories).
---@param paths string[]
---@param extensions string[] without dots
---@return string[] files, string[] errors
function M.files(paths, extensions)
  local include = {}
  for _, e in ipairs(extensions) do include[#include + 1] = "*." .. e end
  local out, errs = {}, {}
  for _, root in ipairs(paths) do
    local mode = lfs.attributes(root, "mode")
    if mode == "file" then
      out[#out + 1] = root
    elseif mode == "directory" then
      local list, err = fs.walk(root, { include = include, exclude = { "__pycache__", ".pytest_cache", ".git" } })
      if not list then errs[#errs + 1] = err end
      for _, rel in ipairs(list or {}) do out[#out + 1] = root:gsub("/+$", "") .. "/" .. rel end
    else
      errs[#errs + 1] = root .. ": not found"
    end
  end
  return out, errs
end

---Audits files. Returns {findings, waived, expired, unused, files, errors}.
---@param cfg novapipe.Config
---@return table
function M.run(cfg)
  local sec = cfg.security
  local paths = sec.phi_audit.paths or { cfg.tests }
  local files, errs = M.files(paths, sec.phi_audit.extensions)
  local findings = {}
  local current, lineno
  local mask = phi.masker(cfg.phi, function(kind, value)
    findings[#findings + 1] = { file = current, line = lineno, kind = kind, value = M.redact(value) }
  end)
  for _, file in ipairs(files) do
    local text, err = fs.read(file)
    if not text then
      errs[#errs + 1] = err
    elseif text:find("\0", 1, true) then
      -- binary data: not text the patterns mean anything in
    else
      current, lineno = file, 0
      for line in (text:sub(-1) == "\n" and text or text .. "\n"):gmatch("([^\n]*)\n") do
        lineno = lineno + 1
        local before = #findings
        local masked = mask(line)
        for i = before + 1, #findings do
          local f = findings[i]
          f.fingerprint = fingerprint.phi(f.file, f.kind, f.value, masked)
        end
      end
    end
  end
  -- numbered before the waivers take theirs: a fingerprint does not change
  -- when a waiver of another copy expires
  fingerprint.number(findings, function(f) return f.fingerprint end)
  local kept, waived, expired, unused = waivers.apply(findings, sec.waivers, function(w, f)
    return w.file == f.file and (w.line == nil or w.line == f.line) and (w.kind == nil or w.kind == f.kind)
  end)
  return { findings = kept, waived = waived, expired = expired, unused = unused, files = #files, errors = errs }
end

return M
