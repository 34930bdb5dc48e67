local junit = require "novapipe.junit"
local H = require "spec.support.h"

describe("reading JUnit XML", function()
  local dir
  before_each(function() dir = H.tmpdir() end)
  after_each(function() H.rmrf(dir) end)

  it("names the file and line of XML that is not well formed", function()
    H.write(dir .. "/bad.xml", "<testsuites>\n<testsuite>\n<testcase name='a'>\n</testsuite>")
    local r, err = junit.read(dir .. "/bad.xml")
    assert.is_nil(r)
    assert.matches("bad.xml:4: not valid JUnit XML", err)
    assert.is_nil(junit.read(dir .. "/missing.xml"))
  end)

  it("counts each outcome the way pytest records it", function()
    H.write(dir .. "/r.xml", [[<?xml version="1.0" encoding="utf-8"?><testsuites><testsuite name="pytest">
<testcase classname="t" name="ok"/>
<testcase classname="t" name="xp"><properties><property name="novapipe_outcome" value="xpassed"/></properties></testcase>
<testcase classname="t" name="f"><failure message="assert 0">tb</failure></testcase>
<testcase classname="t" name="strict"><skipped message="xfail-marked test passes unexpectedly"/></testcase>
<testcase classname="t" name="e"><error message="failed on setup with &quot;x&quot;">tb</error></testcase>
<testcase classname="" name="t.test_broken"><error message="collection failure">tb</error></testcase>
<testcase classname="t" name="s"><skipped type="pytest.skip" message="no">x</skipped></testcase>
<testcase classname="t" name="xf"><skipped type="pytest.xfail" message="known"/></testcase>
<testcase classname="t" name="fl"><flakyFailure message="no" type="AssertionError"><stackTrace>tb</stackTrace></flakyFailure></testcase>
<testcase classname="t" name="rr"><failure message="no">tb</failure><rerunFailure message="no" type="AssertionError"><stackTrace>tb</stackTrace></rerunFailure></testcase>
</testsuite></testsuites>]])
    local r = assert(junit.read(dir .. "/r.xml"))
    assert.same({ tests = 10, passed = 1, xpassed = 1, failed = 3, errors = 2, skipped = 1, xfailed = 1, flaky = 1,
                  quarantined = 0 }, r.counts)
    assert.same({ "t.test_broken" }, r.collection_errors)
    assert.equal(5, #r.problems)
    assert.equal("t::f", r.problems[1].id)
    assert.equal("assert 0", r.problems[1].message)
  end)
end)
