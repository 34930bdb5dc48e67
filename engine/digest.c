/*
 * digest.c: novapipe.digest, SHA-256 through OpenSSL's libcrypto, as hex.
 * The audit log chains its entries with it and records every report's.
 *
 * libcrypto is not linked: it is opened with dlopen at the first digest
 * (or by digest.load, which a test run's record reporter calls at the
 * first test, while pytest runs), so a run that never makes one (novapipe exec, a read-only analyze, most
 * of the CLI) does not pay for loading and relocating it (2 ms), even when
 * a module it loads requires novapipe.digest. Only the
 * header's types and prototypes are used at build time; NOVAPIPE_LIBCRYPTO
 * (set by CMake from the version built against) names the library.
 */
#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>

#include <openssl/evp.h>

#include "host.h"

#ifndef NOVAPIPE_LIBCRYPTO
#define NOVAPIPE_LIBCRYPTO "libcrypto.so.3"
#endif

/* The libcrypto functions used, typed by their prototypes in the header. */
static struct {
  void *handle;
  __typeof__(&EVP_Digest) digest;
  __typeof__(&EVP_sha256) sha256;
  __typeof__(&EVP_MD_CTX_new) ctx_new;
  __typeof__(&EVP_MD_CTX_free) ctx_free;
  __typeof__(&EVP_DigestInit_ex) init;
  __typeof__(&EVP_DigestUpdate) update;
  __typeof__(&EVP_DigestFinal_ex) final;
} evp;

/* Looks `name` up in libcrypto into *fn (a function pointer); 0 or -1. */
static int find(void **fn, const char *name) {
  *fn = dlsym(evp.handle, name);
  return *fn ? 0 : -1;
}

/* Opens libcrypto and finds its functions, once per process (the library
 * stays loaded). Returns NULL, or what dlopen or dlsym said. */
static const char *load_libcrypto(void) {
  if (evp.final) return NULL;
  if (!evp.handle) evp.handle = dlopen(NOVAPIPE_LIBCRYPTO, RTLD_NOW | RTLD_LOCAL);
  if (!evp.handle) return dlerror();
  /* POSIX's way to store dlsym's void * in a function pointer. */
  if (find((void **)&evp.digest, "EVP_Digest") || find((void **)&evp.sha256, "EVP_sha256") ||
      find((void **)&evp.ctx_new, "EVP_MD_CTX_new") || find((void **)&evp.ctx_free, "EVP_MD_CTX_free") ||
      find((void **)&evp.init, "EVP_DigestInit_ex") || find((void **)&evp.update, "EVP_DigestUpdate") ||
      find((void **)&evp.final, "EVP_DigestFinal_ex")) {
    evp.final = NULL;
    return dlerror();
  }
  return NULL;
}

/* Raises, naming the library, when libcrypto cannot be loaded. */
static void need_libcrypto(lua_State *L) {
  const char *err = load_libcrypto();
  if (err)
    luaL_error(L, "novapipe.digest: cannot load %s (%s); install OpenSSL's libcrypto", NOVAPIPE_LIBCRYPTO, err);
}

static void push_hex(lua_State *L, const unsigned char *md, unsigned int n) {
  static const char hexdigits[] = "0123456789abcdef";
  char out[2 * EVP_MAX_MD_SIZE];
  for (unsigned int i = 0; i < n; i++) {
    out[2 * i] = hexdigits[md[i] >> 4];
    out[2 * i + 1] = hexdigits[md[i] & 15];
  }
  lua_pushlstring(L, out, 2 * (size_t)n);
}

/* digest.sha256(data) -> hex string */
static int l_sha256(lua_State *L) {
  size_t len;
  const char *data = luaL_checklstring(L, 1, &len);
  need_libcrypto(L);
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  if (!evp.digest(data, len, md, &n, evp.sha256(), NULL)) return luaL_error(L, "sha256: libcrypto failed");
  push_hex(L, md, n);
  return 1;
}

/* digest.sha256_file(path) -> hex string | nil, msg, errname */
static int l_sha256_file(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  need_libcrypto(L);
  FILE *f = fopen(path, "rbe");
  if (!f) {
    int e = errno;
    lua_pushfstring(L, "read '%s'", path);
    return np_fail(L, lua_tostring(L, -1), e);
  }
  EVP_MD_CTX *ctx = evp.ctx_new();
  int ok = ctx && evp.init(ctx, evp.sha256(), NULL);
  unsigned char buf[65536];
  size_t r;
  while (ok && (r = fread(buf, 1, sizeof buf, f)) > 0) ok = evp.update(ctx, buf, r);
  int e = ferror(f) ? errno : 0;
  fclose(f);
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  if (ok && !e) ok = evp.final(ctx, md, &n);
  evp.ctx_free(ctx);
  if (e) {
    lua_pushfstring(L, "read '%s'", path);
    return np_fail(L, lua_tostring(L, -1), e);
  }
  if (!ok) return luaL_error(L, "sha256: libcrypto failed");
  push_hex(L, md, n);
  return 1;
}

/* digest.load() -> true | nil, msg: opens libcrypto now, for a run that
 * will make digests, at a moment when it costs nothing (while pytest runs).
 * One digest is made too: libcrypto initialises itself (reads its
 * configuration file, sets up its providers) at the first, some 1 ms. */
static int l_load(lua_State *L) {
  const char *err = load_libcrypto();
  if (!err) {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    (void)evp.digest("", 0, md, &n, evp.sha256(), NULL);
    lua_pushboolean(L, 1);
    return 1;
  }
  lua_pushnil(L);
  lua_pushfstring(L, "novapipe.digest: cannot load %s (%s); install OpenSSL's libcrypto", NOVAPIPE_LIBCRYPTO, err);
  return 2;
}

static const luaL_Reg digest_funcs[] = {
  {"load", l_load},
  {"sha256", l_sha256},
  {"sha256_file", l_sha256_file},
  {NULL, NULL},
};

/* require "novapipe.digest": the module; libcrypto is loaded by the first
 * digest. */
int luaopen_novapipe_digest(lua_State *L) {
  luaL_newlib(L, digest_funcs);
  return 1;
}
