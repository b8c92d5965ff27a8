-- bad_nested.lua - a run that is a sweep.
local base = require "base"
return sweep {
    base = base,
    runs = { sweep { base = base, grid = { seed = { 1 } } } },
}
