-- same_config.lua - two grid values that are the same configuration:
-- the names collide (the second gets a suffix), the hashes are equal.
return sweep {
    name = "same",
    base = require "base",
    grid = { ["optimizer.lr"] = { 1e-3, 0.001, 2e-3 } },
}
