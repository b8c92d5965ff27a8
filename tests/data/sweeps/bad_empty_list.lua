-- bad_empty_list.lua - a grid key with an empty list.
return sweep {
    base = require "base",
    grid = {
        strategy = { detach {} },
        ["optimizer.lr"] = {},
    },
}
