-- kinds.lua - a grid of strategy.kind: points are named by the kind.
return sweep {
    name = "k",
    base = require "base",
    grid = {
        ["schedule.steps"] = { 2, 3 },
        ["strategy.kind"] = { "lora", "detach" },
    },
}
