-- exec_mismatch.lua - its base comes from ORCH_PIPELINE_PATH, so ranks
-- given different paths expand different sweeps (the test under mpirun).
local base = require "exec_mod"
return sweep { name = "mismatch", base = base, grid = { ["optimizer.lr"] = { 1e-3 } }, seeds = { 1, 2 } }
