/*
 * test_pyscan: the Python scanner's edge cases, run by ctest. Each case
 * scans a source and compares a one-line-per-fact summary.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pyscan.h"

static int passed, failed;

typedef struct Sum {
  char text[8192];
  size_t len;
} Sum;

static void add(Sum *s, const char *fmt, const char *a, size_t an, int b) {
  char tmp[512];
  int n = snprintf(tmp, sizeof tmp, fmt, (int)an, a, b);
  if (n > 0 && s->len + (size_t)n < sizeof s->text) {
    memcpy(s->text + s->len, tmp, (size_t)n);
    s->len += (size_t)n;
    s->text[s->len] = '\0';
  }
}

static void on_import(void *ctx, const PyImport *m) {
  Sum *s = ctx;
  add(s, "import %.*s@%d", m->module.p, m->module.n, m->level);
  for (int i = 0; i < m->nnames; i++) add(s, " %.*s%d", m->names[i].name.p, m->names[i].name.n, m->names[i].alias.n > 0);
  if (m->type_checking) add(s, " TC%.*s", "", 0, 0);
  if (m->optional) add(s, " OPT%.*s", "", 0, 0);
  add(s, ";%.*s", "", 0, 0);
}

static void on_dynamic(void *ctx, PyStr module, PyStr via, int line) {
  (void)via;
  add(ctx, "dyn %.*s:%d;", module.p, module.n, line);
}

static void on_function(void *ctx, const PyFunction *f) {
  Sum *s = ctx;
  add(s, "def %.*s(", f->name.p, f->name.n, 0);
  for (int i = 0; i < f->nparams; i++) add(s, "%.*s,", f->params[i].p, f->params[i].n, 0);
  add(s, ")%.*s", "", 0, 0);
  for (int i = 0; i < f->ndecorators; i++) add(s, "@%.*s", f->decorators[i].name.p, f->decorators[i].name.n, 0);
  add(s, ";%.*s", "", 0, 0);
}

static void on_error(void *ctx, int line, const char *message) {
  add(ctx, "error %.*s:%d;", message, strlen(message), line);
}

static const char *scan(const char *src, size_t n) {
  static Sum s;
  memset(&s, 0, sizeof s);
  PyVisitor v = {&s, NULL, on_import, on_dynamic, on_function, NULL, NULL, on_error, PYSCAN_NAMES_ALL, NULL};
  pyscan(src, n, &v);
  return s.text;
}

#define EXPECT(src, want) expect(__LINE__, src, sizeof(src) - 1, want)

static void expect(int line, const char *src, size_t n, const char *want) {
  const char *got = scan(src, n);
  if (strcmp(got, want) == 0) {
    passed++;
  } else {
    failed++;
    fprintf(stderr, "test_pyscan.c:%d:\n  want: %s\n  got:  %s\n", line, want, got);
  }
}

static char span[64];

static void on_span(void *ctx, const PyImport *m) {
  const char *src = ctx;
  snprintf(span, sizeof span, "%.*s", (int)m->ref_len, src + m->ref_start);
}

/* Where a `from` import's reference is, for rewriting it in place. */
static void test_ref_span(void) {
  const char *src = "x = 1\nfrom ..unit.helpers import (make,\n  other)\n";
  PyVisitor v = {(void *)src, NULL, on_span, NULL, NULL, NULL, NULL, NULL, PYSCAN_NAMES_NONE, NULL};
  pyscan(src, strlen(src), &v);
  if (strcmp(span, "..unit.helpers") == 0) passed++;
  else { failed++; fprintf(stderr, "ref span: [%s]\n", span); }
  /* an `import` item's dotted name, continued lines included (the last
   * item is the one the visitor saw last) */
  const char *plain = "import os, tests.a.\\\n  helpers as h\n";
  PyVisitor w = {(void *)plain, NULL, on_span, NULL, NULL, NULL, NULL, NULL, PYSCAN_NAMES_NONE, NULL};
  pyscan(plain, strlen(plain), &w);
  if (strcmp(span, "tests.a.\\\n  helpers") == 0) passed++;
  else { failed++; fprintf(stderr, "import ref span: [%s]\n", span); }
}

/* The functions' spans, "name[text]" each, for test_function_spans. */
static char spans[512];

static void on_span_function(void *ctx, const PyFunction *f) {
  const char *src = ctx;
  size_t len = strlen(spans);
  snprintf(spans + len, sizeof spans - len, "%.*s[%.*s]", (int)f->name.n, f->name.p, (int)(f->end - f->start),
           src + f->start);
}

static void expect_spans(int line, const char *src, const char *want) {
  spans[0] = '\0';
  for (int skip = 0; skip < 2; skip++) {
    pyscan_skip_lines = skip;
    for (int names = 0; names < 3; names++) {
      spans[0] = '\0';
      PyVisitor v = {(void *)src, NULL, NULL, NULL, on_span_function, NULL, NULL, NULL, names, NULL};
      pyscan(src, strlen(src), &v);
      if (strcmp(spans, want) == 0) {
        passed++;
      } else {
        failed++;
        fprintf(stderr, "test_pyscan.c:%d (skip %d, names %d):\n  want: %s\n  got:  %s\n", line, skip, names, want,
                spans);
      }
    }
  }
  pyscan_skip_lines = 1;
}

/* Where each function is: from its first decorator (a call, or one the
 * scanner does not read) to the end of its body's last line, trailing
 * comments, blank lines and what follows left out. */
static void test_function_spans(void) {
  expect_spans(__LINE__, "import pytest\n\n@pytest.fixture\ndef db():\n    return {}  # a dict\n\n\n# next\nX = 1\n",
               "db[@pytest.fixture\ndef db():\n    return {}  # a dict]");
  expect_spans(__LINE__, "@(lambda f: f)\n@a.b(c=[1,\n  2])\nasync def f(x):\n    if x:\n        y = '''\nz'''\n"
               "    return 1\n    # trailing\nclass C: pass\n",
               "f[@(lambda f: f)\n@a.b(c=[1,\n  2])\nasync def f(x):\n    if x:\n        y = '''\nz'''\n    return 1]");
  expect_spans(__LINE__, "def g(): return 1\r\ndef h():\r\n    def inner():\r\n        pass\r\n    return inner",
               "g[def g(): return 1]inner[def inner():\r\n        pass]h[def h():\r\n    def inner():\r\n"
               "        pass\r\n    return inner]");
  expect_spans(__LINE__, "class T:\n    @staticmethod\n    def m(x):\n        return x \\\n            + 1\nz = 2\n",
               "m[@staticmethod\n    def m(x):\n        return x \\\n            + 1]");
}

/* The module's assignments, "target:line" each, for test_assignments. */
static char assigns[512];

static void on_assign(void *ctx, const PyAssign *a) {
  (void)ctx;
  size_t len = strlen(assigns);
  snprintf(assigns + len, sizeof assigns - len, "%.*s:%d;", (int)a->target.n, a->target.p, a->line);
}

/* A module's own assignments, in a block at its top too (if, try, with,
 * for): not a class's or a function's. Read whether lines are skipped or
 * not, whatever names are kept. */
static void test_assignments(void) {
  const char *src = "import os\nif os.environ.get('T'): a = 1\nif T:\n    b = make('postgresql://x')\nelse:\n"
                    "    b = None\ntry:\n    c = 1\nexcept ImportError:\n    pass\nwith x():\n    d: int = 2\n"
                    "for i in y:\n    e = i\nclass K:\n    f = 1\n    def m(self):\n        g = 1\n"
                    "def h():\n    j = 1\n    if j:\n        k = 2\nz = 3\n";
  const char *want = "a:2;b:4;b:6;c:8;d:12;e:14;z:23;";
  for (int skip = 0; skip < 2; skip++) {
    pyscan_skip_lines = skip;
    for (int names = 0; names < 3; names++) {
      assigns[0] = '\0';
      PyVisitor v = {NULL, NULL, NULL, NULL, NULL, NULL, on_assign, NULL, names, NULL};
      pyscan(src, strlen(src), &v);
      if (strcmp(assigns, want) == 0) {
        passed++;
      } else {
        failed++;
        fprintf(stderr, "assignments (skip %d, names %d):\n  want: %s\n  got:  %s\n", skip, names, want, assigns);
      }
    }
  }
  pyscan_skip_lines = 1;
}

/* Counts the tokens of a source, for the lexer's own cases. */
static int count_tokens(const char *src, int type) {
  PyLexer lx;
  PyTok t;
  int n = 0;
  pylex_init(&lx, src, strlen(src));
  for (;;) {
    int k = pylex_next(&lx, &t);
    if (k == PYT_END || k == PYT_ERROR) break;
    if (k == type) n++;
  }
  return n;
}

int main(void) {
  /* strings of every form hide what is inside them */
  EXPECT("s = 'import a'\nt = \"import b\"\nu = r'\\' import c'\n", "");
  EXPECT("x = '''\nimport a\n''' ; y = b\"\"\"import b\"\"\"\nimport real\n", "import real@0 real0;");
  EXPECT("x = rb'\\n' + Rb\"x\" + BR'y' + u'z' + F'{a}'\nimport ok\n", "import ok@0 ok0;");
  /* f-strings with nested quotes and braces (PEP 701), format specs */
  EXPECT("x = f\"{d[\"k\"]} {y:{w}} {{not}} {f'{z}'}\"\nimport ok\n", "import ok@0 ok0;");
  EXPECT("x = f'''{\n  a\n}'''\nimport ok\n", "import ok@0 ok0;");
  /* a lambda inside brackets does not take the header's colon; '#' in a format spec */
  EXPECT("with a(1, lambda: None), \\\n     b:\n    import x\n", "import x@0 x0;");
  EXPECT("y = f\"{flags:#b} {x!r:>{w}}\"\nimport ok\n", "import ok@0 ok0;");
  /* malformed parameters keep at most two stars */
  EXPECT("def f(* **x, ***y): pass\n", "def f(**x,**y,);");
  /* an import of something that is not a name */
  EXPECT("import 8ytes\nimport ok\n", "import ok@0 ok0;");
  /* comments */
  EXPECT("# import a\nimport b  # import c 'unclosed\n", "import b@0 b0;");
  /* continuation lines */
  EXPECT("import a.b.\\\n    c\nfrom x import (y,\n   z as w,\n)\n", "import a.b.c@0 a.b.c0;import x@0 y0 z1;");
  /* relative imports, star, ... as one token */
  EXPECT("from ... import a\nfrom .m import *\nfrom . import b, c\n", "import @3 a0;import m@1;import @1 b0 c0;");
  /* TYPE_CHECKING, try/except ImportError, suppress, inline bodies */
  EXPECT("if TYPE_CHECKING:\n    import a\nelse:\n    import b\nif typing.TYPE_CHECKING: import c\n",
         "import a@0 a0 TC;import b@0 b0;import c@0 c0 TC;");
  EXPECT("try:\n    import a\nexcept (ValueError, ImportError):\n    a = None\ntry:\n    import b\nexcept KeyError:\n    pass\n",
         "import a@0 a0 OPT;import b@0 b0;");
  EXPECT("try: import a\nexcept ModuleNotFoundError: pass\nwith contextlib.suppress(ImportError):\n    import b\n",
         "import a@0 a0 OPT;import b@0 b0 OPT;");
  /* dynamic imports: a literal names its module, anything else is reported with none */
  EXPECT("m = importlib.import_module('x.y')\nn = __import__(\"z\")\no = import_module(name)\n", "dyn x.y:1;dyn z:2;dyn :3;");
  EXPECT("m = importlib.import_module(f'app.{x}')\nn = __import__('a' + b)\nimportlib.import_module()\n", "dyn :1;dyn :2;");
  EXPECT("def import_module(name):\n    return __import__(name)\n", "dyn :2;def import_module(name,);");
  EXPECT("def f():\n    return importlib.import_module(name, package)\n", "dyn :2;def f();");
  /* functions: params without annotations and defaults, decorators */
  EXPECT("@pytest.fixture(scope='module')\n@other\nasync def f(a: int = 3, *args, b=(1, 2), **kw) -> None:\n    pass\n",
         "def f(a,*args,b,**kw,)@pytest.fixture@other;");
  EXPECT("class T:\n    def m(self, x): return x\ndef g(): pass\n", "def m(self,x,);def g();");
  /* encodings, BOM, CRLF, lone CR */
  EXPECT("\xef\xbb\xbfimport a\r\nimport b\rimport c\n", "import a@0 a0;import b@0 b0;import c@0 c0;");
  EXPECT("# -*- coding: latin-1 -*-\nname = 'caf\xe9'\nimport a\n", "import a@0 a0;");
  /* errors, each with its line; facts before them still come */
  EXPECT("import a\nx = 'abc\nimport b\n", "error unterminated string literal (detected at line 2):2;import a@0 a0;");
  EXPECT("x = '''abc\n\n", "error unterminated triple-quoted string literal (detected at line 3):1;");
  EXPECT("x = (1,\n2\n", "error '(' was never closed:1;");
  EXPECT("a = 1\nb = [\n", "error '[' was never closed:2;");
  EXPECT("x = 1)\n", "error unmatched ')':1;");
  EXPECT("if x:\n        a = 1\n    b = 2\n", "error unindent does not match any outer indentation level:3;");
  EXPECT("if x:\nimport a\n", "error expected an indented block after the statement on line 1:2;");
  EXPECT("  import a\n", "error unexpected indent:1;");
  EXPECT("import a\nx = 1\0\n", "error source code cannot contain null bytes:2;import a@0 a0;");
  EXPECT("x = 'caf\xe9'\n", "error invalid UTF-8 in source (no encoding declared that allows it):1;");
  /* the line of a bad byte after long ASCII runs and valid multi-byte text */
  EXPECT("# caf\xc3\xa9 \xe2\x82\xac\nimport os\n\nx = 'a long line of plain ascii text'\ny = '\xff'\n",
         "error invalid UTF-8 in source (no encoding declared that allows it):5;");
  EXPECT("s = '\xe2\x82'\n", "error invalid UTF-8 in source (no encoding declared that allows it):1;");
  EXPECT("x = 1 $ 2\n", "error invalid character '$':1;");
  EXPECT("x = 1 \\ 2\n", "error unexpected character after line continuation character:1;");
  /* deep nesting: 500 is fine, past the limit is an error, never a crash */
  {
    size_t n = 500;
    char *src = malloc(2 * n + 16);
    memset(src, '(', n);
    memset(src + n, ')', n);
    memcpy(src + 2 * n, "\nimport a\n", 11);
    const char *got = scan(src, strlen(src));
    if (strcmp(got, "import a@0 a0;") == 0) passed++;
    else { failed++; fprintf(stderr, "500 deep: %s\n", got); }
    free(src);
    n = 5000;
    src = malloc(n + 2);
    memset(src, '[', n);
    src[n] = '\n';
    src[n + 1] = '\0';
    got = scan(src, n + 1);
    if (strstr(got, "too many nested parentheses")) passed++;
    else { failed++; fprintf(stderr, "5000 deep: %s\n", got); }
    free(src);
  }
  /* the lexer: INDENT/DEDENT pairs, blank and comment lines inside blocks */
  if (count_tokens("if a:\n    b\n\n    # c\n    d\ne\n", PYT_INDENT) == 1 &&
      count_tokens("if a:\n    if b:\n        c\n", PYT_DEDENT) == 2) passed++;
  else { failed++; fprintf(stderr, "indent counting\n"); }
  test_ref_span();
  test_function_spans();
  test_assignments();
  printf("%d passed, %d failed\n", passed, failed);
  return failed ? 1 : 0;
}
