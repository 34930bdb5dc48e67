/*
 * luapat.h: Lua's string patterns, the part of them the MRN settings use,
 * matched in C so the PHI filter point can mask medical record numbers
 * without a call into Lua a line.
 *
 * The subset: single characters, '.', the classes %a %c %d %g %l %p %s %u
 * %w %x and their complements, '%' before a punctuation character, sets
 * [...] (ranges, classes, '^'), the quantifiers * + - ?, and the anchors
 * '^' (first) and '$' (last). Captures, %b, %f and back references are
 * outside it: luapat_supported says no, and the caller keeps Lua.
 *
 * Matching follows Lua 5.4's lstrlib (the same backtracking, greedy '*',
 * '+' and '?', lazy '-'), in the C locale as novapipe runs, so a gsub here
 * gives what string.gsub gives; spec/unit/phi_spec.lua compares the two.
 */
#ifndef NOVAPIPE_LUAPAT_H
#define NOVAPIPE_LUAPAT_H

#include <stddef.h>

/* Whether pattern p (NUL-terminated) is in the subset and well formed. */
int luapat_supported(const char *p);

/*
 * string.gsub(s, p, repl) for a pattern luapat_supported accepts and a
 * plain replacement: appends the result to *out (grown with realloc;
 * *outcap its capacity, *outlen its length) and returns the number of
 * matches replaced, or -1 when memory ran out.
 */
long luapat_gsub(const char *s, size_t n, const char *p, const char *repl, size_t repln, char **out, size_t *outlen,
                 size_t *outcap);

#endif
