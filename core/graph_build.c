/* graph_build.c - the tower as stages, and the strategies as graph
 * transformations; see graph.h. */
#include "core/graph.h"

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

static const char *const op_names[ORCH_OP__COUNT] = {
    [ORCH_OP_LINEAR] = "linear",
    [ORCH_OP_LORA_LINEAR] = "lora_linear",
    [ORCH_OP_RMSNORM] = "rmsnorm",
    [ORCH_OP_ATTENTION] = "attention",
    [ORCH_OP_SWIGLU] = "swiglu",
    [ORCH_OP_GELU] = "gelu",
    [ORCH_OP_ADD] = "add",
    [ORCH_OP_UNPERMUTE] = "unpermute",
    [ORCH_OP_MEAN_POOL] = "mean_pool",
    [ORCH_OP_CROSS_ENTROPY] = "cross_entropy",
    [ORCH_OP_MSE] = "mse",
};
_Static_assert(ORCH_OP__COUNT == 11, "adding an op: update op_names, exec.c and the docs");

const char *orch_op_name(orch_op op)
{
    ORCH_ASSERT((unsigned)op < ORCH_OP__COUNT);
    return op_names[op];
}

const char *orch_group_name(orch_group group)
{
    static const char *const names[ORCH_GROUP__COUNT] = {
        "frozen", "replacement", "adapter", "lora_A", "lora_B", "head", "tower"};
    ORCH_ASSERT((unsigned)group < ORCH_GROUP__COUNT);
    return names[group];
}

/* ------------------------------------------------------------ builders */

/* Grows an array of elem-sized items to hold one more; NULL on failure. */
static void *grow(void *items, int *cap, int count, size_t elem)
{
    if (count < *cap)
        return items;
    int new_cap = *cap ? *cap * 2 : 64;
    void *grown = realloc(items, (size_t)new_cap * elem);
    if (grown != NULL)
        *cap = new_cap;
    return grown;
}

static int add_tensor(orch_graph *g, const char *name, orch_rows rows, int cols, int is_aux)
{
    orch_tensor *grown = grow(g->tensors, &g->cap_tensors, g->n_tensors, sizeof *g->tensors);
    if (grown == NULL)
        return -1;
    g->tensors = grown;
    orch_tensor *t = &g->tensors[g->n_tensors];
    memset(t, 0, sizeof *t);
    /* The builder makes every name; one that does not fit is a bug, and a
     * silently cut name would merge two stages' records. */
    size_t len = strlen(name);
    ORCH_ASSERT(len < sizeof t->name);
    memcpy(t->name, name, len + 1);
    t->rows = rows;
    t->cols = cols;
    t->view_of = -1;
    t->alias_of = -1;
    t->is_aux = is_aux;
    return g->n_tensors++;
}

static int add_param(orch_graph *g, const char *name, int ndim, const int64_t *shape,
                     orch_param_role role, int fan_in)
{
    orch_param *grown = grow(g->params, &g->cap_params, g->n_params, sizeof *g->params);
    if (grown == NULL)
        return -1;
    g->params = grown;
    orch_param *p = &g->params[g->n_params];
    memset(p, 0, sizeof *p);
    /* The builder makes every name; one that does not fit is a bug, and a
     * silently cut name would merge two stages' records. */
    size_t len = strlen(name);
    ORCH_ASSERT(len < sizeof p->name);
    memcpy(p->name, name, len + 1);
    p->ndim = ndim;
    p->numel = 1;
    for (int i = 0; i < ndim; i++) {
        p->shape[i] = shape[i];
        p->numel *= shape[i];
    }
    p->rows = ndim == 1 ? 1 : (int)shape[0];
    p->cols = (int)(p->numel / p->rows);
    p->role = role;
    p->fan_in = fan_in;
    return g->n_params++;
}

static orch_node *add_node(orch_graph *g, const char *stage, orch_op op)
{
    orch_node *grown = grow(g->nodes, &g->cap_nodes, g->n_nodes, sizeof *g->nodes);
    if (grown == NULL)
        return NULL;
    g->nodes = grown;
    orch_node *n = &g->nodes[g->n_nodes++];
    memset(n, 0, sizeof *n);
    snprintf(n->stage, sizeof n->stage, "%s", stage);
    n->op = op;
    for (int i = 0; i < ORCH_NODE_MAX_IN; i++)
        n->in[i] = -1;
    for (int i = 0; i < ORCH_NODE_MAX_PARAM; i++)
        n->param[i] = -1;
    for (int i = 0; i < ORCH_NODE_MAX_AUX; i++)
        n->aux[i] = -1;
    n->out = -1;
    n->block = -1;
    return n;
}

/* A stage with one input and one output tensor "<stage>:out". Returns the
 * output id, -1 on allocation failure. */
static int add_simple(orch_graph *g, const char *stage, orch_op op, int in0, int in1,
                      orch_rows rows, int cols)
{
    char name[ORCH_NAME_MAX + 32];
    snprintf(name, sizeof name, "%s:out", stage);
    int out = add_tensor(g, name, rows, cols, 0);
    orch_node *n = out < 0 ? NULL : add_node(g, stage, op);
    if (n == NULL)
        return -1;
    n->in[0] = in0;
    n->in[1] = in1;
    n->out = out;
    return out;
}

/* Linear stage "stage" with parameters "<stage>.weight" (shape given, or
 * (out, in)) and optionally "<stage>.bias". */
static int add_linear_shaped(orch_graph *g, const char *stage, int in, int in_dim, int out_dim,
                             int bias, orch_rows rows, int w_ndim, const int64_t *w_shape)
{
    int out = add_simple(g, stage, ORCH_OP_LINEAR, in, -1, rows, out_dim);
    if (out < 0)
        return -1;
    char name[ORCH_NAME_MAX + 32];
    int64_t shape2[2] = {out_dim, in_dim};
    snprintf(name, sizeof name, "%s.weight", stage);
    int w = add_param(g, name, w_ndim ? w_ndim : 2, w_ndim ? w_shape : shape2, ORCH_PARAM_WEIGHT,
                      in_dim);
    int b = -1;
    if (bias) {
        int64_t bshape[1] = {out_dim};
        snprintf(name, sizeof name, "%s.bias", stage);
        b = add_param(g, name, 1, bshape, ORCH_PARAM_BIAS, in_dim);
    }
    if (w < 0 || (bias && b < 0))
        return -1;
    orch_node *n = &g->nodes[g->n_nodes - 1];
    n->param[0] = w;
    n->param[1] = b;
    n->in_dim = in_dim;
    n->out_dim = out_dim;
    return out;
}

static int add_linear(orch_graph *g, const char *stage, int in, int in_dim, int out_dim, int bias,
                      orch_rows rows)
{
    return add_linear_shaped(g, stage, in, in_dim, out_dim, bias, rows, 0, NULL);
}

static int add_rmsnorm(orch_graph *g, const char *stage, int in, int dim, orch_rows rows)
{
    int out = add_simple(g, stage, ORCH_OP_RMSNORM, in, -1, rows, dim);
    if (out < 0)
        return -1;
    char name[ORCH_NAME_MAX + 32];
    int64_t shape[1] = {dim};
    snprintf(name, sizeof name, "%s.weight", stage);
    int w = add_param(g, name, 1, shape, ORCH_PARAM_NORM, dim);
    snprintf(name, sizeof name, "%s:rstd", stage);
    int rstd = add_tensor(g, name, rows, 1, 1);
    if (w < 0 || rstd < 0)
        return -1;
    orch_node *n = &g->nodes[g->n_nodes - 1];
    n->param[0] = w;
    n->aux[0] = rstd;
    n->eps = 1e-6f;
    return out;
}

/* One Qwen2_5_VLVisionBlock; returns the block's output tensor. */
static int add_block(orch_graph *g, int layer, int x, int full)
{
    const orch_model_config *c = &g->config;
    int d = c->hidden_size, inter = c->intermediate_size;
    char stage[ORCH_NAME_MAX];
#define STAGE(fmt) (snprintf(stage, sizeof stage, "visual.blocks.%d." fmt, layer), stage)
    int n1 = add_rmsnorm(g, STAGE("norm1"), x, d, ORCH_ROWS_PATCH);
    int qkv = add_linear(g, STAGE("attn.qkv"), n1, d, 3 * d, 1, ORCH_ROWS_PATCH);
    int att = add_simple(g, STAGE("attn"), ORCH_OP_ATTENTION, qkv, -1, ORCH_ROWS_PATCH, d);
    if (n1 < 0 || qkv < 0 || att < 0)
        return -1;
    orch_node *an = &g->nodes[g->n_nodes - 1];
    an->full_attention = full;
    char name[ORCH_NAME_MAX + 32];
    snprintf(name, sizeof name, "%s:qkv_rotated", stage);
    an->aux[0] = add_tensor(g, name, ORCH_ROWS_PATCH, 3 * d, 1);
    an = &g->nodes[g->n_nodes - 1];
    snprintf(name, sizeof name, "%s:lse", stage);
    an->aux[1] = add_tensor(g, name, ORCH_ROWS_PATCH, c->num_heads, 1);
    an = &g->nodes[g->n_nodes - 1];
    if (an->aux[0] < 0 || an->aux[1] < 0)
        return -1;
    int proj = add_linear(g, STAGE("attn.proj"), att, d, d, 1, ORCH_ROWS_PATCH);
    int r1 = add_simple(g, STAGE("attn_residual"), ORCH_OP_ADD, x, proj, ORCH_ROWS_PATCH, d);
    int n2 = add_rmsnorm(g, STAGE("norm2"), r1, d, ORCH_ROWS_PATCH);
    int gate = add_linear(g, STAGE("mlp.gate_proj"), n2, d, inter, 1, ORCH_ROWS_PATCH);
    int up = add_linear(g, STAGE("mlp.up_proj"), n2, d, inter, 1, ORCH_ROWS_PATCH);
    int act = add_simple(g, STAGE("mlp.act_fn"), ORCH_OP_SWIGLU, gate, up, ORCH_ROWS_PATCH, inter);
    int down = add_linear(g, STAGE("mlp.down_proj"), act, inter, d, 1, ORCH_ROWS_PATCH);
    int r2 = add_simple(g, STAGE("mlp_residual"), ORCH_OP_ADD, r1, down, ORCH_ROWS_PATCH, d);
#undef STAGE
    if (proj < 0 || r1 < 0 || n2 < 0 || gate < 0 || up < 0 || act < 0 || down < 0 || r2 < 0)
        return -1;
    g->tensors[r2].is_block_output = 1;
    return r2;
}

static int is_full_block(const orch_model_config *c, int layer)
{
    for (int i = 0; i < c->n_fullatt; i++)
        if (c->fullatt_block_indexes[i] == layer)
            return 1;
    return 0;
}

static void mark_trainable(orch_graph *g, int param, orch_group group)
{
    if (param < 0)
        return;
    g->params[param].trainable = 1;
    g->params[param].group = group;
}

/* Turns a linear node into PEFT's LoRA linear: adds lora_A (r, in) and
 * lora_B (out, r), trainable; the base weight and bias stay frozen. */
static int apply_lora(orch_graph *g, int node_id, const orch_strategy *s)
{
    orch_node *n = &g->nodes[node_id];
    char name[ORCH_NAME_MAX + 32];
    int64_t a_shape[2] = {s->rank, n->in_dim}, b_shape[2] = {n->out_dim, s->rank};
    snprintf(name, sizeof name, "%s.lora_A.weight", n->stage);
    int a = add_param(g, name, 2, a_shape, ORCH_PARAM_LORA_A, n->in_dim);
    n = &g->nodes[node_id];
    snprintf(name, sizeof name, "%s.lora_B.weight", n->stage);
    int b = add_param(g, name, 2, b_shape, ORCH_PARAM_LORA_B, s->rank);
    n = &g->nodes[node_id];
    if (a >= 0 && b >= 0)
        g->params[a].in_tower = g->params[b].in_tower = g->params[n->param[0]].in_tower;
    snprintf(name, sizeof name, "%s:lora_u", n->stage);
    orch_rows rows = g->tensors[n->out].rows;
    int u = add_tensor(g, name, rows, s->rank, 1);
    if (a < 0 || b < 0 || u < 0)
        return ORCH_ENOMEM;
    int mask = -1;
    if (s->dropout > 0.0) {
        /* the dropout's scaled keep mask, 0 or 1/(1-p), saved for backward */
        n = &g->nodes[node_id];
        snprintf(name, sizeof name, "%s:lora_dropout_mask", n->stage);
        mask = add_tensor(g, name, rows, n->in_dim, 1);
        if (mask < 0)
            return ORCH_ENOMEM;
    }
    n = &g->nodes[node_id];
    n->op = ORCH_OP_LORA_LINEAR;
    n->aux[1] = mask;
    n->dropout = (float)s->dropout;
    n->param[2] = a;
    n->param[3] = b;
    n->aux[0] = u;
    n->rank = s->rank;
    n->scale = (float)(s->alpha / s->rank);
    mark_trainable(g, a, ORCH_GROUP_LORA_A);
    mark_trainable(g, b, ORCH_GROUP_LORA_B);
    return ORCH_OK;
}

static int find_linear(const orch_graph *g, const char *stage, const char *what, orch_err *err)
{
    int id = orch_graph_find_node(g, stage);
    if (id < 0 || g->nodes[id].op != ORCH_OP_LINEAR)
        return orch_seterr(err, ORCH_EINVAL, "%s: '%s' is not a Linear of this tower", what, stage),
               -1;
    return id;
}

/* ---------------------------------------------------------------- build */

int orch_graph_build(const orch_pipeline *p, orch_graph *g, orch_err *err)
{
    memset(g, 0, sizeof *g);
    g->config = p->model.config;
    const orch_model_config *c = &g->config;
    int d = c->hidden_size, out_dim = c->out_hidden_size, unit = c->spatial_merge_size;
    unit *= unit;
    int patch_dim = c->in_channels * c->temporal_patch_size * c->patch_size * c->patch_size;

    g->input = add_tensor(g, "pixel_values", ORCH_ROWS_PATCH, patch_dim, 0);
    int64_t conv_shape[5] = {d, c->in_channels, c->temporal_patch_size, c->patch_size,
                             c->patch_size};
    int x = add_linear_shaped(g, "visual.patch_embed.proj", g->input, patch_dim, d, 0,
                              ORCH_ROWS_PATCH, 5, conv_shape);
    for (int layer = 0; x >= 0 && layer < c->depth; layer++) {
        int first = g->n_nodes;
        x = add_block(g, layer, x, is_full_block(c, layer));
        for (int i = first; x >= 0 && i < g->n_nodes; i++)
            g->nodes[i].block = layer;
    }
    int z = x < 0 ? -1 : add_rmsnorm(g, "visual.merger.ln_q", x, d, ORCH_ROWS_PATCH);
    int z4 = z < 0 ? -1 : add_tensor(g, "visual.merger.ln_q:view", ORCH_ROWS_UNIT, unit * d, 0);
    if (z4 < 0)
        goto nomem;
    g->tensors[z4].view_of = z;
    int a0 = add_linear(g, "visual.merger.mlp.0", z4, unit * d, unit * d, 1, ORCH_ROWS_UNIT);
    int g1 = a0 < 0 ? -1
                    : add_simple(g, "visual.merger.mlp.1", ORCH_OP_GELU, a0, -1, ORCH_ROWS_UNIT,
                                 unit * d);
    int y = g1 < 0 ? -1
                   : add_linear(g, "visual.merger.mlp.2", g1, unit * d, out_dim, 1, ORCH_ROWS_UNIT);
    int vis = y < 0 ? -1
                    : add_simple(g, "visual.merger.unpermute", ORCH_OP_UNPERMUTE, y, -1,
                                 ORCH_ROWS_UNIT, out_dim);
    if (vis < 0)
        goto nomem;
    g->tower_out = vis;
    for (int i = 0; i < g->n_params; i++)
        g->params[i].in_tower = 1;

    const orch_strategy *s = &p->strategy;
    g->checkpoint = p->checkpoint;
    int feat = vis;
    int first_adapter_node = g->n_nodes;
    if (s->kind == ORCH_STRATEGY_DETACH) {
        g->detached = 1;
        if (s->adapter == ORCH_ADAPTER_MLP) {
            int hidden = s->adapter_hidden > 0 ? s->adapter_hidden : out_dim;
            int h0 = add_linear(g, "adapter.0", feat, out_dim, hidden, 1, ORCH_ROWS_UNIT);
            int h1 = h0 < 0
                         ? -1
                         : add_simple(g, "adapter.1", ORCH_OP_GELU, h0, -1, ORCH_ROWS_UNIT, hidden);
            feat = h1 < 0 ? -1 : add_linear(g, "adapter.2", h1, hidden, out_dim, 1, ORCH_ROWS_UNIT);
        } else {
            feat = add_linear(g, "adapter", feat, out_dim, out_dim, 1, ORCH_ROWS_UNIT);
        }
        if (feat < 0)
            goto nomem;
    }
    int end_adapter_node = g->n_nodes;
    int pooled = add_simple(g, "pool", ORCH_OP_MEAN_POOL, feat, -1, ORCH_ROWS_IMAGE, out_dim);
    int n_out = p->head.n_outputs;
    g->logits = pooled < 0 ? -1 : add_linear(g, "head", pooled, out_dim, n_out, 1, ORCH_ROWS_IMAGE);
    orch_op loss_op = p->loss == ORCH_LOSS_MSE ? ORCH_OP_MSE : ORCH_OP_CROSS_ENTROPY;
    g->loss = g->logits < 0 ? -1 : add_simple(g, "loss", loss_op, g->logits, -1, ORCH_ROWS_ONE, 1);
    if (g->loss < 0)
        goto nomem;

    /* Trainability: head and adapter always; then the strategy's own. */
    int head_node = g->n_nodes - 2; /* "head", then "loss" */
    ORCH_ASSERT(g->nodes[head_node].out == g->logits);
    for (int k = 0; k < ORCH_NODE_MAX_PARAM; k++)
        mark_trainable(g, g->nodes[head_node].param[k], ORCH_GROUP_HEAD);
    for (int i = first_adapter_node; i < end_adapter_node; i++)
        for (int k = 0; k < ORCH_NODE_MAX_PARAM; k++)
            mark_trainable(g, g->nodes[i].param[k], ORCH_GROUP_ADAPTER);
    if (s->kind == ORCH_STRATEGY_FULL)
        for (int i = 0; i < g->n_params; i++)
            if (g->params[i].in_tower)
                mark_trainable(g, i, ORCH_GROUP_TOWER);
    if (s->kind == ORCH_STRATEGY_SURGERY) {
        int id = find_linear(g, s->replace, "strategy.replace", err);
        if (id < 0)
            goto fail;
        mark_trainable(g, g->nodes[id].param[0], ORCH_GROUP_REPLACEMENT);
        mark_trainable(g, g->nodes[id].param[1], ORCH_GROUP_REPLACEMENT);
        g->input_requires_grad = s->grad_through_frozen;
    } else if (s->kind == ORCH_STRATEGY_LORA) {
        for (int t = 0; t < s->n_targets; t++) {
            int id = find_linear(g, s->targets[t], "strategy.targets", err);
            if (id < 0)
                goto fail;
            if (apply_lora(g, id, s) != ORCH_OK)
                goto nomem;
        }
    }
    orch_graph_plan_backward(g);
    return ORCH_OK;
nomem:
    orch_seterr(err, ORCH_ENOMEM, "graph: out of memory");
fail:
    orch_graph_free(g);
    return err ? err->code : ORCH_EINVAL;
}

void orch_graph_plan_backward(orch_graph *g)
{
    for (int i = 0; i < g->n_tensors; i++)
        g->tensors[i].requires_grad = 0;
    g->tensors[g->input].requires_grad = g->input_requires_grad && !g->detached;
    for (int i = 0; i < g->n_nodes; i++) {
        orch_node *n = &g->nodes[i];
        ORCH_ASSERT(n->out >= 0 && n->out < g->n_tensors);
        int needs = 0;
        for (int k = 0; k < ORCH_NODE_MAX_IN; k++) {
            int t = n->in[k];
            if (t < 0)
                continue;
            /* detach cuts the graph at the tower's output */
            if (g->detached && t == g->tower_out)
                continue;
            const orch_tensor *tin = &g->tensors[t];
            if (tin->requires_grad || (tin->view_of >= 0 && g->tensors[tin->view_of].requires_grad))
                needs = 1;
        }
        for (int k = 0; k < ORCH_NODE_MAX_PARAM; k++)
            if (n->param[k] >= 0 && g->params[n->param[k]].trainable)
                needs = 1;
        n->needs_backward = needs;
        g->tensors[n->out].requires_grad = needs;
        /* a view shares its source's gradient */
        for (int t = 0; t < g->n_tensors; t++)
            if (g->tensors[t].view_of == n->out)
                g->tensors[t].requires_grad = needs;
    }
}

/* ---------------------------------------------------------------- memory */

int64_t orch_tensor_rows(const orch_tensor *t, int64_t n_patches, int unit, int n_images)
{
    switch (t->rows) {
    case ORCH_ROWS_PATCH:
        return n_patches;
    case ORCH_ROWS_UNIT:
        return n_patches / unit;
    case ORCH_ROWS_IMAGE:
        return n_images;
    case ORCH_ROWS_ONE:
        return 1;
    }
    ORCH_UNREACHABLE();
}

int orch_graph_block_recomputed(const orch_graph *g, int block)
{
    if (!g->checkpoint || block < 0)
        return 0;
    for (int i = 0; i < g->n_nodes; i++) {
        const orch_node *n = &g->nodes[i];
        if (n->block != block)
            continue;
        for (int k = 0; k < ORCH_NODE_MAX_PARAM; k++)
            if (n->param[k] >= 0 && g->params[n->param[k]].trainable)
                return 0;
    }
    return 1;
}

/* The index of block's first node, -1 if the graph has no such block. */
static int block_first_node(const orch_graph *g, int block)
{
    for (int i = 0; i < g->n_nodes; i++)
        if (g->nodes[i].block == block)
            return i;
    return -1;
}

/* Gradient checkpointing: the tensors a recomputed block produces, except
 * its output, reuse the buffers of the same tensors of the first recomputed
 * block; only block inputs/outputs stay resident. A recomputed block is an
 * untouched frozen block (a strategy that changes a block makes it
 * trainable), so its nodes match the first one's node for node. */
static void plan_aliases(orch_graph *g)
{
    int first = -1;
    for (int b = 0; b < g->config.depth && first < 0; b++)
        if (orch_graph_block_recomputed(g, b))
            first = b;
    if (first < 0)
        return;
    int first_start = block_first_node(g, first);
    ORCH_ASSERT(first_start >= 0);
    int start = -1, block = -1;
    for (int i = 0; i < g->n_nodes; i++) {
        const orch_node *n = &g->nodes[i];
        if (n->block <= first || !orch_graph_block_recomputed(g, n->block))
            continue;
        if (n->block != block) {
            block = n->block;
            start = i;
        }
        const orch_node *twin = &g->nodes[first_start + (i - start)];
        ORCH_ASSERT(twin->block == first && twin->op == n->op);
        int produced[1 + ORCH_NODE_MAX_AUX] = {n->out, n->aux[0], n->aux[1], n->aux[2]};
        int owners[1 + ORCH_NODE_MAX_AUX] = {twin->out, twin->aux[0], twin->aux[1], twin->aux[2]};
        for (int k = 0; k < 1 + ORCH_NODE_MAX_AUX; k++) {
            int t = produced[k], owner = owners[k];
            if (t < 0 || g->tensors[t].is_block_output)
                continue;
            ORCH_ASSERT(owner >= 0 && g->tensors[owner].cols == g->tensors[t].cols);
            g->tensors[t].alias_of = owner;
        }
    }
}

/* Whether each tensor owns a gradient buffer: an owner holds one when it
 * or any alias of it needs one (wants_grad has n_tensors entries). */
static void mark_grad_owners(const orch_graph *g, char *wants_grad)
{
    memset(wants_grad, 0, (size_t)g->n_tensors);
    for (int i = 0; i < g->n_tensors; i++) {
        const orch_tensor *t = &g->tensors[i];
        if (t->requires_grad && !t->is_aux)
            wants_grad[t->alias_of >= 0 ? t->alias_of : i] = 1;
    }
}

/* Floats tensor t owns for batches of these limits: 0 for a view or an
 * alias, which use another tensor's memory. */
static int64_t owned_floats(const orch_graph *g, const orch_tensor *t, int64_t max_patches,
                            int max_images)
{
    if (t->view_of >= 0 || t->alias_of >= 0)
        return 0;
    int unit = g->config.spatial_merge_size * g->config.spatial_merge_size;
    return orch_tensor_rows(t, max_patches, unit, max_images) * t->cols;
}

int64_t orch_graph_activation_bytes_for(orch_graph *g, int64_t max_patches, int max_images)
{
    plan_aliases(g);
    char *wants_grad = malloc((size_t)g->n_tensors + 1);
    if (wants_grad == NULL)
        return -1;
    mark_grad_owners(g, wants_grad);
    int64_t bytes = 0;
    for (int i = 0; i < g->n_tensors; i++)
        bytes += owned_floats(g, &g->tensors[i], max_patches, max_images) * (int64_t)sizeof(float) *
                 (wants_grad[i] ? 2 : 1);
    free(wants_grad);
    return bytes;
}

int64_t orch_graph_activation_bytes(const orch_graph *g)
{
    int64_t bytes = 0;
    for (int i = 0; i < g->n_tensors; i++) {
        const orch_tensor *t = &g->tensors[i];
        if (t->view_of >= 0 || t->alias_of >= 0)
            continue;
        bytes += t->cap * (int64_t)sizeof(float) * (t->grad != NULL ? 2 : 1);
    }
    return bytes;
}

/* Reserved memory is faulted in here, at set-up: calloc hands large
 * blocks out as untouched pages, and each first write would otherwise
 * fault them in one by one inside step 0 (gigabytes for the big towers: a
 * first step far slower than the next). Blocks of BIG_BLOCK_BYTES and more
 * are anonymous mappings the kernel populates in one call (MAP_POPULATE),
 * several times faster than touching them page by page from user space
 * (measured on this project's VM: 0.28 s against 4.0-4.7 s for 512 MB;
 * huge-page advice was left out: it stalled in compaction for seconds).
 * Smaller ones come from calloc. Both are zero. block_free takes the size
 * block_alloc was given, which tells the two apart. */
enum { BIG_BLOCK_BYTES = 2 << 20 };

static void *block_alloc(size_t bytes)
{
    if (bytes < BIG_BLOCK_BYTES)
        return calloc(bytes, 1);
    void *block = mmap(NULL, bytes, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
    return block == MAP_FAILED ? NULL : block;
}

static void block_free(void *block, size_t bytes)
{
    if (block == NULL)
        return;
    if (bytes < BIG_BLOCK_BYTES)
        free(block);
    else
        munmap(block, bytes);
}

/* Bytes of the flat blocks: +1 float, so that a graph always has a block
 * (no trainable parameter: one float of gradient). */
static size_t param_block_bytes(int64_t floats)
{
    return ((size_t)floats + 1) * sizeof(float);
}

/* The flat parameter, gradient and optimizer-state blocks, each parameter
 * a view into them: trainable ones first (see orch_graph). */
static int reserve_params(orch_graph *g, orch_err *err)
{
    if (g->param_memory != NULL) {
        /* trainability was fixed by the first reservation */
        for (int i = 0; i < g->n_params; i++)
            ORCH_ASSERT(!g->params[i].trainable == (g->params[i].grad == NULL));
        return ORCH_OK;
    }
    int64_t n_all = 0, n_train = 0;
    for (int i = 0; i < g->n_params; i++) {
        n_all += g->params[i].numel;
        if (g->params[i].trainable)
            n_train += g->params[i].numel;
    }
    g->param_memory = block_alloc(param_block_bytes(n_all));
    g->grad_memory = block_alloc(param_block_bytes(n_train));
    g->opt_memory = block_alloc(param_block_bytes(2 * n_train));
    if (g->param_memory == NULL || g->grad_memory == NULL || g->opt_memory == NULL) {
        block_free(g->param_memory, param_block_bytes(n_all));
        block_free(g->grad_memory, param_block_bytes(n_train));
        block_free(g->opt_memory, param_block_bytes(2 * n_train));
        g->param_memory = g->grad_memory = g->opt_memory = NULL;
        return orch_seterr(err, ORCH_ENOMEM,
                           "graph: out of memory for %lld parameters (%lld trainable)",
                           (long long)n_all, (long long)n_train);
    }
    g->n_param_floats = n_all;
    g->n_trainable_floats = n_train;
    int64_t at_trainable = 0, at_frozen = n_train;
    for (int i = 0; i < g->n_params; i++) {
        orch_param *p = &g->params[i];
        if (p->trainable) {
            p->data = g->param_memory + at_trainable;
            p->grad = g->grad_memory + at_trainable;
            p->m = g->opt_memory + at_trainable;
            p->v = g->opt_memory + n_train + at_trainable;
            at_trainable += p->numel;
        } else {
            p->data = g->param_memory + at_frozen;
            p->grad = p->m = p->v = NULL;
            at_frozen += p->numel;
        }
    }
    ORCH_ASSERT(at_trainable == n_train && at_frozen == n_all);
    return ORCH_OK;
}

float *orch_graph_grads(const orch_graph *g, int64_t *n)
{
    *n = g->grad_memory != NULL ? g->n_trainable_floats : 0;
    return g->grad_memory;
}

float *orch_graph_trainable_values(const orch_graph *g, int64_t *n)
{
    *n = g->param_memory != NULL ? g->n_trainable_floats : 0;
    return g->param_memory;
}

void orch_graph_zero_grad(orch_graph *g)
{
    if (g->grad_memory != NULL)
        memset(g->grad_memory, 0, sizeof(float) * (size_t)g->n_trainable_floats);
}

int orch_graph_reserve(orch_graph *g, int64_t max_patches, int max_images, orch_err *err)
{
    int unit = g->config.spatial_merge_size * g->config.spatial_merge_size;
    int rc = reserve_params(g, err);
    if (rc != ORCH_OK)
        return rc;
    plan_aliases(g);
    char *wants_grad = calloc((size_t)g->n_tensors + 1, 1);
    if (wants_grad == NULL)
        return orch_seterr(err, ORCH_ENOMEM, "graph: out of memory");
    mark_grad_owners(g, wants_grad);
    for (int i = 0; i < g->n_tensors; i++) {
        orch_tensor *t = &g->tensors[i];
        if (t->view_of >= 0 || t->alias_of >= 0)
            continue;
        int64_t cap = owned_floats(g, t, max_patches, max_images);
        if (cap > t->cap) {
            block_free(t->data, sizeof(float) * (size_t)t->cap);
            block_free(t->grad, sizeof(float) * (size_t)t->cap);
            t->data = block_alloc(sizeof(float) * (size_t)cap);
            t->grad = wants_grad[i] ? block_alloc(sizeof(float) * (size_t)cap) : NULL;
            t->cap = cap; /* the size of both blocks, for block_free */
            if (t->data == NULL || (wants_grad[i] && t->grad == NULL)) {
                free(wants_grad);
                return orch_seterr(err, ORCH_ENOMEM, "graph: out of memory for %s (%lld floats)",
                                   t->name, (long long)cap);
            }
        }
    }
    for (int i = 0; i < g->n_tensors; i++) {
        orch_tensor *t = &g->tensors[i];
        if (t->alias_of >= 0) {
            orch_tensor *owner = &g->tensors[t->alias_of];
            t->data = owner->data;
            t->grad = t->requires_grad && !t->is_aux ? owner->grad : NULL;
            t->cap = owner->cap;
        }
    }
    free(wants_grad);
    for (int i = 0; i < g->n_tensors; i++) {
        orch_tensor *t = &g->tensors[i];
        if (t->view_of >= 0) {
            t->data = g->tensors[t->view_of].data;
            t->grad = g->tensors[t->view_of].grad;
            t->cap = g->tensors[t->view_of].cap;
        }
    }
    g->rows_max[ORCH_ROWS_PATCH] = max_patches;
    g->rows_max[ORCH_ROWS_UNIT] = max_patches / unit;
    g->rows_max[ORCH_ROWS_IMAGE] = max_images;
    g->rows_max[ORCH_ROWS_ONE] = 1;
    return ORCH_OK;
}

void orch_graph_free(orch_graph *g)
{
    if (g == NULL)
        return;
    for (int i = 0; i < g->n_tensors; i++) {
        if (g->tensors[i].view_of >= 0 || g->tensors[i].alias_of >= 0)
            continue;
        size_t bytes = sizeof(float) * (size_t)g->tensors[i].cap;
        block_free(g->tensors[i].data, bytes);
        block_free(g->tensors[i].grad, bytes);
    }
    free(g->lowp_memory);
    if (g->param_memory != NULL) {
        block_free(g->param_memory, param_block_bytes(g->n_param_floats));
        block_free(g->grad_memory, param_block_bytes(g->n_trainable_floats));
        block_free(g->opt_memory, param_block_bytes(2 * g->n_trainable_floats));
    }
    free(g->tensors);
    free(g->params);
    free(g->nodes);
    memset(g, 0, sizeof *g);
}

/* --------------------------------------------------------------- lookups */

int orch_graph_find_node(const orch_graph *g, const char *stage)
{
    for (int i = 0; i < g->n_nodes; i++)
        if (strcmp(g->nodes[i].stage, stage) == 0)
            return i;
    return -1;
}

int orch_graph_find_tensor(const orch_graph *g, const char *name)
{
    for (int i = 0; i < g->n_tensors; i++)
        if (strcmp(g->tensors[i].name, name) == 0)
            return i;
    return -1;
}

int orch_graph_find_param(const orch_graph *g, const char *name)
{
    for (int i = 0; i < g->n_params; i++)
        if (strcmp(g->params[i].name, name) == 0)
            return i;
    return -1;
}

int64_t orch_graph_param_count(const orch_graph *g, int64_t *trainable)
{
    int64_t total = 0, train = 0;
    for (int i = 0; i < g->n_params; i++) {
        total += g->params[i].numel;
        if (g->params[i].trainable)
            train += g->params[i].numel;
    }
    if (trainable != NULL)
        *trainable = train;
    return total;
}

void orch_graph_print_dot(const orch_graph *g, FILE *out)
{
    fprintf(out, "digraph orch {\n  rankdir=TB;\n  node [shape=box, fontname=\"monospace\"];\n");
    fprintf(out, "  \"pixel_values\" [shape=ellipse];\n");
    for (int i = 0; i < g->n_nodes; i++) {
        const orch_node *n = &g->nodes[i];
        int trainable = 0;
        for (int k = 0; k < ORCH_NODE_MAX_PARAM; k++)
            if (n->param[k] >= 0 && g->params[n->param[k]].trainable)
                trainable = 1;
        fprintf(out, "  \"%s\" [label=\"%s\\n%s%s\"%s%s];\n", n->stage, n->stage,
                orch_op_name(n->op), trainable ? " (trainable)" : "",
                trainable ? ", style=filled, fillcolor=\"#ffd27f\"" : "",
                n->needs_backward ? "" : ", color=gray");
    }
    for (int i = 0; i < g->n_nodes; i++) {
        const orch_node *n = &g->nodes[i];
        for (int k = 0; k < ORCH_NODE_MAX_IN; k++) {
            int t = n->in[k];
            if (t < 0)
                continue;
            if (g->tensors[t].view_of >= 0)
                t = g->tensors[t].view_of;
            const char *from = "pixel_values";
            for (int j = 0; j < g->n_nodes; j++)
                if (g->nodes[j].out == t)
                    from = g->nodes[j].stage;
            int cut = g->detached && n->in[k] == g->tower_out;
            fprintf(out, "  \"%s\" -> \"%s\"%s;\n", from, n->stage,
                    cut ? " [style=dashed, label=\"detach\"]" : "");
        }
    }
    fprintf(out, "}\n");
}
