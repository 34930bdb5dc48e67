/*
 * pyscan_lua.c: novapipe.pyscan, the Python source scanner (pyscan.c) for
 * Lua. scan(source) and file(path) return a table of facts:
 *
 *   encoding         "utf-8", or what a PEP 263 line declares
 *   imports          {module, level, from, names = {{name, alias}}, star, line,
 *                     type_checking, optional, function}
 *   dynamic_imports  {module, via, line}: import_module("x"), __import__("x")
 *   functions        {name, line, async, class, parent, params, decorators, names}
 *                    (params, decorators and names are absent when empty)
 *   classes          {name, line, bases, decorators}
 *   assignments      {target, line, names}: module-level NAME = ...
 *   error            {line, message} when the source has a syntax error
 *
 * Options: names = "all" | "decorated" | "none" (which functions get the
 * names their bodies use), functions = PREFIX (only functions that are
 * decorated or whose name starts with PREFIX are reported).
 *
 * A decorator is {name, call, line, args = {{key, value, kind}}} with kind
 * "string" (a literal's contents), "name" (a dotted name) or "raw".
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "host.h"
#include "pyscan.h"

typedef struct Out {
  lua_State *L;
  const char *prefix; /* only functions named so, or decorated (NULL: all) */
  size_t prefix_len;
  int facts; /* stack index of the facts table */
  int imports, dynamic, functions, classes, assignments;
  int nimports, ndynamic, nfunctions, nclasses, nassignments;
} Out;

static void push_str(lua_State *L, PyStr s) {
  lua_pushlstring(L, s.p, s.n);
}

static void set_str(lua_State *L, const char *key, PyStr s) {
  if (s.n == 0) return;
  push_str(L, s);
  lua_setfield(L, -2, key);
}

static void set_int(lua_State *L, const char *key, lua_Integer v) {
  lua_pushinteger(L, v);
  lua_setfield(L, -2, key);
}

static void set_bool(lua_State *L, const char *key, int v) {
  if (!v) return;
  lua_pushboolean(L, 1);
  lua_setfield(L, -2, key);
}

static void push_strs(lua_State *L, const PyStr *v, int n) {
  lua_createtable(L, n, 0);
  for (int i = 0; i < n; i++) {
    push_str(L, v[i]);
    lua_rawseti(L, -2, i + 1);
  }
}

static void push_decorators(lua_State *L, const PyDecorator *d, int n) {
  lua_createtable(L, n, 0);
  for (int i = 0; i < n; i++) {
    lua_createtable(L, 0, 4);
    set_str(L, "name", d[i].name);
    set_bool(L, "call", d[i].call);
    set_int(L, "line", d[i].line);
    lua_createtable(L, d[i].nargs, 0);
    for (int k = 0; k < d[i].nargs; k++) {
      const PyArg *a = &d[i].args[k];
      lua_createtable(L, 0, 3);
      set_str(L, "key", a->key);
      push_str(L, a->value);
      lua_setfield(L, -2, "value");
      lua_pushstring(L, a->kind == 's' ? "string" : a->kind == 'n' ? "name" : "raw");
      lua_setfield(L, -2, "kind");
      lua_rawseti(L, -2, k + 1);
    }
    lua_setfield(L, -2, "args");
    lua_rawseti(L, -2, i + 1);
  }
}

static void on_encoding(void *ctx, PyStr name) {
  Out *o = ctx;
  push_str(o->L, name);
  lua_setfield(o->L, o->facts, "encoding");
}

static void on_import(void *ctx, const PyImport *m) {
  Out *o = ctx;
  lua_State *L = o->L;
  lua_createtable(L, 0, 10);
  push_str(L, m->module);
  lua_setfield(L, -2, "module");
  set_int(L, "level", m->level);
  set_bool(L, "from", m->is_from);
  set_bool(L, "star", m->star);
  set_int(L, "line", m->line);
  set_bool(L, "type_checking", m->type_checking);
  set_bool(L, "optional", m->optional);
  set_str(L, "function", m->function);
  if (m->ref_len) {
    /* where "..pkg.mod" is, as Lua string positions: src:sub(first, last) */
    set_int(L, "ref_first", (lua_Integer)m->ref_start + 1);
    set_int(L, "ref_last", (lua_Integer)(m->ref_start + m->ref_len));
  }
  lua_createtable(L, m->nnames, 0);
  for (int i = 0; i < m->nnames; i++) {
    lua_createtable(L, 0, 2);
    set_str(L, "name", m->names[i].name);
    set_str(L, "alias", m->names[i].alias);
    lua_rawseti(L, -2, i + 1);
  }
  lua_setfield(L, -2, "names");
  lua_rawseti(L, o->imports, ++o->nimports);
}

static void on_dynamic(void *ctx, PyStr module, PyStr via, int line) {
  Out *o = ctx;
  lua_State *L = o->L;
  lua_createtable(L, 0, 3);
  push_str(L, module);
  lua_setfield(L, -2, "module");
  set_str(L, "via", via);
  set_int(L, "line", line);
  lua_rawseti(L, o->dynamic, ++o->ndynamic);
}

static void on_function(void *ctx, const PyFunction *f) {
  Out *o = ctx;
  lua_State *L = o->L;
  if (o->prefix && f->ndecorators == 0 &&
      !(f->name.n >= o->prefix_len && memcmp(f->name.p, o->prefix, o->prefix_len) == 0))
    return;
  lua_createtable(L, 0, 9);
  set_str(L, "name", f->name);
  set_int(L, "line", f->line);
  set_bool(L, "async", f->is_async);
  set_str(L, "class", f->klass);
  set_str(L, "parent", f->parent);
  /* Lists that would be empty are left out: absent means none. */
  if (f->nparams) {
    push_strs(L, f->params, f->nparams);
    lua_setfield(L, -2, "params");
  }
  if (f->ndecorators) {
    push_decorators(L, f->decorators, f->ndecorators);
    lua_setfield(L, -2, "decorators");
  }
  if (f->nnames) {
    push_strs(L, f->names, f->nnames);
    lua_setfield(L, -2, "names");
  }
  lua_rawseti(L, o->functions, ++o->nfunctions);
}

static void on_class(void *ctx, const PyClass *c) {
  Out *o = ctx;
  lua_State *L = o->L;
  lua_createtable(L, 0, 4);
  set_str(L, "name", c->name);
  set_int(L, "line", c->line);
  push_strs(L, c->bases, c->nbases);
  lua_setfield(L, -2, "bases");
  push_decorators(L, c->decorators, c->ndecorators);
  lua_setfield(L, -2, "decorators");
  lua_rawseti(L, o->classes, ++o->nclasses);
}

static void on_assignment(void *ctx, const PyAssign *a) {
  Out *o = ctx;
  lua_State *L = o->L;
  lua_createtable(L, 0, 3);
  set_str(L, "target", a->target);
  set_int(L, "line", a->line);
  push_strs(L, a->names, a->nnames);
  lua_setfield(L, -2, "names");
  lua_rawseti(L, o->assignments, ++o->nassignments);
}

static void on_error(void *ctx, int line, const char *message) {
  Out *o = ctx;
  lua_State *L = o->L;
  lua_createtable(L, 0, 2);
  set_int(L, "line", line);
  lua_pushstring(L, message);
  lua_setfield(L, -2, "message");
  lua_setfield(L, o->facts, "error");
}

/* Pushes the facts of src; `names` is a PYSCAN_NAMES_ value, `prefix`
 * (or NULL) limits the functions reported to decorated ones and those whose
 * name starts with it. */
static int push_facts(lua_State *L, const char *src, size_t n, int names, const char *prefix) {
  lua_checkstack(L, 40);
  Out o;
  memset(&o, 0, sizeof o);
  o.L = L;
  o.prefix = prefix;
  o.prefix_len = prefix ? strlen(prefix) : 0;
  lua_createtable(L, 0, 8);
  o.facts = lua_gettop(L);
  const char *lists[] = {"imports", "dynamic_imports", "functions", "classes", "assignments"};
  int *slots[] = {&o.imports, &o.dynamic, &o.functions, &o.classes, &o.assignments};
  for (int i = 0; i < 5; i++) {
    lua_newtable(L);
    lua_pushvalue(L, -1);
    lua_setfield(L, o.facts, lists[i]);
    *slots[i] = lua_gettop(L);
  }
  PyVisitor v = {&o, on_encoding, on_import, on_dynamic, on_function, on_class, on_assignment, on_error, names};
  pyscan(src, n, &v);
  lua_settop(L, o.facts);
  return 1;
}

/* The `names` option of opts at idx: "all" (default), "decorated", "none". */
static int names_option(lua_State *L, int idx) {
  if (lua_isnoneornil(L, idx)) return PYSCAN_NAMES_ALL;
  luaL_checktype(L, idx, LUA_TTABLE);
  lua_getfield(L, idx, "names");
  static const char *const opts[] = {"all", "decorated", "none", NULL};
  int v = luaL_checkoption(L, -1, "all", opts);
  lua_pop(L, 1);
  return v;
}

/* The `functions` option: nil for all, else a name prefix (functions not
 * decorated and not named so are left out). The string stays on the stack. */
static const char *functions_option(lua_State *L, int idx) {
  if (lua_isnoneornil(L, idx)) return NULL;
  lua_getfield(L, idx, "functions");
  if (lua_isnil(L, -1)) return NULL;
  return luaL_checkstring(L, -1);
}

/* pyscan.scan(source[, {names = "all"|"decorated"|"none"}]) -> facts */
static int l_scan(lua_State *L) {
  size_t n;
  const char *src = luaL_checklstring(L, 1, &n);
  int names = names_option(L, 2);
  return push_facts(L, src, n, names, functions_option(L, 2));
}

/* pyscan.file(path[, opts]) -> facts | nil, msg, errname: reads and scans a
 * file; opts as for scan. */
static int l_file(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  int names = names_option(L, 2);
  const char *prefix = functions_option(L, 2);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    int e = errno;
    lua_pushfstring(L, "read '%s'", path);
    return np_fail(L, lua_tostring(L, -1), e);
  }
  struct stat st;
  if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
    int e = S_ISDIR(st.st_mode) ? EISDIR : errno;
    close(fd);
    lua_pushfstring(L, "read '%s'", path);
    return np_fail(L, lua_tostring(L, -1), e ? e : EINVAL);
  }
  size_t size = (size_t)st.st_size, got = 0;
  char *buf = malloc(size ? size : 1);
  if (!buf) {
    close(fd);
    return np_fail(L, "read", ENOMEM);
  }
  while (got < size) {
    ssize_t r = read(fd, buf + got, size - got);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    got += (size_t)r;
  }
  close(fd);
  push_facts(L, buf, got, names, prefix);
  free(buf);
  return 1;
}

static const luaL_Reg pyscan_funcs[] = {
  {"scan", l_scan},
  {"file", l_file},
  {NULL, NULL},
};

int luaopen_novapipe_pyscan(lua_State *L) {
  luaL_newlib(L, pyscan_funcs);
  return 1;
}
