/*
 * alloc.h: the Lua state's allocator (alloc.c): lua_newstate(np_alloc,
 * &pool) with a zeroed NpPool, and np_pool_free(&pool) after lua_close.
 * One pool serves one state, on one thread.
 */
#ifndef NOVAPIPE_ALLOC_H
#define NOVAPIPE_ALLOC_H

#include <stddef.h>

/* Blocks up to this size come from the pool's free lists. */
#define NP_ALLOC_SMALL 256

typedef struct NpPool {
  void *free[NP_ALLOC_SMALL / 16 + 1]; /* by size class: class c holds c * 16 bytes */
  struct Chunk *chunks;                /* every chunk, for np_pool_free */
  char *next;                          /* the unused rest of the newest chunk */
  size_t left;
} NpPool;

/* A lua_Alloc (the contract of lua_newstate's allocator): the pool's, or
 * plain malloc's under AddressSanitizer. */
void *np_alloc(void *ud, void *ptr, size_t osize, size_t nsize);
/* The pool's, in every build (what np_alloc is outside AddressSanitizer). */
void *np_pool_alloc(void *ud, void *ptr, size_t osize, size_t nsize);

/* Frees every chunk; the pool is empty (and usable) again. */
void np_pool_free(NpPool *p);

#endif
