-- bad_random_seed.lua - random.seed not an integer.
return sweep {
    base = require "base",
    random = {
        n = 2,
        space = { ["optimizer.lr"] = uniform(1e-4, 1e-3) },
        seed = "seven",
    },
}
