-- the decay must end below lr
return extend(require "common", {
    optimizer = { schedule = "cosine", min_lr = 1e-2 },
})
