/*
 * phiscan.c: the PHI scanner (see phiscan.h for what it finds).
 *
 * One pass over a line: digits may start an SSN or a phone number, '+'
 * and '(' a phone number, '@' an e-mail address (its local part read
 * backwards), and a run of letters may be a birth word (a date after it
 * is a date of birth) or an SSN word (nine digits after it are an SSN).
 * Words are whole words: a run of letters, cut where camelCase changes
 * case (dateOfBirth, patientSSN), so Adobe, stubborn or Osborne hold none.
 * Nothing here allocates but the list of hits, and nothing backtracks
 * further than a value's own length: the scan is linear in the line.
 */
#include "phiscan.h"
#include "luapat.h"

#include <stdlib.h>
#include <string.h>


#define IS_DIGIT(c) ((unsigned)((unsigned char)(c) - (unsigned)'0') < 10u)
#define IS_UPPER(c) ((unsigned)((unsigned char)(c) - (unsigned)'A') < 26u)
#define IS_LOWER(c) ((unsigned)((unsigned char)(c) - (unsigned)'a') < 26u)
#define IS_ALPHA(c) (IS_UPPER(c) || IS_LOWER(c))
#define IS_ALNUM(c) (IS_ALPHA(c) || IS_DIGIT(c))
#define LOWER(c) ((char)(IS_UPPER(c) ? (c) + 32 : (c)))

/* How far before nine digits an SSN word may end, in bytes. */
#define SSN_WORD_REACH 32

static const char *const kind_names[PHI_KINDS] = {"none", "email", "ssn", "phone", "dob"};

const char *phiscan_kind_name(int kind) { return kind > 0 && kind < PHI_KINDS ? kind_names[kind] : "none"; }

void phiscan_hits_free(PhiHits *h) {
  free(h->v);
  h->v = NULL;
  h->n = h->cap = 0;
}

typedef struct Scan {
  const PhiConfig *c;
  const char *s;
  size_t n;
  PhiHits *out;      /* NULL: stop at the first hit */
  int found;         /* a hit (first-hit mode) */
  size_t last_digit; /* end of the last run of digits, or (size_t)-1 */
  int pending;       /* for the next line */
  int context;       /* a birth or SSN word was seen */
  int policy;        /* an MRN pattern's leading text was seen */
} Scan;

#define NONE ((size_t)-1)

static void hit(Scan *sc, size_t start, size_t end, int kind) {
  sc->found = 1;
  PhiHits *h = sc->out;
  if (!h) return;
  if (h->n == h->cap) {
    size_t cap = h->cap ? h->cap * 2 : 8;
    PhiHit *v = realloc(h->v, cap * sizeof *v);
    if (!v) {
      h->failed = 1;
      return;
    }
    h->v = v;
    h->cap = cap;
  }
  h->v[h->n++] = (PhiHit){start, end, kind};
}

/* The length of the run of digits at i. */
static size_t digits(const char *s, size_t n, size_t i) {
  size_t j = i;
  while (j < n && IS_DIGIT(s[j])) j++;
  return j - i;
}

static int number(const char *s, size_t i, size_t len) {
  int v = 0;
  for (size_t k = 0; k < len; k++) v = v * 10 + (s[i + k] - '0');
  return v;
}

/* The length of a Unicode dash's UTF-8 bytes at i (U+2010..U+2015,
 * U+2212, U+FE58, U+FE63, U+FF0D), or 0. */
static size_t udash(const char *s, size_t n, size_t i) {
  if (i + 2 >= n) return 0;
  unsigned char a = (unsigned char)s[i], b = (unsigned char)s[i + 1], c = (unsigned char)s[i + 2];
  if (a == 0xE2 && b == 0x80 && c >= 0x90 && c <= 0x95) return 3;
  if (a == 0xE2 && b == 0x88 && c == 0x92) return 3;
  if (a == 0xEF && b == 0xB9 && (c == 0x98 || c == 0xA3)) return 3;
  if (a == 0xEF && b == 0xBC && c == 0x8D) return 3;
  return 0;
}

/* The length of a separator of an SSN or a phone number's groups at i:
 * '-', ' ', '.' when `dot`, or a Unicode dash; 0 when none. */
static size_t sep_at(const char *s, size_t n, size_t i, int dot) {
  if (i >= n) return 0;
  if (s[i] == '-' || s[i] == ' ' || (dot && s[i] == '.')) return 1;
  return udash(s, n, i);
}

/* ------------------------------------------------------------------ */
/* SSNs                                                                 */

static int synthetic_ssn(const char *s, size_t i) {
  int area = number(s, i, 3);
  return area == 0 || area == 666 || area >= 900;
}

static int classify(const char *s, size_t i, size_t len);
enum { W_NONE, W_BIRTH, W_SSN };

/* Whether an SSN word (SSN, SSNs, social: whole words, camelCase cut as
 * the scan cuts them) ends at most SSN_WORD_REACH bytes before i with no
 * digit between. Read backwards from i, only for the rare number that
 * needs it, so the scan does not stop at every s. */
static int ssn_word_near(const Scan *sc, size_t i) {
  const char *s = sc->s;
  size_t k = i;
  while (k > 0 && i - k <= SSN_WORD_REACH && !IS_DIGIT(s[k - 1])) {
    if (!IS_ALPHA(s[k - 1])) {
      k--;
      continue;
    }
    size_t b = k - 1;
    while (b > 0 && IS_ALPHA(s[b - 1]) && !(IS_UPPER(s[b]) && IS_LOWER(s[b - 1]))) b--;
    if (classify(s, b, k - b) == W_SSN) return 1;
    k = b;
  }
  return 0;
}

/* An SSN starting at i (a digit, none before it): ddd-dd-dddd with '-',
 * ' ' or a Unicode dash between the groups (also '.' after an SSN word),
 * or nine digits in a row after an SSN word. Returns its end, or 0. */
static size_t ssn_at(const Scan *sc, size_t i, size_t run) {
  const char *s = sc->s;
  size_t n = sc->n;
  if (run == 9) return !synthetic_ssn(s, i) && ssn_word_near(sc, i) ? i + 9 : 0;
  if (run != 3) return 0;
  size_t a = sep_at(s, n, i + 3, 0);
  int word = 0;
  if (!a && i + 3 < n && s[i + 3] == '.' && digits(s, n, i + 4) == 2 && (word = ssn_word_near(sc, i))) a = 1;
  if (!a) return 0;
  size_t j = i + 3 + a;
  if (digits(s, n, j) != 2) return 0;
  j += 2;
  size_t b = sep_at(s, n, j, word);
  if (!b) return 0;
  j += b;
  if (digits(s, n, j) != 4) return 0;
  if (synthetic_ssn(s, i)) return 0;
  return j + 4;
}

/* ------------------------------------------------------------------ */
/* Phone numbers                                                        */

static int synthetic_phone(const char *s, size_t exchange, size_t line) {
  if (memcmp(s + exchange, "555", 3) != 0) return 0;
  int l = number(s, line, 4);
  return l >= 100 && l <= 199;
}

static int ci_prefix(const char *s, size_t n, size_t i, const char *word) {
  size_t k = 0;
  for (; word[k]; k++)
    if (i + k >= n || LOWER(s[i + k]) != word[k]) return 0;
  return 1;
}

/* An extension after a number ending at j: x123, ext. 123, extension 123,
 * #123. Returns the end of the extension, or j when there is none. */
static size_t extension(const char *s, size_t n, size_t j) {
  size_t k = j;
  while (k < n && k - j < 2 && (s[k] == ' ' || s[k] == ',')) k++;
  if (ci_prefix(s, n, k, "extension")) k += 9;
  else if (ci_prefix(s, n, k, "ext")) k += 3;
  else if (k < n && (s[k] == 'x' || s[k] == 'X' || s[k] == '#')) k += 1;
  else return j;
  if (k < n && s[k] == '.') k++;
  size_t sp = 0;
  while (k < n && s[k] == ' ' && sp < 2) k++, sp++;
  size_t d = digits(s, n, k);
  if (d < 1 || d > 6) return j;
  return k + d;
}

/* The rest of a number from its area code at i: (ddd) or ddd and a
 * separator, ddd, a separator, dddd, an optional extension. `dotted`
 * receives whether a '.' separates the groups. Returns the end, or 0. */
static size_t phone_rest(const char *s, size_t n, size_t i, int *dotted) {
  size_t j = i;
  *dotted = 0;
  if (j < n && s[j] == '(') {
    if (digits(s, n, j + 1) != 3 || j + 4 >= n || s[j + 4] != ')') return 0;
    j += 5;
    if (j < n && (s[j] == ' ' || s[j] == '-')) j++;
  } else {
    if (digits(s, n, j) != 3) return 0;
    size_t a = sep_at(s, n, j + 3, 1);
    if (!a) return 0;
    if (s[j + 3] == '.') *dotted = 1;
    j += 3 + a;
  }
  size_t exchange = j;
  if (digits(s, n, j) != 3) return 0;
  j += 3;
  size_t b = sep_at(s, n, j, 1);
  if (!b) return 0;
  if (s[j] == '.') *dotted = 1;
  j += b;
  size_t line = j;
  if (digits(s, n, j) != 4) return 0;
  j += 4;
  if (*dotted && j + 1 < n && s[j] == '.' && IS_DIGIT(s[j + 1])) return 0;
  if (synthetic_phone(s, exchange, line)) return 0;
  return extension(s, n, j);
}

/* A phone number starting at i: '+', '(' or a digit with none before it.
 * +1 and 1 before the area code are part of it; +1 and ten digits in a
 * row are one. Returns the end, or 0. */
static size_t phone_at(const char *s, size_t n, size_t i) {
  int dotted;
  size_t j = i;
  if (s[j] == '+') {
    if (j + 1 >= n || s[j + 1] != '1') return 0;
    j += 2;
    if (digits(s, n, j - 1) == 11) {
      size_t line = j + 6;
      if (synthetic_phone(s, j + 3, line)) return 0;
      return extension(s, n, j + 10);
    }
    if (j < n && (s[j] == ' ' || s[j] == '-' || s[j] == '.')) j++;
    return phone_rest(s, n, j, &dotted);
  }
  if (s[j] == '1' && j + 1 < n && (s[j + 1] == ' ' || s[j + 1] == '-' || s[j + 1] == '.')) {
    size_t e = phone_rest(s, n, j + 2, &dotted);
    if (e) return e;
  }
  /* a dotted number right after "d." is part of a version or an address */
  if (i >= 2 && s[i - 1] == '.' && IS_DIGIT(s[i - 2])) {
    size_t e = phone_rest(s, n, i, &dotted);
    return e && !dotted ? e : 0;
  }
  return phone_rest(s, n, i, &dotted);
}

/* ------------------------------------------------------------------ */
/* E-mail addresses                                                     */

static int local_char(unsigned char c) {
  return IS_ALNUM(c) || c == '.' || c == '_' || c == '%' || c == '+' || c == '-' || c >= 0x80;
}

/* The length of UTF-8 punctuation at i that is not part of a name
 * (U+0080..U+00BF: « » and the no-break space; U+2000..U+206F: quotes
 * and dashes; U+3000..U+303F), or 0. */
static size_t upunct(const char *s, size_t n, size_t i) {
  unsigned char a = (unsigned char)s[i];
  if (a == 0xC2 && i + 1 < n) return 2;
  if ((a == 0xE2 && i + 2 < n && ((unsigned char)s[i + 1] == 0x80 || (unsigned char)s[i + 1] == 0x81)) ||
      (a == 0xE3 && i + 2 < n && (unsigned char)s[i + 1] == 0x80))
    return 3;
  return 0;
}

static int label_char(unsigned char c) { return IS_ALNUM(c) || c == '-' || c >= 0x80; }

static int synthetic_domain(const PhiConfig *c, const char *d, size_t dn, const char *tld, size_t tn) {
  for (size_t k = 0; k < c->ntlds; k++) {
    size_t l = strlen(c->tlds[k]);
    if (l == tn) {
      size_t m = 0;
      while (m < l && LOWER(tld[m]) == c->tlds[k][m]) m++;
      if (m == l) return 1;
    }
  }
  for (size_t k = 0; k < c->ndomains; k++) {
    size_t l = strlen(c->domains[k]);
    if (l > dn || (l < dn && d[dn - l - 1] != '.')) continue;
    size_t m = 0;
    while (m < l && LOWER(d[dn - l + m]) == c->domains[k][m]) m++;
    if (m == l) return 1;
  }
  return 0;
}

/* An address around the '@' at a: its start in *start, its end returned
 * (0 when there is none or it is synthetic; *start is then unchanged). */
static size_t email_at(const PhiConfig *c, const char *s, size_t n, size_t a, size_t *start) {
  size_t l = a;
  while (l > 0 && local_char((unsigned char)s[l - 1])) l--;
  /* forward again: punctuation of another script ends the name */
  for (size_t k = l; k < a;) {
    size_t u = upunct(s, n, k);
    if (u) {
      k += u;
      l = k;
    } else {
      k++;
    }
  }
  int named = 0;
  for (size_t k = l; k < a; k++)
    if (IS_ALNUM(s[k]) || (unsigned char)s[k] >= 0x80) named = 1;
  if (!named) return 0;
  /* the domain: labels separated by single dots */
  size_t j = a + 1, labels = 0, ends[64], begins[64];
  while (j < n && label_char((unsigned char)s[j]) && !upunct(s, n, j) && labels < 64) {
    begins[labels] = j;
    while (j < n && label_char((unsigned char)s[j]) && !upunct(s, n, j)) j++;
    ends[labels++] = j;
    if (j + 1 < n && s[j] == '.' && label_char((unsigned char)s[j + 1])) j++;
    else break;
  }
  /* the top-level domain: letters only, two or more (or IDNA's xn--) */
  while (labels >= 2) {
    size_t b = begins[labels - 1], e = ends[labels - 1];
    int ok = e - b >= 2;
    if (ok && !(e - b > 4 && ci_prefix(s, n, b, "xn--")))
      for (size_t k = b; k < e && ok; k++) ok = IS_ALPHA(s[k]);
    if (ok) break;
    labels--;
  }
  if (labels < 2) return 0;
  size_t end = ends[labels - 1];
  if (synthetic_domain(c, s + a + 1, end - a - 1, s + begins[labels - 1], end - begins[labels - 1])) return 0;
  *start = l;
  return end;
}

/* ------------------------------------------------------------------ */
/* Dates of birth                                                       */

/* The month a whole word at i names (January, Jan, Jan., Sept), its end
 * in *end; 0 when none. */
static int month_at(const char *s, size_t n, size_t i, size_t *end) {
  static const char *const names[12] = {"january", "february", "march",     "april",   "may",      "june",
                                        "july",    "august",   "september", "october", "november", "december"};
  if (i > 0 && IS_ALPHA(s[i - 1])) return 0;
  size_t j = i;
  while (j < n && IS_ALPHA(s[j])) j++;
  size_t len = j - i;
  if (len < 3 || len > 9) return 0;
  for (int m = 0; m < 12; m++) {
    size_t full = strlen(names[m]);
    if (len != 3 && len != full && !(m == 8 && len == 4)) continue;
    if (len > full) continue;
    size_t k = 0;
    while (k < len && LOWER(s[i + k]) == names[m][k]) k++;
    if (k == len) {
      if (j < n && s[j] == '.') j++;
      *end = j;
      return m + 1;
    }
  }
  return 0;
}

/* A day of the month at i (1 or 2 digits and an optional st, nd, rd,
 * th): its end, or 0. */
static size_t day_at(const char *s, size_t n, size_t i) {
  size_t d = digits(s, n, i);
  if (d < 1 || d > 2) return 0;
  int v = number(s, i, d);
  if (v < 1 || v > 31) return 0;
  size_t j = i + d;
  if (j + 1 < n && (ci_prefix(s, n, j, "st") || ci_prefix(s, n, j, "nd") || ci_prefix(s, n, j, "rd") ||
                    ci_prefix(s, n, j, "th")))
    j += 2;
  if (j < n && IS_ALNUM(s[j])) return 0;
  return j;
}

static size_t year_at(const char *s, size_t n, size_t i) { return digits(s, n, i) == 4 ? i + 4 : 0; }

static size_t spaces(const char *s, size_t n, size_t j) {
  while (j < n && s[j] == ' ') j++;
  return j;
}

/* A date starting at i: 1980-02-03 (also with / or .), 2/3/1980,
 * 02-03-1980, 2/3/80, 3 March 1980, 3-Mar-1980, March 3, 1980, Mar. 3rd
 * 1980, and date(1980, 2, 3) / datetime(1980, 2, 3, ...) as Python prints
 * them. Returns its end, or 0. */
static size_t date_at(const char *s, size_t n, size_t i) {
  if (IS_DIGIT(s[i])) {
    if (i > 0 && IS_DIGIT(s[i - 1])) return 0;
    size_t a = digits(s, n, i);
    size_t j = i + a;
    if (j + 1 >= n) return 0;
    char sep = s[j];
    if (a == 4 && (sep == '-' || sep == '/' || sep == '.')) {
      size_t m = digits(s, n, j + 1);
      if (m < 1 || m > 2 || j + 1 + m >= n || s[j + 1 + m] != sep) return 0;
      size_t k = j + 2 + m, d = digits(s, n, k);
      if (d < 1 || d > 2) return 0;
      int mv = number(s, j + 1, m), dv = number(s, k, d);
      return mv >= 1 && mv <= 12 && dv >= 1 && dv <= 31 ? k + d : 0;
    }
    if (a > 2) return 0;
    int av = number(s, i, a);
    if (sep == '-' || sep == '/' || sep == '.') {
      size_t b = digits(s, n, j + 1);
      if (b >= 1 && b <= 2 && j + 1 + b < n && s[j + 1 + b] == sep) {
        size_t k = j + 2 + b, y = digits(s, n, k);
        int bv = number(s, j + 1, b);
        if ((y == 4 || (y == 2 && sep == '/')) && av >= 1 && bv >= 1 &&
            ((av <= 12 && bv <= 31) || (av <= 31 && bv <= 12)))
          return k + y;
        return 0;
      }
    }
    /* 3 March 1980, 3rd March 1980, 03-Mar-1980 */
    size_t d = day_at(s, n, i);
    if (!d || d >= n || (s[d] != ' ' && s[d] != '-')) return 0;
    size_t me;
    if (!month_at(s, n, d + 1, &me)) return 0;
    size_t k = me;
    if (k < n && s[k] == ',') k++;
    if (k < n && (s[k] == ' ' || s[k] == '-')) k++;
    return year_at(s, n, k);
  }
  if (!IS_ALPHA(s[i])) return 0;
  /* date(1980, 2, 3), datetime(1980, 2, 3, 0, 0) */
  size_t j = 0;
  if (ci_prefix(s, n, i, "datetime(")) j = i + 9;
  else if (ci_prefix(s, n, i, "date(")) j = i + 5;
  if (j) {
    if (i > 0 && IS_ALPHA(s[i - 1])) return 0;
    j = spaces(s, n, j);
    if (!year_at(s, n, j)) return 0;
    j += 4;
    int v[2];
    for (int k = 0; k < 2; k++) {
      if (j >= n || s[j] != ',') return 0;
      j = spaces(s, n, j + 1);
      size_t d = digits(s, n, j);
      if (d < 1 || d > 2) return 0;
      v[k] = number(s, j, d);
      j += d;
    }
    if (v[0] < 1 || v[0] > 12 || v[1] < 1 || v[1] > 31) return 0;
    /* the rest of the call, up to its parenthesis */
    for (size_t k = j; k < n && k < j + 40; k++) {
      if (s[k] == ')') return k + 1;
      if (!(IS_DIGIT(s[k]) || s[k] == ',' || s[k] == ' ')) break;
    }
    return 0;
  }
  /* March 3, 1980; Mar. 3rd 1980 */
  size_t me;
  if (!month_at(s, n, i, &me)) return 0;
  size_t k = spaces(s, n, me);
  if (k == me) return 0;
  size_t d = day_at(s, n, k);
  if (!d) return 0;
  k = d;
  if (k < n && s[k] == ',') k++;
  size_t y = spaces(s, n, k);
  if (y == k) return 0;
  return year_at(s, n, y);
}

/* The first date starting in [from, from + PHISCAN_WINDOW): found as a
 * date of birth. Returns whether there was one. */
static int dob_after(Scan *sc, size_t from) {
  const char *s = sc->s;
  size_t n = sc->n, lim = from + PHISCAN_WINDOW < n ? from + PHISCAN_WINDOW : n;
  for (size_t j = from; j < lim; j++) {
    char ch = s[j];
    if (!IS_ALNUM(ch)) continue;
    if (j > from && IS_ALNUM(s[j - 1]) && !(IS_ALPHA(ch) != IS_ALPHA(s[j - 1]))) continue;
    size_t e = date_at(s, n, j);
    if (e) {
      hit(sc, j, e, PHI_DOB);
      return 1;
    }
  }
  return 0;
}

/* ------------------------------------------------------------------ */
/* Words                                                                */

static int word_is(const char *s, size_t i, size_t len, const char *w) {
  if (strlen(w) != len) return 0;
  for (size_t k = 0; k < len; k++)
    if (LOWER(s[i + k]) != w[k]) return 0;
  return 1;
}

/* What a whole word is: a birth word, an SSN word, or neither. */
static int classify(const char *s, size_t i, size_t len) {
  switch (len) {
    case 3:
      if (word_is(s, i, len, "dob")) return W_BIRTH;
      if (word_is(s, i, len, "ssn")) return W_SSN;
      return W_NONE;
    case 4:
      if (word_is(s, i, len, "born")) return W_BIRTH;
      if (word_is(s, i, len, "ssns")) return W_SSN;
      return W_NONE;
    case 5: return word_is(s, i, len, "birth") ? W_BIRTH : W_NONE;
    case 6: return word_is(s, i, len, "social") ? W_SSN : W_NONE;
    case 8: return word_is(s, i, len, "birthday") ? W_BIRTH : W_NONE;
    case 9: return word_is(s, i, len, "birthdate") ? W_BIRTH : W_NONE;
    default: return W_NONE;
  }
}

/* The end of the word starting at i: a run of letters, cut where
 * camelCase starts a new word (a lower-case letter then an upper-case
 * one; the last of several upper-case letters before a lower-case one). */
static size_t word_end(const char *s, size_t n, size_t i) {
  size_t j = i + 1;
  while (j < n && IS_ALPHA(s[j])) {
    if (IS_UPPER(s[j]) && IS_LOWER(s[j - 1])) break;
    if (IS_UPPER(s[j - 1]) && IS_UPPER(s[j]) && j + 1 < n && IS_LOWER(s[j + 1]) && j - i >= 2) break;
    j++;
  }
  return j;
}

/* A birth word ending at e: its date of birth, or a date pending for the
 * next line when the line ends soon after it (PENDING_REACH bytes, "born
 * on:", "DOB (patient) =") with no digit. */
#define PENDING_REACH 24
static void birth_word(Scan *sc, size_t e) {
  sc->context = 1;
  if (dob_after(sc, e)) return;
  if (sc->n - e > PENDING_REACH) return;
  for (size_t k = e; k < sc->n; k++)
    if (IS_DIGIT(sc->s[k])) return;
  sc->pending = 1;
}

/* ------------------------------------------------------------------ */
/* The scan                                                             */

/* What a byte may start: 1 a number (SSN, phone), 2 a word that may be a
 * birth word (b, d), 3 a phone number ('+', '('), 4 an e-mail address
 * ('@'); 0 nothing. C_LEAD is added for an MRN lead's first byte. */
enum { C_NONE, C_DIGIT, C_WORD, C_PHONE, C_EMAIL, C_LEAD = 0x10 };
static const unsigned char CLASS[256] = {
  0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
  0, 0, 0, 0, 0, 0, 0, 0, 3, 0, 0, 3, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0,
  4, 0, 2, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
  0, 0, 2, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
  0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
  0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
  0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
  0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
};


static int cmp_hit(const void *a, const void *b) {
  const PhiHit *x = a, *y = b;
  if (x->start != y->start) return x->start < y->start ? -1 : 1;
  return x->end > y->end ? -1 : x->end < y->end;
}

/* Sorts the hits from `from` on by position and drops overlaps: an
 * e-mail address wins over what overlaps it, else the first to start. */
static void resolve(PhiHits *h, size_t from) {
  size_t m = h->n - from;
  if (m < 2) return;
  PhiHit *v = h->v + from;
  qsort(v, m, sizeof *v, cmp_hit);
  size_t k = 0;
  for (size_t i = 1; i < m; i++) {
    if (v[i].start < v[k].end) {
      if (v[i].kind == PHI_EMAIL && v[k].kind != PHI_EMAIL) v[k] = v[i];
      continue;
    }
    v[++k] = v[i];
  }
  h->n = from + k + 1;
}

void phiscan_config_init(PhiConfig *c) {
  memcpy(c->cls, CLASS, sizeof c->cls);
  c->lead_digit = 0;
  for (size_t k = 0; k < c->nleads; k++) {
    unsigned char f = (unsigned char)c->leads[k][0];
    if (IS_DIGIT(f)) c->lead_digit = 1;
    c->cls[f] |= C_LEAD;
  }
  c->prefix_len = strlen(c->mask_prefix ? c->mask_prefix : "[PHI:");
  c->suffix_len = strlen(c->mask_suffix ? c->mask_suffix : "]");
  c->mrn_c = c->nmrn > 0;
  for (size_t k = 0; k < c->nmrn; k++)
    if (!luapat_supported(c->mrn[k])) c->mrn_c = 0;
  c->ready = 1;
}

/* Whether a lead starts at i. */
static int lead_at(const PhiConfig *c, const char *s, size_t n, size_t i) {
  for (size_t k = 0; k < c->nleads; k++) {
    const char *lead = c->leads[k];
    if (lead[0] != s[i]) continue;
    size_t l = strlen(lead);
    if (l <= n - i && memcmp(s + i, lead, l) == 0) return 1;
  }
  return 0;
}

/* Whether a lead starts in [from, to): the bytes a scan jumps over. */
static int lead_in(const PhiConfig *c, const char *s, size_t n, size_t from, size_t to) {
  for (size_t i = from; i < to && i < n; i++)
    if ((c->cls[(unsigned char)s[i]] & C_LEAD) && lead_at(c, s, n, i)) return 1;
  return 0;
}

static size_t scan_line(Scan *sc, int pending);

/* The next byte at or after i that may start something: four bytes at a
 * time through the class table, then one. */
static size_t skip(const unsigned char *cls, const unsigned char *u, size_t i, size_t n) {
  while (i + 4 <= n && !(cls[u[i]] | cls[u[i + 1]] | cls[u[i + 2]] | cls[u[i + 3]])) i += 4;
  while (i < n && !cls[u[i]]) i++;
  return i;
}

size_t phiscan_line(const PhiConfig *c, int pending, const char *s, size_t n, PhiHits *out, int *pending_out,
                    int *context) {
  Scan sc = {c, s, n, out, 0, NONE, 0, 0, 0};
  size_t found = scan_line(&sc, pending);
  if (pending_out) *pending_out = sc.pending;
  if (context) *context = sc.context;
  return found;
}

/* The scan itself; sc->policy says whether a lead was seen (exact only
 * for a prepared configuration and a full scan). */
static size_t scan_line(Scan *sc_, int pending) {
  Scan sc = *sc_;
  const PhiConfig *c = sc.c;
  const char *s = sc.s;
  size_t n = sc.n;
  PhiHits *out = sc.out;
  const unsigned char *cls = c->ready ? c->cls : CLASS;
  int leads = c->ready && c->nleads > 0;
  size_t from = out ? out->n : 0;
  if (pending) {
    size_t j = 0;
    while (j < n && (s[j] == ' ' || s[j] == '\t')) j++;
    dob_after(&sc, j);
  }
  size_t i = 0;
  const unsigned char *u = (const unsigned char *)s;
  while (!(sc.found && !out)) {
    /* most bytes start nothing */
    i = skip(cls, u, i, n);
    if (i >= n) break;
    char ch = s[i];
    unsigned k = cls[u[i]];
    if ((k & C_LEAD) && !sc.policy && lead_at(c, s, n, i)) sc.policy = 1;
    size_t at = i;
    switch (k & 0x0f) {
      case C_DIGIT: {
        size_t run = digits(s, n, i), e = 0;
        int kind = PHI_NONE;
        if (i == 0 || !IS_DIGIT(s[i - 1])) {
          if ((e = ssn_at(&sc, i, run))) kind = PHI_SSN;
          else if ((run == 3 || (run == 1 && s[i] == '1')) && (e = phone_at(s, n, i))) kind = PHI_PHONE;
        }
        if (kind) {
          hit(&sc, i, e, kind);
          i = e;
        } else {
          i += run;
        }
        sc.last_digit = i;
        break;
      }
      case C_WORD: {
        /* a word starts here: no letter before it, or camelCase's cut */
        if (i > 0 && IS_ALPHA(s[i - 1]) && !(IS_UPPER(ch) && IS_LOWER(s[i - 1])) &&
            !(IS_UPPER(s[i - 1]) && IS_UPPER(ch) && i + 1 < n && IS_LOWER(s[i + 1]))) {
          i++;
          break;
        }
        /* every birth word has o or i second (dob, born, birth), or is D.O.B. */
        char second = i + 1 < n ? LOWER(s[i + 1]) : 0;
        if (second != 'o' && second != 'i' && second != '.') {
          i++;
          break;
        }
        size_t e = word_end(s, n, i);
        int w = classify(s, i, e - i);
        /* D.O.B. */
        if (w == W_NONE && e - i == 1 && LOWER(ch) == 'd' && e + 3 < n && s[e] == '.' && LOWER(s[e + 1]) == 'o' &&
            s[e + 2] == '.' && LOWER(s[e + 3]) == 'b' && (e + 4 >= n || !IS_ALPHA(s[e + 4]))) {
          e += 4;
          if (e < n && s[e] == '.') e++;
          w = W_BIRTH;
        }
        if (w == W_BIRTH) birth_word(&sc, e);
        i = e;
        break;
      }
      case C_PHONE: {
        size_t e = (i > 0 && IS_DIGIT(s[i - 1])) ? 0 : phone_at(s, n, i);
        if (e) {
          hit(&sc, i, e, PHI_PHONE);
          sc.last_digit = e;
          i = e;
        } else {
          i++;
        }
        break;
      }
      case C_EMAIL: {
        size_t start, e = email_at(c, s, n, i, &start);
        if (e) {
          hit(&sc, start, e, PHI_EMAIL);
          i = e;
        } else {
          i++;
        }
        break;
      }
      default: i++;
    }
    /* the bytes jumped over may hold a lead too */
    if (leads && !sc.policy && i > at + 1 && (c->lead_digit || !IS_DIGIT(s[at])) && lead_in(c, s, n, at + 1, i))
      sc.policy = 1;
  }
  if (out) resolve(out, from);
  *sc_ = sc;
  return out ? out->n - from : (size_t)sc.found;
}

int phiscan_policy(const PhiConfig *c, const char *s, size_t n) {
  if (c->always) return 1;
  for (size_t k = 0; k < c->nleads; k++) {
    const char *lead = c->leads[k];
    size_t l = strlen(lead);
    if (l == 0) return 1;
    /* memchr for the first byte, which is rare in most lines, then the rest */
    const char *p = s, *end = s + n;
    while (p + l <= end && (p = memchr(p, lead[0], (size_t)(end - p) - l + 1)) != NULL) {
      if (memcmp(p + 1, lead + 1, l - 1) == 0) return 1;
      p++;
    }
  }
  return 0;
}

static int text_add(PhiText *t, const char *p, size_t n) {
  if (n == 0) return 0;
  if (t->len + n > t->cap) {
    size_t cap = t->cap ? t->cap : 256;
    while (cap < t->len + n) cap *= 2;
    char *np = realloc(t->p, cap);
    if (!np) return -1;
    t->p = np;
    t->cap = cap;
  }
  memcpy(t->p + t->len, p, n);
  t->len += n;
  return 0;
}

int phiscan_mask(const PhiConfig *c, int *pending, const char *s, size_t n, PhiHits *hits, PhiText *text,
                 const char **out, size_t *outn) {
  hits->n = 0;
  hits->failed = 0;
  Scan sc = {c, s, n, hits, 0, NONE, 0, 0, 0};
  size_t k = scan_line(&sc, *pending);
  int next = sc.pending;
  int mrn_c = c->ready && c->mrn_c;
  if (hits->failed) return -1;
  if (!mrn_c && (c->ready ? sc.policy || c->always : phiscan_policy(c, s, n))) return 0;
  for (size_t i = 0; i < k; i++)
    if (c->policy_kinds & (1u << hits->v[i].kind)) return 0;
  const char *pre = c->mask_prefix ? c->mask_prefix : "[PHI:", *suf = c->mask_suffix ? c->mask_suffix : "]";
  size_t pl = c->ready ? c->prefix_len : strlen(pre), sl = c->ready ? c->suffix_len : strlen(suf);
  const char *cur = s;
  size_t curn = n;
  if (k > 0) {
    size_t at = 0;
    text->len = 0;
    for (size_t i = 0; i < k; i++) {
      const char *name = phiscan_kind_name(hits->v[i].kind);
      if (text_add(text, s + at, hits->v[i].start - at) || text_add(text, pre, pl) ||
          text_add(text, name, strlen(name)) || text_add(text, suf, sl))
        return -1;
      at = hits->v[i].end;
    }
    if (text_add(text, s + at, n - at)) return -1;
    cur = text->p;
    curn = text->len;
  }
  /* the MRN patterns look at the masked line, as the Lua masker's do:
   * here when they are luapat's, else the line is Lua's */
  int lead = mrn_c && !sc.policy && !c->always && k == 0 ? 0 : phiscan_policy(c, cur, curn);
  if (lead && !mrn_c) return 0;
  if (lead) {
    char repl[64];
    size_t rn = pl + 3 + sl;
    if (rn >= sizeof repl) return 0;
    memcpy(repl, pre, pl);
    memcpy(repl + pl, "mrn", 3);
    memcpy(repl + pl + 3, suf, sl);
    for (size_t m = 0; m < c->nmrn; m++) {
      /* from cur into the buffer cur is not in */
      int into_q = cur != text->q;
      char **buf = into_q ? &text->q : &text->p;
      size_t *len = into_q ? &text->qlen : &text->len, *cap = into_q ? &text->qcap : &text->cap;
      *len = 0;
      if (luapat_gsub(cur, curn, c->mrn[m], repl, rn, buf, len, cap) < 0) return -1;
      cur = *buf ? *buf : "";
      curn = *len;
    }
  }
  *out = cur;
  *outn = curn;
  *pending = next;
  return 1;
}

int phiscan_pass(const PhiConfig *c, int *pending, const char *s, size_t n) {
  int next;
  if (phiscan_line(c, *pending, s, n, NULL, &next, NULL)) return 0;
  if (phiscan_policy(c, s, n)) return 0;
  *pending = next;
  return 1;
}

int phiscan_quiet(const PhiConfig *c, int pending, const char *s, size_t n) {
  if (pending) return 0;
  /* a word starting with an SSN word (ssn..., social...: errs towards false) */
  for (size_t i = 0; i + 3 <= n; i++) {
    if (LOWER(s[i]) != 's' || (i > 0 && IS_ALPHA(s[i - 1]) && !(IS_UPPER(s[i]) && IS_LOWER(s[i - 1])))) continue;
    if ((LOWER(s[i + 1]) == 's' && LOWER(s[i + 2]) == 'n') || ci_prefix(s, n, i, "social")) return 0;
  }
  size_t i = 0;
  while (i < n) {
    const char *nl = memchr(s + i, '\n', n - i);
    size_t e = nl ? (size_t)(nl - s) : n;
    int context = 0;
    if (phiscan_line(c, 0, s + i, e - i, NULL, NULL, &context) || context) return 0;
    i = e + 1;
  }
  return 1;
}
