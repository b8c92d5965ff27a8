/*
 * test_store_sink.c - the SQLite record sink: round trip of every record
 * kind (NaN and Inf included), batching, durability points, errors, and
 * what a second connection sees meanwhile.
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
#include <sys/wait.h>
#include <unistd.h>

#include "store/store.h"
#include "store/store_int.h"
#include "tests/testutil.h"
#include "tests/testutil_sql.h"

typedef struct fixture {
    char dir[256];
    char db[300];
    orch_store *store;
    orch_sink sink;
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    orch_err err = {0};
    if (f == NULL || make_temp_store(f->dir, sizeof f->dir, f->db, sizeof f->db) != 0)
        return -1;
    if (orch_store_open(f->db, ORCH_STORE_READWRITE, &f->store, &err) != ORCH_OK ||
        orch_store_sink(f->store, &f->sink, &err) != ORCH_OK) {
        fprintf(stderr, "setup: %s\n", err.msg);
        return -1;
    }
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    orch_store_close(f->store);
    remove_tree(f->dir);
    free(f);
    return 0;
}

static const orch_run_info run_info = {
    .pipeline = "pipelines/detach.lua",
    .name = "detach",
    .strategy = "detach",
    .config_json = "{\"optimizer\":{\"lr\":0.001},\"precision\":\"bf16\"}",
    .config_hash = "abc123",
    .seed = 42,
    .host = "node1",
    .pid = 1234,
    .orch_version = "0.1.0",
};

static int64_t begin(fixture *f)
{
    orch_err err = {0};
    int64_t id = 0;
    assert_int_equal(f->sink.begin_run(f->sink.ctx, &run_info, &id, &err), ORCH_OK);
    assert_true(id > 0);
    return id;
}

static void add_step(fixture *f, int64_t run, int64_t step, double loss, double gnorm)
{
    orch_err err = {0};
    orch_step_record r = {step, loss, gnorm, 1e-3, 12.5};
    assert_int_equal(f->sink.step(f->sink.ctx, run, &r, &err), ORCH_OK);
}

/* A raw connection of our own, as another process would have. */
static sqlite3 *peer(const fixture *f)
{
    return peer_open(f->db);
}

static int count_commit(void *arg)
{
    (*(int *)arg)++;
    return 0;
}

/* --------------------------------------------------------------- tests */

static void test_round_trip(void **state)
{
    fixture *f = *state;
    orch_err err = {0};
    int64_t run = begin(f);
    add_step(f, run, 0, 2.5, 1.0);
    add_step(f, run, 1, 2.0, INFINITY);
    add_step(f, run, 2, NAN, NAN);
    add_step(f, run, 3, -INFINITY, 3.0);
    assert_int_equal(
        f->sink.metric(f->sink.ctx, run, &(orch_metric_record){1, "grad_norm/lora", 0.25}, &err),
        ORCH_OK);
    assert_int_equal(
        f->sink.metric(f->sink.ctx, run, &(orch_metric_record){1, "loss_scale", 65536.0}, &err),
        ORCH_OK);
    assert_int_equal(
        f->sink.metric(f->sink.ctx, run, &(orch_metric_record){2, "grad_norm/lora", NAN}, &err),
        ORCH_OK);
    orch_nan_record first = {
        2, ORCH_PHASE_BACKWARD, "visual.merger.mlp.2", "grad_weight", 7, 1, 65504.0, 1, -1, NULL};
    orch_nan_record later = {2,   ORCH_PHASE_UPDATE, "visual.merger.mlp.2", NULL, 3, 0, 1.0, 0, -1,
                             NULL};
    assert_int_equal(f->sink.nan_event(f->sink.ctx, run, &first, &err), ORCH_OK);
    assert_int_equal(f->sink.nan_event(f->sink.ctx, run, &later, &err), ORCH_OK);
    assert_int_equal(
        f->sink.end_run(f->sink.ctx, run,
                        &(orch_run_end){ORCH_RUN_DIVERGED, "loss is NaN at step 2", NULL}, &err),
        ORCH_OK);

    sqlite3 *db = peer(f);
    assert_int_equal(peer_int(db, "SELECT count(*) FROM steps"), 4);
    assert_int_equal(peer_int(db, "SELECT count(*) FROM steps WHERE step = 2 AND loss IS NULL "
                                  "AND grad_norm IS NULL AND NOT finite"),
                     1);
    assert_int_equal(peer_int(db, "SELECT count(*) FROM steps WHERE step = 1 AND loss = 2.0 "
                                  "AND grad_norm = 9e999 AND typeof(grad_norm) = 'real'"),
                     1);
    assert_int_equal(peer_int(db, "SELECT loss = -9e999 FROM steps WHERE step = 3"), 1);
    assert_int_equal(peer_int(db, "SELECT sum(finite) FROM steps"), 1);
    assert_int_equal(peer_int(db, "SELECT count(*) FROM steps WHERE lr = 1e-3 AND wall_ms = 12.5"),
                     4);
    assert_int_equal(peer_int(db, "SELECT count(*) FROM metrics"), 3);
    assert_int_equal(
        peer_int(db,
                 "SELECT value IS NULL FROM metrics WHERE step = 2 AND name = 'grad_norm/lora'"),
        1);
    assert_int_equal(peer_int(db, "SELECT value FROM metrics WHERE name = 'loss_scale'"), 65536);
    /* Provenance on the first event only. */
    assert_int_equal(peer_int(db, "SELECT count(*) FROM nan_events WHERE phase = 'backward' "
                                  "AND tensor = 'grad_weight' AND nan_count = 7 AND inf_count = 1 "
                                  "AND input_absmax = 65504.0 AND inputs_finite = 1"),
                     1);
    assert_int_equal(peer_int(db, "SELECT count(*) FROM nan_events WHERE phase = 'update' AND "
                                  "tensor IS NULL AND input_absmax IS NULL AND inputs_finite IS "
                                  "NULL"),
                     1);

    char *status = peer_text(db, "SELECT status || '|' || error || '|' || pipeline || '|' || "
                                 "name || '|' || strategy || '|' || seed || '|' || host || '|' "
                                 "|| orch_version || '|' || config_hash FROM runs");
    assert_string_equal(status, "diverged|loss is NaN at step 2|pipelines/detach.lua|detach|"
                                "detach|42|node1|0.1.0|abc123");
    free(status);
    /* ISO-8601 UTC with milliseconds, in order. */
    assert_int_equal(peer_int(db, "SELECT count(*) FROM runs WHERE created_at GLOB "
                                  "'[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]T[0-9][0-9]:[0-9]["
                                  "0-9]:[0-9][0-9].[0-9][0-9][0-9]Z' AND started_at = created_at "
                                  "AND finished_at >= started_at"),
                     1);
    assert_int_equal(peer_int(db, "SELECT json_extract(config_json, '$.optimizer.lr') = 0.001 "
                                  "FROM runs"),
                     1);
    sqlite3_close(db);
}

static void test_batched_transactions(void **state)
{
    fixture *f = *state;
    orch_err err = {0};
    int commits = 0;
    sqlite3_commit_hook(f->store->db, count_commit, &commits);
    int64_t run = begin(f);
    for (int i = 0; i < 1000; i++) {
        add_step(f, run, i, 1.0 / (i + 1), 0.5);
        if (i % 10 == 0)
            assert_int_equal(f->sink.metric(f->sink.ctx, run,
                                            &(orch_metric_record){i, "loss_scale", 1024.0}, &err),
                             ORCH_OK);
    }
    assert_int_equal(
        f->sink.end_run(f->sink.ctx, run, &(orch_run_end){ORCH_RUN_FINISHED, NULL, NULL}, &err),
        ORCH_OK);
    sqlite3_commit_hook(f->store->db, NULL, NULL);
    /* 1100 records: a handful of batches of 256 (plus any 100 ms flush on a
     * slow machine), begin_run and end_run; not one commit per record. */
    assert_true(commits >= 5);
    assert_true(commits <= 20);

    sqlite3 *db = peer(f);
    assert_int_equal(peer_int(db, "SELECT count(*) FROM steps"), 1000);
    assert_int_equal(peer_int(db, "SELECT count(*) FROM metrics"), 100);
    assert_int_equal(peer_int(db, "SELECT max(step) FROM steps"), 999);
    assert_int_equal(peer_int(db, "SELECT count(*) FROM runs WHERE status = 'finished' "
                                  "AND error IS NULL AND finished_at IS NOT NULL"),
                     1);
    sqlite3_close(db);
}

static void test_time_flush(void **state)
{
    fixture *f = *state;
    int64_t run = begin(f);
    add_step(f, run, 0, 1.0, 1.0);
    sqlite3 *db = peer(f);
    assert_int_equal(peer_int(db, "SELECT count(*) FROM steps"), 0);
    usleep(120 * 1000);
    add_step(f, run, 1, 1.0, 1.0); /* the oldest pending record is now > 100 ms old */
    assert_int_equal(peer_int(db, "SELECT count(*) FROM steps"), 2);
    sqlite3_close(db);
}

static void test_reader_sees_whole_batches(void **state)
{
    fixture *f = *state;
    orch_err err = {0};
    int64_t run = begin(f);
    sqlite3 *db = peer(f);
    for (int i = 0; i < 100; i++)
        add_step(f, run, i, 1.0, 1.0);
    /* Buffered, not written: the reader sees the run, running, no steps. */
    assert_int_equal(peer_int(db, "SELECT count(*) FROM steps"), 0);
    assert_int_equal(peer_int(db, "SELECT count(*) FROM runs WHERE status = 'running'"), 1);
    assert_int_equal(f->sink.flush(f->sink.ctx, &err), ORCH_OK);
    assert_int_equal(peer_int(db, "SELECT count(*) FROM steps"), 100);
    assert_int_equal(peer_int(db, "SELECT count(*) FROM runs WHERE status = 'running'"), 1);
    add_step(f, run, 100, 0.5, 1.0);
    assert_int_equal(
        f->sink.end_run(f->sink.ctx, run, &(orch_run_end){ORCH_RUN_FINISHED, NULL, NULL}, &err),
        ORCH_OK);
    assert_int_equal(peer_int(db, "SELECT count(*) FROM steps"), 101);
    assert_int_equal(peer_int(db, "SELECT count(*) FROM runs WHERE status = 'finished'"), 1);
    sqlite3_close(db);
}

/* A process that dies mid-run leaves whole batches and status 'running'. */
static void test_crash_leaves_whole_batches(void **state)
{
    fixture *f = *state;
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        orch_store *s = NULL;
        orch_sink k;
        orch_err err = {0};
        int64_t run = 0;
        if (orch_store_open(f->db, ORCH_STORE_READWRITE, &s, &err) != ORCH_OK ||
            orch_store_sink(s, &k, &err) != ORCH_OK ||
            k.begin_run(k.ctx, &run_info, &run, &err) != ORCH_OK)
            _exit(3);
        for (int i = 0; i < 250; i++) {
            orch_step_record r = {i, 1.0, 1.0, 1e-3, 1.0};
            if (k.step(k.ctx, run, &r, &err) != ORCH_OK)
                _exit(4);
            if (i == 199 && k.flush(k.ctx, &err) != ORCH_OK)
                _exit(5);
        }
        _exit(0); /* no flush, no end_run, no close: a crash */
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    sqlite3 *db = peer(f);
    /* The flushed 200 steps, not the 50 pending ones, nor a part of them. */
    assert_int_equal(peer_int(db, "SELECT count(*) FROM steps"), 200);
    assert_int_equal(peer_int(db, "SELECT max(step) FROM steps"), 199);
    assert_int_equal(peer_int(db, "SELECT count(*) FROM runs WHERE status = 'running'"), 1);
    sqlite3_close(db);
}

static void test_first_nan_event_written_at_once(void **state)
{
    fixture *f = *state;
    orch_err err = {0};
    int64_t a = begin(f);
    int64_t b = begin(f);
    sqlite3 *db = peer(f);
    orch_nan_record ev = {5, ORCH_PHASE_FORWARD, "blocks.3.attn", "out", 2, 0, 12.0, 1, -1, NULL};
    assert_int_equal(f->sink.nan_event(f->sink.ctx, a, &ev, &err), ORCH_OK);
    assert_int_equal(peer_int(db, "SELECT count(*) FROM nan_events"), 1);
    ev.phase = ORCH_PHASE_BACKWARD;
    assert_int_equal(f->sink.nan_event(f->sink.ctx, a, &ev, &err), ORCH_OK);
    assert_int_equal(peer_int(db, "SELECT count(*) FROM nan_events"), 1); /* batched */
    /* Interleaved runs: each first event carries provenance. */
    assert_int_equal(f->sink.nan_event(f->sink.ctx, b, &ev, &err), ORCH_OK);
    assert_int_equal(f->sink.nan_event(f->sink.ctx, a, &ev, &err), ORCH_OK);
    assert_int_equal(f->sink.flush(f->sink.ctx, &err), ORCH_OK);
    assert_int_equal(peer_int(db, "SELECT count(*) FROM nan_events"), 4);
    char *with = peer_text(db, "SELECT group_concat(run_id || ':' || step) FROM (SELECT run_id, "
                               "step FROM nan_events WHERE input_absmax IS NOT NULL ORDER BY id)");
    char want[64];
    snprintf(want, sizeof want, "%lld:5,%lld:5", (long long)a, (long long)b);
    assert_string_equal(with, want);
    free(with);
    sqlite3_close(db);
}

/* A data-parallel run's events keep the rank and host that found them; a
 * one-rank run's (host NULL) leave both NULL. */
static void test_nan_event_rank_and_host(void **state)
{
    fixture *f = *state;
    orch_err err = {0};
    int64_t run = begin(f);
    orch_nan_record ev = {2, ORCH_PHASE_BACKWARD, "head", "grad_input", 1, 0, 0.5, 1, 1, "node-b"};
    assert_int_equal(f->sink.nan_event(f->sink.ctx, run, &ev, &err), ORCH_OK);
    orch_nan_record alone = {3, ORCH_PHASE_FORWARD, "head", "out", 1, 0, 0.5, 1, -1, NULL};
    assert_int_equal(f->sink.nan_event(f->sink.ctx, run, &alone, &err), ORCH_OK);
    assert_int_equal(f->sink.flush(f->sink.ctx, &err), ORCH_OK);
    sqlite3 *db = peer(f);
    char *rows = peer_text(db, "SELECT group_concat(step || ':' || quote(rank) || ':' || "
                               "quote(host), ' ') FROM (SELECT * FROM nan_events ORDER BY id)");
    assert_string_equal(rows, "2:1:'node-b' 3:NULL:NULL");
    free(rows);
    sqlite3_close(db);
}

static void test_step_recorded_twice_replaces(void **state)
{
    fixture *f = *state;
    orch_err err = {0};
    int64_t run = begin(f);
    add_step(f, run, 7, 3.0, 1.0);
    add_step(f, run, 7, 2.0, 1.0);
    assert_int_equal(f->sink.metric(f->sink.ctx, run, &(orch_metric_record){7, "m", 1.0}, &err),
                     ORCH_OK);
    assert_int_equal(f->sink.metric(f->sink.ctx, run, &(orch_metric_record){7, "m", 4.0}, &err),
                     ORCH_OK);
    assert_int_equal(f->sink.flush(f->sink.ctx, &err), ORCH_OK);
    sqlite3 *db = peer(f);
    assert_int_equal(peer_int(db, "SELECT count(*) FROM steps"), 1);
    assert_int_equal(peer_int(db, "SELECT loss FROM steps"), 2);
    assert_int_equal(peer_int(db, "SELECT value FROM metrics"), 4);
    sqlite3_close(db);
}

static void test_invalid_records(void **state)
{
    fixture *f = *state;
    orch_err err = {0};
    int64_t run = begin(f);
    int64_t id = 0;
    orch_run_info no_strategy = run_info;
    no_strategy.strategy = NULL;
    assert_int_equal(f->sink.begin_run(f->sink.ctx, &no_strategy, &id, &err), ORCH_EINVAL);
    orch_run_info bad_json = run_info;
    bad_json.config_json = "{oops";
    assert_int_equal(f->sink.begin_run(f->sink.ctx, &bad_json, &id, &err), ORCH_EDB);
    assert_non_null(strstr(err.msg, "CHECK constraint failed"));
    assert_int_equal(id, 0);

    orch_nan_record ev = {1, (orch_phase)7, "s", "t", 1, 0, 0.0, 1, -1, NULL};
    assert_int_equal(f->sink.nan_event(f->sink.ctx, run, &ev, &err), ORCH_EINVAL);
    assert_non_null(strstr(err.msg, "phase 7 is not forward, backward or update"));
    ev.phase = ORCH_PHASE_FORWARD;
    orch_frozen_change fz = {1, ""};
    assert_int_equal(f->sink.frozen_change(f->sink.ctx, run, &fz, &err), ORCH_EINVAL);
    ev.tensor = "t";
    ev.stage = NULL;
    assert_int_equal(f->sink.nan_event(f->sink.ctx, run, &ev, &err), ORCH_EINVAL);
    assert_int_equal(f->sink.metric(f->sink.ctx, run, &(orch_metric_record){1, "", 1.0}, &err),
                     ORCH_EINVAL);
    assert_int_equal(
        f->sink.end_run(f->sink.ctx, run, &(orch_run_end){ORCH_RUN_RUNNING, NULL, NULL}, &err),
        ORCH_EINVAL);
    assert_int_equal(
        f->sink.end_run(f->sink.ctx, 999, &(orch_run_end){ORCH_RUN_FAILED, "x", NULL}, &err),
        ORCH_EINVAL);
    assert_non_null(strstr(err.msg, "no run 999"));

    /* A batch that cannot be written (no run 999) is rolled back and
     * dropped; the sink keeps working. */
    add_step(f, run, 0, 1.0, 1.0);
    add_step(f, 999, 0, 1.0, 1.0);
    assert_int_equal(f->sink.flush(f->sink.ctx, &err), ORCH_EDB);
    assert_non_null(strstr(err.msg, "FOREIGN KEY"));
    add_step(f, run, 1, 1.0, 1.0);
    assert_int_equal(
        f->sink.end_run(f->sink.ctx, run, &(orch_run_end){ORCH_RUN_FAILED, "boom", NULL}, &err),
        ORCH_OK);
    sqlite3 *db = peer(f);
    assert_int_equal(peer_int(db, "SELECT count(*) FROM steps WHERE step = 1"), 1);
    assert_int_equal(peer_int(db, "SELECT count(*) FROM steps"), 1);
    assert_int_equal(peer_int(db, "SELECT count(*) FROM runs"), 1);
    sqlite3_close(db);

    orch_store *ro = NULL;
    orch_sink k;
    assert_int_equal(orch_store_open(f->db, ORCH_STORE_READONLY, &ro, &err), ORCH_OK);
    assert_int_equal(orch_store_sink(ro, &k, &err), ORCH_EINVAL);
    orch_store_close(ro);
}

/* Two writers (two processes' worth of connections) share one store. */
static void test_two_writers(void **state)
{
    fixture *f = *state;
    orch_err err = {0};
    orch_store *other = NULL;
    orch_sink k2;
    assert_int_equal(orch_store_open(f->db, ORCH_STORE_READWRITE, &other, &err), ORCH_OK);
    assert_int_equal(orch_store_sink(other, &k2, &err), ORCH_OK);
    int64_t a = begin(f);
    int64_t b = 0;
    assert_int_equal(k2.begin_run(k2.ctx, &run_info, &b, &err), ORCH_OK);
    for (int i = 0; i < 600; i++) {
        add_step(f, a, i, 1.0, 1.0);
        orch_step_record r = {i, 2.0, 1.0, 1e-3, 1.0};
        assert_int_equal(k2.step(k2.ctx, b, &r, &err), ORCH_OK);
    }
    assert_int_equal(k2.end_run(k2.ctx, b, &(orch_run_end){ORCH_RUN_INTERRUPTED, NULL, NULL}, &err),
                     ORCH_OK);
    assert_int_equal(
        f->sink.end_run(f->sink.ctx, a, &(orch_run_end){ORCH_RUN_FINISHED, NULL, NULL}, &err),
        ORCH_OK);
    orch_store_close(other);
    sqlite3 *db = peer(f);
    assert_int_equal(peer_int(db, "SELECT count(*) FROM steps"), 1200);
    assert_int_equal(peer_int(db, "SELECT count(*) FROM runs WHERE status IN ('finished', "
                                  "'interrupted')"),
                     2);
    sqlite3_close(db);
}

static void test_close_flushes(void **state)
{
    fixture *f = *state;
    int64_t run = begin(f);
    add_step(f, run, 0, 1.0, 1.0);
    orch_store_close(f->store);
    f->store = NULL;
    sqlite3 *db = peer(f);
    assert_int_equal(peer_int(db, "SELECT count(*) FROM steps"), 1);
    sqlite3_close(db);
}

/* ------------------------------------------------------ lifecycle (v2) */

static const char sha_a[] = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
static const char sha_b[] = "fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210";

static void test_pid_and_heartbeat(void **state)
{
    fixture *f = *state;
    orch_err err = {0};
    int64_t run = begin(f);
    sqlite3 *db = peer(f);
    char sql[200];
    snprintf(sql, sizeof sql, "SELECT heartbeat_at FROM runs WHERE id = %lld", (long long)run);
    assert_int_equal(peer_int(db, "SELECT pid FROM runs"), 1234);
    assert_int_equal(peer_int(db, "SELECT heartbeat_at = started_at FROM runs"), 1);
    char *beat0 = peer_text(db, sql);
    assert_non_null(beat0);

    /* A batch commits the heartbeat with the records. */
    usleep(20 * 1000);
    add_step(f, run, 0, 1.0, 1.0);
    assert_int_equal(f->sink.flush(f->sink.ctx, &err), ORCH_OK);
    char *beat1 = peer_text(db, sql);
    assert_true(strcmp(beat1, beat0) > 0);

    /* Nothing pending: flush refreshes the heartbeat once a batch is due. */
    usleep(120 * 1000);
    assert_int_equal(f->sink.flush(f->sink.ctx, &err), ORCH_OK);
    char *beat2 = peer_text(db, sql);
    assert_true(strcmp(beat2, beat1) > 0);

    /* An ended run's heartbeat stays as end_run left it. */
    assert_int_equal(
        f->sink.end_run(f->sink.ctx, run, &(orch_run_end){ORCH_RUN_FINISHED, NULL, NULL}, &err),
        ORCH_OK);
    char *beat3 = peer_text(db, sql);
    usleep(120 * 1000);
    add_step(f, run, 1, 1.0, 1.0);
    assert_int_equal(f->sink.flush(f->sink.ctx, &err), ORCH_OK);
    char *beat4 = peer_text(db, sql);
    assert_string_equal(beat4, beat3);

    /* No pid: NULL. */
    orch_run_info nopid = run_info;
    nopid.pid = 0;
    int64_t other = 0;
    assert_int_equal(f->sink.begin_run(f->sink.ctx, &nopid, &other, &err), ORCH_OK);
    snprintf(sql, sizeof sql, "SELECT pid IS NULL FROM runs WHERE id = %lld", (long long)other);
    assert_int_equal(peer_int(db, sql), 1);
    free(beat0);
    free(beat1);
    free(beat2);
    free(beat3);
    free(beat4);
    sqlite3_close(db);
}

static void test_stage_stats(void **state)
{
    fixture *f = *state;
    orch_err err = {0};
    int64_t run = begin(f);
    sqlite3 *db = peer(f);
    orch_stage_stat a = {0, "visual.blocks.0.mlp", 12.5, 3.25, 0.5};
    orch_stage_stat b = {0, "visual.merger.mlp.2", 65504.0, NAN, NAN};
    orch_stage_stat c = {10, "visual.merger.mlp.2", NAN, INFINITY, 1.0};
    assert_int_equal(f->sink.stage_stat(f->sink.ctx, run, &a, &err), ORCH_OK);
    assert_int_equal(f->sink.stage_stat(f->sink.ctx, run, &b, &err), ORCH_OK);
    assert_int_equal(f->sink.stage_stat(f->sink.ctx, run, &c, &err), ORCH_OK);
    assert_int_equal(peer_int(db, "SELECT count(*) FROM stage_stats"), 0); /* batched */
    assert_int_equal(f->sink.flush(f->sink.ctx, &err), ORCH_OK);
    assert_int_equal(peer_int(db, "SELECT count(*) FROM stage_stats"), 3);
    assert_int_equal(peer_int(db, "SELECT count(*) FROM stage_stats WHERE step = 0 AND stage = "
                                  "'visual.blocks.0.mlp' AND act_absmax = 12.5 AND act_rms = 3.25 "
                                  "AND grad_norm = 0.5"),
                     1);
    assert_int_equal(peer_int(db, "SELECT count(*) FROM stage_stats WHERE step = 0 AND "
                                  "act_absmax = 65504.0 AND act_rms IS NULL AND grad_norm IS NULL"),
                     1);
    assert_int_equal(peer_int(db, "SELECT count(*) FROM stage_stats WHERE step = 10 AND "
                                  "act_absmax IS NULL AND act_rms = 9e999 AND grad_norm = 1.0"),
                     1);
    /* Recorded again (a resumed run): replaced. */
    a.act_absmax = 13.0;
    assert_int_equal(f->sink.stage_stat(f->sink.ctx, run, &a, &err), ORCH_OK);
    assert_int_equal(f->sink.flush(f->sink.ctx, &err), ORCH_OK);
    assert_int_equal(peer_int(db, "SELECT count(*) FROM stage_stats"), 3);
    assert_int_equal(peer_int(db, "SELECT act_absmax FROM stage_stats WHERE stage = "
                                  "'visual.blocks.0.mlp'"),
                     13);
    /* "Which stage blows up first" is one query. */
    assert_int_equal(peer_int(db, "SELECT min(step) FROM stage_stats WHERE (act_absmax IS NULL "
                                  "OR act_absmax > 1e4) AND stage = 'visual.merger.mlp.2'"),
                     0);
    orch_stage_stat bad = {1, "", 1.0, 1.0, 1.0};
    assert_int_equal(f->sink.stage_stat(f->sink.ctx, run, &bad, &err), ORCH_EINVAL);
    bad.stage = NULL;
    assert_int_equal(f->sink.stage_stat(f->sink.ctx, run, &bad, &err), ORCH_EINVAL);
    assert_int_equal(f->sink.stage_stat(f->sink.ctx, run, NULL, &err), ORCH_EINVAL);
    sqlite3_close(db);
}

static void test_artifact_after_its_steps(void **state)
{
    fixture *f = *state;
    orch_err err = {0};
    int commits = 0;
    int64_t run = begin(f);
    sqlite3 *db = peer(f);
    for (int i = 0; i < 10; i++)
        add_step(f, run, i, 1.0, 1.0);
    assert_int_equal(peer_int(db, "SELECT count(*) FROM steps"), 0);
    sqlite3_commit_hook(f->store->db, count_commit, &commits);
    /* files beside the store are recorded relative to it */
    char path9[400], path9b[400];
    snprintf(path9, sizeof path9, "%s/runs/1/step-9.safetensors", f->dir);
    snprintf(path9b, sizeof path9b, "%s/runs/1/step-9b.safetensors", f->dir);
    orch_artifact ck = {9, ORCH_ARTIFACT_CHECKPOINT, path9, sha_a, 4096};
    assert_int_equal(f->sink.artifact(f->sink.ctx, run, &ck, &err), ORCH_OK);
    sqlite3_commit_hook(f->store->db, NULL, NULL);
    assert_int_equal(commits, 2); /* the steps, then the artifact */
    assert_int_equal(peer_int(db, "SELECT count(*) FROM steps"), 10);
    assert_int_equal(peer_int(db, "SELECT count(*) FROM artifacts WHERE step = 9 AND kind = "
                                  "'checkpoint' AND path = 'runs/1/step-9.safetensors' AND "
                                  "bytes = 4096 AND created_at IS NOT NULL"),
                     1);
    char *sha = peer_text(db, "SELECT sha256 FROM run_checkpoints");
    assert_string_equal(sha, sha_a);
    free(sha);
    assert_int_equal(peer_int(db, "SELECT last_checkpoint_step FROM run_summary"), 9);

    /* The same step again replaces it. */
    ck.path = path9b;
    ck.sha256 = sha_b;
    assert_int_equal(f->sink.artifact(f->sink.ctx, run, &ck, &err), ORCH_OK);
    assert_int_equal(peer_int(db, "SELECT count(*) FROM artifacts"), 1);
    sha = peer_text(db, "SELECT path FROM artifacts");
    assert_string_equal(sha, "runs/1/step-9b.safetensors");
    free(sha);

    /* Refused before anything is written. */
    orch_artifact bad = ck;
    bad.kind = ORCH_ARTIFACT__COUNT;
    assert_int_equal(f->sink.artifact(f->sink.ctx, run, &bad, &err), ORCH_EINVAL);
    assert_non_null(strstr(err.msg, "kind 1 is not checkpoint"));
    bad = ck;
    bad.sha256 = "abc";
    assert_int_equal(f->sink.artifact(f->sink.ctx, run, &bad, &err), ORCH_EINVAL);
    assert_non_null(strstr(err.msg, "64 hexadecimal"));
    bad = ck;
    bad.path = "";
    assert_int_equal(f->sink.artifact(f->sink.ctx, run, &bad, &err), ORCH_EINVAL);
    bad = ck;
    bad.bytes = -1;
    assert_int_equal(f->sink.artifact(f->sink.ctx, run, &bad, &err), ORCH_EINVAL);

    /* An artifact that cannot be recorded loses no steps. */
    add_step(f, run, 10, 1.0, 1.0);
    assert_int_equal(f->sink.artifact(f->sink.ctx, 999, &ck, &err), ORCH_EDB);
    assert_int_equal(peer_int(db, "SELECT count(*) FROM steps"), 11);
    assert_int_equal(peer_int(db, "SELECT count(*) FROM artifacts"), 1);
    sqlite3_close(db);
}

/* A run with steps 0..9, metrics, NaN events at 3 and 7, statistics at 0
 * and 5 and checkpoints at 4 and 8, ended with status. */
static int64_t full_run(fixture *f, orch_run_status status)
{
    orch_err err = {0};
    int64_t run = begin(f);
    for (int i = 0; i < 10; i++) {
        add_step(f, run, i, 1.0 / (i + 1), 1.0);
        assert_int_equal(
            f->sink.metric(f->sink.ctx, run, &(orch_metric_record){i, "loss_scale", 1024.0}, &err),
            ORCH_OK);
        if (i == 3 || i == 7) {
            orch_nan_record ev = {i,   ORCH_PHASE_BACKWARD, "head", "grad_weight", 1, 0, 2.0, 1, -1,
                                  NULL};
            assert_int_equal(f->sink.nan_event(f->sink.ctx, run, &ev, &err), ORCH_OK);
        }
        if (i % 5 == 0) {
            orch_stage_stat st = {i, "head", 1.0, 1.0, 1.0};
            assert_int_equal(f->sink.stage_stat(f->sink.ctx, run, &st, &err), ORCH_OK);
        }
        if (i == 4 || i == 8) {
            char path[400];
            snprintf(path, sizeof path, "%s/runs/%lld/step-%d.safetensors", f->dir, (long long)run,
                     i);
            orch_artifact ck = {i, ORCH_ARTIFACT_CHECKPOINT, path, sha_a, 100 + i};
            assert_int_equal(f->sink.artifact(f->sink.ctx, run, &ck, &err), ORCH_OK);
        }
    }
    assert_int_equal(
        f->sink.end_run(f->sink.ctx, run, &(orch_run_end){status, "stopped", NULL}, &err), ORCH_OK);
    return run;
}

static int64_t count_where(sqlite3 *db, const char *table, int64_t run, const char *cond)
{
    char sql[300];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM %s WHERE run_id = %lld%s%s", table,
             (long long)run, cond[0] ? " AND " : "", cond);
    return peer_int(db, sql);
}

static void test_resume_run(void **state)
{
    fixture *f = *state;
    orch_err err = {0};
    int64_t run = full_run(f, ORCH_RUN_INTERRUPTED);
    sqlite3 *db = peer(f);
    orch_run_info again = run_info;
    again.host = "node2";
    again.pid = 4321;
    again.orch_version = "0.2.0";
    assert_int_equal(f->sink.resume_run(f->sink.ctx, run, &(orch_run_resume){again, 4}, &err),
                     ORCH_OK);
    assert_int_equal(count_where(db, "steps", run, ""), 5);
    assert_int_equal(count_where(db, "steps", run, "step > 4"), 0);
    assert_int_equal(count_where(db, "metrics", run, ""), 5);
    assert_int_equal(count_where(db, "nan_events", run, ""), 1);
    assert_int_equal(count_where(db, "stage_stats", run, ""), 1);
    assert_int_equal(count_where(db, "artifacts", run, ""), 1);
    assert_int_equal(count_where(db, "artifacts", run, "step = 4"), 1);
    char *row = peer_text(db, "SELECT status || '|' || pid || '|' || host || '|' || orch_version "
                              "|| '|' || coalesce(finished_at, 'NULL') || '|' || "
                              "coalesce(error, 'NULL') || '|' || (heartbeat_at >= started_at) "
                              "FROM runs");
    assert_string_equal(row, "running|4321|node2|0.2.0|NULL|NULL|1");
    free(row);

    /* The resumed run records steps 5.. again and ends. The NaN event at 3
     * is kept, so the one at 7 carries no provenance. */
    for (int i = 5; i < 10; i++)
        add_step(f, run, i, 1.0 / (i + 1), 1.0);
    orch_nan_record ev = {7, ORCH_PHASE_FORWARD, "head", "out", 1, 0, 5.0, 0, -1, NULL};
    assert_int_equal(f->sink.nan_event(f->sink.ctx, run, &ev, &err), ORCH_OK);
    assert_int_equal(
        f->sink.end_run(f->sink.ctx, run, &(orch_run_end){ORCH_RUN_FINISHED, NULL, NULL}, &err),
        ORCH_OK);
    assert_int_equal(count_where(db, "steps", run, ""), 10);
    assert_int_equal(count_where(db, "nan_events", run, "input_absmax IS NOT NULL"), 1);

    /* Finished: nothing to resume. */
    assert_int_equal(f->sink.resume_run(f->sink.ctx, run, &(orch_run_resume){again, 4}, &err),
                     ORCH_EINVAL);
    char want[200];
    snprintf(want, sizeof want, "run %lld is finished; nothing to resume", (long long)run);
    assert_string_equal(err.msg, want);
    assert_int_equal(count_where(db, "steps", run, ""), 10); /* untouched */
    sqlite3_close(db);
}

static void test_resume_run_from_scratch(void **state)
{
    fixture *f = *state;
    orch_err err = {0};
    int64_t run = full_run(f, ORCH_RUN_FAILED);
    sqlite3 *db = peer(f);
    /* From -1: nothing kept; the next NaN event is the first again. */
    assert_int_equal(f->sink.resume_run(f->sink.ctx, run, &(orch_run_resume){run_info, -1}, &err),
                     ORCH_OK);
    const char *tables[] = {"steps", "metrics", "nan_events", "stage_stats", "artifacts"};
    for (size_t i = 0; i < sizeof tables / sizeof tables[0]; i++)
        assert_int_equal(count_where(db, tables[i], run, ""), 0);
    orch_nan_record ev = {2, ORCH_PHASE_FORWARD, "head", "out", 1, 0, 5.0, 1, -1, NULL};
    assert_int_equal(f->sink.nan_event(f->sink.ctx, run, &ev, &err), ORCH_OK);
    assert_int_equal(count_where(db, "nan_events", run, "input_absmax = 5.0"), 1);
    sqlite3_close(db);
}

static void test_resume_run_refusals(void **state)
{
    fixture *f = *state;
    orch_err err = {0};
    char want[700], host[256];
    gethostname(host, sizeof host);
    host[sizeof host - 1] = '\0';
    int64_t diverged = full_run(f, ORCH_RUN_DIVERGED);
    int64_t interrupted = full_run(f, ORCH_RUN_INTERRUPTED);

    assert_int_equal(f->sink.resume_run(f->sink.ctx, 42, &(orch_run_resume){run_info, 4}, &err),
                     ORCH_EINVAL);
    snprintf(want, sizeof want, "no run 42 in %s", f->db);
    assert_string_equal(err.msg, want);
    assert_int_equal(
        f->sink.resume_run(f->sink.ctx, diverged, &(orch_run_resume){run_info, 4}, &err),
        ORCH_EINVAL);
    assert_non_null(strstr(err.msg, "diverged"));
    assert_int_equal(
        f->sink.resume_run(f->sink.ctx, interrupted, &(orch_run_resume){run_info, -2}, &err),
        ORCH_EINVAL);
    assert_int_equal(f->sink.resume_run(f->sink.ctx, interrupted, NULL, &err), ORCH_EINVAL);
    orch_run_info other = run_info;
    other.config_hash = "def456";
    assert_int_equal(
        f->sink.resume_run(f->sink.ctx, interrupted, &(orch_run_resume){other, 4}, &err),
        ORCH_EINVAL);
    assert_non_null(strstr(err.msg, "configuration abc123, not def456"));

    /* Running, by a live process on this host: refused. */
    orch_run_info live = run_info;
    live.host = host;
    live.pid = getpid();
    int64_t running = 0;
    assert_int_equal(f->sink.begin_run(f->sink.ctx, &live, &running, &err), ORCH_OK);
    assert_int_equal(
        f->sink.resume_run(f->sink.ctx, running, &(orch_run_resume){run_info, -1}, &err),
        ORCH_EINVAL);
    snprintf(want, sizeof want, "run %lld is still running (pid %lld on %s)", (long long)running,
             (long long)getpid(), host);
    assert_non_null(strstr(err.msg, want));

    /* Running, by a process that is gone: taken over. */
    pid_t child = fork();
    assert_true(child >= 0);
    if (child == 0)
        _exit(0);
    assert_int_equal(waitpid(child, NULL, 0), child);
    live.pid = child;
    int64_t orphan = 0;
    assert_int_equal(f->sink.begin_run(f->sink.ctx, &live, &orphan, &err), ORCH_OK);
    assert_int_equal(
        f->sink.resume_run(f->sink.ctx, orphan, &(orch_run_resume){run_info, -1}, &err), ORCH_OK);

    sqlite3 *db = peer(f);
    assert_int_equal(peer_int(db, "SELECT count(*) FROM runs WHERE status = 'running'"), 2);
    assert_int_equal(count_where(db, "steps", interrupted, ""), 10); /* refusals deleted nothing */
    sqlite3_close(db);
}

static void test_resume_info(void **state)
{
    fixture *f = *state;
    orch_err err = {0};
    orch_resume_info ri;
    int64_t run = full_run(f, ORCH_RUN_INTERRUPTED);
    assert_int_equal(orch_store_resume_info(f->store, run, &ri, &err), ORCH_OK);
    assert_int_equal(ri.run_id, run);
    assert_string_equal(ri.pipeline, "pipelines/detach.lua");
    assert_string_equal(ri.name, "detach");
    assert_string_equal(ri.strategy, "detach");
    assert_string_equal(ri.config_json, run_info.config_json);
    assert_string_equal(ri.config_hash, "abc123");
    assert_string_equal(ri.status, "interrupted");
    assert_int_equal(ri.seed, 42);
    assert_int_equal(ri.steps, 10);
    assert_int_equal(ri.last_step, 9);
    assert_int_equal(ri.n_checkpoints, 2); /* newest first, paths resolved */
    assert_int_equal(ri.checkpoints[0].step, 8);
    assert_int_equal(ri.checkpoints[1].step, 4);
    char want[400];
    snprintf(want, sizeof want, "%s/runs/%lld/step-8.safetensors", f->dir, (long long)run);
    assert_string_equal(ri.checkpoints[0].path, want);
    assert_string_equal(ri.checkpoints[0].sha256, sha_a);
    assert_int_equal(ri.checkpoints[0].bytes, 108);
    orch_resume_info_free(&ri);
    assert_null(ri.pipeline);
    orch_resume_info_free(&ri); /* twice is fine */
    orch_resume_info_free(NULL);

    /* No checkpoint, no steps. */
    int64_t bare = begin(f);
    assert_int_equal(orch_store_resume_info(f->store, bare, &ri, &err), ORCH_OK);
    assert_int_equal(ri.steps, 0);
    assert_int_equal(ri.last_step, -1);
    assert_int_equal(ri.n_checkpoints, 0);
    assert_null(ri.checkpoints);
    assert_string_equal(ri.status, "running");
    orch_resume_info_free(&ri);

    /* A read-only store answers too; an unknown run is an error. */
    orch_store *ro = NULL;
    assert_int_equal(orch_store_open(f->db, ORCH_STORE_READONLY, &ro, &err), ORCH_OK);
    assert_int_equal(orch_store_resume_info(ro, run, &ri, &err), ORCH_OK);
    assert_int_equal(ri.checkpoints[0].step, 8);
    orch_resume_info_free(&ri);
    assert_int_equal(orch_store_resume_info(ro, 42, &ri, &err), ORCH_EINVAL);
    char msg[400];
    snprintf(msg, sizeof msg, "no run 42 in %s", f->db);
    assert_string_equal(err.msg, msg);
    assert_null(ri.pipeline);
    orch_store_close(ro);
}

/* A frozen-parameter change is written at once and does not take the
 * provenance of the run's first NaN event. */
static void test_frozen_change_is_not_first_nan(void **state)
{
    fixture *f = *state;
    orch_err err = {0};
    int64_t run = begin(f);
    sqlite3 *db = peer(f);
    orch_frozen_change frozen = {1, "visual.blocks.0.attn.qkv.weight"};
    assert_int_equal(f->sink.frozen_change(f->sink.ctx, run, &frozen, &err), ORCH_OK);
    /* at once, in its own table, never among the NaN events */
    assert_int_equal(peer_int(db, "SELECT count(*) FROM frozen_changes WHERE step = 1 AND "
                                  "parameter = 'visual.blocks.0.attn.qkv.weight'"),
                     1);
    assert_int_equal(peer_int(db, "SELECT count(*) FROM nan_events"), 0);
    orch_nan_record ev = {2, ORCH_PHASE_BACKWARD, "head", "grad_weight", 3, 0, 7.0, 1, -1, NULL};
    assert_int_equal(f->sink.nan_event(f->sink.ctx, run, &ev, &err), ORCH_OK);
    assert_int_equal(peer_int(db, "SELECT count(*) FROM nan_events"), 1);
    assert_int_equal(peer_int(db, "SELECT count(*) FROM nan_events WHERE input_absmax = 7.0 AND "
                                  "inputs_finite = 1"),
                     1);
    char *first = peer_text(db, "SELECT first_nan_step || ' ' || first_nan_stage || ' ' || "
                                "nan_events || ' ' || frozen_changed FROM run_summary");
    assert_string_equal(first, "2 head 1 1");
    free(first);
    sqlite3_close(db);
}

/* Cache uses land in run_features once per run and key; a resumed run
 * keeps them (they are not per step) and loses the frozen changes after
 * its checkpoint; both go with the run. */
static void test_cache_use_and_frozen_rows(void **state)
{
    fixture *f = *state;
    orch_err err = {0};
    int64_t run = begin(f);
    const char *k1 = "0123456789abcdef0123456789abcdef";
    const char *k2 = "fedcba9876543210fedcba9876543210";
    orch_cache_use use = {k1};
    assert_int_equal(f->sink.cache_use(f->sink.ctx, run, &use, &err), ORCH_OK);
    assert_int_equal(f->sink.cache_use(f->sink.ctx, run, &use, &err), ORCH_OK); /* again */
    use.key = k2;
    assert_int_equal(f->sink.cache_use(f->sink.ctx, run, &use, &err), ORCH_OK);
    const char *bad[] = {"", "0123", "0123456789ABCDEF0123456789ABCDEF",
                         "0123456789abcdef0123456789abcdef0", "../../../../etc/passwd0123456789"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        use.key = bad[i];
        assert_int_equal(f->sink.cache_use(f->sink.ctx, run, &use, &err), ORCH_EINVAL);
        assert_non_null(strstr(err.msg, "32 lowercase hexadecimal digits"));
    }
    assert_int_equal(f->sink.cache_use(f->sink.ctx, run, NULL, &err), ORCH_EINVAL);
    orch_frozen_change early = {2, "a"}, late = {6, "b"};
    assert_int_equal(f->sink.frozen_change(f->sink.ctx, run, &early, &err), ORCH_OK);
    assert_int_equal(f->sink.frozen_change(f->sink.ctx, run, &late, &err), ORCH_OK);
    assert_int_equal(
        f->sink.end_run(f->sink.ctx, run, &(orch_run_end){ORCH_RUN_INTERRUPTED, NULL, NULL}, &err),
        ORCH_OK);
    sqlite3 *db = peer(f);
    assert_int_equal(count_where(db, "run_features", run, ""), 2);
    assert_int_equal(count_where(db, "frozen_changes", run, ""), 2);

    assert_int_equal(f->sink.resume_run(f->sink.ctx, run, &(orch_run_resume){run_info, 4}, &err),
                     ORCH_OK);
    assert_int_equal(count_where(db, "run_features", run, ""), 2);
    assert_int_equal(count_where(db, "frozen_changes", run, ""), 1);
    assert_int_equal(count_where(db, "frozen_changes", run, "parameter = 'a'"), 1);
    use.key = k1; /* the resumed run meets the entry again */
    assert_int_equal(f->sink.cache_use(f->sink.ctx, run, &use, &err), ORCH_OK);
    assert_int_equal(
        f->sink.end_run(f->sink.ctx, run, &(orch_run_end){ORCH_RUN_FINISHED, NULL, NULL}, &err),
        ORCH_OK);
    assert_int_equal(count_where(db, "run_features", run, ""), 2);
    sqlite3_close(db);

    orch_store_close(f->store);
    f->store = NULL;
    sqlite3 *rw = NULL;
    assert_int_equal(sqlite3_open(f->db, &rw), SQLITE_OK);
    assert_int_equal(
        sqlite3_exec(rw, "PRAGMA foreign_keys = ON; DELETE FROM runs", NULL, NULL, NULL),
        SQLITE_OK);
    sqlite3_close(rw);
    db = peer(f);
    assert_int_equal(peer_int(db, "SELECT count(*) FROM run_features"), 0);
    assert_int_equal(peer_int(db, "SELECT count(*) FROM frozen_changes"), 0);
    sqlite3_close(db);
}

/* A run's data: thousands of input records batched like steps, its class
 * names, its data hash written with the run, its end reason; a resumed run
 * sends its data again (a file may have changed) and the rows of the first
 * start go; bad records are refused naming what is wrong. */
static void test_inputs_classes_and_reason(void **state)
{
    fixture *f = *state;
    orch_err err = {0};
    orch_run_info info = run_info;
    info.data_hash = sha_b;
    int64_t run = 0;
    assert_int_equal(f->sink.begin_run(f->sink.ctx, &info, &run, &err), ORCH_OK);
    enum { N = 2000 };
    for (int i = 0; i < N; i++) {
        char path[64];
        snprintf(path, sizeof path, "imgs/%05d.png", i);
        orch_run_input in = {i < 1500 ? ORCH_ROLE_TRAIN : ORCH_ROLE_EVAL, path, sha_a, i};
        assert_int_equal(f->sink.input(f->sink.ctx, run, &in, &err), ORCH_OK);
    }
    orch_run_class cat = {0, "cat"}, dog = {1, "dog"};
    assert_int_equal(f->sink.run_class(f->sink.ctx, run, &cat, &err), ORCH_OK);
    assert_int_equal(f->sink.run_class(f->sink.ctx, run, &dog, &err), ORCH_OK);

    orch_run_input bad_in[] = {
        {ORCH_ROLE__COUNT, "a", sha_a, 1}, {ORCH_ROLE_TRAIN, "", sha_a, 1},
        {ORCH_ROLE_TRAIN, NULL, sha_a, 1}, {ORCH_ROLE_TRAIN, "a", "abc", 1},
        {ORCH_ROLE_TRAIN, "a", NULL, 1},   {ORCH_ROLE_TRAIN, "a", sha_a, -1},
    };
    const char *why[] = {"not train or eval",    "needs a path",         "needs a path",
                         "a: sha256 must be 64", "a: sha256 must be 64", "a: size -1"};
    for (size_t i = 0; i < sizeof bad_in / sizeof bad_in[0]; i++) {
        assert_int_equal(f->sink.input(f->sink.ctx, run, &bad_in[i], &err), ORCH_EINVAL);
        if (strstr(err.msg, why[i]) == NULL)
            fail_msg("%zu: expected '%s' in '%s'", i, why[i], err.msg);
    }
    orch_run_class bad_class[] = {{-1, "x"}, {2, NULL}};
    for (size_t i = 0; i < 2; i++)
        assert_int_equal(f->sink.run_class(f->sink.ctx, run, &bad_class[i], &err), ORCH_EINVAL);

    assert_int_equal(f->sink.end_run(f->sink.ctx, run,
                                     &(orch_run_end){ORCH_RUN_INTERRUPTED, "interrupted by SIGINT",
                                                     "early stopping: patience 3"},
                                     &err),
                     ORCH_OK);
    sqlite3 *db = peer(f);
    assert_int_equal(count_where(db, "run_inputs", run, ""), N);
    assert_int_equal(count_where(db, "run_inputs", run, "role = 'eval'"), 500);
    assert_int_equal(count_where(db, "run_inputs", run, "path = 'imgs/01999.png' AND bytes = 1999"),
                     1);
    char *row = peer_text(db, "SELECT r.data_hash || '|' || r.end_reason || '|' || s.data_hash || "
                              "'|' || s.end_reason || '|' || (SELECT group_concat(name, ',') FROM "
                              "(SELECT name FROM run_classes ORDER BY id)) FROM runs r JOIN "
                              "run_summary s ON s.run_id = r.id");
    char want[400];
    snprintf(want, sizeof want,
             "%s|early stopping: patience 3|%s|early stopping: patience 3|cat,dog", sha_b, sha_b);
    assert_string_equal(row, want);
    free(row);

    /* resumed on other data: one file now, no classes, no reason yet */
    orch_run_info again = run_info;
    again.data_hash = sha_a;
    assert_int_equal(f->sink.resume_run(f->sink.ctx, run, &(orch_run_resume){again, -1}, &err),
                     ORCH_OK);
    assert_int_equal(count_where(db, "run_inputs", run, ""), 0);
    assert_int_equal(count_where(db, "run_classes", run, ""), 0);
    row = peer_text(db, "SELECT data_hash || '|' || (end_reason IS NULL) FROM runs");
    snprintf(want, sizeof want, "%s|1", sha_a);
    assert_string_equal(row, want);
    free(row);
    orch_run_input one = {ORCH_ROLE_TRAIN, "pv.npy", sha_b, 7};
    assert_int_equal(f->sink.input(f->sink.ctx, run, &one, &err), ORCH_OK);
    assert_int_equal(
        f->sink.end_run(f->sink.ctx, run, &(orch_run_end){ORCH_RUN_FINISHED, NULL, NULL}, &err),
        ORCH_OK);
    assert_int_equal(count_where(db, "run_inputs", run, "path = 'pv.npy' AND bytes = 7"), 1);
    assert_int_equal(count_where(db, "run_inputs", run, ""), 1);
    sqlite3_close(db);
}

/* ------------------------------------------- a write lock held elsewhere */

/* A clock the test moves by hand. Its sleep advances it and, on the
 * release_at-th sleep, commits the holder's transaction: the lock is
 * released at a chosen point, without timing. */
typedef struct fake_clock {
    double now;
    int sleeps;
    int release_at; /* 0: never */
    sqlite3 *holder;
} fake_clock;

static double fake_now(void *ctx)
{
    return ((fake_clock *)ctx)->now;
}

static void fake_sleep(void *ctx, double ms)
{
    fake_clock *c = ctx;
    c->now += ms;
    c->sleeps++;
    if (c->holder != NULL && c->sleeps == c->release_at)
        assert_int_equal(sqlite3_exec(c->holder, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
}

static void use_fake_clock(fixture *f, fake_clock *c)
{
    store_sink *k = &f->store->sink;
    c->now = 1e6;
    k->now_ms = fake_now;
    k->sleep_ms = fake_sleep;
    k->clock_ctx = c;
    k->last_commit_ms = k->oldest_ms = c->now;
}

/* Another process's connection that takes the write lock and keeps it. */
static sqlite3 *hold_lock(const fixture *f)
{
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open_v2(f->db, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "BEGIN EXCLUSIVE", NULL, NULL, NULL), SQLITE_OK);
    return db;
}

static void release_lock(sqlite3 *db)
{
    assert_int_equal(sqlite3_exec(db, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
}

/* A step and a NaN event at it. NaN events are plain inserts with an
 * increasing id (steps are upserts), so they show how many times and in
 * which order the records were written. */
static void add_step_and_event(fixture *f, int64_t run, int64_t step)
{
    orch_err err = {0};
    add_step(f, run, step, 1.0 + (double)step, 0.5);
    orch_nan_record ev = {step, ORCH_PHASE_FORWARD, "head", "out", 1, 0, 2.0, 1, -1, NULL};
    assert_int_equal(f->sink.nan_event(f->sink.ctx, run, &ev, &err), ORCH_OK);
}

/* The steps of a run's NaN events in the order they were written, "0,1,2". */
static char *steps_in_order(sqlite3 *db, int64_t run)
{
    char sql[200];
    snprintf(sql, sizeof sql,
             "SELECT group_concat(step) FROM (SELECT step FROM nan_events WHERE run_id = %lld "
             "ORDER BY id)",
             (long long)run);
    return peer_text(db, sql);
}

/* Fault 7: the lock is held across many flushes; the run keeps recording
 * (no call fails or waits), then every record lands once, in order. */
static void test_lock_held_across_flushes(void **state)
{
    fixture *f = *state;
    fake_clock c = {0};
    use_fake_clock(f, &c);
    int64_t run = begin(f);
    sqlite3 *holder = hold_lock(f);
    for (int i = 0; i < 20; i++) {
        c.now += 150.0; /* past the batch age and any backoff: each step tries */
        add_step_and_event(f, run, i);
    }
    assert_true(f->store->sink.locked);
    assert_int_equal(f->store->sink.n_recs, 40);
    assert_int_equal(c.sleeps, 0); /* the run never waited */
    assert_int_equal(peer_int(holder, "SELECT count(*) FROM steps"), 0);
    release_lock(holder);
    c.now += 10000.0;
    add_step_and_event(f, run, 20); /* the step's arrival wrote the batch */
    assert_false(f->store->sink.locked);
    assert_int_equal(f->store->sink.n_recs, 1); /* the event after it */
    assert_int_equal(peer_int(holder, "SELECT count(*) FROM steps"), 21);
    orch_err err = {0};
    assert_int_equal(f->sink.flush(f->sink.ctx, &err), ORCH_OK);
    char *order = steps_in_order(holder, run);
    assert_string_equal(order, "0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20");
    free(order);
    assert_int_equal(
        f->sink.end_run(f->sink.ctx, run, &(orch_run_end){ORCH_RUN_FINISHED, NULL, NULL}, &err),
        ORCH_OK);
    assert_int_equal(peer_int(holder, "SELECT count(*) FROM steps"), 21);
    assert_int_equal(peer_int(holder, "SELECT count(*) FROM nan_events"), 21);
    assert_int_equal(peer_int(holder, "SELECT sum(loss) FROM steps"), 21 * 22 / 2);
    sqlite3_close(holder);
}

/* A durable write (end_run, flush) waits with backoff for the lock and
 * writes everything once it is released. */
static void test_lock_durable_write_waits(void **state)
{
    fixture *f = *state;
    orch_err err = {0};
    fake_clock c = {0};
    use_fake_clock(f, &c);
    int64_t run = begin(f);
    add_step_and_event(f, run, 0);
    c.holder = hold_lock(f);
    c.release_at = 4;
    add_step_and_event(f, run, 1);
    add_step_and_event(f, run, 2);
    assert_int_equal(
        f->sink.end_run(f->sink.ctx, run, &(orch_run_end){ORCH_RUN_FINISHED, NULL, NULL}, &err),
        ORCH_OK);
    assert_int_equal(c.sleeps, 4);
    /* exponential backoff: 10 + 20 + 40 + 80 ms */
    assert_true(c.now - 1e6 >= 150.0);
    char *order = steps_in_order(c.holder, run);
    assert_string_equal(order, "0,1,2");
    free(order);
    char *status = peer_text(c.holder, "SELECT status FROM runs");
    assert_string_equal(status, "finished");
    free(status);
    sqlite3_close(c.holder);
}

/* The buffer is bounded: at max_recs pending records the run waits for the
 * lock instead of growing it. */
static void test_lock_buffer_bounded(void **state)
{
    fixture *f = *state;
    fake_clock c = {0};
    use_fake_clock(f, &c);
    int64_t run = begin(f);
    f->store->sink.max_recs = 8;
    c.holder = hold_lock(f);
    c.release_at = 2;
    for (int i = 0; i < 3; i++) {
        c.now += 150.0;
        add_step_and_event(f, run, i);
    }
    c.now += 150.0;
    add_step(f, run, 3, 1.0, 0.5);
    assert_int_equal(c.sleeps, 0);
    assert_int_equal(f->store->sink.n_recs, 7);
    orch_err err = {0};
    orch_nan_record ev = {3, ORCH_PHASE_FORWARD, "head", "out", 1, 0, 2.0, 1, -1, NULL};
    /* the eighth record: waits, then writes */
    assert_int_equal(f->sink.nan_event(f->sink.ctx, run, &ev, &err), ORCH_OK);
    assert_int_equal(c.sleeps, 2);
    assert_int_equal(f->store->sink.n_recs, 0);
    char *order = steps_in_order(c.holder, run);
    assert_string_equal(order, "0,1,2,3");
    free(order);
    sqlite3_close(c.holder);
}

/* Past the limit the run fails with a message naming the store and the
 * lock; what was committed before stays whole, and once the lock is free
 * the run can be marked failed with that message. */
static void test_lock_limit_fails_run(void **state)
{
    fixture *f = *state;
    orch_err err = {0};
    fake_clock c = {0};
    use_fake_clock(f, &c);
    f->store->sink.lock_limit_ms = 2000.0;
    int64_t run = begin(f);
    add_step_and_event(f, run, 0);
    assert_int_equal(f->sink.flush(f->sink.ctx, &err), ORCH_OK);
    sqlite3 *holder = hold_lock(f);
    int rc = ORCH_OK;
    int i = 1;
    for (; i < 100 && rc == ORCH_OK; i++) {
        c.now += 150.0;
        orch_step_record r = {i, 1.0, 0.5, 1e-3, 1.0};
        rc = f->sink.step(f->sink.ctx, run, &r, &err);
    }
    assert_int_equal(rc, ORCH_EDB);
    assert_true(i > 10 && i < 20); /* after about 2 s of held lock, not before */
    assert_non_null(strstr(err.msg, f->db));
    assert_non_null(strstr(err.msg, "write lock was held by another process"));
    assert_non_null(strstr(err.msg, "ORCH_STORE_LOCK_LIMIT_S=2"));
    char msg[ORCH_ERR_MSG_MAX];
    snprintf(msg, sizeof msg, "%s", err.msg);
    /* still held: ending the run fails after a short last wait */
    int sleeps = c.sleeps;
    assert_int_equal(
        f->sink.end_run(f->sink.ctx, run, &(orch_run_end){ORCH_RUN_FAILED, msg, NULL}, &err),
        ORCH_EDB);
    assert_true(c.sleeps > sleeps);
    release_lock(holder);
    char *ok = peer_text(holder, "PRAGMA quick_check");
    assert_string_equal(ok, "ok");
    free(ok);
    char *order = steps_in_order(holder, run);
    assert_string_equal(order, "0"); /* whole batches only */
    free(order);
    assert_int_equal(
        f->sink.end_run(f->sink.ctx, run, &(orch_run_end){ORCH_RUN_FAILED, msg, NULL}, &err),
        ORCH_OK);
    char *status = peer_text(holder, "SELECT status || ': ' || error FROM runs");
    assert_non_null(strstr(status, "failed: store: "));
    assert_non_null(strstr(status, "write lock was held"));
    free(status);
    sqlite3_close(holder);
}

/* ORCH_STORE_LOCK_LIMIT_S sets the limit; a bad value is refused. */
static void test_lock_limit_env(void **state)
{
    fixture *f = *state;
    orch_err err = {0};
    orch_store *other = NULL;
    orch_sink k2;
    setenv("ORCH_STORE_LOCK_LIMIT_S", "0.25", 1);
    assert_int_equal(orch_store_open(f->db, ORCH_STORE_READWRITE, &other, &err), ORCH_OK);
    assert_int_equal(orch_store_sink(other, &k2, &err), ORCH_OK);
    assert_true(fabs(other->sink.lock_limit_ms - 250.0) < 1e-9);
    orch_store_close(other);
    setenv("ORCH_STORE_LOCK_LIMIT_S", "ten", 1);
    assert_int_equal(orch_store_open(f->db, ORCH_STORE_READWRITE, &other, &err), ORCH_OK);
    assert_int_equal(orch_store_sink(other, &k2, &err), ORCH_EINVAL);
    assert_non_null(strstr(err.msg, "ORCH_STORE_LOCK_LIMIT_S='ten'"));
    orch_store_close(other);
    unsetenv("ORCH_STORE_LOCK_LIMIT_S");
    assert_true(fabs(f->store->sink.lock_limit_ms - 600e3) < 1e-9); /* the default */
}

/* Fault 13: the last batch cannot be written (the disk is full): the run
 * is not left running, nor finished with rows missing, but failed with the
 * reason. */
static void test_end_run_disk_full(void **state)
{
    fixture *f = *state;
    orch_err err = {0};
    fake_clock c = {0};
    use_fake_clock(f, &c); /* no batch by age: everything waits for end_run */
    int64_t run = begin(f);
    add_step(f, run, 0, 1.0, 0.5);
    assert_int_equal(f->sink.flush(f->sink.ctx, &err), ORCH_OK);
    /* the file may not grow any more */
    int64_t pages = 0;
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_prepare_v2(f->store->db, "PRAGMA page_count", -1, &st, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    pages = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    char sql[64];
    snprintf(sql, sizeof sql, "PRAGMA max_page_count = %lld", (long long)pages);
    assert_int_equal(sqlite3_exec(f->store->db, sql, NULL, NULL, NULL), SQLITE_OK);
    char name[3000];
    memset(name, 'm', sizeof name - 1);
    name[sizeof name - 1] = '\0';
    for (int i = 0; i < 100; i++) {
        name[0] = (char)('A' + i % 26);
        name[1] = (char)('A' + i / 26);
        assert_int_equal(
            f->sink.metric(f->sink.ctx, run, &(orch_metric_record){1, name, 1.0}, &err), ORCH_OK);
    }
    assert_int_equal(
        f->sink.end_run(f->sink.ctx, run, &(orch_run_end){ORCH_RUN_FINISHED, NULL, NULL}, &err),
        ORCH_EDB);
    assert_non_null(strstr(err.msg, "full"));
    sqlite3 *db = peer(f);
    char *status = peer_text(db, "SELECT status || ': ' || error FROM runs");
    assert_non_null(status);
    assert_non_null(strstr(status, "failed: the end of the run could not be recorded: "));
    assert_non_null(strstr(status, "full"));
    free(status);
    assert_int_equal(peer_int(db, "SELECT count(*) FROM metrics"), 0);
    assert_int_equal(peer_int(db, "SELECT count(*) FROM steps"), 1);
    sqlite3_close(db);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_nan_event_rank_and_host, setup, teardown),
        cmocka_unit_test_setup_teardown(test_batched_transactions, setup, teardown),
        cmocka_unit_test_setup_teardown(test_time_flush, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reader_sees_whole_batches, setup, teardown),
        cmocka_unit_test_setup_teardown(test_crash_leaves_whole_batches, setup, teardown),
        cmocka_unit_test_setup_teardown(test_first_nan_event_written_at_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_step_recorded_twice_replaces, setup, teardown),
        cmocka_unit_test_setup_teardown(test_invalid_records, setup, teardown),
        cmocka_unit_test_setup_teardown(test_two_writers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_close_flushes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pid_and_heartbeat, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stage_stats, setup, teardown),
        cmocka_unit_test_setup_teardown(test_artifact_after_its_steps, setup, teardown),
        cmocka_unit_test_setup_teardown(test_resume_run, setup, teardown),
        cmocka_unit_test_setup_teardown(test_resume_run_from_scratch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_resume_run_refusals, setup, teardown),
        cmocka_unit_test_setup_teardown(test_resume_info, setup, teardown),
        cmocka_unit_test_setup_teardown(test_frozen_change_is_not_first_nan, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cache_use_and_frozen_rows, setup, teardown),
        cmocka_unit_test_setup_teardown(test_inputs_classes_and_reason, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lock_held_across_flushes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lock_durable_write_waits, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lock_buffer_bounded, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lock_limit_fails_run, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lock_limit_env, setup, teardown),
        cmocka_unit_test_setup_teardown(test_end_run_disk_full, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
