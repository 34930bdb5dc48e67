-- The nearest known name to a mistyped one, for "did you mean": options on
-- the command line, settings in novapipe.lua, pipelines, tiers. One edit
-- distance for all of them (optimal string alignment: an insertion, a
-- deletion, a substitution or a swap of two neighbours each cost 1, so
-- "--fitler" is 1 from "--filter").
local M = {}

---The edit distance between a and b (optimal string alignment).
---@param a string
---@param b string
---@return integer
function M.distance(a, b)
  local la, lb = #a, #b
  if la == 0 then return lb end
  if lb == 0 then return la end
  local prev2, prev, cur = {}, {}, {}
  for j = 0, lb do prev[j] = j end
  for i = 1, la do
    cur = { [0] = i }
    local ca = a:byte(i)
    for j = 1, lb do
      local cb = b:byte(j)
      local cost = ca == cb and 0 or 1
      local d = math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost)
      if i > 1 and j > 1 and ca == b:byte(j - 1) and a:byte(i - 1) == cb then
        d = math.min(d, prev2[j - 2] + 1)
      end
      cur[j] = d
    end
    prev2, prev = prev, cur
  end
  return prev[lb]
end

-- The part of a name that is compared: without its leading dashes.
local function bare(name)
  return (name:gsub("^%-+", ""))
end

-- Names of the same kind as word: long options for a long option, words
-- for a word.
local function same_kind(word, name)
  local dashes, ndashes = #word:match("^%-*"), #name:match("^%-*")
  return (dashes > 0) == (ndashes > 0) and (dashes < 2) == (ndashes < 2)
end

---The one name in `names` nearest to `word`, or nil when none is near
---enough or two are equally near. Near enough: a distance of at most 1,
---or 2 for words of 6 characters or more (not counting dashes); or the one
---name that starts with a word of at least 3 characters. A short option
---("-x") is never matched by spelling: one letter is 1 from every other.
---@param word string
---@param names string[]
---@return string|nil
function M.nearest(word, names)
  if word:match("^%-[^-]$") then return nil end
  local w = bare(word)
  if #w == 0 then return nil end
  local limit = #w >= 6 and 2 or 1
  local best, best_d, tie = nil, math.huge, false
  local prefixed = {}
  for _, name in ipairs(names) do
    if name ~= word and same_kind(word, name) then
      local n = bare(name)
      local d = M.distance(w, n)
      if d < best_d then best, best_d, tie = name, d, false
      elseif d == best_d and name ~= best then tie = true end
      if #w >= 3 and n:sub(1, #w) == w then prefixed[#prefixed + 1] = name end
    end
  end
  if best and best_d <= limit and not tie then return best end
  if #prefixed == 1 then return prefixed[1] end
  return nil
end

---"; did you mean 'NAME'?" for the name nearest to word, else "".
---@param word string
---@param names string[]
---@return string
function M.did_you_mean(word, names)
  local n = M.nearest(word, names)
  return n and ("; did you mean '%s'?"):format(n) or ""
end

---Rewrites an error from argparse as one line: argparse's own guess (a
---second line, "Did you mean one of these: '-h' '-p' '-v'?", any name one
---letter off) is dropped and, for an unknown option or command, the
---nearest of `names` suggested instead. `meanings` maps a word whose
---meaning is clear though its spelling is not (pytest's "-x") to the name
---and why ({ ["-x"] = { "--failfast", "pytest's -x" } }).
---@param msg string
---@param names string[]
---@param meanings? table<string, {[1]: string, [2]: string}>
---@return string
function M.argparse_error(msg, names, meanings)
  msg = msg:gsub("\n.*$", "")
  local word = msg:match("^unknown option '(.-)'$") or msg:match("^unknown command '(.-)'$")
  if not word then return msg end
  local meant = meanings and meanings[word]
  if meant then
    for _, n in ipairs(names) do
      if n == meant[1] then return ("%s; did you mean '%s' (%s)?"):format(msg, meant[1], meant[2]) end
    end
  end
  return msg .. M.did_you_mean(word, names)
end

return M
