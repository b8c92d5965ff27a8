-- base.lua - the pipeline the test sweeps start from: the tiny tower,
-- synthetic data, a 4-class head, AdamW (a copy of pipelines/base.lua with
-- fewer steps, so the sweeps here do not change when that one does).
return {
    name = "base",
    model = { preset = "tiny" },
    data = { source = "synthetic", samples = 16, classes = 4, image_size = { 16, 16 } },
    strategy = full {},
    head = { kind = "classifier", classes = 4 },
    optimizer = { kind = "adamw", lr = 1e-3, weight_decay = 0.01 },
    schedule = { steps = 4, batch_size = 2 },
    seed = 1234,
}
