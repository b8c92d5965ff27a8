-- a negative count of micro-batches
return extend(require "common", {
    schedule = { grad_accum = -1 },
})
