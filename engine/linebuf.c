#include "linebuf.h"

#include <stdlib.h>
#include <string.h>

void linebuf_init(LineBuf *lb, size_t max) {
  lb->buf = NULL;
  lb->len = lb->cap = 0;
  lb->max = max > 0 ? max : 1;
}

void linebuf_free(LineBuf *lb) {
  free(lb->buf);
  lb->buf = NULL;
  lb->len = lb->cap = 0;
}

/* Appends n bytes to the pending line, growing up to lb->max. */
static int pending_add(LineBuf *lb, const char *p, size_t n) {
  if (lb->len + n > lb->cap) {
    size_t cap = lb->cap ? lb->cap : 256;
    while (cap < lb->len + n) cap *= 2;
    if (cap > lb->max) cap = lb->max;
    char *nb = realloc(lb->buf, cap);
    if (nb == NULL) return -1;
    lb->buf = nb;
    lb->cap = cap;
  }
  memcpy(lb->buf + lb->len, p, n);
  lb->len += n;
  return 0;
}

/* Where a full pending line is cut into a piece: after the last space,
 * tab, quote, comma, semicolon or angle bracket in its second half (at
 * most 4 KiB), so a value such as an SSN is not split between two pieces
 * that a filter sees apart; at max when there is none. */
static size_t piece_end(const LineBuf *lb) {
  size_t window = lb->max / 2;
  if (window > 4096) window = 4096;
  for (size_t i = lb->len; i > lb->len - window; i--) {
    char c = lb->buf[i - 1];
    if (c == ' ' || c == '\t' || c == '"' || c == '\'' || c == ',' || c == ';' || c == '<' || c == '>') return i;
  }
  return lb->len;
}

/* Emits the first piece of a full pending line and keeps the rest. */
static int emit_piece(LineBuf *lb, linebuf_emit emit, void *ctx) {
  size_t cut = piece_end(lb);
  int rc = emit(ctx, lb->buf, cut, 0);
  memmove(lb->buf, lb->buf + cut, lb->len - cut);
  lb->len -= cut;
  return rc;
}

int linebuf_feed(LineBuf *lb, const char *data, size_t n, linebuf_emit emit, void *ctx) {
  while (n > 0) {
    const char *nl = memchr(data, '\n', n);
    size_t seg = nl ? (size_t)(nl - data) : n;
    if (lb->len == 0 && nl && seg <= lb->max) {
      /* Fast path: a whole line inside this chunk. */
      int rc = emit(ctx, data, seg, 1);
      if (rc) return rc;
    } else {
      /* Fill the pending line, emitting full pieces of lb->max bytes. */
      size_t left = seg;
      const char *p = data;
      while (left > 0) {
        if (lb->len == lb->max) {
          int rc = emit_piece(lb, emit, ctx);
          if (rc) return rc;
        }
        size_t room = lb->max - lb->len;
        size_t take = left < room ? left : room;
        if (pending_add(lb, p, take)) return -1;
        p += take;
        left -= take;
      }
      if (nl) {
        int rc = emit(ctx, lb->buf ? lb->buf : "", lb->len, 1);
        lb->len = 0;
        if (rc) return rc;
      }
    }
    if (!nl) break;
    seg += 1;
    data += seg;
    n -= seg;
  }
  return 0;
}

int linebuf_finish(LineBuf *lb, linebuf_emit emit, void *ctx) {
  if (lb->len == 0) return 0;
  int rc = emit(ctx, lb->buf, lb->len, 0);
  lb->len = 0;
  return rc;
}
