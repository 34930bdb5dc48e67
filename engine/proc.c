/*
 * proc.c: novapipe.proc, child processes.
 *
 * A Process handle (userdata "novapipe.Process") owns one child started as
 * the leader of its own process group. Output reaches its sinks through one
 * loop, `pump`, which polls every live child's pipes and a self-pipe fed by
 * the signal handlers, reaps children, enforces timeouts and forwards
 * Ctrl-C. Between a pipe and its sink sits one filter point: when a filter or
 * a line callback is set, bytes go through a LineBuf and each whole line
 * through the filter before any sink sees it. A PHI filter (phiscan_lua.c)
 * is run in C: Lua is called only for the lines it may change.
 *
 * When a leader ends, what is left of its tree (members of its group, and
 * orphans adopted through PR_SET_CHILD_SUBREAPER that carry the handle's
 * NOVAPIPE_JOB tag) gets TERM, a grace period, then KILL, so no process of a
 * finished handle runs on. Strays (orphans with no tag at all) go with the
 * only handle running, else at exit; watchdog.c covers novapipe's SIGKILL.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pwd.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "host.h"
#include "linebuf.h"
#include "oscore.h"

#define PROCESS_MT "novapipe.Process"
#define CHUNK 262144
#define PIPE_SIZE 1048576
#define DEFAULT_GRACE 3.0
#define DEFAULT_MAX_LINE (1024 * 1024)
#define CLEANUP_POLL 0.01
#define NSTREAMS 3
#define S_OUT 0
#define S_ERR 1
#define S_EV 2

extern char **environ;

/* ------------------------------------------------------------------ */
/* Handles                                                              */

enum { K_INHERIT, K_NULL, K_CAPTURE, K_FILE, K_LINES, K_MERGED };
enum { P_NEW, P_RUNNING, P_REAPED, P_DONE };

typedef struct Buf {
  char *p;
  size_t len, cap;
} Buf;

struct Process;

typedef struct Stream {
  int fd;        /* our read end, -1 when none or closed */
  int kind;
  int out_fd;    /* K_FILE: the file; K_INHERIT through a filter: 1 or 2 */
  int cb_ref;    /* K_LINES: the callback */
  int lined;     /* bytes go through the LineBuf (filter or callback) */
  int filtered;  /* lines go through the process's filter */
  LineBuf lb;
  Buf cap;
  Buf out;       /* K_FILE, K_INHERIT through a filter: lines not yet written */
  double every;      /* read_every: seconds between reads while the child runs, 0: at once */
  double next_read;  /* with every: not polled before this time */
  double busy_until; /* with every: read at once until then (it filled its pipe) */
  size_t busy;       /* with every: a read of this many bytes marks the stream busy */
} Stream;

typedef struct Process {
  pid_t pid;
  int state;
  int wstatus;
  struct rusage ru;
  double t_start, t_end;
  double deadline;  /* timeout deadline, 0 for none */
  double grace;
  double kill_at;   /* when a TERM escalates to KILL */
  int stage;        /* 0 nothing sent, 1 TERM sent, 2 KILL sent */
  int timed_out;
  int cleanup;      /* end the leftovers of the tree when the leader ends */
  unsigned id;
  int filter_ref;
  void *phi;        /* the scanner of a PHI filter (novapipe.phiscan), or NULL */
  int err_ref;      /* an error raised by a filter or callback */
  Stream st[NSTREAMS]; /* stdout, stderr, and the events descriptor (fd 3) */
  struct Process *prev, *next;
} Process;

static Process *live_head = NULL;
static unsigned next_id = 1;
static char live_key;  /* registry key of the table anchoring live handles */

static void live_add(Process *p) {
  p->prev = NULL;
  p->next = live_head;
  if (live_head) live_head->prev = p;
  live_head = p;
}

static void live_remove(Process *p) {
  if (p->pid > 0) np_watchdog_remove(p->pid);
  if (p->prev) p->prev->next = p->next;
  else if (live_head == p) live_head = p->next;
  if (p->next) p->next->prev = p->prev;
  p->prev = p->next = NULL;
}

static int buf_add(Buf *b, const char *p, size_t n) {
  if (b->len + n > b->cap) {
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + n) cap *= 2;
    char *nb = realloc(b->p, cap);
    if (!nb) return -1;
    b->p = nb;
    b->cap = cap;
  }
  memcpy(b->p + b->len, p, n);
  b->len += n;
  return 0;
}

/* Appends a line and, when eol, its newline, growing once. */
static int buf_line(Buf *b, const char *p, size_t n, int eol) {
  if (n > 0 && buf_add(b, p, n)) return -1;
  if (!eol) return 0;
  if (b->len < b->cap) {
    b->p[b->len++] = '\n';
    return 0;
  }
  return buf_add(b, "\n", 1);
}

static int write_all(int fd, const char *p, size_t n) {
  while (n > 0) {
    ssize_t w = write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN) {
        struct pollfd pfd = {fd, POLLOUT, 0};
        poll(&pfd, 1, 100);
        continue;
      }
      return -1;
    }
    p += w;
    n -= (size_t)w;
  }
  return 0;
}

/* The tag every child's environment carries, so orphans can be traced. */
static void job_tag(const Process *p, char *out, size_t size) {
  snprintf(out, size, "NOVAPIPE_JOB=%d.%u", (int)getpid(), p->id);
}

/* Whether our child pid is a stray: adopted (not in novapipe's own group,
 * where io.popen's children stay), not the watchdog, alive, and carrying no
 * handle's NOVAPIPE_JOB tag at all. */
static int is_stray(pid_t pid) {
  if (pid == np_watchdog_pid()) return 0;
  pid_t pg = getpgid(pid);
  if (pg < 0 || pg == getpgrp()) return 0;
  return os_environ_match(pid, "NOVAPIPE_JOB=", 1) == 0;
}

/* Lists adopted orphans of p's tree (our children that are not live leaders
 * and carry p's tag) into pids[]; returns the count. */
static int tree_orphans(const Process *p, pid_t *pids, int max) {
  pid_t *kids;
  int n = os_children(&kids);
  if (n <= 0) return 0;
  char tag[64];
  job_tag(p, tag, sizeof tag);
  /* A stray (an orphan without any handle's tag: it cleared or replaced
   * its environment) cannot be traced to its handle; it is counted in the
   * tree of the only handle alive, else left for np_proc_shutdown. */
  int alone = 1;
  for (Process *q = live_head; q; q = q->next)
    if (q != p && q->state == P_RUNNING) alone = 0;
  int found = 0;
  for (int i = 0; i < n && found < max; i++) {
    int known = 0;
    for (Process *q = live_head; q; q = q->next)
      if (q->pid == kids[i] && q->state == P_RUNNING) known = 1;
    if (known) continue;
    if (os_environ_has(kids[i], tag) == 1 || (alone && is_stray(kids[i]))) pids[found++] = kids[i];
  }
  free(kids);
  return found;
}


/* Reaps adopted orphans that have ended: zombies among our children that
 * are no live handle's leader. Only those outside novapipe's own process
 * group, which every child of a handle leaves: a child that io.popen or
 * os.execute started stays in it and keeps its status for pclose. */
static void reap_orphans(void) {
  pid_t *kids;
  int n = os_children(&kids);
  if (n <= 0) return;
  pid_t own_group = getpgrp();
  for (int i = 0; i < n; i++) {
    int known = 0;
    for (Process *q = live_head; q && !known; q = q->next)
      known = (q->pid == kids[i] && q->state == P_RUNNING);
    if (known) continue;
    OsProcStat st;
    if (os_proc_stat(kids[i], &st) < 0) continue;
    if (st.state == 'Z' && st.pgid != own_group) waitpid(kids[i], NULL, WNOHANG);
  }
  free(kids);
}

/* Sends sig to p's process group and to its adopted orphans (and their
 * groups, when they lead one). Returns 1 when anything of the tree exists. */
static int signal_tree(Process *p, int sig) {
  int alive = 0;
  if (p->pid > 0 && kill(-p->pid, sig) == 0) alive = 1;
  pid_t orphans[64];
  int n = tree_orphans(p, orphans, 64);
  for (int i = 0; i < n; i++) {
    if (getpgid(orphans[i]) == orphans[i]) kill(-orphans[i], sig);
    kill(orphans[i], sig);
    alive = 1;
  }
  return alive;
}

/* Starts ending p's tree: TERM now, KILL when the grace period ends. */
static void escalate(Process *p, double now) {
  if (p->stage == 0) {
    signal_tree(p, SIGTERM);
    signal_tree(p, SIGCONT);
    p->stage = 1;
    p->kill_at = now + p->grace;
  }
}

static void kill_now(Process *p) {
  signal_tree(p, SIGKILL);
  p->stage = 2;
}

/* Applies the timeout and the TERM-to-KILL escalation at time `now`. */
static void check_deadlines(Process *p, double now) {
  if (p->state == P_RUNNING && p->deadline > 0 && now >= p->deadline && !p->timed_out) {
    p->timed_out = 1;
    escalate(p, now);
  }
  if (p->stage == 1 && now >= p->kill_at) kill_now(p);
}

/* ------------------------------------------------------------------ */
/* The filter point                                                     */

typedef struct EmitCtx {
  lua_State *L;
  Process *p;
  Stream *s;
} EmitCtx;

/* Records the first error raised by a filter or callback (on top of the
 * stack) and starts ending the tree: the error is raised from wait(). */
static void callback_failed(EmitCtx *c) {
  if (c->p->err_ref == LUA_NOREF) {
    c->p->err_ref = luaL_ref(c->L, LUA_REGISTRYINDEX);
  } else {
    lua_pop(c->L, 1);
  }
  escalate(c->p, np_now());
}

/* Delivers bytes to a stream's sink. `eol` appends a newline for sinks that
 * take bytes. Returns 0, or -1 when the sink failed. */
static int deliver(EmitCtx *c, const char *data, size_t n, int eol) {
  Stream *s = c->s;
  switch (s->kind) {
    case K_CAPTURE:
      if (buf_add(&s->cap, data, n) || (eol && buf_add(&s->cap, "\n", 1))) return -1;
      return 0;
    case K_FILE:
    case K_INHERIT:
      if (s->lined) {
        /* lines are gathered and written a chunk at a time (stream_flush) */
        return buf_line(&s->out, data, n, eol);
      }
      if (write_all(s->out_fd, data, n) < 0) return -1;
      if (eol && write_all(s->out_fd, "\n", 1) < 0) return -1;
      return 0;
    case K_LINES: {
      if (c->p->err_ref != LUA_NOREF) return 0;
      lua_rawgeti(c->L, LUA_REGISTRYINDEX, s->cb_ref);
      lua_pushlstring(c->L, data, n);
      if (lua_pcall(c->L, 1, 0, 0) != LUA_OK) callback_failed(c);
      return 0;
    }
    default:
      return 0;
  }
}

/* linebuf_emit: one whole line (or piece of an overlong one) through the
 * filter, then to the sink. */
static int emit_line(void *ctx, const char *line, size_t len, int eol) {
  EmitCtx *c = ctx;
  /* After a filter's (or callback's) error the tree is being ended: what
   * it still prints is withheld, never passed on unfiltered. */
  if (c->s->filtered && c->p->err_ref != LUA_NOREF) return 0;
  if (c->s->filtered) {
    /* A PHI filter masks in C what needs no Lua policy. */
    const char *masked;
    size_t ml;
    if (c->p->phi && np_phi_mask(c->p->phi, line, len, &masked, &ml)) return deliver(c, masked, ml, eol);
    lua_State *L = c->L;
    lua_rawgeti(L, LUA_REGISTRYINDEX, c->p->filter_ref);
    lua_pushlstring(L, line, len);
    if (lua_pcall(L, 1, 1, 0) != LUA_OK) {
      callback_failed(c);
      return 0;
    }
    if (lua_type(L, -1) == LUA_TSTRING) {
      size_t fl;
      const char *f = lua_tolstring(L, -1, &fl);
      int rc = deliver(c, f, fl, eol);
      lua_pop(L, 1);
      return rc;
    }
    int drop = !lua_toboolean(L, -1);
    lua_pop(L, 1);
    if (drop) return 0;
  }
  return deliver(c, line, len, eol);
}

/* Writes the lines gathered for a file or inherited sink. Returns 0, or -1
 * when the write failed (the lines are dropped). */
static int stream_flush(Stream *s) {
  if (s->out.len == 0) return 0;
  int rc = write_all(s->out_fd, s->out.p, s->out.len) < 0 ? -1 : 0;
  s->out.len = 0;
  return rc;
}

/* A read of a stream whose lines a PHI filter masks into a file or the
 * terminal, with no partial line pending: each whole line is masked in C
 * where it lies, a run of lines left as they are copied at once; a line
 * the Lua policy must see goes through emit_line, and what follows the
 * last newline (or a line too long, or what comes after a filter's error)
 * through the LineBuf as usual. Output is exactly emit_line's. Called
 * with no partial line pending. */
static void phi_chunk(EmitCtx *c, const char *data, size_t n) {
  Stream *s = c->s;
  size_t at = 0, span = 0;
  while (at < n && c->p->err_ref == LUA_NOREF) {
    const char *nl = memchr(data + at, '\n', n - at);
    if (!nl) break;
    size_t len = (size_t)(nl - (data + at));
    if (len > s->lb.max) break;
    const char *m;
    size_t ml;
    int done = np_phi_mask(c->p->phi, data + at, len, &m, &ml);
    if (done && m == data + at) {
      at += len + 1; /* as it is: the run grows */
      continue;
    }
    if (at > span) buf_add(&s->out, data + span, at - span);
    if (done) buf_line(&s->out, m, ml, 1);
    else emit_line(c, data + at, len, 1);
    at += len + 1;
    span = at;
  }
  if (at > span) buf_add(&s->out, data + span, at - span);
  if (at < n) linebuf_feed(&s->lb, data + at, n - at, emit_line, c);
}

static void stream_close(Stream *s) {
  if (s->fd >= 0) close(s->fd);
  s->fd = -1;
}

static void streams_close(Process *p) {
  for (int i = 0; i < NSTREAMS; i++) stream_close(&p->st[i]);
}

/* Reads what a stream's pipe holds (up to a few chunks) and hands it on.
 * At end of file flushes a partial line and closes the pipe. Returns the
 * bytes read. */
static size_t stream_read(lua_State *L, Process *p, Stream *s) {
  static char chunk[CHUNK];
  EmitCtx c = {L, p, s};
  size_t got = 0;
  for (int round = 0; round < 8 && s->fd >= 0; round++) {
    ssize_t r = read(s->fd, chunk, sizeof chunk);
    if (r < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN) return got;
      r = 0;
    }
    if (r == 0) {
      if (s->lined) linebuf_finish(&s->lb, emit_line, &c);
      stream_flush(s);
      stream_close(s);
      return got;
    }
    got += (size_t)r;
    if (s->lined) {
      if (p->phi && s->filtered && (s->kind == K_FILE || s->kind == K_INHERIT)) {
        /* the line the last read left unfinished ends first, as usual */
        size_t off = 0;
        if (s->lb.len > 0) {
          const char *nl = memchr(chunk, '\n', (size_t)r);
          off = nl ? (size_t)(nl - chunk) + 1 : (size_t)r;
          linebuf_feed(&s->lb, chunk, off, emit_line, &c);
        }
        if (off < (size_t)r) phi_chunk(&c, chunk + off, (size_t)r - off);
      } else {
        linebuf_feed(&s->lb, chunk, (size_t)r, emit_line, &c);
      }
      stream_flush(s);
    } else {
      deliver(&c, chunk, (size_t)r, 0);
    }
  }
  return got;
}

/* Reads a read_every stream and sets when it is read next: after a read
 * that took half its pipe (or a chunk) it is busy, read at once for the
 * next interval, so a child that prints fast waits on no full pipe for
 * more than an interval at a time. */
static void lazy_read(lua_State *L, Process *p, Stream *s) {
  size_t got = stream_read(L, p, s);
  double t = np_now();
  if (got >= s->busy) s->busy_until = t + s->every;
  s->next_read = t < s->busy_until ? 0 : t + s->every;
}

/* ------------------------------------------------------------------ */
/* The loop                                                             */

/* Reaps p when its leader has ended. */
static void reap(Process *p) {
  int st;
  struct rusage ru;
  pid_t r = wait4(p->pid, &st, WNOHANG, &ru);
  if (r == p->pid) {
    p->wstatus = st;
    p->ru = ru;
    p->t_end = np_now();
    p->state = P_REAPED;
  }
}

/* Moves a reaped p towards done: ends what is left of its tree, then drains
 * and closes its pipes. */
static void finish(lua_State *L, Process *p, double now) {
  if (p->cleanup) {
    int alive = (kill(-p->pid, 0) == 0);
    pid_t orphans[64];
    int n = tree_orphans(p, orphans, 64);
    if (n > 0 || alive) {
      reap_orphans();
      if (p->stage == 0) escalate(p, now);
      else signal_tree(p, p->stage == 2 ? SIGKILL : SIGTERM);
      return;
    }
  }
  /* Every writer we know of has ended: read what is left, then close. */
  for (int i = 0; i < NSTREAMS; i++) {
    Stream *s = &p->st[i];
    if (s->fd >= 0) {
      int fl = fcntl(s->fd, F_GETFL);
      if (fl >= 0) fcntl(s->fd, F_SETFL, fl | O_NONBLOCK);
      while (s->fd >= 0) {
        int before = s->fd;
        stream_read(L, p, s);
        if (s->fd == before) {
          /* EAGAIN: a writer outside the tree holds it; stop here. */
          if (s->lined) {
            EmitCtx c = {L, p, s};
            linebuf_finish(&s->lb, emit_line, &c);
            stream_flush(s);
          }
          stream_close(s);
        }
      }
    }
  }
  p->state = P_DONE;
  live_remove(p);
  lua_rawgetp(L, LUA_REGISTRYINDEX, &live_key);
  lua_pushnil(L);
  lua_rawsetp(L, -2, p);
  lua_pop(L, 1);
}

typedef int (*until_fn)(void *ctx);

/* Runs the loop until `until(ctx)` is true (returns 1) or `timeout` seconds
 * pass (returns 0; a negative timeout waits without end). Raises the
 * interrupted error once every child has ended after SIGINT or SIGTERM. */
static int pump(lua_State *L, until_fn until, void *ctx, double timeout) {
  double start = np_now();
  int handled = 0;
  struct pollfd *pfds = NULL;
  Stream **owners = NULL;
  Process **procs = NULL;
  size_t cap = 0;
  int result = 0;
  for (;;) {
    double now = np_now();
    if (np_interrupted) {
      if (!handled)
        for (Process *p = live_head; p; p = p->next) escalate(p, now);
      if (np_interrupt_count() > 1)
        for (Process *p = live_head; p; p = p->next)
          if (p->stage < 2) kill_now(p);
      handled = 1;
      if (live_head == NULL) break;
    } else if (until(ctx)) {
      result = 1;
      break;
    }
    if (!np_interrupted && timeout >= 0 && now - start >= timeout) break;

    size_t n = 1;
    double wake = timeout >= 0 && !np_interrupted ? start + timeout : -1;
    for (Process *p = live_head; p; p = p->next) {
      /* (its end is noticed here too: with its pipes left out of the poll
       * only SIGCHLD's byte would wake the loop, and another reader of the
       * signal pipe, fs.watch's, may have taken it) */
      if (p->state == P_RUNNING) reap(p);
      check_deadlines(p, now);
      n += NSTREAMS;
      if (p->deadline > 0 && p->state == P_RUNNING && (wake < 0 || p->deadline < wake)) wake = p->deadline;
      if (p->stage == 1 && (wake < 0 || p->kill_at < wake)) wake = p->kill_at;
      if (p->state == P_REAPED && (wake < 0 || now + CLEANUP_POLL < wake)) wake = now + CLEANUP_POLL;
    }
    if (n > cap) {
      cap = n * 2;
      struct pollfd *np_ = realloc(pfds, cap * sizeof *pfds);
      if (np_) pfds = np_;
      Stream **no = realloc(owners, cap * sizeof *owners);
      if (no) owners = no;
      Process **npr = realloc(procs, cap * sizeof *procs);
      if (npr) procs = npr;
      if (!np_ || !no || !npr) {
        free(pfds);
        free(owners);
        free(procs);
        return luaL_error(L, "out of memory in the process loop");
      }
    }
    size_t k = 0;
    pfds[k].fd = np_signal_fd();
    pfds[k].events = POLLIN;
    owners[k] = NULL;
    procs[k++] = NULL;
    for (Process *p = live_head; p; p = p->next) {
      for (int i = 0; i < NSTREAMS; i++) {
        Stream *s = &p->st[i];
        if (s->fd < 0) continue;
        /* read_every: left out of the poll until its time (a child that
         * writes a little often then wakes no one); once the child has
         * ended, drained as every stream is */
        if (s->every > 0 && p->state == P_RUNNING && now < s->next_read) {
          if (wake < 0 || s->next_read < wake) wake = s->next_read;
          continue;
        }
        pfds[k].fd = s->fd;
        pfds[k].events = POLLIN;
        owners[k] = &p->st[i];
        procs[k++] = p;
      }
    }
    int ms = -1;
    if (wake >= 0) {
      double d = wake - now;
      ms = d <= 0 ? 0 : (int)(d * 1000.0) + 1;
    }
    int rc = poll(pfds, k, ms);
    if (rc < 0 && errno != EINTR) break;
    if (rc > 0 && (pfds[0].revents & POLLIN)) {
      np_signal_drain();
      reap_orphans();
    }
    /* Read first, so a child that wrote and ended leaves nothing behind. */
    for (size_t i = 1; rc > 0 && i < k; i++) {
      if (!(pfds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      Process *p = procs[i];
      Stream *s = owners[i];
      if (s == &p->st[S_EV]) {
        /* what the child wrote before an event is handed on before it */
        for (int j = 0; j < S_EV; j++)
          if (p->st[j].every > 0 && p->st[j].fd >= 0 && p->err_ref == LUA_NOREF) lazy_read(L, p, &p->st[j]);
      }
      if (s->every > 0) lazy_read(L, p, s);
      else stream_read(L, p, s);
    }
    now = np_now();
    for (Process *p = live_head, *next; p; p = next) {
      next = p->next;
      if (p->state == P_RUNNING) reap(p);
      if (p->state == P_REAPED) finish(L, p, now);
    }
  }
  free(pfds);
  free(owners);
  free(procs);
  if (np_interrupted) return np_raise_interrupted(L);
  return result;
}

/* ------------------------------------------------------------------ */
/* Spawning                                                             */

static Process *check_process(lua_State *L, int idx) {
  return (Process *)luaL_checkudata(L, idx, PROCESS_MT);
}

static void stream_init(Stream *s) {
  memset(s, 0, sizeof *s);
  s->fd = -1;
  s->out_fd = -1;
  s->cb_ref = LUA_NOREF;
  s->kind = K_INHERIT;
}

/* Reads a stream option at index idx into s: nil/"inherit", "null",
 * "capture", a function (line callback), {file = path, append = bool}, or
 * for stderr "stdout". Raises on a wrong value. */
static void parse_stream(lua_State *L, int idx, Stream *s, const char *name, int is_err) {
  switch (lua_type(L, idx)) {
    case LUA_TNIL:
      s->kind = K_INHERIT;
      return;
    case LUA_TFUNCTION:
      s->kind = K_LINES;
      lua_pushvalue(L, idx);
      s->cb_ref = luaL_ref(L, LUA_REGISTRYINDEX);
      return;
    case LUA_TSTRING: {
      const char *v = lua_tostring(L, idx);
      if (strcmp(v, "inherit") == 0) s->kind = K_INHERIT;
      else if (strcmp(v, "null") == 0) s->kind = K_NULL;
      else if (strcmp(v, "capture") == 0) s->kind = K_CAPTURE;
      else if (is_err && strcmp(v, "stdout") == 0) s->kind = K_MERGED;
      else luaL_error(L, "bad option '%s': '%s' is not inherit, null, capture%s, a function or {file=...}",
                      name, v, is_err ? ", stdout" : "");
      return;
    }
    case LUA_TTABLE: {
      lua_getfield(L, idx, "file");
      if (lua_type(L, -1) != LUA_TSTRING) luaL_error(L, "bad option '%s': a table needs file = path", name);
      lua_getfield(L, idx, "append");
      int append = lua_toboolean(L, -1);
      const char *path = lua_tostring(L, -2);
      int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC | (append ? O_APPEND : O_TRUNC), 0600);
      if (fd < 0) {
        int e = errno;
        lua_pop(L, 2);
        s->out_fd = -1;
        s->kind = K_FILE;
        lua_pushfstring(L, "open '%s'", path);
        lua_pushinteger(L, e); /* reported by spawn as an environment failure */
        return;
      }
      lua_pop(L, 2);
      s->kind = K_FILE;
      s->out_fd = fd;
      return;
    }
    default:
      luaL_error(L, "bad option '%s': %s is not a valid value", name, luaL_typename(L, idx));
  }
}

static void stream_release(lua_State *L, Stream *s) {
  stream_close(s);
  if (s->kind == K_FILE && s->out_fd >= 0) close(s->out_fd);
  s->out_fd = -1;
  if (L && s->cb_ref != LUA_NOREF) luaL_unref(L, LUA_REGISTRYINDEX, s->cb_ref);
  s->cb_ref = LUA_NOREF;
  linebuf_free(&s->lb);
  free(s->cap.p);
  s->cap.p = NULL;
  s->cap.len = s->cap.cap = 0;
  free(s->out.p);
  s->out.p = NULL;
  s->out.len = s->out.cap = 0;
}

static void streams_release(lua_State *L, Process *p) {
  for (int i = 0; i < NSTREAMS; i++) stream_release(L, &p->st[i]);
}

static double opt_number(lua_State *L, int opts, const char *key, double dflt) {
  lua_getfield(L, opts, key);
  double v = dflt;
  if (!lua_isnil(L, -1)) {
    if (!lua_isnumber(L, -1)) luaL_error(L, "bad option '%s': a number expected, got %s", key, luaL_typename(L, -1));
    v = lua_tonumber(L, -1);
  }
  lua_pop(L, 1);
  return v;
}

/* Builds the child's environment as a Lua table of "K=V" strings at the top
 * of the stack and returns a NULL-terminated array anchored in a userdata
 * pushed above it. */
static char **build_env(lua_State *L, int opts, const Process *p) {
  lua_getfield(L, opts, "clear_env");
  int clear = lua_toboolean(L, -1);
  lua_pop(L, 1);
  lua_getfield(L, opts, "env");
  int env = lua_gettop(L);
  if (!lua_isnil(L, env)) luaL_checktype(L, env, LUA_TTABLE);
  lua_newtable(L);
  int list = lua_gettop(L);
  int n = 0;
  if (!clear) {
    for (char **e = environ; *e; e++) {
      const char *eq = strchr(*e, '=');
      if (!eq || strncmp(*e, "NOVAPIPE_JOB=", 13) == 0) continue;
      if (!lua_isnil(L, env)) {
        lua_pushlstring(L, *e, (size_t)(eq - *e));
        int t = lua_gettable(L, env);
        lua_pop(L, 1);
        if (t != LUA_TNIL) continue; /* overridden or removed */
      }
      lua_pushstring(L, *e);
      lua_rawseti(L, list, ++n);
    }
  }
  if (!lua_isnil(L, env)) {
    lua_pushnil(L);
    while (lua_next(L, env)) {
      if (lua_type(L, -2) != LUA_TSTRING)
        luaL_error(L, "bad option 'env': keys must be strings");
      if (lua_type(L, -1) == LUA_TSTRING || lua_type(L, -1) == LUA_TNUMBER) {
        lua_pushfstring(L, "%s=%s", lua_tostring(L, -2), lua_tostring(L, -1));
        lua_rawseti(L, list, ++n);
      } else if (lua_toboolean(L, -1)) {
        luaL_error(L, "bad option 'env': value of '%s' must be a string or false", lua_tostring(L, -2));
      }
      lua_pop(L, 1);
    }
  }
  char tag[64];
  job_tag(p, tag, sizeof tag);
  lua_pushstring(L, tag);
  lua_rawseti(L, list, ++n);
  char **envp = lua_newuserdatauv(L, sizeof(char *) * (size_t)(n + 1), 0);
  for (int i = 1; i <= n; i++) {
    lua_rawgeti(L, list, i);
    envp[i - 1] = (char *)lua_tostring(L, -1);
    lua_pop(L, 1); /* still anchored by `list` */
  }
  envp[n] = NULL;
  return envp;
}

static const char *const spawn_options[] = {"cwd", "env", "clear_env", "stdin", "stdout", "stderr", "filter",
                                            "events", "timeout", "grace", "cleanup", "max_line",
                                            "read_every", NULL};
static const char *const file_options[] = {"file", "append", NULL};
static const char *const stdin_options[] = {"file", NULL};

/* Raises on an unknown key in spawn's options (at 2) or in a {file = ...}
 * table of stdin, stdout or stderr, before anything is acquired. */
static void check_spawn_options(lua_State *L) {
  np_check_options(L, 2, 2, NULL, spawn_options);
  static const char *const nested[] = {"stdin", "stdout", "stderr"};
  for (int i = 0; i < 3; i++) {
    if (lua_getfield(L, 2, nested[i]) == LUA_TTABLE)
      np_check_options(L, -1, 2, nested[i], i == 0 ? stdin_options : file_options);
    lua_pop(L, 1);
  }
}

static int close_fd(int fd) {
  if (fd >= 0) close(fd);
  return -1;
}

/*
 * proc.spawn(argv, opts) -> Process | nil, message, errname
 * argv: a non-empty list of strings (argv[1] searched in PATH).
 * opts: cwd, env (table; false removes), clear_env, stdin ("inherit",
 * "null", {file=}), stdout and stderr (see parse_stream), filter (function
 * line -> string|false, or a novapipe.phiscan filter, whose scanner passes
 * in C the lines masking leaves as they are), events (function, lines from the child's fd 3),
 * timeout, grace, cleanup (default true), max_line, read_every (seconds
 * between reads of stdout and stderr while the child runs; events are read
 * as they come). Raises on a malformed
 * argument or an unknown option key; returns nil, msg, errname when the
 * program cannot be started.
 */
static int l_spawn(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  if (lua_isnoneornil(L, 2)) {
    lua_settop(L, 1);
    lua_newtable(L);
  }
  luaL_checktype(L, 2, LUA_TTABLE);
  check_spawn_options(L);
  if (np_interrupted) return np_raise_interrupted(L);
  lua_settop(L, 2);
  int argc = (int)luaL_len(L, 1);
  if (argc < 1) return luaL_argerror(L, 1, "argv must hold the program to run");
  char **argv = lua_newuserdatauv(L, sizeof(char *) * (size_t)(argc + 1), 0);
  for (int i = 1; i <= argc; i++) {
    lua_rawgeti(L, 1, i);
    if (lua_type(L, -1) != LUA_TSTRING && lua_type(L, -1) != LUA_TNUMBER)
      return luaL_error(L, "bad argument #1 to 'spawn' (argv[%d] is a %s, a string expected)", i, luaL_typename(L, -1));
    lua_pushvalue(L, -1);
    lua_rawseti(L, 1, i); /* keep the converted string anchored */
    argv[i - 1] = (char *)lua_tostring(L, -1);
    lua_pop(L, 1);
  }
  argv[argc] = NULL;

  /* The handle exists, closed, before any resource is acquired. */
  Process *p = lua_newuserdatauv(L, sizeof(Process), 0);
  memset(p, 0, sizeof *p);
  p->state = P_NEW;
  p->filter_ref = p->err_ref = LUA_NOREF;
  for (int i = 0; i < NSTREAMS; i++) stream_init(&p->st[i]);
  luaL_setmetatable(L, PROCESS_MT);
  int ud = lua_gettop(L);
  p->id = next_id++;

  const char *cwd = NULL;
  lua_getfield(L, 2, "cwd");
  if (!lua_isnil(L, -1)) cwd = luaL_checkstring(L, -1);
  p->grace = opt_number(L, 2, "grace", DEFAULT_GRACE);
  double timeout = opt_number(L, 2, "timeout", 0);
  size_t max_line = (size_t)opt_number(L, 2, "max_line", DEFAULT_MAX_LINE);
  if (max_line < 1) max_line = 1;
  double every = opt_number(L, 2, "read_every", 0);
  if (!(every >= 0 && every <= 3600))
    return luaL_error(L, "bad option 'read_every': seconds from 0 to 3600 expected");
  lua_getfield(L, 2, "cleanup");
  p->cleanup = lua_isnil(L, -1) ? 1 : lua_toboolean(L, -1);
  lua_pop(L, 1);
  lua_getfield(L, 2, "filter");
  if (!lua_isnil(L, -1)) {
    p->phi = np_phi_filter(L, -1);
    if (!p->phi && !lua_isfunction(L, -1))
      return luaL_error(L, "bad option 'filter': a function or a PHI filter (novapipe.phiscan) expected, got %s",
                        luaL_typename(L, -1));
    p->filter_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  } else {
    lua_pop(L, 1);
  }
  char **envp = build_env(L, 2, p);

  /* stdin */
  int fd_in = -1;
  lua_getfield(L, 2, "stdin");
  if (lua_type(L, -1) == LUA_TSTRING && strcmp(lua_tostring(L, -1), "null") == 0) {
    fd_in = open("/dev/null", O_RDONLY | O_CLOEXEC);
  } else if (lua_istable(L, -1)) {
    lua_getfield(L, -1, "file");
    const char *path = luaL_checkstring(L, -1);
    fd_in = open(path, O_RDONLY | O_CLOEXEC);
    if (fd_in < 0) {
      int e = errno;
      lua_pushfstring(L, "open '%s'", path);
      return np_fail(L, lua_tostring(L, -1), e);
    }
  } else if (!lua_isnil(L, -1) && !(lua_type(L, -1) == LUA_TSTRING && strcmp(lua_tostring(L, -1), "inherit") == 0)) {
    return luaL_error(L, "bad option 'stdin': inherit, null or {file=...} expected");
  }

  /* stdout, stderr, and the events descriptor */
  static const char *const names[NSTREAMS] = {"stdout", "stderr", "events"};
  int child_fd[NSTREAMS] = {-1, -1, -1};
  int status = 0;
  for (int i = 0; i < NSTREAMS; i++) {
    lua_getfield(L, 2, names[i]);
    int top = lua_gettop(L);
    if (i == S_EV) {
      if (!lua_isnil(L, top) && !lua_isfunction(L, top))
        return luaL_error(L, "bad option 'events': a function (called with each line) expected");
      if (lua_isnil(L, top)) p->st[i].kind = K_NULL;
      else parse_stream(L, top, &p->st[i], names[i], 0);
      lua_pop(L, 1);
      continue;
    }
    parse_stream(L, top, &p->st[i], names[i], i == S_ERR);
    if (lua_gettop(L) > top) { /* an open failure: message and errno pushed */
      int e = (int)lua_tointeger(L, -1);
      const char *what = lua_tostring(L, -2);
      close_fd(fd_in);
      streams_release(L, p);
      return np_fail(L, what, e);
    }
    lua_pop(L, 1);
  }
  for (int i = 0; i < NSTREAMS && status == 0; i++) {
    Stream *s = &p->st[i];
    if (s->kind == K_MERGED) {
      child_fd[i] = child_fd[S_OUT] >= 0 ? child_fd[S_OUT] : STDOUT_FILENO;
      continue;
    }
    if (s->kind == K_INHERIT && p->filter_ref == LUA_NOREF) continue;
    if (s->kind == K_NULL) {
      if (i == S_EV) continue; /* no events descriptor at all */
      child_fd[i] = open("/dev/null", O_WRONLY | O_CLOEXEC);
      if (child_fd[i] < 0) status = -1;
      continue;
    }
    /* Everything else reads through a pipe and the filter point. */
    int pfd[2];
    if (pipe2(pfd, O_CLOEXEC) < 0) {
      status = -1;
      break;
    }
    fcntl(pfd[0], F_SETFL, O_NONBLOCK);
    /* A larger pipe (1 MiB, the default limit for a user) lets a child
     * that prints fast write on while novapipe masks: fewer wake-ups and
     * reads. Where the limit is lower, the default (64 KiB) stays. */
    fcntl(pfd[0], F_SETPIPE_SZ, PIPE_SIZE);
    int room = fcntl(pfd[0], F_GETPIPE_SZ);
    s->fd = pfd[0];
    child_fd[i] = pfd[1];
    if (s->kind == K_INHERIT) s->out_fd = i + 1;
    /* Events are the host's own protocol: lines, but not filtered. */
    s->filtered = (i != S_EV && p->filter_ref != LUA_NOREF);
    s->lined = (s->kind == K_LINES || s->filtered);
    if (i != S_EV && every > 0) {
      s->every = every;
      s->next_read = np_now() + every;
      /* half the pipe: writes of a little over a page fill each page of it
       * half (a pipe of 64 KiB where the user's limit left no more) */
      s->busy = room > 0 && (size_t)room / 2 < CHUNK ? (size_t)room / 2 : CHUNK;
    }
    linebuf_init(&s->lb, max_line);
  }
  /* Closes our copies of the child's ends (never our own stdout). */
  int e = errno;
  for (int i = 0; i < NSTREAMS; i++) {
    int fd = child_fd[i];
    if (fd < 0 || fd == STDOUT_FILENO || (i == S_ERR && fd == child_fd[S_OUT])) continue;
    if (status < 0) close(fd);
  }
  if (status < 0) {
    close_fd(fd_in);
    streams_release(L, p);
    return np_fail(L, "spawn: pipe", e);
  }

  OsSpawn req = {argv, envp, cwd, fd_in, child_fd[S_OUT], child_fd[S_ERR], child_fd[S_EV]};
  const char *what = "spawn";
  pid_t pid;
  int rc = os_spawn(&req, &pid, &what);
  int spawn_err = errno;
  close_fd(fd_in);
  for (int i = 0; i < NSTREAMS; i++) {
    int fd = child_fd[i];
    if (fd < 0 || fd == STDOUT_FILENO || (i == S_ERR && fd == child_fd[S_OUT])) continue;
    close(fd);
  }
  if (rc < 0) {
    streams_release(L, p);
    if (p->filter_ref != LUA_NOREF) luaL_unref(L, LUA_REGISTRYINDEX, p->filter_ref);
    p->filter_ref = LUA_NOREF;
    if (strcmp(what, "chdir") == 0) {
      lua_pushfstring(L, "spawn '%s': cannot enter '%s'", argv[0], cwd ? cwd : ".");
    } else {
      lua_pushfstring(L, "spawn '%s'", argv[0]);
    }
    return np_fail(L, lua_tostring(L, -1), spawn_err);
  }
  setpgid(pid, pid);
  p->pid = pid;
  p->state = P_RUNNING;
  p->t_start = np_now();
  p->deadline = timeout > 0 ? p->t_start + timeout : 0;
  live_add(p);
  np_watchdog_add(pid);
  lua_rawgetp(L, LUA_REGISTRYINDEX, &live_key);
  lua_pushvalue(L, ud);
  lua_rawsetp(L, -2, p);
  lua_pop(L, 1);
  lua_pushvalue(L, ud);
  return 1;
}

/* ------------------------------------------------------------------ */
/* Handle methods                                                       */

static int until_done(void *ctx) { return ((Process *)ctx)->state == P_DONE || ((Process *)ctx)->state == P_NEW; }

/* Pushes the result table of a finished p: code, signal, timed_out,
 * duration, cpu, maxrss (bytes), stdout/stderr (when captured), pid. */
static void push_result(lua_State *L, Process *p) {
  lua_createtable(L, 0, 10);
  int code = -1, sig = 0;
  if (WIFEXITED(p->wstatus)) code = WEXITSTATUS(p->wstatus);
  else if (WIFSIGNALED(p->wstatus)) sig = WTERMSIG(p->wstatus);
  if (p->timed_out) code = 124;
  if (sig && !p->timed_out) code = 128 + sig;
  lua_pushinteger(L, code);
  lua_setfield(L, -2, "code");
  lua_pushinteger(L, sig);
  lua_setfield(L, -2, "signal");
  lua_pushboolean(L, p->timed_out);
  lua_setfield(L, -2, "timed_out");
  lua_pushnumber(L, p->t_end - p->t_start);
  lua_setfield(L, -2, "duration");
  double cpu = (double)p->ru.ru_utime.tv_sec + (double)p->ru.ru_utime.tv_usec / 1e6 +
               (double)p->ru.ru_stime.tv_sec + (double)p->ru.ru_stime.tv_usec / 1e6;
  lua_pushnumber(L, cpu);
  lua_setfield(L, -2, "cpu");
  lua_pushinteger(L, (lua_Integer)p->ru.ru_maxrss * 1024);
  lua_setfield(L, -2, "maxrss");
  lua_pushinteger(L, p->pid);
  lua_setfield(L, -2, "pid");
  if (p->st[S_OUT].kind == K_CAPTURE) {
    lua_pushlstring(L, p->st[S_OUT].cap.p ? p->st[S_OUT].cap.p : "", p->st[S_OUT].cap.len);
    lua_setfield(L, -2, "stdout");
  }
  if (p->st[S_ERR].kind == K_CAPTURE) {
    lua_pushlstring(L, p->st[S_ERR].cap.p ? p->st[S_ERR].cap.p : "", p->st[S_ERR].cap.len);
    lua_setfield(L, -2, "stderr");
  }
}

/* Raises the error a filter or callback of p raised, if any. */
static void raise_callback_error(lua_State *L, Process *p) {
  if (p->err_ref == LUA_NOREF) return;
  lua_rawgeti(L, LUA_REGISTRYINDEX, p->err_ref);
  luaL_unref(L, LUA_REGISTRYINDEX, p->err_ref);
  p->err_ref = LUA_NOREF;
  lua_error(L);
}

/*
 * p:wait([timeout]) -> result | nil, "timeout"
 * Runs the loop until p has ended and its output is delivered, then pushes
 * its result table (see push_result). With a timeout, gives up waiting
 * after that many seconds, leaving p running. Raises a filter's or
 * callback's error, and "interrupted" after Ctrl-C.
 */
static int p_wait(lua_State *L) {
  Process *p = check_process(L, 1);
  double timeout = luaL_optnumber(L, 2, -1);
  if (p->state == P_NEW) return luaL_error(L, "wait: the process was never started");
  if (!pump(L, until_done, p, timeout)) {
    luaL_pushfail(L);
    lua_pushliteral(L, "timeout");
    return 2;
  }
  raise_callback_error(L, p);
  push_result(L, p);
  return 1;
}

/* Maps a signal name ("TERM", "KILL", ...) or number at idx to a signal. */
static int check_signal(lua_State *L, int idx) {
  if (lua_type(L, idx) == LUA_TNUMBER) return (int)lua_tointeger(L, idx);
  static const char *const names[] = {"TERM", "KILL", "INT", "HUP", "QUIT", "USR1", "USR2", "STOP", "CONT", NULL};
  static const int sigs[] = {SIGTERM, SIGKILL, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGSTOP, SIGCONT};
  return sigs[luaL_checkoption(L, idx, NULL, names)];
}

/*
 * p:kill([signal]) -> boolean
 * Without a signal, ends p's whole tree: TERM now, KILL after the grace
 * period (the loop carries it out while anything waits). With a signal
 * number or name ("TERM", "KILL", "INT", ...), sends just that to the
 * group. Returns false when p had already ended.
 */
static int p_kill(lua_State *L) {
  Process *p = check_process(L, 1);
  if (p->state != P_RUNNING && p->state != P_REAPED) {
    lua_pushboolean(L, 0);
    return 1;
  }
  if (lua_isnoneornil(L, 2)) {
    escalate(p, np_now());
  } else {
    int sig = check_signal(L, 2);
    if (kill(-p->pid, sig) < 0 && errno == EINVAL) return luaL_argerror(L, 2, "invalid signal");
  }
  lua_pushboolean(L, 1);
  return 1;
}

static int p_pid(lua_State *L) {
  lua_pushinteger(L, check_process(L, 1)->pid);
  return 1;
}

/* p:running() -> boolean: whether p's leader has not been reaped yet. */
static int p_running(lua_State *L) {
  Process *p = check_process(L, 1);
  if (p->state == P_RUNNING) reap(p);
  lua_pushboolean(L, p->state == P_RUNNING);
  return 1;
}

static int p_tostring(lua_State *L) {
  Process *p = check_process(L, 1);
  static const char *const states[] = {"not started", "running", "ended", "done"};
  lua_pushfstring(L, "novapipe.Process (pid %d, %s)", (int)p->pid, states[p->state]);
  return 1;
}

/* Ends p's tree without Lua (no callbacks): TERM, grace, KILL, reap. */
static void terminate_blocking(Process *p) {
  if (p->state == P_RUNNING || p->state == P_REAPED) {
    streams_close(p);
    if (p->stage == 0) escalate(p, np_now());
    double until = p->kill_at;
    for (;;) {
      if (p->state == P_RUNNING) reap(p);
      int alive = (p->state == P_RUNNING) || kill(-p->pid, 0) == 0;
      if (!alive) break;
      if (np_now() >= until && p->stage < 2) kill_now(p);
      reap_orphans();
      struct timespec ts = {0, 5 * 1000 * 1000};
      nanosleep(&ts, NULL);
    }
    if (p->stage >= 1) signal_tree(p, SIGKILL);
    reap_orphans();
    p->state = P_DONE;
    live_remove(p);
  }
}

/* __gc and __close: a handle that goes away ends its tree (safety net). */
static int p_gc(lua_State *L) {
  Process *p = check_process(L, 1);
  terminate_blocking(p);
  streams_release(NULL, p);
  return 0;
}

static int p_close(lua_State *L) {
  Process *p = check_process(L, 1);
  if (p->state == P_RUNNING || p->state == P_REAPED) {
    escalate(p, np_now());
    pump(L, until_done, p, -1);
  }
  return 0;
}

/* ------------------------------------------------------------------ */
/* Module functions                                                     */

typedef struct AnyCtx {
  lua_State *L;
  int list;
  int n;
  int found;
} AnyCtx;

static int until_any(void *ctx) {
  AnyCtx *a = ctx;
  for (int i = 1; i <= a->n; i++) {
    lua_rawgeti(a->L, a->list, i);
    Process *p = luaL_testudata(a->L, -1, PROCESS_MT);
    lua_pop(a->L, 1);
    if (p && p->state == P_DONE) {
      a->found = i;
      return 1;
    }
  }
  return 0;
}

/*
 * proc.wait_any(handles[, timeout]) -> index, result | nil, "timeout"
 * Runs the loop until one of the handles (a list) is done; returns its
 * index and result table. Already-done handles count at once.
 */
static int l_wait_any(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  double timeout = luaL_optnumber(L, 2, -1);
  AnyCtx a = {L, 1, (int)luaL_len(L, 1), 0};
  if (a.n == 0) return luaL_argerror(L, 1, "no handles to wait for");
  for (int i = 1; i <= a.n; i++) {
    lua_rawgeti(L, 1, i);
    check_process(L, -1);
    lua_pop(L, 1);
  }
  if (!pump(L, until_any, &a, timeout)) {
    luaL_pushfail(L);
    lua_pushliteral(L, "timeout");
    return 2;
  }
  lua_rawgeti(L, 1, a.found);
  Process *p = check_process(L, -1);
  raise_callback_error(L, p);
  lua_pushinteger(L, a.found);
  push_result(L, p);
  return 2;
}

/* proc.live() -> integer: handles whose work is not finished. */
static int l_live(lua_State *L) {
  int n = 0;
  for (Process *p = live_head; p; p = p->next) n++;
  lua_pushinteger(L, n);
  return 1;
}

/* proc.children() -> {pid...}: this process's direct children, including
 * adopted orphans, as the kernel lists them. */
static int l_children(lua_State *L) {
  pid_t *kids;
  int n = os_children(&kids);
  if (n < 0) return np_fail(L, "children", errno);
  lua_createtable(L, n, 0);
  int k = 0;
  for (int i = 0; i < n; i++) {
    if (kids[i] == np_watchdog_pid()) continue; /* novapipe's own, not a child's */
    lua_pushinteger(L, kids[i]);
    lua_rawseti(L, -2, ++k);
  }
  free(kids);
  return 1;
}

/* proc.self() -> {pid, maxrss (bytes), cpu (seconds)} of novapipe itself. */
static int l_self(lua_State *L) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  lua_createtable(L, 0, 3);
  lua_pushinteger(L, getpid());
  lua_setfield(L, -2, "pid");
  lua_pushinteger(L, (lua_Integer)ru.ru_maxrss * 1024);
  lua_setfield(L, -2, "maxrss");
  lua_pushnumber(L, (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
                        (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6);
  lua_setfield(L, -2, "cpu");
  uid_t uid = getuid();
  lua_pushinteger(L, (lua_Integer)uid);
  lua_setfield(L, -2, "uid");
  struct passwd *pw = getpwuid(uid);
  if (pw) lua_pushstring(L, pw->pw_name);
  else lua_pushfstring(L, "%d", (int)uid);
  lua_setfield(L, -2, "user");
  char host[256] = "";
  if (gethostname(host, sizeof host - 1) == 0) lua_pushstring(L, host);
  else lua_pushliteral(L, "unknown");
  lua_setfield(L, -2, "host");
  return 1;
}

/* proc.cores() -> the number of CPUs novapipe may run on (its affinity
 * mask), at least 1. */
static int l_cores(lua_State *L) {
  cpu_set_t set;
  long n = 0;
  if (sched_getaffinity(0, sizeof set, &set) == 0) n = CPU_COUNT(&set);
  if (n < 1) n = sysconf(_SC_NPROCESSORS_ONLN);
  lua_pushinteger(L, n < 1 ? 1 : n);
  return 1;
}

/* proc.interrupted() -> false | "SIGINT" | "SIGTERM" */
static int l_interrupted(lua_State *L) {
  if (!np_interrupted) lua_pushboolean(L, 0);
  else lua_pushstring(L, np_interrupted == SIGINT ? "SIGINT" : "SIGTERM");
  return 1;
}

/* proc.signal(pid, signal) -> true | nil, msg, errname: sends a signal
 * (a name as for Process:kill, or a number) to one process. */
static int l_signal(lua_State *L) {
  pid_t pid = (pid_t)luaL_checkinteger(L, 1);
  int sig = check_signal(L, 2);
  if (pid <= 0) return luaL_argerror(L, 1, "a process id expected");
  if (kill(pid, sig) < 0) return np_fail(L, "signal", errno);
  lua_pushboolean(L, 1);
  return 1;
}

/* proc.exists(pid) -> boolean: whether a live process has that pid (a
 * zombie, dead but not yet reaped, does not count). */
static int l_exists(lua_State *L) {
  pid_t pid = (pid_t)luaL_checkinteger(L, 1);
  int alive = pid > 0 && (kill(pid, 0) == 0 || errno == EPERM);
  OsProcStat st;
  if (alive && os_proc_stat(pid, &st) == 0 && st.state == 'Z') alive = 0;
  lua_pushboolean(L, alive);
  return 1;
}

/* Ends every stray among our children (see tree_orphans): TERM, up to a
 * second's grace, KILL, reaped. For the end of novapipe, when no handle is
 * left to own them. */
static void end_strays(void) {
  for (int round = 0; round < 3; round++) {
    pid_t *kids;
    int n = os_children(&kids);
    if (n <= 0) return;
    int left = 0;
    for (int i = 0; i < n; i++) {
      if (!is_stray(kids[i])) continue;
      int sig = round == 0 ? SIGTERM : SIGKILL;
      if (getpgid(kids[i]) == kids[i]) kill(-kids[i], sig);
      kill(kids[i], sig);
      left = 1;
    }
    free(kids);
    if (!left) return;
    for (int t = 0; t < (round == 0 ? 100 : 20); t++) {
      struct timespec ts = {0, 10 * 1000 * 1000};
      nanosleep(&ts, NULL);
      reap_orphans();
    }
  }
}

/*
 * proc.stat(pid) -> {state, ppid, pgid, start} | nil, msg, errname
 * What the kernel says of a process (/proc/<pid>/stat): its state as one
 * letter ("R", "S", "Z", ...), its parent's pid, its process group and its
 * start time (clock ticks since boot; with the pid it names one process
 * across pid reuse). ENOENT when there is no such process.
 */
static int l_stat(lua_State *L) {
  lua_Integer pid = luaL_checkinteger(L, 1);
  if (pid <= 0 || pid > INT_MAX) return luaL_argerror(L, 1, "a process id expected");
  OsProcStat st;
  if (os_proc_stat((pid_t)pid, &st) < 0) {
    int e = errno;
    lua_pushfstring(L, "stat of process %d", (int)pid);
    return np_fail(L, lua_tostring(L, -1), e);
  }
  lua_createtable(L, 0, 4);
  lua_pushlstring(L, &st.state, 1);
  lua_setfield(L, -2, "state");
  lua_pushinteger(L, st.ppid);
  lua_setfield(L, -2, "ppid");
  lua_pushinteger(L, st.pgid);
  lua_setfield(L, -2, "pgid");
  lua_pushinteger(L, (lua_Integer)st.start);
  lua_setfield(L, -2, "start");
  return 1;
}

/* proc.shutdown(): ends every live tree now (TERM, grace, KILL) and reaps
 * it, without running Lua callbacks; for clean-up after an interrupt. */
static int l_shutdown(lua_State *L) {
  (void)L;
  np_proc_shutdown();
  return 0;
}

void np_proc_shutdown(void) {
  double now = np_now();
  for (Process *p = live_head; p; p = p->next) {
    streams_close(p);
    escalate(p, now);
  }
  while (live_head) terminate_blocking(live_head);
  end_strays();
}

static const luaL_Reg process_methods[] = {
  {"wait", p_wait},
  {"kill", p_kill},
  {"pid", p_pid},
  {"running", p_running},
  {NULL, NULL},
};

static const luaL_Reg process_meta[] = {
  {"__gc", p_gc},
  {"__close", p_close},
  {"__tostring", p_tostring},
  {"__index", NULL},
  {NULL, NULL},
};

static const luaL_Reg proc_funcs[] = {
  {"spawn", l_spawn},
  {"wait_any", l_wait_any},
  {"live", l_live},
  {"children", l_children},
  {"self", l_self},
  {"cores", l_cores},
  {"interrupted", l_interrupted},
  {"exists", l_exists},
  {"stat", l_stat},
  {"signal", l_signal},
  {"shutdown", l_shutdown},
  {NULL, NULL},
};

int luaopen_novapipe_proc(lua_State *L) {
  luaL_newmetatable(L, PROCESS_MT);
  luaL_setfuncs(L, process_meta, 0);
  luaL_newlibtable(L, process_methods);
  luaL_setfuncs(L, process_methods, 0);
  lua_setfield(L, -2, "__index");
  lua_pop(L, 1);
  lua_newtable(L);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &live_key);
  luaL_newlib(L, proc_funcs);
  return 1;
}
