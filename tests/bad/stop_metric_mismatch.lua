-- a regression metric with a classifier
return extend(require "common", {
    eval = { split = 0.25 },
    schedule = { stop = { metric = "eval/mse", patience = 2 } },
})
