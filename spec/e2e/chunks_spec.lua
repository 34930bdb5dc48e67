-- novapipe's Lua modules compiled ahead of time (engine/chunks.c,
-- scripts/compile-lua.lua): loaded while their sources are unchanged,
-- compiled from the source again as soon as one is edited.
local fs = require "novapipe.fs"
local process = require "novapipe.process"
local H = require "spec.support.h"

describe("modules compiled ahead", function()
  local dir, root
  local home = os.getenv("NOVAPIPE_HOME") or "."
  before_each(function()
    dir = H.tmpdir()
    -- a root of its own: a copy of novapipe's Lua files, compiled into
    -- root/luac as an install does
    root = dir .. "/novapipe"
    assert(fs.mkdir_p(root))
    assert.equal(0, process.run({ "cp", "-a", home .. "/lua_modules", home .. "/pipelines", root .. "/" }).code)
    local r = H.novapipe({ "exec", home .. "/scripts/compile-lua.lua", root, root .. "/luac" },
      { env = { NOVAPIPE_HOME = root } })
    assert.equal(0, r.code, r.stderr)
    H.write(dir .. "/probe.lua", 'print(require("novapipe.path").compiled_ahead)\n')
  end)
  after_each(function() H.rmrf(dir) end)

  local chunk = function() return root .. "/luac/lua_modules/novapipe/path.luac" end
  local function probe()
    local r = H.novapipe({ "exec", dir .. "/probe.lua" }, { env = { NOVAPIPE_HOME = root } })
    assert.equal(0, r.code, r.stderr)
    return r.stdout
  end
  -- The chunk of path.lua replaced by one of a module that says so, behind
  -- the header of the real one (its source's hash, size and path).
  local function plant(body)
    local text = assert(fs.read(chunk()))
    local header = text:match("^[^\n]*\n")
    assert(fs.atomic_write(chunk(), header .. body))
  end

  it("names each module's source, its size and its hash in the chunk's header", function()
    local text = assert(fs.read(chunk()))
    local source = root .. "/lua_modules/novapipe/path.lua"
    local hash, size, named = text:match("^NPC1 (%x+) (%d+) ([^\n]+)\n")
    assert.equal(16, #hash)
    assert.equal(#assert(fs.read(source)), tonumber(size))
    assert.equal(source, named)
    -- the rest is the module, compiled
    assert.equal("function", type(load(text:sub(#text:match("^[^\n]*\n") + 1), "=chunk", "b")))
  end)

  it("loads a module from its chunk while the source is the one compiled", function()
    plant(string.dump(load('return { compiled_ahead = "from the chunk" }')))
    assert.equal("from the chunk\n", probe())
  end)

  it("compiles a module from its source once the source is edited, and when the chunk is not one Lua can load",
    function()
      plant(string.dump(load('return { compiled_ahead = "from the chunk" }')))
      local source = root .. "/lua_modules/novapipe/path.lua"
      assert(fs.atomic_write(source, assert(fs.read(source)) .. "-- edited\n", "0644"))
      assert.equal("nil\n", probe())
      -- the header of the edited source, and bytes that are no chunk
      assert.equal(0, H.novapipe({ "exec", home .. "/scripts/compile-lua.lua", root,
        root .. "/luac" }, { env = { NOVAPIPE_HOME = root } }).code)
      plant("not a chunk")
      assert.equal("nil\n", probe())
      os.remove(chunk())
      assert.equal("nil\n", probe())
    end)

  it("gives the same traceback as the source would, naming the source's lines", function()
    H.write(dir .. "/boom.lua", 'require("novapipe.path").normalize(nil)\n')
    local from_chunk = H.novapipe({ "exec", dir .. "/boom.lua" }, { env = { NOVAPIPE_HOME = root } })
    H.rmrf(root .. "/luac")
    local from_source = H.novapipe({ "exec", dir .. "/boom.lua" }, { env = { NOVAPIPE_HOME = root } })
    assert.matches("lua_modules/novapipe/path%.lua:%d+: attempt to index a nil value", from_chunk.stderr)
    assert.equal(from_source.stderr, from_chunk.stderr)
  end)
end)
