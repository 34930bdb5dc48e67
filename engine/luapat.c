/*
 * luapat.c: a subset of Lua's string patterns in C (see luapat.h).
 */
#include "luapat.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

/* How deep the matcher may recurse (Lua's limit is MAXCCALLS, 200). */
#define MAX_DEPTH 200

typedef struct Match {
  const char *src_end;
  const char *p_end;
  int depth;
} Match;

/* Where the pattern item at p ends (p is not at the pattern's end). */
static const char *item_end(const char *p, const char *p_end) {
  if (*p == '%') return p + 2;
  if (*p == '[') {
    p++;
    if (p < p_end && *p == '^') p++;
    do {
      if (p >= p_end) return NULL;
      if (*p++ == '%' && p < p_end) p++;
    } while (p >= p_end || *p != ']');
    return p + 1;
  }
  return p + 1;
}

static int class_match(int c, int cl) {
  int res;
  switch (tolower(cl)) {
    case 'a': res = isalpha(c); break;
    case 'c': res = iscntrl(c); break;
    case 'd': res = isdigit(c); break;
    case 'g': res = isgraph(c); break;
    case 'l': res = islower(c); break;
    case 'p': res = ispunct(c); break;
    case 's': res = isspace(c); break;
    case 'u': res = isupper(c); break;
    case 'w': res = isalnum(c); break;
    case 'x': res = isxdigit(c); break;
    default: return cl == c;
  }
  if (isupper(cl)) res = !res;
  return res != 0;
}

/* Whether c is in the set [p, ec] (p at '[', ec at its ']'). */
static int set_match(int c, const char *p, const char *ec) {
  int yes = 1;
  if (*(p + 1) == '^') {
    yes = 0;
    p++;
  }
  while (++p < ec) {
    if (*p == '%') {
      p++;
      if (class_match(c, (unsigned char)*p)) return yes;
    } else if (*(p + 1) == '-' && p + 2 < ec) {
      p += 2;
      if ((unsigned char)*(p - 2) <= c && c <= (unsigned char)*p) return yes;
    } else if ((unsigned char)*p == c) {
      return yes;
    }
  }
  return !yes;
}

static int single(const Match *m, const char *s, const char *p, const char *ep) {
  if (s >= m->src_end) return 0;
  int c = (unsigned char)*s;
  switch (*p) {
    case '.': return 1;
    case '%': return class_match(c, (unsigned char)p[1]);
    case '[': return set_match(c, p, ep - 1);
    default: return (unsigned char)*p == c;
  }
}

static const char *match(Match *m, const char *s, const char *p);

static const char *max_expand(Match *m, const char *s, const char *p, const char *ep) {
  ptrdiff_t i = 0;
  while (single(m, s + i, p, ep)) i++;
  while (i >= 0) {
    const char *r = match(m, s + i, ep + 1);
    if (r) return r;
    i--;
  }
  return NULL;
}

static const char *min_expand(Match *m, const char *s, const char *p, const char *ep) {
  for (;;) {
    const char *r = match(m, s, ep + 1);
    if (r) return r;
    if (single(m, s, p, ep)) s++;
    else return NULL;
  }
}

/* Where a match of p at s ends, or NULL. */
static const char *match(Match *m, const char *s, const char *p) {
  if (++m->depth > MAX_DEPTH) {
    m->depth--;
    return NULL;
  }
  const char *r = s;
  while (p != m->p_end) {
    if (*p == '$' && p + 1 == m->p_end) {
      r = s == m->src_end ? s : NULL;
      goto done;
    }
    const char *ep = item_end(p, m->p_end);
    if (!single(m, s, p, ep)) {
      if (ep < m->p_end && (*ep == '*' || *ep == '?' || *ep == '-')) {
        p = ep + 1;
        continue;
      }
      r = NULL;
      goto done;
    }
    if (ep < m->p_end) {
      switch (*ep) {
        case '?': {
          const char *q = match(m, s + 1, ep + 1);
          if (q) {
            r = q;
            goto done;
          }
          p = ep + 1;
          continue;
        }
        case '+': r = max_expand(m, s + 1, p, ep); goto done;
        case '*': r = max_expand(m, s, p, ep); goto done;
        case '-': r = min_expand(m, s, p, ep); goto done;
        default: break;
      }
    }
    s++;
    p = ep;
  }
  r = s;
done:
  m->depth--;
  return r;
}

int luapat_supported(const char *p) {
  const char *end = p + strlen(p);
  if (*p == '^') p++;
  while (p < end) {
    if (*p == '(' || *p == ')') return 0;
    if (*p == '%') {
      if (p + 1 >= end) return 0;
      char c = p[1];
      if (c == 'b' || c == 'f' || (c >= '0' && c <= '9')) return 0;
    }
    if (*p == '$' && p + 1 == end) break;
    const char *ep = item_end(p, end);
    if (!ep || ep > end) return 0;
    /* a set's classes: no %b or %f inside one either, and no '%' at its end */
    if (*p == '[') {
      for (const char *q = p + 1; q < ep - 1; q++)
        if (*q == '%' && (++q >= ep - 1 + 1)) return 0;
    }
    p = ep;
    if (p < end && (*p == '*' || *p == '+' || *p == '-' || *p == '?')) p++;
  }
  return 1;
}

static int put(char **out, size_t *len, size_t *cap, const char *s, size_t n) {
  if (n == 0) return 0;
  if (*len + n > *cap) {
    size_t c = *cap ? *cap : 256;
    while (c < *len + n) c *= 2;
    char *np = realloc(*out, c);
    if (!np) return -1;
    *out = np;
    *cap = c;
  }
  memcpy(*out + *len, s, n);
  *len += n;
  return 0;
}

/* The byte every match of p must start with, or -1: a plain first item
 * that no quantifier makes optional. */
static int first_byte(const char *p, const char *p_end) {
  if (p == p_end || strchr("^$*+-?.[%()", *p)) return -1;
  if (p + 1 < p_end && (p[1] == '*' || p[1] == '?' || p[1] == '-')) return -1;
  return (unsigned char)*p;
}

long luapat_gsub(const char *s, size_t n, const char *p, const char *repl, size_t repln, char **out, size_t *outlen,
                 size_t *outcap) {
  int anchor = *p == '^';
  if (anchor) p++;
  Match m = {s + n, p + strlen(p), 0};
  int first = anchor ? -1 : first_byte(p, m.p_end);
  const char *src = s, *last = NULL, *kept = s; /* [kept, src) is copied as it is, at once */
  long count = 0;
  for (;;) {
    if (first >= 0 && src < m.src_end && (unsigned char)*src != first) {
      /* no match can start before the next such byte */
      const char *next = memchr(src, first, (size_t)(m.src_end - src));
      src = next ? next : m.src_end;
      if (src == m.src_end) break;
    }
    m.depth = 0;
    const char *e = match(&m, src, p);
    if (e && e != last) {
      count++;
      if (put(out, outlen, outcap, kept, (size_t)(src - kept)) || put(out, outlen, outcap, repl, repln)) return -1;
      src = last = kept = e;
    } else if (src < m.src_end) {
      src++;
    } else {
      break;
    }
    if (anchor) break;
  }
  if (put(out, outlen, outcap, kept, (size_t)(m.src_end - kept))) return -1;
  return count;
}
