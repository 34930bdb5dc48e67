#include "pyfacts.h"
#include "grow.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* ---- recording ---- */

typedef struct Rec {
  PyFacts *f;
  const PyFnFilter *filter;
} Rec;

int pyfacts_wanted(const PyFnFilter *filter, const PyFunction *f) {
  if (!filter || f->ndecorators > 0) return 1;
  if (filter->prefix &&
      !(f->name.n >= filter->prefix_len && memcmp(f->name.p, filter->prefix, filter->prefix_len) == 0))
    return 0;
  if (!filter->lean) return 1;
  for (int i = 0; i < f->nparams; i++) {
    PyStr p = f->params[i];
    if (p.n == 0 || p.p[0] == '*') continue;
    if ((p.n == 4 && memcmp(p.p, "self", 4) == 0) || (p.n == 3 && memcmp(p.p, "cls", 3) == 0)) continue;
    return 1;
  }
  return 0;
}

int pyfacts_left_test(const PyFnFilter *filter, const PyFunction *f) {
  return filter && filter->lean && filter->prefix && f->parent.n == 0 && f->name.n >= filter->prefix_len &&
         memcmp(f->name.p, filter->prefix, filter->prefix_len) == 0;
}

int pyfacts_left_load_tests(const PyFnFilter *filter, const PyFunction *f) {
  return filter && filter->lean && f->parent.n == 0 && f->klass.n == 0 && f->name.n == 10 &&
         memcmp(f->name.p, "load_tests", 10) == 0;
}

int pyfacts_class_wanted(const PyFnFilter *filter, const PyClass *c) {
  return !filter || !filter->lean || c->ndecorators > 0 || c->nbases > 0;
}

static void put(PyFacts *f, const void *p, size_t n) {
  if (f->failed) return;
  if (f->n + n > f->cap) {
    size_t cap = f->cap ? f->cap : 4096;
    while (cap < f->n + n) cap *= 2;
    char *np = realloc(f->p, cap);
    if (!np) {
      f->failed = 1;
      return;
    }
    f->p = np;
    f->cap = cap;
  }
  memcpy(f->p + f->n, p, n);
  f->n += n;
}

static void put_u8(PyFacts *f, int v) {
  unsigned char c = (unsigned char)v;
  put(f, &c, 1);
}

static void put_u32(PyFacts *f, uint64_t v) {
  uint32_t x = v > UINT32_MAX ? UINT32_MAX : (uint32_t)v;
  put(f, &x, sizeof x);
}

static void put_u64(PyFacts *f, uint64_t v) {
  put(f, &v, sizeof v);
}

static void put_str(PyFacts *f, PyStr s) {
  put_u32(f, s.n);
  put(f, s.p, s.n);
}

static void put_strs(PyFacts *f, const PyStr *v, int n) {
  put_u32(f, (uint64_t)n);
  for (int i = 0; i < n; i++) put_str(f, v[i]);
}

static void put_decorators(PyFacts *f, const PyDecorator *d, int n) {
  put_u32(f, (uint64_t)n);
  for (int i = 0; i < n; i++) {
    put_str(f, d[i].name);
    put_u8(f, d[i].call);
    put_u32(f, (uint64_t)d[i].line);
    put_u32(f, (uint64_t)d[i].nargs);
    for (int k = 0; k < d[i].nargs; k++) {
      put_str(f, d[i].args[k].key);
      put_str(f, d[i].args[k].value);
      put_u8(f, d[i].args[k].kind);
    }
  }
}

static void rec_encoding(void *ctx, PyStr name) {
  Rec *r = ctx;
  put_u8(r->f, 'E');
  put_str(r->f, name);
}

static void rec_import(void *ctx, const PyImport *m) {
  PyFacts *f = ((Rec *)ctx)->f;
  put_u8(f, 'I');
  put_str(f, m->module);
  put_u32(f, (uint64_t)m->level);
  put_u8(f, m->is_from);
  put_u8(f, m->star);
  put_u32(f, (uint64_t)m->line);
  put_u8(f, m->type_checking);
  put_u8(f, m->optional);
  put_str(f, m->function);
  put_u64(f, m->ref_start);
  put_u64(f, m->ref_len);
  put_u32(f, (uint64_t)m->nnames);
  for (int i = 0; i < m->nnames; i++) {
    put_str(f, m->names[i].name);
    put_str(f, m->names[i].alias);
  }
}

static void rec_dynamic(void *ctx, PyStr module, PyStr via, int line) {
  PyFacts *f = ((Rec *)ctx)->f;
  put_u8(f, 'D');
  put_str(f, module);
  put_str(f, via);
  put_u32(f, (uint64_t)line);
}

static void rec_function(void *ctx, const PyFunction *fn) {
  Rec *r = ctx;
  int wanted = pyfacts_wanted(r->filter, fn);
  /* a test the filter leaves out is kept in brief: the replay's visitor
   * sees it as the filter does (left out) and notes its name */
  if (!wanted && !pyfacts_left_test(r->filter, fn) && !pyfacts_left_load_tests(r->filter, fn)) return;
  PyFacts *f = r->f;
  put_u8(f, 'F');
  put_str(f, fn->name);
  put_u32(f, (uint64_t)fn->line);
  put_u8(f, fn->is_async);
  put_str(f, fn->klass);
  put_str(f, fn->parent);
  put_strs(f, fn->params, wanted ? fn->nparams : 0);
  put_decorators(f, fn->decorators, wanted ? fn->ndecorators : 0);
  put_strs(f, fn->names, wanted ? fn->nnames : 0);
  put_strs(f, fn->strings, wanted ? fn->nstrings : 0);
  put_u64(f, fn->start);
  put_u64(f, fn->end);
}

static void rec_class(void *ctx, const PyClass *c) {
  Rec *r = ctx;
  int wanted = pyfacts_class_wanted(r->filter, c);
  /* one the filter leaves out is kept in brief (name and bases), for the
   * replay's visitor to note as the filter does */
  PyFacts *f = r->f;
  put_u8(f, 'C');
  put_str(f, c->name);
  put_u32(f, (uint64_t)c->line);
  put_strs(f, c->bases, c->nbases);
  put_decorators(f, c->decorators, wanted ? c->ndecorators : 0);
}

static void rec_assignment(void *ctx, const PyAssign *a) {
  PyFacts *f = ((Rec *)ctx)->f;
  put_u8(f, 'A');
  put_str(f, a->target);
  put_u32(f, (uint64_t)a->line);
  put_strs(f, a->names, a->nnames);
  put_strs(f, a->strings, a->nstrings);
}

static void rec_error(void *ctx, int line, const char *message) {
  PyFacts *f = ((Rec *)ctx)->f;
  put_u8(f, 'R');
  put_u32(f, (uint64_t)line);
  put_str(f, (PyStr){message, strlen(message)});
}

int pyfacts_record(const char *src, size_t n, int names, const PyFnFilter *filter, PyFacts *out) {
  Rec r = {out, filter};
  PyVisitor v = {&r, rec_encoding, rec_import, rec_dynamic, rec_function, rec_class, rec_assignment, rec_error, names,
                 filter ? filter->names_suffix : NULL};
  return pyscan(src, n, &v);
}

void pyfacts_free(PyFacts *f) {
  free(f->p);
  memset(f, 0, sizeof *f);
}

/* ---- replaying ---- */

typedef struct Rd {
  const char *p, *end;
  int bad;
  /* scratch arrays, grown as needed and reused record to record */
  PyStr *strs;
  size_t nstrs, capstrs;
  PyArg *args;
  size_t nargs, capargs;
  PyDecorator *decs;
  size_t ndecs, capdecs;
  PyImportName *inames;
  size_t capinames;
} Rd;

static int take(Rd *r, void *out, size_t n) {
  if (r->bad || (size_t)(r->end - r->p) < n) {
    r->bad = 1;
    memset(out, 0, n);
    return -1;
  }
  memcpy(out, r->p, n);
  r->p += n;
  return 0;
}

static int get_u8(Rd *r) {
  unsigned char c = 0;
  take(r, &c, 1);
  return c;
}

static uint32_t get_u32(Rd *r) {
  uint32_t x = 0;
  take(r, &x, sizeof x);
  return x;
}

static uint64_t get_u64(Rd *r) {
  uint64_t x = 0;
  take(r, &x, sizeof x);
  return x;
}

static int get_int(Rd *r) {
  uint32_t x = get_u32(r);
  if (x > INT32_MAX) r->bad = 1;
  return (int)(x & INT32_MAX);
}

static PyStr get_str(Rd *r) {
  uint32_t n = get_u32(r);
  if (r->bad || (size_t)(r->end - r->p) < n) {
    r->bad = 1;
    return (PyStr){"", 0};
  }
  PyStr s = {r->p, n};
  r->p += n;
  return s;
}


/* A count that the remaining bytes could hold (each item at least min bytes). */
static int get_count(Rd *r, size_t min) {
  int n = get_int(r);
  if (!r->bad && (size_t)n > (size_t)(r->end - r->p) / (min ? min : 1)) r->bad = 1;
  return r->bad ? 0 : n;
}

/* Reads a list of strings onto the scratch; returns its offset there. */
static size_t get_strs(Rd *r, int *count) {
  int n = get_count(r, 4);
  size_t at = r->nstrs;
  if (np_grow((void **)&r->strs, &r->capstrs, at + (size_t)n, sizeof *r->strs) < 0) {
    r->bad = 1;
    n = 0;
  }
  for (int i = 0; i < n; i++) r->strs[at + (size_t)i] = get_str(r);
  r->nstrs = at + (size_t)n;
  *count = n;
  return at;
}

/* Reads decorators onto the scratch; returns their offset there. Their
 * args pointers are set once every array has stopped moving (fix_decs). */
static size_t get_decs(Rd *r, int *count) {
  int n = get_count(r, 13);
  size_t at = r->ndecs;
  if (np_grow((void **)&r->decs, &r->capdecs, at + (size_t)n, sizeof *r->decs) < 0) {
    r->bad = 1;
    n = 0;
  }
  for (int i = 0; i < n; i++) {
    PyDecorator *d = &r->decs[at + (size_t)i];
    d->name = get_str(r);
    d->call = get_u8(r);
    d->line = get_int(r);
    d->nargs = get_count(r, 9);
    size_t first = r->nargs;
    if (np_grow((void **)&r->args, &r->capargs, first + (size_t)d->nargs, sizeof *r->args) < 0) {
      r->bad = 1;
      d->nargs = 0;
    }
    for (int k = 0; k < d->nargs; k++) {
      PyArg *a = &r->args[first + (size_t)k];
      a->key = get_str(r);
      a->value = get_str(r);
      a->kind = get_u8(r);
    }
    r->nargs = first + (size_t)d->nargs;
    d->args = (const PyArg *)(uintptr_t)first; /* an offset until fix_decs */
  }
  r->ndecs = at + (size_t)n;
  *count = n;
  return at;
}

static void fix_decs(Rd *r, size_t at, int n) {
  for (int i = 0; i < n; i++) {
    PyDecorator *d = &r->decs[at + (size_t)i];
    uintptr_t first = (uintptr_t)d->args;
    d->args = d->nargs ? r->args + first : NULL;
  }
}

/* A scratch array's items from offset `at` on, or NULL when there are none
 * (the array itself may not exist then). */
#define ITEMS(base, at, count) ((count) ? (base) + (at) : NULL)

int pyfacts_replay(const char *buf, size_t n, const PyVisitor *v) {
  Rd r;
  memset(&r, 0, sizeof r);
  r.p = buf;
  r.end = buf + n;
  while (r.p < r.end && !r.bad) {
    r.nstrs = r.nargs = r.ndecs = 0;
    int tag = get_u8(&r);
    switch (tag) {
    case 'E': {
      PyStr s = get_str(&r);
      if (!r.bad && v->encoding) v->encoding(v->ctx, s);
      break;
    }
    case 'I': {
      PyImport m;
      memset(&m, 0, sizeof m);
      m.module = get_str(&r);
      m.level = get_int(&r);
      m.is_from = get_u8(&r);
      m.star = get_u8(&r);
      m.line = get_int(&r);
      m.type_checking = get_u8(&r);
      m.optional = get_u8(&r);
      m.function = get_str(&r);
      m.ref_start = (size_t)get_u64(&r);
      m.ref_len = (size_t)get_u64(&r);
      m.nnames = get_count(&r, 8);
      if (np_grow((void **)&r.inames, &r.capinames, (size_t)m.nnames, sizeof *r.inames) < 0) r.bad = 1;
      for (int i = 0; i < m.nnames && !r.bad; i++) {
        r.inames[i].name = get_str(&r);
        r.inames[i].alias = get_str(&r);
      }
      m.names = r.inames;
      if (!r.bad && v->import) v->import(v->ctx, &m);
      break;
    }
    case 'D': {
      PyStr module = get_str(&r), via = get_str(&r);
      int line = get_int(&r);
      if (!r.bad && v->dynamic_import) v->dynamic_import(v->ctx, module, via, line);
      break;
    }
    case 'F': {
      PyFunction f;
      memset(&f, 0, sizeof f);
      f.name = get_str(&r);
      f.line = get_int(&r);
      f.is_async = get_u8(&r);
      f.klass = get_str(&r);
      f.parent = get_str(&r);
      size_t params = get_strs(&r, &f.nparams);
      size_t decs = get_decs(&r, &f.ndecorators);
      size_t names = get_strs(&r, &f.nnames);
      size_t strings = get_strs(&r, &f.nstrings);
      f.start = (size_t)get_u64(&r);
      f.end = (size_t)get_u64(&r);
      if (r.bad) break;
      fix_decs(&r, decs, f.ndecorators);
      f.params = ITEMS(r.strs, params, f.nparams);
      f.decorators = ITEMS(r.decs, decs, f.ndecorators);
      f.names = ITEMS(r.strs, names, f.nnames);
      f.strings = ITEMS(r.strs, strings, f.nstrings);
      if (v->function) v->function(v->ctx, &f);
      break;
    }
    case 'C': {
      PyClass c;
      memset(&c, 0, sizeof c);
      c.name = get_str(&r);
      c.line = get_int(&r);
      size_t bases = get_strs(&r, &c.nbases);
      size_t decs = get_decs(&r, &c.ndecorators);
      if (r.bad) break;
      fix_decs(&r, decs, c.ndecorators);
      c.bases = ITEMS(r.strs, bases, c.nbases);
      c.decorators = ITEMS(r.decs, decs, c.ndecorators);
      if (v->klass) v->klass(v->ctx, &c);
      break;
    }
    case 'A': {
      PyAssign a;
      memset(&a, 0, sizeof a);
      a.target = get_str(&r);
      a.line = get_int(&r);
      size_t names = get_strs(&r, &a.nnames);
      size_t strings = get_strs(&r, &a.nstrings);
      if (r.bad) break;
      a.names = ITEMS(r.strs, names, a.nnames);
      a.strings = ITEMS(r.strs, strings, a.nstrings);
      if (v->assignment) v->assignment(v->ctx, &a);
      break;
    }
    case 'R': {
      int line = get_int(&r);
      PyStr m = get_str(&r);
      if (r.bad) break;
      char msg[256];
      size_t len = m.n < sizeof msg - 1 ? m.n : sizeof msg - 1;
      memcpy(msg, m.p, len);
      msg[len] = '\0';
      if (v->error) v->error(v->ctx, line, msg);
      break;
    }
    default:
      r.bad = 1;
    }
  }
  free(r.strs);
  free(r.args);
  free(r.decs);
  free(r.inames);
  return r.bad ? -1 : 0;
}
