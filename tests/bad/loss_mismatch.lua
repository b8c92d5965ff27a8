-- mse does not fit a classifier head
return extend(require "common", {
    loss = "mse",
})
