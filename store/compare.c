/*
 * compare.c - reading what `orch compare` prints (render_text.c): runs
 * side by side, from run_summary.
 *
 * The selection is one statement: the ids given (a JSON array bound as
 * text, read with json_each, so any number of ids is one parameter), in
 * their order, then the runs matching the filters (pipeline, tag), by id.
 * It works on read-only and read-write stores alike.
 *
 * Evaluation: when any selected run has an eval/loss or eval/accuracy
 * metric, the rows gain final_eval_loss, best_eval_accuracy and
 * best_eval_step (after best_loss) and are ranked by them: the best
 * accuracy first, then the lowest final eval loss, runs without either
 * last in the order above. Otherwise columns and order are as they were
 * before evaluation existed, so scripts reading CSV see no change.
 */
#include "store/store_int.h"

#include <stdlib.h>
#include <string.h>

/* ?1: JSON array of ids; ?2: pipeline or NULL; ?3: tag or NULL. */
static const char sql_select[] =
    "WITH ids(run_id, ord) AS (\n"
    "    SELECT CAST(value AS INTEGER), min(key) FROM json_each(?1)\n"
    "     GROUP BY CAST(value AS INTEGER)),\n"
    "sel(run_id, grp, ord) AS (\n"
    "    SELECT run_id, 0, ord FROM ids\n"
    "    UNION ALL\n"
    "    SELECT r.id, 1, r.id FROM runs r\n"
    "     WHERE (?2 IS NOT NULL OR ?3 IS NOT NULL)\n"
    "       AND (?2 IS NULL OR r.pipeline = ?2 OR r.name = ?2\n"
    "            OR substr(r.pipeline, -length(?2) - 1) = '/' || ?2)\n"
    "       AND (?3 IS NULL OR EXISTS (SELECT 1 FROM json_each(r.config_json, '$.tags') t\n"
    "                                   WHERE t.value = ?3))\n"
    "       AND r.id NOT IN (SELECT run_id FROM ids))\n";

static const char sql_cols_exact[] =
    "SELECT s.run_id AS run, s.name, s.strategy, s.precision, s.lr, s.seed, s.status, s.steps,\n"
    "       s.final_loss, s.best_loss, s.max_grad_norm, s.first_nan_step, s.first_nan_phase,\n"
    "       s.first_nan_stage, s.steps_per_s, r.kernels, r.threads\n";
static const char sql_cols_eval[] =
    "SELECT s.run_id AS run, s.name, s.strategy, s.precision, s.lr, s.seed, s.status, s.steps,\n"
    "       s.final_loss, s.best_loss, s.final_eval_loss, s.best_eval_accuracy, s.best_eval_step,\n"
    "       s.max_grad_norm, s.first_nan_step, s.first_nan_phase, s.first_nan_stage,\n"
    "       s.steps_per_s, r.kernels, r.threads\n";
static const char sql_from[] = "  FROM sel JOIN run_summary s ON s.run_id = sel.run_id\n"
                               "  JOIN runs r ON r.id = sel.run_id\n"
                               " ORDER BY sel.grp, sel.ord";
static const char sql_from_eval[] =
    "  FROM sel JOIN run_summary s ON s.run_id = sel.run_id\n"
    "  JOIN runs r ON r.id = sel.run_id\n"
    " ORDER BY s.best_eval_accuracy DESC NULLS LAST, s.final_eval_loss NULLS LAST, sel.grp, "
    "sel.ord";
/* Was any selected run evaluated? */
static const char sql_any_eval[] =
    "SELECT EXISTS (SELECT 1 FROM sel JOIN metrics m ON m.run_id = sel.run_id\n"
    "                WHERE m.name IN ('eval/loss', 'eval/accuracy'))";

/* Checks that every id names a run. */
static int check_ids(orch_store *s, const int64_t *ids, int n, orch_err *err)
{
    sqlite3_stmt *st = NULL;
    int rc = store_prepare(s, "SELECT 1 FROM runs WHERE id = ?1", 0, &st, err);
    for (int i = 0; i < n && rc == ORCH_OK; i++) {
        int src = sqlite3_bind_int64(st, 1, ids[i]);
        if (src == SQLITE_OK)
            src = sqlite3_step(st);
        if (src == SQLITE_DONE)
            rc = orch_seterr(err, ORCH_EINVAL, "compare: no run %lld in %s", (long long)ids[i],
                             s->path);
        else if (src != SQLITE_ROW)
            rc = store_dberr(s, src, "compare", err);
        sqlite3_reset(st);
    }
    sqlite3_finalize(st);
    return rc;
}

/* "[1,2,3]", malloc'd; NULL when out of memory. */
static char *ids_json(const int64_t *ids, int n)
{
    size_t cap = 3 + (size_t)n * 22;
    char *buf = malloc(cap);
    if (buf == NULL)
        return NULL;
    size_t at = 0;
    buf[at++] = '[';
    for (int i = 0; i < n; i++)
        at += (size_t)snprintf(buf + at, cap - at, "%s%lld", i > 0 ? "," : "", (long long)ids[i]);
    buf[at++] = ']';
    buf[at] = '\0';
    return buf;
}

/* Runs sql (the selection's parameters: ids, pipeline, tag) into *out. */
static int select_into(orch_store *s, const char *sql, const char *ids, const char *pipeline,
                       const char *tag, orch_rowset *out, orch_err *err)
{
    sqlite3_stmt *st = NULL;
    int rc = store_prepare(s, sql, 0, &st, err);
    if (rc == ORCH_OK && (sqlite3_bind_text(st, 1, ids, -1, SQLITE_STATIC) |
                          sqlite3_bind_text(st, 2, pipeline, -1, SQLITE_STATIC) |
                          sqlite3_bind_text(st, 3, tag, -1, SQLITE_STATIC)) != SQLITE_OK)
        rc = store_dberr(s, sqlite3_errcode(s->db), "compare", err);
    if (rc == ORCH_OK)
        rc = store_fetch_rows(s, st, out, err);
    sqlite3_finalize(st);
    return rc;
}

int orch_store_read_compare(orch_store *s, const int64_t *run_ids, int n_ids, const char *pipeline,
                            const char *tag, orch_rowset *out, orch_err *err)
{
    char *ids = NULL, *sql = NULL;
    if (out != NULL)
        memset(out, 0, sizeof *out);
    if (s == NULL || out == NULL)
        return orch_seterr(err, ORCH_EINVAL, "compare: no store");
    if (n_ids < 0 || (n_ids > 0 && run_ids == NULL))
        return orch_seterr(err, ORCH_EINVAL, "compare: bad list of runs");
    if (n_ids == 0 && pipeline == NULL && tag == NULL)
        return orch_seterr(err, ORCH_EINVAL,
                           "compare: name the runs to compare, or give --pipeline or --tag");
    int rc = check_ids(s, run_ids, n_ids, err);
    if (rc != ORCH_OK)
        return rc;

    size_t n = strlen(sql_select) + strlen(sql_cols_eval) + strlen(sql_from_eval) + 1;
    ids = ids_json(run_ids, n_ids);
    sql = malloc(n);
    if (ids == NULL || sql == NULL) {
        rc = orch_seterr(err, ORCH_ENOMEM, "compare: out of memory");
        goto out;
    }
    /* one read: the check for evaluation and the rows see the same runs */
    rc = store_exec(s, "BEGIN", err);
    if (rc != ORCH_OK)
        goto out;
    snprintf(sql, n, "%s%s", sql_select, sql_any_eval);
    orch_rowset any = {0};
    rc = select_into(s, sql, ids, pipeline, tag, &any, err);
    int evaluated = rc == ORCH_OK && any.n_rows == 1 && any.cells[0].kind == ORCH_VALUE_INT &&
                    any.cells[0].i != 0;
    orch_rowset_free(&any);
    if (rc == ORCH_OK) {
        snprintf(sql, n, "%s%s%s", sql_select, evaluated ? sql_cols_eval : sql_cols_exact,
                 evaluated ? sql_from_eval : sql_from);
        rc = select_into(s, sql, ids, pipeline, tag, out, err);
    }
    store_exec(s, "COMMIT", NULL);
    /* An empty selection is an error that says why. */
    if (rc == ORCH_OK && out->n_rows == 0)
        rc = orch_seterr(err, ORCH_EINVAL, "compare: no runs in %s match%s%s%s%s%s", s->path,
                         pipeline != NULL ? " --pipeline " : "", pipeline != NULL ? pipeline : "",
                         pipeline != NULL && tag != NULL ? " and" : "",
                         tag != NULL ? " --tag " : "", tag != NULL ? tag : "");
out:
    free(sql);
    free(ids);
    if (rc != ORCH_OK)
        orch_rowset_free(out);
    return rc;
}
