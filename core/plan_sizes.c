/* plan_sizes.c - parameter, token and memory sizes for `orch plan`; see
 * plan_sizes.h. */
#include "core/plan_sizes.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "core/data_source.h"
#include "core/dataset.h"
#include "core/graph.h"

/* Activation bytes of p's graph at the largest batch, checkpointing as
 * `checkpoint` says; counts from the same graph. */
static int graph_sizes(const orch_pipeline *p, int checkpoint, int64_t batch_patches,
                       int batch_images, orch_plan_sizes *out, orch_err *err)
{
    /* the pipeline is large: a copy on the heap, owned here */
    orch_pipeline *copy = malloc(sizeof *copy);
    if (copy == NULL)
        return orch_seterr(err, ORCH_ENOMEM, "plan: out of memory");
    memcpy(copy, p, sizeof *copy);
    copy->checkpoint = checkpoint;
    orch_graph g;
    int rc = orch_graph_build(copy, &g, err);
    free(copy);
    if (rc != ORCH_OK)
        return rc;
    out->params = orch_graph_param_count(&g, &out->trainable);
    int64_t bytes = orch_graph_activation_bytes_for(&g, batch_patches, batch_images);
    orch_graph_free(&g);
    if (bytes < 0)
        return orch_seterr(err, ORCH_ENOMEM, "plan: out of memory");
    out->activation_bytes[checkpoint] = bytes;
    return ORCH_OK;
}

int orch_plan_sizes_compute(const orch_pipeline *p, orch_plan_sizes *out, orch_err *err)
{
    memset(out, 0, sizeof *out);
    orch_dataset data;
    memset(&data, 0, sizeof data);
    int rc = orch_data_open(p, &data, err);
    if (rc != ORCH_OK)
        return rc;
    /* the run reserves batch_size times the largest image (core/train.c) */
    for (int i = 0; i < data.n_images; i++) {
        int64_t n = orch_dataset_patches(&data, i);
        if (n > out->image_patches)
            out->image_patches = n;
        out->data_patches += n;
    }
    orch_dataset_free(&data);
    out->merge = p->model.config.spatial_merge_size;
    int64_t unit = (int64_t)out->merge * out->merge;
    out->batch_size = p->schedule.batch_size;
    out->grad_accum = p->schedule.grad_accum;
    out->image_tokens = out->image_patches / unit;
    out->batch_patches = out->image_patches * out->batch_size;
    out->batch_tokens = out->batch_patches / unit;
    /* an evaluation batch larger than training's is what the run reserves
     * for (core/train.c); eval.split's images are training images */
    int64_t reserve_patches = out->batch_patches;
    int reserve_images = out->batch_size;
    if (p->eval.enabled) {
        int eval_batch = p->eval.batch_size > 0 ? p->eval.batch_size : p->schedule.batch_size;
        int64_t largest = out->image_patches;
        if (!(p->eval.split > 0.0)) {
            rc = orch_data_open_set(p, &p->eval.data, &data, err);
            if (rc != ORCH_OK)
                return rc;
            largest = 0;
            for (int i = 0; i < data.n_images; i++)
                if (orch_dataset_patches(&data, i) > largest)
                    largest = orch_dataset_patches(&data, i);
            orch_dataset_free(&data);
        }
        if (largest * eval_batch > reserve_patches)
            reserve_patches = largest * eval_batch;
        if (eval_batch > reserve_images)
            reserve_images = eval_batch;
    }
    for (int ckpt = 0; ckpt <= 1 && rc == ORCH_OK; ckpt++)
        rc = graph_sizes(p, ckpt, reserve_patches, reserve_images, out, err);
    if (rc != ORCH_OK)
        return rc;
    int64_t f = (int64_t)sizeof(float);
    out->param_bytes = out->params * f;
    out->lowp_bytes = p->precision != ORCH_FP32 ? out->params * f : 0;
    out->grad_bytes = out->trainable * f;
    out->optimizer_bytes = 2 * out->trainable * f;
    for (int ckpt = 0; ckpt <= 1; ckpt++)
        out->step_bytes[ckpt] = out->param_bytes + out->lowp_bytes + out->grad_bytes +
                                out->optimizer_bytes + out->activation_bytes[ckpt];
    return ORCH_OK;
}

/* bytes in the unit that keeps 1-4 digits before the point */
static void put_bytes(FILE *out, int64_t bytes)
{
    static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    double v = (double)bytes;
    int u = 0;
    while (v >= 1024.0 && u < 4) {
        v /= 1024.0;
        u++;
    }
    if (u == 0)
        fprintf(out, "%lld B", (long long)bytes);
    else
        fprintf(out, "%.1f %s", v, units[u]);
}

void orch_plan_sizes_print(const orch_plan_sizes *s, FILE *out)
{
    fprintf(out, "\n-- parameters: %lld total, %lld trainable\n", (long long)s->params,
            (long long)s->trainable);
    fprintf(out,
            "-- tokens: %lld patches per image, %lld after the %dx%d merger; %lld per batch of "
            "%d, %lld merged\n",
            (long long)s->image_patches, (long long)s->image_tokens, s->merge, s->merge,
            (long long)s->batch_patches, s->batch_size, (long long)s->batch_tokens);
    if (s->grad_accum > 1)
        fprintf(out,
                "-- global batch: %lld images per update, %d micro-batches of %d accumulated "
                "(activations for one micro-batch)\n",
                (long long)s->batch_size * s->grad_accum, s->grad_accum, s->batch_size);
    for (int ckpt = 0; ckpt <= 1; ckpt++) {
        fprintf(out, "-- step memory, checkpoint = %s (estimate): ", ckpt ? "true" : "false");
        put_bytes(out, s->step_bytes[ckpt]);
        fputs(" (parameters ", out);
        put_bytes(out, s->param_bytes);
        if (s->lowp_bytes > 0) {
            fputs(", rounded copy ", out);
            put_bytes(out, s->lowp_bytes);
        }
        fputs(", gradients ", out);
        put_bytes(out, s->grad_bytes);
        fputs(", optimizer state ", out);
        put_bytes(out, s->optimizer_bytes);
        fputs(", activations ", out);
        put_bytes(out, s->activation_bytes[ckpt]);
        fputs(")\n", out);
    }
}

char *orch_plan_sizes_json(const orch_plan_sizes *s)
{
    json_t *o = json_pack(
        "{s:I, s:I, s:I, s:I, s:I, s:I, s:{s:I, s:I, s:I, s:I, s:I, s:I}, "
        "s:{s:I, s:I, s:I, s:I, s:I, s:I}}",
        "params", (json_int_t)s->params, "trainable_params", (json_int_t)s->trainable,
        "patches_per_image", (json_int_t)s->image_patches, "tokens_per_image",
        (json_int_t)s->image_tokens, "patches_per_batch", (json_int_t)s->batch_patches,
        "tokens_per_batch", (json_int_t)s->batch_tokens, "step_bytes", "params",
        (json_int_t)s->param_bytes, "rounded_params", (json_int_t)s->lowp_bytes, "grads",
        (json_int_t)s->grad_bytes, "optimizer", (json_int_t)s->optimizer_bytes, "activations",
        (json_int_t)s->activation_bytes[0], "total", (json_int_t)s->step_bytes[0],
        "step_bytes_checkpoint", "params", (json_int_t)s->param_bytes, "rounded_params",
        (json_int_t)s->lowp_bytes, "grads", (json_int_t)s->grad_bytes, "optimizer",
        (json_int_t)s->optimizer_bytes, "activations", (json_int_t)s->activation_bytes[1], "total",
        (json_int_t)s->step_bytes[1]);
    if (o == NULL)
        return NULL;
    char *text = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(o);
    return text;
}
