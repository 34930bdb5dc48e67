/*
 * grow.h: growing a malloc'ed array, for the plain-C core (pyfacts.c,
 * watch.c): np_grow(&v, &cap, need, sizeof *v) makes room for `need`
 * items, doubling the capacity (16 at first); 0, or -1 when out of memory
 * (then v and cap are as they were).
 */
#ifndef NOVAPIPE_GROW_H
#define NOVAPIPE_GROW_H

#include <stdlib.h>

static inline int np_grow(void **v, size_t *cap, size_t need, size_t elem) {
  if (need <= *cap) return 0;
  size_t c = *cap ? *cap : 16;
  while (c < need) c *= 2;
  void *nv = realloc(*v, c * elem);
  if (!nv) return -1;
  *v = nv;
  *cap = c;
  return 0;
}

#endif
