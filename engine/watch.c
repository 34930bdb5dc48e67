/*
 * watch.c: a directory tree watched with inotify, events coalesced into
 * changes of files (see watch.h). State kept:
 *   dirs     watch descriptor -> directory path relative to the root
 *   known    the files (anything not a directory) under watched directories
 *   touched  during a batch, each path an event named: whether it was known
 *            before the batch, whether it exists now, what it was renamed
 *            from
 *   moves    IN_MOVED_FROM events waiting for their IN_MOVED_TO
 * A batch's changes are the net effect on each touched path.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "grow.h"
#include "watch.h"

const char *const WATCH_BUILTIN_SKIP[] = {
  ".git", ".hg", ".svn", ".novapipe", "__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache",
  ".hypothesis", "node_modules", NULL,
};

#define DIR_MASK (IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO | IN_MODIFY | IN_CLOSE_WRITE | IN_ATTRIB | \
                  IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR | IN_DONT_FOLLOW | IN_EXCL_UNLINK)

/* ------------------------------------------------------------------ */
/* A string-keyed hash table (open addressing, keys owned)              */

static char TOMB[1];

typedef struct SMap {
  char **keys;
  void **vals;
  size_t cap, used, n; /* used counts tombstones too */
} SMap;

static uint64_t hash_str(const char *s) {
  uint64_t h = 1469598103934665603ULL;
  for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ULL;
  return h;
}

/* The slot holding key, or -1. */
static long smap_find(const SMap *m, const char *key) {
  if (!m->cap) return -1;
  size_t i = hash_str(key) & (m->cap - 1);
  for (;;) {
    char *k = m->keys[i];
    if (!k) return -1;
    if (k != TOMB && strcmp(k, key) == 0) return (long)i;
    i = (i + 1) & (m->cap - 1);
  }
}

static int smap_grow(SMap *m) {
  size_t cap = m->cap ? m->cap * 2 : 64;
  while (m->n * 2 >= cap) cap *= 2;
  char **keys = calloc(cap, sizeof *keys);
  void **vals = calloc(cap, sizeof *vals);
  if (!keys || !vals) {
    free(keys);
    free(vals);
    errno = ENOMEM;
    return -1;
  }
  for (size_t i = 0; i < m->cap; i++) {
    char *k = m->keys[i];
    if (!k || k == TOMB) continue;
    size_t j = hash_str(k) & (cap - 1);
    while (keys[j]) j = (j + 1) & (cap - 1);
    keys[j] = k;
    vals[j] = m->vals[i];
  }
  free(m->keys);
  free(m->vals);
  m->keys = keys;
  m->vals = vals;
  m->cap = cap;
  m->used = m->n;
  return 0;
}

/* Sets key (copied when new) to val; returns the slot or -1 (ENOMEM). */
static long smap_put(SMap *m, const char *key, void *val) {
  long at = smap_find(m, key);
  if (at >= 0) {
    m->vals[at] = val;
    return at;
  }
  if ((m->used + 1) * 4 >= m->cap * 3 && smap_grow(m) < 0) return -1;
  char *k = strdup(key);
  if (!k) return -1;
  size_t i = hash_str(key) & (m->cap - 1);
  while (m->keys[i] && m->keys[i] != TOMB) i = (i + 1) & (m->cap - 1);
  if (!m->keys[i]) m->used++;
  m->keys[i] = k;
  m->vals[i] = val;
  m->n++;
  return (long)i;
}

static void *smap_get(const SMap *m, const char *key) {
  long at = smap_find(m, key);
  return at >= 0 ? m->vals[at] : NULL;
}

static int smap_has(const SMap *m, const char *key) { return smap_find(m, key) >= 0; }

/* Removes key; returns its value (NULL when absent). */
static void *smap_del(SMap *m, const char *key) {
  long at = smap_find(m, key);
  if (at < 0) return NULL;
  void *v = m->vals[at];
  free(m->keys[at]);
  m->keys[at] = TOMB;
  m->vals[at] = NULL;
  m->n--;
  return v;
}

/* Empties the table, freeing each value with free_val (when not NULL). */
static void smap_clear(SMap *m, void (*free_val)(void *)) {
  for (size_t i = 0; i < m->cap; i++) {
    if (m->keys[i] && m->keys[i] != TOMB) {
      if (free_val) free_val(m->vals[i]);
      free(m->keys[i]);
    }
  }
  free(m->keys);
  free(m->vals);
  memset(m, 0, sizeof *m);
}

/* The keys that are `prefix` followed by '/', copied into a malloc'ed
 * array (*out, NULL when none). Returns the count or -1. */
static long smap_under(const SMap *m, const char *prefix, char ***out) {
  size_t pl = strlen(prefix), n = 0, cap = 0;
  char **list = NULL;
  for (size_t i = 0; i < m->cap; i++) {
    char *k = m->keys[i];
    if (!k || k == TOMB || strncmp(k, prefix, pl) != 0 || k[pl] != '/') continue;
    if (np_grow((void **)&list, &cap, n + 1, sizeof *list)) goto fail;
    if (!(list[n] = strdup(k))) goto fail;
    n++;
  }
  *out = list;
  return (long)n;
fail:
  for (size_t i = 0; i < n; i++) free(list[i]);
  free(list);
  errno = ENOMEM;
  return -1;
}

static void free_list(char **list, long n) {
  for (long i = 0; i < n; i++) free(list[i]);
  free(list);
}

/* ------------------------------------------------------------------ */
/* The watch                                                            */

typedef struct WatchedDir {
  int wd;
  char *rel; /* "" for the root */
} WatchedDir;

typedef struct Touch {
  int before, after, changed;
  char *origin; /* the path it was renamed from, known before the batch */
} Touch;

typedef struct Move {
  uint32_t cookie;
  int is_dir;
  char *rel;
  char *origin; /* a file's origin, handed to its new name */
} Move;

struct Watch {
  int fd;
  char *root;
  size_t root_len;
  WatchOptions o;
  WatchedDir *dirs; /* unordered; linear search is fine for renames, the
                       lookup by wd goes through the index below */
  size_t ndirs, capdirs;
  int *index; /* open addressing: wd -> position in dirs + 1, 0 empty, -1 tomb */
  size_t capindex, usedindex; /* usedindex counts tombstones too */
  SMap known, touched;
  Move *moves;
  size_t nmoves, capmoves;
  int overflow, gone;
  int limit_hit; /* a new directory could not be watched (ENOSPC) */
  WatchChange *out;
  size_t nout, capout;
  char **strings; /* what out points to, freed at the next read */
  size_t nstrings, capstrings;
};

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static char *join(const char *dir, const char *name) {
  size_t dl = strlen(dir), nl = strlen(name);
  char *s = malloc(dl + nl + 2);
  if (!s) return NULL;
  if (dl) {
    memcpy(s, dir, dl);
    s[dl] = '/';
    memcpy(s + dl + 1, name, nl + 1);
  } else {
    memcpy(s, name, nl + 1);
  }
  return s;
}

/* The absolute path of rel, or NULL (ENAMETOOLONG, ENOMEM). */
static char *absolute(const Watch *w, const char *rel) {
  char *s = join(w->root, rel);
  if (s && !*rel) s[w->root_len] = '\0'; /* join added a '/' */
  if (s && strlen(s) >= PATH_MAX) {
    free(s);
    errno = ENAMETOOLONG;
    return NULL;
  }
  return s;
}

static size_t index_slot(const Watch *w, int wd) { return ((size_t)wd * 2654435761u) & (w->capindex - 1); }

static int index_rebuild(Watch *w, size_t cap) {
  int *idx = calloc(cap, sizeof *idx);
  if (!idx) {
    errno = ENOMEM;
    return -1;
  }
  free(w->index);
  w->index = idx;
  w->capindex = cap;
  for (size_t i = 0; i < w->ndirs; i++) {
    size_t j = index_slot(w, w->dirs[i].wd);
    while (idx[j]) j = (j + 1) & (cap - 1);
    idx[j] = (int)i + 1;
  }
  w->usedindex = w->ndirs;
  return 0;
}

/* The index slot that points at wd, or -1. */
static long slot_of(const Watch *w, int wd) {
  if (!w->capindex) return -1;
  size_t j = index_slot(w, wd);
  for (;;) {
    int v = w->index[j];
    if (v == 0) return -1;
    if (v > 0 && w->dirs[v - 1].wd == wd) return (long)j;
    j = (j + 1) & (w->capindex - 1);
  }
}

/* The index slot holding position `pos` for wd (before a move). */
static long slot_of_moved(const Watch *w, int wd, size_t pos) {
  size_t j = index_slot(w, wd);
  for (size_t n = 0; n < w->capindex; n++) {
    if (w->index[j] == 0) return -1;
    if (w->index[j] == (int)pos + 1) return (long)j;
    j = (j + 1) & (w->capindex - 1);
  }
  return -1;
}

/* The position in dirs of wd, or -1. */
static long dir_find(const Watch *w, int wd) {
  long j = slot_of(w, wd);
  return j < 0 ? -1 : w->index[j] - 1;
}

/* The position in dirs of the directory rel, or -1 (a linear search: for
 * renames of directories). */
static long dir_by_rel(const Watch *w, const char *rel) {
  for (size_t i = 0; i < w->ndirs; i++)
    if (strcmp(w->dirs[i].rel, rel) == 0) return (long)i;
  return -1;
}

/* Records wd as the directory rel (replacing its path when wd is known). */
static int dir_add(Watch *w, int wd, const char *rel) {
  long at = dir_find(w, wd);
  char *copy = strdup(rel);
  if (!copy) return -1;
  if (at >= 0) {
    free(w->dirs[at].rel);
    w->dirs[at].rel = copy;
    return 0;
  }
  if (np_grow((void **)&w->dirs, &w->capdirs, w->ndirs + 1, sizeof *w->dirs)) {
    free(copy);
    return -1;
  }
  w->dirs[w->ndirs].wd = wd;
  w->dirs[w->ndirs].rel = copy;
  w->ndirs++;
  if ((w->usedindex + 1) * 2 > w->capindex) {
    size_t cap = 64;
    while (cap < w->ndirs * 4) cap *= 2;
    return index_rebuild(w, cap);
  }
  size_t j = index_slot(w, wd);
  while (w->index[j] > 0) j = (j + 1) & (w->capindex - 1);
  if (w->index[j] == 0) w->usedindex++;
  w->index[j] = (int)w->ndirs;
  return 0;
}

/* Forgets the directory at position at (the last one takes its place). */
static void dir_remove(Watch *w, long at) {
  long j = slot_of(w, w->dirs[at].wd);
  if (j >= 0) w->index[j] = -1;
  free(w->dirs[at].rel);
  size_t last = --w->ndirs;
  if ((size_t)at != last) {
    w->dirs[at] = w->dirs[last];
    long k = slot_of_moved(w, w->dirs[at].wd, last);
    if (k >= 0) w->index[k] = (int)at + 1;
  }
}

static void touch_free(void *p) {
  Touch *t = p;
  if (t) free(t->origin);
  free(t);
}

/* Records an event on the file rel: whether it exists afterwards and
 * whether its content may have changed. Returns its record or NULL. */
static Touch *touch(Watch *w, const char *rel, int exists) {
  Touch *t = smap_get(&w->touched, rel);
  if (!t) {
    if (!(t = calloc(1, sizeof *t))) return NULL;
    t->before = smap_has(&w->known, rel);
    if (smap_put(&w->touched, rel, t) < 0) {
      free(t);
      return NULL;
    }
  }
  t->after = exists;
  t->changed = 1;
  if (exists) {
    if (smap_put(&w->known, rel, NULL) < 0) return NULL;
  } else {
    smap_del(&w->known, rel);
    free(t->origin);
    t->origin = NULL;
  }
  return t;
}

/* What a file renamed away from rel hands to its new name: its own origin
 * when it had one, else rel itself when it existed before the batch. */
static char *origin_of(Watch *w, const char *rel) {
  Touch *t = smap_get(&w->touched, rel);
  if (t) return t->origin ? strdup(t->origin) : t->before ? strdup(rel) : NULL;
  return smap_has(&w->known, rel) ? strdup(rel) : NULL;
}

/* 1 when the directory rel (base name `name`) is skipped, -1 on abort. */
static int skip_dir(Watch *w, const char *rel, const char *name) {
  if (!w->o.no_builtin)
    for (const char *const *b = WATCH_BUILTIN_SKIP; *b; b++)
      if (strcmp(*b, name) == 0) return 1;
  if (!w->o.ignore) return 0;
  int r = w->o.ignore(w->o.ctx, rel, 1);
  if (r < 0) errno = ECANCELED;
  return r;
}

static const char *base_name(const char *rel) {
  const char *s = strrchr(rel, '/');
  return s ? s + 1 : rel;
}

/* Reads a directory's entries as malloc'ed strings, each the entry's type
 * ('d' a directory, 'f' anything else) then its name. Returns the count,
 * or -1 (ENOENT and the like when it went away). */
static long read_dir(const char *path, char ***out) {
  DIR *d = opendir(path);
  if (!d) return -1;
  size_t n = 0, cap = 0;
  char **list = NULL;
  struct dirent *e;
  int failed = 0;
  while (!failed && (e = readdir(d))) {
    if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
    int is_dir = e->d_type == DT_DIR;
    if (e->d_type == DT_UNKNOWN) {
      struct stat st;
      is_dir = fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode);
    }
    if (np_grow((void **)&list, &cap, n + 1, sizeof *list)) {
      failed = 1;
      break;
    }
    size_t l = strlen(e->d_name);
    if (!(list[n] = malloc(l + 2))) {
      failed = 1;
      break;
    }
    list[n][0] = is_dir ? 'd' : 'f';
    memcpy(list[n] + 1, e->d_name, l + 1);
    n++;
  }
  closedir(d);
  if (failed) {
    free_list(list, (long)n);
    errno = ENOMEM;
    return -1;
  }
  *out = list;
  return (long)n;
}

/* Watches the directory rel and everything below it that is not skipped.
 * With report, the files found are touched as created (a directory that
 * appeared during the watch); without, they are only known. A directory
 * that is gone or unreadable by the time it is reached is passed over. */
static int add_tree(Watch *w, const char *rel, int report) {
  char *path = absolute(w, rel);
  if (!path) return errno == ENAMETOOLONG ? 0 : -1;
  int wd = inotify_add_watch(w->fd, path, DIR_MASK);
  if (wd < 0) {
    int e = errno;
    free(path);
    errno = e;
    return e == ENOSPC || e == ENOMEM ? -1 : 0;
  }
  if (dir_add(w, wd, rel) < 0) {
    free(path);
    return -1;
  }
  char **list;
  long n = read_dir(path, &list);
  free(path);
  if (n < 0) return errno == ENOMEM ? -1 : 0;
  int rc = 0;
  for (long i = 0; i < n && rc == 0; i++) {
    char *child = join(rel, list[i] + 1);
    if (!child) {
      rc = -1;
      break;
    }
    if (list[i][0] == 'd') {
      int skip = skip_dir(w, child, list[i] + 1);
      if (skip < 0) rc = -1;
      else if (!skip) rc = add_tree(w, child, report);
    } else if (report) {
      if (!smap_has(&w->known, child) && !touch(w, child, 1)) rc = -1;
    } else if (smap_put(&w->known, child, NULL) < 0) {
      rc = -1;
    }
    free(child);
  }
  free_list(list, n);
  return rc;
}

/* Stops watching the directory rel and those below it; their known files
 * are touched as gone. */
static int drop_tree(Watch *w, const char *rel) {
  size_t rl = strlen(rel);
  for (size_t i = 0; i < w->ndirs;) {
    const char *r = w->dirs[i].rel;
    if (strncmp(r, rel, rl) == 0 && (r[rl] == '\0' || r[rl] == '/')) {
      inotify_rm_watch(w->fd, w->dirs[i].wd);
      dir_remove(w, (long)i);
    } else {
      i++;
    }
  }
  char **files;
  long n = smap_under(&w->known, rel, &files);
  if (n < 0) return -1;
  int rc = 0;
  for (long i = 0; i < n && rc == 0; i++)
    if (!touch(w, files[i], 0)) rc = -1;
  free_list(files, n);
  return rc;
}

/* The directory `from` was renamed to `to` within the tree: its watches
 * keep their descriptors under new paths, and its files are renamed. */
static int move_tree(Watch *w, const char *from, const char *to) {
  size_t fl = strlen(from);
  for (size_t i = 0; i < w->ndirs; i++) {
    char *r = w->dirs[i].rel;
    if (strncmp(r, from, fl) != 0 || (r[fl] != '\0' && r[fl] != '/')) continue;
    char *nr = malloc(strlen(to) + strlen(r + fl) + 1);
    if (!nr) return -1;
    strcpy(nr, to);
    strcat(nr, r + fl);
    free(r);
    w->dirs[i].rel = nr;
  }
  char **files;
  long n = smap_under(&w->known, from, &files);
  if (n < 0) return -1;
  int rc = 0;
  for (long i = 0; i < n && rc == 0; i++) {
    char *dst = malloc(strlen(to) + strlen(files[i] + fl) + 1);
    if (!dst) {
      rc = -1;
      break;
    }
    strcpy(dst, to);
    strcat(dst, files[i] + fl);
    char *origin = origin_of(w, files[i]);
    Touch *t = touch(w, files[i], 0) ? touch(w, dst, 1) : NULL;
    if (!t) {
      free(origin);
      rc = -1;
    } else {
      free(t->origin);
      t->origin = origin;
    }
    free(dst);
  }
  free_list(files, n);
  return rc;
}

/* add_tree for a directory that appeared during the watch: inotify's
 * limit reached is remembered (watch_read reports it), not an abort. */
static int add_new_tree(Watch *w, const char *rel) {
  int rc = add_tree(w, rel, 1);
  if (rc < 0 && errno == ENOSPC) {
    w->limit_hit = 1;
    rc = 0;
  }
  return rc;
}

static void move_free(Move *m) {
  free(m->rel);
  free(m->origin);
}

/* Settles the IN_MOVED_FROM events still unpaired: a directory moved out
 * of the tree is dropped (its files were made unknown already). */
static int settle_moves(Watch *w) {
  int rc = 0;
  for (size_t i = 0; i < w->nmoves; i++) {
    if (rc == 0 && w->moves[i].is_dir) rc = drop_tree(w, w->moves[i].rel);
    move_free(&w->moves[i]);
  }
  w->nmoves = 0;
  return rc;
}

/* Handles one event. Returns 0, or -1 (ENOMEM, ENOSPC, ECANCELED). */
static int on_event(Watch *w, const struct inotify_event *ev) {
  if (ev->mask & IN_Q_OVERFLOW) {
    w->overflow = 1;
    return 0;
  }
  long at = dir_find(w, ev->wd);
  if (at < 0) return 0; /* a watch already dropped */
  if (ev->mask & IN_IGNORED) {
    if (w->dirs[at].rel[0] == '\0') w->gone = 1;
    dir_remove(w, at);
    return 0;
  }
  if (ev->mask & (IN_DELETE_SELF | IN_MOVE_SELF | IN_UNMOUNT)) {
    if (w->dirs[at].rel[0] == '\0') w->gone = 1;
    return 0;
  }
  if (!ev->len || !ev->name[0]) return 0;
  char *rel = join(w->dirs[at].rel, ev->name);
  if (!rel) return -1;
  int rc = 0;
  int is_dir = (ev->mask & IN_ISDIR) != 0;
  if (ev->mask & IN_MOVED_FROM) {
    if (np_grow((void **)&w->moves, &w->capmoves, w->nmoves + 1, sizeof *w->moves)) {
      free(rel);
      return -1;
    }
    Move *m = &w->moves[w->nmoves];
    m->cookie = ev->cookie;
    m->is_dir = is_dir;
    m->origin = is_dir ? NULL : origin_of(w, rel);
    m->rel = rel;
    w->nmoves++;
    return is_dir || touch(w, rel, 0) ? 0 : -1;
  }
  if (ev->mask & IN_MOVED_TO) {
    Move *m = NULL;
    for (size_t i = 0; i < w->nmoves; i++)
      if (w->moves[i].cookie == ev->cookie && w->moves[i].is_dir == is_dir) m = &w->moves[i];
    if (is_dir) {
      int skip = skip_dir(w, rel, ev->name);
      if (skip < 0) rc = -1;
      else if (m && skip) rc = drop_tree(w, m->rel);
      else if (m && dir_by_rel(w, m->rel) >= 0) rc = move_tree(w, m->rel, rel);
      else if (!skip) rc = add_new_tree(w, rel); /* moved in, or from a directory not watched */
    } else {
      Touch *t = touch(w, rel, 1);
      if (!t) rc = -1;
      else if (m) {
        free(t->origin);
        t->origin = m->origin;
        m->origin = NULL;
      }
    }
    if (m) {
      move_free(m);
      *m = w->moves[--w->nmoves];
    }
    free(rel);
    return rc;
  }
  if (is_dir) {
    if (ev->mask & IN_CREATE) {
      int skip = skip_dir(w, rel, ev->name);
      rc = skip < 0 ? -1 : skip ? 0 : add_new_tree(w, rel);
    } else if (ev->mask & IN_DELETE) {
      rc = drop_tree(w, rel);
    }
  } else if (ev->mask & IN_DELETE) {
    rc = touch(w, rel, 0) ? 0 : -1;
  } else if (ev->mask & (IN_CREATE | IN_MODIFY | IN_CLOSE_WRITE | IN_ATTRIB)) {
    rc = touch(w, rel, 1) ? 0 : -1;
  }
  free(rel);
  return rc;
}

/* Drains the descriptor's pending events. Returns how many were read, or
 * -1 (EINTR included when the read itself was interrupted). */
static long drain(Watch *w) {
  char buf[64 * 1024] __attribute__((aligned(__alignof__(struct inotify_event))));
  long count = 0;
  for (;;) {
    ssize_t n = read(w->fd, buf, sizeof buf);
    if (n < 0) {
      if (errno == EAGAIN) return count;
      if (errno == EINTR) continue;
      return -1;
    }
    if (n == 0) return count;
    for (char *p = buf; p < buf + n;) {
      const struct inotify_event *ev = (const struct inotify_event *)p;
      if (on_event(w, ev) < 0) return -1;
      count++;
      p += sizeof *ev + ev->len;
    }
  }
}

static int open_fd(Watch *w) {
  w->fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  return w->fd < 0 ? -1 : 0;
}

/* Forgets every watch and file and watches the tree anew (after lost
 * events). */
static int rescan(Watch *w) {
  close(w->fd);
  for (size_t i = 0; i < w->ndirs; i++) free(w->dirs[i].rel);
  w->ndirs = 0;
  if (w->capindex) memset(w->index, 0, w->capindex * sizeof *w->index);
  w->usedindex = 0;
  smap_clear(&w->known, NULL);
  smap_clear(&w->touched, touch_free);
  for (size_t i = 0; i < w->nmoves; i++) move_free(&w->moves[i]);
  w->nmoves = 0;
  w->overflow = 0;
  if (open_fd(w) < 0) return -1;
  if (add_tree(w, "", 0) < 0) return -1;
  if (w->ndirs == 0) w->gone = 1;
  return 0;
}

static void out_reset(Watch *w) {
  for (size_t i = 0; i < w->nstrings; i++) free(w->strings[i]);
  w->nstrings = 0;
  w->nout = 0;
}

/* Keeps s (malloc'ed) until the next read; returns it, or NULL. */
static char *keep(Watch *w, char *s) {
  if (!s) return NULL;
  if (np_grow((void **)&w->strings, &w->capstrings, w->nstrings + 1, sizeof *w->strings)) {
    free(s);
    return NULL;
  }
  return w->strings[w->nstrings++] = s;
}

static int out_add(Watch *w, WatchKind kind, const char *path, const char *from) {
  if (np_grow((void **)&w->out, &w->capout, w->nout + 1, sizeof *w->out)) return -1;
  WatchChange *c = &w->out[w->nout];
  c->kind = kind;
  if (!(c->path = keep(w, strdup(path)))) return -1;
  c->from = NULL;
  if (from && !(c->from = keep(w, strdup(from)))) return -1;
  w->nout++;
  return 0;
}

/* 1 when the file rel is not reported (a temporary name or the caller's
 * ignore), -1 on abort. */
static int hidden(Watch *w, const char *rel) {
  if (watch_is_temporary(base_name(rel))) return 1;
  if (!w->o.ignore) return 0;
  int r = w->o.ignore(w->o.ctx, rel, 0);
  if (r < 0) errno = ECANCELED;
  return r;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* Turns the batch's touched paths into changes (sorted by path) and
 * forgets them. */
static int finish_batch(Watch *w) {
  int rc = settle_moves(w);
  if (rc == 0 && w->overflow) {
    rc = rescan(w);
    if (rc == 0) rc = out_add(w, WATCH_RESCAN, ".", NULL);
    return rc;
  }
  size_t n = 0;
  char **paths = NULL;
  if (rc == 0 && w->touched.n) {
    paths = malloc(w->touched.n * sizeof *paths);
    if (!paths) rc = -1;
    for (size_t i = 0; paths && i < w->touched.cap; i++)
      if (w->touched.keys[i] && w->touched.keys[i] != TOMB) paths[n++] = w->touched.keys[i];
    if (paths) qsort(paths, n, sizeof *paths, cmp_str);
  }
  /* Origins taken by a rename, so that the old name is not also deleted. */
  SMap consumed = {0};
  for (size_t i = 0; rc == 0 && i < n; i++) {
    Touch *t = smap_get(&w->touched, paths[i]);
    if (!t->after) continue;
    int h = hidden(w, paths[i]);
    if (h < 0) rc = -1;
    if (h) continue;
    const char *from = t->origin;
    if (from && smap_has(&w->known, from)) from = NULL; /* the old name is back */
    if (from && (h = hidden(w, from)) != 0) {
      if (h < 0) rc = -1;
      from = NULL;
    }
    if (from) {
      if (smap_put(&consumed, from, NULL) < 0) rc = -1;
      else rc = out_add(w, WATCH_RENAMED, paths[i], from);
    } else if (t->before) {
      if (t->changed) rc = out_add(w, WATCH_MODIFIED, paths[i], NULL);
    } else {
      rc = out_add(w, WATCH_CREATED, paths[i], NULL);
    }
  }
  for (size_t i = 0; rc == 0 && i < n; i++) {
    Touch *t = smap_get(&w->touched, paths[i]);
    if (t->after || !t->before || smap_has(&consumed, paths[i])) continue;
    int h = hidden(w, paths[i]);
    if (h < 0) rc = -1;
    else if (!h) rc = out_add(w, WATCH_DELETED, paths[i], NULL);
  }
  smap_clear(&consumed, NULL);
  free(paths);
  smap_clear(&w->touched, touch_free);
  if (rc == 0 && w->nout > 1) {
    /* deletions were added after the rest: one order by path */
    for (size_t i = 1; i < w->nout; i++) {
      WatchChange c = w->out[i];
      size_t j = i;
      for (; j > 0 && strcmp(w->out[j - 1].path, c.path) > 0; j--) w->out[j] = w->out[j - 1];
      w->out[j] = c;
    }
  }
  return rc;
}

int watch_open(Watch **out, const char *root, const WatchOptions *opts) {
  *out = NULL;
  char real[PATH_MAX];
  if (!realpath(root, real)) return -1;
  struct stat st;
  if (stat(real, &st) < 0) return -1;
  if (!S_ISDIR(st.st_mode)) {
    errno = ENOTDIR;
    return -1;
  }
  Watch *w = calloc(1, sizeof *w);
  if (!w) return -1;
  w->fd = -1;
  if (opts) w->o = *opts;
  else w->o.wake_fd = -1;
  if (w->o.settle <= 0) w->o.settle = 0.1;
  if (w->o.max_delay <= 0) w->o.max_delay = 2.0;
  if (w->o.max_delay < w->o.settle) w->o.max_delay = w->o.settle;
  w->root = strdup(real);
  w->root_len = w->root ? strlen(w->root) : 0;
  if (!w->root || open_fd(w) < 0 || add_tree(w, "", 0) < 0) {
    int e = errno;
    watch_close(w);
    errno = e;
    return -1;
  }
  if (w->ndirs == 0) { /* the root itself could not be watched */
    watch_close(w);
    errno = EACCES;
    return -1;
  }
  *out = w;
  return 0;
}

int watch_read(Watch *w, double timeout, const WatchChange **changes) {
  *changes = NULL;
  out_reset(w);
  if (w->gone) {
    errno = ENOENT;
    return -1;
  }
  double start = now(), first = start, last = start;
  /* what an interrupted or failed call read is returned first */
  int any = w->touched.n > 0 || w->nmoves > 0 || w->overflow;
  for (;;) {
    if (w->o.interrupted && w->o.interrupted(w->o.ctx)) {
      errno = EINTR;
      return -1;
    }
    double t = now(), until;
    if (any) {
      until = last + w->o.settle;
      if (first + w->o.max_delay < until) until = first + w->o.max_delay;
    } else {
      until = timeout < 0 ? -1 : start + timeout;
    }
    if (until >= 0 && t >= until) {
      if (!any) return 0;
      if (w->limit_hit) { /* reported now, the batch by the next call */
        w->limit_hit = 0;
        errno = ENOSPC;
        return -1;
      }
      if (finish_batch(w) < 0) return -1;
      if (w->gone) {
        out_reset(w);
        errno = ENOENT;
        return -1;
      }
      if (w->nout) {
        *changes = w->out;
        return (int)w->nout;
      }
      any = 0; /* the batch cancelled out: wait on */
      continue;
    }
    struct pollfd p[2] = {{w->fd, POLLIN, 0}, {w->o.wake_fd, POLLIN, 0}};
    int np = w->o.wake_fd >= 0 && w->o.interrupted ? 2 : 1;
    int ms = -1;
    if (until >= 0) ms = until - t > 3600 ? 3600 * 1000 : (int)((until - t) * 1000.0) + 1;
    int rc = poll(p, (nfds_t)np, ms);
    if (rc < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    if (np == 2 && (p[1].revents & POLLIN)) continue; /* the check above decides */
    if (rc > 0 && (p[0].revents & POLLIN)) {
      long n = drain(w);
      if (n < 0) return -1;
      if (n > 0) {
        last = now();
        if (!any) first = last;
        any = 1;
      }
    }
  }
}

void watch_close(Watch *w) {
  if (!w) return;
  if (w->fd >= 0) close(w->fd);
  for (size_t i = 0; i < w->ndirs; i++) free(w->dirs[i].rel);
  free(w->dirs);
  free(w->index);
  smap_clear(&w->known, NULL);
  smap_clear(&w->touched, touch_free);
  for (size_t i = 0; i < w->nmoves; i++) move_free(&w->moves[i]);
  free(w->moves);
  out_reset(w);
  free(w->strings);
  free(w->out);
  free(w->root);
  free(w);
}

const char *watch_root(const Watch *w) { return w->root; }

size_t watch_dirs(const Watch *w) { return w->ndirs; }

static int ends_with(const char *s, const char *suffix) {
  size_t l = strlen(s), k = strlen(suffix);
  return l > k && strcmp(s + l - k, suffix) == 0;
}

int watch_is_temporary(const char *name) {
  size_t l = strlen(name);
  if (l == 0) return 0;
  if (name[l - 1] == '~') return 1;                                  /* x~, Emacs' and vim's backups */
  if (name[0] == '.' && l > 5 && strncmp(name + l - 4, ".sw", 3) == 0 && name[l - 1] >= 'a' && name[l - 1] <= 'z')
    return 1;                                                        /* vim's .x.swp, .swo, ..., .swx */
  if (ends_with(name, ".swp") || ends_with(name, ".tmp") || ends_with(name, "___jb_tmp___") ||
      ends_with(name, "___jb_old___") || ends_with(name, ".kate-swp"))
    return 1;
  if (l > 2 && name[0] == '#' && name[l - 1] == '#') return 1;       /* Emacs' auto-save */
  if (strncmp(name, ".#", 2) == 0) return 1;                         /* Emacs' lock */
  if (strncmp(name, ".goutputstream-", 15) == 0) return 1;           /* GNOME */
  if (strncmp(name, ".~lock.", 7) == 0 && name[l - 1] == '#') return 1; /* LibreOffice */
  return 0;
}

long watch_read_limit(const char *path) {
  FILE *f = fopen(path, "r");
  long v = -1;
  if (f) {
    if (fscanf(f, "%ld", &v) != 1) v = -1;
    fclose(f);
  }
  return v;
}
