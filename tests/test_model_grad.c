/* test_model_grad.c - the whole tiny tower graph against central finite
 * differences, and the strategies' backward plans.
 *
 * The pipeline is built in C (no Lua) with the tiny preset of
 * docs/qwen25vl-vision.md §1.2 and two images of different grids, so
 * window and full attention, partial windows and several segments are all
 * on the path. Every trainable tensor of `full` gets a few elements checked:
 * |analytic - numeric| <= 3e-2 * max(|numeric|, 1e-2) with h = 1e-2 on an
 * fp32 loss (the fp32 round-off of the loss, ~1e-7, divided by 2h bounds
 * the numeric error near 1e-5; a wrong formula is off by O(1)). */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/dataset.h"
#include "core/exec.h"
#include "core/graph.h"
#include "core/init.h"
#include "tests/testutil.h"

typedef struct model {
    orch_pipeline p;
    orch_graph g;
    orch_exec ex;
    orch_batch batch;
} model;

/* anonymous: every stage, tensor and (once initialized) parameter renamed,
 * to show that no behaviour is decided by a name. */
static void model_open_named(model *m, orch_strategy_kind kind, int grad_through_frozen,
                             int checkpoint, int anonymous)
{
    tiny_pipeline(&m->p, kind);
    m->p.strategy.grad_through_frozen = grad_through_frozen;
    m->p.checkpoint = checkpoint;
    orch_err err;
    assert_int_equal(orch_graph_build(&m->p, &m->g, &err), ORCH_OK);
    for (int i = 0; anonymous && i < m->g.n_tensors; i++)
        snprintf(m->g.tensors[i].name, sizeof m->g.tensors[i].name, "t%d", i);
    for (int i = 0; anonymous && i < m->g.n_nodes; i++)
        snprintf(m->g.nodes[i].stage, sizeof m->g.nodes[i].stage, "n%d", i);
    assert_int_equal(orch_graph_reserve(&m->g, 76, 2, &err), ORCH_OK);
    assert_int_equal(orch_init_params(&m->g, &m->p, &err), ORCH_OK);
    /* Larger random weights than HF's 0.02 so every path carries signal. */
    for (int i = 0; i < m->g.n_params; i++) {
        orch_param *prm = &m->g.params[i];
        unsigned long long state = 1000 + (unsigned long long)i;
        if (strstr(prm->name, "norm") == NULL && strstr(prm->name, "ln_q") == NULL)
            fill_uniform(prm->data, (size_t)prm->numel, -0.3f, 0.3f, &state);
    }
    for (int i = 0; anonymous && i < m->g.n_params; i++)
        snprintf(m->g.params[i].name, sizeof m->g.params[i].name, "p%d", i);
    assert_int_equal(orch_exec_init(&m->ex, &m->g, &m->p, 76, 2, &err), ORCH_OK);
    tiny_batch(&m->batch);
    assert_int_equal(orch_exec_set_batch(&m->ex, &m->batch, &err), ORCH_OK);
}

static void model_open_ckpt(model *m, orch_strategy_kind kind, int grad_through_frozen,
                            int checkpoint)
{
    model_open_named(m, kind, grad_through_frozen, checkpoint, 0);
}

static void model_open(model *m, orch_strategy_kind kind, int grad_through_frozen)
{
    model_open_ckpt(m, kind, grad_through_frozen, 0);
}

static void model_close(model *m)
{
    orch_exec_free(&m->ex);
    orch_graph_free(&m->g);
    orch_batch_free(&m->batch);
}

static void check_param_grads(model *m)
{
    double loss = orch_exec_forward(&m->ex);
    assert_true(isfinite(loss));
    orch_exec_backward(&m->ex);
    int checked = 0, worst_param = -1;
    double worst = 0.0;
    for (int i = 0; i < m->g.n_params; i++) {
        orch_param *prm = &m->g.params[i];
        if (!prm->trainable)
            continue;
        const int64_t picks[3] = {0, prm->numel / 2, prm->numel - 1};
        for (int k = 0; k < 3; k++) {
            int64_t j = picks[k];
            float saved = prm->data[j];
            const float h = 1e-2f;
            prm->data[j] = saved + h;
            double up = orch_exec_forward(&m->ex);
            prm->data[j] = saved - h;
            double down = orch_exec_forward(&m->ex);
            prm->data[j] = saved;
            double numeric = (up - down) / (2.0 * h);
            double analytic = prm->grad[j];
            double tol = 3e-2 * fmax(fabs(numeric), 1e-2);
            double excess = fabs(analytic - numeric) / tol;
            if (excess > worst) {
                worst = excess;
                worst_param = i;
            }
            if (fabs(analytic - numeric) > tol)
                fail_msg("%s[%lld]: analytic %.6g numeric %.6g", prm->name, (long long)j, analytic,
                         numeric);
            checked++;
        }
    }
    print_message("checked %d elements; worst at %.2f of tolerance (%s)\n", checked, worst,
                  worst_param >= 0 ? m->g.params[worst_param].name : "-");
    assert_true(checked > 0);
}

static void test_full_graph_gradients(void **state)
{
    (void)state;
    model m;
    model_open(&m, ORCH_STRATEGY_FULL, 0);
    check_param_grads(&m);
    model_close(&m);
}

static void test_lora_graph_gradients(void **state)
{
    (void)state;
    model m;
    model_open(&m, ORCH_STRATEGY_LORA, 0);
    /* make B non-zero so A's gradient is non-trivial too */
    for (int i = 0; i < m.g.n_params; i++)
        if (strstr(m.g.params[i].name, "lora_B") != NULL) {
            unsigned long long s = 99;
            fill_uniform(m.g.params[i].data, (size_t)m.g.params[i].numel, -0.3f, 0.3f, &s);
        }
    check_param_grads(&m);
    model_close(&m);
}

/* d loss / d pixel_values against central differences, a few elements. */
static void check_input_grads(model *m)
{
    orch_exec_forward(&m->ex);
    orch_exec_backward(&m->ex);
    orch_tensor *in = &m->g.tensors[m->g.input];
    assert_non_null(in->grad);
    const int64_t picks[3] = {0, 700, 76 * 24 - 1};
    for (int k = 0; k < 3; k++) {
        int64_t j = picks[k];
        float saved = in->data[j];
        const float h = 1e-2f;
        in->data[j] = saved + h;
        double up = orch_exec_forward(&m->ex);
        in->data[j] = saved - h;
        double down = orch_exec_forward(&m->ex);
        in->data[j] = saved;
        double numeric = (up - down) / (2.0 * h);
        if (fabs(in->grad[j] - numeric) > 3e-2 * fmax(fabs(numeric), 1e-2))
            fail_msg("pixel_values[%lld]: analytic %.6g numeric %.6g", (long long)j, in->grad[j],
                     numeric);
    }
}

/* PEFT's lora_dropout: the branch sees dropout(x). With LoRA on a block's
 * qkv, the input gradient goes through the mask too. */
static void test_lora_dropout_gradients(void **state)
{
    (void)state;
    model m;
    tiny_pipeline(&m.p, ORCH_STRATEGY_LORA);
    m.p.strategy.dropout = 0.3;
    orch_err err;
    assert_int_equal(orch_graph_build(&m.p, &m.g, &err), ORCH_OK);
    /* the input gradient goes through block 1's dropout mask too */
    m.g.input_requires_grad = 1;
    orch_graph_plan_backward(&m.g);
    assert_int_equal(orch_graph_reserve(&m.g, 76, 2, &err), ORCH_OK);
    assert_int_equal(orch_init_params(&m.g, &m.p, &err), ORCH_OK);
    for (int i = 0; i < m.g.n_params; i++) {
        orch_param *prm = &m.g.params[i];
        unsigned long long s = 500 + (unsigned long long)i;
        if (strstr(prm->name, "norm") == NULL && strstr(prm->name, "ln_q") == NULL)
            fill_uniform(prm->data, (size_t)prm->numel, -0.3f, 0.3f, &s);
    }
    assert_int_equal(orch_exec_init(&m.ex, &m.g, &m.p, 76, 2, &err), ORCH_OK);
    tiny_batch(&m.batch);
    assert_int_equal(orch_exec_set_batch(&m.ex, &m.batch, &err), ORCH_OK);
    check_param_grads(&m);
    check_input_grads(&m);
    /* the mask really drops: about 30% zeros */
    int node = orch_graph_find_node(&m.g, "visual.merger.mlp.0");
    const orch_tensor *mask = &m.g.tensors[m.g.nodes[node].aux[1]];
    int64_t n = 19 * (int64_t)mask->cols, zeros = 0;
    for (int64_t i = 0; i < n; i++)
        zeros += mask->data[i] == 0.0f;
    assert_true(zeros > n / 5 && zeros < n * 2 / 5);
    model_close(&m);
}

static void test_input_gradient_through_frozen(void **state)
{
    (void)state;
    model m;
    model_open(&m, ORCH_STRATEGY_SURGERY, 1);
    check_input_grads(&m);
    model_close(&m);
}

static void test_backward_plans(void **state)
{
    (void)state;
    model m;
    /* surgery on the last Linear: only the merger's tail and the head run backward */
    model_open(&m, ORCH_STRATEGY_SURGERY, 0);
    assert_false(m.g.nodes[orch_graph_find_node(&m.g, "visual.blocks.0.attn")].needs_backward);
    assert_false(m.g.nodes[orch_graph_find_node(&m.g, "visual.merger.mlp.0")].needs_backward);
    assert_true(m.g.nodes[orch_graph_find_node(&m.g, "visual.merger.mlp.2")].needs_backward);
    assert_true(m.g.params[orch_graph_find_param(&m.g, "visual.merger.mlp.2.weight")].trainable);
    assert_false(m.g.params[orch_graph_find_param(&m.g, "visual.merger.mlp.0.weight")].trainable);
    model_close(&m);
    /* with grad_through_frozen every stage down to the input runs backward */
    model_open(&m, ORCH_STRATEGY_SURGERY, 1);
    for (int i = 0; i < m.g.n_nodes; i++)
        assert_true(m.g.nodes[i].needs_backward);
    model_close(&m);
    /* detach: nothing of the tower */
    model_open(&m, ORCH_STRATEGY_DETACH, 1);
    for (int i = 0; i < m.g.n_nodes; i++) {
        const orch_node *n = &m.g.nodes[i];
        if (strncmp(n->stage, "visual", 6) == 0)
            assert_false(n->needs_backward);
    }
    assert_true(m.g.nodes[orch_graph_find_node(&m.g, "adapter")].needs_backward);
    model_close(&m);
    /* LoRA at init: B = 0, so A's gradient is exactly zero and B's is not */
    model_open(&m, ORCH_STRATEGY_LORA, 0);
    for (int i = 0; i < m.g.n_params; i++)
        if (strstr(m.g.params[i].name, "lora_B") != NULL)
            memset(m.g.params[i].data, 0, sizeof(float) * (size_t)m.g.params[i].numel);
    orch_exec_forward(&m.ex);
    orch_exec_backward(&m.ex);
    orch_param *a = &m.g.params[orch_graph_find_param(&m.g, "visual.merger.mlp.0.lora_A.weight")];
    orch_param *b = &m.g.params[orch_graph_find_param(&m.g, "visual.merger.mlp.0.lora_B.weight")];
    double a_sum = 0, b_sum = 0;
    for (int64_t j = 0; j < a->numel; j++)
        a_sum += fabs(a->grad[j]);
    for (int64_t j = 0; j < b->numel; j++)
        b_sum += fabs(b->grad[j]);
    assert_true(a_sum == 0.0);
    assert_true(b_sum > 0.0);
    model_close(&m);
}

/* Gradient checkpointing recomputes frozen blocks in backward: the same
 * gradients bit for bit, with less activation memory. */
static void test_checkpoint_same_gradients_less_memory(void **state)
{
    (void)state;
    model plain, ckpt;
    model_open_ckpt(&plain, ORCH_STRATEGY_SURGERY, 1, 0);
    model_open_ckpt(&ckpt, ORCH_STRATEGY_SURGERY, 1, 1);
    double loss_plain = orch_exec_forward(&plain.ex);
    double loss_ckpt = orch_exec_forward(&ckpt.ex);
    assert_true(loss_plain == loss_ckpt);
    orch_exec_backward(&plain.ex);
    orch_exec_backward(&ckpt.ex);
    for (int i = 0; i < plain.g.n_params; i++) {
        if (!plain.g.params[i].trainable)
            continue;
        assert_memory_equal(plain.g.params[i].grad, ckpt.g.params[i].grad,
                            sizeof(float) * (size_t)plain.g.params[i].numel);
    }
    assert_memory_equal(plain.g.tensors[plain.g.input].grad, ckpt.g.tensors[ckpt.g.input].grad,
                        sizeof(float) * 76 * 24);
    int64_t bytes_plain = orch_graph_activation_bytes(&plain.g);
    int64_t bytes_ckpt = orch_graph_activation_bytes(&ckpt.g);
    print_message("activation memory: %lld bytes plain, %lld with checkpoint\n",
                  (long long)bytes_plain, (long long)bytes_ckpt);
    /* 4 blocks: only one block's internals stay resident */
    assert_true(bytes_ckpt * 2 < bytes_plain);
    model_close(&plain);
    model_close(&ckpt);
}

/* Behaviour comes from flags on tensors and parameters, never from names:
 * with every stage, tensor and parameter renamed, gradient checkpointing
 * keeps the same buffers resident and gives the same gradients bit for
 * bit, and stage statistics skip the same recomputed stages. */
static int count_stats;
static void count_stat(void *ctx, const char *stage, double absmax, double rms, double grad_norm)
{
    (void)ctx;
    (void)stage;
    (void)absmax;
    (void)rms;
    (void)grad_norm;
    count_stats++;
}

static void test_names_decide_nothing(void **state)
{
    (void)state;
    model named, anon;
    model_open_named(&named, ORCH_STRATEGY_SURGERY, 1, 1, 0);
    model_open_named(&anon, ORCH_STRATEGY_SURGERY, 1, 1, 1);
    assert_true(orch_exec_forward(&named.ex) == orch_exec_forward(&anon.ex));
    orch_graph_zero_grad(&named.g);
    orch_graph_zero_grad(&anon.g);
    orch_exec_backward(&named.ex);
    orch_exec_backward(&anon.ex);
    int64_t n = 0, n_anon = 0;
    const float *grads = orch_graph_grads(&named.g, &n);
    const float *grads_anon = orch_graph_grads(&anon.g, &n_anon);
    assert_int_equal(n, n_anon);
    assert_memory_equal(grads, grads_anon, sizeof(float) * (size_t)n);
    assert_memory_equal(named.g.tensors[named.g.input].grad, anon.g.tensors[anon.g.input].grad,
                        sizeof(float) * 76 * 24);
    assert_int_equal(orch_graph_activation_bytes(&named.g), orch_graph_activation_bytes(&anon.g));
    for (int i = 0; i < named.g.n_tensors; i++)
        assert_int_equal(named.g.tensors[i].alias_of, anon.g.tensors[i].alias_of);
    count_stats = 0;
    orch_exec_stage_stats(&named.ex, count_stat, NULL);
    int named_stats = count_stats;
    count_stats = 0;
    orch_exec_stage_stats(&anon.ex, count_stat, NULL);
    assert_int_equal(count_stats, named_stats);
    assert_true(named_stats < named.g.n_nodes); /* recomputed stages are skipped */
    model_close(&named);
    model_close(&anon);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_full_graph_gradients),
        cmocka_unit_test(test_lora_graph_gradients),
        cmocka_unit_test(test_lora_dropout_gradients),
        cmocka_unit_test(test_input_gradient_through_frozen),
        cmocka_unit_test(test_backward_plans),
        cmocka_unit_test(test_checkpoint_same_gradients_less_memory),
        cmocka_unit_test(test_names_decide_nothing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
