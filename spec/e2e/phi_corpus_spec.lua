-- PHI detection, measured: recall per kind on the generated positives and
-- false positives on real test output (spec/support/phi_corpus.lua says
-- how both are made and labelled). The marks: recall at least 99.5% of
-- each kind, false positives at most 0.1% of the negative lines; on a
-- failure the spec prints every miss.
local H = require "spec.support.h"
local corpus = require "spec.support.phi_corpus"
local phi = require "novapipe.phi"

describe("PHI detection on the labelled corpus", function()
  local positives, negatives, notes, tmp

  setup(function()
    tmp = H.tmpdir()
    positives = corpus.positives()
    negatives, notes = corpus.negatives(tmp)
  end)

  teardown(function()
    if tmp then H.rmrf(tmp) end
  end)

  local function make() return (phi.masker()) end

  it("holds at least 2,000 positives, every kind and format represented", function()
    assert.is_true(#positives >= 2000, #positives)
    local formats = {}
    for _, p in ipairs(positives) do
      formats[p.kind] = formats[p.kind] or {}
      formats[p.kind][p.format] = (formats[p.kind][p.format] or 0) + 1
    end
    for _, kind in ipairs({ "ssn", "phone", "email", "dob", "mrn" }) do
      assert.is_truthy(formats[kind], kind)
      for format, n in pairs(formats[kind]) do assert.is_true(n >= 10, kind .. " " .. format .. ": " .. n) end
    end
  end)

  it("finds at least 99.5% of each kind", function()
    local kinds = corpus.measure(make, positives, {})
    local misses = {}
    for kind, k in pairs(kinds) do
      if k.found / k.n < 0.995 then
        misses[#misses + 1] = ("%s: %d of %d found"):format(kind, k.found, k.n)
        for _, m in ipairs(k.misses) do misses[#misses + 1] = "  " .. m end
      end
    end
    assert.same({}, misses)
  end)

  it("leaves at least 99.9% of 20,000 lines of real test output as they are", function()
    assert.same({}, notes)
    local _, neg = corpus.measure(make, {}, negatives)
    assert.is_true(neg.lines >= 20000, ("%d negative lines"):format(neg.lines))
    local fp = #neg.false_positives
    if fp / neg.lines > 0.001 then
      assert.same({}, neg.false_positives)
    end
  end)

  it("masks the same through the process filter point as line by line", function()
    -- the C path of the filter point and the Lua masker agree on every
    -- line of the corpus, and so does on_find's count
    local lines = {}
    for _, p in ipairs(positives) do
      for _, l in ipairs(p.lines) do lines[#lines + 1] = l end
    end
    for _, n in ipairs(negatives) do lines[#lines + 1] = n.line end
    local file = tmp .. "/corpus.txt"
    H.write(file, table.concat(lines, "\n") .. "\n")
    local out = tmp .. "/masked.txt"
    local p = assert(require("novapipe.proc").spawn({ "cat", file }, { stdout = { file = out }, filter = phi.filter() }))
    assert.equal(0, p:wait().code)
    local mask = phi.masker()
    local want = {}
    for i, l in ipairs(lines) do want[i] = (mask(l)) end
    assert.equal(table.concat(want, "\n") .. "\n", H.read(out))
  end)
end)
