-- images.lua - a classifier trained from a folder of images and judged on a
-- held-out folder. pipelines/data/shapes/train has one sub-folder per class
-- (disc, square, triangle: torchvision's ImageFolder layout); the
-- evaluation images are listed with their class names in eval.csv. 56 x 56
-- JPEGs, decoded as Pillow does and processed as the Hugging Face processor
-- does (docs/data.md); class ids are the sorted names, disc 0, square 1,
-- triangle 2, in both sets. Evaluated every 8 steps and at the end
-- (eval/loss, eval/accuracy in `orch show` and `orch compare`).
local base = require "base"

return extend(base, {
    name = "images",
    data = images { dir = "data/shapes/train" },
    eval = {
        data = images { dir = "data/shapes/eval", labels = "data/shapes/eval.csv" },
        every = 8,
    },
    head = { kind = "classifier", classes = 3 },
    optimizer = { lr = 1e-2 },
    schedule = { steps = 48, batch_size = 4, warmup_steps = 3 },
    tags = { "tiny", "demo", "images" },
})
