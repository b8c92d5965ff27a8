/*
 * test_store_merge.c - orch merge (orch_store_merge): two stores of
 * separate jobs folded into a third, every child row copied under the new
 * ids, checkpoints still opening, uuids kept, parts of one sweep made one
 * sweep; merging again adds nothing; an older store merges; and every
 * refusal leaves the destination as it was.
 *
 * job1/orch.db (A): sweep "strategies" (hash H) with points p-s1
 * (finished) and p-s2 (interrupted), and a plain run; job2/orch.db (B):
 * the same sweep with p-s2 (finished), p-s3 and q-s1, and a plain run.
 * all/orch.db (D) holds one run of its own before the merges, so merged
 * ids differ from the ones in A and B. Every run has steps (one NaN),
 * metrics, a NaN event, stage statistics, a frozen change, a cache use and
 * a checkpoint file in its store's run folder.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store/store.h"
#include "store/store_int.h"
#include "store/sweeps.h"
#include "tests/testutil.h"
#include "tests/testutil_sql.h"

#define SHA "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

typedef struct fixture {
    char dir[256];
    char a[320], b[320], d[320]; /* job1/orch.db, job2/orch.db, all/orch.db */
    orch_store *dst;             /* D, read-write */
} fixture;

/* ------------------------------------------------------------ building */

/* Every kind of child row for run id; salt makes each run's values its own. */
static int record_rows(orch_store *s, orch_sink *k, int64_t id, int salt, orch_err *err)
{
    int rc = ORCH_OK;
    for (int i = 0; rc == ORCH_OK && i < 4; i++) {
        orch_step_record st = {i, i == 2 ? NAN : 2.0 - 0.1 * i + 0.01 * salt, 1.0 + i, 1e-3,
                               10.0 + salt};
        rc = k->step(k->ctx, id, &st, err);
    }
    if (rc == ORCH_OK)
        rc = k->metric(k->ctx, id, &(orch_metric_record){3, "eval_acc", 0.5 + 0.01 * salt}, err);
    if (rc == ORCH_OK)
        rc = k->metric(k->ctx, id, &(orch_metric_record){1, "eval_acc", 0.25}, err);
    if (rc == ORCH_OK)
        rc = k->nan_event(k->ctx, id,
                          &(orch_nan_record){2, ORCH_PHASE_FORWARD, "visual.blocks.1", "out", salt,
                                             1, 7.5, 1, -1, NULL},
                          err);
    for (int i = 0; rc == ORCH_OK && i < 2; i++)
        rc = k->stage_stat(
            k->ctx, id,
            &(orch_stage_stat){i, i ? "head" : "visual.merger", 3.0 + salt, 0.5, 0.125 * (i + 1)},
            err);
    if (rc == ORCH_OK)
        rc = k->frozen_change(k->ctx, id, &(orch_frozen_change){1, "visual.blocks.0.mlp.weight"},
                              err);
    char key[33];
    snprintf(key, sizeof key, "%032x", salt);
    if (rc == ORCH_OK)
        rc = k->cache_use(k->ctx, id, &(orch_cache_use){key}, err);
    /* its data: files and class names */
    char input[64];
    snprintf(input, sizeof input, "imgs/%d.png", salt);
    if (rc == ORCH_OK)
        rc = k->input(k->ctx, id, &(orch_run_input){ORCH_ROLE_TRAIN, input, SHA, salt}, err);
    if (rc == ORCH_OK)
        rc = k->input(k->ctx, id, &(orch_run_input){ORCH_ROLE_EVAL, "val.csv", SHA, 3}, err);
    if (rc == ORCH_OK)
        rc = k->run_class(k->ctx, id, &(orch_run_class){0, key}, err);
    /* a checkpoint file in the store's run folder */
    char dir[1024], file[1100], text[64];
    if (rc == ORCH_OK && orch_store_run_dir(s, id, dir, sizeof dir) == 0) {
        snprintf(file, sizeof file, "%s.runs", orch_store_path(s));
        mkdir(file, 0777);
        mkdir(dir, 0777);
        snprintf(file, sizeof file, "%s/checkpoint-3.safetensors", dir);
        snprintf(text, sizeof text, "checkpoint of salt %d", salt);
        if (write_text_file(file, text) != 0)
            return orch_seterr(err, ORCH_EIO, "cannot write %s", file);
        rc = k->artifact(
            k->ctx, id,
            &(orch_artifact){3, ORCH_ARTIFACT_CHECKPOINT, file, SHA, (int64_t)strlen(text)}, err);
    }
    return rc;
}

static orch_run_info info_of(const char *name, const char *hash, uint64_t seed)
{
    return (orch_run_info){.pipeline = "pipelines/sweep.lua",
                           .name = name,
                           .strategy = "lora",
                           .config_json = "{\"optimizer\":{\"lr\":0.001},\"seed\":1}",
                           .config_hash = hash,
                           .seed = seed,
                           .host = "node1",
                           .pid = (int64_t)getpid(),
                           .orch_version = "0.1.0",
                           .data_hash = SHA};
}

/* A point of sweep: queued, handed to rank 1, run with every child row,
 * ended with status. */
static int sweep_point(orch_store *s, orch_sink *k, int64_t sweep, const char *point,
                       orch_run_status status, int salt, orch_err *err)
{
    char name[128], hash[64];
    snprintf(name, sizeof name, "strategies/%s", point);
    snprintf(hash, sizeof hash, "hash-%s", point);
    orch_run_info info = info_of(name, hash, (uint64_t)salt);
    orch_sweep_run_state st;
    int64_t attempts = 0;
    int rc = orch_store_sweep_queue(s, sweep, point, &info, &st, err);
    if (rc == ORCH_OK)
        rc = orch_store_sweep_handout(s, st.run_id, 1, "node1", &attempts, err);
    if (rc == ORCH_OK)
        rc = k->resume_run(k->ctx, st.run_id, &(orch_run_resume){info, -1}, err);
    if (rc == ORCH_OK)
        rc = record_rows(s, k, st.run_id, salt, err);
    if (rc == ORCH_OK)
        rc = k->end_run(k->ctx, st.run_id, &(orch_run_end){status, NULL, NULL}, err);
    return rc;
}

static int plain_run(orch_store *s, orch_sink *k, const char *name, int salt, orch_err *err)
{
    orch_run_info info = info_of(name, "plainhash", (uint64_t)salt);
    int64_t id = 0;
    int rc = k->begin_run(k->ctx, &info, &id, err);
    if (rc == ORCH_OK)
        rc = record_rows(s, k, id, salt, err);
    if (rc == ORCH_OK)
        rc =
            k->end_run(k->ctx, id, &(orch_run_end){ORCH_RUN_FINISHED, NULL, "early stopping"}, err);
    return rc;
}

typedef struct point {
    const char *point;
    orch_run_status status;
    int salt;
} point;

/* A store at path: the sweep with points[n], then a plain run. */
static int build(const char *path, const point *points, int n, const char *plain, int salt)
{
    orch_store *s = NULL;
    orch_sink k;
    orch_err err = {0};
    int64_t sweep = 0;
    int rc = orch_store_open(path, ORCH_STORE_READWRITE, &s, &err);
    if (rc == ORCH_OK)
        rc = orch_store_sink(s, &k, &err);
    if (rc == ORCH_OK && n > 0)
        rc = orch_store_sweep_open(s, "strategies", "pipelines/sweep.lua", "H", "node0",
                                   (int64_t)getpid(), &sweep, &err);
    for (int i = 0; rc == ORCH_OK && i < n; i++)
        rc = sweep_point(s, &k, sweep, points[i].point, points[i].status, points[i].salt, &err);
    if (rc == ORCH_OK && n > 0)
        rc = orch_store_sweep_close(s, sweep, &err);
    if (rc == ORCH_OK)
        rc = plain_run(s, &k, plain, salt, &err);
    if (rc != ORCH_OK)
        fprintf(stderr, "build %s: %s\n", path, err.msg);
    orch_store_close(s);
    return rc == ORCH_OK ? 0 : -1;
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    orch_err err = {0};
    char sub[400];
    if (f == NULL || make_temp_dir(f->dir, sizeof f->dir) == NULL)
        return -1;
    static const char *const subs[] = {"job1", "job2", "all"};
    for (int i = 0; i < 3; i++) {
        snprintf(sub, sizeof sub, "%s/%s", f->dir, subs[i]);
        if (mkdir(sub, 0777) != 0)
            return -1;
    }
    snprintf(f->a, sizeof f->a, "%s/job1/orch.db", f->dir);
    snprintf(f->b, sizeof f->b, "%s/job2/orch.db", f->dir);
    snprintf(f->d, sizeof f->d, "%s/all/orch.db", f->dir);
    static const point pa[] = {{"p-s1", ORCH_RUN_FINISHED, 1}, {"p-s2", ORCH_RUN_INTERRUPTED, 2}};
    static const point pb[] = {{"p-s2", ORCH_RUN_FINISHED, 12},
                               {"p-s3", ORCH_RUN_FINISHED, 13},
                               {"q-s1", ORCH_RUN_DIVERGED, 14}};
    if (build(f->a, pa, 2, "plain-a", 3) != 0 || build(f->b, pb, 3, "plain-b", 15) != 0 ||
        build(f->d, NULL, 0, "own", 20) != 0)
        return -1;
    if (orch_store_open(f->d, ORCH_STORE_READWRITE, &f->dst, &err) != ORCH_OK)
        return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    orch_store_close(f->dst);
    remove_tree(f->dir);
    free(f);
    return 0;
}

/* ------------------------------------------------------------- helpers */

/* What a run is, read by uuid: one text per kind of row, in a stable order,
 * without ids (which merging renumbers) and artifact paths (re-based). */
static const char *const dumps[] = {
    "SELECT json_array(pipeline, name, strategy, status, config_json, config_hash, seed, host, "
    "created_at, started_at, finished_at, orch_version, error, pid, heartbeat_at, kernels, "
    "kernels_why, cpu, threads, data_hash, end_reason) FROM runs WHERE uuid = '%s'",
    "SELECT group_concat(j, ';') FROM (SELECT json_array(s.step, s.loss, s.grad_norm, s.lr, "
    "s.wall_ms) AS j FROM steps s JOIN runs r ON r.id = s.run_id WHERE r.uuid = '%s' "
    "ORDER BY s.step)",
    "SELECT group_concat(j, ';') FROM (SELECT json_array(m.step, m.name, m.value) AS j FROM "
    "metrics m JOIN runs r ON r.id = m.run_id WHERE r.uuid = '%s' ORDER BY m.name, m.step)",
    "SELECT group_concat(j, ';') FROM (SELECT json_array(n.step, n.phase, n.stage, n.tensor, "
    "n.nan_count, n.inf_count, n.input_absmax, n.inputs_finite) AS j FROM nan_events n JOIN "
    "runs r ON r.id = n.run_id WHERE r.uuid = '%s' ORDER BY n.step, n.id)",
    "SELECT group_concat(j, ';') FROM (SELECT json_array(c.step, c.parameter) AS j FROM "
    "frozen_changes c JOIN runs r ON r.id = c.run_id WHERE r.uuid = '%s' ORDER BY c.step, c.id)",
    "SELECT group_concat(j, ';') FROM (SELECT json_array(t.step, t.stage, t.act_absmax, "
    "t.act_rms, t.grad_norm) AS j FROM stage_stats t JOIN runs r ON r.id = t.run_id WHERE "
    "r.uuid = '%s' ORDER BY t.step, t.stage)",
    "SELECT group_concat(j, ';') FROM (SELECT json_array(a.step, a.kind, a.sha256, a.bytes, "
    "a.created_at) AS j FROM artifacts a JOIN runs r ON r.id = a.run_id WHERE r.uuid = '%s' "
    "ORDER BY a.step)",
    "SELECT group_concat(key, ';') FROM (SELECT f.key FROM run_features f JOIN runs r ON r.id = "
    "f.run_id WHERE r.uuid = '%s' ORDER BY f.key)",
    "SELECT group_concat(j, ';') FROM (SELECT json_array(i.role, i.path, i.sha256, i.bytes) AS j "
    "FROM run_inputs i JOIN runs r ON r.id = i.run_id WHERE r.uuid = '%s' ORDER BY i.role, "
    "i.path)",
    "SELECT group_concat(j, ';') FROM (SELECT json_array(c.id, c.name) AS j FROM run_classes c "
    "JOIN runs r ON r.id = c.run_id WHERE r.uuid = '%s' ORDER BY c.id)",
};
#define N_DUMPS (sizeof dumps / sizeof dumps[0])

static char *dump(const char *db, int which, const char *uuid)
{
    char sql[1024];
    snprintf(sql, sizeof sql, dumps[which], uuid);
    return raw_text(db, sql);
}

/* The uuids of a store's runs by id, as "u1,u2,...". */
static char *uuids(const char *db)
{
    return raw_text(db, "SELECT group_concat(uuid, ',') FROM (SELECT uuid FROM runs ORDER BY id)");
}

/* What D holds, in counts: compared before and after a refused merge. */
static char *fingerprint(const char *db)
{
    return raw_text(db, "SELECT (SELECT count(*) FROM runs) || ',' || (SELECT count(*) FROM "
                        "steps) || ',' || (SELECT count(*) FROM metrics) || ',' || (SELECT "
                        "count(*) FROM nan_events) || ',' || (SELECT count(*) FROM "
                        "frozen_changes) || ',' || (SELECT count(*) FROM stage_stats) || ',' || "
                        "(SELECT count(*) FROM artifacts) || ',' || (SELECT count(*) FROM "
                        "run_features) || ',' || (SELECT count(*) FROM sweeps) || ',' || (SELECT "
                        "count(*) FROM sweep_runs) || ',' || (SELECT seq FROM sqlite_sequence "
                        "WHERE name = 'runs')");
}

/* Every run of src is in D with the same rows (by uuid). */
static void assert_runs_copied(fixture *f, const char *src)
{
    char *list = uuids(src);
    assert_non_null(list);
    for (char *save = NULL, *u = strtok_r(list, ",", &save); u != NULL;
         u = strtok_r(NULL, ",", &save)) {
        assert_int_equal(strlen(u), 36);
        for (size_t i = 0; i < N_DUMPS; i++) {
            char *want = dump(src, (int)i, u), *got = dump(f->d, (int)i, u);
            if (want == NULL || got == NULL || strcmp(want, got) != 0)
                fail_msg("run %s, rows %zu: %s in the source, %s merged", u, i,
                         want ? want : "(none)", got ? got : "(none)");
            free(want);
            free(got);
        }
    }
    free(list);
}

/* No temporary copy is left beside D. */
static void assert_no_temp(fixture *f)
{
    char dir[400];
    snprintf(dir, sizeof dir, "%s/all", f->dir);
    DIR *d = opendir(dir);
    assert_non_null(d);
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (strstr(e->d_name, ".merge-") != NULL)
            fail_msg("left behind: %s", e->d_name);
    closedir(d);
}

static orch_merge_counts merge(fixture *f, const char *other)
{
    orch_err err = {0};
    orch_merge_counts c;
    if (orch_store_merge(f->dst, other, &c, &err) != ORCH_OK)
        fail_msg("merge %s: %s", other, err.msg);
    assert_no_temp(f);
    return c;
}

/* ------------------------------------------------------------- tests */

static void test_merge_two_jobs(void **state)
{
    fixture *f = *state;
    orch_merge_counts c = merge(f, f->a);
    assert_int_equal(c.runs_added, 3);
    assert_int_equal(c.runs_present, 0);
    assert_int_equal(c.sweeps_added, 1);
    assert_int_equal(c.sweeps_present, 0);
    /* new ids after D's own run, in A's order: A's 1 2 3 are D's 2 3 4 */
    char *want = uuids(f->a), *got = raw_text(f->d, "SELECT group_concat(uuid, ',') FROM "
                                                    "(SELECT uuid FROM runs WHERE id > 1 ORDER "
                                                    "BY id)");
    assert_string_equal(got, want);
    free(want);
    free(got);
    assert_runs_copied(f, f->a);

    c = merge(f, f->b);
    assert_int_equal(c.runs_added, 4);
    assert_int_equal(c.runs_present, 0);
    assert_int_equal(c.sweeps_added, 0);
    assert_int_equal(c.sweeps_present, 1);
    assert_runs_copied(f, f->b);
    assert_int_equal(raw_int(f->d, "SELECT count(*) FROM runs"), 8);

    /* one sweep with every point; p-s2 went to B's finished run, A's interrupted one stays
     * in the store outside the sweep */
    assert_int_equal(raw_int(f->d, "SELECT count(*) FROM sweeps"), 1);
    char *points = raw_text(f->d, "SELECT group_concat(p, ',') FROM (SELECT sr.point || ':' || "
                                  "r.status || ':' || sr.rank || ':' || sr.host || ':' || "
                                  "sr.attempts AS p FROM sweep_runs sr JOIN runs r ON r.id = "
                                  "sr.run_id ORDER BY sr.point)");
    assert_string_equal(points, "p-s1:finished:1:node1:1,p-s2:finished:1:node1:1,"
                                "p-s3:finished:1:node1:1,q-s1:diverged:1:node1:1");
    free(points);
    assert_int_equal(raw_int(f->d, "SELECT count(*) FROM runs r WHERE r.name = "
                                   "'strategies/p-s2' AND r.status = 'interrupted' AND NOT "
                                   "EXISTS (SELECT 1 FROM sweep_runs WHERE run_id = r.id)"),
                     1);
    /* the sweep's row is A's (the first), with its status */
    assert_int_equal(raw_int(f->d, "SELECT count(*) FROM sweeps WHERE name = 'strategies' AND "
                                   "hash = 'H' AND file = 'pipelines/sweep.lua'"),
                     1);

    /* the checkpoints resolve from D to the very files A and B wrote */
    sqlite3 *db = peer_open(f->d);
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_prepare_v2(db,
                                        "SELECT a.path, r.uuid FROM artifacts a JOIN runs r ON "
                                        "r.id = a.run_id WHERE r.id > 1 ORDER BY a.id",
                                        -1, &st, NULL),
                     SQLITE_OK);
    int n = 0;
    while (sqlite3_step(st) == SQLITE_ROW) {
        char resolved[4096], orig[1024], sql[256];
        const char *path = (const char *)sqlite3_column_text(st, 0);
        const char *uuid = (const char *)sqlite3_column_text(st, 1);
        assert_int_equal(orch_store_resolve_path(f->dst, path, resolved, sizeof resolved), 0);
        /* where the source store says it is */
        const char *src = NULL;
        snprintf(sql, sizeof sql, "SELECT count(*) FROM runs WHERE uuid = '%s'", uuid);
        src = raw_int(f->a, sql) == 1 ? f->a : f->b;
        snprintf(sql, sizeof sql,
                 "SELECT a.path FROM artifacts a JOIN runs r ON r.id = a.run_id WHERE r.uuid = "
                 "'%s'",
                 uuid);
        char *recorded = raw_text(src, sql);
        assert_non_null(recorded);
        snprintf(orig, sizeof orig, "%.*s/%s", (int)(strrchr(src, '/') - src), src, recorded);
        free(recorded);
        struct stat s1, s2;
        assert_int_equal(stat(resolved, &s1), 0);
        assert_int_equal(stat(orig, &s2), 0);
        assert_true(s1.st_ino == s2.st_ino && s1.st_dev == s2.st_dev);
        n++;
    }
    sqlite3_finalize(st);
    sqlite3_close(db);
    assert_int_equal(n, 7);
    /* D's own run keeps its store-relative path */
    char *own = raw_text(f->d, "SELECT path FROM artifacts WHERE run_id = 1");
    assert_string_equal(own, "orch.db.runs/1/checkpoint-3.safetensors");
    free(own);
    assert_int_equal(raw_int(f->d, "SELECT count(*) FROM pragma_foreign_key_check"), 0);
    char *ok = raw_text(f->d, "PRAGMA integrity_check");
    assert_string_equal(ok, "ok");
    free(ok);
}

/* The same stores again: nothing added, nothing changed. */
static void test_merge_twice_adds_nothing(void **state)
{
    fixture *f = *state;
    merge(f, f->a);
    merge(f, f->b);
    char *before = fingerprint(f->d);
    orch_merge_counts c = merge(f, f->a);
    assert_int_equal(c.runs_added, 0);
    assert_int_equal(c.runs_present, 3);
    assert_int_equal(c.sweeps_added, 0);
    assert_int_equal(c.sweeps_present, 1);
    c = merge(f, f->b);
    assert_int_equal(c.runs_added, 0);
    assert_int_equal(c.runs_present, 4);
    char *after = fingerprint(f->d);
    assert_string_equal(after, before);
    free(before);
    free(after);
    /* and the sources were only read */
    assert_int_equal(raw_int(f->a, "SELECT count(*) FROM runs"), 3);
    assert_int_equal(raw_int(f->b, "SELECT count(*) FROM runs"), 4);
}

/* A merged store merged on: a third store from D carries the runs of A and B
 * with the uuids they got at creation. */
static void test_uuids_kept_through_merges(void **state)
{
    fixture *f = *state;
    orch_err err = {0};
    merge(f, f->a);
    char e[400];
    snprintf(e, sizeof e, "%s/job2/copy.db", f->dir);
    orch_store *s = NULL;
    orch_merge_counts c;
    assert_int_equal(orch_store_open(e, ORCH_STORE_READWRITE, &s, &err), ORCH_OK);
    assert_int_equal(orch_store_merge(s, f->d, &c, &err), ORCH_OK);
    assert_int_equal(c.runs_added, 4);
    assert_int_equal(orch_store_merge(s, f->a, &c, &err), ORCH_OK);
    assert_int_equal(c.runs_added, 0);
    assert_int_equal(c.runs_present, 3);
    orch_store_close(s);
    char *want = uuids(f->d), *got = uuids(e);
    assert_string_equal(got, want);
    free(want);
    free(got);
}

/* Each refusal: ORCH_EINVAL, one line, D unchanged, no temporary left. */
static void assert_refused(fixture *f, const char *other, const char *words)
{
    orch_err err = {0};
    orch_merge_counts c = {1, 1, 1, 1};
    char *before = fingerprint(f->d);
    assert_int_equal(orch_store_merge(f->dst, other, &c, &err), ORCH_EINVAL);
    if (strstr(err.msg, words) == NULL)
        fail_msg("merge %s: '%s' does not say '%s'", other, err.msg, words);
    assert_null(strchr(err.msg, '\n'));
    assert_int_equal(c.runs_added + c.runs_present + c.sweeps_added + c.sweeps_present, 0);
    char *after = fingerprint(f->d);
    assert_string_equal(after, before);
    free(before);
    free(after);
    assert_no_temp(f);
    orch_err_clear(&err);
    assert_int_equal(orch_store_merge_check(f->d, other, &err), ORCH_EINVAL);
}

static void test_refusals(void **state)
{
    fixture *f = *state;
    char path[512];
    merge(f, f->a);

    assert_refused(f, f->d, "is the store itself");
    snprintf(path, sizeof path, "%s/all/./orch.db", f->dir);
    assert_refused(f, path, "is the store itself");
    snprintf(path, sizeof path, "%s/job1/link.db", f->dir);
    assert_int_equal(symlink(f->d, path), 0);
    assert_refused(f, path, "is the store itself");

    snprintf(path, sizeof path, "%s/job1/missing.db", f->dir);
    assert_refused(f, path, "no store at");
    snprintf(path, sizeof path, "%s/job1", f->dir);
    assert_refused(f, path, "is not a file");

    snprintf(path, sizeof path, "%s/job1/notes.txt", f->dir);
    assert_int_equal(write_text_file(path, "these are not the runs you are looking for\n"), 0);
    assert_refused(f, path, "is not an orch store");

    snprintf(path, sizeof path, "%s/job1/other-app.db", f->dir);
    raw_exec(path, "CREATE TABLE t (x); PRAGMA application_id = 1234;");
    assert_refused(f, path, "is not an orch store");
    snprintf(path, sizeof path, "%s/job1/plain.db", f->dir);
    raw_exec(path, "CREATE TABLE runs (id);");
    assert_refused(f, path, "is not an orch store");

    /* a newer schema than this orch knows */
    snprintf(path, sizeof path, "%s/job1/newer.db", f->dir);
    orch_store *s = NULL;
    orch_err err = {0};
    assert_int_equal(orch_store_open(path, ORCH_STORE_READWRITE, &s, &err), ORCH_OK);
    orch_store_close(s);
    raw_exec(path, "PRAGMA user_version = 99;");
    assert_refused(f, path, "has schema version 99, newer than this orch knows");

    /* a read-only store cannot take a merge */
    assert_int_equal(orch_store_open(f->a, ORCH_STORE_READONLY, &s, &err), ORCH_OK);
    assert_int_equal(orch_store_merge(s, f->b, NULL, &err), ORCH_EINVAL);
    orch_store_close(s);
}

/* A store of schema version 4 (no uuids): migrated in a copy, its runs
 * merged with uuids that are the same at the next merge; the file itself
 * stays at version 4. */
static void test_older_store(void **state)
{
    fixture *f = *state;
    orch_err err = {0};
    char path[512], ckpt[600];
    snprintf(path, sizeof path, "%s/job1/v4.db", f->dir);
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    if (store_migrate(db, path, store_migrations, 4, &err) != ORCH_OK)
        fail_msg("migrate to 4: %s", err.msg);
    sqlite3_close(db);
    snprintf(ckpt, sizeof ckpt, "%s.runs", path);
    assert_int_equal(mkdir(ckpt, 0777), 0);
    snprintf(ckpt, sizeof ckpt, "%s.runs/1", path);
    assert_int_equal(mkdir(ckpt, 0777), 0);
    snprintf(ckpt, sizeof ckpt, "%s.runs/1/checkpoint-1.safetensors", path);
    assert_int_equal(write_text_file(ckpt, "old"), 0);
    raw_exec(path, "INSERT INTO runs (pipeline, name, strategy, status, seed, pid, host, "
                   "created_at) VALUES ('p.lua', 'old-1', 'lora', 'finished', 1, 11, 'h', "
                   "'2025-01-01T00:00:00.000Z'), ('p.lua', 'old-2', 'surgery', 'diverged', 2, "
                   "12, 'h', '2025-01-01T00:00:01.000Z');"
                   "INSERT INTO steps (run_id, step, loss) VALUES (1, 0, 2.0), (1, 1, 1.0), "
                   "(2, 0, 3.0);"
                   "INSERT INTO artifacts (run_id, step, kind, path, sha256, bytes) VALUES (1, "
                   "1, 'checkpoint', 'v4.db.runs/1/checkpoint-1.safetensors', 'aa', 3);");
    char *before_d = fingerprint(f->d);
    orch_merge_counts c = merge(f, path);
    assert_int_equal(c.runs_added, 2);
    assert_int_equal(c.sweeps_added, 0);
    assert_int_equal(raw_int(f->d, "SELECT count(*) FROM runs WHERE name LIKE 'old-%' AND "
                                   "length(uuid) = 36 AND substr(uuid, 15, 1) = '8'"),
                     2);
    assert_int_equal(raw_int(f->d, "SELECT count(*) FROM steps s JOIN runs r ON r.id = "
                                   "s.run_id WHERE r.name = 'old-1'"),
                     2);
    char *p = raw_text(f->d, "SELECT a.path FROM artifacts a JOIN runs r ON r.id = a.run_id "
                             "WHERE r.name = 'old-1'");
    char resolved[4096];
    struct stat s1, s2;
    assert_int_equal(orch_store_resolve_path(f->dst, p, resolved, sizeof resolved), 0);
    assert_int_equal(stat(resolved, &s1), 0);
    assert_int_equal(stat(ckpt, &s2), 0);
    assert_true(s1.st_ino == s2.st_ino);
    free(p);
    /* again: the same uuids, nothing added */
    c = merge(f, path);
    assert_int_equal(c.runs_added, 0);
    assert_int_equal(c.runs_present, 2);
    assert_int_equal(raw_int(path, "PRAGMA user_version"), 4);
    char *after_d = fingerprint(f->d);
    assert_string_not_equal(after_d, before_d);
    free(before_d);
    free(after_d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_merge_two_jobs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_merge_twice_adds_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_uuids_kept_through_merges, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refusals, setup, teardown),
        cmocka_unit_test_setup_teardown(test_older_store, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
