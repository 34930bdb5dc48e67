-- "Did you mean": the one edit distance behind every suggestion novapipe
-- makes for a mistyped option, command, pipeline, tier or setting.
local nearest = require "novapipe._nearest"

describe("the edit distance", function()
  it("counts insertions, deletions, substitutions and swaps of neighbours as one each", function()
    assert.equal(0, nearest.distance("filter", "filter"))
    assert.equal(3, nearest.distance("", "abc"))
    assert.equal(3, nearest.distance("kitten", "sitting"))
    assert.equal(1, nearest.distance("fitler", "filter"))
    assert.equal(1, nearest.distance("tirs", "tiers"))
    assert.equal(1, nearest.distance("tierz", "tiers"))
  end)
end)

describe("the nearest name", function()
  local OPTIONS = { "-h", "--help", "--all", "--standalone", "--venv", "--filter", "--failfast", "--coverage",
                    "-p", "--parallel", "-v", "--verbose" }

  it("is the one name a typo away", function()
    assert.equal("--filter", nearest.nearest("--fitler", OPTIONS))
    assert.equal("--filter", nearest.nearest("--filte", OPTIONS))
    assert.equal("--standalone", nearest.nearest("--stnadalone", OPTIONS))
    assert.equal("--parallel", nearest.nearest("--paralel", OPTIONS))
    assert.equal("tiers", nearest.nearest("tirs", { "tests", "tiers", "python" }))
  end)

  it("is the one name a word of three letters or more starts", function()
    assert.equal("--coverage", nearest.nearest("--cov", OPTIONS))
    assert.is_nil(nearest.nearest("--f", OPTIONS))
  end)

  it("is nothing for a short option, a word far from every name, or two equally near", function()
    assert.is_nil(nearest.nearest("-x", OPTIONS))
    assert.is_nil(nearest.nearest("--frobnicate", OPTIONS))
    assert.is_nil(nearest.nearest("--vent", { "--venv", "--vend" }))
    assert.is_nil(nearest.nearest("zzz", { "tests", "tiers" }))
  end)

  it("compares long options with long options and words with words", function()
    assert.is_nil(nearest.nearest("help", OPTIONS))
    assert.equal("run", nearest.nearest("rn", { "-C", "run", "list", "exec", "audit" }))
  end)
end)

describe("argparse's errors, rewritten", function()
  it("are one line with novapipe's suggestion, never argparse's guesses", function()
    assert.equal("unknown option '--fitler'; did you mean '--filter'?",
      nearest.argparse_error("unknown option '--fitler'\nDid you mean '--filter'?", { "--filter", "-h" }))
    assert.equal("unknown option '-x'",
      nearest.argparse_error("unknown option '-x'\nDid you mean one of these: '-h' '-p' '-v'?", { "-h", "-p", "-v" }))
    assert.equal("option '--tier' requires an argument",
      nearest.argparse_error("option '--tier' requires an argument", { "--tier" }))
  end)

  it("suggest by meaning where the spelling says nothing, when the name is there", function()
    local meanings = { ["-x"] = { "--failfast", "pytest's -x" } }
    assert.equal("unknown option '-x'; did you mean '--failfast' (pytest's -x)?",
      nearest.argparse_error("unknown option '-x'", { "--failfast" }, meanings))
    assert.equal("unknown option '-x'", nearest.argparse_error("unknown option '-x'", { "--verbose" }, meanings))
  end)
end)
