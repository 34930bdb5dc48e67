/*
 * pyscan_lua.c: novapipe.pyscan, the Python source scanner (pyscan.c) for
 * Lua. scan(source) and file(path) return a table of facts:
 *
 *   encoding         "utf-8", or what a PEP 263 line declares
 *   imports          {module, level, from, names = {{name, alias}}, star, line,
 *                     type_checking, optional, function}
 *   dynamic_imports  {module, via, line}: import_module("x"), __import__("x");
 *                    module "" for a non-literal argument (import_module(name))
 *   functions        {name, line, async, class, parent, params, decorators, names,
 *                    strings, first, last} (params, decorators, names and strings
 *                    are absent when empty; strings: the body's literals that look
 *                    like connection strings, with "://" or ":memory:";
 *                    source:sub(first, last) is the function, from its first
 *                    decorator to the end of its body's last line)
 *   classes          {name, line, bases, decorators} (bases and decorators are
 *                    absent when empty)
 *   assignments      {target, line, names, strings}: module-level NAME = ...
 *                    (strings: the value's plain string literals, absent when none)
 *   error            {line, message} when the source has a syntax error
 *
 * Options: names = "all" | "decorated" | "none" (which functions get the
 * names their bodies use), functions = PREFIX (only functions that are
 * decorated or whose name starts with PREFIX are reported), lean = true
 * (only functions that are decorated or take a parameter other than self,
 * cls, *args and **kw, and only classes that are decorated or, until a
 * test is seen, have a base: what fixture and marker analysis reads),
 * decorator = SUFFIX (with names = "decorated", only functions with a
 * decorator that ends with SUFFIX, or a plain name an import binds to a
 * name that does, keep their body's names: "fixture" for what can be
 * pytest.fixture).
 *
 * A decorator is {name, call, line, args = {{key, value, kind}}} (args absent
 * when it takes none) with kind
 * "string" (a literal's contents), "name" (a dotted name) or "raw".
 *
 * strings(source) lists its string literals: {value, line, fstring}.
 *
 * prefetch(paths, opts) reads and scans files on a second thread while Lua
 * works: pf:take(i) returns what file(paths[i], opts) would (waiting for
 * it), the Lua tables built from the worker's record (pyfacts.c).
 */
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "hash.h"
#include "host.h"
#include "oscore.h"
#include "pyfacts.h"
#include "pyscan.h"

typedef struct Out {
  lua_State *L;
  const PyFnFilter *filter; /* which functions are reported (NULL: all) */
  int facts; /* stack index of the facts table */
  int imports, dynamic, functions, classes, assignments;
  int nimports, ndynamic, nfunctions, nclasses, nassignments;
  /* What a lean filter leaves out, in brief: the names of tests (and of
   * Test* classes) it does not report, and whether a module-level
   * load_tests is among them. */
  char *left_tests, *left_classes;
  size_t nleft_tests, capleft_tests, nleft_classes, capleft_classes;
  int left_load_tests;
  int tested; /* a lean filter has seen a test (named with the prefix, not nested) */
} Out;

/* Appends a name and a space to a growing buffer (nothing on no memory:
 * the summary is then short, never wrong about what it holds). */
static void add_word(char **buf, size_t *n, size_t *cap, PyStr w) {
  if (*n + w.n + 1 > *cap) {
    size_t c = *cap ? *cap * 2 : 256;
    while (c < *n + w.n + 1) c *= 2;
    char *nb = realloc(*buf, c);
    if (!nb) return;
    *buf = nb;
    *cap = c;
  }
  memcpy(*buf + *n, w.p, w.n);
  (*buf)[*n + w.n] = ' ';
  *n += w.n + 1;
}

static int starts_with(PyStr s, const char *p, size_t n) {
  return s.n >= n && memcmp(s.p, p, n) == 0;
}

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
    /* (absent when there are none, as other lists: most decorators take
     * no arguments) */
    if (d[i].nargs == 0) {
      lua_rawseti(L, -2, i + 1);
      continue;
    }
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
  /* sized for its fields: a hash part of 16 would be twice the memory */
  lua_createtable(L, 0, 4 + !!m->is_from + !!m->star + !!m->type_checking + !!m->optional + (m->function.n > 0) +
                            2 * (m->ref_len > 0));
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
  if (o->filter && o->filter->lean && pyfacts_left_test(o->filter, f)) o->tested = 1;
  if (!pyfacts_wanted(o->filter, f)) {
    if (pyfacts_left_test(o->filter, f)) add_word(&o->left_tests, &o->nleft_tests, &o->capleft_tests, f->name);
    if (pyfacts_left_load_tests(o->filter, f)) o->left_load_tests = 1;
    return;
  }
  lua_createtable(L, 0, 4 + !!f->is_async + (f->klass.n > 0) + (f->parent.n > 0) + (f->nparams > 0) +
                            (f->ndecorators > 0) + (f->nstrings > 0) + (f->nnames > 0));
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
  if (f->nstrings) {
    push_strs(L, f->strings, f->nstrings);
    lua_setfield(L, -2, "strings");
  }
  if (f->nnames) {
    push_strs(L, f->names, f->nnames);
    lua_setfield(L, -2, "names");
  }
  /* source:sub(first, last) is the function, decorators included */
  set_int(L, "first", (lua_Integer)f->start + 1);
  set_int(L, "last", (lua_Integer)f->end);
  lua_rawseti(L, o->functions, ++o->nfunctions);
}

static void on_class(void *ctx, const PyClass *c) {
  Out *o = ctx;
  lua_State *L = o->L;
  /* Once a lean filter has seen a test, a class with a base but no
   * decorator says nothing more (its bases matter only to tell a file with
   * no test from an empty one): kept in brief, as those without a base. */
  if (!pyfacts_class_wanted(o->filter, c) || (o->tested && c->ndecorators == 0)) {
    if (starts_with(c->name, "Test", 4)) add_word(&o->left_classes, &o->nleft_classes, &o->capleft_classes, c->name);
    return;
  }
  lua_createtable(L, 0, 4);
  set_str(L, "name", c->name);
  set_int(L, "line", c->line);
  if (c->nbases) {
    push_strs(L, c->bases, c->nbases);
    lua_setfield(L, -2, "bases");
  }
  if (c->ndecorators) {
    push_decorators(L, c->decorators, c->ndecorators);
    lua_setfield(L, -2, "decorators");
  }
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
  if (a->nstrings) {
    push_strs(L, a->strings, a->nstrings);
    lua_setfield(L, -2, "strings");
  }
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

/* Pushes an empty facts table and points o at its lists. */
static void facts_begin(lua_State *L, Out *o, const PyFnFilter *filter) {
  lua_checkstack(L, 40);
  memset(o, 0, sizeof *o);
  o->L = L;
  o->filter = filter;
  lua_createtable(L, 0, 8);
  o->facts = lua_gettop(L);
  const char *lists[] = {"imports", "dynamic_imports", "functions", "classes", "assignments"};
  int *slots[] = {&o->imports, &o->dynamic, &o->functions, &o->classes, &o->assignments};
  for (int i = 0; i < 5; i++) {
    lua_newtable(L);
    lua_pushvalue(L, -1);
    lua_setfield(L, o->facts, lists[i]);
    *slots[i] = lua_gettop(L);
  }
}

/* Ends the facts of o: the stack back to the facts table, with what a
 * lean filter left out (left_tests, left_classes: names separated by
 * spaces; load_tests: a module-level load_tests it left out) when there is
 * any. */
static void facts_end(lua_State *L, Out *o) {
  lua_settop(L, o->facts);
  if (o->nleft_tests) {
    lua_pushlstring(L, o->left_tests, o->nleft_tests - 1);
    lua_setfield(L, o->facts, "left_tests");
  }
  if (o->nleft_classes) {
    lua_pushlstring(L, o->left_classes, o->nleft_classes - 1);
    lua_setfield(L, o->facts, "left_classes");
  }
  if (o->left_load_tests) {
    lua_pushboolean(L, 1);
    lua_setfield(L, o->facts, "load_tests");
  }
  free(o->left_tests);
  free(o->left_classes);
  o->left_tests = o->left_classes = NULL;
}

/* Pushes the facts of src; `names` is a PYSCAN_NAMES_ value, `filter`
 * (or NULL) says which functions are reported. */
static int push_facts(lua_State *L, const char *src, size_t n, int names, const PyFnFilter *filter) {
  Out o;
  facts_begin(L, &o, filter);
  PyVisitor v = {&o, on_encoding, on_import, on_dynamic, on_function, on_class, on_assignment, on_error, names,
                 filter ? filter->names_suffix : NULL};
  pyscan(src, n, &v);
  facts_end(L, &o);
  return 1;
}

/* The `names` option of opts at idx: "all" (default), "decorated", "none".
 * Raises on opts that are not a table or hold an unknown key (scan, file
 * and prefetch all read their options here first). */
static int names_option(lua_State *L, int idx) {
  static const char *const known[] = {"names", "functions", "lean", "decorator", NULL};
  if (lua_isnoneornil(L, idx)) return PYSCAN_NAMES_ALL;
  luaL_checktype(L, idx, LUA_TTABLE);
  np_check_options(L, idx, idx, NULL, known);
  lua_getfield(L, idx, "names");
  static const char *const opts[] = {"all", "decorated", "none", NULL};
  int v = luaL_checkoption(L, -1, "all", opts);
  lua_pop(L, 1);
  return v;
}

/* The `functions` option (nil for all, else a name prefix: functions not
 * decorated and not named so are left out), `lean` (leave out those that
 * are not decorated and take no parameter but self, cls, *args and **kw,
 * and classes that are not decorated, once a test is seen or when they
 * have no base) and `decorator` (with names = "decorated": only functions
 * with a decorator that ends with it, or a plain name an import binds to
 * such a name, keep their names) into f; NULL when none is set. The
 * strings stay on the stack. */
static const PyFnFilter *filter_option(lua_State *L, int idx, PyFnFilter *f) {
  memset(f, 0, sizeof *f);
  if (lua_isnoneornil(L, idx)) return NULL;
  lua_getfield(L, idx, "lean");
  f->lean = lua_toboolean(L, -1);
  lua_pop(L, 1);
  lua_getfield(L, idx, "functions");
  if (!lua_isnil(L, -1)) {
    f->prefix = luaL_checkstring(L, -1);
    f->prefix_len = strlen(f->prefix);
  }
  lua_getfield(L, idx, "decorator");
  if (!lua_isnil(L, -1)) f->names_suffix = luaL_checkstring(L, -1);
  return f->prefix || f->lean || f->names_suffix ? f : NULL;
}

/* pyscan.scan(source[, {names = "all"|"decorated"|"none", functions, lean, decorator}])
 * -> facts. Raises on an unknown option key. */
/* words(names, set): names is a string of identifiers separated by
 * spaces; each is split into words at "_" and where camel case turns
 * (TestApiKey: test, api, key), lower-cased. set maps a word to true, or to
 * a table of the words that may follow it (a two-word keyword: access then
 * token). Returns how many of the names hold a keyword, and the first such
 * name and its keyword (nothing for none). */
#define WORD_MAX 64

/* The next word of a name s[*k, end) into w (lower-cased; *len its length),
 * or 0 when there is none left. A word of WORD_MAX bytes or more (no
 * keyword) is passed over. */
static int next_word(const char *s, size_t *k, size_t end, char *w, size_t *len) {
  for (;;) {
    while (*k < end && (s[*k] == '_' || s[*k] == '-' || s[*k] == '.')) (*k)++;
    if (*k >= end) return 0;
    size_t start = *k, n = 0;
    while (*k < end && s[*k] != '_' && s[*k] != '-' && s[*k] != '.') {
      unsigned char c = (unsigned char)s[*k];
      int upper = c >= 'A' && c <= 'Z';
      if (*k > start && upper) {
        unsigned char prev = (unsigned char)s[*k - 1];
        int prev_lower = (prev >= 'a' && prev <= 'z') || (prev >= '0' && prev <= '9');
        int next_lower = *k + 1 < end && s[*k + 1] >= 'a' && s[*k + 1] <= 'z';
        int prev_upper = prev >= 'A' && prev <= 'Z';
        if (prev_lower || (prev_upper && next_lower)) break; /* a new word starts here */
      }
      if (n < WORD_MAX) w[n] = (char)(upper ? c + 32 : c);
      n++;
      (*k)++;
    }
    if (n < WORD_MAX) {
      *len = n;
      return 1;
    }
  }
}

/* A keyword set of words() as C reads it: open addressing over the words
 * (a value of true) and, for two-word keywords, "first\0second". Made once
 * for each set table (a weak cache in the registry): looking a word up then
 * makes no Lua string, where interning each word of a file's test names
 * had cost more than the rest of words(). */
#define WORDSET_MT "novapipe.pyscan.wordset"

typedef struct WordSet {
  char **keys; /* NULL where free */
  size_t *lens;
  size_t cap, n; /* cap: a power of two, or 0 */
  /* the first letters of two-word keywords' first words: a pair is looked
   * for only after a word that may start one */
  unsigned char heads[256];
} WordSet;

static size_t word_hash(const char *p, size_t n) {
  uint64_t h = np_fnv1a(p, n);
  return (size_t)(h ^ (h >> 32));
}

static int wordset_has(const WordSet *ws, const char *k, size_t n) {
  if (ws->cap == 0) return 0;
  for (size_t i = word_hash(k, n) & (ws->cap - 1);; i = (i + 1) & (ws->cap - 1)) {
    if (!ws->keys[i]) return 0;
    if (ws->lens[i] == n && memcmp(ws->keys[i], k, n) == 0) return 1;
  }
}

static void wordset_place(WordSet *ws, char *k, size_t n) {
  size_t i = word_hash(k, n) & (ws->cap - 1);
  while (ws->keys[i]) i = (i + 1) & (ws->cap - 1);
  ws->keys[i] = k;
  ws->lens[i] = n;
}

/* Adds a key (copied); -1 when out of memory. */
static int wordset_add(WordSet *ws, const char *k, size_t n) {
  if (wordset_has(ws, k, n)) return 0;
  if ((ws->n + 1) * 2 > ws->cap) {
    WordSet grown = {NULL, NULL, ws->cap ? ws->cap * 2 : 64, ws->n, {0}};
    memcpy(grown.heads, ws->heads, sizeof grown.heads);
    grown.keys = calloc(grown.cap, sizeof *grown.keys);
    grown.lens = calloc(grown.cap, sizeof *grown.lens);
    if (!grown.keys || !grown.lens) {
      free(grown.keys);
      free(grown.lens);
      return -1;
    }
    for (size_t i = 0; i < ws->cap; i++)
      if (ws->keys[i]) wordset_place(&grown, ws->keys[i], ws->lens[i]);
    free(ws->keys);
    free(ws->lens);
    *ws = grown;
  }
  char *copy = malloc(n ? n : 1);
  if (!copy) return -1;
  memcpy(copy, k, n);
  wordset_place(ws, copy, n);
  ws->n++;
  return 0;
}

static int wordset_gc(lua_State *L) {
  WordSet *ws = luaL_checkudata(L, 1, WORDSET_MT);
  for (size_t i = 0; i < ws->cap; i++) free(ws->keys[i]);
  free(ws->keys);
  free(ws->lens);
  memset(ws, 0, sizeof *ws);
  return 0;
}

/* The WordSet of the set table at idx, made the first time. */
static const WordSet *wordset_of(lua_State *L, int idx) {
  idx = lua_absindex(L, idx);
  if (luaL_getsubtable(L, LUA_REGISTRYINDEX, WORDSET_MT ".cache") == 0) {
    lua_createtable(L, 0, 1);
    lua_pushliteral(L, "k");
    lua_setfield(L, -2, "__mode");
    lua_setmetatable(L, -2);
  }
  lua_pushvalue(L, idx);
  if (lua_rawget(L, -2) == LUA_TUSERDATA) {
    const WordSet *ws = lua_touserdata(L, -1);
    lua_pop(L, 2);
    return ws;
  }
  lua_pop(L, 1);
  WordSet *ws = lua_newuserdatauv(L, sizeof *ws, 0);
  memset(ws, 0, sizeof *ws);
  if (luaL_newmetatable(L, WORDSET_MT)) {
    lua_pushcfunction(L, wordset_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_setmetatable(L, -2);
  int failed = 0;
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    if (lua_type(L, -2) == LUA_TSTRING) {
      size_t n;
      const char *k = lua_tolstring(L, -2, &n);
      if (lua_type(L, -1) == LUA_TBOOLEAN && lua_toboolean(L, -1)) {
        failed |= wordset_add(ws, k, n);
      } else if (lua_type(L, -1) == LUA_TTABLE && n > 0 && n < WORD_MAX) {
        ws->heads[(unsigned char)k[0]] = 1;
        /* first\0second for each second word mapped to true */
        lua_pushnil(L);
        while (lua_next(L, -2)) {
          size_t n2;
          if (lua_type(L, -2) == LUA_TSTRING && lua_type(L, -1) == LUA_TBOOLEAN && lua_toboolean(L, -1)) {
            const char *k2 = lua_tolstring(L, -2, &n2);
            if (n2 < WORD_MAX) {
              char pair[2 * WORD_MAX + 1];
              memcpy(pair, k, n);
              pair[n] = '\0';
              memcpy(pair + n + 1, k2, n2);
              failed |= wordset_add(ws, pair, n + 1 + n2);
            }
          }
          lua_pop(L, 1);
        }
      }
    }
    lua_pop(L, 1);
  }
  if (failed) luaL_error(L, "pyscan.words: out of memory");
  /* cache[set] = ws (the cache table is below ws) */
  lua_pushvalue(L, idx);
  lua_pushvalue(L, -2);
  lua_rawset(L, -4);
  lua_pop(L, 2);
  return ws;
}

static int l_words(lua_State *L) {
  size_t n;
  const char *s = luaL_checklstring(L, 1, &n);
  luaL_checktype(L, 2, LUA_TTABLE);
  lua_settop(L, 2);
  /* (the userdata stays referenced by the cache while the set lives, and
   * the set is argument 2: it cannot be collected during this call) */
  const WordSet *ws = wordset_of(L, 2);
  int hits = 0;
  size_t i = 0;
  while (i < n) {
    while (i < n && s[i] == ' ') i++;
    size_t start = i;
    while (i < n && s[i] != ' ') i++;
    size_t end = i;
    if (end == start) continue;
    /* the words of s[start, end), each with the one after it (a two-word
     * keyword), however many there are */
    char words[2][WORD_MAX];
    size_t lens[2];
    size_t k = start;
    int cur = 0;
    int have = next_word(s, &k, end, words[cur], &lens[cur]);
    while (have) {
      int nxt = 1 - cur;
      int have_next = next_word(s, &k, end, words[nxt], &lens[nxt]);
      int found = wordset_has(ws, words[cur], lens[cur]);
      int pair = 0;
      if (!found && have_next && ws->heads[(unsigned char)words[cur][0]]) {
        char both[2 * WORD_MAX + 1];
        memcpy(both, words[cur], lens[cur]);
        both[lens[cur]] = '\0';
        memcpy(both + lens[cur] + 1, words[nxt], lens[nxt]);
        found = pair = wordset_has(ws, both, lens[cur] + 1 + lens[nxt]);
      }
      if (found) {
        if (hits++ == 0) {
          lua_pushlstring(L, s + start, end - start);
          lua_pushlstring(L, words[cur], lens[cur]);
          if (pair) {
            lua_pushliteral(L, "_");
            lua_pushlstring(L, words[nxt], lens[nxt]);
            lua_concat(L, 3);
          }
        }
        break;
      }
      cur = nxt;
      have = have_next;
    }
  }
  if (hits == 0) return 0;
  lua_pushinteger(L, hits);
  lua_insert(L, 3);
  return 3;
}

static int l_scan(lua_State *L) {
  size_t n;
  const char *src = luaL_checklstring(L, 1, &n);
  int names = names_option(L, 2);
  PyFnFilter f;
  return push_facts(L, src, n, names, filter_option(L, 2, &f));
}

/* pyscan.strings(source) -> {{value, line, fstring}...}[, message, line]:
 * every string literal token, in order (value is the text between its
 * quotes, escapes as written; an f-string's text keeps its braces). Where
 * the source stops tokenizing, the list so far, the error and its line. */
static int l_strings(lua_State *L) {
  size_t n;
  const char *src = luaL_checklstring(L, 1, &n);
  PyLexer lx;
  PyTok t;
  pylex_init(&lx, src, n);
  lua_newtable(L);
  lua_Integer i = 0;
  for (;;) {
    int type = pylex_next(&lx, &t);
    if (type == PYT_END) return 1;
    if (type == PYT_ERROR) {
      lua_pushstring(L, lx.error);
      lua_pushinteger(L, lx.error_line);
      return 3;
    }
    if (type != PYT_STRING) continue;
    lua_createtable(L, 0, 3);
    push_str(L, pytok_string_contents(&t));
    lua_setfield(L, -2, "value");
    set_int(L, "line", t.line);
    set_bool(L, "fstring", t.fstring);
    lua_rawseti(L, -2, ++i);
  }
}

static int read_failure(lua_State *L, const char *path, int e) {
  lua_pushfstring(L, "read '%s'", path);
  return np_fail(L, lua_tostring(L, -1), e);
}

/* pyscan.file(path[, opts]) -> facts | nil, msg, errname: reads and scans a
 * file; opts as for scan. */
static int l_file(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  int names = names_option(L, 2);
  PyFnFilter f;
  const PyFnFilter *filter = filter_option(L, 2, &f);
  char *buf;
  size_t n;
  int e = os_read_file(path, &buf, &n);
  if (e) return read_failure(L, path, e);
  push_facts(L, buf, n, names, filter);
  free(buf);
  return 1;
}

/* ---- prefetch: scanning on a second thread ---- */

#define PREFETCH_MT "novapipe.pyscan.prefetch"

/* A file's state: the worker or the Lua thread claims it, whoever comes
 * first; so the Lua thread scans a file itself rather than wait for it.
 * While the file it wants is being recorded, the Lua thread records files
 * from the far end of the list (the worker starts at the front) rather than
 * wait. */
enum { SLOT_FREE, SLOT_RECORDING, SLOT_DONE, SLOT_LUA };

typedef struct Slot {
  char *path;
  PyFacts facts;
  int err;   /* an errno from reading */
  int state; /* under the mutex */
  int taken; /* its record was replayed and freed */
} Slot;

typedef struct Prefetch {
  pthread_t thread;
  int started;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int stop; /* under the mutex */
  Slot *slots;
  int n;
  int tail; /* under the mutex: where the Lua thread looks for a file to record */
  int names;
  PyFnFilter filter; /* its strings are the copies below */
  int filtered;
  char *prefix, *suffix;
} Prefetch;

/* Reads and records a slot claimed as SLOT_RECORDING (outside the mutex),
 * then publishes it. */
static void record_slot(Prefetch *pf, Slot *s) {
  char *buf = NULL;
  size_t n = 0;
  PyFacts facts = {0};
  int e = os_read_file(s->path, &buf, &n);
  if (!e) {
    pyfacts_record(buf, n, pf->names, pf->filtered ? &pf->filter : NULL, &facts);
    free(buf);
  }
  pthread_mutex_lock(&pf->mu);
  s->facts = facts;
  s->err = e;
  s->state = SLOT_DONE;
  pthread_cond_broadcast(&pf->cv);
  pthread_mutex_unlock(&pf->mu);
}

/* The worker goes through the files from the first. */
static void *prefetch_worker(void *arg) {
  Prefetch *pf = arg;
  for (int i = 0; i < pf->n; i++) {
    Slot *s = &pf->slots[i];
    pthread_mutex_lock(&pf->mu);
    if (pf->stop) {
      pthread_mutex_unlock(&pf->mu);
      break;
    }
    int mine = s->state == SLOT_FREE;
    if (mine) s->state = SLOT_RECORDING;
    pthread_mutex_unlock(&pf->mu);
    if (mine) record_slot(pf, s);
  }
  return NULL;
}

/* Under the mutex: claims the last file not begun after slot `after`, for
 * the Lua thread to record while the file it wants is being recorded. */
static Slot *claim_from_end(Prefetch *pf, int after) {
  while (pf->tail > after && pf->slots[pf->tail].state != SLOT_FREE) pf->tail--;
  if (pf->tail <= after) return NULL;
  Slot *s = &pf->slots[pf->tail--];
  s->state = SLOT_RECORDING;
  return s;
}

static void prefetch_close(Prefetch *pf) {
  if (pf->started) {
    pthread_mutex_lock(&pf->mu);
    pf->stop = 1;
    pthread_mutex_unlock(&pf->mu);
    pthread_join(pf->thread, NULL);
    pf->started = 0;
    pthread_mutex_destroy(&pf->mu);
    pthread_cond_destroy(&pf->cv);
  }
  for (int i = 0; i < pf->n; i++) {
    free(pf->slots[i].path);
    pyfacts_free(&pf->slots[i].facts);
  }
  free(pf->slots);
  pf->slots = NULL;
  pf->n = 0;
  free(pf->prefix);
  pf->prefix = NULL;
  free(pf->suffix);
  pf->suffix = NULL;
}

static int l_prefetch_gc(lua_State *L) {
  prefetch_close(luaL_checkudata(L, 1, PREFETCH_MT));
  return 0;
}

/* pyscan.prefetch(paths[, opts]) -> pf: starts reading and scanning the
 * files, in order, on a second thread. */
static int l_prefetch(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  int names = names_option(L, 2);
  PyFnFilter f;
  const PyFnFilter *filter = filter_option(L, 2, &f);
  const char *prefix = filter ? filter->prefix : NULL;
  const char *suffix = filter ? filter->names_suffix : NULL;
  lua_Integer n = luaL_len(L, 1);
  Prefetch *pf = lua_newuserdatauv(L, sizeof *pf, 0);
  memset(pf, 0, sizeof *pf);
  luaL_setmetatable(L, PREFETCH_MT);
  pf->names = names;
  pf->slots = calloc(n > 0 ? (size_t)n : 1, sizeof *pf->slots);
  pf->prefix = prefix ? strdup(prefix) : NULL;
  pf->suffix = suffix ? strdup(suffix) : NULL;
  if (!pf->slots || (prefix && !pf->prefix) || (suffix && !pf->suffix))
    return luaL_error(L, "pyscan.prefetch: out of memory");
  if (filter) {
    pf->filtered = 1;
    pf->filter = *filter;
    pf->filter.prefix = pf->prefix;
    pf->filter.names_suffix = pf->suffix;
  }
  for (lua_Integer i = 1; i <= n; i++) {
    lua_geti(L, 1, i);
    const char *path = lua_tostring(L, -1);
    if (!path) return luaL_error(L, "pyscan.prefetch: paths[%d] is not a string", (int)i);
    pf->slots[pf->n].path = strdup(path);
    if (!pf->slots[pf->n].path) return luaL_error(L, "pyscan.prefetch: out of memory");
    pf->n++;
    lua_pop(L, 1);
  }
  pf->tail = pf->n - 1;
  pthread_mutex_init(&pf->mu, NULL);
  pthread_cond_init(&pf->cv, NULL);
  /* The worker takes no signals: they stay with the thread that runs Lua. */
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  int rc = pthread_create(&pf->thread, NULL, prefetch_worker, pf);
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  if (rc == 0) {
    pf->started = 1;
  } else {
    /* No thread: every take scans on this one. */
    pthread_mutex_destroy(&pf->mu);
    pthread_cond_destroy(&pf->cv);
  }
  return 1;
}

/* pf:take(i) -> facts | nil, msg, errname, as file(paths[i], opts) */
static int l_prefetch_take(lua_State *L) {
  Prefetch *pf = luaL_checkudata(L, 1, PREFETCH_MT);
  lua_Integer i = luaL_checkinteger(L, 2);
  luaL_argcheck(L, i >= 1 && i <= pf->n, 2, "no such file in this prefetch");
  Slot *s = &pf->slots[i - 1];
  int ready = 0; /* the worker's record is there to replay */
  if (pf->started) {
    pthread_mutex_lock(&pf->mu);
    if (s->state == SLOT_FREE) s->state = SLOT_LUA; /* not begun: scanned here, now */
    while (s->state == SLOT_RECORDING) {
      Slot *other = claim_from_end(pf, (int)(i - 1));
      if (!other) {
        pthread_cond_wait(&pf->cv, &pf->mu);
        continue;
      }
      pthread_mutex_unlock(&pf->mu);
      record_slot(pf, other);
      pthread_mutex_lock(&pf->mu);
    }
    ready = s->state == SLOT_DONE && !s->facts.failed && !s->taken;
    pthread_mutex_unlock(&pf->mu);
  }
  if (!ready) {
    /* Not scanned yet (or no thread, or the record ran out of memory, or
     * taken before): scan here. */
    char *buf;
    size_t n;
    int e = os_read_file(s->path, &buf, &n);
    if (e) return read_failure(L, s->path, e);
    push_facts(L, buf, n, pf->names, pf->filtered ? &pf->filter : NULL);
    free(buf);
    return 1;
  }
  if (s->err) return read_failure(L, s->path, s->err);
  Out o;
  facts_begin(L, &o, pf->filtered ? &pf->filter : NULL);
  PyVisitor v = {&o, on_encoding, on_import, on_dynamic, on_function, on_class, on_assignment, on_error, pf->names,
                 NULL};
  int rc = pyfacts_replay(s->facts.p, s->facts.n, &v);
  facts_end(L, &o);
  pyfacts_free(&s->facts);
  s->taken = 1;
  if (rc < 0) return luaL_error(L, "pyscan.prefetch: a damaged record for %s", s->path);
  return 1;
}

/* pf:close(): stops the worker and frees what it holds. */
static int l_prefetch_close(lua_State *L) {
  prefetch_close(luaL_checkudata(L, 1, PREFETCH_MT));
  return 0;
}

static const luaL_Reg pyscan_funcs[] = {
  {"words", l_words},
  {"scan", l_scan},
  {"file", l_file},
  {"prefetch", l_prefetch},
  {"strings", l_strings},
  {NULL, NULL},
};

static const luaL_Reg prefetch_methods[] = {
  {"take", l_prefetch_take},
  {"close", l_prefetch_close},
  {NULL, NULL},
};

int luaopen_novapipe_pyscan(lua_State *L) {
  np_new_class(L, PREFETCH_MT, prefetch_methods, l_prefetch_gc);
  luaL_newlib(L, pyscan_funcs);
  return 1;
}
