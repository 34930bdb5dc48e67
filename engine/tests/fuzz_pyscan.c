/*
 * libFuzzer harness for the Python scanner: any bytes, no crash, no leak,
 * no read outside the input (AddressSanitizer), and facts that make sense:
 * lines within the source, imports with a level that is not negative; a
 * recorded and replayed scan (pyfacts.c) reports exactly what a direct one
 * does, one that skips lines without making tokens reports what one that
 * reads every token does, and replaying the raw input as a record never
 * reads past it.
 * Build and run: scripts/fuzz.sh pyscan [seconds]; seeds are
 * spec/fixtures/pyscan-corpus/ and the bundled example's Python.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pyfacts.h"
#include "pyfacts_dump.h"
#include "pyscan.h"

typedef struct Ctx {
  int lines;
} Ctx;

static void check_line(const Ctx *c, int line) {
  if (line < 1 || line > c->lines + 1) abort();
}

static void on_import(void *ctx, const PyImport *m) {
  check_line(ctx, m->line);
  if (m->level < 0 || m->nnames < 0) abort();
}

static void on_function(void *ctx, const PyFunction *f) {
  check_line(ctx, f->line);
  for (int i = 0; i < f->nnames; i++)
    if (f->names[i].n == 0) abort();
}

static void on_error(void *ctx, int line, const char *message) {
  check_line(ctx, line);
  if (!message[0]) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  Ctx c = {1};
  for (size_t i = 0; i < size; i++)
    if (data[i] == '\n' || (data[i] == '\r' && (i + 1 >= size || data[i + 1] != '\n'))) c.lines++;
  PyVisitor v = {&c, NULL, on_import, NULL, on_function, NULL, NULL, on_error, (int)(size % 3), NULL};
  pyscan((const char *)data, size, &v);

  int names = (int)(size % 3);
  /* half the time, body names only under what can be a fixture's
   * decorator (what analyze asks for) */
  const char *suffix = names == PYSCAN_NAMES_DECORATED && (size / 3) % 2 ? "fixture" : NULL;
  Dump direct = {0}, replayed = {0}, raw = {0}, tokens = {0};
  PyVisitor d = dump_visitor(&direct, names);
  d.names_suffix = suffix;
  int rc = pyscan((const char *)data, size, &d);
  /* skipping lines without tokens finds what reading every token does */
  PyVisitor t = dump_visitor(&tokens, names);
  t.names_suffix = suffix;
  pyscan_skip_lines = 0;
  int rc_tokens = pyscan((const char *)data, size, &t);
  pyscan_skip_lines = 1;
  if (rc != rc_tokens || direct.n != tokens.n || (direct.n && memcmp(direct.p, tokens.p, direct.n) != 0)) abort();
  free(tokens.p);
  PyFacts f = {0};
  PyFnFilter only = {NULL, 0, 0, suffix};
  pyfacts_record((const char *)data, size, names, suffix ? &only : NULL, &f);
  PyVisitor r = dump_visitor(&replayed, names);
  if (f.failed || pyfacts_replay(f.p, f.n, &r) != 0) abort();
  if (direct.n != replayed.n || (direct.n && memcmp(direct.p, replayed.p, direct.n) != 0)) abort();
  PyVisitor w = dump_visitor(&raw, names);
  pyfacts_replay((const char *)data, size, &w);
  pyfacts_free(&f);
  free(direct.p);
  free(replayed.p);
  free(raw.p);
  return 0;
}
