/*
 * test_store_query.c - orch query on a read-only store (refusals, allowed
 * reads, table/CSV/JSON output, WAL situations) and the runs/show reports.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <jansson.h>
#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "store/store.h"
#include "tests/testutil.h"
#include "tests/testutil_sql.h"

typedef struct fixture {
    char dir[256];
    char db[300];
    orch_store *ro;
    char *out; /* what the last call printed */
} fixture;

static const char config[] =
    "{\"optimizer\":{\"lr\":0.001,\"kind\":\"adamw\"},\"precision\":\"bf16\",\"seed\":1}";

/* Writes two runs: 1 finished (lora), 2 diverged (surgery) with NaN/Inf and
 * NaN events. */
static int fill_store(const char *path)
{
    orch_store *s = NULL;
    orch_sink k;
    orch_err err = {0};
    int64_t a = 0, b = 0;
    int ok = orch_store_open(path, ORCH_STORE_READWRITE, &s, &err) == ORCH_OK &&
             orch_store_sink(s, &k, &err) == ORCH_OK;
    orch_run_info info = {.pipeline = "pipelines/lora.lua",
                          .name = "lora",
                          .strategy = "lora",
                          .config_json = config,
                          .seed = 1,
                          .host = "h",
                          .orch_version = "0.1.0"};
    ok = ok && k.begin_run(k.ctx, &info, &a, &err) == ORCH_OK;
    for (int i = 0; ok && i < 5; i++) {
        orch_step_record r = {i, 1.0 / (i + 1), 0.5 + i, 1e-3, 10.0};
        ok = k.step(k.ctx, a, &r, &err) == ORCH_OK;
    }
    ok = ok && k.end_run(k.ctx, a, &(orch_run_end){ORCH_RUN_FINISHED, NULL, NULL}, &err) == ORCH_OK;
    info.pipeline = "pipelines/surgery.lua";
    info.name = "surgery";
    info.strategy = "surgery";
    ok = ok && k.begin_run(k.ctx, &info, &b, &err) == ORCH_OK;
    for (int i = 0; ok && i < 4; i++) {
        orch_step_record r = {i, i < 3 ? 2.0 : NAN, i < 2 ? 1.0 : INFINITY, 1e-3, 10.0};
        ok = k.step(k.ctx, b, &r, &err) == ORCH_OK;
    }
    orch_nan_record e1 = {
        2, ORCH_PHASE_BACKWARD, "visual.merger.mlp.2", "grad_weight", 4, 2, 65504.0, 1, -1, NULL};
    orch_nan_record e2 = {3,   ORCH_PHASE_FORWARD, "visual.blocks.0.attn", "out", 9, 0, 0.0, 0, -1,
                          NULL};
    ok = ok && k.nan_event(k.ctx, b, &e1, &err) == ORCH_OK &&
         k.nan_event(k.ctx, b, &e2, &err) == ORCH_OK &&
         k.metric(k.ctx, b, &(orch_metric_record){2, "loss_scale", 32768.0}, &err) == ORCH_OK &&
         k.end_run(k.ctx, b, &(orch_run_end){ORCH_RUN_DIVERGED, "grad_norm is Inf at step 2", NULL},
                   &err) == ORCH_OK;
    if (!ok)
        fprintf(stderr, "fill_store: %s\n", err.msg);
    orch_store_close(s);
    return ok ? 0 : -1;
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    orch_err err = {0};
    if (f == NULL || make_temp_store(f->dir, sizeof f->dir, f->db, sizeof f->db) != 0)
        return -1;
    if (fill_store(f->db) != 0 ||
        orch_store_open(f->db, ORCH_STORE_READONLY, &f->ro, &err) != ORCH_OK) {
        fprintf(stderr, "setup: %s\n", err.msg);
        return -1;
    }
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    orch_store_close(f->ro);
    free(f->out);
    remove_tree(f->dir);
    free(f);
    return 0;
}

/* Runs orch_store_query and keeps what it printed in f->out. */
static int query(fixture *f, const char *sql, orch_format format, orch_err *err)
{
    size_t n = 0;
    free(f->out);
    f->out = NULL;
    FILE *mem = open_memstream(&f->out, &n);
    assert_non_null(mem);
    orch_err_clear(err);
    int rc = orch_store_query(f->ro, sql, format, mem, err);
    fclose(mem);
    return rc;
}

/* Everything a write could change, as one string, read by a raw connection. */
static char *fingerprint(const char *path)
{
    char *v = raw_text(path, "SELECT (SELECT group_concat(id || status || coalesce(error, '')) "
                             "FROM runs) || '|' || (SELECT count(*) FROM steps) || '|' || "
                             "(SELECT count(*) FROM metrics) || '|' || (SELECT count(*) FROM "
                             "nan_events) || '|' || (SELECT group_concat(name) FROM sqlite_schema) "
                             "|| '|' || (SELECT user_version FROM pragma_user_version) || '|' || "
                             "(SELECT journal_mode FROM pragma_journal_mode) || '|' || "
                             "(SELECT schema_version FROM pragma_schema_version)");
    assert_non_null(v);
    return v;
}

/* --------------------------------------------------------------- tests */

static void test_refusals(void **state)
{
    fixture *f = *state;
    orch_err err = {0};
    char attach[400], vacuum_into[400], other[320], copy[320];
    snprintf(other, sizeof other, "%s/other.db", f->dir);
    snprintf(copy, sizeof copy, "%s/copy.db", f->dir);
    snprintf(attach, sizeof attach, "ATTACH DATABASE '%s' AS other", other);
    snprintf(vacuum_into, sizeof vacuum_into, "VACUUM INTO '%s'", copy);
    const struct {
        const char *sql;
        const char *why; /* expected in the message */
    } cases[] = {
        {"DELETE FROM runs", "(DELETE is not allowed)"},
        {"delete from steps where run_id = 1", "DELETE"},
        {"INSERT INTO runs (pipeline, name, strategy) VALUES ('a', 'b', 'c')", "INSERT"},
        {"REPLACE INTO metrics VALUES (1, 0, 'x', 1.0)", "INSERT"},
        {"UPDATE runs SET status = 'failed'", "UPDATE"},
        {"WITH x AS (SELECT 1) DELETE FROM runs", "DELETE"},
        {"DROP TABLE steps", "DROP TABLE"},
        {"DROP VIEW run_summary", "DROP VIEW"},
        {"CREATE TABLE t (x)", "CREATE TABLE"},
        {"CREATE TEMP TABLE t (x)", "CREATE TEMP TABLE"},
        {"CREATE VIEW v AS SELECT 1", "CREATE VIEW"},
        {"CREATE INDEX i ON runs (name)", "CREATE INDEX"},
        {"ALTER TABLE runs ADD COLUMN x", "ALTER TABLE"},
        {attach, "ATTACH"},
        {"DETACH DATABASE main", "DETACH"},
        {"PRAGMA user_version = 5", "PRAGMA user_version = 5"},
        {"PRAGMA journal_mode = DELETE", "PRAGMA journal_mode = DELETE"},
        {"PRAGMA writable_schema = 1", "PRAGMA writable_schema"},
        {"PRAGMA wal_checkpoint", "PRAGMA wal_checkpoint"},
        {"PRAGMA query_only = 0", "PRAGMA query_only"},
        {"BEGIN", "BEGIN"},
        {"BEGIN IMMEDIATE", "BEGIN"},
        {"COMMIT", "COMMIT"},
        {"SAVEPOINT s", "SAVEPOINT"},
        {"VACUUM", "VACUUM"},
        {vacuum_into, "VACUUM"},
        {"REINDEX", "REINDEX"},
        {"ANALYZE", "ANALYZE"},
        {"SELECT load_extension('libx')", "load_extension"},
        {"SELECT fts3_tokenizer('simple')", "fts3_tokenizer"},
        {"DELETE FROM sqlite_master", "DELETE"},
        {"UPDATE sqlite_schema SET sql = ''", "UPDATE"},
        {"DELETE FRM runs", "DELETE"},
        {"EXPLAIN DELETE FROM runs", "DELETE"},
        {"SELECT 1; DELETE FROM runs", "one statement"},
        {"SELECT 1; SELECT 2", "one statement"},
        {"SELECT 1; /* c */ ; -- c\n DROP TABLE runs", "one statement"},
    };
    char *before = fingerprint(f->db);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int rc = query(f, cases[i].sql, ORCH_FMT_TABLE, &err);
        if (rc != ORCH_EREFUSED)
            fail_msg("'%s': expected ORCH_EREFUSED, got %d (%s)", cases[i].sql, rc, err.msg);
        assert_int_equal(orch_exit_code(rc), 2);
        if (strncmp(err.msg, "query refused: ", 15) != 0 || !strstr(err.msg, cases[i].why))
            fail_msg("'%s': message '%s' lacks '%s'", cases[i].sql, err.msg, cases[i].why);
        assert_null(strchr(err.msg, '\n'));
        assert_string_equal(f->out, ""); /* nothing printed */
    }
    char *after = fingerprint(f->db);
    assert_string_equal(before, after);
    free(before);
    free(after);
    struct stat sb;
    assert_int_not_equal(stat(other, &sb), 0);
    assert_int_not_equal(stat(copy, &sb), 0);
    /* The store still answers. */
    assert_int_equal(query(f, "SELECT count(*) AS n FROM runs", ORCH_FMT_CSV, &err), ORCH_OK);
    assert_string_equal(f->out, "n\r\n2\r\n");
}

static void test_allowed_reads(void **state)
{
    fixture *f = *state;
    orch_err err = {0};
    assert_int_equal(query(f, "PRAGMA table_info(runs)", ORCH_FMT_CSV, &err), ORCH_OK);
    assert_non_null(strstr(f->out, ",status,TEXT,1,"));
    assert_int_equal(
        query(f, "SELECT name FROM pragma_table_info('steps') WHERE pk > 0", ORCH_FMT_CSV, &err),
        ORCH_OK);
    assert_string_equal(f->out, "name\r\nrun_id\r\nstep\r\n");
    assert_int_equal(query(f, "PRAGMA user_version", ORCH_FMT_CSV, &err), ORCH_OK);
    char want[40];
    snprintf(want, sizeof want, "user_version\r\n%d\r\n", ORCH_STORE_SCHEMA_VERSION);
    assert_string_equal(f->out, want);
    assert_int_equal(query(f, "PRAGMA journal_mode", ORCH_FMT_CSV, &err), ORCH_OK);
    assert_string_equal(f->out, "journal_mode\r\nwal\r\n");
    assert_int_equal(query(f, "PRAGMA index_list(steps)", ORCH_FMT_TABLE, &err), ORCH_OK);
    assert_int_equal(query(f,
                           "SELECT j.value AS v FROM runs, json_each(runs.config_json, "
                           "'$.optimizer') AS j WHERE runs.id = 1 AND j.key = 'kind'",
                           ORCH_FMT_CSV, &err),
                     ORCH_OK);
    assert_string_equal(f->out, "v\r\nadamw\r\n");
    assert_int_equal(query(f,
                           "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c "
                           "WHERE x < 4) SELECT sum(x) AS s FROM c;  -- done\n",
                           ORCH_FMT_CSV, &err),
                     ORCH_OK);
    assert_string_equal(f->out, "s\r\n10\r\n");
    assert_int_equal(query(f, " ; -- lead\n;SELECT 2 AS two;;", ORCH_FMT_CSV, &err), ORCH_OK);
    assert_string_equal(f->out, "two\r\n2\r\n");
    assert_int_equal(
        query(f, "EXPLAIN QUERY PLAN SELECT * FROM steps WHERE run_id = 1", ORCH_FMT_TABLE, &err),
        ORCH_OK);
    assert_int_equal(query(f, "SELECT name FROM sqlite_schema WHERE type = 'view' ORDER BY name",
                           ORCH_FMT_CSV, &err),
                     ORCH_OK);
    assert_string_equal(f->out, "name\r\nrun_checkpoints\r\nrun_summary\r\n");
}

static void test_bad_sql(void **state)
{
    fixture *f = *state;
    orch_err err = {0};
    assert_int_equal(query(f, "SELEC * FROM runs", ORCH_FMT_TABLE, &err), ORCH_EINVAL);
    assert_string_equal(err.msg, "query: near \"SELEC\": syntax error");
    assert_int_equal(query(f, "SELECT * FROM nope", ORCH_FMT_TABLE, &err), ORCH_EINVAL);
    assert_string_equal(err.msg, "query: no such table: nope");
    assert_int_equal(query(f, "  -- nothing\n ;", ORCH_FMT_TABLE, &err), ORCH_EINVAL);
    assert_non_null(strstr(err.msg, "no SQL statement"));
    assert_int_equal(query(f, "", ORCH_FMT_TABLE, &err), ORCH_EINVAL);
    assert_string_equal(f->out, "");
}

static void test_csv_quoting(void **state)
{
    fixture *f = *state;
    orch_err err = {0};
    assert_int_equal(query(f,
                           "SELECT 'a,b' AS \"x,y\", 'say \"hi\"' AS q, 'one' || char(10) || "
                           "'two' AS nl, NULL AS n, 1.5 AS r, 2.0 AS whole, 3 AS i, '' AS e, "
                           "'plain' AS p, 9e999 AS inf, 0.1 AS tenth, x'00ff' AS b",
                           ORCH_FMT_CSV, &err),
                     ORCH_OK);
    assert_string_equal(f->out, "\"x,y\",q,nl,n,r,whole,i,e,p,inf,tenth,b\r\n"
                                "\"a,b\",\"say \"\"hi\"\"\",\"one\ntwo\",,1.5,2.0,3,,plain,"
                                "Infinity,0.1,00ff\r\n");
    assert_int_equal(query(f, "SELECT 1 AS a WHERE 0", ORCH_FMT_CSV, &err), ORCH_OK);
    assert_string_equal(f->out, "a\r\n");
}

static void test_json_parses_back(void **state)
{
    fixture *f = *state;
    orch_err err = {0};
    json_error_t jerr;
    assert_int_equal(query(f, "SELECT * FROM run_summary ORDER BY run_id", ORCH_FMT_JSON, &err),
                     ORCH_OK);
    json_t *rows = json_loads(f->out, 0, &jerr);
    if (rows == NULL)
        fail_msg("invalid JSON (%s): %s", jerr.text, f->out);
    assert_true(json_is_array(rows));
    assert_int_equal(json_array_size(rows), 2);
    json_t *a = json_array_get(rows, 0), *b = json_array_get(rows, 1);
    assert_int_equal(json_integer_value(json_object_get(a, "run_id")), 1);
    assert_string_equal(json_string_value(json_object_get(a, "status")), "finished");
    assert_true(json_is_real(json_object_get(a, "final_loss")));
    assert_true(json_real_value(json_object_get(a, "final_loss")) == 1.0 / 5);
    assert_true(json_real_value(json_object_get(a, "lr")) == 0.001);
    assert_true(json_is_null(json_object_get(a, "first_nan_step")));
    assert_true(json_is_integer(json_object_get(a, "steps")));
    assert_true(json_is_null(json_object_get(b, "final_loss")));
    assert_string_equal(json_string_value(json_object_get(b, "max_grad_norm")), "Infinity");
    assert_int_equal(json_integer_value(json_object_get(b, "first_nan_step")), 2);
    assert_string_equal(json_string_value(json_object_get(b, "first_nan_stage")),
                        "visual.merger.mlp.2");
    /* Columns in SELECT order. */
    const char *first_key = json_object_iter_key(json_object_iter(a));
    assert_string_equal(first_key, "run_id");
    json_decref(rows);

    /* Shortest exact reals, text escapes, invalid UTF-8 replaced, empty set. */
    assert_int_equal(query(f,
                           "SELECT 0.1 AS a, 1e300 AS b, 2.0 AS c, 'q\"\\' || char(10) AS d, "
                           "CAST(x'ff41' AS TEXT) AS e, -9e999 AS f",
                           ORCH_FMT_JSON, &err),
                     ORCH_OK);
    assert_non_null(strstr(f->out, "\"a\": 0.1,"));
    assert_non_null(strstr(f->out, "\"b\": 1e300,"));
    assert_non_null(strstr(f->out, "\"c\": 2.0,"));
    rows = json_loads(f->out, 0, &jerr);
    if (rows == NULL)
        fail_msg("invalid JSON (%s): %s", jerr.text, f->out);
    json_t *r = json_array_get(rows, 0);
    assert_true(json_real_value(json_object_get(r, "a")) == 0.1);
    assert_string_equal(json_string_value(json_object_get(r, "d")), "q\"\\\n");
    assert_string_equal(json_string_value(json_object_get(r, "e")), "\xef\xbf\xbd"
                                                                    "A");
    assert_string_equal(json_string_value(json_object_get(r, "f")), "-Infinity");
    json_decref(rows);
    assert_int_equal(query(f, "SELECT 1 AS a WHERE 0", ORCH_FMT_JSON, &err), ORCH_OK);
    assert_string_equal(f->out, "[]\n");
}

static void test_table_output(void **state)
{
    fixture *f = *state;
    orch_err err = {0};
    assert_int_equal(query(f, "SELECT id, name, error FROM runs ORDER BY id", ORCH_FMT_TABLE, &err),
                     ORCH_OK);
    assert_string_equal(f->out, "id  name     error\n"
                                "--  -------  --------------------------\n"
                                " 1  lora     NULL\n"
                                " 2  surgery  grad_norm is Inf at step 2\n"
                                "(2 rows)\n");
    assert_int_equal(
        query(f, "SELECT 'a' || char(10) || 'b' AS t, 0.25 AS r", ORCH_FMT_TABLE, &err), ORCH_OK);
    assert_string_equal(f->out, "t        r\n----  ----\na\\nb  0.25\n(1 row)\n");
    assert_int_equal(query(f, "SELECT * FROM run_summary", ORCH_FMT_TABLE, &err), ORCH_OK);
    assert_non_null(strstr(f->out, "Infinity"));
}

/* Read-only opens of a WAL store in the situations a user meets. */
static void test_wal_situations(void **state)
{
    fixture *f = *state;
    orch_err err = {0};
    char wal[320], shm[320];
    struct stat sb;
    snprintf(wal, sizeof wal, "%s-wal", f->db);
    snprintf(shm, sizeof shm, "%s-shm", f->db);

    /* 1. Checkpointed and closed by everyone: the last writer to close
     *    removed -wal and -shm. A read-only open recreates them (empty) and
     *    cannot remove them; it writes nothing into them. */
    orch_store *rw = NULL;
    orch_store_close(f->ro);
    f->ro = NULL;
    assert_int_equal(orch_store_open(f->db, ORCH_STORE_READWRITE, &rw, &err), ORCH_OK);
    orch_store_close(rw);
    assert_int_not_equal(stat(wal, &sb), 0);
    assert_int_not_equal(stat(shm, &sb), 0);
    assert_int_equal(orch_store_open(f->db, ORCH_STORE_READONLY, &f->ro, &err), ORCH_OK);
    assert_int_equal(query(f, "SELECT count(*) AS n FROM steps", ORCH_FMT_CSV, &err), ORCH_OK);
    assert_string_equal(f->out, "n\r\n9\r\n");
    assert_int_equal(stat(wal, &sb), 0);
    assert_int_equal(sb.st_size, 0);

    /* 2. A writer has the store open and is in the middle of a run; a raw
     *    connection holds the write lock with uncommitted rows. */
    orch_sink k;
    int64_t run = 0;
    assert_int_equal(orch_store_open(f->db, ORCH_STORE_READWRITE, &rw, &err), ORCH_OK);
    assert_int_equal(orch_store_sink(rw, &k, &err), ORCH_OK);
    orch_run_info info = {.pipeline = "p.lua", .name = "p", .strategy = "full"};
    assert_int_equal(k.begin_run(k.ctx, &info, &run, &err), ORCH_OK);
    orch_step_record r = {0, 1.0, 1.0, 1e-3, 1.0};
    assert_int_equal(k.step(k.ctx, run, &r, &err), ORCH_OK); /* buffered */
    sqlite3 *locker = NULL;
    assert_int_equal(sqlite3_open(f->db, &locker), SQLITE_OK);
    assert_int_equal(sqlite3_exec(locker,
                                  "BEGIN IMMEDIATE; INSERT INTO runs (pipeline, name, strategy) "
                                  "VALUES ('x', 'x', 'x')",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    assert_int_equal(
        query(f, "SELECT group_concat(status, ' ') AS s FROM (SELECT status FROM runs ORDER BY id)",
              ORCH_FMT_CSV, &err),
        ORCH_OK);
    assert_string_equal(f->out, "s\r\nfinished diverged running\r\n");
    /* A second reader opening now works too. */
    orch_store *ro2 = NULL;
    assert_int_equal(orch_store_open(f->db, ORCH_STORE_READONLY, &ro2, &err), ORCH_OK);
    orch_store_close(ro2);
    sqlite3_exec(locker, "ROLLBACK", NULL, NULL, NULL);
    sqlite3_close(locker);

    /* 3. The writer commits more; the open reader sees it on its next query. */
    assert_int_equal(k.end_run(k.ctx, run, &(orch_run_end){ORCH_RUN_FINISHED, NULL, NULL}, &err),
                     ORCH_OK);
    assert_int_equal(query(f, "SELECT count(*) AS n FROM steps", ORCH_FMT_CSV, &err), ORCH_OK);
    assert_string_equal(f->out, "n\r\n10\r\n");
    orch_store_close(rw);

    /* 4. query() wants a read-only store. */
    assert_int_equal(orch_store_open(f->db, ORCH_STORE_READWRITE, &rw, &err), ORCH_OK);
    FILE *devnull = fopen("/dev/null", "w");
    assert_int_equal(orch_store_query(rw, "SELECT 1", ORCH_FMT_CSV, devnull, &err), ORCH_EINVAL);
    fclose(devnull);
    orch_store_close(rw);
}

/* ------------------------------------------------------------- reports */

static int list_runs(fixture *f, const char *pipeline, const char *strategy, const char *status,
                     orch_format format, orch_err *err)
{
    size_t n = 0;
    free(f->out);
    f->out = NULL;
    FILE *mem = open_memstream(&f->out, &n);
    orch_err_clear(err);
    int rc = orch_store_list_runs(f->ro, pipeline, strategy, status, format, mem, err);
    fclose(mem);
    return rc;
}

static void test_list_runs(void **state)
{
    fixture *f = *state;
    orch_err err = {0};
    assert_int_equal(list_runs(f, NULL, NULL, NULL, ORCH_FMT_TABLE, &err), ORCH_OK);
    assert_non_null(strstr(f->out, "id  name     strategy  status    steps  final_loss  "
                                   "max_grad_norm  first_nan"));
    assert_non_null(strstr(f->out, " 1  lora     lora      finished      5         0.2"));
    assert_non_null(strstr(f->out, " 2  surgery  surgery   diverged      4         NaN  "
                                   "     Infinity  step 2 backward visual.merger.mlp.2"));
    assert_non_null(strstr(f->out, "(2 rows)\n"));
    assert_true(strstr(f->out, " 1  lora") < strstr(f->out, " 2  surgery")); /* oldest first */

    assert_int_equal(list_runs(f, NULL, "surgery", NULL, ORCH_FMT_CSV, &err), ORCH_OK);
    assert_int_equal(strncmp(f->out, "run_id,pipeline,name,strategy,lr,precision,seed,status,", 55),
                     0);
    assert_non_null(strstr(f->out, "\r\n2,pipelines/surgery.lua,surgery,surgery,0.001,bf16,1,"
                                   "diverged,4,3,,2.0,Infinity,2,2,2,backward,"));
    assert_null(strstr(f->out, "\r\n1,"));

    assert_int_equal(list_runs(f, "lora.lua", NULL, NULL, ORCH_FMT_JSON, &err), ORCH_OK);
    json_t *rows = json_loads(f->out, 0, NULL);
    assert_non_null(rows);
    assert_int_equal(json_array_size(rows), 1);
    assert_string_equal(json_string_value(json_object_get(json_array_get(rows, 0), "name")),
                        "lora");
    json_decref(rows);
    assert_int_equal(list_runs(f, "pipelines/lora.lua", NULL, "finished", ORCH_FMT_CSV, &err),
                     ORCH_OK);
    assert_non_null(strstr(f->out, "\r\n1,"));
    assert_int_equal(list_runs(f, "surgery", NULL, "finished", ORCH_FMT_CSV, &err), ORCH_OK);
    assert_null(strstr(f->out, "\r\n2,"));
    assert_int_equal(list_runs(f, "ra.lua", NULL, NULL, ORCH_FMT_CSV, &err), ORCH_OK);
    assert_null(strstr(f->out, "\r\n1,")); /* path components match whole */

    assert_int_equal(list_runs(f, NULL, NULL, "done", ORCH_FMT_TABLE, &err), ORCH_EINVAL);
    assert_non_null(strstr(err.msg, "unknown status 'done'"));
}

static int show(fixture *f, int64_t id, orch_err *err)
{
    size_t n = 0;
    free(f->out);
    f->out = NULL;
    FILE *mem = open_memstream(&f->out, &n);
    orch_err_clear(err);
    int rc = orch_store_show_run(f->ro, id, mem, err);
    fclose(mem);
    return rc;
}

static void test_show_run(void **state)
{
    fixture *f = *state;
    orch_err err = {0};
    assert_int_equal(show(f, 2, &err), ORCH_OK);
    const char *want[] = {
        "run 2: surgery\n",
        "  pipeline         pipelines/surgery.lua\n",
        "  status           diverged\n",
        "  error            grad_norm is Inf at step 2\n",
        "\nsummary\n",
        "  lr               0.001\n",
        "  steps            4 (last step 3)\n",
        "  final_loss       NaN\n",
        "  best_loss        2.0\n",
        "  max_grad_norm    Infinity\n",
        "  nonfinite_steps  2 (first at step 2)\n",
        "\nfirst NaN event\n",
        "  step 2, backward, stage visual.merger.mlp.2, tensor grad_weight: 4 NaN, 2 Inf\n",
        "its inputs were finite (largest |x| 65504.0): this stage produced",
        "\nNaN events (2)\n",
        "visual.blocks.0.attn",
        "\nconfig\n{\n  \"optimizer\": {\n    \"lr\": 0.001,\n    \"kind\": \"adamw\"\n  },\n",
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        if (strstr(f->out, want[i]) == NULL)
            fail_msg("show lacks '%s' in:\n%s", want[i], f->out);

    assert_int_equal(show(f, 1, &err), ORCH_OK);
    assert_null(strstr(f->out, "NaN event"));
    assert_null(strstr(f->out, "  error "));
    assert_non_null(strstr(f->out, "  final_loss       0.2\n"));

    /* Many NaN events: the first 20 and where to find the rest. */
    orch_store *rw = NULL;
    orch_sink k;
    int64_t run = 0;
    orch_run_info info = {.pipeline = "p.lua", .name = "many", .strategy = "full"};
    assert_int_equal(orch_store_open(f->db, ORCH_STORE_READWRITE, &rw, &err), ORCH_OK);
    assert_int_equal(orch_store_sink(rw, &k, &err), ORCH_OK);
    assert_int_equal(k.begin_run(k.ctx, &info, &run, &err), ORCH_OK);
    for (int i = 0; i < 25; i++) {
        orch_nan_record ev = {i, ORCH_PHASE_FORWARD, "s", "out", 1, 0, 1.0, 0, -1, NULL};
        assert_int_equal(k.nan_event(k.ctx, run, &ev, &err), ORCH_OK);
    }
    assert_int_equal(k.end_run(k.ctx, run, &(orch_run_end){ORCH_RUN_DIVERGED, NULL, NULL}, &err),
                     ORCH_OK);
    orch_store_close(rw);
    assert_int_equal(show(f, run, &err), ORCH_OK);
    assert_non_null(strstr(f->out, "\nNaN events (25)\n"));
    assert_non_null(strstr(f->out, "(20 rows)\n... 5 more: orch query"));
    assert_non_null(strstr(f->out, "its inputs were already non-finite"));

    assert_int_equal(show(f, 42, &err), ORCH_EINVAL);
    char msg[400];
    snprintf(msg, sizeof msg, "no run 42 in %s", f->db);
    assert_string_equal(err.msg, msg);
}

/* show's lifecycle sections: pid and heartbeat, frozen parameters,
 * checkpoints, stage statistics. */
static void test_show_lifecycle(void **state)
{
    fixture *f = *state;
    orch_err err = {0};
    orch_store *rw = NULL;
    orch_sink k;
    int64_t checked = 0, changed = 0;
    orch_run_info info = {.pipeline = "pipelines/surgery.lua",
                          .name = "surgery",
                          .strategy = "surgery",
                          .config_json = "{\"checks\":{\"frozen\":true,\"stats_every\":5}}",
                          .host = "vm",
                          .pid = 4242};
    assert_int_equal(orch_store_open(f->db, ORCH_STORE_READWRITE, &rw, &err), ORCH_OK);
    assert_int_equal(orch_store_sink(rw, &k, &err), ORCH_OK);
    assert_int_equal(k.begin_run(k.ctx, &info, &checked, &err), ORCH_OK);
    for (int i = 0; i < 10; i++) {
        orch_step_record r = {i, 1.0, 1.0, 1e-3, 100.0};
        assert_int_equal(k.step(k.ctx, checked, &r, &err), ORCH_OK);
        if (i % 5 == 0) {
            orch_stage_stat a = {i, "visual.blocks.0", 10.0 * (i + 1), 1.0, 0.5};
            orch_stage_stat b = {i, "visual.merger.mlp.2", i == 5 ? 2e4 : 5.0, 1.0, NAN};
            assert_int_equal(k.stage_stat(k.ctx, checked, &a, &err), ORCH_OK);
            assert_int_equal(k.stage_stat(k.ctx, checked, &b, &err), ORCH_OK);
        }
    }
    /* beside the store: shown relative to it */
    char path4[400], path9[400];
    snprintf(path4, sizeof path4, "%s/runs/3/step-4.safetensors", f->dir);
    snprintf(path9, sizeof path9, "%s/runs/3/step-9.safetensors", f->dir);
    orch_artifact ck = {4, ORCH_ARTIFACT_CHECKPOINT, path4,
                        "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
                        3 * 1048576 / 2};
    assert_int_equal(k.artifact(k.ctx, checked, &ck, &err), ORCH_OK);
    ck.step = 9;
    ck.path = path9;
    ck.bytes = 512;
    assert_int_equal(k.artifact(k.ctx, checked, &ck, &err), ORCH_OK);
    assert_int_equal(
        k.end_run(k.ctx, checked, &(orch_run_end){ORCH_RUN_FINISHED, NULL, NULL}, &err), ORCH_OK);

    info.name = "changed";
    info.config_json = "{\"checks\":{\"frozen\":false}}";
    assert_int_equal(k.begin_run(k.ctx, &info, &changed, &err), ORCH_OK);
    orch_frozen_change fz = {3, "visual.blocks.0.attn.qkv.weight"};
    assert_int_equal(k.frozen_change(k.ctx, changed, &fz, &err), ORCH_OK);
    assert_int_equal(k.end_run(k.ctx, changed,
                               &(orch_run_end){ORCH_RUN_FAILED, "frozen tensor changed", NULL},
                               &err),
                     ORCH_OK);
    orch_store_close(rw);

    assert_int_equal(show(f, checked, &err), ORCH_OK);
    char hint[300];
    snprintf(hint, sizeof hint,
             "  which stage blows up first: orch query \"SELECT stage, min(step) FROM stage_stats "
             "WHERE run_id = %lld AND (act_absmax IS NULL OR act_absmax > 1e4) GROUP BY stage "
             "ORDER BY 2 LIMIT 5\"\n",
             (long long)checked);
    const char *want[] = {
        "  host             vm\n  pid              4242\n",
        "  heartbeat_at     20",
        "  steps_per_s      10.0\n",
        "\nfrozen parameters\n  unchanged (checked every step)\n",
        "\ncheckpoints\nstep  path                       sha256        size\n",
        "   4  runs/3/step-4.safetensors  0123456789ab  1.5 MiB\n",
        "   9  runs/3/step-9.safetensors  0123456789ab  512 B\n(2 rows)\n",
        "\nstage statistics\n  2 stages at 2 steps (0 to 5)\n",
        "  largest act_absmax at step 5: visual.merger.mlp.2, 20000.0 (act_rms 1.0, grad_norm "
        "none)\n",
        "  first past |x| > 1e4 (or non-finite): visual.merger.mlp.2 at step 5\n",
        hint,
        "\nconfig\n",
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        if (strstr(f->out, want[i]) == NULL)
            fail_msg("show lacks '%s' in:\n%s", want[i], f->out);
    assert_null(strstr(f->out, "NaN event"));

    assert_int_equal(show(f, changed, &err), ORCH_OK);
    const char *want2[] = {
        "  nan_events       0\n",
        "\nfrozen parameters\n  changed: 1 frozen tensor change recorded\n",
        "   3  visual.blocks.0.attn.qkv.weight\n(1 row)\n",
        "\ncheckpoints\n  none\n",
    };
    for (size_t i = 0; i < sizeof want2 / sizeof want2[0]; i++)
        if (strstr(f->out, want2[i]) == NULL)
            fail_msg("show lacks '%s' in:\n%s", want2[i], f->out);
    assert_null(strstr(f->out, "NaN event")); /* a frozen change is no NaN event */
    assert_null(strstr(f->out, "stage statistics"));

    /* The runs of the fixture have no frozen check in their configuration. */
    assert_int_equal(show(f, 1, &err), ORCH_OK);
    assert_non_null(strstr(f->out, "\nfrozen parameters\n  not checked (checks.frozen is off)\n"));
    assert_non_null(strstr(f->out, "  pid              -\n"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_refusals, setup, teardown),
        cmocka_unit_test_setup_teardown(test_allowed_reads, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_sql, setup, teardown),
        cmocka_unit_test_setup_teardown(test_csv_quoting, setup, teardown),
        cmocka_unit_test_setup_teardown(test_json_parses_back, setup, teardown),
        cmocka_unit_test_setup_teardown(test_table_output, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wal_situations, setup, teardown),
        cmocka_unit_test_setup_teardown(test_list_runs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_show_run, setup, teardown),
        cmocka_unit_test_setup_teardown(test_show_lifecycle, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
