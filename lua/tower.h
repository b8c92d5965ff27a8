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
 * Module names follow Hugging Face. Stage names (checks.inject.stage) and
 * the Linears strategies name are those of the graph core/graph_build.c
 * builds, looked up in it.
 */
#ifndef ORCH_LUA_TOWER_H
#define ORCH_LUA_TOWER_H

#include <stddef.h>

#include "core/pipeline.h"

/* Fills *out with the preset name (one of the names of model.preset in the
 * field table, core/pipeline_fields.h); returns 0, or -1 for an unknown
 * name. */
int dsl_preset(const char *name, orch_model_config *out);

/* Looks name up among the stages of the graph core/graph.h builds for p
 * (so there is no second list of stage names to keep in sync): every node
 * of p's graph, or with linears_only the Linears of the tower a strategy
 * may replace or adapt (visual.blocks.N.* and visual.merger.*). Returns 1
 * if name is one; 0 if not, with the nearest name in near for "did you
 * mean" ("" when nothing is close); -1 when out of memory. p must have its
 * model, strategy and head converted. */
int dsl_find_stage(const orch_pipeline *p, const char *name, int linears_only, char *near,
                   size_t n);

#endif
