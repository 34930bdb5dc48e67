-- PHI-like values in text: found and masked. The patterns and the
-- allow-lists of values that are synthetic by construction are here, in
-- Lua; a project changes them under `phi` in novapipe.lua.
--
--   SSN      ddd-dd-dddd; synthetic when the area is 000, 666 or 900-999
--   phone    (ddd) ddd-dddd, ddd-ddd-dddd, ddd.ddd.dddd; synthetic when the
--            line number is 555-0100 to 555-0199
--   e-mail   name@domain; synthetic for example.com/.org/.net and the
--            .test, .invalid and .example top-level domains
--   DOB      a date (yyyy-mm-dd, mm/dd/yyyy) within a few words after DOB,
--            born, birth or date of birth
--   MRN      configurable (default "MRN" and 6 to 10 digits)
--
-- `allow` maps a kind to Lua patterns of values a project makes synthetic
-- by its own convention (allow = { mrn = { "^MRN%-0" } }): kept visible.
local M = {}

M.MASK = "[PHI:%s]"

---The default settings.
function M.defaults()
  return {
    enabled = true,
    mrn = { "MRN[-: ]?%d%d%d%d%d%d%d?%d?%d?%d?" },
    synthetic_domains = { "example.com", "example.org", "example.net" },
    synthetic_tlds = { "test", "invalid", "example" },
    allow = {},
  }
end

local BIRTH_WORDS = { "[Dd][Oo][Bb]", "[Bb][Oo][Rr][Nn]", "[Bb][Ii][Rr][Tt][Hh]" }
-- Dates as text (1980-02-03, 2/3/1980) and as Python writes them in an
-- assertion's repr or pytest's -l locals (datetime.date(1980, 2, 3)).
local DATES = { "%d%d%d%d%-%d%d%-%d%d", "%d%d?/%d%d?/%d%d%d%d", "date%(%d%d%d%d, ?%d%d?, ?%d%d?%)" }

local function synthetic_ssn(area)
  local n = tonumber(area)
  return n == 0 or n == 666 or n >= 900
end

local function synthetic_phone(exchange, line)
  local l = tonumber(line)
  return exchange == "555" and l >= 100 and l <= 199
end

---A masker for the given settings: mask(line) -> line with every PHI-like
---value replaced by [PHI:kind], and how many were replaced. on_find, when
---given, hears of each value found: on_find(kind, value). A line that ends
---with a birth word and no date ("DOB:") makes the first date of the next
---line a date of birth: the masker remembers it between calls.
---
---The second function returned, quiet(text), says that a whole text (of
---any number of lines) holds nothing this masker would hide, so masking it
---would return it unchanged: no e-mail sign, no SSN, phone or MRN shape, no
---birth word and no date of birth pending. It errs only towards false, and
---costs a few scans of the text in C where masking costs a call a line.
---@param cfg? table see M.defaults
---@param on_find? fun(kind: string, value: string)
---@return fun(line: string): string, integer mask
---@return fun(text: string): boolean quiet
function M.masker(cfg, on_find)
  cfg = cfg or M.defaults()
  local domains, tlds = {}, {}
  for _, d in ipairs(cfg.synthetic_domains or {}) do domains[d:lower()] = true end
  for _, t in ipairs(cfg.synthetic_tlds or {}) do tlds[t:lower()] = true end
  local mrn = cfg.mrn or {}
  local allow = cfg.allow or {}
  local function allowed(kind, value)
    for _, p in ipairs(allow[kind] or {}) do
      if value:find(p) then return true end
    end
    return false
  end
  -- For quiet: the MRN patterns unanchored (a line's start or end is not
  -- the text's), each with the plain text every match starts with, which a
  -- plain search finds far faster than the pattern.
  local mrn_loose = {}
  for i, p in ipairs(mrn) do
    local loose = p:gsub("^%^", ""):gsub("([^%%])%$$", "%1")
    local lead, after = loose:match("^([%w_ :]*)(.?)")
    if after == "?" or after == "*" or after == "-" then lead = lead:sub(1, -2) end
    mrn_loose[i] = { loose, #lead >= 2 and lead or nil }
  end
  local birth_pending = false
  local function quiet(text)
    if birth_pending or text:find("@", 1, true) then return false end
    -- An SSN and both phone shapes hold three digits and then - . or ):
    -- one scan for those (a date's year is one), each then tried in full.
    local at = 1
    while true do
      local i = text:find("%d%d%d[-.)]", at)
      if not i then break end
      if text:find("^%d%d%d%-%d%d%-%d%d%d%d", i) or text:find("^%d%d%d[-.]%d%d%d[-.]%d%d%d%d", i)
        or (i > 1 and text:find("^%(%d%d%d%)", i - 1)) then
        return false
      end
      at = i + 1
    end
    local low = text:lower()
    if low:find("dob", 1, true) or low:find("born", 1, true) or low:find("birth", 1, true) then return false end
    for _, m in ipairs(mrn_loose) do
      if not m[2] or text:find(m[2], 1, true) then
        local ok, at = pcall(string.find, text, m[1])
        if not ok or at then return false end
      end
    end
    return true
  end
  return function(line)
    local n, count = line, 0
    -- The mask for a value, or nil (keep it) when the project allows it.
    local function hide(kind, value)
      if allowed(kind, value) then return nil end
      count = count + 1
      if on_find then on_find(kind, value) end
      return M.MASK:format(kind)
    end
    -- e-mail first: its local part may hold digits that look like others.
    -- Only lines with an @, and matches only from the start of a run of
    -- name characters: no backtracking over long lines.
    if n:find("@", 1, true) then
      n = n:gsub("(%f[%w._%%+-]([%w._%%+-]+)@([%w.-]+%.(%a%a+)))", function(all, _, domain, tld)
        domain = domain:lower()
        if domains[domain] or tlds[tld:lower()] then return nil end
        for d in pairs(domains) do
          if domain:sub(-#d - 1) == "." .. d then return nil end
        end
        return hide("email", all)
      end)
    end
    -- SSNs, phones and dates all hold three digits in a row: a line without
    -- them (most lines) skips those patterns, the costly ones, unless it
    -- may end with a birth word whose date is on the next line.
    local low = n:lower()
    if n:find("%d%d%d") or birth_pending or low:find("dob", 1, true) or low:find("born", 1, true)
      or low:find("birth", 1, true) then
      n = n:gsub("(%f[%d](%d%d%d)%-(%d%d)%-(%d%d%d%d)%f[%D])", function(all, area)
        if synthetic_ssn(area) then return all end
        return hide("ssn", all)
      end)
      -- phones: (ddd) ddd-dddd and ddd-ddd-dddd / ddd.ddd.dddd
      n = n:gsub("(%(%d%d%d%)%s?(%d%d%d)[-.](%d%d%d%d))%f[%D]", function(all, ex, ln)
        if synthetic_phone(ex, ln) then return all end
        return hide("phone", all)
      end)
      n = n:gsub("(%f[%d]%d%d%d([-.])(%d%d%d)%2(%d%d%d%d))%f[%D]", function(all, _, ex, ln)
        if synthetic_phone(ex, ln) then return all end
        return hide("phone", all)
      end)
      -- dates of birth: a date shortly after a birth word
      if birth_pending then
        birth_pending = false
        for _, date in ipairs(DATES) do
          local s, e, at = n:find("^[^%d]-()" .. date)
          if s then
            local m = hide("dob", n:sub(at, e))
            if m then n = n:sub(1, at - 1) .. m .. n:sub(e + 1) end
            break
          end
        end
      end
      local lower = n:lower()
      if lower:find("dob", 1, true) or lower:find("born", 1, true) or lower:find("birth", 1, true) then
        for _, word in ipairs(BIRTH_WORDS) do
          for _, date in ipairs(DATES) do
            n = n:gsub("(" .. word .. "[^%d\n]-)(" .. date .. ")", function(pre, d)
              local m = hide("dob", d)
              return m and pre .. m
            end)
          end
          -- the word closes the line, its date is on the next one
          if n:find(word .. "[%s:=\"',]*$") then birth_pending = true end
        end
      end
    end
    for _, p in ipairs(mrn) do
      n = n:gsub(p, function(...) return hide("mrn", (...)) end)
    end
    return n, count
  end, quiet
end

---Masks markup (XML, HTML) by its content only: the text between tags and
---the values of attributes, never the tags themselves, so a pattern that
---matches across markup cannot corrupt the document. Context crosses tags:
---`find`, when given, is run over the text with the tags taken out (so
---`<b>DOB</b> <i>1980-02-03</i>` reads as it is seen) and returns the
---values it found ({kind, value} pairs), which are then masked wherever
---they stand. `quiet`, the masker's second function, lets a text with
---nothing to hide (most of a JUnit file) through without a call a value.
---@param text string
---@param mask fun(s: string): string
---@param find? fun(s: string): {[1]: string, [2]: string}[]
---@param quiet? fun(s: string): boolean
---@return string
function M.mask_markup(text, mask, find, quiet)
  if quiet and quiet(text) then return text end
  local extra = {}
  -- Only a date of birth reads context beyond its value (the word before
  -- it): the finder runs where such a word is.
  local lower = find and text:lower()
  if find and (lower:find("dob", 1, true) or lower:find("born", 1, true) or lower:find("birth", 1, true)) then
    local plain = text:gsub("<[^>]*>", "")
    for _, f in ipairs(find(plain)) do
      local kind, v = f[1], f[2]
      if not extra[v] and v ~= "" then extra[v] = kind; extra[#extra + 1] = v end
    end
    table.sort(extra, function(a, b) return #a > #b end)
  end
  local function mask_all(seg)
    seg = seg:gsub("[^\n]+", mask)
    for _, v in ipairs(extra) do
      local at = 1
      while true do
        local i, j = seg:find(v, at, true)
        if not i then break end
        local token = M.MASK:format(extra[v])
        seg = seg:sub(1, i - 1) .. token .. seg:sub(j + 1)
        at = i + #token
      end
    end
    return seg
  end
  local out, i, n = {}, 1, #text
  while i <= n do
    local lt = text:find("<", i, true)
    if not lt then
      out[#out + 1] = mask_all(text:sub(i))
      break
    end
    if lt > i then out[#out + 1] = mask_all(text:sub(i, lt - 1)) end
    local gt = text:find(">", lt, true) or n
    local tag = text:sub(lt, gt)
    out[#out + 1] = tag:gsub('"([^"]*)"', function(v) return '"' .. mask_all(v) .. '"' end)
    i = gt + 1
  end
  return table.concat(out)
end

---A finder for mask_markup: the values a masker with these settings would
---hide in a text, as {kind, value} pairs.
---@param cfg? table
---@return fun(text: string): {[1]: string, [2]: string}[]
function M.finder(cfg)
  local found
  local masker = M.masker(cfg, function(kind, value) found[#found + 1] = { kind, value } end)
  return function(text)
    found = {}
    for line in text:gmatch("[^\n]+") do masker(line) end
    return found
  end
end

---A line filter for the host's filter point (novapipe.proc's `filter`).
---@param cfg? table
---@return fun(line: string): string
function M.filter(cfg)
  local mask = M.masker(cfg)
  return function(line) return (mask(line)) end
end

---Masks a text line by line.
---@param text string
---@param cfg? table
---@return string masked
---@return integer count of values masked
function M.mask_text(text, cfg)
  local mask, total = M.masker(cfg), 0
  local out = text:gsub("[^\n]+", function(line)
    local masked, n = mask(line)
    total = total + n
    return masked
  end)
  return out, total
end

return M
