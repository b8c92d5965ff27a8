-- nan-repro.lua - the symptom that started orch, reproduced through numerics
-- alone (no injection): surgery on visual.merger.mlp.2 trained in fp16 with
-- a fixed loss scale of 65536 (PyTorch GradScaler's initial scale) by a loop
-- that never skips a step, with clip_grad_norm_ at 1.0 as the Hugging Face
-- Trainer does.
--
-- What the run records (docs/nan-diagnosis.md):
--   step 0 forward: finite, loss ~1.3;
--   step 0 backward: the scaled gradients of the new layer and the head
--     overflow fp16 (Inf), so grad_norm is Inf;
--   step 0 update: clip_grad_norm_ multiplies by max_norm / Inf = 0, which
--     turns each Inf into NaN; AdamW writes the NaN into
--     visual.merger.mlp.2.weight, a layer that lives inside the tower;
--   step 1 forward: the tower's output (visual.merger.mlp.2) is NaN, while
--     the frozen checksum shows every frozen parameter unchanged.
--
-- The tower's weights are drawn at initializer_range 0.7 instead of HF's
-- fresh-model 0.02: a pretrained tower's merger activations are large, a
-- freshly initialized one's are not, and the overflow needs that scale.
-- Try the counterparts:
--   orch run pipelines/nan-repro.lua --set loss_scale.dynamic=true   (skips, stays finite)
--   orch run pipelines/nan-repro.lua --set precision=bf16            (stays finite)
local base = require "base"

return extend(base, {
    name = "nan-repro",
    model = { preset = "tiny", initializer_range = 0.7 },
    strategy = surgery { replace = "visual.merger.mlp.2" },
    precision = "fp16",
    loss_scale = { init = 65536, dynamic = false },
    schedule = { steps = 6, batch_size = 4, warmup_steps = 0 },
    checks = { nan = true, frozen = true, on_nan = "continue", stats_every = 0 },
    tags = { "tiny", "nan-repro" },
})
