-- bad_key.lua - a grid key that is not a field.
return sweep {
    base = require "base",
    grid = {
        ["optimizer.lrr"] = { 1e-3, 3e-4 },
    },
}
