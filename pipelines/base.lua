-- base.lua - what the shipped pipelines share: the tiny tower, synthetic
-- data, a 4-class classifier head, AdamW. On its own it is the control run
-- (full fine-tuning); surgery.lua, detach.lua and lora.lua require it and
-- override only their name and strategy. See docs/pipelines.md.
return {
    name = "base",
    model = { preset = "tiny" },
    data = {
        source = "synthetic",
        samples = 64,
        classes = 4,
        image_size = { 56, 56 }, -- pixels: a 28 x 28 patch grid for the tiny tower
    },
    strategy = full {},
    head = { kind = "classifier", classes = 4 },
    loss = "cross_entropy",
    optimizer = {
        kind = "adamw",
        lr = 1e-3,
        betas = { 0.9, 0.999 },
        eps = 1e-8,
        weight_decay = 0.01,
        grad_clip = 1.0,
    },
    schedule = { steps = 30, batch_size = 4, warmup_steps = 3 },
    precision = "fp32",
    seed = 1234,
    checks = { nan = true, frozen = true, on_nan = "abort", stats_every = 10 },
    tags = { "tiny", "demo" },
}
