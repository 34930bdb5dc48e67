/*
 * watch: a directory tree watched with inotify, its events coalesced into
 * changes of files, in plain C so it can be tested without Lua (the Lua
 * binding, novapipe.fs.watch, is in fs.c). Functions return 0 (or a
 * count) on success and -1 with errno set on failure.
 *
 * The tree under the root is watched recursively: a directory made, moved
 * in or renamed later is followed (a new one is read at once, so files
 * written into it before its watch existed are seen), one removed or moved
 * out is dropped. Symbolic links are not followed. A directory is skipped
 * when its name is built in (WATCH_BUILTIN_SKIP) or the ignore callback
 * says so; files are reported through the same callback (is_dir 0).
 *
 * A batch of events becomes one list of changes by their net effect on
 * each path: a file made and removed within the batch (an editor's
 * temporary, vim's "4913" probe) is nothing; a file written elsewhere and
 * renamed over an existing one (save by rename) is one "modified"; a file
 * whose old name is gone at the end of the batch is "renamed" from it.
 * Names editors leave behind (watch_is_temporary) are never reported.
 */
#ifndef NOVAPIPE_WATCH_H
#define NOVAPIPE_WATCH_H

#include <stddef.h>

typedef enum WatchKind {
  WATCH_MODIFIED,
  WATCH_CREATED,
  WATCH_DELETED,
  WATCH_RENAMED,
  WATCH_RESCAN, /* events were lost (IN_Q_OVERFLOW): anything may have changed */
} WatchKind;

/* One change, relative to the root. from is the old path of a rename, NULL
 * otherwise; a rescan's path is ".". */
typedef struct WatchChange {
  WatchKind kind;
  const char *path;
  const char *from;
} WatchChange;

/* The directory names skipped without asking the callback, as one
 * NULL-terminated list: version control, caches of Python's tools,
 * novapipe's own state, node_modules. */
extern const char *const WATCH_BUILTIN_SKIP[];

typedef struct WatchOptions {
  /* Returns 1 to skip rel (a directory: not watched; a file: not
   * reported), 0 to keep it, -1 to abort the call in progress (which then
   * fails with ECANCELED). NULL keeps everything. */
  int (*ignore)(void *ctx, const char *rel, int is_dir);
  /* Called before each wait, and again whenever wake_fd is readable (it
   * should empty wake_fd): non-zero makes watch_read fail with EINTR.
   * NULL, or wake_fd -1, for none. */
  int (*interrupted)(void *ctx);
  int wake_fd;
  void *ctx;
  double settle;    /* quiet seconds that end a batch (0.1 when 0) */
  double max_delay; /* a batch ends this long after its first event even
                       when events keep coming (2 when 0) */
  int no_builtin;   /* do not skip WATCH_BUILTIN_SKIP's names */
} WatchOptions;

typedef struct Watch Watch;

/* Starts watching the directory `root` (made absolute). Fails with
 * ENOTDIR when it is not a directory, ENOSPC when inotify's watch limit
 * (/proc/sys/fs/inotify/max_user_watches) is reached, EMFILE when its
 * instance limit is, ECANCELED when the ignore callback aborted. The
 * options are copied. */
int watch_open(Watch **out, const char *root, const WatchOptions *opts);

/* Waits up to `timeout` seconds (negative: without end) for a change, then
 * reads until `settle` seconds pass without an event (or `max_delay` since
 * the first), and sets *changes to the batch's changes, sorted by path
 * (valid until the next call or watch_close). Returns their number: 0 only
 * when the timeout passed. A batch whose events cancel out is not returned:
 * the wait goes on. Fails with EINTR (interrupted), ENOENT (the root was
 * removed or moved: every later call fails so), ENOSPC (inotify's watch
 * limit kept a new directory from being watched: the rest of the tree
 * still is), ECANCELED (the ignore callback aborted; the watch is then
 * unreliable). After EINTR or ENOSPC the changes read so far are kept:
 * the next call returns them once the tree is quiet. */
int watch_read(Watch *w, double timeout, const WatchChange **changes);

/* Frees the watch and its descriptor; NULL is fine. */
void watch_close(Watch *w);

/* The absolute root, and how many directories are watched. */
const char *watch_root(const Watch *w);
size_t watch_dirs(const Watch *w);

/* 1 when a file's base name is one editors and tools write and remove or
 * leave behind: "x~", ".x.swp" (and vim's other swap names), "x.tmp",
 * JetBrains' "x___jb_tmp___" and "x___jb_old___", Emacs' "#x#" and ".#x",
 * ".goutputstream-*", "x.kate-swp", ".~lock.x#". */
int watch_is_temporary(const char *name);

/* The number in a /proc/sys file (an inotify limit), or -1. */
long watch_read_limit(const char *path);

#endif
