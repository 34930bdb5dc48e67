/*
 * phiscan_lua.c: novapipe.phiscan, the PHI scanner (phiscan.c) for Lua.
 *
 *   phiscan.new{domains =, tlds =, leads =, always =} -> Scanner
 *     domains, tlds: synthetic domains and top-level domains (any case);
 *     leads: the leading literal text of the MRN patterns; always: a
 *     pattern has none (every line then needs the Lua policy).
 *   scanner:scan(line) -> nil | {s1, e1, kind1, s2, e2, kind2, ...}
 *     the values found, 1-based and inclusive, in order; remembers a birth
 *     word that closes the line for the next call.
 *   scanner:quiet(text) -> boolean   nothing the scanner finds in the
 *     whole text, no birth or SSN word, no date pending (MRN patterns are
 *     Lua's to try)
 *   scanner:pending([flag]) -> boolean   the date-of-birth carry-over
 *   scanner:filter(fn) -> Filter
 *     a callable for novapipe.proc's `filter`: filter(line) is fn(line);
 *     the process filter point masks each line in C and calls fn only for
 *     the lines the Lua policy must see (an MRN pattern's leading text, a
 *     value of a kind with `allow` patterns).
 *   policy = {kind, ...} and mask = "[PHI:%s]" in new's options: the kinds
 *     with `allow` patterns, and the mask the filter point writes.
 *   mrn = {pattern, ...} in new's options: the MRN patterns, which the
 *     filter point then applies itself (engine/luapat.c) when each is in
 *     luapat's subset; without them, or outside it, their lines are Lua's.
 *   phiscan.gsub(s, pattern, repl) -> string, count | nil   luapat's gsub,
 *     nil for a pattern outside its subset (for the specs).
 */
#include <stdlib.h>
#include <string.h>

#include "host.h"
#include "luapat.h"
#include "phiscan.h"

#define SCANNER_MT "novapipe.PhiScanner"
#define FILTER_MT "novapipe.PhiFilter"

typedef struct Scanner {
  PhiConfig cfg;
  char **strs; /* every string the configuration points at, owned */
  size_t nstrs;
  const char **lists; /* domains, then tlds, then leads */
  int pending;
  PhiHits hits;
  PhiText text; /* the filter point's masked line */
} Scanner;

static int l_scanner_gc(lua_State *L) {
  Scanner *sc = luaL_checkudata(L, 1, SCANNER_MT);
  for (size_t i = 0; i < sc->nstrs; i++) free(sc->strs[i]);
  free(sc->strs);
  free(sc->lists);
  phiscan_hits_free(&sc->hits);
  free(sc->text.p);
  free(sc->text.q);
  sc->text.p = sc->text.q = NULL;
  sc->text.qlen = sc->text.qcap = 0;
  sc->text.len = sc->text.cap = 0;
  sc->strs = NULL;
  sc->lists = NULL;
  sc->nstrs = 0;
  memset(&sc->cfg, 0, sizeof sc->cfg);
  return 0;
}

/* Copies the strings of the list at opts[key] (lower-cased when `lower`)
 * into sc; returns how many. Raises on a value that is not a string. */
static size_t copy_list(lua_State *L, Scanner *sc, const char *key, int lower, size_t at) {
  size_t count = 0;
  if (lua_getfield(L, 1, key) == LUA_TNIL) {
    lua_pop(L, 1);
    return 0;
  }
  luaL_checktype(L, -1, LUA_TTABLE);
  lua_Integer len = luaL_len(L, -1);
  for (lua_Integer i = 1; i <= len; i++) {
    lua_rawgeti(L, -1, i);
    size_t n;
    const char *v = lua_tolstring(L, -1, &n);
    if (lua_type(L, -1) != LUA_TSTRING) luaL_error(L, "bad option '%s': a list of strings expected", key);
    char *copy = malloc(n + 1);
    if (!copy) luaL_error(L, "not enough memory");
    for (size_t k = 0; k < n; k++) copy[k] = lower && v[k] >= 'A' && v[k] <= 'Z' ? (char)(v[k] + 32) : v[k];
    copy[n] = '\0';
    sc->strs[sc->nstrs++] = copy;
    sc->lists[at + count++] = copy;
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
  return count;
}

static lua_Integer list_len(lua_State *L, const char *key) {
  lua_Integer n = 0;
  if (lua_getfield(L, 1, key) == LUA_TTABLE) n = luaL_len(L, -1);
  lua_pop(L, 1);
  return n;
}

/* phiscan.new(opts) -> Scanner; raises on a malformed option. */
static int l_new(lua_State *L) {
  static const char *const known[] = {"domains", "tlds", "leads", "always", "policy", "mask", "mrn", NULL};
  if (lua_isnoneornil(L, 1)) {
    lua_settop(L, 0);
    lua_newtable(L);
  }
  luaL_checktype(L, 1, LUA_TTABLE);
  np_check_options(L, 1, 1, NULL, known);
  Scanner *sc = lua_newuserdatauv(L, sizeof *sc, 0);
  memset(sc, 0, sizeof *sc);
  luaL_setmetatable(L, SCANNER_MT);
  size_t total =
    (size_t)(list_len(L, "domains") + list_len(L, "tlds") + list_len(L, "leads") + list_len(L, "mrn")) + 2;
  sc->strs = calloc(total + 1, sizeof *sc->strs);
  sc->lists = calloc(total + 1, sizeof *sc->lists);
  if (!sc->strs || !sc->lists) return luaL_error(L, "not enough memory");
  size_t at = 0;
  sc->cfg.domains = sc->lists + at;
  sc->cfg.ndomains = copy_list(L, sc, "domains", 1, at);
  at += sc->cfg.ndomains;
  sc->cfg.tlds = sc->lists + at;
  sc->cfg.ntlds = copy_list(L, sc, "tlds", 1, at);
  at += sc->cfg.ntlds;
  sc->cfg.leads = sc->lists + at;
  sc->cfg.nleads = copy_list(L, sc, "leads", 0, at);
  at += sc->cfg.nleads;
  sc->cfg.mrn = sc->lists + at;
  sc->cfg.nmrn = copy_list(L, sc, "mrn", 0, at);
  lua_getfield(L, 1, "always");
  sc->cfg.always = lua_toboolean(L, -1);
  lua_pop(L, 1);
  /* the kinds whose values the Lua policy checks */
  if (lua_getfield(L, 1, "policy") == LUA_TTABLE) {
    lua_Integer len = luaL_len(L, -1);
    for (lua_Integer i = 1; i <= len; i++) {
      lua_rawgeti(L, -1, i);
      const char *kind = luaL_checkstring(L, -1);
      for (int k = 1; k < PHI_KINDS; k++)
        if (strcmp(kind, phiscan_kind_name(k)) == 0) sc->cfg.policy_kinds |= 1u << k;
      lua_pop(L, 1);
    }
  }
  lua_pop(L, 1);
  /* the mask: "[PHI:%s]" is prefix "[PHI:" and suffix "]" */
  size_t ml;
  const char *mask = lua_getfield(L, 1, "mask") == LUA_TSTRING ? lua_tolstring(L, -1, &ml) : NULL;
  if (mask) {
    const char *at = strstr(mask, "%s");
    if (!at || strstr(at + 2, "%")) return luaL_argerror(L, 1, "mask must hold one %s and no other %");
    char *pre = malloc((size_t)(at - mask) + 1), *suf = strdup(at + 2);
    if (!pre || !suf) {
      free(pre);
      free(suf);
      return luaL_error(L, "not enough memory");
    }
    memcpy(pre, mask, (size_t)(at - mask));
    pre[at - mask] = '\0';
    sc->strs[sc->nstrs++] = pre;
    sc->strs[sc->nstrs++] = suf;
    sc->cfg.mask_prefix = pre;
    sc->cfg.mask_suffix = suf;
  }
  lua_pop(L, 1);
  phiscan_config_init(&sc->cfg);
  return 1;
}

/* scanner:scan(line) -> nil | {start, end, kind, ...}; raises when memory
 * runs out (a partial list would let a value through). */
static int l_scan(lua_State *L) {
  Scanner *sc = luaL_checkudata(L, 1, SCANNER_MT);
  size_t n;
  const char *s = luaL_checklstring(L, 2, &n);
  sc->hits.n = 0;
  sc->hits.failed = 0;
  int next;
  size_t found = phiscan_line(&sc->cfg, sc->pending, s, n, &sc->hits, &next, NULL);
  if (sc->hits.failed) return luaL_error(L, "phiscan: not enough memory");
  sc->pending = next;
  if (found == 0) {
    lua_pushnil(L);
    return 1;
  }
  lua_createtable(L, (int)(found * 3), 0);
  for (size_t i = 0; i < found; i++) {
    const PhiHit *h = &sc->hits.v[i];
    lua_pushinteger(L, (lua_Integer)h->start + 1);
    lua_rawseti(L, -2, (lua_Integer)(3 * i + 1));
    lua_pushinteger(L, (lua_Integer)h->end);
    lua_rawseti(L, -2, (lua_Integer)(3 * i + 2));
    lua_pushstring(L, phiscan_kind_name(h->kind));
    lua_rawseti(L, -2, (lua_Integer)(3 * i + 3));
  }
  if (sc->hits.cap > 4096) phiscan_hits_free(&sc->hits);
  return 1;
}

/* scanner:quiet(text) -> boolean */
static int l_quiet(lua_State *L) {
  Scanner *sc = luaL_checkudata(L, 1, SCANNER_MT);
  size_t n;
  const char *s = luaL_checklstring(L, 2, &n);
  lua_pushboolean(L, phiscan_quiet(&sc->cfg, sc->pending, s, n));
  return 1;
}

/* scanner:pending([flag]) -> boolean: the carry-over, set when given. */
static int l_pending(lua_State *L) {
  Scanner *sc = luaL_checkudata(L, 1, SCANNER_MT);
  if (!lua_isnone(L, 2)) sc->pending = lua_toboolean(L, 2);
  lua_pushboolean(L, sc->pending);
  return 1;
}

/* scanner:filter(fn) -> Filter, holding the scanner and fn. */
static int l_filter(lua_State *L) {
  luaL_checkudata(L, 1, SCANNER_MT);
  luaL_checktype(L, 2, LUA_TFUNCTION);
  lua_newuserdatauv(L, 1, 2);
  luaL_setmetatable(L, FILTER_MT);
  lua_pushvalue(L, 1);
  lua_setiuservalue(L, -2, 1);
  lua_pushvalue(L, 2);
  lua_setiuservalue(L, -2, 2);
  return 1;
}

/* filter(line) -> what fn(line) returns; fn's error propagates. */
static int l_filter_call(lua_State *L) {
  luaL_checkudata(L, 1, FILTER_MT);
  lua_settop(L, 2);
  lua_getiuservalue(L, 1, 2);
  lua_insert(L, 2);
  lua_call(L, 1, LUA_MULTRET);
  return lua_gettop(L) - 1;
}

static int l_filter_tostring(lua_State *L) {
  luaL_checkudata(L, 1, FILTER_MT);
  lua_pushfstring(L, "novapipe.PhiFilter (%p)", lua_topointer(L, 1));
  return 1;
}

static int l_scanner_tostring(lua_State *L) {
  Scanner *sc = luaL_checkudata(L, 1, SCANNER_MT);
  lua_pushfstring(L, "novapipe.PhiScanner (%p%s)", (void *)sc, sc->pending ? ", date of birth pending" : "");
  return 1;
}

void *np_phi_filter(lua_State *L, int idx) {
  if (!luaL_testudata(L, idx, FILTER_MT)) return NULL;
  lua_getiuservalue(L, idx, 1);
  void *sc = luaL_testudata(L, -1, SCANNER_MT);
  lua_pop(L, 1);
  return sc;
}

int np_phi_mask(void *scanner, const char *s, size_t n, const char **out, size_t *outn) {
  Scanner *sc = scanner;
  int rc = phiscan_mask(&sc->cfg, &sc->pending, s, n, &sc->hits, &sc->text, out, outn);
  if (sc->hits.cap > 4096) phiscan_hits_free(&sc->hits);
  return rc == 1;
}

static const luaL_Reg scanner_methods[] = {
  {"scan", l_scan},
  {"quiet", l_quiet},
  {"pending", l_pending},
  {"filter", l_filter},
  {NULL, NULL},
};

/* phiscan.gsub(s, pattern, repl) -> string, count | nil: string.gsub with
 * a plain replacement, by luapat (the filter point's MRN patterns), or
 * nil when the pattern is outside luapat's subset. For the specs, which
 * hold it to string.gsub. */
static int l_gsub(lua_State *L) {
  size_t n, rn;
  const char *s = luaL_checklstring(L, 1, &n);
  const char *p = luaL_checkstring(L, 2);
  const char *repl = luaL_checklstring(L, 3, &rn);
  if (!luapat_supported(p)) {
    lua_pushnil(L);
    return 1;
  }
  char *out = NULL;
  size_t len = 0, cap = 0;
  long count = luapat_gsub(s, n, p, repl, rn, &out, &len, &cap);
  if (count < 0) {
    free(out);
    return luaL_error(L, "phiscan: not enough memory");
  }
  lua_pushlstring(L, out ? out : "", len);
  free(out);
  lua_pushinteger(L, count);
  return 2;
}

static const luaL_Reg phiscan_funcs[] = {
  {"new", l_new},
  {"gsub", l_gsub},
  {NULL, NULL},
};

int luaopen_novapipe_phiscan(lua_State *L) {
  np_new_class(L, SCANNER_MT, scanner_methods, l_scanner_gc);
  np_class_tostring(L, SCANNER_MT, l_scanner_tostring);
  luaL_newmetatable(L, FILTER_MT);
  lua_pushcfunction(L, l_filter_call);
  lua_setfield(L, -2, "__call");
  lua_pushcfunction(L, l_filter_tostring);
  lua_setfield(L, -2, "__tostring");
  lua_pop(L, 1);
  luaL_newlib(L, phiscan_funcs);
  return 1;
}
