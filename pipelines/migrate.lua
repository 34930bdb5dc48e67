-- migrate: move test files into their tiers, as analyze classifies them,
-- verified, undoable and crash-safe. The options of the team's original
-- migrate_tests.py (--analyze, --execute, --path) and novapipe's own.
local np = require "novapipe"
local errors = require "novapipe._errors"
local lfs = require "lfs"
local migrate = require "novapipe.migrate"
local python = require "novapipe.python"
local term = require "novapipe.term"

-- The plan as a section of lines for the reporters.
local function show_plan(ctx, plan, dry)
  local lines = {}
  local function add(l) lines[#lines + 1] = l end
  for _, m in ipairs(plan.moves) do add(("  %s -> %s"):format(m.from, m.to)) end
  for _, c in ipairs(plan.copies or {}) do add(("  %s copied to %s (fixtures the moved tests need)"):format(c.from, c.path)) end
  for _, r in ipairs(plan.rewrites or {}) do add(("  %s: relative imports rewritten to resolve from there"):format(r.path)) end
  for _, n in ipairs(plan.notes) do add(term.style("  note: ", "yellow") .. n) end
  for _, st in ipairs(plan.stays) do add(term.style("  stays: ", "yellow") .. st.path .. ": " .. st.why) end
  add(("%d files to move, %d staying%s"):format(#plan.moves, #plan.stays, dry and " (dry run)" or ""))
  ctx.bus:emit("section", dry and "Migration plan (dry run: nothing is changed)" or "Migration", lines)
end

-- The stage result when an operation fails midway: the journal keeps the
-- migration, to complete or to undo.
local function half_done(err)
  return { status = "error", reason = ("the migration stopped halfway: %s (--execute completes it, --undo reverts it)")
    :format(err) }
end

local function report(ctx, opts, plan, extra)
  if not opts.output then return end
  local out = { dry_run = not opts.execute, moves = plan.moves, stays = plan.stays, notes = plan.notes }
  for k, v in pairs(extra or {}) do out[k] = v end
  local ok, err = ctx.sink:write(opts.output, np.json.pretty(out) .. "\n", "migration plan")
  if not ok then errors.usage("--output %s: %s", opts.output, err) end
end

return np.pipeline {
  description = "Move test files into their tiers: verified by pytest, undoable, crash-safe",
  options = {
    { "--analyze", "show the plan and change nothing (a dry run)" },
    { "--execute", "carry the plan out (or complete a migration that was interrupted)" },
    { "--undo", "restore the tree as it was before the last migration, byte for byte" },
    { "--path", "the tests directory (default backend/app/tests)", arg = "DIR", path = true },
    { "--layout", "keep sub-paths under the tier (keep) or move files straight into it where no collision arises (flatten)",
      arg = "HOW", choices = { "keep", "flatten" }, default = "keep" },
    { "--unknown-to", "the tier for files analyze calls unknown", arg = "TIER", default = "venv" },
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
        ctx.bus:emit("section", nil, { ("Undone: %d moves reverted"):format(#journal.moves) })
        return { status = "passed", summary = "undone" }
      end
      local plan, perr = migrate.plan(cfg, root, { layout = opts.layout, unknown_to = opts.unknown_to })
      if not plan then return { status = "error", reason = "cannot plan the migration: " .. perr } end
      if opts.analyze then
        show_plan(ctx, plan, true)
        report(ctx, opts, plan)
        return { status = "passed", summary = ("%d files would move"):format(#plan.moves) }
      end
      local existing = migrate.read_journal(journal_path)
      if existing and existing.status ~= "done" then
        -- A migration was interrupted: complete it, then verify it.
        ctx.bus:emit("section", nil, { "Completing the migration interrupted at " .. migrate.journal_of(journal_path) })
        plan = { moves = existing.moves, stays = {}, notes = {} }
        local ok, err = migrate.apply_journal(journal_path, existing, ctx.sink)
        if not ok then return half_done(err) end
      elseif #plan.moves == 0 then
        show_plan(ctx, plan, false)
        return { status = "passed", summary = "nothing to move" }
      else
        if existing then
          errors.usage("a finished migration's journal is at %s: --undo it, or remove it and %s to start another",
            migrate.journal_of(journal_path), journal_path)
        end
        existing = nil
      end
      local py, perr = python.find({ "pytest" }, cfg.python)
      if not py then return { status = "error", reason = perr } end
      local journal = existing
      if not journal then
        local before, cerr = migrate.collect(py, root)
        if not before then return { status = "error", reason = cerr } end
        local ids, errs = {}, {}
        for id in pairs(before.ids) do ids[#ids + 1] = id end
        for f in pairs(before.errors) do errs[#errs + 1] = f end
        table.sort(ids)
        journal = { version = 1, root = root, status = "planned", moves = plan.moves,
                    ops = migrate.operations(plan, not opts.no_git and migrate.in_git(root)),
                    before = { ids = ids, errors = errs } }
        if opts.verify_run then
          local map, files = {}, {}
          for _, m in ipairs(plan.moves) do
            map[m.from] = m.to
            files[#files + 1] = m.from
          end
          local outcomes, oerr = migrate.outcomes(py, files, map)
          if not outcomes then return { status = "error", reason = "cannot run the tests before moving them: " .. oerr } end
          journal.outcomes = outcomes
        end
        show_plan(ctx, plan, false)
        local ok, err = migrate.apply_journal(journal_path, journal, ctx.sink)
        if not ok then return half_done(err) end
      end
      local before = { ids = {}, errors = {} }
      for _, id in ipairs(journal.before.ids) do before.ids[id] = true end
      for _, f in ipairs(journal.before.errors) do before.errors[f] = true end
      local after, aerr = migrate.collect(py, root)
      local problems = after and migrate.compare(before, after, journal.moves) or { "cannot collect: " .. tostring(aerr) }
      if #problems == 0 and journal.outcomes then
        local files = {}
        for _, m in ipairs(journal.moves) do files[#files + 1] = m.to end
        local now, oerr = migrate.outcomes(py, files)
        problems = now and migrate.changed(journal.outcomes, now) or { "cannot run the moved tests: " .. tostring(oerr) }
      end
      if #problems > 0 then
        local ok, err = migrate.undo_journal(journal_path, journal, ctx.sink)
        if not ok then
          return { status = "error", reason = ("pytest does not collect or run the same tests, and the migration cannot be "
            .. "rolled back: %s (--undo once that is fixed)"):format(err), details = problems }
        end
        report(ctx, opts, plan, { rolled_back = true, problems = problems })
        return { status = "failed", reason = "the migration was rolled back: pytest does not collect or run the same tests",
                 details = problems }
      end
      journal.status = "done"
      local ok, err = migrate.write_journal(journal_path, journal, ctx.sink)
      if not ok then return { status = "error", reason = err } end
      report(ctx, opts, plan, { rolled_back = false })
      return { status = "passed", summary = ("%d files moved, %d tests collected before and after; undo with --undo")
        :format(#journal.moves, #journal.before.ids) }
    end } }
  end,
}
