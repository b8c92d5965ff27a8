-- plan_unknown.lua - a run that waits for a run the sweep does not have.
local base = require "base"
return sweep {
    name = "plan-unknown",
    base = base,
    runs = {
        extend(base, { name = "a", strategy = surgery {} }),
    },
    after = { a = "nope" },
}
