-- images-eval.lua - images.lua with a held-out set: the 12 JPEGs of
-- data/shapes/eval, labelled by class name in data/shapes/eval.csv (the
-- names map to the training folders' ids), evaluated without gradients
-- every 8 steps and at the end (eval/loss, eval/accuracy), with early
-- stopping when eval/loss has not improved for 2 evaluations. See
-- docs/pipelines.md, "eval" and "schedule.stop".
local images_run = require "images"

return extend(images_run, {
    name = "images-eval",
    eval = {
        data = images { dir = "data/shapes/eval", labels = "data/shapes/eval.csv" },
        every = 8,
    },
    schedule = { stop = { metric = "eval/loss", patience = 2 } },
})
