/* test_cli_accum.c - schedule.grad_accum as `orch plan` and `orch run`
 * show it:
 *   - plan lists schedule.grad_accum and the global batch when it is not 1,
 *     and nothing new when it is (the listing of every existing pipeline
 *     stays as it was);
 *   - it is part of the config hash, and its default is not: giving
 *     grad_accum = 1 keeps the hash a pipeline without it has, so runs
 *     recorded before the field existed keep their hashes;
 *   - a run of 4 micro-batches of 2 prints the losses of a run of batch 8
 *     (--json, 9 digits);
 *   - `orch resume` of an accumulating run continues it from a checkpoint
 *     with the recorded losses bit for bit (the configuration read back
 *     from the store keeps grad_accum).
 * The bad values are in tests/bad/cases.h. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "tests/testutil.h"
#include "tests/testutil_sql.h"

static char *orch_out(const char *const argv[])
{
    cli_result r;
    assert_int_equal(run_orch(argv, NULL, &r), 0);
    if (r.exit_code != 0)
        fail_msg("orch %s exited %d: %s", argv[0], r.exit_code, r.err);
    free(r.err);
    return r.out;
}

/* The config hash line of a plan listing, into hash[65]. */
static void plan_hash(const char *const argv[], char *hash)
{
    char *out = orch_out(argv);
    const char *at = strstr(out, "-- config hash ");
    assert_non_null(at);
    assert_int_equal(sscanf(at, "-- config hash %64s", hash), 1);
    free(out);
}

static void test_plan_lists_it(void **state)
{
    (void)state;
    const char *accum[] = {"plan",  "pipelines/lora.lua",    "--set", "schedule.batch_size=2",
                           "--set", "schedule.grad_accum=4", NULL};
    char *out = orch_out(accum);
    assert_non_null(strstr(out, "\nschedule.batch_size = 2\nschedule.grad_accum = 4\n"));
    assert_non_null(strstr(out, "\n-- global batch: 8 images per update, 4 micro-batches of 2 "
                                "accumulated (activations for one micro-batch)\n"));
    /* activations are reserved for one micro-batch of 2 */
    assert_non_null(strstr(out, "; 1568 per batch of 2, 392 merged\n"));
    free(out);
    const char *plain[] = {"plan", "pipelines/lora.lua", NULL};
    out = orch_out(plain);
    assert_null(strstr(out, "grad_accum"));
    assert_null(strstr(out, "global batch"));
    free(out);
}

static void test_config_hash(void **state)
{
    (void)state;
    char none[65], one[65], two[65];
    const char *a[] = {"plan", "pipelines/lora.lua", NULL};
    const char *b[] = {"plan", "pipelines/lora.lua", "--set", "schedule.grad_accum=1", NULL};
    const char *c[] = {"plan", "pipelines/lora.lua", "--set", "schedule.grad_accum=2", NULL};
    plan_hash(a, none);
    plan_hash(b, one);
    plan_hash(c, two);
    assert_string_equal(none, one);
    assert_string_not_equal(none, two);
}

/* The loss of each --json line of a run's output, in order; returns the
 * count (at most max). */
static int json_losses(const char *out, double *loss, int max)
{
    int n = 0;
    for (const char *at = strstr(out, "\"loss\": "); at != NULL && n < max;
         at = strstr(at + 1, "\"loss\": "))
        loss[n++] = strtod(at + strlen("\"loss\": "), NULL);
    return n;
}

static void test_run_matches_big_batch(void **state)
{
    (void)state;
    char dir[512], db[600];
    assert_int_equal(make_temp_store(dir, sizeof dir, db, sizeof db), 0);
    const char *big[] = {
        "run",   "pipelines/lora.lua",    "--db", db, "--json", "--set", "schedule.steps=5",
        "--set", "schedule.batch_size=8", NULL};
    const char *acc[] = {"run",
                         "pipelines/lora.lua",
                         "--db",
                         db,
                         "--json",
                         "--set",
                         "schedule.steps=5",
                         "--set",
                         "schedule.batch_size=2",
                         "--set",
                         "schedule.grad_accum=4",
                         NULL};
    char *a = orch_out(big), *b = orch_out(acc);
    double la[8], lb[8];
    assert_int_equal(json_losses(a, la, 8), 5);
    assert_int_equal(json_losses(b, lb, 8), 5);
    for (int i = 0; i < 5; i++)
        if (!(la[i] > 0) || fabs(la[i] - lb[i]) > 1e-6 * la[i])
            fail_msg("step %d: loss %.9g (batch 8) vs %.9g (4 x 2)", i, la[i], lb[i]);
    free(a);
    free(b);
    remove_tree(dir);
}

static void test_resume(void **state)
{
    (void)state;
    char dir[512], db[600];
    assert_int_equal(make_temp_store(dir, sizeof dir, db, sizeof db), 0);
    const char *run[] = {"--threads",
                         "1",
                         "run",
                         "pipelines/lora.lua",
                         "--db",
                         db,
                         "--quiet",
                         "--set",
                         "schedule.steps=6",
                         "--set",
                         "schedule.batch_size=2",
                         "--set",
                         "schedule.grad_accum=3",
                         "--set",
                         "schedule.checkpoint_every=2",
                         "--set",
                         "strategy.dropout=0.2",
                         NULL};
    free(orch_out(run));
    char *config = raw_text(db, "SELECT config_json FROM runs WHERE id = 1");
    assert_non_null(strstr(config, "\"grad_accum\":3"));
    free(config);
    double want = raw_real(db, "SELECT loss FROM steps WHERE run_id = 1 AND step = 5");
    raw_exec(db, "UPDATE runs SET status = 'interrupted' WHERE id = 1");
    const char *resume[] = {"--threads", "1",    "resume", "1",       "--from-step",
                            "3",         "--db", db,       "--quiet", NULL};
    free(orch_out(resume));
    assert_true(raw_real(db, "SELECT loss FROM steps WHERE run_id = 1 AND step = 5") == want);
    assert_int_equal(raw_int(db, "SELECT count(*) FROM steps WHERE run_id = 1"), 6);
    remove_tree(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plan_lists_it),
        cmocka_unit_test(test_config_hash),
        cmocka_unit_test(test_run_matches_big_batch),
        cmocka_unit_test(test_resume),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
