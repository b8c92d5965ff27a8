/* test_model_checkpoint.c - core/checkpoint: weights and optimizer state in
 * two files.
 *
 * A written checkpoint's weights file holds the trainable tensors and
 * nothing else (it loads on its own), the state file beside it the AdamW
 * moments; reading both back restores every value and the run-loop state
 * exactly. The weights read alone without the state file. A state file
 * changed or missing makes the checkpoint fail to verify and to read. A
 * checkpoint of the older single-file format (weights and "optimizer.*"
 * tensors together, orch-checkpoint-1) still reads in full. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/checkpoint.h"
#include "core/graph.h"
#include "core/init.h"
#include "store/safetensors.h"
#include "store/store.h"
#include "tests/testutil.h"

typedef struct fixture {
    orch_pipeline p;
    orch_graph g;
    char dir[256];
    char path[400];
} fixture;

/* A LoRA graph whose trainable values and moments are all distinct. */
static void make_graph(fixture *fx, orch_graph *g, float offset)
{
    orch_err err;
    assert_int_equal(orch_graph_build(&fx->p, g, &err), ORCH_OK);
    assert_int_equal(orch_graph_reserve(g, 64, 2, &err), ORCH_OK);
    assert_int_equal(orch_init_params(g, &fx->p, &err), ORCH_OK);
    for (int i = 0; i < g->n_params; i++) {
        orch_param *q = &g->params[i];
        if (!q->trainable)
            continue;
        for (int64_t k = 0; k < q->numel; k++) {
            q->data[k] = offset + (float)i + 0.001f * (float)k;
            q->m[k] = offset - (float)i - 0.002f * (float)k;
            q->v[k] = offset + 0.5f * (float)i + 0.003f * (float)k;
        }
    }
}

static int setup(void **state)
{
    fixture *fx = calloc(1, sizeof *fx);
    if (fx == NULL || make_temp_dir(fx->dir, sizeof fx->dir) == NULL)
        return -1;
    tiny_pipeline(&fx->p, ORCH_STRATEGY_LORA);
    fx->p.optimizer.kind = ORCH_OPT_ADAMW;
    snprintf(fx->path, sizeof fx->path, "%s/checkpoint-7.safetensors", fx->dir);
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    fixture *fx = *state;
    remove_tree(fx->dir);
    free(fx);
    return 0;
}

static const orch_checkpoint_state saved = {7, 8, 1024.0, 3, "abc123", {0}};

static void write_checkpoint(fixture *fx, orch_graph *g, char sha[65], int64_t *bytes)
{
    orch_err err;
    assert_int_equal(orch_checkpoint_write(fx->path, g, ORCH_OPT_ADAMW, &saved, sha, bytes, &err),
                     ORCH_OK);
}

static int n_trainable(const orch_graph *g)
{
    int n = 0;
    for (int i = 0; i < g->n_params; i++)
        n += g->params[i].trainable;
    return n;
}

/* Every trainable value and moment of a equals b's. */
static void assert_same_state(const orch_graph *a, const orch_graph *b, int moments)
{
    for (int i = 0; i < a->n_params; i++) {
        const orch_param *x = &a->params[i], *y = &b->params[i];
        if (!x->trainable)
            continue;
        size_t n = sizeof(float) * (size_t)x->numel;
        assert_memory_equal(x->data, y->data, n);
        if (moments) {
            assert_memory_equal(x->m, y->m, n);
            assert_memory_equal(x->v, y->v, n);
        }
    }
}

static void test_two_files_round_trip(void **state)
{
    fixture *fx = *state;
    orch_graph a, b;
    make_graph(fx, &a, 1.0f);
    char sha[65];
    int64_t bytes = 0;
    write_checkpoint(fx, &a, sha, &bytes);

    /* the weights file: the trainable tensors under their names, no state */
    orch_err err;
    orch_st_file *f = NULL;
    assert_int_equal(orch_st_open(fx->path, &f, &err), ORCH_OK);
    assert_int_equal(orch_st_count(f), n_trainable(&a));
    for (int i = 0; i < orch_st_count(f); i++)
        assert_null(strstr(orch_st_tensor_at(f, i)->name, "optimizer"));
    assert_non_null(orch_st_find(f, "visual.merger.mlp.0.lora_A.weight"));
    assert_string_equal(orch_st_metadata(f, "format"), "orch-checkpoint-2");
    orch_st_close(f);

    /* the state file beside it: two moments per trainable tensor */
    char state_path[512];
    assert_int_equal(orch_checkpoint_optimizer_path(fx->path, state_path, sizeof state_path), 0);
    assert_non_null(strstr(state_path, "/checkpoint-7.optimizer.safetensors"));
    assert_int_equal(orch_st_open(state_path, &f, &err), ORCH_OK);
    assert_int_equal(orch_st_count(f), 2 * n_trainable(&a));
    assert_non_null(orch_st_find(f, "optimizer.head.weight.exp_avg_sq"));
    orch_st_close(f);

    assert_int_equal(orch_checkpoint_verify(fx->path, bytes, sha, &err), ORCH_OK);
    make_graph(fx, &b, 50.0f);
    orch_checkpoint_state st;
    assert_int_equal(orch_checkpoint_read(fx->path, &b, ORCH_OPT_ADAMW, "abc123", &st, &err),
                     ORCH_OK);
    assert_same_state(&a, &b, 1);
    assert_int_equal(st.step, 7);
    assert_int_equal(st.updates, 8);
    assert_true(st.loss_scale == 1024.0);
    assert_int_equal(st.good_steps, 3);
    orch_graph_free(&b);

    /* the weights alone, with the state file gone */
    assert_int_equal(unlink(state_path), 0);
    make_graph(fx, &b, 50.0f);
    assert_int_equal(orch_checkpoint_read_weights(fx->path, &b, &st, &err), ORCH_OK);
    assert_same_state(&a, &b, 0);
    /* ... but not a resume */
    assert_int_equal(orch_checkpoint_read(fx->path, &b, ORCH_OPT_ADAMW, NULL, &st, &err),
                     ORCH_EINVAL);
    assert_non_null(strstr(err.msg, "checkpoint-7.optimizer.safetensors: cannot open"));
    assert_int_equal(orch_checkpoint_verify(fx->path, bytes, sha, &err), ORCH_EINVAL);
    assert_non_null(strstr(err.msg, "checkpoint-7.optimizer.safetensors: cannot open"));
    orch_graph_free(&b);
    orch_graph_free(&a);
}

static void test_changed_state_refused(void **state)
{
    fixture *fx = *state;
    orch_graph a;
    make_graph(fx, &a, 2.0f);
    char sha[65];
    int64_t bytes = 0;
    write_checkpoint(fx, &a, sha, &bytes);
    char state_path[512];
    assert_int_equal(orch_checkpoint_optimizer_path(fx->path, state_path, sizeof state_path), 0);
    /* one byte of one moment changed; same size */
    FILE *f = fopen(state_path, "r+b");
    assert_non_null(f);
    fseek(f, -1, SEEK_END);
    int c = fgetc(f);
    fseek(f, -1, SEEK_END);
    fputc(c ^ 1, f);
    fclose(f);
    orch_err err;
    /* the weights file itself is intact: only its state is not */
    assert_int_equal(orch_checkpoint_verify(fx->path, bytes, sha, &err), ORCH_EINVAL);
    assert_non_null(
        strstr(err.msg, "checkpoint-7.optimizer.safetensors: does not match its recorded sha256"));
    orch_checkpoint_state st;
    assert_int_equal(orch_checkpoint_read(fx->path, &a, ORCH_OPT_ADAMW, NULL, &st, &err),
                     ORCH_EINVAL);
    orch_graph_free(&a);
}

/* The single-file format orch wrote before: weights and state together. */
static void test_single_file_checkpoint_reads(void **state)
{
    fixture *fx = *state;
    orch_graph a, b;
    make_graph(fx, &a, 3.0f);
    int n = n_trainable(&a);
    orch_st_entry *e = calloc((size_t)n * 3, sizeof *e);
    char(*names)[ORCH_NAME_MAX + 32] = calloc((size_t)n * 2, sizeof *names);
    assert_non_null(e);
    assert_non_null(names);
    int k = 0, j = 0;
    for (int i = 0; i < a.n_params; i++) {
        const orch_param *q = &a.params[i];
        if (!q->trainable)
            continue;
        orch_st_entry w = {q->name, q->ndim, {0}, q->data};
        memcpy(w.shape, q->shape, sizeof(int64_t) * (size_t)q->ndim);
        e[k++] = w;
        snprintf(names[j], sizeof names[j], "optimizer.%s.exp_avg", q->name);
        e[k] = w;
        e[k].name = names[j++];
        e[k++].data = q->m;
        snprintf(names[j], sizeof names[j], "optimizer.%s.exp_avg_sq", q->name);
        e[k] = w;
        e[k].name = names[j++];
        e[k++].data = q->v;
    }
    char path[420];
    snprintf(path, sizeof path, "%s/checkpoint-3.safetensors", fx->dir);
    orch_err err;
    assert_int_equal(orch_st_write(path, e, k,
                                   "{\"format\": \"orch-checkpoint-1\", \"step\": \"3\", "
                                   "\"updates\": \"4\", \"loss_scale\": \"1\", \"good_steps\": "
                                   "\"0\", \"config_hash\": \"old\"}",
                                   &err),
                     ORCH_OK);
    free(e);
    free(names);
    char sha[65];
    int64_t bytes = 0;
    assert_int_equal(orch_file_sha256(path, sha, &bytes, &err), ORCH_OK);
    assert_int_equal(orch_checkpoint_verify(path, bytes, sha, &err), ORCH_OK);
    make_graph(fx, &b, 60.0f);
    orch_checkpoint_state st;
    assert_int_equal(orch_checkpoint_read(path, &b, ORCH_OPT_ADAMW, "old", &st, &err), ORCH_OK);
    assert_same_state(&a, &b, 1);
    assert_int_equal(st.step, 3);
    assert_int_equal(st.updates, 4);
    orch_graph_free(&b);
    orch_graph_free(&a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_two_files_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_changed_state_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_single_file_checkpoint_reads, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
