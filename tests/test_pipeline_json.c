/*
 * test_pipeline_json.c - the resolved pipeline's JSON read back
 * (orch_pipeline_from_json, what `orch resume` rebuilds a run from), exact
 * reals, and the config hash: stable across the Lua's form, sensitive to
 * values, blind to path, name and tags.
 *
 * Round trips compare structs with memcmp after normalize(): the loader
 * may leave bytes after a string's NUL (a default overwritten by a shorter
 * value) and entries past a list's count (a preset's list overridden by a
 * shorter one), which no reader can or should reproduce. Both structs are
 * static or memset, so their padding is zero.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "core/pipeline.h"
#include "core/pipeline_json.h"
#include "lua/dsl.h"
#include "tests/testutil.h"

/* large: keep them off the stack */
static orch_pipeline P, Q, A, B;
static orch_err E;

/* ------------------------------------------------------------ helpers */

static int load_into(orch_pipeline *out, const char *path, const char *const *sets)
{
    int n = 0;
    while (sets != NULL && sets[n] != NULL)
        n++;
    int rc = orch_dsl_load(path, sets, n, out, &E);
    if (rc != ORCH_OK)
        print_error("orch_dsl_load(%s) failed: %s\n", path, E.msg);
    return rc;
}

/* Zeroes what a round trip cannot carry: bytes after each string's NUL and
 * list entries past their count. */
static void scrub(char *s, size_t n)
{
    size_t len = strnlen(s, n);
    if (len < n)
        memset(s + len, 0, n - len);
}

static void normalize(orch_pipeline *p)
{
    scrub(p->path, sizeof p->path);
    scrub(p->name, sizeof p->name);
    for (int i = 0; i < ORCH_MAX_TAGS; i++) {
        if (i < p->n_tags)
            scrub(p->tags[i], sizeof p->tags[i]);
        else
            memset(p->tags[i], 0, sizeof p->tags[i]);
    }
    orch_model_config *c = &p->model.config;
    scrub(p->model.preset, sizeof p->model.preset);
    scrub(p->model.weights, sizeof p->model.weights);
    for (int i = c->n_fullatt; i < ORCH_MAX_FULLATT; i++)
        c->fullatt_block_indexes[i] = 0;
    orch_data *d = &p->data;
    for (int i = d->n_grids; i < ORCH_MAX_IMAGES; i++)
        memset(d->image_grid_thw[i], 0, sizeof d->image_grid_thw[i]);
    scrub(d->pixel_values, sizeof d->pixel_values);
    scrub(d->grid_thw_path, sizeof d->grid_thw_path);
    scrub(d->labels, sizeof d->labels);
    scrub(d->dir, sizeof d->dir);
    for (int i = 0; i < ORCH_MAX_SHARDS; i++) {
        if (i < d->n_shards)
            scrub(d->shards[i], sizeof d->shards[i]);
        else
            memset(d->shards[i], 0, sizeof d->shards[i]);
    }
    orch_data *e = &p->eval.data;
    for (int i = e->n_grids; i < ORCH_MAX_IMAGES; i++)
        memset(e->image_grid_thw[i], 0, sizeof e->image_grid_thw[i]);
    scrub(e->pixel_values, sizeof e->pixel_values);
    scrub(e->grid_thw_path, sizeof e->grid_thw_path);
    scrub(e->labels, sizeof e->labels);
    scrub(e->dir, sizeof e->dir);
    for (int i = 0; i < ORCH_MAX_SHARDS; i++) {
        if (i < e->n_shards)
            scrub(e->shards[i], sizeof e->shards[i]);
        else
            memset(e->shards[i], 0, sizeof e->shards[i]);
    }
    scrub(p->schedule.stop.metric, sizeof p->schedule.stop.metric);
    orch_strategy *s = &p->strategy;
    scrub(s->replace, sizeof s->replace);
    scrub(s->init, sizeof s->init);
    for (int i = 0; i < ORCH_MAX_TARGETS; i++) {
        if (i < s->n_targets)
            scrub(s->targets[i], sizeof s->targets[i]);
        else
            memset(s->targets[i], 0, sizeof s->targets[i]);
    }
    scrub(p->checks.inject.stage, sizeof p->checks.inject.stage);
    scrub(p->checks.inject.tensor, sizeof p->checks.inject.tensor);
}

/* memcmp of a and b, printing the first differing byte offset. */
static void assert_same_struct(const orch_pipeline *a, const orch_pipeline *b, const char *label)
{
    if (memcmp(a, b, sizeof *a) == 0)
        return;
    const unsigned char *x = (const unsigned char *)a, *y = (const unsigned char *)b;
    size_t i = 0;
    while (x[i] == y[i])
        i++;
    print_error("%s: the structs differ first at byte %zu of %zu\n", label, i, sizeof *a);
    fail();
}

/* src -> JSON (compact and pretty) -> Q -> JSON: the texts, the hashes and
 * the (normalized) structs must all be equal. */
static void round_trip(const orch_pipeline *src, const char *label)
{
    char *text = orch_pipeline_to_json(src, 0);
    char *pretty = orch_pipeline_to_json(src, 1);
    assert_non_null(text);
    assert_non_null(pretty);

    memset(&Q, 0xA5, sizeof Q); /* from_json must zero it */
    if (orch_pipeline_from_json(text, &Q, &E) != ORCH_OK) {
        print_error("%s: orch_pipeline_from_json failed: %s\n", label, E.msg);
        fail();
    }
    assert_int_equal(E.code, ORCH_OK);
    char *again = orch_pipeline_to_json(&Q, 0);
    assert_non_null(again);
    if (strcmp(text, again) != 0) {
        print_error("%s: JSON changed in a round trip:\n%s\n%s\n", label, text, again);
        fail();
    }
    char h1[65], h2[65];
    assert_int_equal(orch_pipeline_hash(src, h1), ORCH_OK);
    assert_int_equal(orch_pipeline_hash(&Q, h2), ORCH_OK);
    assert_string_equal(h1, h2);

    memcpy(&A, src, sizeof A);
    normalize(&A);
    memcpy(&B, &Q, sizeof B);
    normalize(&B);
    assert_same_struct(&B, &Q, label); /* from_json's output is normal already */
    assert_same_struct(&A, &B, label);

    /* the pretty form reads back to the same struct */
    memset(&B, 0x5A, sizeof B);
    assert_int_equal(orch_pipeline_from_json(pretty, &B, &E), ORCH_OK);
    assert_same_struct(&B, &Q, label);

    free(text);
    free(pretty);
    free(again);
}

static void round_trip_file(const char *path, const char *const *sets)
{
    assert_int_equal(load_into(&P, path, sets), ORCH_OK);
    char label[256];
    snprintf(label, sizeof label, "%s%s%s", path, sets ? " --set " : "", sets ? sets[0] : "");
    round_trip(&P, label);
}

static int is_zero(const orch_pipeline *p)
{
    static const orch_pipeline zero;
    return memcmp(p, &zero, sizeof zero) == 0;
}

static void write_file(const char *dir, const char *name, const char *text, char *path, size_t n)
{
    snprintf(path, n, "%s/%s", dir, name);
    assert_int_equal(write_text_file(path, text), 0);
}

static int tmp_setup(void **state)
{
    static char dir[256];
    if (make_temp_dir(dir, sizeof dir) == NULL)
        return -1;
    *state = dir;
    return 0;
}

static int tmp_teardown(void **state)
{
    remove_tree(*state);
    return 0;
}

/* --------------------------------------------------------- round trips */

static void test_round_trip_shipped(void **state)
{
    (void)state;
    static const char *const files[] = {"pipelines/base.lua", "pipelines/surgery.lua",
                                        "pipelines/detach.lua", "pipelines/lora.lua",
                                        "pipelines/nan-repro.lua"};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++)
        round_trip_file(files[i], NULL);
}

static void test_round_trip_overrides(void **state)
{
    (void)state;
    static const char *const fp16[] = {"precision=fp16", "loss_scale.init=65536",
                                       "loss_scale.dynamic=true", "loss_scale.growth_interval=7",
                                       NULL};
    static const char *const inject[] = {"checks.inject={step=1, phase='backward', stage='head'}",
                                         "checks.on_nan=skip_update", "checks.stats_every=5", NULL};
    static const char *const inject_inf[] = {
        "strategy.adapter=mlp",
        "checks.inject={step=0, phase='update', stage='adapter.2', tensor='x', value='inf'}", NULL};
    static const char *const lora[] = {"strategy.kind=lora",
                                       "strategy.dropout=0.1",
                                       "strategy.rank=16",
                                       "strategy.alpha=0.5",
                                       "strategy.targets={'visual.blocks.3.attn.qkv', "
                                       "'visual.blocks.0.mlp.down_proj', 'visual.merger.mlp.0'}",
                                       NULL};
    static const char *const weights[] = {"model.weights=tests/oracle/fixtures/weights.safetensors",
                                          "model.fullatt_block_indexes={2}", /* shorter than the
                                                                                preset's {1, 3} */
                                          NULL};
    static const char *const surgery[] = {"strategy.kind=surgery",
                                          "strategy.replace=visual.blocks.0.attn.qkv",
                                          "strategy.init=tests/oracle/fixtures/init.safetensors",
                                          "strategy.grad_through_frozen=true", NULL};
    static const char *const npy[] = {
        "data.source=npy",
        "data.samples=nil",
        "data.image_size=nil",
        "data.pixel_values=tests/oracle/fixtures/pixel_values.npy",
        "data.image_grid_thw=tests/oracle/fixtures/image_grid_thw.npy",
        "data.labels=tests/oracle/fixtures/labels.npy",
        NULL};
    static const char *const grids[] = {"data.image_size=nil",
                                        "data.image_grid_thw={{1,24,24},{1,16,20},{2,4,6}}", NULL};
    static const char *const sgd[] = {"optimizer={kind='sgd', lr=0.05, momentum=0.9, "
                                      "nesterov=true, weight_decay=1e-4, grad_clip=0.5}",
                                      NULL};
    static const char *const regression[] = {"head={kind='regression', outputs=3}",
                                             "data.classes=nil", "loss=mse", NULL};
    static const char *const misc[] = {"seed=9223372036854775807",
                                       "checkpoint=true",
                                       "schedule.checkpoint_every=10",
                                       "schedule.warmup_steps=0",
                                       "name=my run",
                                       "tags={'a', 'caf\xc3\xa9', \"with \\\"quotes\\\"\"}",
                                       "model.initializer_range=0.7",
                                       "checks={nan=false, frozen=false}",
                                       NULL};
    static const char *const untagged[] = {"tags={}", NULL};
    round_trip_file("pipelines/nan-repro.lua", fp16);
    round_trip_file("pipelines/base.lua", inject);
    round_trip_file("pipelines/detach.lua", inject_inf);
    round_trip_file("pipelines/surgery.lua", lora);
    round_trip_file("pipelines/lora.lua", weights);
    round_trip_file("pipelines/base.lua", surgery);
    round_trip_file("pipelines/lora.lua", npy);
    round_trip_file("pipelines/base.lua", grids);
    round_trip_file("pipelines/base.lua", sgd);
    round_trip_file("pipelines/base.lua", regression);
    round_trip_file("pipelines/lora.lua", misc);
    round_trip_file("pipelines/base.lua", untagged);

    /* the overrides took effect (so the round trips above covered them) */
    assert_int_equal(load_into(&P, "pipelines/lora.lua", npy), ORCH_OK);
    assert_int_equal(P.data.source, ORCH_DATA_NPY);
    assert_string_equal(P.data.grid_thw_path, "tests/oracle/fixtures/image_grid_thw.npy");
    assert_int_equal(load_into(&P, "pipelines/lora.lua", weights), ORCH_OK);
    assert_string_equal(P.model.weights, "tests/oracle/fixtures/weights.safetensors");
    assert_int_equal(P.model.config.n_fullatt, 1);
    assert_int_equal(load_into(&P, "pipelines/lora.lua", misc), ORCH_OK);
    assert_true(P.seed == 9223372036854775807ULL);
    assert_int_equal(P.schedule.checkpoint_every, 10);
    assert_int_equal(load_into(&P, "pipelines/base.lua", inject), ORCH_OK);
    assert_int_equal(P.checks.inject.enabled, 1);
    assert_string_equal(P.checks.inject.stage, "head");
}

/* Every field set to something other than its zero or default, including
 * the reals that need 17 digits, subnormals, -0 and the largest double. */
static void test_round_trip_every_field(void **state)
{
    (void)state;
    for (int kind = ORCH_STRATEGY_SURGERY; kind <= ORCH_STRATEGY_FULL; kind++) {
        tiny_pipeline(&P, (orch_strategy_kind)kind);
        snprintf(P.model.weights, sizeof P.model.weights, "w.safetensors");
        P.model.config.initializer_range = 0.1 + 0.2; /* 0.30000000000000004 */
        snprintf(P.strategy.init, sizeof P.strategy.init, "init.safetensors");
        P.strategy.grad_through_frozen = 1;
        P.strategy.adapter = ORCH_ADAPTER_MLP;
        P.strategy.adapter_hidden = 17;
        P.strategy.alpha = 1.0 / 3.0;
        P.strategy.dropout = nextafter(0.1, 1.0);
        P.data.n_grids = 2;
        P.data.image_grid_thw[0][0] = 1;
        P.data.image_grid_thw[0][1] = 4;
        P.data.image_grid_thw[0][2] = 6;
        P.data.image_grid_thw[1][0] = 2;
        P.data.image_grid_thw[1][1] = 4194304;
        P.data.image_grid_thw[1][2] = 2;
        P.optimizer.kind = kind % 2 ? ORCH_OPT_SGD : ORCH_OPT_ADAMW;
        P.optimizer.lr = nextafter(1e-3, 0.0);
        P.optimizer.momentum = -0.0;
        P.optimizer.nesterov = 1;
        P.optimizer.beta1 = 0.9;
        P.optimizer.beta2 = nextafter(0.999, 1.0);
        P.optimizer.eps = 4.9406564584124654e-324; /* the smallest subnormal */
        P.optimizer.weight_decay = DBL_MIN;
        P.optimizer.grad_clip = DBL_MAX;
        P.schedule.warmup_steps = 1;
        P.schedule.checkpoint_every = 2;
        P.parallel.data = 3; /* written only when > 1 */
        P.schedule.grad_accum = 3;
        P.precision = ORCH_BF16;
        P.loss_scale.init = 65536;
        P.loss_scale.dynamic = 1;
        P.loss_scale.growth_interval = 3;
        P.checkpoint = 1;
        P.seed = UINT64_C(0x7fffffffffffffff);
        P.checks.nan = 0;
        P.checks.frozen = 1;
        P.checks.on_nan = ORCH_ON_NAN_CONTINUE;
        P.checks.stats_every = 4;
        P.checks.inject.enabled = 1;
        P.checks.inject.step = 2;
        P.checks.inject.phase = ORCH_PHASE_UPDATE;
        snprintf(P.checks.inject.stage, sizeof P.checks.inject.stage, "visual.merger.mlp.2");
        snprintf(P.checks.inject.tensor, sizeof P.checks.inject.tensor, "grad");
        P.checks.inject.value_is_inf = 1;
        P.checks.inject.rank = 1; /* written only when >= 0 */
        P.n_tags = ORCH_MAX_TAGS;
        for (int i = 0; i < ORCH_MAX_TAGS; i++)
            snprintf(P.tags[i], sizeof P.tags[i], "tag %d \"\\ \xe2\x82\xac", i);
        /* issue 12: each written only when not its default */
        P.data.shuffle = 0;
        P.data.has_seed = 1;
        P.data.seed = UINT64_C(0x7ffffffffffffffe);
        P.processor.min_pixels = 4;
        P.processor.max_pixels = 2147483647;
        P.optimizer.schedule = ORCH_LR_COSINE;
        P.optimizer.min_lr = nextafter(1e-5, 0.0);
        P.schedule.stop.enabled = 1;
        snprintf(P.schedule.stop.metric, sizeof P.schedule.stop.metric, "eval/accuracy_top5");
        P.schedule.stop.patience = 7;
        P.eval.enabled = 1;
        P.eval.every = 5;
        P.eval.batch_size = 6;
        /* the eval set is written by the rows of data: a source data is not */
        P.eval.data.source = ORCH_DATA_SHARDS;
        P.eval.data.n_classes = 3;
        P.eval.data.n_shards = ORCH_MAX_SHARDS;
        for (int i = 0; i < ORCH_MAX_SHARDS; i++)
            snprintf(P.eval.data.shards[i], sizeof P.eval.data.shards[i], "s/%d-{000..00%d}.tar", i,
                     i % 10);
        P.eval.data.shuffle = 0;
        P.eval.data.has_seed = 1;
        P.eval.data.seed = 0;
        round_trip(&P, "every field");
        assert_int_equal(Q.data.shuffle, 0);
        assert_int_equal(Q.data.has_seed, 1);
        assert_true(Q.optimizer.min_lr == nextafter(1e-5, 0.0));
        assert_int_equal(Q.eval.data.n_shards, ORCH_MAX_SHARDS);
        assert_int_equal(Q.eval.data.has_seed, 1);
        assert_string_equal(Q.schedule.stop.metric, "eval/accuracy_top5");

        /* images, evaluated on a split; the shards' default buffer */
        P.data.source = ORCH_DATA_IMAGES;
        snprintf(P.data.dir, sizeof P.data.dir, "train/");
        snprintf(P.data.labels, sizeof P.data.labels, "train.csv");
        P.data.n_grids = 0;
        memset(P.data.image_grid_thw, 0, sizeof P.data.image_grid_thw);
        P.data.n_samples = 0;
        P.data.image_height = P.data.image_width = 0;
        memset(&P.eval.data, 0, sizeof P.eval.data);
        P.eval.split = 0.5;
        round_trip(&P, "images, split");
        assert_true(Q.eval.split == 0.5);
        P.data.source = ORCH_DATA_SHARDS;
        P.data.labels[0] = P.data.dir[0] = '\0';
        P.data.n_shards = 1;
        snprintf(P.data.shards[0], sizeof P.data.shards[0], "a.tar");
        P.data.shuffle = 1000;
        round_trip(&P, "shards");
        assert_int_equal(Q.data.shuffle, 1000);
        P.data.n_shards = 0;
        memset(P.data.shards, 0, sizeof P.data.shards);
        P.data.source = ORCH_DATA_SYNTHETIC;
        P.data.n_grids = 1;
        P.data.image_grid_thw[0][0] = 1;
        P.data.image_grid_thw[0][1] = 4;
        P.data.image_grid_thw[0][2] = 6;
        P.data.shuffle = 0;
        memset(&P.eval, 0, sizeof P.eval);
        P.schedule.stop.enabled = 0;
        P.schedule.stop.patience = 0;
        P.schedule.stop.metric[0] = '\0';
        assert_true(signbit(Q.optimizer.momentum));
        assert_true(Q.optimizer.eps == 4.9406564584124654e-324);
        assert_true(Q.optimizer.grad_clip == DBL_MAX);
        assert_true(Q.model.config.initializer_range == 0.1 + 0.2);
        assert_int_equal(Q.parallel.data, 3);
        assert_int_equal(Q.checks.inject.rank, 1);

        /* a regression head, npy data */
        P.head.kind = ORCH_HEAD_REGRESSION;
        P.head.n_outputs = 5;
        P.loss = ORCH_LOSS_MSE;
        P.data.n_classes = 0;
        P.data.source = ORCH_DATA_NPY;
        P.data.n_grids = 0;
        memset(P.data.image_grid_thw, 0, sizeof P.data.image_grid_thw);
        P.data.n_samples = 0;
        P.data.image_height = P.data.image_width = 0;
        snprintf(P.data.pixel_values, sizeof P.data.pixel_values, "pv.npy");
        snprintf(P.data.grid_thw_path, sizeof P.data.grid_thw_path, "g.npy");
        snprintf(P.data.labels, sizeof P.data.labels, "l.npy");
        round_trip(&P, "regression, npy");
    }
}

/* A field added to orch_pipeline must be written and read by
 * pipeline_json.c, or `orch resume` silently runs without it; these sizes
 * (LP64) make such an addition fail here until it is. */
static void test_struct_unchanged(void **state)
{
    (void)state;
#if __SIZEOF_POINTER__ == 8 && __SIZEOF_INT__ == 4 && __SIZEOF_DOUBLE__ == 8
    const struct {
        const char *name;
        size_t size, expected;
    } sizes[] = {
        {"orch_model_config", sizeof(orch_model_config), 312},
        {"orch_model", sizeof(orch_model), 952},
        {"orch_data", sizeof(orch_data), 11824},
        {"orch_processor_bounds", sizeof(orch_processor_bounds), 8},
        {"orch_eval", sizeof(orch_eval), 11848},
        {"orch_stop", sizeof(orch_stop), 136},
        {"orch_strategy", sizeof(orch_strategy), 2736},
        {"orch_head", sizeof(orch_head), 8},
        {"orch_optimizer", sizeof(orch_optimizer), 88},
        {"orch_schedule", sizeof(orch_schedule), 156},
        {"orch_loss_scale", sizeof(orch_loss_scale), 16},
        {"orch_inject", sizeof(orch_inject), 276},
        {"orch_checks", sizeof(orch_checks), 292},
        {"orch_parallel", sizeof(orch_parallel), 4},
        {"orch_pipeline", sizeof(orch_pipeline), 30656},
    };
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
        if (sizes[i].size != sizes[i].expected) {
            print_error("%s is %zu bytes, was %zu: serialize the new field in "
                        "core/pipeline_json.c (build and orch_pipeline_from_json), cover it in "
                        "test_round_trip_every_field, then update this size\n",
                        sizes[i].name, sizes[i].size, sizes[i].expected);
            fail();
        }
#else
    skip();
#endif
}

/* ------------------------------------------------------------- hashing */

/* The same configuration as base.lua with lora, written two ways. */
static const char *const LUA_PLAIN =
    "return {\n"
    "    name = \"one\",\n"
    "    model = { preset = \"tiny\" },\n"
    "    data = { source = \"synthetic\", samples = 64, classes = 4, image_size = { 56, 56 } },\n"
    "    strategy = lora { rank = 4, alpha = 8 },\n"
    "    head = { kind = \"classifier\", classes = 4 },\n"
    "    loss = \"cross_entropy\",\n"
    "    optimizer = { kind = \"adamw\", lr = 1e-3, betas = { 0.9, 0.999 }, eps = 1e-8,\n"
    "                  weight_decay = 0.01, grad_clip = 1.0 },\n"
    "    schedule = { steps = 30, batch_size = 4, warmup_steps = 3 },\n"
    "    precision = \"fp32\",\n"
    "    seed = 1234,\n"
    "    checks = { nan = true, frozen = true, on_nan = \"abort\", stats_every = 10 },\n"
    "    tags = { \"tiny\", \"demo\" },\n"
    "}\n";

static const char *const LUA_SHUFFLED =
    "-- the same run, written differently\n"
    "local opt = {}\n"
    "opt.grad_clip = 1\n"
    "opt.weight_decay = 1e-2   --[[ 0.01 ]]\n"
    "opt.eps = 0.00000001\n"
    "opt.betas = { 9e-1,\n"
    "              0.9990 }\n"
    "opt.lr = 0.001\n"
    "opt.kind = 'adamw'\n"
    "local t = {checks={stats_every=10.0,on_nan='abort',frozen=true},tags={'other'},\n"
    "  seed=1234,schedule={warmup_steps=3,batch_size=4,steps=3e1},\n"
    "  optimizer=opt,\n"
    "  strategy={alpha=8.0,kind=[[lora]],rank=4},\n"
    "  head={classes=4},\n"
    "  data={image_size=56,classes=4,samples=64},\n"
    "  model='tiny', name='two'}\n"
    "return t\n";

static void test_hash_ignores_form(void **state)
{
    const char *dir = *state;
    char one[512], two[512], lr[512];
    write_file(dir, "one.lua", LUA_PLAIN, one, sizeof one);
    write_file(dir, "two.lua", LUA_SHUFFLED, two, sizeof two);

    char h1[65], h2[65], h3[65];
    assert_int_equal(load_into(&P, one, NULL), ORCH_OK);
    assert_int_equal(orch_pipeline_hash(&P, h1), ORCH_OK);
    assert_int_equal(load_into(&Q, two, NULL), ORCH_OK);
    assert_int_equal(orch_pipeline_hash(&Q, h2), ORCH_OK);
    assert_string_equal(h1, h2);
    /* and the same as the shipped lora.lua, which composes it from base.lua */
    assert_int_equal(load_into(&A, "pipelines/lora.lua", NULL), ORCH_OK);
    assert_int_equal(orch_pipeline_hash(&A, h3), ORCH_OK);
    assert_string_equal(h1, h3);

    /* the canonical texts are equal; the full JSON differs (path, name, tags) */
    char *c1 = orch_pipeline_config_json(&P), *c2 = orch_pipeline_config_json(&Q);
    assert_string_equal(c1, c2);
    free(c1);
    free(c2);
    char *j1 = orch_pipeline_to_json(&P, 0), *j2 = orch_pipeline_to_json(&Q, 0);
    assert_string_not_equal(j1, j2);
    free(j1);
    free(j2);

    /* the hash is a function of the JSON, not of its key order or layout */
    j1 = orch_pipeline_to_json(&P, 1);
    json_t *root = json_loads(j1, 0, NULL);
    assert_non_null(root);
    j2 = json_dumps(root, JSON_INDENT(7) | JSON_REAL_PRECISION(17)); /* insertion order */
    json_decref(root);
    assert_string_not_equal(j1, j2);
    assert_int_equal(orch_pipeline_from_json(j2, &B, &E), ORCH_OK);
    assert_int_equal(orch_pipeline_hash(&B, h3), ORCH_OK);
    assert_string_equal(h1, h3);
    free(j1);
    free(j2);

    /* name and tags do not count */
    const char *const relabel[] = {"name=three", "tags={'x', 'y', 'z'}", NULL};
    assert_int_equal(load_into(&Q, two, relabel), ORCH_OK);
    assert_int_equal(orch_pipeline_hash(&Q, h3), ORCH_OK);
    assert_string_equal(h1, h3);

    /* one value does */
    const char *const other_lr[] = {"optimizer.lr=0.0010000000000000002", NULL};
    assert_int_equal(load_into(&Q, two, other_lr), ORCH_OK);
    assert_true(Q.optimizer.lr == nextafter(1e-3, 1.0));
    assert_int_equal(orch_pipeline_hash(&Q, h3), ORCH_OK);
    assert_string_not_equal(h1, h3);
    write_file(dir, "lr.lua", "local p = require 'one'\np.optimizer.lr = 2e-3\nreturn p\n", lr,
               sizeof lr);
    assert_int_equal(load_into(&Q, lr, NULL), ORCH_OK);
    assert_int_equal(orch_pipeline_hash(&Q, h3), ORCH_OK);
    assert_string_not_equal(h1, h3);
    const char *const steps[] = {"schedule.checkpoint_every=5", NULL};
    assert_int_equal(load_into(&Q, two, steps), ORCH_OK);
    assert_int_equal(orch_pipeline_hash(&Q, h3), ORCH_OK);
    assert_string_not_equal(h1, h3);
}

/* ------------------------------------------------------------- errors */

/* The compact JSON of base.lua, as a jansson tree to break. */
static json_t *base_tree(void)
{
    assert_int_equal(load_into(&P, "pipelines/base.lua", NULL), ORCH_OK);
    char *text = orch_pipeline_to_json(&P, 0);
    assert_non_null(text);
    json_t *root = json_loads(text, 0, NULL);
    free(text);
    assert_non_null(root);
    return root;
}

/* from_json(text) must fail with code, one line starting "config_json: "
 * and containing expect, and leave Q zeroed. */
static void expect_error_text(const char *text, int code, const char *expect)
{
    memset(&Q, 0xA5, sizeof Q);
    int rc = orch_pipeline_from_json(text, &Q, &E);
    if (rc != code || E.code != code || strncmp(E.msg, "config_json: ", 13) != 0 ||
        strstr(E.msg, expect) == NULL || strchr(E.msg, '\n') != NULL) {
        print_error("expected rc %d and an error containing\n  %s\ngot rc %d:\n  %s\n", code,
                    expect, rc, E.msg);
        fail();
    }
    assert_true(is_zero(&Q));
}

/* Dumps root (taking it) and expects an ORCH_EINVAL containing expect. */
static void expect_error_tree(json_t *root, const char *expect)
{
    char *text = json_dumps(root, JSON_COMPACT | JSON_REAL_PRECISION(17));
    json_decref(root);
    assert_non_null(text);
    expect_error_text(text, ORCH_EINVAL, expect);
    free(text);
}

/* obj[key] = v (taken); both must succeed, so no case tests the unbroken tree. */
static void set(json_t *obj, const char *key, json_t *v)
{
    assert_non_null(v);
    assert_int_equal(json_object_set_new(obj, key, v), 0);
}

/* A JSON value from text (which must parse). */
static json_t *parse(const char *text)
{
    json_t *v = json_loads(text, JSON_DECODE_ANY, NULL);
    assert_non_null(v);
    return v;
}

static json_t *section(json_t *root, const char *key)
{
    json_t *v = json_object_get(root, key);
    assert_non_null(v);
    return v;
}

static void test_errors_invalid_json(void **state)
{
    (void)state;
    expect_error_text(NULL, ORCH_EINVAL, "config_json: no text");
    expect_error_text("", ORCH_EINVAL, "config_json: not valid JSON");
    expect_error_text("{oops", ORCH_EINVAL, "config_json: not valid JSON");
    expect_error_text("{\"a\":1}\n{", ORCH_EINVAL, "not valid JSON");
    expect_error_text("[1, 2]", ORCH_EINVAL,
                      "config_json: (top level): expected an object, got array");
    expect_error_text("{}", ORCH_EINVAL, "config_json: path: missing");
    expect_error_text("{\"path\":\"x\",\"path\":\"y\"}", ORCH_EINVAL, "duplicate");

    /* a truncated store value */
    assert_int_equal(load_into(&P, "pipelines/base.lua", NULL), ORCH_OK);
    char *text = orch_pipeline_to_json(&P, 0);
    text[strlen(text) / 2] = '\0';
    expect_error_text(text, ORCH_EINVAL, "not valid JSON");
    free(text);
}

static void test_errors_wrong_type(void **state)
{
    (void)state;
    json_t *root = base_tree();
    set(section(root, "optimizer"), "lr", json_string("1e-3"));
    expect_error_tree(root, "config_json: optimizer.lr: expected a real number, got string");

    root = base_tree(); /* an integer where orch writes a real */
    set(section(root, "optimizer"), "grad_clip", json_integer(1));
    expect_error_tree(root,
                      "config_json: optimizer.grad_clip: expected a real number, got integer");

    root = base_tree();
    set(root, "seed", json_real(1234));
    expect_error_tree(root, "config_json: seed: expected an integer, got real");

    root = base_tree();
    set(root, "checkpoint", json_integer(0));
    expect_error_tree(root, "config_json: checkpoint: expected true or false, got integer");

    root = base_tree();
    assert_int_equal(json_array_set_new(section(root, "tags"), 1, json_integer(3)), 0);
    expect_error_tree(root, "config_json: tags[1]: expected a string, got integer");

    root = base_tree();
    set(root, "model", json_string("tiny"));
    expect_error_tree(root, "config_json: model: expected an object, got string");

    root = base_tree();
    json_t *grid = json_array_get(section(section(root, "data"), "image_grid_thw"), 0);
    assert_null(grid); /* base.lua gives image_size: no grids */
    set(section(root, "data"), "image_grid_thw", json_string("g.npy"));
    expect_error_tree(root, "config_json: data.image_grid_thw: expected an array, got string");

    root = base_tree();
    set(section(root, "data"), "image_grid_thw", parse("[[1, 4, 4.0]]"));
    expect_error_tree(root,
                      "config_json: data.image_grid_thw[0][2]: expected an integer, got real");

    root = base_tree();
    set(section(root, "data"), "image_size", parse("[56]"));
    expect_error_tree(root, "config_json: data.image_size: expected 2 entries, got 1");

    root = base_tree();
    set(section(root, "checks"), "inject", json_false());
    expect_error_tree(root, "config_json: checks.inject: expected an object, got boolean");

    root = base_tree();
    set(root, "precision", json_string("fp64"));
    expect_error_tree(root, "config_json: precision: 'fp64' is not one of fp32, bf16, fp16");

    root = base_tree();
    set(section(root, "model"), "depth", json_integer(1LL << 40));
    expect_error_tree(root, "config_json: model.depth: 1099511627776 is out of range");

    root = base_tree();
    set(root, "seed", json_integer(-1));
    expect_error_tree(root, "config_json: seed: -1 is out of range");

    root = base_tree();
    char long_name[300];
    memset(long_name, 'n', sizeof long_name - 1);
    long_name[sizeof long_name - 1] = '\0';
    set(root, "name", json_string(long_name));
    expect_error_tree(root, "config_json: name: too long (299 bytes; at most 127)");

    root = base_tree();
    set(root, "name", json_stringn("a\0b", 3)); /* written as \u0000 */
    expect_error_tree(root, "config_json: not valid JSON: \\u0000 is not allowed");

    root = base_tree();
    json_t *tags = section(root, "tags");
    for (int i = 0; i < ORCH_MAX_TAGS; i++)
        assert_int_equal(json_array_append_new(tags, json_string("t")), 0);
    expect_error_tree(root, "config_json: tags: 18 entries; at most 16");

    /* the head's key follows its kind */
    root = base_tree();
    set(section(root, "head"), "kind", json_string("regression"));
    expect_error_tree(root, "config_json: head.classes: unknown key");
}

static void test_errors_keys(void **state)
{
    (void)state;
    json_t *root = base_tree();
    set(section(root, "optimizer"), "lrr", json_real(1e-3));
    expect_error_tree(root, "config_json: optimizer.lrr: unknown key");

    root = base_tree();
    set(root, "threads", json_integer(4));
    expect_error_tree(root, "config_json: threads: unknown key");

    root = base_tree(); /* a stray key is shown on one line, cut */
    set(section(root, "checks"), "a\nkey\twith control bytes and more than forty bytes in all",
        json_true());
    expect_error_tree(root, "config_json: checks.a?key?with control bytes and more than f...: "
                            "unknown key");

    root = base_tree();
    assert_int_equal(json_object_del(section(root, "schedule"), "checkpoint_every"), 0);
    expect_error_tree(root, "config_json: schedule.checkpoint_every: missing");

    root = base_tree();
    assert_int_equal(json_object_del(root, "config_hash"), 0);
    expect_error_tree(root, "config_json: config_hash: missing");

    root = base_tree(); /* inject, when given, is complete */
    set(section(root, "checks"), "inject",
        json_pack("{s:i, s:s, s:s, s:s}", "step", 1, "phase", "forward", "stage", "head", "tensor",
                  ""));
    expect_error_tree(root, "config_json: checks.inject.value: missing");

    /* a value changed by hand no longer matches its hash */
    root = base_tree();
    set(section(root, "optimizer"), "lr", json_real(2e-3));
    expect_error_tree(root, "config_json: config_hash: '");

    /* but path, name and tags are not hashed: relabelling reads back */
    root = base_tree();
    set(root, "name", json_string("renamed"));
    set(root, "path", json_string("/elsewhere/x.lua"));
    char *text = json_dumps(root, JSON_COMPACT | JSON_REAL_PRECISION(17));
    json_decref(root);
    assert_int_equal(orch_pipeline_from_json(text, &Q, &E), ORCH_OK);
    assert_string_equal(Q.name, "renamed");
    assert_string_equal(Q.path, "/elsewhere/x.lua");
    free(text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip_shipped),
        cmocka_unit_test(test_round_trip_overrides),
        cmocka_unit_test(test_round_trip_every_field),
        cmocka_unit_test(test_struct_unchanged),
        cmocka_unit_test_setup_teardown(test_hash_ignores_form, tmp_setup, tmp_teardown),
        cmocka_unit_test(test_errors_invalid_json),
        cmocka_unit_test(test_errors_wrong_type),
        cmocka_unit_test(test_errors_keys),
    };
    return cmocka_run_group_tests_name("pipeline json", tests, NULL, NULL);
}
