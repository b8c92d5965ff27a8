-- random.lua - 5 random draws x 2 seeds.
local base = require "base"
return sweep {
    name = "rand",
    base = base,
    random = {
        n = 5,
        seed = 7,
        space = {
            ["optimizer.lr"] = log_uniform(1e-5, 1e-2),
            ["optimizer.weight_decay"] = uniform(0, 0.1),
            ["schedule.batch_size"] = int_uniform(1, 4),
            strategy = choice { lora { rank = 4 }, lora { rank = 8 }, detach {} },
        },
    },
    seeds = { 1, 2 },
}
