-- novapipe's configuration for the mutation harness on boltons
-- (https://github.com/mahmoud/boltons), whose tests are one flat directory
-- and need only the standard library and pytest: one tier, tests/ itself.
return function(cfg)
  cfg.tests = "tests"
  cfg.tiers = { { name = "standalone", dir = "." } }
  return cfg
end
