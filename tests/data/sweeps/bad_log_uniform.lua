-- bad_log_uniform.lua - log_uniform with lo <= 0.
return sweep {
    base = require "base",
    random = {
        n = 4,
        space = {
            ["optimizer.lr"] = log_uniform(0, 1e-2),
        },
    },
}
