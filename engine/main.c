/*
 * main.c: novapipe's entry point, in the shape of lua.c. It creates a Lua
 * state, runs `pmain` under lua_pcall, and hands the command line to the Lua
 * CLI (novapipe.cli), whose return value is the exit code. Every error that
 * escapes is reported in one place and exits 2; an interrupt exits 130.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "alloc.h"
#include "host.h"
#include "lualib.h"

#define EXIT_USAGE 2
#define EXIT_INTERRUPTED 130

static const char *progname = "novapipe";

/* Prints an error message (a string or a value with __tostring). */
static void report(const char *msg) {
  fprintf(stderr, "%s: %s\n", progname, msg);
  fflush(stderr);
}

/* Message handler: adds a traceback to string errors; keeps error objects
 * that are tables (the CLI's own structured errors) as they are. */
static int msghandler(lua_State *L) {
  const char *msg = lua_tostring(L, 1);
  if (msg == NULL) {
    if (lua_istable(L, 1)) return 1;
    if (luaL_callmeta(L, 1, "__tostring") && lua_type(L, -1) == LUA_TSTRING) return 1;
    msg = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
  }
  luaL_traceback(L, L, msg, 1);
  return 1;
}

/* Calls the function below `narg` arguments with the message handler. */
static int docall(lua_State *L, int narg, int nres) {
  int base = lua_gettop(L) - narg;
  lua_pushcfunction(L, msghandler);
  lua_insert(L, base);
  int status = lua_pcall(L, narg, nres, base);
  lua_remove(L, base);
  return status;
}

/* Whether dir/lua_modules/novapipe/init.lua exists. */
static int is_root(const char *dir) {
  char probe[PATH_MAX];
  struct stat st;
  if (snprintf(probe, sizeof probe, "%s/lua_modules/novapipe/init.lua", dir) >= (int)sizeof probe)
    return 0;
  return stat(probe, &st) == 0;
}

/* Finds novapipe's Lua files relative to the executable, never the current
 * directory: $NOVAPIPE_HOME, then <bindir>/../share/novapipe (installed),
 * then <bindir>/.. (a build directory inside the source tree). */
static int find_root(char *out, size_t size) {
  const char *home = getenv("NOVAPIPE_HOME");
  if (home && *home) {
    if (!is_root(home)) return -1;
    snprintf(out, size, "%s", home);
    return 0;
  }
  char exe[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (n < 0) return -1;
  exe[n] = '\0';
  char *slash = strrchr(exe, '/');
  if (slash) *slash = '\0';
  char cand[PATH_MAX];
  snprintf(cand, sizeof cand, "%.*s/../share/novapipe", PATH_MAX - 32, exe);
  if (is_root(cand) && realpath(cand, out)) return 0;
  snprintf(cand, sizeof cand, "%.*s/..", PATH_MAX - 32, exe);
  if (is_root(cand) && realpath(cand, out)) return 0;
  return -1;
}

/* Puts root/lua_modules first on package.path and leaves the system paths
 * (argparse, LuaExpat, busted) after it. */
static void set_paths(lua_State *L, const char *root) {
  lua_getglobal(L, "package");
  lua_getfield(L, -1, "path");
  lua_pushfstring(L, "%s/lua_modules/?.lua;%s/lua_modules/?/init.lua;%s", root, root,
                  lua_tostring(L, -1));
  lua_setfield(L, -3, "path");
  lua_pop(L, 2);
}

/* Preloads `novapipe.host`: facts about this executable. */
static void set_host_info(lua_State *L, const char *root) {
  luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
  lua_createtable(L, 0, 3);
  lua_pushstring(L, root);
  lua_setfield(L, -2, "root");
  lua_pushstring(L, NOVAPIPE_VERSION);
  lua_setfield(L, -2, "version");
  lua_pushstring(L, LUA_RELEASE);
  lua_setfield(L, -2, "lua");
  lua_setfield(L, -2, "novapipe.host");
  lua_pop(L, 1);
}

/* pmain(argc, argv): runs the CLI and pushes the exit code. */
static int pmain(lua_State *L) {
  int argc = (int)lua_tointeger(L, 1);
  char **argv = (char **)lua_touserdata(L, 2);
  char root[PATH_MAX];
  luaL_checkversion(L);
  luaL_openlibs(L);
  np_open_modules(L);
  if (find_root(root, sizeof root) < 0) {
    report("cannot find novapipe's Lua modules beside the executable; "
           "reinstall novapipe or set NOVAPIPE_HOME to its share/novapipe directory");
    lua_pushinteger(L, EXIT_USAGE);
    return 1;
  }
  set_paths(L, root);
  np_chunks_init(L, root);
  set_host_info(L, root);
  np_signals_init(L);
  lua_getglobal(L, "require");
  lua_pushliteral(L, "novapipe.cli");
  if (docall(L, 1, 1) != LUA_OK) return lua_error(L);
  lua_getfield(L, -1, "main");
  lua_createtable(L, argc, 0);
  for (int i = 1; i < argc; i++) {
    lua_pushstring(L, argv[i]);
    lua_rawseti(L, -2, i);
  }
  if (docall(L, 1, 1) != LUA_OK) return lua_error(L);
  lua_pushinteger(L, luaL_optinteger(L, -1, 0));
  return 1;
}

/* Formats whatever pmain raised into one report. */
static void report_error(lua_State *L) {
  if (lua_istable(L, -1)) {
    lua_getfield(L, -1, "message");
    report(lua_isstring(L, -1) ? lua_tostring(L, -1) : "error");
    lua_pop(L, 1);
    return;
  }
  const char *msg = lua_tostring(L, -1);
  report(msg ? msg : "error (non-string error object)");
}

/* An error outside any lua_pcall (luaL_newstate's panic): said, then Lua
 * aborts. */
static int panic(lua_State *L) {
  const char *msg = lua_tostring(L, -1);
  fprintf(stderr, "%s: unprotected error in call to Lua API (%s)\n", progname, msg ? msg : "error object is not a string");
  fflush(stderr);
  return 0;
}

int main(int argc, char **argv) {
  /* luaL_newstate's state, on novapipe's allocator (alloc.c) */
  static NpPool pool;
  lua_State *L = lua_newstate(np_alloc, &pool);
  if (L == NULL) {
    report("cannot create Lua state: not enough memory");
    return EXIT_USAGE;
  }
  lua_atpanic(L, panic);
  atexit(np_proc_shutdown);
  lua_pushcfunction(L, pmain);
  lua_pushinteger(L, argc);
  lua_pushlightuserdata(L, argv);
  int status = lua_pcall(L, 2, 1, 0);
  int code;
  if (np_interrupted) {
    code = EXIT_INTERRUPTED;
  } else if (status == LUA_OK) {
    code = (int)lua_tointeger(L, -1);
  } else {
    report_error(L);
    code = EXIT_USAGE;
  }
  lua_close(L);
  np_pool_free(&pool);
  np_proc_shutdown();
  if (np_interrupted && status != LUA_OK) fprintf(stderr, "%s: interrupted\n", progname);
  return code;
}
