/*
 * time.c: novapipe.time, the monotonic clock, the wall clock and ISO 8601.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <time.h>

#include "host.h"

/* The monotonic clock in seconds: what every duration in the host is
 * measured with. */
double np_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* time.now() -> seconds on the monotonic clock (for durations). */
static int l_now(lua_State *L) {
  lua_pushnumber(L, np_now());
  return 1;
}

/* time.wall() -> seconds since the epoch, with fractions. */
static int l_wall(lua_State *L) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  lua_pushnumber(L, (double)ts.tv_sec + (double)ts.tv_nsec / 1e9);
  return 1;
}

/* time.iso8601([epoch[, local]]) -> "2026-01-02T03:04:05.678Z", or with the
 * local offset ("+01:00") when `local` is true. Defaults to now. */
static int l_iso8601(lua_State *L) {
  double t;
  if (lua_isnoneornil(L, 1)) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    t = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
  } else {
    t = luaL_checknumber(L, 1);
  }
  int local = lua_toboolean(L, 2);
  time_t secs = (time_t)floor(t);
  int ms = (int)((t - (double)secs) * 1000.0);
  if (ms > 999) ms = 999;
  struct tm tm;
  if ((local ? localtime_r(&secs, &tm) : gmtime_r(&secs, &tm)) == NULL)
    return luaL_argerror(L, 1, "time out of range");
  char date[64], zone[48];
  strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%S", &tm);
  if (local) {
    long off = tm.tm_gmtoff;
    char sign = off < 0 ? '-' : '+';
    if (off < 0) off = -off;
    snprintf(zone, sizeof zone, "%c%02ld:%02ld", sign, off / 3600, (off % 3600) / 60);
  } else {
    snprintf(zone, sizeof zone, "Z");
  }
  char out[128];
  snprintf(out, sizeof out, "%s.%03d%s", date, ms, zone);
  lua_pushstring(L, out);
  return 1;
}

/* time.sleep(seconds): sleeps, resuming after signals, but returns early
 * (and raises "interrupted") on Ctrl-C. */
static int l_sleep(lua_State *L) {
  double s = luaL_checknumber(L, 1);
  if (s < 0) return luaL_argerror(L, 1, "negative duration");
  struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
  while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {
    if (np_interrupted) return np_raise_interrupted(L);
  }
  return 0;
}

static const luaL_Reg time_funcs[] = {
  {"now", l_now},
  {"wall", l_wall},
  {"iso8601", l_iso8601},
  {"sleep", l_sleep},
  {NULL, NULL},
};

int luaopen_novapipe_time(lua_State *L) {
  luaL_newlib(L, time_funcs);
  return 1;
}
