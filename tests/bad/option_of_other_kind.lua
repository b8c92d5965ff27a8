-- replace is a surgery option, not a LoRA one
return extend(require "common", {
    strategy = lora { rank = 4, replace = "visual.merger.mlp.2" },
})
