-- Scores novapipe's analyze against hand-made labels of real projects'
-- test files (labels.json beside this file; README.md says what the labels
-- mean and how to fetch the checkouts).
--   novapipe exec bench/analyze-corpus/score.lua CORPUS_DIR [--project OWNER/NAME]
--       [--labels FILE] [--config NOVAPIPE_LUA] [--quiet]
-- CORPUS_DIR holds one checkout per project, named OWNER+NAME (fetch.sh
-- makes them). For each project, analyze runs in-process from the
-- project's root, as `novapipe run analyze --path TESTS` does there; each
-- labelled file's category and security flag are compared with its label.
-- Files labelled `empty` (no test at all) are scored by category (analyze
-- says `empty` for them) and listed.
local analyze = require "novapipe.analyze"
local config = require "novapipe.config"
local json = require "novapipe.json"
local lfs = require "lfs"
local pytest_config = require "novapipe.pytest_config"

local here = (arg[0]:match("^(.*)/[^/]*$") or ".")
local usage = "usage: novapipe exec bench/analyze-corpus/score.lua CORPUS_DIR [--project OWNER/NAME] "
  .. "[--labels FILE] [--config NOVAPIPE_LUA] [--quiet]"

local opts = { labels = here .. "/labels.json" }
local i = 1
while arg[i] do
  local a = arg[i]
  if a == "--project" or a == "--labels" or a == "--config" then
    opts[a:sub(3)] = arg[i + 1] or error(usage, 0)
    i = i + 2
  elseif a == "--quiet" then
    opts.quiet = true
    i = i + 1
  elseif a == "-h" or a == "--help" then
    print(usage)
    os.exit(0)
  elseif a:sub(1, 1) == "-" or opts.corpus then
    io.stderr:write(usage, "\n")
    os.exit(2)
  else
    opts.corpus = a
    i = i + 1
  end
end
if not opts.corpus then
  io.stderr:write(usage, "\n")
  os.exit(2)
end

local start = lfs.currentdir()
local function absolute(p)
  return p:sub(1, 1) == "/" and p or (start .. "/" .. p)
end
local corpus = absolute(opts.corpus):gsub("/+$", "")
local labels, err = json.read(absolute(opts.labels))
if not labels then
  io.stderr:write("score.lua: ", err, "\n")
  os.exit(2)
end
-- One configuration for every project: the defaults, or a novapipe.lua of
-- your own (to try other indicator lists); never a checkout's own file.
local cfg = opts.config and config.load(absolute(opts.config)) or config.load(corpus .. "/.no-such-novapipe.lua")

local sorted_keys = require("novapipe._tables").sorted_keys

local function pct(n, d)
  return d > 0 and ("%5.1f%%"):format(100 * n / d) or "   - "
end

-- What analyze says of every file under the project's tests directory,
-- run from its root; nil and why when it cannot run.
local function report_of(root, tests)
  if not lfs.chdir(root) then return nil, "cannot enter " .. root end
  local files, ferr = analyze.test_files(tests, pytest_config.python_files())
  local report
  if files then
    local ok, res = pcall(function() return analyze.new(cfg, tests, "."):report(files) end)
    if ok then report = res else ferr = tostring(res) end
  end
  lfs.chdir(start)
  if not report then return nil, ferr end
  return report
end

local totals = { right = 0, scored = 0, sec_right = 0, sec_scored = 0, db_standalone = 0, db = 0, files = 0 }
local rows, mismatches, empties, missing = {}, {}, {}, {}
for _, p in ipairs(labels.projects) do
  if not opts.project or opts.project == p.repo then
    local dir = corpus .. "/" .. p.repo:gsub("/", "+")
    local root = dir .. "/" .. p.root
    if lfs.attributes(dir, "mode") ~= "directory" then
      missing[#missing + 1] = p
    else
      local report, rerr = report_of(root, p.tests)
      local row = { repo = p.repo, right = 0, scored = 0, sec_right = 0, sec_scored = 0, db_standalone = 0, db = 0,
                    files = 0, unlabelled = 0, err = rerr }
      if report then
        for _, f in ipairs(sorted_keys(p.files)) do
          local want = p.files[f]
          local got = report.test_details[f]
          row.files = row.files + 1
          local category = got and got.category or "(not collected)"
          -- the first reason for the category (a security line may come first)
          local reason = "analyze did not collect this file"
          if got then
            reason = got.reasons and got.reasons[1] or "(no reason given)"
            for _, r in ipairs(got.reasons or {}) do
              if r:find(category .. ":", 1, true) == 1 then reason = r break end
            end
          end
          if want.label == "empty" then
            -- analyze has a category for them: scored as any other
            empties[#empties + 1] = { repo = p.repo, file = f, got = category }
            row.scored = row.scored + 1
            if category == "empty" then row.right = row.right + 1 end
          else
            row.scored = row.scored + 1
            if category == want.label then row.right = row.right + 1 end
            if want.label == "integration" then
              row.db = row.db + 1
              if category == "standalone" then row.db_standalone = row.db_standalone + 1 end
            end
            row.sec_scored = row.sec_scored + 1
            local sec = got and got.is_security or false
            if sec == want.security then row.sec_right = row.sec_right + 1 end
            if category ~= want.label or sec ~= want.security then
              local sec_reason
              if sec ~= want.security and got then
                for _, r in ipairs(got.reasons or {}) do
                  if r:find("^security:") then sec_reason = r break end
                end
              end
              mismatches[#mismatches + 1] = {
                repo = p.repo, file = f, want = want.label, got = category, reason = reason,
                want_sec = want.security, got_sec = sec, sec_reason = sec_reason,
              }
            end
          end
        end
        for f in pairs(report.test_details) do
          if not p.files[f] then row.unlabelled = row.unlabelled + 1 end
        end
      end
      rows[#rows + 1] = row
      for _, k in ipairs({ "right", "scored", "sec_right", "sec_scored", "db_standalone", "db", "files" }) do
        totals[k] = totals[k] + row[k]
      end
    end
  end
end

if #rows > 0 then
  print(("%-42s %5s %15s %17s %9s %s"):format("project", "files", "category", "security", "db->stand", "not labelled"))
  for _, r in ipairs(rows) do
    if r.err then
      print(("%-42s analyze failed: %s"):format(r.repo, r.err))
    else
      print(("%-42s %5d %4d/%-3d %s  %4d/%-3d %s %4d/%-4d %d"):format(r.repo, r.files, r.right, r.scored,
        pct(r.right, r.scored), r.sec_right, r.sec_scored, pct(r.sec_right, r.sec_scored), r.db_standalone, r.db,
        r.unlabelled))
    end
  end
  print(("%-42s %5d %4d/%-3d %s  %4d/%-3d %s %4d/%-4d"):format("total", totals.files, totals.right, totals.scored,
    pct(totals.right, totals.scored), totals.sec_right, totals.sec_scored, pct(totals.sec_right, totals.sec_scored),
    totals.db_standalone, totals.db))
  print(("database-backed (integration-labelled) files called standalone: %d of %d"):format(totals.db_standalone,
    totals.db))
end

if not opts.quiet and #mismatches > 0 then
  print(("\nmismatches (%d): label -> analyze, then analyze's first reason"):format(#mismatches))
  for _, m in ipairs(mismatches) do
    local what = {}
    if m.want ~= m.got then what[#what + 1] = ("%s -> %s"):format(m.want, m.got) end
    if m.want_sec ~= m.got_sec then
      what[#what + 1] = m.want_sec and "security missed" or "security wrongly flagged"
    end
    print(("%s %s: %s"):format(m.repo, m.file, table.concat(what, ", ")))
    if m.want ~= m.got then print("    " .. m.reason) end
    if m.sec_reason then print("    " .. m.sec_reason) end
  end
end

if not opts.quiet and #empties > 0 then
  print(("\nfiles with no test (labelled empty): %d"):format(#empties))
  for _, e in ipairs(empties) do print(("%s %s: analyze says %s"):format(e.repo, e.file, e.got)) end
end

if #missing > 0 then
  print(("\n%d project%s not checked out under %s (fetch them: sh %s/fetch.sh %s):"):format(#missing,
    #missing == 1 and "" or "s", corpus, here, opts.corpus))
  for _, p in ipairs(missing) do print(("  %s at %s"):format(p.repo, p.commit)) end
end
if opts.project and #rows == 0 and #missing == 0 then
  io.stderr:write("score.lua: no project ", opts.project, " in ", opts.labels, "\n")
  os.exit(2)
end
