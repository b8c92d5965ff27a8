-- sweep.lua - "which strategy wins?" as one sweep: surgery, detach and LoRA
-- x two learning rates x three seeds = 18 runs of the tiny tower (base.lua),
-- short enough (20 steps each) that the whole sweep takes seconds on two
-- cores at one thread per run. Runs are named "<sweep>/<point>", e.g.
-- strategies/lora-lr3e-4-s2.
--
--   ./orch plan pipelines/sweep.lua                  # the 18 runs, their overrides and hashes
--   ./orch sweep pipelines/sweep.lua                 # run them (one process)
--   mpirun -np 2 ./orch sweep pipelines/sweep.lua    # the same across 2 ranks
--   ./orch compare --sweep 1                         # mean +- std over seeds, best first
--
-- Rerunning the same command finishes only what is missing (docs/hpc.md).
-- See docs/pipelines.md ("Sweeps") for the declaration.
local base = require "base"

return sweep {
    name = "strategies",
    base = extend(base, {
        schedule = { steps = 20, checkpoint_every = 10 }, -- the rest of base's schedule stays
        tags = { "tiny", "sweep" },
    }),
    grid = {
        strategy = {
            surgery { replace = "visual.merger.mlp.2" },
            detach { adapter = "linear" },
            lora { rank = 4, alpha = 8 },
        },
        ["optimizer.lr"] = { 1e-3, 3e-4 },
    },
    seeds = { 1, 2, 3 },
}
