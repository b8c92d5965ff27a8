/* pipeline_json.c - JSON form and config hash of a pipeline; see pipeline_json.h. */
#include "core/pipeline_json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "core/err.h"

/* ---------------------------------------------------------------- reals */

static int round_trips(double x, int digits)
{
    char buf[64];
    snprintf(buf, sizeof buf, "%.*g", digits, x);
    return strtod(buf, NULL) == x;
}

/* The fewest of 15..17 significant digits that print every real of p
 * exactly. */
static int real_precision(const orch_pipeline *p)
{
    const double reals[] = {p->model.config.initializer_range,
                            p->strategy.alpha,
                            p->strategy.dropout,
                            p->optimizer.lr,
                            p->optimizer.momentum,
                            p->optimizer.beta1,
                            p->optimizer.beta2,
                            p->optimizer.eps,
                            p->optimizer.weight_decay,
                            p->optimizer.grad_clip,
                            p->loss_scale.init};
    for (int digits = 15; digits < 17; digits++) {
        int all = 1;
        for (size_t i = 0; i < sizeof reals / sizeof reals[0] && all; i++)
            all = round_trips(reals[i], digits);
        if (all)
            return digits;
    }
    return 17;
}

/* ---------------------------------------------------------------- build */

/* Sets obj[key] = value (stolen); records a failure in *bad. */
static void put(json_t *obj, const char *key, json_t *value, int *bad)
{
    if (obj == NULL || value == NULL || json_object_set_new(obj, key, value) != 0)
        *bad = 1;
}

static void push(json_t *arr, json_t *value, int *bad)
{
    if (arr == NULL || value == NULL || json_array_append_new(arr, value) != 0)
        *bad = 1;
}

static json_t *model_json(const orch_model *m, int *bad)
{
    const orch_model_config *c = &m->config;
    json_t *o = json_object();
    put(o, "preset", json_string(m->preset), bad);
    put(o, "weights", json_string(m->weights), bad);
    put(o, "depth", json_integer(c->depth), bad);
    put(o, "hidden_size", json_integer(c->hidden_size), bad);
    put(o, "num_heads", json_integer(c->num_heads), bad);
    put(o, "intermediate_size", json_integer(c->intermediate_size), bad);
    put(o, "patch_size", json_integer(c->patch_size), bad);
    put(o, "temporal_patch_size", json_integer(c->temporal_patch_size), bad);
    put(o, "in_channels", json_integer(c->in_channels), bad);
    put(o, "spatial_merge_size", json_integer(c->spatial_merge_size), bad);
    put(o, "window_size", json_integer(c->window_size), bad);
    put(o, "out_hidden_size", json_integer(c->out_hidden_size), bad);
    put(o, "initializer_range", json_real(c->initializer_range), bad);
    json_t *full = json_array();
    for (int i = 0; i < c->n_fullatt; i++)
        push(full, json_integer(c->fullatt_block_indexes[i]), bad);
    put(o, "fullatt_block_indexes", full, bad);
    return o;
}

static json_t *data_json(const orch_data *d, int *bad)
{
    json_t *o = json_object();
    put(o, "source", json_string(orch_data_source_name(d->source)), bad);
    put(o, "samples", json_integer(d->n_samples), bad);
    put(o, "classes", json_integer(d->n_classes), bad);
    json_t *size = json_array();
    push(size, json_integer(d->image_height), bad);
    push(size, json_integer(d->image_width), bad);
    put(o, "image_size", size, bad);
    if (d->source == ORCH_DATA_NPY) {
        put(o, "image_grid_thw", json_string(d->grid_thw_path), bad);
    } else {
        json_t *grids = json_array();
        for (int i = 0; i < d->n_grids; i++) {
            json_t *row = json_array();
            for (int k = 0; k < 3; k++)
                push(row, json_integer((json_int_t)d->image_grid_thw[i][k]), bad);
            push(grids, row, bad);
        }
        put(o, "image_grid_thw", grids, bad);
    }
    put(o, "pixel_values", json_string(d->pixel_values), bad);
    put(o, "labels", json_string(d->labels), bad);
    return o;
}

static json_t *strategy_json(const orch_strategy *s, int *bad)
{
    json_t *o = json_object();
    put(o, "kind", json_string(orch_strategy_name(s->kind)), bad);
    put(o, "replace", json_string(s->replace), bad);
    put(o, "init", json_string(s->init), bad);
    put(o, "grad_through_frozen", json_boolean(s->grad_through_frozen), bad);
    put(o, "adapter", json_string(orch_adapter_name(s->adapter)), bad);
    put(o, "hidden", json_integer(s->adapter_hidden), bad);
    put(o, "rank", json_integer(s->rank), bad);
    put(o, "alpha", json_real(s->alpha), bad);
    put(o, "dropout", json_real(s->dropout), bad);
    json_t *targets = json_array();
    for (int i = 0; i < s->n_targets; i++)
        push(targets, json_string(s->targets[i]), bad);
    put(o, "targets", targets, bad);
    return o;
}

static json_t *optimizer_json(const orch_optimizer *o_, int *bad)
{
    json_t *o = json_object();
    put(o, "kind", json_string(orch_optimizer_name(o_->kind)), bad);
    put(o, "lr", json_real(o_->lr), bad);
    put(o, "momentum", json_real(o_->momentum), bad);
    put(o, "nesterov", json_boolean(o_->nesterov), bad);
    json_t *betas = json_array();
    push(betas, json_real(o_->beta1), bad);
    push(betas, json_real(o_->beta2), bad);
    put(o, "betas", betas, bad);
    put(o, "eps", json_real(o_->eps), bad);
    put(o, "weight_decay", json_real(o_->weight_decay), bad);
    put(o, "grad_clip", json_real(o_->grad_clip), bad);
    return o;
}

static json_t *checks_json(const orch_checks *k, int *bad)
{
    json_t *o = json_object();
    put(o, "nan", json_boolean(k->nan), bad);
    put(o, "frozen", json_boolean(k->frozen), bad);
    put(o, "on_nan", json_string(orch_on_nan_name(k->on_nan)), bad);
    put(o, "stats_every", json_integer(k->stats_every), bad);
    if (k->inject.enabled) {
        json_t *in = json_object();
        put(in, "step", json_integer(k->inject.step), bad);
        put(in, "phase", json_string(orch_phase_name(k->inject.phase)), bad);
        put(in, "stage", json_string(k->inject.stage), bad);
        put(in, "tensor", json_string(k->inject.tensor), bad);
        put(in, "value", json_string(k->inject.value_is_inf ? "inf" : "nan"), bad);
        put(o, "inject", in, bad);
    } else {
        put(o, "inject", json_null(), bad);
    }
    return o;
}

/* The configuration; with_meta adds path, name and tags. */
static json_t *build(const orch_pipeline *p, int with_meta)
{
    int bad = 0;
    json_t *root = json_object();
    if (with_meta) {
        put(root, "path", json_string(p->path), &bad);
        put(root, "name", json_string(p->name), &bad);
        json_t *tags = json_array();
        for (int i = 0; i < p->n_tags; i++)
            push(tags, json_string(p->tags[i]), &bad);
        put(root, "tags", tags, &bad);
    }
    put(root, "model", model_json(&p->model, &bad), &bad);
    put(root, "data", data_json(&p->data, &bad), &bad);
    put(root, "strategy", strategy_json(&p->strategy, &bad), &bad);
    json_t *head = json_object();
    put(head, "kind", json_string(orch_head_name(p->head.kind)), &bad);
    put(head, p->head.kind == ORCH_HEAD_REGRESSION ? "outputs" : "classes",
        json_integer(p->head.n_outputs), &bad);
    put(root, "head", head, &bad);
    put(root, "loss", json_string(orch_loss_name(p->loss)), &bad);
    put(root, "optimizer", optimizer_json(&p->optimizer, &bad), &bad);
    json_t *sched = json_object();
    put(sched, "steps", json_integer(p->schedule.steps), &bad);
    put(sched, "batch_size", json_integer(p->schedule.batch_size), &bad);
    put(sched, "warmup_steps", json_integer(p->schedule.warmup_steps), &bad);
    put(root, "schedule", sched, &bad);
    put(root, "precision", json_string(orch_precision_name(p->precision)), &bad);
    json_t *scale = json_object();
    put(scale, "init", json_real(p->loss_scale.init), &bad);
    put(scale, "dynamic", json_boolean(p->loss_scale.dynamic), &bad);
    put(scale, "growth_interval", json_integer(p->loss_scale.growth_interval), &bad);
    put(root, "loss_scale", scale, &bad);
    put(root, "checkpoint", json_boolean(p->checkpoint), &bad);
    put(root, "seed", json_integer((json_int_t)p->seed), &bad);
    put(root, "checks", checks_json(&p->checks, &bad), &bad);
    if (bad) {
        json_decref(root);
        return NULL;
    }
    return root;
}

static char *dump(json_t *root, const orch_pipeline *p, int pretty)
{
    size_t flags = JSON_SORT_KEYS | JSON_REAL_PRECISION(real_precision(p));
    flags |= pretty ? JSON_INDENT(2) : JSON_COMPACT;
    return json_dumps(root, flags);
}

char *orch_pipeline_config_json(const orch_pipeline *p)
{
    json_t *root = build(p, 0);
    if (root == NULL)
        return NULL;
    char *text = dump(root, p, 0);
    json_decref(root);
    return text;
}

int orch_pipeline_hash(const orch_pipeline *p, char hex[65])
{
    hex[0] = '\0';
    char *text = orch_pipeline_config_json(p);
    if (text == NULL)
        return ORCH_ENOMEM;
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    int ok = EVP_Digest(text, strlen(text), md, &len, EVP_sha256(), NULL);
    free(text);
    if (!ok || len != 32)
        return ORCH_ENOMEM;
    for (unsigned int i = 0; i < len; i++)
        snprintf(hex + 2 * i, 3, "%02x", md[i]);
    return ORCH_OK;
}

char *orch_pipeline_to_json(const orch_pipeline *p, int pretty)
{
    char hex[65];
    if (orch_pipeline_hash(p, hex) != ORCH_OK)
        return NULL;
    json_t *root = build(p, 1);
    if (root == NULL)
        return NULL;
    char *text = NULL;
    if (json_object_set_new(root, "config_hash", json_string(hex)) == 0)
        text = dump(root, p, pretty);
    json_decref(root);
    return text;
}
