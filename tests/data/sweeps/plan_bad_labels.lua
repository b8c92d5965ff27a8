-- plan_bad_labels.lua - .npy data whose labels file has a dtype orch does
-- not read: `orch plan` checks every run's .npy files as it checks a
-- pipeline's, and names the point.
local base = require "base"
local npy = extend(base, {})
npy.data = {
    source = "npy",
    pixel_values = "../proc_full_pv.npy",
    image_grid_thw = "../proc_full_grid.npy",
    labels = "../npy_f2.npy",
}
return sweep {
    name = "plan-bad-labels",
    base = npy,
    grid = { ["optimizer.lr"] = { 1e-3, 3e-4 } },
}
