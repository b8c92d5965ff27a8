/*
 * tower.h - what the DSL knows about the vision tower: presets and the
 * names of its modules.
 *
 * Presets (docs/qwen25vl-vision.md §1):
 *   tiny           depth 4, hidden 32, heads 4, intermediate 40, patch 2,
 *                  merge 2, window 8, fullatt {1, 3}, out_hidden 24
 *   small          depth 8, hidden 128, heads 4, intermediate 344, patch 14,
 *                  merge 2, window 112, fullatt {3, 7}, out_hidden 256
 *   qwen2.5-vl-3b  depth 32, hidden 1280, heads 16, intermediate 3420,
 *                  patch 14, merge 2, window 112, fullatt {7, 15, 23, 31},
 *                  out_hidden 2048
 *   qwen2.5-vl-7b  as 3b with out_hidden 3584
 * All have temporal_patch_size 2 and in_channels 3.
 *
 * Module names follow Hugging Face: visual.patch_embed,
 * visual.blocks.N.{norm1, attn, attn.qkv, attn.proj, norm2, mlp,
 * mlp.gate_proj, mlp.up_proj, mlp.down_proj}, visual.merger,
 * visual.merger.{ln_q, mlp.0, mlp.1, mlp.2}. The Linear layers are qkv,
 * proj, gate_proj, up_proj, down_proj of every block and merger.mlp.0/2.
 */
#ifndef ORCH_LUA_TOWER_H
#define ORCH_LUA_TOWER_H

#include <stddef.h>

#include "core/pipeline.h"

/* The preset names, in documentation order. */
extern const char *const dsl_preset_names[];
extern const size_t dsl_n_presets;

/* Fills *out with preset name; returns 0, or -1 for an unknown name. */
int dsl_preset(const char *name, orch_model_config *out);

/* 1 if name is a Linear of a tower of the given depth. */
int dsl_is_linear(const char *name, int depth);

/* 1 if name is a module (stage) of a tower of the given depth, or one of
 * the stages after the tower: "adapter", "head", "loss". */
int dsl_is_stage(const char *name, int depth);

/* The valid name nearest to name (a Linear when linear_only, else any
 * stage) for "did you mean"; writes "" when nothing is close. */
void dsl_nearest_module(const char *name, int depth, int linear_only, char *out, size_t n);

#endif
