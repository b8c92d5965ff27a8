/* test_lua_data.c - the DSL of issue 12's fields: images{} and shards{}
 * (positional and keyed patterns, resolved but not expanded), data.shuffle
 * and data.seed, processor, eval (its data read by data's rows, named
 * eval.data.*), optimizer.schedule/min_lr and schedule.stop; their
 * refusals (one line, FILE:LINE), the plan listing and the JSON round trip.
 * The refusals with a file of their own are in tests/bad/. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/pipeline_json.h"
#include "core/pipeline_print.h"
#include "lua/dsl.h"
#include "tests/testutil.h"

static orch_pipeline P, Q; /* large: off the stack */
static orch_err E;
static char dir[512];

/* Writes dir/name = "return extend(BASE, {\n" body "})" (the body starts
 * on line 3) and loads it; returns orch_dsl_load's status. */
static int load_body(const char *name, const char *body)
{
    static const char head[] =
        "local base = {"
        "    model = 'tiny', data = { samples = 8, classes = 7, image_size = 16 }, strategy = "
        "full {}, head = { classes = 7 }, optimizer = { kind = 'adamw', lr = 1e-3 }, schedule = { "
        "steps = 20, "
        "batch_size = 2 } }\n"
        "return extend(base, {\n";
    char path[700], *text = NULL;
    snprintf(path, sizeof path, "%s/%s", dir, name);
    size_t n = strlen(head) + strlen(body) + 8;
    text = malloc(n);
    assert_non_null(text);
    snprintf(text, n, "%s%s})\n", head, body);
    assert_int_equal(write_text_file(path, text), 0);
    free(text);
    return orch_dsl_load(path, NULL, 0, &P, &E);
}

static void ok(int rc)
{
    if (rc != ORCH_OK)
        fail_msg("orch_dsl_load failed: %s", E.msg);
}

/* rc is ORCH_EINVAL with one line that contains want. */
static void refused(int rc, const char *want)
{
    if (rc != ORCH_EINVAL || strstr(E.msg, want) == NULL || strchr(E.msg, '\n') != NULL)
        fail_msg("expected a refusal containing\n  %s\ngot rc %d:\n  %s", want, rc, E.msg);
}

/* The resolved name dir/rel. */
static const char *in_dir(const char *rel)
{
    static char out[700];
    snprintf(out, sizeof out, "%s/%s", dir, rel);
    return out;
}

static int setup(void **state)
{
    (void)state;
    return make_temp_dir(dir, sizeof dir) == NULL ? -1 : 0;
}

static int teardown(void **state)
{
    (void)state;
    remove_tree(dir);
    return 0;
}

/* src -> JSON -> Q -> JSON: same text. */
static void round_trip(const orch_pipeline *src)
{
    char *text = orch_pipeline_to_json(src, 0);
    assert_non_null(text);
    if (orch_pipeline_from_json(text, &Q, &E) != ORCH_OK)
        fail_msg("from_json: %s", E.msg);
    char *again = orch_pipeline_to_json(&Q, 0);
    assert_non_null(again);
    assert_string_equal(text, again);
    free(text);
    free(again);
}

/* The `orch plan` listing of P, malloc'd. */
static char *listing(void)
{
    char *buf = NULL;
    size_t size = 0;
    FILE *out = open_memstream(&buf, &size);
    assert_non_null(out);
    orch_pipeline_print(&P, out);
    fclose(out);
    return buf;
}

static void contains(const char *text, const char *want)
{
    if (strstr(text, want) == NULL)
        fail_msg("missing\n  %s\nin\n%s", want, text);
}

/* ------------------------------------------------------------- sources */

static void test_images(void **state)
{
    (void)state;
    assert_int_equal(write_text_file(in_dir("train.csv"), "file,label\n"), 0);
    ok(load_body("img.lua", "    data = images { dir = 'train/', labels = 'train.csv' },\n"));
    assert_int_equal(P.data.source, ORCH_DATA_IMAGES);
    assert_string_equal(P.data.dir, in_dir("train/")); /* resolved, not checked */
    assert_string_equal(P.data.labels, in_dir("train.csv"));
    assert_int_equal(P.data.n_classes, 7);
    assert_int_equal(P.data.shuffle, 1);
    assert_int_equal(P.data.has_seed, 0);
    assert_int_equal(P.data.n_samples, 0); /* extend replaced the synthetic table */
    round_trip(&P);
    char *text = listing();
    contains(text, "data.source = \"images\"\n");
    contains(text, "data.dir = \"");
    contains(text, "processor.min_pixels = 3136\n");
    free(text);

    /* a plain table works too; labels are optional */
    ok(load_body("plain.lua", "    data = { source = 'images', dir = '/abs/dir', shuffle = false, "
                              "seed = 0 },\n"));
    assert_string_equal(P.data.dir, "/abs/dir");
    assert_string_equal(P.data.labels, "");
    assert_int_equal(P.data.shuffle, 0);
    assert_int_equal(P.data.has_seed, 1);
    assert_true(P.data.seed == 0);
    round_trip(&P);
    assert_int_equal(Q.data.has_seed, 1);
    text = listing();
    contains(text, "data.shuffle = false\n");
    contains(text, "data.seed = 0\n");
    free(text);

    refused(load_body("csv.lua", "    data = images { dir = 'd', labels = 'none.csv' },\n"),
            "csv.lua:3: data.labels: no such file 'none.csv'");
    refused(load_body("npykey.lua", "    data = images { dir = 'd', pixel_values = 'x.npy' },\n"),
            "npykey.lua:3: data.pixel_values is an option of npy, not of images");
    refused(load_body("ctor.lua", "    data = shards { source = 'images', 'a.tar' },\n"),
            "shards: source is set by the constructor; leave it out (got images)");
}

static void test_shards(void **state)
{
    (void)state;
    ok(load_body("sh.lua", "    data = shards {\n"
                           "        'train-{000..003}.tar',\n"
                           "        '/data/more/*.tar',\n"
                           "        shuffle = 0,\n"
                           "    },\n"));
    assert_int_equal(P.data.source, ORCH_DATA_SHARDS);
    assert_int_equal(P.data.n_shards, 2);
    assert_string_equal(P.data.shards[0], in_dir("train-{000..003}.tar")); /* not expanded */
    assert_string_equal(P.data.shards[1], "/data/more/*.tar");
    assert_int_equal(P.data.shuffle, 0);
    round_trip(&P);
    assert_int_equal(Q.data.n_shards, 2);
    char *text = listing();
    contains(text, "data.shards = {\"");
    contains(text, "data.shuffle = 0\n");
    free(text);

    /* the keyed form; the default buffer */
    ok(load_body("keyed.lua", "    data = { source = 'shards', shards = { 'a.tar' } },\n"));
    assert_int_equal(P.data.n_shards, 1);
    assert_int_equal(P.data.shuffle, 1000);
    char *json = orch_pipeline_to_json(&P, 0);
    assert_non_null(json);
    assert_null(strstr(json, "shuffle")); /* the default is not written */
    free(json);
    round_trip(&P);
    assert_int_equal(Q.data.shuffle, 1000);

    refused(load_body("both.lua", "    data = shards { 'a.tar', shards = { 'b.tar' } },\n"),
            "both.lua:3: data.shards: give the patterns as the entries of shards { ... } or as "
            "shards = { ... }, not both");
    refused(load_body("many.lua", "    data = shards { 'a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', "
                                  "'i', 'j', 'k', 'l', 'm', 'n', 'o', 'p', 'q' },\n"),
            "many.lua:3: data.shards has 17 patterns; at most 16 are allowed");
    refused(load_body("num.lua", "    data = shards { 3 },\n"),
            "num.lua:3: data.shards[1] must be a file pattern such as \"train-{000..003}.tar\" "
            "(got number 3)");
    refused(load_body("closing.lua", "    data = shards { shards = { 'a}{.tar' } },\n"),
            "closing.lua:3: data.shards[1] = 'a}{.tar' has an unbalanced brace");
    refused(load_body("bool.lua", "    data = shards { 'a.tar', shuffle = true },\n"),
            "bool.lua:3: data.shuffle must be an integer (got boolean true)");
    refused(load_body("dir.lua", "    data = shards { 'a.tar', dir = 'x' },\n"),
            "dir.lua:3: data.dir is an option of images, not of shards");
}

static void test_synthetic_keys(void **state)
{
    (void)state;
    refused(load_body("syn.lua", "    data = { shuffle = 10 },\n"),
            "syn.lua:3: data.shuffle must be true or false (got number 10)");
    refused(load_body("syndir.lua", "    data = { dir = 'x' },\n"),
            "syndir.lua:3: data.dir is an option of images, not of synthetic");
    ok(load_body("seed.lua", "    data = { seed = 9 },\n"));
    assert_int_equal(P.data.has_seed, 1);
    assert_true(P.data.seed == 9);
}

/* ----------------------------------------------------------- processor */

static void test_processor(void **state)
{
    (void)state;
    ok(load_body("p.lua", "    processor = { max_pixels = 200704 },\n"));
    assert_int_equal(P.processor.min_pixels, 3136);
    assert_int_equal(P.processor.max_pixels, 200704);
    round_trip(&P);
    assert_int_equal(Q.processor.max_pixels, 200704);
    assert_int_equal(Q.processor.min_pixels, 3136);
    /* the hub's values are the absent section: same hash */
    char h1[65], h2[65];
    ok(load_body("hub.lua", "    processor = { min_pixels = 3136, max_pixels = 12845056 },\n"));
    assert_int_equal(orch_pipeline_hash(&P, h1), ORCH_OK);
    ok(load_body("none.lua", ""));
    assert_int_equal(orch_pipeline_hash(&P, h2), ORCH_OK);
    assert_string_equal(h1, h2);
    refused(load_body("small.lua", "    processor = { min_pixels = 15 },\n"),
            "small.lua:3: processor.min_pixels = 15 is less than (patch_size x "
            "spatial_merge_size)^2 = 16 pixels");
    refused(load_body("str.lua", "    processor = 'big',\n"),
            "str.lua:3: processor must be a table");
    refused(load_body("key.lua", "    processor = { min_pixel = 4 },\n"),
            "unknown key 'processor.min_pixel' (did you mean 'processor.min_pixels'?)");
}

/* ---------------------------------------------------------------- eval */

static void test_eval(void **state)
{
    (void)state;
    ok(load_body("ev.lua", "    eval = { data = shards { 'val-{0..1}.tar', shuffle = 5 },\n"
                           "             every = 10 },\n"));
    assert_int_equal(P.eval.enabled, 1);
    assert_int_equal(P.eval.data.source, ORCH_DATA_SHARDS);
    assert_string_equal(P.eval.data.shards[0], in_dir("val-{0..1}.tar"));
    assert_int_equal(P.eval.data.shuffle, 5);
    assert_int_equal(P.eval.data.n_classes, 7); /* the head's */
    assert_int_equal(P.eval.every, 10);
    assert_int_equal(P.eval.batch_size, 2); /* schedule.batch_size */
    assert_true(P.eval.split == 0);
    round_trip(&P);
    assert_int_equal(Q.eval.data.n_shards, 1);
    char *text = listing();
    contains(text, "eval.data.source = \"shards\"\n");
    contains(text, "eval.data.shuffle = 5\n");
    contains(text, "eval.every = 10\n");
    free(text);

    ok(load_body("split.lua", "    eval = { split = 0.5, batch_size = 8 },\n"));
    assert_true(P.eval.split == 0.5);
    assert_int_equal(P.eval.batch_size, 8);
    assert_int_equal(P.eval.every, 0);
    round_trip(&P);
    assert_true(Q.eval.split == 0.5);

    /* the same rules as data, named eval.data */
    refused(load_body("e1.lua", "    eval = { data = images { } },\n"),
            "e1.lua:3: eval.data.dir is required with source = \"images\"");
    refused(load_body("e2.lua", "    eval = { data = { source = 'npy', samples = 3 } },\n"),
            "e2.lua:3: eval.data.samples is not used with source = \"npy\"");
    refused(load_body("e3.lua", "    eval = { data = { samples = 3, image_size = 16, classes = 5 "
                                "} },\n"),
            "e3.lua:3: eval.data.classes = 5 does not match head.classes = 7");
    refused(load_body("e4.lua", "    eval = { data = { samples = 3, image_size = 16, sample = 1 "
                                "} },\n"),
            "e4.lua:3: unknown key 'eval.data.sample' (did you mean 'eval.data.samples'?)");
    refused(load_body("e5.lua", "    eval = { data = { samples = 3, image_size = 16 }, "
                                "batch_size = 4 },\n"),
            "e5.lua:3: eval.batch_size = 4 is larger than eval.data.samples = 3");
    refused(load_body("e6.lua", "    eval = { every = 2 },\n"), "e6.lua:3: eval needs data = ");
    refused(load_body("e7.lua", "    eval = { split = 0 },\n"),
            "e7.lua:3: eval.split must be in (0, 0.5] (got 0)");
    refused(load_body("e8.lua", "    eval = { split = 0.1, every = 21 },\n"),
            "e8.lua:3: eval.every = 21 is more than schedule.steps = 20");
    refused(load_body("e9.lua", "    eval = 3,\n"), "e9.lua:3: eval must be a table");
}

/* ----------------------------------------------------------- schedules */

static void test_schedules(void **state)
{
    (void)state;
    ok(load_body("lr.lua", "    optimizer = { schedule = 'linear', min_lr = 1e-5 },\n"
                           "    eval = { split = 0.2, every = 5 },\n"
                           "    schedule = { stop = { metric = 'eval/accuracy_top5', patience = 4 "
                           "} },\n"));
    assert_int_equal(P.optimizer.schedule, ORCH_LR_LINEAR);
    assert_true(P.optimizer.min_lr == 1e-5);
    assert_int_equal(P.schedule.stop.enabled, 1);
    assert_string_equal(P.schedule.stop.metric, "eval/accuracy_top5");
    assert_int_equal(P.schedule.stop.patience, 4);
    round_trip(&P);
    assert_string_equal(Q.schedule.stop.metric, "eval/accuracy_top5");
    char *text = listing();
    contains(text, "optimizer.schedule = \"linear\"\n");
    contains(text, "optimizer.min_lr = 1e-05\n");
    contains(text, "schedule.stop.metric = \"eval/accuracy_top5\"\n");
    free(text);

    ok(load_body("dflt.lua", "    eval = { split = 0.2 },\n"
                             "    schedule = { stop = { patience = 1 } },\n"));
    assert_string_equal(P.schedule.stop.metric, "eval/loss");

    refused(load_body("s1.lua", "    optimizer = { schedule = 'cosin' },\n"),
            "s1.lua:3: optimizer.schedule must be one of constant, linear, cosine (got string "
            "'cosin'; did you mean 'cosine'?)");
    refused(load_body("s2.lua", "    eval = { split = 0.2 },\n"
                                "    schedule = { stop = { metric = 'eval/acc', patience = 1 } "
                                "},\n"),
            "s2.lua:4: schedule.stop.metric must be one of eval/loss, eval/accuracy, "
            "eval/accuracy_top5, eval/mse");
    refused(load_body("s3.lua", "    eval = { split = 0.2 },\n"
                                "    schedule = { stop = { metric = 'eval/loss' } },\n"),
            "s3.lua:4: schedule.stop.patience is required");
    refused(load_body("s4.lua",
                      "    head = { kind = 'regression', outputs = 2, classes = unset }, data = { "
                      "classes = unset },\n"
                      "    eval = { split = 0.2 },\n"
                      "    schedule = { stop = { metric = 'eval/accuracy', patience = 1 "
                      "} },\n"),
            "s4.lua:5: schedule.stop.metric = \"eval/accuracy\" is a classifier's");
}

/* A pipeline without the new fields keeps its JSON: none of their keys. */
static void test_json_unchanged(void **state)
{
    (void)state;
    ok(load_body("old.lua", ""));
    char *json = orch_pipeline_to_json(&P, 0);
    assert_non_null(json);
    static const char *const keys[] = {"\"eval\"", "\"processor\"",   "\"shuffle\"",
                                       "\"dir\"",  "\"shards\"",      "\"min_lr\"",
                                       "\"stop\"", "\"schedule\":\"", "\"split\""};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        if (strstr(json, keys[i]) != NULL)
            fail_msg("%s in %s", keys[i], json);
    contains(json, "\"data\":{\"classes\":7,\"image_grid_thw\":[],\"image_size\":[16,16],"
                   "\"labels\":\"\",\"pixel_values\":\"\",\"samples\":8,\"source\":\"synthetic\"}");
    contains(json, "\"data\":{\"classes\":7,\"image_grid_thw\":[],\"image_size\":[16,16],"
                   "\"labels\":\"\",\"pixel_values\":\"\",\"samples\":8,\"source\":\"synthetic\"}");
    free(json);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_images),         cmocka_unit_test(test_shards),
        cmocka_unit_test(test_synthetic_keys), cmocka_unit_test(test_processor),
        cmocka_unit_test(test_eval),           cmocka_unit_test(test_schedules),
        cmocka_unit_test(test_json_unchanged),
    };
    return cmocka_run_group_tests_name("lua data, eval, schedules", tests, setup, teardown);
}
