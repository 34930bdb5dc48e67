/*
 * fs.c: novapipe.fs, what LuaFileSystem lacks: atomic writes, mkdir -p, a
 * fast recursive walk with patterns, realpath, copy, a move that replaces
 * nothing, chmod, and taking over
 * a directory of another user's, and watching a tree for changes. The work
 * is done by plain functions in oscore.c and watch.c; failures return nil,
 * msg, errname.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "host.h"
#include "oscore.h"
#include "watch.h"

/* Reads an optional octal mode: an integer, or a string such as "0600". */
static mode_t opt_mode(lua_State *L, int idx, mode_t dflt) {
  if (lua_isnoneornil(L, idx)) return dflt;
  if (lua_type(L, idx) == LUA_TSTRING) {
    char *end;
    const char *s = lua_tostring(L, idx);
    long v = strtol(s, &end, 8);
    if (*s == '\0' || *end != '\0' || v < 0 || v > 07777) luaL_argerror(L, idx, "an octal mode such as \"0600\" expected");
    return (mode_t)v;
  }
  lua_Integer v = luaL_checkinteger(L, idx);
  if (v < 0 || v > 07777) luaL_argerror(L, idx, "mode out of range");
  return (mode_t)v;
}

static int result(lua_State *L, int rc, const char *what, const char *path) {
  if (rc == 0) {
    lua_pushboolean(L, 1);
    return 1;
  }
  int e = errno;
  if (e == ELOOP && *os_refused_link()) {
    luaL_pushfail(L);
    lua_pushfstring(L, "%s '%s': refusing to write through the symbolic link '%s' (novapipe did not make it; "
                    "remove it, or point the setting at a real directory)", what, path, os_refused_link());
    lua_pushliteral(L, "ELOOP");
    return 3;
  }
  lua_pushfstring(L, "%s '%s'", what, path);
  return np_fail(L, lua_tostring(L, -1), e);
}

/* fs.atomic_write(path, data[, mode = "0600"]) -> true | nil, msg, errname */
static int l_atomic_write(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  size_t len;
  const char *data = luaL_checklstring(L, 2, &len);
  mode_t mode = opt_mode(L, 3, 0600);
  return result(L, os_atomic_write(path, data, len, mode), "write", path);
}

/* fs.read(path) -> content | nil, msg, errname: a whole file's bytes. A
 * FIFO or a socket is refused (EINVAL), not waited on for a writer: it is
 * opened without blocking, then read as a file. */
static int l_read(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) return result(L, -1, "read", path);
  struct stat st;
  int e = fstat(fd, &st) < 0 ? errno : (S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode)) ? EINVAL : 0;
  if (e) {
    close(fd);
    errno = e;
    return result(L, -1, "read", path);
  }
  int fl = fcntl(fd, F_GETFL);
  if (fl >= 0) fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
  FILE *f = fdopen(fd, "rb");
  if (!f) {
    e = errno;
    close(fd);
    errno = e;
    return result(L, -1, "read", path);
  }
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  for (;;) {
    char *p = luaL_prepbuffer(&b);
    size_t n = fread(p, 1, LUAL_BUFFERSIZE, f);
    luaL_addsize(&b, n);
    if (n < LUAL_BUFFERSIZE) break;
  }
  int failed = ferror(f);
  e = errno;
  fclose(f);
  if (failed) {
    errno = e;
    return result(L, -1, "read", path);
  }
  luaL_pushresult(&b);
  return 1;
}

/* fs.mkdir_p(path[, mode = "0700"]) -> true | nil, msg, errname */
static int l_mkdir_p(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  return result(L, os_mkdir_p(path, opt_mode(L, 2, 0700)), "mkdir", path);
}

/* fs.rmtree(path) -> true | nil, msg, errname: rm -rf, links not followed;
 * a path that does not exist is not an error. */
static int l_rmtree(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  return result(L, os_rmtree(path), "remove", path);
}

/* fs.mkdtemp([prefix = "novapipe-"]) -> path | nil, msg, errname: a new
 * directory (0700) under $TMPDIR or /tmp. */
static int l_mkdtemp(lua_State *L) {
  const char *prefix = luaL_optstring(L, 1, "novapipe-");
  if (strchr(prefix, '/')) return luaL_argerror(L, 1, "a prefix, not a path");
  const char *tmp = luaL_optstring(L, 2, NULL);
  if (!tmp) tmp = getenv("TMPDIR");
  if (!tmp || !*tmp) tmp = "/tmp";
  char path[PATH_MAX];
  if (snprintf(path, sizeof path, "%s/%sXXXXXX", tmp, prefix) >= (int)sizeof path) return np_fail(L, "mkdtemp", ENAMETOOLONG);
  if (!mkdtemp(path)) return result(L, -1, "mkdtemp", path);
  lua_pushstring(L, path);
  return 1;
}

/* fs.space(path) -> bytes free to an unprivileged user on path's file
 * system | nil, msg, errname */
static int l_space(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  struct statvfs v;
  if (statvfs(path, &v) != 0) return result(L, -1, "statvfs", path);
  lua_pushnumber(L, (lua_Number)v.f_bavail * (lua_Number)v.f_frsize);
  return 1;
}

/* fs.copy(src, dst) -> true | nil, msg, errname (keeps permission bits) */
/* fs.move(src, dst) -> true | nil, msg, errname: rename, never replacing
 * what is at dst, never through a link. */
static int l_move(lua_State *L) {
  const char *src = luaL_checkstring(L, 1);
  const char *dst = luaL_checkstring(L, 2);
  if (os_move(src, dst) == 0) {
    lua_pushboolean(L, 1);
    return 1;
  }
  int e = errno;
  if (e == ELOOP && *os_refused_link()) {
    luaL_pushfail(L);
    lua_pushfstring(L, "move '%s' to '%s': refusing to go through the symbolic link '%s' (novapipe did not make it; "
                    "remove it)", src, dst, os_refused_link());
    lua_pushliteral(L, "ELOOP");
    return 3;
  }
  lua_pushfstring(L, "move '%s' to '%s'", src, dst);
  return np_fail(L, lua_tostring(L, -1), e);
}

static int l_copy(lua_State *L) {
  const char *src = luaL_checkstring(L, 1);
  const char *dst = luaL_checkstring(L, 2);
  if (os_copy(src, dst) == 0) {
    lua_pushboolean(L, 1);
    return 1;
  }
  int e = errno;
  lua_pushfstring(L, "copy '%s' to '%s'", src, dst);
  return np_fail(L, lua_tostring(L, -1), e);
}

/* fs.chmod(path, mode) -> true | nil, msg, errname; a link is refused. */
static int l_chmod(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  luaL_checkany(L, 2);
  return result(L, os_chmod(path, opt_mode(L, 2, 0)), "chmod", path);
}

/*
 * fs.own_dir(path[, mode = "0700"]) -> true | nil, msg, errname: path, a
 * directory of the caller's at mode. Made when missing (its parent must
 * exist); one of another user's is replaced by a new directory holding
 * its entries (moved, never copied); one the caller owns is chmodded. A
 * take-over cut short is finished by the next call. Links refused.
 */
static int l_own_dir(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  mode_t mode = opt_mode(L, 2, 0700);
  char where[PATH_MAX];
  if (os_own_dir(path, mode, where, sizeof where) == 0) {
    lua_pushboolean(L, 1);
    return 1;
  }
  int e = errno;
  if (e == EEXIST && *where) {
    luaL_pushfail(L);
    lua_pushfstring(L, "take over '%s': '%s' is in the way (not a directory of yours); move it away and run again",
                    path, where);
    lua_pushliteral(L, "EEXIST");
    return 3;
  }
  if (e == ENOTEMPTY && *where) {
    const char *name = strrchr(where, '/') + 1;
    luaL_pushfail(L);
    lua_pushfstring(L, "take over '%s': '%s/%s' and '%s' both exist (a take-over was cut short); keep one, "
                    "move the other away and run again", path, path, name, where);
    lua_pushliteral(L, "ENOTEMPTY");
    return 3;
  }
  if (e == EXDEV) {
    lua_pushfstring(L, "take over '%s' (a mount point of another user's: change its owner where it is mounted)", path);
    return np_fail(L, lua_tostring(L, -1), e);
  }
  errno = e;
  return result(L, -1, "take over", path);
}

/* fs.realpath(path) -> absolute path | nil, msg, errname */
static int l_realpath(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  char out[PATH_MAX];
  if (realpath(path, out) == NULL) return result(L, -1, "realpath", path);
  lua_pushstring(L, out);
  return 1;
}

/* fs.match(pattern, path) -> boolean: '*' and '?' stay within one path
 * component, '**' crosses them, '[a-z]' and '[!x]' are classes. */
static int l_match(lua_State *L) {
  lua_pushboolean(L, os_match(luaL_checkstring(L, 1), luaL_checkstring(L, 2)));
  return 1;
}

typedef struct Walk {
  lua_State *L;
  int include, exclude; /* stack indexes of pattern lists, 0 for none */
  int out, n;
  int dirs;             /* list directories too */
  char path[PATH_MAX];
} Walk;

/* Whether a relative path (or its base name, for patterns without '/')
 * matches one of the patterns in the list at `list`. */
static int matches(Walk *w, int list, const char *rel) {
  lua_State *L = w->L;
  const char *base = strrchr(rel, '/');
  base = base ? base + 1 : rel;
  int n = (int)lua_rawlen(L, list);
  for (int i = 1; i <= n; i++) {
    lua_rawgeti(L, list, i);
    const char *pat = lua_tostring(L, -1);
    int hit = pat && os_match(pat, strchr(pat, '/') ? rel : base);
    lua_pop(L, 1);
    if (hit) return 1;
  }
  return 0;
}

/* Orders type-prefixed entries by name. */
static int cmp_names(const void *a, const void *b) {
  return strcmp(*(char *const *)a + 1, *(char *const *)b + 1);
}

/* Reads a directory's entries, each as a malloc'ed string whose first byte
 * is the d_type and the rest the name, sorted by name. Returns the count or
 * -1 with errno set. */
static int read_entries(const char *path, char ***out) {
  DIR *d = opendir(path);
  if (!d) return -1;
  size_t cap = 64, n = 0;
  char **list = malloc(cap * sizeof *list);
  struct dirent *e;
  while (list && (e = readdir(d))) {
    if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
    if (n == cap) {
      char **nl = realloc(list, (cap *= 2) * sizeof *list);
      if (!nl) break;
      list = nl;
    }
    size_t l = strlen(e->d_name);
    if (!(list[n] = malloc(l + 2))) break;
    list[n][0] = (char)e->d_type;
    memcpy(list[n] + 1, e->d_name, l + 1);
    n++;
  }
  int failed = (list == NULL) || (e != NULL);
  closedir(d);
  if (failed) {
    for (size_t i = 0; list && i < n; i++) free(list[i]);
    free(list);
    errno = ENOMEM;
    return -1;
  }
  qsort(list, n, sizeof *list, cmp_names);
  *out = list;
  return (int)n;
}

/* Walks the directory at w->path (whose first root_len bytes are the root),
 * in sorted order, without following symbolic links to directories. */
static int walk_dir(Walk *w, size_t root_len, size_t len) {
  char **list;
  int n = read_entries(w->path, &list);
  if (n < 0) return errno == EACCES ? 0 : -1;
  int rc = 0;
  for (int i = 0; i < n; i++) {
    const char *name = list[i] + 1;
    size_t nl = strlen(name);
    if (rc == 0 && len + 1 + nl >= sizeof w->path) {
      errno = ENAMETOOLONG;
      rc = -1;
    }
    if (rc == 0) {
      w->path[len] = '/';
      memcpy(w->path + len + 1, name, nl + 1);
      unsigned char t = (unsigned char)list[i][0];
      struct stat st;
      if (t == DT_UNKNOWN) t = lstat(w->path, &st) == 0 && S_ISDIR(st.st_mode) ? DT_DIR : DT_REG;
      const char *rel = w->path + root_len + 1;
      int excluded = w->exclude && matches(w, w->exclude, rel);
      if (!excluded && t == DT_DIR) {
        if (w->dirs) {
          lua_pushstring(w->L, rel);
          lua_rawseti(w->L, w->out, ++w->n);
        }
        rc = walk_dir(w, root_len, len + 1 + nl);
      } else if (!excluded && (!w->include || matches(w, w->include, rel))) {
        lua_pushstring(w->L, rel);
        lua_rawseti(w->L, w->out, ++w->n);
      }
      w->path[len] = '\0';
    }
    free(list[i]);
  }
  free(list);
  return rc;
}

/*
 * fs.walk(root[, {include = {...}, exclude = {...}, dirs = false}])
 *   -> {relative paths} | nil, msg, errname
 * Lists files under root (sorted, depth first), relative to root. A pattern
 * with a '/' matches the relative path, one without matches the base name.
 * An excluded directory is not entered. Symbolic links are not followed.
 * Raises on an unknown option key.
 */
static int l_walk(lua_State *L) {
  static const char *const known[] = {"include", "exclude", "dirs", NULL};
  const char *root = luaL_checkstring(L, 1);
  Walk w;
  memset(&w, 0, sizeof w);
  w.L = L;
  if (!lua_isnoneornil(L, 2)) {
    luaL_checktype(L, 2, LUA_TTABLE);
    np_check_options(L, 2, 2, NULL, known);
    lua_getfield(L, 2, "include");
    if (lua_istable(L, -1)) w.include = lua_gettop(L);
    else if (!lua_isnil(L, -1)) return luaL_error(L, "bad option 'include': a list of patterns expected");
    lua_getfield(L, 2, "exclude");
    if (lua_istable(L, -1)) w.exclude = lua_gettop(L);
    else if (!lua_isnil(L, -1)) return luaL_error(L, "bad option 'exclude': a list of patterns expected");
    lua_getfield(L, 2, "dirs");
    w.dirs = lua_toboolean(L, -1);
    lua_pop(L, 1);
  }
  size_t rl = strlen(root);
  while (rl > 1 && root[rl - 1] == '/') rl--;
  if (rl >= sizeof w.path) return np_fail(L, "walk", ENAMETOOLONG);
  memcpy(w.path, root, rl);
  w.path[rl] = '\0';
  struct stat st;
  if (stat(w.path, &st) < 0) return result(L, -1, "walk", root);
  if (!S_ISDIR(st.st_mode)) {
    errno = ENOTDIR;
    return result(L, -1, "walk", root);
  }
  lua_newtable(L);
  w.out = lua_gettop(L);
  if (walk_dir(&w, rl, rl) < 0) return result(L, -1, "walk", root);
  lua_settop(L, w.out);
  return 1;
}

/* fs.append(path, data[, mode = "0600"]) -> true | nil, msg, errname: one
 * write at the end of the file, then fsync; creates it with mode. */
static int l_append(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  size_t len;
  const char *data = luaL_checklstring(L, 2, &len);
  return result(L, os_append(path, data, len, opt_mode(L, 3, 0600)), "append to", path);
}

#define WRITER_MT "novapipe.fs.writer"

typedef struct {
  OsWriter w;
  int open;
  char path[PATH_MAX];
} Writer;

static int writer_abort(lua_State *L) {
  Writer *w = luaL_checkudata(L, 1, WRITER_MT);
  if (w->open) os_write_abort(&w->w);
  w->open = 0;
  return 0;
}

/* writer:write(s) -> writer | nil, msg, errname */
static int writer_write(lua_State *L) {
  Writer *w = luaL_checkudata(L, 1, WRITER_MT);
  size_t len;
  const char *s = luaL_checklstring(L, 2, &len);
  if (!w->open) return luaL_error(L, "write to a writer that is committed or aborted");
  if (os_write_some(&w->w, s, len) < 0) {
    int e = errno;
    os_write_abort(&w->w);
    w->open = 0;
    errno = e;
    return result(L, -1, "write", w->path);
  }
  lua_settop(L, 1);
  return 1;
}

/* writer:commit() -> true | nil, msg, errname: fsync, mode, rename. */
static int writer_commit(lua_State *L) {
  Writer *w = luaL_checkudata(L, 1, WRITER_MT);
  if (!w->open) return luaL_error(L, "commit of a writer that is committed or aborted");
  w->open = 0;
  return result(L, os_write_commit(&w->w), "write", w->path);
}

/* fs.writer(path[, mode = "0600"]) -> writer | nil, msg, errname: a file
 * written piece by piece that appears at path, whole, on commit (and never
 * when aborted, closed or collected before). Links refused as everywhere. */
static int l_writer(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  mode_t mode = opt_mode(L, 2, 0600);
  Writer *w = lua_newuserdatauv(L, sizeof *w, 0);
  w->open = 0;
  luaL_setmetatable(L, WRITER_MT);
  snprintf(w->path, sizeof w->path, "%s", path);
  if (os_write_begin(&w->w, path, mode) < 0) return result(L, -1, "write", path);
  w->open = 1;
  return 1;
}

static const luaL_Reg writer_methods[] = {
  {"write", writer_write},
  {"commit", writer_commit},
  {"abort", writer_abort},
  {NULL, NULL},
};

#define LOCK_MT "novapipe.fs.lock"

typedef struct {
  int fd;
} Lock;

static void lock_close(Lock *k) {
  if (k->fd >= 0) {
    close(k->fd); /* closing the only descriptor releases the flock */
    k->fd = -1;
  }
}

static int lock_release(lua_State *L) {
  lock_close(luaL_checkudata(L, 1, LOCK_MT));
  return 0;
}

/* fs.lock(path) -> lock | nil, msg, errname: an exclusive flock(2) on path
 * (created 0600), waited for. lock:unlock() releases it, and so do closing
 * it (a `<close>` variable) and the garbage collector. Locks are held for
 * moments (an audit-log append), so the wait is not interruptible. */
static int l_lock(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  Lock *k = lua_newuserdatauv(L, sizeof *k, 0);
  k->fd = -1;
  luaL_setmetatable(L, LOCK_MT);
  k->fd = os_open_file(path, O_RDWR | O_CREAT, 0600);
  if (k->fd < 0) return result(L, -1, "open lock", path);
  int rc;
  while ((rc = flock(k->fd, LOCK_EX)) < 0 && errno == EINTR) {
  }
  if (rc < 0) {
    int e = errno;
    lock_close(k);
    errno = e;
    return result(L, -1, "lock", path);
  }
  return 1;
}

static const luaL_Reg lock_methods[] = {
  {"unlock", lock_release},
  {NULL, NULL},
};


#define WATCHER_MT "novapipe.Watcher"

typedef struct {
  Watch *w;      /* NULL once closed */
  lua_State *L;  /* the state and stack index of the userdata during a */
  int self;      /* call, for the ignore function */
  int failed;    /* the ignore function raised: its error is user value 2 */
  int gone;      /* the root was removed or moved */
  int busy;      /* in watch_open or watch_read (the ignore function runs then) */
  char root[PATH_MAX];
} Watcher;

/* The watch's ignore callback: calls the Lua function (user value 1) with
 * (relpath, is_dir) in protected mode. Its error is kept for the binding
 * to raise once the C side has returned. */
static int watcher_ignore(void *ctx, const char *rel, int is_dir) {
  Watcher *u = ctx;
  lua_State *L = u->L;
  if (!lua_checkstack(L, 4)) return -1;
  lua_getiuservalue(L, u->self, 1);
  lua_pushstring(L, rel);
  lua_pushboolean(L, is_dir);
  if (lua_pcall(L, 2, 1, 0) != LUA_OK) {
    lua_setiuservalue(L, u->self, 2);
    u->failed = 1;
    return -1;
  }
  int skip = lua_toboolean(L, -1);
  lua_pop(L, 1);
  return skip;
}

/* The watch's interrupt check: the host's self-pipe is its wake_fd. */
static int watcher_interrupted(void *ctx) {
  (void)ctx;
  np_signal_drain();
  return np_interrupted != 0;
}

/* Pushes the failure of a watch call on u (errno e) and returns the count;
 * raises the ignore function's error when that is what stopped it, and
 * the interrupted error (children ended first, as the host's waits do). */
static int watcher_fail(lua_State *L, Watcher *u, int e) {
  if (e == ECANCELED && u->failed) {
    if (u->w) watch_close(u->w);
    u->w = NULL;
    lua_getiuservalue(L, u->self, 2);
    return lua_error(L);
  }
  if (e == EINTR && np_interrupted) {
    np_proc_shutdown();
    return np_raise_interrupted(L);
  }
  luaL_pushfail(L);
  if (e == ENOSPC) {
    /* The limit is fs.inotify.max_user_watches, or a user namespace's
     * lower one (a container's) */
    long max = watch_read_limit("/proc/sys/fs/inotify/max_user_watches");
    long ns = watch_read_limit("/proc/sys/user/max_inotify_watches");
    if (ns >= 0 && (max < 0 || ns < max))
      lua_pushfstring(L, "watch '%s': inotify's limit on watched directories (%d, /proc/sys/user/max_inotify_watches "
                      "in this user namespace; /proc/sys/fs/inotify/max_user_watches outside it) is reached; raise "
                      "it or ignore more directories", u->root, (int)ns);
    else
      lua_pushfstring(L, "watch '%s': inotify's limit on watched directories (%d, "
                      "/proc/sys/fs/inotify/max_user_watches) is reached; raise it "
                      "(sysctl fs.inotify.max_user_watches=524288) or ignore more directories", u->root, (int)max);
  } else if (e == EMFILE) {
    lua_pushfstring(L, "watch '%s': too many inotify instances (/proc/sys/fs/inotify/max_user_instances) "
                    "or open files", u->root);
  } else if (e == ENOENT && u->w) {
    u->gone = 1;
    lua_pushfstring(L, "watch '%s': the directory was removed or moved", u->root);
  } else {
    lua_pushfstring(L, "watch '%s': %s", u->root, strerror(e));
  }
  lua_pushstring(L, os_errname(e));
  return 3;
}

/*
 * fs.watch(root[, {ignore = fn, settle = 0.1, max_delay = 2, builtin = true}])
 *   -> Watcher | nil, msg, errname
 * Watches the directory root and the directories below it with inotify
 * (watch.h). ignore(relpath, is_dir) returning true skips a directory
 * (not watched) or a file (not reported); builtin = false stops skipping
 * the built-in names. Raises on a malformed option and, as read does, with
 * the ignore function's error.
 */
static int l_watch(lua_State *L) {
  static const char *const known[] = {"ignore", "settle", "max_delay", "builtin", NULL};
  const char *root = luaL_checkstring(L, 1);
  WatchOptions o;
  memset(&o, 0, sizeof o);
  o.wake_fd = np_signal_fd();
  o.interrupted = watcher_interrupted;
  int ignore = 0;
  if (!lua_isnoneornil(L, 2)) {
    luaL_checktype(L, 2, LUA_TTABLE);
    np_check_options(L, 2, 2, NULL, known);
    lua_getfield(L, 2, "ignore");
    if (lua_isfunction(L, -1)) ignore = lua_gettop(L);
    else if (!lua_isnil(L, -1)) return luaL_argerror(L, 2, "bad option 'ignore': a function expected");
    lua_getfield(L, 2, "settle");
    if (!lua_isnil(L, -1)) {
      if (!lua_isnumber(L, -1) || lua_tonumber(L, -1) <= 0 || lua_tonumber(L, -1) > 60)
        return luaL_argerror(L, 2, "bad option 'settle': seconds (more than 0, at most 60) expected");
      o.settle = lua_tonumber(L, -1);
    }
    lua_getfield(L, 2, "max_delay");
    if (!lua_isnil(L, -1)) {
      if (!lua_isnumber(L, -1) || lua_tonumber(L, -1) <= 0 || lua_tonumber(L, -1) > 3600)
        return luaL_argerror(L, 2, "bad option 'max_delay': seconds (more than 0, at most 3600) expected");
      o.max_delay = lua_tonumber(L, -1);
    }
    lua_getfield(L, 2, "builtin");
    if (!lua_isnil(L, -1) && !lua_isboolean(L, -1)) return luaL_argerror(L, 2, "bad option 'builtin': a boolean expected");
    o.no_builtin = lua_isboolean(L, -1) && !lua_toboolean(L, -1);
  }
  if (np_interrupted) return np_raise_interrupted(L);
  Watcher *u = lua_newuserdatauv(L, sizeof *u, 2);
  memset(u, 0, sizeof *u);
  luaL_setmetatable(L, WATCHER_MT);
  snprintf(u->root, sizeof u->root, "%s", root);
  u->L = L;
  u->self = lua_gettop(L);
  if (ignore) {
    lua_pushvalue(L, ignore);
    lua_setiuservalue(L, u->self, 1);
    o.ignore = watcher_ignore;
  }
  o.ctx = u;
  Watch *w;
  u->busy = 1;
  int rc = watch_open(&w, root, &o);
  u->busy = 0;
  if (rc < 0) return watcher_fail(L, u, errno);
  u->w = w;
  snprintf(u->root, sizeof u->root, "%s", watch_root(w));
  return 1;
}

/*
 * watcher:read([timeout]) -> {change...} | nil, msg, errname
 * Waits up to timeout seconds (none: without end) for changes, then until
 * the tree has been quiet for `settle` seconds, and returns them sorted by
 * path: {path = "rel/path", kind = "modified" | "created" | "deleted" |
 * "renamed" | "rescan", from = "old/path" (renamed)}. An empty list means
 * the timeout passed. After Ctrl-C or SIGTERM, ends every child (as the
 * host's waits do) and raises the interrupted error. Raises on a closed
 * watcher and with the ignore function's error (the watcher is closed).
 */
static int watcher_read(lua_State *L) {
  static const char *const kinds[] = {"modified", "created", "deleted", "renamed", "rescan"};
  Watcher *u = luaL_checkudata(L, 1, WATCHER_MT);
  double timeout = -1;
  if (!lua_isnoneornil(L, 2)) {
    timeout = luaL_checknumber(L, 2);
    if (!(timeout >= 0)) return luaL_argerror(L, 2, "a timeout in seconds (0 or more) expected");
  }
  if (!u->w) return luaL_error(L, "read of a closed watcher");
  if (u->busy) return luaL_error(L, "read of a watcher from its own ignore function");
  lua_settop(L, 1);
  if (np_interrupted) return watcher_fail(L, u, EINTR);
  u->L = L;
  u->self = 1;
  const WatchChange *c;
  u->busy = 1;
  int n = watch_read(u->w, timeout, &c);
  u->busy = 0;
  if (n < 0) return watcher_fail(L, u, errno);
  lua_createtable(L, n, 0);
  for (int i = 0; i < n; i++) {
    lua_createtable(L, 0, 3);
    lua_pushstring(L, c[i].path);
    lua_setfield(L, -2, "path");
    lua_pushstring(L, kinds[c[i].kind]);
    lua_setfield(L, -2, "kind");
    if (c[i].from) {
      lua_pushstring(L, c[i].from);
      lua_setfield(L, -2, "from");
    }
    lua_rawseti(L, -2, i + 1);
  }
  return 1;
}

/* __gc and __close: frees the inotify descriptor; safe twice. */
static int watcher_release(lua_State *L) {
  Watcher *u = luaL_checkudata(L, 1, WATCHER_MT);
  if (u->w) watch_close(u->w);
  u->w = NULL;
  return 0;
}

/* watcher:close() -> true; closing a closed watcher is fine. Raises when
 * called from the watcher's own ignore function. */
static int watcher_close(lua_State *L) {
  if (((Watcher *)luaL_checkudata(L, 1, WATCHER_MT))->busy)
    return luaL_error(L, "close of a watcher from its own ignore function");
  watcher_release(L);
  lua_pushboolean(L, 1);
  return 1;
}

static int watcher_tostring(lua_State *L) {
  Watcher *u = luaL_checkudata(L, 1, WATCHER_MT);
  if (!u->w) lua_pushfstring(L, "novapipe.Watcher (%s, closed)", u->root);
  else if (u->gone) lua_pushfstring(L, "novapipe.Watcher (%s, the directory is gone)", u->root);
  else
    lua_pushfstring(L, "novapipe.Watcher (%s, %d director%s watched)", u->root, (int)watch_dirs(u->w),
                    watch_dirs(u->w) == 1 ? "y" : "ies");
  return 1;
}

static const luaL_Reg watcher_methods[] = {
  {"read", watcher_read},
  {"close", watcher_close},
  {NULL, NULL},
};

static const luaL_Reg fs_funcs[] = {
  {"append", l_append},
  {"lock", l_lock},
  {"writer", l_writer},
  {"atomic_write", l_atomic_write},
  {"read", l_read},
  {"mkdir_p", l_mkdir_p},
  {"copy", l_copy},
  {"move", l_move},
  {"rmtree", l_rmtree},
  {"mkdtemp", l_mkdtemp},
  {"space", l_space},
  {"chmod", l_chmod},
  {"own_dir", l_own_dir},
  {"realpath", l_realpath},
  {"match", l_match},
  {"walk", l_walk},
  {"watch", l_watch},
  {NULL, NULL},
};

int luaopen_novapipe_fs(lua_State *L) {
  np_new_class(L, LOCK_MT, lock_methods, lock_release);
  np_new_class(L, WRITER_MT, writer_methods, writer_abort);
  np_new_class(L, WATCHER_MT, watcher_methods, watcher_release);
  np_class_tostring(L, WATCHER_MT, watcher_tostring);
  luaL_newlib(L, fs_funcs);
  return 1;
}
