-- beta2 must be below 1
return extend(require "common", {
    optimizer = { betas = { 0.9, 1.5 } },
})
