/*
 * defaults.h - the DSL's default values, in one place.
 *
 * The strategy constructors (prelude.c) show these as the defaults of the
 * tables they return, and the converter (convert_*.c) applies them to any
 * field a pipeline leaves out; docs/pipelines.md lists them.
 */
#ifndef ORCH_LUA_DEFAULTS_H
#define ORCH_LUA_DEFAULTS_H

/* model: std of the normal init of a tower without weights (HF) */
#define DSL_DEFAULT_INITIALIZER_RANGE 0.02

/* strategies (PEFT-like) */
#define DSL_DEFAULT_SURGERY_REPLACE "visual.merger.mlp.2"
#define DSL_DEFAULT_DETACH_ADAPTER  "linear"
#define DSL_DEFAULT_LORA_RANK       8
#define DSL_DEFAULT_LORA_ALPHA      8.0
#define DSL_DEFAULT_LORA_DROPOUT    0.0
#define DSL_DEFAULT_LORA_TARGET_0   "visual.merger.mlp.0"
#define DSL_DEFAULT_LORA_TARGET_1   "visual.merger.mlp.2"

/* optimizer */
#define DSL_DEFAULT_ADAMW_WEIGHT_DECAY 0.01
#define DSL_DEFAULT_SGD_WEIGHT_DECAY   0.0
#define DSL_DEFAULT_BETA1              0.9
#define DSL_DEFAULT_BETA2              0.999
#define DSL_DEFAULT_EPS                1e-8
#define DSL_DEFAULT_GRAD_CLIP          0.0

/* loss scaling */
#define DSL_DEFAULT_LOSS_SCALE_INIT   1.0
#define DSL_DEFAULT_LOSS_SCALE_GROWTH 2000

#endif
