-- novapipe's configuration for the clinic example: the integration tier
-- gets a throwaway PostgreSQL (DATABASE_URL), unless DATABASE_URL is set.
return {
  tiers = {
    integration = { services = { "postgresql" }, timeout = 300 },
  },
}
