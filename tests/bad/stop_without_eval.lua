-- early stopping watches an evaluation
return extend(require "common", {
    schedule = {
        stop = { metric = "eval/loss", patience = 2 },
    },
})
