-- chain.lua - explicit runs, after and output_of: a LoRA run warm-started
-- from a detach run's head, and a grid point waiting for another.
local base = require "base"
return sweep {
    name = "chain",
    base = base,
    grid = { ["optimizer.lr"] = { 1e-3, 3e-4 } },
    runs = {
        extend(base, { name = "detach-best", strategy = detach {} }),
        extend(base, {
            name = "lora-warm",
            strategy = lora { rank = 4, init = output_of "detach-best" },
        }),
        extend(base, { strategy = surgery {} }),
    },
    after = { ["lr3e-4"] = "lr1e-3", ["run3"] = { "chain/detach-best", "lora-warm" } },
}
