-- exec_mix.lua - what `orch sweep` must give the same alone and under
-- mpirun: surgery and detach x two seeds (two detach feature stages), a
-- LoRA run warm-started from a detach run's final checkpoint (output_of)
-- and the same LoRA run cold.
local base = require "exec_base"
return sweep {
    name = "mix",
    base = base,
    grid = { strategy = { surgery {}, detach {} } },
    seeds = { 1, 2 },
    runs = {
        extend(base, { name = "warm", strategy = lora { rank = 4, init = output_of "detach-s1" } }),
        extend(base, { name = "cold", strategy = lora { rank = 4 } }),
    },
}
