/*
 * test_store_sweeps.c - recording sweeps (store/sweeps.h, the coordinator's
 * side): opening, continuing and taking over a sweep, queueing its runs,
 * handing them out, settling the ones that will not run, closing it, and a
 * queued run started, recorded and ended through the sink.
 *
 * A live coordinator is this process (its pid on this host); a dead one is
 * a child that has exited and been waited for (its pid no longer exists),
 * or another host whose heartbeat is older than ORCH_STORE_STALE_S.
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
#include <sys/wait.h>
#include <unistd.h>

#include "store/store.h"
#include "store/store_int.h"
#include "store/sweeps.h"
#include "tests/testutil.h"
#include "tests/testutil_sql.h"

typedef struct fixture {
    char dir[256];
    char db[300];
    char host[256]; /* this machine's name */
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
    store_local_host(f->host, sizeof f->host);
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

/* A pid that no process has: a child that exited and was waited for. */
static int64_t dead_pid(void)
{
    pid_t child = fork();
    assert_true(child >= 0);
    if (child == 0)
        _exit(0);
    int status = 0;
    assert_int_equal(waitpid(child, &status, 0), child);
    return (int64_t)child;
}

static orch_run_info point_info(const char *name, const char *hash, uint64_t seed)
{
    orch_run_info info = {
        .pipeline = "pipelines/sweep.lua",
        .name = name,
        .strategy = "lora",
        .config_json = "{\"optimizer\":{\"lr\":0.0003},\"precision\":\"fp32\"}",
        .config_hash = hash,
        .seed = seed,
        .orch_version = "0.1.0",
    };
    return info;
}

static int64_t open_sweep(fixture *f, const char *name, const char *hash, int64_t pid)
{
    orch_err err = {0};
    int64_t id = 0;
    int rc =
        orch_store_sweep_open(f->store, name, "pipelines/sweep.lua", hash, f->host, pid, &id, &err);
    if (rc != ORCH_OK)
        fail_msg("sweep_open: %s", err.msg);
    assert_true(id > 0);
    return id;
}

static orch_sweep_run_state queue(fixture *f, int64_t sweep, const char *point, const char *hash)
{
    orch_err err = {0};
    orch_sweep_run_state st;
    char name[128];
    snprintf(name, sizeof name, "strategies/%s", point);
    orch_run_info info = point_info(name, hash, 7);
    int rc = orch_store_sweep_queue(f->store, sweep, point, &info, &st, &err);
    if (rc != ORCH_OK)
        fail_msg("sweep_queue: %s", err.msg);
    return st;
}

static int64_t sql_int(fixture *f, const char *fmt, int64_t arg)
{
    char sql[512];
    snprintf(sql, sizeof sql, fmt, (long long)arg);
    return raw_int(f->db, sql);
}

static char *sql_text(fixture *f, const char *fmt, int64_t arg)
{
    char sql[512];
    snprintf(sql, sizeof sql, fmt, (long long)arg);
    return raw_text(f->db, sql);
}

/* ------------------------------------------------------------- tests */

/* Created, refused while its coordinator lives, continued once closed; a
 * changed hash is another sweep. */
static void test_open_continue_refuse(void **state)
{
    fixture *f = *state;
    orch_err err = {0};
    int64_t me = (int64_t)getpid();
    int64_t id = open_sweep(f, "strategies", "h1", me);
    assert_int_equal(sql_int(f,
                             "SELECT count(*) FROM sweeps WHERE id = %lld AND name = "
                             "'strategies' AND hash = 'h1' AND status = 'running' AND "
                             "file = 'pipelines/sweep.lua' AND heartbeat_at IS NOT NULL "
                             "AND finished_at IS NULL",
                             id),
                     1);
    assert_int_equal(sql_int(f, "SELECT coordinator_pid FROM sweeps WHERE id = %lld", id), me);

    /* another coordinator while this one (alive) holds it */
    int64_t other = 0;
    assert_int_equal(orch_store_sweep_open(f->store, "strategies", "pipelines/sweep.lua", "h1",
                                           f->host, me + 1, &other, &err),
                     ORCH_EREFUSED);
    assert_int_equal(other, 0);
    char want[512];
    snprintf(want, sizeof want, "sweep strategies is being run by pid %lld on %s", (long long)me,
             f->host);
    assert_non_null(strstr(err.msg, want));
    assert_null(strchr(err.msg, '\n'));

    /* the coordinator that holds it may open it again: nothing changes */
    assert_int_equal(open_sweep(f, "strategies", "h1", me), id);
    assert_int_equal(raw_int(f->db, "SELECT count(*) FROM sweeps"), 1);

    /* a live coordinator on another host: its heartbeat is young */
    raw_exec(f->db, "UPDATE sweeps SET coordinator_host = 'node-elsewhere', coordinator_pid = 1");
    assert_int_equal(
        orch_store_sweep_open(f->store, "strategies", NULL, "h1", f->host, me + 1, &other, &err),
        ORCH_EREFUSED);
    assert_non_null(strstr(err.msg, "by pid 1 on node-elsewhere"));

    /* closed: continued (same id) by whoever opens it next */
    assert_int_equal(orch_store_sweep_close(f->store, id, &err), ORCH_OK);
    assert_int_equal(sql_int(f,
                             "SELECT count(*) FROM sweeps WHERE id = %lld AND status = "
                             "'finished' AND finished_at IS NOT NULL",
                             id),
                     1);
    int64_t again = open_sweep(f, "strategies", "h1", me);
    assert_int_equal(again, id);
    assert_int_equal(sql_int(f,
                             "SELECT count(*) FROM sweeps WHERE id = %lld AND status = "
                             "'running' AND finished_at IS NULL AND coordinator_host IS NOT "
                             "'node-elsewhere'",
                             id),
                     1);
    /* a changed hash is another sweep; so is another name */
    int64_t changed = open_sweep(f, "strategies", "h2", me);
    assert_true(changed != id);
    int64_t named = open_sweep(f, "other", "h1", me);
    assert_true(named != id && named != changed);
    assert_int_equal(raw_int(f->db, "SELECT count(*) FROM sweeps"), 3);

    /* bad input is refused before anything is written */
    assert_int_equal(orch_store_sweep_open(f->store, "", NULL, "h", f->host, me, &other, &err),
                     ORCH_EINVAL);
    assert_int_equal(orch_store_sweep_open(f->store, "x", NULL, "h", f->host, 0, &other, &err),
                     ORCH_EINVAL);
    assert_int_equal(raw_int(f->db, "SELECT count(*) FROM sweeps"), 3);
}

/* A dead coordinator's sweep is taken over: its runs left running become
 * interrupted with the reason; the others keep their status. */
static void test_take_over_dead_coordinator(void **state)
{
    fixture *f = *state;
    orch_err err = {0};
    int64_t gone = dead_pid();
    int64_t id = open_sweep(f, "strategies", "h1", gone);
    orch_sweep_run_state a = queue(f, id, "a", "ca");
    orch_sweep_run_state b = queue(f, id, "b", "cb");
    orch_sweep_run_state c = queue(f, id, "c", "cc");
    /* a is being run by a worker of the dead job; c finished */
    orch_run_info worker = point_info("strategies/a", "ca", 7);
    worker.host = f->host;
    worker.pid = gone;
    assert_int_equal(
        f->sink.resume_run(f->sink.ctx, a.run_id, &(orch_run_resume){worker, -1}, &err), ORCH_OK);
    worker.name = "strategies/c";
    worker.config_hash = "cc";
    assert_int_equal(
        f->sink.resume_run(f->sink.ctx, c.run_id, &(orch_run_resume){worker, -1}, &err), ORCH_OK);
    assert_int_equal(f->sink.end_run(f->sink.ctx, c.run_id,
                                     &(orch_run_end){ORCH_RUN_FINISHED, NULL, NULL}, &err),
                     ORCH_OK);

    int64_t me = (int64_t)getpid();
    int64_t again = open_sweep(f, "strategies", "h1", me);
    assert_int_equal(again, id);
    assert_int_equal(sql_int(f, "SELECT coordinator_pid FROM sweeps WHERE id = %lld", id), me);
    char *status = sql_text(f, "SELECT status FROM runs WHERE id = %lld", a.run_id);
    assert_string_equal(status, "interrupted");
    free(status);
    char *why = sql_text(f, "SELECT error FROM runs WHERE id = %lld", a.run_id);
    char want[400];
    snprintf(want, sizeof want, "the coordinator of the sweep (pid %lld on %s) is gone",
             (long long)gone, f->host);
    assert_non_null(why);
    assert_non_null(strstr(why, want));
    free(why);
    assert_int_equal(
        sql_int(f, "SELECT finished_at IS NOT NULL FROM runs WHERE id = %lld", a.run_id), 1);
    status = sql_text(f, "SELECT status FROM runs WHERE id = %lld", b.run_id);
    assert_string_equal(status, "queued");
    free(status);
    status = sql_text(f, "SELECT status FROM runs WHERE id = %lld", c.run_id);
    assert_string_equal(status, "finished");
    free(status);

    /* another host's coordinator whose heartbeat is stale is gone too */
    raw_exec(f->db, "UPDATE sweeps SET coordinator_host = 'node-elsewhere', coordinator_pid = 1, "
                    "heartbeat_at = '2000-01-01T00:00:00.000Z'");
    assert_int_equal(open_sweep(f, "strategies", "h1", me), id);
    assert_int_equal(sql_int(f,
                             "SELECT (julianday('now') - julianday(heartbeat_at)) * 86400 < "
                             "60 FROM sweeps WHERE id = %lld",
                             id),
                     1);
}

/* The same point with the same configuration is the same run; a changed
 * configuration is a new run, and the point holds it. */
static void test_queue(void **state)
{
    fixture *f = *state;
    orch_err err = {0};
    int64_t id = open_sweep(f, "strategies", "h1", (int64_t)getpid());
    orch_sweep_run_state a = queue(f, id, "lora-lr3e-4-s7", "c1");
    assert_true(a.run_id > 0);
    assert_int_equal(a.status, ORCH_RUN_QUEUED);
    assert_int_equal(a.attempts, 0);
    assert_int_equal(a.last_step, -1);
    assert_string_equal(a.checkpoint, "");
    /* queued: its configuration, no host, pid or start */
    assert_int_equal(sql_int(f,
                             "SELECT count(*) FROM runs WHERE id = %lld AND status = 'queued' "
                             "AND pipeline = 'pipelines/sweep.lua' AND name = "
                             "'strategies/lora-lr3e-4-s7' AND strategy = 'lora' AND "
                             "config_hash = 'c1' AND seed = 7 AND json_extract(config_json, "
                             "'$.optimizer.lr') = 0.0003 AND host IS NULL AND pid IS NULL AND "
                             "started_at IS NULL AND finished_at IS NULL",
                             a.run_id),
                     1);
    assert_int_equal(sql_int(f,
                             "SELECT count(*) FROM run_summary WHERE run_id = %lld AND "
                             "point = 'lora-lr3e-4-s7' AND rank IS NULL AND sweep_id = 1",
                             a.run_id),
                     1);

    orch_sweep_run_state same = queue(f, id, "lora-lr3e-4-s7", "c1");
    assert_int_equal(same.run_id, a.run_id);
    assert_int_equal(raw_int(f->db, "SELECT count(*) FROM runs"), 1);

    orch_sweep_run_state changed = queue(f, id, "lora-lr3e-4-s7", "c2");
    assert_true(changed.run_id != a.run_id);
    assert_int_equal(changed.status, ORCH_RUN_QUEUED);
    assert_int_equal(raw_int(f->db, "SELECT count(*) FROM runs"), 2); /* the old run is kept */
    assert_int_equal(raw_int(f->db, "SELECT run_id FROM sweep_runs WHERE point = "
                                    "'lora-lr3e-4-s7'"),
                     changed.run_id);
    assert_int_equal(queue(f, id, "lora-lr3e-4-s7", "c2").run_id, changed.run_id);

    /* another sweep's point of the same name is its own run */
    int64_t other = open_sweep(f, "strategies", "h2", (int64_t)getpid());
    assert_true(queue(f, other, "lora-lr3e-4-s7", "c2").run_id != changed.run_id);

    /* every run has its own uuid */
    assert_int_equal(raw_int(f->db, "SELECT count(DISTINCT uuid) FROM runs WHERE length(uuid) = "
                                    "36"),
                     3);

    /* refused: an unknown sweep, a missing point or run info */
    orch_run_info info = point_info("x", "c", 1);
    orch_sweep_run_state st;
    assert_int_equal(orch_store_sweep_queue(f->store, 99, "p", &info, &st, &err), ORCH_EINVAL);
    assert_non_null(strstr(err.msg, "no sweep 99 in"));
    assert_int_equal(orch_store_sweep_queue(f->store, id, "", &info, &st, &err), ORCH_EINVAL);
    info.strategy = NULL;
    assert_int_equal(orch_store_sweep_queue(f->store, id, "p", &info, &st, &err), ORCH_EINVAL);
    assert_int_equal(raw_int(f->db, "SELECT count(*) FROM runs"), 3);
}

/* Each handout counts an attempt and records rank and host. */
static void test_handout(void **state)
{
    fixture *f = *state;
    orch_err err = {0};
    int64_t id = open_sweep(f, "strategies", "h1", (int64_t)getpid());
    orch_sweep_run_state a = queue(f, id, "a", "ca");
    raw_exec(f->db, "UPDATE sweeps SET heartbeat_at = '2000-01-01T00:00:00.000Z'");
    int64_t attempts = 0;
    assert_int_equal(orch_store_sweep_handout(f->store, a.run_id, 2, "node3", &attempts, &err),
                     ORCH_OK);
    assert_int_equal(attempts, 1);
    assert_int_equal(sql_int(f,
                             "SELECT count(*) FROM sweep_runs WHERE run_id = %lld AND rank = 2 "
                             "AND host = 'node3' AND attempts = 1",
                             a.run_id),
                     1);
    /* handing work out is a sign of the coordinator's life */
    assert_int_equal(raw_int(f->db, "SELECT heartbeat_at > '2000-01-02' FROM sweeps"), 1);
    assert_int_equal(orch_store_sweep_handout(f->store, a.run_id, 1, "node2", &attempts, &err),
                     ORCH_OK);
    assert_int_equal(attempts, 2);
    assert_int_equal(sql_int(f, "SELECT rank FROM run_summary WHERE run_id = %lld", a.run_id), 1);
    assert_int_equal(queue(f, id, "a", "ca").attempts, 2);

    /* a run that is not a sweep's */
    orch_run_info plain = point_info("plain", "x", 1);
    int64_t run = 0;
    assert_int_equal(f->sink.begin_run(f->sink.ctx, &plain, &run, &err), ORCH_OK);
    assert_int_equal(orch_store_sweep_handout(f->store, run, 1, "node2", &attempts, &err),
                     ORCH_EINVAL);
    assert_non_null(strstr(err.msg, "is not a sweep's run"));
    assert_int_equal(orch_store_sweep_handout(f->store, a.run_id, -1, "node2", &attempts, &err),
                     ORCH_EINVAL);
    assert_int_equal(sql_int(f, "SELECT attempts FROM sweep_runs WHERE run_id = %lld", a.run_id),
                     2);
}

/* A run that will not run is settled skipped or failed, with its reason;
 * a skipped run cannot be started. */
static void test_settle(void **state)
{
    fixture *f = *state;
    orch_err err = {0};
    int64_t id = open_sweep(f, "strategies", "h1", (int64_t)getpid());
    orch_sweep_run_state a = queue(f, id, "a", "ca");
    orch_sweep_run_state b = queue(f, id, "b", "cb");
    orch_sweep_run_state c = queue(f, id, "c", "cc");
    assert_int_equal(orch_store_sweep_settle_run(f->store, a.run_id, ORCH_RUN_SKIPPED,
                                                 "its dependency strategies/base failed", &err),
                     ORCH_OK);
    assert_int_equal(sql_int(f,
                             "SELECT count(*) FROM runs WHERE id = %lld AND status = "
                             "'skipped' AND error = 'its dependency strategies/base failed' "
                             "AND finished_at IS NOT NULL",
                             a.run_id),
                     1);
    assert_int_equal(queue(f, id, "a", "ca").status, ORCH_RUN_SKIPPED);

    /* quarantined after it was interrupted twice */
    raw_exec(f->db, "UPDATE runs SET status = 'interrupted' WHERE name = 'strategies/b'");
    assert_int_equal(orch_store_sweep_settle_run(f->store, b.run_id, ORCH_RUN_FAILED,
                                                 "it killed its worker twice", &err),
                     ORCH_OK);
    assert_int_equal(queue(f, id, "b", "cb").status, ORCH_RUN_FAILED);

    /* refused: a final status that is not skipped or failed, a run already
     * ended, a run that is not a sweep's */
    assert_int_equal(orch_store_sweep_settle_run(f->store, c.run_id, ORCH_RUN_FINISHED, "no", &err),
                     ORCH_EINVAL);
    assert_int_equal(
        orch_store_sweep_settle_run(f->store, a.run_id, ORCH_RUN_FAILED, "again", &err),
        ORCH_EINVAL);
    assert_non_null(strstr(err.msg, "is skipped; only a queued or interrupted run"));
    assert_int_equal(orch_store_sweep_settle_run(f->store, 999, ORCH_RUN_SKIPPED, "x", &err),
                     ORCH_EINVAL);
    assert_int_equal(queue(f, id, "c", "cc").status, ORCH_RUN_QUEUED);

    /* a skipped run is not started */
    orch_run_info worker = point_info("strategies/a", "ca", 7);
    worker.host = f->host;
    worker.pid = (int64_t)getpid();
    assert_int_equal(
        f->sink.resume_run(f->sink.ctx, a.run_id, &(orch_run_resume){worker, -1}, &err),
        ORCH_EINVAL);
    char want[128];
    snprintf(want, sizeof want, "run %lld was skipped: its dependency strategies/base failed",
             (long long)a.run_id);
    assert_string_equal(err.msg, want);
    char *status = sql_text(f, "SELECT status FROM runs WHERE id = %lld", a.run_id);
    assert_string_equal(status, "skipped");
    free(status);

    /* orch runs --status skipped */
    orch_rowset rows = {0};
    assert_int_equal(orch_store_read_runs(f->store, NULL, NULL, "skipped", &rows, &err), ORCH_OK);
    assert_int_equal(rows.n_rows, 1);
    orch_rowset_free(&rows);
    assert_int_equal(orch_store_read_runs(f->store, NULL, NULL, "skiped", &rows, &err),
                     ORCH_EINVAL);
    assert_non_null(strstr(err.msg, "interrupted or skipped"));
}

/* finished when every run ended one way or another, else interrupted. */
static void test_close(void **state)
{
    fixture *f = *state;
    orch_err err = {0};
    int64_t id = open_sweep(f, "strategies", "h1", (int64_t)getpid());
    orch_sweep_run_state a = queue(f, id, "a", "ca");
    orch_sweep_run_state b = queue(f, id, "b", "cb");
    assert_int_equal(orch_store_sweep_settle_run(f->store, a.run_id, ORCH_RUN_SKIPPED, "dep", &err),
                     ORCH_OK);
    assert_int_equal(orch_store_sweep_close(f->store, id, &err), ORCH_OK);
    char *status = sql_text(f, "SELECT status FROM sweeps WHERE id = %lld", id);
    assert_string_equal(status, "interrupted"); /* b is still queued */
    free(status);

    assert_int_equal(open_sweep(f, "strategies", "h1", (int64_t)getpid()), id);
    assert_int_equal(orch_store_sweep_settle_run(f->store, b.run_id, ORCH_RUN_FAILED, "bad", &err),
                     ORCH_OK);
    assert_int_equal(orch_store_sweep_heartbeat(f->store, id, &err), ORCH_OK);
    assert_int_equal(orch_store_sweep_close(f->store, id, &err), ORCH_OK);
    status = sql_text(f, "SELECT status FROM sweeps WHERE id = %lld", id);
    assert_string_equal(status, "finished");
    free(status);
    assert_int_equal(sql_int(f, "SELECT finished_at IS NOT NULL FROM sweeps WHERE id = %lld", id),
                     1);
    assert_int_equal(orch_store_sweep_close(f->store, 42, &err), ORCH_EINVAL);
    assert_int_equal(orch_store_sweep_heartbeat(f->store, 42, &err), ORCH_EINVAL);
    assert_non_null(strstr(err.msg, "no sweep 42 in"));
}

/* A worker starts a queued run with resume_run from step -1, records
 * steps and a checkpoint and ends it; the run keeps its id and uuid, and
 * the sweep sees its last step and checkpoint. */
static void test_queued_run_through_sink(void **state)
{
    fixture *f = *state;
    orch_err err = {0};
    int64_t id = open_sweep(f, "strategies", "h1", (int64_t)getpid());
    orch_sweep_run_state a = queue(f, id, "a", "ca");
    char *uuid = sql_text(f, "SELECT uuid FROM runs WHERE id = %lld", a.run_id);
    assert_non_null(uuid);
    assert_int_equal(strlen(uuid), 36);

    orch_run_info worker = point_info("strategies/a", "ca", 7);
    worker.host = "node3";
    worker.pid = 4321;
    worker.kernels = "blis 1.0 haswell";
    worker.kernels_why = "cpuid";
    worker.cpu = "Xeon (x86_64)";
    worker.threads = 2;
    /* a queued run has nothing to resume from */
    assert_int_equal(f->sink.resume_run(f->sink.ctx, a.run_id, &(orch_run_resume){worker, 3}, &err),
                     ORCH_EINVAL);
    assert_non_null(strstr(err.msg, "never started"));
    /* another configuration is refused */
    orch_run_info wrong = worker;
    wrong.config_hash = "zz";
    assert_int_equal(f->sink.resume_run(f->sink.ctx, a.run_id, &(orch_run_resume){wrong, -1}, &err),
                     ORCH_EINVAL);
    assert_int_equal(
        f->sink.resume_run(f->sink.ctx, a.run_id, &(orch_run_resume){worker, -1}, &err), ORCH_OK);
    assert_int_equal(sql_int(f,
                             "SELECT count(*) FROM runs WHERE id = %lld AND status = "
                             "'running' AND host = 'node3' AND pid = 4321 AND kernels = "
                             "'blis 1.0 haswell' AND kernels_why = 'cpuid' AND cpu = "
                             "'Xeon (x86_64)' AND threads = 2 AND orch_version = '0.1.0' AND "
                             "started_at IS NOT NULL AND heartbeat_at IS NOT NULL AND "
                             "finished_at IS NULL",
                             a.run_id),
                     1);
    for (int64_t step = 0; step < 4; step++) {
        orch_step_record r = {step, 2.0 - 0.25 * (double)step, 1.0, 1e-3, 5.0};
        assert_int_equal(f->sink.step(f->sink.ctx, a.run_id, &r, &err), ORCH_OK);
    }
    char ck_path[400];
    snprintf(ck_path, sizeof ck_path, "%s.runs/%lld/checkpoint-3.safetensors", f->db,
             (long long)a.run_id);
    orch_artifact ck = {
        .step = 3,
        .kind = ORCH_ARTIFACT_CHECKPOINT,
        .path = ck_path,
        .sha256 = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        .bytes = 10,
    };
    assert_int_equal(f->sink.artifact(f->sink.ctx, a.run_id, &ck, &err), ORCH_OK);
    assert_int_equal(f->sink.end_run(f->sink.ctx, a.run_id,
                                     &(orch_run_end){ORCH_RUN_FINISHED, NULL, NULL}, &err),
                     ORCH_OK);

    orch_sweep_run_state done = queue(f, id, "a", "ca");
    assert_int_equal(done.run_id, a.run_id);
    assert_int_equal(done.status, ORCH_RUN_FINISHED);
    assert_int_equal(done.last_step, 3);
    assert_string_equal(done.checkpoint, ck_path); /* resolved: opens as is */
    char *after = sql_text(f, "SELECT uuid FROM runs WHERE id = %lld", a.run_id);
    assert_string_equal(after, uuid);
    free(after);
    assert_int_equal(raw_int(f->db, "SELECT count(*) FROM runs"), 1);

    /* orch show: the uuid and the sweep's fields */
    orch_run_report report;
    assert_int_equal(orch_store_read_run(f->store, a.run_id, &report, &err), ORCH_OK);
    char *text = NULL;
    size_t n = 0;
    FILE *out = open_memstream(&text, &n);
    assert_non_null(out);
    assert_int_equal(orch_render_run_text(&report, out, &err), ORCH_OK);
    fclose(out);
    orch_run_report_free(&report);
    char want[128];
    snprintf(want, sizeof want, "  uuid             %s\n", uuid);
    assert_non_null(strstr(text, want));
    assert_non_null(strstr(text, "  sweep            strategies\n"));
    assert_non_null(strstr(text, "  point            a\n"));
    assert_non_null(strstr(text, "  attempts         0\n"));
    free(text);
    free(uuid);
}

/* orch show of a run that is not a sweep's prints its uuid and no sweep
 * fields; orch rm of a sweep's run removes its link. */
static void test_show_plain_and_rm(void **state)
{
    fixture *f = *state;
    orch_err err = {0};
    orch_run_info plain = point_info("plain", "x", 1);
    int64_t run = 0;
    assert_int_equal(f->sink.begin_run(f->sink.ctx, &plain, &run, &err), ORCH_OK);
    assert_int_equal(
        f->sink.end_run(f->sink.ctx, run, &(orch_run_end){ORCH_RUN_FINISHED, NULL, NULL}, &err),
        ORCH_OK);
    orch_run_report report;
    assert_int_equal(orch_store_read_run(f->store, run, &report, &err), ORCH_OK);
    char *text = NULL;
    size_t n = 0;
    FILE *out = open_memstream(&text, &n);
    assert_non_null(out);
    assert_int_equal(orch_render_run_text(&report, out, &err), ORCH_OK);
    fclose(out);
    orch_run_report_free(&report);
    assert_non_null(strstr(text, "  uuid             "));
    assert_null(strstr(text, "  sweep "));
    assert_null(strstr(text, "  attempts "));
    free(text);

    int64_t id = open_sweep(f, "strategies", "h1", (int64_t)getpid());
    orch_sweep_run_state a = queue(f, id, "a", "ca");
    FILE *devnull = fopen("/dev/null", "w");
    assert_non_null(devnull);
    assert_int_equal(orch_store_rm(f->store, &a.run_id, 1, 0, devnull, &err), ORCH_OK);
    fclose(devnull);
    assert_int_equal(raw_int(f->db, "SELECT count(*) FROM sweep_runs"), 0);
    assert_int_equal(raw_int(f->db, "SELECT count(*) FROM sweeps"), 1);
    /* the point is queued again as a new run */
    assert_true(queue(f, id, "a", "ca").run_id > a.run_id);
}

/* Reaping marks only running runs whose process is gone: a queued run
 * (however old) and a skipped one stay as they are; a sweep's running run
 * whose worker is gone is reaped like any run. */
static void test_reap_leaves_queued(void **state)
{
    fixture *f = *state;
    orch_err err = {0};
    int64_t id = open_sweep(f, "strategies", "h1", (int64_t)getpid());
    orch_sweep_run_state a = queue(f, id, "a", "ca");
    orch_sweep_run_state b = queue(f, id, "b", "cb");
    orch_sweep_run_state c = queue(f, id, "c", "cc");
    assert_int_equal(orch_store_sweep_settle_run(f->store, b.run_id, ORCH_RUN_SKIPPED, "dep", &err),
                     ORCH_OK);
    raw_exec(f->db, "UPDATE runs SET created_at = '2000-01-01T00:00:00.000Z'");
    char sql[512];
    snprintf(sql, sizeof sql,
             "UPDATE runs SET status = 'running', host = '%s', pid = %lld, "
             "heartbeat_at = '2000-01-01T00:00:00.000Z' WHERE id = %lld",
             f->host, (long long)dead_pid(), (long long)c.run_id);
    raw_exec(f->db, sql);
    FILE *devnull = fopen("/dev/null", "w");
    assert_non_null(devnull);
    assert_int_equal(orch_store_reap(f->store, devnull, &err), ORCH_OK);
    fclose(devnull);
    assert_int_equal(queue(f, id, "a", "ca").status, ORCH_RUN_QUEUED);
    assert_int_equal(queue(f, id, "b", "cb").status, ORCH_RUN_SKIPPED);
    assert_int_equal(queue(f, id, "c", "cc").status, ORCH_RUN_INTERRUPTED);
    assert_int_equal(sql_int(f, "SELECT started_at IS NULL FROM runs WHERE id = %lld", a.run_id),
                     1);
}

/* A read-only store records nothing. */
static void test_read_only_refused(void **state)
{
    fixture *f = *state;
    orch_err err = {0};
    orch_store *ro = NULL;
    assert_int_equal(orch_store_open(f->db, ORCH_STORE_READONLY, &ro, &err), ORCH_OK);
    int64_t id = 0;
    assert_int_equal(orch_store_sweep_open(ro, "s", NULL, "h", f->host, 1, &id, &err), ORCH_EINVAL);
    assert_int_equal(orch_store_sweep_heartbeat(ro, 1, &err), ORCH_EINVAL);
    orch_store_close(ro);
    assert_int_equal(raw_int(f->db, "SELECT count(*) FROM sweeps"), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_open_continue_refuse, setup, teardown),
        cmocka_unit_test_setup_teardown(test_take_over_dead_coordinator, setup, teardown),
        cmocka_unit_test_setup_teardown(test_queue, setup, teardown),
        cmocka_unit_test_setup_teardown(test_handout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_settle, setup, teardown),
        cmocka_unit_test_setup_teardown(test_close, setup, teardown),
        cmocka_unit_test_setup_teardown(test_queued_run_through_sink, setup, teardown),
        cmocka_unit_test_setup_teardown(test_show_plain_and_rm, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reap_leaves_queued, setup, teardown),
        cmocka_unit_test_setup_teardown(test_read_only_refused, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
