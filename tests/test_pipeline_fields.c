/*
 * test_pipeline_fields.c - the pipeline field table (core/pipeline_fields.h)
 * and what it drives: pinned config hashes, JSON and `plan` listings of the
 * shipped pipelines (the table must not change a byte of them), the
 * generated field tables of docs/pipelines.md, and the --set / --name
 * papercuts.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "core/graph.h"
#include "core/pipeline.h"
#include "core/pipeline_fields.h"
#include "core/pipeline_json.h"
#include "core/pipeline_print.h"
#include "core/processor.h"
#include "lua/dsl.h"
#include "tests/testutil.h"

static orch_pipeline P; /* large: keep it off the stack */
static orch_err E;

/* Loads path with the --set list sets[0..] (NULL-terminated). */
static int load_sets(const char *path, const char *const *sets)
{
    int n = 0;
    while (sets != NULL && sets[n] != NULL)
        n++;
    return orch_dsl_load(path, sets, n, &P, &E);
}

static void expect_ok(int rc)
{
    if (rc != ORCH_OK) {
        print_error("orch_dsl_load failed: %s\n", E.msg);
        fail();
    }
}

static void sha256_hex(const char *text, char hex[65])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    assert_true(EVP_Digest(text, strlen(text), md, &len, EVP_sha256(), NULL));
    for (unsigned int i = 0; i < len; i++)
        snprintf(hex + 2 * i, 3, "%02x", md[i]);
}

/* ------------------------------------------------------------ pinned */

/* The config hashes of the shipped pipelines, computed before the field
 * table replaced the hand-written JSON writer: runs already in stores carry
 * them, so they must never change. */
static void test_shipped_hashes_pinned(void **state)
{
    (void)state;
    static const struct {
        const char *path, *hash;
    } pins[] = {
        {"pipelines/base.lua", "60bdac75bbdd38d3a376e18b57e72151d8e6a9948c83a5a81a2e98128774868f"},
        {"pipelines/surgery.lua",
         "7706aab1bdc775ed7e24b25a057a3e9d661aa2816ed9668de8c733fac90df791"},
        {"pipelines/detach.lua",
         "f5762a66c5738d65ad2347271ef7dabd1bf4a0b74761392081f31b17ea262aff"},
        {"pipelines/lora.lua", "fca8da74b56c624fc41e995b9229b6d96f550fa4d154919036690282a390d860"},
        {"pipelines/nan-repro.lua",
         "919a17070ff3057d752af4190c27014ce2ee6473dba1d05e5c0950f8eb5909c2"},
    };
    for (size_t i = 0; i < sizeof pins / sizeof pins[0]; i++) {
        expect_ok(load_sets(pins[i].path, NULL));
        char hex[65];
        assert_int_equal(orch_pipeline_hash(&P, hex), ORCH_OK);
        if (strcmp(hex, pins[i].hash) != 0)
            print_error("%s: config hash %s, pinned %s\n", pins[i].path, hex, pins[i].hash);
        assert_string_equal(hex, pins[i].hash);
    }
}

/* Variants that reach every branch of the JSON writer and the listing
 * (kinds, optional comments, npy data, grids, inject): the sha256 of the
 * pretty JSON plus the listing, pinned before the refactor. */
static void test_json_and_listing_pinned(void **state)
{
    (void)state;
    static const struct {
        const char *path;
        const char *sets[12];
        const char *digest;
    } pins[] = {
        {"pipelines/base.lua",
         {NULL},
         "04d926980a5fd3e93159b9ae53bc2bc635a82403fde4df765271d956d0e69b75"},
        {"pipelines/surgery.lua",
         {NULL},
         "df738e3208a16ca56da4c3ac47965cba362e3e9dc51508d2d194086d369d1bb3"},
        {"pipelines/detach.lua",
         {NULL},
         "a342c6956ff39280ede3cd7494bca642dc756ea7f0f323c76d9078743961d414"},
        {"pipelines/lora.lua",
         {NULL},
         "fa5d9289ef44d4a8037a7029e93f183cb15303e662cb6018a1f63619f241dbe3"},
        {"pipelines/nan-repro.lua",
         {NULL},
         "6b867ffbdc124b1fb57e6abeb2bb958d2922e698f7424d4ff98fbb6f0d971b6a"},
        {"pipelines/detach.lua",
         {"strategy.adapter=mlp", "strategy.init=tests/oracle/fixtures/init.safetensors", NULL},
         "85089fd894d2dfbdfbc08b56650cc8ded7fa34a26cba3f7ea2ec474fcf4b33a9"},
        {"pipelines/base.lua",
         {"optimizer={kind='sgd', lr=0.1, momentum=0.9, nesterov=true}",
          "model.weights=tests/data/st_small.safetensors", "checkpoint=true",
          "checks.inject={step=2, phase='backward', stage='head', value='inf'}",
          "schedule.checkpoint_every=5", "checks.stats_every=0", NULL},
         "a47f87e166a7a2c738cb3c31de2a66d260f6147eb50ef2e4fa433f72981a5792"},
        {"pipelines/base.lua",
         {"head={kind='regression', outputs=3}", "data.classes=nil", "loss=mse",
          "data.image_size=nil", "data.image_grid_thw={{1,24,24},{1,16,20}}", "precision=fp16",
          "loss_scale={init=65536, dynamic=true, growth_interval=100}", NULL},
         "d87ce77a07ddab663aacad129cffd1f7ab2bb10b6d82931b86a2ebf8640cde47"},
        {"pipelines/lora.lua",
         {"data={source='npy', pixel_values='tests/data/proc_full_pv.npy', "
          "image_grid_thw='tests/data/proc_full_grid.npy', labels='tests/data/npy_i8_grid.npy'}",
          "strategy.targets={'visual.blocks.1.attn.qkv'}", "strategy.dropout=0.1",
          "checks.inject={step=0, stage='visual.blocks.1.attn.qkv', tensor='x'}",
          "optimizer.lr=1/3", NULL},
         "f589cffda6c51a7844f77bd6e372300f8f2f802d70bf4e7195c9ca4659398f5d"},
        /* defaults everywhere (digests checked against a build of the code before the
         * field table, commit 7f18d97, with `orch plan [--json]`) */
        {"pipelines/base.lua",
         {"optimizer={kind='adamw', lr=1e-3}", "checks=nil", "loss_scale=nil",
          "schedule.warmup_steps=nil", "seed=nil", "precision=nil", "loss=nil", "head=nil",
          "tags=nil", "name=nil", NULL},
         "fc1f5a1d500070e9de5bb9c15cfd1444059cd878fa91539298ad273123639343"},
        {"pipelines/base.lua",
         {"optimizer={kind='sgd', lr=0.1}", "strategy=lora", "model={preset='small'}",
          "data.image_size=112", NULL},
         "fed6fa659f46150db591dd7233128fb6e2b24b9ed10caa47ab9820202e6dade2"},
        {"pipelines/base.lua",
         {"strategy=surgery", "checks={inject={step=1, stage='visual.merger.mlp.2'}}", NULL},
         "7fe465eae0bbada68009f35971932ddddb9418fa204c8c63a940dc19bf44edc5"},
        {"pipelines/base.lua",
         {"strategy=detach", "strategy.adapter=mlp", "model.initializer_range=nil", NULL},
         "cec2a09829b33facef3636bb1875320f9b35c5aa8dc9ea5ee0992723d501c82b"},
    };
    for (size_t i = 0; i < sizeof pins / sizeof pins[0]; i++) {
        expect_ok(load_sets(pins[i].path, pins[i].sets));
        char *json = orch_pipeline_to_json(&P, 1);
        assert_non_null(json);
        char *text = NULL;
        size_t size = 0;
        FILE *out = open_memstream(&text, &size);
        assert_non_null(out);
        fputs(json, out);
        fputs("\n---\n", out);
        orch_pipeline_print(&P, out);
        fclose(out);
        char hex[65];
        sha256_hex(text, hex);
        if (strcmp(hex, pins[i].digest) != 0)
            print_error("variant %zu (%s): digest %s, pinned %s\n%s\n", i, pins[i].path, hex,
                        pins[i].digest, text);
        free(json);
        free(text);
        assert_string_equal(hex, pins[i].digest);
    }
}

/* ------------------------------------------------------------- --set */

/* Setting one element of a list that has a default keeps the rest of the
 * default: --set strategy.targets.1=X replaces the first target (Lua lists
 * count from 1), as assigning t[1] would. */
static void test_set_list_element_keeps_default(void **state)
{
    (void)state;
    const char *first[] = {"strategy.targets.1=visual.blocks.0.attn.qkv", NULL};
    expect_ok(load_sets("pipelines/lora.lua", first));
    assert_int_equal(P.strategy.n_targets, 2);
    assert_string_equal(P.strategy.targets[0], "visual.blocks.0.attn.qkv");
    assert_string_equal(P.strategy.targets[1], "visual.merger.mlp.2");

    const char *second[] = {"strategy.targets.2=visual.blocks.1.mlp.up_proj", NULL};
    expect_ok(load_sets("pipelines/lora.lua", second));
    assert_int_equal(P.strategy.n_targets, 2);
    assert_string_equal(P.strategy.targets[0], "visual.merger.mlp.0");
    assert_string_equal(P.strategy.targets[1], "visual.blocks.1.mlp.up_proj");

    /* a plain table strategy (no constructor) gets the same default */
    const char *plain[] = {"strategy={kind='lora'}", "strategy.targets.1=visual.blocks.2.attn.proj",
                           NULL};
    expect_ok(load_sets("pipelines/base.lua", plain));
    assert_int_equal(P.strategy.n_targets, 2);
    assert_string_equal(P.strategy.targets[0], "visual.blocks.2.attn.proj");
    assert_string_equal(P.strategy.targets[1], "visual.merger.mlp.2");

    /* the same for betas */
    const char *betas[] = {"optimizer.betas=nil", "optimizer.betas.2=0.99", NULL};
    expect_ok(load_sets("pipelines/base.lua", betas));
    assert_true(P.optimizer.beta1 == 0.9 && P.optimizer.beta2 == 0.99);

    /* a list given in the file is edited in place, as before */
    const char *tags[] = {"tags.2=x", NULL};
    expect_ok(load_sets("pipelines/base.lua", tags));
    assert_int_equal(P.n_tags, 2);
    assert_string_equal(P.tags[0], "tiny");
    assert_string_equal(P.tags[1], "x");
}

/* A conflict between two fields that an override caused names the
 * override, not the file that set the other field. */
static void test_conflict_names_the_override(void **state)
{
    (void)state;
    static const struct {
        const char *path, *set, *expect;
    } cases[] = {
        {"pipelines/base.lua", "schedule.steps=2",
         "--set schedule.steps=2: schedule.warmup_steps = 3 is more than schedule.steps = 2"},
        {"pipelines/base.lua", "data.samples=2",
         "--set data.samples=2: schedule.batch_size = 4 is larger than data.samples = 2"},
        {"pipelines/base.lua", "data.classes=5",
         "--set data.classes=5: head.classes = 4 does not match data.classes = 5"},
        {"pipelines/base.lua", "head.kind=regression", "--set head.kind=regression: "},
        /* the file's own conflicts keep pointing into the file */
        {"pipelines/base.lua", "schedule.warmup_steps=40",
         "--set schedule.warmup_steps=40: schedule.warmup_steps = 40 is more than"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *sets[] = {cases[i].set, NULL};
        int rc = load_sets(cases[i].path, sets);
        if (rc != ORCH_EINVAL || strncmp(E.msg, cases[i].expect, strlen(cases[i].expect)) != 0)
            print_error("--set %s: expected\n  %s\ngot\n  %s\n", cases[i].set, cases[i].expect,
                        E.msg);
        assert_int_equal(rc, ORCH_EINVAL);
        assert_true(strncmp(E.msg, cases[i].expect, strlen(cases[i].expect)) == 0);
    }
}

/* ----------------------------------------------------------- stages */

/* checks.inject.stage is checked against the graph this pipeline builds:
 * every node of it is accepted, and a stage of another strategy's graph is
 * refused (tower.c's hand-kept list accepted "adapter" everywhere). */
static void test_inject_stage_from_graph(void **state)
{
    (void)state;
    static const char *const files[] = {"pipelines/base.lua", "pipelines/surgery.lua",
                                        "pipelines/lora.lua", "pipelines/detach.lua"};
    for (size_t k = 0; k < sizeof files / sizeof files[0]; k++) {
        const char *mlp[] = {"strategy.adapter=mlp", NULL};
        expect_ok(load_sets(files[k], k == 3 ? mlp : NULL));
        orch_graph g;
        assert_int_equal(orch_graph_build(&P, &g, &E), ORCH_OK);
        for (int i = 0; i < g.n_nodes; i++) {
            char set[256];
            snprintf(set, sizeof set, "checks.inject={step=0, stage='%s'}", g.nodes[i].stage);
            const char *sets[] = {set, k == 3 ? "strategy.adapter=mlp" : NULL, NULL};
            if (load_sets(files[k], sets) != ORCH_OK)
                print_error("%s: stage %s refused: %s\n", files[k], g.nodes[i].stage, E.msg);
            assert_string_equal(E.msg, "");
        }
        orch_graph_free(&g);
    }
    static const struct {
        const char *path, *set, *expect;
    } refused[] = {
        {"pipelines/base.lua", "checks.inject={step=0, stage='adapter'}",
         "checks.inject.stage = 'adapter' is not a stage;"},
        {"pipelines/detach.lua", "checks.inject={step=0, stage='adapter.2'}",
         "checks.inject.stage = 'adapter.2' is not a stage (did you mean 'adapter'?)"},
        {"pipelines/base.lua", "checks.inject={step=0, stage='visual.blocks.4.norm1'}",
         "is not a stage (did you mean 'visual.blocks.0.norm1'?)"},
    };
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        const char *sets[] = {refused[i].set, NULL};
        int rc = load_sets(refused[i].path, sets);
        if (rc != ORCH_EINVAL || strstr(E.msg, refused[i].expect) == NULL)
            print_error("%s: expected\n  %s\ngot\n  %s\n", refused[i].set, refused[i].expect,
                        E.msg);
        assert_int_equal(rc, ORCH_EINVAL);
        assert_non_null(strstr(E.msg, refused[i].expect));
    }
}

/* ------------------------------------------------------------ table */

/* The table is well formed: every row's parent is a section row, enums and
 * kinds have names, lists have a count, and a path appears twice only with
 * JSON conditions that never hold together. */
static void test_table_well_formed(void **state)
{
    (void)state;
    for (size_t i = 0; i < orch_fields_count; i++) {
        const orch_field *f = &orch_fields[i];
        const char *key = orch_field_key(f);
        assert_true(key[0] != '\0');
        if (key != f->path) {
            char parent[128];
            snprintf(parent, sizeof parent, "%.*s", (int)(key - f->path - 1), f->path);
            const orch_field *sec = orch_field_find(parent);
            if (sec == NULL ||
                (sec->type != ORCH_FIELD_SECTION && sec->type != ORCH_FIELD_OPTIONAL))
                print_error("%s: no section row %s\n", f->path, parent);
            assert_non_null(sec);
            assert_true(sec < f); /* sections come before their fields */
        }
        if (f->type == ORCH_FIELD_ENUM || (f->flags & ORCH_FIELDF_KIND))
            assert_true(f->type == ORCH_FIELD_ENUM && f->names != NULL && f->n_names > 0);
        if (f->type == ORCH_FIELD_INT_LIST || f->type == ORCH_FIELD_STRING_LIST ||
            f->type == ORCH_FIELD_GRIDS)
            assert_true(f->count_offset > 0 && f->size > 0);
        if (f->type == ORCH_FIELD_STRING || f->type == ORCH_FIELD_FILE)
            assert_true(f->size > 1);
        for (size_t j = 0; j < i; j++)
            if (strcmp(orch_fields[j].path, f->path) == 0)
                assert_true(f->in_json != NULL && orch_fields[j].in_json != NULL &&
                            f->in_json != orch_fields[j].in_json);
    }
    assert_int_equal(orch_field_get("optimizer.grad_clip")->offset,
                     offsetof(orch_pipeline, optimizer.grad_clip));
    assert_null(orch_field_find("optimizer.grad_clipp"));
}

/* docs/pipelines.md's field tables are what the table generates. */
static void test_docs_current(void **state)
{
    (void)state;
    char *text = read_whole_file("docs/pipelines.md", NULL);
    assert_non_null(text);
    assert_non_null(strstr(text, "<!-- fields:optimizer -->"));
    char *generated = orch_fields_update_doc(text);
    assert_non_null(generated);
    int same = strcmp(text, generated) == 0;
    if (!same)
        print_error("docs/pipelines.md: the field tables are stale; regenerate them with "
                    "`make docs`\n");
    free(text);
    free(generated);
    assert_true(same);
}

/* processor's defaults are the hub's values the processor port uses (the
 * table holds them as literals; this keeps the two one fact), and
 * eval.data.* finds data's rows. */
static void test_processor_defaults_are_the_hubs(void **state)
{
    (void)state;
    orch_processor_config hub;
    orch_processor_defaults(&hub);
    assert_int_equal(atoi(orch_field_get("processor.min_pixels")->def), hub.min_pixels);
    assert_int_equal(atoi(orch_field_get("processor.max_pixels")->def), hub.max_pixels);
    assert_ptr_equal(orch_field_find("eval.data.dir"), orch_field_get("data.dir"));
    assert_null(orch_field_find("eval.data.nope"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table_well_formed),
        cmocka_unit_test(test_docs_current),
        cmocka_unit_test(test_processor_defaults_are_the_hubs),
        cmocka_unit_test(test_shipped_hashes_pinned),
        cmocka_unit_test(test_json_and_listing_pinned),
        cmocka_unit_test(test_set_list_element_keeps_default),
        cmocka_unit_test(test_conflict_names_the_override),
        cmocka_unit_test(test_inject_stage_from_graph),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
