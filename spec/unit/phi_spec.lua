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

  it("masks every format the issue names", function()
    local cases = {
      { "ssn 219099999 on file", "ssn [PHI:ssn] on file" },
      { "social: 219099999", "social: [PHI:ssn]" },
      { "got 219 09 9999", "got [PHI:ssn]" },
      { "a 219\u{2013}09\u{2013}9999 b", "a [PHI:ssn] b" },
      { "a 219\u{2212}09\u{FF0D}9999", "a [PHI:ssn]" },
      { "call +1 415 867 5309", "call [PHI:phone]" },
      { "call (415) 867-5309 ext. 12 or 415.867.5309 x9", "call [PHI:phone] or [PHI:phone]" },
      { "to jané@gmail.com", "to [PHI:email]" },
      { "to JANE.ROE+lab@Hospital.ORG", "to [PHI:email]" },
      { "dob March 3, 1980", "dob [PHI:dob]" },
      { "born 3 March 1980", "born [PHI:dob]" },
      { "birth: Mar. 3rd 1980", "birth: [PHI:dob]" },
      { "date of birth 02-03-1980", "date of birth [PHI:dob]" },
      { "Patient(dob=datetime.date(1980, 2, 3))", "Patient(dob=datetime.[PHI:dob])" },
      { '{"dateOfBirth": "1980-02-03"}', '{"dateOfBirth": "[PHI:dob]"}' },
    }
    for _, c in ipairs(cases) do
      local m = phi.masker()
      assert.equal(c[2], (m(c[1])), c[1])
    end
    local m = phi.masker()
    assert.equal("Date of birth:", (m("Date of birth:")))
    assert.equal("  [PHI:dob]", (m("  1980-02-03")))
  end)

  it("leaves timestamps, durations, versions, ids, digests, addresses and lookalike words", function()
    local lines = {
      "2026-12-01 20:24:54,123 INFO app: started", "at 2026-12-01T20:24:54.123456+00:00 and 2026-12-01T20:24:54Z",
      "0.52s call tests/test_a.py::test_b[1-2]", "took 1:02:03", "python 3.11.7, lib 1.2.3.4",
      "id 123e4567-e89b-12d3-a456-426614174000", "sha256 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
      "commit 3f2b9c1", "connect 10.0.12.7:5432 or [2001:db8::8a2e:370:7334]:8443", "port 8080",
      "Adobe 2024-01-15", "stubborn test at 2026-12-01", "Osborne 1980-02-03", "Dobson 1980-02-03",
      "unborn 1980-02-03", "id=219099999", "epoch 1733084694 ms 1733084694123", "<object at 0x7f3a2c1d4e50>",
      '  File "/usr/lib/python3.11/unittest/case.py", line 415, in run',
      "app/core.py      120     12     40      6    88%   12-14, 20->22, 415-418",
      "tests/test_core.py::test_endpoint[192.168.100.254-6379] PASSED       [ 12%]",
    }
    for _, l in ipairs(lines) do
      local m = phi.masker()
      assert.equal(l, (m(l)))
    end
  end)

  it("keeps the MRN patterns and the allow-lists configurable, through the filter point too", function()
    local cfg = phi.defaults()
    cfg.mrn = { "PT%-%d%d%d%d%d" }
    cfg.allow = { phone = { "^%(212%)" } }
    local m = phi.masker(cfg)
    assert.equal("[PHI:mrn] MRN-1234567 (212) 867-5309 [PHI:phone]",
      (m("PT-12345 MRN-1234567 (212) 867-5309 (415) 867-5309")))
    local f = phi.filter(cfg)
    assert.equal("[PHI:mrn] MRN-1234567 (212) 867-5309 [PHI:phone]", f("PT-12345 MRN-1234567 (212) 867-5309 (415) 867-5309"))
    local H = require "spec.support.h"
    local dir = H.tmpdir()
    local lines = { "PT-12345 x", "(212) 867-5309", "(415) 867-5309", "DOB:", "1980-02-03", "plain", "a@gmail.com" }
    H.write(dir .. "/in.txt", table.concat(lines, "\n") .. "\n")
    local p = assert(require("novapipe.proc").spawn({ "cat", dir .. "/in.txt" },
      { stdout = { file = dir .. "/out.txt" }, filter = phi.filter(cfg) }))
    assert.equal(0, p:wait().code)
    assert.equal("[PHI:mrn] x\n(212) 867-5309\n[PHI:phone]\nDOB:\n[PHI:dob]\nplain\n[PHI:email]\n", H.read(dir .. "/out.txt"))
    H.rmrf(dir)
  end)
  it("applies the MRN patterns in C exactly as string.gsub does, for every pattern of luapat's subset", function()
    local phiscan = require "novapipe.phiscan"
    -- a seeded generator of patterns and lines over a small alphabet, so
    -- that matches, near misses, backtracking and empty matches all occur
    local seed = 12345
    local function rand(n)
      seed = (seed * 1103515245 + 12345) % 2147483648
      return seed % n + 1
    end
    local items = { "M", "R", "N", "a", "-", " ", ":", ".", "%d", "%a", "%s", "%w", "%D", "%S", "[-: ]", "[^%d]",
                    "[a-c]", "[]a]", "%-", "%.", "%%", "[%d%s]", "%u", "%l", "%x", "%p" }
    local quants = { "", "", "", "?", "*", "+", "-" }
    local chars = "MRNabc-: 0123456789.%\t]"
    local checked = 0
    for _ = 1, 4000 do
      local parts = { rand(5) == 1 and "^" or "" }
      for _ = 1, rand(5) do parts[#parts + 1] = items[rand(#items)] .. quants[rand(#quants)] end
      if rand(6) == 1 then parts[#parts + 1] = "$" end
      local pattern = table.concat(parts)
      local line = {}
      for _ = 1, rand(24) - 1 do
        local k = rand(#chars)
        line[#line + 1] = chars:sub(k, k)
      end
      line = table.concat(line)
      local ours, n = phiscan.gsub(line, pattern, "[PHI:mrn]")
      local theirs, m = line:gsub(pattern, "[PHI:mrn]")
      assert.equal(theirs, ours, ("gsub(%q, %q)"):format(line, pattern))
      assert.equal(m, n, ("gsub(%q, %q)"):format(line, pattern))
      checked = checked + 1
    end
    assert.equal(4000, checked)
    -- outside the subset: captures, %b, %f, back references; then Lua applies them
    for _, p in ipairs({ "(MRN)%d+", "%b()", "%f[%d]%d+", "(a)%1", "MRN%" }) do
      assert.is_nil(phiscan.gsub("MRN-123", p, "x"), p)
    end
    local cfg = phi.defaults()
    cfg.mrn = { "%f[%w]PT%d%d%d%d%d" }
    assert.equal("[PHI:mrn] and APT12345", phi.filter(cfg)("PT12345 and APT12345"))
  end)
end)
