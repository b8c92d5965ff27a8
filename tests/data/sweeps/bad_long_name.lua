-- bad_long_name.lua - a run name that does not fit ORCH_NAME_MAX.
return sweep {
    name = string.rep("n", 121),
    base = require "base",
    grid = {
        ["optimizer.lr"] = { 1e-3, 3e-4 },
    },
}
