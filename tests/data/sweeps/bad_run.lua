-- bad_run.lua - an explicit run with a negative learning rate.
local base = require "base"
return sweep {
    base = base,
    runs = {
        extend(base, { name = "ok" }),
        extend(base, {
            name = "negative",
            optimizer = { lr = -1 },
        }),
    },
}
