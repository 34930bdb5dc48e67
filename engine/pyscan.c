#include "pyscan.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ================================================================== */
/* The tokenizer                                                        */

static void lex_error(PyLexer *lx, int line, const char *msg) {
  if (lx->error[0]) return;
  snprintf(lx->error, sizeof lx->error, "%s", msg);
  lx->error_line = line;
}

/* Character classes: 1 starts a name, 2 continues one. */
static const unsigned char char_class[256] = {
  ['0'] = 2, ['1'] = 2, ['2'] = 2, ['3'] = 2, ['4'] = 2, ['5'] = 2, ['6'] = 2, ['7'] = 2, ['8'] = 2, ['9'] = 2,
  ['_'] = 3,
  ['a'] = 3, ['b'] = 3, ['c'] = 3, ['d'] = 3, ['e'] = 3, ['f'] = 3, ['g'] = 3, ['h'] = 3, ['i'] = 3, ['j'] = 3,
  ['k'] = 3, ['l'] = 3, ['m'] = 3, ['n'] = 3, ['o'] = 3, ['p'] = 3, ['q'] = 3, ['r'] = 3, ['s'] = 3, ['t'] = 3,
  ['u'] = 3, ['v'] = 3, ['w'] = 3, ['x'] = 3, ['y'] = 3, ['z'] = 3,
  ['A'] = 3, ['B'] = 3, ['C'] = 3, ['D'] = 3, ['E'] = 3, ['F'] = 3, ['G'] = 3, ['H'] = 3, ['I'] = 3, ['J'] = 3,
  ['K'] = 3, ['L'] = 3, ['M'] = 3, ['N'] = 3, ['O'] = 3, ['P'] = 3, ['Q'] = 3, ['R'] = 3, ['S'] = 3, ['T'] = 3,
  ['U'] = 3, ['V'] = 3, ['W'] = 3, ['X'] = 3, ['Y'] = 3, ['Z'] = 3,
};

/* Bytes of non-ASCII characters count as name characters: Python allows
 * letters of any script. */
static inline int is_name_start(unsigned char c) {
  return (char_class[c] & 1) || c >= 0x80;
}

static inline int is_name_char(unsigned char c) {
  return char_class[c] || c >= 0x80;
}

/* The end of the name characters from p on (a local pointer, so the loop
 * stays in registers: a char read may alias the lexer's fields). */
static inline const char *skip_name(const char *p, const char *end) {
  while (p < end && is_name_char((unsigned char)*p)) p++;
  return p;
}

/* The first of '\n' and '\r' from p on, or end. */
static inline const char *skip_to_eol(const char *p, const char *end) {
  while (p < end && *p != '\n' && *p != '\r') p++;
  return p;
}

static inline const char *skip_blanks(const char *p, const char *end) {
  while (p < end && (*p == ' ' || *p == '\t' || *p == '\f')) p++;
  return p;
}

/* Consumes a newline (\n, \r\n or \r) at cur; returns 1 when there was one. */
static int eat_newline(PyLexer *lx) {
  if (lx->cur < lx->end && *lx->cur == '\r') {
    lx->cur++;
    if (lx->cur < lx->end && *lx->cur == '\n') lx->cur++;
    lx->line++;
    return 1;
  }
  if (lx->cur < lx->end && *lx->cur == '\n') {
    lx->cur++;
    lx->line++;
    return 1;
  }
  return 0;
}

void pylex_init(PyLexer *lx, const char *src, size_t n) {
  memset(lx, 0, sizeof *lx);
  lx->src = src;
  lx->end = src + n;
  lx->cur = src;
  if (n >= 3 && (unsigned char)src[0] == 0xEF && (unsigned char)src[1] == 0xBB && (unsigned char)src[2] == 0xBF)
    lx->cur += 3;
  lx->line = 1;
  lx->at_line_start = 1;
  lx->emitted_newline = 1;
}

static int scan_string(PyLexer *lx, char quote, int triple, int fmt, int nest);

/* Inside an f-string's replacement field: skips to its closing '}' (which
 * it consumes), through nested brackets and strings of any quote. */
static int scan_fexpr(PyLexer *lx, int nest) {
  int depth = 0;
  while (lx->cur < lx->end) {
    char c = *lx->cur;
    if (c == '\r' || c == '\n') {
      eat_newline(lx);
      continue;
    }
    if (c == '\'' || c == '"') {
      int triple = lx->end - lx->cur >= 3 && lx->cur[1] == c && lx->cur[2] == c;
      lx->cur += triple ? 3 : 1;
      if (scan_string(lx, c, triple, 0, nest + 1) < 0) return -1;
      continue;
    }
    if (is_name_start((unsigned char)c)) {
      /* a prefixed string inside the expression: f"{f'{x}'}" */
      const char *s = lx->cur;
      lx->cur = skip_name(lx->cur, lx->end);
      size_t n = (size_t)(lx->cur - s);
      if (n <= 2 && lx->cur < lx->end && (*lx->cur == '\'' || *lx->cur == '"')) {
        int f = memchr(s, 'f', n) || memchr(s, 'F', n);
        char q = *lx->cur;
        int triple = lx->end - lx->cur >= 3 && lx->cur[1] == q && lx->cur[2] == q;
        lx->cur += triple ? 3 : 1;
        if (scan_string(lx, q, triple, f, nest + 1) < 0) return -1;
      }
      continue;
    }
    if (c == '(' || c == '[' || c == '{') depth++;
    else if (c == ')' || c == ']') depth--;
    else if (c == '}') {
      if (depth == 0) {
        lx->cur++;
        return 0;
      }
      depth--;
    }
    lx->cur++;
  }
  lex_error(lx, lx->line, "f-string: expecting '}'");
  return -1;
}

/* Scans a string's body, cur just past the opening quote(s), to just past
 * the closing ones. */
static int scan_string(PyLexer *lx, char quote, int triple, int fmt, int nest) {
  int start_line = lx->line;
  if (nest > 64) {
    lex_error(lx, lx->line, "too many nested f-strings");
    return -1;
  }
  while (lx->cur < lx->end) {
    char c = *lx->cur;
    if (c == '\\') {
      /* Also in raw strings a backslash keeps the next quote in. */
      lx->cur++;
      if (lx->cur < lx->end && !eat_newline(lx)) lx->cur++;
      continue;
    }
    if (c == '\r' || c == '\n') {
      if (!triple) {
        char msg[96];
        snprintf(msg, sizeof msg, "unterminated string literal (detected at line %d)", lx->line);
        lex_error(lx, start_line, msg);
        return -1;
      }
      eat_newline(lx);
      continue;
    }
    if (c == '\0') {
      lex_error(lx, lx->line, "source code cannot contain null bytes");
      return -1;
    }
    if (c == quote) {
      if (!triple) {
        lx->cur++;
        return 0;
      }
      if (lx->end - lx->cur >= 3 && lx->cur[1] == quote && lx->cur[2] == quote) {
        lx->cur += 3;
        return 0;
      }
      lx->cur++;
      continue;
    }
    if (fmt && c == '{') {
      if (lx->cur + 1 < lx->end && lx->cur[1] == '{') {
        lx->cur += 2;
        continue;
      }
      lx->cur++;
      if (scan_fexpr(lx, nest) < 0) return -1;
      continue;
    }
    lx->cur++;
  }
  char msg[96];
  snprintf(msg, sizeof msg, "unterminated %sstring literal (detected at line %d)", triple ? "triple-quoted " : "",
           lx->line);
  lex_error(lx, start_line, msg);
  return -1;
}

/* The length of the operator at s (1 to 3 bytes; 0 for a character that
 * is no operator). */
static int op_length(const char *s, const char *end) {
  char c = s[0], d = s + 1 < end ? s[1] : '\0', e = s + 2 < end ? s[2] : '\0';
  switch (c) {
    case '(': case ')': case '[': case ']': case '{': case '}': case ',': case ';': case '~':
      return 1;
    case '.':
      return (d == '.' && e == '.') ? 3 : 1;
    case '*': case '/': case '<': case '>':
      if (d == c) return e == '=' ? 3 : 2;
      return d == '=' ? 2 : 1;
    case '-':
      return (d == '>' || d == '=') ? 2 : 1;
    case ':':
      return d == '=' ? 2 : 1;
    case '!':
      return d == '=' ? 2 : 0;
    case '=': case '+': case '%': case '&': case '|': case '^': case '@':
      return d == '=' ? 2 : 1;
    default:
      return 0;
  }
}

static int fail(PyLexer *lx, PyTok *tok) {
  tok->type = PYT_ERROR;
  tok->p = lx->cur;
  tok->n = 0;
  tok->line = lx->error_line;
  lx->done = 1;
  return PYT_ERROR;
}

/* At the start of a line (outside brackets): measures indentation, skips
 * blank and comment-only lines, and queues INDENT or DEDENTs. Returns the
 * token type to emit now, or 0 for none. */
static int line_start(PyLexer *lx, PyTok *tok) {
  for (;;) {
    int col = 0;
    while (lx->cur < lx->end) {
      char c = *lx->cur;
      if (c == ' ') col++;
      else if (c == '\t') col = (col / 8 + 1) * 8;
      else if (c == '\f') col = 0;
      else break;
      lx->cur++;
    }
    if (lx->cur >= lx->end) return 0;
    char c = *lx->cur;
    if (c == '#') {
      lx->cur = skip_to_eol(lx->cur, lx->end);
      if (!eat_newline(lx)) return 0;
      continue;
    }
    if (c == '\n' || c == '\r') {
      eat_newline(lx);
      continue;
    }
    if (c == '\\' && lx->cur + 1 < lx->end && (lx->cur[1] == '\n' || lx->cur[1] == '\r')) {
      /* a continuation on an otherwise empty line: part of the next line */
      lx->cur++;
      eat_newline(lx);
      continue;
    }
    lx->at_line_start = 0;
    int top = lx->indents[lx->nindent];
    if (col > top) {
      if (lx->nindent >= PY_MAX_INDENT) {
        lex_error(lx, lx->line, "too many levels of indentation");
        return fail(lx, tok);
      }
      lx->indents[++lx->nindent] = col;
      tok->type = PYT_INDENT;
      tok->p = lx->cur;
      tok->n = 0;
      tok->line = lx->line;
      return PYT_INDENT;
    }
    while (col < lx->indents[lx->nindent]) {
      lx->nindent--;
      lx->pending_dedents++;
    }
    if (col != lx->indents[lx->nindent]) {
      lex_error(lx, lx->line, "unindent does not match any outer indentation level");
      return fail(lx, tok);
    }
    return 0;
  }
}

/* Whether a number starts at cur: a digit, or '.' and a digit. */
static inline int starts_number(const PyLexer *lx) {
  char c = *lx->cur;
  return (c >= '0' && c <= '9') || (c == '.' && lx->cur + 1 < lx->end && lx->cur[1] >= '0' && lx->cur[1] <= '9');
}

/* Consumes a number at cur: name characters and dots, and a sign after an
 * exponent's e (not in hexadecimal). */
static void skip_number(PyLexer *lx) {
  const char *s = lx->cur++;
  while (lx->cur < lx->end) {
    char d = *lx->cur;
    if ((d == '+' || d == '-') && ((lx->cur[-1] | 0x20) == 'e') && !((s[0] == '0') && s + 1 < lx->end && (s[1] | 0x20) == 'x')) {
      lx->cur++;
      continue;
    }
    if (!is_name_char((unsigned char)d) && d != '.') break;
    lx->cur++;
  }
}

/* Whether the n name characters at s are a string prefix (r b u f rb br
 * fr rf, any case): -1 if not, else 1 for an f-string and 0 for another. */
static int string_prefix(const char *s, size_t n) {
  if (n > 2) return -1;
  int f = 0, r = 0, b = 0, u = 0;
  for (size_t i = 0; i < n; i++) {
    char p = (char)(s[i] | 0x20);
    if (p == 'f') f++;
    else if (p == 'r') r++;
    else if (p == 'b') b++;
    else if (p == 'u') u++;
    else return -1;
  }
  if (f > 1 || r > 1 || b > 1 || u > 1 || (f && b) || (u && n > 1)) return -1;
  return f;
}

int pylex_next(PyLexer *lx, PyTok *tok) {
  tok->fstring = 0;
  if (lx->done) {
    tok->type = PYT_END;
    tok->p = lx->end;
    tok->n = 0;
    tok->line = lx->line;
    return PYT_END;
  }
  if (lx->at_line_start && lx->depth == 0) {
    int t = line_start(lx, tok);
    if (t) {
      lx->emitted_newline = 0;
      return t;
    }
  }
  if (lx->pending_dedents > 0) {
    lx->pending_dedents--;
    tok->type = PYT_DEDENT;
    tok->p = lx->cur;
    tok->n = 0;
    tok->line = lx->line;
    return PYT_DEDENT;
  }
  for (;;) {
    lx->cur = skip_blanks(lx->cur, lx->end);
    if (lx->cur >= lx->end) break;
    char c = *lx->cur;
    if (c == '#') {
      lx->cur = skip_to_eol(lx->cur, lx->end);
      continue;
    }
    if (c == '\\') {
      lx->cur++;
      if (!eat_newline(lx)) {
        lex_error(lx, lx->line, "unexpected character after line continuation character");
        return fail(lx, tok);
      }
      if (lx->cur >= lx->end) {
        lex_error(lx, lx->line, "unexpected EOF while parsing");
        return fail(lx, tok);
      }
      continue;
    }
    if (c == '\n' || c == '\r') {
      int line = lx->line;
      const char *at = lx->cur;
      eat_newline(lx);
      if (lx->depth > 0 || lx->emitted_newline) continue;
      lx->at_line_start = 1;
      lx->emitted_newline = 1;
      tok->type = PYT_NEWLINE;
      tok->p = at;
      tok->n = 0;
      tok->line = line;
      return PYT_NEWLINE;
    }
    break;
  }
  if (lx->cur >= lx->end) {
    if (lx->depth > 0) {
      char msg[64];
      snprintf(msg, sizeof msg, "'%c' was never closed", lx->open_char);
      lex_error(lx, lx->open_line, msg);
      return fail(lx, tok);
    }
    tok->p = lx->end;
    tok->n = 0;
    tok->line = lx->line;
    if (!lx->emitted_newline) {
      lx->emitted_newline = 1;
      tok->type = PYT_NEWLINE;
      return PYT_NEWLINE;
    }
    if (lx->nindent > 0) {
      lx->nindent--;
      tok->type = PYT_DEDENT;
      return PYT_DEDENT;
    }
    lx->done = 1;
    tok->type = PYT_END;
    return PYT_END;
  }
  lx->emitted_newline = 0;
  const char *s = lx->cur;
  unsigned char c = (unsigned char)*s;
  tok->p = s;
  tok->line = lx->line;
  if (c == '\0') {
    lex_error(lx, lx->line, "source code cannot contain null bytes");
    return fail(lx, tok);
  }
  if (is_name_start(c)) {
    lx->cur = skip_name(lx->cur, lx->end);
    size_t n = (size_t)(lx->cur - s);
    int f = lx->cur < lx->end && (*lx->cur == '\'' || *lx->cur == '"') ? string_prefix(s, n) : -1;
    if (f >= 0) {
      char q = *lx->cur;
      int triple = lx->end - lx->cur >= 3 && lx->cur[1] == q && lx->cur[2] == q;
      int line = lx->line;
      lx->cur += triple ? 3 : 1;
      if (scan_string(lx, q, triple, f, 0) < 0) return fail(lx, tok);
      tok->type = PYT_STRING;
      tok->fstring = f;
      tok->n = (size_t)(lx->cur - s);
      tok->line = line;
      return PYT_STRING;
    }
    tok->type = PYT_NAME;
    tok->n = n;
    return PYT_NAME;
  }
  if (starts_number(lx)) {
    skip_number(lx);
    tok->type = PYT_NUMBER;
    tok->n = (size_t)(lx->cur - s);
    return PYT_NUMBER;
  }
  if (c == '\'' || c == '"') {
    int triple = lx->end - lx->cur >= 3 && lx->cur[1] == (char)c && lx->cur[2] == (char)c;
    lx->cur += triple ? 3 : 1;
    if (scan_string(lx, (char)c, triple, 0, 0) < 0) return fail(lx, tok);
    tok->type = PYT_STRING;
    tok->n = (size_t)(lx->cur - s);
    return PYT_STRING;
  }
  tok->type = PYT_OP;
  if (c == '(' || c == '[' || c == '{') {
    if (lx->depth == 0) {
      lx->open_line = lx->line;
      lx->open_char = (char)c;
    }
    if (++lx->depth > PY_MAX_NEST) {
      lex_error(lx, lx->line, "too many nested parentheses");
      return fail(lx, tok);
    }
  } else if (c == ')' || c == ']' || c == '}') {
    if (lx->depth == 0) {
      char msg[64];
      snprintf(msg, sizeof msg, "unmatched '%c'", c);
      lex_error(lx, lx->line, msg);
      return fail(lx, tok);
    }
    lx->depth--;
  }
  int n = op_length(s, lx->end);
  if (n == 0) {
    char msg[64];
    if (c >= 0x20 && c < 0x7f) snprintf(msg, sizeof msg, "invalid character '%c'", c);
    else snprintf(msg, sizeof msg, "invalid character (byte 0x%02x)", c);
    lex_error(lx, lx->line, msg);
    return fail(lx, tok);
  }
  lx->cur += n;
  tok->n = (size_t)n;
  return PYT_OP;
}

/* What a skipped line passes over without a second look. SKIP_OP: blanks
 * and operator characters (not '!', which needs '=', and not ':'); in a
 * simple statement also letters and digits (SKIP_ALNUM): the names that
 * matter there (import_module, __import__) have a '_', and a string's
 * prefix is found from its quote. */
enum { SKIP_OP = 1, SKIP_ALNUM = 2, SKIP_COLON = 4 };
#define ALNUM(c) [c] = SKIP_ALNUM
static const unsigned char skip_class[256] = {
  [' '] = SKIP_OP, ['\t'] = SKIP_OP, ['\f'] = SKIP_OP, ['.'] = SKIP_OP, [','] = SKIP_OP, ['='] = SKIP_OP,
  ['+'] = SKIP_OP, ['-'] = SKIP_OP, ['*'] = SKIP_OP, ['/'] = SKIP_OP, ['%'] = SKIP_OP, ['<'] = SKIP_OP,
  ['>'] = SKIP_OP, ['&'] = SKIP_OP, ['|'] = SKIP_OP, ['^'] = SKIP_OP, ['~'] = SKIP_OP, ['@'] = SKIP_OP,
  [':'] = SKIP_COLON,
  ALNUM('0'), ALNUM('1'), ALNUM('2'), ALNUM('3'), ALNUM('4'), ALNUM('5'), ALNUM('6'), ALNUM('7'), ALNUM('8'),
  ALNUM('9'), ALNUM('a'), ALNUM('b'), ALNUM('c'), ALNUM('d'), ALNUM('e'), ALNUM('f'), ALNUM('g'), ALNUM('h'),
  ALNUM('i'), ALNUM('j'), ALNUM('k'), ALNUM('l'), ALNUM('m'), ALNUM('n'), ALNUM('o'), ALNUM('p'), ALNUM('q'),
  ALNUM('r'), ALNUM('s'), ALNUM('t'), ALNUM('u'), ALNUM('v'), ALNUM('w'), ALNUM('x'), ALNUM('y'), ALNUM('z'),
  ALNUM('A'), ALNUM('B'), ALNUM('C'), ALNUM('D'), ALNUM('E'), ALNUM('F'), ALNUM('G'), ALNUM('H'), ALNUM('I'),
  ALNUM('J'), ALNUM('K'), ALNUM('L'), ALNUM('M'), ALNUM('N'), ALNUM('O'), ALNUM('P'), ALNUM('Q'), ALNUM('R'),
  ALNUM('S'), ALNUM('T'), ALNUM('U'), ALNUM('V'), ALNUM('W'), ALNUM('X'), ALNUM('Y'), ALNUM('Z'),
};
#undef ALNUM

static inline int word_is(const char *s, size_t n, const char *w, size_t wn) {
  return n == wn && memcmp(s, w, n) == 0;
}
#define WORD_IS(s, n, lit) word_is((s), (n), "" lit, sizeof(lit) - 1)

/* At a quote in a skipped line: whether the name characters just before
 * it (back to `start`) make a string prefix as pylex_next reads it.
 * Returns -1 (read the line again) for anything else: a longer name, an
 * odd prefix, or one that may end a number (after '.', '+' or '-'); else
 * 0, with *fmt set for an f-string. */
static int quote_prefix(const char *start, const char *q, int *fmt) {
  const char *s = q;
  while (s > start && is_name_char((unsigned char)s[-1])) s--;
  size_t n = (size_t)(q - s);
  *fmt = 0;
  if (n == 0) return 0;
  if (s > start && (s[-1] == '.' || s[-1] == '+' || s[-1] == '-')) return -1;
  int f = string_prefix(s, n);
  if (f < 0) return -1;
  *fmt = f;
  return 0;
}

/* Skips the rest of a logical line whose first token was just read,
 * without making tokens: for lines the extractor has nothing to read in
 * (most lines of a function's body). Stops at the newline that ends the
 * line (or at the end), so the next pylex_next returns its NEWLINE.
 * A header (`for ...:`) must end with its one ':' at bracket depth 0.
 * Returns 0, or -1 when the line has what the extractor may want (a ';',
 * a name import_module or __import__; in a header, lambda, TYPE_CHECKING,
 * suppress, or a body after the ':') or anything unusual (an error, an
 * odd string prefix): the caller then reads it again token by token,
 * which reports what the tokenizer alone would. */
static int pylex_skip_line(PyLexer *lx, int header) {
  const char *start = lx->cur, *end = lx->end;
  /* what the inner loop passes: in a header, operators and blanks (names
   * are looked at one by one), and after its ':' only blanks */
  unsigned fast = header ? SKIP_OP : SKIP_OP | SKIP_ALNUM | SKIP_COLON;
  int colon = 0;
  while (lx->cur < end) {
    const char *p = lx->cur;
    while (p < end && (skip_class[(unsigned char)*p] & fast)) p++;
    lx->cur = p;
    if (p >= end) break;
    unsigned char c = (unsigned char)*p;
    if (colon) {
      if (c == ' ' || c == '\t' || c == '\f') {
        lx->cur++;
        continue;
      }
      if (c != '#' && c != '\n' && c != '\r' && c != '\\') return -1; /* a body after the header */
    }
    if (header && starts_number(lx)) {
      /* as pylex_next reads it (1e+5 is one number) */
      skip_number(lx);
      continue;
    }
    if (is_name_char(c)) {
      /* the whole name this byte is in ('_' or not ASCII in a simple
       * statement, any name in a header) */
      const char *s = p;
      while (s > start && is_name_char((unsigned char)s[-1])) s--;
      lx->cur = skip_name(p, end);
      size_t n = (size_t)(lx->cur - s);
      if (WORD_IS(s, n, "import_module") || WORD_IS(s, n, "__import__")) return -1;
      if (header && (WORD_IS(s, n, "lambda") || WORD_IS(s, n, "TYPE_CHECKING") || WORD_IS(s, n, "suppress")))
        return -1;
      continue;
    }
    switch (c) {
      case ':':
        if (p + 1 < end && p[1] == '=') { /* := */
          lx->cur += 2;
          continue;
        }
        if (lx->depth == 0) {
          colon = 1;
          fast = 0;
        }
        lx->cur++;
        continue;
      case '#':
        lx->cur = skip_to_eol(p, end);
        continue;
      case '\'': case '"': {
        int fmt;
        if (quote_prefix(start, p, &fmt) < 0) return -1;
        int triple = end - p >= 3 && p[1] == (char)c && p[2] == (char)c;
        lx->cur += triple ? 3 : 1;
        if (scan_string(lx, (char)c, triple, fmt, 0) < 0) return -1;
        continue;
      }
      case '\n': case '\r':
        if (lx->depth == 0) return header && !colon ? -1 : 0;
        eat_newline(lx);
        continue;
      case '\\':
        lx->cur++;
        if (!eat_newline(lx) || lx->cur >= end) return -1;
        continue;
      case '(': case '[': case '{':
        if (++lx->depth > PY_MAX_NEST) return -1;
        lx->cur++;
        continue;
      case ')': case ']': case '}':
        if (lx->depth == 0) return -1;
        lx->depth--;
        lx->cur++;
        continue;
      case '!':
        if (p + 1 < end && p[1] == '=') {
          lx->cur += 2;
          continue;
        }
        return -1;
      default: /* ';', a NUL byte, a character that is no operator */
        return -1;
    }
  }
  return lx->depth == 0 && (!header || colon) ? 0 : -1;
}

/* ================================================================== */
/* Storage for strings the extractor makes (dotted names)              */

typedef struct Arena {
  char *p;
  size_t len, cap;
} Arena;

/* Appends bytes; returns the offset or (size_t)-1 when out of memory. */
static size_t arena_add(Arena *a, const char *p, size_t n) {
  if (a->len + n > a->cap) {
    size_t cap = a->cap ? a->cap * 2 : 4096;
    while (cap < a->len + n) cap *= 2;
    char *np = realloc(a->p, cap);
    if (!np) return (size_t)-1;
    a->p = np;
    a->cap = cap;
  }
  memcpy(a->p + a->len, p, n);
  size_t off = a->len;
  a->len += n;
  return off;
}

/* A string kept as an offset into the arena (which may move) or a pointer
 * into the source. */
typedef struct Ref {
  size_t off; /* (size_t)-1: use p */
  const char *p;
  size_t n;
} Ref;

static PyStr deref(const Arena *a, Ref r) {
  PyStr s = {r.off == (size_t)-1 ? r.p : a->p + r.off, r.n};
  return s;
}

static Ref src_ref(const char *p, size_t n) {
  Ref r = {(size_t)-1, p, n};
  return r;
}

/* ================================================================== */
/* The extractor                                                        */

enum { K_OTHER, K_DEF, K_CLASS, K_TYPECHECK, K_OPTIONAL, K_TRY };

#define MAX_ARGS 32

typedef struct Decor {
  Ref name;
  int call;
  int line;
  int nargs;
  Ref keys[MAX_ARGS], values[MAX_ARGS];
  int kinds[MAX_ARGS];
} Decor;

typedef struct RefList {
  Ref *v;
  int n, cap;
} RefList;

typedef struct Func {
  int collect;   /* whether its body's names are kept */
  Ref name;
  int line;
  int is_async;
  Ref klass, parent;
  RefList params;
  Decor *decors;
  int ndecors;
  RefList names;
  RefList strings; /* connection-string-like literals, each once */
  /* a set of names: indexes into names.v, open addressing */
  int *slots;
  int nslots;
  const char *start; /* its first decorator's '@', or its `def` (`async`) */
} Func;

typedef struct Imp {
  Ref module;
  size_t ref_start, ref_len;
  int level, is_from, star, line, type_checking, optional;
  Ref function;
  int first_name, nnames; /* into the names list */
} Imp;

typedef struct Block {
  int kind;
  int func;        /* index into funcs of a K_DEF block */
  Ref klass;       /* name of a K_CLASS block */
  int try_start;   /* K_TRY: first import made inside */
} Block;

typedef struct Scanner {
  const PyVisitor *v;
  PyLexer lx;
  Arena arena;
  int oom;
  /* the current logical line */
  PyTok *toks;
  int ntoks, captoks;
  /* blocks */
  Block blocks[PY_MAX_INDENT + 2];
  int nblocks;
  int pending_kind;    /* the kind of block the last line opened */
  int pending_func;
  Ref pending_class;
  int pending_try_start;
  int pending_line;
  /* a try block just closed at each indentation level: its imports */
  int last_try_start[PY_MAX_INDENT + 2], last_try_end[PY_MAX_INDENT + 2];
  /* decorators waiting for their def or class */
  Decor *decors;
  int ndecors, capdecors;
  const char *decor_start; /* the first '@' of those lines, NULL when none */
  const char *stmt_start;  /* the first token of the statement being read */
  const char *last_end;    /* the last NEWLINE token's place */
  /* open functions (a stack; nested defs) */
  Func *funcs;
  int nfuncs, capfuncs;
  /* imports, reported at the end */
  Imp *imps;
  int nimps, capimps;
  struct ImpName {
    Ref name, alias;
  } *impnames;
  int nimpnames, capimpnames;
  /* What a visitor is handed (a function's decorators and lists), built
   * here again for each call: a call ends before the next is built, and
   * allocating them for each function was a tenth of a scan */
  PyStr *strbuf;
  int capstr;
  PyDecorator *decbuf;
  int capdec;
  PyArg *argbuf;
  int capargs;
  int error;
} Scanner;

static int grow(void **p, int *cap, int need, size_t size) {
  if (need <= *cap) return 0;
  int nc = *cap ? *cap * 2 : 16;
  while (nc < need) nc *= 2;
  void *np = realloc(*p, (size_t)nc * size);
  if (!np) return -1;
  *p = np;
  *cap = nc;
  return 0;
}

static int reflist_add(Scanner *s, RefList *l, Ref r) {
  if (grow((void **)&l->v, &l->cap, l->n + 1, sizeof *l->v)) {
    s->oom = 1;
    return -1;
  }
  l->v[l->n++] = r;
  return 0;
}

/* Whether a name or operator token is `text` (a literal: its length is
 * known at compile time). */
static inline int tok_is_n(const PyTok *t, const char *text, size_t n) {
  return t->n == n && (t->type == PYT_NAME || t->type == PYT_OP) && t->p[0] == text[0] && memcmp(t->p, text, n) == 0;
}
#define tok_is(t, lit) tok_is_n((t), "" lit, sizeof(lit) - 1)

static inline int is_open(char c) { return c == '(' || c == '[' || c == '{'; }
static inline int is_close(char c) { return c == ')' || c == ']' || c == '}'; }

static const char *const keywords[] = {
  "False", "None", "True", "and", "as", "assert", "async", "await", "break", "class", "continue", "def", "del",
  "elif", "else", "except", "finally", "for", "from", "global", "if", "import", "in", "is", "lambda", "nonlocal",
  "not", "or", "pass", "raise", "return", "try", "while", "with", "yield", NULL};

static int is_keyword(const PyTok *t) {
  if (t->type != PYT_NAME || t->n < 2 || t->n > 8) return 0;
  /* keywords start with a lower-case letter, or with F, N, T */
  char c = t->p[0];
  if (!((c >= 'a' && c <= 'y') || c == 'F' || c == 'N' || c == 'T')) return 0;
  static size_t lengths[sizeof keywords / sizeof keywords[0]];
  if (lengths[0] == 0)
    for (int i = 0; keywords[i]; i++) lengths[i] = strlen(keywords[i]);
  for (int i = 0; keywords[i]; i++)
    if (lengths[i] == t->n && keywords[i][0] == c && memcmp(t->p, keywords[i], t->n) == 0) return 1;
  return 0;
}

/* Reads a dotted chain NAME (. NAME)* at toks[i]; returns the index after
 * it and its text in *out (in the arena when it has dots). */
static int dotted(Scanner *s, int i, int end, Ref *out) {
  if (i >= end || s->toks[i].type != PYT_NAME) return i;
  int j = i + 1;
  while (j + 1 < end && tok_is(&s->toks[j], ".") && s->toks[j + 1].type == PYT_NAME) j += 2;
  if (j == i + 1) {
    *out = src_ref(s->toks[i].p, s->toks[i].n);
    return j;
  }
  size_t off = (size_t)-1, n = 0;
  for (int k = i; k < j; k += 2) {
    if (k > i) {
      size_t o = arena_add(&s->arena, ".", 1);
      if (o == (size_t)-1) s->oom = 1;
      n++;
    }
    size_t o = arena_add(&s->arena, s->toks[k].p, s->toks[k].n);
    if (o == (size_t)-1) {
      s->oom = 1;
      return j;
    }
    if (off == (size_t)-1) off = o;
    n += s->toks[k].n;
  }
  out->off = off;
  out->p = NULL;
  out->n = n;
  return j;
}

PyStr pytok_string_contents(const PyTok *t) {
  const char *p = t->p, *e = t->p + t->n;
  while (p < e && *p != '\'' && *p != '"') p++;
  size_t q = (e - p >= 6 && p[1] == p[0] && p[2] == p[0]) ? 3 : 1;
  if ((size_t)(e - p) < 2 * q) return (PyStr){p, 0};
  return (PyStr){p + q, (size_t)(e - p) - 2 * q};
}

/* The contents of a simple string literal token (prefix and quotes off). */
static Ref string_value(const PyTok *t) {
  const char *p = t->p, *e = t->p + t->n;
  while (p < e && *p != '\'' && *p != '"') p++;
  size_t q = (e - p >= 6 && p[1] == p[0] && p[2] == p[0]) ? 3 : 1;
  if ((size_t)(e - p) < 2 * q) return src_ref(p, 0);
  return src_ref(p + q, (size_t)(e - p) - 2 * q);
}

static uint32_t hash_bytes(const char *p, size_t n) {
  uint32_t h = 2166136261u;
  for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)p[i]) * 16777619u;
  return h;
}

/* Adds a name to a function's set of names (once). */
static void func_name(Scanner *s, Func *f, Ref r) {
  PyStr str = deref(&s->arena, r);
  if (f->nslots == 0 || f->names.n * 2 >= f->nslots) {
    int ns = f->nslots ? f->nslots * 2 : 64;
    int *slots = malloc((size_t)ns * sizeof *slots);
    if (!slots) {
      s->oom = 1;
      return;
    }
    for (int i = 0; i < ns; i++) slots[i] = -1;
    for (int i = 0; i < f->names.n; i++) {
      PyStr e = deref(&s->arena, f->names.v[i]);
      uint32_t h = hash_bytes(e.p, e.n) & (uint32_t)(ns - 1);
      while (slots[h] >= 0) h = (h + 1) & (uint32_t)(ns - 1);
      slots[h] = i;
    }
    free(f->slots);
    f->slots = slots;
    f->nslots = ns;
  }
  uint32_t h = hash_bytes(str.p, str.n) & (uint32_t)(f->nslots - 1);
  while (f->slots[h] >= 0) {
    PyStr e = deref(&s->arena, f->names.v[f->slots[h]]);
    if (e.n == str.n && memcmp(e.p, str.p, str.n) == 0) return;
    h = (h + 1) & (uint32_t)(f->nslots - 1);
  }
  if (reflist_add(s, &f->names, r) == 0) f->slots[h] = f->names.n - 1;
}

static int has(PyStr s, const char *w) {
  size_t n = strlen(w);
  for (size_t i = 0; i + n <= s.n; i++)
    if (memcmp(s.p + i, w, n) == 0) return 1;
  return 0;
}

/* Keeps a string literal of a function's body that looks like a
 * connection string ("sqlite://", ":memory:"), once, up to
 * PYSCAN_MAX_STRINGS. */
static void func_string(Scanner *s, Func *f, Ref r) {
  PyStr str = deref(&s->arena, r);
  if (f->strings.n >= PYSCAN_MAX_STRINGS || !(has(str, "://") || has(str, ":memory:"))) return;
  for (int i = 0; i < f->strings.n; i++) {
    PyStr e = deref(&s->arena, f->strings.v[i]);
    if (e.n == str.n && memcmp(e.p, str.p, str.n) == 0) return;
  }
  reflist_add(s, &f->strings, r);
}

/* The innermost open function, or NULL. */
static Func *current_func(Scanner *s) {
  for (int i = s->nblocks - 1; i >= 0; i--)
    if (s->blocks[i].kind == K_DEF) return &s->funcs[s->blocks[i].func];
  return NULL;
}

static int in_kind(Scanner *s, int kind) {
  for (int i = 0; i < s->nblocks; i++)
    if (s->blocks[i].kind == kind) return 1;
  return 0;
}

/* Whether a statement is the module's own: in no def or class (the body
 * of a module-level if, try or with is: `if TESTING: engine = ...`). */
static int at_module_level(Scanner *s) {
  return !in_kind(s, K_DEF) && !in_kind(s, K_CLASS);
}

/* A dynamic import whose callee is the chain toks[i, j): with a literal,
 * importlib.import_module("x"), import_module("x"), __import__("x"),
 * reported with its module; with any other argument (a name, an
 * f-string, an expression), reported with an empty module: what it
 * imports cannot be known statically. A `def import_module(...)` is no
 * call, nor is a call with no argument. */
static void scan_dynamic(Scanner *s, int i, int j, int end) {
  if (!(j + 1 < end && tok_is(&s->toks[j], "(") && !tok_is(&s->toks[j + 1], ")"))) return;
  if (i > 0 && tok_is(&s->toks[i - 1], "def")) return;
  if (!s->v->dynamic_import) return;
  PyStr via = {s->toks[i].p, (size_t)(s->toks[j - 1].p + s->toks[j - 1].n - s->toks[i].p)};
  if (j + 2 < end && s->toks[j + 1].type == PYT_STRING && !s->toks[j + 1].fstring &&
      (tok_is(&s->toks[j + 2], ")") || tok_is(&s->toks[j + 2], ","))) {
    s->v->dynamic_import(s->v->ctx, deref(&s->arena, string_value(&s->toks[j + 1])), via, s->toks[j + 1].line);
    return;
  }
  PyStr none = {"", 0};
  s->v->dynamic_import(s->v->ctx, none, via, s->toks[j].line);
}

/* Records the names (dotted chains) in toks[i, end) for the innermost
 * function (when it keeps them), and literal dynamic imports anywhere. */
static void scan_names(Scanner *s, int i, int end) {
  Func *f = current_func(s);
  if (f && !f->collect) f = NULL;
  if (!f) {
    /* No names to keep: only look for literal dynamic imports. */
    for (int k = i; k + 2 < end; k++) {
      PyTok *t = &s->toks[k];
      if (t->type == PYT_NAME && (tok_is(t, "import_module") || tok_is(t, "__import__"))) {
        int start = k;
        while (start >= i + 2 && tok_is(&s->toks[start - 1], ".") && s->toks[start - 2].type == PYT_NAME) start -= 2;
        scan_dynamic(s, start, k + 1, end);
      }
    }
    return;
  }
  while (i < end) {
    PyTok *t = &s->toks[i];
    if (t->type == PYT_STRING && !t->fstring) func_string(s, f, string_value(t));
    if (t->type != PYT_NAME || is_keyword(t) || (i > 0 && tok_is(&s->toks[i - 1], "."))) {
      i++;
      continue;
    }
    Ref chain;
    int j = dotted(s, i, end, &chain);
    func_name(s, f, chain);
    PyTok *last = &s->toks[j - 1];
    if (tok_is(last, "import_module") || tok_is(last, "__import__")) scan_dynamic(s, i, j, end);
    i = j;
  }
}

/* The index of the ':' that ends a compound statement's header in
 * [i, end), at bracket depth 0 and not a lambda's; -1 if none. */
static int header_colon(Scanner *s, int i, int end) {
  int depth = 0, lambdas = 0;
  for (int k = i; k < end; k++) {
    PyTok *t = &s->toks[k];
    if (t->type != PYT_OP && !tok_is(t, "lambda")) continue;
    if (tok_is(t, "lambda")) {
      if (depth == 0) lambdas++;
    }
    else if (t->n == 1 && is_open(t->p[0])) depth++;
    else if (t->n == 1 && is_close(t->p[0])) depth--;
    else if (depth == 0 && tok_is(t, ":")) {
      if (lambdas > 0) lambdas--;
      else return k;
    }
  }
  return -1;
}

/* The end of the comma-separated item starting at i (depth 0 within
 * [i, end)). */
static int item_end(Scanner *s, int i, int end) {
  int depth = 0;
  for (int k = i; k < end; k++) {
    PyTok *t = &s->toks[k];
    if (t->type == PYT_OP && t->n == 1) {
      if (is_open(t->p[0])) depth++;
      else if (is_close(t->p[0])) depth--;
      else if (t->p[0] == ',' && depth == 0) return k;
    }
  }
  return end;
}

/* The index of the bracket closing the one at i, or end. */
static int closing(Scanner *s, int i, int end) {
  int depth = 0;
  for (int k = i; k < end; k++) {
    PyTok *t = &s->toks[k];
    if (t->type == PYT_OP && t->n == 1) {
      if (is_open(t->p[0])) depth++;
      else if (is_close(t->p[0]) && --depth == 0) return k;
    }
  }
  return end;
}

static int add_import_name(Scanner *s, Ref name, Ref alias) {
  if (grow((void **)&s->impnames, &s->capimpnames, s->nimpnames + 1, sizeof *s->impnames)) {
    s->oom = 1;
    return -1;
  }
  s->impnames[s->nimpnames].name = name;
  s->impnames[s->nimpnames].alias = alias;
  s->nimpnames++;
  return 0;
}

static const Ref no_ref = {(size_t)-1, "", 0};

static Imp *new_import(Scanner *s, int line) {
  if (grow((void **)&s->imps, &s->capimps, s->nimps + 1, sizeof *s->imps)) {
    s->oom = 1;
    return NULL;
  }
  Imp *m = &s->imps[s->nimps++];
  memset(m, 0, sizeof *m);
  m->module = no_ref;
  m->line = line;
  m->type_checking = in_kind(s, K_TYPECHECK);
  m->optional = in_kind(s, K_OPTIONAL);
  Func *f = current_func(s);
  m->function = f ? f->name : src_ref("", 0);
  m->first_name = s->nimpnames;
  return m;
}

/* import a.b as c, d  |  from ..x import (a as b, c)  |  from x import * */
static void parse_import(Scanner *s, int i, int end) {
  int line = s->toks[i].line;
  if (tok_is(&s->toks[i], "import")) {
    i++;
    while (i < end) {
      int e = item_end(s, i, end);
      if (s->toks[i].type != PYT_NAME) { /* not a module name: nothing to record */
        i = e + 1;
        continue;
      }
      Imp *m = new_import(s, line);
      if (!m) return;
      int j = dotted(s, i, e, &m->module);
      if (j > i) { /* where "a.b" is, as for a from import's reference */
        const PyTok *last = &s->toks[j - 1];
        m->ref_start = (size_t)(s->toks[i].p - s->lx.src);
        m->ref_len = (size_t)(last->p + last->n - s->toks[i].p);
      }
      Ref alias = no_ref;
      if (j + 1 < e && tok_is(&s->toks[j], "as")) alias = src_ref(s->toks[j + 1].p, s->toks[j + 1].n);
      add_import_name(s, m->module, alias);
      m->nnames = 1;
      i = e + 1;
    }
    return;
  }
  /* from */
  Imp *m = new_import(s, line);
  if (!m) return;
  m->is_from = 1;
  m->module = no_ref;
  i++;
  int ref_first = i;
  while (i < end && (tok_is(&s->toks[i], ".") || tok_is(&s->toks[i], "..."))) {
    m->level += (int)s->toks[i].n;
    i++;
  }
  if (i < end && !tok_is(&s->toks[i], "import")) i = dotted(s, i, end, &m->module);
  if (i > ref_first) {
    const PyTok *last = &s->toks[i - 1];
    m->ref_start = (size_t)(s->toks[ref_first].p - s->lx.src);
    m->ref_len = (size_t)(last->p + last->n - s->toks[ref_first].p);
  }
  if (i >= end || !tok_is(&s->toks[i], "import")) return;
  i++;
  if (i < end && tok_is(&s->toks[i], "(")) {
    i++;
    if (end > i && tok_is(&s->toks[end - 1], ")")) end--;
  }
  if (i < end && tok_is(&s->toks[i], "*")) {
    m->star = 1;
    return;
  }
  while (i < end) {
    int e = item_end(s, i, end);
    if (i < e && s->toks[i].type == PYT_NAME) {
      Ref alias = no_ref;
      if (i + 2 < e && tok_is(&s->toks[i + 1], "as"))
        alias = src_ref(s->toks[i + 2].p, s->toks[i + 2].n);
      add_import_name(s, src_ref(s->toks[i].p, s->toks[i].n), alias);
      m->nnames++;
    }
    i = e + 1;
  }
}

/* @name(args) */
static void parse_decorator(Scanner *s, int i, int end) {
  if (grow((void **)&s->decors, &s->capdecors, s->ndecors + 1, sizeof *s->decors)) {
    s->oom = 1;
    return;
  }
  Decor *d = &s->decors[s->ndecors];
  memset(d, 0, sizeof *d);
  d->line = s->toks[i].line;
  d->name = no_ref;
  int j = dotted(s, i + 1, end, &d->name);
  if (j == i + 1) return; /* not a plain dotted decorator: ignore */
  s->ndecors++;
  if (j < end && tok_is(&s->toks[j], "(")) {
    d->call = 1;
    int close = closing(s, j, end);
    int k = j + 1;
    while (k < close && d->nargs < MAX_ARGS) {
      int e = item_end(s, k, close);
      if (k < e) {
        int a = d->nargs++;
        d->keys[a] = no_ref;
        int v = k;
        if (e - k >= 3 && s->toks[k].type == PYT_NAME && tok_is(&s->toks[k + 1], "=")) {
          d->keys[a] = src_ref(s->toks[k].p, s->toks[k].n);
          v = k + 2;
        }
        if (e - v == 1 && s->toks[v].type == PYT_STRING && !s->toks[v].fstring) {
          d->values[a] = string_value(&s->toks[v]);
          d->kinds[a] = 's';
        } else if (s->toks[v].type == PYT_NAME && dotted(s, v, e, &d->values[a]) == e) {
          d->kinds[a] = 'n';
        } else {
          d->values[a] = src_ref(s->toks[v].p, (size_t)(s->toks[e - 1].p + s->toks[e - 1].n - s->toks[v].p));
          d->kinds[a] = 'r';
        }
      }
      k = e + 1;
    }
  }
}

/* The decorators ds as a visitor reads them, in the scanner's buffers
 * (valid until the next call); NULL when out of memory. */
static PyDecorator *build_decorators(Scanner *s, Decor *ds, int n) {
  int total = 0;
  for (int i = 0; i < n; i++) total += ds[i].nargs;
  if (grow((void **)&s->decbuf, &s->capdec, n > 0 ? n : 1, sizeof *s->decbuf) < 0 ||
      grow((void **)&s->argbuf, &s->capargs, total > 0 ? total : 1, sizeof *s->argbuf) < 0) {
    s->oom = 1;
    return NULL;
  }
  PyDecorator *out = s->decbuf;
  PyArg *args = s->argbuf;
  int a = 0;
  for (int i = 0; i < n; i++) {
    out[i].name = deref(&s->arena, ds[i].name);
    out[i].call = ds[i].call;
    out[i].line = ds[i].line;
    out[i].args = args + a;
    out[i].nargs = ds[i].nargs;
    for (int k = 0; k < ds[i].nargs; k++, a++) {
      args[a].key = deref(&s->arena, ds[i].keys[k]);
      args[a].value = deref(&s->arena, ds[i].values[k]);
      args[a].kind = ds[i].kinds[k];
    }
  }
  return out;
}

/* The n lists as a visitor reads them, out[i] for lists[i], one after the
 * other in the scanner's buffer (valid until the next call); -1 when out
 * of memory. */
static int build_strs(Scanner *s, int n, const RefList *const lists[], PyStr *out[]) {
  int total = 0;
  for (int i = 0; i < n; i++) total += lists[i]->n;
  if (grow((void **)&s->strbuf, &s->capstr, total > 0 ? total : 1, sizeof *s->strbuf) < 0) {
    s->oom = 1;
    return -1;
  }
  PyStr *p = s->strbuf;
  for (int i = 0; i < n; i++) {
    out[i] = p;
    for (int k = 0; k < lists[i]->n; k++) *p++ = deref(&s->arena, lists[i]->v[k]);
  }
  return 0;
}

static int ends_with(PyStr s, const char *suffix, size_t sn) {
  return s.n >= sn && memcmp(s.p + s.n - sn, suffix, sn) == 0;
}

/* Whether an import seen so far binds the plain name d to a name ending
 * with suffix (`from pytest import fixture as fx` binds fx). */
static int bound_to_suffix(Scanner *s, PyStr d, const char *suffix, size_t sn) {
  for (int i = 0; i < s->nimpnames; i++) {
    PyStr name = deref(&s->arena, s->impnames[i].name);
    PyStr alias = deref(&s->arena, s->impnames[i].alias);
    PyStr bound = alias.n ? alias : name;
    if (bound.n == d.n && memcmp(bound.p, d.p, d.n) == 0 && ends_with(name, suffix, sn)) return 1;
  }
  return 0;
}

/* Whether a function with the pending decorators keeps its body's names
 * (PYSCAN_NAMES_DECORATED): any decorator does, or with names_suffix, one
 * whose name ends with it, or a plain name an import before it binds to a
 * name that ends with it (a decorator is evaluated where it stands: an
 * import after it cannot be what it names). */
static int names_wanted(Scanner *s) {
  const char *suffix = s->v->names_suffix;
  size_t sn = suffix ? strlen(suffix) : 0;
  for (int i = 0; i < s->ndecors; i++) {
    PyStr d = deref(&s->arena, s->decors[i].name);
    if (!suffix || d.n == 0 || ends_with(d, suffix, sn)) return 1;
    if (!memchr(d.p, '.', d.n) && bound_to_suffix(s, d, suffix, sn)) return 1;
  }
  return 0;
}

/* def name(params) [-> x]: opens a function (reported when it ends). */
static int parse_def(Scanner *s, int i, int end, int is_async) {
  if (i + 1 >= end || s->toks[i + 1].type != PYT_NAME) return -1;
  if (grow((void **)&s->funcs, &s->capfuncs, s->nfuncs + 1, sizeof *s->funcs)) {
    s->oom = 1;
    return -1;
  }
  Func *f = &s->funcs[s->nfuncs];
  memset(f, 0, sizeof *f);
  f->name = src_ref(s->toks[i + 1].p, s->toks[i + 1].n);
  f->line = s->toks[i].line;
  f->is_async = is_async;
  Func *outer = current_func(s);
  f->parent = outer ? outer->name : no_ref;
  f->klass = no_ref;
  if (s->nblocks > 0 && s->blocks[s->nblocks - 1].kind == K_CLASS) f->klass = s->blocks[s->nblocks - 1].klass;
  f->decors = s->ndecors ? malloc((size_t)s->ndecors * sizeof(Decor)) : NULL;
  if (s->ndecors && !f->decors) {
    s->oom = 1;
    return -1;
  }
  if (s->ndecors) memcpy(f->decors, s->decors, (size_t)s->ndecors * sizeof(Decor));
  f->ndecors = s->ndecors;
  f->collect = s->v->names == PYSCAN_NAMES_ALL || (s->v->names == PYSCAN_NAMES_DECORATED && names_wanted(s));
  f->start = s->decor_start ? s->decor_start : s->stmt_start;
  s->ndecors = 0;
  s->decor_start = NULL;
  int open = i + 2;
  if (open < end && tok_is(&s->toks[open], "(")) {
    int close = closing(s, open, end);
    int k = open + 1;
    while (k < close) {
      int e = item_end(s, k, close);
      int p = k;
      int stars = 0;
      while (p < e && (tok_is(&s->toks[p], "*") || tok_is(&s->toks[p], "**"))) {
        stars += (int)s->toks[p].n;
        p++;
      }
      if (p < e && s->toks[p].type == PYT_NAME) {
        Ref r = src_ref(s->toks[p].p, s->toks[p].n);
        if (stars) {
          stars = stars >= 2 ? 2 : 1; /* `* **x` is not Python; keep it well formed */
          size_t off = arena_add(&s->arena, stars == 2 ? "**" : "*", (size_t)stars);
          size_t o2 = arena_add(&s->arena, s->toks[p].p, s->toks[p].n);
          if (off == (size_t)-1 || o2 == (size_t)-1) s->oom = 1;
          r.off = off;
          r.p = NULL;
          r.n = (size_t)stars + s->toks[p].n;
        }
        reflist_add(s, &f->params, r);
      }
      k = e + 1;
    }
  }
  return s->nfuncs++;
}

/* Reports the function on top of the stack and frees it. */
static void end_function(Scanner *s) {
  Func *f = &s->funcs[s->nfuncs - 1];
  PyDecorator *decs = build_decorators(s, f->decors, f->ndecors);
  const RefList *lists[] = {&f->params, &f->names, &f->strings};
  PyStr *built[3] = {NULL, NULL, NULL};
  if (build_strs(s, 3, lists, built) < 0) decs = NULL;
  PyStr *params = built[0], *names = built[1], *strings = built[2];
  /* the NEWLINE that ends its body's last logical line (where the lexer
   * puts it whether that line was read token by token or skipped) */
  const char *end = s->last_end && s->last_end > f->start ? s->last_end : f->start;
  if (decs && s->v->function) {
    PyFunction fn = {deref(&s->arena, f->name), f->line, f->is_async, deref(&s->arena, f->klass),
                     deref(&s->arena, f->parent), params, f->params.n, decs, f->ndecors, names, f->names.n,
                     strings, f->strings.n, (size_t)(f->start - s->lx.src), (size_t)(end - s->lx.src)};
    s->v->function(s->v->ctx, &fn);
  }
  free(f->decors);
  free(f->params.v);
  free(f->names.v);
  free(f->strings.v);
  free(f->slots);
  s->nfuncs--;
}

/* class name(bases): reported now. */
static Ref parse_class(Scanner *s, int i, int end) {
  Ref name = no_ref;
  if (i + 1 >= end || s->toks[i + 1].type != PYT_NAME) return name;
  name = src_ref(s->toks[i + 1].p, s->toks[i + 1].n);
  RefList bases = {0};
  int open = i + 2;
  if (open < end && tok_is(&s->toks[open], "(")) {
    int close = closing(s, open, end);
    int k = open + 1;
    while (k < close) {
      int e = item_end(s, k, close);
      Ref b;
      if (s->toks[k].type == PYT_NAME && dotted(s, k, e, &b) == e) reflist_add(s, &bases, b);
      k = e + 1;
    }
  }
  PyDecorator *decs = build_decorators(s, s->decors, s->ndecors);
  const RefList *lists[] = {&bases};
  PyStr *bs = NULL;
  if (build_strs(s, 1, lists, &bs) < 0) decs = NULL;
  if (decs && s->v->klass) {
    PyClass c = {deref(&s->arena, name), s->toks[i].line, bs, bases.n, decs, s->ndecors};
    s->v->klass(s->v->ctx, &c);
  }
  s->ndecors = 0;
  s->decor_start = NULL;
  free(bases.v);
  return name;
}

/* NAME [: annotation] = value at module level. */
static void parse_assignment(Scanner *s, int i, int end) {
  int eq = -1;
  if (i + 1 < end && tok_is(&s->toks[i + 1], "=")) eq = i + 1;
  else if (i + 1 < end && tok_is(&s->toks[i + 1], ":")) {
    for (int k = i + 2; k < end; k++)
      if (tok_is(&s->toks[k], "=")) {
        eq = k;
        break;
      }
  }
  if (eq < 0) return;
  RefList names = {0}, strings = {0};
  for (int k = eq + 1; k < end;) {
    if (s->toks[k].type == PYT_NAME && !is_keyword(&s->toks[k])) {
      Ref r;
      k = dotted(s, k, end, &r);
      reflist_add(s, &names, r);
    } else {
      if (s->toks[k].type == PYT_STRING && !s->toks[k].fstring && strings.n < PYSCAN_MAX_STRINGS)
        reflist_add(s, &strings, string_value(&s->toks[k]));
      k++;
    }
  }
  const RefList *lists[] = {&names, &strings};
  PyStr *built[2] = {NULL, NULL};
  PyStr *ns = NULL, *ss = NULL;
  if (build_strs(s, 2, lists, built) == 0) ns = built[0], ss = built[1];
  if (ns && ss && s->v->assignment) {
    PyAssign a = {deref(&s->arena, src_ref(s->toks[i].p, s->toks[i].n)), s->toks[i].line, ns, names.n, ss, strings.n};
    s->v->assignment(s->v->ctx, &a);
  }
  free(names.v);
  free(strings.v);
}

static int names_any(Scanner *s, int i, int end, const char *a, const char *b) {
  for (int k = i; k < end; k++)
    if (tok_is_n(&s->toks[k], a, strlen(a)) || (b && tok_is_n(&s->toks[k], b, strlen(b)))) return 1;
  return 0;
}

/* One simple statement in toks[i, end) (no ';'). */
static void simple_statement(Scanner *s, int i, int end) {
  if (i >= end) return;
  PyTok *t = &s->toks[i];
  if (tok_is(t, "import") || (tok_is(t, "from") && !(i > 0 && tok_is(&s->toks[i - 1], "yield")))) {
    parse_import(s, i, end);
    return;
  }
  if (t->type == PYT_NAME && !is_keyword(t) && at_module_level(s)) parse_assignment(s, i, end);
  scan_names(s, i, end);
}

static void statement(Scanner *s, int i, int end);

/* Simple statements separated by ';'. */
static void simple_statements(Scanner *s, int i, int end) {
  int start = i;
  for (int k = i; k <= end; k++) {
    if (k == end || tok_is(&s->toks[k], ";")) {
      simple_statement(s, start, k);
      start = k + 1;
    }
  }
}

static void push_block(Scanner *s, int kind, int func, Ref klass, int try_start) {
  if (s->nblocks >= PY_MAX_INDENT + 1) return;
  Block *b = &s->blocks[s->nblocks++];
  b->kind = kind;
  b->func = func;
  b->klass = klass;
  b->try_start = try_start;
}

/* Closes the innermost block (at a DEDENT, or after an inline body). */
static void pop_block(Scanner *s) {
  if (s->nblocks == 0) return;
  Block *b = &s->blocks[--s->nblocks];
  int level = s->nblocks;
  if (b->kind == K_DEF) end_function(s);
  if (b->kind == K_TRY) {
    s->last_try_start[level] = b->try_start;
    s->last_try_end[level] = s->nimps;
  }
}

/* A logical line: a compound statement's header (with or without an inline
 * body) or simple statements. */
static void statement(Scanner *s, int i, int end) {
  if (i >= end) return;
  PyTok *t = &s->toks[i];
  int level = s->nblocks;
  int is_except = tok_is(t, "except"), keeps_try = is_except || tok_is(t, "else") || tok_is(t, "finally");
  if (!keeps_try && level <= PY_MAX_INDENT) s->last_try_start[level] = s->last_try_end[level] = 0;
  s->stmt_start = t->p;
  if (tok_is(t, "@")) {
    if (!s->decor_start) s->decor_start = t->p;
    parse_decorator(s, i, end);
    return;
  }
  int is_async = tok_is(t, "async");
  PyTok *kw = is_async && i + 1 < end ? &s->toks[i + 1] : t;
  int is_compound = kw->type == PYT_NAME &&
    (tok_is(kw, "def") || tok_is(kw, "class") || tok_is(kw, "if") || tok_is(kw, "elif") || tok_is(kw, "else") ||
     tok_is(kw, "try") || tok_is(kw, "except") || tok_is(kw, "finally") || tok_is(kw, "with") ||
     tok_is(kw, "for") || tok_is(kw, "while") || tok_is(kw, "match") || tok_is(kw, "case"));
  int colon = is_compound ? header_colon(s, i, end) : -1;
  if ((tok_is(kw, "match") || tok_is(kw, "case")) && (colon < 0 || colon != end - 1)) is_compound = 0;
  if (!is_compound || colon < 0) {
    s->ndecors = 0;
    s->decor_start = NULL;
    simple_statements(s, i, end);
    return;
  }
  int kind = K_OTHER, func = -1, try_start = 0;
  Ref klass = no_ref;
  int hstart = is_async ? i + 1 : i;
  if (tok_is(kw, "def")) {
    func = parse_def(s, hstart, colon, is_async);
    kind = func >= 0 ? K_DEF : K_OTHER;
  } else if (tok_is(kw, "class")) {
    klass = parse_class(s, hstart, colon);
    kind = K_CLASS;
    scan_names(s, hstart + 2, colon);
  } else {
    s->ndecors = 0;
    s->decor_start = NULL;
    scan_names(s, hstart + 1, colon);
    if (tok_is(kw, "if")) {
      int n = colon - (hstart + 1);
      PyTok *a = &s->toks[hstart + 1];
      if ((n == 1 && tok_is(a, "TYPE_CHECKING")) ||
          (n == 3 && a->type == PYT_NAME && tok_is(&s->toks[hstart + 2], ".") && tok_is(&s->toks[hstart + 3], "TYPE_CHECKING")))
        kind = K_TYPECHECK;
    } else if (tok_is(kw, "try")) {
      kind = K_TRY;
      try_start = s->nimps;
    } else if (is_except) {
      if (level <= PY_MAX_INDENT && names_any(s, hstart + 1, colon, "ImportError", "ModuleNotFoundError")) {
        for (int k = s->last_try_start[level]; k < s->last_try_end[level]; k++) s->imps[k].optional = 1;
      }
    } else if (tok_is(kw, "with")) {
      for (int k = hstart + 1; k + 2 < colon; k++) {
        if (tok_is(&s->toks[k], "suppress") && tok_is(&s->toks[k + 1], "(") &&
            names_any(s, k + 2, closing(s, k + 1, colon), "ImportError", "ModuleNotFoundError"))
          kind = K_OPTIONAL;
      }
    }
  }
  if (colon + 1 < end) {
    /* an inline body: `if x: import y` */
    push_block(s, kind, func, klass, try_start);
    simple_statements(s, colon + 1, end);
    pop_block(s);
    s->pending_kind = -1;
  } else {
    s->pending_kind = kind;
    s->pending_func = func;
    s->pending_class = klass;
    s->pending_try_start = try_start;
    s->pending_line = t->line;
  }
}

static void report_error(Scanner *s, int line, const char *msg) {
  if (s->error) return;
  s->error = 1;
  if (s->v->error) s->v->error(s->v->ctx, line, msg);
}

/* The line of position q in p (1-based). */
static int line_at(const char *p, const char *q) {
  int line = 1;
  for (const char *nl = p; (nl = memchr(nl, '\n', (size_t)(q - nl))) != NULL; nl++) line++;
  return line;
}

/* Checks UTF-8; returns 0 or the line of the first invalid sequence. ASCII
 * is skipped eight bytes at a time: most source is ASCII. */
static int utf8_error_line(const char *p, size_t n) {
  const unsigned char *u = (const unsigned char *)p, *e = u + n;
  while (u < e) {
    while (e - u >= 8) {
      uint64_t w;
      memcpy(&w, u, sizeof w);
      if (w & 0x8080808080808080ULL) break;
      u += 8;
    }
    if (u >= e) break;
    unsigned char c = *u;
    if (c < 0x80) {
      u++;
      continue;
    }
    int len = (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 ? 4 : 0;
    int bad = len == 0 || c == 0xC0 || c == 0xC1 || c > 0xF4 || e - u < len;
    for (int k = 1; !bad && k < len; k++)
      if ((u[k] & 0xC0) != 0x80) bad = 1;
    if (bad) return line_at(p, (const char *)u);
    u += len;
  }
  return 0;
}

/* The PEP 263 declaration in one of the first two lines, if any. */
static PyStr coding(const char *src, size_t n) {
  PyStr none = {"", 0};
  const char *p = src, *e = src + n;
  if (n >= 3 && (unsigned char)p[0] == 0xEF && (unsigned char)p[1] == 0xBB && (unsigned char)p[2] == 0xBF) p += 3;
  for (int line = 0; line < 2 && p < e; line++) {
    const char *eol = p;
    while (eol < e && *eol != '\n' && *eol != '\r') eol++;
    const char *q = p;
    while (q < eol && (*q == ' ' || *q == '\t' || *q == '\f')) q++;
    if (q < eol && *q == '#') {
      for (const char *c = q; c + 6 < eol; c++) {
        if (memcmp(c, "coding", 6) == 0 && (c[6] == ':' || c[6] == '=')) {
          const char *v = c + 7;
          while (v < eol && (*v == ' ' || *v == '\t')) v++;
          const char *ve = v;
          while (ve < eol && (is_name_char((unsigned char)*ve) || *ve == '-' || *ve == '.')) ve++;
          PyStr r = {v, (size_t)(ve - v)};
          return r;
        }
      }
    } else if (q < eol) {
      break; /* a line of code: no declaration after it */
    }
    p = eol;
    if (p < e && *p == '\r') p++;
    if (p < e && *p == '\n') p++;
  }
  return none;
}

static int utf8_name(PyStr enc) {
  static const char *const names[] = {"utf-8", "utf8", "UTF-8", "UTF8", "utf_8", NULL};
  if (enc.n == 0) return 1;
  for (int i = 0; names[i]; i++)
    if (enc.n == strlen(names[i]) && memcmp(enc.p, names[i], enc.n) == 0) return 1;
  if (enc.n > 6 && memcmp(enc.p, "utf-8-", 6) == 0) return 1;
  return 0;
}

static void report_imports(Scanner *s) {
  if (!s->v->import) return;
  PyImportName *names = malloc((size_t)(s->nimpnames ? s->nimpnames : 1) * sizeof *names);
  if (!names) {
    s->oom = 1;
    return;
  }
  for (int i = 0; i < s->nimpnames; i++) {
    names[i].name = deref(&s->arena, s->impnames[i].name);
    names[i].alias = deref(&s->arena, s->impnames[i].alias);
  }
  for (int i = 0; i < s->nimps; i++) {
    Imp *m = &s->imps[i];
    PyImport imp = {deref(&s->arena, m->module), m->level, m->is_from, names + m->first_name, m->nnames,
                    m->star, m->line, m->type_checking, m->optional, deref(&s->arena, m->function),
                    m->ref_start, m->ref_len};
    s->v->import(s->v->ctx, &imp);
  }
  free(names);
}

enum { SKIP_NO, SKIP_LINE, SKIP_HEADER };

static int header_skippable(Scanner *s) {
  Func *f = current_func(s);
  return f && f->collect ? SKIP_NO : SKIP_HEADER;
}

/* Whether a logical line that starts with `first` can hold nothing the
 * extractor reads, whatever follows on it (pylex_skip_line checks the
 * rest): a line inside a block, in no function that keeps its body's
 * names, that is not an import or a decorator, and does not start with
 * ';' (an empty statement, then anything). SKIP_LINE for a simple
 * statement; SKIP_HEADER for the header of a for, while, if, elif or with
 * block (what it opens is an ordinary block); SKIP_NO for the rest (def,
 * class, try, except, else and finally lines say more). */
static int skippable(Scanner *s, const PyTok *first) {
  if (!pyscan_skip_lines || s->nblocks == 0) return SKIP_NO;
  if (first->type == PYT_OP) {
    if (tok_is(first, "@") || tok_is(first, ";")) return SKIP_NO;
  } else if (first->type == PYT_NAME) {
    /* tok_is compares the length and first byte before anything else */
    if (tok_is(first, "if") || tok_is(first, "for") || tok_is(first, "while") || tok_is(first, "with") ||
        tok_is(first, "elif"))
      return header_skippable(s);
    if (tok_is(first, "import") || tok_is(first, "from") || tok_is(first, "def") || tok_is(first, "class") ||
        tok_is(first, "async") || tok_is(first, "try") || tok_is(first, "except") || tok_is(first, "else") ||
        tok_is(first, "finally") || tok_is(first, "match") || tok_is(first, "case") ||
        tok_is(first, "import_module") || tok_is(first, "__import__"))
      return SKIP_NO;
    /* an assignment of the module's, in a block at the top */
    if (at_module_level(s)) return SKIP_NO;
  } else if (first->type != PYT_STRING && first->type != PYT_NUMBER) {
    return SKIP_NO;
  }
  Func *f = current_func(s);
  return f && f->collect ? SKIP_NO : SKIP_LINE;
}

/* What statement() does for a simple statement that is not an import. */
static void line_skipped(Scanner *s) {
  int level = s->nblocks;
  if (level <= PY_MAX_INDENT) s->last_try_start[level] = s->last_try_end[level] = 0;
  s->ndecors = 0;
  s->decor_start = NULL;
}

/* What statement() does for the header of an ordinary block (no inline
 * body, no TYPE_CHECKING, no suppress) that starts at line `line`. */
static void header_skipped(Scanner *s, int line) {
  line_skipped(s);
  s->pending_kind = K_OTHER;
  s->pending_func = -1;
  s->pending_class = no_ref;
  s->pending_try_start = 0;
  s->pending_line = line;
}

int pyscan_skip_lines = 1;

int pyscan(const char *src, size_t n, const PyVisitor *v) {
  Scanner *s = calloc(1, sizeof *s);
  if (!s) return -1;
  s->v = v;
  s->pending_kind = -1;
  PyStr enc = coding(src, n);
  if (v->encoding) v->encoding(v->ctx, enc.n ? enc : (PyStr){"utf-8", 5});
  if (utf8_name(enc)) {
    int bad = utf8_error_line(src, n);
    if (bad) report_error(s, bad, "invalid UTF-8 in source (no encoding declared that allows it)");
  }
  pylex_init(&s->lx, src, n);
  PyTok tok;
  int relex = 0; /* the line being read again after a failed skip */
  while (!s->error && !s->oom) {
    int type = pylex_next(&s->lx, &tok);
    if (type == PYT_ERROR) {
      report_error(s, s->lx.error_line, s->lx.error);
      break;
    }
    if (type == PYT_END) break;
    if (type == PYT_INDENT) {
      if (s->pending_kind < 0) {
        report_error(s, tok.line, "unexpected indent");
        break;
      }
      push_block(s, s->pending_kind, s->pending_func, s->pending_class, s->pending_try_start);
      s->pending_kind = -1;
      continue;
    }
    if (s->pending_kind >= 0 && type != PYT_NEWLINE) {
      char msg[96];
      snprintf(msg, sizeof msg, "expected an indented block after the statement on line %d", s->pending_line);
      report_error(s, tok.line, msg);
      break;
    }
    if (type == PYT_DEDENT) {
      pop_block(s);
      continue;
    }
    if (type == PYT_NEWLINE) {
      s->last_end = tok.p;
      if (s->ntoks > 0) statement(s, 0, s->ntoks);
      s->ntoks = 0;
      continue;
    }
    int skip = s->ntoks == 0 && !relex ? skippable(s, &tok) : SKIP_NO;
    if (skip != SKIP_NO) {
      /* A line with nothing to extract: its tokens are not kept. */
      if (pylex_skip_line(&s->lx, skip == SKIP_HEADER) == 0) {
        if (skip == SKIP_HEADER) header_skipped(s, tok.line);
        else line_skipped(s);
        continue;
      }
      /* Something in it may count: read it again from its first token. */
      s->lx.cur = tok.p;
      s->lx.line = tok.line;
      s->lx.depth = 0;
      s->lx.error[0] = '\0';
      s->lx.error_line = 0;
      relex = 1;
      continue;
    }
    relex = 0;
    if (grow((void **)&s->toks, &s->captoks, s->ntoks + 1, sizeof *s->toks)) {
      s->oom = 1;
      break;
    }
    s->toks[s->ntoks++] = tok;
  }
  if (!s->error && s->pending_kind >= 0) {
    char msg[96];
    snprintf(msg, sizeof msg, "expected an indented block after the statement on line %d", s->pending_line);
    report_error(s, s->lx.line, msg);
  }
  /* Report what is open (functions cut short by an error included). */
  while (s->nblocks > 0) pop_block(s);
  while (s->nfuncs > 0) end_function(s);
  report_imports(s);
  int rc = (s->error || s->oom) ? -1 : 0;
  if (s->oom && !s->error && v->error) v->error(v->ctx, s->lx.line, "out of memory");
  free(s->toks);
  free(s->decors);
  free(s->funcs);
  free(s->imps);
  free(s->impnames);
  free(s->strbuf);
  free(s->decbuf);
  free(s->argbuf);
  free(s->arena.p);
  free(s);
  return rc;
}
