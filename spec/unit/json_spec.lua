local json = require "novapipe.json"

describe("novapipe.json", function()
  it("names the file, line and column of a syntax error", function()
    local v, err = json.decode('{\n  "a": 1,\n  "b": tru\n}', "report.json")
    assert.is_nil(v)
    assert.matches("^report%.json:3:%d+: ", err)
  end)

  it("decodes and encodes", function()
    assert.same({ a = { 1, 2 } }, json.decode('{"a":[1,2]}'))
    assert.same({ a = "x/y", n = 1.5 }, json.decode(json.encode({ a = "x/y", n = 1.5 })))
  end)
end)
