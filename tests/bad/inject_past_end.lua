-- an injection after the last step
return extend(require "common", {
    checks = {
        inject = { step = 4, phase = "backward", stage = "visual.merger.mlp.2" },
    },
})
