/* test_model_alloc.c - a training step allocates nothing once the run is
 * set up: scratch for attention, LoRA and activation gradients, the batch
 * geometry and the rotary tables are reserved once (or kept from the
 * previous batch of the same image_grid_thw), for every strategy, with
 * gradient checkpointing, LoRA dropout, NaN checks and per-stage
 * statistics.
 *
 * The test replaces malloc, calloc and realloc for the whole process and
 * counts the calls made from this executable's code, which holds all of
 * orch (BLIS, OpenMP and libc keep their own pools and are not counted).
 * The sink snapshots the count at every step record; from the third step
 * on, two records must see the same count. AddressSanitizer owns malloc,
 * so under it the test is skipped. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/train.h"
#include "tests/testutil.h"
#include "tests/testutil_sink.h"

#if defined(__SANITIZE_ADDRESS__)
#define ALLOC_COUNTING 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define ALLOC_COUNTING 0
#else
#define ALLOC_COUNTING 1
#endif
#else
#define ALLOC_COUNTING 1
#endif

#define MAX_STEPS 8

/* calls to malloc/calloc/realloc from this executable's code */
static int64_t allocations;

#if ALLOC_COUNTING
/* The executable's code, from the default linker script. */
extern char __executable_start[], etext[];
void *__libc_malloc(size_t n);
void *__libc_calloc(size_t count, size_t size);
void *__libc_realloc(void *p, size_t n);

static void count_from(const void *caller)
{
    if ((const char *)caller >= __executable_start && (const char *)caller < etext)
        __atomic_add_fetch(&allocations, 1, __ATOMIC_RELAXED);
}

__attribute__((noinline)) void *malloc(size_t n)
{
    count_from(__builtin_return_address(0));
    return __libc_malloc(n);
}

__attribute__((noinline)) void *calloc(size_t count, size_t size)
{
    count_from(__builtin_return_address(0));
    return __libc_calloc(count, size);
}

__attribute__((noinline)) void *realloc(void *p, size_t n)
{
    count_from(__builtin_return_address(0));
    return __libc_realloc(p, n);
}
#endif

/* allocations when step i was recorded (the sink's context belongs to the
 * memory sink, so the counts live here) */
static int n_recorded;
static int64_t at_step[MAX_STEPS];

/* Records nothing: the memory sink's step would allocate to keep it. */
static int count_step(void *ctx, int64_t run_id, const orch_step_record *rec, orch_err *err)
{
    (void)ctx, (void)run_id, (void)rec, (void)err;
    if (n_recorded < MAX_STEPS)
        at_step[n_recorded++] = __atomic_load_n(&allocations, __ATOMIC_RELAXED);
    return ORCH_OK;
}

static int drop_metric(void *ctx, int64_t run_id, const orch_metric_record *rec, orch_err *err)
{
    (void)ctx, (void)run_id, (void)rec, (void)err;
    return ORCH_OK;
}

static int drop_stat(void *ctx, int64_t run_id, const orch_stage_stat *rec, orch_err *err)
{
    (void)ctx, (void)run_id, (void)rec, (void)err;
    return ORCH_OK;
}

/* Runs p for MAX_STEPS steps; returns the most allocations any step after
 * the second made (the first steps may set things up). */
static int64_t most_allocations_per_step(orch_pipeline *p)
{
    p->schedule.steps = MAX_STEPS;
    memory_sink *m = memory_sink_new();
    orch_sink sink = memory_sink_of(m);
    sink.step = count_step;
    sink.metric = drop_metric;
    sink.stage_stat = drop_stat;
    n_recorded = 0;
    orch_train_result result;
    orch_err err;
    assert_int_equal(orch_train(p, NULL, &sink, &result, &err), ORCH_OK);
    assert_int_equal(result.status, ORCH_RUN_FINISHED);
    assert_int_equal(n_recorded, MAX_STEPS);
    free(m);
    int64_t most = 0;
    for (int i = 2; i < MAX_STEPS; i++)
        if (at_step[i] - at_step[i - 1] > most)
            most = at_step[i] - at_step[i - 1];
    return most;
}

/* The counter itself works: it sees an allocation this file makes. */
static void test_counter_counts(void **state)
{
    (void)state;
    if (!ALLOC_COUNTING)
        skip();
    int64_t before = __atomic_load_n(&allocations, __ATOMIC_RELAXED);
    void *volatile p = malloc(64);
    assert_non_null(p);
    free(p);
    assert_int_equal(__atomic_load_n(&allocations, __ATOMIC_RELAXED) - before, 1);
}

static void test_no_allocation_per_step(void **state)
{
    (void)state;
    if (!ALLOC_COUNTING)
        skip();
    static const orch_strategy_kind kinds[] = {ORCH_STRATEGY_SURGERY, ORCH_STRATEGY_DETACH,
                                               ORCH_STRATEGY_LORA, ORCH_STRATEGY_FULL};
    for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
        orch_pipeline p;
        tiny_pipeline(&p, kinds[k]);
        p.checks.nan = 1;
        assert_int_equal(most_allocations_per_step(&p), 0);
    }
}

/* The paths with their own scratch: LoRA dropout, gradient checkpointing
 * (recomputed blocks), per-stage statistics, a batch of two images. */
static void test_no_allocation_per_step_options(void **state)
{
    (void)state;
    if (!ALLOC_COUNTING)
        skip();
    orch_pipeline p;
    tiny_pipeline(&p, ORCH_STRATEGY_LORA);
    p.strategy.dropout = 0.1;
    assert_int_equal(most_allocations_per_step(&p), 0);

    tiny_pipeline(&p, ORCH_STRATEGY_SURGERY);
    p.checkpoint = 1;
    p.checks.stats_every = 1;
    p.schedule.batch_size = 2;
    assert_int_equal(most_allocations_per_step(&p), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_counter_counts),
        cmocka_unit_test(test_no_allocation_per_step),
        cmocka_unit_test(test_no_allocation_per_step_options),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
