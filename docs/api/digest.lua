---@meta novapipe.digest
-- LuaLS stubs for the C module novapipe.digest (engine/digest.c): SHA-256
-- through OpenSSL's libcrypto, lower-case hex. libcrypto is opened at the
-- first digest (which raises when it cannot be loaded), not when the module
-- is required.

---@class novapipe.digest
local digest = {}

---Opens libcrypto now, and lets it set itself up with one digest, for a
---run that will make digests, at a moment when it costs nothing (the
---record reporter calls it while pytest runs).
---@return true|nil ok
---@return string? message what could not be loaded
function digest.load() end

---@param data string
---@return string hex
function digest.sha256(data) end

---@param path string
---@return string|nil hex
---@return string? message
---@return string? errname
function digest.sha256_file(path) end

return digest
