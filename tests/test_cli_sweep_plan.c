/* test_cli_sweep_plan.c - `orch plan SWEEP.lua`: the expanded runs in the
 * DAG's order with their config hash and what they wait for, the feature
 * stages, --json and --dot; a cycle is refused with one line, exit 2 and
 * no store. tests/data/sweeps/plan_mix.lua holds every kind of edge:
 * detach and LoRA x 2 learning rates x seeds 1 and 2 (the detach runs of a
 * seed share a feature stage: the seed draws the tiny tower and the
 * synthetic images), "warm" starts from detach-lr1e-3-s1's output and
 * "last" runs after "warm". */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>
#include <jansson.h>

#include "tests/testutil.h"

#define MIX "tests/data/sweeps/plan_mix.lua"

static char *plan_ok(const char *const argv[])
{
    cli_result r;
    assert_int_equal(run_orch(argv, NULL, &r), 0);
    if (r.exit_code != 0)
        fail_msg("orch plan exited %d: %s", r.exit_code, r.err);
    assert_string_equal(r.err, "");
    free(r.err);
    return r.out;
}

/* The line of out that starts with start, or NULL. */
static const char *line_of(const char *out, const char *start)
{
    size_t n = strlen(start);
    for (const char *line = out; line != NULL && *line != '\0';) {
        if (strncmp(line, start, n) == 0)
            return line;
        line = strchr(line, '\n');
        line = line != NULL ? line + 1 : NULL;
    }
    return NULL;
}

static void assert_line_has(const char *out, const char *start, const char *part)
{
    const char *line = line_of(out, start);
    if (line == NULL)
        fail_msg("no line starts with '%s' in:\n%s", start, out);
    const char *end = strchr(line, '\n');
    const char *hit = strstr(line, part);
    if (hit == NULL || (end != NULL && hit > end))
        fail_msg("line '%s...' lacks '%s'", start, part);
}

static void test_listing(void **state)
{
    (void)state;
    const char *argv[] = {"plan", MIX, NULL};
    char *out = plan_ok(argv);
    assert_non_null(strstr(out, "sweep  plan-mix\nfile   " MIX "\nhash   "));
    assert_non_null(strstr(out, "\nruns   10 (and 2 feature stages)\n"));
    assert_non_null(line_of(out, "RUN "));
    /* a run's row: name, 12 hex of its config hash, what it waits for, overrides */
    assert_line_has(out, "plan-mix/detach-lr1e-3-s1 ", " features/");
    assert_line_has(out, "plan-mix/detach-lr1e-3-s1 ",
                    "  strategy=detach{} optimizer.lr=0.001 seed=1\n");
    assert_line_has(out, "plan-mix/lora-lr3e-4-s2 ", "  -  ");
    assert_line_has(out, "plan-mix/warm ", "  plan-mix/detach-lr1e-3-s1  ");
    assert_line_has(out, "plan-mix/last ", "  plan-mix/warm  ");
    /* dependencies first */
    assert_true(line_of(out, "plan-mix/detach-lr1e-3-s1 ") < line_of(out, "plan-mix/warm "));
    assert_true(line_of(out, "plan-mix/warm ") < line_of(out, "plan-mix/last "));
    /* the config hash column: 12 lowercase hex digits after the name */
    const char *row = line_of(out, "plan-mix/last ");
    const char *hash = row + strlen("plan-mix/last");
    while (*hash == ' ')
        hash++;
    assert_int_equal(strspn(hash, "0123456789abcdef"), 12);
    assert_int_equal(hash[12], ' ');
    /* one feature stage per seed, each feeding that seed's two detach runs */
    assert_non_null(strstr(out, "\nfeature stages "));
    const char *stage = line_of(out, "features/");
    assert_non_null(stage);
    assert_line_has(stage, "features/",
                    "  feeds plan-mix/detach-lr1e-3-s1, plan-mix/detach-lr3e-4-s1\n");
    assert_non_null(
        strstr(stage, "  feeds plan-mix/detach-lr1e-3-s2, plan-mix/detach-lr3e-4-s2\n"));
    free(out);
}

static json_t *find_run(json_t *runs, const char *name)
{
    size_t i;
    json_t *run;
    json_array_foreach(runs, i, run)
    {
        if (strcmp(json_string_value(json_object_get(run, "name")), name) == 0)
            return run;
    }
    fail_msg("no run %s in the JSON", name);
    return NULL;
}

static void test_json(void **state)
{
    (void)state;
    const char *argv[] = {"plan", MIX, "--json", NULL};
    char *out = plan_ok(argv);
    json_error_t jerr;
    json_t *root = json_loads(out, 0, &jerr);
    if (root == NULL)
        fail_msg("not JSON (%s): %s", jerr.text, out);
    assert_string_equal(json_string_value(json_object_get(root, "name")), "plan-mix");
    assert_string_equal(json_string_value(json_object_get(root, "file")), MIX);
    const char *hash = json_string_value(json_object_get(root, "hash"));
    assert_int_equal(strlen(hash), 64);
    /* the same hash as the listing's */
    const char *argv_list[] = {"plan", MIX, NULL};
    char *listing = plan_ok(argv_list);
    char hash_line[100];
    snprintf(hash_line, sizeof hash_line, "\nhash   %s\n", hash);
    assert_non_null(strstr(listing, hash_line));
    free(listing);

    json_t *runs = json_object_get(root, "runs");
    assert_int_equal(json_array_size(runs), 10);
    json_t *det = find_run(runs, "plan-mix/detach-lr1e-3-s1");
    assert_string_equal(json_string_value(json_object_get(det, "point")), "detach-lr1e-3-s1");
    assert_string_equal(json_string_value(json_object_get(det, "overrides")),
                        "strategy=detach{} optimizer.lr=0.001 seed=1");
    assert_string_equal(json_string_value(json_object_get(det, "strategy")), "detach");
    assert_int_equal(json_integer_value(json_object_get(det, "seed")), 1);
    assert_int_equal(strlen(json_string_value(json_object_get(det, "config_hash"))), 64);
    assert_int_equal(json_array_size(json_object_get(det, "deps")), 0);
    /* the grid line that gives its strategy */
    assert_int_equal(json_integer_value(json_object_get(det, "line")), 9);
    assert_true(json_real_value(json_object_get(det, "cost")) > 0);
    json_t *warm = find_run(runs, "plan-mix/warm");
    json_t *deps = json_object_get(warm, "deps");
    assert_int_equal(json_array_size(deps), 1);
    assert_string_equal(json_string_value(json_array_get(deps, 0)), "plan-mix/detach-lr1e-3-s1");
    assert_string_equal(json_string_value(json_object_get(warm, "strategy")), "lora");
    deps = json_object_get(find_run(runs, "plan-mix/last"), "deps");
    assert_string_equal(json_string_value(json_array_get(deps, 0)), "plan-mix/warm");
    /* every run's deps come before it */
    size_t i;
    json_t *run;
    json_array_foreach(runs, i, run)
    {
        size_t d;
        json_t *dep;
        json_array_foreach(json_object_get(run, "deps"), d, dep)
        {
            int found = 0;
            for (size_t j = 0; j < i; j++)
                found |= strcmp(json_string_value(json_object_get(json_array_get(runs, j), "name")),
                                json_string_value(dep)) == 0;
            assert_true(found);
        }
    }
    json_t *stages = json_object_get(root, "stages");
    assert_int_equal(json_array_size(stages), 2);
    json_t *stage;
    json_array_foreach(stages, i, stage)
    {
        assert_string_equal(json_string_value(json_object_get(stage, "kind")), "features");
        assert_int_equal(strncmp(json_string_value(json_object_get(stage, "name")), "features/", 9),
                         0);
        json_t *fed = json_object_get(stage, "runs");
        assert_int_equal(json_array_size(fed), 2);
        char want[64];
        snprintf(want, sizeof want, "plan-mix/detach-lr3e-4-s%zu", i + 1);
        assert_string_equal(json_string_value(json_array_get(fed, 1)), want);
    }
    json_decref(root);
    free(out);
}

/* The node of run point in the DOT text: "nK" from `nK [shape=box,
 * label="POINT\n`. */
static void node_id(const char *dot, const char *point, char *id, size_t n)
{
    char label[160];
    snprintf(label, sizeof label, " [shape=box, label=\"%s\\n", point);
    const char *hit = strstr(dot, label);
    if (hit == NULL)
        fail_msg("no node for %s in:\n%s", point, dot);
    const char *start = hit;
    while (start > dot && start[-1] != ' ')
        start--;
    snprintf(id, n, "%.*s", (int)(hit - start), start);
}

static void test_dot(void **state)
{
    (void)state;
    const char *argv[] = {"plan", MIX, "--dot", NULL};
    char *out = plan_ok(argv);
    assert_int_equal(strncmp(out, "digraph \"sweep plan-mix\" {\n", 27), 0);
    char det[16], warm[16], last[16], edge[96];
    node_id(out, "detach-lr1e-3-s1", det, sizeof det);
    node_id(out, "warm", warm, sizeof warm);
    node_id(out, "last", last, sizeof last);
    snprintf(edge, sizeof edge, "  %s -> %s [label=\"output_of\"];\n", det, warm);
    assert_non_null(strstr(out, edge));
    snprintf(edge, sizeof edge, "  %s -> %s [label=\"after\"];\n", warm, last);
    assert_non_null(strstr(out, edge));
    snprintf(edge, sizeof edge, " -> %s [label=\"features\", style=dashed];\n", det);
    assert_non_null(strstr(out, edge));
    /* two feature stages drawn as ellipses, four features edges */
    int ellipses = 0, features = 0;
    for (const char *p = out; (p = strstr(p, "shape=ellipse")) != NULL; p++)
        ellipses++;
    for (const char *p = out; (p = strstr(p, "[label=\"features\"")) != NULL; p++)
        features++;
    assert_int_equal(ellipses, 2);
    assert_int_equal(features, 4);
    assert_string_equal(out + strlen(out) - 2, "}\n");
    free(out);
}

/* A cycle: one line naming the runs, exit 2, no store made. */
static void test_cycle_refused(void **state)
{
    (void)state;
    char dir[512], db[600];
    assert_int_equal(make_temp_store(dir, sizeof dir, db, sizeof db), 0);
    const char *modes[] = {NULL, "--json", "--dot"};
    for (int m = 0; m < 3; m++) {
        const char *argv[] = {"--db",   db,  "plan", "tests/data/sweeps/plan_cycle.lua",
                              modes[m], NULL};
        cli_result r;
        assert_int_equal(run_orch(argv, NULL, &r), 0);
        assert_int_equal(r.exit_code, 2);
        assert_string_equal(r.out, "");
        assert_string_equal(r.err,
                            "orch: tests/data/sweeps/plan_cycle.lua:8: sweep plan-cycle: the runs "
                            "plan-cycle/a -> plan-cycle/b -> plan-cycle/a wait for each other\n");
        cli_result_free(&r);
    }
    struct stat st;
    assert_int_not_equal(stat(db, &st), 0);
    remove_tree(dir);
}

/* Every run's .npy files are checked as a pipeline's are; the error names
 * the point. */
static void test_data_checked(void **state)
{
    (void)state;
    const char *argv[] = {"plan", "tests/data/sweeps/plan_bad_labels.lua", NULL};
    cli_result r;
    assert_int_equal(run_orch(argv, NULL, &r), 0);
    assert_int_equal(r.exit_code, 2);
    assert_string_equal(r.out, "");
    assert_string_equal(r.err,
                        "orch: tests/data/sweeps/plan_bad_labels.lua:15: point lr1e-3 "
                        "(optimizer.lr=0.001): tests/data/sweeps/../npy_f2.npy: dtype '<f2' not "
                        "supported (expected float32 '<f4' or int64 '<i8')\n");
    cli_result_free(&r);
}

/* A plain pipeline is planned as before: its listing, not a sweep's. */
static void test_pipeline_unchanged(void **state)
{
    (void)state;
    const char *argv[] = {"plan", "pipelines/detach.lua", NULL};
    char *out = plan_ok(argv);
    assert_int_equal(strncmp(out, "-- pipeline pipelines/detach.lua\n-- config hash ", 48), 0);
    assert_null(strstr(out, "sweep  "));
    free(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_listing),      cmocka_unit_test(test_json),
        cmocka_unit_test(test_dot),          cmocka_unit_test(test_cycle_refused),
        cmocka_unit_test(test_data_checked), cmocka_unit_test(test_pipeline_unchanged),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
