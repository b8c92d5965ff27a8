-- a table constructor that is never closed
return {
    model = { preset = "tiny" },
    data = { source = "synthetic", samples = 8, classes = 4, image_size = { 16, 16 } },
    strategy = lora { rank = 2 }
    optimizer = { kind = "adamw", lr = 1e-3 },
}
