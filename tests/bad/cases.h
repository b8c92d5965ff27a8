/*
 * cases.h - the bad-input suite: one malformed pipeline per file in
 * tests/bad/, and a substring its one-line error message must contain
 * (with FILE:LINE wherever the problem has a line).
 *
 * Shared by tests/test_lua_dsl.c (orch_dsl_load directly) and
 * tests/test_cli_bad_input.c (orch plan / orch run: exit code 2, one line
 * on stderr, no store rows). Paths are relative to the repository root,
 * where tests run. tests/bad/common.lua is not a case: it is the valid
 * pipeline the cases extend.
 */
#ifndef ORCH_TESTS_BAD_CASES_H
#define ORCH_TESTS_BAD_CASES_H

typedef struct bad_case {
    const char *file;
    const char *expect;
} bad_case;

static const bad_case bad_cases[] = {
    /* Lua itself */
    {"tests/bad/syntax_error.lua", "bad/syntax_error.lua:6: '}' expected (to close '{' at line 2)"},
    {"tests/bad/runtime_error.lua",
     "bad/runtime_error.lua:4: attempt to index a nil value (local 'settings')"},
    {"tests/bad/error_object.lua", "bad/error_object.lua:2: (error object is a table value)"},
    {"tests/bad/returns_nothing.lua", "bad/returns_nothing.lua: the pipeline must return a table"},
    {"tests/bad/extend_nil.lua",
     "bad/extend_nil.lua:3: extend: the base must be a table (got nil)"},
    {"tests/bad/require_missing.lua",
     "bad/require_missing.lua:2: require \"no_such_base\": no file no_such_base.lua in the "
     "pipeline search path (tests/bad)"},
    /* sandbox */
    {"tests/bad/sandbox_os_execute.lua",
     "bad/sandbox_os_execute.lua:3: 'os' is not available in pipelines (sandbox)"},
    {"tests/bad/sandbox_io_open.lua",
     "bad/sandbox_io_open.lua:2: 'io' is not available in pipelines (sandbox)"},
    {"tests/bad/sandbox_dofile.lua",
     "bad/sandbox_dofile.lua:2: 'dofile' is not available in pipelines (sandbox)"},
    {"tests/bad/sandbox_debug.lua",
     "bad/sandbox_debug.lua:2: 'debug' is not available in pipelines (sandbox)"},
    {"tests/bad/sandbox_bytecode.lua",
     "bad/sandbox_bytecode.lua:2: load: binary chunks (bytecode) are not allowed in pipelines"},
    {"tests/bad/sandbox_require_outside.lua",
     "bad/sandbox_require_outside.lua:2: require \"../../pipelines/base\": outside the pipeline "
     "search path (sandbox)"},
    {"tests/bad/sandbox_require_absolute.lua",
     "bad/sandbox_require_absolute.lua:2: require \"/etc/passwd\": outside the pipeline search "
     "path (sandbox)"},
    {"tests/bad/endless_loop.lua",
     "bad/endless_loop.lua:4: pipeline ran too long (more than 100 million Lua instructions); "
     "endless loop?"},
    {"tests/bad/pcall_loop.lua", "bad/pcall_loop.lua:3: pipeline ran too long"},
    {"tests/bad/memory_hog.lua",
     "bad/memory_hog.lua: out of memory: a pipeline may use at most 256 MB"},
    /* keys and types */
    {"tests/bad/unknown_key.lua",
     "bad/unknown_key.lua:3: unknown key 'optimiser' (did you mean 'optimizer'?)"},
    {"tests/bad/unknown_nested_key.lua",
     "bad/unknown_nested_key.lua:4: unknown key 'model.dept' (did you mean 'model.depth'?)"},
    {"tests/bad/wrong_type.lua",
     "bad/wrong_type.lua:3: schedule.steps must be an integer (got string 'ten')"},
    {"tests/bad/fractional_steps.lua",
     "bad/fractional_steps.lua:3: schedule.steps must be an integer (got number 3.5)"},
    {"tests/bad/missing_model.lua",
     "bad/missing_model.lua:2: model is required, e.g. model = { preset = \"tiny\" }"},
    {"tests/bad/bad_precision.lua",
     "bad/bad_precision.lua:3: precision must be one of fp32, bf16, fp16 (got string 'fp64'"},
    /* the model's input constraints */
    {"tests/bad/grid_order.lua",
     "bad/grid_order.lua:5: data.image_grid_thw[1] = [24, 24, 1]: the order is [t, h, w]; did "
     "you mean [1, 24, 24]?"},
    {"tests/bad/grid_odd_h.lua",
     "bad/grid_odd_h.lua:6: data.image_grid_thw[2] = [1, 23, 24]: h = 23 is not a multiple of "
     "spatial_merge_size 2"},
    {"tests/bad/grid_odd_w.lua",
     "bad/grid_odd_w.lua:4: data.image_grid_thw[1] = [1, 16, 15]: w = 15 is not a multiple of "
     "spatial_merge_size 2"},
    {"tests/bad/image_too_small.lua",
     "bad/image_too_small.lua:3: data.image_size = {2, 16}: each side must be at least "
     "patch_size x spatial_merge_size = 4 pixels"},
    {"tests/bad/head_dim.lua",
     "bad/head_dim.lua:5: head_dim = model.hidden_size / model.num_heads = 6 must be a multiple "
     "of 4"},
    {"tests/bad/fullatt_out_of_range.lua",
     "bad/fullatt_out_of_range.lua:3: model.fullatt_block_indexes has block 4, but model.depth "
     "= 4"},
    {"tests/bad/missing_weights.lua",
     "bad/missing_weights.lua:3: model.weights: no such file 'missing.safetensors'"},
    /* strategy */
    {"tests/bad/unknown_strategy.lua",
     "bad/unknown_strategy.lua:3: strategy.kind must be one of surgery, detach, lora, full (got "
     "string 'surgry'; did you mean 'surgery'?)"},
    {"tests/bad/option_of_other_kind.lua",
     "bad/option_of_other_kind.lua:3: strategy.replace is an option of surgery, not of lora"},
    {"tests/bad/lora_rank_zero.lua",
     "bad/lora_rank_zero.lua:3: strategy.rank must be between 1 and 4096 (got 0)"},
    {"tests/bad/lora_bad_target.lua",
     "bad/lora_bad_target.lua:4: strategy.targets[2] = 'visual.merger.mlp.1' is not a Linear of "
     "the tower"},
    {"tests/bad/surgery_bad_block.lua",
     "bad/surgery_bad_block.lua:3: strategy.replace = 'visual.blocks.4.attn.qkv' is not a Linear "
     "of the tower (did you mean 'visual.blocks.0.attn.qkv'?)"},
    /* head, loss, optimizer, schedule, checks */
    {"tests/bad/loss_mismatch.lua",
     "bad/loss_mismatch.lua:3: loss = \"mse\" does not fit a classifier head"},
    {"tests/bad/negative_lr.lua", "bad/negative_lr.lua:4: optimizer.lr must be > 0 (got -0.001)"},
    {"tests/bad/bad_betas.lua",
     "bad/bad_betas.lua:3: optimizer.betas[2] must be in [0, 1) (got 1.5)"},
    {"tests/bad/zero_batch.lua", "bad/zero_batch.lua:3: schedule.batch_size must be between 1"},
    {"tests/bad/batch_over_samples.lua",
     "bad/batch_over_samples.lua:3: schedule.batch_size = 16 is larger than data.samples = 8"},
    {"tests/bad/grad_accum_zero.lua",
     "bad/grad_accum_zero.lua:3: schedule.grad_accum must be between 1 and 1048576 (got 0)"},
    {"tests/bad/grad_accum_negative.lua",
     "bad/grad_accum_negative.lua:3: schedule.grad_accum must be between 1 and 1048576 (got -1)"},
    {"tests/bad/grad_accum_fractional.lua",
     "bad/grad_accum_fractional.lua:3: schedule.grad_accum must be an integer (got number 2.5)"},
    {"tests/bad/grad_accum_over_samples.lua",
     "bad/grad_accum_over_samples.lua:3: schedule.batch_size x schedule.grad_accum = 10 images is "
     "more than data.samples = 8"},
    {"tests/bad/inject_past_end.lua",
     "bad/inject_past_end.lua:4: checks.inject.step = 4 is past the last step 3"},
    /* data sources, evaluation, schedules */
    {"tests/bad/images_without_dir.lua",
     "bad/images_without_dir.lua:3: data.dir is required with source = \"images\""},
    {"tests/bad/shards_empty.lua", "bad/shards_empty.lua:3: data.shards is empty"},
    {"tests/bad/shards_unbalanced.lua",
     "bad/shards_unbalanced.lua:5: data.shards[2] = 'val-{000..003.tar' has an unbalanced brace"},
    {"tests/bad/images_with_samples.lua",
     "bad/images_with_samples.lua:3: data.samples is an option of synthetic, not of images"},
    {"tests/bad/stop_without_eval.lua",
     "bad/stop_without_eval.lua:4: schedule.stop needs an evaluation to watch"},
    {"tests/bad/stop_metric_mismatch.lua",
     "bad/stop_metric_mismatch.lua:4: schedule.stop.metric = \"eval/mse\" is a regression "
     "head's"},
    {"tests/bad/eval_data_and_split.lua",
     "bad/eval_data_and_split.lua:5: give eval.data (a set) or eval.split (a fraction of data), "
     "not both"},
    {"tests/bad/processor_min_over_max.lua",
     "bad/processor_min_over_max.lua:3: processor.min_pixels = 50176 is more than "
     "processor.max_pixels = 3136"},
    {"tests/bad/min_lr_over_lr.lua",
     "bad/min_lr_over_lr.lua:3: optimizer.min_lr = 0.01 must be less than optimizer.lr = 0.001"},
};

#define N_BAD_CASES (sizeof bad_cases / sizeof bad_cases[0])

#endif
