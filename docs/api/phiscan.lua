---@meta novapipe.phiscan
-- LuaLS stubs for the C module novapipe.phiscan (engine/phiscan_lua.c):
-- the PHI scanner that novapipe.phi's masker runs. Pipelines use
-- novapipe.phi; this is what it is built on.

---@class novapipe.phiscan
local phiscan = {}

---@class novapipe.PhiScannerOptions
---@field domains? string[] synthetic domains (and their subdomains), any case
---@field tlds? string[] synthetic top-level domains, any case
---@field leads? string[] the leading literal text of each MRN pattern
---@field always? boolean an MRN pattern has no leading literal: every line needs the Lua policy
---@field policy? string[] the kinds ("ssn", "phone", "email", "dob") with `allow` patterns
---@field mask? string the mask the filter point writes, one `%s` for the kind (default "[PHI:%s]")
---@field mrn? string[] the MRN patterns (Lua patterns): the filter point applies them itself when each is in engine/luapat.c's subset

---A scanner; raises on an unknown option or a malformed one.
---@param opts? novapipe.PhiScannerOptions
---@return novapipe.PhiScanner
function phiscan.new(opts) end

---string.gsub(s, pattern, repl) with a plain replacement, matched by
---engine/luapat.c (the filter point's MRN patterns); nil when the pattern
---is outside its subset (captures, %b, %f, back references).
---@param s string
---@param pattern string
---@param repl string
---@return string|nil result
---@return integer? count
function phiscan.gsub(s, pattern, repl) end

---@class novapipe.PhiScanner
local Scanner = {}

---The values found in a line, nil when none: a flat list of triples
---{start, end, kind, ...}, 1-based and inclusive (line:sub(start, end) is
---the value), in order of position, overlaps resolved. Synthetic values
---are not found. A birth word closing the line makes the first date near
---the start of the next scanned line a date of birth.
---@param line string
---@return (integer|string)[]|nil
function Scanner:scan(line) end

---Whether a whole text (any number of lines) holds nothing the scanner
---finds, no birth or SSN word, and no date of birth pending. MRN patterns
---are not tried here (novapipe.phi's quiet does).
---@param text string
---@return boolean
function Scanner:quiet(text) end

---The date-of-birth carry-over; sets it when `flag` is given.
---@param flag? boolean
---@return boolean
function Scanner:pending(flag) end

---A filter for novapipe.proc's `filter`: callable as filter(line), which
---is fn(line). The process filter point masks each line in C with this
---scanner and calls fn only for the lines the Lua policy must see.
---@param fn fun(line: string): string
---@return novapipe.PhiFilter
function Scanner:filter(fn) end

---@class novapipe.PhiFilter
---@overload fun(line: string): string

return phiscan
