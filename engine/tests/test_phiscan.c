/*
 * test_phiscan: the PHI scanner's cases, run by ctest. Each case scans a
 * line and compares the values found, written "kind:value;" in order.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "phiscan.h"

static int passed, failed;

static const char *const domains[] = {"example.com", "example.org", "example.net"};
static const char *const tlds[] = {"test", "invalid", "example"};
static const char *const leads[] = {"MRN"};
static PhiConfig cfg = {.domains = domains, .ndomains = 3, .tlds = tlds, .ntlds = 3, .leads = leads, .nleads = 1};

/* The hits in a line, as "kind:value;" pieces; *pending in and out. */
static const char *found(const char *line, int *pending) {
  static char text[4096];
  PhiHits h = {0};
  int next = 0;
  size_t n = strlen(line);
  size_t k = phiscan_line(&cfg, pending ? *pending : 0, line, n, &h, &next, NULL);
  if (pending) *pending = next;
  size_t len = 0;
  text[0] = '\0';
  for (size_t i = 0; i < k; i++) {
    int w = snprintf(text + len, sizeof text - len, "%s:%.*s;", phiscan_kind_name(h.v[i].kind),
                     (int)(h.v[i].end - h.v[i].start), line + h.v[i].start);
    if (w > 0 && len + (size_t)w < sizeof text) len += (size_t)w;
  }
  /* the first-hit scan agrees with the full one */
  if (!pending && (phiscan_line(&cfg, 0, line, n, NULL, NULL, NULL) != 0) != (k != 0)) {
    failed++;
    fprintf(stderr, "first-hit scan disagrees on: %s\n", line);
  }
  phiscan_hits_free(&h);
  return text;
}

#define EXPECT(line, want) expect(__LINE__, line, want, NULL)

static void expect(int at, const char *line, const char *want, int *pending) {
  const char *got = found(line, pending);
  if (strcmp(got, want) == 0) {
    passed++;
  } else {
    failed++;
    fprintf(stderr, "test_phiscan.c:%d: %s\n  want: %s\n  got:  %s\n", at, line, want, got);
  }
}

static void check(int at, int ok, const char *what) {
  if (ok) {
    passed++;
  } else {
    failed++;
    fprintf(stderr, "test_phiscan.c:%d: %s\n", at, what);
  }
}

int main(void) {
  phiscan_config_init(&cfg);
  /* SSNs: dashes, spaces, Unicode dashes, nine digits after an SSN word */
  EXPECT("ssn 123-45-6789", "ssn:123-45-6789;");
  EXPECT("got 219 09 9999 back", "ssn:219 09 9999;");
  EXPECT("a 219\xe2\x80\x93" "09\xe2\x80\x93" "9999 b", "ssn:219\xe2\x80\x93" "09\xe2\x80\x93" "9999;");
  EXPECT("a 219\xe2\x88\x92" "09\xef\xbc\x8d" "9999", "ssn:219\xe2\x88\x92" "09\xef\xbc\x8d" "9999;");
  EXPECT("SSN: 219099999", "ssn:219099999;");
  EXPECT("{\"patientSSN\": \"219099999\"}", "ssn:219099999;");
  EXPECT("social security number is 219099999", "ssn:219099999;");
  EXPECT("id=219099999", "");
  EXPECT("ssn of record 12 then 219099999", "");
  EXPECT("classn 219099999", "");
  EXPECT("000-12-3456 666-12-3456 900-12-3456", "");
  EXPECT("1234-56-7890 123-45-67890", "");
  /* phones */
  EXPECT("call +1 415 867 5309 now", "phone:+1 415 867 5309;");
  EXPECT("(415) 867-5309 x123", "phone:(415) 867-5309 x123;");
  EXPECT("415.867.5309 ext. 12", "phone:415.867.5309 ext. 12;");
  EXPECT("1-415-867-5309", "phone:1-415-867-5309;");
  EXPECT("+14158675309", "phone:+14158675309;");
  EXPECT("+1 (415) 867-5309", "phone:+1 (415) 867-5309;");
  EXPECT("212-555-0100 (212) 555-0199", "");
  EXPECT("10.415.867.5309 1.2.3.4 3.11.7", "");
  /* e-mail addresses */
  EXPECT("to jane.doe+x@gmail.com.", "email:jane.doe+x@gmail.com;");
  EXPECT("JANE@GMAIL.COM", "email:JANE@GMAIL.COM;");
  EXPECT("'jan\xc3\xa9" "@gmail.com'", "email:jan\xc3\xa9" "@gmail.com;");
  EXPECT("\xc2\xab" "jane@mail.org\xc2\xbb", "email:jane@mail.org;");
  EXPECT("a@example.com b@mail.example.org c@x.test d@y.invalid e@z.example", "");
  EXPECT("@pytest.mark.parametrize user@localhost x@1.2", "");
  /* dates of birth */
  EXPECT("DOB: 1980-02-03; born on 3/4/1975", "dob:1980-02-03;dob:3/4/1975;");
  EXPECT("date of birth March 3, 1980", "dob:March 3, 1980;");
  EXPECT("born 3 March 1980", "dob:3 March 1980;");
  EXPECT("dob=Mar. 3rd 1980", "dob:Mar. 3rd 1980;");
  EXPECT("birthDate 03-04-1980", "dob:03-04-1980;");
  EXPECT("Patient(dob=datetime.date(1980, 2, 3))", "dob:date(1980, 2, 3);");
  EXPECT("{'date_of_birth': '1980-02-03'}", "dob:1980-02-03;");
  EXPECT("D.O.B. 02/03/1980", "dob:02/03/1980;");
  EXPECT("Adobe 2024-01-15", "");
  EXPECT("stubborn test at 2026-12-01", "");
  EXPECT("Osborne 1980-02-03 Dobson 1980-02-03 unborn 1980-02-03", "");
  EXPECT("2026-12-01 20:24:54,123 INFO started", "");
  EXPECT("born, as recorded in the registry of the county of somewhere else, 1980-02-03", "");
  /* a birth word closing a line: the date on the next one */
  int pending = 0;
  expect(__LINE__, "  \"dob\":", "", &pending);
  check(__LINE__, pending == 1, "a birth word closing a line leaves a date pending");
  expect(__LINE__, "    \"1980-02-03\"", "dob:1980-02-03;", &pending);
  check(__LINE__, pending == 0, "the pending date is taken");
  expect(__LINE__, "1980-02-03", "", &pending);
  /* the whole-text and first-hit entry points */
  check(__LINE__, phiscan_quiet(&cfg, 0, "a\nb 2026-12-01 3.11.7\n", 22), "quiet text");
  check(__LINE__, !phiscan_quiet(&cfg, 0, "a\nDOB\n", 6), "a birth word is not quiet");
  check(__LINE__, phiscan_policy(&cfg, "a\nMRN-1\n", 8) && !phiscan_policy(&cfg, "a\nMR\n", 5), "MRN leads");
  check(__LINE__, !phiscan_quiet(&cfg, 1, "a", 1), "a pending date is not quiet");
  pending = 0;
  check(__LINE__, phiscan_pass(&cfg, &pending, "dob:", 4) && pending == 1, "pass keeps the carry-over");
  check(__LINE__, !phiscan_pass(&cfg, &pending, "1980-02-03", 10) && pending == 1, "no pass leaves it");
  /* a long line that nearly matches everywhere is scanned in linear time */
  size_t big = 4000000;
  char *s = malloc(big);
  for (size_t i = 0; i < big; i++) s[i] = "1-2.3@a.b (4) x"[i % 15];
  PhiHits h = {0};
  phiscan_line(&cfg, 0, s, big, &h, NULL, NULL);
  check(__LINE__, !h.failed, "a long line");
  phiscan_hits_free(&h);
  free(s);

  printf("test_phiscan: %d passed, %d failed\n", passed, failed);
  return failed ? 1 : 0;
}
