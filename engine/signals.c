/*
 * signals.c: how the host hears SIGINT, SIGTERM and SIGCHLD.
 *
 * The handlers record an interrupt, set a Lua hook that stops running Lua
 * code (lua.c's lstop) and write a byte to a self-pipe, which the process
 * loop (proc.c) polls beside its children's pipes. novapipe is also made a
 * subreaper, so orphans of its children's trees are re-parented to it.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "host.h"

volatile sig_atomic_t np_interrupted = 0;
static volatile sig_atomic_t interrupt_count = 0;
static int sigpipe_fds[2] = {-1, -1};
static lua_State *main_L = NULL;

/* Hook set from the signal handler: stops running Lua code (lua.c's lstop)
 * by raising the interrupted error at the next call, return or count. */
static void lstop(lua_State *L, lua_Debug *ar) {
  (void)ar;
  lua_sethook(L, NULL, 0, 0);
  np_raise_interrupted(L);
}

/* The handler of SIGINT, SIGTERM and SIGCHLD: records an interrupt (and sets
 * the hook) for the first two, and wakes the process loop for all three.
 * Keeps errno as it was. */
static void on_signal(int sig) {
  int saved = errno;
  if (sig == SIGINT || sig == SIGTERM) {
    np_interrupted = sig;
    interrupt_count++;
    if (main_L)
      lua_sethook(main_L, lstop, LUA_MASKCALL | LUA_MASKRET | LUA_MASKCOUNT, 1);
  }
  if (sigpipe_fds[1] >= 0) {
    ssize_t w = write(sigpipe_fds[1], "x", 1);
    (void)w;
  }
  errno = saved;
}

/* Opens the self-pipe (once), installs the handlers with SA_RESTART,
 * ignores SIGPIPE and makes novapipe a child subreaper. */
void np_signals_init(lua_State *L) {
  main_L = L;
  if (sigpipe_fds[0] < 0 && pipe2(sigpipe_fds, O_CLOEXEC | O_NONBLOCK) < 0) {
    sigpipe_fds[0] = sigpipe_fds[1] = -1;
  }
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
  sa.sa_flags = SA_RESTART | SA_NOCLDSTOP;
  sigaction(SIGCHLD, &sa, NULL);
  signal(SIGPIPE, SIG_IGN);
  /* Orphans of our children's trees are re-parented to us, not to init. */
  prctl(PR_SET_CHILD_SUBREAPER, 1);
}

/* How many times SIGINT or SIGTERM arrived. */
int np_interrupt_count(void) { return interrupt_count; }

/* The self-pipe's read end, -1 when it could not be made. */
int np_signal_fd(void) { return sigpipe_fds[0]; }

/* Reads the self-pipe empty (it is non-blocking). */
void np_signal_drain(void) {
  char buf[64];
  while (sigpipe_fds[0] >= 0 && read(sigpipe_fds[0], buf, sizeof buf) > 0) {}
}

/* Raises {interrupted = true, message = "interrupted"}; never returns. */
int np_raise_interrupted(lua_State *L) {
  lua_createtable(L, 0, 2);
  lua_pushboolean(L, 1);
  lua_setfield(L, -2, "interrupted");
  lua_pushliteral(L, "interrupted");
  lua_setfield(L, -2, "message");
  return lua_error(L);
}
