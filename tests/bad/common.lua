-- common.lua - NOT a bad case: the valid pipeline the bad cases extend
-- (require only searches the requiring pipeline's own directory).
return {
    model = { preset = "tiny" },
    data = { source = "synthetic", samples = 8, classes = 4, image_size = { 16, 16 } },
    strategy = lora { rank = 2 },
    head = { kind = "classifier" },
    optimizer = { kind = "adamw", lr = 1e-3 },
    schedule = { steps = 4, batch_size = 2 },
    seed = 7,
    tags = { "bad-input-suite" },
}
