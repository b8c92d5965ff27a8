-- the processor bounds crossed
return extend(require "common", {
    processor = { min_pixels = 50176, max_pixels = 3136 },
})
