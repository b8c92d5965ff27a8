-- micro-batches are counted in whole numbers
return extend(require "common", {
    schedule = { grad_accum = 2.5 },
})
