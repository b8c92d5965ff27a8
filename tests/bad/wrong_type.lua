-- steps as a string
return extend(require "common", {
    schedule = { steps = "ten" },
})
