-- exec_base.lua - the pipeline the `orch sweep` tests start from: the tiny
-- tower, synthetic data, a 4-class head, 8 steps with a checkpoint every 3
-- (so a killed run resumes from one).
return {
    name = "exec-base",
    model = { preset = "tiny" },
    data = { source = "synthetic", samples = 16, classes = 4, image_size = { 16, 16 } },
    strategy = full {},
    head = { kind = "classifier", classes = 4 },
    optimizer = { kind = "adamw", lr = 1e-3, weight_decay = 0.01 },
    schedule = { steps = 8, batch_size = 2, checkpoint_every = 3 },
    seed = 1234,
}
