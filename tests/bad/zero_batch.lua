-- an empty batch
return extend(require "common", {
    schedule = { batch_size = 0 },
})
