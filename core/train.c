/* train.c - the run loop; see train.h. */
#include "core/train.h"

#include <errno.h>
#include <signal.h>
#include <sys/stat.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>

#include "core/checkpoint.h"
#include "core/data_identity.h"
#include "core/data_source.h"
#include "core/detach_cache.h"
#include "core/eval.h"
#include "core/exec.h"
#include "core/graph.h"
#include "core/init.h"
#include "core/lr_schedule.h"
#include "core/pipeline_json.h"
#include "kernels/kernels.h"

/* Everything one run holds; released by run_free. */
typedef struct run_state {
    const orch_pipeline *p;
    orch_sink *sink;
    orch_train_result *result;
    orch_dataset data;
    orch_graph graph;
    orch_exec exec;
    orch_batch batch;
    int *order; /* current epoch's permutation */
    int64_t order_epoch;
    int64_t updates;         /* optimizer steps taken (AdamW's t) */
    int good_steps;          /* consecutive finite steps, for loss-scale growth */
    orch_detach_cache cache; /* detach only, when options->feature_cache */
    int record_error;        /* a sink call failed inside the observer */
    orch_err observer_err;
    /* the tensors reported non-finite in this step so far (owned, grown by
     * the observer): a later micro-batch finding one again (a NaN weight,
     * a NaN accumulated gradient) records no second event; within one
     * micro-batch the executor's own rules stand */
    struct reported_tensor {
        orch_phase phase;
        const char *stage, *tensor; /* the graph's and the executor's: live for the run */
        int micro;                  /* the micro-batch that reported it */
    } * reported;
    int n_reported, cap_reported;
    int micro; /* the micro-batch being computed (grad_accum once they are done) */
    /* data parallelism (options->comm; NULL: one rank) */
    orch_comm *comm;
    int rank, ranks;
    int share;              /* images of the current step on this rank */
    int stop_all;           /* some rank was asked to stop: every rank stops after this step */
    char host[256];         /* where NaN events were found */
    unsigned char *pending; /* ranks > 0: records for rank 0 (NaN events, cache uses), each a
                               4-byte little-endian length and orch_record_encode bytes */
    size_t pending_len, pending_cap;
    int pending_count;
    /* evaluation (p->eval) and early stopping (p->schedule.stop) */
    orch_index_set train_set;      /* eval.split: the images training uses (n 0: all) */
    orch_index_set eval_set;       /* the images evaluated, indices into *eval_data */
    orch_dataset eval_own;         /* eval.data's images (owned); empty with eval.split */
    const orch_dataset *eval_data; /* &eval_own, or &data with eval.split */
    int evaluating;                /* the forwards under way are an evaluation's */
    int64_t last_eval;             /* the step of the last evaluation, -1: none */
    orch_early_stop stop;
    int stopped_early; /* schedule.stop ended the run; result->end_reason says why */
} run_state;

/* set from signal handlers; see the stop flag below */
static volatile sig_atomic_t stop_requested;

/* Appends rec to rs->pending (a rank > 0 hands its NaN events and cache
 * uses to rank 0 at the step's reduction). */
static int queue_record(run_state *rs, const orch_record *rec, orch_err *err)
{
    size_t need = orch_record_encoded_size(rec) + 4;
    if (rs->pending_len + need > rs->pending_cap) {
        size_t cap = rs->pending_cap * 2 > rs->pending_len + need ? rs->pending_cap * 2
                                                                  : rs->pending_len + need + 256;
        unsigned char *grown = realloc(rs->pending, cap);
        if (grown == NULL)
            return orch_seterr(err, ORCH_ENOMEM, "run: out of memory for records");
        rs->pending = grown;
        rs->pending_cap = cap;
    }
    size_t len = 0;
    unsigned char *at = rs->pending + rs->pending_len;
    int rc = orch_record_encode(rec, at + 4, need - 4, &len, err);
    if (rc != ORCH_OK)
        return rc;
    for (int k = 0; k < 4; k++)
        at[k] = (unsigned char)(len >> (8 * k));
    rs->pending_len += 4 + len;
    rs->pending_count++;
    return ORCH_OK;
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* ------------------------------------------------------- NaN observer */

/* The tensor name an evaluation's NaN event is recorded under: the
 * executor's, prefixed "eval:" so the store tells it from a training
 * step's at the same step (an evaluation runs forwards only, whose tensor
 * is "output"). Static strings: the reported list keeps the pointer. */
static const char *eval_tensor_name(const char *tensor)
{
    return strcmp(tensor, "output") == 0 ? "eval:output" : "eval:tensor";
}

static void on_nonfinite(void *ctx, const orch_scan_event *ev)
{
    run_state *rs = ctx;
    orch_train_result *res = rs->result;
    const char *tensor = rs->evaluating ? eval_tensor_name(ev->tensor) : ev->tensor;
    for (int i = 0; i < rs->n_reported; i++)
        if (rs->reported[i].micro < rs->micro && rs->reported[i].phase == ev->phase &&
            strcmp(rs->reported[i].stage, ev->stage) == 0 &&
            strcmp(rs->reported[i].tensor, tensor) == 0)
            return;
    if (rs->n_reported == rs->cap_reported) {
        int cap = rs->cap_reported > 0 ? 2 * rs->cap_reported : 16;
        struct reported_tensor *grown = realloc(rs->reported, sizeof *grown * (size_t)cap);
        if (grown == NULL) {
            if (!rs->record_error)
                orch_seterr(&rs->observer_err, ORCH_ENOMEM, "run: out of memory");
            rs->record_error = 1;
            return;
        }
        rs->reported = grown;
        rs->cap_reported = cap;
    }
    rs->reported[rs->n_reported++] =
        (struct reported_tensor){ev->phase, ev->stage, tensor, rs->micro};
    /* first_nan is where training met a NaN (a diverged run's place) */
    if (res->nan_events == 0 && !rs->evaluating)
        snprintf(res->first_nan, sizeof res->first_nan, "step %lld %s %s %s", (long long)ev->step,
                 orch_phase_name(ev->phase), ev->stage, ev->tensor);
    res->nan_events++;
    orch_nan_record rec = {ev->step,
                           ev->phase,
                           ev->stage,
                           tensor,
                           ev->stats.nan_count,
                           ev->stats.inf_count,
                           ev->input_absmax,
                           ev->inputs_finite,
                           rs->comm != NULL ? rs->rank : -1,
                           rs->comm != NULL ? rs->host : NULL};
    if (rs->comm != NULL && rs->rank > 0) {
        /* parameters are the same on every rank, so are their update-phase
         * events: rank 0 records its own */
        if (ev->phase == ORCH_PHASE_UPDATE || rs->record_error)
            return;
        orch_record r = {.kind = ORCH_REC_NAN, .run_id = 0};
        r.as.nan = rec;
        if (queue_record(rs, &r, &rs->observer_err) != ORCH_OK)
            rs->record_error = 1;
        return;
    }
    if (!rs->record_error &&
        rs->sink->nan_event(rs->sink->ctx, res->run_id, &rec, &rs->observer_err) != ORCH_OK)
        rs->record_error = 1;
}

/* ------------------------------------------------------------ helpers */

static int max_batch_patches(const orch_dataset *ds, int batch_size, int64_t *out)
{
    int64_t largest = 0;
    for (int i = 0; i < ds->n_images; i++) {
        int64_t n = orch_dataset_patches(ds, i);
        if (n > largest)
            largest = n;
    }
    *out = largest * batch_size;
    return ORCH_OK;
}

/* Loss-scale unscaling: every gradient times factor, the product in double
 * rounded once, over the flat gradient block. */
static void unscale_grads(orch_graph *g, double factor)
{
    int64_t n = 0;
    float *grad = orch_graph_grads(g, &n);
    for (int64_t j = 0; j < n; j++)
        grad[j] = (float)(grad[j] * factor);
}

/* Global grad norm (before clipping) and one norm per trainable group,
 * recorded as metrics "grad_norm/<group>". As clip_grad_norm_ does, the
 * global norm is the norm of the per-parameter norms. */
static double grad_norms(run_state *rs, int64_t step, orch_err *err, int *rc)
{
    orch_graph *g = &rs->graph;
    double group_sq[ORCH_GROUP__COUNT] = {0};
    int group_used[ORCH_GROUP__COUNT] = {0};
    double total_sq = 0.0;
    for (int i = 0; i < g->n_params; i++) {
        orch_param *prm = &g->params[i];
        if (!prm->trainable)
            continue;
        ORCH_ASSERT(prm->group > ORCH_GROUP_FROZEN && prm->group < ORCH_GROUP__COUNT);
        const float *buf = prm->grad;
        double norm = orch_grad_norm(&buf, &prm->numel, 1);
        group_sq[prm->group] += norm * norm;
        group_used[prm->group] = 1;
        total_sq += norm * norm;
    }
    *rc = ORCH_OK;
    for (int k = 0; k < ORCH_GROUP__COUNT && *rc == ORCH_OK; k++) {
        if (!group_used[k])
            continue;
        char name[64];
        snprintf(name, sizeof name, "grad_norm/%s", orch_group_name((orch_group)k));
        orch_metric_record rec = {step, name, sqrt(group_sq[k])};
        *rc = rs->sink->metric(rs->sink->ctx, rs->result->run_id, &rec, err);
    }
    return sqrt(total_sq);
}

/* PyTorch's clip_grad_norm_ (error_if_nonfinite=False) over the flat
 * gradient block, by the kernel (kernels/optim.c): with an Inf norm finite
 * gradients become 0 and Inf ones NaN; with a NaN norm every gradient
 * becomes NaN. Reproducing that, not hiding it, is what lets a run show how
 * a loop without a skip writes NaN into weights. max_norm 0: no clipping. */
static void clip_grads(orch_graph *g, double norm, double max_norm)
{
    if (max_norm <= 0.0)
        return;
    int64_t n = 0;
    float *grad = orch_graph_grads(g, &n);
    orch_clip_by_norm(&grad, &n, 1, norm, max_norm);
}

/* One optimizer call over the flat blocks: the updates are element-wise,
 * so this is the per-parameter update, bit for bit. */
static void optimizer_step(run_state *rs, double lr)
{
    const orch_optimizer *o = &rs->p->optimizer;
    orch_graph *g = &rs->graph;
    rs->updates++;
    int64_t n = 0;
    float *values = orch_graph_trainable_values(g, &n);
    const float *grad = orch_graph_grads(g, &n);
    float *m = g->opt_memory, *v = g->opt_memory + n;
    ORCH_ASSERT(o->kind == ORCH_OPT_ADAMW || o->kind == ORCH_OPT_SGD);
    if (o->kind == ORCH_OPT_ADAMW)
        orch_adamw_step(values, m, v, grad, n, (float)lr, (float)o->beta1, (float)o->beta2,
                        (float)o->eps, (float)o->weight_decay, rs->updates);
    else
        orch_sgd_step(values, m, grad, n, (float)lr, (float)o->momentum, 0.0f,
                      (float)o->weight_decay, o->nesterov, rs->updates);
}

static uint64_t param_checksum(const orch_param *prm)
{
    return XXH3_64bits(prm->data, sizeof(float) * (size_t)prm->numel);
}

/* Frozen parameters must not change; a change is recorded as a
 * frozen-parameter change naming the tensor. Returns the number changed. */
static int check_frozen(run_state *rs, int64_t step, orch_err *err, int *rc)
{
    orch_graph *g = &rs->graph;
    int changed = 0;
    *rc = ORCH_OK;
    for (int i = 0; i < g->n_params && *rc == ORCH_OK; i++) {
        orch_param *prm = &g->params[i];
        if (prm->trainable || param_checksum(prm) == prm->checksum)
            continue;
        changed++;
        orch_frozen_change rec = {step, prm->name};
        *rc = rs->sink->frozen_change(rs->sink->ctx, rs->result->run_id, &rec, err);
        prm->checksum = param_checksum(prm); /* report each change once */
    }
    return changed;
}

static void run_free(run_state *rs)
{
    orch_detach_cache_close(&rs->cache);
    orch_exec_free(&rs->exec);
    orch_graph_free(&rs->graph);
    orch_batch_free(&rs->batch);
    orch_dataset_free(&rs->data);
    free(rs->order);
    free(rs->reported);
    free(rs->pending);
    orch_index_set_free(&rs->train_set);
    orch_index_set_free(&rs->eval_set);
    orch_dataset_free(&rs->eval_own);
}

/* ------------------------------------------------------------ prepare */

/* The set-up line on a terminal (options->progress), as the step line:
 * "orch: setting up qwen2.5-vl-3b: init 1.2/2.7 GB", refreshed with \r
 * while the big phases move, erased when set-up ends. */
typedef struct setup_line {
    FILE *out; /* NULL: no line */
    const char *model;
    int width; /* characters of the longest line written, to erase */
} setup_line;

static void setup_say(setup_line *line, const char *what, int64_t done, int64_t total)
{
    if (line->out == NULL)
        return;
    int n = total > 0 ? fprintf(line->out, "\rorch: setting up %s: %s %.1f/%.1f GB", line->model,
                                what, (double)done / 1e9, (double)total / 1e9)
                      : fprintf(line->out, "\rorch: setting up %s: %s", line->model, what);
    if (n > line->width)
        line->width = n;
    fflush(line->out);
}

static void setup_progress(void *ctx, const char *what, int64_t done, int64_t total)
{
    setup_say(ctx, what, done, total);
}

static void setup_done(setup_line *line)
{
    if (line->out == NULL || line->width == 0)
        return;
    fprintf(line->out, "\r%*s\r", line->width, "");
    fflush(line->out);
}

/* The parameters' first values. A sweep's output_of run names its
 * dependency in strategy.init ("output_of:NAME", what its hash covers) and
 * gets the file to read in options->init_path: the pipeline is copied with
 * that path, so the hash and the recorded config keep the name. */
static int init_params(run_state *rs, const orch_train_options *options, setup_line *line,
                       orch_err *err)
{
    if (options == NULL || options->init_path == NULL)
        return orch_init_params_progress(&rs->graph, rs->p, setup_progress, line, err);
    orch_pipeline *with_init = malloc(sizeof *with_init);
    if (with_init == NULL)
        return orch_seterr(err, ORCH_ENOMEM, "run: out of memory");
    *with_init = *rs->p;
    if ((size_t)snprintf(with_init->strategy.init, sizeof with_init->strategy.init, "%s",
                         options->init_path) >= sizeof with_init->strategy.init) {
        free(with_init);
        return orch_seterr(err, ORCH_EINVAL, "%s: the init path is too long", options->init_path);
    }
    int rc = orch_init_params_progress(&rs->graph, with_init, setup_progress, line, err);
    free(with_init);
    return rc;
}

/* ------------------------------------------------- evaluation set-up */

static int eval_batch_size(const orch_pipeline *p)
{
    return p->eval.batch_size > 0 ? p->eval.batch_size : p->schedule.batch_size;
}

/* The metrics an evaluation of p's head records, for messages. */
static const char *eval_metric_list(const orch_pipeline *p)
{
    if (p->head.kind != ORCH_HEAD_CLASSIFIER)
        return "\"eval/loss\" or \"eval/mse\"";
    return p->head.n_outputs > 5 ? "\"eval/loss\", \"eval/accuracy\" or \"eval/accuracy_top5\""
                                 : "\"eval/loss\" or \"eval/accuracy\"";
}

/* Checks eval and schedule.stop against the head (the DSL refuses most of
 * this; a pipeline built in C may not), then opens the held-out set:
 * eval.data's images, or eval.split's share of the training data, chosen
 * by the data seed (rs->train_set then lists the images training keeps). */
static int prepare_eval(run_state *rs, orch_err *err)
{
    const orch_pipeline *p = rs->p;
    const orch_eval *ev = &p->eval;
    const orch_stop *stop = &p->schedule.stop;
    rs->last_eval = -1;
    orch_early_stop_init(&rs->stop);
    if (stop->enabled && !ev->enabled)
        return orch_seterr(err, ORCH_EINVAL,
                           "%s: schedule.stop watches %s, but there is no eval = { ... } to "
                           "measure it",
                           p->path, stop->metric);
    if (stop->enabled && !orch_eval_metric_produced(stop->metric, p->head.kind, p->head.n_outputs))
        return orch_seterr(err, ORCH_EINVAL,
                           "%s: schedule.stop.metric = \"%s\": an evaluation of this head records "
                           "%s",
                           p->path, stop->metric, eval_metric_list(p));
    if (stop->enabled && stop->patience < 1)
        return orch_seterr(err, ORCH_EINVAL,
                           "%s: schedule.stop.patience = %d: it must be at least 1 evaluation",
                           p->path, stop->patience);
    if (!ev->enabled)
        return ORCH_OK;
    if (ev->every < 0 || ev->batch_size < 0)
        return orch_seterr(err, ORCH_EINVAL,
                           "%s: eval.every = %d, eval.batch_size = %d: neither can be negative",
                           p->path, ev->every, ev->batch_size);
    if (ev->split > 0.0) {
        uint64_t seed = orch_data_seed(&p->data, p->seed);
        orch_err split_err;
        orch_err_clear(&split_err);
        int rc = orch_dataset_split(rs->data.n_images, ev->split, seed, &rs->train_set,
                                    &rs->eval_set, &split_err);
        if (rc != ORCH_OK)
            return orch_seterr(err, rc, "%s: %s", p->path, split_err.msg);
        rs->eval_data = &rs->data;
        return ORCH_OK;
    }
    /* synthetic evaluation images without a seed of their own are drawn
     * from a stream other than the training images' (else they would be
     * the first training images again) */
    orch_data set = ev->data;
    if (set.source == ORCH_DATA_SYNTHETIC && !set.has_seed) {
        set.has_seed = 1;
        set.seed = orch_data_seed(&p->data, p->seed) ^ ORCH_EVAL_SYNTHETIC_SEED;
    }
    int rc = orch_data_open_set(p, &set, &rs->eval_own, err);
    if (rc != ORCH_OK)
        return rc;
    const orch_dataset *ds = &rs->eval_own;
    if (p->head.kind == ORCH_HEAD_CLASSIFIER && ds->label_kind == ORCH_LABEL_CLASS &&
        ds->n_classes > p->head.n_outputs)
        return orch_seterr(err, ORCH_EINVAL,
                           "%s: the eval data has %d classes but head.classes is %d", p->path,
                           ds->n_classes, p->head.n_outputs);
    /* owned by rs->eval_set: every image of eval.data, in order */
    rs->eval_set.index = malloc(sizeof(int) * (size_t)ds->n_images);
    if (rs->eval_set.index == NULL)
        return orch_seterr(err, ORCH_ENOMEM, "run: out of memory");
    for (int i = 0; i < ds->n_images; i++)
        rs->eval_set.index[i] = i;
    rs->eval_set.n = ds->n_images;
    rs->eval_data = ds;
    return ORCH_OK;
}

/* Everything that can fail on bad input happens here, before the run row
 * exists: data, graph, weights. */
static int prepare(run_state *rs, const orch_train_options *options, orch_err *err)
{
    const orch_pipeline *p = rs->p;
    int rc = orch_data_open(p, &rs->data, err);
    if (rc != ORCH_OK)
        return rc;
    if (p->head.kind == ORCH_HEAD_CLASSIFIER && rs->data.label_kind == ORCH_LABEL_CLASS &&
        rs->data.n_classes > p->head.n_outputs)
        return orch_seterr(err, ORCH_EINVAL, "%s: the data has %d classes but head.classes is %d",
                           p->path, rs->data.n_classes, p->head.n_outputs);
    /* the DSL refuses these; a pipeline built in C (tests, bench) may not */
    if (p->schedule.grad_accum < 1 ||
        (int64_t)p->schedule.batch_size * p->schedule.grad_accum > INT32_MAX)
        return orch_seterr(err, ORCH_EINVAL,
                           "%s: schedule.grad_accum = %d with schedule.batch_size = %d: the global "
                           "batch must be 1 to %d images",
                           p->path, p->schedule.grad_accum, p->schedule.batch_size, INT32_MAX);
    rc = prepare_eval(rs, err);
    if (rc != ORCH_OK)
        return rc;
    rc = orch_graph_build(p, &rs->graph, err);
    if (rc != ORCH_OK)
        return rc;
    int64_t max_patches = 0;
    max_batch_patches(&rs->data, p->schedule.batch_size, &max_patches);
    int max_images = p->schedule.batch_size;
    if (p->eval.enabled) { /* an evaluation batch may be larger */
        int64_t eval_patches = 0;
        max_batch_patches(rs->eval_data, eval_batch_size(p), &eval_patches);
        if (eval_patches > max_patches)
            max_patches = eval_patches;
        if (eval_batch_size(p) > max_images)
            max_images = eval_batch_size(p);
    }
    setup_line line = {options != NULL ? options->progress : NULL, p->model.preset, 0};
    setup_say(&line, "reserving memory", 0, 0);
    /* each step below needs the one before it: a failed reservation leaves
     * buffers unallocated that the weights, the executor and the frozen
     * checksums would read */
    rc = orch_graph_reserve(&rs->graph, max_patches, max_images, err);
    if (rc == ORCH_OK)
        rc = init_params(rs, options, &line, err);
    setup_done(&line);
    if (rc == ORCH_OK)
        rc = orch_exec_init(&rs->exec, &rs->graph, p, max_patches, max_images, err);
    if (rc == ORCH_OK)
        rc = orch_exec_refresh_lowp(&rs->exec, 1, err);
    if (rc != ORCH_OK)
        return rc;
    rs->order = malloc(sizeof(int) * (size_t)rs->data.n_images);
    if (rs->order == NULL)
        return orch_seterr(err, ORCH_ENOMEM, "run: out of memory");
    rs->order_epoch = -1;
    /* gigabytes for the big towers: one parameter per thread at a time */
    int threads = orch_threads_get();
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads)
    for (int i = 0; i < rs->graph.n_params; i++)
        if (!rs->graph.params[i].trainable)
            rs->graph.params[i].checksum = param_checksum(&rs->graph.params[i]);
    if (rs->graph.detached && options != NULL && options->feature_cache != NULL)
        rc = orch_detach_cache_open(&rs->cache, options->feature_cache, &rs->exec, err);
    /* checks.inject.rank: a NaN that one rank alone finds, in the first
     * image of its share of the step */
    if (p->checks.inject.rank >= 0 && p->checks.inject.rank != rs->rank)
        rs->exec.inject.enabled = 0;
    else if (p->checks.inject.rank >= 0)
        rs->exec.inject_image = (int)((int64_t)rs->rank * p->schedule.batch_size / rs->ranks);
    rs->exec.observer = on_nonfinite;
    rs->exec.observer_ctx = rs;
    rs->exec.loss_scale = p->loss_scale.init > 0 ? p->loss_scale.init : 1.0;
    return rc;
}

/* --------------------------------------------------------------- step */

typedef enum { STEP_OK = 0, STEP_DIVERGED } step_outcome;

/* The cache entries the last batch used first in this run, one cache_use
 * record each, so `orch rm` knows which entries a run needs. A sink
 * without cache_use records none. */
static int record_cache_uses(run_state *rs, orch_err *err)
{
    int n = 0;
    const orch_fcache_key *keys = orch_detach_cache_new_uses(&rs->cache, &n);
    int rc = ORCH_OK;
    int to_rank0 = rs->comm != NULL && rs->rank > 0;
    for (int i = 0; i < n && rc == ORCH_OK && (to_rank0 || rs->sink->cache_use != NULL); i++) {
        char hex[ORCH_FCACHE_KEY_HEX];
        orch_fcache_key_hex(keys[i], hex);
        orch_cache_use rec = {hex};
        if (to_rank0) {
            orch_record r = {.kind = ORCH_REC_CACHE_USE, .run_id = 0};
            r.as.cache_use = rec;
            rc = queue_record(rs, &r, err);
        } else {
            rc = rs->sink->cache_use(rs->sink->ctx, rs->result->run_id, &rec, err);
        }
    }
    return rc;
}

/* ------------------------------------------------- the micro-batches */

/* What this rank's micro-batches of a step add up to, before the global
 * decisions: summed over ranks (an allreduce of these and of the flat
 * gradient block) they are the step's. */
typedef struct step_partials {
    double loss_sum;              /* sum over images of their loss: micro-batch mean x its images */
    int64_t n_images;             /* images computed */
    int nonfinite;                /* a micro-batch's loss or a checked tensor was not finite */
    int cache_hits, cache_misses; /* detach feature cache, over the micro-batches */
} step_partials;

/* One micro-batch's images: positions [first, first + count) of the
 * step's global batch. */
typedef struct batch_slice {
    int first, count;
} batch_slice;

/* The slices of a global batch of `global` images this rank computes, one
 * per micro-batch of batch_size images (slices[grad_accum]); a slice may be
 * empty. On one rank, each micro-batch whole. */
static void rank_share(int global, int batch_size, int rank, int ranks, batch_slice *slices)
{
    /* data parallelism: of each micro-batch of b images, rank r takes the
     * contiguous [floor(r b / N), floor((r + 1) b / N)); on one rank, all */
    for (int k = 0, first = 0; first < global; k++, first += batch_size) {
        int b = global - first < batch_size ? global - first : batch_size;
        int lo = (int)((int64_t)rank * b / ranks), hi = (int)((int64_t)(rank + 1) * b / ranks);
        slices[k].first = first + lo;
        slices[k].count = hi - lo;
    }
}

void orch_train_epoch_order(const orch_pipeline *p, const orch_dataset *ds, int64_t epoch,
                            int *order)
{
    const orch_data *d = &p->data;
    if (d->shuffle == 0 && d->source != ORCH_DATA_SHARDS) { /* shuffle = false */
        for (int i = 0; i < ds->n_images; i++)
            order[i] = i;
        return;
    }
    orch_dataset_order(ds, orch_data_seed(d, p->seed), epoch, order);
}

/* The training images' order in epoch `epoch` into rs->order: the data's
 * (orch_train_epoch_order), or with eval.split a permutation of the
 * training part alone by the same rule (data.shuffle = false keeps it in
 * order; a shards source's shuffle buffer gives way to a whole shuffle of
 * the part, which is read by index). */
static void train_epoch_order(run_state *rs, int64_t epoch)
{
    const orch_data *d = &rs->p->data;
    int n = rs->train_set.n;
    if (n == 0)
        orch_train_epoch_order(rs->p, &rs->data, epoch, rs->order);
    else if (d->shuffle == 0 && d->source != ORCH_DATA_SHARDS)
        for (int i = 0; i < n; i++)
            rs->order[i] = i;
    else
        orch_order_permutation(n, orch_data_seed(d, rs->p->seed), epoch, rs->order);
}

/* Images of step `step`: positions step*G .. step*G+G-1 of an endless
 * sequence of epochs, each a seeded permutation (reproducible on resume),
 * G the global batch. */
static void global_batch_indices(run_state *rs, int64_t step, int global, int *indices)
{
    /* with eval.split, the epochs are permutations of the training part */
    const orch_index_set *train = &rs->train_set;
    int n = train->n > 0 ? train->n : rs->data.n_images;
    for (int i = 0; i < global; i++) {
        int64_t pos = step * global + i;
        int64_t epoch = pos / n;
        if (epoch != rs->order_epoch) {
            train_epoch_order(rs, epoch);
            rs->order_epoch = epoch;
        }
        int k = rs->order[pos % n];
        indices[i] = train->n > 0 ? train->index[k] : k;
    }
}

/* One micro-batch: images indices[slice.first ..] of the global batch of
 * `global`, forward and backward, its loss gradient weighted by its share
 * of the global batch so the flat gradient block accumulates the gradient
 * of the global batch's mean loss. Adds to *parts. */
static int micro_step(run_state *rs, int64_t step, const int *indices, int global,
                      batch_slice slice, step_partials *parts, orch_err *err)
{
    orch_exec *ex = &rs->exec;
    int64_t patch_offset = 0;
    for (int i = 0; i < slice.first; i++)
        patch_offset += orch_dataset_patches(&rs->data, indices[i]);
    int rc = orch_dataset_batch(&rs->data, indices + slice.first, slice.count, &rs->batch, err);
    if (rc == ORCH_OK)
        rc = orch_exec_set_batch(ex, &rs->batch, err);
    if (rc != ORCH_OK)
        return rc;
    ex->step = step;
    ex->image_offset = slice.first;
    ex->patch_offset = patch_offset;
    ex->loss_weight = (double)slice.count / (double)global;
    double loss = 0.0;
    if (rs->cache.disk != NULL) {
        int hits = 0, misses = 0;
        rc = orch_detach_cache_forward(&rs->cache, ex, &rs->batch, &loss, &hits, &misses, err);
        if (rc == ORCH_OK)
            rc = record_cache_uses(rs, err);
        if (rc != ORCH_OK)
            return rc;
        parts->cache_hits += hits;
        parts->cache_misses += misses;
    } else {
        loss = orch_exec_forward(ex);
    }
    orch_exec_backward(ex);
    parts->loss_sum += loss * slice.count;
    parts->n_images += slice.count;
    parts->nonfinite |= !isfinite(loss) || ex->nonfinite_seen;
    return ORCH_OK;
}

/* ------------------------------------------------ data parallelism */

/* 1 when rank 0 already recorded an event of this tensor in this step (its
 * own, or one of a lower rank's among seen[0..n_seen)). */
static int reported_before(const run_state *rs, const orch_nan_record *ev,
                           const orch_nan_record *seen, int n_seen)
{
    for (int i = 0; i < rs->n_reported; i++)
        if (rs->reported[i].phase == ev->phase && strcmp(rs->reported[i].stage, ev->stage) == 0 &&
            strcmp(rs->reported[i].tensor, ev->tensor) == 0)
            return 1;
    for (int i = 0; i < n_seen; i++)
        if (seen[i].phase == ev->phase && strcmp(seen[i].stage, ev->stage) == 0 &&
            strcmp(seen[i].tensor, ev->tensor) == 0)
            return 1;
    return 0;
}

/* Rank 0 records what the other ranks found this step, in rank order
 * (each rank's records as found): NaN events with their rank and host (a
 * tensor once per step, from the lowest rank that found it, as one rank
 * records a tensor once over its micro-batches), and cache uses. Every
 * rank calls it (a gather); total is the records of all ranks. */
static int gather_records(run_state *rs, int total, orch_err *err)
{
    void *all = NULL;
    size_t *lens = rs->rank == 0 ? calloc((size_t)rs->ranks, sizeof *lens) : NULL;
    orch_nan_record *seen = rs->rank == 0 ? calloc((size_t)total + 1, sizeof *seen) : NULL;
    int rc = rs->rank == 0 && (lens == NULL || seen == NULL)
                 ? orch_seterr(err, ORCH_ENOMEM, "run: out of memory")
                 : ORCH_OK;
    /* a rank that cannot take part makes the others wait: end the job */
    int grc = orch_comm_gather_bytes(rs->comm, rs->pending, rs->pending_len, 0, &all, lens,
                                     rc == ORCH_OK ? err : &rs->observer_err);
    if (rc == ORCH_OK)
        rc = grc;
    rs->pending_len = 0;
    rs->pending_count = 0;
    orch_train_result *res = rs->result;
    const unsigned char *at = all;
    int n_seen = 0;
    for (int r = 0; rc == ORCH_OK && rs->rank == 0 && r < rs->ranks; r++) {
        const unsigned char *end = at + lens[r];
        while (rc == ORCH_OK && at + 4 <= end) {
            size_t len =
                (size_t)at[0] | (size_t)at[1] << 8 | (size_t)at[2] << 16 | (size_t)at[3] << 24;
            orch_record rec;
            rc = orch_record_decode(at + 4, len, &rec, err);
            at += 4 + len;
            if (rc != ORCH_OK)
                break;
            if (rec.kind == ORCH_REC_NAN) {
                const orch_nan_record *ev = &rec.as.nan;
                if (reported_before(rs, ev, seen, n_seen) || n_seen >= total)
                    continue;
                seen[n_seen++] = *ev;
                if (res->nan_events == 0 && !rs->evaluating)
                    snprintf(res->first_nan, sizeof res->first_nan,
                             "step %lld %s %s %s (rank %lld)", (long long)ev->step,
                             orch_phase_name(ev->phase), ev->stage, ev->tensor,
                             (long long)ev->rank);
                res->nan_events++;
                rc = rs->sink->nan_event(rs->sink->ctx, res->run_id, ev, err);
            } else if (rec.kind == ORCH_REC_CACHE_USE && rs->sink->cache_use != NULL) {
                rc = rs->sink->cache_use(rs->sink->ctx, res->run_id, &rec.as.cache_use, err);
            }
        }
        at = end;
    }
    free(seen);
    free(all);
    free(lens);
    return rc;
}

/* The data-parallel reduction of a step, after this rank's micro-batches:
 * the flat gradient block (each micro-batch's already weighted by its
 * share of the global batch) summed over the ranks, then the partials and
 * the stop requests, so every rank takes the same decisions; then the
 * other ranks' records to rank 0. */
static int reduce_step(run_state *rs, step_partials *parts, orch_err *err)
{
    int64_t n = 0;
    float *grad = orch_graph_grads(&rs->graph, &n);
    int rc = orch_comm_allreduce_sum_f32(rs->comm, grad, (size_t)n, err);
    double ctl[7] = {parts->loss_sum,   (double)parts->n_images, parts->nonfinite ? 1.0 : 0.0,
                     parts->cache_hits, parts->cache_misses,     stop_requested ? 1.0 : 0.0,
                     rs->pending_count};
    if (rc == ORCH_OK)
        rc = orch_comm_allreduce_sum_f64(rs->comm, ctl, 7, err);
    if (rc != ORCH_OK)
        return rc;
    parts->loss_sum = ctl[0];
    parts->n_images = (int64_t)ctl[1];
    parts->nonfinite = ctl[2] > 0;
    parts->cache_hits = (int)ctl[3];
    parts->cache_misses = (int)ctl[4];
    rs->stop_all = ctl[5] > 0;
    return ctl[6] > 0 ? gather_records(rs, (int)ctl[6], err) : ORCH_OK;
}

/* Every rank's frozen checksums against rank 0's: a rank whose frozen
 * parameters differ fails the run, naming the first such rank and tensor. */
static int compare_frozen(run_state *rs, orch_err *err)
{
    orch_graph *g = &rs->graph;
    size_t n = (size_t)g->n_params + 1;
    unsigned long long *sums = calloc(n, sizeof *sums), *mine = calloc(n, sizeof *mine);
    int rc = sums == NULL || mine == NULL ? orch_seterr(err, ORCH_ENOMEM, "run: out of memory")
                                          : ORCH_OK;
    for (int i = 0; rc == ORCH_OK && i < g->n_params; i++)
        if (!g->params[i].trainable)
            sums[i] = mine[i] = g->params[i].checksum;
    /* every rank takes part even without memory, so none waits forever */
    unsigned long long spare[1] = {0};
    int brc = orch_comm_bcast(rs->comm, sums != NULL ? (void *)sums : (void *)spare,
                              sums != NULL ? (size_t)g->n_params * sizeof *sums : 0, 0, err);
    if (rc == ORCH_OK)
        rc = brc;
    unsigned long long first = ~0ULL; /* rank << 32 | parameter */
    for (int i = 0; rc == ORCH_OK && i < g->n_params; i++)
        if (mine[i] != sums[i]) {
            first = (unsigned long long)rs->rank << 32 | (unsigned)i;
            break;
        }
    int arc = orch_comm_allreduce_min_u64(rs->comm, &first, 1, err);
    if (rc == ORCH_OK)
        rc = arc;
    if (rc == ORCH_OK && first != ~0ULL)
        rc = orch_seterr(err, ORCH_ERUNTIME,
                         "rank %llu's frozen parameters differ from rank 0's: %s", first >> 32,
                         g->params[first & 0xffffffffULL].name);
    free(sums);
    free(mine);
    return rc;
}

/* Every rank starts from the same parameters (seeded init, weights and
 * checkpoints are deterministic); a rank that does not would train another
 * model, so the run does not start. */
static int same_parameters(run_state *rs, orch_err *err)
{
    const orch_graph *g = &rs->graph;
    unsigned long long lo = XXH3_64bits(g->param_memory, sizeof(float) * (size_t)g->n_param_floats);
    unsigned long long hi = lo;
    int rc = orch_comm_allreduce_min_u64(rs->comm, &lo, 1, err);
    if (rc == ORCH_OK)
        rc = orch_comm_allreduce_max_u64(rs->comm, &hi, 1, err);
    if (rc == ORCH_OK && lo != hi)
        rc = orch_seterr(err, ORCH_ERUNTIME,
                         "%s: the ranks start from different parameters (a weights file that "
                         "differs between hosts?)",
                         rs->p->path);
    return rc;
}

/* ------------------------------------------------ the global decisions */

/* What follows the micro-batches, once per update, on the accumulated
 * gradient: unscaling, grad_norm, the NaN policy and loss scaling,
 * clipping, the optimizer, the frozen check and the records. */
static int update_step(run_state *rs, int64_t step, const step_partials *parts, double t0,
                       step_outcome *outcome, orch_err *err)
{
    const orch_pipeline *p = rs->p;
    orch_exec *ex = &rs->exec;
    orch_train_result *res = rs->result;
    double lr = orch_lr_at(&p->optimizer, &p->schedule, step);
    int rc = ORCH_OK;
    if (rs->cache.disk != NULL) {
        orch_metric_record hit_rec = {step, "feature_cache/hits", parts->cache_hits};
        orch_metric_record miss_rec = {step, "feature_cache/misses", parts->cache_misses};
        rc = rs->sink->metric(rs->sink->ctx, res->run_id, &hit_rec, err);
        if (rc == ORCH_OK)
            rc = rs->sink->metric(rs->sink->ctx, res->run_id, &miss_rec, err);
        if (rc != ORCH_OK)
            return rc;
    }
    /* a float loss times a count of images is exact in double, so one
     * micro-batch's loss comes back bit for bit */
    double loss = parts->loss_sum / (double)parts->n_images;
    double scale = ex->loss_scale;
    if (scale != 1.0)
        unscale_grads(&rs->graph, 1.0 / scale);
    double grad_norm = grad_norms(rs, step, err, &rc);
    if (rc != ORCH_OK)
        return rc;
    int finite = isfinite(loss) && isfinite(grad_norm) && !parts->nonfinite;
    int skip = 0;
    if (p->loss_scale.dynamic) {
        /* GradScaler: a non-finite gradient skips the step and halves the
         * scale; growth_interval finite steps in a row double it. */
        if (!isfinite(grad_norm)) {
            skip = 1;
            ex->loss_scale *= 0.5;
            rs->good_steps = 0;
        } else if (++rs->good_steps >= p->loss_scale.growth_interval) {
            ex->loss_scale *= 2.0;
            rs->good_steps = 0;
        }
    }
    if (!finite && !skip) {
        if (p->checks.on_nan == ORCH_ON_NAN_ABORT) {
            *outcome = STEP_DIVERGED;
            if (res->first_nan[0] != '\0')
                snprintf(res->diverged_at, sizeof res->diverged_at, "%s", res->first_nan);
            else
                snprintf(res->diverged_at, sizeof res->diverged_at,
                         "step %lld: a non-finite loss or grad_norm", (long long)step);
        } else if (p->checks.on_nan == ORCH_ON_NAN_SKIP_UPDATE) {
            skip = 1;
        }
    }
    if (!skip && *outcome == STEP_OK) {
        clip_grads(&rs->graph, grad_norm, p->optimizer.grad_clip);
        optimizer_step(rs, lr);
        rc = orch_exec_refresh_lowp(ex, 0, err);
        if (rc != ORCH_OK)
            return rc;
        orch_exec_scan_params(ex);
    }
    if (skip)
        res->skipped_steps++;
    if (p->checks.frozen && check_frozen(rs, step, err, &rc) > 0 && rc == ORCH_OK &&
        p->checks.on_nan == ORCH_ON_NAN_ABORT && *outcome != STEP_DIVERGED) {
        *outcome = STEP_DIVERGED;
        snprintf(res->diverged_at, sizeof res->diverged_at, "step %lld: a frozen-tensor change",
                 (long long)step);
    }
    if (rc == ORCH_OK && p->checks.frozen && rs->comm != NULL)
        rc = compare_frozen(rs, err);
    if (rc != ORCH_OK)
        return rc;
    if (rs->record_error)
        return orch_seterr(err, rs->observer_err.code, "%s", rs->observer_err.msg);

    orch_step_record rec = {step, loss, grad_norm, lr, now_ms() - t0};
    rc = rs->sink->step(rs->sink->ctx, res->run_id, &rec, err);
    orch_metric_record scale_rec = {step, "loss_scale", scale};
    orch_metric_record skip_rec = {step, "skipped_step", 1.0};
    if (rc == ORCH_OK && (p->loss_scale.dynamic || p->loss_scale.init != 1.0))
        rc = rs->sink->metric(rs->sink->ctx, res->run_id, &scale_rec, err);
    if (rc == ORCH_OK && skip)
        rc = rs->sink->metric(rs->sink->ctx, res->run_id, &skip_rec, err);
    if (res->steps_done == 0)
        res->first_loss = loss;
    res->final_loss = loss;
    if (!(grad_norm <= res->max_grad_norm))
        res->max_grad_norm = grad_norm;
    res->last_grad_norm = grad_norm;
    res->steps_done++;
    return rc;
}

/* One update: the global batch's images, this rank's micro-batches of
 * them accumulating into the flat gradient block, then the decisions.
 * indices has room for the global batch, slices for grad_accum slices. */
static int run_step(run_state *rs, int64_t step, int *indices, batch_slice *slices,
                    step_outcome *outcome, orch_err *err)
{
    const orch_pipeline *p = rs->p;
    double t0 = now_ms();
    *outcome = STEP_OK;
    int batch_size = p->schedule.batch_size, n_micro = p->schedule.grad_accum;
    int global = batch_size * n_micro;
    global_batch_indices(rs, step, global, indices);
    rank_share(global, batch_size, rs->rank, rs->ranks, slices);
    rs->n_reported = 0;
    orch_graph_zero_grad(&rs->graph);
    step_partials parts = {0};
    int rc = ORCH_OK;
    for (rs->micro = 0; rs->micro < n_micro && rc == ORCH_OK; rs->micro++)
        if (slices[rs->micro].count > 0)
            rc = micro_step(rs, step, indices, global, slices[rs->micro], &parts, err);
    rs->share = (int)parts.n_images;
    /* a rank that failed leaves the collectives: the CLI ends the job */
    if (rc == ORCH_OK && rs->comm != NULL)
        rc = reduce_step(rs, &parts, err);
    if (rc == ORCH_OK && rs->record_error)
        rc = orch_seterr(err, rs->observer_err.code, "%s", rs->observer_err.msg);
    if (rc != ORCH_OK)
        return rc;
    return update_step(rs, step, &parts, t0, outcome, err);
}

/* --------------------------------------------------------- evaluation */

/* The data-parallel reduction of an evaluation: every rank's sums added
 * up (so every rank takes the same early-stopping decision), then the
 * other ranks' NaN events and cache uses to rank 0. */
static int reduce_eval(run_state *rs, orch_eval_sums *sums, orch_err *err)
{
    double ctl[ORCH_EVAL_SUMS + 1];
    memcpy(ctl, sums, sizeof *sums);
    ctl[ORCH_EVAL_SUMS] = rs->pending_count;
    int rc = orch_comm_allreduce_sum_f64(rs->comm, ctl, ORCH_EVAL_SUMS + 1, err);
    if (rc != ORCH_OK)
        return rc;
    memcpy(sums, ctl, sizeof *sums);
    return ctl[ORCH_EVAL_SUMS] > 0 ? gather_records(rs, (int)ctl[ORCH_EVAL_SUMS], err) : ORCH_OK;
}

/* This rank's share of the held-out set, forward only, eval.batch_size
 * images at a time, into *sums. Under detach with the feature cache the
 * tower's outputs come from (and go to) the cache as a step's do. */
static int eval_forwards(run_state *rs, int64_t step, orch_eval_sums *sums, orch_err *err)
{
    orch_exec *ex = &rs->exec;
    const orch_tensor *logits = &rs->graph.tensors[rs->graph.logits];
    int n = rs->eval_set.n, b = eval_batch_size(rs->p);
    /* data parallelism: rank r evaluates the contiguous [floor(r n / N), floor((r + 1) n / N)) */
    int lo = (int)((int64_t)rs->rank * n / rs->ranks);
    int hi = (int)((int64_t)(rs->rank + 1) * n / rs->ranks);
    int rc = ORCH_OK;
    for (int first = lo; first < hi && rc == ORCH_OK; first += b, rs->micro++) {
        int count = hi - first < b ? hi - first : b;
        rc = orch_dataset_batch(rs->eval_data, rs->eval_set.index + first, count, &rs->batch, err);
        if (rc == ORCH_OK)
            rc = orch_exec_set_batch(ex, &rs->batch, err);
        if (rc != ORCH_OK)
            return rc;
        ex->step = step;
        ex->image_offset = 0;
        ex->patch_offset = 0;
        ex->loss_weight = 1.0;
        double loss = 0.0;
        if (rs->cache.disk != NULL) {
            int hits = 0, misses = 0;
            rc = orch_detach_cache_forward(&rs->cache, ex, &rs->batch, &loss, &hits, &misses, err);
            if (rc == ORCH_OK)
                rc = record_cache_uses(rs, err);
        } else {
            loss = orch_exec_forward(ex);
        }
        if (rc == ORCH_OK)
            orch_eval_add_batch(sums, logits->data, logits->cols, &rs->batch, loss);
    }
    return rc;
}

/* Early stopping's comparison after an evaluation at step; ends the run
 * (rs->stopped_early, the reason in the result) when the metric did not
 * improve for schedule.stop.patience evaluations and steps remain. */
static void early_stop(run_state *rs, int64_t step, const orch_eval_metric *metrics, int n)
{
    const orch_stop *stop = &rs->p->schedule.stop;
    if (!stop->enabled)
        return;
    double value = NAN;
    for (int i = 0; i < n; i++)
        if (strcmp(metrics[i].name, stop->metric) == 0)
            value = metrics[i].value;
    if (orch_early_stop_update(&rs->stop, stop, value, step) && step + 1 < rs->p->schedule.steps) {
        rs->stopped_early = 1;
        orch_early_stop_reason(&rs->stop, stop, rs->result->end_reason,
                               sizeof rs->result->end_reason);
    }
}

/* An evaluation after step `step` (core/eval.h): the held-out set's
 * forwards with dropout and injection off, nothing of training touched;
 * its metrics recorded at step; NaN events, when the checks find any, as
 * a step's but with their tensor prefixed "eval:" (they do not make the
 * run diverge: training's own values decide that). */
static int evaluate(run_state *rs, int64_t step, orch_err *err)
{
    orch_train_result *res = rs->result;
    orch_eval_sums sums = {0};
    rs->evaluating = rs->exec.evaluating = 1;
    rs->n_reported = 0; /* a stage's NaN is recorded once per evaluation */
    rs->micro = 0;
    int rc = eval_forwards(rs, step, &sums, err);
    if (rc == ORCH_OK && rs->comm != NULL)
        rc = reduce_eval(rs, &sums, err);
    rs->evaluating = rs->exec.evaluating = 0;
    if (rc == ORCH_OK && rs->record_error)
        rc = orch_seterr(err, rs->observer_err.code, "%s", rs->observer_err.msg);
    if (rc != ORCH_OK)
        return rc;
    orch_eval_metric metrics[ORCH_EVAL_MAX_METRICS];
    int n = orch_eval_metrics(&sums, rs->p->head.kind, rs->p->head.n_outputs, metrics);
    for (int i = 0; i < n && rc == ORCH_OK; i++) {
        orch_metric_record rec = {step, metrics[i].name, metrics[i].value};
        rc = rs->sink->metric(rs->sink->ctx, res->run_id, &rec, err);
    }
    rs->last_eval = step;
    res->evals++;
    res->eval_loss = metrics[0].value;
    res->eval_accuracy = rs->p->head.kind == ORCH_HEAD_CLASSIFIER ? metrics[1].value : NAN;
    early_stop(rs, step, metrics, n);
    return rc;
}

/* Whether an evaluation follows step (eval.every): after steps N-1,
 * 2N-1, ... (every N steps done); the end's is decided by the caller. */
static int eval_due(const orch_pipeline *p, int64_t step)
{
    return p->eval.enabled && p->eval.every > 0 && (step + 1) % p->eval.every == 0;
}

/* Whether the run's end state is unusable: the last step's loss, or any
 * parameter (one scan of the flat block), not finite. Says where in
 * res->diverged_at. */
static int ended_non_finite(const run_state *rs, int64_t last_step)
{
    orch_train_result *res = rs->result;
    const orch_graph *g = &rs->graph;
    if (res->steps_done > 0 && !isfinite(res->final_loss)) {
        snprintf(res->diverged_at, sizeof res->diverged_at, "step %lld: the final loss is %s",
                 (long long)last_step, isnan(res->final_loss) ? "NaN" : "Inf");
        return 1;
    }
    orch_finite_stats s = orch_finite_scan(g->param_memory, g->n_param_floats);
    if (s.first_bad >= 0) {
        snprintf(res->diverged_at, sizeof res->diverged_at,
                 "step %lld: non-finite parameters (%lld NaN, %lld Inf)", (long long)last_step,
                 (long long)s.nan_count, (long long)s.inf_count);
        return 1;
    }
    return 0;
}

/* ------------------------------------------------------------- stop flag */

/* Set from a signal handler (SIGINT, SIGTERM): the loop ends after the step
 * it is in, records everything and marks the run interrupted. */
static volatile sig_atomic_t stop_requested;
static volatile sig_atomic_t stop_signal; /* the signal that asked, or 0 */

void orch_train_request_stop(void)
{
    stop_requested = 1;
}

void orch_train_stop_by_signal(int sig)
{
    stop_signal = sig;
    stop_requested = 1;
}

/* runs.error of an interrupted run: what stopped it. */
static const char *stop_reason(void)
{
    switch (stop_signal) {
    case SIGINT:
        return "interrupted by SIGINT";
    case SIGTERM:
        return "interrupted by SIGTERM";
    case SIGUSR1:
        return "interrupted by SIGUSR1";
    default:
        return "interrupted by a stop request";
    }
}

/* --------------------------------------------------------------- output */

static void print_progress(FILE *out, const orch_pipeline *p, const orch_train_result *res,
                           int64_t step, double elapsed_ms, int64_t steps_this_process)
{
    if (out == NULL)
        return;
    double rate = elapsed_ms > 0 ? steps_this_process * 1e3 / elapsed_ms : 0.0;
    double eta = rate > 0 ? (p->schedule.steps - step - 1) / rate : 0.0;
    /* the step number is the store's and --json's (from 0); the count of
     * steps done is what a tqdm bar shows */
    fprintf(out,
            "\rstep %lld (%lld/%d done)  loss %.4f  grad_norm %.4g  %.1f steps/s  ETA %.0fs  nan "
            "%lld  ",
            (long long)step, (long long)step + 1, p->schedule.steps, res->final_loss,
            res->last_grad_norm, rate, eta, (long long)res->nan_events);
    fflush(out);
}

static void print_json_step(FILE *out, int64_t run_id, int64_t step, const orch_train_result *res,
                            double lr, double wall_ms)
{
    if (out == NULL)
        return;
    /* JSON has no NaN or Inf: non-finite values are null, as in the store */
    char loss[32] = "null", norm[32] = "null";
    if (isfinite(res->final_loss))
        snprintf(loss, sizeof loss, "%.9g", res->final_loss);
    if (isfinite(res->last_grad_norm))
        snprintf(norm, sizeof norm, "%.9g", res->last_grad_norm);
    fprintf(out,
            "{\"run\": %lld, \"step\": %lld, \"loss\": %s, \"grad_norm\": %s, \"lr\": %.9g, "
            "\"wall_ms\": %.3f, \"nan_events\": %lld, \"skipped_steps\": %lld}\n",
            (long long)run_id, (long long)step, loss, norm, lr, wall_ms, (long long)res->nan_events,
            (long long)res->skipped_steps);
    fflush(out);
}

/* -------------------------------------------------------- checkpoints */

typedef struct stats_ctx {
    run_state *rs;
    int64_t step;
    int rc;
    orch_err *err;
} stats_ctx;

static void emit_stat(void *ctx, const char *stage, double absmax, double rms, double grad_norm)
{
    stats_ctx *sc = ctx;
    if (sc->rc != ORCH_OK || sc->rs->sink->stage_stat == NULL)
        return;
    orch_stage_stat rec = {sc->step, stage, absmax, rms, grad_norm};
    sc->rc = sc->rs->sink->stage_stat(sc->rs->sink->ctx, sc->rs->result->run_id, &rec, sc->err);
}

static int write_checkpoint(run_state *rs, const orch_train_options *options, int64_t step,
                            const char *config_hash, orch_err *err)
{
    if (options == NULL || options->run_dir == NULL)
        return ORCH_OK;
    char dir[ORCH_PATH_MAX + 64], path[ORCH_PATH_MAX + 128];
    if (mkdir(options->run_dir, 0777) != 0 && errno != EEXIST)
        return orch_seterr(err, ORCH_EIO, "%s: %s", options->run_dir, strerror(errno));
    snprintf(dir, sizeof dir, "%s/%lld", options->run_dir, (long long)rs->result->run_id);
    if (mkdir(dir, 0777) != 0 && errno != EEXIST)
        return orch_seterr(err, ORCH_EIO, "%s: %s", dir, strerror(errno));
    snprintf(path, sizeof path, "%s/checkpoint-%lld.safetensors", dir, (long long)step);
    orch_checkpoint_state st = {step,           rs->updates, rs->exec.loss_scale,
                                rs->good_steps, "",          rs->stop};
    snprintf(st.config_hash, sizeof st.config_hash, "%s", config_hash);
    char sha[65] = "";
    int64_t bytes = 0;
    int rc = orch_checkpoint_write(path, &rs->graph, rs->p->optimizer.kind, &st, sha, &bytes, err);
    if (rc == ORCH_OK && rs->sink->artifact != NULL) {
        orch_artifact art = {step, ORCH_ARTIFACT_CHECKPOINT, path, sha, bytes};
        rc = rs->sink->artifact(rs->sink->ctx, rs->result->run_id, &art, err);
    }
    return rc;
}

/* ----------------------------------------------------------------- run */

int orch_train(const orch_pipeline *p, const orch_train_options *options, orch_sink *sink,
               orch_train_result *result, orch_err *err)
{
    run_state rs;
    memset(&rs, 0, sizeof rs);
    memset(result, 0, sizeof *result);
    rs.p = p;
    rs.sink = sink;
    rs.result = result;
    rs.comm = options != NULL ? options->comm : NULL;
    rs.ranks = rs.comm != NULL ? orch_comm_size(rs.comm) : 1;
    rs.rank = rs.comm != NULL ? orch_comm_rank(rs.comm) : 0;
    gethostname(rs.host, sizeof rs.host - 1);
    int resuming = options != NULL && options->resume_run_id > 0;
    int rc = prepare(&rs, options, err);
    char hash[65] = "";
    if (rc == ORCH_OK && orch_pipeline_hash(p, hash) != ORCH_OK)
        rc = orch_seterr(err, ORCH_ENOMEM, "run: cannot hash the pipeline");
    int64_t first_step = 0;
    if (rc == ORCH_OK && resuming && options->resume_checkpoint != NULL) {
        orch_checkpoint_state st;
        rc = orch_checkpoint_read(options->resume_checkpoint, &rs.graph, p->optimizer.kind, hash,
                                  &st, err);
        if (rc == ORCH_OK)
            rc = orch_exec_refresh_lowp(&rs.exec, 0, err);
        first_step = st.step + 1;
        rs.updates = st.updates;
        rs.exec.loss_scale = st.loss_scale;
        rs.good_steps = st.good_steps;
        rs.stop = st.stop;
    }
    if (rc == ORCH_OK && rs.comm != NULL)
        rc = same_parameters(&rs, err);
    char *config_json = rc == ORCH_OK ? orch_pipeline_to_json(p, 0) : NULL;
    if (rc == ORCH_OK && config_json == NULL)
        rc = orch_seterr(err, ORCH_ENOMEM, "run: cannot encode the pipeline");
    if (rc != ORCH_OK) {
        free(config_json);
        run_free(&rs);
        return rc;
    }
    /* the data it computes on, recorded with it (core/data_identity.h):
     * hashed before begin_run, its files and classes sent right after */
    orch_data_identity data_id;
    /* eval.split evaluates files the training role already names */
    rc = orch_data_identity_of(&rs.data, rs.eval_data == &rs.eval_own ? &rs.eval_own : NULL,
                               &data_id, err);
    if (rc != ORCH_OK) {
        free(config_json);
        run_free(&rs);
        return rc;
    }
    char host[256] = "";
    gethostname(host, sizeof host - 1);
    const orch_blas_info *blas = orch_blas_get_info();
    char kernels[96];
    snprintf(kernels, sizeof kernels, "blis %s %s", blas->version, blas->subconfig);
    orch_run_info info = {p->path,
                          options && options->run_name ? options->run_name : p->name,
                          orch_strategy_name(p->strategy.kind),
                          config_json,
                          hash,
                          p->seed,
                          host,
                          (int64_t)getpid(),
                          ORCH_VERSION,
                          kernels,
                          blas->why,
                          blas->cpu,
                          orch_threads_get(),
                          orch_data_identity_hash(&data_id)};
    if (resuming) {
        result->run_id = options->resume_run_id;
        orch_run_resume resume = {info, first_step - 1};
        rc = sink->resume_run(sink->ctx, result->run_id, &resume, err);
    } else {
        rc = sink->begin_run(sink->ctx, &info, &result->run_id, err);
    }
    free(config_json);
    for (int i = 0;
         rc == ORCH_OK && options != NULL && sink->source_file != NULL && i < options->n_sources;
         i++)
        rc = sink->source_file(sink->ctx, result->run_id, &options->sources[i], err);
    if (rc != ORCH_OK) {
        orch_data_identity_free(&data_id);
        run_free(&rs);
        return rc;
    }
    /* a failure here ends the begun run as failed, below */
    rc = orch_data_identity_send(&data_id, sink, result->run_id, err);
    orch_data_identity_free(&data_id);

    /* owned here: the global batch's dataset indices, the micro-batches' slices of it */
    int *indices = malloc(sizeof(int) * (size_t)p->schedule.batch_size * p->schedule.grad_accum);
    batch_slice *slices = malloc(sizeof *slices * (size_t)p->schedule.grad_accum);
    if (indices == NULL || slices == NULL)
        rc = orch_seterr(err, ORCH_ENOMEM, "run: out of memory");
    step_outcome outcome = STEP_OK;
    double start = now_ms();
    int64_t step = first_step, last_done = first_step - 1, last_checkpoint = first_step - 1;
    FILE *progress = options ? options->progress : NULL;
    FILE *json = options ? options->json : NULL;
    for (; rc == ORCH_OK && step < p->schedule.steps; step++) {
        double t0 = now_ms();
        if (options != NULL && options->stop_at > 0 && step + 1 == options->stop_at)
            stop_requested = 1; /* read by the step's reduction */
        rc = run_step(&rs, step, indices, slices, &outcome, err);
        if (rc != ORCH_OK)
            break;
        last_done = step;
        int stats_every = p->checks.stats_every;
        if (stats_every > 0 && step % stats_every == 0 && rs.share > 0 && rs.rank == 0) {
            stats_ctx sc = {&rs, step, ORCH_OK, err};
            orch_exec_stage_stats(&rs.exec, emit_stat, &sc);
            rc = sc.rc;
        }
        print_progress(progress, p, result, step, now_ms() - start, step - first_step + 1);
        print_json_step(json, result->run_id, step, result,
                        orch_lr_at(&p->optimizer, &p->schedule, step), now_ms() - t0);
        /* after the stage statistics, which read the step's activations */
        if (rc == ORCH_OK && outcome != STEP_DIVERGED && eval_due(p, step))
            rc = evaluate(&rs, step, err);
        if (rc != ORCH_OK || outcome == STEP_DIVERGED || rs.stopped_early ||
            (rs.comm != NULL ? rs.stop_all : stop_requested))
            break;
        int every = p->schedule.checkpoint_every;
        if (rc == ORCH_OK && every > 0 && (step + 1) % every == 0 && step + 1 < p->schedule.steps) {
            rc = write_checkpoint(&rs, options, step, hash, err);
            last_checkpoint = step;
        }
    }
    if (progress != NULL)
        fputc('\n', progress);
    free(indices);
    free(slices);
    /* continue and skip_update keep stepping through non-finite values, but a
     * run that ends with them has diverged: a sweep must not read NaN
     * weights or a NaN loss as a success */
    if (rc == ORCH_OK && outcome != STEP_DIVERGED && ended_non_finite(&rs, last_done))
        outcome = STEP_DIVERGED;
    /* the end's evaluation: a run that finished (its steps, or stopped
     * early) and has not just been evaluated; an interrupted run is
     * evaluated when it is resumed to its end */
    int interrupted = !rs.stopped_early && (rs.comm != NULL ? rs.stop_all : stop_requested) &&
                      last_done + 1 < p->schedule.steps;
    if (rc == ORCH_OK && p->eval.enabled && outcome != STEP_DIVERGED && !interrupted &&
        last_done >= 0 && rs.last_eval != last_done)
        rc = evaluate(&rs, last_done, err);
    /* the final state is a checkpoint too, so finished runs can be continued
     * elsewhere and interrupted ones resume from their last whole step */
    if (rc == ORCH_OK && last_done > last_checkpoint && outcome != STEP_DIVERGED)
        rc = write_checkpoint(&rs, options, last_done, hash, err);

    orch_err end_err;
    orch_err_clear(&end_err);
    if (rc == ORCH_OK) {
        if (outcome == STEP_DIVERGED)
            result->status = ORCH_RUN_DIVERGED;
        else if (interrupted)
            result->status = ORCH_RUN_INTERRUPTED;
        else
            result->status = ORCH_RUN_FINISHED;
        /* error is why it stopped (a signal); reason why a finished run
         * ended before its last step (early stopping) */
        orch_run_end end = {result->status,
                            result->status == ORCH_RUN_INTERRUPTED ? stop_reason() : NULL,
                            rs.stopped_early ? result->end_reason : NULL};
        rc = sink->end_run(sink->ctx, result->run_id, &end, err);
        if (rc != ORCH_OK) /* the sink marked it failed where it still could */
            result->status = ORCH_RUN_FAILED;
    } else {
        result->status = ORCH_RUN_FAILED;
        orch_run_end end = {ORCH_RUN_FAILED, err->msg, NULL};
        sink->end_run(sink->ctx, result->run_id, &end, &end_err);
    }
    result->last_step = last_done;
    result->check_seconds = rs.exec.check_seconds;
    run_free(&rs);
    /* a request is for the run it reached: cleared once that run has ended,
     * not as one starts, so a signal that comes while it sets up (loading
     * gigabytes of weights) still stops it after its first step */
    stop_requested = 0;
    stop_signal = 0;
    return rc;
}
