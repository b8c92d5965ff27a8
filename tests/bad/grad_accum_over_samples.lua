-- a global batch (batch_size x grad_accum = 2 x 5) larger than the synthetic data set
return extend(require "common", {
    schedule = { grad_accum = 5 },
})
