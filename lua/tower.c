/* tower.c - presets and module names of the vision tower; see tower.h. */
#include "lua/tower.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lua/suggest.h"

typedef struct preset {
    const char *name;
    orch_model_config config;
} preset;

#define TOWER(d, hid, heads, inter, patch, win, out, nf, ...)                                      \
    {                                                                                              \
        .depth = (d), .hidden_size = (hid), .num_heads = (heads), .intermediate_size = (inter),    \
        .patch_size = (patch), .temporal_patch_size = 2, .in_channels = 3,                         \
        .spatial_merge_size = 2, .window_size = (win), .out_hidden_size = (out),                   \
        .initializer_range = 0.02, .n_fullatt = (nf), .fullatt_block_indexes = {                   \
            __VA_ARGS__                                                                            \
        }                                                                                          \
    }

static const preset presets[] = {
    {"tiny", TOWER(4, 32, 4, 40, 2, 8, 24, 2, 1, 3)},
    {"small", TOWER(8, 128, 4, 344, 14, 112, 256, 2, 3, 7)},
    {"qwen2.5-vl-3b", TOWER(32, 1280, 16, 3420, 14, 112, 2048, 4, 7, 15, 23, 31)},
    {"qwen2.5-vl-7b", TOWER(32, 1280, 16, 3420, 14, 112, 3584, 4, 7, 15, 23, 31)},
};

const char *const dsl_preset_names[] = {"tiny", "small", "qwen2.5-vl-3b", "qwen2.5-vl-7b"};
const size_t dsl_n_presets = sizeof presets / sizeof presets[0];

int dsl_preset(const char *name, orch_model_config *out)
{
    for (size_t i = 0; i < dsl_n_presets; i++) {
        if (strcmp(presets[i].name, name) == 0) {
            *out = presets[i].config;
            return 0;
        }
    }
    return -1;
}

static const char *const block_linears[] = {"attn.qkv", "attn.proj", "mlp.gate_proj", "mlp.up_proj",
                                            "mlp.down_proj"};
/* Stage names as core/graph_build.c names its nodes (keep in sync). */
static const char *const block_others[] = {"norm1", "attn",       "attn_residual",
                                           "norm2", "mlp.act_fn", "mlp_residual"};
static const char *const merger_linears[] = {"visual.merger.mlp.0", "visual.merger.mlp.2"};
static const char *const other_stages[] = {"visual.patch_embed.proj",
                                           "visual.merger.ln_q",
                                           "visual.merger.mlp.1",
                                           "visual.merger.unpermute",
                                           "adapter",
                                           "adapter.0",
                                           "adapter.1",
                                           "adapter.2",
                                           "pool",
                                           "head",
                                           "loss"};

#define N_OF(a) (sizeof(a) / sizeof((a)[0]))

/* If name is "visual.blocks.N" or "visual.blocks.N.REST" with N < depth,
 * returns REST ("" for the block itself), else NULL. */
static const char *block_rest(const char *name, int depth)
{
    static const char prefix[] = "visual.blocks.";
    if (strncmp(name, prefix, sizeof prefix - 1) != 0)
        return NULL;
    const char *p = name + sizeof prefix - 1;
    if (*p < '0' || *p > '9' || (p[0] == '0' && p[1] >= '0' && p[1] <= '9'))
        return NULL;
    char *end;
    long n = strtol(p, &end, 10);
    if (n < 0 || n >= depth)
        return NULL;
    if (*end == '\0')
        return end;
    return *end == '.' ? end + 1 : NULL;
}

static int in_list(const char *name, const char *const *list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(name, list[i]) == 0)
            return 1;
    return 0;
}

int dsl_is_linear(const char *name, int depth)
{
    const char *rest = block_rest(name, depth);
    if (rest != NULL)
        return in_list(rest, block_linears, N_OF(block_linears));
    return in_list(name, merger_linears, N_OF(merger_linears));
}

int dsl_is_stage(const char *name, int depth)
{
    const char *rest = block_rest(name, depth);
    if (rest != NULL)
        return in_list(rest, block_linears, N_OF(block_linears)) ||
               in_list(rest, block_others, N_OF(block_others));
    return in_list(name, merger_linears, N_OF(merger_linears)) ||
           in_list(name, other_stages, N_OF(other_stages));
}

typedef struct nearest {
    const char *name;
    int limit, best;
    char *out;
    size_t n;
} nearest;

static void consider(nearest *nr, const char *cand)
{
    int d = dsl_edit_distance(nr->name, cand);
    if (d <= nr->limit && (nr->best < 0 || d < nr->best)) {
        nr->best = d;
        snprintf(nr->out, nr->n, "%s", cand);
    }
}

void dsl_nearest_module(const char *name, int depth, int linear_only, char *out, size_t n)
{
    int limit = (int)(strlen(name) / 3);
    nearest nr = {name, limit < 2 ? 2 : limit, -1, out, n};
    out[0] = '\0';
    for (size_t i = 0; i < N_OF(merger_linears); i++)
        consider(&nr, merger_linears[i]);
    for (size_t i = 0; !linear_only && i < N_OF(other_stages); i++)
        consider(&nr, other_stages[i]);
    char cand[96];
    for (int b = 0; b < depth; b++) {
        for (size_t i = 0; i < N_OF(block_linears); i++) {
            snprintf(cand, sizeof cand, "visual.blocks.%d.%s", b, block_linears[i]);
            consider(&nr, cand);
        }
        for (size_t i = 0; !linear_only && i < N_OF(block_others); i++) {
            snprintf(cand, sizeof cand, "visual.blocks.%d.%s", b, block_others[i]);
            consider(&nr, cand);
        }
    }
}
