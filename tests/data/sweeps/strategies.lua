-- strategies.lua - 3 strategies x 2 learning rates x 3 seeds = 18 runs.
local base = require "base"
return sweep {
    name = "strategies",
    base = base,
    grid = {
        strategy = { surgery {}, detach {}, lora { rank = 4, alpha = 8 } },
        ["optimizer.lr"] = { 1e-3, 3e-4 },
    },
    seeds = { 1, 2, 3 },
}
