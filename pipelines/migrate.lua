-- migrate: move test files into their tiers, as analyze classifies them,
-- checked with pytest before and after, undoable and crash-safe. The
-- options of the team's original migrate_tests.py (--analyze, --execute,
-- --path) and novapipe's own.
local np = require "novapipe"
local errors = require "novapipe._errors"
local lfs = require "lfs"
local migrate = require "novapipe.migrate"
local python = require "novapipe.python"
local term = require "novapipe.term"
local verify = require "novapipe.migrate.verify"

local function plural(n, one, many)
  return ("%d %s"):format(n, n == 1 and one or (many or one .. "s"))
end

-- What an import rewrite changes, for the plan: "line 1: .helpers ->
-- ..helpers_pkg.helpers".
local function describe_edits(list)
  local parts = {}
  local sorted = {}
  for i, e in ipairs(list) do sorted[i] = e end
  table.sort(sorted, function(x, y) return x.first < y.first end)
  for _, e in ipairs(sorted) do parts[#parts + 1] = ("line %d: %s -> %s"):format(e.line, e.old, e.text) end
  return table.concat(parts, "; ")
end

-- The plan as lines, for a section.
local function plan_lines(plan, dry)
  local lines = {}
  local function add(l) lines[#lines + 1] = l end
  for _, m in ipairs(plan.moves) do
    local what = m.category == "helper" and "  (a helper the moved tests import)"
      or m.category == "data" and "  (read through __file__ by the moved tests)" or ""
    add(("  %s -> %s%s"):format(m.from, m.to, what))
  end
  for _, c in ipairs(plan.copies or {}) do
    if c.merged then
      add(("  %s made%s, with fixture%s %s from %s and the imports they use"):format(c.path,
        c.from and (" from a copy of " .. c.from) or "", #c.fixtures == 1 and "" or "s", table.concat(c.fixtures, ", "),
        table.concat(c.merged, ", ")))
    else
      add(("  %s copied to %s (fixtures the moved tests need)"):format(c.from, c.path))
    end
  end
  for _, r in ipairs(plan.rewrites or {}) do
    if r.merged then
      add(("  %s: fixture%s %s merged from %s, with the imports they use"):format(r.path,
        #r.fixtures == 1 and "" or "s", table.concat(r.fixtures, ", "), table.concat(r.merged, ", ")))
    end
    if r.imports then add(("  %s: imports rewritten (%s)"):format(r.path, describe_edits(r.imports))) end
  end
  for _, n in ipairs(plan.notes) do add(term.style("  note: ", "yellow") .. n) end
  for _, st in ipairs(plan.stays) do add(term.style("  stays: ", "yellow") .. st.path .. ": " .. st.why) end
  add(("%s to move, %d staying%s"):format(plural(#plan.moves, "file"), #plan.stays, dry and " (dry run)" or ""))
  return lines
end

local function show_plan(ctx, plan, title)
  ctx.bus:emit("section", title, plan_lines(plan, title:find("dry run", 1, true) ~= nil))
end

-- The stage result when an operation fails midway: the journal keeps the
-- migration, to complete or to undo.
local function half_done(err)
  return { status = "error", reason = ("the migration stopped halfway: %s (--execute completes it, --undo reverts it)")
    :format(err) }
end

local function report(ctx, opts, plan, extra)
  if not opts.output then return end
  local out = { dry_run = not opts.execute, moves = np.json.array(plan.moves), stays = np.json.array(plan.stays),
                notes = np.json.array(plan.notes) }
  for k, v in pairs(extra or {}) do out[k] = v end
  if out.problems then np.json.array(out.problems) end
  local ok, err = ctx.sink:write(opts.output, np.json.pretty(out) .. "\n", "migration plan")
  if not ok then errors.usage("--output %s: %s", opts.output, err) end
end

-- A collection kept in the journal (ids a list, errors file -> line) as
-- verify reads it; an earlier novapipe kept errors as a list of files.
local function collection(saved)
  local c = { ids = {}, errors = {}, code = saved.code or 0 }
  for _, id in ipairs(saved.ids or {}) do c.ids[id] = true end
  for k, v in pairs(saved.errors or {}) do
    if type(k) == "number" then c.errors[v] = "pytest could not collect it" else c.errors[k] = v end
  end
  return c
end

local function saved(c)
  local ids = {}
  for id in pairs(c.ids) do ids[#ids + 1] = id end
  table.sort(ids)
  return { ids = ids, errors = c.errors, code = c.code }
end

return np.pipeline {
  description = "Move test files into their tiers, checked with pytest before and after; undoable, crash-safe",
  options = {
    { "--analyze", "show the plan and change nothing (a dry run)" },
    { "--execute", "carry the plan out (or complete a migration that was interrupted)" },
    { "--undo", "restore the tree as it was before the last migration, byte for byte" },
    { "--path", "the tests directory (default backend/app/tests)", arg = "DIR", path = true },
    { "--layout", "keep sub-paths under the tier (keep) or move files straight into it where no collision arises (flatten)",
      arg = "HOW", choices = { "keep", "flatten" }, default = "keep" },
    { "--unknown-to", "the tier for files analyze calls unknown", arg = "TIER", default = "venv" },
    { "--reclassify", "also move files already in a tier's directory when analyze puts them in another tier" },
    { "--unverified", "move even when pytest cannot collect the tests as they are (the move is then not verified)" },
    { "--no-git", "move with rename even inside a git work tree (default: git mv, so history follows)" },
    { "--verify-run", "also run the moved tests before and after, and roll back when an outcome changed" },
    { "--output", "write the plan and the outcome as JSON", arg = "FILE", path = true },
  },
  -- A dry run (or none of --analyze, --execute, --undo) only reads.
  read_only = function(opts) return not (opts.execute or opts.undo or opts.output) end,
  stages = function(opts, ctx)
    local cfg = ctx.config
    local root = (opts.path or cfg.tests):gsub("/+$", "")
    local journal_path = migrate.UNDO
    if not (opts.analyze or opts.execute or opts.undo) then
      return { np.stage { name = "migrate", run = function()
        ctx.bus:emit("section", nil, { (require("novapipe.pipeline").parser(ctx.def or {}, "migrate"):get_help()) })
        return { status = "failed", reason = "nothing to do: give --analyze (a dry run), --execute or --undo" }
      end } }
    end
    if not opts.undo and not opts.path then
      require("novapipe.run.project").require_tests(cfg, ctx.project)
    elseif not opts.undo and lfs.attributes(root, "mode") ~= "directory" then
      errors.usage("--path %s: no such directory", root)
    end
    if not opts.undo then
      local names = {}
      for _, t in ipairs(cfg.tiers) do
        if t.name == opts.unknown_to then names = nil break end
        names[#names + 1] = t.name
      end
      if names then
        local near = require("novapipe._nearest").nearest(opts.unknown_to, names)
        errors.usage("--unknown-to %s: no such tier%s (the tiers: %s)", opts.unknown_to,
          near and ("; did you mean '" .. near .. "'?") or "", table.concat(names, ", "))
      end
    end
    return { np.stage { name = "migrate", run = function()
      if opts.undo then
        local journal = migrate.read_journal(journal_path)
        if not journal then
          -- a first journal killed as it was written leaves its temporary file
          local ok, err = migrate.remove_journal_temporaries(journal_path)
          if not ok then return { status = "error", reason = err } end
          errors.usage("no migration to undo (%s does not exist)", migrate.journal_of(journal_path))
        end
        local ok, err = migrate.undo_journal(journal_path, journal, ctx.sink)
        if not ok then return { status = "error", reason = ("cannot undo the migration: %s (--undo again once that is fixed)"):format(err) } end
        ctx.bus:emit("section", nil, { ("Undone: %s reverted"):format(plural(#journal.moves, "move")) })
        return { status = "passed", summary = "undone" }
      end
      local plan, perr = migrate.plan(cfg, root, { layout = opts.layout, unknown_to = opts.unknown_to,
                                                   reclassify = opts.reclassify })
      if not plan then return { status = "error", reason = "cannot plan the migration: " .. perr } end
      -- a plain pytest skips a tier through norecursedirs: said when a
      -- migration puts files there (or would)
      local into = {}
      for _, m in ipairs(plan.moves) do
        for _, t in ipairs(cfg.tiers) do
          local dir = root .. "/" .. t.dir:gsub("/+$", "") .. "/"
          if m.to:sub(1, #dir) == dir then into[t.name] = true end
        end
      end
      local skipped = next(into) and require("novapipe.pytest_config").skipped_tiers(cfg, into, root) or nil
      if opts.analyze then
        show_plan(ctx, plan, "Migration plan (dry run: nothing is changed)")
        report(ctx, opts, plan)
        return { status = "passed", summary = ("%s would move"):format(plural(#plan.moves, "file")),
                 notes = skipped and { skipped } or nil }
      end
      local existing = migrate.read_journal(journal_path)
      if existing and existing.status ~= "done" then
        -- A migration was interrupted: complete it, then verify it.
        ctx.bus:emit("section", nil, { "Completing the migration interrupted at " .. migrate.journal_of(journal_path) })
        plan = { moves = existing.moves, stays = {}, notes = {} }
        local ok, err = migrate.apply_journal(journal_path, existing, ctx.sink)
        if not ok then return half_done(err) end
      elseif #plan.moves == 0 then
        show_plan(ctx, plan, "Migration")
        return { status = "passed", summary = "nothing to move" }
      else
        if existing then
          errors.usage("a finished migration's journal is at %s: --undo it, or remove it and %s to start another",
            migrate.journal_of(journal_path), journal_path)
        end
        existing = nil
      end
      local py, pyerr = python.find({ "pytest" }, cfg.python)
      if not py then return { status = "error", reason = pyerr } end
      local journal = existing
      if not journal then
        local before, cerr = verify.collect(py, root)
        if not before then return { status = "error", reason = cerr } end
        -- No claim without proof: a tree pytest cannot collect proves
        -- nothing about a move.
        local unproven = verify.unproven(before, plan.with_tests)
        if unproven and not opts.unverified then
          show_plan(ctx, plan, "Migration plan (not carried out)")
          report(ctx, opts, plan, { refused = true, verified = false, unverified = unproven,
                                    problems = verify.error_lines(before) })
          local errs = verify.error_lines(before)
          return { status = "failed", reason = ("%s, so nothing could verify a move: nothing was moved (fix that first, "
            .. "or give --unverified to move them anyway, unverified)"):format(unproven),
            details = #errs > 1 and errs or nil }
        end
        journal = { version = 1, root = root, status = "planned", moves = plan.moves,
                    ops = migrate.operations(plan, not opts.no_git and migrate.in_git(root)),
                    before = saved(before), unverified = unproven }
        if opts.verify_run then
          local map, files = {}, {}
          for _, m in ipairs(plan.moves) do
            if m.category ~= "helper" and m.category ~= "data" then
              map[m.from] = m.to
              files[#files + 1] = m.from
            end
          end
          local outcomes, oerr = verify.outcomes(py, files, map)
          if not outcomes then return { status = "error", reason = "cannot run the tests before moving them: " .. oerr } end
          journal.outcomes = outcomes
        end
        show_plan(ctx, plan, "Migration")
        local ok, err = migrate.apply_journal(journal_path, journal, ctx.sink)
        if not ok then return half_done(err) end
      end
      local before = collection(journal.before)
      local after, aerr = verify.collect(py, root)
      local problems = after and verify.compare(before, after, journal.moves) or { "cannot collect: " .. tostring(aerr) }
      if #problems == 0 and journal.outcomes then
        local files = {}
        for _, m in ipairs(journal.moves) do
          if m.category ~= "helper" and m.category ~= "data" then files[#files + 1] = m.to end
        end
        local now, oerr = verify.outcomes(py, files)
        problems = now and verify.changed(journal.outcomes, now) or { "cannot run the moved tests: " .. tostring(oerr) }
      end
      if #problems > 0 then
        local ok, err = migrate.undo_journal(journal_path, journal, ctx.sink)
        if not ok then
          return { status = "error", reason = ("pytest does not collect or run the same tests, and the migration cannot be "
            .. "rolled back: %s (--undo once that is fixed)"):format(err), details = problems }
        end
        report(ctx, opts, plan, { rolled_back = true, problems = problems, verified = false })
        return { status = "failed", reason = "the migration was rolled back: pytest does not collect or run the same tests",
                 details = problems }
      end
      journal.status = "done"
      local ok, err = migrate.write_journal(journal_path, journal, ctx.sink)
      if not ok then return { status = "error", reason = err } end
      local notes = {}
      if journal.unverified then
        notes[#notes + 1] = ("the move was not verified (--unverified): before it, %s"):format(journal.unverified)
      end
      if skipped then notes[#notes + 1] = skipped end
      report(ctx, opts, plan, { rolled_back = false, verified = not journal.unverified, unverified = journal.unverified })
      local summary
      if journal.unverified then
        summary = ("%s moved, NOT verified (pytest could not collect the tests before the move); undo with --undo")
          :format(plural(#journal.moves, "file"))
      else
        summary = ("%s moved; pytest collects the same %s before and after%s; undo with --undo")
          :format(plural(#journal.moves, "file"), plural(#journal.before.ids, "test"),
            journal.outcomes and ", with the same outcomes" or "")
      end
      return { status = "passed", summary = summary, notes = #notes > 0 and notes or nil }
    end } }
  end,
}
