/* test_model_init.c - parameter initialization at any thread count.
 *
 * orch_init_params fills tensors in parallel chunks; the values must be the
 * ones the serial definition gives (the pinned hashes, losses and fixtures
 * rest on them), bit for bit, at 1 and 2 threads. The reference below is
 * the serial loop orch used before the fill was parallel, kept here as the
 * definition. A weights file gives the tower's values; the layers it does
 * not hold get the same values as without a file. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/graph.h"
#include "core/init.h"
#include "kernels/kernels.h"
#include "lua/tower.h"
#include "store/safetensors.h"
#include "tests/testutil.h"

/* ------------------------------------------- the serial definition */

static uint64_t ref_splitmix64(uint64_t *state)
{
    uint64_t z = (*state += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

static double ref_uniform01(uint64_t *state)
{
    return (double)(ref_splitmix64(state) >> 11) * (1.0 / 9007199254740992.0);
}

static uint64_t ref_stream(uint64_t seed, const char *name)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    for (const char *c = name; *c; c++)
        h = (h ^ (uint8_t)*c) * 0x100000001b3ULL;
    uint64_t state = seed ^ h;
    ref_splitmix64(&state);
    return state;
}

static void ref_values(const orch_param *p, uint64_t seed, double std, float *x)
{
    uint64_t state = ref_stream(seed, p->name);
    int64_t n = p->numel;
    if (p->role == ORCH_PARAM_LORA_B || (!p->trainable && p->role == ORCH_PARAM_BIAS)) {
        memset(x, 0, sizeof(float) * (size_t)n);
    } else if (p->trainable) {
        double bound = 1.0 / sqrt((double)p->fan_in);
        for (int64_t i = 0; i < n; i++)
            x[i] = (float)((2.0 * ref_uniform01(&state) - 1.0) * bound);
    } else if (p->role == ORCH_PARAM_NORM) {
        for (int64_t i = 0; i < n; i++)
            x[i] = 1.0f;
    } else {
        for (int64_t i = 0; i < n; i += 2) {
            double u1 = ref_uniform01(&state), u2 = ref_uniform01(&state);
            double r = sqrt(-2.0 * log(u1 > 0 ? u1 : 1e-300)) * std;
            x[i] = (float)(r * cos(2.0 * M_PI * u2));
            if (i + 1 < n)
                x[i + 1] = (float)(r * sin(2.0 * M_PI * u2));
        }
    }
}

/* ------------------------------------------------------------ helpers */

/* The small preset (tensors of up to 262144 elements, several parallel
 * chunks each) under LoRA: frozen normal weights, zero biases, norms,
 * trainable uniform head and lora_A, zero lora_B. */
static void small_pipeline(orch_pipeline *p, orch_strategy_kind kind, uint64_t seed)
{
    tiny_pipeline(p, kind);
    assert_int_equal(dsl_preset("small", &p->model.config), 0);
    snprintf(p->strategy.targets[1], ORCH_NAME_MAX, "visual.blocks.1.attn.qkv");
    p->seed = seed;
}

/* Builds p's graph, initializes it with `threads` threads and returns a
 * copy of every parameter value (the caller frees it). */
static float *init_values(const orch_pipeline *p, int threads, orch_graph *g)
{
    orch_err err;
    assert_int_equal(orch_graph_build(p, g, &err), ORCH_OK);
    assert_int_equal(orch_graph_reserve(g, 64, 1, &err), ORCH_OK);
    orch_threads_set(threads);
    int rc = orch_init_params(g, p, &err);
    orch_threads_set(0);
    if (rc != ORCH_OK)
        fail_msg("%s", err.msg);
    float *copy = malloc(sizeof(float) * (size_t)g->n_param_floats);
    assert_non_null(copy);
    memcpy(copy, g->param_memory, sizeof(float) * (size_t)g->n_param_floats);
    return copy;
}

/* ------------------------------------------------------------- tests */

static void test_values_equal_serial_reference_at_1_and_2_threads(void **state)
{
    (void)state;
    orch_pipeline p;
    small_pipeline(&p, ORCH_STRATEGY_LORA, 1234);
    orch_graph g1, g2;
    float *one = init_values(&p, 1, &g1);
    float *two = init_values(&p, 2, &g2);
    assert_int_equal(g1.n_param_floats, g2.n_param_floats);
    assert_memory_equal(one, two, sizeof(float) * (size_t)g1.n_param_floats);
    int split = 0, roles = 0;
    for (int i = 0; i < g1.n_params; i++) {
        const orch_param *prm = &g1.params[i];
        float *want = malloc(sizeof(float) * (size_t)prm->numel);
        assert_non_null(want);
        ref_values(prm, p.seed, 0.02, want);
        if (memcmp(want, prm->data, sizeof(float) * (size_t)prm->numel) != 0)
            fail_msg("%s differs from the serial definition", prm->name);
        free(want);
        split += prm->numel > 65536;
        roles |= 1 << (prm->trainable ? 4 + prm->role : prm->role);
    }
    /* the case covers what it is meant to: tensors cut into several
     * chunks, and every kind of value */
    assert_true(split >= 3); /* patch_embed, merger.mlp.0 and mlp.2 */
    assert_true(roles & (1 << ORCH_PARAM_WEIGHT));
    assert_true(roles & (1 << ORCH_PARAM_BIAS));
    assert_true(roles & (1 << ORCH_PARAM_NORM));
    assert_true(roles & (1 << (4 + ORCH_PARAM_WEIGHT)));
    assert_true(roles & (1 << (4 + ORCH_PARAM_LORA_A)));
    assert_true(roles & (1 << (4 + ORCH_PARAM_LORA_B)));
    /* a value that must not be zero is not (the fill happened) */
    int w = orch_graph_find_param(&g1, "visual.blocks.0.mlp.up_proj.weight");
    assert_true(w >= 0 && g1.params[w].data[70000] != 0.0f);
    free(one);
    free(two);
    orch_graph_free(&g1);
    orch_graph_free(&g2);
}

static void test_seed_changes_values(void **state)
{
    (void)state;
    orch_pipeline p;
    small_pipeline(&p, ORCH_STRATEGY_SURGERY, 1);
    orch_graph g1, g2;
    float *a = init_values(&p, 2, &g1);
    p.seed = 2;
    float *b = init_values(&p, 2, &g2);
    int w = orch_graph_find_param(&g1, "visual.merger.mlp.0.weight");
    int64_t off = g1.params[w].data - g1.param_memory;
    assert_true(memcmp(a + off, b + off, sizeof(float) * 1000) != 0);
    free(a);
    free(b);
    orch_graph_free(&g1);
    orch_graph_free(&g2);
}

/* With model.weights the tower's values are the file's, read at 2
 * threads; the new layers (surgery's replacement, the head) are those a
 * run without the file gets. */
static void test_weights_file_and_fresh_layers(void **state)
{
    (void)state;
    char dir[256], path[320];
    assert_non_null(make_temp_dir(dir, sizeof dir));
    snprintf(path, sizeof path, "%s/tower.safetensors", dir);

    orch_pipeline p;
    small_pipeline(&p, ORCH_STRATEGY_SURGERY, 99);
    orch_graph src;
    float *src_values = init_values(&p, 1, &src);
    orch_st_entry *entries = calloc((size_t)src.n_params, sizeof *entries);
    assert_non_null(entries);
    int n = 0;
    for (int i = 0; i < src.n_params; i++) {
        const orch_param *prm = &src.params[i];
        if (!prm->in_tower)
            continue;
        entries[n].name = prm->name;
        entries[n].ndim = prm->ndim;
        memcpy(entries[n].shape, prm->shape, sizeof(int64_t) * (size_t)prm->ndim);
        entries[n].data = prm->data;
        n++;
    }
    orch_err err;
    assert_int_equal(orch_st_write(path, entries, n, NULL, &err), ORCH_OK);
    free(entries);

    small_pipeline(&p, ORCH_STRATEGY_SURGERY, 5);
    orch_graph fresh;
    float *fresh_values = init_values(&p, 1, &fresh);
    snprintf(p.model.weights, sizeof p.model.weights, "%s", path);
    orch_graph loaded;
    float *loaded_values = init_values(&p, 2, &loaded);
    for (int i = 0; i < loaded.n_params; i++) {
        const orch_param *prm = &loaded.params[i];
        int64_t off = prm->data - loaded.param_memory;
        size_t bytes = sizeof(float) * (size_t)prm->numel;
        int from_file = !prm->trainable;
        const float *want = from_file ? src.params[orch_graph_find_param(&src, prm->name)].data
                                      : fresh_values + off;
        if (memcmp(loaded_values + off, want, bytes) != 0)
            fail_msg("%s: not the %s values", prm->name, from_file ? "file's" : "fresh");
    }
    /* a file that lacks a tensor: the first missing one in parameter order */
    orch_st_entry one = {"visual.blocks.0.norm1.weight", 1, {128}, src.params[0].data};
    snprintf(path, sizeof path, "%s/partial.safetensors", dir);
    assert_int_equal(orch_st_write(path, &one, 1, NULL, &err), ORCH_OK);
    snprintf(p.model.weights, sizeof p.model.weights, "%s", path);
    orch_graph partial;
    assert_int_equal(orch_graph_build(&p, &partial, &err), ORCH_OK);
    assert_int_equal(orch_graph_reserve(&partial, 64, 1, &err), ORCH_OK);
    orch_threads_set(2);
    assert_int_equal(orch_init_params(&partial, &p, &err), ORCH_EINVAL);
    orch_threads_set(0);
    assert_non_null(strstr(err.msg, "no tensor 'visual.patch_embed.proj.weight'"));
    orch_graph_free(&partial);

    free(src_values);
    free(fresh_values);
    free(loaded_values);
    orch_graph_free(&src);
    orch_graph_free(&fresh);
    orch_graph_free(&loaded);
    remove_tree(dir);
}

typedef struct progress_log {
    int calls;
    int64_t last_done, last_total;
    char last_what[8];
    int monotonic;
} progress_log;

static void log_progress(void *ctx, const char *what, int64_t done, int64_t total)
{
    progress_log *log = ctx;
    if (log->calls > 0 && strcmp(what, log->last_what) == 0 && done < log->last_done)
        log->monotonic = 0;
    log->calls++;
    log->last_done = done;
    log->last_total = total;
    snprintf(log->last_what, sizeof log->last_what, "%s", what);
}

static void test_progress_reaches_total(void **state)
{
    (void)state;
    orch_pipeline p;
    small_pipeline(&p, ORCH_STRATEGY_LORA, 3);
    orch_graph g;
    orch_err err;
    assert_int_equal(orch_graph_build(&p, &g, &err), ORCH_OK);
    assert_int_equal(orch_graph_reserve(&g, 64, 1, &err), ORCH_OK);
    progress_log log = {0, 0, 0, "", 1};
    assert_int_equal(orch_init_params_progress(&g, &p, log_progress, &log, &err), ORCH_OK);
    assert_true(log.calls >= 1);
    assert_true(log.monotonic);
    assert_string_equal(log.last_what, "init");
    assert_int_equal(log.last_done, g.n_param_floats * (int64_t)sizeof(float));
    assert_int_equal(log.last_total, g.n_param_floats * (int64_t)sizeof(float));
    orch_graph_free(&g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_values_equal_serial_reference_at_1_and_2_threads),
        cmocka_unit_test(test_seed_changes_values),
        cmocka_unit_test(test_weights_file_and_fresh_layers),
        cmocka_unit_test(test_progress_reaches_total),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
