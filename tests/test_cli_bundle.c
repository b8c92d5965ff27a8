/* test_cli_bundle.c - bundles through the orch binary (docs/bundles.md):
 * the pipeline files recorded as they were run, export -> import into a
 * fresh store round-trips every row (compared column by column, with
 * types) and every checkpoint (sha256), the same export twice is
 * byte-identical in every format, importing twice adds nothing, replay
 * of a detach and a LoRA run matches bit for bit on one thread (and a
 * changed loss is found), and run/plan --from RUN. The hostile archives
 * are tests/test_store_bundle.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "tests/testutil.h"
#include "tests/testutil_sql.h"

static char dir[256];

static const char *base_text = "-- base.lua: what both runs share\n"
                               "return {\n"
                               "  model = { preset = \"tiny\" },\n"
                               "  data = { source = \"synthetic\", samples = 8, classes = 4,\n"
                               "           image_size = {28, 28} },\n"
                               "  head = { kind = \"classifier\", classes = 4 },\n"
                               "  optimizer = { kind = \"adamw\", lr = 1e-2 },\n"
                               "  schedule = { steps = 6, batch_size = 2, checkpoint_every = 2 },\n"
                               "  checks = { stats_every = 2 },\n"
                               "  seed = 5,\n"
                               "}\n";

static int setup(void **state)
{
    (void)state;
    if (make_temp_dir(dir, sizeof dir) == NULL)
        return -1;
    char path[400];
    snprintf(path, sizeof path, "%s/base.lua", dir);
    if (write_text_file(path, base_text) != 0)
        return -1;
    snprintf(path, sizeof path, "%s/detach.lua", dir);
    if (write_text_file(path, "local base = require \"base\"\n"
                              "return extend(base, { name = \"detach\", strategy = detach {} })\n"))
        return -1;
    snprintf(path, sizeof path, "%s/lora.lua", dir);
    return write_text_file(path, "local base = require \"base\"\n"
                                 "return extend(base, { name = \"lora\",\n"
                                 "  strategy = lora { rank = 4, alpha = 8 } })\n");
}

static int teardown(void **state)
{
    (void)state;
    remove_tree(dir);
    return 0;
}

/* Runs a shell command in dir (orch is "$ORCH", one thread), asserts its
 * exit code, returns the result (the caller frees it). */
static cli_result sh(int want_exit, const char *fmt, ...)
{
    char cmd[2048], full[2600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    snprintf(full, sizeof full,
             "cd '%s' && ORCH='%s' && ORCH_THREADS=1 && export ORCH_THREADS && %s", dir, orch_bin(),
             cmd);
    cli_result r;
    assert_int_equal(run_shell(full, &r), 0);
    if (r.exit_code != want_exit)
        fail_msg("%s: exit %d (want %d)\nstdout: %s\nstderr: %s", cmd, r.exit_code, want_exit,
                 r.out, r.err);
    return r;
}

static void sh_ok(const char *cmd)
{
    cli_result r = sh(0, "%s", cmd);
    cli_result_free(&r);
}

static void two_runs(void)
{
    sh_ok("\"$ORCH\" run detach.lua --db a.db --quiet && \"$ORCH\" run lora.lua --db a.db --quiet");
}

static char *path_in(const char *name)
{
    static char p[8][400];
    static int k;
    k = (k + 1) % 8;
    snprintf(p[k], sizeof p[k], "%s/%s", dir, name);
    return p[k];
}

/* The stored columns of table in db (its generated ones left out), for a
 * select list: "c, typeof(c), ..." without id and, when skip is not NULL,
 * that column. */
static void column_list(const char *db, const char *table, const char *skip, char *out, size_t n)
{
    sqlite3 *c = peer_open(db);
    sqlite3_stmt *st = NULL;
    char sql[256];
    snprintf(sql, sizeof sql,
             "SELECT name FROM pragma_table_xinfo('%s') WHERE hidden = 0 ORDER BY cid", table);
    assert_int_equal(sqlite3_prepare_v2(c, sql, -1, &st, NULL), SQLITE_OK);
    size_t at = 0;
    out[0] = '\0';
    while (sqlite3_step(st) == SQLITE_ROW) {
        const char *col = (const char *)sqlite3_column_text(st, 0);
        if (strcmp(col, "id") == 0 || strcmp(col, "run_id") == 0 ||
            (skip != NULL && strcmp(col, skip) == 0))
            continue;
        at += (size_t)snprintf(out + at, n - at, "%st.\"%s\", typeof(t.\"%s\")", at ? ", " : "",
                               col, col);
    }
    sqlite3_finalize(st);
    sqlite3_close(c);
}

/* Rows of table in `left` that `right` does not hold, compared column by
 * column with their types, runs matched by uuid (ids may differ). */
static int64_t rows_missing(const char *left, const char *right, const char *table,
                            const char *skip)
{
    char cols[4096], sql[12000];
    column_list(left, table, skip, cols, sizeof cols);
    const char *join = strcmp(table, "runs") == 0 ? "JOIN %s.runs r ON r.id = t.id"
                                                  : "JOIN %s.runs r ON r.id = t.run_id";
    char jl[64], jr[64];
    snprintf(jl, sizeof jl, join, "main");
    snprintf(jr, sizeof jr, join, "o");
    snprintf(sql, sizeof sql,
             "ATTACH '%s' AS o; SELECT count(*) FROM (SELECT r.uuid, %s FROM main.\"%s\" t %s "
             "EXCEPT SELECT r.uuid, %s FROM o.\"%s\" t %s)",
             right, cols, table, jl, cols, table, jr);
    sqlite3 *c = NULL;
    assert_int_equal(sqlite3_open_v2(left, &c, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    char *attach = strdup(sql);
    char *semi = strchr(attach, ';');
    *semi = '\0';
    assert_int_equal(sqlite3_exec(c, attach, NULL, NULL, NULL), SQLITE_OK);
    int64_t n = peer_int(c, semi + 2);
    free(attach);
    sqlite3_close(c);
    return n;
}

/* ---------------------------------------------------------------- tests */

/* Every row of every table a bundle carries, and every checkpoint, comes
 * back from export -> import into a fresh store; twice adds nothing. */
static void test_roundtrip(void **state)
{
    (void)state;
    two_runs();
    sh_ok("\"$ORCH\" export 1 2 -o x.tar.gz --db a.db");
    cli_result r = sh(0, "\"$ORCH\" import x.tar.gz --db b.db");
    /* 3 checkpoints a run, each a weights file (the artifact) and its
     * optimizer state beside it */
    assert_non_null(strstr(r.out, "2 runs added, 0 already present; 12 files placed"));
    cli_result_free(&r);
    const char *a = path_in("a.db"), *b = path_in("b.db");
    static const char *const tables[] = {
        "runs",      "steps",          "metrics",     "nan_events", "stage_stats",
        "artifacts", "frozen_changes", "run_sources", "run_inputs", "run_classes"};
    for (size_t i = 0; i < sizeof tables / sizeof tables[0]; i++) {
        char q[128];
        snprintf(q, sizeof q, "SELECT count(*) FROM \"%s\"", tables[i]);
        assert_int_equal(raw_int(a, q), raw_int(b, q));
        const char *skip = strcmp(tables[i], "artifacts") == 0 ? "path" : NULL;
        if (rows_missing(a, b, tables[i], skip) != 0 || rows_missing(b, a, tables[i], skip) != 0)
            fail_msg("table %s differs after export and import", tables[i]);
    }
    assert_true(raw_int(a, "SELECT count(*) FROM steps") == 12);
    assert_true(raw_int(a, "SELECT count(*) FROM stage_stats") > 0);
    assert_true(raw_int(a, "SELECT count(*) FROM run_sources") == 4);
    /* the pipeline files' bytes too */
    assert_int_equal(raw_int(b, "SELECT count(*) FROM source_files"), 3);
    char *ta = raw_text(a, "SELECT group_concat(sha256 || hex(content)) FROM "
                           "(SELECT * FROM source_files ORDER BY sha256)");
    char *tb = raw_text(b, "SELECT group_concat(sha256 || hex(content)) FROM "
                           "(SELECT * FROM source_files ORDER BY sha256)");
    assert_string_equal(ta, tb);
    free(ta);
    free(tb);
    /* every checkpoint: in b's run folders, its bytes hashing to the recorded sha256 */
    r = sh(0, "\"$ORCH\" query --csv --db b.db \"SELECT sha256 || '  ' || path FROM artifacts\" "
              "| tail -n +2 | tr -d '\\r' > sums && sha256sum -c sums >/dev/null && "
              "grep -c ' b.db.runs/' sums");
    assert_non_null(strstr(r.out, "6\n")); /* the recorded artifacts: the weights files */
    cli_result_free(&r);
    /* the same sha256 as in a */
    ta = raw_text(a, "SELECT group_concat(sha256) FROM (SELECT sha256 FROM artifacts ORDER BY 1)");
    tb = raw_text(b, "SELECT group_concat(sha256) FROM (SELECT sha256 FROM artifacts ORDER BY 1)");
    assert_string_equal(ta, tb);
    free(ta);
    free(tb);
    /* the imported checkpoints resume: cut run 1 of b after step 1, resume
     * it there, and its losses are a's bit for bit */
    raw_exec(b, "PRAGMA foreign_keys = ON; UPDATE runs SET status = 'interrupted' WHERE id = 1; "
                "DELETE FROM steps WHERE run_id = 1 AND step > 1; "
                "DELETE FROM artifacts WHERE run_id = 1 AND step > 1");
    sh_ok("\"$ORCH\" resume 1 --db b.db --quiet > /dev/null");
    assert_int_equal(raw_int(b, "SELECT count(*) FROM steps WHERE run_id = 1"), 6);
    sh_ok(
        "\"$ORCH\" query --csv --db a.db \"SELECT step, loss FROM steps WHERE run_id = 1\" > la && "
        "\"$ORCH\" query --csv --db b.db \"SELECT step, loss FROM steps WHERE run_id = 1\" > lb && "
        "cmp la lb");
    /* twice: nothing added, nothing changed */
    r = sh(0, "\"$ORCH\" import x.tar.gz --db b.db");
    assert_non_null(strstr(r.out, "0 runs added, 2 already present; 0 files placed"));
    cli_result_free(&r);
    assert_int_equal(raw_int(b, "SELECT count(*) FROM runs"), 2);
    assert_int_equal(raw_int(b, "SELECT count(*) FROM steps"), 12);
    /* no staging folder left beside either store */
    r = sh(0, "ls -a");
    assert_null(strstr(r.out, ".import-"));
    assert_null(strstr(r.out, ".tmp-"));
    cli_result_free(&r);
}

/* Each format: two exports of the same runs are the same bytes, and each
 * imports. */
static void test_same_bytes_every_format(void **state)
{
    (void)state;
    two_runs();
    static const char *const suffixes[] = {"tar", "tar.gz", "tar.zst", "tar.xz", "zip"};
    for (size_t i = 0; i < sizeof suffixes / sizeof suffixes[0]; i++) {
        char cmd[512];
        snprintf(cmd, sizeof cmd,
                 "\"$ORCH\" export 1 2 -o one.%s --db a.db && touch detach.lua && "
                 "\"$ORCH\" export 1 2 -o two.%s --db a.db && cmp one.%s two.%s && "
                 "\"$ORCH\" import one.%s --db f%zu.db",
                 suffixes[i], suffixes[i], suffixes[i], suffixes[i], suffixes[i], i);
        sh_ok(cmd);
        char db[64], *p;
        snprintf(db, sizeof db, "f%zu.db", i);
        p = path_in(db);
        assert_int_equal(raw_int(p, "SELECT count(*) FROM steps"), 12);
    }
    /* the files hold what MANIFEST.json says, first */
    cli_result r = sh(0, "tar tf one.tar | head -1");
    assert_string_equal(r.out, "MANIFEST.json\n");
    cli_result_free(&r);
    /* an unknown suffix */
    r = sh(2, "\"$ORCH\" export 1 -o x.rar --db a.db");
    assert_non_null(strstr(r.err, "unknown bundle format"));
    cli_result_free(&r);
}

/* The files are recorded as they were run: an edit afterwards does not
 * leak into the store or the bundle. */
static void test_files_as_run(void **state)
{
    (void)state;
    sh_ok("\"$ORCH\" run detach.lua --db a.db --quiet && echo '-- edited' >> base.lua");
    char *t = raw_text(path_in("a.db"),
                       "SELECT CAST(f.content AS TEXT) FROM run_sources r JOIN source_files f "
                       "ON f.sha256 = r.sha256 WHERE r.path LIKE '%base.lua'");
    assert_string_equal(t, base_text);
    free(t);
    t = raw_text(path_in("a.db"), "SELECT group_concat(path, ',') FROM "
                                  "(SELECT path FROM run_sources ORDER BY ord)");
    assert_non_null(strstr(t, "detach.lua,"));
    assert_non_null(strstr(t, "base.lua"));
    free(t);
    sh_ok("\"$ORCH\" export 1 -o x.tar --db a.db && mkdir out && tar xf x.tar -C out && "
          "cmp out/runs/*/pipeline/base.lua base.lua; test $? = 1");
    cli_result r = sh(0, "head -c 10000 out/runs/*/pipeline/base.lua");
    assert_string_equal(r.out, base_text);
    cli_result_free(&r);
    /* orch merge carries the files with the runs it adds */
    sh_ok("\"$ORCH\" merge a.db --db m.db > /dev/null");
    t = raw_text(path_in("m.db"),
                 "SELECT CAST(f.content AS TEXT) FROM run_sources r JOIN source_files f "
                 "ON f.sha256 = r.sha256 WHERE r.path LIKE '%base.lua'");
    assert_string_equal(t, base_text);
    free(t);
    /* rm of the run removes the file's copy no other run uses */
    sh_ok("\"$ORCH\" rm 1 --db a.db > /dev/null");
    assert_int_equal(raw_int(path_in("a.db"), "SELECT count(*) FROM source_files"), 0);
}

/* A bundled detach and LoRA run replay bit for bit on one thread; a
 * recorded loss that differs is found (exit 1). */
static void test_replay(void **state)
{
    (void)state;
    two_runs();
    sh_ok("\"$ORCH\" export 1 2 -o x.tar.zst --db a.db");
    cli_result r = sh(0, "\"$ORCH\" replay x.tar.zst --threads 1");
    assert_non_null(strstr(r.out, "(detach): 6 steps recorded on 1 thread, 6 replayed on 1: "
                                  "every loss bit for bit the same: MATCH"));
    assert_non_null(strstr(r.out, "(lora): 6 steps recorded on 1 thread, 6 replayed on 1: "
                                  "every loss bit for bit the same: MATCH"));
    cli_result_free(&r);
    r = sh(0, "\"$ORCH\" replay 2 --db a.db --threads 1");
    assert_non_null(strstr(r.out, "MATCH"));
    cli_result_free(&r);
    /* one ulp off at step 3 is not the same bits */
    raw_exec(path_in("a.db"), "UPDATE steps SET loss = loss * (1 + 1e-15) "
                              "WHERE run_id = 1 AND step = 3");
    r = sh(1, "\"$ORCH\" replay 1 --db a.db --threads 1");
    assert_non_null(strstr(r.out, "1 loss differ"));
    assert_non_null(strstr(r.out, "at step 3"));
    assert_non_null(strstr(r.out, "DIFFERENT"));
    cli_result_free(&r);
    r = sh(2, "\"$ORCH\" replay 42 --db a.db");
    assert_non_null(strstr(r.err, "no run 42"));
    cli_result_free(&r);
}

/* run --from RUN repeats a run from the store alone, plan --from shows it. */
static void test_from_run(void **state)
{
    (void)state;
    sh_ok("\"$ORCH\" run lora.lua --db a.db --quiet && rm lora.lua base.lua && "
          "\"$ORCH\" run --from 1 --db a.db --quiet");
    const char *a = path_in("a.db");
    assert_int_equal(raw_int(a, "SELECT count(DISTINCT config_hash) FROM runs"), 1);
    /* the new run records the files the old one ran, gone from disk now */
    assert_int_equal(raw_int(a, "SELECT count(*) FROM run_sources r JOIN run_sources s "
                                "ON s.path = r.path AND s.sha256 = r.sha256 AND s.ord = r.ord "
                                "WHERE r.run_id = 1 AND s.run_id = 2"),
                     2);
    assert_int_equal(raw_int(a, "SELECT count(*) FROM steps s JOIN steps t ON t.step = s.step "
                                "AND t.run_id = 2 WHERE s.run_id = 1 AND s.loss = t.loss"),
                     6);
    cli_result r = sh(0, "\"$ORCH\" plan --from 1 --db a.db");
    assert_non_null(strstr(r.out, "name = \"lora\""));
    cli_result_free(&r);
    r = sh(2, "\"$ORCH\" plan --from 7 --db a.db");
    assert_non_null(strstr(r.err, "no run 7"));
    cli_result_free(&r);
    r = sh(2, "\"$ORCH\" run x.lua --from 1 --db a.db");
    assert_non_null(strstr(r.err, "--from"));
    cli_result_free(&r);
}

/* A sweep's runs record the sweep file and what it required; --sweep
 * exports them. */
static void test_sweep_records_files(void **state)
{
    (void)state;
    char path[400];
    snprintf(path, sizeof path, "%s/sw.lua", dir);
    assert_int_equal(write_text_file(path, "local base = require \"base\"\n"
                                           "return sweep { name = \"s\",\n"
                                           "  base = extend(base, { strategy = detach {},\n"
                                           "    schedule = { steps = 2, warmup_steps = 0 } }),\n"
                                           "  grid = { [\"optimizer.lr\"] = { 1e-2, 1e-3 } } }\n"),
                     0);
    sh_ok("\"$ORCH\" sweep sw.lua --db a.db --quiet > /dev/null");
    const char *a = path_in("a.db");
    assert_int_equal(
        raw_int(a, "SELECT count(*) FROM run_sources WHERE path = 'sw.lua' AND ord = 0"), 2);
    assert_int_equal(raw_int(a, "SELECT count(*) FROM run_sources WHERE path = 'base.lua'"), 2);
    assert_int_equal(raw_int(a, "SELECT count(*) FROM source_files"), 2);
    cli_result r =
        sh(0, "\"$ORCH\" export --sweep 1 -o s.tar --db a.db > /dev/null && tar tf s.tar | "
              "grep -c pipeline/sw.lua");
    assert_string_equal(r.out, "2\n");
    cli_result_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_roundtrip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_same_bytes_every_format, setup, teardown),
        cmocka_unit_test_setup_teardown(test_files_as_run, setup, teardown),
        cmocka_unit_test_setup_teardown(test_replay, setup, teardown),
        cmocka_unit_test_setup_teardown(test_from_run, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sweep_records_files, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
