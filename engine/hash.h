/*
 * hash.h: FNV-1a (64 bits) over bytes, for the host's hash sets and the
 * compiled modules' headers (chunks.c; scripts/compile-lua.lua computes
 * the same in Lua).
 */
#ifndef NOVAPIPE_HASH_H
#define NOVAPIPE_HASH_H

#include <stddef.h>
#include <stdint.h>

static inline uint64_t np_fnv1a(const char *p, size_t n) {
  uint64_t h = 14695981039346656037ull;
  for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)p[i]) * 1099511628211ull;
  return h;
}

#endif
