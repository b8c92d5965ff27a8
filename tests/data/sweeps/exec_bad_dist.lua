-- exec_bad_dist.lua - a distribution that cannot be drawn from.
local base = require "exec_base"
return sweep {
    name = "bad-dist",
    base = base,
    random = { n = 4, seed = 7, space = { ["optimizer.lr"] = log_uniform(-1, 1e-2) } },
}
