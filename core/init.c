/* init.c - parameter initialization and weight loading; see init.h. */
#include "core/init.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/kernels.h"
#include "store/safetensors.h"

#define SPLITMIX_GOLDEN 0x9E3779B97F4A7C15ULL

/* splitmix64 is counter-based: its k-th output (from 0) from state s is a
 * pure function of s + (k + 1) * golden. So element i of a tensor can be
 * produced from s + i * golden alone, and a tensor split into chunks gives
 * the values the serial loop gives, whatever the thread count. */
static uint64_t splitmix64(uint64_t *state)
{
    uint64_t z = (*state += SPLITMIX_GOLDEN);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

static double uniform01(uint64_t *state)
{
    return (double)(splitmix64(state) >> 11) * (1.0 / 9007199254740992.0);
}

/* A stream per (seed, name): FNV-1a of the name mixed into the seed. */
static uint64_t stream_for(uint64_t seed, const char *name)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    for (const char *c = name; *c; c++)
        h = (h ^ (uint8_t)*c) * 0x100000001b3ULL;
    uint64_t state = seed ^ h;
    splitmix64(&state);
    return state;
}

/* Elements [begin, end) of a normal(0, std) tensor of n elements whose
 * stream starts at state. Box-Muller draws two uniforms per pair of
 * elements, so element i is the pair's (i even) or its second (i odd): a
 * chunk must begin at an even element. */
static void fill_normal(float *x, int64_t n, int64_t begin, int64_t end, double std, uint64_t state)
{
    ORCH_ASSERT(begin % 2 == 0);
    state += (uint64_t)begin * SPLITMIX_GOLDEN;
    for (int64_t i = begin; i < end; i += 2) {
        double u1 = uniform01(&state), u2 = uniform01(&state);
        double r = sqrt(-2.0 * log(u1 > 0 ? u1 : 1e-300)) * std;
        x[i] = (float)(r * cos(2.0 * M_PI * u2));
        if (i + 1 < n)
            x[i + 1] = (float)(r * sin(2.0 * M_PI * u2));
    }
}

/* Elements [begin, end) of a U(-bound, bound) tensor: one draw each. */
static void fill_uniform_bound(float *x, int64_t begin, int64_t end, double bound, uint64_t state)
{
    state += (uint64_t)begin * SPLITMIX_GOLDEN;
    for (int64_t i = begin; i < end; i++)
        x[i] = (float)((2.0 * uniform01(&state) - 1.0) * bound);
}

/* Elements [begin, end) of the values of a parameter that no file
 * provides, decided by its role. */
static void init_fresh(orch_param *p, int64_t begin, int64_t end, uint64_t seed, double std)
{
    /* the stream depends on the name so each tensor's values stay the same
     * whatever else the graph holds */
    uint64_t state = stream_for(seed, p->name);
    size_t bytes = sizeof(float) * (size_t)(end - begin);
    if (p->role == ORCH_PARAM_LORA_B) {
        memset(p->data + begin, 0, bytes);
    } else if (p->trainable) {
        /* nn.Linear's reset_parameters and PEFT's lora_A: U(+-1/sqrt(fan_in)) */
        fill_uniform_bound(p->data, begin, end, 1.0 / sqrt((double)p->fan_in), state);
    } else if (p->role == ORCH_PARAM_NORM) {
        for (int64_t i = begin; i < end; i++)
            p->data[i] = 1.0f;
    } else if (p->role == ORCH_PARAM_BIAS) {
        memset(p->data + begin, 0, bytes);
    } else {
        fill_normal(p->data, p->numel, begin, end, std, state);
    }
}

/* A trainable layer that is new in this run (nothing in a checkpoint). */
static int is_new_layer(const orch_param *p, const orch_pipeline *pl)
{
    if (!p->trainable)
        return 0;
    if (p->group == ORCH_GROUP_TOWER)
        return 0;
    (void)pl;
    return 1;
}

/* Set-up progress, reported from the calling thread between waves of
 * parallel work (never from inside a parallel region). */
typedef struct progress {
    orch_init_progress_fn fn; /* NULL: none */
    void *ctx;
    const char *what;
    int64_t done, total; /* bytes */
} progress;

static void progress_add(progress *pr, int64_t bytes)
{
    pr->done += bytes;
    if (pr->fn != NULL)
        pr->fn(pr->ctx, pr->what, pr->done, pr->total);
}

/* Work is cut into chunks of at most CHUNK_FLOATS elements of one
 * parameter (even, so no Box-Muller pair is split), run WAVE_CHUNKS at a
 * time in parallel. */
enum { CHUNK_FLOATS = 1 << 16, WAVE_CHUNKS = 256 };

typedef struct chunk {
    int param;
    int64_t begin, end;
} chunk;

/* The chunks of the parameters that wanted[i] selects, in parameter order;
 * a new array the caller frees, or NULL when out of memory (*n = -1). */
static chunk *make_chunks(const orch_graph *g, const char *wanted, int64_t *n)
{
    int64_t count = 0;
    for (int i = 0; i < g->n_params; i++)
        if (wanted[i])
            count += (g->params[i].numel + CHUNK_FLOATS - 1) / CHUNK_FLOATS;
    chunk *chunks = malloc(sizeof *chunks * (size_t)(count + 1));
    if (chunks == NULL) {
        *n = -1;
        return NULL;
    }
    int64_t k = 0;
    for (int i = 0; i < g->n_params; i++) {
        if (!wanted[i])
            continue;
        for (int64_t b = 0; b < g->params[i].numel; b += CHUNK_FLOATS) {
            int64_t e = b + CHUNK_FLOATS;
            chunks[k++] = (chunk){i, b, e < g->params[i].numel ? e : g->params[i].numel};
        }
    }
    ORCH_ASSERT(k == count);
    *n = count;
    return chunks;
}

static void init_fresh_all(orch_graph *g, const chunk *chunks, int64_t n_chunks, uint64_t seed,
                           double std, progress *pr)
{
    int threads = orch_threads_get();
    for (int64_t w = 0; w < n_chunks; w += WAVE_CHUNKS) {
        int64_t end = w + WAVE_CHUNKS < n_chunks ? w + WAVE_CHUNKS : n_chunks;
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads)
        for (int64_t k = w; k < end; k++)
            init_fresh(&g->params[chunks[k].param], chunks[k].begin, chunks[k].end, seed, std);
        int64_t floats = 0;
        for (int64_t k = w; k < end; k++)
            floats += chunks[k].end - chunks[k].begin;
        progress_add(pr, floats * (int64_t)sizeof(float));
    }
}

/* Reads the tensors of the parameters ids[0..n-1] from file into their
 * values, converting in parallel; the first failing one (in that order)
 * is the error, with the message orch_st_read_f32 gives. */
static int read_params(orch_graph *g, const orch_st_file *file, const int *ids, int n, progress *pr,
                       orch_err *err)
{
    int threads = orch_threads_get();
    int *codes = calloc((size_t)n + 1, sizeof *codes);
    orch_err *errs = calloc((size_t)n + 1, sizeof *errs);
    if (codes == NULL || errs == NULL) {
        free(codes);
        free(errs);
        return orch_seterr(err, ORCH_ENOMEM, "init: out of memory");
    }
    /* waves of about 256 MB, so progress moves while a big tower loads */
    const int64_t wave_bytes = (int64_t)256 << 20;
    int rc = ORCH_OK;
    for (int w = 0; w < n && rc == ORCH_OK;) {
        int end = w;
        int64_t bytes = 0;
        while (end < n && (end == w || bytes < wave_bytes))
            bytes += g->params[ids[end++]].numel * (int64_t)sizeof(float);
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads)
        for (int k = w; k < end; k++) {
            orch_param *prm = &g->params[ids[k]];
            codes[k] =
                orch_st_read_f32(file, prm->name, prm->shape, prm->ndim, prm->data, &errs[k]);
        }
        for (int k = w; k < end && rc == ORCH_OK; k++)
            if (codes[k] != ORCH_OK)
                rc = orch_seterr(err, codes[k], "%s", errs[k].msg);
        progress_add(pr, bytes);
        w = end;
    }
    free(codes);
    free(errs);
    return rc;
}

static int load_weights(orch_graph *g, const orch_pipeline *p, const char *from_file, progress *pr,
                        orch_err *err)
{
    orch_st_file *file = NULL;
    int rc = orch_st_open(p->model.weights, &file, err);
    if (rc != ORCH_OK)
        return rc;
    int *ids = malloc(sizeof *ids * ((size_t)g->n_params + 1));
    if (ids == NULL) {
        orch_st_close(file);
        return orch_seterr(err, ORCH_ENOMEM, "init: out of memory");
    }
    int n = 0;
    for (int i = 0; i < g->n_params; i++)
        if (from_file[i])
            ids[n++] = i;
    rc = read_params(g, file, ids, n, pr, err);
    free(ids);
    orch_st_close(file);
    return rc;
}

static int load_init(orch_graph *g, const orch_pipeline *p, orch_err *err)
{
    orch_st_file *file = NULL;
    int rc = orch_st_open(p->strategy.init, &file, err);
    if (rc != ORCH_OK)
        return rc;
    int loaded = 0;
    for (int i = 0; i < g->n_params && rc == ORCH_OK; i++) {
        orch_param *prm = &g->params[i];
        if (!prm->trainable || orch_st_find(file, prm->name) == NULL)
            continue;
        rc = orch_st_read_f32(file, prm->name, prm->shape, prm->ndim, prm->data, err);
        loaded++;
    }
    if (rc == ORCH_OK && loaded == 0)
        rc = orch_seterr(err, ORCH_EINVAL, "%s: holds none of this run's trainable tensors",
                         p->strategy.init);
    orch_st_close(file);
    return rc;
}

int orch_init_params_progress(orch_graph *g, const orch_pipeline *p, orch_init_progress_fn fn,
                              void *ctx, orch_err *err)
{
    double std = p->model.config.initializer_range > 0 ? p->model.config.initializer_range : 0.02;
    int with_weights = p->model.weights[0] != '\0';
    /* from_file[i]: parameter i comes from model.weights, so a fresh value
     * would be overwritten unseen; fresh[i] is the rest */
    char *from_file = calloc((size_t)g->n_params + 1, 1);
    char *fresh = calloc((size_t)g->n_params + 1, 1);
    if (from_file == NULL || fresh == NULL) {
        free(from_file);
        free(fresh);
        return orch_seterr(err, ORCH_ENOMEM, "init: out of memory");
    }
    int64_t fresh_bytes = 0, file_bytes = 0;
    for (int i = 0; i < g->n_params; i++) {
        from_file[i] = with_weights && !is_new_layer(&g->params[i], p);
        fresh[i] = !from_file[i];
        int64_t bytes = g->params[i].numel * (int64_t)sizeof(float);
        if (from_file[i])
            file_bytes += bytes;
        else
            fresh_bytes += bytes;
    }
    int64_t n_chunks = 0;
    chunk *chunks = make_chunks(g, fresh, &n_chunks);
    int rc = ORCH_OK;
    if (chunks == NULL) {
        rc = orch_seterr(err, ORCH_ENOMEM, "init: out of memory");
    } else {
        progress pr = {fn, ctx, "init", 0, fresh_bytes};
        init_fresh_all(g, chunks, n_chunks, p->seed, std, &pr);
    }
    free(chunks);
    if (rc == ORCH_OK && with_weights) {
        progress pr = {fn, ctx, "load", 0, file_bytes};
        rc = load_weights(g, p, from_file, &pr, err);
    }
    if (rc == ORCH_OK && p->strategy.init[0] != '\0')
        rc = load_init(g, p, err);
    free(from_file);
    free(fresh);
    return rc;
}

int orch_init_params(orch_graph *g, const orch_pipeline *p, orch_err *err)
{
    return orch_init_params_progress(g, p, NULL, NULL, err);
}
