-- An advisory's severity, from what OSV records carry: `severity` entries
-- (the advisory's, and its affected package's) with a CVSS vector, whose
-- base score is computed here for CVSS v3.0/v3.1 and v2 (the
-- specifications' formulas; a CVSS v4 vector's score needs FIRST's tables
-- and is not computed), and GitHub's `database_specific.severity` (LOW,
-- MODERATE, HIGH, CRITICAL). The highest score wins; a rating alone stands
-- when no vector gives one.
local M = {}

-- CVSS v3 metric weights (CVSS v3.1 specification, section 7.4).
local V3 = {
  AV = { N = 0.85, A = 0.62, L = 0.55, P = 0.2 },
  AC = { L = 0.77, H = 0.44 },
  UI = { N = 0.85, R = 0.62 },
  CIA = { H = 0.56, L = 0.22, N = 0 },
}

local function metrics(vector)
  local m = {}
  for k, v in tostring(vector):gmatch("(%u+):(%u)") do m[k] = v end
  return m
end

-- CVSS v3.1's Roundup: the smallest number, to one decimal, at least x.
local function roundup(x)
  local i = math.floor(x * 100000 + 0.5)
  if i % 10000 == 0 then return i / 100000 end
  return (math.floor(i / 10000) + 1) / 10
end

---The base score of a CVSS v3.0 or v3.1 vector ("CVSS:3.1/AV:N/AC:L/..."),
---or nil when it is not one.
---@param vector string
---@return number|nil
function M.cvss3(vector)
  if not tostring(vector):find("^CVSS:3%.[01]/") then return nil end
  local m = metrics(vector)
  local changed = m.S == "C"
  local pr = ({ N = 0.85, L = changed and 0.68 or 0.62, H = changed and 0.5 or 0.27 })[m.PR or ""]
  local av, ac, ui = V3.AV[m.AV or ""], V3.AC[m.AC or ""], V3.UI[m.UI or ""]
  local c, i, a = V3.CIA[m.C or ""], V3.CIA[m.I or ""], V3.CIA[m.A or ""]
  if not (av and ac and ui and pr and c and i and a) or (m.S ~= "U" and m.S ~= "C") then return nil end
  local iss = 1 - (1 - c) * (1 - i) * (1 - a)
  local impact = changed and (7.52 * (iss - 0.029) - 3.25 * (iss - 0.02) ^ 15) or 6.42 * iss
  if impact <= 0 then return 0 end
  local exploitability = 8.22 * av * ac * pr * ui
  if changed then return roundup(math.min(1.08 * (impact + exploitability), 10)) end
  return roundup(math.min(impact + exploitability, 10))
end

---The base score of a CVSS v2 vector ("AV:N/AC:L/Au:N/C:P/I:P/A:P"), or nil.
---@param vector string
---@return number|nil
function M.cvss2(vector)
  local m = {}
  for k, v in tostring(vector):gmatch("(%a+):(%u)") do m[k] = v end
  local av = ({ L = 0.395, A = 0.646, N = 1.0 })[m.AV or ""]
  local ac = ({ H = 0.35, M = 0.61, L = 0.71 })[m.AC or ""]
  local au = ({ M = 0.45, S = 0.56, N = 0.704 })[m.Au or ""]
  local cia = { N = 0, P = 0.275, C = 0.660 }
  local c, i, a = cia[m.C or ""], cia[m.I or ""], cia[m.A or ""]
  if not (av and ac and au and c and i and a) then return nil end
  local impact = 10.41 * (1 - (1 - c) * (1 - i) * (1 - a))
  local exploitability = 20 * av * ac * au
  local f = impact == 0 and 0 or 1.176
  return math.floor(((0.6 * impact) + (0.4 * exploitability) - 1.5) * f * 10 + 0.5) / 10
end

---The qualitative rating of a score, as CVSS v3 names it.
---@param score number
---@return "none"|"low"|"medium"|"high"|"critical"
function M.rating(score)
  if score >= 9.0 then return "critical" end
  if score >= 7.0 then return "high" end
  if score >= 4.0 then return "medium" end
  if score > 0 then return "low" end
  return "none"
end

local RATINGS = { low = "low", moderate = "medium", medium = "medium", high = "high", critical = "critical" }

---@class novapipe.Severity
---@field rating "none"|"low"|"medium"|"high"|"critical"
---@field score? number the CVSS base score, when a vector gave one
---@field vector? string that vector

---The severity of an advisory (and of its affected entry, when given), or
---nil when it records none that novapipe can read.
---@param adv table an OSV record
---@param affected? table one of its `affected` entries
---@return novapipe.Severity|nil
function M.of(adv, affected)
  local best
  for _, list in ipairs({ type(adv.severity) == "table" and adv.severity or {},
                          type(affected) == "table" and type(affected.severity) == "table" and affected.severity or {} }) do
    for _, s in ipairs(list) do
      if type(s) == "table" and type(s.score) == "string" then
        local score = (s.type == "CVSS_V3" and M.cvss3(s.score)) or (s.type == "CVSS_V2" and M.cvss2(s.score)) or nil
        if score and (not best or score > best.score) then
          best = { score = score, rating = M.rating(score), vector = s.score }
        end
      end
    end
  end
  if best then return best end
  local ds = type(adv.database_specific) == "table" and adv.database_specific.severity
  local rating = type(ds) == "string" and RATINGS[ds:lower()]
  if rating then return { rating = rating } end
  return nil
end

return M
