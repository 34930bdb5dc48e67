/*
 * watchdog.c: the process that outlives novapipe by design.
 *
 * Children die with novapipe through PR_SET_PDEATHSIG, but that signal
 * reaches the leader alone: a grandchild that stayed in a test's process
 * group would run on after `kill -9 novapipe`. So, the first time novapipe
 * starts a child, it forks a small watchdog in a session of its own (no
 * terminal's Ctrl-C reaches it) that holds the read end of a pipe. novapipe
 * tells it each process group it starts ("+pgid") and each group that is
 * gone ("-pgid"). When the pipe ends, novapipe has exited or died: the
 * watchdog sends SIGKILL to every group it still knows of and exits. After a
 * normal exit it knows of none, so it kills nothing.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/close_range.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/types.h>
#include <unistd.h>

#include "host.h"

#define MAX_GROUPS 4096

static int wd_fd = -1;     /* our end of the pipe, -1 until started */
static pid_t wd_pid = -1;
static int wd_failed = 0;  /* could not start: do without */

typedef struct Msg {
  int op; /* '+' or '-' */
  int pgid;
} Msg;

/* The watchdog's life: read messages until the pipe ends, then kill. */
static void watchdog_main(int fd) {
  static pid_t groups[MAX_GROUPS];
  size_t n = 0;
  Msg m;
  for (;;) {
    ssize_t r = read(fd, &m, sizeof m);
    if (r < 0 && errno == EINTR) continue;
    if (r != (ssize_t)sizeof m) break;
    if (m.op == '+' && n < MAX_GROUPS) {
      groups[n++] = (pid_t)m.pgid;
    } else if (m.op == '-') {
      for (size_t i = 0; i < n; i++) {
        if (groups[i] == (pid_t)m.pgid) {
          groups[i] = groups[--n];
          break;
        }
      }
    }
  }
  for (size_t i = 0; i < n; i++)
    if (groups[i] > 1) kill(-groups[i], SIGKILL);
  _exit(0);
}

/* Starts the watchdog; on any failure novapipe goes on without one. */
static void start(void) {
  int fds[2], sync[2];
  if (pipe2(fds, O_CLOEXEC) < 0) {
    wd_failed = 1;
    return;
  }
  if (pipe2(sync, O_CLOEXEC) < 0) {
    close(fds[0]);
    close(fds[1]);
    wd_failed = 1;
    return;
  }
  pid_t pid = fork();
  if (pid < 0) {
    close(fds[0]);
    close(fds[1]);
    close(sync[0]);
    close(sync[1]);
    wd_failed = 1;
    return;
  }
  if (pid == 0) {
    /* Only the read end stays; no terminal, no signal of Ctrl-C. The
     * copies of novapipe's descriptors (a held flock among them) are
     * closed before novapipe goes on: it waits for the byte on sync. */
    int a = fcntl(fds[0], F_DUPFD, 10), b = fcntl(sync[1], F_DUPFD, 10);
    if (a < 0 || b < 0 || dup2(a, 3) < 0 || dup2(b, 4) < 0) _exit(1);
    int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (devnull >= 0) {
      dup2(devnull, 0);
      dup2(devnull, 1);
      dup2(devnull, 2);
    }
    close_range(5, ~0U, 0);
    ssize_t w = write(4, "x", 1);
    (void)w;
    close(4);
    int rd = 3;
    setsid();
    signal(SIGINT, SIG_IGN);
    signal(SIGTERM, SIG_IGN);
    signal(SIGHUP, SIG_IGN);
    signal(SIGPIPE, SIG_IGN);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    prctl(PR_SET_NAME, "novapipe-watch");
    watchdog_main(rd);
  }
  close(fds[0]);
  close(sync[1]);
  char c;
  while (read(sync[0], &c, 1) < 0 && errno == EINTR) {}
  close(sync[0]);
  wd_fd = fds[1];
  wd_pid = pid;
}

static void send_msg(int op, pid_t pgid) {
  if (wd_fd < 0 && !wd_failed) start();
  if (wd_fd < 0) return;
  Msg m = {op, (int)pgid};
  ssize_t w;
  while ((w = write(wd_fd, &m, sizeof m)) < 0 && errno == EINTR) {}
}

void np_watchdog_add(pid_t pgid) { send_msg('+', pgid); }

void np_watchdog_remove(pid_t pgid) {
  if (wd_fd >= 0) send_msg('-', pgid);
}

pid_t np_watchdog_pid(void) { return wd_pid; }
