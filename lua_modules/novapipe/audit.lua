-- The audit log: one JSON line per pipeline run (time, user, host,
-- pipeline, arguments, git commit, outcome, the sha256 of every report
-- written), each chained to the one before by its hash, appended under a
-- file lock so parallel runs never interleave. A head file beside the log
-- records the last entry, so a removed tail is found too.
--
-- A line is  {"seq":N,...,"prev":"<hash of entry N-1>","hash":"<hash>"}
-- where <hash> is the sha256 of the line with its `,"hash":"..."` part
-- taken out. The first entry's prev is 64 zeros.
local cjson = require "cjson"
local digest = require "novapipe.digest"
local fs = require "novapipe.fs"
local lfs = require "lfs"
-- The entry is masked before it is hashed, so the log is written exact.
local raw = require("novapipe.run.sink").raw

local M = {}

M.GENESIS = string.rep("0", 64)

local FIELDS = { "seq", "time", "user", "host", "pipeline", "args", "cwd", "commit", "outcome", "reports", "prev" }

local json = require "novapipe.json"

local dirname = require("novapipe.path").dirname

-- The entry as one line, its fields in a fixed order.
local function encode(entry)
  local parts = {}
  for _, k in ipairs(FIELDS) do
    local v = entry[k]
    local text
    if v == nil then text = "null"
    elseif type(v) == "table" and next(v) == nil then text = "[]" -- cjson would write {}
    else text = json.encode_plain(v) end
    parts[#parts + 1] = json.encode_plain(k) .. ":" .. text
  end
  local body = "{" .. table.concat(parts, ",") .. "}"
  local hash = digest.sha256(body)
  return body:sub(1, -2) .. ',"hash":"' .. hash .. '"}', hash
end

-- Splits a line into the body that was hashed and the hash it claims.
local function split(line)
  local body, hash = line:match('^(.*),"hash":"(%x+)"}$')
  if not body or #hash ~= 64 then return nil end
  return body .. "}", hash
end

---sha256 of a report: a file's bytes, or for a directory the sha256 of its
---listing in `sha256sum` form ("<sha256>  <relative path>\n", sorted).
---@return string|nil hash
---@return string? error
function M.hash_report(path)
  local mode = lfs.attributes(path, "mode")
  if mode == "file" then return digest.sha256_file(path) end
  if mode ~= "directory" then return nil, path .. ": not found" end
  local lines = {}
  for _, rel in ipairs(fs.walk(path) or {}) do
    local h = digest.sha256_file(path .. "/" .. rel)
    if h then lines[#lines + 1] = h .. "  " .. rel .. "\n" end
  end
  return digest.sha256(table.concat(lines))
end

---The commit checked out in the repository holding the working directory,
---read from .git itself (HEAD, the ref, packed-refs): no process, so it
---works after Ctrl-C too. nil outside a repository.
---@return string|nil
function M.git_commit()
  local dir = lfs.currentdir()
  local gitdir
  while dir do
    local mode = lfs.attributes(dir .. "/.git", "mode")
    if mode == "directory" then
      gitdir = dir .. "/.git"
      break
    elseif mode == "file" then -- a worktree or submodule: "gitdir: PATH"
      local target = (fs.read(dir .. "/.git") or ""):match("^gitdir:%s*(.-)%s*$")
      if target then gitdir = target:find("^/") and target or (dir .. "/" .. target) end
      break
    end
    dir = dir:match("^(.*)/[^/]*$")
    if dir == "" then dir = nil end
  end
  if not gitdir then return nil end
  local head = (fs.read(gitdir .. "/HEAD") or ""):match("^%s*(.-)%s*$")
  if head:match("^%x+$") then return head end
  local ref = head:match("^ref:%s*(%S+)$")
  if not ref then return nil end
  -- a worktree keeps its refs in the main repository
  local common = (fs.read(gitdir .. "/commondir") or ""):match("^%s*(.-)%s*$")
  local dirs = { gitdir }
  if common ~= "" then dirs[#dirs + 1] = common:find("^/") and common or (gitdir .. "/" .. common) end
  for _, d in ipairs(dirs) do
    local hash = (fs.read(d .. "/" .. ref) or ""):match("^(%x+)")
    if hash then return hash end
    for line in (fs.read(d .. "/packed-refs") or ""):gmatch("[^\n]+") do
      local h, name = line:match("^(%x+) (%S+)$")
      if name == ref then return h end
    end
  end
  return nil -- a branch with no commit yet
end

local function iso_time()
  return os.date("!%Y-%m-%dT%H:%M:%SZ")
end

-- The head file's seq and hash: nil when there is no head file, false
-- when it is damaged.
local function read_head(log)
  local text = fs.read(log .. ".head")
  if not text then return nil end
  local ok, h = pcall(cjson.decode, text)
  local seq = ok and type(h) == "table" and math.tointeger(h.seq)
  if not seq then return false end
  return seq, h.hash
end

-- The log's last entry: its seq and hash; 0 and GENESIS for an empty log.
local function last_line(text)
  if not text or text == "" then return 0, M.GENESIS end
  -- the last line, found from the end (a pattern anchored at $ would try
  -- every position of the log)
  local stop = text:byte(-1) == 10 and #text - 1 or #text
  local i = stop
  while i > 0 and text:byte(i) ~= 10 do i = i - 1 end
  local last = text:sub(i + 1, stop)
  local _, hash = split(last or "")
  local ok, e = pcall(cjson.decode, last or "")
  if hash and ok and type(e) == "table" and math.tointeger(e.seq) then return math.tointeger(e.seq), hash end
  return nil
end

-- The end of the log, enough of it to hold its last line whole (nil when
-- there is no log, or no file to read: appending to it says why): the log
-- grows with every run, its last entry does not. Or nil and the error that
-- stopped the reading.
local function log_end(log)
  if lfs.attributes(log, "mode") ~= "file" then return nil end
  local f = io.open(log, "rb")
  if not f then return nil end
  local size = f:seek("end") or 0
  local piece = 65536
  while true do
    local from = piece >= size and 0 or size - piece
    f:seek("set", from)
    local text, err = f:read("a")
    if not text then
      f:close()
      return nil, ("read %s: %s"):format(log, err or "failed")
    end
    local stop = text:byte(-1) == 10 and #text - 1 or #text
    local newline = text:find("\n", 1, true)
    if from == 0 or (newline and newline < stop) then
      f:close()
      return text
    end
    piece = piece * 4
  end
end

-- The last entry's seq and hash, where the log's last line and the head
-- file agree. A head file that is missing (for a log that has entries),
-- damaged or at odds with the log is never rebuilt: the run says so, and
-- only `novapipe audit init` starts a new chain.
local function last_of(log)
  local hseq, hhash = read_head(log)
  local text, rerr = log_end(log)
  if rerr then return nil, rerr end
  local seq, hash = last_line(text)
  local advice = "run 'novapipe audit verify' to see what changed; 'novapipe audit init' starts a new chain"
  if not seq then
    return nil, ("%s: its last line is not an audit entry; %s"):format(log, advice)
  end
  if hseq == nil then
    if seq == 0 then return 0, M.GENESIS end
    return nil, ("%s.head is missing, so the end of the log cannot be checked; %s"):format(log, advice)
  end
  if not hseq or type(hhash) ~= "string" then return nil, ("%s.head is damaged; %s"):format(log, advice) end
  if hseq ~= seq or hhash ~= hash then
    return nil, ("%s.head records entry %d but the log ends at entry %d (or with another hash); %s")
      :format(log, hseq, seq, advice)
  end
  return seq, hash
end

---Makes the log's directory (0700). novapipe's own directory (.novapipe,
---the default's) is also made ours at 0700 when it exists: tightened when
---wider open, replaced by a new one holding its entries when another user
---owns it (fs.own_dir); a directory of the project's own that the log was
---put in is left as it is.
---@param log string
---@return boolean|nil ok
---@return string? error
function M.prepare_dir(log)
  local dir = dirname(log)
  local ok, err = fs.mkdir_p(dir, "0700")
  if not ok then return nil, err end
  if dir:match("^(.-/?)%.novapipe$") then return fs.own_dir(dir, "0700") end
  return true
end

-- Every string in v masked (keys stay: they are the format's own).
local function masked(v, mask)
  if type(v) == "string" then return (mask(v)) end
  if type(v) ~= "table" then return v end
  local out = {}
  for k, x in pairs(v) do out[k] = masked(x, mask) end
  return setmetatable(out, getmetatable(v))
end

---Appends one entry. Returns the entry, or nil and an error. With
---info.mask (the run's masker), every text of the entry passes it: the
---pipeline and arguments, the working directory, user and host, report
---paths and stage names.
---@param log string the log's path
---@param info {pipeline: string, args: string[], outcome: table, reports?: {path: string, sha256?: string}[], mask?: fun(s: string): string}
---@return table|nil entry
---@return string? error
function M.append(log, info)
  local ok, err = M.prepare_dir(log)
  if not ok then return nil, err end
  local mask = info.mask or function(text) return text end
  local reports = {}
  for _, r in ipairs(info.reports or {}) do
    -- the digest of what the sink wrote, when it wrote it from memory
    local h = r.sha256 or M.hash_report(r.path)
    if h then reports[#reports + 1] = { path = mask(r.path), sha256 = h } end
  end
  local self = require("novapipe.proc").self()
  local entry = {
    time = iso_time(), user = mask(self.user), host = mask(self.host), pipeline = mask(info.pipeline),
    args = masked(info.args or {}, mask), cwd = mask(lfs.currentdir()), commit = M.git_commit(),
    outcome = masked(info.outcome, mask), reports = reports,
  }
  local lock <close>, lerr = fs.lock(log .. ".lock")
  if not lock then return nil, lerr end
  for _, path in ipairs({ log, log .. ".head" }) do
    if lfs.symlinkattributes(path, "mode") == "link" then
      return nil, ("append to '%s': refusing to write through the symbolic link '%s' (novapipe did not make it; "
        .. "remove it)"):format(log, path)
    end
  end
  local seq, prev = last_of(log)
  if not seq then return nil, prev end
  entry.seq, entry.prev = seq + 1, prev
  local line, hash = encode(entry)
  ok, err = raw.append(log, line .. "\n", "0600")
  if not ok then return nil, err end
  ok, err = raw.atomic_write(log .. ".head", json.encode_plain({ seq = entry.seq, hash = hash }) .. "\n", "0600")
  if not ok then return nil, err end
  entry.hash = hash
  return entry
end

---Starts a new chain: an existing log and its head are kept beside it as
---<log>.<time>.old and <log>.<time>.old.head, and the new log's first
---entry records the start (pipeline "audit init").
---@param log string
---@return string|nil kept where the old log went ("" when there was none)
---@return string? error
function M.init(log)
  local ok, err = M.prepare_dir(log)
  if not ok then return nil, err end
  local lock <close>, lerr = fs.lock(log .. ".lock")
  if not lock then return nil, lerr end
  local kept = ""
  if lfs.symlinkattributes(log, "mode") then
    kept = ("%s.%s.old"):format(log, os.date("!%Y%m%dT%H%M%SZ"))
    ok, err = os.rename(log, kept)
    if not ok then return nil, err end
    if lfs.symlinkattributes(log .. ".head", "mode") then os.rename(log .. ".head", kept .. ".head") end
  end
  os.remove(log .. ".head")
  lock:unlock()
  local entry, aerr = M.append(log, { pipeline = "audit init", args = {},
    outcome = { exit = 0, status = "passed", stages = {}, kept = kept } })
  if not entry then return nil, aerr end
  return kept ~= "" and kept or "(none)"
end

---Checks a log. Returns the number of entries and the problems found, each
---one line naming the entry and the line it is on.
---@param log string
---@return integer|nil entries
---@return string[]|string problems, or the error that stopped the check
---@return string? head the last entry's hash (keep it elsewhere to detect a rewritten chain)
function M.verify(log)
  local text, err = fs.read(log)
  if not text then return nil, err end
  local problems = {}
  local function problem(fmt, ...) problems[#problems + 1] = fmt:format(...) end
  local entries = {}
  local n = 0
  for line in text:gmatch("([^\n]*)\n") do
    n = n + 1
    local body, hash = split(line)
    local ok, e = pcall(cjson.decode, body or "")
    if not body or not ok or type(e) ~= "table" or not math.tointeger(e.seq) or type(e.prev) ~= "string" then
      problem("line %d: not an audit entry (inserted or damaged)", n)
    else
      entries[#entries + 1] = { line = n, seq = math.tointeger(e.seq), prev = e.prev, hash = hash, edited = digest.sha256(body) ~= hash }
    end
  end
  if text ~= "" and text:sub(-1) ~= "\n" then problem("line %d: cut short (no end of line)", n + 1) end
  local later = {}
  for _, e in ipairs(entries) do later[e.seq] = (later[e.seq] or 0) + 1 end
  local seen = {}
  local last_seq, last_hash = 0, M.GENESIS
  for _, e in ipairs(entries) do
    later[e.seq] = later[e.seq] - 1
    if e.edited then
      problem("line %d: entry %d was edited: its content does not match its hash", e.line, e.seq)
    end
    if seen[e.seq] then
      problem("line %d: entry %d appears a second time: an entry was inserted or copied", e.line, e.seq)
    elseif e.seq < last_seq then
      problem("line %d: entry %d comes after entry %d: entries were reordered", e.line, e.seq, last_seq)
    elseif e.seq > last_seq + 1 then
      local missing_later = false
      for s = last_seq + 1, e.seq - 1 do
        if (later[s] or 0) > 0 then missing_later = true end
      end
      if missing_later then
        problem("line %d: entry %d comes before entry %d: entries were reordered", e.line, e.seq, last_seq + 1)
      elseif e.seq == last_seq + 2 then
        problem("line %d: entry %d is missing before entry %d: it was deleted", e.line, last_seq + 1, e.seq)
      else
        problem("line %d: entries %d to %d are missing before entry %d: they were deleted",
          e.line, last_seq + 1, e.seq - 1, e.seq)
      end
    elseif e.prev ~= last_hash then
      problem("line %d: entry %d does not follow entry %d: entry %d was changed and re-hashed, or entry %d was inserted",
        e.line, e.seq, last_seq, last_seq, e.seq)
    end
    seen[e.seq] = true
    if e.seq > last_seq then last_seq, last_hash = e.seq, e.hash end
  end
  local hseq, hhash = read_head(log)
  if hseq ~= nil then
    if not hseq then
      problem("%s.head: damaged", log)
    elseif hseq > last_seq then
      problem(hseq == last_seq + 1 and "end of log: entry %d was deleted (the head file records %d entries)"
        or "end of log: entries %d to %d were deleted", last_seq + 1, hseq)
    elseif hseq < last_seq then
      problem("line %d: entries after %d were added behind novapipe's back (the head file records %d entries)",
        n, hseq, hseq)
    elseif hhash ~= last_hash then
      problem("line %d: entry %d, the last, was replaced (the head file records another hash)", n, last_seq)
    end
  elseif #entries > 0 then
    problem("%s.head: missing: the end of the log cannot be checked", log)
  end
  return #entries, problems, last_hash
end

return M
