-- LoRA needs rank >= 1
return extend(require "common", {
    strategy = lora { rank = 0 },
})
