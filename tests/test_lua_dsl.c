/*
 * test_lua_dsl.c - the Lua pipeline DSL: shipped pipelines, --set, the
 * bad-input suite (tests/bad/cases.h) through orch_dsl_load, source
 * locations, composition, the sandbox, JSON, the hash and the listing.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "core/pipeline.h"
#include "core/pipeline_json.h"
#include "core/pipeline_print.h"
#include "core/sweep.h"
#include "lua/dsl.h"
#include "lua/locate.h"
#include "lua/suggest.h"
#include "tests/bad/cases.h"
#include "tests/testutil.h"

static orch_pipeline P; /* large: keep it off the stack */
static orch_err E;

/* Loads path with the NULL-terminated --set list that follows. */
static int load(const char *path, ...)
{
    const char *sets[32];
    int n = 0;
    va_list ap;
    va_start(ap, path);
    for (const char *s = va_arg(ap, const char *); s != NULL && n < 32;
         s = va_arg(ap, const char *))
        sets[n++] = s;
    va_end(ap);
    return orch_dsl_load(path, sets, n, &P, &E);
}

static void expect_ok(int rc)
{
    if (rc != ORCH_OK) {
        print_error("orch_dsl_load failed: %s\n", E.msg);
        fail();
    }
}

/* rc must be ORCH_EINVAL with one line containing expect, and P zeroed. */
static void expect_error(int rc, const char *expect)
{
    if (rc != ORCH_EINVAL || strstr(E.msg, expect) == NULL || strchr(E.msg, '\n') != NULL) {
        print_error("expected an error containing\n  %s\ngot rc %d:\n  %s\n", expect, rc, E.msg);
        fail();
    }
    assert_int_equal(E.code, ORCH_EINVAL);
    assert_string_equal(P.name, "");
    assert_int_equal(P.model.config.depth, 0);
}

/* A temporary directory per test: *state is its path. */
static int tmp_setup(void **state)
{
    char *dir = malloc(512);
    if (dir == NULL || make_temp_dir(dir, 512) == NULL) {
        free(dir);
        return -1;
    }
    *state = dir;
    return 0;
}

static int tmp_teardown(void **state)
{
    remove_tree(*state);
    free(*state);
    return 0;
}

/* Writes dir/name and returns its path in a static rotating buffer. */
static const char *put(const char *dir, const char *name, const char *text)
{
    static char paths[8][600];
    static int next;
    char *path = paths[next++ % 8];
    snprintf(path, 600, "%s/%s", dir, name);
    assert_int_equal(write_text_file(path, text), 0);
    return path;
}

/* A valid flat pipeline, for files written by tests. */
#define FLAT_BODY                                                                                  \
    "    model = { preset = \"tiny\" },\n"                                                         \
    "    data = { samples = 8, classes = 4, image_size = { 16, 16 } },\n"                          \
    "    strategy = full {},\n"                                                                    \
    "    optimizer = { kind = \"sgd\", lr = 0.1 },\n"                                              \
    "    schedule = { steps = 4, batch_size = 2 },\n"

/* ------------------------------------------------------ shipped pipelines */

static void test_base_fields(void **state)
{
    (void)state;
    expect_ok(load("pipelines/base.lua", NULL));
    assert_string_equal(P.path, "pipelines/base.lua");
    assert_string_equal(P.name, "base");
    assert_string_equal(P.model.preset, "tiny");
    assert_string_equal(P.model.weights, "");
    const orch_model_config *c = &P.model.config;
    assert_int_equal(c->depth, 4);
    assert_int_equal(c->hidden_size, 32);
    assert_int_equal(c->num_heads, 4);
    assert_int_equal(c->intermediate_size, 40);
    assert_int_equal(c->patch_size, 2);
    assert_int_equal(c->temporal_patch_size, 2);
    assert_int_equal(c->in_channels, 3);
    assert_int_equal(c->spatial_merge_size, 2);
    assert_int_equal(c->window_size, 8);
    assert_int_equal(c->out_hidden_size, 24);
    assert_int_equal(c->n_fullatt, 2);
    assert_int_equal(c->fullatt_block_indexes[0], 1);
    assert_int_equal(c->fullatt_block_indexes[1], 3);
    assert_true(c->initializer_range == 0.02);
    assert_int_equal(P.data.source, ORCH_DATA_SYNTHETIC);
    assert_int_equal(P.data.n_samples, 64);
    assert_int_equal(P.data.n_classes, 4);
    assert_int_equal(P.data.image_height, 56);
    assert_int_equal(P.data.image_width, 56);
    assert_int_equal(P.data.n_grids, 0);
    assert_int_equal(P.strategy.kind, ORCH_STRATEGY_FULL);
    assert_int_equal(P.head.kind, ORCH_HEAD_CLASSIFIER);
    assert_int_equal(P.head.n_outputs, 4);
    assert_int_equal(P.loss, ORCH_LOSS_CROSS_ENTROPY);
    assert_int_equal(P.optimizer.kind, ORCH_OPT_ADAMW);
    assert_true(P.optimizer.lr == 1e-3);
    assert_true(P.optimizer.beta1 == 0.9 && P.optimizer.beta2 == 0.999);
    assert_true(P.optimizer.eps == 1e-8);
    assert_true(P.optimizer.weight_decay == 0.01);
    assert_true(P.optimizer.grad_clip == 1.0);
    assert_int_equal(P.schedule.steps, 30);
    assert_int_equal(P.schedule.batch_size, 4);
    assert_int_equal(P.schedule.warmup_steps, 3);
    assert_int_equal(P.precision, ORCH_FP32);
    assert_true(P.loss_scale.init == 1.0);
    assert_int_equal(P.loss_scale.dynamic, 0);
    assert_int_equal(P.loss_scale.growth_interval, 2000);
    assert_int_equal(P.checkpoint, 0);
    assert_true(P.seed == 1234);
    assert_int_equal(P.checks.nan, 1);
    assert_int_equal(P.checks.frozen, 1);
    assert_int_equal(P.checks.on_nan, ORCH_ON_NAN_ABORT);
    assert_int_equal(P.checks.stats_every, 10);
    assert_int_equal(P.checks.inject.enabled, 0);
    assert_int_equal(P.n_tags, 2);
    assert_string_equal(P.tags[0], "tiny");
    assert_string_equal(P.tags[1], "demo");
}

static void test_shipped_strategies(void **state)
{
    (void)state;
    expect_ok(load("pipelines/surgery.lua", NULL));
    assert_string_equal(P.name, "surgery");
    assert_int_equal(P.strategy.kind, ORCH_STRATEGY_SURGERY);
    assert_string_equal(P.strategy.replace, "visual.merger.mlp.2");
    assert_string_equal(P.strategy.init, "");
    assert_true(P.optimizer.lr == 1e-3); /* from base */
    assert_int_equal(P.schedule.steps, 30);

    expect_ok(load("pipelines/detach.lua", NULL));
    assert_string_equal(P.name, "detach");
    assert_int_equal(P.strategy.kind, ORCH_STRATEGY_DETACH);
    assert_int_equal(P.strategy.adapter, ORCH_ADAPTER_LINEAR);
    assert_int_equal(P.n_tags, 2);

    expect_ok(load("pipelines/lora.lua", NULL));
    assert_string_equal(P.name, "lora");
    assert_int_equal(P.strategy.kind, ORCH_STRATEGY_LORA);
    assert_int_equal(P.strategy.rank, 4);
    assert_true(P.strategy.alpha == 8.0);
    assert_true(P.strategy.dropout == 0.0);
    assert_int_equal(P.strategy.n_targets, 2);
    assert_string_equal(P.strategy.targets[0], "visual.merger.mlp.0");
    assert_string_equal(P.strategy.targets[1], "visual.merger.mlp.2");
}

/* Every file in pipelines/ validates (whoever adds one): a pipeline as a
 * pipeline, a sweep (pipelines/sweep.lua) by expanding every run. */
static void test_every_shipped_pipeline(void **state)
{
    (void)state;
    DIR *d = opendir("pipelines");
    assert_non_null(d);
    int n = 0;
    for (struct dirent *e = readdir(d); e != NULL; e = readdir(d)) {
        size_t len = strlen(e->d_name);
        if (len < 5 || strcmp(e->d_name + len - 4, ".lua") != 0)
            continue;
        char path[600];
        snprintf(path, sizeof path, "pipelines/%s", e->d_name);
        int is_sweep = 0;
        assert_int_equal(orch_dsl_file_is_sweep(path, &is_sweep, &E), ORCH_OK);
        if (is_sweep) {
            orch_sweep sw;
            if (orch_dsl_load_sweep(path, NULL, 0, &sw, &E) != ORCH_OK) {
                print_error("%s: %s\n", path, E.msg);
                closedir(d);
                fail();
            }
            assert_true(sw.n_runs > 0);
            orch_sweep_free(&sw);
            n++;
            continue;
        }
        if (load(path, NULL) != ORCH_OK) {
            print_error("%s: %s\n", path, E.msg);
            closedir(d);
            fail();
        }
        n++;
    }
    closedir(d);
    assert_true(n >= 4);
}

/* ------------------------------------------------------------------ --set */

static void test_set_overrides(void **state)
{
    (void)state;
    expect_ok(load("pipelines/lora.lua", "strategy.rank=16", "optimizer.lr=3e-4",
                   "optimizer.betas.2=0.99", "precision=bf16", "tags={\"a\", 'b'}",
                   "data.image_size=nil", "data.image_grid_thw={{1,24,24},{1,16,20}}", "seed=99",
                   "strategy.targets={\"visual.blocks.3.attn.qkv\"}", "name=my run",
                   "checks.inject={step=2, phase=\"backward\", stage=\"visual.merger.mlp.2\"}",
                   "loss_scale.init=65536", "loss_scale.dynamic=true", NULL));
    assert_int_equal(P.strategy.rank, 16);
    assert_true(P.optimizer.lr == 3e-4);
    assert_true(P.optimizer.beta1 == 0.9 && P.optimizer.beta2 == 0.99);
    assert_int_equal(P.precision, ORCH_BF16);
    assert_int_equal(P.n_tags, 2);
    assert_string_equal(P.tags[1], "b");
    assert_int_equal(P.data.n_grids, 2);
    assert_int_equal(P.data.image_height, 0);
    assert_true(P.data.image_grid_thw[1][0] == 1 && P.data.image_grid_thw[1][1] == 16 &&
                P.data.image_grid_thw[1][2] == 20);
    assert_true(P.seed == 99);
    assert_int_equal(P.strategy.n_targets, 1);
    assert_string_equal(P.strategy.targets[0], "visual.blocks.3.attn.qkv");
    assert_string_equal(P.name, "my run");
    assert_int_equal(P.checks.inject.enabled, 1);
    assert_int_equal(P.checks.inject.step, 2);
    assert_int_equal(P.checks.inject.phase, ORCH_PHASE_BACKWARD);
    assert_string_equal(P.checks.inject.stage, "visual.merger.mlp.2");
    assert_true(P.loss_scale.init == 65536 && P.loss_scale.dynamic == 1);

    /* the listing shows the overrides */
    char *text = NULL;
    size_t size = 0;
    FILE *out = open_memstream(&text, &size);
    orch_pipeline_print(&P, out);
    fclose(out);
    assert_non_null(strstr(text, "\nstrategy.rank = 16\n"));
    assert_non_null(strstr(text, "\noptimizer.lr = 0.0003\n"));
    assert_non_null(strstr(text, "\noptimizer.betas = {0.9, 0.99}\n"));
    assert_non_null(strstr(text, "\ndata.image_grid_thw = {{1, 24, 24}, {1, 16, 20}}"));
    assert_non_null(strstr(text, "\nprecision = \"bf16\"\n"));
    assert_non_null(strstr(text, "\nchecks.inject.phase = \"backward\"\n"));
    free(text);
    expect_ok(load("pipelines/detach.lua", "strategy.adapter=mlp",
                   "checks.inject={step=0, phase='update', stage='adapter.2', value='inf'}", NULL));
    assert_string_equal(P.checks.inject.stage, "adapter.2");
    assert_int_equal(P.checks.inject.value_is_inf, 1);
}

/* Every strategy may start its trainable tensors from an init file. */
static void test_init_for_every_strategy(void **state)
{
    (void)state;
    const char *files[] = {"pipelines/surgery.lua", "pipelines/detach.lua", "pipelines/lora.lua",
                           "pipelines/base.lua"};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        expect_ok(load(files[i], "strategy.init=tests/oracle/fixtures/init.safetensors", NULL));
        assert_non_null(strstr(P.strategy.init, "tests/oracle/fixtures/init.safetensors"));
    }
    expect_error(load("pipelines/detach.lua", "strategy.init=no-such-file.safetensors", NULL),
                 "no such file");
}

static void test_set_strategy_kind(void **state)
{
    (void)state;
    /* another kind replaces the strategy, as extend() does */
    expect_ok(load("pipelines/lora.lua", "strategy.kind=surgery", NULL));
    assert_int_equal(P.strategy.kind, ORCH_STRATEGY_SURGERY);
    assert_string_equal(P.strategy.replace, "visual.merger.mlp.2");
    expect_ok(load("pipelines/lora.lua", "strategy=detach", "strategy.adapter=mlp", NULL));
    assert_int_equal(P.strategy.kind, ORCH_STRATEGY_DETACH);
    assert_int_equal(P.strategy.adapter, ORCH_ADAPTER_MLP);
    assert_int_equal(P.strategy.adapter_hidden, 24); /* out_hidden_size */
    /* the same kind keeps the options */
    expect_ok(load("pipelines/lora.lua", "strategy.kind=lora", NULL));
    assert_int_equal(P.strategy.rank, 4);
    /* strings: bare or quoted */
    expect_ok(
        load("pipelines/surgery.lua", "strategy.replace=visual.blocks.0.mlp.down_proj", NULL));
    assert_string_equal(P.strategy.replace, "visual.blocks.0.mlp.down_proj");
    expect_ok(load("pipelines/surgery.lua", "model.preset='small'", "data.image_size=112", NULL));
    assert_int_equal(P.model.config.depth, 8);
    assert_int_equal(P.model.config.hidden_size, 128);
    assert_int_equal(P.model.config.intermediate_size, 344);
    assert_int_equal(P.model.config.fullatt_block_indexes[1], 7);
    assert_int_equal(P.data.image_width, 112);
}

static void test_set_errors(void **state)
{
    (void)state;
    static const struct {
        const char *set, *expect;
    } cases[] = {
        {"optimizer.lr=abc",
         "--set optimizer.lr=abc: optimizer.lr must be a number (got string 'abc')"},
        {"optimizer.lr=-1", "--set optimizer.lr=-1: optimizer.lr must be > 0 (got -1)"},
        {"optimizer.lr=1abc", "--set optimizer.lr=1abc: not a valid value (malformed number"},
        {"optimizer.lr={", "--set optimizer.lr={: not a valid value"},
        {"optimiser.lr=1",
         "--set optimiser.lr=1: unknown key 'optimiser' (did you mean 'optimizer'?)"},
        {"optimizer.lrr=1",
         "--set optimizer.lrr=1: unknown key 'optimizer.lrr' (did you mean 'optimizer.lr'?)"},
        {"seed.x=1", "--set seed.x=1: 'seed' is not a table"},
        {"seed", "--set seed: expected KEY=VALUE"},
        {"=1", "--set =1: bad key ''"},
        {"a..b=1", "--set a..b=1: bad key 'a..b'"},
        {"seed=", "--set seed=: empty value"},
        {"seed=-3", "--set seed=-3: seed must be >= 0 (got -3)"},
        {"model.preset=huge", "--set model.preset=huge: model.preset must be one of tiny, small"},
        {"schedule.steps=1e999", "--set schedule.steps=1e999: schedule.steps must be an integer"},
        {"data.image_grid_thw={{24,24,1}}", "--set data.image_grid_thw={{24,24,1}}: give"},
        {"checks.inject={step=0, stage='visual.merger.mlp.22'}",
         "checks.inject.stage = 'visual.merger.mlp.22' is not a stage (did you mean "
         "'visual.merger.mlp.2'?)"},
        {"strategy={kind='detach', hidden=8}",
         "strategy.hidden is not used with adapter = \"linear\""},
        {"optimizer.nesterov=true", "optimizer.nesterov is an option of sgd, not of adamw"},
        {"head.kind=regression", "head.classes is for kind = \"classifier\""},
        {"strategy.rnak=2", "unknown key 'strategy.rnak' (did you mean 'strategy.rank'?)"},
        {"strategy.rank=(\"x\"):rep(1e9)",
         "--set strategy.rank=(\"x\"):rep(1e9): strategy.rank must be an integer (got string"},
        {"tags={(\"x\"):rep(1e9)}",
         "--set tags={(\"x\"):rep(1e9)}: cannot evaluate the value (not enough memory)"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int rc = load("pipelines/lora.lua", cases[i].set, NULL);
        if (rc != ORCH_EINVAL || strstr(E.msg, cases[i].expect) == NULL) {
            print_error("--set %s: expected \"%s\", got rc %d: %s\n", cases[i].set, cases[i].expect,
                        rc, E.msg);
            fail();
        }
    }
    /* the grid check names the --set */
    expect_error(load("pipelines/lora.lua", "data.image_size=nil",
                      "data.image_grid_thw={{1,24,24},{24,24,1}}", NULL),
                 "--set data.image_grid_thw={{1,24,24},{24,24,1}}: data.image_grid_thw[2] = [24, "
                 "24, 1]: the order is [t, h, w]; did you mean [1, 24, 24]?");
}

/* -------------------------------------------------------- bad-input suite */

static void test_bad_case(void **state)
{
    const bad_case *c = *state;
    expect_error(load(c->file, NULL), c->expect);
    assert_int_equal(access("/tmp/orch-sandbox-escape", F_OK), -1);
}

/* ------------------------------------------------------- source locations */

static void test_lines_base_vs_derived(void **state)
{
    const char *dir = *state;
    put(dir, "base.lua",
        "-- base\n"
        "return {\n"                           /* 2 */
        "    model = { preset = \"tiny\" },\n" /* 3 */
        "    data = { samples = 8, classes = 4, image_size = { 16, 16 } },\n"
        "    strategy = lora { rank = 2 },\n" /* 5 */
        "    optimizer = {\n"                 /* 6 */
        "        kind = \"adamw\",\n"         /* 7 */
        "        lr = 1e-3,\n"                /* 8 */
        "    },\n"
        "    schedule = { steps = 4, batch_size = 2 },\n" /* 10 */
        "}\n");
    put(dir, "badbase.lua",
        "return extend(require \"base\", {\n"
        "    optimizer = { weight_decay = -1 },\n" /* 2 */
        "})\n");
    /* a field the derived file does not touch: the base's line */
    const char *p = put(dir, "derived1.lua",
                        "local base = require \"base\"\n"
                        "return extend(base, {\n"
                        "    name = \"d1\",\n"
                        "})\n");
    expect_ok(load(p, NULL));
    char want[700];
    expect_error(load(p, "strategy.rank=0", NULL), "--set strategy.rank=0: strategy.rank must be");
    /* an error in the base's own field */
    const char *q = put(dir, "derived2.lua",
                        "return extend(require \"badbase\", {\n"
                        "    name = \"d2\",\n"
                        "})\n");
    snprintf(want, sizeof want, "%s/badbase.lua:2: optimizer.weight_decay must be >= 0", dir);
    expect_error(load(q, NULL), want);
    /* the derived file overrides the field: its line */
    const char *r = put(dir, "derived3.lua",
                        "return extend(require \"base\", {\n"
                        "    name = \"d3\",\n"
                        "    optimizer = {\n"
                        "        lr = 0,\n" /* 4 */
                        "    },\n"
                        "})\n");
    snprintf(want, sizeof want, "%s/derived3.lua:4: optimizer.lr must be > 0 (got 0)", dir);
    expect_error(load(r, NULL), want);
    /* a nested field set in base, its sibling overridden in derived */
    const char *s = put(dir, "derived4.lua",
                        "return extend(require \"base\", {\n"
                        "    strategy = lora { alpha = 16 },\n"
                        "})\n");
    expect_ok(load(s, NULL));
    assert_int_equal(P.strategy.rank, 2); /* merged: same kind */
    assert_true(P.strategy.alpha == 16);
    const char *s2 = put(dir, "derived5.lua",
                         "return extend(require \"base\", {\n"
                         "    strategy = lora { alpha = -1 },\n" /* 2 */
                         "})\n");
    snprintf(want, sizeof want, "%s/derived5.lua:2: strategy.alpha must be > 0 (got -1)", dir);
    expect_error(load(s2, NULL), want);
    /* a missing nested field: the parent table's line */
    const char *t = put(dir, "nolr.lua",
                        "return {\n"
                        "    model = { preset = \"tiny\" },\n"
                        "    data = { samples = 8, classes = 4, image_size = { 16, 16 } },\n"
                        "    strategy = full {},\n"
                        "    optimizer = { kind = \"sgd\" },\n" /* 5 */
                        "    schedule = { steps = 4, batch_size = 2 },\n"
                        "}\n");
    snprintf(want, sizeof want, "%s/nolr.lua:5: optimizer.lr is required", dir);
    expect_error(load(t, NULL), want);
    /* a missing top-level field: the line of the return */
    const char *u = put(dir, "nosched.lua",
                        "local x = 1\n"
                        "\n"
                        "return {\n" /* 3 */
                        "    model = { preset = \"tiny\" },\n"
                        "    data = { samples = 8, classes = 4, image_size = { 16, 16 } },\n"
                        "    strategy = full {},\n"
                        "    optimizer = { kind = \"sgd\", lr = 0.1 },\n"
                        "}\n");
    snprintf(want, sizeof want, "%s/nosched.lua:3: schedule is required", dir);
    expect_error(load(u, NULL), want);
    /* assignments after the declaration: base.x.y = ... */
    const char *v = put(dir, "assign.lua",
                        "local base = require \"base\"\n"
                        "base.data.image_size = nil\n"
                        "base.data.image_grid_thw = {\n"
                        "    { 1, 4, 4 },\n"
                        "    { 1, 6, 3 },\n" /* 5 */
                        "}\n"
                        "base.optimizer.lr = 1e-2\n"
                        "return base\n");
    snprintf(want, sizeof want, "%s/assign.lua:5: data.image_grid_thw[2] = [1, 6, 3]: w = 3", dir);
    expect_error(load(v, NULL), want);
}

typedef struct seen {
    char text[4096];
} seen;

static void collect(const char *path, int line, void *ud)
{
    seen *s = ud;
    size_t len = strlen(s->text);
    snprintf(s->text + len, sizeof s->text - len, "%s@%d ", path ? path : "return", line);
}

static void test_locator_scan(void **state)
{
    (void)state;
    static const char src[] = "-- a comment with model = { x = 1 }\n"                /* 1 */
                              "local s = [[ text with lr = 3\n"                      /* 2 */
                              "]] --[==[ long comment\n"                             /* 3 */
                              "a = { b = 1 } ]==]\n"                                 /* 4 */
                              "return extend(base, {\n"                              /* 5 */
                              "    optimizer = { lr = \"}\", betas = { 0.9,\n"       /* 6 */
                              "        0.99 } },\n"                                  /* 7 */
                              "    strategy = lora { rank = 4, [\"alpha\"] = 2 },\n" /* 8 */
                              "    model = extend(base.model, { depth = 2 }),\n"     /* 9 */
                              "    tags = { 'a', f(x), { t = 1 } },\n"               /* 10 */
                              "    [k] = { z = 1 },\n"                               /* 11 */
                              "    cond = x == 1 and { p = 1 } or { q = 2 },\n"      /* 12 */
                              "})\n";
    seen s = {""};
    dsl_loc_scan(src, sizeof src - 1, collect, &s);
    assert_string_equal(s.text, "return@5 optimizer@6 optimizer.lr@6 optimizer.betas@6 "
                                "optimizer.betas[1]@6 optimizer.betas[2]@7 strategy@8 "
                                "strategy.rank@8 strategy.alpha@8 model@9 model.depth@9 tags@10 "
                                "tags[1]@10 tags[2]@10 tags[3]@10 tags[3].t@10 cond@12 "
                                "cond.p@12 cond.q@12 ");
}

static void test_suggest(void **state)
{
    (void)state;
    assert_int_equal(dsl_edit_distance("optimiser", "optimizer"), 1);
    assert_int_equal(dsl_edit_distance("", "abc"), 3);
    assert_int_equal(dsl_edit_distance("kitten", "sitting"), 3);
    static const char *const keys[] = {"model", "data", "optimizer", "schedule"};
    assert_string_equal(dsl_nearest("optimiser", keys, 4), "optimizer");
    assert_string_equal(dsl_nearest("modle", keys, 4), "model");
    assert_null(dsl_nearest("zzzzzzzz", keys, 4));
}

/* ------------------------------------------------ composition and prelude */

static void test_extend_and_constructors(void **state)
{
    const char *dir = *state;
    const char *p = put(
        dir, "prelude.lua",
        "local a = { x = { y = 1, z = 2 }, list = { 1, 2, 3 }, keep = 'k' }\n"
        "local b = extend(a, { x = { y = 10 }, list = { 9 } })\n"
        "assert(b.x.y == 10 and b.x.z == 2, 'nested tables merge')\n"
        "assert(#b.list == 1 and b.list[1] == 9, 'lists replace')\n"
        "assert(b.keep == 'k' and a.x.y == 1 and b ~= a and b.x ~= a.x, 'new tables')\n"
        "local c = extend(a, { list = {} }, { x = { w = 5 } })\n"
        "assert(#c.list == 0 and c.x.w == 5 and c.x.y == 1, 'empty list clears; several "
        "overrides')\n"
        "local l = lora { rank = 4 }\n"
        "assert(l.kind == 'lora' and l.rank == 4 and l.alpha == 8 and l.dropout == 0)\n"
        "assert(l.targets[1] == 'visual.merger.mlp.0' and rawget(l, 'alpha') == nil)\n"
        "local m = extend({ s = l }, { s = lora { alpha = 32 } })\n"
        "assert(m.s.rank == 4 and m.s.alpha == 32, 'same kind merges explicit options')\n"
        "local n = extend({ s = l }, { s = surgery {} })\n"
        "assert(n.s.kind == 'surgery' and rawget(n.s, 'rank') == nil, 'another kind replaces')\n"
        "assert(n.s.replace == 'visual.merger.mlp.2' and detach().adapter == 'linear')\n"
        "assert(full{}.kind == 'full')\n"
        "local u = extend({ d = { a = 1, b = 2 } }, { d = { a = unset } })\n"
        "assert(u.d.a == nil and u.d.b == 2, 'unset removes')\n"
        "assert(not pcall(lora, 5) and not pcall(lora, { kind = 'detach' }))\n"
        "assert(tostring(unset) == 'unset')\n"
        "assert(load('return 1 + 1')() == 2, 'text chunks load')\n"
        "assert(string.format('%d', 3) == '3' and utf8.char(72) == 'H' and table.concat({1, "
        "2}) == '12')\n"
        "local ok = pcall(error, 'caught')\n"
        "assert(not ok, 'pcall works')\n"
        "return {\n" FLAT_BODY "    strategy = { kind = 'lora', rank = 3 },\n"
        "}\n");
    expect_ok(load(p, NULL));
    /* a plain table with kind gets the constructor's defaults */
    assert_int_equal(P.strategy.kind, ORCH_STRATEGY_LORA);
    assert_int_equal(P.strategy.rank, 3);
    assert_true(P.strategy.alpha == 8.0);
    assert_int_equal(P.strategy.n_targets, 2);
    /* shorthands */
    const char *q = put(dir, "short.lua",
                        "return {\n" FLAT_BODY "    model = 'small',\n"
                        "    data = { samples = 8, classes = 4, image_size = 56 },\n"
                        "    strategy = 'surgery',\n"
                        "    head = 'classifier',\n"
                        "}\n");
    expect_ok(load(q, NULL));
    assert_int_equal(P.model.config.depth, 8);
    assert_int_equal(P.strategy.kind, ORCH_STRATEGY_SURGERY);
    /* math.random is seeded: two loads agree */
    const char *r = put(dir, "random.lua",
                        "local t = {\n" FLAT_BODY "}\n"
                        "t.seed = math.random(1, 1000000)\n"
                        "return t\n");
    expect_ok(load(r, NULL));
    uint64_t first = P.seed;
    expect_ok(load(r, NULL));
    assert_true(P.seed == first);
}

static void test_explicit_model_and_defaults(void **state)
{
    const char *dir = *state;
    const char *p = put(dir, "explicit.lua",
                        "return {\n"
                        "    model = { depth = 2, hidden_size = 16, num_heads = 2,\n"
                        "              intermediate_size = 24, patch_size = 2,\n"
                        "              temporal_patch_size = 1, in_channels = 1,\n"
                        "              spatial_merge_size = 2, window_size = 8,\n"
                        "              out_hidden_size = 8, fullatt_block_indexes = { 1, 0 } },\n"
                        "    data = { samples = 4, image_grid_thw = { 2, 4, 6 } },\n"
                        "    strategy = full {},\n"
                        "    head = { kind = 'regression', outputs = 3 },\n"
                        "    optimizer = { kind = 'sgd', lr = 0.5, momentum = 0.9, nesterov = "
                        "true },\n"
                        "    schedule = { steps = 1, batch_size = 4 },\n"
                        "    checkpoint = true,\n"
                        "}\n");
    expect_ok(load(p, NULL));
    assert_string_equal(P.model.preset, "");
    assert_int_equal(P.model.config.in_channels, 1);
    assert_int_equal(P.model.config.fullatt_block_indexes[0], 0); /* sorted */
    assert_int_equal(P.model.config.fullatt_block_indexes[1], 1);
    assert_int_equal(P.data.n_grids, 1);
    assert_true(P.data.image_grid_thw[0][0] == 2);
    assert_int_equal(P.data.n_classes, 0);
    assert_int_equal(P.head.kind, ORCH_HEAD_REGRESSION);
    assert_int_equal(P.head.n_outputs, 3);
    assert_int_equal(P.loss, ORCH_LOSS_MSE);
    assert_true(P.optimizer.weight_decay == 0.0 && P.optimizer.momentum == 0.9);
    assert_int_equal(P.optimizer.nesterov, 1);
    assert_int_equal(P.checkpoint, 1);
    assert_string_equal(P.name, "explicit");
    assert_true(P.seed == 0);
    assert_int_equal(P.checks.nan, 1);
    assert_int_equal(P.checks.frozen, 0);
    /* without a preset every field is required */
    const char *q =
        put(dir, "partial.lua", "return {\n" FLAT_BODY "    model = { depth = 2 },\n}\n");
    expect_error(load(q, NULL), "partial.lua:7: model.hidden_size is required when model.preset "
                                "is not given");
}

/* ------------------------------------------------------------ file names */

static void test_relative_files(void **state)
{
    const char *dir = *state;
    char sub[600], want[700];
    snprintf(sub, sizeof sub, "%s/sub", dir);
    assert_int_equal(mkdir(sub, 0755), 0);
    put(dir, "sub/w.safetensors", "x");
    put(dir, "sub/px.npy", "x");
    put(dir, "sub/grid.npy", "x");
    put(dir, "sub/labels.npy", "x");
    const char *p =
        put(dir, "sub/weights.lua",
            "return {\n" FLAT_BODY "    model = { preset = 'tiny', weights = 'w.safetensors' },\n"
            "    strategy = surgery { init = 'w.safetensors' },\n"
            "}\n");
    expect_ok(load(p, NULL));
    snprintf(want, sizeof want, "%s/sub/w.safetensors", dir);
    assert_string_equal(P.model.weights, want);
    assert_string_equal(P.strategy.init, want);
    /* --set names are taken from the current directory */
    char set[700];
    snprintf(set, sizeof set, "model.weights=%s/sub/w.safetensors", dir);
    expect_ok(load(p, set, NULL));
    assert_string_equal(P.model.weights, want);
    expect_error(load(p, "model.weights=w.safetensors", NULL),
                 "--set model.weights=w.safetensors: model.weights: no such file 'w.safetensors'");
    /* npy data, and a base in the parent directory cannot be required */
    const char *q = put(dir, "sub/npy.lua",
                        "local t = {\n" FLAT_BODY "}\n"
                        "t.data = { source = 'npy', pixel_values = 'px.npy', image_grid_thw = "
                        "'grid.npy', labels = 'labels.npy', classes = 3 }\n"
                        "return t\n");
    expect_ok(load(q, NULL));
    assert_int_equal(P.data.source, ORCH_DATA_NPY);
    snprintf(want, sizeof want, "%s/sub/grid.npy", dir);
    assert_string_equal(P.data.grid_thw_path, want);
    assert_int_equal(P.head.n_outputs, 3);
    expect_error(load(q, "data.samples=3", NULL), "--set data.samples=3: data.samples is not used "
                                                  "with source = \"npy\"");
    expect_error(load(q, "data.labels=nope.npy", NULL),
                 "--set data.labels=nope.npy: data.labels: no such file 'nope.npy'");
}

static void test_require_rules(void **state)
{
    const char *dir = *state;
    char sub[600], link[700], want[800];
    snprintf(sub, sizeof sub, "%s/p", dir);
    assert_int_equal(mkdir(sub, 0755), 0);
    put(dir, "outside.lua", "return { }\n");
    snprintf(link, sizeof link, "%s/p/escape.lua", dir);
    assert_int_equal(symlink("../outside.lua", link), 0);
    const char *p = put(dir, "p/main.lua", "return require 'escape'\n");
    expect_error(load(p, NULL), "main.lua:1: require \"escape\": outside the pipeline search path");
    /* ORCH_PIPELINE_PATH adds directories */
    put(dir, "common.lua", "return {\n" FLAT_BODY "}\n");
    const char *q = put(dir, "p/viaenv.lua",
                        "local a = require 'common'\n"
                        "local b = require 'common'\n"
                        "assert(a == b, 'modules run once')\n"
                        "return a\n");
    expect_error(load(q, NULL), "no file common.lua in the pipeline search path");
    setenv("ORCH_PIPELINE_PATH", dir, 1);
    expect_ok(load(q, NULL));
    char path[1200];
    assert_int_equal(orch_dsl_search_path(q, path, sizeof path), 0);
    snprintf(want, sizeof want, "%s/p:%s", dir, dir);
    assert_string_equal(path, want);
    unsetenv("ORCH_PIPELINE_PATH");
    /* cycles, suffixes, std libraries */
    put(dir, "p/c1.lua", "return require 'c2'\n");
    put(dir, "p/c2.lua", "return require 'c1'\n");
    const char *r = put(dir, "p/cycle.lua", "return require 'c1'\n");
    expect_error(load(r, NULL), "c2.lua:1: require \"c1\": circular require");
    const char *s = put(dir, "p/suffix.lua", "return require 'c1.lua'\n");
    expect_error(load(s, NULL), "require \"c1.lua\": give the module name without \".lua\"");
    const char *t = put(dir, "p/std.lua", "return require 'os'\n");
    expect_error(load(t, NULL), "std.lua:1: require \"os\": 'os' is not available in pipelines");
    /* a subdirectory through a dotted name */
    snprintf(sub, sizeof sub, "%s/p/lib", dir);
    assert_int_equal(mkdir(sub, 0755), 0);
    put(dir, "p/lib/base.lua", "return {\n" FLAT_BODY "}\n");
    const char *u = put(dir, "p/dotted.lua", "return require 'lib.base'\n");
    expect_ok(load(u, NULL));
}

static void test_files_and_limits(void **state)
{
    const char *dir = *state;
    expect_error(load("pipelines/no-such-file.lua", NULL),
                 "pipelines/no-such-file.lua: cannot read the pipeline file (No such file or "
                 "directory)");
    char path[600];
    snprintf(path, sizeof path, "%s/compiled.lua", dir);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    fwrite("\x1bLua\x54\x00", 1, 6, f);
    fclose(f);
    expect_error(load(path, NULL), "compiled.lua: binary chunks (bytecode) are not allowed");
    /* print goes to stderr, a #! line is skipped, lines still count */
    const char *p = put(dir, "shebang.lua",
                        "#!/usr/bin/env orch\n"
                        "return {\n" FLAT_BODY "    seed = -1,\n}\n");
    expect_error(load(p, NULL), "shebang.lua:8: seed must be >= 0 (got -1)");
    /* an error inside a chunk made by load() still names the pipeline line */
    const char *q = put(dir, "loaded.lua",
                        "local f = load('return nil + 1')\n"
                        "local x = f()\n"
                        "return x\n");
    expect_error(load(q, NULL), "loaded.lua:2: [string \"return nil + 1\"]:1: attempt to "
                                "perform arithmetic on a nil value");
    /* error("...", 0) gets the line where it was raised */
    const char *r = put(dir, "level0.lua", "\nerror('plain', 0)\n");
    expect_error(load(r, NULL), "level0.lua:2: plain");
    /* a long path: Lua shortens chunk names to 60 bytes, orch gives them whole */
    char deep[700];
    snprintf(deep, sizeof deep, "%s/a-directory-with-a-rather-long-name-to-pass-lua-idsize", dir);
    assert_int_equal(mkdir(deep, 0755), 0);
    const char *w = put(dir, "a-directory-with-a-rather-long-name-to-pass-lua-idsize/long.lua",
                        "local t = {}\nreturn t.x.y\n");
    char want[800];
    snprintf(want, sizeof want, "%s:2: attempt to index a nil value (field 'x')", w);
    expect_error(load(w, NULL), want);
    assert_int_equal(strncmp(E.msg, w, strlen(w)), 0);
    /* strings are UTF-8 (JSON and the store need it) */
    const char *u = put(dir, "utf8.lua", "return {\n" FLAT_BODY "    name = '\\255',\n}\n");
    expect_error(load(u, NULL), "utf8.lua:7: name must be valid UTF-8 text");
    const char *v = put(dir, "utf8ok.lua", "return {\n" FLAT_BODY "    name = 'caf\xc3\xa9',\n}\n");
    expect_ok(load(v, NULL));
    assert_string_equal(P.name, "caf\xc3\xa9");
}

/* ---------------------------------------------------------- JSON and hash */

static void test_json(void **state)
{
    (void)state;
    expect_ok(load("pipelines/lora.lua", NULL));
    char *text = orch_pipeline_to_json(&P, 1);
    assert_non_null(text);
    json_error_t jerr;
    json_t *root = json_loads(text, 0, &jerr);
    assert_non_null(root);
    assert_string_equal(json_string_value(json_object_get(root, "name")), "lora");
    assert_string_equal(json_string_value(json_object_get(root, "precision")), "fp32");
    json_t *opt = json_object_get(root, "optimizer");
    assert_true(json_real_value(json_object_get(opt, "lr")) == 1e-3);
    assert_string_equal(json_string_value(json_object_get(opt, "kind")), "adamw");
    json_t *st = json_object_get(root, "strategy");
    assert_int_equal(json_integer_value(json_object_get(st, "rank")), 4);
    assert_int_equal(json_array_size(json_object_get(st, "targets")), 2);
    assert_true(json_is_null(json_object_get(json_object_get(root, "checks"), "inject")));
    assert_int_equal(json_array_size(json_object_get(root, "tags")), 2);
    char hash[65];
    assert_int_equal(orch_pipeline_hash(&P, hash), ORCH_OK);
    assert_int_equal(strlen(hash), 64);
    assert_string_equal(json_string_value(json_object_get(root, "config_hash")), hash);
    json_decref(root);
    free(text);

    /* compact and canonical: sorted keys, no spaces */
    text = orch_pipeline_to_json(&P, 0);
    assert_non_null(text);
    assert_null(strchr(text, '\n'));
    assert_true(strncmp(text, "{\"checkpoint\":false,\"checks\":", 29) == 0);
    free(text);
    text = orch_pipeline_config_json(&P);
    assert_null(strstr(text, "\"name\""));
    assert_null(strstr(text, "\"tags\""));
    assert_null(strstr(text, "\"path\""));
    assert_non_null(strstr(text, "\"lr\":0.001,"));
    free(text);
}

static void test_hash_ignores_form(void **state)
{
    const char *dir = *state;
    char h1[65], h2[65], h3[65];
    expect_ok(load("pipelines/lora.lua", NULL));
    assert_int_equal(orch_pipeline_hash(&P, h1), ORCH_OK);
    /* the same configuration, flat, reordered, renamed, retagged */
    const char *p = put(dir, "flat.lua",
                        "return { tags = { 'other' }, name = 'x',\n"
                        "  seed = 1234, precision = 'fp32',\n"
                        "  checks = { stats_every = 10, frozen = true },\n"
                        "  schedule = { warmup_steps = 3, batch_size = 4, steps = 30 },\n"
                        "  optimizer = { grad_clip = 1, lr = 0.001, kind = 'adamw' },\n"
                        "  strategy = { kind = 'lora', rank = 4 },\n"
                        "  head = { classes = 4 },\n"
                        "  data = { image_size = 56, classes = 4, samples = 64 },\n"
                        "  model = 'tiny' }\n");
    expect_ok(load(p, NULL));
    assert_int_equal(orch_pipeline_hash(&P, h2), ORCH_OK);
    assert_string_equal(h1, h2);
    expect_ok(load(p, "optimizer.lr=0.002", NULL));
    assert_int_equal(orch_pipeline_hash(&P, h3), ORCH_OK);
    assert_string_not_equal(h1, h3);
}

static void test_print(void **state)
{
    (void)state;
    expect_ok(load("pipelines/detach.lua", NULL));
    char *text = NULL;
    size_t size = 0;
    FILE *out = open_memstream(&text, &size);
    orch_pipeline_print(&P, out);
    fclose(out);
    static const char *const lines[] = {
        "-- pipeline pipelines/detach.lua\n",
        "-- config hash ",
        "\nname = \"detach\"\n",
        "\nmodel.preset = \"tiny\"\n",
        "\nmodel.fullatt_block_indexes = {1, 3}\n",
        "\ndata.image_size = {56, 56}",
        "\nstrategy.kind = \"detach\"\n",
        "\nstrategy.adapter = \"linear\"\n",
        "\nhead.classes = 4\n",
        "\nloss = \"cross_entropy\"\n",
        "\noptimizer.eps = 1e-08\n",
        "\nschedule.steps = 30\n",
        "\nseed = 1234\n",
        "\nchecks.on_nan = \"abort\"\n",
    };
    for (size_t i = 0; i < sizeof lines / sizeof lines[0]; i++)
        if (strstr(text, lines[i]) == NULL) {
            print_error("missing \"%s\" in:\n%s\n", lines[i], text);
            fail();
        }
    assert_null(strstr(text, "strategy.rank")); /* another kind's options are left out */
    free(text);
}

int main(void)
{
    static struct CMUnitTest tests[64 + N_BAD_CASES];
    const struct CMUnitTest fixed[] = {
        cmocka_unit_test(test_base_fields),
        cmocka_unit_test(test_shipped_strategies),
        cmocka_unit_test(test_every_shipped_pipeline),
        cmocka_unit_test(test_set_overrides),
        cmocka_unit_test(test_init_for_every_strategy),
        cmocka_unit_test(test_set_strategy_kind),
        cmocka_unit_test(test_set_errors),
        cmocka_unit_test_setup_teardown(test_lines_base_vs_derived, tmp_setup, tmp_teardown),
        cmocka_unit_test(test_locator_scan),
        cmocka_unit_test(test_suggest),
        cmocka_unit_test_setup_teardown(test_extend_and_constructors, tmp_setup, tmp_teardown),
        cmocka_unit_test_setup_teardown(test_explicit_model_and_defaults, tmp_setup, tmp_teardown),
        cmocka_unit_test_setup_teardown(test_relative_files, tmp_setup, tmp_teardown),
        cmocka_unit_test_setup_teardown(test_require_rules, tmp_setup, tmp_teardown),
        cmocka_unit_test_setup_teardown(test_files_and_limits, tmp_setup, tmp_teardown),
        cmocka_unit_test(test_json),
        cmocka_unit_test_setup_teardown(test_hash_ignores_form, tmp_setup, tmp_teardown),
        cmocka_unit_test(test_print),
    };
    size_t n = sizeof fixed / sizeof fixed[0];
    memcpy(tests, fixed, sizeof fixed);
    for (size_t i = 0; i < N_BAD_CASES; i++) {
        const char *name = strrchr(bad_cases[i].file, '/');
        tests[n].name = name ? name + 1 : bad_cases[i].file;
        tests[n].test_func = test_bad_case;
        tests[n].setup_func = NULL;
        tests[n].teardown_func = NULL;
        tests[n].initial_state = (void *)&bad_cases[i];
        n++;
    }
    unlink("/tmp/orch-sandbox-escape");
    return _cmocka_run_group_tests("lua dsl", tests, n, NULL, NULL);
}
