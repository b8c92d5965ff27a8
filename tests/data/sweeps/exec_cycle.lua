-- exec_cycle.lua - two runs that wait for each other: refused.
local base = require "exec_base"
return sweep {
    name = "cycle",
    base = base,
    runs = { extend(base, { name = "a" }), extend(base, { name = "b", seed = 2 }) },
    after = { a = "b", b = "a" },
}
