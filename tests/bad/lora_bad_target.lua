-- merger.mlp.1 is the GELU, not a Linear
return extend(require "common", {
    strategy = lora {
        targets = { "visual.merger.mlp.0", "visual.merger.mlp.1" },
    },
})
