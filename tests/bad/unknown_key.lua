-- a British spelling of a top-level key
return extend(require "common", {
    optimiser = { kind = "sgd", lr = 0.1 },
})
