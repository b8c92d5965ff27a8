/*
 * test_data_identity.c - a run's data identity (core/data_identity.c): the
 * hash over (role, path, sha256) does not depend on the order the files
 * come in, changes with any of the three, and is the sha256 that
 * docs/store.md gives; the identity of a training and an evaluation set
 * sends one input per file and the training set's class names.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/data_identity.h"
#include "tests/testutil_sink.h"

static const char sha_a[] = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
static const char sha_b[] = "fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210";

static void hash_of(orch_run_input *in, size_t n, char hex[65])
{
    orch_err err = {0};
    assert_int_equal(orch_data_hash(in, n, hex, &err), ORCH_OK);
}

static void test_hash_is_order_free_and_sensitive(void **state)
{
    (void)state;
    orch_run_input a[] = {{ORCH_ROLE_TRAIN, "b.png", sha_a, 1},
                          {ORCH_ROLE_EVAL, "a.png", sha_b, 2},
                          {ORCH_ROLE_TRAIN, "a.png", sha_b, 3}};
    orch_run_input b[] = {a[2], a[0], a[1]};
    char ha[65], hb[65], h[65];
    hash_of(a, 3, ha);
    hash_of(b, 3, hb);
    assert_int_equal(strlen(ha), 64);
    assert_string_equal(ha, hb);
    /* sorted in place: eval first (byte order of the role names), then by path */
    assert_int_equal(a[0].role, ORCH_ROLE_EVAL);
    assert_string_equal(a[1].path, "a.png");
    assert_string_equal(a[2].path, "b.png");
    /* sha256 of "eval\0a.png\0SHA_B\0train\0a.png\0SHA_B\0train\0b.png\0SHA_A\0" */
    assert_string_equal(ha, "3ec4d345f21c42ea8365de83457a0f2aefaa379bdb364c898dd0b6f93e6aba92");
    /* a sha256, a path, a role changed: another hash; the size is not hashed */
    orch_run_input c[3];
    memcpy(c, a, sizeof c);
    c[2].sha256 = sha_b;
    hash_of(c, 3, h);
    assert_string_not_equal(h, ha);
    memcpy(c, a, sizeof c);
    c[2].path = "c.png";
    hash_of(c, 3, h);
    assert_string_not_equal(h, ha);
    memcpy(c, a, sizeof c);
    c[0].role = ORCH_ROLE_TRAIN;
    hash_of(c, 3, h);
    assert_string_not_equal(h, ha);
    memcpy(c, a, sizeof c);
    c[0].bytes = 99;
    hash_of(c, 3, h);
    assert_string_equal(h, ha);
    /* the separators keep ("ab", "c") apart from ("a", "bc") */
    orch_run_input d1[] = {{ORCH_ROLE_TRAIN, "ab", sha_a, 0}};
    orch_run_input d2[] = {{ORCH_ROLE_TRAIN, "a", sha_a, 0}};
    hash_of(d1, 1, h);
    hash_of(d2, 1, ha);
    assert_string_not_equal(h, ha);
    /* no files, no hash */
    hash_of(NULL, 0, h);
    assert_string_equal(h, "");
}

/* Two data sets' files, with their roles, and the class names, through a
 * sink; synthetic data (no files) sends nothing and has no hash. */
static void test_identity_sent(void **state)
{
    (void)state;
    char pv[] = "pv.npy", grid[] = "grid.npy", val[] = "val.npy", cat[] = "cat", dog[] = "dog";
    orch_data_file train_files[] = {{pv, "", 10}, {grid, "", 20}};
    orch_data_file eval_files[] = {{val, "", 30}};
    memcpy(train_files[0].sha256, sha_a, 65);
    memcpy(train_files[1].sha256, sha_b, 65);
    memcpy(eval_files[0].sha256, sha_a, 65);
    char *names[] = {cat, dog};
    orch_dataset train = {0}, eval = {0};
    train.n_files = 2;
    train.files = train_files;
    train.n_class_names = 2;
    train.class_names = names;
    eval.n_files = 1;
    eval.files = eval_files;

    orch_err err = {0};
    orch_data_identity id;
    assert_int_equal(orch_data_identity_of(&train, &eval, &id, &err), ORCH_OK);
    assert_int_equal(id.n_inputs, 3);
    assert_non_null(orch_data_identity_hash(&id));
    memory_sink *m = memory_sink_new();
    orch_sink sink = memory_sink_of(m);
    assert_int_equal(orch_data_identity_send(&id, &sink, 1, &err), ORCH_OK);
    assert_int_equal(m->n_inputs, 3);
    assert_int_equal(m->n_classes, 2);
    /* in the hash's order: eval first, then train by path */
    assert_int_equal(m->input_role[0], ORCH_ROLE_EVAL);
    assert_string_equal(m->input_path[0], "val.npy");
    assert_string_equal(m->input_path[1], "grid.npy");
    assert_string_equal(m->input_sha256[1], sha_b);
    assert_int_equal(m->input_bytes[1], 20);
    assert_string_equal(m->input_path[2], "pv.npy");
    char again[65];
    orch_run_input copy[3];
    memcpy(copy, id.inputs, sizeof copy);
    hash_of(copy, 3, again);
    assert_string_equal(again, orch_data_identity_hash(&id));
    orch_data_identity_free(&id);

    /* a sink without the callbacks records nothing and does not fail */
    orch_sink bare = sink;
    bare.input = NULL;
    bare.run_class = NULL;
    assert_int_equal(orch_data_identity_of(&train, NULL, &id, &err), ORCH_OK);
    assert_int_equal(id.n_inputs, 2);
    assert_int_equal(orch_data_identity_send(&id, &bare, 1, &err), ORCH_OK);
    assert_int_equal(m->n_inputs, 3);
    orch_data_identity_free(&id);

    orch_dataset synthetic = {0};
    assert_int_equal(orch_data_identity_of(&synthetic, NULL, &id, &err), ORCH_OK);
    assert_null(orch_data_identity_hash(&id));
    assert_int_equal(orch_data_identity_send(&id, &sink, 1, &err), ORCH_OK);
    assert_int_equal(m->n_inputs, 3);
    orch_data_identity_free(&id);
    free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hash_is_order_free_and_sensitive),
        cmocka_unit_test(test_identity_sent),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
