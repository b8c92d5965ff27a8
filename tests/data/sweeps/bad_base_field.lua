-- bad_base_field.lua - a point whose error is in a field the base file
-- sets: the message names the base file's line, and the point.
return sweep {
    base = require "base",
    grid = { ["data.samples"] = { 16, 1 } },
}
