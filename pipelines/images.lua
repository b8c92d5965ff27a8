-- images.lua - LoRA trained from a folder of images: pipelines/data/shapes/train
-- has one sub-folder per class (disc, square, triangle: torchvision's
-- ImageFolder layout), 56 x 56 JPEGs decoded as Pillow does and processed
-- as the Hugging Face processor does (docs/data.md). The class ids are the
-- sorted folder names: disc 0, square 1, triangle 2.
local base = require "base"

return extend(base, {
    name = "images",
    data = images { dir = "data/shapes/train" },
    head = { kind = "classifier", classes = 3 },
    strategy = lora { rank = 4, alpha = 8 },
    schedule = { steps = 24, batch_size = 4, warmup_steps = 3 },
    tags = { "tiny", "demo", "images" },
})
