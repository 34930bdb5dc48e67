/*
 * libFuzzer harness for the PHI scanner: any bytes, no crash, no read
 * outside the input (AddressSanitizer), and results that make sense: hits
 * in order, inside the line, not overlapping, of a known kind; the first-
 * hit scan agrees with the full one; a line phiscan_mask passes unchanged
 * holds no hit; the masked line is the line with each hit replaced.
 * Build and run: scripts/fuzz.sh phiscan [seconds]; seeds are the C unit
 * tests' lines and spec/fixtures.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "phiscan.h"

static const char *const domains[] = {"example.com"};
static const char *const tlds[] = {"test"};
static const char *const leads[] = {"MRN", "9"};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static PhiConfig c = {.domains = domains, .ndomains = 1, .tlds = tlds, .ntlds = 1, .leads = leads, .nleads = 2};
  if (!c.ready) phiscan_config_init(&c);
  const char *s = (const char *)data;
  int pending = size > 0 && data[0] == 'P';
  PhiHits h = {0};
  int next = 0, context = 0;
  size_t k = phiscan_line(&c, pending, s, size, &h, &next, &context);
  if (h.failed) abort();
  if (k != h.n) abort();
  for (size_t i = 0; i < k; i++) {
    const PhiHit *x = &h.v[i];
    if (x->start >= x->end || x->end > size) abort();
    if (x->kind <= PHI_NONE || x->kind >= PHI_KINDS) abort();
    if (i > 0 && x->start < h.v[i - 1].end) abort();
  }
  if ((phiscan_line(&c, pending, s, size, NULL, NULL, NULL) != 0) != (k != 0)) abort();
  PhiHits h2 = {0};
  PhiText t = {0};
  const char *out;
  size_t outn;
  int p2 = pending;
  int rc = phiscan_mask(&c, &p2, s, size, &h2, &t, &out, &outn);
  if (rc == 1) {
    if (k == 0 && (out != s || outn != size)) abort();
    size_t want = size;
    for (size_t i = 0; i < k; i++)
      want = want - (h.v[i].end - h.v[i].start) + strlen("[PHI:]") + strlen(phiscan_kind_name(h.v[i].kind));
    if (outn != want) abort();
    if (p2 != next) abort();
    if (phiscan_policy(&c, s, size)) abort();
  } else if (rc == 0 && p2 != pending) {
    abort();
  }
  phiscan_quiet(&c, pending, s, size);
  phiscan_hits_free(&h);
  phiscan_hits_free(&h2);
  free(t.p);
  free(t.q);
  return 0;
}
