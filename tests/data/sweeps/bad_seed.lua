-- bad_seed.lua - a seed that is not an integer.
return sweep {
    base = require "base",
    grid = { ["optimizer.lr"] = { 1e-3, 3e-4 } },
    seeds = {
        1,
        2.5,
    },
}
