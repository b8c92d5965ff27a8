-- bad_dup_names.lua - two explicit runs with the same name.
local base = require "base"
return sweep {
    base = base,
    runs = {
        extend(base, { name = "a" }),
        extend(base, { name = "a", seed = 2 }),
    },
}
