-- bad_n_zero.lua - random.n below 1.
return sweep {
    base = require "base",
    random = { n = 0, space = { ["optimizer.lr"] = uniform(1e-4, 1e-3) } },
}
