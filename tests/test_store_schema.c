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

typedef struct fixture {
    char dir[256];
    char db[300];
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    if (f == NULL || make_temp_dir(f->dir, sizeof f->dir) == NULL)
        return -1;
    snprintf(f->db, sizeof f->db, "%s/orch.db", f->dir);
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

/* The first column of the first row of sql on a raw connection to path. */
static int64_t scalar(const char *path, const char *sql)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    int64_t v = -1;
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    if (sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return v;
}

static void raw_exec(const char *path, const char *sql)
{
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    char *msg = NULL;
    int rc = sqlite3_exec(db, sql, NULL, NULL, &msg);
    if (rc != SQLITE_OK)
        fail_msg("%s: %s", sql, msg);
    sqlite3_close(db);
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
    const char *objects[] = {"runs", "steps", "nan_events", "metrics", "run_summary"};
    for (size_t i = 0; i < sizeof objects / sizeof objects[0]; i++) {
        char sql[160];
        snprintf(sql, sizeof sql, "SELECT count(*) FROM sqlite_schema WHERE name = '%s'",
                 objects[i]);
        assert_int_equal(scalar(f->db, sql), 1);
    }
    assert_int_equal(scalar(f->db, "SELECT count(*) FROM sqlite_schema WHERE type = 'index' "
                                   "AND name IN ('runs_pipeline', 'nan_events_run_step')"),
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
                    "VALUES (1, 0, 'forward', 's')");
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(f->db, &db), SQLITE_OK);
    sqlite3_exec(db, "PRAGMA foreign_keys = ON", NULL, NULL, NULL);
    const char *bad[] = {
        "UPDATE runs SET status = 'done'",
        "UPDATE runs SET config_json = '{not json'",
        "INSERT INTO nan_events (run_id, step, phase, stage) VALUES (1, 0, 'sideways', 's')",
        "INSERT INTO steps (run_id, step) VALUES (7, 0)",
        "INSERT INTO steps (run_id, step) VALUES (1, 0)",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(sqlite3_exec(db, bad[i], NULL, NULL, NULL) & 0xff, SQLITE_CONSTRAINT);
    assert_int_equal(sqlite3_exec(db, "DELETE FROM runs WHERE id = 1", NULL, NULL, NULL),
                     SQLITE_OK);
    sqlite3_close(db);
    assert_int_equal(scalar(f->db, "SELECT (SELECT count(*) FROM steps) + (SELECT count(*) "
                                   "FROM metrics) + (SELECT count(*) FROM nan_events)"),
                     0);
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
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
