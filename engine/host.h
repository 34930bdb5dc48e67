/*
 * host.h: what the host's C files share.
 */
#ifndef NOVAPIPE_HOST_H
#define NOVAPIPE_HOST_H

#include <signal.h>

#include <sys/types.h>

#include "lua.h"
#include "lauxlib.h"

/* signals.c: the handlers, the self-pipe and the subreaper role. */

/* The signal that interrupted novapipe (SIGINT or SIGTERM), 0 when none. */
extern volatile sig_atomic_t np_interrupted;

/* How many times SIGINT or SIGTERM arrived (a second one means "now"). */
int np_interrupt_count(void);

/* Installs the SIGINT/SIGTERM/SIGCHLD handlers and the subreaper role.
 * `L` is the state a Lua hook is set on to stop running Lua code. */
void np_signals_init(lua_State *L);

/* A descriptor that becomes readable whenever a signal arrived; the process
 * loop polls it. np_signal_drain empties it. */
int np_signal_fd(void);
void np_signal_drain(void);

/* Raises the error that means "interrupted"; main turns it into exit 130. */
int np_raise_interrupted(lua_State *L);

/* proc.c: ends every live child tree (TERM, grace, KILL) and reaps them. Safe to call
 * more than once, also from atexit. */
void np_proc_shutdown(void);

/* watchdog.c: the process that ends novapipe's process groups when
 * novapipe dies (SIGKILL included). add on start, remove once a group is
 * gone; the watchdog's pid, or -1 before the first child. */
void np_watchdog_add(pid_t pgid);
void np_watchdog_remove(pid_t pgid);
pid_t np_watchdog_pid(void);

/* Whether styled output is on: decided once by np_term_init. */
void np_term_init(int no_color_flag);

/* Host modules, one per C file; modules.c registers them all. */
int luaopen_novapipe_proc(lua_State *L);
int luaopen_novapipe_fs(lua_State *L);
int luaopen_novapipe_time(lua_State *L);
int luaopen_novapipe_term(lua_State *L);
int luaopen_novapipe_pyscan(lua_State *L);
int luaopen_novapipe_digest(lua_State *L);
int luaopen_novapipe_phiscan(lua_State *L);
int luaopen_novapipe_jsontext(lua_State *L);
void np_open_modules(lua_State *L);
/* Adds the searcher of novapipe's modules compiled ahead (chunks.c). */
void np_chunks_init(lua_State *L, const char *root);

/* Registers a userdata class: a metatable `name` whose __index holds
 * `methods`, and whose __gc and __close both call `release` (which must be
 * safe to call twice). Leaves the stack as it was. */
/* phiscan_lua.c: the scanner of the novapipe.PhiFilter at idx, or NULL
 * when the value is not one; and, for the process filter point, a line
 * masked in C: 1 with *out, *outn the line to write (valid until the next
 * call), or 0 when the filter's Lua function must mask it. */
void *np_phi_filter(lua_State *L, int idx);
int np_phi_mask(void *scanner, const char *s, size_t n, const char **out, size_t *outn);

void np_new_class(lua_State *L, const char *name, const luaL_Reg *methods, lua_CFunction release);
/* Gives the class `name` (made by np_new_class) a __tostring. */
void np_class_tostring(lua_State *L, const char *name, lua_CFunction tostring);

/* Raises a programmer error when the options table at `idx` has a key not
 * in `known` (NULL-terminated): luaL_argerror on argument `arg` with
 * "unknown option 'timout'; known: cwd, env, ...", and " in <within>"
 * after the key when `within` (a nested option's name) is not NULL. */
void np_check_options(lua_State *L, int idx, int arg, const char *within, const char *const known[]);

/* Pushes nil, "<what>: <strerror>", "<ERRNAME>" and returns 3: the shape of
 * an environment failure (STYLE.md, errors of the second kind). */
int np_fail(lua_State *L, const char *what, int err);

/* time.c: the monotonic clock in seconds. */
double np_now(void);

#endif
