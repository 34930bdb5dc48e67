/*
 * pyscan: facts about Python source, from a tokenizer that follows Python's
 * lexical rules. No Lua here: the binding (pyscan_lua.c) and the C unit
 * tests each implement the visitor below.
 *
 * What is reported comes from tokens, so nothing inside a string or a
 * comment counts. The extractor reads statements, not the whole grammar:
 * it finds what the tokens say (imports, definitions, decorators, names) and
 * the errors the tokenizer and the block structure reveal (unterminated
 * strings, unbalanced brackets, bad indentation, a missing indented block,
 * null bytes, invalid UTF-8); a statement that is well formed token by token
 * but not by the grammar (`def f(:`) is not detected.
 */
#ifndef NOVAPIPE_PYSCAN_H
#define NOVAPIPE_PYSCAN_H

#include <stddef.h>

/* A string: bytes in the source or in the scanner's own storage, valid for
 * the duration of the callback that receives it. */
typedef struct PyStr {
  const char *p;
  size_t n;
} PyStr;

/* ---- the tokenizer ---- */

enum {
  PYT_END = 0,
  PYT_NAME,
  PYT_NUMBER,
  PYT_STRING,
  PYT_OP,
  PYT_NEWLINE,
  PYT_INDENT,
  PYT_DEDENT,
  PYT_ERROR
};

typedef struct PyTok {
  int type;
  const char *p; /* the token's text (for INDENT, DEDENT, NEWLINE: where it is) */
  size_t n;
  int line;
  int fstring;   /* a string with an f prefix */
} PyTok;

#define PY_MAX_INDENT 100
#define PY_MAX_NEST 1000

typedef struct PyLexer {
  const char *src, *end, *cur;
  int line;
  int depth;              /* open brackets */
  int open_line;          /* where the outermost open bracket is */
  char open_char;
  int at_line_start;
  int indents[PY_MAX_INDENT + 1];
  int nindent;
  int pending_dedents;
  int emitted_newline;    /* the last token was a NEWLINE (or none yet) */
  int done;
  char error[160];
  int error_line;
} PyLexer;

/* The text between a string token's quotes (its prefix and quotes off,
 * escapes as written). */
PyStr pytok_string_contents(const PyTok *tok);

/* Starts a lexer over [src, src+n). Skips a UTF-8 BOM. */
void pylex_init(PyLexer *lx, const char *src, size_t n);
/* The next token. After an error returns PYT_ERROR (with lx->error set) and
 * then PYT_END. */
int pylex_next(PyLexer *lx, PyTok *tok);

/* ---- facts ---- */

typedef struct PyImportName {
  PyStr name;
  PyStr alias;   /* n == 0 when there is none */
} PyImportName;

typedef struct PyImport {
  PyStr module;  /* dotted; empty for `from . import x` */
  int level;     /* leading dots of a relative import */
  int is_from;
  const PyImportName *names;
  int nnames;
  int star;      /* from x import * */
  int line;
  int type_checking; /* under `if TYPE_CHECKING:` */
  int optional;      /* under try/except ImportError or with suppress(ImportError) */
  PyStr function;    /* the enclosing function, n == 0 at module level */
  size_t ref_start;  /* where the module reference ("..pkg.mod", "a.b") starts in the source (bytes) */
  size_t ref_len;    /* and its length (for `import a.b, c` each item's "a.b") */
} PyImport;

typedef struct PyArg {
  PyStr key;     /* n == 0 for a positional argument */
  PyStr value;   /* a string literal's contents, a dotted name, or raw text */
  int kind;      /* 's' string literal, 'n' dotted name, 'r' raw */
} PyArg;

typedef struct PyDecorator {
  PyStr name;    /* dotted: pytest.mark.usefixtures */
  int call;      /* followed by arguments */
  const PyArg *args;
  int nargs;
  int line;
} PyDecorator;

typedef struct PyFunction {
  PyStr name;
  int line;
  int is_async;
  PyStr klass;   /* the class whose body defines it directly, n == 0 if none */
  PyStr parent;  /* the function it is nested in, n == 0 if none */
  const PyStr *params; /* names; "*args" and "**kw" keep their stars */
  int nparams;
  const PyDecorator *decorators;
  int ndecorators;
  const PyStr *names;  /* names and dotted chains its body uses, each once */
  int nnames;
  /* string literals in its body that look like connection strings (with
   * "://" or ":memory:"), each once, when its names are kept */
  const PyStr *strings;
  int nstrings;
  /* where it is in the source (bytes): from its first decorator's '@' (or
   * `def`, `async`) to the end of its body's last line, newline excluded */
  size_t start, end;
} PyFunction;

typedef struct PyClass {
  PyStr name;
  int line;
  const PyStr *bases;
  int nbases;
  const PyDecorator *decorators;
  int ndecorators;
} PyClass;

typedef struct PyAssign {
  PyStr target;
  int line;
  const PyStr *names;  /* dotted chains in the value */
  int nnames;
  const PyStr *strings; /* the value's plain string literals (no f-strings), at most PYSCAN_MAX_STRINGS */
  int nstrings;
} PyAssign;

#define PYSCAN_MAX_STRINGS 64

typedef struct PyVisitor {
  void *ctx;
  void (*encoding)(void *ctx, PyStr name);
  void (*import)(void *ctx, const PyImport *imp);
  void (*dynamic_import)(void *ctx, PyStr module, PyStr via, int line);
  void (*function)(void *ctx, const PyFunction *fn);
  void (*klass)(void *ctx, const PyClass *c);
  void (*assignment)(void *ctx, const PyAssign *a);
  void (*error)(void *ctx, int line, const char *message);
  /* Which functions get their body's names: PYSCAN_NAMES_ALL (0), only
   * decorated ones (fixtures always are), or none. */
  int names;
  /* With PYSCAN_NAMES_DECORATED, when set: only functions with a
   * decorator whose name ends with this, or a plain name an import before
   * it binds to a name that ends with it (say "fixture": what can be
   * pytest.fixture, also under an alias). */
  const char *names_suffix;
} PyVisitor;

enum { PYSCAN_NAMES_ALL = 0, PYSCAN_NAMES_DECORATED, PYSCAN_NAMES_NONE };

/* Scans source and reports facts to v (any callback may be NULL). Imports
 * are reported at the end, once try/except blocks are known. Returns 0, or
 * -1 when the source has a syntax error (also reported to v->error) or
 * memory ran out; facts found before the error are reported. */
int pyscan(const char *src, size_t n, const PyVisitor *v);

/* 1 (the default): lines with nothing to extract are skipped without
 * making tokens. 0 reads every line token by token; the facts are the
 * same either way (the tests and the fuzz target compare the two). */
extern int pyscan_skip_lines;

#endif
