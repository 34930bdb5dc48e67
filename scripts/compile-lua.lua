-- Compiles novapipe's Lua modules ahead of time (engine/chunks.c loads
-- them): each ROOT/lua_modules/**/*.lua into OUT/lua_modules/**/*.luac,
-- behind a header with the source's FNV-1a hash, size and path, so that
-- a module edited since is compiled from its source as before. AS is the
-- root novapipe will load them from, when not ROOT (an install into a
-- staging DESTDIR). Run by the build and by `cmake --install`:
--   novapipe exec scripts/compile-lua.lua ROOT OUT [AS]
local fs = require "novapipe.fs"

local root, out, as = arg[1], arg[2], arg[3] or arg[1]
if not (root and out) then
  io.stderr:write("usage: novapipe exec scripts/compile-lua.lua ROOT OUT [AS]\n")
  os.exit(2)
end

-- as engine/chunks.c computes it (64-bit integers wrap)
local function fnv1a(s)
  local h = -3750763034362895579 -- 14695981039346656037
  for i = 1, #s do
    h = (h ~ s:byte(i)) * 1099511628211
  end
  return h
end

local files = assert(fs.walk(root .. "/lua_modules", { include = { "*.lua" } }))
for _, rel in ipairs(files) do
  local text = assert(fs.read(root .. "/lua_modules/" .. rel))
  local source = as .. "/lua_modules/" .. rel
  local chunk = assert(load(text, "@" .. source))
  local target = out .. "/lua_modules/" .. rel .. "c"
  assert(fs.mkdir_p(target:match("^(.*)/[^/]*$"), "0755"))
  assert(fs.atomic_write(target, ("NPC1 %016x %d %s\n"):format(fnv1a(text), #text, source) .. string.dump(chunk),
    "0644"))
end
print(("%d modules compiled into %s"):format(#files, out))
