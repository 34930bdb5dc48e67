/*
 * phiscan: PHI-like values in text, found in one pass over the bytes. No
 * Lua here: the binding (phiscan_lua.c), the process filter point
 * (proc.c), the C unit tests and the fuzzer all call these functions.
 *
 * The scanner finds the built-in kinds (SSN, phone, e-mail, date of
 * birth) and drops the values that are synthetic by construction (SSN
 * areas 000, 666, 9xx; phones 555-0100 to 555-0199; the configured
 * synthetic domains and top-level domains). What stays policy in Lua (the
 * `allow` patterns per kind, the MRN patterns) is reached through
 * phiscan_policy: a line holding an MRN pattern's leading literal text.
 */
#ifndef NOVAPIPE_PHISCAN_H
#define NOVAPIPE_PHISCAN_H

#include <stddef.h>

enum { PHI_NONE = 0, PHI_EMAIL, PHI_SSN, PHI_PHONE, PHI_DOB, PHI_KINDS };

/* The name of a kind as the mask shows it: "email", "ssn", "phone", "dob". */
const char *phiscan_kind_name(int kind);

/* A value found: bytes [start, end) of the line. */
typedef struct PhiHit {
  size_t start, end;
  int kind;
} PhiHit;

/* A growable list of hits; zero it before use, phiscan_hits_free after. */
typedef struct PhiHits {
  PhiHit *v;
  size_t n, cap;
  int failed; /* an allocation failed: the list is incomplete */
} PhiHits;

void phiscan_hits_free(PhiHits *h);

/* What the scanner is configured with; the strings are the caller's
 * (lower case for domains and top-level domains) and must outlive it. */
typedef struct PhiConfig {
  const char *const *domains; /* synthetic domains and their subdomains */
  size_t ndomains;
  const char *const *tlds;    /* synthetic top-level domains */
  size_t ntlds;
  const char *const *leads;   /* leading literal text of the MRN patterns */
  size_t nleads;
  int always;                 /* an MRN pattern has no leading literal */
  unsigned policy_kinds;      /* bit 1 << kind: its values need the Lua policy (`allow`) */
  const char *mask_prefix;    /* a value is masked as prefix, kind name, suffix */
  const char *mask_suffix;    /* ("[PHI:" and "]"; NULL for those) */
  /* filled by phiscan_config_init: what each byte may start, the MRN
   * leads' first bytes among it, so the scan finds them in its one pass */
  unsigned char cls[256];
  int lead_digit; /* a lead starts with a digit */
  /* the MRN patterns (Lua patterns), when the filter point may apply them
   * itself: given only when no `allow` pattern is Lua's to check for them;
   * used when every one is in luapat's subset (mrn_c, set by init) */
  const char *const *mrn;
  size_t nmrn;
  int mrn_c;
  size_t prefix_len, suffix_len; /* the mask's, set by init */
  int ready;
} PhiConfig;

/* Prepares c for scanning once its fields are set (and again after they
 * change); a configuration that was not prepared still scans correctly,
 * with a second pass for the MRN leads. */
void phiscan_config_init(PhiConfig *c);

/* How far after a birth word (and from the start of the line after one
 * that closes a line) a date is read as a date of birth, in bytes. */
#define PHISCAN_WINDOW 40

/*
 * Scans one line. `pending` says that the line before ended with a birth
 * word and no date: the first date near the start of this line is then a
 * date of birth. With `out`, every hit is appended in order of position,
 * overlaps resolved (an e-mail address wins over what its local part
 * holds, else the first to start), and the number of hits is returned;
 * without (NULL), the scan stops at the first hit and returns 1, or 0.
 * `*pending_out` (when not NULL) receives the state for the next line
 * (only meaningful after a full scan); `*context` (when not NULL) whether
 * the line holds a birth word or an SSN word (only meaningful after a full
 * scan, or when nothing was found).
 */
size_t phiscan_line(const PhiConfig *c, int pending, const char *s, size_t n, PhiHits *out, int *pending_out,
                    int *context);

/* Whether the text holds the leading literal of an MRN pattern (or a
 * pattern has none): the Lua policy must see it. */
int phiscan_policy(const PhiConfig *c, const char *s, size_t n);

/* Bytes that phiscan_mask writes a masked line into; zero it before use,
 * free(p) after. */
typedef struct PhiText {
  char *p;
  size_t len, cap;
  char *q; /* a second buffer, for the MRN patterns' replacements */
  size_t qlen, qcap;
} PhiText;

/*
 * Masks one line in C when the Lua policy has nothing to say about it (no
 * MRN pattern's leading text in it before or after masking, unless the
 * MRN patterns are applied here (mrn_c), no value of a kind with `allow`
 * patterns): returns 1 with *out and *outn the line
 * to write (s itself when nothing was found, else the masked copy in
 * `text`) and *pending updated. Returns 0 when the Lua masker must see
 * the line, leaving *pending alone; -1 when memory ran out (the same).
 */
int phiscan_mask(const PhiConfig *c, int *pending, const char *s, size_t n, PhiHits *hits, PhiText *text,
                 const char **out, size_t *outn);

/* Whether masking the line would leave it as it is: no hit and no policy
 * to apply. When so, *pending is updated for the next line and 1 returned;
 * otherwise 0 and *pending is left alone (the full masker scans it). */
int phiscan_pass(const PhiConfig *c, int *pending, const char *s, size_t n);

/* Whether a whole text (any number of lines) holds nothing the scanner
 * would find: no hit in any line, no birth or SSN word at all (markup may
 * put a tag between such a word and its value) and no pending date. The
 * MRN patterns are the caller's to try (phiscan_policy says where). */
int phiscan_quiet(const PhiConfig *c, int pending, const char *s, size_t n);

#endif
