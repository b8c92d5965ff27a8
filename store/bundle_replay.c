/*
 * bundle_replay.c - what `orch replay` needs of a run: its configuration,
 * thread count and recorded losses, from a bundle or from the store
 * (store/bundle.h).
 */
#include "store/bundle_int.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void orch_replay_set_free(orch_replay_set *set)
{
    if (set == NULL)
        return;
    for (int i = 0; i < set->n; i++) {
        free(set->runs[i].name);
        free(set->runs[i].config_json);
        free(set->runs[i].steps);
        free(set->runs[i].losses);
    }
    free(set->runs);
    memset(set, 0, sizeof *set);
}

static int grow(orch_replay_run *r, int64_t n)
{
    r->steps = malloc(sizeof *r->steps * (size_t)(n > 0 ? n : 1));
    r->losses = malloc(sizeof *r->losses * (size_t)(n > 0 ? n : 1));
    return r->steps != NULL && r->losses != NULL ? 0 : -1;
}

/* One run of a staged bundle. */
static int bundle_run(const bundle_staged *b, const char *path, const char *uuid,
                      orch_replay_run *out, orch_err *err)
{
    char name[256];
    snprintf(out->uuid, sizeof out->uuid, "%s", uuid);
    snprintf(name, sizeof name, "runs/%s/config.json", uuid);
    const bundle_member *m = bundle_find(b, name);
    if (m == NULL)
        return orch_seterr(err, ORCH_EINVAL, "%s: %s: missing", path, name);
    int rc = bundle_slurp(b, m, &out->config_json, err);
    orch_rowset rows;
    memset(&rows, 0, sizeof rows);
    char *text = NULL, label[512];
    snprintf(name, sizeof name, "runs/%s/rows/runs.csv", uuid);
    snprintf(label, sizeof label, "%s: %s", path, name);
    m = bundle_find(b, name);
    if (rc == ORCH_OK && m == NULL)
        rc = orch_seterr(err, ORCH_EINVAL, "%s: missing", label);
    if (rc == ORCH_OK)
        rc = bundle_slurp(b, m, &text, err);
    if (rc == ORCH_OK)
        rc = bundle_csv_parse(label, text, (size_t)m->bytes, &rows, err);
    free(text);
    text = NULL;
    if (rc == ORCH_OK && rows.n_rows == 1) {
        int c = orch_rowset_column(&rows, "threads");
        if (c >= 0 && rows.cells[c].kind == ORCH_VALUE_INT)
            out->threads = rows.cells[c].i;
        c = orch_rowset_column(&rows, "name");
        out->name = strdup(c >= 0 && rows.cells[c].kind == ORCH_VALUE_TEXT ? rows.cells[c].s : "");
    }
    orch_rowset_free(&rows);
    snprintf(name, sizeof name, "runs/%s/rows/steps.csv", uuid);
    snprintf(label, sizeof label, "%s: %s", path, name);
    m = bundle_find(b, name);
    if (rc == ORCH_OK && m == NULL)
        rc = orch_seterr(err, ORCH_EINVAL, "%s: missing", label);
    if (rc == ORCH_OK)
        rc = bundle_slurp(b, m, &text, err);
    if (rc == ORCH_OK)
        rc = bundle_csv_parse(label, text, (size_t)m->bytes, &rows, err);
    free(text);
    int cs = orch_rowset_column(&rows, "step"), cl = orch_rowset_column(&rows, "loss");
    if (rc == ORCH_OK && (cs < 0 || cl < 0))
        rc = orch_seterr(err, ORCH_EINVAL, "%s: malformed CSV: no step or loss column", label);
    if (rc == ORCH_OK && grow(out, (int64_t)rows.n_rows) != 0)
        rc = orch_seterr(err, ORCH_ENOMEM, "out of memory");
    for (size_t r = 0; rc == ORCH_OK && r < rows.n_rows; r++) {
        const orch_value *row = &rows.cells[r * (size_t)rows.n_cols];
        if (row[cs].kind != ORCH_VALUE_INT) {
            rc = orch_seterr(err, ORCH_EINVAL, "%s: row %zu: step is not an integer", label, r + 1);
            break;
        }
        out->steps[r] = row[cs].i;
        out->losses[r] = row[cl].kind == ORCH_VALUE_REAL  ? row[cl].r
                         : row[cl].kind == ORCH_VALUE_INT ? (double)row[cl].i
                                                          : NAN;
        out->n_steps = (int64_t)r + 1;
    }
    orch_rowset_free(&rows);
    return rc;
}

int orch_bundle_read_runs(const char *path, const orch_bundle_limits *limits, orch_replay_set *out,
                          orch_err *err)
{
    memset(out, 0, sizeof *out);
    const char *tmpdir = getenv("TMPDIR");
    char tmpl[STORE_PATH_MAX];
    snprintf(tmpl, sizeof tmpl, "%s/orch-replay-XXXXXX",
             tmpdir != NULL && tmpdir[0] != '\0' ? tmpdir : "/tmp");
    bundle_staged b;
    int rc = bundle_stage(path, limits, tmpl, &b, err);
    if (rc != ORCH_OK)
        return rc;
    char(*uuids)[40] = NULL;
    int n = 0;
    rc = bundle_manifest_runs(&b, path, &uuids, &n, err);
    if (rc == ORCH_OK && n > 0 && (out->runs = calloc((size_t)n, sizeof *out->runs)) == NULL)
        rc = orch_seterr(err, ORCH_ENOMEM, "out of memory");
    for (int i = 0; rc == ORCH_OK && i < n; i++) {
        out->n = i + 1;
        rc = bundle_run(&b, path, uuids[i], &out->runs[i], err);
    }
    free(uuids);
    bundle_unstage(&b);
    if (rc != ORCH_OK)
        orch_replay_set_free(out);
    return rc;
}

int orch_store_read_replay(orch_store *s, int64_t run_id, orch_replay_set *out, orch_err *err)
{
    memset(out, 0, sizeof *out);
    out->runs = calloc(1, sizeof *out->runs);
    if (out->runs == NULL)
        return orch_seterr(err, ORCH_ENOMEM, "out of memory");
    out->n = 1;
    orch_replay_run *r = &out->runs[0];
    sqlite3_stmt *st = NULL;
    int rc = store_prepare(s,
                           "SELECT uuid, name, config_json, coalesce(threads, 0), "
                           "(SELECT count(*) FROM steps WHERE run_id = ?1) FROM runs WHERE id = ?1",
                           0, &st, err);
    int64_t n = 0;
    if (rc == ORCH_OK) {
        sqlite3_bind_int64(st, 1, run_id);
        int src = sqlite3_step(st);
        if (src == SQLITE_ROW) {
            snprintf(r->uuid, sizeof r->uuid, "%s", (const char *)sqlite3_column_text(st, 0));
            r->name = strdup((const char *)sqlite3_column_text(st, 1));
            const char *c = (const char *)sqlite3_column_text(st, 2);
            r->config_json = strdup(c != NULL ? c : "{}");
            r->threads = sqlite3_column_int64(st, 3);
            n = sqlite3_column_int64(st, 4);
            if (r->name == NULL || r->config_json == NULL || grow(r, n) != 0)
                rc = orch_seterr(err, ORCH_ENOMEM, "out of memory");
        } else {
            rc = src == SQLITE_DONE ? orch_seterr(err, ORCH_EINVAL, "no run %lld in %s",
                                                  (long long)run_id, s->path)
                                    : store_dberr(s, src, "replay: reading the run", err);
        }
    }
    sqlite3_finalize(st);
    st = NULL;
    if (rc == ORCH_OK)
        rc = store_prepare(s, "SELECT step, loss FROM steps WHERE run_id = ?1 ORDER BY step", 0,
                           &st, err);
    if (rc == ORCH_OK) {
        sqlite3_bind_int64(st, 1, run_id);
        int src;
        while ((src = sqlite3_step(st)) == SQLITE_ROW && r->n_steps < n) {
            r->steps[r->n_steps] = sqlite3_column_int64(st, 0);
            r->losses[r->n_steps] =
                sqlite3_column_type(st, 1) == SQLITE_NULL ? NAN : sqlite3_column_double(st, 1);
            r->n_steps++;
        }
        if (src != SQLITE_DONE && src != SQLITE_ROW)
            rc = store_dberr(s, src, "replay: reading the steps", err);
    }
    sqlite3_finalize(st);
    if (rc != ORCH_OK)
        orch_replay_set_free(out);
    return rc;
}
