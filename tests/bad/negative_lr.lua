-- the learning rate must be positive
return extend(require "common", {
    optimizer = {
        lr = -0.001,
    },
})
