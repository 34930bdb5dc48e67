local phi = require "novapipe.phi"

describe("PHI masking", function()
  local mask = phi.masker()

  it("masks real-looking SSNs, phones, e-mails, dates of birth and MRNs", function()
    assert.equal("ssn [PHI:ssn]", (mask("ssn 123-45-6789")))
    assert.equal("[PHI:phone] and [PHI:phone]", (mask("212-867-5309 and (212) 867-5309")))
    assert.equal("write to [PHI:email]", (mask("write to jane.doe+x@gmail.com")))
    assert.equal("DOB: [PHI:dob]; born on [PHI:dob]", (mask("DOB: 1980-02-03; born on 3/4/1975")))
    assert.equal("[PHI:mrn]", (mask("MRN-0012345")))
  end)

  it("leaves values that are synthetic by construction", function()
    for _, s in ipairs({ "000-12-3456", "666-12-3456", "900-12-3456", "999-99-9999", "212-555-0100", "(212) 555-0199",
                         "a@example.com", "b@mail.example.org", "c@x.test", "d@y.invalid", "e@z.example",
                         "release 2024-01-01", "build 123-456", "version 1.2.3" }) do
      assert.equal(s, (mask(s)))
    end
  end)

  it("counts what it masked", function()
    local _, n = mask("123-45-6789 and 234-56-7890")
    assert.equal(2, n)
  end)

  -- A scan that backtracks would take minutes on these (ctest's timeout
  -- ends it); a linear one takes milliseconds.
  it("handles megabyte lines that nearly match, and masks the value at their end", function()
    local near = string.rep("a.b-c", 200000) .. "@"
    assert.equal(near, (mask(near)))
    assert.equal(string.rep("x", 1000000) .. " [PHI:ssn]", (mask(string.rep("x", 1000000) .. " 321-54-9876")))
  end)

  -- quiet lets a document through without masking it value by value: it
  -- must never say so of a text masking would change.
  it("says a text is quiet only when masking it would change nothing", function()
    local junit = '<testsuite tests="2" time="1.367" timestamp="2026-12-01T15:25:25.405261">'
      .. '<testcase classname="app.tests.test_001" name="test_1_1" time="0.001" /></testsuite>\n'
    local phi_values = { "123-45-6789", "212-867-5309", "212.867.5309", "(212) 867-5309", "(212)867-5309",
                         "jane@gmail.com", "DOB 1980-02-03", "born", "Birth", "MRN 0012345", "MRN-12345678" }
    local quiet_cases = { junit, "", "release 2024-01-01 build 123-456 version 1.2.3", "no digits here\n" }
    for _, text in ipairs(quiet_cases) do
      local _, quiet = phi.masker()
      assert.is_true(quiet(text), text)
      assert.equal(text, phi.mask_markup(text, function(s) return (mask(s)) end))
    end
    for _, v in ipairs(phi_values) do
      local _, quiet = phi.masker()
      assert.is_false(quiet(junit:gsub("test_1_1", v)), v)
    end
    -- a birth word at the end of the last text makes the next one's date a
    -- date of birth: not quiet, though it holds nothing by itself
    local m, quiet = phi.masker()
    m("patient DOB:")
    assert.is_false(quiet("1980-02-03"))
    -- an MRN pattern anchored to a line's start is looked for anywhere
    local _, q2 = phi.masker({ mrn = { "^ID%d%d%d%d$" } })
    assert.is_false(q2("<a>\nID1234\n</a>"))
    assert.is_true(q2("<a>IDX</a>"))
  end)
end)
