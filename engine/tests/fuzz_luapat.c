/*
 * libFuzzer harness for luapat (engine/luapat.c): the input's first line
 * is a pattern, the rest the subject. Any bytes: no crash, no read outside
 * the input (AddressSanitizer); a pattern luapat_supported accepts is
 * matched, and the result holds every byte of the subject that no match
 * took. spec/unit/phi_spec.lua holds the results to string.gsub. The
 * matcher backtracks as Lua's does, so a long pattern of quantified items
 * is exponential in Lua and here alike: patterns are kept to 10 bytes and
 * subjects to 64, so a run looks for crashes, not for that.
 * Build and run: scripts/fuzz.sh luapat [seconds].
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "luapat.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const char *nl = memchr(data, '\n', size);
  if (!nl) return 0;
  size_t pl = (size_t)(nl - (const char *)data);
  if (pl > 10 || size - pl - 1 > 64) return 0;
  char *p = malloc(pl + 1);
  if (!p) return 0;
  memcpy(p, data, pl);
  p[pl] = '\0';
  if (strlen(p) == pl && luapat_supported(p)) {
    /* the subject on its own, so a read past it is caught */
    size_t n = size - pl - 1;
    char *s = malloc(n ? n : 1);
    if (s) {
      memcpy(s, nl + 1, n);
      char *out = NULL;
      size_t len = 0, cap = 0;
      long count = luapat_gsub(s, n, p, "#", 1, &out, &len, &cap);
      if (count < 0) abort();
      if (count == 0 && (len != n || (n && memcmp(out, s, n) != 0))) abort();
      if (len > n + (size_t)count) abort();
      free(out);
      free(s);
    }
  }
  free(p);
  return 0;
}
