-- Python versions as PEP 440 defines them: parsing (with its normal forms:
-- case, separators, alpha/beta/c/pre/preview/rev/r spellings, implicit
-- numbers, a leading v, an epoch, a local part) and ordering, including
-- pre-, post- and development releases.
local M = {}

local PRE = { a = "a", alpha = "a", b = "b", beta = "b", c = "rc", rc = "rc", pre = "rc", preview = "rc" }
local PRE_RANK = { a = 1, b = 2, rc = 3 }

---@class novapipe.Version
---@field epoch integer
---@field release integer[]
---@field pre? {[1]: string, [2]: integer}
---@field post? integer
---@field dev? integer
---@field ["local"]? (integer|string)[]
---@field text string the string it was parsed from

-- Reads a letter word at s[i..]: the longest of the candidates.
local function word(s, i, words)
  local best
  for _, w in ipairs(words) do
    if s:sub(i, i + #w - 1) == w and (not best or #w > #best) then best = w end
  end
  return best
end

local function sep(s, i)
  local c = s:sub(i, i)
  if c == "." or c == "-" or c == "_" then return i + 1 end
  return i
end

local function number(s, i)
  local digits = s:match("^%d+", i)
  if not digits then return nil, i end
  return math.tointeger(tonumber(digits)) or math.maxinteger, i + #digits
end

---Parses a version. Returns nil and a reason when it is not PEP 440.
---@param text string
---@return novapipe.Version|nil
---@return string? error
function M.parse(text)
  local s = tostring(text):lower():match("^%s*(.-)%s*$")
  local v = { epoch = 0, release = {}, text = text }
  local i = 1
  if s:sub(1, 1) == "v" then i = 2 end
  local n, j = number(s, i)
  if not n then return nil, ("'%s' is not a PEP 440 version"):format(text) end
  if s:sub(j, j) == "!" then
    v.epoch = n
    n, j = number(s, j + 1)
    if not n then return nil, ("'%s' is not a PEP 440 version"):format(text) end
  end
  v.release[1] = n
  i = j
  while s:sub(i, i) == "." and s:find("^%d", i + 1) do
    n, i = number(s, i + 1)
    v.release[#v.release + 1] = n
  end
  -- pre-release
  local k = sep(s, i)
  local w = word(s, k, { "alpha", "beta", "preview", "pre", "rc", "a", "b", "c" })
  if w then
    k = sep(s, k + #w)
    n, k = number(s, k)
    v.pre = { PRE[w], n or 0 }
    i = k
  end
  -- post-release: -N, or [sep]post|rev|r[sep][N]
  if s:find("^%-%d", i) then
    v.post, i = number(s, i + 1)
  else
    k = sep(s, i)
    w = word(s, k, { "post", "rev", "r" })
    if w then
      k = sep(s, k + #w)
      n, k = number(s, k)
      v.post = n or 0
      i = k
    end
  end
  -- development release
  k = sep(s, i)
  if s:sub(k, k + 2) == "dev" then
    k = sep(s, k + 3)
    n, k = number(s, k)
    v.dev = n or 0
    i = k
  end
  -- local version
  if s:sub(i, i) == "+" then
    local tail = s:sub(i + 1)
    if not tail:match("^[%w]+[%w._-]*$") or tail:find("[._-]$") then
      return nil, ("'%s' is not a PEP 440 version (bad local part)"):format(text)
    end
    v["local"] = {}
    for part in tail:gmatch("[^._-]+") do
      v["local"][#v["local"] + 1] = part:match("^%d+$") and math.tointeger(tonumber(part)) or part
    end
    i = #s + 1
  end
  if i <= #s then return nil, ("'%s' is not a PEP 440 version"):format(text) end
  return v
end

local function cmp(a, b)
  if a < b then return -1 elseif a > b then return 1 end
  return 0
end

-- The sort key's parts, as packaging orders them. "Absent" parts get
-- values below or above every real one.
local NEG, POS = -math.huge, math.huge

local function pre_key(v)
  if not v.pre and not v.post and v.dev then return { NEG, 0 } end -- 1.0.dev0 < 1.0a0
  if not v.pre then return { POS, 0 } end
  return { PRE_RANK[v.pre[1]], v.pre[2] }
end

local function compare_local(a, b)
  if not a and not b then return 0 end
  if not a then return -1 end
  if not b then return 1 end
  for i = 1, math.max(#a, #b) do
    local x, y = a[i], b[i]
    if x == nil then return -1 end
    if y == nil then return 1 end
    local tx, ty = type(x), type(y)
    if tx ~= ty then return tx == "number" and 1 or -1 end -- numbers sort above strings
    local c = cmp(x, y)
    if c ~= 0 then return c end
  end
  return 0
end

---Compares two parsed versions: -1, 0 or 1.
---@param a novapipe.Version
---@param b novapipe.Version
---@return integer
function M.compare(a, b)
  local c = cmp(a.epoch, b.epoch)
  if c ~= 0 then return c end
  -- trailing zeros do not count: 1.0 == 1.0.0
  local n = math.max(#a.release, #b.release)
  for i = 1, n do
    c = cmp(a.release[i] or 0, b.release[i] or 0)
    if c ~= 0 then return c end
  end
  local pa, pb = pre_key(a), pre_key(b)
  c = cmp(pa[1], pb[1])
  if c ~= 0 then return c end
  c = cmp(pa[2], pb[2])
  if c ~= 0 then return c end
  c = cmp(a.post or NEG, b.post or NEG)
  if c ~= 0 then return c end
  c = cmp(a.dev or POS, b.dev or POS)
  if c ~= 0 then return c end
  return compare_local(a["local"], b["local"])
end

---The normal form of a version ("1.0-RC1" -> "1.0rc1").
---@param v novapipe.Version
---@return string
function M.normal(v)
  local parts = {}
  if v.epoch ~= 0 then parts[#parts + 1] = v.epoch .. "!" end
  local rel = {}
  for i, x in ipairs(v.release) do rel[i] = tostring(x) end
  parts[#parts + 1] = table.concat(rel, ".")
  if v.pre then parts[#parts + 1] = v.pre[1] .. v.pre[2] end
  if v.post then parts[#parts + 1] = ".post" .. v.post end
  if v.dev then parts[#parts + 1] = ".dev" .. v.dev end
  if v["local"] then
    local l = {}
    for i, x in ipairs(v["local"]) do l[i] = tostring(x) end
    parts[#parts + 1] = "+" .. table.concat(l, ".")
  end
  return table.concat(parts)
end

---A project name in its PEP 503 normal form: lower case, runs of -, _
---and . made one -.
---@param name string
---@return string
function M.normalize_name(name)
  return (name:lower():gsub("[-_.]+", "-"))
end

return M
