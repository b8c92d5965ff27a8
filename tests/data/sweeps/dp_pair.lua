-- dp_pair.lua - the same run twice in one sweep, once on one rank and once
-- data-parallel on two (parallel = { data = 2 }): tests/test_cli_sweep_dp.c
-- compares their losses. The tiny tower, full fine-tuning (every gradient
-- is summed across the two ranks), global batch 4.
return sweep {
    name = "dp",
    base = {
        name = "dp",
        model = { preset = "tiny" },
        data = { source = "synthetic", samples = 16, classes = 4, image_size = { 56, 56 } },
        strategy = full {},
        head = { kind = "classifier", classes = 4 },
        loss = "cross_entropy",
        optimizer = { kind = "adamw", lr = 1e-3, grad_clip = 1.0 },
        schedule = { steps = 6, batch_size = 4, warmup_steps = 1 },
        precision = "fp32",
        seed = 5,
        checks = { nan = true, on_nan = "abort" },
    },
    grid = { ["parallel.data"] = { 1, 2 } },
}
