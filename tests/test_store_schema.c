/*
 * test_store_schema.c - creating, identifying and migrating the store.
 *
 * Stores live in a fresh temporary directory per test; a second, raw
 * SQLite connection inspects what orch_store wrote.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "store/store.h"
#include "store/store_int.h"
#include "tests/testutil.h"
#include "tests/testutil_sql.h"

typedef struct fixture {
    char dir[256];
    char db[300];
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    if (f == NULL || make_temp_store(f->dir, sizeof f->dir, f->db, sizeof f->db) != 0)
        return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    remove_tree(f->dir);
    free(f);
    return 0;
}

/* The first column of the first row of sql on a raw connection to path
 * (this file's name for raw_int). */
static int64_t scalar(const char *path, const char *sql)
{
    return raw_int(path, sql);
}

static int64_t count_objects(const char *path)
{
    return scalar(path, "SELECT count(*) FROM sqlite_schema WHERE name NOT LIKE 'sqlite%'");
}

/* --------------------------------------------------------------- tests */

static void test_fresh_store_has_schema(void **state)
{
    fixture *f = *state;
    orch_store *s = NULL;
    orch_err err = {0};
    assert_int_equal(orch_store_open(f->db, ORCH_STORE_READWRITE, &s, &err), ORCH_OK);
    assert_non_null(s);
    assert_string_equal(orch_store_path(s), f->db);
    orch_store_close(s);

    assert_int_equal(scalar(f->db, "PRAGMA user_version"), ORCH_STORE_SCHEMA_VERSION);
    assert_int_equal(scalar(f->db, "PRAGMA application_id"), ORCH_STORE_APPLICATION_ID);
    const char *objects[] = {"runs",           "steps",        "nan_events", "metrics",
                             "run_summary",    "stage_stats",  "artifacts",  "run_checkpoints",
                             "frozen_changes", "run_features", "sweeps",     "sweep_runs"};
    for (size_t i = 0; i < sizeof objects / sizeof objects[0]; i++) {
        char sql[160];
        snprintf(sql, sizeof sql, "SELECT count(*) FROM sqlite_schema WHERE name = '%s'",
                 objects[i]);
        assert_int_equal(scalar(f->db, sql), 1);
    }
    assert_int_equal(scalar(f->db, "SELECT count(*) FROM sqlite_schema WHERE type = 'index' "
                                   "AND name IN ('runs_pipeline', 'nan_events_run_step', "
                                   "'artifacts_run_kind_step')"),
                     3);
    assert_int_equal(scalar(f->db, "SELECT count(*) FROM pragma_table_info('runs') "
                                   "WHERE name IN ('pid', 'heartbeat_at')"),
                     2);
    /* WAL is a property of the file; a raw reader sees it. */
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_open(f->db, &db), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(st, 0), "wal");
    sqlite3_finalize(st);
    sqlite3_close(db);
}

static void test_open_twice_is_idempotent(void **state)
{
    fixture *f = *state;
    orch_store *s = NULL;
    orch_err err = {0};
    assert_int_equal(orch_store_open(f->db, ORCH_STORE_READWRITE, &s, &err), ORCH_OK);
    orch_store_close(s);
    raw_exec(f->db, "INSERT INTO runs (pipeline, name, strategy) VALUES ('p.lua', 'p', 'lora')");
    int64_t objects = count_objects(f->db);
    int64_t schema_version = scalar(f->db, "PRAGMA schema_version");

    for (int i = 0; i < 2; i++) {
        assert_int_equal(orch_store_open(f->db, ORCH_STORE_READWRITE, &s, &err), ORCH_OK);
        orch_store_close(s);
    }
    assert_int_equal(scalar(f->db, "PRAGMA user_version"), ORCH_STORE_SCHEMA_VERSION);
    assert_int_equal(count_objects(f->db), objects);
    /* No DDL ran again: the schema cookie did not move. */
    assert_int_equal(scalar(f->db, "PRAGMA schema_version"), schema_version);
    assert_int_equal(scalar(f->db, "SELECT count(*) FROM runs"), 1);

    assert_int_equal(orch_store_open(f->db, ORCH_STORE_READONLY, &s, &err), ORCH_OK);
    orch_store_close(s);
}

static void test_newer_version_refused(void **state)
{
    fixture *f = *state;
    orch_store *s = NULL;
    orch_err err = {0};
    assert_int_equal(orch_store_open(f->db, ORCH_STORE_READWRITE, &s, &err), ORCH_OK);
    orch_store_close(s);
    raw_exec(f->db, "PRAGMA user_version = 99");

    assert_int_equal(orch_store_open(f->db, ORCH_STORE_READWRITE, &s, &err), ORCH_EINVAL);
    assert_null(s);
    assert_non_null(strstr(err.msg, "schema version 99, newer than this orch knows"));
    orch_err_clear(&err);
    assert_int_equal(orch_store_open(f->db, ORCH_STORE_READONLY, &s, &err), ORCH_EINVAL);
    assert_non_null(strstr(err.msg, "schema version 99"));
    assert_int_equal(scalar(f->db, "PRAGMA user_version"), 99);
}

static void test_not_a_database(void **state)
{
    fixture *f = *state;
    orch_store *s = NULL;
    orch_err err = {0};
    char text[4096];
    memset(text, 'x', sizeof text - 1);
    text[sizeof text - 1] = '\0';
    assert_int_equal(write_text_file(f->db, text), 0);
    assert_int_equal(orch_store_open(f->db, ORCH_STORE_READWRITE, &s, &err), ORCH_EINVAL);
    assert_non_null(strstr(err.msg, "is not an orch store"));
    assert_null(strchr(err.msg, '\n'));
    orch_err_clear(&err);
    assert_int_equal(orch_store_open(f->db, ORCH_STORE_READONLY, &s, &err), ORCH_EINVAL);
    assert_non_null(strstr(err.msg, "is not an orch store"));
    /* The file was not touched. */
    char *back = read_whole_file(f->db, NULL);
    assert_non_null(back);
    assert_string_equal(back, text);
    free(back);
}

static void test_foreign_database_refused(void **state)
{
    fixture *f = *state;
    orch_store *s = NULL;
    orch_err err = {0};
    raw_exec(f->db, "CREATE TABLE photos (id INTEGER PRIMARY KEY, path TEXT)");
    assert_int_equal(orch_store_open(f->db, ORCH_STORE_READWRITE, &s, &err), ORCH_EINVAL);
    assert_non_null(strstr(err.msg, "not an orch store"));
    assert_int_equal(count_objects(f->db), 1);

    orch_err_clear(&err);
    raw_exec(f->db, "PRAGMA application_id = 42");
    assert_int_equal(orch_store_open(f->db, ORCH_STORE_READONLY, &s, &err), ORCH_EINVAL);
    assert_non_null(strstr(err.msg, "another application"));

    /* An empty SQLite file is fine to adopt read-write, not to read. */
    char empty[320];
    snprintf(empty, sizeof empty, "%s/empty.db", f->dir);
    raw_exec(empty, "PRAGMA user_version = 0");
    orch_err_clear(&err);
    assert_int_equal(orch_store_open(empty, ORCH_STORE_READONLY, &s, &err), ORCH_EINVAL);
    assert_non_null(strstr(err.msg, "not an orch store"));
    assert_int_equal(orch_store_open(empty, ORCH_STORE_READWRITE, &s, &err), ORCH_OK);
    orch_store_close(s);
}

static void test_missing_store_and_directory(void **state)
{
    fixture *f = *state;
    orch_store *s = NULL;
    orch_err err = {0};
    assert_int_equal(orch_store_open(f->db, ORCH_STORE_READONLY, &s, &err), ORCH_EINVAL);
    char want[400];
    snprintf(want, sizeof want, "no store at %s (run a pipeline first, or pass --db)", f->db);
    assert_string_equal(err.msg, want);
    struct stat sb;
    assert_int_not_equal(stat(f->db, &sb), 0); /* reading did not create it */

    char deep[400];
    snprintf(deep, sizeof deep, "%s/no/such/dir/orch.db", f->dir);
    orch_err_clear(&err);
    assert_int_equal(orch_store_open(deep, ORCH_STORE_READWRITE, &s, &err), ORCH_EINVAL);
    assert_non_null(strstr(err.msg, "no directory"));
    orch_err_clear(&err);
    assert_int_equal(orch_store_open(deep, ORCH_STORE_READONLY, &s, &err), ORCH_EINVAL);
    assert_non_null(strstr(err.msg, "no store at"));
    orch_err_clear(&err);
    assert_int_equal(orch_store_open(f->dir, ORCH_STORE_READWRITE, &s, &err), ORCH_EINVAL);
    assert_non_null(strstr(err.msg, "is a directory"));
    orch_err_clear(&err);
    assert_int_equal(orch_store_open(NULL, ORCH_STORE_READWRITE, &s, &err), ORCH_EINVAL);
    assert_null(s);
}

static void test_memory_store(void **state)
{
    (void)state;
    orch_store *s = NULL;
    orch_err err = {0};
    assert_int_equal(orch_store_open(":memory:", ORCH_STORE_READWRITE, &s, &err), ORCH_OK);
    orch_store_close(s);
    assert_int_equal(orch_store_open(":memory:", ORCH_STORE_READONLY, &s, &err), ORCH_EINVAL);
    orch_store_close(NULL);
}

/* Migrations run forward from the stored version, once each, in one
 * transaction; a failing one leaves the store as it was. */
static void test_migrations_run_forward(void **state)
{
    fixture *f = *state;
    orch_err err = {0};
    sqlite3 *db = NULL;
    static const char *const v1[] = {"CREATE TABLE a (x);"};
    static const char *const v2[] = {"CREATE TABLE a (x);", "CREATE TABLE b (y);"};
    static const char *const v3_broken[] = {"CREATE TABLE a (x);", "CREATE TABLE b (y);",
                                            "CREATE TABLE c (z); SELEC 1;"};
    assert_int_equal(sqlite3_open(f->db, &db), SQLITE_OK);
    assert_int_equal(store_migrate(db, f->db, v1, 1, &err), ORCH_OK);
    assert_int_equal(store_migrate(db, f->db, v1, 1, &err), ORCH_OK); /* no "table a exists" */
    assert_int_equal(scalar(f->db, "PRAGMA user_version"), 1);
    assert_int_equal(store_migrate(db, f->db, v2, 2, &err), ORCH_OK);
    assert_int_equal(scalar(f->db, "PRAGMA user_version"), 2);
    assert_int_equal(count_objects(f->db), 2);

    assert_int_equal(store_migrate(db, f->db, v3_broken, 3, &err), ORCH_EDB);
    assert_non_null(strstr(err.msg, "migrating to schema version 3"));
    assert_int_equal(scalar(f->db, "PRAGMA user_version"), 2);
    assert_int_equal(scalar(f->db, "SELECT count(*) FROM sqlite_schema WHERE name = 'c'"), 0);
    assert_int_equal(sqlite3_get_autocommit(db), 1);

    orch_err_clear(&err);
    assert_int_equal(store_migrate(db, f->db, v1, 1, &err), ORCH_EINVAL); /* 2 is newer */
    sqlite3_close(db);
}

static void test_constraints(void **state)
{
    fixture *f = *state;
    orch_store *s = NULL;
    orch_err err = {0};
    assert_int_equal(orch_store_open(f->db, ORCH_STORE_READWRITE, &s, &err), ORCH_OK);
    orch_store_close(s);
    raw_exec(f->db, "INSERT INTO runs (id, pipeline, name, strategy, status) "
                    "VALUES (1, 'p.lua', 'p', 'lora', 'running');"
                    "INSERT INTO steps (run_id, step, loss) VALUES (1, 0, 1.0);"
                    "INSERT INTO metrics (run_id, step, name, value) VALUES (1, 0, 'm', 2.0);"
                    "INSERT INTO nan_events (run_id, step, phase, stage) "
                    "VALUES (1, 0, 'forward', 's');"
                    "INSERT INTO stage_stats (run_id, step, stage) VALUES (1, 0, 's');"
                    "INSERT INTO artifacts (run_id, step, kind, path, sha256, bytes) "
                    "VALUES (1, 0, 'checkpoint', 'a', 'h', 1)");
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(f->db, &db), SQLITE_OK);
    sqlite3_exec(db, "PRAGMA foreign_keys = ON", NULL, NULL, NULL);
    const char *bad[] = {
        "UPDATE runs SET status = 'done'",
        "UPDATE runs SET config_json = '{not json'",
        "INSERT INTO nan_events (run_id, step, phase, stage) VALUES (1, 0, 'sideways', 's')",
        "INSERT INTO steps (run_id, step) VALUES (7, 0)",
        "INSERT INTO steps (run_id, step) VALUES (1, 0)",
        "INSERT INTO stage_stats (run_id, step, stage) VALUES (1, 0, 's')",
        "INSERT INTO stage_stats (run_id, step, stage) VALUES (7, 0, 's')",
        "INSERT INTO artifacts (run_id, step, kind, path, sha256) VALUES (1, 1, 'model', 'a', 'h')",
        "INSERT INTO artifacts (run_id, step, kind, path, sha256) VALUES (1, 0, 'checkpoint', "
        "'b', 'h')",
        "INSERT INTO artifacts (run_id, step, kind, path, sha256, bytes) VALUES (1, 2, "
        "'checkpoint', 'c', 'h', -1)",
        "INSERT INTO artifacts (run_id, step, kind, path, sha256) VALUES (7, 0, 'checkpoint', "
        "'d', 'h')",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(sqlite3_exec(db, bad[i], NULL, NULL, NULL) & 0xff, SQLITE_CONSTRAINT);

    /* version 5: skipped is a status; sweeps and their runs */
    assert_int_equal(sqlite3_exec(db,
                                  "UPDATE runs SET status = 'skipped';"
                                  "UPDATE runs SET status = 'running';"
                                  "INSERT INTO sweeps (id, name, hash) VALUES (1, 'sw', 'h');"
                                  "INSERT INTO sweep_runs (sweep_id, point, run_id) "
                                  "VALUES (1, 'a', 1)",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    const char *bad_v5[] = {
        "UPDATE sweeps SET status = 'queued'",
        "INSERT INTO sweeps (name, hash) VALUES ('sw', 'h')",
        "INSERT INTO sweeps (name) VALUES ('no hash')",
        "INSERT INTO sweep_runs (sweep_id, point, run_id) VALUES (1, 'a', 1)",
        "INSERT INTO sweep_runs (sweep_id, point, run_id) VALUES (1, 'b', 1)",
        "INSERT INTO sweep_runs (sweep_id, point, run_id) VALUES (2, 'c', 1)",
        "INSERT INTO sweep_runs (sweep_id, point, run_id) VALUES (1, 'd', 7)",
        "UPDATE sweep_runs SET attempts = -1",
        "UPDATE runs SET uuid = 'short'",
        "INSERT INTO runs (pipeline, name, strategy, uuid) SELECT pipeline, name, strategy, uuid "
        "FROM runs WHERE id = 1",
    };
    for (size_t i = 0; i < sizeof bad_v5 / sizeof bad_v5[0]; i++)
        if ((sqlite3_exec(db, bad_v5[i], NULL, NULL, NULL) & 0xff) != SQLITE_CONSTRAINT)
            fail_msg("not refused: %s", bad_v5[i]);
    assert_int_equal(sqlite3_exec(db, "DELETE FROM runs WHERE id = 1", NULL, NULL, NULL),
                     SQLITE_OK);
    sqlite3_close(db);
    assert_int_equal(scalar(f->db, "SELECT (SELECT count(*) FROM steps) + (SELECT count(*) "
                                   "FROM metrics) + (SELECT count(*) FROM nan_events) + (SELECT "
                                   "count(*) FROM stage_stats) + (SELECT count(*) FROM artifacts) "
                                   "+ (SELECT count(*) FROM sweep_runs)"),
                     0);
    /* a sweep removed takes its links with it */
    raw_exec(f->db, "PRAGMA foreign_keys = ON;"
                    "INSERT INTO runs (id, pipeline, name, strategy) VALUES (2, 'p', 'p', 's');"
                    "INSERT INTO sweep_runs (sweep_id, point, run_id) VALUES (1, 'a', 2);"
                    "DELETE FROM sweeps WHERE id = 1");
    assert_int_equal(scalar(f->db, "SELECT count(*) FROM sweep_runs"), 0);
    assert_int_equal(scalar(f->db, "SELECT count(*) FROM runs"), 1);
}

/* ------------------------------------------------- migration from v1 */

/* Every row of sql as one string: reals with 17 digits, NULL as NULL. */
static char *dump(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *st = NULL;
    size_t n = 0;
    char *text = NULL;
    FILE *out = open_memstream(&text, &n);
    assert_non_null(out);
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    while (sqlite3_step(st) == SQLITE_ROW) {
        for (int i = 0; i < sqlite3_column_count(st); i++) {
            switch (sqlite3_column_type(st, i)) {
            case SQLITE_NULL:
                fputs("NULL", out);
                break;
            case SQLITE_INTEGER:
                fprintf(out, "%lld", (long long)sqlite3_column_int64(st, i));
                break;
            case SQLITE_FLOAT:
                fprintf(out, "%.17g", sqlite3_column_double(st, i));
                break;
            default:
                fprintf(out, "'%s'", (const char *)sqlite3_column_text(st, i));
            }
            fputc(i + 1 < sqlite3_column_count(st) ? '|' : '\n', out);
        }
    }
    sqlite3_finalize(st);
    fclose(out);
    return text;
}

/* What version 1 holds, in version 1's columns. */
static const char *const v1_dumps[] = {
    "SELECT id, pipeline, name, strategy, status, config_json, config_hash, seed, host, "
    "created_at, started_at, finished_at, orch_version, error FROM runs ORDER BY id",
    "SELECT run_id, step, loss, grad_norm, lr, wall_ms, finite FROM steps ORDER BY run_id, step",
    "SELECT run_id, step, name, value FROM metrics ORDER BY run_id, name, step",
    "SELECT id, run_id, step, phase, stage, tensor, nan_count, inf_count, input_absmax, "
    "inputs_finite FROM nan_events ORDER BY id",
    "SELECT run_id, pipeline, name, strategy, lr, precision, seed, status, steps, last_step, "
    "final_loss, best_loss, max_grad_norm, nonfinite_steps, first_nonfinite_step, "
    "first_nan_step, first_nan_phase, first_nan_stage, first_nan_tensor, nan_events, tags, "
    "created_at, started_at, finished_at FROM run_summary",
};
#define N_DUMPS (sizeof v1_dumps / sizeof v1_dumps[0])

/* A store written by schema version 1 (its migration alone, as the orch of
 * version 1 ran it), with runs, steps, metrics and NaN events in it. */
static void write_v1_store(const char *path)
{
    sqlite3 *db = NULL;
    orch_err err = {0};
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    sqlite3_exec(db, "PRAGMA journal_mode = WAL", NULL, NULL, NULL);
    assert_int_equal(store_migrate(db, path, store_migrations, 1, &err), ORCH_OK);
    sqlite3_close(db);
    raw_exec(
        path,
        "INSERT INTO runs (pipeline, name, strategy, status, config_json, config_hash, seed, "
        "host, started_at, finished_at, orch_version, error) VALUES "
        "('pipelines/lora.lua', 'lora', 'lora', 'finished', "
        "'{\"optimizer\":{\"lr\":0.0002},\"precision\":\"fp16\",\"tags\":[\"sweep\"]}', "
        "'aa', 7, 'vm', '2024-05-01T10:00:00.000Z', '2024-05-01T10:05:00.000Z', '0.0.9', NULL),"
        "('pipelines/surgery.lua', 'surgery', 'surgery', 'diverged', "
        "'{\"optimizer\":{\"lr\":0.01},\"precision\":\"bf16\"}', 'bb', -3, 'vm', "
        "'2024-05-02T10:00:00.000Z', '2024-05-02T10:01:00.000Z', '0.0.9', 'loss is NaN'),"
        "('pipelines/detach.lua', 'detach', 'detach', 'running', '{}', NULL, 1, 'vm', "
        "'2024-05-03T10:00:00.000Z', NULL, '0.0.9', NULL);"
        "INSERT INTO steps (run_id, step, loss, grad_norm, lr, wall_ms) VALUES "
        "(1, 0, 2.5, 1.0, 1e-3, 10.0), (1, 1, 0.1, 0.30000000000000004, 1e-3, 30.0),"
        "(2, 0, 3.0, 9e999, 1e-2, 5.0), (2, 1, NULL, NULL, 1e-2, 5.0),"
        "(3, 0, 1.0, 1.0, 1e-3, NULL);"
        "INSERT INTO metrics (run_id, step, name, value) VALUES "
        "(1, 0, 'loss_scale', 65536.0), (1, 1, 'grad_norm/lora', NULL), (2, 1, 'm', -9e999);"
        "INSERT INTO nan_events (run_id, step, phase, stage, tensor, nan_count, inf_count, "
        "input_absmax, inputs_finite) VALUES "
        "(2, 1, 'backward', 'visual.merger.mlp.2', 'grad_weight', 4, 2, 65504.0, 1),"
        "(2, 1, 'update', 'visual.merger.mlp.0', NULL, 1, 0, NULL, NULL)");
}

static void test_migrate_from_v1(void **state)
{
    fixture *f = *state;
    orch_store *s = NULL;
    orch_err err = {0};
    char *before[N_DUMPS];
    sqlite3 *db = NULL;
    write_v1_store(f->db);
    assert_int_equal(scalar(f->db, "PRAGMA user_version"), 1);
    assert_int_equal(sqlite3_open_v2(f->db, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    for (size_t i = 0; i < N_DUMPS; i++)
        before[i] = dump(db, v1_dumps[i]);
    sqlite3_close(db);
    assert_non_null(strstr(before[1], "0.30000000000000004"));

    /* Reading commands do not migrate. */
    assert_int_equal(orch_store_open(f->db, ORCH_STORE_READONLY, &s, &err), ORCH_EINVAL);
    char want[80];
    snprintf(want, sizeof want, "schema version 1 and needs migrating to %d",
             ORCH_STORE_SCHEMA_VERSION);
    assert_non_null(strstr(err.msg, want));

    assert_int_equal(orch_store_open(f->db, ORCH_STORE_READWRITE, &s, &err), ORCH_OK);
    orch_store_close(s);
    assert_int_equal(scalar(f->db, "PRAGMA user_version"), ORCH_STORE_SCHEMA_VERSION);
    assert_int_equal(scalar(f->db, "PRAGMA application_id"), ORCH_STORE_APPLICATION_ID);
    assert_int_equal(scalar(f->db, "SELECT count(*) FROM pragma_integrity_check "
                                   "WHERE integrity_check = 'ok'"),
                     1);
    assert_int_equal(scalar(f->db, "SELECT count(*) FROM pragma_foreign_key_check"), 0);

    /* Everything is there, unchanged. */
    assert_int_equal(sqlite3_open_v2(f->db, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    for (size_t i = 0; i < N_DUMPS; i++) {
        char *after = dump(db, v1_dumps[i]);
        if (strcmp(before[i], after) != 0)
            fail_msg("%s\nbefore:\n%s\nafter:\n%s", v1_dumps[i], before[i], after);
        free(after);
        free(before[i]);
    }
    sqlite3_close(db);

    /* The new tables exist and are empty; the new columns are NULL. */
    assert_int_equal(scalar(f->db, "SELECT count(*) FROM stage_stats"), 0);
    assert_int_equal(scalar(f->db, "SELECT count(*) FROM artifacts"), 0);
    assert_int_equal(scalar(f->db, "SELECT count(*) FROM run_checkpoints"), 0);
    assert_int_equal(scalar(f->db, "SELECT count(*) FROM runs WHERE pid IS NULL AND "
                                   "heartbeat_at IS NULL"),
                     3);
    /* The new summary columns are computed for old runs: 2 steps in 40 ms. */
    assert_int_equal(scalar(f->db, "SELECT steps_per_s = 50.0 FROM run_summary WHERE run_id = 1"),
                     1);
    assert_int_equal(scalar(f->db, "SELECT steps_per_s IS NULL AND last_checkpoint_step IS NULL "
                                   "AND frozen_changed = 0 FROM run_summary WHERE run_id = 3"),
                     1);

    /* It is a v2 store in every way: read-only opens, the sink records. */
    assert_int_equal(orch_store_open(f->db, ORCH_STORE_READONLY, &s, &err), ORCH_OK);
    orch_store_close(s);
    orch_sink k;
    int64_t run = 0;
    orch_run_info info = {.pipeline = "p.lua", .name = "p", .strategy = "full", .pid = 99};
    assert_int_equal(orch_store_open(f->db, ORCH_STORE_READWRITE, &s, &err), ORCH_OK);
    assert_int_equal(orch_store_sink(s, &k, &err), ORCH_OK);
    assert_int_equal(k.begin_run(k.ctx, &info, &run, &err), ORCH_OK);
    assert_int_equal(run, 4);
    orch_stage_stat st = {0, "visual.blocks.0", 1.0, 0.5, 0.25};
    assert_int_equal(k.stage_stat(k.ctx, run, &st, &err), ORCH_OK);
    assert_int_equal(k.end_run(k.ctx, run, &(orch_run_end){ORCH_RUN_FINISHED, NULL, NULL}, &err),
                     ORCH_OK);
    orch_store_close(s);
    assert_int_equal(scalar(f->db, "SELECT pid FROM runs WHERE id = 4"), 99);
    assert_int_equal(scalar(f->db, "SELECT count(*) FROM stage_stats WHERE run_id = 4"), 1);
}

/* What version 2 holds, every column of every table and view. */
static const char *const v2_dumps[] = {
    /* the v2 columns: v4 adds kernels, kernels_why, cpu, threads (NULL here) */
    "SELECT id, pipeline, name, strategy, status, config_json, config_hash, seed, host, "
    "created_at, started_at, finished_at, orch_version, error, pid, heartbeat_at FROM runs "
    "ORDER BY id",
    "SELECT * FROM steps ORDER BY run_id, step",
    "SELECT * FROM metrics ORDER BY run_id, name, step",
    /* v6 adds rank and host (NULL here) */
    "SELECT id, run_id, step, phase, stage, tensor, nan_count, inf_count, input_absmax, "
    "inputs_finite FROM nan_events ORDER BY id",
    "SELECT * FROM stage_stats ORDER BY run_id, step, stage",
    "SELECT * FROM artifacts ORDER BY id",
    "SELECT * FROM run_checkpoints",
    /* the v2 view's columns: v5 appends uuid, sweep_id, point, rank */
    "SELECT run_id, pipeline, name, strategy, lr, precision, seed, status, steps, last_step, "
    "final_loss, best_loss, max_grad_norm, nonfinite_steps, first_nonfinite_step, "
    "first_nan_step, first_nan_phase, first_nan_stage, first_nan_tensor, nan_events, tags, "
    "created_at, started_at, finished_at, steps_per_s, frozen_changed, last_checkpoint_step, "
    "pid, host, heartbeat_at FROM run_summary",
};
#define N_V2_DUMPS (sizeof v2_dumps / sizeof v2_dumps[0])

/* Version 2 -> 3 rebuilds runs with AUTOINCREMENT: nothing is lost or
 * changed, every foreign key still holds and cascades, and a deleted run's
 * id is never given to a new run. */
static void test_migrate_from_v2(void **state)
{
    fixture *f = *state;
    orch_store *s = NULL;
    orch_err err = {0};
    sqlite3 *db = NULL;
    char *before[N_V2_DUMPS];
    write_v1_store(f->db);
    assert_int_equal(sqlite3_open(f->db, &db), SQLITE_OK);
    assert_int_equal(store_migrate(db, f->db, store_migrations, 2, &err), ORCH_OK);
    sqlite3_close(db);
    raw_exec(f->db,
             "UPDATE runs SET pid = 4242, heartbeat_at = '2024-05-03T10:00:01.000Z' WHERE id = 3;"
             "INSERT INTO stage_stats VALUES (1, 0, 'visual.blocks.0', 1.5, 0.5, NULL),"
             "(3, 0, 'head', 2.0, 1.0, 0.25);"
             "INSERT INTO artifacts (run_id, step, kind, path, sha256, bytes) VALUES "
             "(1, 1, 'checkpoint', 'orch.db.runs/1/checkpoint-1.safetensors', 'ab', 10),"
             "(3, 0, 'checkpoint', '/abs/checkpoint-0.safetensors', 'cd', 20)");
    assert_int_equal(scalar(f->db, "PRAGMA user_version"), 2);
    assert_int_equal(sqlite3_open_v2(f->db, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    for (size_t i = 0; i < N_V2_DUMPS; i++)
        before[i] = dump(db, v2_dumps[i]);
    sqlite3_close(db);

    assert_int_equal(orch_store_open(f->db, ORCH_STORE_READWRITE, &s, &err), ORCH_OK);
    orch_store_close(s);
    assert_int_equal(scalar(f->db, "PRAGMA user_version"), ORCH_STORE_SCHEMA_VERSION);
    assert_int_equal(scalar(f->db, "SELECT count(*) FROM pragma_integrity_check "
                                   "WHERE integrity_check = 'ok'"),
                     1);
    assert_int_equal(scalar(f->db, "SELECT count(*) FROM pragma_foreign_key_check"), 0);
    assert_int_equal(scalar(f->db, "SELECT sql LIKE '%AUTOINCREMENT%' FROM sqlite_schema "
                                   "WHERE name = 'runs'"),
                     1);
    assert_int_equal(scalar(f->db, "SELECT seq FROM sqlite_sequence WHERE name = 'runs'"), 3);
    assert_int_equal(scalar(f->db, "SELECT count(*) FROM sqlite_schema WHERE name IN "
                                   "('runs_pipeline', 'runs_status', 'runs_v3')"),
                     2);
    assert_int_equal(sqlite3_open_v2(f->db, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    for (size_t i = 0; i < N_V2_DUMPS; i++) {
        char *after = dump(db, v2_dumps[i]);
        if (strcmp(before[i], after) != 0)
            fail_msg("%s\nbefore:\n%s\nafter:\n%s", v2_dumps[i], before[i], after);
        free(after);
        free(before[i]);
    }
    sqlite3_close(db);

    /* the newest run removed: its rows cascade, and its id is not reused */
    FILE *devnull = fopen("/dev/null", "w");
    assert_non_null(devnull);
    int64_t gone = 3;
    assert_int_equal(orch_store_open(f->db, ORCH_STORE_READWRITE, &s, &err), ORCH_OK);
    raw_exec(f->db, "UPDATE runs SET status = 'interrupted' WHERE id = 3;"
                    "INSERT INTO frozen_changes (run_id, step, parameter) VALUES (3, 0, 'p');"
                    "INSERT INTO run_features VALUES (3, '0123456789abcdef0123456789abcdef')");
    assert_int_equal(orch_store_rm(s, &gone, 1, 0, devnull, &err), ORCH_OK);
    fclose(devnull);
    const char *tables[] = {"steps",      "stage_stats",    "artifacts",   "metrics",
                            "nan_events", "frozen_changes", "run_features"};
    for (size_t i = 0; i < sizeof tables / sizeof tables[0]; i++) {
        char sql[128];
        snprintf(sql, sizeof sql, "SELECT count(*) FROM %s WHERE run_id = 3", tables[i]);
        assert_int_equal(scalar(f->db, sql), 0);
    }
    assert_int_equal(scalar(f->db, "SELECT count(*) FROM steps WHERE run_id = 1"), 2);
    orch_sink k;
    int64_t run = 0;
    orch_run_info info = {.pipeline = "p.lua", .name = "p", .strategy = "full", .pid = 99};
    assert_int_equal(orch_store_sink(s, &k, &err), ORCH_OK);
    assert_int_equal(k.begin_run(k.ctx, &info, &run, &err), ORCH_OK);
    assert_int_equal(run, 4);
    assert_int_equal(k.end_run(k.ctx, run, &(orch_run_end){ORCH_RUN_FINISHED, NULL, NULL}, &err),
                     ORCH_OK);
    orch_store_close(s);
}

/* Version 2 stored frozen-parameter changes as nan_events rows with tensor
 * 'frozen_changed'; version 3 moves them into frozen_changes, in order,
 * and run_summary reads the same before and after. */
static void test_migrate_v2_frozen_changes(void **state)
{
    fixture *f = *state;
    orch_store *s = NULL;
    orch_err err = {0};
    sqlite3 *db = NULL;
    write_v1_store(f->db);
    assert_int_equal(sqlite3_open(f->db, &db), SQLITE_OK);
    assert_int_equal(store_migrate(db, f->db, store_migrations, 2, &err), ORCH_OK);
    sqlite3_close(db);
    /* run 1: two changes before a real NaN event; run 3: a change only */
    raw_exec(f->db,
             "INSERT INTO nan_events (run_id, step, phase, stage, tensor, nan_count, inf_count) "
             "VALUES (1, 0, 'update', 'visual.blocks.0.attn.qkv.weight', 'frozen_changed', 0, 0),"
             "(1, 0, 'update', 'visual.patch_embed.proj.weight', 'frozen_changed', 0, 0),"
             "(3, 0, 'update', 'visual.merger.ln_q.weight', 'frozen_changed', 0, 0);"
             "INSERT INTO nan_events (run_id, step, phase, stage, tensor, nan_count, inf_count, "
             "input_absmax, inputs_finite) VALUES "
             "(1, 1, 'forward', 'head', 'out', 3, 0, 12.0, 1)");
    const char *summary = "SELECT run_id, nan_events, frozen_changed, first_nan_step, "
                          "first_nan_phase, first_nan_stage, first_nan_tensor FROM run_summary";
    assert_int_equal(sqlite3_open_v2(f->db, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    char *before = dump(db, summary);
    sqlite3_close(db);
    assert_non_null(strstr(before, "1|1|2|1|'forward'|'head'|'out'\n")); /* v2 reads it so */

    assert_int_equal(orch_store_open(f->db, ORCH_STORE_READWRITE, &s, &err), ORCH_OK);
    orch_store_close(s);
    assert_int_equal(scalar(f->db, "PRAGMA user_version"), ORCH_STORE_SCHEMA_VERSION);
    assert_int_equal(scalar(f->db, "SELECT count(*) FROM pragma_foreign_key_check"), 0);
    assert_int_equal(scalar(f->db, "SELECT count(*) FROM nan_events WHERE tensor = "
                                   "'frozen_changed'"),
                     0);
    assert_int_equal(scalar(f->db, "SELECT count(*) FROM nan_events"), 3); /* 2 of v1, 1 here */
    assert_int_equal(sqlite3_open_v2(f->db, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    char *moved = dump(db, "SELECT run_id, step, parameter FROM frozen_changes ORDER BY id");
    assert_string_equal(moved, "1|0|'visual.blocks.0.attn.qkv.weight'\n"
                               "1|0|'visual.patch_embed.proj.weight'\n"
                               "3|0|'visual.merger.ln_q.weight'\n");
    free(moved);
    char *after = dump(db, summary);
    sqlite3_close(db);
    if (strcmp(before, after) != 0)
        fail_msg("run_summary\nbefore:\n%s\nafter:\n%s", before, after);
    free(before);
    free(after);
    assert_int_equal(scalar(f->db, "SELECT frozen_changed FROM run_summary WHERE run_id = 1"), 2);
    assert_int_equal(scalar(f->db, "SELECT nan_events FROM run_summary WHERE run_id = 1"), 1);
    assert_int_equal(scalar(f->db, "SELECT count(*) FROM run_features"), 0);
}

/* ------------------------------------------------- migration from v4 */

/* What version 4 holds, every column of every table, and the view's v4
 * columns. */
static const char *const v4_dumps[] = {
    "SELECT id, pipeline, name, strategy, status, config_json, config_hash, seed, host, "
    "created_at, started_at, finished_at, orch_version, error, pid, heartbeat_at, kernels, "
    "kernels_why, cpu, threads FROM runs ORDER BY id",
    "SELECT * FROM steps ORDER BY run_id, step",
    "SELECT * FROM metrics ORDER BY run_id, name, step",
    /* v6 adds rank and host (NULL here) */
    "SELECT id, run_id, step, phase, stage, tensor, nan_count, inf_count, input_absmax, "
    "inputs_finite FROM nan_events ORDER BY id",
    "SELECT * FROM stage_stats ORDER BY run_id, step, stage",
    "SELECT * FROM artifacts ORDER BY id",
    "SELECT * FROM run_checkpoints",
    "SELECT * FROM frozen_changes ORDER BY id",
    "SELECT * FROM run_features ORDER BY run_id, key",
    "SELECT run_id, pipeline, name, strategy, lr, precision, seed, status, steps, last_step, "
    "final_loss, best_loss, max_grad_norm, nonfinite_steps, first_nonfinite_step, "
    "first_nan_step, first_nan_phase, first_nan_stage, first_nan_tensor, nan_events, tags, "
    "created_at, started_at, finished_at, steps_per_s, frozen_changed, last_checkpoint_step, "
    "pid, host, heartbeat_at FROM run_summary",
};
#define N_V4_DUMPS (sizeof v4_dumps / sizeof v4_dumps[0])

/* Version 4 -> 5 rebuilds runs (status 'skipped', uuid): with foreign keys
 * on, dropping the old table would cascade into every child table, so the
 * test fills them all and checks nothing is lost or changed, every run got
 * a distinct UUID v4, the highest id ever given is kept (a removed run's id
 * is not reused), and the children still cascade afterwards. */
static void test_migrate_from_v4(void **state)
{
    fixture *f = *state;
    orch_store *s = NULL;
    orch_err err = {0};
    sqlite3 *db = NULL;
    char *before[N_V4_DUMPS];
    write_v1_store(f->db);
    assert_int_equal(sqlite3_open(f->db, &db), SQLITE_OK);
    assert_int_equal(store_migrate(db, f->db, store_migrations, 4, &err), ORCH_OK);
    sqlite3_close(db);
    raw_exec(f->db,
             "UPDATE runs SET pid = 4242, heartbeat_at = '2024-05-03T10:00:01.000Z' WHERE id = 3;"
             "UPDATE runs SET kernels = 'blis 0.9.0 haswell', kernels_why = 'cpuid', "
             "cpu = 'Xeon (x86_64)', threads = 2 WHERE id = 1;"
             "INSERT INTO runs (pipeline, name, strategy, status) VALUES ('q.lua', 'q', 'full', "
             "'queued'), ('gone.lua', 'gone', 'full', 'failed');"
             "DELETE FROM runs WHERE id = 5;"
             "INSERT INTO stage_stats VALUES (1, 0, 'visual.blocks.0', 1.5, 0.5, NULL),"
             "(3, 0, 'head', 2.0, 1.0, 0.25);"
             "INSERT INTO artifacts (run_id, step, kind, path, sha256, bytes) VALUES "
             "(1, 1, 'checkpoint', 'orch.db.runs/1/checkpoint-1.safetensors', 'ab', 10),"
             "(3, 0, 'checkpoint', '/abs/checkpoint-0.safetensors', 'cd', 20);"
             "INSERT INTO frozen_changes (run_id, step, parameter) VALUES (1, 1, 'p0'), "
             "(3, 0, 'p1');"
             "INSERT INTO run_features VALUES (1, '0123456789abcdef0123456789abcdef'),"
             "(3, '0123456789abcdef0123456789abcdef'), (3, 'ffffffffffffffffffffffffffffffff')");
    assert_int_equal(scalar(f->db, "PRAGMA user_version"), 4);
    assert_int_equal(scalar(f->db, "SELECT seq FROM sqlite_sequence WHERE name = 'runs'"), 5);
    assert_int_equal(sqlite3_open_v2(f->db, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    for (size_t i = 0; i < N_V4_DUMPS; i++)
        before[i] = dump(db, v4_dumps[i]);
    sqlite3_close(db);
    assert_non_null(strstr(before[3], "'backward'")); /* the NaN events are there */

    assert_int_equal(orch_store_open(f->db, ORCH_STORE_READWRITE, &s, &err), ORCH_OK);
    orch_store_close(s);
    assert_int_equal(scalar(f->db, "PRAGMA user_version"), ORCH_STORE_SCHEMA_VERSION);
    assert_int_equal(scalar(f->db, "SELECT count(*) FROM pragma_integrity_check "
                                   "WHERE integrity_check = 'ok'"),
                     1);
    assert_int_equal(scalar(f->db, "SELECT count(*) FROM pragma_foreign_key_check"), 0);
    assert_int_equal(scalar(f->db, "SELECT count(*) FROM sqlite_schema WHERE name IN "
                                   "('runs_pipeline', 'runs_status', 'runs_v5')"),
                     2);
    assert_int_equal(sqlite3_open_v2(f->db, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    for (size_t i = 0; i < N_V4_DUMPS; i++) {
        char *after = dump(db, v4_dumps[i]);
        if (strcmp(before[i], after) != 0)
            fail_msg("%s\nbefore:\n%s\nafter:\n%s", v4_dumps[i], before[i], after);
        free(after);
        free(before[i]);
    }
    sqlite3_close(db);
    char *statuses = raw_text(f->db, "SELECT group_concat(status, ',') FROM (SELECT status "
                                     "FROM runs ORDER BY id)");
    assert_string_equal(statuses, "finished,diverged,running,queued");
    free(statuses);

    /* every run has its own UUID v4: 8-4-4-4-12 lowercase hex, version 4,
     * variant 10xx */
    assert_int_equal(scalar(f->db, "SELECT count(DISTINCT uuid) FROM runs"), 4);
    assert_int_equal(scalar(f->db, "SELECT count(*) FROM runs WHERE length(uuid) = 36 "
                                   "AND uuid GLOB '[0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f]"
                                   "[0-9a-f][0-9a-f][0-9a-f]-[0-9a-f][0-9a-f][0-9a-f][0-9a-f]-4"
                                   "[0-9a-f][0-9a-f][0-9a-f]-[89ab][0-9a-f][0-9a-f][0-9a-f]-"
                                   "[0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f]"
                                   "[0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f]'"),
                     4);
    /* the view's new columns: the uuid, and no sweep for these runs */
    assert_int_equal(scalar(f->db, "SELECT count(*) FROM run_summary s JOIN runs r ON "
                                   "r.id = s.run_id WHERE s.uuid = r.uuid AND s.sweep_id IS NULL "
                                   "AND s.point IS NULL AND s.rank IS NULL"),
                     4);
    /* the highest id ever given is kept */
    assert_int_equal(scalar(f->db, "SELECT seq FROM sqlite_sequence WHERE name = 'runs'"), 5);
    assert_int_equal(scalar(f->db, "SELECT count(*) FROM sqlite_sequence WHERE name = 'runs_v5'"),
                     0);

    /* the store works: a new run gets id 6 and a uuid of its own; a removed
     * run's rows cascade */
    assert_int_equal(orch_store_open(f->db, ORCH_STORE_READWRITE, &s, &err), ORCH_OK);
    orch_sink k;
    int64_t run = 0;
    orch_run_info info = {.pipeline = "p.lua", .name = "p", .strategy = "full", .pid = 99};
    assert_int_equal(orch_store_sink(s, &k, &err), ORCH_OK);
    assert_int_equal(k.begin_run(k.ctx, &info, &run, &err), ORCH_OK);
    assert_int_equal(run, 6);
    assert_int_equal(k.end_run(k.ctx, run, &(orch_run_end){ORCH_RUN_FINISHED, NULL, NULL}, &err),
                     ORCH_OK);
    assert_int_equal(scalar(f->db, "SELECT count(DISTINCT uuid) FROM runs"), 5);
    FILE *devnull = fopen("/dev/null", "w");
    assert_non_null(devnull);
    int64_t gone = 3;
    raw_exec(f->db, "UPDATE runs SET status = 'interrupted' WHERE id = 3");
    assert_int_equal(orch_store_rm(s, &gone, 1, 0, devnull, &err), ORCH_OK);
    fclose(devnull);
    orch_store_close(s);
    const char *tables[] = {"steps",      "stage_stats",    "artifacts",   "metrics",
                            "nan_events", "frozen_changes", "run_features"};
    for (size_t i = 0; i < sizeof tables / sizeof tables[0]; i++) {
        char sql[128];
        snprintf(sql, sizeof sql, "SELECT count(*) FROM %s WHERE run_id = 3", tables[i]);
        assert_int_equal(scalar(f->db, sql), 0);
    }
    assert_int_equal(scalar(f->db, "SELECT count(*) FROM run_features WHERE run_id = 1"), 1);
}

/* ------------------------------------------------- migration from v6 */

/* Every table of version 6, every column. */
static const char *const v6_dumps[] = {
    "SELECT * FROM runs ORDER BY id",
    "SELECT * FROM steps ORDER BY run_id, step",
    "SELECT * FROM metrics ORDER BY run_id, name, step",
    "SELECT * FROM nan_events ORDER BY id",
    "SELECT * FROM stage_stats ORDER BY run_id, step, stage",
    "SELECT * FROM artifacts ORDER BY id",
    "SELECT * FROM frozen_changes ORDER BY id",
    "SELECT * FROM run_features ORDER BY run_id, key",
    "SELECT * FROM sweeps ORDER BY id",
    "SELECT * FROM sweep_runs ORDER BY sweep_id, point",
};
#define N_V6_DUMPS (sizeof v6_dumps / sizeof v6_dumps[0])

/* Version 6 -> 7 adds run_inputs, run_classes, runs.data_hash and
 * end_reason, and appends the eval columns to run_summary: every row and
 * every earlier column of the view reads the same, the new columns are
 * NULL for old runs except what their metrics already say, and the new
 * tables cascade when a run is removed. */
static void test_migrate_from_v6(void **state)
{
    fixture *f = *state;
    orch_store *s = NULL;
    orch_err err = {0};
    sqlite3 *db = NULL;
    write_v1_store(f->db);
    assert_int_equal(sqlite3_open(f->db, &db), SQLITE_OK);
    assert_int_equal(store_migrate(db, f->db, store_migrations, 6, &err), ORCH_OK);
    sqlite3_close(db);
    /* run 1 evaluated: loss at steps 0 and 1, accuracy best at step 0 (a
     * tie with step 1 goes to the first); run 2 loss only, lowest at 1 */
    raw_exec(f->db,
             "INSERT INTO metrics (run_id, step, name, value) VALUES "
             "(1, 0, 'eval/loss', 0.75), (1, 1, 'eval/loss', 0.5), "
             "(1, 0, 'eval/accuracy', 0.875), (1, 1, 'eval/accuracy', 0.875),"
             "(2, 0, 'eval/loss', 2.0), (2, 1, 'eval/loss', 1.25), (2, 2, 'eval/loss', NULL);"
             "INSERT INTO nan_events (run_id, step, phase, stage, rank, host) VALUES "
             "(2, 1, 'forward', 'head', 1, 'node-2');"
             "INSERT INTO stage_stats VALUES (1, 0, 'visual.blocks.0', 1.5, 0.5, NULL);"
             "INSERT INTO artifacts (run_id, step, kind, path, sha256, bytes) VALUES "
             "(1, 1, 'checkpoint', 'orch.db.runs/1/checkpoint-1.safetensors', 'ab', 10);"
             "INSERT INTO frozen_changes (run_id, step, parameter) VALUES (1, 1, 'p0');"
             "INSERT INTO run_features VALUES (3, '0123456789abcdef0123456789abcdef');"
             "INSERT INTO sweeps (id, name, hash) VALUES (1, 'sw', 'h');"
             "INSERT INTO sweep_runs (sweep_id, point, run_id) VALUES (1, 'a', 1)");
    assert_int_equal(scalar(f->db, "PRAGMA user_version"), 6);
    char *before[N_V6_DUMPS];
    assert_int_equal(sqlite3_open_v2(f->db, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    for (size_t i = 0; i < N_V6_DUMPS; i++)
        before[i] = dump(db, v6_dumps[i]);
    /* the v6 view, by its own column list */
    char *cols = dump(db, "SELECT group_concat(name, ', ') FROM pragma_table_info('run_summary')");
    char view_sql[2048];
    cols[strlen(cols) - 2] = '\0'; /* the quotes and newline of dump */
    snprintf(view_sql, sizeof view_sql, "SELECT %s FROM run_summary", cols + 1);
    free(cols);
    char *view_before = dump(db, view_sql);
    sqlite3_close(db);

    assert_int_equal(orch_store_open(f->db, ORCH_STORE_READWRITE, &s, &err), ORCH_OK);
    orch_store_close(s);
    assert_int_equal(scalar(f->db, "PRAGMA user_version"), ORCH_STORE_SCHEMA_VERSION);
    assert_int_equal(scalar(f->db, "SELECT count(*) FROM pragma_integrity_check "
                                   "WHERE integrity_check = 'ok'"),
                     1);
    assert_int_equal(scalar(f->db, "SELECT count(*) FROM pragma_foreign_key_check"), 0);
    assert_int_equal(sqlite3_open_v2(f->db, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    /* runs gains two columns at its end: its dump is the old one plus |NULL|NULL */
    for (size_t i = 0; i < N_V6_DUMPS; i++) {
        const char *sql = i == 0 ? "SELECT * FROM runs ORDER BY id" : v6_dumps[i];
        char *after = dump(db, sql);
        if (i == 0) {
            char *want = calloc(1, strlen(before[0]) * 2 + 64);
            assert_non_null(want);
            for (const char *p = before[0]; *p != '\0'; p++) {
                if (*p == '\n')
                    strcat(want, "|NULL|NULL");
                strncat(want, p, 1);
            }
            free(before[0]);
            before[0] = want;
        }
        if (strcmp(before[i], after) != 0)
            fail_msg("%s\nbefore:\n%s\nafter:\n%s", sql, before[i], after);
        free(after);
        free(before[i]);
    }
    char *view_after = dump(db, view_sql);
    if (strcmp(view_before, view_after) != 0)
        fail_msg("run_summary\nbefore:\n%s\nafter:\n%s", view_before, view_after);
    free(view_before);
    free(view_after);
    /* the appended columns, in order */
    char *tail = dump(db, "SELECT group_concat(name, ',') FROM (SELECT name FROM "
                          "pragma_table_info('run_summary') ORDER BY cid DESC LIMIT 5)");
    assert_string_equal(tail, "'end_reason,best_eval_step,best_eval_accuracy,final_eval_loss,"
                              "data_hash'\n");
    free(tail);
    char *evals = dump(db, "SELECT run_id, data_hash, final_eval_loss, best_eval_accuracy, "
                           "best_eval_step, end_reason FROM run_summary");
    assert_string_equal(evals, "1|NULL|0.5|0.875|0|NULL\n"
                               "2|NULL|NULL|NULL|1|NULL\n"
                               "3|NULL|NULL|NULL|NULL|NULL\n");
    free(evals);
    sqlite3_close(db);

    /* the new tables: their constraints, and rows that go with their run */
    raw_exec(f->db, "INSERT INTO run_inputs VALUES (1, 'train', 'pv.npy', 'aa', 10), "
                    "(1, 'eval', 'pv.npy', 'aa', 10), (3, 'train', 'x.png', 'bb', 0);"
                    "INSERT INTO run_classes VALUES (1, 0, 'cat'), (1, 1, 'dog'), (3, 0, 'x')");
    assert_int_equal(sqlite3_open(f->db, &db), SQLITE_OK);
    sqlite3_exec(db, "PRAGMA foreign_keys = ON", NULL, NULL, NULL);
    const char *bad[] = {
        "INSERT INTO run_inputs VALUES (1, 'test', 'a', 'h', 1)",
        "INSERT INTO run_inputs VALUES (1, 'train', 'b', 'h', -1)",
        "INSERT INTO run_inputs VALUES (1, 'train', 'pv.npy', 'h', 1)",
        "INSERT INTO run_inputs VALUES (9, 'train', 'a', 'h', 1)",
        "INSERT INTO run_inputs (run_id, role, path, bytes) VALUES (1, 'train', 'c', 1)",
        "INSERT INTO run_classes VALUES (1, 0, 'again')",
        "INSERT INTO run_classes VALUES (1, -1, 'neg')",
        "INSERT INTO run_classes VALUES (9, 0, 'none')",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if ((sqlite3_exec(db, bad[i], NULL, NULL, NULL) & 0xff) != SQLITE_CONSTRAINT)
            fail_msg("not refused: %s", bad[i]);
    sqlite3_close(db);
    FILE *devnull = fopen("/dev/null", "w");
    assert_non_null(devnull);
    int64_t gone = 3;
    raw_exec(f->db, "UPDATE runs SET status = 'interrupted' WHERE id = 3");
    assert_int_equal(orch_store_open(f->db, ORCH_STORE_READWRITE, &s, &err), ORCH_OK);
    assert_int_equal(orch_store_rm(s, &gone, 1, 0, devnull, &err), ORCH_OK);
    orch_store_close(s);
    fclose(devnull);
    assert_int_equal(scalar(f->db, "SELECT count(*) FROM run_inputs WHERE run_id = 3"), 0);
    assert_int_equal(scalar(f->db, "SELECT count(*) FROM run_classes WHERE run_id = 3"), 0);
    assert_int_equal(scalar(f->db, "SELECT count(*) FROM run_inputs WHERE run_id = 1"), 2);
    assert_int_equal(scalar(f->db, "SELECT count(*) FROM run_classes WHERE run_id = 1"), 2);
}

/* A migration that fails leaves the version 1 store as it was. */
static void test_failed_migration_keeps_v1(void **state)
{
    fixture *f = *state;
    orch_err err = {0};
    sqlite3 *db = NULL;
    write_v1_store(f->db);
    int64_t objects = count_objects(f->db);
    const char *broken[] = {store_migrations[0], "ALTER TABLE runs ADD COLUMN pid INTEGER; "
                                                 "CREATE TABLE nan_events (x);"};
    assert_int_equal(sqlite3_open(f->db, &db), SQLITE_OK);
    assert_int_equal(store_migrate(db, f->db, broken, 2, &err), ORCH_EDB);
    sqlite3_close(db);
    assert_int_equal(scalar(f->db, "PRAGMA user_version"), 1);
    assert_int_equal(count_objects(f->db), objects);
    assert_int_equal(scalar(f->db, "SELECT count(*) FROM pragma_table_info('runs') "
                                   "WHERE name = 'pid'"),
                     0);
    assert_int_equal(scalar(f->db, "SELECT count(*) FROM steps"), 5);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_fresh_store_has_schema, setup, teardown),
        cmocka_unit_test_setup_teardown(test_open_twice_is_idempotent, setup, teardown),
        cmocka_unit_test_setup_teardown(test_newer_version_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_not_a_database, setup, teardown),
        cmocka_unit_test_setup_teardown(test_foreign_database_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_missing_store_and_directory, setup, teardown),
        cmocka_unit_test_setup_teardown(test_memory_store, setup, teardown),
        cmocka_unit_test_setup_teardown(test_migrations_run_forward, setup, teardown),
        cmocka_unit_test_setup_teardown(test_constraints, setup, teardown),
        cmocka_unit_test_setup_teardown(test_migrate_from_v1, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failed_migration_keeps_v1, setup, teardown),
        cmocka_unit_test_setup_teardown(test_migrate_from_v2, setup, teardown),
        cmocka_unit_test_setup_teardown(test_migrate_v2_frozen_changes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_migrate_from_v4, setup, teardown),
        cmocka_unit_test_setup_teardown(test_migrate_from_v6, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
