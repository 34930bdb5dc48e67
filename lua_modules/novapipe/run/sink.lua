-- The sink: the one way out of a novapipe run. Every line it prints and
-- every file it writes passes the run's PHI masker; files are written
-- atomically and owner-only (0600, directories 0700), never through a
-- symbolic link novapipe did not make (novapipe.fs refuses them), and
-- recorded for the run's list of reports and its audit entry. Files that a
-- child process wrote for novapipe (JUnit, coverage data and HTML) are
-- adopted: masked, rewritten as new files of the user running novapipe (so
-- a file another user owned is replaced, not chmodded) and recorded. A
-- report directory another user owned is replaced the same way, its
-- entries moved into a new one of ours (fs.own_dir).
--
-- Stages do not hold a sink: they emit events, and reporters, which do,
-- render them. The C output filter (novapipe.proc's `filter`) stays the
-- streaming first pass over child output; it is set from the same masker.
local fs = require "novapipe.fs"
local lfs = require "lfs"
local phi = require "novapipe.phi"
local term = require "novapipe.term"

local M = {}
M.__index = M

-- The host's writers and standard error as they were when the sink was
-- loaded: while a run is under way the guard (novapipe.run.guard) puts
-- masked ones in their place for everything else.
local raw = { atomic_write = fs.atomic_write, append = fs.append, writer = fs.writer, copy = fs.copy }
local stderr = io.stderr

---The unmasked writers, for the few writes whose bytes must stay exact:
---the user's own source that migrate moves and rewrites, migrate's undo
---record, and the audit log's entry (masked before it is hashed). No other
---module uses them; spec/e2e/guard_spec.lua checks that.
M.raw = raw

---@class novapipe.Sink
---@field mask fun(text: string): string the run's masker (identity when PHI masking is off)
---@field written {path: string, what: string}[]

---A sink for a run. `phi` is the configuration's phi section; out and err
---receive finished lines (default: the terminal and standard error).
---@param opts? {phi?: table, out?: fun(line: string), err?: fun(line: string)}
---@return novapipe.Sink
function M.new(opts)
  opts = opts or {}
  local cfg = opts.phi or phi.defaults()
  local self = setmetatable({ written = {}, seen = {}, enabled = cfg.enabled ~= false }, M)
  if self.enabled then
    self.phi = cfg
    local masker = phi.masker(cfg)
    self.mask = function(text) return (masker(text)) end
    self.find = phi.finder(cfg)
  else
    self.mask = function(text) return text end
  end
  self.out_fn = opts.out or term.print
  self.err_fn = opts.err or function(line) stderr:write(line, "\n") end
  return self
end

-- Masks a text that may hold several lines, line by line.
function M:mask_lines(text)
  text = tostring(text)
  if not text:find("\n", 1, true) then return self.mask(text) end
  return (text:gsub("[^\n]+", self.mask))
end

---Prints a line (or lines) on the console, masked.
---@param text string
function M:print(text)
  self.out_fn(self:mask_lines(text))
end

---Writes a line (or lines) on standard error, masked.
---@param text string
function M:error(text)
  self.err_fn(self:mask_lines(text))
end

---Shows the live status line (nil clears it), masked.
---@param text? string
function M:status(text)
  term.status(text and self.mask(text) or nil)
end

---Clears a live terminal for a redraw (novapipe watch before each run);
---elsewhere nothing. Returns whether it cleared.
---@return boolean
function M:clear()
  return term.clear()
end

---Records a file or directory as written by this run (once). `sha256`,
---for a file the sink wrote from memory, is the digest of the bytes it
---wrote (a later write of the same path replaces it); without one, the
---run record and the audit entry hash what is on disk.
---@param path string
---@param what? string
---@param sha256? string
function M:record(path, what, sha256)
  local entry = self.seen[path]
  if entry then
    entry.sha256 = sha256
    return
  end
  entry = { path = path, what = what or "report", sha256 = sha256 }
  self.seen[path] = entry
  self.written[#self.written + 1] = entry
end

-- A path rewritten by other means than a recorded write (appended to,
-- written unrecorded, adopted, or a directory above it adopted) is no
-- longer what its digest says: it is hashed from disk at the end.
local function forget_digests(self, path)
  local under = path .. "/"
  for _, entry in ipairs(self.written) do
    if entry.path == path or entry.path:sub(1, #under) == under then entry.sha256 = nil end
  end
end

---What this run wrote, in order; only what still exists.
---@return {path: string, what: string, sha256?: string}[]
function M:list()
  local out = {}
  for _, r in ipairs(self.written) do
    if lfs.symlinkattributes(r.path, "mode") then out[#out + 1] = r end
  end
  return out
end

---A directory for reports: created 0700 with its missing parents, or
---made ours at 0700 when it exists: tightened when we own it, replaced by
---a new directory holding what it held when another user does (who could
---otherwise open it again). A link is refused.
---@param path string
---@return boolean|nil ok
---@return string? error
function M:dir(path)
  local ok, err = fs.mkdir_p(path, "0700")
  if not ok then return nil, err end
  return fs.own_dir(path, "0700")
end

---Writes a file: masked (unless raw, for bytes that are not text: a
---PHI-free digest), atomically, owner-only, missing parents made 0700;
---recorded unless record is false.
---@param path string
---@param data string
---@param what? string what the file is, for the list of reports
---`raw` is for bytes that are not text (a secret, a digest); `premasked`
---for text whose every value was masked with this sink's mask already (the
---run record, masked value by value as it is built, not line by line again).
---@param opts? {mode?: string, record?: boolean, markup?: boolean, raw?: boolean, premasked?: boolean}
---@return boolean|nil ok
---@return string? error
function M:write(path, data, what, opts)
  opts = opts or {}
  local parent = path:match("^(.*)/[^/]*$")
  if parent and parent ~= "" then
    local ok, err = fs.mkdir_p(parent, "0700")
    if not ok then return nil, err end
  end
  local text = (opts.raw or opts.premasked) and data or opts.markup and self:document()(data)
    or self:mask_lines(data)
  local ok, err = raw.atomic_write(path, text, opts.mode or "0600")
  if not ok then return nil, err end
  if opts.record == false then
    if self.seen[path] then forget_digests(self, path) end
  else
    -- the run record and its copy (.novapipe/last-run.json) are one text,
    -- hashed once
    if text ~= self.last_text then
      -- (without libcrypto, none: the file is hashed from disk at the end,
      -- where the missing library is said)
      local ok, sha = pcall(require("novapipe.digest").sha256, text)
      self.last_text, self.last_sha256 = text, ok and sha or nil
    end
    self:record(path, what, self.last_sha256)
  end
  return true
end

---Appends masked text to a file (created 0600): a step summary, a log.
---@param path string
---@param text string
---@return boolean|nil ok
---@return string? error
function M:append(path, text)
  if self.seen[path] then forget_digests(self, path) end
  return raw.append(path, self:mask_lines(text), "0600")
end

---A masker for one markup document (a JUnit file, an HTML page), with a
---context of its own: a birth word on the console does not make the first
---date of a file a date of birth. Pieces of the document share it, in order.
---@return fun(text: string): string
function M:document()
  if not self.enabled then return function(text) return text end end
  local masker, quiet = phi.masker(self.phi)
  local function mask(text) return (masker(text)) end
  return function(text) return phi.mask_markup(text, mask, self.find, quiet) end
end

local MARKUP = { xml = true, html = true, htm = true, svg = true }
local TEXT = { txt = true, json = true, js = true, css = true, md = true, csv = true, log = true }

-- Rewrites one file a child wrote as a new file of ours (at `dest`, by
-- default in its place), masked as text or markup by its kind, in pieces:
-- never the whole file in memory.
local function adopt_file(self, path, kind, dest)
  local ext = path:match("%.([%w]+)$")
  ext = ext and ext:lower()
  kind = kind or (MARKUP[ext] and "markup") or (TEXT[ext] and "text") or "bytes"
  if not self.enabled and kind ~= "bytes" then kind = "bytes" end
  local f, err = io.open(path, "rb")
  if not f then return nil, err end
  local w, werr = raw.writer(dest or path, "0600")
  if not w then
    f:close()
    return nil, werr
  end
  local carry = ""
  local markup = kind == "markup" and self:document()
  local masker, quiet
  if kind == "text" then masker, quiet = phi.masker(self.phi) end
  local function put(s)
    if s == "" then return true end
    if markup then s = markup(s)
    elseif masker and not quiet(s) then s = s:gsub("[^\n]+", function(line) return (masker(line)) end) end
    return w:write(s)
  end
  local ok, perr = true, nil
  while ok do
    local chunk = f:read(65536)
    if not chunk then break end
    if kind == "bytes" then
      ok, perr = w:write(chunk)
    else
      local buf = carry .. chunk
      -- Cut where no value can straddle: after the last end of a tag or a
      -- line; in a long run without either, after the last space.
      local cut = buf:match(kind == "markup" and ".*()[>\n]" or ".*()\n")
      if not cut and #buf > 1048576 then cut = buf:match(".*()%s") or #buf end
      if cut then
        ok, perr = put(buf:sub(1, cut))
        carry = buf:sub(cut + 1)
      else
        carry = buf
      end
    end
  end
  f:close()
  if ok then ok, perr = put(carry) end
  if not ok then
    w:abort()
    return nil, perr
  end
  return w:commit()
end

---Adopts what a child process wrote for novapipe: a file, or a directory
---and everything in it. Each file is masked (markup by its text and
---attribute values, text line by line; `kind = "bytes"` for binary data
---such as coverage's, which is only rewritten) and replaced by a new file
---of ours at 0600; directories become ours at 0700 (one of another user's
---replaced by a new one holding its entries, as M:dir does). A symbolic
---link anywhere in it is refused. Recorded as written unless record is
---false. With `to`, a file is rewritten there instead (atomically: what
---was at `to` stays whole until the new file replaces it; the child's file
---is left for the caller to remove), and `to` is what is recorded.
---@param path string
---@param what? string
---@param opts? {kind?: "markup"|"text"|"bytes", record?: boolean, to?: string}
---@return boolean|nil ok
---@return string? error
function M:adopt(path, what, opts)
  opts = opts or {}
  local mode = lfs.symlinkattributes(path, "mode")
  if mode == nil then return true end
  forget_digests(self, opts.to or path)
  if mode == "link" then
    return nil, ("refusing the symbolic link '%s' (novapipe did not make it; remove it)"):format(path)
  end
  if mode == "directory" then
    if opts.to then error("sink:adopt: `to` is for a file, not the directory " .. path, 2) end
    -- Directories first, top down, so that the tree is ours (no other
    -- user can add to it) before its files are read; then the files.
    local ok, err = fs.own_dir(path, "0700")
    if not ok then return nil, err end
    for _, pass in ipairs({ "directory", "file" }) do
      local entries, werr = fs.walk(path, { dirs = true })
      if not entries then return nil, werr end
      for _, rel in ipairs(entries) do
        local p = path .. "/" .. rel
        local kind = lfs.symlinkattributes(p, "mode")
        if kind == "link" then
          return nil, ("refusing the symbolic link '%s' (novapipe did not make it; remove it)"):format(p)
        elseif kind == pass and pass == "directory" then
          ok, err = fs.own_dir(p, "0700")
        elseif kind == pass then
          ok, err = adopt_file(self, p, opts.kind)
        end
        if not ok then return nil, err end
      end
    end
  else
    local ok, err = adopt_file(self, path, opts.kind, opts.to)
    if not ok then return nil, err end
  end
  if opts.record ~= false then self:record(opts.to or path, what) end
  return true
end

return M
