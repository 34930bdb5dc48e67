/*
 * jsontext.c: novapipe.jsontext, the JSON text novapipe writes for people
 * and diffs (the run record, the durations, the audit log), made in C.
 *
 * lua-cjson stays the decoder and the reference: what `encode` writes is
 * what cjson.encode writes (numbers as "%.14g", cjson's escapes, its rules
 * for arrays, sparse arrays and keys, its limit of 1000 levels), except
 * that "/" is written as it is, where cjson writes "\/". `pretty` is
 * novapipe.json's layout: two spaces of indent, keys sorted, tables marked
 * as arrays written [] when empty, rows written on one line as `encode`
 * writes them (or as the text made for them ahead). Lua's own version of
 * these took a tenth of novapipe's time at the end of a test run; the
 * specs compare the two on the same values.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "grow.h"
#include "host.h"

#define OUT_MT "novapipe.jsontext.out"
#define MAX_DEPTH 1000

/* The text being made, owned by a userdata so an error frees it. */
typedef struct Out {
  char *p;
  size_t n, cap;
} Out;

static int out_gc(lua_State *L) {
  Out *o = luaL_checkudata(L, 1, OUT_MT);
  free(o->p);
  o->p = NULL;
  o->n = o->cap = 0;
  return 0;
}

static Out *new_out(lua_State *L) {
  Out *o = lua_newuserdatauv(L, sizeof *o, 0);
  memset(o, 0, sizeof *o);
  if (luaL_newmetatable(L, OUT_MT)) {
    lua_pushcfunction(L, out_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_setmetatable(L, -2);
  return o;
}

static void room(lua_State *L, Out *o, size_t more) {
  if (np_grow((void **)&o->p, &o->cap, o->n + more, 1)) luaL_error(L, "novapipe.jsontext: not enough memory");
}

static void put(lua_State *L, Out *o, const char *s, size_t len) {
  room(L, o, len);
  memcpy(o->p + o->n, s, len);
  o->n += len;
}

#define PUTS(L, o, lit) put(L, o, lit, sizeof(lit) - 1)

/* A string, quoted, with cjson's escapes but "/" as it is: the quote and
 * the backslash, \b \f \n \r \t, the other control bytes and DEL as \u00XX;
 * every other byte (UTF-8 among them) as it is. */
static void put_string(lua_State *L, Out *o, const char *s, size_t len) {
  static const char hex[] = "0123456789abcdef";
  if (len > ((size_t)-1 - 2) / 6) luaL_error(L, "novapipe.jsontext: string too long");
  room(L, o, len * 6 + 2);
  char *w = o->p + o->n;
  *w++ = '"';
  for (size_t i = 0; i < len; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c >= 0x20 && c != '"' && c != '\\' && c != 0x7f) {
      *w++ = (char)c;
      continue;
    }
    *w++ = '\\';
    switch (c) {
    case '"': *w++ = '"'; break;
    case '\\': *w++ = '\\'; break;
    case '\b': *w++ = 'b'; break;
    case '\f': *w++ = 'f'; break;
    case '\n': *w++ = 'n'; break;
    case '\r': *w++ = 'r'; break;
    case '\t': *w++ = 't'; break;
    default:
      memcpy(w, "u00", 3);
      w[3] = hex[c >> 4];
      w[4] = hex[c & 15];
      w += 5;
    }
  }
  *w++ = '"';
  o->n = (size_t)(w - o->p);
}

static void put_number(lua_State *L, Out *o, lua_Number x) {
  if (isnan(x) || isinf(x)) luaL_error(L, "Cannot serialise number: must not be NaN or Inf");
  char buf[32];
  int len;
  if (x == floor(x) && fabs(x) < 1e14 && !(x == 0 && signbit(x))) {
    /* what "%.14g" writes of a whole number of at most 14 digits (line
     * numbers, counts), without printf's work */
    long long v = (long long)x;
    unsigned long long u = v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;
    char *end = buf + sizeof buf, *w = end;
    do {
      *--w = (char)('0' + u % 10);
      u /= 10;
    } while (u);
    if (v < 0) *--w = '-';
    put(L, o, w, (size_t)(end - w));
    return;
  }
  len = snprintf(buf, sizeof buf, "%.14g", (double)x);
  put(L, o, buf, (size_t)len);
}

/* cjson's test: the largest key of a table whose keys are all positive
 * integers (0 for an empty table), -1 for any other table; an array far
 * sparser than its length (cjson's default: over 10 and over twice the
 * items) is an error. */
static lua_Integer array_length(lua_State *L, int t) {
  /* max as a number, as cjson keeps it: a key past 2^63 makes the table
   * too sparse (raised below) before it is ever an integer */
  lua_Number max = 0;
  lua_Integer items = 0;
  lua_pushnil(L);
  while (lua_next(L, t)) {
    lua_pop(L, 1);
    if (lua_type(L, -1) == LUA_TNUMBER) {
      lua_Number k = lua_tonumber(L, -1);
      if (floor(k) == k && k >= 1) {
        if (k > max) max = k;
        items++;
        continue;
      }
    }
    lua_pop(L, 1);
    return -1;
  }
  if (max > 10 && max > (lua_Number)items * 2) luaL_error(L, "Cannot serialise table: excessively sparse array");
  return (lua_Integer)max;
}

static void encode(lua_State *L, Out *o, int idx, int depth);

static void encode_table(lua_State *L, Out *o, int t, int depth) {
  if (depth > MAX_DEPTH) luaL_error(L, "Cannot serialise, excessive nesting (%d)", depth);
  luaL_checkstack(L, 4, "novapipe.jsontext: nesting");
  lua_Integer len = array_length(L, t);
  if (len > 0) {
    PUTS(L, o, "[");
    for (lua_Integer i = 1; i <= len; i++) {
      if (i > 1) PUTS(L, o, ",");
      lua_rawgeti(L, t, i);
      encode(L, o, lua_gettop(L), depth);
      lua_pop(L, 1);
    }
    PUTS(L, o, "]");
    return;
  }
  PUTS(L, o, "{");
  int first = 1;
  lua_pushnil(L);
  while (lua_next(L, t)) {
    if (!first) PUTS(L, o, ",");
    first = 0;
    int kt = lua_type(L, -2);
    if (kt == LUA_TSTRING) {
      size_t kl;
      const char *k = lua_tolstring(L, -2, &kl);
      put_string(L, o, k, kl);
    } else if (kt == LUA_TNUMBER) {
      PUTS(L, o, "\"");
      put_number(L, o, lua_tonumber(L, -2));
      PUTS(L, o, "\"");
    } else {
      luaL_error(L, "Cannot serialise %s: table key must be a number or string", luaL_typename(L, -2));
    }
    PUTS(L, o, ":");
    encode(L, o, lua_gettop(L), depth);
    lua_pop(L, 1);
  }
  PUTS(L, o, "}");
}

/* The value at idx, compact, as cjson writes it (but "/" as it is). */
static void encode(lua_State *L, Out *o, int idx, int depth) {
  switch (lua_type(L, idx)) {
  case LUA_TSTRING: {
    size_t len;
    const char *s = lua_tolstring(L, idx, &len);
    put_string(L, o, s, len);
    return;
  }
  case LUA_TNUMBER: put_number(L, o, lua_tonumber(L, idx)); return;
  case LUA_TBOOLEAN:
    if (lua_toboolean(L, idx)) PUTS(L, o, "true");
    else PUTS(L, o, "false");
    return;
  case LUA_TNIL: PUTS(L, o, "null"); return;
  case LUA_TLIGHTUSERDATA:
    if (lua_touserdata(L, idx) == NULL) {
      PUTS(L, o, "null");
      return;
    }
    break;
  case LUA_TTABLE: encode_table(L, o, idx, depth + 1); return;
  default: break;
  }
  luaL_error(L, "Cannot serialise %s: type not supported", luaL_typename(L, idx));
}

/* jsontext.encode(value) -> text */
static int l_encode(lua_State *L) {
  luaL_checkany(L, 1);
  lua_settop(L, 1);
  Out *o = new_out(L);
  encode(L, o, 1, 0);
  lua_pushlstring(L, o->p ? o->p : "", o->n);
  return 1;
}

/* jsontext.quote(s) -> the string as a JSON string */
static int l_quote(lua_State *L) {
  size_t len;
  const char *s = luaL_checklstring(L, 1, &len);
  Out *o = new_out(L);
  put_string(L, o, s, len);
  lua_pushlstring(L, o->p, o->n);
  return 1;
}

/* What pretty needs at hand: the marks' metatables and the rows' texts,
 * at these stack slots. */
typedef struct Marks {
  int array, row, texts;
  int decimals; /* numbers with this many decimals ("%.*f"), or -1: "%.14g" */
} Marks;

static void indent(lua_State *L, Out *o, int level) {
  room(L, o, 2 * (size_t)level);
  memset(o->p + o->n, ' ', 2 * (size_t)level);
  o->n += 2 * (size_t)level;
}

/* Whether the table at t has the metatable at slot mt. */
static int marked(lua_State *L, int t, int mt) {
  if (!lua_getmetatable(L, t)) return 0;
  int same = lua_rawequal(L, -1, mt);
  lua_pop(L, 1);
  return same;
}

/* A key of the table being laid out: its text (tostring, anchored in the
 * keys table) and where the key itself is in that table; sorted by the
 * text's bytes (key_cmp), as Lua's < orders strings. */
typedef struct Key {
  const char *s;
  size_t len;
  int slot; /* index in the keys table */
} Key;

static int key_cmp(const void *a, const void *b) {
  const Key *x = a, *y = b;
  size_t n = x->len < y->len ? x->len : y->len;
  int c = memcmp(x->s, y->s, n);
  if (c) return c;
  return x->len < y->len ? -1 : x->len > y->len;
}

static void pretty(lua_State *L, Out *o, int idx, int level, const Marks *m);

static void pretty_table(lua_State *L, Out *o, int t, int level, const Marks *m) {
  if (level >= MAX_DEPTH) luaL_error(L, "Cannot serialise, excessive nesting (%d)", level + 1);
  luaL_checkstack(L, 6, "novapipe.jsontext: nesting");
  if (marked(L, t, m->row)) {
    lua_pushvalue(L, t);
    if (lua_rawget(L, m->texts) == LUA_TSTRING) {
      size_t len;
      const char *s = lua_tolstring(L, -1, &len);
      put(L, o, s, len);
    } else {
      encode(L, o, t, 0);
    }
    lua_pop(L, 1);
    return;
  }
  lua_Unsigned n = lua_rawlen(L, t);
  int array = marked(L, t, m->array);
  if (!array && n > 0) {
    lua_pushinteger(L, (lua_Integer)n);
    array = lua_next(L, t) == 0;
    if (!array) lua_pop(L, 2);
  }
  if (array) {
    if (n == 0) {
      PUTS(L, o, "[]");
      return;
    }
    PUTS(L, o, "[\n");
    for (lua_Unsigned i = 1; i <= n; i++) {
      if (lua_rawgeti(L, t, (lua_Integer)i) == LUA_TNIL) {
        lua_pop(L, 1);
        break;
      }
      indent(L, o, level + 1);
      pretty(L, o, lua_gettop(L), level + 1, m);
      lua_pop(L, 1);
      if (i < n) PUTS(L, o, ",\n");
      else PUTS(L, o, "\n");
    }
    indent(L, o, level);
    PUTS(L, o, "]");
    return;
  }
  /* the keys as strings (tostring), in a table at `keys`, and sorted */
  lua_newtable(L);
  int keys = lua_gettop(L);
  int count = 0;
  lua_pushnil(L);
  while (lua_next(L, t)) {
    lua_pop(L, 1);
    lua_pushvalue(L, -1);
    luaL_tolstring(L, -1, NULL);
    lua_rawseti(L, keys, 2 * count + 1); /* the key's text */
    lua_pop(L, 1);
    lua_pushvalue(L, -1);
    lua_rawseti(L, keys, 2 * count + 2); /* the key itself */
    count++;
  }
  if (count == 0) {
    lua_pop(L, 1);
    PUTS(L, o, "{}");
    return;
  }
  Key *order = lua_newuserdatauv(L, sizeof(Key) * (size_t)count, 0);
  for (int i = 0; i < count; i++) {
    lua_rawgeti(L, keys, 2 * i + 1);
    order[i].s = lua_tolstring(L, -1, &order[i].len); /* anchored in keys */
    order[i].slot = i;
    lua_pop(L, 1);
  }
  qsort(order, (size_t)count, sizeof *order, key_cmp);
  PUTS(L, o, "{\n");
  for (int i = 0; i < count; i++) {
    indent(L, o, level + 1);
    put_string(L, o, order[i].s, order[i].len);
    PUTS(L, o, ": ");
    lua_rawgeti(L, keys, 2 * order[i].slot + 2);
    lua_rawget(L, t);
    pretty(L, o, lua_gettop(L), level + 1, m);
    lua_pop(L, 1);
    if (i + 1 < count) PUTS(L, o, ",\n");
    else PUTS(L, o, "\n");
  }
  lua_pop(L, 2);
  indent(L, o, level);
  PUTS(L, o, "}");
}

static void pretty(lua_State *L, Out *o, int idx, int level, const Marks *m) {
  int type = lua_type(L, idx);
  if (type == LUA_TTABLE) {
    pretty_table(L, o, idx, level, m);
  } else if (type == LUA_TNUMBER && m->decimals >= 0) {
    lua_Number x = lua_tonumber(L, idx);
    if (isnan(x) || isinf(x)) luaL_error(L, "Cannot serialise number: must not be NaN or Inf");
    char buf[400]; /* "%.9f" of 1e308: 309 digits and 10 more */
    int len = snprintf(buf, sizeof buf, "%.*f", m->decimals, (double)x);
    put(L, o, buf, (size_t)len);
  } else {
    encode(L, o, idx, 0);
  }
}

/* jsontext.pretty(value, array_mt, row_mt, row_texts [, decimals]) -> text;
 * with decimals (0 to 9), numbers outside rows are written with that many
 * ("%.6f" for 6). */
static int l_pretty(lua_State *L) {
  luaL_checkany(L, 1);
  luaL_checktype(L, 2, LUA_TTABLE);
  luaL_checktype(L, 3, LUA_TTABLE);
  luaL_checktype(L, 4, LUA_TTABLE);
  lua_Integer decimals = luaL_optinteger(L, 5, -1);
  luaL_argcheck(L, decimals >= -1 && decimals <= 9, 5, "decimals from 0 to 9 expected");
  lua_settop(L, 4);
  Marks m = {2, 3, 4, (int)decimals};
  Out *o = new_out(L);
  pretty(L, o, 1, 0, &m);
  lua_pushlstring(L, o->p ? o->p : "", o->n);
  return 1;
}

static const luaL_Reg jsontext_funcs[] = {
  {"encode", l_encode},
  {"quote", l_quote},
  {"pretty", l_pretty},
  {NULL, NULL},
};

int luaopen_novapipe_jsontext(lua_State *L) {
  luaL_newlib(L, jsontext_funcs);
  return 1;
}
