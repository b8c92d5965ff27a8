-- surgery.lua - replace one Linear of the tower by a trainable copy; the
-- rest of the tower stays frozen.
local base = require "base"

return extend(base, {
    name = "surgery",
    strategy = surgery { replace = "visual.merger.mlp.2" },
})
