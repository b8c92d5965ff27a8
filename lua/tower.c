/* tower.c - presets and module names of the vision tower; see tower.h. */
#include "lua/tower.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/graph.h"
#include "core/pipeline_fields.h"
#include "lua/suggest.h"

#define TOWER(d, hid, heads, inter, patch, win, out, nf, ...)                                      \
    {                                                                                              \
        .depth = (d), .hidden_size = (hid), .num_heads = (heads), .intermediate_size = (inter),    \
        .patch_size = (patch), .temporal_patch_size = 2, .in_channels = 3,                         \
        .spatial_merge_size = 2, .window_size = (win), .out_hidden_size = (out),                   \
        .initializer_range = 0.02, .n_fullatt = (nf), .fullatt_block_indexes = {                   \
            __VA_ARGS__                                                                            \
        }                                                                                          \
    }

/* In the order of the names of model.preset in the field table
 * (core/pipeline_fields.c): tiny, small, qwen2.5-vl-3b, qwen2.5-vl-7b. */
static const orch_model_config presets[] = {
    TOWER(4, 32, 4, 40, 2, 8, 24, 2, 1, 3),
    TOWER(8, 128, 4, 344, 14, 112, 256, 2, 3, 7),
    TOWER(32, 1280, 16, 3420, 14, 112, 2048, 4, 7, 15, 23, 31),
    TOWER(32, 1280, 16, 3420, 14, 112, 3584, 4, 7, 15, 23, 31),
};

int dsl_preset(const char *name, orch_model_config *out)
{
    const orch_field *f = orch_field_get("model.preset");
    ORCH_ASSERT(f->n_names == sizeof presets / sizeof presets[0]);
    for (size_t i = 0; i < f->n_names; i++)
        if (strcmp(f->names[i], name) == 0) {
            *out = presets[i];
            return 0;
        }
    return -1;
}

/* A Linear the strategies may target: in a vision block or the merger
 * (not the patch embedding, a Conv3d in Hugging Face, nor adapter or head,
 * which are the run's own). */
static int is_tower_linear(const orch_node *n)
{
    return n->op == ORCH_OP_LINEAR &&
           (n->block >= 0 || strncmp(n->stage, "visual.merger.", 14) == 0);
}

int dsl_find_stage(const orch_pipeline *p, const char *name, int linears_only, char *near, size_t n)
{
    near[0] = '\0';
    /* the Linears of the tower are those of the graph without a strategy's
     * changes (LoRA turns them into other ops) */
    orch_pipeline *q = malloc(sizeof *q);
    if (q == NULL)
        return -1;
    *q = *p;
    if (linears_only)
        q->strategy.kind = ORCH_STRATEGY_FULL;
    orch_graph g;
    orch_err err;
    int rc = orch_graph_build(q, &g, &err);
    free(q);
    if (rc != ORCH_OK) {
        orch_graph_free(&g);
        return -1;
    }
    int found = 0, best = -1, limit = (int)(strlen(name) / 3);
    if (limit < 2)
        limit = 2;
    for (int i = 0; i < g.n_nodes && !found; i++) {
        const orch_node *node = &g.nodes[i];
        if (linears_only && !is_tower_linear(node))
            continue;
        if (strcmp(node->stage, name) == 0) {
            found = 1;
            break;
        }
        int d = dsl_edit_distance(name, node->stage);
        if (d <= limit && (best < 0 || d < best)) {
            best = d;
            snprintf(near, n, "%s", node->stage);
        }
    }
    orch_graph_free(&g);
    if (found)
        near[0] = '\0';
    return found;
}
