-- loras.lua - two LoRA strategies of one kind, told apart by rank; a grid
-- of strategy.init values taken from explicit runs' outputs.
local base = require "base"
return sweep {
    name = "loras",
    base = extend(base, { strategy = lora { rank = 2 } }),
    grid = {
        strategy = { lora { rank = 4, alpha = 8 }, lora { rank = 8, alpha = 8 }, detach {} },
    },
    runs = {
        extend(base, { name = "head-a", strategy = detach {} }),
        extend(base, { name = "head-b", strategy = detach { adapter = "mlp" } }),
        extend(base, { name = "warm-a", strategy = lora { init = output_of "loras/head-a" } }),
    },
}
