/* test_detach_cache_uses.c - a detach run reports each feature cache entry
 * it uses once (cache_use records), by the key its file is named with, so
 * `orch rm` can tell which entries a run needs; a sink without cache_use
 * runs the same. End to end on the tiny tower with an in-memory sink. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "core/train.h"
#include "tests/testutil.h"

#define MAX_USES 64

typedef struct memory_sink {
    int n_uses;
    char keys[MAX_USES][40];
} memory_sink;

static int mem_begin(void *ctx, const orch_run_info *info, int64_t *run_id, orch_err *err)
{
    (void)ctx, (void)info, (void)err;
    *run_id = 1;
    return ORCH_OK;
}

static int mem_step(void *ctx, int64_t run_id, const orch_step_record *rec, orch_err *err)
{
    (void)ctx, (void)run_id, (void)rec, (void)err;
    return ORCH_OK;
}

static int mem_metric(void *ctx, int64_t run_id, const orch_metric_record *rec, orch_err *err)
{
    (void)ctx, (void)run_id, (void)rec, (void)err;
    return ORCH_OK;
}

static int mem_nan(void *ctx, int64_t run_id, const orch_nan_record *rec, orch_err *err)
{
    (void)ctx, (void)run_id, (void)rec, (void)err;
    return ORCH_OK;
}

static int mem_flush(void *ctx, orch_err *err)
{
    (void)ctx, (void)err;
    return ORCH_OK;
}

static int mem_end(void *ctx, int64_t run_id, const orch_run_end *rec, orch_err *err)
{
    (void)ctx, (void)run_id, (void)rec, (void)err;
    return ORCH_OK;
}

static int mem_cache_use(void *ctx, int64_t run_id, const orch_cache_use *rec, orch_err *err)
{
    memory_sink *m = ctx;
    (void)run_id, (void)err;
    assert_true(m->n_uses < MAX_USES);
    snprintf(m->keys[m->n_uses++], sizeof m->keys[0], "%s", rec->key);
    return ORCH_OK;
}

static orch_sink memory_sink_of(memory_sink *m, int with_cache_use)
{
    memset(m, 0, sizeof *m);
    orch_sink sink = {.ctx = m,
                      .begin_run = mem_begin,
                      .step = mem_step,
                      .metric = mem_metric,
                      .nan_event = mem_nan,
                      .flush = mem_flush,
                      .end_run = mem_end,
                      .cache_use = with_cache_use ? mem_cache_use : NULL};
    return sink;
}

/* Detach for 6 steps of 2 images over 8 samples: 12 image forwards, 8
 * distinct images, so 8 entries, each reported once. */
static void run_detach(const char *cache, orch_sink *sink)
{
    orch_pipeline p;
    tiny_pipeline(&p, ORCH_STRATEGY_DETACH);
    p.schedule.steps = 6;
    orch_train_options opt = {.feature_cache = cache};
    orch_train_result result;
    orch_err err;
    orch_err_clear(&err);
    if (orch_train(&p, &opt, sink, &result, &err) != ORCH_OK)
        fail_msg("orch_train: %s", err.msg);
    assert_int_equal(result.status, ORCH_RUN_FINISHED);
}

static int cmp_key(const void *a, const void *b)
{
    return strcmp(a, b);
}

static void test_each_entry_reported_once(void **state)
{
    (void)state;
    char dir[256], cache[300];
    assert_non_null(make_temp_dir(dir, sizeof dir));
    snprintf(cache, sizeof cache, "%s/features", dir);

    memory_sink first;
    orch_sink sink = memory_sink_of(&first, 1);
    run_detach(cache, &sink);
    assert_int_equal(first.n_uses, 8);
    qsort(first.keys, (size_t)first.n_uses, sizeof first.keys[0], cmp_key);
    for (int i = 0; i < first.n_uses; i++) {
        assert_int_equal(strlen(first.keys[i]), 32);
        assert_int_equal(strspn(first.keys[i], "0123456789abcdef"), 32);
        if (i > 0)
            assert_string_not_equal(first.keys[i - 1], first.keys[i]);
        char path[400];
        struct stat sb;
        snprintf(path, sizeof path, "%s/%s.f32", cache, first.keys[i]);
        assert_int_equal(stat(path, &sb), 0); /* the key names the entry's file */
    }

    /* another run over the same tower and images: every entry a hit, and
     * reported again, for that run */
    memory_sink second;
    sink = memory_sink_of(&second, 1);
    run_detach(cache, &sink);
    assert_int_equal(second.n_uses, 8);
    qsort(second.keys, (size_t)second.n_uses, sizeof second.keys[0], cmp_key);
    assert_memory_equal(first.keys, second.keys, sizeof first.keys[0] * 8);

    /* a sink without cache_use records none and the run is the same */
    memory_sink none;
    sink = memory_sink_of(&none, 0);
    run_detach(cache, &sink);
    assert_int_equal(none.n_uses, 0);
    remove_tree(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_each_entry_reported_once),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
