-- plan_cycle.lua - two runs that wait for each other: a starts from b's
-- output, b runs after a. `orch plan` refuses it with the runs' names.
local base = require "base"
return sweep {
    name = "plan-cycle",
    base = base,
    runs = {
        extend(base, { name = "a", strategy = lora { rank = 4, init = output_of "b" } }),
        extend(base, { name = "b", strategy = detach {} }),
        extend(base, { name = "c", strategy = surgery {} }),
    },
    after = { b = "a" },
}
