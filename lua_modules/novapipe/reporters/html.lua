-- The html reporter: at the end of a run whose ctx.outputs.html names a
-- file (`--html FILE`, or the pipeline's own `html`, as `all` has), the
-- run's record as one self-contained HTML page (novapipe.run.report),
-- written through the run's sink: its text and attribute values masked,
-- atomic, owner-only, recorded. Subscribed after the record reporter, whose
-- record (ctx.record) it renders, and before the console, which names the
-- page at its end (ctx.html_report).
local lfs = require "lfs"
local path = require "novapipe.path"
local record = require "novapipe.run.record"
local time = require "novapipe.time"

local M = {}
M.__index = M

---A reporter, or nil when the run writes no page.
---@param ctx novapipe.Context
function M.new(ctx)
  local file = ctx.outputs and ctx.outputs.html
  if not file or file == "" then return nil end
  return setmetatable({ ctx = ctx, file = file, started = time.wall() }, M)
end

function M:pipeline_start(_, opts)
  self.durations = opts and opts.durations
end

-- A path made absolute from the working directory, normalized.
local function absolute(p, cwd)
  if p:sub(1, 1) ~= "/" then p = cwd .. "/" .. p end
  return path.normalize(p)
end

-- A relative path as a URL path: each byte outside the unreserved ones
-- and "/" percent-encoded.
local function url_path(p)
  return (p:gsub("[^%w%-._~/]", function(c) return ("%%%02X"):format(c:byte()) end))
end

---The link from a page in directory `dir` to a report: relative to it,
---a directory's index.html when it has one (coverage HTML), nil for a
---directory without one.
---@param report_path string
---@param dir string the page's directory, absolute
---@param cwd string
---@return string|nil
function M.href(report_path, dir, cwd)
  local target = absolute(report_path, cwd)
  if lfs.attributes(target, "mode") == "directory" then
    if lfs.attributes(target .. "/index.html", "mode") ~= "file" then return nil end
    target = target .. "/index.html"
  end
  return url_path(path.relative(target, dir))
end

function M:pipeline_end(_, outcome)
  -- (the page's maker, loaded by a run that writes one: most write none)
  local report = require "novapipe.run.report"
  local ctx, sink = self.ctx, self.ctx.sink
  local rec = ctx.record or record.build({ pipeline = ctx.name or "?", args = ctx.args, pytest_args = ctx.pytest_args,
                                           started = self.started, outcome = outcome, reports = sink:list() })
  local cwd = lfs.currentdir()
  local dir = path.dirname(absolute(self.file, cwd))
  local slowest = self.durations
  if slowest == nil or slowest > 0 and slowest < report.SLOWEST then slowest = report.SLOWEST end
  local html = report.html(rec, {
    reports = sink:list(),
    href = function(p) return M.href(p, dir, cwd) end,
    slowest = slowest,
    version = require("novapipe.host").version,
    record_path = ctx.outputs.json or (ctx.outputs.keep_record ~= false and require("novapipe.reporters.record").LAST)
      or nil,
  })
  local ok, err = sink:write(self.file, html, "HTML report", { markup = true })
  if not ok then
    sink:error(("novapipe: the HTML report was not written to %s: %s"):format(self.file, err))
    return
  end
  ctx.html_report = self.file
end

return M
