/*
 * test_core: unit tests of the plain C core (linebuf, oscore, alloc), run by
 * ctest.
 * Prints "N passed, N failed" and exits non-zero on any failure.
 */
#include <errno.h>
#include <stdint.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "alloc.h"
#include "linebuf.h"
#include "oscore.h"

static int passed, failed;

#define CHECK(cond) do { \
  if (cond) passed++; \
  else { failed++; fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); } \
} while (0)

typedef struct Lines {
  char text[8192];
  size_t len;
  int count, pieces;
} Lines;

/* Records lines as "<line>|" and pieces as "<piece>~". */
static int collect(void *ctx, const char *line, size_t len, int eol) {
  Lines *l = ctx;
  memcpy(l->text + l->len, line, len);
  l->len += len;
  l->text[l->len++] = eol ? '|' : '~';
  l->text[l->len] = '\0';
  if (eol) l->count++;
  else l->pieces++;
  return 0;
}

static void test_linebuf_across_reads(void) {
  LineBuf lb;
  Lines l = {{0}, 0, 0, 0};
  linebuf_init(&lb, 1024);
  const char *parts[] = {"ab", "c\nde", "f\n\ng", "h"};
  for (int i = 0; i < 4; i++) linebuf_feed(&lb, parts[i], strlen(parts[i]), collect, &l);
  linebuf_finish(&lb, collect, &l);
  CHECK(strcmp(l.text, "abc|def||gh~") == 0);
  CHECK(l.count == 3);
  linebuf_free(&lb);
}

static void test_linebuf_long_lines_are_split_at_max(void) {
  LineBuf lb;
  Lines l = {{0}, 0, 0, 0};
  linebuf_init(&lb, 4);
  linebuf_feed(&lb, "abcdefghij\nxy", 13, collect, &l);
  linebuf_feed(&lb, "z\n", 2, collect, &l);
  CHECK(strcmp(l.text, "abcd~efgh~ij|xyz|") == 0);
  linebuf_free(&lb);
}

static void test_linebuf_pieces_are_cut_after_a_separator(void) {
  LineBuf lb;
  Lines l = {{0}, 0, 0, 0};
  linebuf_init(&lb, 8);
  /* "abcde 12" fills the buffer: the cut goes after the space, so the
   * number reaches the filter whole in the next piece. */
  linebuf_feed(&lb, "abcde 12345\n", 12, collect, &l);
  CHECK(strcmp(l.text, "abcde ~12345|") == 0);
  linebuf_free(&lb);
}

static void test_linebuf_line_of_exactly_max_is_whole(void) {
  LineBuf lb;
  Lines l = {{0}, 0, 0, 0};
  linebuf_init(&lb, 4);
  linebuf_feed(&lb, "ab", 2, collect, &l);
  linebuf_feed(&lb, "cd", 2, collect, &l);
  linebuf_feed(&lb, "\n", 1, collect, &l);
  CHECK(strcmp(l.text, "abcd|") == 0);
  CHECK(l.pieces == 0);
  linebuf_free(&lb);
}

static int stop_at_two(void *ctx, const char *line, size_t len, int eol) {
  (void)line; (void)len; (void)eol;
  return ++*(int *)ctx == 2 ? 7 : 0;
}

static void test_linebuf_emit_can_stop(void) {
  LineBuf lb;
  int seen = 0;
  linebuf_init(&lb, 64);
  CHECK(linebuf_feed(&lb, "a\nb\nc\n", 6, stop_at_two, &seen) == 7);
  CHECK(seen == 2);
  linebuf_free(&lb);
}

static void test_match(void) {
  CHECK(os_match("*.py", "test_x.py"));
  CHECK(!os_match("*.py", "a/test_x.py"));
  CHECK(os_match("**/*.py", "a/b/test_x.py"));
  CHECK(os_match("**/*.py", "test_x.py"));
  CHECK(os_match("a/**", "a/b/c"));
  CHECK(os_match("test_?.py", "test_1.py"));
  CHECK(os_match("[!_]*", "x"));
  CHECK(!os_match("[!_]*", "_x"));
  CHECK(os_match("[a-c]x", "bx"));
  CHECK(!os_match("t*", ""));
}

static void test_spawn_missing_program(void) {
  char *argv[] = {"novapipe-no-such-program", NULL};
  OsSpawn req = {argv, NULL, NULL, -1, -1, -1, -1};
  pid_t pid;
  const char *what = "";
  CHECK(os_spawn(&req, &pid, &what) == -1);
  CHECK(errno == ENOENT);
  CHECK(strcmp(what, "exec") == 0);
}

static void test_spawn_bad_cwd(void) {
  char *argv[] = {"true", NULL};
  OsSpawn req = {argv, NULL, "/nonexistent/dir", -1, -1, -1, -1};
  pid_t pid;
  const char *what = "";
  CHECK(os_spawn(&req, &pid, &what) == -1);
  CHECK(strcmp(what, "chdir") == 0);
}

static void test_spawn_runs_in_own_group(void) {
  char *argv[] = {"sh", "-c", "exit 3", NULL};
  OsSpawn req = {argv, NULL, "/", -1, -1, -1, -1};
  pid_t pid;
  const char *what;
  CHECK(os_spawn(&req, &pid, &what) == 0);
  CHECK(getpgid(pid) == pid || errno == ESRCH);
  int st;
  CHECK(waitpid(pid, &st, 0) == pid);
  CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 3);
}

static void test_fs(void) {
  char dir[] = "/tmp/np-core-XXXXXX";
  CHECK(mkdtemp(dir) != NULL);
  char path[256], file[300], copy[300];
  snprintf(path, sizeof path, "%s/a/b/c", dir);
  CHECK(os_mkdir_p(path, 0700) == 0);
  CHECK(os_mkdir_p(path, 0700) == 0);
  snprintf(file, sizeof file, "%s/report.json", path);
  CHECK(os_atomic_write(file, "{}", 2, 0600) == 0);
  struct stat st;
  CHECK(stat(file, &st) == 0 && (st.st_mode & 0777) == 0600 && st.st_size == 2);
  CHECK(os_mkdir_p(file, 0700) == -1 && errno == ENOTDIR);
  snprintf(copy, sizeof copy, "%s/copy.json", dir);
  CHECK(os_copy(file, copy) == 0);
  CHECK(stat(copy, &st) == 0 && (st.st_mode & 0777) == 0600 && st.st_size == 2);
  CHECK(os_copy(path, copy) == -1 && errno == EISDIR);
  /* rmtree removes the tree but not what a symbolic link in it points to */
  char outside[] = "/tmp/np-core-out-XXXXXX";
  CHECK(mkdtemp(outside) != NULL);
  char keep[300], link[300];
  snprintf(keep, sizeof keep, "%s/keep", outside);
  CHECK(os_atomic_write(keep, "k", 1, 0600) == 0);
  snprintf(link, sizeof link, "%s/link", dir);
  CHECK(symlink(outside, link) == 0);
  CHECK(os_rmtree(dir) == 0);
  CHECK(stat(dir, &st) == -1 && errno == ENOENT);
  CHECK(stat(keep, &st) == 0);
  CHECK(os_rmtree(dir) == 0); /* gone already: fine */
  CHECK(os_rmtree(outside) == 0);
}

/* Writes a small file; returns 0 or -1. */
static int put(const char *path, const char *text) {
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return -1;
  ssize_t n = write(fd, text, strlen(text));
  close(fd);
  return n == (ssize_t)strlen(text) ? 0 : -1;
}

/* Whether path is a regular file holding exactly text. */
static int holds(const char *path, const char *text) {
  char buf[256];
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  ssize_t n = read(fd, buf, sizeof buf - 1);
  close(fd);
  if (n < 0) return 0;
  buf[n] = '\0';
  return strcmp(buf, text) == 0;
}

/* A move never replaces what is at its destination (a file, a dangling
 * link) and never goes through a link in a directory on either path. */
static void test_move(void) {
  char dir[] = "/tmp/np-move-XXXXXX";
  CHECK(mkdtemp(dir) != NULL);
  char a[300], b[300], sub[300], via[300], dangling[300], moved[300];
  snprintf(a, sizeof a, "%s/a", dir);
  snprintf(b, sizeof b, "%s/b", dir);
  CHECK(put(a, "a") == 0 && put(b, "b") == 0);
  CHECK(os_move(a, b) == -1 && errno == EEXIST);
  CHECK(holds(a, "a") && holds(b, "b"));
  snprintf(dangling, sizeof dangling, "%s/dangling", dir);
  CHECK(symlink("/nonexistent/np-move", dangling) == 0);
  CHECK(os_move(a, dangling) == -1 && errno == EEXIST);
  snprintf(sub, sizeof sub, "%s/sub", dir);
  CHECK(mkdir(sub, 0700) == 0);
  snprintf(via, sizeof via, "%s/via", dir);
  CHECK(symlink(sub, via) == 0);
  /* (relative: in an absolute path a link of root's in a directory of
   * root's that others cannot write counts as the system's, and is followed) */
  char cwd[4096];
  CHECK(getcwd(cwd, sizeof cwd) != NULL && chdir(dir) == 0);
  CHECK(os_move("a", "via/a") == -1 && errno == ELOOP);
  CHECK(chdir(cwd) == 0);
  snprintf(moved, sizeof moved, "%s/sub/a", dir);
  CHECK(os_move(a, moved) == 0 && holds(moved, "a") && !holds(a, "a"));
  /* a directory moves whole */
  snprintf(moved, sizeof moved, "%s/sub2", dir);
  CHECK(os_move(sub, moved) == 0);
  snprintf(moved, sizeof moved, "%s/sub2/a", dir);
  CHECK(holds(moved, "a"));
  CHECK(os_rmtree(dir) == 0);
}

/* Taking over a directory: made when missing, chmodded when ours, and when
 * another user's (root only: chown) replaced with its entries; each state
 * an interrupted take-over leaves is finished; what is in the way, a clash
 * and links are refused and lose nothing. */
static void test_own_dir(void) {
  char root[] = "/tmp/np-core-own-XXXXXX";
  CHECK(mkdtemp(root) != NULL);
  char d[300], n[300], p[400], q[600], where[600];
  struct stat st, before;
  snprintf(d, sizeof d, "%s/reports", root);
  snprintf(n, sizeof n, "%s/reports.novapipe-own", root);
  CHECK(os_own_dir(d, 0700, where, sizeof where) == 0 && where[0] == '\0');
  CHECK(stat(d, &st) == 0 && S_ISDIR(st.st_mode) && (st.st_mode & 0777) == 0700);
  CHECK(chmod(d, 0755) == 0 && stat(d, &before) == 0);
  CHECK(os_own_dir(d, 0700, where, sizeof where) == 0);
  CHECK(stat(d, &st) == 0 && st.st_ino == before.st_ino && (st.st_mode & 0777) == 0700);
  /* a trailing slash names the same directory */
  snprintf(p, sizeof p, "%s/", d);
  CHECK(os_own_dir(p, 0700, where, sizeof where) == 0);
  /* a link at the path or at the new directory's name */
  char outside[] = "/tmp/np-core-own-out-XXXXXX";
  CHECK(mkdtemp(outside) != NULL);
  snprintf(p, sizeof p, "%s/linked", root);
  CHECK(symlink(outside, p) == 0);
  errno = 0;
  CHECK(os_own_dir(p, 0700, where, sizeof where) == -1 && errno == ELOOP && strcmp(os_refused_link(), p) == 0);
  CHECK(symlink(outside, n) == 0);
  CHECK(os_own_dir(d, 0700, where, sizeof where) == -1 && errno == ELOOP && strcmp(os_refused_link(), n) == 0);
  CHECK(unlink(n) == 0 && unlink(p) == 0);
  CHECK(stat(outside, &st) == 0 && (st.st_mode & 0777) == 0700);
  if (geteuid() != 0) {
    fprintf(stderr, "test_own_dir: not root, another user's directory not tried\n");
    os_rmtree(root);
    os_rmtree(outside);
    return;
  }
  /* another user's, with a file, a directory and a link in it */
  snprintf(p, sizeof p, "%s/old.xml", d);
  CHECK(put(p, "old") == 0 && chown(p, 65534, 65534) == 0);
  snprintf(p, sizeof p, "%s/sub", d);
  CHECK(mkdir(p, 0755) == 0 && chown(p, 65534, 65534) == 0);
  snprintf(p, sizeof p, "%s/link", d);
  CHECK(symlink(outside, p) == 0);
  CHECK(chmod(d, 0755) == 0 && chown(d, 65534, 65534) == 0 && stat(d, &before) == 0);
  CHECK(os_own_dir(d, 0700, where, sizeof where) == 0);
  CHECK(stat(d, &st) == 0 && st.st_uid == 0 && (st.st_mode & 0777) == 0700 && st.st_ino != before.st_ino);
  snprintf(p, sizeof p, "%s/old.xml", d);
  CHECK(holds(p, "old"));
  snprintf(p, sizeof p, "%s/sub", d);
  CHECK(stat(p, &st) == 0 && S_ISDIR(st.st_mode));
  snprintf(p, sizeof p, "%s/link", d);
  CHECK(lstat(p, &st) == 0 && S_ISLNK(st.st_mode));
  CHECK(lstat(n, &st) == -1 && errno == ENOENT);
  /* cut short while moving: some entries in each */
  CHECK(chown(d, 65534, 65534) == 0);
  CHECK(mkdir(n, 0700) == 0);
  snprintf(p, sizeof p, "%s/moved.xml", n);
  CHECK(put(p, "moved") == 0);
  CHECK(os_own_dir(d, 0700, where, sizeof where) == 0);
  snprintf(p, sizeof p, "%s/moved.xml", d);
  CHECK(holds(p, "moved"));
  snprintf(p, sizeof p, "%s/old.xml", d);
  CHECK(holds(p, "old"));
  CHECK(stat(d, &st) == 0 && st.st_uid == 0 && lstat(n, &st) == -1);
  /* cut short after the old directory was removed */
  CHECK(rename(d, n) == 0);
  CHECK(os_own_dir(d, 0700, where, sizeof where) == 0);
  CHECK(holds(p, "old") && lstat(n, &st) == -1);
  /* a name in both: refused, both kept */
  CHECK(chown(d, 65534, 65534) == 0 && mkdir(n, 0700) == 0);
  snprintf(q, sizeof q, "%s/old.xml", n);
  CHECK(put(q, "newer") == 0);
  errno = 0;
  CHECK(os_own_dir(d, 0700, where, sizeof where) == -1 && errno == ENOTEMPTY && strcmp(where, q) == 0);
  CHECK(holds(p, "old") && holds(q, "newer"));
  /* once one is moved away, the next call finishes */
  CHECK(unlink(q) == 0);
  CHECK(os_own_dir(d, 0700, where, sizeof where) == 0);
  CHECK(holds(p, "old") && lstat(n, &st) == -1);
  snprintf(q, sizeof q, "%s/moved.xml", d);
  CHECK(holds(q, "moved"));
  snprintf(q, sizeof q, "%s/link", d);
  CHECK(lstat(q, &st) == 0 && S_ISLNK(st.st_mode));
  /* a new directory's name taken by another user's: in the way */
  CHECK(mkdir(n, 0700) == 0 && chown(n, 65534, 65534) == 0);
  errno = 0;
  CHECK(os_own_dir(d, 0700, where, sizeof where) == -1 && errno == EEXIST && strcmp(where, n) == 0);
  CHECK(holds(p, "old") && stat(n, &st) == 0 && st.st_uid == 65534);
  CHECK(rmdir(n) == 0);
  CHECK(put(n, "a file") == 0);
  CHECK(os_own_dir(d, 0700, where, sizeof where) == -1 && errno == EEXIST && strcmp(where, n) == 0);
  CHECK(holds(n, "a file") && holds(p, "old"));
  CHECK(os_rmtree(root) == 0);
  CHECK(os_rmtree(outside) == 0);
}

/* Fields are counted from the last ')': a command name may hold spaces,
 * parentheses and what looks like the fields after it. */
static void test_proc_stat_parse(void) {
  OsProcStat st;
  const char *text = "42 (a) Z 9 9) S 1 42 42 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 12345 1000 100\n";
  CHECK(os_proc_stat_parse(text, &st) == 0);
  CHECK(st.state == 'S');
  CHECK(st.ppid == 1);
  CHECK(st.pgid == 42);
  CHECK(st.start == 12345);
  errno = 0;
  CHECK(os_proc_stat_parse("42 (x", &st) == -1 && errno == EINVAL);
  CHECK(os_proc_stat_parse("42 (x) S 1 42", &st) == -1 && errno == EINVAL);
  CHECK(os_proc_stat_parse("", &st) == -1 && errno == EINVAL);
}

/* A real child whose command name is "a) b c": its state, parent, group and
 * start time; then, once it is a zombie and reaped, ENOENT. */
static void test_proc_stat_of_a_child(void) {
  int ready[2];
  CHECK(pipe(ready) == 0);
  pid_t pid = fork();
  if (pid == 0) {
    setpgid(0, 0);
    prctl(PR_SET_NAME, "a) b c");
    if (write(ready[1], "x", 1) != 1) _exit(1);
    for (;;) pause();
  }
  CHECK(pid > 0);
  char c;
  CHECK(read(ready[0], &c, 1) == 1);
  close(ready[0]);
  close(ready[1]);
  char comm[64] = "";
  char path[64];
  snprintf(path, sizeof path, "/proc/%d/comm", (int)pid);
  FILE *f = fopen(path, "r");
  if (f) {
    if (!fgets(comm, sizeof comm, f)) comm[0] = '\0';
    fclose(f);
  }
  CHECK(strcmp(comm, "a) b c\n") == 0);
  OsProcStat st, self;
  CHECK(os_proc_stat(pid, &st) == 0);
  CHECK(st.state == 'S' || st.state == 'R');
  CHECK(st.ppid == getpid());
  CHECK(st.pgid == pid);
  CHECK(os_proc_stat(getpid(), &self) == 0);
  CHECK(self.pgid == getpgrp());
  CHECK(st.start >= self.start && self.start > 0);
  kill(pid, SIGKILL);
  /* Dead but not reaped: a zombie, still listed. */
  for (int i = 0; i < 500 && os_proc_stat(pid, &st) == 0 && st.state != 'Z'; i++) usleep(2000);
  CHECK(os_proc_stat(pid, &st) == 0 && st.state == 'Z');
  int wst;
  CHECK(waitpid(pid, &wst, 0) == pid);
  errno = 0;
  CHECK(os_proc_stat(pid, &st) == -1 && errno == ENOENT);
}

/* Fills a block with a pattern of its own (its slot and size). */
static void fill_block(unsigned char *b, size_t n, unsigned seed) {
  for (size_t i = 0; i < n; i++) b[i] = (unsigned char)(seed * 31 + i);
}

static int block_keeps(const unsigned char *b, size_t n, unsigned seed) {
  for (size_t i = 0; i < n; i++)
    if (b[i] != (unsigned char)(seed * 31 + i)) return 0;
  return 1;
}

/* Random allocations, resizes and frees through the Lua allocator, as Lua
 * calls it (the old size given back): every block keeps its bytes, none
 * overlaps another (each is checked after the others changed), and each is
 * aligned as malloc's are. */
static void test_alloc_keeps_every_block(void) {
  enum { SLOTS = 512, STEPS = 200000 };
  NpPool pool = {0};
  unsigned char *block[SLOTS] = {0};
  size_t size[SLOTS] = {0};
  unsigned seed[SLOTS] = {0};
  unsigned state = 12345;
  int kept = 1, aligned = 1, freed = 1;
  for (int step = 0; step < STEPS; step++) {
    state = state * 1103515245u + 12345u;
    int i = (int)((state >> 8) % SLOTS);
    state = state * 1103515245u + 12345u;
    /* mostly small blocks, the pool's; some larger, malloc's; some that
     * cross from one to the other */
    size_t n = (state >> 8) % 8 == 0 ? (state >> 12) % 2000 : (state >> 12) % 300;
    if (block[i] && !block_keeps(block[i], size[i], seed[i])) kept = 0;
    /* with no block, Lua passes the kind of object as osize */
    unsigned char *b = np_pool_alloc(&pool, block[i], block[i] ? size[i] : 5, n);
    if (n == 0) {
      if (b) freed = 0;
      block[i] = NULL;
      size[i] = 0;
      continue;
    }
    if (!b) {
      kept = 0;
      continue;
    }
    if (block[i] && !block_keeps(b, size[i] < n ? size[i] : n, seed[i])) kept = 0;
    if ((uintptr_t)b % 16) aligned = 0;
    block[i] = b;
    size[i] = n;
    seed[i] = (unsigned)step;
    fill_block(b, n, seed[i]);
  }
  for (int i = 0; i < SLOTS; i++) {
    if (block[i] && !block_keeps(block[i], size[i], seed[i])) kept = 0;
    np_pool_alloc(&pool, block[i], size[i], 0);
  }
  CHECK(kept);
  CHECK(aligned);
  CHECK(freed);
  np_pool_free(&pool);
  CHECK(pool.chunks == NULL);
}

int main(void) {
  test_alloc_keeps_every_block();
  test_linebuf_across_reads();
  test_linebuf_long_lines_are_split_at_max();
  test_linebuf_pieces_are_cut_after_a_separator();
  test_linebuf_line_of_exactly_max_is_whole();
  test_linebuf_emit_can_stop();
  test_match();
  test_spawn_missing_program();
  test_spawn_bad_cwd();
  test_spawn_runs_in_own_group();
  test_fs();
  test_move();
  test_own_dir();
  test_proc_stat_parse();
  test_proc_stat_of_a_child();
  printf("%d passed, %d failed\n", passed, failed);
  return failed ? 1 : 0;
}
