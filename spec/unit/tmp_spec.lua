-- novapipe.tmp: directories named for their process, and the sweep of
-- those whose process is gone.
local fs = require "novapipe.fs"
local lfs = require "lfs"
local proc = require "novapipe.proc"
local tmp = require "novapipe.tmp"
local H = require "spec.support.h"

describe("novapipe.tmp", function()
  local keep = H.temporaries(after_each)

  it("names a directory for this process, and the sweep leaves it", function()
    local d = assert(tmp.dir("novapipe-unit-"))
    finally(function() fs.rmtree(d) end)
    assert.matches("/novapipe%-unit%-" .. proc.self().pid .. "%.%d+%-%w+$", d)
    local parent = d:match("^(.*)/[^/]+$")
    tmp.sweep(parent)
    assert.equal("directory", lfs.attributes(d, "mode"))
  end)

  it("removes what processes that are gone left, and nothing else", function()
    local root = keep(H.tmpdir())
    -- a pid that was just used and is gone
    local gone = assert(proc.spawn({ "true" })):wait().pid
    local mine = assert(tmp.dir("novapipe-x-"))
    fs.rmtree(mine)
    local own = mine:match("/novapipe%-x%-([%d.]+)%-")
    local pid = proc.self().pid
    local names = {
      dead = ("novapipe-junit-%d.1-aaaaaa"):format(gone),
      reused = ("novapipe-pg-%d.1-bbbbbb"):format(pid), -- a live pid, another start time
      live = ("novapipe-pg-%s-cccccc"):format(own),
      other = "novapipe-spec-dddddd",
      unrelated = "something-else",
    }
    for _, n in pairs(names) do assert(fs.mkdir_p(root .. "/" .. n .. "/sub")) end
    -- a link named like a dead one is not followed
    local target = keep(H.tmpdir())
    assert(lfs.link(target, root .. ("/novapipe-junit-%d.1-link00"):format(gone), true))
    local removed = tmp.sweep(root)
    table.sort(removed)
    assert.same({ root .. "/" .. names.dead, root .. "/" .. names.reused }, removed)
    for _, k in ipairs({ "live", "other", "unrelated" }) do
      assert.equal("directory", lfs.attributes(root .. "/" .. names[k], "mode"), k)
    end
    assert.equal("directory", lfs.attributes(target, "mode"))
  end)

  it("sweeps, given no root, $TMPDIR and the directories in ALSO (the memory file system's)", function()
    assert.same({ "/dev/shm" }, tmp.ALSO)
    local gone = assert(proc.spawn({ "true" })):wait().pid
    local also, elsewhere = keep(H.tmpdir()), keep(H.tmpdir())
    local name = ("novapipe-pg-%d.1-eeeeee"):format(gone)
    assert(fs.mkdir_p(also .. "/" .. name))
    assert(fs.mkdir_p(elsewhere .. "/" .. name))
    local saved = tmp.ALSO
    finally(function() tmp.ALSO = saved end)
    tmp.ALSO = { also }
    local removed = {}
    for _, p in ipairs(tmp.sweep()) do removed[p] = true end
    assert.is_true(removed[also .. "/" .. name])
    assert.is_nil(removed[elsewhere .. "/" .. name])
    assert.equal("directory", lfs.attributes(elsewhere .. "/" .. name, "mode"))
  end)
end)
