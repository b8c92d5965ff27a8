-- steps must be an integer
return extend(require "common", {
    schedule = { steps = 3.5 },
})
