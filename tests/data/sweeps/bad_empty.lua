-- bad_empty.lua - a sweep without grid, random or runs.
return sweep {
    name = "nothing",
    base = require "base",
}
