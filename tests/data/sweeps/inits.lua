-- inits.lua - strategy.init as a grid key: each point starts from the
-- output of another run.
local base = require "base"
return sweep {
    name = "inits",
    base = extend(base, { strategy = lora { rank = 4 } }),
    grid = { ["strategy.init"] = { output_of "head-a", output_of "head-b" } },
    runs = {
        extend(base, { name = "head-a", strategy = detach {} }),
        extend(base, { name = "head-b", strategy = detach {}, seed = 7 }),
    },
}
