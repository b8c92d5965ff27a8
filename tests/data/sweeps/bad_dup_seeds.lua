-- bad_dup_seeds.lua - a seed listed twice.
return sweep {
    base = require "base",
    grid = { ["optimizer.lr"] = { 1e-3, 3e-4 } },
    seeds = { 1, 2,
        1 },
}
