-- exec_fail.lua - a sweep with a run that fails as it loads (its weights
-- file exists but is not safetensors), a run that starts from its output
-- (skipped), and one that has nothing to do with it (finished).
local base = require "exec_base"
return sweep {
    name = "fail",
    base = base,
    runs = {
        extend(base, {
            name = "broken",
            strategy = surgery {},
            model = { preset = "tiny", weights = "exec_not_safetensors.safetensors" },
        }),
        extend(base, { name = "after-broken", strategy = lora { rank = 4, init = output_of "broken" } }),
        extend(base, { name = "fine", strategy = surgery {} }),
    },
}
