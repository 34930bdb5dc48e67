/*
 * chunks.c: novapipe's own Lua modules, compiled ahead of time. The build
 * (and `cmake --install`, for the installed copy) dumps each module under
 * lua_modules/ into a luac/ directory beside the executable or under the
 * installed share/novapipe (scripts/compile-lua.lua), each behind a header
 * naming its source's path, size and FNV-1a hash. A searcher placed before
 * Lua's own loads a module from there only when its source, read now, is
 * still that one: an edited module is compiled from its source as before,
 * an unedited one is not compiled at every start (some 40 million
 * instructions of a run of analyze went to compiling).
 *
 * Anything amiss (no chunk, another source, a chunk this Lua cannot load)
 * leaves the module to Lua's searcher; nothing here raises.
 */
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hash.h"
#include "host.h"
#include "oscore.h"

#define MAGIC "NPC1 "

/* Pushes the compiled chunk of `source` (text of len bytes) from the cache
 * file `cached`, or returns 0 having pushed nothing. */
static int load_cached(lua_State *L, const char *source, const char *text, size_t len, const char *cached) {
  size_t n;
  char *c;
  if (os_read_file(cached, &c, &n)) return 0;
  char want[64 + PATH_MAX];
  int w = snprintf(want, sizeof want, MAGIC "%016llx %zu %s\n", (unsigned long long)np_fnv1a(text, len), len, source);
  int ok = 0;
  if (w > 0 && (size_t)w < sizeof want && n > (size_t)w && memcmp(c, want, (size_t)w) == 0) {
    ok = luaL_loadbufferx(L, c + w, n - (size_t)w, source, "b") == LUA_OK;
    if (!ok) lua_pop(L, 1); /* (the message of a chunk this Lua cannot load) */
  }
  free(c);
  return ok;
}

/* The searcher: upvalue 1 is novapipe's root, 2 and 3 the directories that
 * may hold compiled chunks. Returns the loader and the source's path, or
 * nothing (Lua's searchers go on). */
static int searcher(lua_State *L) {
  const char *name = luaL_checkstring(L, 1);
  const char *root = lua_tostring(L, lua_upvalueindex(1));
  char rel[PATH_MAX];
  size_t k = 0;
  for (const char *p = name; *p; p++) {
    if (k + 16 >= sizeof rel) return 0; /* (no module of ours has such a name) */
    rel[k++] = *p == '.' ? '/' : *p;
  }
  rel[k] = '\0';
  for (int i = 0; i < 2; i++) {
    char file[PATH_MAX], source[PATH_MAX];
    if (snprintf(file, sizeof file, "%s%s", rel, i ? "/init.lua" : ".lua") >= (int)sizeof file ||
        snprintf(source, sizeof source, "%s/lua_modules/%s", root, file) >= (int)sizeof source)
      return 0;
    size_t len;
    char *text;
    if (os_read_file(source, &text, &len)) continue;
    for (int d = 2; d <= 3; d++) {
      const char *dir = lua_tostring(L, lua_upvalueindex(d));
      char cached[PATH_MAX];
      if (!dir || snprintf(cached, sizeof cached, "%s/lua_modules/%sc", dir, file) >= (int)sizeof cached) continue;
      if (load_cached(L, source, text, len, cached)) {
        free(text);
        lua_pushstring(L, source);
        return 2;
      }
    }
    free(text);
    return 0; /* the source is there: Lua's searcher compiles it */
  }
  return 0;
}

void np_chunks_init(lua_State *L, const char *root) {
  char exe[PATH_MAX], dir[PATH_MAX + 8];
  ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
  lua_getglobal(L, "package");
  lua_getfield(L, -1, "searchers");
  lua_pushstring(L, root);
  /* beside the executable (a build directory), and under the root (the
   * installed share/novapipe) */
  if (n > 0) {
    exe[n] = '\0';
    char *slash = strrchr(exe, '/');
    if (slash) *slash = '\0';
    snprintf(dir, sizeof dir, "%s/luac", exe);
    lua_pushstring(L, dir);
  } else {
    lua_pushnil(L);
  }
  lua_pushfstring(L, "%s/luac", root);
  lua_pushcclosure(L, searcher, 3);
  /* after package.preload's, before Lua's own */
  for (lua_Integer i = (lua_Integer)luaL_len(L, -2); i >= 2; i--) {
    lua_geti(L, -2, i);
    lua_seti(L, -3, i + 1);
  }
  lua_seti(L, -2, 2);
  lua_pop(L, 2);
}
