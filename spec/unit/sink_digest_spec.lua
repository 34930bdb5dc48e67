-- The sink records the sha256 of what it writes from memory, so the run
-- record and the audit entry need not read it back; a file changed by any
-- other route loses that digest and is hashed from disk instead.
local Sink = require "novapipe.run.sink"
local digest = require "novapipe.digest"
local fs = require "novapipe.fs"
local H = require "spec.support.h"

describe("the sink's digests", function()
  local keep = H.temporaries(after_each)
  local dir, sink
  before_each(function()
    dir = keep(assert(fs.mkdtemp("novapipe-spec-digest-")))
    sink = Sink.new({ out = function() end })
  end)

  local function sha_of(path)
    for _, entry in ipairs(sink:list()) do
      if entry.path == path then return entry.sha256 end
    end
    error("not recorded: " .. path)
  end

  it("are of the bytes written, masked, and follow a second recorded write", function()
    local path = dir .. "/report.txt"
    assert(sink:write(path, "patient 219-09-9999\n", "report"))
    assert.equal(digest.sha256(H.read(path)), sha_of(path))
    assert.is_nil(H.read(path):find("219-09-9999", 1, true))
    assert(sink:write(path, "second\n", "report"))
    assert.equal(digest.sha256("second\n"), sha_of(path))
  end)

  it("are dropped when the file is rewritten unrecorded, appended to or adopted", function()
    local path = dir .. "/report.txt"
    assert(sink:write(path, "one\n", "report"))
    assert(sink:write(path, "two\n", "report", { record = false }))
    assert.is_nil(sha_of(path))

    assert(sink:write(path, "one\n", "report"))
    assert(sink:append(path, "more\n"))
    assert.is_nil(sha_of(path))

    assert(sink:write(path, "one\n", "report"))
    assert(sink:adopt(path, "report", { kind = "text" }))
    assert.is_nil(sha_of(path))

    local other = dir .. "/other.txt"
    assert(sink:write(path, "one\n", "report"))
    assert(fs.atomic_write(other, "from a child\n", "0644"))
    assert(sink:adopt(other, "report", { kind = "text", to = path }))
    assert.is_nil(sha_of(path))
    assert.equal("from a child\n", H.read(path))
  end)

  it("are dropped for every file under a directory that is adopted, and kept for the rest", function()
    local inside, beside = dir .. "/html/index.html", dir .. "/html-other.txt"
    assert(sink:write(inside, "<p>one</p>\n", "page", { markup = true }))
    assert(sink:write(beside, "kept\n", "report"))
    assert(sink:adopt(dir .. "/html", "coverage HTML"))
    assert.is_nil(sha_of(inside))
    assert.equal(digest.sha256("kept\n"), sha_of(beside))
  end)
end)
