-- a weights file that is not there
return extend(require "common", {
    model = { weights = "missing.safetensors" },
})
