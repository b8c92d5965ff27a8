/*
 * test_store_reap.c - runs left 'running' by a process that is gone are
 * marked 'interrupted' by the next command: a dead pid on this host (a
 * child that exited), a live one (this process), other hosts by their
 * heartbeat, runs of schema version 1 with no pid; and orch_store_reap_path,
 * which must never create, migrate or touch what is not a current store.
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
#include <sys/wait.h>
#include <unistd.h>

#include "store/store.h"
#include "store/store_int.h"
#include "tests/testutil.h"
#include "tests/testutil_sql.h"

typedef struct fixture {
    char dir[256];
    char db[300];
    char host[256];
    orch_store *store;
    orch_sink sink;
    char *notes; /* what the last reap printed */
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    orch_err err = {0};
    if (f == NULL || make_temp_store(f->dir, sizeof f->dir, f->db, sizeof f->db) != 0)
        return -1;
    gethostname(f->host, sizeof f->host);
    f->host[sizeof f->host - 1] = '\0';
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
    free(f->notes);
    remove_tree(f->dir);
    free(f);
    return 0;
}

/* A pid that no process has: a child that has exited and been waited for. */
static pid_t dead_pid(void)
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        _exit(0);
    assert_int_equal(waitpid(pid, NULL, 0), pid);
    return pid;
}

/* Begins a run (left running) of pid on host. */
static int64_t left_running(fixture *f, const char *name, const char *host, int64_t pid)
{
    orch_err err = {0};
    int64_t id = 0;
    orch_run_info info = {.pipeline = "pipelines/surgery.lua",
                          .name = name,
                          .strategy = "surgery",
                          .host = host,
                          .pid = pid,
                          .seed = 1};
    assert_int_equal(f->sink.begin_run(f->sink.ctx, &info, &id, &err), ORCH_OK);
    orch_step_record r = {0, 1.0, 1.0, 1e-3, 5.0};
    assert_int_equal(f->sink.step(f->sink.ctx, id, &r, &err), ORCH_OK);
    assert_int_equal(f->sink.flush(f->sink.ctx, &err), ORCH_OK);
    return id;
}

/* The status of run id, as "status|error" (error "-" when NULL). */
static char *status_of(const fixture *f, int64_t id)
{
    char sql[200];
    snprintf(sql, sizeof sql,
             "SELECT status || '|' || coalesce(error, '-') || '|' || "
             "(finished_at IS NOT NULL) FROM runs WHERE id = %lld",
             (long long)id);
    return raw_text(f->db, sql);
}

static int reap(fixture *f, orch_store *s, orch_err *err)
{
    size_t n = 0;
    free(f->notes);
    f->notes = NULL;
    FILE *mem = open_memstream(&f->notes, &n);
    assert_non_null(mem);
    int rc = orch_store_reap(s, mem, err);
    fclose(mem);
    return rc;
}

static void assert_status(const fixture *f, int64_t id, const char *want)
{
    char *got = status_of(f, id);
    assert_non_null(got);
    if (strcmp(got, want) != 0)
        fail_msg("run %lld: '%s', want '%s'", (long long)id, got, want);
    free(got);
}

/* --------------------------------------------------------------- tests */

static void test_dead_and_live_pids(void **state)
{
    fixture *f = *state;
    orch_err err = {0};
    pid_t dead = dead_pid();
    int64_t gone = left_running(f, "surgery", f->host, dead);
    int64_t alive = left_running(f, "alive", f->host, getpid());
    int64_t done = left_running(f, "done", f->host, dead);
    assert_int_equal(
        f->sink.end_run(f->sink.ctx, done, &(orch_run_end){ORCH_RUN_FINISHED, NULL, NULL}, &err),
        ORCH_OK);

    assert_int_equal(reap(f, f->store, &err), ORCH_OK);
    char want[800];
    snprintf(want, sizeof want,
             "orch: run %lld (surgery) was left running by pid %lld on %s, which is gone: marked "
             "interrupted\n",
             (long long)gone, (long long)dead, f->host);
    assert_string_equal(f->notes, want);
    snprintf(want, sizeof want, "interrupted|process %lld on %s ended without closing the run|1",
             (long long)dead, f->host);
    assert_status(f, gone, want);
    assert_status(f, alive, "running|-|0");
    assert_status(f, done, "finished|-|1");
    /* Its steps are kept. */
    char sql[100];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM steps WHERE run_id = %lld", (long long)gone);
    char *n = raw_text(f->db, sql);
    assert_string_equal(n, "1");
    free(n);

    /* Nothing more to do: no notes, no write (another connection's
     * data_version moves with every commit). */
    sqlite3 *db = NULL;
    sqlite3_stmt *dv = NULL;
    assert_int_equal(sqlite3_open_v2(f->db, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA data_version", -1, &dv, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(dv), SQLITE_ROW);
    int64_t v0 = sqlite3_column_int64(dv, 0);
    sqlite3_reset(dv);
    assert_int_equal(reap(f, f->store, &err), ORCH_OK);
    assert_string_equal(f->notes, "");
    assert_int_equal(sqlite3_step(dv), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int64(dv, 0), v0);
    sqlite3_reset(dv);
    /* A real write does move it. */
    assert_int_equal(
        f->sink.end_run(f->sink.ctx, alive, &(orch_run_end){ORCH_RUN_FINISHED, NULL, NULL}, &err),
        ORCH_OK);
    assert_int_equal(sqlite3_step(dv), SQLITE_ROW);
    assert_int_not_equal(sqlite3_column_int64(dv, 0), v0);
    sqlite3_finalize(dv);
    sqlite3_close(db);
    assert_int_equal(orch_store_reap(f->store, NULL, &err), ORCH_OK); /* notes may be NULL */
}

static void test_other_hosts_by_heartbeat(void **state)
{
    fixture *f = *state;
    orch_err err = {0};
    /* getpid() would be alive here; on another host the pid means nothing. */
    int64_t stale = left_running(f, "stale", "gpu-node-7", getpid());
    int64_t fresh = left_running(f, "fresh", "gpu-node-8", getpid());
    int64_t unknown = left_running(f, "nohost", NULL, getpid());
    char sql[300];
    snprintf(sql, sizeof sql,
             "UPDATE runs SET heartbeat_at = '2020-01-01T00:00:00.000Z' WHERE id IN (%lld, %lld)",
             (long long)stale, (long long)unknown);
    raw_exec(f->db, sql);
    /* Just under the threshold is still alive. */
    snprintf(sql, sizeof sql,
             "UPDATE runs SET heartbeat_at = strftime('%%Y-%%m-%%dT%%H:%%M:%%fZ', 'now', '-%d "
             "seconds') WHERE id = %lld",
             ORCH_STORE_STALE_S - 60, (long long)fresh);
    raw_exec(f->db, sql);

    assert_int_equal(reap(f, f->store, &err), ORCH_OK);
    char want[600];
    snprintf(want, sizeof want,
             "orch: run %lld (stale) was left running by pid %lld on gpu-node-7, silent for over "
             "10 minutes (last heartbeat 2020-01-01T00:00:00.000Z): marked interrupted\n",
             (long long)stale, (long long)getpid());
    assert_non_null(strstr(f->notes, want));
    snprintf(want, sizeof want,
             "orch: run %lld (nohost) was left running by pid %lld on an "
             "unknown host",
             (long long)unknown, (long long)getpid());
    assert_non_null(strstr(f->notes, want));
    snprintf(want, sizeof want,
             "interrupted|process %lld on gpu-node-7 ended without closing the run (no heartbeat "
             "for 10 minutes)|1",
             (long long)getpid());
    assert_status(f, stale, want);
    assert_status(f, fresh, "running|-|0");
}

/* Runs of schema version 1 have no pid and no heartbeat: their start time
 * is the last sign of life. */
static void test_runs_without_pid(void **state)
{
    fixture *f = *state;
    orch_err err = {0};
    int64_t old = left_running(f, "old", f->host, 0);
    int64_t recent = left_running(f, "recent", f->host, 0);
    char sql[300];
    snprintf(sql, sizeof sql,
             "UPDATE runs SET heartbeat_at = NULL, started_at = '2024-05-03T10:00:00.000Z' "
             "WHERE id = %lld; UPDATE runs SET heartbeat_at = NULL WHERE id = %lld",
             (long long)old, (long long)recent);
    raw_exec(f->db, sql);
    assert_int_equal(reap(f, f->store, &err), ORCH_OK);
    char want[600];
    snprintf(want, sizeof want,
             "orch: run %lld (old) was left running by a process on %s, "
             "silent for over 10 minutes (last heartbeat never): marked interrupted\n",
             (long long)old, f->host);
    assert_string_equal(f->notes, want);
    snprintf(want, sizeof want,
             "interrupted|the process on %s ended without closing the run (no heartbeat for 10 "
             "minutes)|1",
             f->host);
    assert_status(f, old, want);
    assert_status(f, recent, "running|-|0");
}

static void test_read_only_store_refused(void **state)
{
    fixture *f = *state;
    orch_err err = {0};
    orch_store *ro = NULL;
    assert_int_equal(orch_store_open(f->db, ORCH_STORE_READONLY, &ro, &err), ORCH_OK);
    assert_int_equal(orch_store_reap(ro, NULL, &err), ORCH_EINVAL);
    assert_non_null(strstr(err.msg, "read-only"));
    orch_store_close(ro);
    assert_int_equal(orch_store_reap(NULL, NULL, &err), ORCH_EINVAL);
}

static void test_reap_path(void **state)
{
    fixture *f = *state;
    orch_err err = {0};
    struct stat sb;
    int64_t gone = left_running(f, "surgery", f->host, dead_pid());
    orch_store_close(f->store); /* the next command */
    f->store = NULL;

    size_t n = 0;
    char *notes = NULL;
    FILE *mem = open_memstream(&notes, &n);
    assert_int_equal(orch_store_reap_path(f->db, mem, &err), ORCH_OK);
    fclose(mem);
    char want[100];
    snprintf(want, sizeof want, "orch: run %lld (surgery) was left running", (long long)gone);
    assert_non_null(strstr(notes, want));
    free(notes);
    char *st = status_of(f, gone);
    assert_int_equal(strncmp(st, "interrupted|", 12), 0);
    free(st);

    /* No file: nothing done, nothing created. */
    char path[400];
    snprintf(path, sizeof path, "%s/none.db", f->dir);
    assert_int_equal(orch_store_reap_path(path, stderr, &err), ORCH_OK);
    assert_int_not_equal(stat(path, &sb), 0);
    snprintf(path, sizeof path, "%s/no/such/dir/orch.db", f->dir);
    assert_int_equal(orch_store_reap_path(path, stderr, &err), ORCH_OK);
    assert_int_equal(orch_store_reap_path(NULL, stderr, &err), ORCH_OK);
    assert_int_equal(orch_store_reap_path(":memory:", stderr, &err), ORCH_OK);
    assert_int_equal(orch_store_reap_path(f->dir, stderr, &err), ORCH_OK);

    /* Not a database: untouched. */
    snprintf(path, sizeof path, "%s/text.db", f->dir);
    assert_int_equal(write_text_file(path, "hello, not a database\n"), 0);
    assert_int_equal(orch_store_reap_path(path, stderr, &err), ORCH_OK);
    char *back = read_whole_file(path, NULL);
    assert_string_equal(back, "hello, not a database\n");
    free(back);

    /* A store of schema version 1 is not migrated by a reading command. */
    snprintf(path, sizeof path, "%s/v1.db", f->dir);
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(store_migrate(db, path, store_migrations, 1, &err), ORCH_OK);
    sqlite3_exec(db,
                 "INSERT INTO runs (pipeline, name, strategy, status, started_at) VALUES "
                 "('p', 'p', 'lora', 'running', '2020-01-01T00:00:00.000Z')",
                 NULL, NULL, NULL);
    sqlite3_close(db);
    assert_int_equal(orch_store_reap_path(path, stderr, &err), ORCH_OK);
    char *v = raw_text(path, "SELECT user_version || status FROM pragma_user_version, runs");
    assert_string_equal(v, "1running");
    free(v);

    /* A file this user may not write: nothing done (root may write anyway). */
    if (geteuid() != 0) {
        int64_t other = 0;
        orch_store *s = NULL;
        orch_sink k;
        orch_run_info info = {
            .pipeline = "p", .name = "p", .strategy = "lora", .host = f->host, .pid = dead_pid()};
        assert_int_equal(orch_store_open(f->db, ORCH_STORE_READWRITE, &s, &err), ORCH_OK);
        assert_int_equal(orch_store_sink(s, &k, &err), ORCH_OK);
        assert_int_equal(k.begin_run(k.ctx, &info, &other, &err), ORCH_OK);
        orch_store_close(s);
        assert_int_equal(chmod(f->db, 0444), 0);
        assert_int_equal(orch_store_reap_path(f->db, stderr, &err), ORCH_OK);
        assert_status(f, other, "running|-|0");
        chmod(f->db, 0644);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_dead_and_live_pids, setup, teardown),
        cmocka_unit_test_setup_teardown(test_other_hosts_by_heartbeat, setup, teardown),
        cmocka_unit_test_setup_teardown(test_runs_without_pid, setup, teardown),
        cmocka_unit_test_setup_teardown(test_read_only_store_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reap_path, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
