/* pipeline_json.c - JSON form and config hash of a pipeline; see pipeline_json.h. */
#include "core/pipeline_json.h"

#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
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
    put(sched, "checkpoint_every", json_integer(p->schedule.checkpoint_every), &bad);
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

/* ---------------------------------------------------------------- parse */

/* The reader's state: the first error sticks, and every reader is a no-op
 * once one is recorded, so the section readers need no error plumbing. */
typedef struct rd {
    orch_err *err;
    int failed;
} rd;

#define PATH_LEN 96 /* "checks.inject.tensor", "data.image_grid_thw[63][2]" */

static void fail(rd *r, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Records "config_json: PATH: problem" unless an error is recorded. */
static void fail(rd *r, const char *path, const char *fmt, ...)
{
    if (r->failed)
        return;
    char msg[ORCH_ERR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    r->failed = 1;
    orch_seterr(r->err, ORCH_EINVAL, "config_json: %s: %s", path, msg);
}

/* Writes "parent.key" (or "key" for the root) into out[PATH_LEN]; key is
 * shown with control bytes as '?' and cut at 40 bytes, so a stray key keeps
 * the message on one line. */
static void join(char out[PATH_LEN], const char *parent, const char *key)
{
    char shown[48];
    size_t k = 0;
    for (; key[k] != '\0' && k < 40; k++)
        shown[k] = ((unsigned char)key[k] < 32 || key[k] == 127) ? '?' : key[k];
    shown[k] = '\0';
    snprintf(out, PATH_LEN, "%s%s%s%s", parent, parent[0] ? "." : "", shown,
             key[k] != '\0' ? "..." : "");
}

/* Writes "parent[i]" into out[PATH_LEN]; parents are at most 70 bytes
 * (the longest path is "data.image_grid_thw[63][2]"). */
static void item(char out[PATH_LEN], const char *parent, size_t i)
{
    snprintf(out, PATH_LEN, "%.70s[%zu]", parent, i);
}

static const char *type_name(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        return "object";
    case JSON_ARRAY:
        return "array";
    case JSON_STRING:
        return "string";
    case JSON_INTEGER:
        return "integer";
    case JSON_REAL:
        return "real";
    case JSON_TRUE:
    case JSON_FALSE:
        return "boolean";
    case JSON_NULL:
        return "null";
    }
    return "?";
}

/* 1 if v has type want, JSON_TRUE standing for either boolean; else records
 * "missing" (v NULL) or "expected WHAT, got TYPE". */
static int expect(rd *r, const json_t *v, const char *path, int want, const char *what)
{
    if (r->failed)
        return 0;
    if (v == NULL) {
        fail(r, path, "missing");
        return 0;
    }
    int ok = want == JSON_TRUE ? json_is_boolean(v) : json_typeof(v) == (json_type)want;
    if (!ok)
        fail(r, path, "expected %s, got %s", what, type_name(v));
    return ok;
}

/* The object at v (named path) with exactly the keys keys[0..n-1], or NULL
 * after recording the first unknown or missing key. */
static json_t *object(rd *r, json_t *v, const char *path, const char *const *keys, size_t n)
{
    if (!expect(r, v, path, JSON_OBJECT, "an object"))
        return NULL;
    const char *key;
    json_t *value;
    char sub[PATH_LEN];
    json_object_foreach(v, key, value)
    {
        size_t i = 0;
        while (i < n && strcmp(key, keys[i]) != 0)
            i++;
        if (i == n) {
            join(sub, path, key);
            fail(r, sub, "unknown key");
            return NULL;
        }
    }
    for (size_t i = 0; i < n; i++)
        if (json_object_get(v, keys[i]) == NULL) {
            join(sub, path, keys[i]);
            fail(r, sub, "missing");
            return NULL;
        }
    return v;
}

static long long int_value(rd *r, const json_t *v, const char *path, long long lo, long long hi)
{
    if (!expect(r, v, path, JSON_INTEGER, "an integer"))
        return 0;
    long long x = json_integer_value(v);
    if (x < lo || x > hi) {
        fail(r, path, "%lld is out of range (%lld .. %lld)", x, lo, hi);
        return 0;
    }
    return x;
}

/* A non-negative int: every int of the pipeline is a size, count or index. */
static int nat_value(rd *r, const json_t *v, const char *path)
{
    return (int)int_value(r, v, path, 0, INT_MAX);
}

static double real_value(rd *r, const json_t *v, const char *path)
{
    if (!expect(r, v, path, JSON_REAL, "a real number"))
        return 0;
    return json_real_value(v);
}

static int bool_value(rd *r, const json_t *v, const char *path)
{
    if (!expect(r, v, path, JSON_TRUE, "true or false"))
        return 0;
    return json_is_true(v);
}

/* Copies the string at v into out[n] (zero-padded: out was zeroed). */
static void str_value(rd *r, const json_t *v, const char *path, char *out, size_t n)
{
    if (!expect(r, v, path, JSON_STRING, "a string"))
        return;
    size_t len = json_string_length(v);
    const char *s = json_string_value(v);
    if (memchr(s, '\0', len) != NULL)
        fail(r, path, "contains a NUL byte");
    else if (len >= n)
        fail(r, path, "too long (%zu bytes; at most %zu)", len, n - 1);
    else
        memcpy(out, s, len + 1);
}

/* The index of the string at v in names[0..n-1]. */
static int enum_value(rd *r, const json_t *v, const char *path, const char *const *names, size_t n)
{
    if (!expect(r, v, path, JSON_STRING, "a string"))
        return 0;
    const char *s = json_string_value(v);
    for (size_t i = 0; i < n; i++)
        if (strcmp(s, names[i]) == 0)
            return (int)i;
    char list[256] = "";
    size_t len = 0;
    for (size_t i = 0; i < n && len < sizeof list; i++)
        len += (size_t)snprintf(list + len, sizeof list - len, "%s%s", i ? ", " : "", names[i]);
    char key[PATH_LEN];
    join(key, "", s); /* the value, shown safely */
    fail(r, path, "'%s' is not one of %s", key, list);
    return 0;
}

/* The size of the array at v, which must be at most max entries (exactly
 * max when exact). */
static size_t array_value(rd *r, const json_t *v, const char *path, size_t max, int exact)
{
    if (!expect(r, v, path, JSON_ARRAY, "an array"))
        return 0;
    size_t n = json_array_size(v);
    if (exact && n != max) {
        fail(r, path, "expected %zu entries, got %zu", max, n);
        return 0;
    }
    if (n > max) {
        fail(r, path, "%zu entries; at most %zu", n, max);
        return 0;
    }
    return n;
}

/* obj[key] of an object checked by object(), named parent.key in *path. */
static json_t *field(json_t *obj, const char *parent, const char *key, char path[PATH_LEN])
{
    join(path, parent, key);
    return json_object_get(obj, key);
}

static int get_nat(rd *r, json_t *obj, const char *parent, const char *key)
{
    char path[PATH_LEN];
    json_t *v = field(obj, parent, key, path);
    return nat_value(r, v, path);
}

static double get_real(rd *r, json_t *obj, const char *parent, const char *key)
{
    char path[PATH_LEN];
    json_t *v = field(obj, parent, key, path);
    return real_value(r, v, path);
}

static int get_bool(rd *r, json_t *obj, const char *parent, const char *key)
{
    char path[PATH_LEN];
    json_t *v = field(obj, parent, key, path);
    return bool_value(r, v, path);
}

static void get_str(rd *r, json_t *obj, const char *parent, const char *key, char *out, size_t n)
{
    char path[PATH_LEN];
    json_t *v = field(obj, parent, key, path);
    str_value(r, v, path, out, n);
}

static int get_enum(rd *r, json_t *obj, const char *parent, const char *key,
                    const char *const *names, size_t n)
{
    char path[PATH_LEN];
    json_t *v = field(obj, parent, key, path);
    return enum_value(r, v, path, names, n);
}

/* The enum readers take the names in enum order, from the name functions
 * of pipeline.h, so the JSON reads back whatever those functions write. */
#define N_OF(a) (sizeof(a) / sizeof((a)[0]))

/* ---------------------------------------------------------- sections */

static void read_model(rd *r, json_t *v, orch_model *m)
{
    static const char *const keys[] = {"preset",
                                       "weights",
                                       "depth",
                                       "hidden_size",
                                       "num_heads",
                                       "intermediate_size",
                                       "patch_size",
                                       "temporal_patch_size",
                                       "in_channels",
                                       "spatial_merge_size",
                                       "window_size",
                                       "out_hidden_size",
                                       "initializer_range",
                                       "fullatt_block_indexes"};
    const char *at = "model";
    json_t *o = object(r, v, at, keys, N_OF(keys));
    if (o == NULL)
        return;
    orch_model_config *c = &m->config;
    get_str(r, o, at, "preset", m->preset, sizeof m->preset);
    get_str(r, o, at, "weights", m->weights, sizeof m->weights);
    c->depth = get_nat(r, o, at, "depth");
    c->hidden_size = get_nat(r, o, at, "hidden_size");
    c->num_heads = get_nat(r, o, at, "num_heads");
    c->intermediate_size = get_nat(r, o, at, "intermediate_size");
    c->patch_size = get_nat(r, o, at, "patch_size");
    c->temporal_patch_size = get_nat(r, o, at, "temporal_patch_size");
    c->in_channels = get_nat(r, o, at, "in_channels");
    c->spatial_merge_size = get_nat(r, o, at, "spatial_merge_size");
    c->window_size = get_nat(r, o, at, "window_size");
    c->out_hidden_size = get_nat(r, o, at, "out_hidden_size");
    c->initializer_range = get_real(r, o, at, "initializer_range");
    char path[PATH_LEN], sub[PATH_LEN];
    json_t *full = field(o, at, "fullatt_block_indexes", path);
    size_t n = array_value(r, full, path, ORCH_MAX_FULLATT, 0);
    for (size_t i = 0; i < n; i++) {
        item(sub, path, i);
        c->fullatt_block_indexes[i] = nat_value(r, json_array_get(full, i), sub);
    }
    c->n_fullatt = (int)n;
}

static void read_grids(rd *r, json_t *v, const char *path, orch_data *d)
{
    size_t n = array_value(r, v, path, ORCH_MAX_IMAGES, 0);
    for (size_t i = 0; i < n; i++) {
        char row_path[PATH_LEN], sub[PATH_LEN];
        item(row_path, path, i);
        json_t *row = json_array_get(v, i);
        array_value(r, row, row_path, 3, 1);
        for (size_t k = 0; k < 3 && !r->failed; k++) {
            item(sub, row_path, k);
            d->image_grid_thw[i][k] =
                (int64_t)int_value(r, json_array_get(row, k), sub, 0, INT64_MAX);
        }
    }
    d->n_grids = (int)n;
}

static void read_data(rd *r, json_t *v, orch_data *d)
{
    static const char *const keys[] = {"source",         "samples",      "classes", "image_size",
                                       "image_grid_thw", "pixel_values", "labels"};
    const char *const sources[] = {orch_data_source_name(ORCH_DATA_SYNTHETIC),
                                   orch_data_source_name(ORCH_DATA_NPY)};
    const char *at = "data";
    json_t *o = object(r, v, at, keys, N_OF(keys));
    if (o == NULL)
        return;
    d->source = (orch_data_source)get_enum(r, o, at, "source", sources, N_OF(sources));
    d->n_samples = get_nat(r, o, at, "samples");
    d->n_classes = get_nat(r, o, at, "classes");
    char path[PATH_LEN], sub[PATH_LEN];
    json_t *size = field(o, at, "image_size", path);
    array_value(r, size, path, 2, 1);
    item(sub, path, 0);
    d->image_height = nat_value(r, json_array_get(size, 0), sub);
    item(sub, path, 1);
    d->image_width = nat_value(r, json_array_get(size, 1), sub);
    json_t *grids = field(o, at, "image_grid_thw", path);
    if (d->source == ORCH_DATA_NPY)
        str_value(r, grids, path, d->grid_thw_path, sizeof d->grid_thw_path);
    else
        read_grids(r, grids, path, d);
    get_str(r, o, at, "pixel_values", d->pixel_values, sizeof d->pixel_values);
    get_str(r, o, at, "labels", d->labels, sizeof d->labels);
}

static void read_strategy(rd *r, json_t *v, orch_strategy *s)
{
    static const char *const keys[] = {"kind",    "replace", "init", "grad_through_frozen",
                                       "adapter", "hidden",  "rank", "alpha",
                                       "dropout", "targets"};
    const char *const kinds[] = {
        orch_strategy_name(ORCH_STRATEGY_SURGERY), orch_strategy_name(ORCH_STRATEGY_DETACH),
        orch_strategy_name(ORCH_STRATEGY_LORA), orch_strategy_name(ORCH_STRATEGY_FULL)};
    const char *const adapters[] = {orch_adapter_name(ORCH_ADAPTER_LINEAR),
                                    orch_adapter_name(ORCH_ADAPTER_MLP)};
    const char *at = "strategy";
    json_t *o = object(r, v, at, keys, N_OF(keys));
    if (o == NULL)
        return;
    s->kind = (orch_strategy_kind)get_enum(r, o, at, "kind", kinds, N_OF(kinds));
    get_str(r, o, at, "replace", s->replace, sizeof s->replace);
    get_str(r, o, at, "init", s->init, sizeof s->init);
    s->grad_through_frozen = get_bool(r, o, at, "grad_through_frozen");
    s->adapter = (orch_adapter_kind)get_enum(r, o, at, "adapter", adapters, N_OF(adapters));
    s->adapter_hidden = get_nat(r, o, at, "hidden");
    s->rank = get_nat(r, o, at, "rank");
    s->alpha = get_real(r, o, at, "alpha");
    s->dropout = get_real(r, o, at, "dropout");
    char path[PATH_LEN], sub[PATH_LEN];
    json_t *targets = field(o, at, "targets", path);
    size_t n = array_value(r, targets, path, ORCH_MAX_TARGETS, 0);
    for (size_t i = 0; i < n; i++) {
        item(sub, path, i);
        str_value(r, json_array_get(targets, i), sub, s->targets[i], sizeof s->targets[i]);
    }
    s->n_targets = (int)n;
}

static void read_head(rd *r, json_t *v, orch_head *h)
{
    static const char *const classifier_keys[] = {"kind", "classes"};
    static const char *const regression_keys[] = {"kind", "outputs"};
    const char *const kinds[] = {orch_head_name(ORCH_HEAD_CLASSIFIER),
                                 orch_head_name(ORCH_HEAD_REGRESSION)};
    const char *at = "head";
    if (!expect(r, v, at, JSON_OBJECT, "an object"))
        return;
    h->kind = (orch_head_kind)get_enum(r, v, at, "kind", kinds, N_OF(kinds));
    const char *const *keys = h->kind == ORCH_HEAD_REGRESSION ? regression_keys : classifier_keys;
    if (object(r, v, at, keys, 2) != NULL)
        h->n_outputs = get_nat(r, v, at, keys[1]);
}

static void read_optimizer(rd *r, json_t *v, orch_optimizer *p)
{
    static const char *const keys[] = {"kind",  "lr",  "momentum",     "nesterov",
                                       "betas", "eps", "weight_decay", "grad_clip"};
    const char *const kinds[] = {orch_optimizer_name(ORCH_OPT_SGD),
                                 orch_optimizer_name(ORCH_OPT_ADAMW)};
    const char *at = "optimizer";
    json_t *o = object(r, v, at, keys, N_OF(keys));
    if (o == NULL)
        return;
    p->kind = (orch_optimizer_kind)get_enum(r, o, at, "kind", kinds, N_OF(kinds));
    p->lr = get_real(r, o, at, "lr");
    p->momentum = get_real(r, o, at, "momentum");
    p->nesterov = get_bool(r, o, at, "nesterov");
    char path[PATH_LEN], sub[PATH_LEN];
    json_t *betas = field(o, at, "betas", path);
    array_value(r, betas, path, 2, 1);
    item(sub, path, 0);
    p->beta1 = real_value(r, json_array_get(betas, 0), sub);
    item(sub, path, 1);
    p->beta2 = real_value(r, json_array_get(betas, 1), sub);
    p->eps = get_real(r, o, at, "eps");
    p->weight_decay = get_real(r, o, at, "weight_decay");
    p->grad_clip = get_real(r, o, at, "grad_clip");
}

static void read_schedule(rd *r, json_t *v, orch_schedule *s)
{
    static const char *const keys[] = {"steps", "batch_size", "warmup_steps", "checkpoint_every"};
    const char *at = "schedule";
    json_t *o = object(r, v, at, keys, N_OF(keys));
    if (o == NULL)
        return;
    s->steps = get_nat(r, o, at, "steps");
    s->batch_size = get_nat(r, o, at, "batch_size");
    s->warmup_steps = get_nat(r, o, at, "warmup_steps");
    s->checkpoint_every = get_nat(r, o, at, "checkpoint_every");
}

static void read_loss_scale(rd *r, json_t *v, orch_loss_scale *s)
{
    static const char *const keys[] = {"init", "dynamic", "growth_interval"};
    const char *at = "loss_scale";
    json_t *o = object(r, v, at, keys, N_OF(keys));
    if (o == NULL)
        return;
    s->init = get_real(r, o, at, "init");
    s->dynamic = get_bool(r, o, at, "dynamic");
    s->growth_interval = get_nat(r, o, at, "growth_interval");
}

static void read_inject(rd *r, json_t *v, orch_inject *in)
{
    static const char *const keys[] = {"step", "phase", "stage", "tensor", "value"};
    const char *const phases[] = {orch_phase_name(ORCH_PHASE_FORWARD),
                                  orch_phase_name(ORCH_PHASE_BACKWARD),
                                  orch_phase_name(ORCH_PHASE_UPDATE)};
    static const char *const values[] = {"nan", "inf"}; /* value_is_inf 0, 1 */
    const char *at = "checks.inject";
    if (json_is_null(v))
        return; /* enabled = 0, the rest zero */
    json_t *o = object(r, v, at, keys, N_OF(keys));
    if (o == NULL)
        return;
    in->enabled = 1;
    in->step = get_nat(r, o, at, "step");
    in->phase = (orch_phase)get_enum(r, o, at, "phase", phases, N_OF(phases));
    get_str(r, o, at, "stage", in->stage, sizeof in->stage);
    get_str(r, o, at, "tensor", in->tensor, sizeof in->tensor);
    in->value_is_inf = get_enum(r, o, at, "value", values, N_OF(values));
}

static void read_checks(rd *r, json_t *v, orch_checks *k)
{
    static const char *const keys[] = {"nan", "frozen", "on_nan", "stats_every", "inject"};
    const char *const policies[] = {orch_on_nan_name(ORCH_ON_NAN_ABORT),
                                    orch_on_nan_name(ORCH_ON_NAN_SKIP_UPDATE),
                                    orch_on_nan_name(ORCH_ON_NAN_CONTINUE)};
    const char *at = "checks";
    json_t *o = object(r, v, at, keys, N_OF(keys));
    if (o == NULL)
        return;
    k->nan = get_bool(r, o, at, "nan");
    k->frozen = get_bool(r, o, at, "frozen");
    k->on_nan = (orch_on_nan)get_enum(r, o, at, "on_nan", policies, N_OF(policies));
    k->stats_every = get_nat(r, o, at, "stats_every");
    read_inject(r, json_object_get(o, "inject"), &k->inject);
}

/* The whole document; the hash check is left to the caller. */
static void read_root(rd *r, json_t *root, orch_pipeline *p, char hash[65])
{
    static const char *const keys[] = {"path",       "name",       "tags",     "config_hash",
                                       "model",      "data",       "strategy", "head",
                                       "loss",       "optimizer",  "schedule", "precision",
                                       "loss_scale", "checkpoint", "seed",     "checks"};
    const char *const losses[] = {orch_loss_name(ORCH_LOSS_CROSS_ENTROPY),
                                  orch_loss_name(ORCH_LOSS_MSE)};
    const char *const precisions[] = {orch_precision_name(ORCH_FP32),
                                      orch_precision_name(ORCH_BF16),
                                      orch_precision_name(ORCH_FP16)};
    if (!json_is_object(root)) {
        fail(r, "(top level)", "expected an object, got %s", type_name(root));
        return;
    }
    if (object(r, root, "", keys, N_OF(keys)) == NULL)
        return;
    get_str(r, root, "", "path", p->path, sizeof p->path);
    get_str(r, root, "", "name", p->name, sizeof p->name);
    char path[PATH_LEN], sub[PATH_LEN];
    json_t *tags = field(root, "", "tags", path);
    size_t n = array_value(r, tags, path, ORCH_MAX_TAGS, 0);
    for (size_t i = 0; i < n; i++) {
        item(sub, path, i);
        str_value(r, json_array_get(tags, i), sub, p->tags[i], sizeof p->tags[i]);
    }
    p->n_tags = (int)n;
    get_str(r, root, "", "config_hash", hash, 65);
    read_model(r, json_object_get(root, "model"), &p->model);
    read_data(r, json_object_get(root, "data"), &p->data);
    read_strategy(r, json_object_get(root, "strategy"), &p->strategy);
    read_head(r, json_object_get(root, "head"), &p->head);
    p->loss = (orch_loss_kind)get_enum(r, root, "", "loss", losses, N_OF(losses));
    read_optimizer(r, json_object_get(root, "optimizer"), &p->optimizer);
    read_schedule(r, json_object_get(root, "schedule"), &p->schedule);
    p->precision = (orch_precision)get_enum(r, root, "", "precision", precisions, N_OF(precisions));
    read_loss_scale(r, json_object_get(root, "loss_scale"), &p->loss_scale);
    p->checkpoint = get_bool(r, root, "", "checkpoint");
    json_t *seed = field(root, "", "seed", path);
    p->seed = (uint64_t)int_value(r, seed, path, 0, INT64_MAX);
    read_checks(r, json_object_get(root, "checks"), &p->checks);
}

int orch_pipeline_from_json(const char *json, orch_pipeline *out, orch_err *err)
{
    orch_err_clear(err);
    memset(out, 0, sizeof *out);
    if (json == NULL)
        return orch_seterr(err, ORCH_EINVAL, "config_json: no text (NULL)");
    json_error_t jerr;
    json_t *root = json_loads(json, JSON_REJECT_DUPLICATES, &jerr);
    if (root == NULL) {
        if (json_error_code(&jerr) == json_error_out_of_memory)
            return orch_seterr(err, ORCH_ENOMEM, "config_json: out of memory");
        return orch_seterr(err, ORCH_EINVAL, "config_json: not valid JSON: %s (line %d, column %d)",
                           jerr.text, jerr.line, jerr.column);
    }
    rd r = {err, 0};
    char stored[65] = "";
    read_root(&r, root, out, stored);
    json_decref(root);
    if (r.failed) {
        memset(out, 0, sizeof *out);
        return ORCH_EINVAL;
    }
    char hash[65];
    if (orch_pipeline_hash(out, hash) != ORCH_OK) {
        memset(out, 0, sizeof *out);
        return orch_seterr(err, ORCH_ENOMEM, "config_json: out of memory");
    }
    if (strcmp(hash, stored) != 0) {
        memset(out, 0, sizeof *out);
        char shown[PATH_LEN];
        join(shown, "", stored);
        return orch_seterr(err, ORCH_EINVAL,
                           "config_json: config_hash: '%s' is not the hash of the configuration "
                           "(%s): edited, or written by another version of orch",
                           shown, hash);
    }
    return ORCH_OK;
}
