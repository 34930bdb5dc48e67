-- novapipe.run.watch's parts: what a batch of saves becomes, and what is
-- ignored, in a git repository (git check-ignore) and outside one (the
-- root's .gitignore).
local watch = require "novapipe.run.watch"
local H = require "spec.support.h"

describe("novapipe watch's batches", function()
  local keep = H.temporaries(after_each)

  it("give a rename as its new path and its old one deleted, and lost events as everything", function()
    local root = keep(H.tree({ ["a.py"] = "", ["c.py"] = "" }))
    local list, shown = watch.changes({
      { kind = "modified", path = "a.py" },
      { kind = "renamed", path = "c.py", from = "b.py" },
      { kind = "created", path = "d.py" },
      { kind = "deleted", path = "e.py" },
    }, root, false)
    assert.same({
      { path = "a.py", status = "modified" },
      { path = "c.py", status = "renamed", from = "b.py" },
      { path = "b.py", status = "deleted" },
      { path = "d.py", status = "added" },
      { path = "e.py", status = "deleted" },
    }, list)
    assert.same({ "a.py", "b.py -> c.py", "d.py", "e.py" }, shown)
    local all, said = watch.changes({ { kind = "modified", path = "a.py" }, { kind = "rescan", path = "." } }, root, false)
    assert.is_true(all)
    assert.same({ "(events lost: everything)" }, said)
  end)

  it("outside a git repository, follow the root's .gitignore: anchored, any component, directories only", function()
    local root = keep(H.tree({ [".gitignore"] = "# notes\n/build\nscratch/\n*.log\n!keep.log\ndocs/*.tmp\n\n" }))
    local ignored = watch.ignored(root, { "build/x.py", "src/build/x.py", "scratch/n.py", "scratch", "a/b/run.log",
      "keep.log", "docs/a.tmp", "docs/sub/a.tmp", "app/main.py" }, false)
    assert.same({
      ["build/x.py"] = true,     -- /build: at the root only
      ["scratch/n.py"] = true,   -- scratch/: a directory, at any depth
      ["a/b/run.log"] = true,    -- *.log: any component
      ["keep.log"] = true,       -- (! lines are not followed)
      ["docs/a.tmp"] = true,     -- docs/*.tmp: anchored, one level
    }, ignored)
    -- a batch of only ignored paths is no change
    local list, shown = watch.changes({ { kind = "modified", path = "a/b/run.log" } }, root, false)
    assert.is_nil(list)
    assert.same({}, shown)
  end)

  it("in a git repository, ask git, names with quotes, spaces and newlines included; a tracked file is never ignored", function()
    local root = keep(H.tree({ [".gitignore"] = "*.out\nodd*\n", ["tracked.out"] = "" }))
    H.git(root, "init", "-q")
    H.git(root, "add", "-f", "tracked.out", ".gitignore")
    H.git(root, "commit", "-qm", "start")
    local odd = 'odd "name"\nwith a newline\\.py'
    local ignored = watch.ignored(root, { "run.out", "tracked.out", odd, "odd space.py", "app.py" }, true)
    assert.same({ ["run.out"] = true, [odd] = true, ["odd space.py"] = true }, ignored)
  end)

  it("leave out coverage data and the results and coverage HTML directories of the configuration", function()
    local cfg = require("novapipe.config").defaults()
    cfg.results = "./out/results/"
    local ignore = watch.ignorer(cfg)
    assert.is_true(ignore(".coverage", false))
    assert.is_true(ignore("backend/.coverage.standalone", false))
    assert.is_true(ignore("out/results", true))
    assert.is_true(ignore("out/results/run.json", false))
    assert.is_true(ignore(cfg.coverage.html .. "/index.html", false))
    assert.is_false(ignore("out/resultsx/run.json", false))
    assert.is_false(ignore("backend/app/main.py", false))
  end)
end)
