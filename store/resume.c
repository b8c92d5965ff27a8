/*
 * resume.c - what `orch resume RUN` reads of a run before it continues it:
 * the configuration it started with, its status and step count, and its
 * last checkpoint. The taking over itself is the sink's resume_run
 * (sink.c), which the run loop calls once it has loaded the checkpoint.
 */
#include "store/store_int.h"

#include <stdlib.h>
#include <string.h>

static const char sql_run[] =
    "SELECT r.pipeline, r.name, r.strategy, r.config_json, r.config_hash, r.status, r.seed,\n"
    "       (SELECT count(*) FROM steps s WHERE s.run_id = r.id),\n"
    "       (SELECT max(s.step) FROM steps s WHERE s.run_id = r.id), r.threads\n"
    "  FROM runs r WHERE r.id = ?1";
static const char sql_checkpoint[] =
    "SELECT step, path, sha256, bytes FROM artifacts\n"
    " WHERE run_id = ?1 AND kind = 'checkpoint' ORDER BY step DESC, id DESC";

/* A malloc'd copy of column i's text in *dst (NULL for SQL NULL). */
static int dup_column(sqlite3_stmt *st, int i, char **dst, orch_err *err)
{
    const unsigned char *t = sqlite3_column_text(st, i);
    *dst = NULL;
    if (t == NULL)
        return sqlite3_column_type(st, i) == SQLITE_NULL
                   ? ORCH_OK
                   : orch_seterr(err, ORCH_ENOMEM, "store: out of memory");
    *dst = strdup((const char *)t);
    return *dst != NULL ? ORCH_OK : orch_seterr(err, ORCH_ENOMEM, "store: out of memory");
}

/* Appends the checkpoint of row st (step, path, sha256, bytes). */
static int add_checkpoint(orch_store *s, sqlite3_stmt *st, orch_resume_info *out, orch_err *err)
{
    orch_resume_checkpoint *grown =
        realloc(out->checkpoints, sizeof *grown * (size_t)(out->n_checkpoints + 1));
    if (grown == NULL)
        return orch_seterr(err, ORCH_ENOMEM, "store: out of memory");
    out->checkpoints = grown;
    orch_resume_checkpoint *c = &grown[out->n_checkpoints++];
    memset(c, 0, sizeof *c);
    c->step = sqlite3_column_int64(st, 0);
    c->bytes = sqlite3_column_type(st, 3) == SQLITE_NULL ? -1 : sqlite3_column_int64(st, 3);
    const unsigned char *recorded = sqlite3_column_text(st, 1);
    char path[STORE_PATH_MAX];
    if (recorded == NULL ||
        orch_store_resolve_path(s, (const char *)recorded, path, sizeof path) != 0)
        return orch_seterr(err, ORCH_EINVAL, "resume: checkpoint path of step %lld is too long",
                           (long long)c->step);
    c->path = strdup(path);
    if (c->path == NULL)
        return orch_seterr(err, ORCH_ENOMEM, "store: out of memory");
    return dup_column(st, 2, &c->sha256, err);
}

void orch_resume_info_free(orch_resume_info *info)
{
    if (info == NULL)
        return;
    free(info->pipeline);
    free(info->name);
    free(info->strategy);
    free(info->config_json);
    free(info->config_hash);
    free(info->status);
    for (int i = 0; i < info->n_checkpoints; i++) {
        free(info->checkpoints[i].path);
        free(info->checkpoints[i].sha256);
    }
    free(info->checkpoints);
    memset(info, 0, sizeof *info);
}

int orch_store_resume_info(orch_store *s, int64_t run_id, orch_resume_info *out, orch_err *err)
{
    sqlite3_stmt *run = NULL, *ckpt = NULL;
    int in_txn = 0;
    int src;
    if (out == NULL)
        return orch_seterr(err, ORCH_EINVAL, "resume: nowhere to put the run");
    memset(out, 0, sizeof *out);
    if (s == NULL)
        return orch_seterr(err, ORCH_EINVAL, "resume: no store");
    int rc = store_prepare(s, sql_run, 0, &run, err);
    if (rc == ORCH_OK)
        rc = store_prepare(s, sql_checkpoint, 0, &ckpt, err);
    if (rc == ORCH_OK)
        rc = store_exec(s, "BEGIN", err); /* one snapshot for both reads */
    if (rc != ORCH_OK)
        goto out;
    in_txn = 1;
    if ((sqlite3_bind_int64(run, 1, run_id) | sqlite3_bind_int64(ckpt, 1, run_id)) != SQLITE_OK) {
        rc = store_dberr(s, sqlite3_errcode(s->db), "resume", err);
        goto out;
    }
    src = sqlite3_step(run);
    if (src == SQLITE_DONE) {
        rc = orch_seterr(err, ORCH_EINVAL, "no run %lld in %s", (long long)run_id, s->path);
        goto out;
    }
    if (src != SQLITE_ROW) {
        rc = store_dberr(s, src, "resume: reading the run", err);
        goto out;
    }
    out->run_id = run_id;
    char **text[] = {&out->pipeline,    &out->name,        &out->strategy,
                     &out->config_json, &out->config_hash, &out->status};
    for (int i = 0; i < 6 && rc == ORCH_OK; i++)
        rc = dup_column(run, i, text[i], err);
    if (rc != ORCH_OK)
        goto out;
    out->seed = (uint64_t)sqlite3_column_int64(run, 6);
    out->steps = sqlite3_column_int64(run, 7);
    out->last_step = sqlite3_column_type(run, 8) == SQLITE_NULL ? -1 : sqlite3_column_int64(run, 8);
    out->threads = sqlite3_column_int64(run, 9); /* NULL (older runs) reads as 0 */

    while (rc == ORCH_OK && (src = sqlite3_step(ckpt)) == SQLITE_ROW)
        rc = add_checkpoint(s, ckpt, out, err);
    if (rc == ORCH_OK && src != SQLITE_DONE)
        rc = store_dberr(s, src, "resume: reading the checkpoints", err);
out:
    sqlite3_finalize(run);
    sqlite3_finalize(ckpt);
    if (in_txn)
        store_exec(s, "COMMIT", NULL);
    if (rc != ORCH_OK)
        orch_resume_info_free(out);
    return rc;
}
