-- lora.lua - LoRA (PEFT semantics) on the merger's two Linears; the tower's
-- own weights stay frozen.
local base = require "base"

return extend(base, {
    name = "lora",
    strategy = lora { rank = 4, alpha = 8 },
})
