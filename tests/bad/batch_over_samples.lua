-- a batch larger than the synthetic data set
return extend(require "common", {
    schedule = { batch_size = 16 },
})
