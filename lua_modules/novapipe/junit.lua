-- Reading pytest's JUnit XML with LuaExpat: exact counts of every outcome.
--
-- How pytest (7.x) records outcomes, and how they are counted here:
--   <failure>                                 failed
--   <error>                                   errors (setup/teardown errors,
--                                             collection failures, internal errors)
--   <skipped type="pytest.xfail">             xfailed
--   <skipped> "xfail-marked test passes unexpectedly"
--                                             failed (a strict XPASS; pytest counts it failed)
--   <skipped> (other)                         skipped
--   property novapipe_outcome=xpassed         xpassed (set by novapipe's pytest plugin)
--   <flakyFailure>/<flakyError>, no <failure> flaky (passed on a rerun; the
--                                             earlier attempts, as Maven Surefire
--                                             writes them, by novapipe's plugin)
--   <rerunFailure>/<rerunError> + <failure>   failed (once: the reruns are attempts)
--   nothing of the above                      passed
-- LuaExpat is loaded on the first read: reporters use this module's
-- counting helpers in runs that parse no XML.

local M = {}

---@class novapipe.JUnitCounts
---@field tests integer
---@field passed integer
---@field failed integer
---@field errors integer
---@field skipped integer
---@field xfailed integer
---@field xpassed integer
---@field flaky integer passed only on a rerun (--reruns)
---@field quarantined integer failed or errored, but quarantined in novapipe.lua (never in the JUnit XML's own counts)

---@class novapipe.JUnitProblem
---@field id string classname::name
---@field outcome "failed"|"errors"
---@field message string
---@field file? string
---@field line? integer

---@return novapipe.JUnitCounts
function M.zero()
  return { tests = 0, passed = 0, failed = 0, errors = 0, skipped = 0, xfailed = 0, xpassed = 0, flaky = 0,
           quarantined = 0 }
end

M.KINDS = { "passed", "failed", "errors", "skipped", "xfailed", "xpassed", "flaky", "quarantined" }

local STRICT_XPASS = "xfail-marked test passes unexpectedly"

local function classify(case)
  if case.error then return "errors" end
  if case.failure then return "failed" end
  if case.skipped then
    if case.skipped.type == "pytest.xfail" then return "xfailed" end
    if case.skipped.message == STRICT_XPASS then return "failed" end
    return "skipped"
  end
  if case.props.novapipe_outcome == "xpassed" then return "xpassed" end
  if case.flaky then return "flaky" end
  return "passed"
end

---Parses a JUnit XML file as pytest writes it. With opts.cases, also
---lists every testcase as {file, classname, name, outcome, properties},
---properties being the testcase's {name, value} pairs in order.
---@param path string
---@param opts? {cases?: boolean}
---@return {counts: novapipe.JUnitCounts, problems: novapipe.JUnitProblem[], collection_errors: string[], cases?: table[]}|nil
---@return string? error "path:line: message" when the file is unreadable or not XML
function M.read(path, opts)
  local f, err = io.open(path, "rb")
  if not f then return nil, err end
  local counts, problems, collection, seen = M.zero(), {}, {}, {}
  local cases = opts and opts.cases and {} or nil
  local case
  local parser = require("lxp").new({
    StartElement = function(_, name, attrs)
      if name == "testcase" then
        case = { attrs = attrs, props = {}, plist = {} }
      elseif case then
        if name == "failure" or name == "error" or name == "skipped" then
          case[name] = case[name] or { type = attrs.type, message = attrs.message or "" }
        elseif name == "flakyFailure" or name == "flakyError" then
          case.flaky = true
        elseif name == "property" and attrs.name then
          case.props[attrs.name] = attrs.value
          case.plist[#case.plist + 1] = { name = attrs.name, value = attrs.value }
        end
      end
    end,
    EndElement = function(_, name)
      if name == "testcase" and case then
        local kind = classify(case)
        counts[kind] = counts[kind] + 1
        counts.tests = counts.tests + 1
        -- A call that passed and a teardown that errored: one testcase with
        -- an <error>, where pytest's own summary counts a pass and an error
        -- (as novapipe's events do).
        -- (A call that failed gets a testcase of its own for the
        -- teardown's error: that one adds no pass.)
        local a = case.attrs
        local id = (a.classname and a.classname ~= "" and (a.classname .. "::") or "") .. (a.name or "?")
        if kind == "errors" and not case.failure and not case.skipped and not seen[id]
            and (case.error.message or ""):find("^failed on teardown") then
          counts.passed = counts.passed + 1
          counts.tests = counts.tests + 1
        end
        seen[id] = true
        if cases then
          cases[#cases + 1] = { file = a.file, classname = a.classname, name = a.name, outcome = kind,
                                properties = case.plist }
        end
        if kind == "failed" or kind == "errors" then
          local detail = case.error or case.failure or case.skipped
          problems[#problems + 1] = { id = id, outcome = kind, message = detail.message,
                                      file = a.file, line = tonumber(a.line) }
          if case.error and case.error.message == "collection failure" then
            collection[#collection + 1] = a.name or id
          end
        end
        case = nil
      end
    end,
  })
  local ok, perr, line = true, nil, nil
  while true do
    local chunk = f:read(65536)
    if not chunk then break end
    ok, perr, line = parser:parse(chunk)
    if not ok then break end
  end
  if ok then ok, perr, line = parser:parse() end
  -- LuaExpat's close raises on a document that did not end well.
  pcall(parser.close, parser)
  f:close()
  if not ok then
    return nil, ("%s:%s: not valid JUnit XML: %s"):format(path, tostring(line or "?"), tostring(perr))
  end
  return { counts = counts, problems = problems, collection_errors = collection, cases = cases }
end

---"3 passed, 1 failed" from counts (kinds that are not zero), "no tests"
---when there are none: how reporters say counts.
---@param counts novapipe.JUnitCounts
---@return string
function M.describe(counts)
  local parts = {}
  for _, k in ipairs(M.KINDS) do
    local n = counts[k] or 0
    if n > 0 then parts[#parts + 1] = ("%d %s"):format(n, (n == 1 and k == "errors") and "error" or k) end
  end
  return #parts > 0 and table.concat(parts, ", ") or "no tests"
end

---Adds counts b into a.
---@param a novapipe.JUnitCounts
---@param b novapipe.JUnitCounts
function M.add(a, b)
  for k, v in pairs(b) do a[k] = (a[k] or 0) + v end
  return a
end

return M
