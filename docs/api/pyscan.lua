---@meta novapipe.pyscan
-- LuaLS stubs for the C module novapipe.pyscan (engine/pyscan_lua.c).

---@class novapipe.pyscan
local pyscan = {}

---@class novapipe.PyImport
---@field module string dotted; "" for `from . import x`
---@field level integer leading dots of a relative import
---@field from? boolean
---@field names {name: string, alias?: string}[]
---@field star? boolean
---@field line integer
---@field type_checking? boolean
---@field optional? boolean
---@field function? string
---@field ref_first? integer where the module reference starts ("..pkg.mod" of a `from` import, "a.b" of an `import a.b` item): source:sub(ref_first, ref_last)
---@field ref_last? integer

---@class novapipe.PyDecorator
---@field name string dotted
---@field call? boolean
---@field line integer
---@field args? {key?: string, value: string, kind: "string"|"name"|"raw"}[] absent when it takes none

---@class novapipe.PyFunction
---@field name string
---@field line integer
---@field async? boolean
---@field class? string
---@field parent? string
---@field params? string[]
---@field decorators? novapipe.PyDecorator[]
---@field names? string[]
---@field strings? string[] its body's string literals that look like connection strings ("://", ":memory:"), when its names are kept
---@field first integer where it starts in the source (its first decorator's `@`, or `def`): source:sub(first, last)
---@field last integer where its body's last line ends (the newline left out)

---@class novapipe.PyFacts
---@field encoding string
---@field imports novapipe.PyImport[]
---@field dynamic_imports {module: string, via: string, line: integer}[]
---@field functions novapipe.PyFunction[]
---@field classes {name: string, line: integer, bases?: string[], decorators?: novapipe.PyDecorator[]}[]
---@field assignments {target: string, line: integer, names: string[], strings?: string[]}[] strings: the value's plain string literals
---@field left_tests? string with lean: the tests it left out (named with the prefix, not nested), separated by spaces
---@field left_classes? string with lean: the Test* classes it left out (not decorated, and with no base or after a test)
---@field load_tests? boolean with lean: a module-level load_tests is among what it left out
---@field error? {line: integer, message: string}

---Options of scan, file and prefetch; an unknown key raises.
---@alias novapipe.PyScanOpts {names?: "all"|"decorated"|"none", decorator?: string, functions?: string, lean?: boolean}

---@param source string
---@param opts? novapipe.PyScanOpts
---@return novapipe.PyFacts
function pyscan.scan(source, opts) end

---@param path string
---@param opts? novapipe.PyScanOpts
---@return novapipe.PyFacts|nil facts
---@return string? message
---@return string? errname
function pyscan.file(path, opts) end

---@class novapipe.PyString
---@field value string the text between the quotes, escapes as written
---@field line integer
---@field fstring? boolean

---Every string literal token of source, in order. Where the source stops
---tokenizing: the list so far, the error message and its line.
---@param source string
---@return novapipe.PyString[] strings
---@return string? message
---@return integer? line
function pyscan.strings(source) end

---How many of `names` (identifiers separated by spaces) hold a keyword of
---`set` among their words (split at "_", "-", "." and where camel case
---turns, lower-cased), then the first such name and its keyword; nothing
---when none does.
---@param names string
---@param set table<string, true|table<string, true>> a word, or the first word of a two-word keyword mapping the words that may follow it; read once, at the first call with this table
---@return integer? hits
---@return string? name
---@return string? keyword
function pyscan.words(names, set) end

---@class novapipe.PyPrefetch
local Prefetch = {}

---What pyscan.file(paths[i], opts) returns, scanned on the worker thread or here.
---@param i integer
---@return novapipe.PyFacts|nil facts
---@return string? message
---@return string? errname
function Prefetch:take(i) end

---Stops the worker and frees what it holds.
function Prefetch:close() end

---Starts reading and scanning files on a second thread.
---@param paths string[]
---@param opts? novapipe.PyScanOpts
---@return novapipe.PyPrefetch
function pyscan.prefetch(paths, opts) end

return pyscan
