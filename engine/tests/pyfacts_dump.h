/*
 * A visitor that writes every fact pyscan reports as text, for comparing a
 * direct scan with a recorded and replayed one (test_pyfacts, fuzz_pyscan).
 */
#ifndef NOVAPIPE_PYFACTS_DUMP_H
#define NOVAPIPE_PYFACTS_DUMP_H

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pyscan.h"

typedef struct Dump {
  char *p;
  size_t n, cap;
} Dump;

static void dump_raw(Dump *d, const char *s, size_t n) {
  if (d->n + n + 1 > d->cap) {
    size_t cap = d->cap ? d->cap : 1024;
    while (cap < d->n + n + 1) cap *= 2;
    char *np = realloc(d->p, cap);
    if (!np) abort();
    d->p = np;
    d->cap = cap;
  }
  memcpy(d->p + d->n, s, n);
  d->n += n;
  d->p[d->n] = '\0';
}

static void dump_fmt(Dump *d, const char *fmt, ...) {
  char buf[128];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  dump_raw(d, buf, n < 0 ? 0 : (size_t)n < sizeof buf ? (size_t)n : sizeof buf - 1);
}

static void dump_str(Dump *d, PyStr s) {
  dump_fmt(d, "[%zu:", s.n);
  dump_raw(d, s.p, s.n);
  dump_raw(d, "]", 1);
}

static void dump_strs(Dump *d, const PyStr *v, int n) {
  dump_fmt(d, "(%d", n);
  for (int i = 0; i < n; i++) dump_str(d, v[i]);
  dump_raw(d, ")", 1);
}

static void dump_decs(Dump *d, const PyDecorator *v, int n) {
  dump_fmt(d, "{%d", n);
  for (int i = 0; i < n; i++) {
    dump_str(d, v[i].name);
    dump_fmt(d, " %d %d %d", v[i].call, v[i].line, v[i].nargs);
    for (int k = 0; k < v[i].nargs; k++) {
      dump_str(d, v[i].args[k].key);
      dump_str(d, v[i].args[k].value);
      dump_fmt(d, "%c", v[i].args[k].kind);
    }
  }
  dump_raw(d, "}", 1);
}

static void dump_encoding(void *ctx, PyStr name) {
  dump_raw(ctx, "E", 1);
  dump_str(ctx, name);
  dump_raw(ctx, "\n", 1);
}

static void dump_import(void *ctx, const PyImport *m) {
  Dump *d = ctx;
  dump_raw(d, "I", 1);
  dump_str(d, m->module);
  dump_fmt(d, " %d %d %d %d %d %d %zu %zu", m->level, m->is_from, m->star, m->line, m->type_checking,
           m->optional, m->ref_start, m->ref_len);
  dump_str(d, m->function);
  for (int i = 0; i < m->nnames; i++) {
    dump_str(d, m->names[i].name);
    dump_str(d, m->names[i].alias);
  }
  dump_raw(d, "\n", 1);
}

static void dump_dynamic(void *ctx, PyStr module, PyStr via, int line) {
  dump_raw(ctx, "D", 1);
  dump_str(ctx, module);
  dump_str(ctx, via);
  dump_fmt(ctx, " %d\n", line);
}

static void dump_function(void *ctx, const PyFunction *f) {
  Dump *d = ctx;
  dump_raw(d, "F", 1);
  dump_str(d, f->name);
  dump_fmt(d, " %d %d", f->line, f->is_async);
  dump_str(d, f->klass);
  dump_str(d, f->parent);
  dump_strs(d, f->params, f->nparams);
  dump_decs(d, f->decorators, f->ndecorators);
  dump_strs(d, f->names, f->nnames);
  dump_strs(d, f->strings, f->nstrings);
  dump_fmt(d, " %zu-%zu", f->start, f->end);
  dump_raw(d, "\n", 1);
}

static void dump_class(void *ctx, const PyClass *c) {
  Dump *d = ctx;
  dump_raw(d, "C", 1);
  dump_str(d, c->name);
  dump_fmt(d, " %d", c->line);
  dump_strs(d, c->bases, c->nbases);
  dump_decs(d, c->decorators, c->ndecorators);
  dump_raw(d, "\n", 1);
}

static void dump_assignment(void *ctx, const PyAssign *a) {
  Dump *d = ctx;
  dump_raw(d, "A", 1);
  dump_str(d, a->target);
  dump_fmt(d, " %d", a->line);
  dump_strs(d, a->names, a->nnames);
  dump_strs(d, a->strings, a->nstrings);
  dump_raw(d, "\n", 1);
}

static void dump_error(void *ctx, int line, const char *message) {
  dump_fmt(ctx, "R %d ", line);
  dump_raw(ctx, message, strlen(message));
  dump_raw(ctx, "\n", 1);
}

static PyVisitor dump_visitor(Dump *d, int names) {
  PyVisitor v = {d, dump_encoding, dump_import, dump_dynamic, dump_function, dump_class, dump_assignment, dump_error,
                 names, NULL};
  return v;
}

#endif
