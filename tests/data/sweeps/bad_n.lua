-- bad_n.lua - random.n not an integer.
return sweep {
    base = require "base",
    random = {
        n = 2.5,
        space = { ["optimizer.lr"] = uniform(1e-4, 1e-3) },
    },
}
