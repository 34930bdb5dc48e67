/*
 * oscore: the operating-system work behind the host modules, in plain C so it
 * can be tested and fuzzed without Lua. Every function returns 0 on success
 * or -1 with errno set, unless its comment says otherwise.
 */
#ifndef NOVAPIPE_OSCORE_H
#define NOVAPIPE_OSCORE_H

#include <stddef.h>
#include <sys/types.h>

/* The symbolic name of an errno value ("ENOENT"), or "EUNKNOWN". */
const char *os_errname(int err);

/* What a child needs at start. fd_in, fd_out and fd_err of -1 leave that
 * descriptor as the parent's; others are dup2'ed onto 0, 1 and 2. fd_extra,
 * when not -1, becomes descriptor 3. envp NULL means inherit. */
typedef struct OsSpawn {
  char *const *argv;
  char *const *envp;
  const char *cwd;
  int fd_in, fd_out, fd_err;
  int fd_extra;
} OsSpawn;

/* Starts argv[0] (searched in PATH when it has no '/') as the leader of a
 * new process group, with SIGKILL as its parent-death signal, default signal
 * dispositions and the caller's signal mask as it was before the call.
 * Uses vfork, so the cost does not grow with the parent's size; a failure
 * before exec comes back through a close-on-exec pipe. On failure returns
 * -1 with errno set and *what naming the step ("chdir", "exec"). */
int os_spawn(const OsSpawn *req, pid_t *pid, const char **what);

/* Lists this process's direct children (including adopted orphans) into a
 * malloc'ed array (NULL when there are none). Returns the count, or -1 with
 * errno set. */
int os_children(pid_t **out);

/* 1 when the environment `pid` started with holds the entry `entry`
 * ("NAME=value"), 0 when not, -1 when it cannot be read. */
int os_environ_has(pid_t pid, const char *entry);

/* The same, and with prefix set, 1 when an entry starts with `entry`. */
int os_environ_match(pid_t pid, const char *entry, int prefix);
/* What /proc/<pid>/stat says of a process: its state ('R', 'S', 'Z', ...),
 * parent, process group and start time (clock ticks since boot). */
typedef struct OsProcStat {
  char state;
  pid_t ppid, pgid;
  unsigned long long start;
} OsProcStat;

/* Parses the text of a /proc/<pid>/stat file into *st. The command name
 * (field 2, in parentheses) may hold spaces and parentheses: fields are
 * counted from the last ')'. Fails with EINVAL on malformed text. */
int os_proc_stat_parse(const char *text, OsProcStat *st);

/* Reads and parses /proc/<pid>/stat. Fails with ENOENT when there is no
 * such process (or no /proc). */
int os_proc_stat(pid_t pid, OsProcStat *st);

/* rm -rf: removes path and everything below it, not following symbolic
 * links. A path that does not exist is not an error. */
int os_rmtree(const char *path);

/* Reads a whole regular file into *buf (malloc'ed, the caller frees it) of
 * *n bytes. Returns 0, or an errno (EISDIR, EINVAL for what is not a
 * regular file, ENOMEM). */
int os_read_file(const char *path, char **buf, size_t *n);

/*
 * Writing safely. The functions below never write through a symbolic link:
 * every component of a relative path is opened with O_NOFOLLOW (openat from
 * the working directory), and so is every component of an absolute path but
 * the system's own links (owned by root, in a directory of root's that
 * others cannot write, such as /var/run). A link met fails with ELOOP, and
 * os_refused_link() names it (the prefix of the path that is the link).
 */

/* The link that made this thread's last failing call fail with ELOOP. */
const char *os_refused_link(void);

/* Opens the directory `dir` (for *at calls) without following links;
 * with create, makes missing components with `mode`. Returns the
 * descriptor (close-on-exec), or -1. */
int os_open_dir(const char *dir, int create, mode_t mode);

/* Opens path's last component with flags (O_NOFOLLOW and O_CLOEXEC added)
 * in its directory opened as os_open_dir does. Returns the descriptor. */
int os_open_file(const char *path, int flags, mode_t mode);

/* mkdir -p: creates path and its missing parents with `mode`. */
int os_mkdir_p(const char *path, mode_t mode);

/* chmod of a file or directory that is not a link, through a descriptor. */
int os_chmod(const char *path, mode_t mode);

/* Makes path a directory of the caller's with `mode`, refusing links as
 * above; its parent must exist. A missing directory is made; one of the
 * caller's is chmodded through a descriptor. One of another user's (who
 * could chmod it back) is replaced, its entries kept: a new directory
 * beside it, <name>.novapipe-own (0700, cut at 200 bytes as temporary
 * files are), receives every entry by rename(2), the old one, empty, is
 * removed, and the new one renamed to path. Interrupted at any step,
 * nothing is lost: every entry is in path or in <name>.novapipe-own (path
 * itself may be missing), and the next call finishes the move. Fails with
 * EEXIST when <name>.novapipe-own is not a directory of the caller's, and
 * with ENOTEMPTY when a name is in both; `where` (size bytes) then names
 * that path (it is "" otherwise). EXDEV: path is a mount point. */
int os_own_dir(const char *path, mode_t mode, char *where, size_t size);

/* Writes data to a new temporary file beside path (O_EXCL, owner-only),
 * fsyncs it, sets `mode`, and renames it over path, so readers see the old
 * file or the new, never half; the result is a new file owned by the
 * caller, whoever owned the old one. A link at path is refused (ELOOP). */
int os_atomic_write(const char *path, const char *data, size_t len, mode_t mode);

/* The same in steps, for what is written piece by piece: begin opens the
 * temporary file (refusing links as above), some appends, commit fsyncs,
 * sets the mode and renames, abort removes the temporary file. */
typedef struct OsWriter {
  int fd, dfd;
  mode_t mode;
  char base[256], tmp[256];
} OsWriter;
int os_write_begin(OsWriter *w, const char *path, mode_t mode);
int os_write_some(OsWriter *w, const char *data, size_t len);
int os_write_commit(OsWriter *w);
void os_write_abort(OsWriter *w);

/* Renames src to dst (a file or a directory) without ever replacing what
 * is at dst (EEXIST, a dangling link there too), and never through a
 * symbolic link in either path's directories (ELOOP, as os_open_dir). Where
 * the filesystem cannot rename without replacing, the check and the rename
 * are two steps. */
int os_move(const char *src, const char *dst);

/* Copies a regular file's bytes to dst (created or truncated), keeping the
 * source's permission bits. */
int os_copy(const char *src, const char *dst);

/* Appends len bytes to path in one write and fsyncs them; the file is
 * created with mode when it does not exist, and a file of the caller's with
 * wider permissions is narrowed to mode. A link at path is refused. */
int os_append(const char *path, const char *data, size_t len, mode_t mode);

/* glob-style match of `name` against `pattern` ('*', '?', '[..]', and
 * '**' crossing '/'). Returns 1 on a match. */
int os_match(const char *pattern, const char *name);

#endif
