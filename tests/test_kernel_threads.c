/*
 * test_kernel_threads.c - the thread-count rules of kernels/threads.c.
 *
 * The default rule is a pure function of (cores, other processes' runnable
 * threads, the user's setting), tested on values; an explicit setting is
 * honoured as given; the thread count a product gets never changes its
 * bits (what lets orch_threads_product() follow the load mid-run).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "kernels/kernels.h"
#include "kernels/kinternal.h"
#include "tests/testutil.h"

static void test_choose_free_cores(void **state)
{
    (void)state;
    assert_int_equal(orch_threads_choose(2, 0, 0), 2); /* idle: every core */
    assert_int_equal(orch_threads_choose(2, 1, 0), 1); /* one core busy */
    assert_int_equal(orch_threads_choose(2, 2, 0), 1); /* never below 1 */
    assert_int_equal(orch_threads_choose(2, 9, 0), 1);
    assert_int_equal(orch_threads_choose(8, 3, 0), 5);
    assert_int_equal(orch_threads_choose(16, 0, 0), 16);
}

static void test_choose_bad_inputs(void **state)
{
    (void)state;
    assert_int_equal(orch_threads_choose(0, 0, 0), 1); /* unknown cores: 1 */
    assert_int_equal(orch_threads_choose(-3, 0, 0), 1);
    assert_int_equal(orch_threads_choose(4, -2, 0), 4); /* a negative load is none */
}

static void test_choose_user_wins(void **state)
{
    (void)state;
    assert_int_equal(orch_threads_choose(2, 5, 2), 2); /* busy, but asked for 2 */
    assert_int_equal(orch_threads_choose(2, 0, 4), 4); /* more than the cores: as asked */
    assert_int_equal(orch_threads_choose(8, 0, 1), 1);
    assert_int_equal(orch_threads_choose(2, 1, -1), 1); /* <= 0 is no setting */
}

static void test_explicit_setting_is_honoured(void **state)
{
    (void)state;
    unsetenv("ORCH_THREADS");
    orch_threads_set(2);
    assert_int_equal(orch_threads_get(), 2);
    /* element-wise passes big enough for a team get both threads */
    assert_int_equal(orch_par_threads(1 << 20), 2);
    char why[192];
    orch_threads_describe(why, sizeof why);
    assert_string_equal(why, "2 threads (--threads)");
    setenv("ORCH_THREADS", "3", 1);
    orch_threads_set(3);
    orch_threads_describe(why, sizeof why);
    assert_string_equal(why, "3 threads (ORCH_THREADS)");
    unsetenv("ORCH_THREADS");
    orch_threads_set(1);
    orch_threads_describe(why, sizeof why);
    assert_string_equal(why, "1 thread (--threads)");
    orch_threads_set(0);
}

static void test_default_is_described(void **state)
{
    (void)state;
    orch_threads_set(0);
    int def = orch_threads_get();
    assert_true(def >= 1);
    if (getenv("OMP_NUM_THREADS") == NULL)
        assert_true(def <= orch_threads_affinity_cores());
    char why[192], head[32];
    orch_threads_describe(why, sizeof why);
    snprintf(head, sizeof head, "%d thread%s (", def, def == 1 ? "" : "s");
    assert_memory_equal(why, head, strlen(head));
    assert_int_equal(why[strlen(why) - 1], ')');
}

static void test_product_count_bounds(void **state)
{
    (void)state;
    assert_int_equal(orch_threads_product(1), 1);
    assert_int_equal(orch_threads_product(0), 1);
    for (int want = 2; want <= 8; want++) {
        int got = orch_threads_product(want); /* fewer only while cores are busy */
        assert_true(got >= 1);
        assert_true(got <= want);
    }
}

/* A product's bits do not depend on how many threads ran it (BLIS splits m
 * and n, never k), on either path and in every layout the graph uses. */
static void test_product_bits_independent_of_threads(void **state)
{
    (void)state;
    const int shapes[][3] = {{64, 64, 64}, {200, 300, 500}, {512, 768, 256}, {1000, 96, 777}};
    unsigned long long seed = 7;
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        int m = shapes[s][0], n = shapes[s][1], k = shapes[s][2];
        float *a = malloc(sizeof(float) * (size_t)m * k);
        float *b = malloc(sizeof(float) * (size_t)k * n);
        float *c1 = malloc(sizeof(float) * (size_t)m * n);
        float *c2 = malloc(sizeof(float) * (size_t)m * n);
        assert_non_null(a);
        assert_non_null(b);
        assert_non_null(c1);
        assert_non_null(c2);
        fill_uniform(a, (size_t)m * k, -1.0f, 1.0f, &seed);
        fill_uniform(b, (size_t)k * n, -1.0f, 1.0f, &seed);
        for (int sup = ORCH_SUP_ON; sup <= ORCH_SUP_OFF; sup++) {
            for (int layout = 0; layout < 3; layout++) {
                /* NN, NT (b stored [n, k]), TN (a stored [k, m]) */
                int64_t rsa = k, csa = 1, rsb = n, csb = 1;
                if (layout == 1)
                    rsb = 1, csb = k;
                if (layout == 2)
                    rsa = 1, csa = m;
                orch_sgemm(m, n, k, 1.0f, a, rsa, csa, b, rsb, csb, 0.0f, c1, n, 1, (orch_sup)sup,
                           1);
                orch_sgemm(m, n, k, 1.0f, a, rsa, csa, b, rsb, csb, 0.0f, c2, n, 1, (orch_sup)sup,
                           2);
                assert_memory_equal(c1, c2, sizeof(float) * (size_t)m * n);
            }
        }
        free(a);
        free(b);
        free(c1);
        free(c2);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_choose_free_cores),
        cmocka_unit_test(test_choose_bad_inputs),
        cmocka_unit_test(test_choose_user_wins),
        cmocka_unit_test(test_explicit_setting_is_honoured),
        cmocka_unit_test(test_default_is_described),
        cmocka_unit_test(test_product_count_bounds),
        cmocka_unit_test(test_product_bits_independent_of_threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
