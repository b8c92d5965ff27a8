-- plan_mix.lua - detach and LoRA x two learning rates x two seeds, a LoRA
-- run warm-started from a detach run, and a surgery run after it: every
-- kind of edge of a sweep's DAG (tests/test_cli_sweep_plan.c).
local base = require "base"
return sweep {
    name = "plan-mix",
    base = base,
    grid = {
        strategy = { detach {}, lora { rank = 4, alpha = 8 } },
        ["optimizer.lr"] = { 1e-3, 3e-4 },
    },
    seeds = { 1, 2 },
    runs = {
        extend(base, {
            name = "warm",
            strategy = lora { rank = 4, init = output_of "detach-lr1e-3-s1" },
        }),
        extend(base, { name = "last", strategy = surgery {} }),
    },
    after = { last = "warm" },
}
