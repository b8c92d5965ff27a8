/* test_data_seed.c - data.seed: runs with other seeds and the same data.seed
 * see the same synthetic images in the same order; without it the data
 * follow seed as before; data.shuffle = false keeps the data's order. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "core/data_source.h"
#include "core/train.h"
#include "lua/dsl.h"

static orch_pipeline P1, P2; /* large: off the stack */
static orch_err E;

#define N_ORDER 64 /* base.lua's samples */

/* pipelines/base.lua with the --set overrides sets (NULL-terminated). */
static void load(orch_pipeline *p, const char *const *sets)
{
    int n = 0;
    while (sets[n] != NULL)
        n++;
    if (orch_dsl_load("pipelines/base.lua", sets, n, p, &E) != ORCH_OK)
        fail_msg("orch_dsl_load: %s", E.msg);
}

/* The images of p and their order in epochs 0 and 1, into ds and
 * order[2][N_ORDER]. */
static void open_data(const orch_pipeline *p, orch_dataset *ds, int order[2][N_ORDER])
{
    if (orch_data_open(p, ds, &E) != ORCH_OK)
        fail_msg("orch_data_open: %s", E.msg);
    assert_int_equal(ds->n_images, N_ORDER);
    orch_train_epoch_order(p, ds, 0, order[0]);
    orch_train_epoch_order(p, ds, 1, order[1]);
}

/* 1 if a and b hold the same images and labels. */
static int same_pixels(const orch_dataset *a, const orch_dataset *b)
{
    int64_t rows = a->patch_offset[a->n_images];
    size_t n = (size_t)rows * (size_t)a->patch_dim;
    return rows == b->patch_offset[b->n_images] && a->pixel_values != NULL &&
           b->pixel_values != NULL &&
           memcmp(a->pixel_values, b->pixel_values, n * sizeof(float)) == 0 &&
           memcmp(a->class_labels, b->class_labels, (size_t)a->n_images * sizeof(int64_t)) == 0;
}

static void test_same_data_seed(void **state)
{
    (void)state;
    static const char *const one[] = {"seed=1", "data.seed=7", NULL};
    static const char *const two[] = {"seed=2", "data.seed=7", NULL};
    static const char *const other[] = {"seed=2", "data.seed=8", NULL};
    int o1[2][N_ORDER], o2[2][N_ORDER];
    orch_dataset d1, d2;
    load(&P1, one);
    load(&P2, two);
    assert_true(P1.seed != P2.seed);
    open_data(&P1, &d1, o1);
    open_data(&P2, &d2, o2);
    assert_memory_equal(o1, o2, sizeof o1);
    assert_true(memcmp(o1[0], o1[1], sizeof o1[0]) != 0); /* each epoch reshuffles */
    assert_true(same_pixels(&d1, &d2));
    orch_dataset_free(&d2);

    load(&P2, other);
    open_data(&P2, &d2, o2);
    assert_true(memcmp(o1[0], o2[0], sizeof o1[0]) != 0);
    assert_false(same_pixels(&d1, &d2));
    orch_dataset_free(&d1);
    orch_dataset_free(&d2);
}

/* Without data.seed the order is the one orch always had: seed's. */
static void test_default_is_seed(void **state)
{
    (void)state;
    static const char *const plain[] = {"seed=5", NULL};
    static const char *const same[] = {"seed=9", "data.seed=5", NULL};
    int o1[2][N_ORDER], o2[2][N_ORDER], want[N_ORDER];
    orch_dataset d1, d2;
    load(&P1, plain);
    load(&P2, same);
    assert_int_equal(P1.data.has_seed, 0);
    open_data(&P1, &d1, o1);
    open_data(&P2, &d2, o2);
    orch_dataset_order(&d1, 5, 1, want);
    assert_memory_equal(o1[1], want, sizeof want);
    assert_memory_equal(o1, o2, sizeof o1);
    assert_true(same_pixels(&d1, &d2));
    orch_dataset_free(&d1);
    orch_dataset_free(&d2);
}

static void test_no_shuffle(void **state)
{
    (void)state;
    static const char *const keep[] = {"data.shuffle=false", NULL};
    int o[2][N_ORDER];
    orch_dataset d;
    load(&P1, keep);
    open_data(&P1, &d, o);
    for (int e = 0; e < 2; e++)
        for (int i = 0; i < N_ORDER; i++)
            assert_int_equal(o[e][i], i);
    orch_dataset_free(&d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_same_data_seed),
        cmocka_unit_test(test_default_is_seed),
        cmocka_unit_test(test_no_shuffle),
    };
    return cmocka_run_group_tests_name("data seed", tests, NULL, NULL);
}
