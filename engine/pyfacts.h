/*
 * pyfacts: pyscan's facts as bytes. record() runs the scanner and keeps what
 * it reports in a buffer; replay() reports them again, in the same order,
 * to any visitor. So the scanning can happen on another thread, with the
 * Lua tables built on the thread that owns the Lua state.
 */
#ifndef NOVAPIPE_PYFACTS_H
#define NOVAPIPE_PYFACTS_H

#include <stddef.h>

#include "pyscan.h"

typedef struct PyFacts {
  char *p;
  size_t n, cap;
  int failed; /* memory ran out while recording: scan again directly */
} PyFacts;

/* Which functions are reported: with a prefix, only those that are
 * decorated or named with it; with lean, only those that are decorated or
 * take a parameter other than self, cls, *args and **kw, and only classes
 * that are decorated or have a base (what fixture and marker analysis
 * reads). */
typedef struct PyFnFilter {
  const char *prefix; /* or NULL */
  size_t prefix_len;
  int lean;
  const char *names_suffix; /* PyVisitor.names_suffix, or NULL */
} PyFnFilter;

int pyfacts_wanted(const PyFnFilter *filter, const PyFunction *f);
/* Whether a function a lean filter leaves out is a test all the same (named
 * with the prefix, not nested): reported in brief (its name only). */
int pyfacts_left_test(const PyFnFilter *filter, const PyFunction *f);
/* Whether a function a lean filter leaves out is a module's load_tests
 * (the unittest protocol: the module's tests come from it): noted. */
int pyfacts_left_load_tests(const PyFnFilter *filter, const PyFunction *f);
int pyfacts_class_wanted(const PyFnFilter *filter, const PyClass *c);

/* Scans src as pyscan does (names: a PYSCAN_NAMES_ value; filter, or NULL:
 * which functions) and records the facts in out, which starts zeroed.
 * Returns pyscan's result; out->failed tells whether the record is
 * complete. */
int pyfacts_record(const char *src, size_t n, int names, const PyFnFilter *filter, PyFacts *out);

/* Reports recorded facts to v. The strings it passes point into buf.
 * Returns 0, or -1 for bytes that are not a record (or no memory). */
int pyfacts_replay(const char *buf, size_t n, const PyVisitor *v);

void pyfacts_free(PyFacts *f);

#endif
