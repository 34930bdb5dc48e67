---@meta novapipe.term
-- LuaLS stubs for the C module novapipe.term (engine/term.c).

---@class novapipe.term
local term = {}

---Decides colour now (the CLI does this once); later calls are ignored.
---Raises on an unknown option key.
---@param opts? {no_color?: boolean}
function term.init(opts) end

---@return boolean whether styled output is on
function term.color() end

---@return boolean whether the status line is drawn in place (a terminal, CI unset)
function term.live() end

---@param fd? integer default 1
---@return boolean
function term.isatty(fd) end

---@return integer columns: the terminal's, $COLUMNS, or 80
function term.width() end

---@alias novapipe.Style "bold"|"dim"|"red"|"green"|"yellow"|"blue"|"magenta"|"cyan"|"gray"

---@param text string
---@param ... novapipe.Style
---@return string text with escape codes when colour is on
function term.style(text, ...) end

---Shows the live status line; off a terminal prints it once per change.
---nil removes it.
---@param text? string
function term.status(text) end

---Prints a line above the status line.
---@param ... any
function term.print(...) end

---On a live terminal, clears the screen (not the scrollback) and returns
---true; elsewhere does nothing and returns false.
---@return boolean
function term.clear() end

return term
