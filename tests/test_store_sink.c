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
    if (f == NULL || make_temp_dir(f->dir, sizeof f->dir) == NULL)
        return -1;
    snprintf(f->db, sizeof f->db, "%s/orch.db", f->dir);
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
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open_v2(f->db, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    return db;
}

static int64_t peer_int(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *st = NULL;
    int64_t v = -1;
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    if (sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

static char *peer_text(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *st = NULL;
    char *v = NULL;
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0) != NULL)
        v = strdup((const char *)sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
    return v;
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
    assert_int_equal(f->sink.metric(f->sink.ctx, run, 1, "grad_norm/lora", 0.25, &err), ORCH_OK);
    assert_int_equal(f->sink.metric(f->sink.ctx, run, 1, "loss_scale", 65536.0, &err), ORCH_OK);
    assert_int_equal(f->sink.metric(f->sink.ctx, run, 2, "grad_norm/lora", NAN, &err), ORCH_OK);
    orch_nan_record first = {2, "backward", "visual.merger.mlp.2", "grad_weight", 7, 1, 65504.0, 1};
    orch_nan_record later = {2, "update", "visual.merger.mlp.2", NULL, 3, 0, 1.0, 0};
    assert_int_equal(f->sink.nan_event(f->sink.ctx, run, &first, &err), ORCH_OK);
    assert_int_equal(f->sink.nan_event(f->sink.ctx, run, &later, &err), ORCH_OK);
    assert_int_equal(
        f->sink.end_run(f->sink.ctx, run, ORCH_RUN_DIVERGED, "loss is NaN at step 2", &err),
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
            assert_int_equal(f->sink.metric(f->sink.ctx, run, i, "loss_scale", 1024.0, &err),
                             ORCH_OK);
    }
    assert_int_equal(f->sink.end_run(f->sink.ctx, run, ORCH_RUN_FINISHED, NULL, &err), ORCH_OK);
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
    assert_int_equal(f->sink.end_run(f->sink.ctx, run, ORCH_RUN_FINISHED, NULL, &err), ORCH_OK);
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
    orch_nan_record ev = {5, "forward", "blocks.3.attn", "out", 2, 0, 12.0, 1};
    assert_int_equal(f->sink.nan_event(f->sink.ctx, a, &ev, &err), ORCH_OK);
    assert_int_equal(peer_int(db, "SELECT count(*) FROM nan_events"), 1);
    ev.phase = "backward";
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

static void test_step_recorded_twice_replaces(void **state)
{
    fixture *f = *state;
    orch_err err = {0};
    int64_t run = begin(f);
    add_step(f, run, 7, 3.0, 1.0);
    add_step(f, run, 7, 2.0, 1.0);
    assert_int_equal(f->sink.metric(f->sink.ctx, run, 7, "m", 1.0, &err), ORCH_OK);
    assert_int_equal(f->sink.metric(f->sink.ctx, run, 7, "m", 4.0, &err), ORCH_OK);
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

    orch_nan_record ev = {1, "sideways", "s", "t", 1, 0, 0.0, 1};
    assert_int_equal(f->sink.nan_event(f->sink.ctx, run, &ev, &err), ORCH_EINVAL);
    assert_non_null(strstr(err.msg, "sideways"));
    ev.phase = "forward";
    ev.stage = NULL;
    assert_int_equal(f->sink.nan_event(f->sink.ctx, run, &ev, &err), ORCH_EINVAL);
    assert_int_equal(f->sink.metric(f->sink.ctx, run, 1, "", 1.0, &err), ORCH_EINVAL);
    assert_int_equal(f->sink.end_run(f->sink.ctx, run, ORCH_RUN_RUNNING, NULL, &err), ORCH_EINVAL);
    assert_int_equal(f->sink.end_run(f->sink.ctx, 999, ORCH_RUN_FAILED, "x", &err), ORCH_EINVAL);
    assert_non_null(strstr(err.msg, "no run 999"));

    /* A batch that cannot be written (no run 999) is rolled back and
     * dropped; the sink keeps working. */
    add_step(f, run, 0, 1.0, 1.0);
    add_step(f, 999, 0, 1.0, 1.0);
    assert_int_equal(f->sink.flush(f->sink.ctx, &err), ORCH_EDB);
    assert_non_null(strstr(err.msg, "FOREIGN KEY"));
    add_step(f, run, 1, 1.0, 1.0);
    assert_int_equal(f->sink.end_run(f->sink.ctx, run, ORCH_RUN_FAILED, "boom", &err), ORCH_OK);
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
    assert_int_equal(k2.end_run(k2.ctx, b, ORCH_RUN_INTERRUPTED, NULL, &err), ORCH_OK);
    assert_int_equal(f->sink.end_run(f->sink.ctx, a, ORCH_RUN_FINISHED, NULL, &err), ORCH_OK);
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_batched_transactions, setup, teardown),
        cmocka_unit_test_setup_teardown(test_time_flush, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reader_sees_whole_batches, setup, teardown),
        cmocka_unit_test_setup_teardown(test_crash_leaves_whole_batches, setup, teardown),
        cmocka_unit_test_setup_teardown(test_first_nan_event_written_at_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_step_recorded_twice_replaces, setup, teardown),
        cmocka_unit_test_setup_teardown(test_invalid_records, setup, teardown),
        cmocka_unit_test_setup_teardown(test_two_writers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_close_flushes, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
