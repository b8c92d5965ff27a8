/* test_lr_schedule.c - orch_lr_at against values worked out by hand from
 * Hugging Face's formulas (transformers.optimization), T = schedule.steps,
 * W = schedule.warmup_steps, s the step from 0:
 *   s < W:    lr * s / max(1, W)
 *   constant  f = 1
 *   linear    f = max(0, (T - s) / max(1, T - W))
 *   cosine    f = max(0, 0.5 * (1 + cos(pi * (s - W) / max(1, T - W))))
 *   lr(s) = min_lr + (lr - min_lr) * f
 * e.g. cosine, T 10, W 2, s 4: (4 - 2) / 8 = 0.25, 0.5 * (1 + cos(pi/4)) =
 * 0.5 * (1 + 0.7071067811865476) = 0.8535533905932737, times 1e-3. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <math.h>

#include "core/lr_schedule.h"

typedef struct row {
    orch_lr_schedule schedule;
    double min_lr;
    int steps, warmup;
    int64_t step;
    double want;
} row;

static const row rows[] = {
    /* warm-up: 0 at step 0, then s / W of lr, whatever the schedule */
    {ORCH_LR_CONSTANT, 0, 10, 2, 0, 0},
    {ORCH_LR_CONSTANT, 0, 10, 2, 1, 0.5e-3},
    {ORCH_LR_COSINE, 1e-4, 10, 2, 1, 0.5e-3}, /* min_lr plays no part in warm-up */
    {ORCH_LR_LINEAR, 0, 10, 4, 3, 0.75e-3},
    {ORCH_LR_CONSTANT, 0, 10, 1, 0, 0},
    /* constant */
    {ORCH_LR_CONSTANT, 0, 10, 2, 2, 1e-3},
    {ORCH_LR_CONSTANT, 0, 10, 2, 9, 1e-3},
    {ORCH_LR_CONSTANT, 1e-4, 10, 0, 0, 1e-3},
    /* linear: (T - s) / (T - W) */
    {ORCH_LR_LINEAR, 0, 10, 2, 2, 1e-3},         /* 8 / 8 */
    {ORCH_LR_LINEAR, 0, 10, 2, 6, 0.5e-3},       /* 4 / 8 */
    {ORCH_LR_LINEAR, 0, 10, 2, 9, 0.125e-3},     /* 1 / 8 */
    {ORCH_LR_LINEAR, 0, 10, 2, 10, 0},           /* 0 / 8 */
    {ORCH_LR_LINEAR, 0, 10, 2, 12, 0},           /* -2 / 8, clamped */
    {ORCH_LR_LINEAR, 0, 10, 0, 0, 1e-3},         /* 10 / 10 */
    {ORCH_LR_LINEAR, 0, 10, 0, 5, 0.5e-3},       /* 5 / 10 */
    {ORCH_LR_LINEAR, 1e-4, 10, 2, 9, 0.2125e-3}, /* 1e-4 + 9e-4 / 8 */
    {ORCH_LR_LINEAR, 0, 10, 10, 9, 0.9e-3},      /* all warm-up: 9 / 10 */
    {ORCH_LR_LINEAR, 0, 10, 10, 10, 0},          /* (10 - 10) / max(1, 0) */
    /* cosine: 0.5 (1 + cos(pi p)), p = (s - W) / (T - W) */
    {ORCH_LR_COSINE, 0, 10, 2, 2, 1e-3},                   /* p 0 */
    {ORCH_LR_COSINE, 0, 10, 2, 4, 0.8535533905932737e-3},  /* p 1/4 */
    {ORCH_LR_COSINE, 0, 10, 2, 6, 0.5e-3},                 /* p 1/2 */
    {ORCH_LR_COSINE, 0, 10, 2, 8, 0.14644660940672624e-3}, /* p 3/4: 0.5 (1 - 0.70710678) */
    {ORCH_LR_COSINE, 0, 10, 2, 10, 0},                     /* p 1 */
    {ORCH_LR_COSINE, 1e-4, 10, 2, 6, 0.55e-3},             /* 1e-4 + 9e-4 x 0.5 */
    {ORCH_LR_COSINE, 1e-4, 10, 2, 10, 1e-4},               /* ends at min_lr */
    {ORCH_LR_COSINE, 0, 5, 0, 0, 1e-3},
};

static void test_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        const row *r = &rows[i];
        orch_optimizer o = {0};
        orch_schedule s = {0};
        o.lr = 1e-3;
        o.schedule = r->schedule;
        o.min_lr = r->min_lr;
        s.steps = r->steps;
        s.warmup_steps = r->warmup;
        double got = orch_lr_at(&o, &s, r->step);
        if (!(fabs(got - r->want) <= 1e-15 * fabs(r->want) + 1e-19))
            fail_msg("row %zu (schedule %d, min_lr %g, T %d, W %d, s %lld): got %.17g, want %.17g",
                     i, (int)r->schedule, r->min_lr, r->steps, r->warmup, (long long)r->step, got,
                     r->want);
    }
}

/* Decay is monotone and stays within [min_lr, lr] after warm-up. */
static void test_monotone(void **state)
{
    (void)state;
    for (int k = ORCH_LR_CONSTANT; k <= ORCH_LR_COSINE; k++) {
        orch_optimizer o = {0};
        orch_schedule s = {0};
        o.lr = 3e-4;
        o.min_lr = 1e-5;
        o.schedule = (orch_lr_schedule)k;
        s.steps = 100;
        s.warmup_steps = 10;
        double prev = o.lr;
        for (int64_t step = 10; step <= 100; step++) {
            double lr = orch_lr_at(&o, &s, step);
            assert_true(lr <= prev && lr >= o.min_lr && lr <= o.lr);
            prev = lr;
        }
        if (k != ORCH_LR_CONSTANT)
            assert_true(orch_lr_at(&o, &s, 100) == o.min_lr);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table),
        cmocka_unit_test(test_monotone),
    };
    return cmocka_run_group_tests_name("lr schedule", tests, NULL, NULL);
}
