/*
 * linebuf: splits a byte stream into whole lines across read boundaries.
 *
 * Bytes are fed in chunks of any size; every complete line (without its
 * '\n') is handed to an emit callback, straight from the caller's chunk when
 * nothing is pending, otherwise from an internal buffer. A line longer than
 * `max` bytes is handed on in pieces of at most `max` bytes so memory stays
 * bounded, each cut after a separator (space, quote, comma, bracket) near
 * its end when there is one, so a filter never sees a word split in two;
 * such a piece is flagged as not ending a line.
 */
#ifndef NOVAPIPE_LINEBUF_H
#define NOVAPIPE_LINEBUF_H

#include <stddef.h>

/* Called once per line or piece; `eol` is 1 when the piece ends a line.
 * A non-zero return stops the feed and is passed back to the caller. */
typedef int (*linebuf_emit)(void *ctx, const char *line, size_t len, int eol);

typedef struct LineBuf {
  char *buf;      /* pending partial line, NULL until first needed */
  size_t len;     /* bytes pending */
  size_t cap;     /* bytes allocated */
  size_t max;     /* longest piece ever emitted */
} LineBuf;

void linebuf_init(LineBuf *lb, size_t max);
void linebuf_free(LineBuf *lb);
/* Returns 0, the emit callback's non-zero value, or -1 when out of memory. */
int linebuf_feed(LineBuf *lb, const char *data, size_t n, linebuf_emit emit, void *ctx);
/* Hands on a pending partial line (end of stream), flagged eol = 0. */
int linebuf_finish(LineBuf *lb, linebuf_emit emit, void *ctx);

#endif
