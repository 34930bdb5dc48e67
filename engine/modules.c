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
  {"novapipe.phiscan", luaopen_novapipe_phiscan},
  {"novapipe.jsontext", luaopen_novapipe_jsontext},
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

void np_class_tostring(lua_State *L, const char *name, lua_CFunction tostring) {
  luaL_getmetatable(L, name);
  lua_pushcfunction(L, tostring);
  lua_setfield(L, -2, "__tostring");
  lua_pop(L, 1);
}

void np_check_options(lua_State *L, int idx, int arg, const char *within, const char *const known[]) {
  idx = lua_absindex(L, idx);
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    lua_pop(L, 1);
    int found = 0;
    if (lua_type(L, -1) == LUA_TSTRING) {
      const char *key = lua_tostring(L, -1);
      for (const char *const *k = known; *k && !found; k++) found = strcmp(*k, key) == 0;
    }
    if (found) continue;
    luaL_Buffer b;
    /* The key is described before the buffer takes the stack. */
    if (lua_type(L, -1) == LUA_TSTRING) lua_pushfstring(L, "'%s'", lua_tostring(L, -1));
    else {
      const char *type = luaL_typename(L, -1);
      luaL_tolstring(L, -1, NULL);
      lua_pushfstring(L, "[%s] (a %s key)", lua_tostring(L, -1), type);
    }
    const char *what = lua_tostring(L, -1);
    luaL_buffinit(L, &b);
    luaL_addstring(&b, "unknown option ");
    luaL_addstring(&b, what);
    if (within) {
      luaL_addstring(&b, " in ");
      luaL_addstring(&b, within);
    }
    luaL_addstring(&b, "; known: ");
    for (const char *const *k = known; *k; k++) {
      if (k != known) luaL_addstring(&b, ", ");
      luaL_addstring(&b, *k);
    }
    luaL_pushresult(&b);
    luaL_argerror(L, arg, lua_tostring(L, -1));
  }
}

int np_fail(lua_State *L, const char *what, int err) {
  luaL_pushfail(L);
  lua_pushfstring(L, "%s: %s", what, strerror(err));
  lua_pushstring(L, strerrorname_np(err) ? strerrorname_np(err) : "EUNKNOWN");
  return 3;
}
