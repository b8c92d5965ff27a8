-- images-eval.lua - images.lua (a folder of JPEGs, a held-out folder with
-- a CSV of class names, evaluated every 8 steps) with early stopping: the
-- run ends, `finished` with the reason recorded in runs.end_reason, once
-- eval/accuracy has not improved for 2 evaluations in a row. See
-- docs/pipelines.md, "eval" and "schedule.stop".
local images_run = require "images"

return extend(images_run, {
    name = "images-eval",
    schedule = { stop = { metric = "eval/accuracy", patience = 2 } },
})
