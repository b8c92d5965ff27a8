/* test_sweep_dag.c - the DAG of a sweep's runs (core/sweep_dag.h): its
 * order, feature stages, refusals and Graphviz, and the scheduler over it.
 * Sweeps are built by hand from the tiny pipeline (tests/testutil.h), so
 * the DAG is tested apart from the DSL that expands sweep files. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "core/sweep_dag.h"
#include "core/sweep_print.h"
#include "core/tower_key.h"
#include "tests/testutil.h"

/* One run of a hand-built sweep "strategies". */
typedef struct spec {
    const char *point;
    orch_strategy_kind kind;
    int steps;          /* 0: the tiny pipeline's 3 */
    const char *after;  /* a point it waits for, or NULL */
    const char *output; /* a point it starts from (output_of), or NULL */
    orch_precision precision;
    uint64_t seed; /* 0: the tiny pipeline's 7 */
    int n_samples; /* 0: the tiny pipeline's 8 */
} spec;

static void make_sweep(orch_sweep *s, const spec *specs, int n)
{
    memset(s, 0, sizeof *s);
    snprintf(s->name, sizeof s->name, "strategies");
    s->runs = calloc((size_t)n, sizeof *s->runs);
    assert_non_null(s->runs);
    s->n_runs = n;
    for (int i = 0; i < n; i++) {
        const spec *sp = &specs[i];
        orch_sweep_run *run = &s->runs[i];
        run->pipeline = malloc(sizeof *run->pipeline);
        assert_non_null(run->pipeline);
        orch_pipeline *p = run->pipeline;
        tiny_pipeline(p, sp->kind);
        if (sp->steps > 0)
            p->schedule.steps = sp->steps;
        p->precision = sp->precision;
        if (sp->seed > 0)
            p->seed = sp->seed;
        if (sp->n_samples > 0)
            p->data.n_samples = sp->n_samples;
        snprintf(run->point, sizeof run->point, "%s", sp->point);
        snprintf(run->name, sizeof run->name, "strategies/%s", sp->point);
        snprintf(run->overrides, sizeof run->overrides, "strategy=%s{} seed=%llu",
                 orch_strategy_name(sp->kind), (unsigned long long)p->seed);
        run->line = 10 + i;
        if (sp->output != NULL) {
            snprintf(p->strategy.init, sizeof p->strategy.init, "%sstrategies/%s",
                     ORCH_OUTPUT_OF_PREFIX, sp->output);
            snprintf(run->deps[run->n_deps++], ORCH_NAME_MAX, "strategies/%s", sp->output);
        }
        if (sp->after != NULL)
            snprintf(run->deps[run->n_deps++], ORCH_NAME_MAX, "strategies/%s", sp->after);
    }
}

static void free_sweep(orch_sweep *s)
{
    for (int i = 0; i < s->n_runs; i++)
        free(s->runs[i].pipeline);
    free(s->runs);
    memset(s, 0, sizeof *s);
}

static int node_named(const orch_dag *dag, const char *name)
{
    for (int k = 0; k < dag->n_nodes; k++)
        if (strcmp(dag->nodes[k].name, name) == 0)
            return k;
    return -1;
}

static int waits_for(const orch_dag *dag, int node, int dep)
{
    for (int d = 0; d < dag->nodes[node].n_deps; d++)
        if (dag->nodes[node].deps[d] == dep)
            return 1;
    return 0;
}

static void assert_topological(const orch_dag *dag)
{
    for (int k = 0; k < dag->n_nodes; k++)
        for (int d = 0; d < dag->nodes[k].n_deps; d++)
            assert_true(dag->nodes[k].deps[d] < k);
}

/* Dependencies first; otherwise the declaration's order. */
static void test_topological_order(void **state)
{
    (void)state;
    const spec specs[] = {
        {.point = "a", .kind = ORCH_STRATEGY_SURGERY},
        {.point = "b", .kind = ORCH_STRATEGY_SURGERY, .after = "c"},
        {.point = "c", .kind = ORCH_STRATEGY_SURGERY},
        {.point = "d", .kind = ORCH_STRATEGY_LORA, .output = "b", .after = "a"},
    };
    orch_sweep s;
    make_sweep(&s, specs, 4);
    orch_dag dag;
    orch_err err = {0};
    assert_int_equal(orch_dag_build(&s, &dag, &err), ORCH_OK);
    assert_int_equal(dag.n_nodes, 4);
    const char *expect[] = {"strategies/a", "strategies/c", "strategies/b", "strategies/d"};
    const int runs[] = {0, 2, 1, 3};
    for (int k = 0; k < 4; k++) {
        assert_string_equal(dag.nodes[k].name, expect[k]);
        assert_int_equal(dag.nodes[k].kind, ORCH_DAG_RUN);
        assert_int_equal(dag.nodes[k].run, runs[k]);
    }
    assert_topological(&dag);
    assert_int_equal(dag.nodes[2].n_deps, 1);
    assert_true(waits_for(&dag, 2, 1));
    assert_int_equal(dag.nodes[3].n_deps, 2);
    assert_true(waits_for(&dag, 3, 2) && waits_for(&dag, 3, 0));
    orch_dag_free(&dag);
    free_sweep(&s);
}

/* Detach runs with the same tower, precision and data share one feature
 * node (lr and steps do not matter); another precision, other data or
 * another seed of the seeded tower and synthetic images do not. A single
 * detach run gets its own node too; other strategies none. */
static void test_feature_grouping(void **state)
{
    (void)state;
    const spec specs[] = {
        {.point = "d1", .kind = ORCH_STRATEGY_DETACH},
        {.point = "s1", .kind = ORCH_STRATEGY_SURGERY},
        {.point = "d2", .kind = ORCH_STRATEGY_DETACH, .steps = 9},
        {.point = "d-bf16", .kind = ORCH_STRATEGY_DETACH, .precision = ORCH_BF16},
        {.point = "d-data", .kind = ORCH_STRATEGY_DETACH, .n_samples = 6},
        {.point = "d-seed", .kind = ORCH_STRATEGY_DETACH, .seed = 8},
        {.point = "l1", .kind = ORCH_STRATEGY_LORA},
    };
    orch_sweep s;
    make_sweep(&s, specs, 7);
    s.runs[2].pipeline->optimizer.lr = 3e-4;
    orch_dag dag;
    orch_err err = {0};
    assert_int_equal(orch_dag_build(&s, &dag, &err), ORCH_OK);
    assert_int_equal(dag.n_nodes, 7 + 4);
    assert_topological(&dag);
    int n_features = 0;
    for (int k = 0; k < dag.n_nodes; k++) {
        if (dag.nodes[k].kind != ORCH_DAG_FEATURES)
            continue;
        n_features++;
        assert_int_equal(strlen(dag.nodes[k].name), strlen("features/") + 16);
        assert_memory_equal(dag.nodes[k].name, "features/", 9);
        assert_int_equal(dag.nodes[k].n_deps, 0);
        assert_int_equal(s.runs[dag.nodes[k].run].pipeline->strategy.kind, ORCH_STRATEGY_DETACH);
    }
    assert_int_equal(n_features, 4);
    int d1 = node_named(&dag, "strategies/d1"), d2 = node_named(&dag, "strategies/d2");
    int f = dag.nodes[d1].deps[0];
    assert_int_equal(dag.nodes[f].kind, ORCH_DAG_FEATURES);
    assert_int_equal(dag.nodes[f].run, 0); /* the group's first run */
    assert_int_equal(f, d1 - 1);           /* just before the first run it feeds */
    assert_true(waits_for(&dag, d2, f));
    const char *alone[] = {"strategies/d-bf16", "strategies/d-data", "strategies/d-seed"};
    for (int i = 0; i < 3; i++) {
        int k = node_named(&dag, alone[i]);
        assert_int_equal(dag.nodes[k].n_deps, 1);
        int g = dag.nodes[k].deps[0];
        assert_int_equal(dag.nodes[g].kind, ORCH_DAG_FEATURES);
        assert_int_not_equal(g, f);
        for (int j = 0; j < i; j++)
            assert_int_not_equal(g, dag.nodes[node_named(&dag, alone[j])].deps[0]);
    }
    assert_int_equal(dag.nodes[node_named(&dag, "strategies/s1")].n_deps, 0);
    assert_int_equal(dag.nodes[node_named(&dag, "strategies/l1")].n_deps, 0);
    /* a feature node costs one forward of the data set, a run steps x a batch */
    assert_true(dag.nodes[f].cost > 0);
    assert_true(dag.nodes[d1].cost > 0);
    assert_true(dag.nodes[d2].cost == 3 * dag.nodes[d1].cost); /* 9 steps, not 3 */
    int f_data = dag.nodes[node_named(&dag, "strategies/d-data")].deps[0];
    assert_true(dag.nodes[f_data].cost * 8 == dag.nodes[f].cost * 6); /* 6 images, not 8 */
    orch_dag_free(&dag);
    free_sweep(&s);
}

/* With a weights file and .npy images, the seed decides nothing in the
 * tower's forward: runs of different seeds share it. Without weights the
 * seed draws the tower. The precision always counts. */
static void test_tower_forward_key(void **state)
{
    (void)state;
    orch_pipeline *a = malloc(sizeof *a), *b = malloc(sizeof *b);
    assert_non_null(a);
    assert_non_null(b);
    tiny_pipeline(a, ORCH_STRATEGY_DETACH);
    snprintf(a->model.weights, sizeof a->model.weights, "tower.safetensors");
    a->data.source = ORCH_DATA_NPY;
    snprintf(a->data.pixel_values, sizeof a->data.pixel_values, "pv.npy");
    snprintf(a->data.grid_thw_path, sizeof a->data.grid_thw_path, "grid.npy");
    snprintf(a->data.labels, sizeof a->data.labels, "labels.npy");
    memcpy(b, a, sizeof *b);
    b->seed = 99;
    b->optimizer.lr = 1;
    snprintf(b->data.labels, sizeof b->data.labels, "other-labels.npy");
    assert_true(orch_tower_forward_key(a) == orch_tower_forward_key(b));
    b->precision = ORCH_FP16;
    assert_true(orch_tower_forward_key(a) != orch_tower_forward_key(b));
    b->precision = a->precision;
    snprintf(b->data.pixel_values, sizeof b->data.pixel_values, "pv2.npy");
    assert_true(orch_tower_forward_key(a) != orch_tower_forward_key(b));
    memcpy(b, a, sizeof *b);
    b->model.config.window_size = 16;
    assert_true(orch_tower_forward_key(a) != orch_tower_forward_key(b));
    memcpy(b, a, sizeof *b);
    a->model.weights[0] = b->model.weights[0] = '\0';
    b->seed = 99;
    assert_true(orch_tower_forward_key(a) != orch_tower_forward_key(b));
    /* the ints of the feature cache's key keep their order (cached entries
     * on disk were keyed with it) */
    int ints[ORCH_TOWER_CONFIG_INTS];
    int n = orch_tower_config_ints(&a->model.config, ORCH_BF16, ints);
    assert_int_equal(n, 12 + 2);
    assert_int_equal(ints[0], 4);  /* depth */
    assert_int_equal(ints[1], 32); /* hidden */
    assert_int_equal(ints[9], 24); /* out hidden */
    assert_int_equal(ints[10], 2); /* n_fullatt */
    assert_int_equal(ints[11], ORCH_BF16);
    assert_int_equal(ints[12], 1);
    assert_int_equal(ints[13], 3);
    free(a);
    free(b);
}

static void test_cycle_refused(void **state)
{
    (void)state;
    const spec two[] = {
        {.point = "x", .kind = ORCH_STRATEGY_SURGERY},
        {.point = "a", .kind = ORCH_STRATEGY_SURGERY, .after = "b"},
        {.point = "b", .kind = ORCH_STRATEGY_LORA, .output = "a"},
    };
    orch_sweep s;
    make_sweep(&s, two, 3);
    snprintf(s.file, sizeof s.file, "sweeps/strategies.lua");
    orch_dag dag;
    orch_err err = {0};
    assert_int_equal(orch_dag_build(&s, &dag, &err), ORCH_EINVAL);
    assert_int_equal(err.code, ORCH_EINVAL);
    assert_string_equal(err.msg, "sweeps/strategies.lua:11: sweep strategies: the runs "
                                 "strategies/a -> strategies/b -> strategies/a wait for each "
                                 "other");
    assert_null(dag.nodes);
    assert_int_equal(dag.n_nodes, 0);
    free_sweep(&s);

    const spec three[] = {
        {.point = "a", .kind = ORCH_STRATEGY_DETACH, .after = "c"},
        {.point = "b", .kind = ORCH_STRATEGY_DETACH, .after = "a"},
        {.point = "c", .kind = ORCH_STRATEGY_DETACH, .after = "b"},
    };
    make_sweep(&s, three, 3);
    orch_err_clear(&err);
    assert_int_equal(orch_dag_build(&s, &dag, &err), ORCH_EINVAL);
    assert_string_equal(err.msg, "sweep strategies: the runs strategies/a -> strategies/c -> "
                                 "strategies/b -> strategies/a wait for each other");
    assert_null(strchr(err.msg, '\n'));
    free_sweep(&s);

    const spec self[] = {{.point = "a", .kind = ORCH_STRATEGY_SURGERY, .after = "a"}};
    make_sweep(&s, self, 1);
    orch_err_clear(&err);
    assert_int_equal(orch_dag_build(&s, &dag, &err), ORCH_EINVAL);
    assert_string_equal(err.msg, "sweep strategies: run 'strategies/a' waits for itself");
    free_sweep(&s);
}

static void test_unknown_dependency_refused(void **state)
{
    (void)state;
    const spec specs[] = {
        {.point = "a", .kind = ORCH_STRATEGY_SURGERY},
        {.point = "b", .kind = ORCH_STRATEGY_LORA, .output = "nope"},
    };
    orch_sweep s;
    make_sweep(&s, specs, 2);
    snprintf(s.file, sizeof s.file, "s.lua");
    orch_dag dag;
    orch_err err = {0};
    assert_int_equal(orch_dag_build(&s, &dag, &err), ORCH_EINVAL);
    assert_string_equal(err.msg, "s.lua:11: sweep strategies: run 'strategies/b' waits for "
                                 "'strategies/nope', which is not a run of the sweep");
    assert_null(dag.nodes);
    free_sweep(&s);
}

/* Runs of 1, 5 and 3 steps: handed out 5, 3, 1; the cost is linear in
 * steps. */
static void test_sched_longest_first(void **state)
{
    (void)state;
    const spec specs[] = {
        {.point = "short", .kind = ORCH_STRATEGY_SURGERY, .steps = 1},
        {.point = "long", .kind = ORCH_STRATEGY_SURGERY, .steps = 5},
        {.point = "mid", .kind = ORCH_STRATEGY_SURGERY, .steps = 3},
        {.point = "mid2", .kind = ORCH_STRATEGY_SURGERY, .steps = 3},
    };
    orch_sweep s;
    make_sweep(&s, specs, 4);
    orch_dag dag;
    orch_err err = {0};
    assert_int_equal(orch_dag_build(&s, &dag, &err), ORCH_OK);
    assert_true(dag.nodes[0].cost > 0);
    assert_true(dag.nodes[1].cost == 5 * dag.nodes[0].cost);
    orch_sched sc;
    assert_int_equal(orch_sched_init(&sc, &dag, &err), ORCH_OK);
    for (int k = 0; k < 4; k++)
        assert_int_equal(sc.state[k], ORCH_SCHED_READY);
    assert_int_equal(orch_sched_next(&sc), 1);
    assert_int_equal(orch_sched_next(&sc), 2); /* a tie: the lower index */
    assert_int_equal(orch_sched_next(&sc), 3);
    assert_int_equal(orch_sched_next(&sc), 0);
    assert_int_equal(orch_sched_next(&sc), -1);
    for (int k = 0; k < 4; k++)
        assert_int_equal(sc.state[k], ORCH_SCHED_RUNNING);
    assert_false(orch_sched_finished(&sc));
    for (int k = 0; k < 4; k++)
        orch_sched_end(&sc, k, 1, NULL);
    assert_true(orch_sched_finished(&sc));
    orch_sched_free(&sc);
    orch_dag_free(&dag);
    free_sweep(&s);
}

/* A cheap feature stage that detach runs wait for goes before a run that
 * costs more than the stage alone but less than the stage and its runs. */
static void test_sched_priority_counts_dependents(void **state)
{
    (void)state;
    const spec specs[] = {
        {.point = "long", .kind = ORCH_STRATEGY_SURGERY, .steps = 6},
        {.point = "det1", .kind = ORCH_STRATEGY_DETACH, .steps = 3},
        {.point = "det2", .kind = ORCH_STRATEGY_DETACH, .steps = 3},
    };
    orch_sweep s;
    make_sweep(&s, specs, 3);
    orch_dag dag;
    orch_err err = {0};
    assert_int_equal(orch_dag_build(&s, &dag, &err), ORCH_OK);
    int lng = node_named(&dag, "strategies/long"), det1 = node_named(&dag, "strategies/det1");
    int feat = dag.nodes[det1].deps[0];
    /* one forward of 8 images vs 6 steps of 2 */
    assert_true(dag.nodes[feat].cost < dag.nodes[lng].cost);
    orch_sched sc;
    assert_int_equal(orch_sched_init(&sc, &dag, &err), ORCH_OK);
    assert_true(sc.priority[feat] == dag.nodes[feat].cost + dag.nodes[det1].cost);
    assert_true(sc.priority[lng] == dag.nodes[lng].cost);
    assert_int_equal(orch_sched_next(&sc), feat);
    assert_int_equal(orch_sched_next(&sc), lng);
    orch_sched_free(&sc);
    orch_dag_free(&dag);
    free_sweep(&s);
}

/* A dependent is never handed out before its dependency is done, even
 * when it is the longest; a feature node goes before its detach runs. */
static void test_sched_dependencies(void **state)
{
    (void)state;
    const spec specs[] = {
        {.point = "first", .kind = ORCH_STRATEGY_SURGERY, .steps = 1},
        {.point = "then", .kind = ORCH_STRATEGY_LORA, .steps = 50, .output = "first"},
        {.point = "det", .kind = ORCH_STRATEGY_DETACH, .steps = 1},
    };
    orch_sweep s;
    make_sweep(&s, specs, 3);
    orch_dag dag;
    orch_err err = {0};
    assert_int_equal(orch_dag_build(&s, &dag, &err), ORCH_OK);
    int first = node_named(&dag, "strategies/first"), then = node_named(&dag, "strategies/then");
    int det = node_named(&dag, "strategies/det"), feat = dag.nodes[det].deps[0];
    orch_sched sc;
    assert_int_equal(orch_sched_init(&sc, &dag, &err), ORCH_OK);
    assert_int_equal(sc.state[then], ORCH_SCHED_WAITING);
    assert_int_equal(sc.state[det], ORCH_SCHED_WAITING);
    int a = orch_sched_next(&sc), b = orch_sched_next(&sc);
    assert_true((a == first && b == feat) || (a == feat && b == first));
    assert_int_equal(orch_sched_next(&sc), -1); /* the others wait */
    orch_sched_end(&sc, feat, 1, NULL);
    assert_int_equal(sc.state[det], ORCH_SCHED_READY);
    assert_int_equal(orch_sched_next(&sc), det);
    assert_int_equal(orch_sched_next(&sc), -1);
    orch_sched_end(&sc, first, 1, NULL);
    assert_int_equal(sc.state[then], ORCH_SCHED_READY);
    assert_int_equal(orch_sched_next(&sc), then);
    orch_sched_end(&sc, then, 1, NULL);
    assert_false(orch_sched_finished(&sc));
    orch_sched_end(&sc, det, 1, NULL);
    assert_true(orch_sched_finished(&sc));
    orch_sched_free(&sc);
    orch_dag_free(&dag);
    free_sweep(&s);
}

/* a fails: b (after a) and c (after b) are skipped with reasons naming a;
 * the independent d goes on. */
static void test_sched_failure_skips_transitively(void **state)
{
    (void)state;
    const spec specs[] = {
        {.point = "a", .kind = ORCH_STRATEGY_SURGERY},
        {.point = "b", .kind = ORCH_STRATEGY_LORA, .output = "a"},
        {.point = "c", .kind = ORCH_STRATEGY_SURGERY, .after = "b"},
        {.point = "d", .kind = ORCH_STRATEGY_SURGERY, .steps = 1},
    };
    orch_sweep s;
    make_sweep(&s, specs, 4);
    orch_dag dag;
    orch_err err = {0};
    assert_int_equal(orch_dag_build(&s, &dag, &err), ORCH_OK);
    orch_sched sc;
    assert_int_equal(orch_sched_init(&sc, &dag, &err), ORCH_OK);
    assert_int_equal(orch_sched_next(&sc), 0);
    orch_sched_end(&sc, 0, 0, "diverged at step 2");
    assert_int_equal(sc.state[0], ORCH_SCHED_FAILED);
    assert_string_equal(sc.reason[0], "diverged at step 2");
    assert_int_equal(sc.state[1], ORCH_SCHED_SKIPPED);
    assert_string_equal(sc.reason[1], "its dependency strategies/a failed");
    assert_int_equal(sc.state[2], ORCH_SCHED_SKIPPED);
    assert_string_equal(sc.reason[2],
                        "its dependency strategies/b was skipped: strategies/a failed");
    assert_int_equal(sc.state[3], ORCH_SCHED_READY);
    assert_false(orch_sched_finished(&sc));
    assert_int_equal(orch_sched_next(&sc), 3);
    assert_int_equal(orch_sched_next(&sc), -1);
    orch_sched_end(&sc, 3, 1, NULL);
    assert_true(orch_sched_finished(&sc));
    orch_sched_free(&sc);
    orch_dag_free(&dag);
    free_sweep(&s);
}

/* A rerun: states from the store before the first hand-out. A DONE run's
 * dependents are ready at once, a FAILED run's are skipped, neither is
 * handed out again, and a feature node whose runs have all ended is
 * skipped, not computed. */
static void test_sched_from_store(void **state)
{
    (void)state;
    const spec specs[] = {
        {.point = "done", .kind = ORCH_STRATEGY_SURGERY, .steps = 50},
        {.point = "after-done", .kind = ORCH_STRATEGY_SURGERY, .after = "done"},
        {.point = "failed", .kind = ORCH_STRATEGY_SURGERY, .steps = 50},
        {.point = "after-failed", .kind = ORCH_STRATEGY_SURGERY, .after = "failed"},
        {.point = "det", .kind = ORCH_STRATEGY_DETACH},
    };
    orch_sweep s;
    make_sweep(&s, specs, 5);
    orch_dag dag;
    orch_err err = {0};
    assert_int_equal(orch_dag_build(&s, &dag, &err), ORCH_OK);
    int done = node_named(&dag, "strategies/done");
    int after_done = node_named(&dag, "strategies/after-done");
    int failed = node_named(&dag, "strategies/failed");
    int after_failed = node_named(&dag, "strategies/after-failed");
    int det = node_named(&dag, "strategies/det"), feat = dag.nodes[det].deps[0];
    orch_sched sc;
    assert_int_equal(orch_sched_init(&sc, &dag, &err), ORCH_OK);
    orch_sched_set(&sc, done, ORCH_SCHED_DONE, NULL);
    orch_sched_set(&sc, failed, ORCH_SCHED_FAILED, "quarantined: killed its worker twice");
    orch_sched_set(&sc, det, ORCH_SCHED_DONE, NULL);
    assert_int_equal(orch_sched_settle(&sc), 3); /* after-done, after-failed, feat */
    assert_int_equal(orch_sched_settle(&sc), 0);
    assert_int_equal(sc.state[after_done], ORCH_SCHED_READY);
    assert_int_equal(sc.state[after_failed], ORCH_SCHED_SKIPPED);
    assert_string_equal(sc.reason[after_failed], "its dependency strategies/failed failed");
    assert_string_equal(sc.reason[failed], "quarantined: killed its worker twice");
    assert_int_equal(sc.state[feat], ORCH_SCHED_SKIPPED);
    assert_int_equal(orch_sched_next(&sc), after_done);
    assert_int_equal(orch_sched_next(&sc), -1);
    assert_false(orch_sched_finished(&sc));
    orch_sched_end(&sc, after_done, 1, NULL);
    assert_true(orch_sched_finished(&sc));
    orch_sched_free(&sc);
    orch_dag_free(&dag);
    free_sweep(&s);
}

static void test_dot(void **state)
{
    (void)state;
    const spec specs[] = {
        {.point = "det", .kind = ORCH_STRATEGY_DETACH},
        {.point = "lora", .kind = ORCH_STRATEGY_LORA, .output = "det"},
        {.point = "sur", .kind = ORCH_STRATEGY_SURGERY, .after = "lora"},
    };
    orch_sweep s;
    make_sweep(&s, specs, 3);
    snprintf(s.runs[2].overrides, sizeof s.runs[2].overrides, "model.weights=\"a b\"");
    orch_dag dag;
    orch_err err = {0};
    assert_int_equal(orch_dag_build(&s, &dag, &err), ORCH_OK);
    char *text = NULL;
    size_t size = 0;
    FILE *out = open_memstream(&text, &size);
    assert_non_null(out);
    assert_int_equal(orch_dag_print_dot(&dag, &s, out, &err), ORCH_OK);
    fclose(out);
    /* n0 the feature node, n1 det, n2 lora, n3 sur */
    assert_non_null(strstr(text, "digraph \"sweep strategies\" {"));
    assert_non_null(strstr(text, "n0 [shape=ellipse"));
    assert_non_null(strstr(text, "label=\"features/"));
    assert_non_null(strstr(text, "n1 [shape=box, label=\"det\\nstrategy=detach{} seed=7\"]"));
    assert_non_null(strstr(text, "n3 [shape=box, label=\"sur\\nmodel.weights=\\\"a b\\\"\"]"));
    assert_non_null(strstr(text, "n0 -> n1 [label=\"features\""));
    assert_non_null(strstr(text, "n1 -> n2 [label=\"output_of\"]"));
    assert_non_null(strstr(text, "n2 -> n3 [label=\"after\"]"));
    assert_string_equal(text + size - 2, "}\n");
    free(text);
    orch_dag_free(&dag);
    free_sweep(&s);
}

static char *print_to_text(int json, const orch_sweep *s, const orch_dag *dag)
{
    char *text = NULL;
    size_t size = 0;
    FILE *out = open_memstream(&text, &size);
    assert_non_null(out);
    orch_err err = {0};
    assert_int_equal(json ? orch_sweep_print_json(s, dag, out, &err)
                          : orch_sweep_print_plan(s, dag, out, &err),
                     ORCH_OK);
    fclose(out);
    return text;
}

/* The listing and the JSON of a plan, in the DAG's order. */
static void test_print_plan(void **state)
{
    (void)state;
    const spec specs[] = {
        {.point = "lora", .kind = ORCH_STRATEGY_LORA, .output = "det"},
        {.point = "det", .kind = ORCH_STRATEGY_DETACH, .seed = 3},
    };
    orch_sweep s;
    make_sweep(&s, specs, 2);
    snprintf(s.file, sizeof s.file, "sweeps/s.lua");
    snprintf(s.hash, sizeof s.hash, "%064d", 7);
    snprintf(s.runs[0].config_hash, sizeof s.runs[0].config_hash, "abcdef0123456789%048d", 0);
    snprintf(s.runs[1].config_hash, sizeof s.runs[1].config_hash, "0123456789abcdef%048d", 0);
    orch_dag dag;
    orch_err err = {0};
    assert_int_equal(orch_dag_build(&s, &dag, &err), ORCH_OK);
    assert_int_equal(dag.n_nodes, 3); /* features, det, lora */
    char *text = print_to_text(0, &s, &dag);
    assert_non_null(strstr(text, "sweep  strategies\nfile   sweeps/s.lua\nhash   0000"));
    assert_non_null(strstr(text, "runs   2 (and 1 feature stage)\n"));
    char *det = strstr(text, "strategies/det   0123456789ab  features/");
    char *lora = strstr(text, "strategies/lora  abcdef012345  strategies/det");
    assert_non_null(det);
    assert_non_null(lora);
    assert_true(det < lora); /* the dependency first */
    assert_non_null(strstr(lora, "strategy=lora{} seed=7\n"));
    char line[256];
    snprintf(line, sizeof line, "%s  feeds strategies/det\n", dag.nodes[0].name);
    assert_non_null(strstr(text, line));
    free(text);

    text = print_to_text(1, &s, &dag);
    json_error_t jerr;
    json_t *root = json_loads(text, 0, &jerr);
    assert_non_null(root);
    assert_string_equal(json_string_value(json_object_get(root, "name")), "strategies");
    assert_string_equal(json_string_value(json_object_get(root, "file")), "sweeps/s.lua");
    json_t *runs = json_object_get(root, "runs");
    assert_int_equal(json_array_size(runs), 2);
    json_t *r0 = json_array_get(runs, 0), *r1 = json_array_get(runs, 1);
    assert_string_equal(json_string_value(json_object_get(r0, "name")), "strategies/det");
    assert_string_equal(json_string_value(json_object_get(r0, "point")), "det");
    assert_string_equal(json_string_value(json_object_get(r0, "strategy")), "detach");
    assert_int_equal(json_integer_value(json_object_get(r0, "seed")), 3);
    assert_int_equal(json_integer_value(json_object_get(r0, "line")), 11);
    assert_int_equal(json_array_size(json_object_get(r0, "deps")), 0);
    assert_true(json_real_value(json_object_get(r0, "cost")) > 0);
    assert_string_equal(json_string_value(json_object_get(r1, "config_hash")),
                        s.runs[0].config_hash);
    json_t *deps = json_object_get(r1, "deps");
    assert_int_equal(json_array_size(deps), 1);
    assert_string_equal(json_string_value(json_array_get(deps, 0)), "strategies/det");
    json_t *stages = json_object_get(root, "stages");
    assert_int_equal(json_array_size(stages), 1);
    json_t *st = json_array_get(stages, 0);
    assert_string_equal(json_string_value(json_object_get(st, "name")), dag.nodes[0].name);
    assert_string_equal(json_string_value(json_object_get(st, "kind")), "features");
    assert_int_equal(json_array_size(json_object_get(st, "runs")), 1);
    json_decref(root);
    free(text);
    orch_dag_free(&dag);
    free_sweep(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_topological_order),
        cmocka_unit_test(test_feature_grouping),
        cmocka_unit_test(test_tower_forward_key),
        cmocka_unit_test(test_cycle_refused),
        cmocka_unit_test(test_unknown_dependency_refused),
        cmocka_unit_test(test_sched_longest_first),
        cmocka_unit_test(test_sched_priority_counts_dependents),
        cmocka_unit_test(test_sched_dependencies),
        cmocka_unit_test(test_sched_failure_skips_transitively),
        cmocka_unit_test(test_sched_from_store),
        cmocka_unit_test(test_dot),
        cmocka_unit_test(test_print_plan),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
