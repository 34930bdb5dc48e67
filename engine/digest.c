/*
 * digest.c: novapipe.digest, SHA-256 through OpenSSL's libcrypto, as hex.
 * The audit log chains its entries with it and records every report's.
 */
#include <errno.h>
#include <stdio.h>

#include <openssl/evp.h>

#include "host.h"

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
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  if (!EVP_Digest(data, len, md, &n, EVP_sha256(), NULL)) return luaL_error(L, "sha256: libcrypto failed");
  push_hex(L, md, n);
  return 1;
}

/* digest.sha256_file(path) -> hex string | nil, msg, errname */
static int l_sha256_file(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  FILE *f = fopen(path, "rbe");
  if (!f) {
    int e = errno;
    lua_pushfstring(L, "read '%s'", path);
    return np_fail(L, lua_tostring(L, -1), e);
  }
  EVP_MD_CTX *ctx = EVP_MD_CTX_new();
  int ok = ctx && EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
  unsigned char buf[65536];
  size_t r;
  while (ok && (r = fread(buf, 1, sizeof buf, f)) > 0) ok = EVP_DigestUpdate(ctx, buf, r);
  int e = ferror(f) ? errno : 0;
  fclose(f);
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  if (ok && !e) ok = EVP_DigestFinal_ex(ctx, md, &n);
  EVP_MD_CTX_free(ctx);
  if (e) {
    lua_pushfstring(L, "read '%s'", path);
    return np_fail(L, lua_tostring(L, -1), e);
  }
  if (!ok) return luaL_error(L, "sha256: libcrypto failed");
  push_hex(L, md, n);
  return 1;
}

static const luaL_Reg digest_funcs[] = {
  {"sha256", l_sha256},
  {"sha256_file", l_sha256_file},
  {NULL, NULL},
};

int luaopen_novapipe_digest(lua_State *L) {
  luaL_newlib(L, digest_funcs);
  return 1;
}
