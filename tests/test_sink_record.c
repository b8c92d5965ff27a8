/*
 * test_sink_record.c - the sink's records as bytes (core/sink_record.c):
 * every kind round-trips, NULL and empty strings and NaN/Inf doubles
 * included; every truncation and a list of hostile buffers are refused
 * without reading out of bounds (make asan checks that part); a decoded
 * record handed to the store sink lands as the original would.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/sink.h"
#include "store/store.h"
#include "store/store_int.h"
#include "tests/testutil.h"

static const orch_run_info info = {
    .pipeline = "pipelines/lora.lua",
    .name = "", /* empty, not NULL */
    .strategy = "lora",
    .config_json = "{\"tags\":[\"ü\"]}",
    .config_hash = NULL,
    .seed = UINT64_MAX,
    .host = "node-7",
    .pid = -1,
    .orch_version = "0.1.0",
    .kernels = "blis 0.9.0 skx",
    .kernels_why = NULL,
    .cpu = "AMD EPYC (AMD family 0x1a, model 0x2)",
    .threads = 3,
    .data_hash = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
};

static const char sha_a[] = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

/* One record of every kind, with the awkward values. */
static int make_records(orch_record *r)
{
    int n = 0;
    r[n++] = (orch_record){.kind = ORCH_REC_RUN_BEGIN, .run_id = 0, .as.run_begin = info};
    r[n++] = (orch_record){
        .kind = ORCH_REC_STEP, .run_id = 3, .as.step = {INT64_MAX, NAN, INFINITY, -0.0, 1e-300}};
    r[n++] = (orch_record){
        .kind = ORCH_REC_METRIC, .run_id = -5, .as.metric = {INT64_MIN, "loss_scale", -INFINITY}};
    r[n++] = (orch_record){.kind = ORCH_REC_NAN,
                           .run_id = 9,
                           .as.nan = {2, ORCH_PHASE_UPDATE, "visual.merger.mlp.2", NULL, 7, 1,
                                      65504.0, 1, 3, "node-7"}};
    r[n++] = (orch_record){
        .kind = ORCH_REC_STAGE_STAT, .run_id = 9, .as.stage_stat = {10, "head", 3.5, NAN, -NAN}};
    r[n++] = (orch_record){
        .kind = ORCH_REC_ARTIFACT,
        .run_id = 9,
        .as.artifact = {49, ORCH_ARTIFACT_CHECKPOINT, "orch.db.runs/9/step-49.safetensors",
                        "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
                        1 << 20}};
    r[n++] = (orch_record){.kind = ORCH_REC_FROZEN_CHANGE,
                           .run_id = 9,
                           .as.frozen_change = {4, "visual.blocks.0.attn.qkv.weight"}};
    r[n++] = (orch_record){.kind = ORCH_REC_RUN_END,
                           .run_id = 9,
                           .as.run_end = {ORCH_RUN_INTERRUPTED, "interrupted by SIGINT", NULL}};
    r[n++] = (orch_record){.kind = ORCH_REC_RUN_END,
                           .run_id = 10,
                           .as.run_end = {ORCH_RUN_FINISHED, NULL,
                                          "early stopping: eval/loss did not improve for 3 "
                                          "evaluations"}};
    r[n++] = (orch_record){.kind = ORCH_REC_RUN_RESUME, .run_id = 9, .as.run_resume = {info, -1}};
    r[n++] = (orch_record){.kind = ORCH_REC_CACHE_USE,
                           .run_id = 9,
                           .as.cache_use = {"00ff00ff00ff00ff0123456789abcdef"}};
    r[n++] = (orch_record){.kind = ORCH_REC_INPUT,
                           .run_id = 9,
                           .as.input = {ORCH_ROLE_EVAL, "data/ü val/0001.png", sha_a, INT64_MAX}};
    r[n++] = (orch_record){
        .kind = ORCH_REC_INPUT, .run_id = 9, .as.input = {ORCH_ROLE_TRAIN, "pv.npy", sha_a, 0}};
    r[n++] = (orch_record){.kind = ORCH_REC_CLASS, .run_id = 9, .as.run_class = {0, "cat"}};
    r[n++] = (orch_record){.kind = ORCH_REC_CLASS, .run_id = 9, .as.run_class = {INT64_MAX, ""}};
    /* a pipeline file's text may hold a NUL: it travels as bytes */
    r[n++] = (orch_record){
        .kind = ORCH_REC_SOURCE_FILE,
        .run_id = 9,
        .as.source_file = {"pipelines/base.lua",
                           "5a1c0c7d0f6f2b6e0f3b8c0b2a6d7e1f9c4b5a6d7e8f9a0b1c2d3e4f5a6b7c8d",
                           "return {}\0 -- after a NUL", 26}};
    return n;
}

static void same_str(const char *a, const char *b)
{
    if (a == NULL || b == NULL)
        assert_true(a == NULL && b == NULL);
    else
        assert_string_equal(a, b);
}

/* Doubles compared bit for bit: NaN equals NaN, -0.0 differs from 0.0. */
static void same_real(double a, double b)
{
    assert_memory_equal(&a, &b, sizeof a);
}

static void same_info(const orch_run_info *a, const orch_run_info *b)
{
    same_str(a->pipeline, b->pipeline);
    same_str(a->name, b->name);
    same_str(a->strategy, b->strategy);
    same_str(a->config_json, b->config_json);
    same_str(a->config_hash, b->config_hash);
    assert_true(a->seed == b->seed);
    same_str(a->host, b->host);
    assert_int_equal(a->pid, b->pid);
    same_str(a->orch_version, b->orch_version);
    same_str(a->kernels, b->kernels);
    same_str(a->kernels_why, b->kernels_why);
    same_str(a->cpu, b->cpu);
    assert_int_equal(a->threads, b->threads);
    same_str(a->data_hash, b->data_hash);
}

static void same_record(const orch_record *a, const orch_record *b)
{
    assert_int_equal(a->kind, b->kind);
    assert_int_equal(a->run_id, b->run_id);
    switch (a->kind) {
    case ORCH_REC_RUN_BEGIN:
        same_info(&a->as.run_begin, &b->as.run_begin);
        break;
    case ORCH_REC_STEP:
        assert_int_equal(a->as.step.step, b->as.step.step);
        same_real(a->as.step.loss, b->as.step.loss);
        same_real(a->as.step.grad_norm, b->as.step.grad_norm);
        same_real(a->as.step.lr, b->as.step.lr);
        same_real(a->as.step.wall_ms, b->as.step.wall_ms);
        break;
    case ORCH_REC_METRIC:
        assert_int_equal(a->as.metric.step, b->as.metric.step);
        same_str(a->as.metric.name, b->as.metric.name);
        same_real(a->as.metric.value, b->as.metric.value);
        break;
    case ORCH_REC_NAN:
        assert_int_equal(a->as.nan.step, b->as.nan.step);
        assert_int_equal(a->as.nan.phase, b->as.nan.phase);
        same_str(a->as.nan.stage, b->as.nan.stage);
        same_str(a->as.nan.tensor, b->as.nan.tensor);
        assert_int_equal(a->as.nan.nan_count, b->as.nan.nan_count);
        assert_int_equal(a->as.nan.inf_count, b->as.nan.inf_count);
        same_real(a->as.nan.input_absmax, b->as.nan.input_absmax);
        assert_int_equal(a->as.nan.inputs_finite, b->as.nan.inputs_finite);
        assert_int_equal(a->as.nan.rank, b->as.nan.rank);
        same_str(a->as.nan.host, b->as.nan.host);
        break;
    case ORCH_REC_STAGE_STAT:
        assert_int_equal(a->as.stage_stat.step, b->as.stage_stat.step);
        same_str(a->as.stage_stat.stage, b->as.stage_stat.stage);
        same_real(a->as.stage_stat.act_absmax, b->as.stage_stat.act_absmax);
        same_real(a->as.stage_stat.act_rms, b->as.stage_stat.act_rms);
        same_real(a->as.stage_stat.grad_norm, b->as.stage_stat.grad_norm);
        break;
    case ORCH_REC_ARTIFACT:
        assert_int_equal(a->as.artifact.step, b->as.artifact.step);
        assert_int_equal(a->as.artifact.kind, b->as.artifact.kind);
        same_str(a->as.artifact.path, b->as.artifact.path);
        same_str(a->as.artifact.sha256, b->as.artifact.sha256);
        assert_int_equal(a->as.artifact.bytes, b->as.artifact.bytes);
        break;
    case ORCH_REC_FROZEN_CHANGE:
        assert_int_equal(a->as.frozen_change.step, b->as.frozen_change.step);
        same_str(a->as.frozen_change.parameter, b->as.frozen_change.parameter);
        break;
    case ORCH_REC_RUN_END:
        assert_int_equal(a->as.run_end.status, b->as.run_end.status);
        same_str(a->as.run_end.error, b->as.run_end.error);
        same_str(a->as.run_end.reason, b->as.run_end.reason);
        break;
    case ORCH_REC_RUN_RESUME:
        same_info(&a->as.run_resume.info, &b->as.run_resume.info);
        assert_int_equal(a->as.run_resume.from_step, b->as.run_resume.from_step);
        break;
    case ORCH_REC_CACHE_USE:
        same_str(a->as.cache_use.key, b->as.cache_use.key);
        break;
    case ORCH_REC_INPUT:
        assert_int_equal(a->as.input.role, b->as.input.role);
        same_str(a->as.input.path, b->as.input.path);
        same_str(a->as.input.sha256, b->as.input.sha256);
        assert_int_equal(a->as.input.bytes, b->as.input.bytes);
        break;
    case ORCH_REC_CLASS:
        assert_int_equal(a->as.run_class.id, b->as.run_class.id);
        same_str(a->as.run_class.name, b->as.run_class.name);
        break;
    case ORCH_REC_SOURCE_FILE:
        same_str(a->as.source_file.path, b->as.source_file.path);
        same_str(a->as.source_file.sha256, b->as.source_file.sha256);
        assert_int_equal(a->as.source_file.bytes, b->as.source_file.bytes);
        assert_memory_equal(a->as.source_file.text, b->as.source_file.text,
                            (size_t)a->as.source_file.bytes);
        break;
    case ORCH_REC__COUNT:
        fail();
    }
}

/* Encodes r into a malloc'd buffer of exactly its size. */
static unsigned char *encode(const orch_record *r, size_t *len)
{
    orch_err err = {0};
    size_t n = orch_record_encoded_size(r);
    unsigned char *buf = malloc(n);
    assert_non_null(buf);
    assert_int_equal(orch_record_encode(r, buf, n, len, &err), ORCH_OK);
    assert_int_equal(*len, n);
    return buf;
}

static void test_every_kind_round_trips(void **state)
{
    (void)state;
    orch_record recs[24];
    int n = make_records(recs);
    int seen[ORCH_REC__COUNT] = {0};
    for (int i = 0; i < n; i++) {
        size_t len = 0;
        unsigned char *buf = encode(&recs[i], &len);
        assert_int_equal(buf[0], ORCH_RECORD_VERSION);
        assert_int_equal(buf[1], recs[i].kind);
        orch_record back;
        orch_err err = {0};
        assert_int_equal(orch_record_decode(buf, len, &back, &err), ORCH_OK);
        same_record(&recs[i], &back);
        seen[recs[i].kind] = 1;
        free(buf);
    }
    for (int k = 0; k < ORCH_REC__COUNT; k++)
        assert_true(seen[k]);
}

/* The layout is fixed: a step record is 2 + 8 + 5 * 8 bytes, little-endian. */
static void test_layout_is_portable(void **state)
{
    (void)state;
    orch_record r = {.kind = ORCH_REC_STEP, .run_id = 0x0102, .as.step = {3, 1.0, 0, 0, 0}};
    size_t len = 0;
    unsigned char *buf = encode(&r, &len);
    assert_int_equal(len, 50);
    static const unsigned char head[] = {
        ORCH_RECORD_VERSION, ORCH_REC_STEP, 0x02, 0x01, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0};
    assert_memory_equal(buf, head, sizeof head);
    /* 1.0 is 0x3ff0000000000000 */
    static const unsigned char one[] = {0, 0, 0, 0, 0, 0, 0xf0, 0x3f};
    assert_memory_equal(buf + 18, one, sizeof one);
    free(buf);
    orch_record f = {.kind = ORCH_REC_FROZEN_CHANGE, .run_id = 1, .as.frozen_change = {2, "ab"}};
    buf = encode(&f, &len);
    assert_int_equal(len, 2 + 8 + 8 + 4 + 3);
    static const unsigned char str[] = {3, 0, 0, 0, 'a', 'b', 0};
    assert_memory_equal(buf + 18, str, sizeof str);
    free(buf);
}

/* Every proper prefix of every record is refused, and so is one more byte;
 * under make asan the exact-size copies catch any read past the end. */
static void test_truncations_refused(void **state)
{
    (void)state;
    orch_record recs[24];
    int n = make_records(recs);
    for (int i = 0; i < n; i++) {
        size_t len = 0;
        unsigned char *buf = encode(&recs[i], &len);
        for (size_t cut = 0; cut < len; cut++) {
            unsigned char *part = malloc(cut > 0 ? cut : 1);
            assert_non_null(part);
            memcpy(part, buf, cut);
            orch_record back;
            orch_err err = {0};
            assert_int_equal(orch_record_decode(cut > 0 ? part : NULL, cut, &back, &err),
                             ORCH_EINVAL);
            assert_non_null(strstr(err.msg, "record: "));
            free(part);
        }
        unsigned char *more = malloc(len + 1);
        assert_non_null(more);
        memcpy(more, buf, len);
        more[len] = 0;
        orch_record back;
        orch_err err = {0};
        assert_int_equal(orch_record_decode(more, len + 1, &back, &err), ORCH_EINVAL);
        assert_non_null(strstr(err.msg, "1 bytes left over"));
        free(more);
        free(buf);
    }
}

/* Decodes len bytes and expects a refusal mentioning what. */
static void refused(const unsigned char *buf, size_t len, const char *what)
{
    orch_record back;
    orch_err err = {0};
    unsigned char *copy = malloc(len);
    assert_non_null(copy);
    memcpy(copy, buf, len);
    assert_int_equal(orch_record_decode(copy, len, &back, &err), ORCH_EINVAL);
    if (strstr(err.msg, what) == NULL)
        fail_msg("expected '%s' in '%s'", what, err.msg);
    free(copy);
}

static void test_hostile_bytes_refused(void **state)
{
    (void)state;
    orch_record f = {.kind = ORCH_REC_FROZEN_CHANGE, .run_id = 1, .as.frozen_change = {2, "ab"}};
    size_t len = 0;
    unsigned char *good = encode(&f, &len);
    unsigned char b[128];
    assert_true(len <= sizeof b);

    memcpy(b, good, len);
    b[0] = ORCH_RECORD_VERSION + 1; /* a later version */
    refused(b, len, "version");
    memcpy(b, good, len);
    b[1] = ORCH_REC__COUNT; /* no such kind */
    refused(b, len, "kind");
    memcpy(b, good, len);
    b[18] = 0xff, b[19] = 0xff, b[20] = 0xff, b[21] = 0xff; /* a 4 GiB string */
    refused(b, len, "parameter");
    memcpy(b, good, len);
    b[len - 1] = 'c'; /* no NUL at its end */
    refused(b, len, "parameter");
    memcpy(b, good, len);
    b[len - 2] = '\0'; /* a NUL inside */
    refused(b, len, "parameter");
    free(good);

    orch_record nan = {.kind = ORCH_REC_NAN,
                       .run_id = 1,
                       .as.nan = {1, ORCH_PHASE_FORWARD, "s", "t", 1, 0, 1.0, 1, -1, NULL}};
    good = encode(&nan, &len);
    memcpy(b, good, len);
    b[18] = 3; /* phase past update */
    refused(b, len, "phase");
    memcpy(b, good, len);
    b[len - 13] = 2; /* inputs_finite is a flag (then rank, 8 bytes, and a NULL host, 4) */
    refused(b, len, "inputs_finite");
    free(good);

    orch_record in = {
        .kind = ORCH_REC_INPUT, .run_id = 1, .as.input = {ORCH_ROLE_EVAL, "p", sha_a, 3}};
    good = encode(&in, &len);
    assert_true(len <= sizeof b);
    memcpy(b, good, len);
    b[10] = ORCH_ROLE__COUNT; /* no such role */
    refused(b, len, "role");
    free(good);

    orch_record end = {
        .kind = ORCH_REC_RUN_END, .run_id = 1, .as.run_end = {ORCH_RUN_FAILED, "x", NULL}};
    good = encode(&end, &len);
    memcpy(b, good, len);
    b[10] = ORCH_RUN_INTERRUPTED + 1;
    refused(b, len, "status");
    free(good);

    /* the artifact kind is one byte after run id and step */
    orch_record art = {.kind = ORCH_REC_ARTIFACT,
                       .run_id = 1,
                       .as.artifact = {1, ORCH_ARTIFACT_CHECKPOINT, "p", "h", 1}};
    good = encode(&art, &len);
    assert_int_equal(good[18], ORCH_ARTIFACT_CHECKPOINT);
    memcpy(b, good, len);
    b[18] = ORCH_ARTIFACT__COUNT;
    refused(b, len, "artifact kind");
    free(good);
}

static void test_encode_refuses(void **state)
{
    (void)state;
    orch_err err = {0};
    orch_record r = {.kind = ORCH_REC_STEP, .run_id = 1};
    unsigned char buf[8];
    size_t len = 0;
    assert_int_equal(orch_record_encode(&r, buf, sizeof buf, &len, &err), ORCH_EINVAL);
    assert_int_equal(len, 50); /* how many it needs */
    orch_record bad = {.kind = ORCH_REC__COUNT};
    assert_int_equal(orch_record_encode(&bad, buf, sizeof buf, &len, &err), ORCH_EINVAL);
    orch_record phase = {.kind = ORCH_REC_NAN, .as.nan = {.phase = (orch_phase)9, .stage = "s"}};
    unsigned char big[128];
    assert_int_equal(orch_record_encode(&phase, big, sizeof big, &len, &err), ORCH_EINVAL);
    assert_non_null(strstr(err.msg, "phase"));
    orch_record art = {.kind = ORCH_REC_ARTIFACT,
                       .as.artifact = {.kind = ORCH_ARTIFACT__COUNT, .path = "p", .sha256 = "h"}};
    assert_int_equal(orch_record_encode(&art, big, sizeof big, &len, &err), ORCH_EINVAL);
    assert_non_null(strstr(err.msg, "artifact kind"));
    assert_string_equal(orch_artifact_kind_name(ORCH_ARTIFACT_CHECKPOINT), "checkpoint");
    assert_string_equal(orch_record_kind_name(ORCH_REC_CACHE_USE), "cache_use");
    orch_record in = {.kind = ORCH_REC_INPUT,
                      .as.input = {.role = ORCH_ROLE__COUNT, .path = "p", .sha256 = "h"}};
    assert_int_equal(orch_record_encode(&in, big, sizeof big, &len, &err), ORCH_EINVAL);
    assert_non_null(strstr(err.msg, "role"));
    assert_string_equal(orch_data_role_name(ORCH_ROLE_TRAIN), "train");
    assert_string_equal(orch_data_role_name(ORCH_ROLE_EVAL), "eval");
    assert_string_equal(orch_record_kind_name(ORCH_REC_INPUT), "input");
    assert_string_equal(orch_record_kind_name(ORCH_REC_CLASS), "class");
}

/* A run sent as bytes, as a worker rank would, and put into a store sink
 * on the other side, lands as if recorded directly. */
static void test_decoded_records_into_store(void **state)
{
    (void)state;
    char dir[256], db[300];
    assert_non_null(make_temp_dir(dir, sizeof dir));
    snprintf(db, sizeof db, "%s/orch.db", dir);
    orch_store *store = NULL;
    orch_sink sink;
    orch_err err = {0};
    assert_int_equal(orch_store_open(db, ORCH_STORE_READWRITE, &store, &err), ORCH_OK);
    assert_int_equal(orch_store_sink(store, &sink, &err), ORCH_OK);

    orch_run_info begin = info;
    begin.name = "sent";
    begin.config_json = "{}";
    orch_record sent[] = {
        {.kind = ORCH_REC_RUN_BEGIN, .as.run_begin = begin},
        {.kind = ORCH_REC_STEP, .as.step = {0, 2.5, NAN, 1e-3, 3.0}},
        {.kind = ORCH_REC_METRIC, .as.metric = {0, "loss_scale", 1024.0}},
        {.kind = ORCH_REC_NAN,
         .as.nan = {0, ORCH_PHASE_BACKWARD, "head", "grad_weight", 2, 1, 7.0, 1, -1, NULL}},
        {.kind = ORCH_REC_FROZEN_CHANGE, .as.frozen_change = {0, "visual.patch_embed.proj"}},
        {.kind = ORCH_REC_CACHE_USE, .as.cache_use = {"0123456789abcdef0123456789abcdef"}},
        {.kind = ORCH_REC_CACHE_USE, .as.cache_use = {"0123456789abcdef0123456789abcdef"}},
        {.kind = ORCH_REC_INPUT, .as.input = {ORCH_ROLE_TRAIN, "b.npy", sha_a, 12}},
        {.kind = ORCH_REC_INPUT, .as.input = {ORCH_ROLE_EVAL, "a.npy", sha_a, 7}},
        {.kind = ORCH_REC_CLASS, .as.run_class = {1, "dog"}},
        {.kind = ORCH_REC_CLASS, .as.run_class = {0, "cat"}},
        {.kind = ORCH_REC_RUN_END, .as.run_end = {ORCH_RUN_DIVERGED, NULL, "a reason"}},
    };
    int64_t run = 0;
    for (size_t i = 0; i < sizeof sent / sizeof sent[0]; i++) {
        sent[i].run_id = run;
        size_t len = 0;
        unsigned char *buf = encode(&sent[i], &len);
        orch_record got;
        assert_int_equal(orch_record_decode(buf, len, &got, &err), ORCH_OK);
        assert_int_equal(orch_sink_put(&sink, &got, &run, &err), ORCH_OK);
        free(buf);
    }
    assert_true(run > 0);
    orch_store_close(store);

    sqlite3 *peer = NULL;
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_open_v2(db, &peer, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(peer,
                                        "SELECT r.name || ' ' || r.status || ' ' || s.steps || "
                                        "' ' || s.nan_events || ' ' || s.frozen_changed || ' ' || "
                                        "s.first_nan_phase || ' ' || (s.max_grad_norm IS NULL) "
                                        "|| ' ' || (SELECT group_concat(key) FROM run_features) "
                                        "|| ' ' || (SELECT parameter FROM frozen_changes) "
                                        "|| ' ' || (SELECT group_concat(role || ':' || path || "
                                        "':' || bytes, ',') FROM (SELECT * FROM run_inputs "
                                        "ORDER BY role, path)) || ' ' || (SELECT "
                                        "group_concat(id || ':' || name, ',') FROM (SELECT * "
                                        "FROM run_classes ORDER BY id)) || ' ' || s.data_hash "
                                        "|| ' ' || s.end_reason "
                                        "FROM runs r JOIN run_summary s ON s.run_id = r.id",
                                        -1, &st, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(st, 0),
                        "sent diverged 1 1 1 backward 1 "
                        "0123456789abcdef0123456789abcdef visual.patch_embed.proj "
                        "eval:a.npy:7,train:b.npy:12 0:cat,1:dog "
                        "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08 "
                        "a reason");
    sqlite3_finalize(st);
    sqlite3_close(peer);
    remove_tree(dir);
}

/* A sink without a callback for a kind refuses such a record. */
static void test_put_without_callback(void **state)
{
    (void)state;
    orch_sink none = {0};
    orch_err err = {0};
    orch_record r = {.kind = ORCH_REC_FROZEN_CHANGE, .run_id = 1, .as.frozen_change = {1, "p"}};
    assert_int_equal(orch_sink_put(&none, &r, NULL, &err), ORCH_EINVAL);
    assert_non_null(strstr(err.msg, "no frozen_change records"));
    r.kind = ORCH_REC_RUN_BEGIN;
    assert_int_equal(orch_sink_put(&none, &r, NULL, &err), ORCH_EINVAL);
    orch_record use = {.kind = ORCH_REC_CACHE_USE, .run_id = 1, .as.cache_use = {"k"}};
    assert_int_equal(orch_sink_put(&none, &use, NULL, &err), ORCH_EINVAL);
    assert_non_null(strstr(err.msg, "no cache_use records"));
    orch_record in = {.kind = ORCH_REC_INPUT, .run_id = 1, .as.input = {0, "p", sha_a, 1}};
    assert_int_equal(orch_sink_put(&none, &in, NULL, &err), ORCH_EINVAL);
    assert_non_null(strstr(err.msg, "no input records"));
    orch_record cl = {.kind = ORCH_REC_CLASS, .run_id = 1, .as.run_class = {0, "cat"}};
    assert_int_equal(orch_sink_put(&none, &cl, NULL, &err), ORCH_EINVAL);
    assert_non_null(strstr(err.msg, "no class records"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_kind_round_trips),
        cmocka_unit_test(test_layout_is_portable),
        cmocka_unit_test(test_truncations_refused),
        cmocka_unit_test(test_hostile_bytes_refused),
        cmocka_unit_test(test_encode_refuses),
        cmocka_unit_test(test_decoded_records_into_store),
        cmocka_unit_test(test_put_without_callback),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
