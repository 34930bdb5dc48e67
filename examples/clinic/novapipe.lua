-- novapipe's configuration for the clinic example.
local venv = {}
for _, name in ipairs(require("novapipe.config").defaults().analyze.indicators.venv) do
  -- This project's domain layer is pure Python (the reference's is not):
  -- importing it does not make a test need packages.
  if name ~= "app.domain" then venv[#venv + 1] = name end
end

return {
  tiers = {
    -- A throwaway PostgreSQL (DATABASE_URL) for the integration tier, unless
    -- DATABASE_URL is set.
    integration = { services = { "postgresql" }, timeout = 300 },
  },
  analyze = { indicators = { venv = venv } },
  -- The security code is all under infrastructure (the default also names
  -- backend/app/domain/security, which this project does not have).
  security = { coverage_paths = { "backend/app/infrastructure/security" } },
  -- This clinic issues medical record numbers from MRN-100000 up, and its
  -- test patients are born in 1900: values of those shapes are synthetic.
  phi = { allow = { mrn = { "^MRN%-0%d%d%d%d%d$" }, dob = { "^1900%-" } } },
}
