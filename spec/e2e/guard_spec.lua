-- The guard: a stage, a reporter or a novapipe.lua that writes through
-- Lua's own channels by mistake (print, io.write, io.stdout and io.stderr,
-- io.open, novapipe.fs's writers, os.execute) cannot write unmasked. The
-- real binary runs a pipeline that tries every one of them.
local fs = require "novapipe.fs"
local lfs = require "lfs"
local H = require "spec.support.h"

local SSN = "219-09-9999"

local LEAKY = [[
local np = require "novapipe"
local fs = require "novapipe.fs"
local SSN = "219-09-9999"
return np.pipeline {
  description = "tries every way out",
  stages = function()
    return { np.stage { name = "leak", run = function()
      print("print", SSN)
      io.write("io.write ", SSN, "\n")
      io.stdout:write("stdout ", SSN, "\n")
      io.stderr:write("stderr ", SSN, "\n")
      io.write("no end of line ", SSN)
      local f = assert(io.open("out/open.txt", "w"))
      f:write("open ", SSN, "\n")
      assert(f:close())
      local a = assert(io.open("out/append.txt", "a"))
      a:write("append ", SSN, "\n")
      a:close()
      io.output("out/output.txt")
      io.write("output ", SSN, "\n")
      io.close()
      io.output(io.stdout)
      assert(fs.atomic_write("out/atomic.txt", "atomic " .. SSN .. "\n", "0644"))
      assert(fs.append("out/fs_append.txt", "fs.append " .. SSN .. "\n", "0644"))
      local w = assert(fs.writer("out/writer.txt", "0644"))
      assert(w:write("writer " .. SSN .. "\n"))
      assert(w:commit())
      assert(fs.copy("source.txt", "out/copy.txt"))
      print("r+", io.open("source.txt", "r+"))
      print("read", io.open("source.txt"):read("a"))
      local ok, err = pcall(os.execute, "echo execute " .. SSN)
      print("os.execute", ok, err)
      ok, err = pcall(io.popen, "echo popen " .. SSN)
      print("io.popen", ok, err)
      return { status = "passed" }
    end } }
  end,
}
]]

describe("the guard", function()
  local root
  before_each(function()
    root = H.tree({
      ["pipelines/leaky.lua"] = LEAKY,
      ["source.txt"] = "source " .. SSN .. "\n",
      ["novapipe.lua"] = ("print('config %s')\nio.stderr:write('config stderr %s\\n')\nreturn {}\n"):format(SSN, SSN),
    })
    assert(fs.mkdir_p(root .. "/out", "0755"))
  end)
  after_each(function() H.rmrf(root) end)

  it("masks what a pipeline writes through Lua's own channels, and refuses os.execute and io.popen", function()
    local r = H.novapipe({ "-C", root, "--no-color", "run", "pipelines/leaky.lua" })
    assert.equal(0, r.code, r.stdout .. r.stderr)
    local said = r.stdout .. r.stderr
    assert.is_nil(said:find(SSN, 1, true), said)
    for _, line in ipairs({ "config [PHI:ssn]", "print\t[PHI:ssn]", "io.write [PHI:ssn]", "stdout [PHI:ssn]",
                            "no end of line [PHI:ssn]", "read\tsource [PHI:ssn]" }) do
      assert.is_not_nil(r.stdout:find(line .. "\n", 1, true), line)
    end
    assert.is_not_nil(r.stderr:find("config stderr [PHI:ssn]\n", 1, true), r.stderr)
    assert.is_not_nil(r.stderr:find("stderr [PHI:ssn]\n", 1, true), r.stderr)
    assert.matches("r%+\tnil\tsource%.txt: novapipe does not open files for reading and writing", r.stdout)
    assert.matches("os%.execute\tfalse\t[^\n]*os%.execute is not available during a run", r.stdout)
    assert.matches("io%.popen\tfalse\t[^\n]*io%.popen is not available during a run", r.stdout)
    local expected = { ["open.txt"] = "open", ["append.txt"] = "append", ["output.txt"] = "output",
                       ["atomic.txt"] = "atomic", ["fs_append.txt"] = "fs.append", ["writer.txt"] = "writer",
                       ["copy.txt"] = "source" }
    for name, word in pairs(expected) do
      local path = root .. "/out/" .. name
      assert.equal(word .. " [PHI:ssn]\n", H.read(path), name)
      assert.equal("rw-------", lfs.attributes(path, "permissions"), name)
    end
    -- the source it read is untouched
    assert.equal("source " .. SSN .. "\n", H.read(root .. "/source.txt"))
  end)

  it("leaves Lua's channels as they were for novapipe exec", function()
    H.write(root .. "/plain.lua", ("print('%s'); io.write('%s\\n')"):format(SSN, SSN))
    local r = H.novapipe({ "exec", root .. "/plain.lua" })
    assert.equal(0, r.code, r.stderr)
    assert.equal(SSN .. "\n" .. SSN .. "\n", r.stdout)
  end)

  -- Static: novapipe's own modules write only through the sink. The raw
  -- writers are used where the bytes must stay exact, and nowhere else.
  it("is needed by no module of novapipe's own: they print and write through the sink", function()
    local home = os.getenv("NOVAPIPE_HOME") or "."
    local raw_users = { ["lua_modules/novapipe/run/sink.lua"] = true, ["lua_modules/novapipe/run/guard.lua"] = true,
                        ["lua_modules/novapipe/migrate.lua"] = true, ["lua_modules/novapipe/audit.lua"] = true }
    local checked = 0
    for _, dir in ipairs({ "lua_modules", "pipelines" }) do
      for _, rel in ipairs(assert(fs.walk(home .. "/" .. dir, { include = { "*.lua" } }))) do
        local name = dir .. "/" .. rel
        local code = H.read(home .. "/" .. name):gsub("%-%-[^\n]*", "")
        -- the same without the text of its strings (Python code, messages)
        local bare = code:gsub('"[^"\n]*"', '""'):gsub("'[^'\n]*'", "''")
        checked = checked + 1
        if name ~= "lua_modules/novapipe/run/guard.lua" and name ~= "lua_modules/novapipe/run/sink.lua" then
          assert.is_nil(bare:find("%f[%w_.:]print%("), name .. " calls print")
          assert.is_nil(bare:find("io%.write"), name .. " calls io.write")
          assert.is_nil(bare:find("io%.std[oe]"), name .. " uses io.stdout or io.stderr")
          assert.is_nil(bare:find("io%.output"), name .. " uses io.output")
          assert.is_nil(bare:find("os%.execute") or bare:find("io%.popen"), name .. " starts a child past the masker")
          assert.is_nil(code:find("io%.open%([^)]*[\"'][wa]"), name .. " opens a file for writing")
          assert.is_nil(bare:find("fs%.atomic_write") or bare:find("fs%.append") or bare:find("fs%.writer"),
            name .. " writes with novapipe.fs directly")
        end
        if not raw_users[name] then
          assert.is_nil(bare:find("%.raw%f[^%w_]"), name .. " uses the sink's raw writers")
        end
      end
    end
    assert.truthy(checked > 30, ("only %d modules read"):format(checked))
  end)
end)
