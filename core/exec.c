/* exec.c - forward, backward and finite checks over a graph; see exec.h. */
#include "core/exec.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ------------------------------------------------------------- helpers */

static int64_t rows_of(const orch_exec *ex, int tensor)
{
    return orch_tensor_rows(&ex->graph->tensors[tensor], ex->n_patches, ex->unit, ex->n_images);
}

static int64_t numel_of(const orch_exec *ex, int tensor)
{
    return rows_of(ex, tensor) * ex->graph->tensors[tensor].cols;
}

static float *data_of(const orch_exec *ex, int tensor)
{
    /* reserved before any stage runs (orch_graph_reserve) */
    ORCH_ASSERT(tensor >= 0 && ex->graph->tensors[tensor].data != NULL);
    return ex->graph->tensors[tensor].data;
}

/* The gradient buffer of an input tensor, or NULL when none is wanted
 * (no requires_grad, or the detach cut). */
static float *grad_of_input(const orch_exec *ex, int tensor)
{
    const orch_graph *g = ex->graph;
    if (tensor < 0 || (g->detached && tensor == g->tower_out))
        return NULL;
    const orch_tensor *t = &g->tensors[tensor];
    return t->requires_grad ? t->grad : NULL;
}

/* The values products read: the rounded copy under bf16/fp16. */
static const float *weights_of(const orch_exec *ex, int param)
{
    if (param < 0)
        return NULL;
    const orch_param *p = &ex->graph->params[param];
    return p->lowp != NULL ? p->lowp : p->data;
}

static float *param_grad(const orch_exec *ex, int param)
{
    if (param < 0 || !ex->graph->params[param].trainable)
        return NULL;
    return ex->graph->params[param].grad;
}

static void round_buffer(const orch_exec *ex, float *x, int64_t n)
{
    if (ex->precision == ORCH_BF16)
        orch_round_bf16_buf(x, n);
    else if (ex->precision == ORCH_FP16)
        orch_round_f16_buf(x, n);
}

/* ------------------------------------------------------- finite checks */

/* Largest finite |x| over a stage's inputs (and, in backward, the incoming
 * gradient); only computed on the slow path, when something is bad. */
static void input_stats(const orch_exec *ex, const orch_node *n, orch_phase phase, double *absmax,
                        int *finite)
{
    const orch_graph *g = ex->graph;
    *absmax = 0.0;
    *finite = 1;
    for (int k = 0; k < ORCH_NODE_MAX_IN; k++) {
        if (n->in[k] < 0)
            continue;
        orch_finite_stats s = orch_finite_scan(data_of(ex, n->in[k]), numel_of(ex, n->in[k]));
        if (s.max_abs > *absmax)
            *absmax = s.max_abs;
        if (s.first_bad >= 0)
            *finite = 0;
    }
    for (int k = 0; k < ORCH_NODE_MAX_PARAM; k++) {
        if (n->param[k] < 0)
            continue;
        const orch_param *p = &g->params[n->param[k]];
        orch_finite_stats s = orch_finite_scan(p->data, p->numel);
        if (s.max_abs > *absmax)
            *absmax = s.max_abs;
        if (s.first_bad >= 0)
            *finite = 0;
    }
    if (phase == ORCH_PHASE_BACKWARD && g->tensors[n->out].grad != NULL) {
        orch_finite_stats s = orch_finite_scan(g->tensors[n->out].grad, numel_of(ex, n->out));
        if (s.max_abs > *absmax)
            *absmax = s.max_abs;
        if (s.first_bad >= 0)
            *finite = 0;
    }
}

/* Puts the configured bad value into x[0] when this is the injection
 * point; returns 1 when it did. */
static int maybe_inject(const orch_exec *ex, orch_phase phase, const char *stage,
                        const char *tensor, float *x, int64_t n)
{
    const orch_inject *inj = &ex->inject;
    if (!inj->enabled || ex->evaluating || n <= 0 || inj->step != ex->step || inj->phase != phase ||
        (phase != ORCH_PHASE_UPDATE && ex->image_offset != ex->inject_image) ||
        strcmp(inj->stage, stage) != 0)
        return 0;
    if (inj->tensor[0] != '\0' && strcmp(inj->tensor, tensor) != 0)
        return 0;
    x[0] = inj->value_is_inf ? INFINITY : NAN;
    return 1;
}

/* Scans one tensor a stage produced and reports it when non-finite.
 * known_finite: the kernel that wrote x already found every element
 * finite in a pass of its own (the scan is then skipped, unless an
 * injection has just written into x). */
static void check_known(orch_exec *ex, const orch_node *n, orch_phase phase, const char *tensor,
                        float *x, int64_t count, int known_finite)
{
    if (x == NULL)
        return;
    if (maybe_inject(ex, phase, n->stage, tensor, x, count))
        known_finite = 0;
    if (!ex->check_nan || known_finite)
        return;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    orch_finite_stats s = orch_finite_scan(x, count);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    ex->check_seconds += (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
    if (s.first_bad < 0)
        return;
    ex->nonfinite_seen = 1;
    if (ex->observer == NULL)
        return;
    orch_scan_event ev = {ex->step, phase, n->stage, tensor, s, 0.0, 1};
    input_stats(ex, n, phase, &ev.input_absmax, &ev.inputs_finite);
    ex->observer(ex->observer_ctx, &ev);
}

static void check(orch_exec *ex, const orch_node *n, orch_phase phase, const char *tensor, float *x,
                  int64_t count)
{
    check_known(ex, n, phase, tensor, x, count, 0);
}

/* ------------------------------------------------------------- set-up */

int orch_exec_init(orch_exec *ex, orch_graph *g, const orch_pipeline *p, int64_t max_patches,
                   int max_images, orch_err *err)
{
    memset(ex, 0, sizeof *ex);
    ex->graph = g;
    ex->precision = p->precision;
    ex->check_nan = p->checks.nan;
    ex->inject = p->checks.inject;
    ex->loss_scale = 1.0;
    ex->loss_weight = 1.0;
    ex->seed = p->seed;
    ex->unit = g->config.spatial_merge_size * g->config.spatial_merge_size;
    int head_dim = g->config.hidden_size / g->config.num_heads;
    int d = g->config.hidden_size;
    int n_out = g->tensors[g->logits].cols;
    int32_t one_segment[2] = {0, (int32_t)max_patches};
    ex->scratch_floats = orch_attention_scratch_floats(one_segment, 1, 0);
    int widest = 3 * d;
    for (int i = 0; i < g->n_nodes; i++)
        if (g->nodes[i].rank + g->nodes[i].in_dim > widest && g->nodes[i].op == ORCH_OP_LORA_LINEAR)
            widest = g->nodes[i].rank + g->nodes[i].in_dim;
    ex->work_floats = max_patches * widest;
    ex->grid_images = -1;
    ex->max_grid_images =
        max_images > g->rows_max[ORCH_ROWS_IMAGE] ? max_images : (int)g->rows_max[ORCH_ROWS_IMAGE];
    /* owned: the grids of the last geometry built, freed by orch_exec_free */
    ex->grids = malloc(sizeof(int64_t) * 3 * (size_t)(ex->max_grid_images + 1));
    ex->cos_t = malloc(sizeof(float) * (size_t)(max_patches * head_dim));
    ex->sin_t = malloc(sizeof(float) * (size_t)(max_patches * head_dim));
    ex->labels = calloc((size_t)max_images, sizeof(int32_t));
    ex->targets = calloc((size_t)max_images * (size_t)n_out, sizeof(float));
    ex->scratch = malloc(sizeof(float) * ex->scratch_floats);
    ex->work = malloc(sizeof(float) * (size_t)ex->work_floats);
    if (!ex->cos_t || !ex->sin_t || !ex->labels || !ex->targets || !ex->scratch || !ex->work ||
        !ex->grids) {
        orch_exec_free(ex);
        return orch_seterr(err, ORCH_ENOMEM, "exec: out of memory");
    }
    return ORCH_OK;
}

void orch_exec_free(orch_exec *ex)
{
    if (ex == NULL)
        return;
    orch_geometry_free(&ex->geometry);
    free(ex->cos_t);
    free(ex->sin_t);
    free(ex->labels);
    free(ex->targets);
    free(ex->scratch);
    free(ex->work);
    free(ex->grids);
    memset(ex, 0, sizeof *ex);
}

int orch_exec_set_batch(orch_exec *ex, const orch_batch *batch, orch_err *err)
{
    orch_graph *g = ex->graph;
    const orch_model_config *c = &g->config;
    if (batch->n_patches > g->rows_max[ORCH_ROWS_PATCH] ||
        batch->n_images > g->rows_max[ORCH_ROWS_IMAGE])
        return orch_seterr(
            err, ORCH_EINVAL, "batch of %lld patches / %d images exceeds %lld / %lld",
            (long long)batch->n_patches, batch->n_images, (long long)g->rows_max[ORCH_ROWS_PATCH],
            (long long)g->rows_max[ORCH_ROWS_IMAGE]);
    int patch_dim = g->tensors[g->input].cols;
    if (batch->patch_dim != patch_dim)
        return orch_seterr(err, ORCH_EINVAL,
                           "pixel_values has %d columns; this tower takes %d (C*tp*P*P)",
                           batch->patch_dim, patch_dim);
    size_t grid_bytes = sizeof(int64_t) * 3 * (size_t)batch->n_images;
    int same_grids =
        ex->grid_images == batch->n_images && memcmp(ex->grids, batch->grid_thw, grid_bytes) == 0;
    if (!same_grids) {
        ORCH_ASSERT(batch->n_images <= ex->max_grid_images);
        orch_geometry_free(&ex->geometry);
        ex->grid_images = -1;
        int window_units = c->window_size / c->spatial_merge_size / c->patch_size;
        int rc = orch_geometry_build((const int64_t(*)[3])batch->grid_thw, batch->n_images,
                                     c->spatial_merge_size, window_units, &ex->geometry, err);
        if (rc != ORCH_OK)
            return rc;
    }
    ex->n_patches = batch->n_patches;
    ex->n_images = batch->n_images;

    /* pixel rows into window order, a merge unit at a time */
    float *x = data_of(ex, g->input);
    size_t unit_floats = (size_t)ex->unit * (size_t)patch_dim;
    for (int k = 0; k < ex->geometry.n_units; k++)
        memcpy(x + (size_t)k * unit_floats,
               batch->pixel_values + (size_t)ex->geometry.window_index[k] * unit_floats,
               unit_floats * sizeof(float));
    round_buffer(ex, x, ex->n_patches * patch_dim);

    if (!same_grids) {
        int head_dim = c->hidden_size / c->num_heads;
        int32_t *pos = (int32_t *)ex->work; /* (N, 2) int32 fits in work */
        ORCH_ASSERT(2 * ex->n_patches <= ex->work_floats);
        for (int64_t i = 0; i < ex->n_patches; i++) {
            pos[2 * i] = ex->geometry.pos_h[i];
            pos[2 * i + 1] = ex->geometry.pos_w[i];
        }
        orch_rotary_tables(ex->cos_t, ex->sin_t, pos, (int)ex->n_patches, head_dim, 10000.0f);
        memcpy(ex->grids, batch->grid_thw, grid_bytes);
        ex->grid_images = batch->n_images;
    }

    int n_out = g->tensors[g->logits].cols;
    for (int i = 0; i < batch->n_images; i++) {
        if (batch->label_kind == ORCH_LABEL_CLASS)
            ex->labels[i] = (int32_t)batch->class_labels[i];
        else if (batch->label_kind == ORCH_LABEL_REGRESSION)
            for (int j = 0; j < n_out && j < batch->n_targets; j++)
                ex->targets[i * n_out + j] = batch->targets[(size_t)i * batch->n_targets + j];
    }
    return ORCH_OK;
}

int orch_exec_refresh_lowp(orch_exec *ex, int all, orch_err *err)
{
    if (ex->precision == ORCH_FP32)
        return ORCH_OK;
    orch_graph *g = ex->graph;
    ORCH_ASSERT(g->param_memory != NULL);
    if (g->lowp_memory == NULL) {
        g->lowp_memory = malloc(sizeof(float) * ((size_t)g->n_param_floats + 1));
        if (g->lowp_memory == NULL)
            return orch_seterr(err, ORCH_ENOMEM, "exec: out of memory for %lld rounded parameters",
                               (long long)g->n_param_floats);
        for (int i = 0; i < g->n_params; i++)
            g->params[i].lowp = g->lowp_memory + (g->params[i].data - g->param_memory);
        all = 1;
    }
    /* trainable parameters are the block's prefix (see orch_graph) */
    int64_t n = all ? g->n_param_floats : g->n_trainable_floats;
    memcpy(g->lowp_memory, g->param_memory, sizeof(float) * (size_t)n);
    round_buffer(ex, g->lowp_memory, n);
    return ORCH_OK;
}

/* -------------------------------------------------------------- forward */

/* Returns 1 when the kernel found every output finite. */
static int attention_forward(orch_exec *ex, const orch_node *n)
{
    const orch_model_config *c = &ex->graph->config;
    int d = c->hidden_size, h = c->num_heads, hd = d / h, ld = 3 * d;
    int rows = (int)ex->n_patches;
    const float *qkv = data_of(ex, n->in[0]);
    float *rot = data_of(ex, n->aux[0]);
    orch_rotary_fwd(rot, ld, qkv, ld, ex->cos_t, ex->sin_t, rows, h, hd);
    orch_rotary_fwd(rot + d, ld, qkv + d, ld, ex->cos_t, ex->sin_t, rows, h, hd);
    /* v is read in place from qkv (same row stride): only q and k rotate */
    for (int i = 0; i < rows; i++)
        round_buffer(ex, rot + (size_t)i * ld, 2 * d);
    const int32_t *cu = n->full_attention ? ex->geometry.cu_full : ex->geometry.cu_window;
    int n_seg = n->full_attention ? ex->geometry.n_full_segs : ex->geometry.n_window_segs;
    return orch_attention_fwd_finite(data_of(ex, n->out), data_of(ex, n->aux[1]), ex->scratch,
                                     ex->scratch_floats, rot, rot + d, qkv + 2 * d, ld, cu, n_seg,
                                     h, hd);
}

/* ------------------------------------------------------ LoRA dropout */

static uint64_t mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

/* PEFT's lora_dropout: the branch sees dropout(x), the base sees x. The
 * mask (0 or 1/(1-p)) is a pure function of (seed, step, stage, element),
 * so a recomputed forward and a resumed run draw the same one; the element
 * is counted from the start of the step's global batch (ex->patch_offset),
 * so micro-batches draw the masks one batch of all their images would. */
static void lora_dropout_forward(orch_exec *ex, const orch_node *n, float *y, const float *x,
                                 int rows)
{
    int in = n->in_dim, out = n->out_dim, r = n->rank;
    float *mask = data_of(ex, n->aux[1]);
    float *u = data_of(ex, n->aux[0]);
    float *dropped = ex->work; /* rows x in */
    ORCH_ASSERT((int64_t)rows * in <= ex->work_floats);
    uint64_t stream = mix64(ex->seed ^ mix64((uint64_t)ex->step + 0x9E3779B97F4A7C15ULL));
    for (const char *c = n->stage; *c; c++)
        stream = mix64(stream ^ (uint8_t)*c);
    float keep_scale = 1.0f / (1.0f - n->dropout);
    uint64_t threshold = (uint64_t)((double)n->dropout * 18446744073709551615.0);
    uint64_t first = (uint64_t)orch_tensor_rows(&ex->graph->tensors[n->in[0]], ex->patch_offset,
                                                ex->unit, ex->image_offset) *
                     (uint64_t)in;
    for (int64_t i = 0; i < (int64_t)rows * in; i++) {
        mask[i] = mix64(stream + first + (uint64_t)i) < threshold ? 0.0f : keep_scale;
        dropped[i] = x[i] * mask[i];
    }
    const float *a = weights_of(ex, n->param[2]), *b = weights_of(ex, n->param[3]);
    orch_linear_fwd(y, x, weights_of(ex, n->param[0]), weights_of(ex, n->param[1]), rows, in, out);
    orch_sgemm(rows, r, in, 1.0f, dropped, in, 1, a, 1, in, 0.0f, u, r, 1, ORCH_SUP_AUTO, 0);
    orch_sgemm(rows, out, r, n->scale, u, r, 1, b, 1, r, 1.0f, y, out, 1, ORCH_SUP_AUTO, 0);
}

/* Backward of lora_dropout_forward: dB = s dy^T u; du = s dy B;
 * dA = du^T dropout(x); dx = dy W + mask * (du A). */
static void lora_dropout_backward(orch_exec *ex, const orch_node *n, float *dx, const float *dy,
                                  const float *x, int rows)
{
    int in = n->in_dim, out = n->out_dim, r = n->rank;
    const float *mask = data_of(ex, n->aux[1]);
    const float *u = data_of(ex, n->aux[0]);
    const float *a = weights_of(ex, n->param[2]), *b = weights_of(ex, n->param[3]);
    float *du = ex->work;                     /* rows x r */
    float *tmp = ex->work + (size_t)rows * r; /* rows x in */
    ORCH_ASSERT((int64_t)rows * (r + in) <= ex->work_floats);
    float *da = param_grad(ex, n->param[2]), *db = param_grad(ex, n->param[3]);
    if (db != NULL)
        orch_sgemm(out, r, rows, n->scale, dy, 1, out, u, r, 1, 1.0f, db, r, 1, ORCH_SUP_AUTO, 0);
    orch_sgemm(rows, r, out, n->scale, dy, out, 1, b, r, 1, 0.0f, du, r, 1, ORCH_SUP_AUTO, 0);
    if (da != NULL) {
        for (int64_t i = 0; i < (int64_t)rows * in; i++)
            tmp[i] = x[i] * mask[i];
        orch_sgemm(r, in, rows, 1.0f, du, 1, r, tmp, in, 1, 1.0f, da, in, 1, ORCH_SUP_AUTO, 0);
    }
    if (dx != NULL) {
        orch_linear_bwd(dx, NULL, NULL, dy, x, weights_of(ex, n->param[0]), rows, in, out);
        orch_sgemm(rows, in, r, 1.0f, du, r, 1, a, in, 1, 0.0f, tmp, in, 1, ORCH_SUP_AUTO, 0);
        for (int64_t i = 0; i < (int64_t)rows * in; i++)
            dx[i] += tmp[i] * mask[i];
    }
}

/* Runs one stage forward. Returns 1 when the stage's kernel found every
 * output finite in a pass it makes anyway (the NaN check then needs no
 * scan), 0 when nothing is known. */
static int node_forward(orch_exec *ex, const orch_node *n)
{
    const orch_graph *g = ex->graph;
    float *y = data_of(ex, n->out);
    const float *x = n->in[0] >= 0 ? data_of(ex, n->in[0]) : NULL;
    int rows = (int)rows_of(ex, n->out);
    int64_t count = numel_of(ex, n->out);
    int finite = 0;
    /* with NaN checks on, element-wise forwards scan their output block by
     * block while it is still in L1 (kernels' *_fwd_scan), instead of a
     * second pass over memory */
    int fuse = ex->check_nan && ex->precision == ORCH_FP32;
    switch (n->op) {
    case ORCH_OP_LINEAR:
        if (n->param[1] >= 0)
            finite =
                orch_linear_fwd_finite(y, x, weights_of(ex, n->param[0]),
                                       weights_of(ex, n->param[1]), rows, n->in_dim, n->out_dim);
        else
            orch_linear_fwd(y, x, weights_of(ex, n->param[0]), NULL, rows, n->in_dim, n->out_dim);
        break;
    case ORCH_OP_LORA_LINEAR:
        if (n->aux[1] >= 0 && !ex->evaluating)
            lora_dropout_forward(ex, n, y, x, rows);
        else
            orch_lora_linear_fwd(y, data_of(ex, n->aux[0]), x, weights_of(ex, n->param[0]),
                                 weights_of(ex, n->param[1]), weights_of(ex, n->param[2]),
                                 weights_of(ex, n->param[3]), n->scale, rows, n->in_dim, n->out_dim,
                                 n->rank);
        break;
    case ORCH_OP_RMSNORM:
        if (fuse)
            finite =
                orch_rmsnorm_fwd_scan(y, data_of(ex, n->aux[0]), x, weights_of(ex, n->param[0]),
                                      n->eps, rows, g->tensors[n->out].cols)
                    .first_bad < 0;
        else
            orch_rmsnorm_fwd(y, data_of(ex, n->aux[0]), x, weights_of(ex, n->param[0]), n->eps,
                             rows, g->tensors[n->out].cols);
        break;
    case ORCH_OP_ATTENTION:
        finite = attention_forward(ex, n);
        break;
    case ORCH_OP_SWIGLU:
        if (fuse)
            finite = orch_swiglu_fwd_scan(y, x, data_of(ex, n->in[1]), count).first_bad < 0;
        else
            orch_swiglu_fwd(y, x, data_of(ex, n->in[1]), count);
        break;
    case ORCH_OP_GELU:
        if (fuse)
            finite = orch_gelu_fwd_scan(y, x, count, 0).first_bad < 0;
        else
            orch_gelu_fwd(y, x, count, 0);
        break;
    case ORCH_OP_ADD:
        if (fuse)
            finite = orch_add_fwd_scan(y, x, data_of(ex, n->in[1]), count).first_bad < 0;
        else
            orch_add_fwd(y, x, data_of(ex, n->in[1]), count);
        break;
    case ORCH_OP_UNPERMUTE: {
        int cols = g->tensors[n->out].cols;
        for (int k = 0; k < rows; k++)
            memcpy(y + (size_t)ex->geometry.window_index[k] * cols, x + (size_t)k * cols,
                   sizeof(float) * cols);
        break;
    }
    case ORCH_OP_MEAN_POOL:
        orch_mean_pool_fwd(y, x, ex->geometry.cu_image_units, ex->n_images,
                           g->tensors[n->out].cols);
        break;
    case ORCH_OP_CROSS_ENTROPY:
        y[0] = orch_cross_entropy_fwd(NULL, x, ex->labels, ex->n_images, g->tensors[n->in[0]].cols);
        break;
    case ORCH_OP_MSE:
        y[0] = orch_mse_fwd(x, ex->targets, numel_of(ex, n->in[0]));
        break;
    case ORCH_OP__COUNT:
        ORCH_UNREACHABLE();
    }
    if (n->op != ORCH_OP_CROSS_ENTROPY && n->op != ORCH_OP_MSE)
        round_buffer(ex, y, count);
    /* fp16 rounding turns large finite values into Inf (and bf16 the
     * largest ones): what the kernel saw before rounding no longer holds */
    return ex->precision == ORCH_FP32 ? finite : 0;
}

double orch_exec_forward(orch_exec *ex)
{
    return orch_exec_forward_from(ex, 0);
}

int orch_exec_tower_end(const orch_exec *ex)
{
    const orch_graph *g = ex->graph;
    for (int i = 0; i < g->n_nodes; i++)
        if (g->nodes[i].out == g->tower_out)
            return i + 1;
    ORCH_UNREACHABLE(); /* every graph has a tower */
}

double orch_exec_forward_from(orch_exec *ex, int first_node)
{
    orch_graph *g = ex->graph;
    ex->nonfinite_seen = 0;
    for (int i = first_node; i < g->n_nodes; i++) {
        const orch_node *n = &g->nodes[i];
        int finite = node_forward(ex, n);
        check_known(ex, n, ORCH_PHASE_FORWARD, "output", data_of(ex, n->out), numel_of(ex, n->out),
                    finite);
    }
    return data_of(ex, g->loss)[0];
}

/* ------------------------------------------------------------- backward */

/* 1 when node n is the only stage that reads tensor t, and t shares its
 * memory with no other tensor. */
static int sole_reader(const orch_graph *g, const orch_node *n, int t)
{
    if (g->tensors[t].view_of >= 0)
        return 0;
    for (int i = 0; i < g->n_tensors; i++)
        if (g->tensors[i].view_of == t)
            return 0;
    for (int i = 0; i < g->n_nodes; i++)
        for (int k = 0; k < ORCH_NODE_MAX_IN; k++)
            if (g->nodes[i].in[k] == t && &g->nodes[i] != n)
                return 0;
    return 1;
}

static void attention_backward(orch_exec *ex, const orch_node *n, float *dqkv)
{
    const orch_model_config *c = &ex->graph->config;
    int d = c->hidden_size, h = c->num_heads, hd = d / h, ld = 3 * d;
    int rows = (int)ex->n_patches;
    const float *rot = data_of(ex, n->aux[0]);
    const int32_t *cu = n->full_attention ? ex->geometry.cu_full : ex->geometry.cu_window;
    int n_seg = n->full_attention ? ex->geometry.n_full_segs : ex->geometry.n_window_segs;
    /* When attention is the only reader of qkv, dqkv is still the zeros
     * orch_exec_backward started it with: the kernel accumulates into it
     * and the rotary backward runs in place on its dq and dk columns (no
     * scratch to clear, no pass to add it in). Otherwise go through work. */
    int direct = sole_reader(ex->graph, n, n->in[0]);
    float *acc = dqkv;
    if (!direct) {
        acc = ex->work;
        ORCH_ASSERT((int64_t)rows * ld <= ex->work_floats);
        memset(acc, 0, sizeof(float) * (size_t)rows * ld);
    }
    orch_attention_bwd(acc, acc + d, acc + 2 * d, ld, ex->scratch, ex->scratch_floats,
                       ex->graph->tensors[n->out].grad, data_of(ex, n->out), data_of(ex, n->aux[1]),
                       rot, rot + d, data_of(ex, n->in[0]) + 2 * d, ld, cu, n_seg, h, hd);
    orch_rotary_bwd(acc, ld, acc, ld, ex->cos_t, ex->sin_t, rows, h, hd);
    orch_rotary_bwd(acc + d, ld, acc + d, ld, ex->cos_t, ex->sin_t, rows, h, hd);
    if (!direct)
        orch_add_fwd(dqkv, dqkv, acc, (int64_t)rows * ld);
}

static void node_backward(orch_exec *ex, const orch_node *n)
{
    const orch_graph *g = ex->graph;
    const float *dy = g->tensors[n->out].grad;
    const float *x = n->in[0] >= 0 ? data_of(ex, n->in[0]) : NULL;
    float *dx = grad_of_input(ex, n->in[0]);
    float *dx1 = grad_of_input(ex, n->in[1]);
    int rows = (int)rows_of(ex, n->out);
    int64_t count = numel_of(ex, n->out);
    switch (n->op) {
    case ORCH_OP_LINEAR:
        orch_linear_bwd(dx, param_grad(ex, n->param[0]), param_grad(ex, n->param[1]), dy, x,
                        weights_of(ex, n->param[0]), rows, n->in_dim, n->out_dim);
        break;
    case ORCH_OP_LORA_LINEAR:
        if (n->aux[1] >= 0) {
            lora_dropout_backward(ex, n, dx, dy, x, rows);
            break;
        }
        orch_lora_linear_bwd(dx, param_grad(ex, n->param[2]), param_grad(ex, n->param[3]),
                             param_grad(ex, n->param[0]), param_grad(ex, n->param[1]), ex->work, dy,
                             x, data_of(ex, n->aux[0]), weights_of(ex, n->param[0]),
                             weights_of(ex, n->param[2]), weights_of(ex, n->param[3]), n->scale,
                             rows, n->in_dim, n->out_dim, n->rank);
        break;
    case ORCH_OP_RMSNORM:
        orch_rmsnorm_bwd(dx, param_grad(ex, n->param[0]), dy, x, weights_of(ex, n->param[0]),
                         data_of(ex, n->aux[0]), rows, g->tensors[n->out].cols);
        break;
    case ORCH_OP_ATTENTION:
        if (dx != NULL)
            attention_backward(ex, n, dx);
        break;
    case ORCH_OP_SWIGLU:
        orch_swiglu_bwd(dx, dx1, dy, x, data_of(ex, n->in[1]), count);
        break;
    case ORCH_OP_GELU:
        if (dx != NULL)
            orch_gelu_bwd(dx, dy, x, count, 0);
        break;
    case ORCH_OP_ADD:
        orch_add_bwd(dx, dx1, dy, count);
        break;
    case ORCH_OP_UNPERMUTE:
        if (dx != NULL) {
            int cols = g->tensors[n->out].cols;
            for (int k = 0; k < rows; k++)
                orch_add_fwd(dx + (size_t)k * cols, dx + (size_t)k * cols,
                             dy + (size_t)ex->geometry.window_index[k] * cols, cols);
        }
        break;
    case ORCH_OP_MEAN_POOL:
        if (dx != NULL)
            orch_mean_pool_bwd(dx, dy, ex->geometry.cu_image_units, ex->n_images,
                               g->tensors[n->out].cols);
        break;
    case ORCH_OP_CROSS_ENTROPY:
        if (dx != NULL)
            orch_cross_entropy_bwd(dx, x, NULL, ex->labels,
                                   (float)(ex->loss_scale * ex->loss_weight), ex->n_images,
                                   g->tensors[n->in[0]].cols);
        break;
    case ORCH_OP_MSE:
        if (dx != NULL)
            orch_mse_bwd(dx, x, ex->targets, (float)(ex->loss_scale * ex->loss_weight),
                         numel_of(ex, n->in[0]));
        break;
    case ORCH_OP__COUNT:
        ORCH_UNREACHABLE();
    }
}

static const char *param_tensor_name(int slot)
{
    static const char *const names[ORCH_NODE_MAX_PARAM] = {"grad_weight", "grad_bias",
                                                           "grad_lora_A", "grad_lora_B"};
    ORCH_ASSERT(slot >= 0 && slot < ORCH_NODE_MAX_PARAM);
    return names[slot];
}

/* Gradient checkpointing: a frozen block kept only its input; run its
 * forward again into the shared buffers (no checks: the first forward
 * reported), and clear the gradients the previous block left in them. */
static void recompute_block(orch_exec *ex, int block)
{
    const orch_graph *g = ex->graph;
    for (int i = 0; i < g->n_nodes; i++)
        if (g->nodes[i].block == block)
            (void)node_forward(ex, &g->nodes[i]);
    for (int i = 0; i < g->n_nodes; i++) {
        const orch_node *n = &g->nodes[i];
        const orch_tensor *t = &g->tensors[n->out];
        if (n->block != block || t->grad == NULL || t->is_block_output)
            continue;
        memset(t->grad, 0, sizeof(float) * (size_t)numel_of(ex, n->out));
    }
}

void orch_exec_backward(orch_exec *ex)
{
    orch_graph *g = ex->graph;
    /* activation gradients live for one backward; parameter gradients
     * accumulate (orch_graph_zero_grad clears them) */
    for (int i = 0; i < g->n_tensors; i++) {
        orch_tensor *t = &g->tensors[i];
        if (t->grad != NULL && t->view_of < 0)
            memset(t->grad, 0, sizeof(float) * (size_t)numel_of(ex, i));
    }
    int recomputed = -1;
    for (int i = g->n_nodes - 1; i >= 0; i--) {
        const orch_node *n = &g->nodes[i];
        if (!n->needs_backward)
            continue;
        if (n->block >= 0 && n->block != recomputed && orch_graph_block_recomputed(g, n->block)) {
            recompute_block(ex, n->block);
            recomputed = n->block;
        }
        node_backward(ex, n);
        for (int k = 0; k < ORCH_NODE_MAX_IN; k++) {
            float *dx = grad_of_input(ex, n->in[k]);
            if (dx == NULL)
                continue;
            int64_t count = numel_of(ex, n->in[k]);
            round_buffer(ex, dx, count);
            check(ex, n, ORCH_PHASE_BACKWARD, k == 0 ? "grad_input" : "grad_input.1", dx, count);
        }
        for (int k = 0; k < ORCH_NODE_MAX_PARAM; k++) {
            float *dp = param_grad(ex, n->param[k]);
            if (dp == NULL)
                continue;
            int64_t count = g->params[n->param[k]].numel;
            round_buffer(ex, dp, count);
            check(ex, n, ORCH_PHASE_BACKWARD, param_tensor_name(k), dp, count);
        }
    }
}

void orch_exec_scan_params(orch_exec *ex)
{
    static const char *const names[ORCH_NODE_MAX_PARAM] = {"weight", "bias", "lora_A.weight",
                                                           "lora_B.weight"};
    orch_graph *g = ex->graph;
    for (int i = 0; i < g->n_nodes; i++) {
        const orch_node *n = &g->nodes[i];
        for (int k = 0; k < ORCH_NODE_MAX_PARAM; k++) {
            if (n->param[k] < 0)
                continue;
            orch_param *p = &g->params[n->param[k]];
            if (p->trainable) {
                check(ex, n, ORCH_PHASE_UPDATE, names[k], p->data, p->numel);
            } else {
                /* an injected write into a frozen tensor is for the frozen
                 * checksum to catch, not for the scan */
                (void)maybe_inject(ex, ORCH_PHASE_UPDATE, n->stage, names[k], p->data, p->numel);
            }
        }
    }
}

void orch_exec_stage_stats(const orch_exec *ex, orch_stat_fn emit, void *ctx)
{
    const orch_graph *g = ex->graph;
    for (int i = 0; i < g->n_nodes; i++) {
        const orch_node *n = &g->nodes[i];
        const orch_tensor *t = &g->tensors[n->out];
        /* a recomputed block's buffers hold another block's values by now */
        if (orch_graph_block_recomputed(g, n->block) && !t->is_block_output)
            continue;
        int64_t count = numel_of(ex, n->out);
        orch_finite_stats s = orch_finite_scan(t->data, count);
        double sum_sq = 0.0;
        for (int64_t j = 0; j < count; j++)
            sum_sq += (double)t->data[j] * t->data[j];
        double rms = s.first_bad < 0 && count > 0 ? sqrt(sum_sq / (double)count) : NAN;
        double grad_norm = NAN;
        if (t->grad != NULL && n->needs_backward) {
            const float *bufs[1] = {t->grad};
            grad_norm = orch_grad_norm(bufs, &count, 1);
        }
        emit(ctx, n->stage, s.max_abs, rms, grad_norm);
    }
}

float *orch_exec_tower_output(const orch_exec *ex, int64_t *rows, int *cols)
{
    *rows = rows_of(ex, ex->graph->tower_out);
    *cols = ex->graph->tensors[ex->graph->tower_out].cols;
    return data_of(ex, ex->graph->tower_out);
}
