/*
 * test_lua_sweep.c - sweeps in the DSL: orch_dsl_load_sweep expanding
 * grid x seeds, random draws, explicit runs with after and output_of, --set
 * on every run, the names and overrides of points, and every hostile
 * declaration refused with its one line (fixtures in tests/data/sweeps/).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/pipeline.h"
#include "core/pipeline_json.h"
#include "core/sweep.h"
#include "lua/dsl.h"
#include "lua/sweep_name.h"

#define DIR "tests/data/sweeps/"

static orch_sweep S; /* large: keep it off the stack */
static orch_err E;

/* Loads DIR file with the NULL-terminated --set list that follows. */
static int load(const char *file, ...)
{
    const char *sets[16];
    int n = 0;
    va_list ap;
    va_start(ap, file);
    for (const char *s = va_arg(ap, const char *); s != NULL && n < 16;
         s = va_arg(ap, const char *))
        sets[n++] = s;
    va_end(ap);
    char path[256];
    snprintf(path, sizeof path, DIR "%s", file);
    return orch_dsl_load_sweep(path, sets, n, &S, &E);
}

static void expect_ok(int rc)
{
    if (rc != ORCH_OK) {
        print_error("orch_dsl_load_sweep failed: %s\n", E.msg);
        fail();
    }
}

/* rc must be ORCH_EINVAL, the message exactly expect (one line), and S
 * zeroed with nothing allocated. */
static void expect_error(int rc, const char *expect)
{
    if (rc != ORCH_EINVAL || strcmp(E.msg, expect) != 0) {
        print_error("expected rc %d and\n  %s\ngot rc %d:\n  %s\n", ORCH_EINVAL, expect, rc, E.msg);
        fail();
    }
    assert_null(strchr(E.msg, '\n'));
    assert_null(S.runs);
    assert_int_equal(S.n_runs, 0);
    assert_string_equal(S.name, "");
}

/* ----------------------------------------------------------- grid x seeds */

static void test_grid_seeds(void **state)
{
    (void)state;
    expect_ok(load("strategies.lua", NULL));
    assert_string_equal(S.name, "strategies");
    assert_string_equal(S.file, DIR "strategies.lua");
    assert_int_equal(S.n_runs, 18);
    static const char *const kinds[] = {"surgery", "detach", "lora"};
    static const char *const lrs[] = {"1e-3", "3e-4"};
    static const char *const lr_sets[] = {"0.001", "0.0003"};
    static const char *const spelt[] = {"surgery{}", "detach{}", "lora{alpha=8,rank=4}"};
    int i = 0;
    for (int k = 0; k < 3; k++) /* row-major: strategy, then lr, then seeds */
        for (int l = 0; l < 2; l++)
            for (int s = 1; s <= 3; s++, i++) {
                const orch_sweep_run *r = &S.runs[i];
                char want[256];
                snprintf(want, sizeof want, "%s-lr%s-s%d", kinds[k], lrs[l], s);
                assert_string_equal(r->point, want);
                snprintf(want, sizeof want, "strategies/%s-lr%s-s%d", kinds[k], lrs[l], s);
                assert_string_equal(r->name, want);
                assert_string_equal(r->pipeline->name, want);
                snprintf(want, sizeof want, "strategy=%s optimizer.lr=%s seed=%d", spelt[k],
                         lr_sets[l], s);
                assert_string_equal(r->overrides, want);
                assert_int_equal(r->n_deps, 0);
                assert_int_equal(r->line, 7); /* the line of the strategy list */
                assert_int_equal((int)r->pipeline->strategy.kind, k);
                assert_true(r->pipeline->optimizer.lr == (l == 0 ? 1e-3 : 3e-4));
                assert_int_equal((int)r->pipeline->seed, s);
                assert_int_equal(r->pipeline->schedule.steps, 4); /* from the base */
                assert_string_equal(r->pipeline->path, DIR "strategies.lua");
                char hash[65];
                assert_int_equal(orch_pipeline_hash(r->pipeline, hash), ORCH_OK);
                assert_string_equal(r->config_hash, hash);
            }
    assert_int_equal(S.runs[12].pipeline->strategy.rank, 4);
    assert_true(S.runs[12].pipeline->strategy.alpha == 8);
    for (int a = 0; a < 18; a++) /* every point is its own configuration */
        for (int b = a + 1; b < 18; b++)
            assert_string_not_equal(S.runs[a].config_hash, S.runs[b].config_hash);
    assert_int_equal(orch_sweep_find(&S, "lora-lr3e-4-s2"), 16);
    assert_int_equal(orch_sweep_find(&S, "strategies/lora-lr3e-4-s2"), 16);
    assert_int_equal(orch_sweep_find(&S, "other/lora-lr3e-4-s2"), -1);
    assert_int_equal(orch_sweep_find(&S, "lora"), -1);

    /* the same declaration gives the same runs, hashes and sweep hash */
    char hash[65], first[65];
    memcpy(hash, S.hash, sizeof hash);
    memcpy(first, S.runs[0].config_hash, sizeof first);
    orch_sweep_free(&S);
    assert_null(S.runs);
    expect_ok(load("strategies.lua", NULL));
    assert_string_equal(S.hash, hash);
    assert_string_equal(S.runs[0].config_hash, first);
    assert_int_equal((int)strlen(S.hash), 64);
    orch_sweep_free(&S);
    orch_sweep_free(&S); /* freeing twice is harmless: it zeroed */
    orch_sweep_free(NULL);
}

/* A point's config hash is that of the same configuration loaded as a
 * pipeline; the same configuration twice has one hash, and the names get
 * a deterministic suffix. */
static void test_same_config(void **state)
{
    (void)state;
    orch_pipeline *p = calloc(1, sizeof *p);
    assert_non_null(p);
    const char *sets[] = {"optimizer.lr=0.001"};
    expect_ok(orch_dsl_load(DIR "base.lua", sets, 1, p, &E));
    char hash[65];
    assert_int_equal(orch_pipeline_hash(p, hash), ORCH_OK);
    free(p);

    expect_ok(load("same_config.lua", NULL));
    assert_int_equal(S.n_runs, 3);
    assert_string_equal(S.runs[0].name, "same/lr1e-3");
    assert_string_equal(S.runs[1].name, "same/lr1e-3-2");
    assert_string_equal(S.runs[2].name, "same/lr2e-3");
    assert_string_equal(S.runs[0].config_hash, hash);
    assert_string_equal(S.runs[1].config_hash, hash);
    assert_string_not_equal(S.runs[2].config_hash, hash);
    orch_sweep_free(&S);
}

/* Strategies of one kind are told apart by the options that differ;
 * explicit runs spell what they change from the base. */
static void test_names(void **state)
{
    (void)state;
    expect_ok(load("loras.lua", NULL));
    assert_int_equal(S.n_runs, 6);
    assert_string_equal(S.runs[0].point, "lora-rank4");
    assert_string_equal(S.runs[1].point, "lora-rank8");
    assert_string_equal(S.runs[2].point, "detach");
    assert_string_equal(S.runs[3].point, "head-a");
    assert_string_equal(S.runs[4].point, "head-b");
    assert_string_equal(S.runs[4].overrides, "strategy=detach{adapter=mlp}");
    assert_int_equal(S.runs[0].pipeline->strategy.rank, 4);
    assert_int_equal(S.runs[1].pipeline->strategy.rank, 8);
    orch_sweep_free(&S);

    static const struct {
        double x;
        int digits;
        const char *text;
    } numbers[] = {{0.001, 0, "1e-3"},    {3e-4, 0, "3e-4"},
                   {0.5, 0, "0.5"},       {100.0, 0, "100"},
                   {1e5, 0, "1e5"},       {0.01, 0, "0.01"},
                   {2.5e-5, 0, "2.5e-5"}, {1.2345678e-4, 3, "1.23e-4"},
                   {0.123456, 3, "0.123"}};
    for (size_t i = 0; i < sizeof numbers / sizeof numbers[0]; i++) {
        char buf[64];
        dsl_short_number(numbers[i].x, numbers[i].digits, buf, sizeof buf);
        assert_string_equal(buf, numbers[i].text);
    }
    char key[64];
    dsl_short_key("optimizer.lr", key, sizeof key);
    assert_string_equal(key, "lr");
    dsl_short_key("optimizer.betas.2", key, sizeof key);
    assert_string_equal(key, "betas2");
    dsl_short_key("seed", key, sizeof key);
    assert_string_equal(key, "seed");
}

/* ------------------------------------------------------------------ random */

static void test_random(void **state)
{
    (void)state;
    expect_ok(load("random.lua", NULL));
    assert_int_equal(S.n_runs, 10); /* 5 draws x 2 seeds */
    double lr[10];
    char names[10][ORCH_NAME_MAX];
    for (int i = 0; i < 10; i++) {
        const orch_pipeline *p = S.runs[i].pipeline;
        lr[i] = p->optimizer.lr;
        snprintf(names[i], sizeof names[i], "%s", S.runs[i].name);
        assert_true(p->optimizer.lr >= 1e-5 && p->optimizer.lr < 1e-2);
        assert_true(p->optimizer.weight_decay >= 0 && p->optimizer.weight_decay < 0.1);
        assert_true(p->schedule.batch_size >= 1 && p->schedule.batch_size <= 4);
        assert_true(p->strategy.kind == ORCH_STRATEGY_LORA ||
                    p->strategy.kind == ORCH_STRATEGY_DETACH);
        if (p->strategy.kind == ORCH_STRATEGY_LORA)
            assert_true(p->strategy.rank == 4 || p->strategy.rank == 8);
        assert_int_equal((int)p->seed, i % 2 + 1); /* each draw once per seed */
        assert_int_equal(S.runs[i].line, 6);
        assert_non_null(strstr(S.runs[i].name, i % 2 ? "-s2" : "-s1"));
        assert_non_null(strstr(S.runs[i].overrides, "optimizer.lr="));
        if (i % 2 == 1)
            assert_true(lr[i] == lr[i - 1]);
    }
    /* distinct draws */
    assert_true(lr[0] != lr[2] && lr[2] != lr[4] && lr[4] != lr[6] && lr[6] != lr[8]);
    assert_string_equal(S.runs[0].point, "lora-rank8-lr1.48e-4-weight_decay0.00168-batch_size4-s1");
    assert_string_equal(S.runs[0].overrides,
                        "optimizer.lr=0.00014773698956926264 optimizer.weight_decay="
                        "0.0016788294528156111 schedule.batch_size=4 strategy=lora{rank=8} seed=1");
    orch_sweep_free(&S);

    /* the same seed draws the same values */
    expect_ok(load("random.lua", NULL));
    for (int i = 0; i < 10; i++) {
        assert_true(S.runs[i].pipeline->optimizer.lr == lr[i]);
        assert_string_equal(S.runs[i].name, names[i]);
    }
    orch_sweep_free(&S);

    /* another seed draws other values */
    expect_ok(load("random8.lua", NULL));
    assert_int_equal(S.n_runs, 10);
    int same = 0;
    for (int i = 0; i < 10; i += 2)
        same += S.runs[i].pipeline->optimizer.lr == lr[i];
    assert_int_equal(same, 0);
    orch_sweep_free(&S);
}

/* ------------------------------------------- runs, after and output_of */

static void test_runs_after_output_of(void **state)
{
    (void)state;
    expect_ok(load("chain.lua", NULL));
    assert_int_equal(S.n_runs, 5);
    static const char *const names[] = {"chain/lr1e-3", "chain/lr3e-4", "chain/detach-best",
                                        "chain/lora-warm", "chain/run3"};
    static const int lines[] = {7, 7, 9, 10, 14};
    for (int i = 0; i < 5; i++) {
        assert_string_equal(S.runs[i].name, names[i]);
        assert_string_equal(S.runs[i].pipeline->name, names[i]);
        assert_int_equal(S.runs[i].line, lines[i]);
    }
    /* grid points first, then the explicit runs */
    assert_int_equal(S.runs[0].n_deps, 0);
    assert_int_equal(S.runs[1].n_deps, 1);
    assert_string_equal(S.runs[1].deps[0], "chain/lr1e-3");
    assert_int_equal(S.runs[2].n_deps, 0);
    assert_int_equal((int)S.runs[2].pipeline->strategy.kind, ORCH_STRATEGY_DETACH);
    assert_string_equal(S.runs[2].overrides, "strategy=detach{}");
    /* output_of: the init text and the dependency */
    assert_string_equal(S.runs[3].pipeline->strategy.init,
                        ORCH_OUTPUT_OF_PREFIX "chain/detach-best");
    assert_string_equal(S.runs[3].pipeline->strategy.init, "output_of:chain/detach-best");
    assert_int_equal(S.runs[3].n_deps, 1);
    assert_string_equal(S.runs[3].deps[0], "chain/detach-best");
    assert_string_equal(S.runs[3].overrides, "strategy=lora{init=output_of:detach-best,rank=4}");
    /* a name inherited from the base is no name: run<i>; after with a list
     * of point and full names */
    assert_int_equal(S.runs[4].n_deps, 2);
    assert_string_equal(S.runs[4].deps[0], "chain/detach-best");
    assert_string_equal(S.runs[4].deps[1], "chain/lora-warm");
    assert_string_equal(S.runs[4].pipeline->strategy.init, "");
    orch_sweep_free(&S);

    /* output_of as grid values */
    expect_ok(load("inits.lua", NULL));
    assert_int_equal(S.n_runs, 4);
    assert_string_equal(S.runs[0].name, "inits/from-head-a");
    assert_string_equal(S.runs[1].name, "inits/from-head-b");
    assert_string_equal(S.runs[0].pipeline->strategy.init, "output_of:inits/head-a");
    assert_string_equal(S.runs[1].pipeline->strategy.init, "output_of:inits/head-b");
    assert_int_equal(S.runs[1].n_deps, 1);
    assert_string_equal(S.runs[1].deps[0], "inits/head-b");
    assert_string_equal(S.runs[1].overrides, "strategy.init=output_of:head-b");
    assert_string_equal(S.runs[3].overrides, "seed=7 strategy=detach{}");
    orch_sweep_free(&S);

    /* output_of outside a sweep */
    orch_pipeline *p = calloc(1, sizeof *p);
    assert_non_null(p);
    const char *sets[] = {"strategy=lora", "strategy.init=output_of:x"};
    assert_int_equal(orch_dsl_load(DIR "base.lua", sets, 2, p, &E), ORCH_EINVAL);
    assert_string_equal(E.msg, "--set strategy.init=output_of:x: strategy.init = output_of \"x\" "
                               "starts from a run of a sweep; it is only meaningful in a sweep "
                               "file");
    free(p);
}

/* ------------------------------------------------------------------ --set */

static void test_sets(void **state)
{
    (void)state;
    expect_ok(load("strategies.lua", "schedule.steps=3", "checks.nan=false", NULL));
    assert_int_equal(S.n_runs, 18);
    for (int i = 0; i < 18; i++) {
        assert_int_equal(S.runs[i].pipeline->schedule.steps, 3);
        assert_int_equal(S.runs[i].pipeline->checks.nan, 0);
    }
    char hash[65];
    memcpy(hash, S.hash, sizeof hash);
    orch_sweep_free(&S);
    expect_ok(load("strategies.lua", NULL));
    assert_string_not_equal(S.hash, hash); /* the configurations differ */
    orch_sweep_free(&S);

    /* explicit runs too */
    expect_ok(load("chain.lua", "schedule.steps=2", NULL));
    for (int i = 0; i < S.n_runs; i++)
        assert_int_equal(S.runs[i].pipeline->schedule.steps, 2);
    orch_sweep_free(&S);

    /* a --set of what the grid or the seeds set is ambiguous */
    expect_error(load("strategies.lua", "optimizer.lr=0.1", NULL),
                 "--set optimizer.lr=0.1: the sweep's grid also sets optimizer.lr "
                 "(" DIR "strategies.lua:8); a --set of it would be ambiguous");
    expect_error(load("strategies.lua", "optimizer={kind='sgd',lr=1}", NULL),
                 "--set optimizer={kind='sgd',lr=1}: the sweep's grid also sets optimizer.lr "
                 "(" DIR "strategies.lua:8); a --set of it would be ambiguous");
    expect_error(load("strategies.lua", "strategy.kind=lora", NULL),
                 "--set strategy.kind=lora: the sweep's grid also sets strategy "
                 "(" DIR "strategies.lua:7); a --set of it would be ambiguous");
    expect_error(load("strategies.lua", "seed=9", NULL),
                 "--set seed=9: the sweep's seeds also set seed (" DIR
                 "strategies.lua:10); a --set of it would be ambiguous");
    expect_error(load("random.lua", "strategy=full", NULL),
                 "--set strategy=full: the sweep's random.space also sets strategy (" DIR
                 "random.lua:13); a --set of it would be ambiguous");
    /* a --set that makes a point invalid names the point */
    expect_error(load("strategies.lua", "strategy.rank=8", NULL),
                 "--set strategy.rank=8: point surgery-lr1e-3-s1 (strategy=surgery{} "
                 "optimizer.lr=0.001 seed=1): strategy.rank is an option of lora, not of surgery "
                 "(options of surgery: replace, init, grad_through_frozen)");
}

/* ---------------------------------------------------- files and kinds */

static void test_file_kinds(void **state)
{
    (void)state;
    int is = -1;
    assert_int_equal(orch_dsl_file_is_sweep(DIR "strategies.lua", &is, &E), ORCH_OK);
    assert_int_equal(is, 1);
    assert_int_equal(orch_dsl_file_is_sweep(DIR "bad_huge.lua", &is, &E), ORCH_OK);
    assert_int_equal(is, 1); /* a sweep, even one that will be refused */
    assert_int_equal(orch_dsl_file_is_sweep(DIR "base.lua", &is, &E), ORCH_OK);
    assert_int_equal(is, 0);
    assert_int_equal(orch_dsl_file_is_sweep("pipelines/lora.lua", &is, &E), ORCH_OK);
    assert_int_equal(is, 0);
    assert_int_equal(orch_dsl_file_is_sweep(DIR "missing.lua", &is, &E), ORCH_EINVAL);
    assert_int_equal(is, 0);
    assert_non_null(strstr(E.msg, DIR "missing.lua: cannot read the pipeline file"));

    orch_pipeline *p = calloc(1, sizeof *p);
    assert_non_null(p);
    assert_int_equal(orch_dsl_load(DIR "strategies.lua", NULL, 0, p, &E), ORCH_EINVAL);
    assert_string_equal(E.msg,
                        DIR "strategies.lua: this file declares a sweep; run it with "
                            "`orch sweep " DIR "strategies.lua` (plan it with `orch plan " DIR
                            "strategies.lua`)");
    assert_string_equal(p->name, "");
    free(p);
    expect_error(load("base.lua", NULL), DIR "base.lua returns a pipeline, not a sweep; run it "
                                             "with `orch run " DIR "base.lua`");
    expect_error(orch_dsl_load_sweep("", NULL, 0, &S, &E), "no sweep file given");
}

/* --------------------------------------------------------------- hostile */

static const struct {
    const char *file;
    const char *msg; /* after DIR FILE; NULL: built in the test */
} hostile[] = {
    {"bad_point.lua", ":6: point lora-lr1e-3-s1 (strategy=lora{rank=0} optimizer.lr=0.001 "
                      "seed=1): strategy.rank must be between 1 and 4096 (got 0)"},
    {"bad_run.lua", ":9: point negative (optimizer.lr=-1): optimizer.lr must be > 0 (got -1)"},
    {"bad_huge.lua", ":9: the sweep has 1000000000 runs; at most 4096 (ORCH_SWEEP_MAX_RUNS)"},
    {"bad_overflow.lua", ":9: the sweep has more than 2^62 runs; at most 4096 "
                         "(ORCH_SWEEP_MAX_RUNS)"},
    {"bad_uniform.lua", ":6: uniform(lo, hi): lo must be less than hi (got 0.001, 0.0001)"},
    {"bad_log_uniform.lua", ":7: log_uniform(lo, hi): lo must be > 0 (got 0)"},
    {"bad_choice.lua", ":4: choice { v1, v2, ... }: expected a non-empty list of values (got an "
                       "empty or keyed table)"},
    {"bad_n.lua", ":5: random.n must be an integer (got 2.5)"},
    {"bad_n_zero.lua", ":4: random.n must be between 1 and 4096 (got 0)"},
    {"bad_seed.lua", ":7: seeds[2] must be an integer (got 2.5)"},
    {"bad_random_seed.lua", ":7: random.seed must be an integer (got string seven)"},
    {"bad_dup_seeds.lua", ":6: seeds lists 1 twice (seeds[1] and seeds[3])"},
    {"bad_empty_list.lua", ":6: grid[\"optimizer.lr\"] is an empty list; give a non-empty list "
                           "of values, e.g. { 1e-3, 3e-4 }"},
    {"bad_key.lua", ":5: grid key 'optimizer.lrr' is not a field of a pipeline (did you mean "
                    "'optimizer.lr'?)"},
    {"bad_after.lua", ":7: a value of after: the sweep bad_after has no run 'lr1e-4' (did you "
                      "mean 'lr1e-3'?)"},
    {"bad_output_of.lua", ":9: point warm (strategy=lora{init=output_of:detach-bst}): "
                          "strategy.init = output_of \"detach-bst\": the sweep bad_output_of has "
                          "no run 'detach-bst' (did you mean 'detach-best'?)"},
    {"bad_long_name.lua", NULL}, /* test_long_name */
    {"bad_empty.lua", ":2: the sweep declares no runs: give grid, random or runs"},
    {"bad_unknown.lua", ":4: unknown key 'grids' of the sweep (did you mean 'grid'?)"},
    {"bad_dup_names.lua", ":7: runs[1] and runs[2] are both named 'a'"},
    {"bad_nested.lua", ":5: runs[1] is a sweep; sweeps do not nest"},
    {"bad_endless.lua", ":5: pipeline ran too long (more than 100 million Lua instructions); "
                        "endless loop?"},
};

static void test_hostile(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof hostile / sizeof hostile[0]; i++) {
        char want[ORCH_ERR_MSG_MAX];
        if (hostile[i].msg == NULL) {
            char n121[122];
            memset(n121, 'n', 121);
            n121[121] = '\0';
            snprintf(want, sizeof want,
                     DIR "%s:6: the run name '%s/lr1e-3' is longer than 127 bytes; give the "
                         "sweep a shorter name",
                     hostile[i].file, n121);
            expect_error(load(hostile[i].file, NULL), want);
            continue;
        }
        snprintf(want, sizeof want, DIR "%s%s", hostile[i].file, hostile[i].msg);
        print_message("%s\n", hostile[i].file);
        expect_error(load(hostile[i].file, NULL), want);
    }
}

/* A grid of 10^9 points is refused from the list lengths alone: the runs
 * array is never allocated (S.runs stays NULL; 10^9 runs would need
 * terabytes). */
static void test_huge_refused_before_expansion(void **state)
{
    (void)state;
    memset(&S, 0xAB, sizeof S); /* the result is overwritten, then zeroed */
    int rc = load("bad_huge.lua", NULL);
    expect_error(rc, DIR "bad_huge.lua:9: the sweep has 1000000000 runs; at most 4096 "
                         "(ORCH_SWEEP_MAX_RUNS)");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_grid_seeds),
        cmocka_unit_test(test_same_config),
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_random),
        cmocka_unit_test(test_runs_after_output_of),
        cmocka_unit_test(test_sets),
        cmocka_unit_test(test_file_kinds),
        cmocka_unit_test(test_hostile),
        cmocka_unit_test(test_huge_refused_before_expansion),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
