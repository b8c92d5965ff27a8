-- bad_point.lua - one grid point is invalid (LoRA of rank 0).
local base = require "base"
return sweep {
    base = base,
    grid = {
        strategy = { detach {}, lora { rank = 0 } },
        ["optimizer.lr"] = { 1e-3, 3e-4 },
    },
    seeds = { 1, 2 },
}
