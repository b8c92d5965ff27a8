-- detach.lua - run the frozen tower without gradients and train a linear
-- adapter (and the head) on its output.
local base = require "base"

return extend(base, {
    name = "detach",
    strategy = detach { adapter = "linear" },
})
