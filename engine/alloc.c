/*
 * alloc.c: the Lua state's allocator. Lua makes and frees a great many
 * small blocks (short strings, tables of a few fields, closures) and always
 * says a block's size when it frees or resizes it, so small blocks come from
 * free lists by size (16-byte steps up to NP_ALLOC_SMALL bytes), carved
 * from 64 KiB chunks, and go back onto them: a push and a pop instead of
 * malloc's bookkeeping (analyze on a large suite spent a fifth of its Lua
 * work in malloc and free). Larger blocks are malloc's. The chunks are
 * freed with the pool, after lua_close.
 *
 * Under AddressSanitizer np_alloc is plain malloc's, so the sanitizer sees
 * each of Lua's blocks; the pool (np_pool_alloc) is built all the same, for
 * its test (engine/tests/test_core.c).
 */
#include <stdlib.h>
#include <string.h>

#include "alloc.h"

#if defined(__SANITIZE_ADDRESS__)
#define NP_ALLOC_PLAIN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define NP_ALLOC_PLAIN 1
#endif
#endif

#define STEP 16
#define CHUNK (64 * 1024)

typedef struct Chunk {
  struct Chunk *next;
} Chunk;

/* Header room at the start of each chunk, kept a multiple of STEP so the
 * blocks after it stay aligned as malloc's are. */
#define CHUNK_HEAD (((sizeof(Chunk) + STEP - 1) / STEP) * STEP)

typedef struct Free {
  struct Free *next;
} Free;

static size_t size_class(size_t n) { return (n + STEP - 1) / STEP; }

/* A block of class c (c * STEP bytes), or NULL when out of memory. */
static void *take(NpPool *p, size_t c) {
  Free *f = p->free[c];
  if (f) {
    p->free[c] = f->next;
    return f;
  }
  size_t want = c * STEP;
  if (p->left < want) {
    /* (what is left of the old chunk stays unused: less than a block) */
    Chunk *ch = malloc(CHUNK);
    if (!ch) return NULL;
    ch->next = p->chunks;
    p->chunks = ch;
    p->next = (char *)ch + CHUNK_HEAD;
    p->left = CHUNK - CHUNK_HEAD;
  }
  void *b = p->next;
  p->next += want;
  p->left -= want;
  return b;
}

static void give(NpPool *p, void *b, size_t c) {
  Free *f = b;
  f->next = p->free[c];
  p->free[c] = f;
}

void *np_pool_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
  NpPool *p = ud;
  /* with no block, osize is the kind of object Lua makes, not a size */
  size_t oc = ptr && osize <= NP_ALLOC_SMALL ? size_class(osize) : 0;
  if (nsize == 0) {
    if (oc) give(p, ptr, oc);
    else free(ptr);
    return NULL;
  }
  size_t nc = nsize <= NP_ALLOC_SMALL ? size_class(nsize) : 0;
  if (!ptr) return nc ? take(p, nc) : malloc(nsize);
  if (!oc && !nc) return realloc(ptr, nsize);
  if (oc && oc == nc) return ptr;
  void *b = nc ? take(p, nc) : malloc(nsize);
  if (!b) return NULL; /* (Lua keeps the old block) */
  memcpy(b, ptr, osize < nsize ? osize : nsize);
  if (oc) give(p, ptr, oc);
  else free(ptr);
  return b;
}

void *np_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
#ifdef NP_ALLOC_PLAIN
  (void)ud;
  (void)osize;
  if (nsize == 0) {
    free(ptr);
    return NULL;
  }
  return realloc(ptr, nsize);
#else
  return np_pool_alloc(ud, ptr, osize, nsize);
#endif
}

void np_pool_free(NpPool *p) {
  Chunk *ch = p->chunks;
  while (ch) {
    Chunk *next = ch->next;
    free(ch);
    ch = next;
  }
  memset(p, 0, sizeof *p);
}
