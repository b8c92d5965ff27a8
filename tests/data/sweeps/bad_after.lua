-- bad_after.lua - after names a run that does not exist.
local base = require "base"
return sweep {
    base = base,
    grid = { ["optimizer.lr"] = { 1e-3, 3e-4 } },
    after = {
        ["lr3e-4"] = { "lr1e-3", "lr1e-4" },
    },
}
