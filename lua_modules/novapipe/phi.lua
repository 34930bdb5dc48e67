-- PHI-like values in text: found and masked. The scanner is C
-- (novapipe.phiscan: one pass over the bytes, fast enough for a test
-- printing at full speed); the policy is here, in Lua: the settings, the
-- MRN patterns and the `allow` patterns. A project changes them under
-- `phi` in novapipe.lua.
--
--   SSN      ddd-dd-dddd with dashes, spaces or any Unicode dash (U+2010..
--            U+2015, U+2212, U+FE58, U+FE63, U+FF0D) between the groups; nine
--            digits in a row (or dotted groups) when an SSN word (SSN, SSNs,
--            social) ends at most 32 bytes before them with no digit
--            between; synthetic when the area is 000, 666 or 900-999
--   phone    (ddd) ddd-dddd, ddd-ddd-dddd, ddd.ddd.dddd, ddd ddd dddd (also
--            with Unicode dashes), +1 or 1 before them, +1 and ten digits,
--            and an extension after them (x123, ext. 123, extension 123,
--            #123); synthetic when the line number is 555-0100 to 555-0199
--   e-mail   name@domain.tld: plus tags, any case, UTF-8 in the local part
--            (jané@gmail.com); synthetic for the configured domains (and
--            their subdomains) and top-level domains
--   DOB      a date starting at most 40 bytes after a birth word (DOB,
--            D.O.B., born, birth, birthday, birthdate, as whole words:
--            date_of_birth and dateOfBirth count, Adobe, stubborn, Osborne,
--            Dobson and unborn do not): 1980-02-03 (or with / or .),
--            2/3/1980, 02-03-1980, 2/3/80, March 3, 1980, Mar. 3rd 1980,
--            3 March 1980, 03-Mar-1980, date(1980, 2, 3) and datetime(1980,
--            2, 3, ...) as Python prints them; a birth word closing a line
--            (nothing but punctuation after it) makes the first date near
--            the start of the next line one
--   MRN      the Lua patterns in `mrn` (default "MRN" and 6 to 10 digits)
--
-- Not found: timestamps (2026-12-01 20:24:54,123, ISO 8601 with T and a
-- zone), durations, version numbers, UUIDs, hex digests, IP addresses and
-- ports, epoch times, memory addresses, and numbers without an SSN word.
--
-- `allow` maps a kind to Lua patterns of values a project makes synthetic
-- by its own convention (allow = { mrn = { "^MRN%-0" } }): kept visible.
local phiscan = require "novapipe.phiscan"

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

-- The plain text every match of a Lua pattern starts with, or nil when
-- there is none of two characters or more: an anchor goes, and a last
-- character made optional by the quantifier after it.
local function lead_of(pattern)
  local loose = pattern:gsub("^%^", "")
  local lead, after = loose:match("^([%w_ :]*)(.?)")
  if after == "?" or after == "*" or after == "-" then lead = lead:sub(1, -2) end
  return #lead >= 2 and lead or nil
end

---A masker for the given settings: mask(line) -> line with every PHI-like
---value replaced by [PHI:kind], and how many were replaced. on_find, when
---given, hears of each value found: on_find(kind, value). A line that ends
---with a birth word and no date ("DOB:") makes the first date of the next
---line a date of birth: the masker remembers it between calls.
---
---The second function returned, quiet(text), says that a whole text (of
---any number of lines) holds nothing this masker would hide, so masking it
---would return it unchanged: no value the scanner finds, no birth or SSN
---word, no MRN pattern's leading text and no date of birth pending. It
---errs only towards false, and is one scan of the text in C.
---
---The third value is the masker's scanner (novapipe.phiscan), which holds
---the date-of-birth carry-over; M.filter makes the process filter point
---run it in C.
---@param cfg? table see M.defaults
---@param on_find? fun(kind: string, value: string)
---@return fun(line: string): string, integer mask
---@return fun(text: string): boolean quiet
---@return novapipe.PhiScanner scanner
function M.masker(cfg, on_find)
  cfg = cfg or M.defaults()
  local mrn = cfg.mrn or {}
  local allow = cfg.allow or {}
  local leads, always = {}, false
  for _, p in ipairs(mrn) do
    local lead = lead_of(p)
    if lead then leads[#leads + 1] = lead else always = true end
  end
  local policy = {}
  for kind, list in pairs(allow) do
    if next(list) ~= nil then policy[#policy + 1] = kind end
  end
  -- The filter point applies the MRN patterns itself unless an allow
  -- list for them is Lua's to check.
  local scanner = phiscan.new({ domains = cfg.synthetic_domains or {}, tlds = cfg.synthetic_tlds or {},
                                leads = leads, always = always, policy = policy, mask = M.MASK,
                                mrn = not (allow.mrn and next(allow.mrn)) and mrn or nil })
  local function allowed(kind, value)
    local list = allow[kind]
    if not list then return false end
    for _, p in ipairs(list) do
      if value:find(p) then return true end
    end
    return false
  end
  local function mrn_here(line)
    if always then return true end
    for _, lead in ipairs(leads) do
      if line:find(lead, 1, true) then return true end
    end
    return false
  end
  -- For quiet: the MRN patterns unanchored (a line's start or end is not
  -- the text's), tried only where their leading text is.
  local mrn_loose = {}
  for i, p in ipairs(mrn) do
    mrn_loose[i] = { (p:gsub("^%^", ""):gsub("([^%%])%$$", "%1")), lead_of(p) }
  end
  local function quiet(text)
    if not scanner:quiet(text) then return false end
    for _, m in ipairs(mrn_loose) do
      if not m[2] or text:find(m[2], 1, true) then
        local ok, at = pcall(string.find, text, m[1])
        if not ok or at then return false end
      end
    end
    return true
  end
  -- The mask for a value, or nil (keep it) when the project allows it;
  -- `count` is the current call's.
  local count
  local function hide(kind, value)
    if allowed(kind, value) then return nil end
    count = count + 1
    if on_find then on_find(kind, value) end
    return M.MASK:format(kind)
  end
  local function hide_mrn(...) return hide("mrn", (...)) end
  return function(line)
    local n, outer = line, count
    count = 0
    local hits = scanner:scan(line)
    if hits then
      local out, at = {}, 1
      for i = 1, #hits, 3 do
        local s, e = hits[i], hits[i + 1]
        local m = hide(hits[i + 2], line:sub(s, e))
        if m then
          out[#out + 1] = line:sub(at, s - 1)
          out[#out + 1] = m
          at = e + 1
        end
      end
      if at > 1 then
        out[#out + 1] = line:sub(at)
        n = table.concat(out)
      end
    end
    if #mrn > 0 and mrn_here(n) then
      for _, p in ipairs(mrn) do
        n = n:gsub(p, hide_mrn)
      end
    end
    local c = count
    count = outer
    return n, c
  end, quiet, scanner
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
  -- Only a date of birth and an SSN without separators read context
  -- beyond their value (the word before them): the finder runs where such
  -- a word may be.
  local lower = find and text:lower()
  if find and (lower:find("dob", 1, true) or lower:find("born", 1, true) or lower:find("birth", 1, true)
    or lower:find("ssn", 1, true) or lower:find("social", 1, true)) then
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

---A line filter for the host's filter point (novapipe.proc's `filter`):
---callable as filter(line) -> masked line; the filter point runs its
---scanner in C on each line and calls the masker only for the lines it
---may change, so the output is the masker's.
---@param cfg? table
---@return novapipe.PhiFilter
function M.filter(cfg)
  local mask, _, scanner = M.masker(cfg)
  return scanner:filter(function(line) return (mask(line)) end)
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
