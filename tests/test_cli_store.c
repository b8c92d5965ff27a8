/* test_cli_store.c - the store and its checkpoints through the orch binary:
 * resuming from another directory or a copied store, falling back past
 * damaged checkpoints, FIFOs and devices in a checkpoint's place, temporary
 * files of killed writes, `orch rm`, exit codes of `orch query`, read-only
 * directories, and no store left behind by bad input.
 *
 * States a user reaches by killing a run (a run left `running` by a dead
 * process, an `interrupted` run whose last steps are lost) are made with a
 * raw SQLite connection, so nothing depends on timing. Commands that could
 * hang on a FIFO run under timeout(1), so a regression fails instead. */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "tests/testutil.h"
#include "tests/testutil_sql.h"

static char dir[256];

static const char *pipeline_text =
    "return {\n"
    "  name = \"small\",\n"
    "  model = { preset = \"tiny\" },\n"
    "  data = { source = \"synthetic\", samples = 8, classes = 4,\n"
    "           image_size = {28, 28} },\n"
    "  strategy = %s,\n"
    "  head = { kind = \"classifier\", classes = 4 },\n"
    "  optimizer = { kind = \"adamw\", lr = 1e-2 },\n"
    "  schedule = { steps = 6, batch_size = 2, checkpoint_every = 2 },\n"
    "  seed = 5,\n"
    "}\n";

static int setup(void **state)
{
    (void)state;
    if (make_temp_dir(dir, sizeof dir) == NULL)
        return -1;
    chmod(dir, 0755); /* read by another user in test_read_only_directory */
    char path[400], text[1024];
    snprintf(path, sizeof path, "%s/lora.lua", dir);
    snprintf(text, sizeof text, pipeline_text, "lora { rank = 4, alpha = 8 }");
    if (write_text_file(path, text) != 0)
        return -1;
    snprintf(path, sizeof path, "%s/detach.lua", dir);
    snprintf(text, sizeof text, pipeline_text, "detach {}");
    return write_text_file(path, text);
}

static int teardown(void **state)
{
    (void)state;
    char cmd[400];
    snprintf(cmd, sizeof cmd, "chmod -R u+w '%s' 2>/dev/null", dir);
    cli_result r;
    if (run_shell(cmd, &r) == 0)
        cli_result_free(&r);
    remove_tree(dir);
    return 0;
}

/* Runs a shell command (orch is "$ORCH"), asserts its exit code, returns
 * the result (the caller frees it). */
static cli_result sh(int want_exit, const char *fmt, ...)
{
    char cmd[2048], full[2400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    snprintf(full, sizeof full, "ORCH='%s'; %s", orch_bin(), cmd);
    cli_result r;
    assert_int_equal(run_shell(full, &r), 0);
    if (r.exit_code != want_exit)
        fail_msg("%s: exit %d (want %d)\nstdout: %s\nstderr: %s", cmd, r.exit_code, want_exit,
                 r.out, r.err);
    return r;
}

static void sh_ok(const char *fmt, const char *arg)
{
    cli_result r = sh(0, fmt, arg, arg, arg, arg);
    cli_result_free(&r);
}

static int exists(const char *path)
{
    struct stat sb;
    return lstat(path, &sb) == 0;
}

/* Makes run `run` of db look killed after step 3: interrupted, its later
 * steps and its checkpoint at step 5 gone (the checkpoints at 1 and 3 stay). */
static void cut_after_step_3(const char *db, int run)
{
    char sql[512];
    snprintf(sql, sizeof sql,
             "PRAGMA foreign_keys = ON; UPDATE runs SET status = 'interrupted' WHERE id = %d; "
             "DELETE FROM steps WHERE run_id = %d AND step > 3; "
             "DELETE FROM artifacts WHERE run_id = %d AND step > 3",
             run, run, run);
    raw_exec(db, sql);
}

/* ---------------------------------------------------------------- tests */

/* Checkpoint paths are recorded relative to the store: a store written
 * with a relative --db resumes from another directory, and a copy of it
 * (store file and run folders) resumes from its own checkpoints. */
static void test_resume_from_elsewhere_and_from_a_copy(void **state)
{
    (void)state;
    char db[400], copy[400];
    sh_ok("cd '%s' && \"$ORCH\" --threads 1 run lora.lua --db t.db --quiet", dir);
    snprintf(db, sizeof db, "%s/t.db", dir);
    double want = raw_real(db, "SELECT loss FROM steps WHERE run_id = 1 AND step = 5");
    char *path = NULL;
    {
        sqlite3 *c = NULL;
        sqlite3_stmt *st = NULL;
        assert_int_equal(sqlite3_open(db, &c), SQLITE_OK);
        assert_int_equal(
            sqlite3_prepare_v2(c, "SELECT path FROM artifacts WHERE step = 3", -1, &st, NULL),
            SQLITE_OK);
        assert_int_equal(sqlite3_step(st), SQLITE_ROW);
        path = strdup((const char *)sqlite3_column_text(st, 0));
        sqlite3_finalize(st);
        sqlite3_close(c);
    }
    assert_string_equal(path, "t.db.runs/1/checkpoint-3.safetensors");
    free(path);

    cli_result r =
        sh(0, "mkdir '%s/copy' && cp -r '%s/t.db' '%s/t.db.runs' '%s/copy/'", dir, dir, dir, dir);
    cli_result_free(&r);
    snprintf(copy, sizeof copy, "%s/copy/t.db", dir);
    cut_after_step_3(copy, 1);
    cut_after_step_3(db, 1);
    /* the original is resumed from / and must not be touched by the copy's
     * resume: remove its checkpoints first */
    r = sh(0, "rm -r '%s/t.db.runs' && cd / && \"$ORCH\" --threads 1 resume 1 --db '%s' --quiet",
           dir, copy);
    cli_result_free(&r);
    assert_true(raw_real(copy, "SELECT loss FROM steps WHERE run_id = 1 AND step = 5") == want);
    assert_true(raw_real(copy, "SELECT count(*) FROM steps WHERE run_id = 1") == 6);
}

/* The newest checkpoint damaged, the one before it a FIFO: resume says why
 * each is unusable and continues from the newest that verifies. */
static void test_resume_falls_back_past_bad_checkpoints(void **state)
{
    (void)state;
    char db[400];
    snprintf(db, sizeof db, "%s/t.db", dir);
    sh_ok("cd '%s' && \"$ORCH\" --threads 1 run lora.lua --db t.db --quiet", dir);
    double want = raw_real(db, "SELECT loss FROM steps WHERE run_id = 1 AND step = 5");
    raw_exec(db, "UPDATE runs SET status = 'interrupted' WHERE id = 1");
    cli_result r = sh(0,
                      "cd '%s/t.db.runs/1' && head -c 100 checkpoint-5.safetensors > x && "
                      "mv x checkpoint-5.safetensors && rm checkpoint-3.safetensors && "
                      "mkfifo checkpoint-3.safetensors",
                      dir);
    cli_result_free(&r);

    /* --from-step names one: a FIFO is refused, not read */
    r = sh(2, "timeout 120 \"$ORCH\" resume 1 --db '%s' --from-step 3 --quiet", db);
    assert_non_null(strstr(r.err, "checkpoint-3.safetensors: not a regular file (a FIFO)"));
    cli_result_free(&r);
    r = sh(2, "timeout 120 \"$ORCH\" resume 1 --db '%s' --from-step 4 --quiet", db);
    assert_non_null(strstr(r.err, "run 1 has no checkpoint at step 4 (it has steps 1, 3, 5)"));
    cli_result_free(&r);

    r = sh(0, "timeout 120 \"$ORCH\" --threads 1 resume 1 --db '%s' --quiet", db);
    assert_non_null(strstr(r.err, "checkpoint at step 5 is unusable: "));
    assert_non_null(strstr(r.err, "checkpoint-5.safetensors: 100 bytes, recorded as "));
    assert_non_null(strstr(r.err, "checkpoint at step 3 is unusable: "));
    assert_non_null(strstr(r.err, "not a regular file (a FIFO)"));
    assert_non_null(strstr(r.err, "resuming from the checkpoint at step 1, the newest that "
                                  "verifies"));
    cli_result_free(&r);
    assert_true(raw_real(db, "SELECT loss FROM steps WHERE run_id = 1 AND step = 5") == want);

    /* /dev/zero in a checkpoint's place, and a missing file: each says why */
    raw_exec(db, "UPDATE runs SET status = 'interrupted' WHERE id = 1");
    r = sh(0,
           "cd '%s/t.db.runs/1' && rm checkpoint-5.safetensors && "
           "ln -s /dev/zero checkpoint-5.safetensors && rm -f checkpoint-3.safetensors",
           dir);
    cli_result_free(&r);
    r = sh(0, "timeout 120 \"$ORCH\" --threads 1 resume 1 --db '%s' --quiet", db);
    assert_non_null(strstr(r.err, "not a regular file (a character device)"));
    assert_non_null(strstr(r.err, "checkpoint-3.safetensors: cannot open: No such file or "
                                  "directory"));
    cli_result_free(&r);
}

/* A checkpoint write killed half-way leaves NAME.tmp-XXXXXX: resuming the
 * run removes it, and so does reaping it. Control characters in a stored
 * name are escaped in the reap note. */
static void test_temporary_files_cleaned(void **state)
{
    (void)state;
    char db[400], tmp[500];
    snprintf(db, sizeof db, "%s/t.db", dir);
    sh_ok("\"$ORCH\" --threads 1 run '%s/lora.lua' --db '%s/t.db' --quiet", dir);
    snprintf(tmp, sizeof tmp, "%s/t.db.runs/1/checkpoint-7.safetensors.tmp-Ab12Cd", dir);
    assert_int_equal(write_text_file(tmp, "half a checkpoint"), 0);
    cut_after_step_3(db, 1);
    cli_result r = sh(0, "\"$ORCH\" --threads 1 resume 1 --db '%s' --quiet", db);
    assert_non_null(strstr(r.err, "orch: run 1: removed 1 temporary file (17 bytes) left by an "
                                  "interrupted write"));
    cli_result_free(&r);
    assert_false(exists(tmp));

    /* reaped: a run left running by a process that is gone */
    pid_t child = fork();
    assert_true(child >= 0);
    if (child == 0)
        _exit(0);
    assert_int_equal(waitpid(child, NULL, 0), child);
    char host[256] = "", sql[1024];
    gethostname(host, sizeof host - 1);
    snprintf(sql, sizeof sql,
             "UPDATE runs SET status = 'running', pid = %d, host = '%s', "
             "name = 'evil' || char(27) || '[2J' || char(10) || 'name' WHERE id = 1",
             (int)child, host);
    raw_exec(db, sql);
    assert_int_equal(write_text_file(tmp, "half"), 0);
    r = sh(0, "\"$ORCH\" runs --db '%s'", db);
    assert_non_null(strstr(r.err, "orch: run 1 (evil\\x1b[2J\\x0aname) was left running by pid"));
    assert_null(strchr(r.err, 27));
    assert_non_null(strstr(r.err, "orch: run 1: removed 1 temporary file (4 bytes)"));
    cli_result_free(&r);
    assert_false(exists(tmp));
}

/* The feature cache entries (KEY.f32 files) in folder path. */
static int count_entries(const char *path)
{
    DIR *d = opendir(path);
    if (d == NULL)
        return 0;
    int n = 0;
    for (struct dirent *e; (e = readdir(d)) != NULL;) {
        size_t len = strlen(e->d_name);
        n += len > 4 && strcmp(e->d_name + len - 4, ".f32") == 0;
    }
    closedir(d);
    return n;
}

/* How many of the entries run `run` recorded using have their file. */
static int entries_present(const char *db, const char *cache, int run)
{
    sqlite3 *c = NULL;
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_open_v2(db, &c, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    assert_int_equal(
        sqlite3_prepare_v2(c, "SELECT key FROM run_features WHERE run_id = ?1", -1, &st, NULL),
        SQLITE_OK);
    sqlite3_bind_int(st, 1, run);
    int n = 0;
    while (sqlite3_step(st) == SQLITE_ROW) {
        char path[600];
        snprintf(path, sizeof path, "%s/%s.f32", cache, (const char *)sqlite3_column_text(st, 0));
        n += exists(path);
    }
    sqlite3_finalize(st);
    sqlite3_close(c);
    return n;
}

/* Occurrences of needle in text. */
static int count_in(const char *text, const char *needle)
{
    int n = 0;
    for (const char *p = strstr(text, needle); p != NULL; p = strstr(p + 1, needle))
        n++;
    return n;
}

/* orch rm: rows and folder; the feature cache entries that no remaining
 * run uses, and no others; ids are never reused; unknown and live runs
 * are refused with exit 2. */
static void test_rm(void **state)
{
    (void)state;
    char db[400], path[500], cache[500];
    snprintf(db, sizeof db, "%s/t.db", dir);
    snprintf(cache, sizeof cache, "%s/t.db.features", dir);
    /* runs 1 and 2 share their 8 entries (same tower, same images); run 4,
     * another seed, has 8 of its own */
    for (int i = 0; i < 2; i++)
        sh_ok("\"$ORCH\" --threads 1 run '%s/detach.lua' --db '%s/t.db' --quiet", dir);
    sh_ok("\"$ORCH\" --threads 1 run '%s/lora.lua' --db '%s/t.db' --quiet", dir);
    sh_ok("\"$ORCH\" --threads 1 run '%s/detach.lua' --db '%s/t.db' --quiet --set seed=6", dir);
    assert_true(raw_real(db, "SELECT count(*) FROM run_features WHERE run_id = 1") == 8);
    assert_true(raw_real(db, "SELECT count(*) FROM run_features a JOIN run_features b "
                             "ON a.key = b.key WHERE a.run_id = 1 AND b.run_id = 2") == 8);
    assert_true(raw_real(db, "SELECT count(*) FROM run_features WHERE run_id = 4") == 8);
    assert_true(raw_real(db, "SELECT count(*) FROM run_features WHERE run_id = 3") == 0);
    assert_true(raw_real(db, "SELECT count(*) FROM run_features a JOIN run_features b "
                             "ON a.key = b.key WHERE a.run_id = 1 AND b.run_id = 4") == 0);
    assert_int_equal(count_entries(cache), 16);

    cli_result r = sh(0, "\"$ORCH\" rm 1 --dry-run --db '%s'", db);
    assert_non_null(strstr(r.out, "would remove run 1 (small, finished, 6 steps)\n"));
    assert_non_null(strstr(r.out, "t.db.runs/1/\n"));
    assert_null(strstr(r.out, ".f32")); /* run 2 uses every entry of run 1 */
    assert_non_null(strstr(r.out, "kept "));
    assert_non_null(strstr(r.out, "t.db.features/ (16 entries"));
    cli_result_free(&r);
    assert_true(raw_real(db, "SELECT count(*) FROM runs") == 4);
    snprintf(path, sizeof path, "%s/t.db.runs/1", dir);
    assert_true(exists(path));

    r = sh(0, "\"$ORCH\" rm 1 --db '%s'", db);
    assert_non_null(strstr(r.out, "removed run 1 (small, finished, 6 steps)\n"));
    assert_null(strstr(r.out, ".f32"));
    cli_result_free(&r);
    assert_false(exists(path));
    assert_true(raw_real(db, "SELECT count(*) FROM runs") == 3);
    assert_true(raw_real(db, "SELECT count(*) FROM steps WHERE run_id = 1") == 0);
    assert_true(raw_real(db, "SELECT count(*) FROM artifacts WHERE run_id = 1") == 0);
    assert_true(raw_real(db, "SELECT count(*) FROM run_features WHERE run_id = 1") == 0);
    assert_int_equal(count_entries(cache), 16); /* shared with run 2: kept */
    assert_int_equal(entries_present(db, cache, 2), 8);

    /* run 4's entries are its own: listed by --dry-run, which keeps them */
    r = sh(0, "\"$ORCH\" rm 4 --dry-run --db '%s'", db);
    assert_int_equal(count_in(r.out, "would remove "), 2 + 8);
    assert_int_equal(count_in(r.out, ".f32\n"), 8);
    cli_result_free(&r);
    assert_int_equal(count_entries(cache), 16);
    assert_int_equal(entries_present(db, cache, 4), 8);
    assert_true(raw_real(db, "SELECT count(*) FROM run_features WHERE run_id = 4") == 8);
    r = sh(0, "\"$ORCH\" rm 4 --db '%s'", db);
    assert_int_equal(count_in(r.out, ".f32\n"), 8);
    cli_result_free(&r);
    assert_int_equal(count_entries(cache), 8);
    assert_int_equal(entries_present(db, cache, 2), 8);

    r = sh(2, "\"$ORCH\" rm 1 --db '%s'", db);
    assert_non_null(strstr(r.err, "orch: rm: no run 1 in "));
    cli_result_free(&r);
    r = sh(2, "\"$ORCH\" rm 2 x --db '%s'", db);
    cli_result_free(&r);
    assert_true(raw_real(db, "SELECT count(*) FROM runs") == 2);

    /* the last run that used them takes run 2's entries; an entry no run
     * recorded using (made before orch recorded uses) is kept */
    char stray[600];
    snprintf(stray, sizeof stray, "%s/0123456789abcdef0123456789abcdef.f32", cache);
    assert_int_equal(write_text_file(stray, "an entry of an older orch"), 0);
    r = sh(0, "\"$ORCH\" rm 3 2 --db '%s'", db);
    assert_int_equal(count_in(r.out, ".f32\n"), 8);
    assert_non_null(strstr(r.out, "t.db.features/ (1 entry that"));
    cli_result_free(&r);
    assert_int_equal(count_entries(cache), 1);
    assert_true(exists(stray));

    /* with no entry left the folder goes too; the newest run removed, the
     * next one still gets a new id */
    assert_int_equal(unlink(stray), 0);
    sh_ok("\"$ORCH\" --threads 1 run '%s/detach.lua' --db '%s/t.db' --quiet", dir);
    assert_int_equal(count_entries(cache), 8);
    r = sh(0, "\"$ORCH\" rm 5 --db '%s'", db);
    assert_non_null(strstr(r.out, "t.db.features/ (no entry left)\n"));
    cli_result_free(&r);
    assert_false(exists(cache));
    sh_ok("\"$ORCH\" run '%s/lora.lua' --db '%s/t.db' --quiet", dir);
    assert_true(raw_real(db, "SELECT max(id) FROM runs") == 6);

    /* a live run (this process) is refused, and nothing is removed */
    char host[256] = "", sql[512];
    gethostname(host, sizeof host - 1);
    snprintf(sql, sizeof sql,
             "UPDATE runs SET status = 'running', pid = %d, host = '%s' WHERE id = 6",
             (int)getpid(), host);
    raw_exec(db, sql);
    r = sh(2, "\"$ORCH\" rm 6 --db '%s'", db);
    assert_non_null(strstr(r.err, "rm: run 6 is running"));
    cli_result_free(&r);
    assert_true(raw_real(db, "SELECT count(*) FROM runs") == 1);
}

/* Statements that compile and fail when stepped are the SQL's fault. */
/* A sweep's runs by hand (the rows orch sweep writes, made with SQL here):
 * a queued run and a skipped one are not resumed, `orch runs --status
 * skipped` lists the skipped one, `orch show` prints its uuid, sweep and
 * point, and `orch rm` takes its sweep_runs row with it. */
static void test_sweep_runs_by_hand(void **state)
{
    (void)state;
    char db[400];
    snprintf(db, sizeof db, "%s/t.db", dir);
    sh_ok("\"$ORCH\" --threads 1 run '%s/lora.lua' --db '%s/t.db' --quiet", dir);
    raw_exec(db, "PRAGMA foreign_keys = ON;"
                 "INSERT INTO sweeps (id, name, hash) VALUES (1, 'strat', 'h');"
                 "INSERT INTO runs (pipeline, name, strategy, status, config_json, config_hash, "
                 "seed) SELECT pipeline, 'strat/a', strategy, 'queued', config_json, config_hash, "
                 "seed FROM runs WHERE id = 1;"
                 "INSERT INTO runs (pipeline, name, strategy, status, config_json, config_hash, "
                 "seed, error) SELECT pipeline, 'strat/b', strategy, 'skipped', config_json, "
                 "config_hash, seed, 'its dependency strat/base failed' FROM runs WHERE id = 1;"
                 "INSERT INTO sweep_runs (sweep_id, point, run_id, rank, host, attempts) VALUES "
                 "(1, 'a', 2, NULL, NULL, 0), (1, 'b', 3, 2, 'node3', 1)");

    cli_result r = sh(2, "\"$ORCH\" --threads 1 resume 2 --db '%s'", db);
    assert_non_null(strstr(r.err, "run 2 never started; nothing to resume"));
    cli_result_free(&r);
    r = sh(2, "\"$ORCH\" --threads 1 resume 3 --db '%s'", db);
    assert_non_null(strstr(r.err, "run 3 was skipped"));
    cli_result_free(&r);
    assert_true(raw_real(db, "SELECT count(*) FROM runs WHERE status IN ('queued', 'skipped') "
                             "AND started_at IS NULL") == 2);

    r = sh(0, "\"$ORCH\" runs --status skipped --csv --db '%s'", db);
    assert_non_null(strstr(r.out, "\n3,"));
    assert_null(strstr(r.out, "\n1,"));
    assert_null(strstr(r.out, "\n2,"));
    assert_non_null(strstr(r.out, ",uuid,sweep_id,point,rank"));
    cli_result_free(&r);
    r = sh(2, "\"$ORCH\" runs --status skip --db '%s'", db);
    assert_non_null(strstr(r.err, "interrupted or skipped"));
    cli_result_free(&r);

    r = sh(0, "\"$ORCH\" show 3 --db '%s'", db);
    char *uuid = raw_text(db, "SELECT uuid FROM runs WHERE id = 3");
    assert_non_null(uuid);
    char want[128];
    snprintf(want, sizeof want, "  uuid             %s\n", uuid);
    assert_non_null(strstr(r.out, want));
    free(uuid);
    assert_non_null(strstr(r.out, "  status           skipped\n"));
    assert_non_null(strstr(r.out, "  error            its dependency strat/base failed\n"));
    assert_non_null(strstr(r.out, "  sweep            strat\n"));
    assert_non_null(strstr(r.out, "  point            b\n"));
    assert_non_null(strstr(r.out, "  rank             2\n"));
    assert_non_null(strstr(r.out, "  rank_host        node3\n"));
    assert_non_null(strstr(r.out, "  attempts         1\n"));
    cli_result_free(&r);
    r = sh(0, "\"$ORCH\" show 1 --db '%s'", db);
    assert_non_null(strstr(r.out, "  uuid             "));
    assert_null(strstr(r.out, "  sweep "));
    cli_result_free(&r);

    r = sh(0, "\"$ORCH\" rm 2 --db '%s'", db);
    cli_result_free(&r);
    assert_true(raw_real(db, "SELECT count(*) FROM sweep_runs") == 1);
    assert_true(raw_real(db, "SELECT count(*) FROM sweeps") == 1);
}

static void test_query_exit_codes(void **state)
{
    (void)state;
    sh_ok("\"$ORCH\" run '%s/lora.lua' --db '%s/t.db' --quiet", dir);
    cli_result r = sh(2, "\"$ORCH\" query --db '%s/t.db' 'SELECT * FROM pragma_optimize'", dir);
    assert_non_null(strstr(r.err, "query refused"));
    cli_result_free(&r);
    r = sh(2, "\"$ORCH\" query --db '%s/t.db' \"SELECT * FROM pragma_table_info('runs', 'x')\"",
           dir);
    assert_non_null(strstr(r.err, "unknown database"));
    cli_result_free(&r);
    r = sh(2, "\"$ORCH\" query --db '%s/t.db' \"SELECT * FROM json_each('x')\"", dir);
    cli_result_free(&r);
}

/* A store in a directory we cannot write: reading it works (its WAL has
 * been checkpointed), creating one there says why not. As root, the
 * commands run as nobody, for whom the directory is read-only. */
static void test_read_only_directory(void **state)
{
    (void)state;
    sh_ok("mkdir '%s/ro' && \"$ORCH\" run '%s/lora.lua' --db '%s/ro/t.db' --quiet", dir);
    cli_result r = sh(0, "chmod -R a+rX '%s/ro' && chmod a-w '%s/ro' '%s/ro/t.db'", dir, dir, dir);
    cli_result_free(&r);
    const char *as = getuid() == 0 ? "setpriv --reuid=65534 --regid=65534 --clear-groups " : "";
    r = sh(0, "%s\"$ORCH\" runs --db '%s/ro/t.db' --csv", as, dir);
    assert_non_null(strstr(r.out, "small"));
    cli_result_free(&r);
    r = sh(0, "%s\"$ORCH\" query --db '%s/ro/t.db' --csv 'SELECT count(*) AS n FROM steps'", as,
           dir);
    assert_string_equal(r.out, "n\r\n6\r\n");
    cli_result_free(&r);
    r = sh(2, "%s\"$ORCH\" run '%s/lora.lua' --db '%s/ro/new.db' --quiet", as, dir, dir);
    assert_non_null(strstr(r.err, "cannot create store "));
    assert_non_null(strstr(r.err, "Permission denied"));
    cli_result_free(&r);
}

/* A bad data file found after the store was opened: nothing is written, so
 * no new store is left behind. */
static void test_bad_input_leaves_no_store(void **state)
{
    (void)state;
    char path[400];
    snprintf(path, sizeof path, "%s/npy.lua", dir);
    assert_int_equal(write_text_file(path,
                                     "return {\n"
                                     "  model = { preset = \"tiny\" },\n"
                                     "  data = { source = \"npy\", pixel_values = \"pv.npy\",\n"
                                     "           image_grid_thw = \"grid.npy\", labels = "
                                     "\"labels.npy\" },\n"
                                     "  strategy = detach {},\n"
                                     "  head = { kind = \"classifier\", classes = 2 },\n"
                                     "  optimizer = { kind = \"sgd\", lr = 0.01 },\n"
                                     "  schedule = { steps = 1, batch_size = 1 },\n"
                                     "}\n"),
                     0);
    cli_result r = sh(2,
                      "cd '%s' && echo x > pv.npy && echo x > grid.npy && echo x > labels.npy && "
                      "\"$ORCH\" run npy.lua --db new.db",
                      dir);
    assert_non_null(strstr(r.err, "pv.npy"));
    cli_result_free(&r);
    const char *left[] = {"new.db", "new.db-wal", "new.db-shm", "new.db.features", "new.db.runs"};
    for (size_t i = 0; i < sizeof left / sizeof left[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, left[i]);
        if (exists(path))
            fail_msg("%s was left behind", path);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_resume_from_elsewhere_and_from_a_copy, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_resume_falls_back_past_bad_checkpoints, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_temporary_files_cleaned, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rm, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sweep_runs_by_hand, setup, teardown),
        cmocka_unit_test_setup_teardown(test_query_exit_codes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_read_only_directory, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_input_leaves_no_store, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
