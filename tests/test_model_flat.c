/* test_model_flat.c - flat parameter memory, as llm.c keeps it.
 *
 * Parameters, gradients and optimizer state are each one contiguous block;
 * every trainable parameter is a view into them at one offset shared by
 * the three, trainable parameters first; orch_graph_grads is the door a
 * data-parallel allreduce uses (one call on one buffer); zero_grad clears
 * exactly the gradient block; backward accumulates into it. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/exec.h"
#include "core/graph.h"
#include "core/init.h"
#include "tests/testutil.h"

static const orch_strategy_kind all_kinds[] = {ORCH_STRATEGY_SURGERY, ORCH_STRATEGY_DETACH,
                                               ORCH_STRATEGY_LORA, ORCH_STRATEGY_FULL};

static void build(orch_graph *g, orch_pipeline *p, orch_strategy_kind kind)
{
    orch_err err;
    tiny_pipeline(p, kind);
    assert_int_equal(orch_graph_build(p, g, &err), ORCH_OK);
    assert_int_equal(orch_graph_reserve(g, 76, 2, &err), ORCH_OK);
}

static int inside(const float *x, int64_t n, const float *block, int64_t block_n)
{
    return x >= block && x + n <= block + block_n;
}

static void test_one_block_each_every_param_a_view(void **state)
{
    (void)state;
    for (size_t k = 0; k < sizeof all_kinds / sizeof all_kinds[0]; k++) {
        orch_pipeline p;
        orch_graph g;
        build(&g, &p, all_kinds[k]);
        int64_t n_train = 0;
        float *grads = orch_graph_grads(&g, &n_train);
        int64_t n_values = 0;
        float *values = orch_graph_trainable_values(&g, &n_values);
        int64_t want_trainable = 0;
        int64_t all = orch_graph_param_count(&g, &want_trainable);
        assert_non_null(grads);
        assert_true(values == g.param_memory);
        assert_int_equal(n_train, want_trainable);
        assert_int_equal(n_values, want_trainable);
        assert_int_equal(g.n_param_floats, all);
        /* trainable parameters tile [0, n_train) of every block, in order,
         * at the same offset in each; frozen ones tile [n_train, all) of
         * the parameter block and have no gradient nor state */
        int64_t next_trainable = 0, next_frozen = n_train;
        for (int i = 0; i < g.n_params; i++) {
            const orch_param *prm = &g.params[i];
            if (prm->trainable) {
                int64_t off = prm->data - g.param_memory;
                assert_int_equal(off, next_trainable);
                assert_true(prm->grad == grads + off);
                assert_true(prm->m == g.opt_memory + off);
                assert_true(prm->v == g.opt_memory + n_train + off);
                assert_true(inside(prm->data, prm->numel, values, n_train));
                assert_true(inside(prm->grad, prm->numel, grads, n_train));
                assert_true(inside(prm->m, prm->numel, g.opt_memory, n_train));
                assert_true(inside(prm->v, prm->numel, g.opt_memory + n_train, n_train));
                next_trainable += prm->numel;
            } else {
                assert_int_equal(prm->data - g.param_memory, next_frozen);
                assert_null(prm->grad);
                assert_null(prm->m);
                assert_null(prm->v);
                next_frozen += prm->numel;
            }
        }
        assert_int_equal(next_trainable, n_train);
        assert_int_equal(next_frozen, all);
        /* a second reservation (a larger batch) keeps the blocks */
        orch_err err;
        assert_int_equal(orch_graph_reserve(&g, 152, 4, &err), ORCH_OK);
        assert_true(orch_graph_grads(&g, &n_train) == grads);
        orch_graph_free(&g);
    }
}

static void fill(float *x, int64_t n, float v)
{
    for (int64_t i = 0; i < n; i++)
        x[i] = v;
}

static int all_equal(const float *x, int64_t n, float v)
{
    for (int64_t i = 0; i < n; i++)
        if (x[i] != v)
            return 0;
    return 1;
}

static void test_zero_grad_zeros_exactly_the_gradient_block(void **state)
{
    (void)state;
    orch_pipeline p;
    orch_graph g;
    build(&g, &p, ORCH_STRATEGY_LORA);
    int64_t n = 0;
    float *grads = orch_graph_grads(&g, &n);
    fill(g.param_memory, g.n_param_floats, 2.0f);
    fill(grads, n, 1.0f);
    fill(g.opt_memory, 2 * n, 3.0f);
    orch_tensor *in = &g.tensors[g.logits];
    assert_non_null(in->grad);
    fill(in->grad, in->cap, 4.0f);
    orch_graph_zero_grad(&g);
    assert_true(all_equal(grads, n, 0.0f));
    assert_true(all_equal(g.param_memory, g.n_param_floats, 2.0f));
    assert_true(all_equal(g.opt_memory, 2 * n, 3.0f));
    assert_true(all_equal(in->grad, in->cap, 4.0f)); /* activations' are backward's */
    orch_graph_free(&g);
}

/* Backward adds into the gradient block (autograd's .grad): two backwards
 * without zero_grad give twice one; zero_grad then one gives one again. */
static void test_backward_accumulates_until_zero_grad(void **state)
{
    (void)state;
    orch_pipeline p;
    orch_graph g;
    orch_exec ex;
    orch_batch batch;
    orch_err err;
    build(&g, &p, ORCH_STRATEGY_SURGERY);
    assert_int_equal(orch_init_params(&g, &p, &err), ORCH_OK);
    assert_int_equal(orch_exec_init(&ex, &g, &p, 76, 2, &err), ORCH_OK);
    tiny_batch(&batch);
    assert_int_equal(orch_exec_set_batch(&ex, &batch, &err), ORCH_OK);
    int64_t n = 0;
    float *grads = orch_graph_grads(&g, &n);
    float *once = malloc(sizeof(float) * (size_t)n);
    assert_non_null(once);
    orch_graph_zero_grad(&g);
    orch_exec_forward(&ex);
    orch_exec_backward(&ex);
    memcpy(once, grads, sizeof(float) * (size_t)n);
    double norm = 0.0;
    for (int64_t i = 0; i < n; i++)
        norm += (double)once[i] * once[i];
    assert_true(norm > 0.0);
    orch_exec_forward(&ex);
    orch_exec_backward(&ex);
    for (int64_t i = 0; i < n; i++)
        if (fabs(grads[i] - 2.0 * once[i]) > 1e-5 * fabs(once[i]) + 1e-12)
            fail_msg("grad[%lld]: %g after two backwards, %g after one", (long long)i, grads[i],
                     once[i]);
    orch_graph_zero_grad(&g);
    orch_exec_forward(&ex);
    orch_exec_backward(&ex);
    assert_memory_equal(grads, once, sizeof(float) * (size_t)n);
    free(once);
    orch_exec_free(&ex);
    orch_batch_free(&batch);
    orch_graph_free(&g);
}

/* Under bf16 the rounded copies products read are one block too, at the
 * parameters' offsets; refreshing the trainable ones rewrites exactly the
 * trainable prefix. */
static void test_rounded_copies_are_one_block(void **state)
{
    (void)state;
    orch_pipeline p;
    orch_graph g;
    orch_exec ex;
    orch_err err;
    build(&g, &p, ORCH_STRATEGY_LORA);
    p.precision = ORCH_BF16;
    assert_int_equal(orch_init_params(&g, &p, &err), ORCH_OK);
    assert_int_equal(orch_exec_init(&ex, &g, &p, 76, 2, &err), ORCH_OK);
    assert_int_equal(orch_exec_refresh_lowp(&ex, 1, &err), ORCH_OK);
    assert_non_null(g.lowp_memory);
    for (int i = 0; i < g.n_params; i++)
        assert_true(g.params[i].lowp == g.lowp_memory + (g.params[i].data - g.param_memory));
    /* 1 + 2^-12 rounds to 1 in bf16 */
    fill(g.param_memory, g.n_param_floats, 1.0f + 1.0f / 4096.0f);
    assert_int_equal(orch_exec_refresh_lowp(&ex, 0, &err), ORCH_OK);
    int64_t n = g.n_trainable_floats;
    assert_true(all_equal(g.lowp_memory, n, 1.0f));
    assert_false(all_equal(g.lowp_memory + n, g.n_param_floats - n, 1.0f)); /* frozen: as loaded */
    orch_exec_free(&ex);
    orch_graph_free(&g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_one_block_each_every_param_a_view),
        cmocka_unit_test(test_zero_grad_zeros_exactly_the_gradient_block),
        cmocka_unit_test(test_backward_accumulates_until_zero_grad),
        cmocka_unit_test(test_rounded_copies_are_one_block),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
