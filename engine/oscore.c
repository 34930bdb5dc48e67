#include "oscore.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <linux/close_range.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

const char *os_errname(int err) {
  const char *name = strerrorname_np(err);
  return name ? name : "EUNKNOWN";
}

/* The fields after the command name: state (field 3), ppid, pgrp, then
 * session to itrealvalue (fields 6 to 21) skipped, then starttime (22). */
int os_proc_stat_parse(const char *text, OsProcStat *st) {
  const char *paren = strrchr(text, ')');
  char state;
  int ppid, pgid;
  unsigned long long start;
  if (!paren || sscanf(paren + 1, " %c %d %d %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %llu",
                       &state, &ppid, &pgid, &start) != 4) {
    errno = EINVAL;
    return -1;
  }
  st->state = state;
  st->ppid = (pid_t)ppid;
  st->pgid = (pid_t)pgid;
  st->start = start;
  return 0;
}

/* The whole file is one line well under 4 KiB (the command name is at most
 * 64 bytes, the 52 numeric fields at most 20 digits each). */
int os_proc_stat(pid_t pid, OsProcStat *st) {
  char path[64], text[4096];
  snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  size_t have = 0;
  for (;;) {
    ssize_t r = read(fd, text + have, sizeof text - 1 - have);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) {
      int e = errno;
      close(fd);
      errno = e == ESRCH ? ENOENT : e;
      return -1;
    }
    if (r == 0 || (have += (size_t)r) == sizeof text - 1) break;
  }
  close(fd);
  text[have] = '\0';
  return os_proc_stat_parse(text, st);
}

/* Signals whose handlers the parent may have set; the child gets defaults. */
static const int reset_signals[] = {SIGINT, SIGTERM, SIGCHLD, SIGPIPE, SIGQUIT, SIGHUP, SIGWINCH};

/* In the child: reports the failing step and errno through the error pipe
 * and exits. */
static void child_fail(int fd, int step) {
  int msg[2] = {step, errno};
  ssize_t w = write(fd, msg, sizeof msg);
  (void)w;
  _exit(127);
}

int os_spawn(const OsSpawn *req, pid_t *pidp, const char **what) {
  static const char *steps[] = {"spawn", "redirect", "chdir", "exec"};
  sigset_t all, old;
  pid_t parent = getpid();
  /* The child reports a failure before exec through this pipe; a successful
   * exec closes it (close-on-exec), so the parent reads end of file. */
  int errpipe[2];
  if (pipe2(errpipe, O_CLOEXEC) < 0) {
    *what = "pipe";
    return -1;
  }
  sigfillset(&all);
  /* No handler of ours may run in the child while it shares our memory. */
  pthread_sigmask(SIG_SETMASK, &all, &old);
  pid_t pid = vfork();
  if (pid == 0) {
    struct sigaction dfl;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    for (size_t i = 0; i < sizeof reset_signals / sizeof reset_signals[0]; i++)
      sigaction(reset_signals[i], &dfl, NULL);
    setpgid(0, 0);
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) == 0 && getppid() != parent) _exit(127);
    int fds[3] = {req->fd_in, req->fd_out, req->fd_err};
    for (int i = 0; i < 3; i++) {
      if (fds[i] < 0) continue;
      if (fds[i] == i) {
        /* dup2 onto itself keeps close-on-exec: clear it instead. */
        int fl = fcntl(i, F_GETFD);
        if (fl < 0 || fcntl(i, F_SETFD, fl & ~FD_CLOEXEC) < 0) child_fail(errpipe[1], 1);
      } else if (dup2(fds[i], i) < 0) {
        child_fail(errpipe[1], 1);
      }
    }
    /* Descriptors opened without O_CLOEXEC (Lua's io.open, C modules)
     * must not reach the program either: mark every one past 2. */
    if (close_range(3, ~0U, CLOSE_RANGE_CLOEXEC) < 0) {
      for (int fd = 3; fd < 1024; fd++) {
        int fl = fcntl(fd, F_GETFD);
        if (fl >= 0) fcntl(fd, F_SETFD, fl | FD_CLOEXEC);
      }
    }
    if (req->fd_extra >= 0) {
      if (req->fd_extra == 3) {
        int fl = fcntl(3, F_GETFD);
        if (fl < 0 || fcntl(3, F_SETFD, fl & ~FD_CLOEXEC) < 0) child_fail(errpipe[1], 1);
      } else if (dup2(req->fd_extra, 3) < 0) {
        child_fail(errpipe[1], 1);
      }
    }
    if (req->cwd && chdir(req->cwd) < 0) child_fail(errpipe[1], 2);
    sigprocmask(SIG_SETMASK, &old, NULL);
    execvpe(req->argv[0], req->argv, req->envp ? req->envp : environ);
    child_fail(errpipe[1], 3);
  }
  int fork_err = errno;
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  close(errpipe[1]);
  if (pid < 0) {
    close(errpipe[0]);
    *what = "fork";
    errno = fork_err;
    return -1;
  }
  int msg[2];
  ssize_t r;
  while ((r = read(errpipe[0], msg, sizeof msg)) < 0 && errno == EINTR) {}
  close(errpipe[0]);
  if (r == (ssize_t)sizeof msg) {
    /* The child failed before exec: reap it and report why. */
    int st;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {}
    *what = steps[msg[0] >= 0 && msg[0] < 4 ? msg[0] : 0];
    errno = msg[1];
    return -1;
  }
  *pidp = pid;
  return 0;
}

int os_children(pid_t **out) {
  char path[64];
  pid_t self = getpid();
  snprintf(path, sizeof path, "/proc/%d/task/%d/children", (int)self, (int)self);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  size_t cap = 16, n = 0;
  pid_t *list = malloc(cap * sizeof *list);
  char buf[4096];
  long cur = -1;
  ssize_t r;
  if (!list) { close(fd); return -1; }
  while ((r = read(fd, buf, sizeof buf)) != 0) {
    if (r < 0) {
      if (errno == EINTR) continue;
      int e = errno;
      free(list);
      close(fd);
      errno = e;
      return -1;
    }
    for (ssize_t i = 0; i <= r; i++) {
      int digit = i < r && buf[i] >= '0' && buf[i] <= '9';
      if (digit) {
        cur = (cur < 0 ? 0 : cur * 10) + (buf[i] - '0');
      } else if (cur >= 0 && i < r) {
        if (n == cap) {
          pid_t *nl = realloc(list, (cap *= 2) * sizeof *list);
          if (!nl) { free(list); close(fd); errno = ENOMEM; return -1; }
          list = nl;
        }
        list[n++] = (pid_t)cur;
        cur = -1;
      }
    }
  }
  close(fd);
  if (cur >= 0) {
    if (n == cap) {
      pid_t *nl = realloc(list, (cap + 1) * sizeof *list);
      if (!nl) { free(list); errno = ENOMEM; return -1; }
      list = nl;
    }
    list[n++] = (pid_t)cur;
  }
  if (n == 0) {
    free(list);
    list = NULL;
  }
  *out = list;
  return (int)n;
}

int os_environ_has(pid_t pid, const char *entry) {
  return os_environ_match(pid, entry, 0);
}

int os_environ_match(pid_t pid, const char *entry, int prefix) {
  char path[64];
  snprintf(path, sizeof path, "/proc/%d/environ", (int)pid);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  size_t elen = strlen(entry);
  /* Entries are NUL-separated; match `entry` followed by NUL. */
  char buf[8192];
  size_t have = 0;
  int found = 0;
  for (;;) {
    ssize_t r = read(fd, buf + have, sizeof buf - have);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    have += (size_t)r;
    size_t start = 0;
    for (size_t i = 0; i < have; i++) {
      if (buf[i] != '\0') continue;
      if ((prefix ? i - start >= elen : i - start == elen) && memcmp(buf + start, entry, elen) == 0) found = 1;
      start = i + 1;
    }
    if (found) break;
    if (start == 0 && have == sizeof buf) start = have; /* overlong entry: skip */
    memmove(buf, buf + start, have - start);
    have -= start;
  }
  close(fd);
  return found;
}

static int rm_entry(const char *path, const struct stat *st, int type, struct FTW *ftw) {
  (void)st;
  (void)ftw;
  int rc = (type == FTW_DP) ? rmdir(path) : unlink(path);
  return (rc < 0 && errno != ENOENT) ? -1 : 0;
}

int os_rmtree(const char *path) {
  struct stat st;
  if (lstat(path, &st) < 0) return errno == ENOENT ? 0 : -1;
  if (!S_ISDIR(st.st_mode)) return unlink(path);
  return nftw(path, rm_entry, 32, FTW_DEPTH | FTW_PHYS);
}

static int write_all(int fd, const char *p, size_t n) {
  while (n > 0) {
    ssize_t w = write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    p += w;
    n -= (size_t)w;
  }
  return 0;
}

/* The symbolic link that made the last os_* call of this thread fail with
 * ELOOP: the prefix of the path it was given. */
static _Thread_local char link_seen[PATH_MAX];

const char *os_refused_link(void) {
  return link_seen;
}

/* Whether the symbolic link `name` in the directory `dirfd` is the system's
 * own: owned by root, in a directory owned by root that others cannot
 * write. Only such links are followed, and only in absolute paths. */
static int system_link(int dirfd, const char *name) {
  struct stat l, d;
  if (fstatat(dirfd, name, &l, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISLNK(l.st_mode) || l.st_uid != 0) return 0;
  if (fstat(dirfd, &d) < 0) return 0;
  return d.st_uid == 0 && !(d.st_mode & S_IWOTH);
}

/* Records `path`'s first `len` bytes as the refused link; sets ELOOP. */
static int refuse_link(const char *path, size_t len) {
  if (len >= sizeof link_seen) len = sizeof link_seen - 1;
  memcpy(link_seen, path, len);
  link_seen[len] = '\0';
  errno = ELOOP;
  return -1;
}

int os_open_dir(const char *dir, int create, mode_t mode) {
  link_seen[0] = '\0';
  int absolute = dir[0] == '/';
  int fd = open(absolute ? "/" : ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return -1;
  const char *p = dir;
  char comp[NAME_MAX + 1];
  while (*p) {
    while (*p == '/') p++;
    if (!*p) break;
    const char *end = strchr(p, '/');
    size_t n = end ? (size_t)(end - p) : strlen(p);
    if (n > NAME_MAX) {
      close(fd);
      errno = ENAMETOOLONG;
      return -1;
    }
    memcpy(comp, p, n);
    comp[n] = '\0';
    size_t prefix = (size_t)(p - dir) + n;
    p += n;
    int next = openat(fd, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (next < 0 && errno == ENOENT && create) {
      if (mkdirat(fd, comp, mode) < 0 && errno != EEXIST) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
      }
      next = openat(fd, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    }
    if (next < 0 && (errno == ELOOP || errno == ENOTDIR)) {
      struct stat st;
      int is_link = fstatat(fd, comp, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode);
      if (is_link && absolute && system_link(fd, comp)) {
        next = openat(fd, comp, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
      } else if (is_link) {
        close(fd);
        return refuse_link(dir, prefix);
      } else {
        errno = ENOTDIR;
      }
    }
    int e = errno;
    close(fd);
    if (next < 0) {
      errno = e;
      return -1;
    }
    fd = next;
  }
  return fd;
}

/* Splits path into its directory (copied into dir) and its last name;
 * opens the directory with os_open_dir. Returns the descriptor, or -1. */
static int open_parent(const char *path, char *dir, size_t size, const char **base) {
  const char *slash = strrchr(path, '/');
  if (!slash) {
    snprintf(dir, size, ".");
    *base = path;
  } else {
    size_t n = (size_t)(slash - path);
    if (n >= size) {
      errno = ENAMETOOLONG;
      return -1;
    }
    memcpy(dir, path, n);
    dir[n] = '\0';
    if (n == 0) snprintf(dir, size, "/");
    *base = slash + 1;
  }
  if (**base == '\0' || strcmp(*base, ".") == 0 || strcmp(*base, "..") == 0) {
    errno = EISDIR;
    return -1;
  }
  return os_open_dir(dir, 0, 0700);
}

int os_mkdir_p(const char *path, mode_t mode) {
  if (*path == '\0') {
    errno = ENOENT;
    return -1;
  }
  int fd = os_open_dir(path, 1, mode);
  if (fd < 0) return -1;
  close(fd);
  return 0;
}

int os_write_begin(OsWriter *w, const char *path, mode_t mode) {
  char dir[PATH_MAX];
  const char *base;
  w->fd = w->dfd = -1;
  w->mode = mode;
  int dfd = open_parent(path, dir, sizeof dir, &base);
  if (dfd < 0) return -1;
  struct stat st;
  if (fstatat(dfd, base, &st, AT_SYMLINK_NOFOLLOW) == 0) {
    if (S_ISLNK(st.st_mode)) {
      close(dfd);
      return refuse_link(path, strlen(path));
    }
    if (S_ISDIR(st.st_mode)) {
      close(dfd);
      errno = EISDIR;
      return -1;
    }
  }
  if (snprintf(w->base, sizeof w->base, "%s", base) >= (int)sizeof w->base) {
    close(dfd);
    errno = ENAMETOOLONG;
    return -1;
  }
  static unsigned counter;
  int fd = -1;
  for (int tries = 0; fd < 0 && tries < 100; tries++) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    unsigned r = (unsigned)ts.tv_nsec ^ ((unsigned)getpid() << 16) ^ (++counter * 2654435761u);
    if (snprintf(w->tmp, sizeof w->tmp, "%.200s.tmp.%08x", base, r) >= (int)sizeof w->tmp) {
      close(dfd);
      errno = ENAMETOOLONG;
      return -1;
    }
    fd = openat(dfd, w->tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0 && errno != EEXIST) break;
  }
  if (fd < 0) {
    int e = errno;
    close(dfd);
    errno = e;
    return -1;
  }
  w->fd = fd;
  w->dfd = dfd;
  return 0;
}

int os_write_some(OsWriter *w, const char *data, size_t len) {
  if (w->fd < 0) {
    errno = EBADF;
    return -1;
  }
  return write_all(w->fd, data, len);
}

void os_write_abort(OsWriter *w) {
  int e = errno;
  if (w->fd >= 0) close(w->fd);
  if (w->dfd >= 0) {
    unlinkat(w->dfd, w->tmp, 0);
    close(w->dfd);
  }
  w->fd = w->dfd = -1;
  errno = e;
}

int os_write_commit(OsWriter *w) {
  if (w->fd < 0) {
    errno = EBADF;
    return -1;
  }
  if (fchmod(w->fd, w->mode) < 0 || fsync(w->fd) < 0) goto fail;
  int fd = w->fd;
  w->fd = -1;
  if (close(fd) < 0) goto fail;
  if (renameat(w->dfd, w->tmp, w->dfd, w->base) < 0) goto fail;
  fsync(w->dfd); /* the rename itself, durable */
  close(w->dfd);
  w->dfd = -1;
  return 0;
fail:
  os_write_abort(w);
  return -1;
}

int os_atomic_write(const char *path, const char *data, size_t len, mode_t mode) {
  OsWriter w;
  if (os_write_begin(&w, path, mode) < 0) return -1;
  if (os_write_some(&w, data, len) < 0) {
    os_write_abort(&w);
    return -1;
  }
  return os_write_commit(&w);
}

int os_open_file(const char *path, int flags, mode_t mode) {
  char dir[PATH_MAX];
  const char *base;
  int dfd = open_parent(path, dir, sizeof dir, &base);
  if (dfd < 0) return -1;
  int fd = openat(dfd, base, flags | O_NOFOLLOW | O_CLOEXEC, mode);
  int e = errno;
  if (fd < 0 && e == ELOOP) {
    close(dfd);
    return refuse_link(path, strlen(path));
  }
  close(dfd);
  errno = e;
  return fd;
}

int os_chmod(const char *path, mode_t mode) {
  char dir[PATH_MAX];
  const char *base;
  int dfd = open_parent(path, dir, sizeof dir, &base);
  if (dfd < 0) return -1;
  struct stat st;
  int fd = -1;
  if (fstatat(dfd, base, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode)) {
    close(dfd);
    return refuse_link(path, strlen(path));
  }
  fd = openat(dfd, base, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
  int e = errno;
  close(dfd);
  if (fd < 0) {
    errno = e;
    return -1;
  }
  int rc = fchmod(fd, mode);
  e = errno;
  close(fd);
  errno = e;
  return rc;
}

/* Moves one entry from the directory `from` to `to`, never replacing one
 * there (EEXIST). Where the filesystem cannot rename without replacing,
 * the check and the rename are two steps. */
static int move_entry(int from, int to, const char *name) {
  if (renameat2(from, name, to, name, RENAME_NOREPLACE) == 0) return 0;
  if (errno != EINVAL && errno != ENOSYS) return -1;
  struct stat st;
  if (fstatat(to, name, &st, AT_SYMLINK_NOFOLLOW) == 0) {
    errno = EEXIST;
    return -1;
  }
  return renameat(from, name, to, name);
}

int os_move(const char *src, const char *dst) {
  char sdir[PATH_MAX], ddir[PATH_MAX];
  const char *sbase, *dbase;
  int sfd = open_parent(src, sdir, sizeof sdir, &sbase);
  if (sfd < 0) return -1;
  int dfd = open_parent(dst, ddir, sizeof ddir, &dbase);
  if (dfd < 0) {
    int e = errno;
    close(sfd);
    errno = e;
    return -1;
  }
  int rc = renameat2(sfd, sbase, dfd, dbase, RENAME_NOREPLACE);
  if (rc < 0 && (errno == EINVAL || errno == ENOSYS)) {
    struct stat st;
    if (fstatat(dfd, dbase, &st, AT_SYMLINK_NOFOLLOW) == 0) errno = EEXIST;
    else rc = renameat(sfd, sbase, dfd, dbase);
  }
  int e = errno;
  close(sfd);
  close(dfd);
  errno = e;
  return rc;
}

/* Moves every entry of the directory `from` into `to`; an entry gone
 * meanwhile is fine. On EEXIST the entry's name is copied into clash. */
static int move_entries(int from, int to, char *clash, size_t size) {
  int fd = dup(from);
  if (fd < 0) return -1;
  DIR *d = fdopendir(fd);
  if (!d) {
    int e = errno;
    close(fd);
    errno = e;
    return -1;
  }
  rewinddir(d);
  int rc = 0;
  struct dirent *e;
  while (rc == 0 && (errno = 0, e = readdir(d)) != NULL) {
    if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
    if (move_entry(from, to, e->d_name) == 0 || errno == ENOENT) continue;
    if (errno == EEXIST) snprintf(clash, size, "%s", e->d_name);
    rc = -1;
  }
  if (rc == 0 && errno != 0) rc = -1;
  int err = errno;
  closedir(d);
  errno = err;
  return rc;
}

/* Opens the directory `name` in dfd, not following a link; fails with
 * EEXIST when it is not a directory of ours. */
static int open_own(int dfd, const char *name) {
  int fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  struct stat st;
  if (fd < 0) {
    if (errno == ENOTDIR || errno == ELOOP) errno = EEXIST;
    return -1;
  }
  if (fstat(fd, &st) < 0 || st.st_uid != geteuid()) {
    close(fd);
    errno = EEXIST;
    return -1;
  }
  return fd;
}

int os_own_dir(const char *path_in, mode_t mode, char *where, size_t size) {
  char path[PATH_MAX], dir[PATH_MAX], tmp[NAME_MAX + 1], clash[NAME_MAX + 1] = "";
  const char *base;
  where[0] = '\0';
  size_t len = strlen(path_in);
  while (len > 1 && path_in[len - 1] == '/') len--; /* "results/" is "results" */
  if (len >= sizeof path) {
    errno = ENAMETOOLONG;
    return -1;
  }
  memcpy(path, path_in, len);
  path[len] = '\0';
  int dfd = open_parent(path, dir, sizeof dir, &base);
  if (dfd < 0) return -1;
  snprintf(tmp, sizeof tmp, "%.200s.novapipe-own", base);
  /* the path of the new directory, as the caller names path */
  char npath[PATH_MAX];
  snprintf(npath, sizeof npath, "%.*s%s", (int)(base - path), path, tmp);
  int ofd = -1, nfd = -1, rc = -1;
  struct stat pst, ost, nst;
  if (fstat(dfd, &pst) < 0) goto out;
  /* A new directory left by an interrupted take-over: resumed. */
  if (fstatat(dfd, tmp, &nst, AT_SYMLINK_NOFOLLOW) == 0) {
    if (S_ISLNK(nst.st_mode)) {
      rc = refuse_link(npath, strlen(npath));
      goto out;
    }
    if ((nfd = open_own(dfd, tmp)) < 0) {
      if (errno == EEXIST) snprintf(where, size, "%s", npath);
      goto out;
    }
  } else if (errno != ENOENT) {
    goto out;
  }
  if (fstatat(dfd, base, &ost, AT_SYMLINK_NOFOLLOW) < 0) {
    if (errno != ENOENT) goto out;
    if (nfd >= 0) goto finish; /* cut short after the old one was removed */
    if (mkdirat(dfd, base, mode) < 0) goto out;
  } else if (S_ISLNK(ost.st_mode)) {
    rc = refuse_link(path, strlen(path));
    goto out;
  }
  ofd = openat(dfd, base, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (ofd < 0) {
    if (errno == ELOOP) rc = refuse_link(path, strlen(path));
    goto out;
  }
  if (fstat(ofd, &ost) < 0) goto out;
  if (ost.st_uid == geteuid() && nfd < 0) {
    rc = fchmod(ofd, mode);
    goto out;
  }
  if (ost.st_dev != pst.st_dev) {
    errno = EXDEV; /* a mount point: its entries cannot be renamed out */
    goto out;
  }
  if (nfd < 0) {
    if (mkdirat(dfd, tmp, 0700) < 0) {
      if (errno == EEXIST) snprintf(where, size, "%s", npath);
      goto out;
    }
    if ((nfd = open_own(dfd, tmp)) < 0) goto out;
  }
  if (fchmod(nfd, 0700) < 0) goto out;
  /* The other user may still add entries while they own it: move until
   * it can be removed. */
  for (int pass = 0;; pass++) {
    if (move_entries(ofd, nfd, clash, sizeof clash) < 0) {
      if (errno == EEXIST) {
        snprintf(where, size, "%s/%s", npath, clash);
        errno = ENOTEMPTY;
      }
      goto out;
    }
    if (unlinkat(dfd, base, AT_REMOVEDIR) == 0) break;
    if ((errno != ENOTEMPTY && errno != EEXIST) || pass == 100) goto out;
  }
finish:
  if (fsync(nfd) < 0 || renameat(dfd, tmp, dfd, base) < 0 || fchmod(nfd, mode) < 0) goto out;
  fsync(dfd); /* the rename itself, durable */
  rc = 0;
out:;
  int e = errno;
  if (ofd >= 0) close(ofd);
  if (nfd >= 0) {
    close(nfd);
    /* a new directory that received nothing is not left behind */
    if (rc < 0) unlinkat(dfd, tmp, AT_REMOVEDIR);
  }
  close(dfd);
  errno = e;
  return rc;
}

int os_append(const char *path, const char *data, size_t len, mode_t mode) {
  int fd = os_open_file(path, O_WRONLY | O_APPEND | O_CREAT, mode);
  if (fd < 0) return -1;
  struct stat st;
  /* A file of ours that is wider open than asked is narrowed first. */
  if (fstat(fd, &st) == 0 && st.st_uid == geteuid() && (st.st_mode & 07777 & ~mode)) fchmod(fd, st.st_mode & mode);
  if (write_all(fd, data, len) < 0 || fsync(fd) < 0) {
    int e = errno;
    close(fd);
    errno = e;
    return -1;
  }
  return close(fd);
}

int os_copy(const char *src, const char *dst) {
  int in = open(src, O_RDONLY | O_CLOEXEC);
  if (in < 0) return -1;
  struct stat st;
  if (fstat(in, &st) < 0) {
    int e = errno;
    close(in);
    errno = e;
    return -1;
  }
  if (!S_ISREG(st.st_mode)) {
    close(in);
    errno = EISDIR;
    return -1;
  }
  int out = open(dst, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, st.st_mode & 07777);
  if (out < 0) {
    int e = errno;
    close(in);
    errno = e;
    return -1;
  }
  char buf[65536];
  int rc = 0;
  for (;;) {
    ssize_t r = read(in, buf, sizeof buf);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) { rc = -1; break; }
    if (r == 0) break;
    if (write_all(out, buf, (size_t)r) < 0) { rc = -1; break; }
  }
  int e = errno;
  if (rc == 0 && fchmod(out, st.st_mode & 07777) < 0) { rc = -1; e = errno; }
  close(in);
  if (close(out) < 0 && rc == 0) { rc = -1; e = errno; }
  errno = e;
  return rc;
}

/* Matches one bracket expression at *pp against c; advances *pp past it.
 * Returns 1 on a match, 0 on none, -1 when the bracket is not closed. */
static int match_class(const char **pp, char c) {
  const char *p = *pp + 1;
  int negate = (*p == '!' || *p == '^');
  if (negate) p++;
  int hit = 0;
  const char *first = p;
  while (*p && (*p != ']' || p == first)) {
    if (p[1] == '-' && p[2] && p[2] != ']') {
      if (c >= p[0] && c <= p[2]) hit = 1;
      p += 3;
    } else {
      if (c == *p) hit = 1;
      p++;
    }
  }
  if (*p != ']') return -1;
  *pp = p + 1;
  return hit != negate;
}

int os_match(const char *p, const char *s) {
  while (*p) {
    if (p[0] == '*' && p[1] == '*') {
      while (*p == '*') p++;
      if (*p == '/') {
        /* A double star and slash also match no directory at all. */
        if (os_match(p + 1, s)) return 1;
      }
      for (;; s++) {
        if (os_match(p, s)) return 1;
        if (*s == '\0') return 0;
      }
    }
    if (*p == '*') {
      p++;
      for (;; s++) {
        if (os_match(p, s)) return 1;
        if (*s == '\0' || *s == '/') return 0;
      }
    }
    if (*s == '\0') return 0;
    if (*p == '?') {
      if (*s == '/') return 0;
      p++;
      s++;
      continue;
    }
    if (*p == '[' && *s != '/') {
      int m = match_class(&p, *s);
      if (m == 0) return 0;
      if (m == 1) {
        s++;
        continue;
      }
      /* Unclosed '[': a literal character. */
    }
    if (*p != *s) return 0;
    p++;
    s++;
  }
  return *s == '\0';
}

/* Opened without blocking: a FIFO (or a device) named like a test file is
 * refused, not waited on for a writer. */
int os_read_file(const char *path, char **buf, size_t *n) {
  int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) return errno;
  struct stat st;
  int failed = fstat(fd, &st) < 0;
  if (failed || !S_ISREG(st.st_mode)) {
    /* (errno is fstat's only when it failed: else it is stale) */
    int e = failed ? errno : S_ISDIR(st.st_mode) ? EISDIR : EINVAL;
    close(fd);
    return e;
  }
  size_t size = (size_t)st.st_size, got = 0;
  char *p = malloc(size ? size : 1);
  if (!p) {
    close(fd);
    return ENOMEM;
  }
  while (got < size) {
    ssize_t r = read(fd, p + got, size - got);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    got += (size_t)r;
  }
  close(fd);
  *buf = p;
  *n = got;
  return 0;
}
