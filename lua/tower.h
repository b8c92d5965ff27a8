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
 * Module names follow Hugging Face. The Linear layers are
 * visual.blocks.N.{attn.qkv, attn.proj, mlp.gate_proj, mlp.up_proj,
 * mlp.down_proj} and visual.merger.mlp.{0, 2}. Stages (for checks.inject)
 * are the nodes core/graph_build.c builds: those Linears,
 * visual.blocks.N.{norm1, attn, attn_residual, norm2, mlp.act_fn,
 * mlp_residual}, visual.patch_embed.proj, visual.merger.{ln_q, mlp.1,
 * unpermute}, adapter, adapter.{0, 1, 2}, pool, head and loss.
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

/* 1 if name is a stage of a pipeline whose tower has the given depth. */
int dsl_is_stage(const char *name, int depth);

/* The valid name nearest to name (a Linear when linear_only, else any
 * stage) for "did you mean"; writes "" when nothing is close. */
void dsl_nearest_module(const char *name, int depth, int linear_only, char *out, size_t n);

#endif
