/*
 * modules.c: the one place that lists every module the host provides.
 * Host modules and the linked LuaFileSystem and lua-cjson are put in
 * package.preload, so `require` finds them without any search path.
 */
#include <errno.h>
#include <string.h>

#include "host.h"

int luaopen_lfs(lua_State *L);
int luaopen_cjson(lua_State *L);

static const luaL_Reg modules[] = {
  {"novapipe.proc", luaopen_novapipe_proc},
  {"novapipe.fs", luaopen_novapipe_fs},
  {"novapipe.time", luaopen_novapipe_time},
  {"novapipe.term", luaopen_novapipe_term},
  {"novapipe.pyscan", luaopen_novapipe_pyscan},
  {"novapipe.digest", luaopen_novapipe_digest},
  {"lfs", luaopen_lfs},
  {"cjson", luaopen_cjson},
  {NULL, NULL},
};

void np_open_modules(lua_State *L) {
  luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
  for (const luaL_Reg *m = modules; m->name; m++) {
    lua_pushcfunction(L, m->func);
    lua_setfield(L, -2, m->name);
  }
  lua_pop(L, 1);
}

void np_new_class(lua_State *L, const char *name, const luaL_Reg *methods, lua_CFunction release) {
  luaL_newmetatable(L, name);
  lua_newtable(L);
  luaL_setfuncs(L, methods, 0);
  lua_setfield(L, -2, "__index");
  lua_pushcfunction(L, release);
  lua_setfield(L, -2, "__gc");
  lua_pushcfunction(L, release);
  lua_setfield(L, -2, "__close");
  lua_pop(L, 1);
}

int np_fail(lua_State *L, const char *what, int err) {
  luaL_pushfail(L);
  lua_pushfstring(L, "%s: %s", what, strerror(err));
  lua_pushstring(L, strerrorname_np(err) ? strerrorname_np(err) : "EUNKNOWN");
  return 3;
}
