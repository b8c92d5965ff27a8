-- bad_unknown.lua - a misspelt key of the sweep.
return sweep {
    base = require "base",
    grids = { ["optimizer.lr"] = { 1e-3 } },
}
