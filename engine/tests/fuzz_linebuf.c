/*
 * libFuzzer harness for linebuf: whatever the chunking and the longest
 * piece, joining what is emitted (a '\n' after each piece that ends a line)
 * gives back the input exactly, no piece is longer than max, and only the
 * last piece may end without a line end. Build and run: scripts/fuzz.sh.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "linebuf.h"

typedef struct Out {
  char *buf;
  size_t len;
  size_t max;
} Out;

static int collect(void *ctx, const char *line, size_t len, int eol) {
  Out *o = ctx;
  if (len > o->max) abort();
  memcpy(o->buf + o->len, line, len);
  o->len += len;
  if (eol) o->buf[o->len++] = '\n';
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 2) return 0;
  size_t max = (size_t)data[0] % 64 + 1;
  size_t step = (size_t)data[1] % 17 + 1;
  data += 2;
  size -= 2;
  Out o = {malloc(size + 1), 0, max};
  LineBuf lb;
  linebuf_init(&lb, max);
  for (size_t off = 0; off < size; off += step) {
    size_t n = size - off < step ? size - off : step;
    if (linebuf_feed(&lb, (const char *)data + off, n, collect, &o) != 0) abort();
  }
  linebuf_finish(&lb, collect, &o);
  if (o.len != size || (size && memcmp(o.buf, data, size) != 0)) abort();
  linebuf_free(&lb);
  free(o.buf);
  return 0;
}
