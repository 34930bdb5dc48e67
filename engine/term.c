/*
 * term.c: novapipe.term, styled output and a live status line.
 *
 * Whether colour is on is decided once, at the first use or by term.init:
 * --no-color, then NO_COLOR (set and non-empty: off), then FORCE_COLOR (set,
 * non-empty and not "0": on), then TERM=dumb (off), then whether stdout is a
 * terminal. The live status line is drawn only on a terminal and not when
 * CI is set; elsewhere each status is printed once as a plain line.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "host.h"

static int decided = 0;
static int color_on = 0;
static int live_on = 0;
static char *status_text = NULL; /* the status line currently shown */

static int env_set(const char *name) {
  const char *v = getenv(name);
  return v && *v;
}

void np_term_init(int no_color_flag) {
  int tty = isatty(STDOUT_FILENO);
  const char *force = getenv("FORCE_COLOR");
  const char *term = getenv("TERM");
  if (no_color_flag) color_on = 0;
  else if (env_set("NO_COLOR")) color_on = 0;
  else if (force && *force && strcmp(force, "0") != 0) color_on = 1;
  else if (term && strcmp(term, "dumb") == 0) color_on = 0;
  else color_on = tty;
  live_on = tty && !env_set("CI") && !(term && strcmp(term, "dumb") == 0);
  decided = 1;
}

static void decide(void) {
  if (!decided) np_term_init(0);
}

/* term.init{no_color = bool}: decides colour now; later calls are ignored.
 * Raises on an unknown option key. */
static int l_init(lua_State *L) {
  static const char *const known[] = {"no_color", NULL};
  int no_color = 0;
  if (lua_istable(L, 1)) {
    np_check_options(L, 1, 1, NULL, known);
    lua_getfield(L, 1, "no_color");
    no_color = lua_toboolean(L, -1);
  }
  if (!decided) np_term_init(no_color);
  return 0;
}

/* term.color() -> boolean */
static int l_color(lua_State *L) {
  decide();
  lua_pushboolean(L, color_on);
  return 1;
}

/* term.live() -> boolean: whether the status line is drawn in place. */
static int l_live(lua_State *L) {
  decide();
  lua_pushboolean(L, live_on);
  return 1;
}

/* term.isatty([fd = 1]) -> boolean */
static int l_isatty(lua_State *L) {
  lua_pushboolean(L, isatty((int)luaL_optinteger(L, 1, 1)));
  return 1;
}

/* term.width() -> columns of the terminal, $COLUMNS, or 80. */
static int l_width(lua_State *L) {
  struct winsize ws;
  int w = 0;
  if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0) w = ws.ws_col;
  else if (getenv("COLUMNS")) w = atoi(getenv("COLUMNS"));
  lua_pushinteger(L, w > 0 ? w : 80);
  return 1;
}

static const char *const style_names[] = {"bold", "dim", "red", "green", "yellow", "blue", "magenta", "cyan", "gray", NULL};
static const char *const style_codes[] = {"1", "2", "31", "32", "33", "34", "35", "36", "90"};

/* term.style(text, style...) -> text wrapped in the styles' escape codes
 * when colour is on, else text as it is. Raises on an unknown style. */
static int l_style(lua_State *L) {
  size_t len;
  const char *text = luaL_checklstring(L, 1, &len);
  int n = lua_gettop(L);
  decide();
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  int any = 0;
  for (int i = 2; i <= n; i++) {
    int s = luaL_checkoption(L, i, NULL, style_names);
    if (!color_on) continue;
    luaL_addstring(&b, "\x1b[");
    luaL_addstring(&b, style_codes[s]);
    luaL_addchar(&b, 'm');
    any = 1;
  }
  luaL_addlstring(&b, text, len);
  if (any) luaL_addstring(&b, "\x1b[0m");
  luaL_pushresult(&b);
  return 1;
}

static void erase_status(void) {
  if (live_on && status_text) fputs("\r\x1b[2K", stdout);
}

static void draw_status(void) {
  if (live_on && status_text) fputs(status_text, stdout);
}

/* term.status(text): shows text as the live status line (cut to the
 * terminal width); off a terminal, prints it as a line when it changed.
 * term.status(nil) removes the line. */
static int l_status(lua_State *L) {
  decide();
  const char *text = luaL_optstring(L, 1, NULL);
  if (!live_on) {
    if (text && (!status_text || strcmp(text, status_text) != 0)) {
      fputs(text, stdout);
      fputc('\n', stdout);
      fflush(stdout);
    }
  } else {
    erase_status();
  }
  free(status_text);
  status_text = text ? strdup(text) : NULL;
  if (live_on && status_text) {
    struct winsize ws;
    size_t width = ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 1 ? ws.ws_col - 1 : 79;
    /* cut at a byte boundary that does not split a UTF-8 sequence */
    size_t len = strlen(status_text);
    if (len > width) {
      size_t cut = width;
      while (cut > 0 && ((unsigned char)status_text[cut] & 0xC0) == 0x80) cut--;
      status_text[cut] = '\0';
    }
    draw_status();
  }
  fflush(stdout);
  return 0;
}

/* term.print(text...): prints a line, keeping the status line below it. */
static int l_print(lua_State *L) {
  decide();
  int n = lua_gettop(L);
  erase_status();
  for (int i = 1; i <= n; i++) {
    size_t len;
    const char *s = luaL_tolstring(L, i, &len);
    if (i > 1) fputc('\t', stdout);
    fwrite(s, 1, len, stdout);
    lua_pop(L, 1);
  }
  fputc('\n', stdout);
  draw_status();
  fflush(stdout);
  return 0;
}

/* term.clear() -> boolean: on a live terminal, clears the screen and puts
 * the cursor at its top (the scrollback is not cleared; whether what was
 * on the screen goes into it depends on the terminal), keeping the status
 * line; elsewhere nothing. Returns whether it cleared. */
static int l_clear(lua_State *L) {
  decide();
  if (live_on) {
    erase_status();
    fputs("\x1b[H\x1b[2J", stdout);
    draw_status();
    fflush(stdout);
  }
  lua_pushboolean(L, live_on);
  return 1;
}

static const luaL_Reg term_funcs[] = {
  {"init", l_init},
  {"color", l_color},
  {"live", l_live},
  {"isatty", l_isatty},
  {"width", l_width},
  {"style", l_style},
  {"status", l_status},
  {"print", l_print},
  {"clear", l_clear},
  {NULL, NULL},
};

int luaopen_novapipe_term(lua_State *L) {
  luaL_newlib(L, term_funcs);
  return 1;
}
