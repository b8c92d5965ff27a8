-- no micro-batch per update
return extend(require "common", {
    schedule = { grad_accum = 0 },
})
