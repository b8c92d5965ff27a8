/* init.c - parameter initialization and weight loading; see init.h. */
#include "core/init.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

#include "store/safetensors.h"

static uint64_t splitmix64(uint64_t *state)
{
    uint64_t z = (*state += 0x9E3779B97F4A7C15ULL);
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

static void fill_normal(float *x, int64_t n, double std, uint64_t state)
{
    for (int64_t i = 0; i < n; i += 2) {
        double u1 = uniform01(&state), u2 = uniform01(&state);
        double r = sqrt(-2.0 * log(u1 > 0 ? u1 : 1e-300)) * std;
        x[i] = (float)(r * cos(2.0 * M_PI * u2));
        if (i + 1 < n)
            x[i + 1] = (float)(r * sin(2.0 * M_PI * u2));
    }
}

static void fill_uniform_bound(float *x, int64_t n, double bound, uint64_t state)
{
    for (int64_t i = 0; i < n; i++)
        x[i] = (float)((2.0 * uniform01(&state) - 1.0) * bound);
}

/* Values for a parameter that no file provides, decided by its role. */
static void init_fresh(orch_param *p, uint64_t seed, double std)
{
    /* the stream depends on the name so each tensor's values stay the same
     * whatever else the graph holds */
    uint64_t state = stream_for(seed, p->name);
    if (p->role == ORCH_PARAM_LORA_B) {
        memset(p->data, 0, sizeof(float) * (size_t)p->numel);
    } else if (p->trainable) {
        /* nn.Linear's reset_parameters and PEFT's lora_A: U(+-1/sqrt(fan_in)) */
        fill_uniform_bound(p->data, p->numel, 1.0 / sqrt((double)p->fan_in), state);
    } else if (p->role == ORCH_PARAM_NORM) {
        for (int64_t i = 0; i < p->numel; i++)
            p->data[i] = 1.0f;
    } else if (p->role == ORCH_PARAM_BIAS) {
        memset(p->data, 0, sizeof(float) * (size_t)p->numel);
    } else {
        fill_normal(p->data, p->numel, std, state);
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

static int load_weights(orch_graph *g, const orch_pipeline *p, orch_err *err)
{
    orch_st_file *file = NULL;
    int rc = orch_st_open(p->model.weights, &file, err);
    if (rc != ORCH_OK)
        return rc;
    for (int i = 0; i < g->n_params && rc == ORCH_OK; i++) {
        orch_param *prm = &g->params[i];
        if (is_new_layer(prm, p))
            continue;
        rc = orch_st_read_f32(file, prm->name, prm->shape, prm->ndim, prm->data, err);
    }
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

int orch_init_params(orch_graph *g, const orch_pipeline *p, orch_err *err)
{
    double std = p->model.config.initializer_range > 0 ? p->model.config.initializer_range : 0.02;
    for (int i = 0; i < g->n_params; i++)
        init_fresh(&g->params[i], p->seed, std);
    int rc = ORCH_OK;
    if (p->model.weights[0] != '\0')
        rc = load_weights(g, p, err);
    if (rc == ORCH_OK && p->strategy.init[0] != '\0')
        rc = load_init(g, p, err);
    return rc;
}
