-- A run appends to the audit log after reading only its end: the log
-- grows with every run, and the chain must hold whatever the size of the
-- log or of its last entry.
local audit = require "novapipe.audit"
local fs = require "novapipe.fs"
local H = require "spec.support.h"

describe("the audit log's end", function()
  local keep = H.temporaries(after_each)
  local log
  before_each(function()
    log = keep(assert(fs.mkdtemp("novapipe-spec-audit-"))) .. "/audit.log"
  end)

  local function append(args)
    return audit.append(log, { pipeline = "run_tests", args = args, outcome = { exit = 0, status = "passed" } })
  end

  it("chains each entry to the last one in a log far larger than what is read of it", function()
    for i = 1, 150 do assert.equal(i, assert(append({ "--filter", ("t%d"):format(i) .. ("a"):rep(3000) })).seq) end
    assert.is_true(require("lfs").attributes(log, "size") > 4 * 65536)
    local n, problems = audit.verify(log)
    assert.equal(150, n)
    assert.same({}, problems)
  end)

  it("chains after a last entry longer than one piece read from the end", function()
    assert(append({ "--first" }))
    local long = assert(append({ ("x"):rep(300000) }))
    assert.equal(2, long.seq)
    local after = assert(append({ "--after" }))
    assert.equal(3, after.seq)
    assert.equal(long.hash, after.prev)
    local n, problems = audit.verify(log)
    assert.equal(3, n)
    assert.same({}, problems)
  end)

  it("refuses a log that is a directory with the error of appending to it", function()
    assert(fs.mkdir_p(log, "0700"))
    local entry, err = append({ "--next" })
    assert.is_nil(entry)
    assert.matches("audit%.log", err)
    assert.matches("[Ii]s a directory", err)
  end)

  it("still refuses a log whose last line is not an entry, however long the log", function()
    for i = 1, 100 do assert(append({ ("--arg%d"):format(i) })) end
    local f = assert(io.open(log, "ab"))
    f:write(("y"):rep(100000), "\n")
    f:close()
    local entry, err = append({ "--next" })
    assert.is_nil(entry)
    assert.matches("its last line is not an audit entry", err)
  end)
end)
