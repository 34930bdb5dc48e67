/*
 * pyfacts: a recorded and replayed scan reports exactly what a direct scan
 * reports; bytes that are not a record are refused, never read past.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pyfacts.h"
#include "pyfacts_dump.h"

static int passed, failed;

#define CHECK(cond, ...)                      \
  do {                                        \
    if (cond) {                               \
      passed++;                               \
    } else {                                  \
      failed++;                               \
      fprintf(stderr, "FAIL line %d: ", __LINE__); \
      fprintf(stderr, __VA_ARGS__);           \
      fputc('\n', stderr);                    \
    }                                         \
  } while (0)

static char *read_file(const char *path, size_t *n) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  long size = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *p = malloc((size_t)size + 1);
  *n = fread(p, 1, (size_t)size, f);
  fclose(f);
  return p;
}

/* Direct and replayed dumps of src, for each names option; and the
 * direct dump equals one made reading every line token by token. */
static void roundtrip(const char *what, const char *src, size_t n) {
  for (int names = 0; names < 3; names++) {
    Dump direct = {0}, replayed = {0}, tokens = {0};
    PyVisitor u = dump_visitor(&tokens, names);
    pyscan_skip_lines = 0;
    int rc_tokens = pyscan(src, n, &u);
    pyscan_skip_lines = 1;
    PyVisitor v = dump_visitor(&direct, names);
    int rc_direct = pyscan(src, n, &v);
    CHECK(rc_tokens == rc_direct && tokens.n == direct.n && (direct.n == 0 || memcmp(direct.p, tokens.p, direct.n) == 0),
          "%s (names %d): skipping lines changes the facts:\n--- token by token\n%s\n--- skipping\n%s", what, names,
          tokens.p ? tokens.p : "", direct.p ? direct.p : "");
    free(tokens.p);
    PyFacts f = {0};
    int rc_record = pyfacts_record(src, n, names, NULL, &f);
    CHECK(!f.failed, "%s: recording failed", what);
    PyVisitor w = dump_visitor(&replayed, names);
    CHECK(pyfacts_replay(f.p, f.n, &w) == 0, "%s: replay refused its own record", what);
    CHECK(rc_direct == rc_record, "%s: results differ", what);
    CHECK(direct.n == replayed.n && (direct.n == 0 || memcmp(direct.p, replayed.p, direct.n) == 0),
          "%s (names %d): replayed facts differ:\n--- direct\n%s\n--- replayed\n%s", what, names,
          direct.p ? direct.p : "", replayed.p ? replayed.p : "");
    /* every cut of the record is refused or read whole, never past its end */
    for (size_t cut = 0; cut < f.n; cut += 1 + f.n / 200) {
      Dump d = {0};
      PyVisitor x = dump_visitor(&d, names);
      char *copy = malloc(cut ? cut : 1);
      memcpy(copy, f.p, cut);
      pyfacts_replay(copy, cut, &x);
      free(copy);
      free(d.p);
    }
    pyfacts_free(&f);
    free(direct.p);
    free(replayed.p);
  }
}

/* The facts of src recorded with a filter and replayed, as text (the
 * caller frees it). */
static char *filtered(const char *src, int names, PyFnFilter filter) {
  PyFacts f = {0};
  pyfacts_record(src, strlen(src), names, &filter, &f);
  Dump d = {0};
  PyVisitor v = dump_visitor(&d, names);
  CHECK(pyfacts_replay(f.p, f.n, &v) == 0, "replay");
  pyfacts_free(&f);
  return d.p ? d.p : calloc(1, 1);
}

static void test_prefix(void) {
  char *d = filtered("def test_a(x): pass\ndef helper(y): pass\n@fixture\ndef db(): pass\n", 0,
                     (PyFnFilter){"test", 4, 0, NULL});
  CHECK(strstr(d, "[6:test_a]") && strstr(d, "[2:db]") && !strstr(d, "helper"),
        "only test* and decorated functions are recorded: %s", d);
  free(d);
  /* lean: a test that requests nothing and carries no marker is recorded in
   * brief (no parameters, decorators or names: the replay's filter leaves
   * it out and notes its name), and so is a class with neither decorators
   * nor bases */
  char *e = filtered("def test_plain(): pass\nclass TestC:\n    def test_m(self, *a, **k): pass\n"
                     "    def test_f(self, db): pass\n@mark.slow\ndef test_d(): pass\n"
                     "@mark.db\nclass TestMarked(Base): pass\n", 0, (PyFnFilter){"test", 4, 1, NULL});
  CHECK(strstr(e, "F[10:test_plain] 1 0[0:][0:](0){0}(0)(0)") && strstr(e, "F[6:test_m] 3 0[5:TestC][0:](0){0}(0)(0)") &&
            strstr(e, "[6:test_f] 4 0[5:TestC][0:](2[4:self][2:db])") && strstr(e, "{1[9:mark.slow]"),
        "lean keeps what requests fixtures or carries decorators, the other tests in brief: %s", e);
  CHECK(strstr(e, "C[5:TestC] 2(0){0}") && strstr(e, "C[10:TestMarked] 8(1[4:Base]){1[7:mark.db]"),
        "lean keeps decorated classes, the others in brief: %s", e);
  PyFunction plain = {.name = {"test_plain", 10}};
  PyFnFilter lean = {"test", 4, 1, NULL};
  CHECK(!pyfacts_wanted(&lean, &plain) && pyfacts_left_test(&lean, &plain), "a brief test is left out, and noted");
  free(e);
  /* names_suffix: body names only where a decorator can be a fixture's */
  char *x = filtered("from pytest import fixture as fx\n@pytest.fixture\ndef a():\n    return used_a\n"
                     "@fx\ndef b():\n    return used_b\n"
                     "@unittest.skipIf(x)\ndef c():\n    return used_c\n@mark.slow\n@pt.yield_fixture(scope='s')\n"
                     "def d():\n    return used_d\n@cpython_only\ndef e():\n    return used_e\n",
                     PYSCAN_NAMES_DECORATED, (PyFnFilter){NULL, 0, 0, "fixture"});
  CHECK(strstr(x, "used_a") && strstr(x, "used_b") && !strstr(x, "used_c") && strstr(x, "used_d") &&
        !strstr(x, "used_e") && strstr(x, "[1:c]"),
        "names kept where a decorator can be a fixture's (a plain name only when an import binds it to one): %s", x);
  free(x);
}

static void test_garbage(void) {
  const char bad[][16] = {"Z", "F\xff\xff\xff\x7f", "I\x05\0\0\0ab", "C\0\0\0\0\x01\0\0\0\xff\xff\xff\x7f"};
  const size_t lens[] = {1, 5, 8, 13};
  for (int i = 0; i < 4; i++) {
    Dump d = {0};
    PyVisitor v = dump_visitor(&d, 0);
    CHECK(pyfacts_replay(bad[i], lens[i], &v) == -1, "garbage %d is refused", i);
    free(d.p);
  }
  Dump d = {0};
  PyVisitor v = dump_visitor(&d, 0);
  CHECK(pyfacts_replay("", 0, &v) == 0 && d.n == 0, "an empty record holds nothing");
}

int main(int argc, char **argv) {
  const char *inline_src[] = {
    "# -*- coding: latin-1 -*-\nimport os, sys as s\nfrom .. import x as y\nfrom a.b import (c,\n d)\n",
    "try:\n    import psycopg2\nexcept ImportError:\n    psycopg2 = None\n"
    "if TYPE_CHECKING:\n    from x import Y\n",
    "import pytest\npytestmark = [pytest.mark.integration, pytest.mark.slow]\n"
    "@pytest.mark.parametrize('a,b', [(1, 2)])\n@pytest.mark.usefixtures('db', key=value)\n"
    "async def test_x(a, b, *args, **kw):\n    importlib.import_module('m')\n    return a.b.c\n"
    "@decorate\nclass TestX(Base, other.Mixin):\n    def test_m(self, db_session):\n        pass\n",
    "def broken(:\n    x = '''unterminated\n",
    "",
    /* lines a scan skips, and lines that look skippable but are not */
    "def f():\n    x = 1; import os\n    y = g(\n        1,\n        2); from a import b\n"
    "    __import__('m1')\n    z = importlib.import_module('m2')\n    w = (1 +\n         mod.__import__('m3'))\n"
    "    s = f'{x!r:>{w}}' rb'\\'' Rb\"\"\"a\nb\"\"\" + fb'x'\n    t = u'a' + 'b' # ; import not\n"
    "    q = x \\\n        + 1\n    (a, b) = [c for c in d if c]; import late\n",
    "class C:\n    a = 1\n    b: int = 2\n    @fixture\n    def m(self):\n        x = db.session; y = cfg\n",
    "def f():\n    x = 'unterminated\n",
    "def f():\n    x = (1,\n",
    "def f():\n    x = 1)\n",
    "def f():\n    x = $\n",
    "def f():\n    x = 1 \\ 2\n",
    "def f():\n    x = 1\\",
    "def f():\r\n    x = '''a\r\nb'''\r\n    import c\r\n",
    "def f():\n    x = 1 ! 2\n",
    "def f():\n    x = ab'q'\n    y = 1'q'\n",
    "def f():\n    x = f'{\"a\"}' + f'{g(\"(\")}'\n    import after_fstrings\n",
    "try:\n ;import a\nexcept ImportError:\n    pass\n",
    /* 0e+f is one number, so the quote after it opens a plain string */
    "try:\n x = 0e+f\"{d\n}\"\n",
    "def f():\n    return 1e-5 + 0x1e+f'{a}' + .5j\n    import n\n",
    /* headers of ordinary blocks, and those that say more */
    "def f():\n    for x in y: import z\n    if TYPE_CHECKING:\n        import t\n"
    "    with suppress(ImportError):\n        import s\n    while (n := g()) > 0:  # note\n        import w\n"
    "    if d[1:2] == {a: b} and (lambda: 1)():\n        import k\n    elif q:\n        pass\n"
    "    with open(p) as h, \\\n            other():\n        x = h.read()\n",
    "def f():\n    for x in y\n        pass\n",
    "def f():\n    if x:\n    import y\n",
    "def f():\n    x = a.f'{b}' + 1.f'c' + a_b'd' + \xc3\xa9'e' + _'f' + r'\\'' + 1if x else 2\n",
  };
  for (size_t i = 0; i < sizeof inline_src / sizeof *inline_src; i++) {
    char what[32];
    snprintf(what, sizeof what, "inline %zu", i);
    roundtrip(what, inline_src[i], strlen(inline_src[i]));
  }
  for (int i = 1; i < argc; i++) {
    size_t n;
    char *src = read_file(argv[i], &n);
    CHECK(src != NULL, "cannot read %s", argv[i]);
    if (src) roundtrip(argv[i], src, n);
    free(src);
  }
  test_prefix();
  test_garbage();
  printf("%d passed, %d failed\n", passed, failed);
  return failed ? 1 : 0;
}
