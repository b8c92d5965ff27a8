-- bad_output_of.lua - output_of names a run that does not exist.
local base = require "base"
return sweep {
    base = base,
    runs = {
        extend(base, { name = "detach-best", strategy = detach {} }),
        extend(base, {
            name = "warm",
            strategy = lora { init = output_of "detach-bst" },
        }),
    },
}
