-- bad_uniform.lua - uniform(lo, hi) with lo >= hi.
return sweep {
    base = require "base",
    random = {
        n = 4,
        space = { ["optimizer.lr"] = uniform(1e-3, 1e-4) },
    },
}
