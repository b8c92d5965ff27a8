/*
 * report.c - reading what `orch runs` (the list of runs) and `orch show
 * RUN` (one run) print: orch_store_read_runs and orch_store_read_run fill
 * the structs of store.h; render_text.c prints them.
 *
 * Both read run_summary, the view that docs/store.md describes, through
 * store/'s own prepared statements with bound parameters. A run is read
 * inside one transaction so a run that is still writing appears
 * consistent.
 */
#include "store/store_int.h"

#include <stdlib.h>
#include <string.h>

static const char sql_list[] = "SELECT * FROM run_summary\n"
                               " WHERE (?1 IS NULL OR pipeline = ?1 OR name = ?1\n"
                               "        OR substr(pipeline, -length(?1) - 1) = '/' || ?1)\n"
                               "   AND (?2 IS NULL OR strategy = ?2)\n"
                               "   AND (?3 IS NULL OR status = ?3)\n"
                               " ORDER BY run_id";

static int valid_status(const char *status)
{
    for (int i = ORCH_RUN_QUEUED; i <= ORCH_RUN_SKIPPED; i++)
        if (strcmp(status, orch_run_status_name((orch_run_status)i)) == 0)
            return 1;
    return 0;
}

int orch_store_read_runs(orch_store *s, const char *pipeline, const char *strategy,
                         const char *status, orch_rowset *out, orch_err *err)
{
    sqlite3_stmt *st = NULL;
    if (out != NULL)
        memset(out, 0, sizeof *out);
    if (s == NULL || out == NULL)
        return orch_seterr(err, ORCH_EINVAL, "runs: no store");
    if (status != NULL && !valid_status(status))
        return orch_seterr(err, ORCH_EINVAL,
                           "runs: unknown status '%s' (queued, running, finished, diverged, "
                           "failed, interrupted or skipped)",
                           status);
    int rc = store_prepare(s, sql_list, 0, &st, err);
    if (rc == ORCH_OK && (sqlite3_bind_text(st, 1, pipeline, -1, SQLITE_STATIC) |
                          sqlite3_bind_text(st, 2, strategy, -1, SQLITE_STATIC) |
                          sqlite3_bind_text(st, 3, status, -1, SQLITE_STATIC)) != SQLITE_OK)
        rc = store_dberr(s, sqlite3_errcode(s->db), "runs", err);
    if (rc == ORCH_OK)
        rc = store_fetch_rows(s, st, out, err);
    sqlite3_finalize(st);
    if (rc != ORCH_OK)
        orch_rowset_free(out);
    return rc;
}

/* ------------------------------------------------------------- show */

/* The column names are the field names `orch show` prints; the sweep's
 * fields (sweep, point, rank, rank_host, attempts) are NULL for a run that
 * is not a sweep's. */
static const char sql_run[] =
    "SELECT r.pipeline AS pipeline, r.name AS name, r.strategy AS strategy, r.status AS status,\n"
    "       r.seed AS seed, r.host AS host, r.pid AS pid, r.orch_version AS orch_version,\n"
    "       r.kernels AS kernels, r.kernels_why AS kernels_why, r.cpu AS cpu,\n"
    "       r.threads AS threads, r.config_hash AS config_hash, r.data_hash AS data_hash,\n"
    "       r.created_at AS created_at,\n"
    "       r.started_at AS started_at, r.heartbeat_at AS heartbeat_at,\n"
    "       r.finished_at AS finished_at, r.error AS error, r.end_reason AS end_reason,\n"
    "       r.uuid AS uuid,\n"
    "       w.sweep_id AS sweep_id, sw.name AS sweep, w.point AS point, w.rank AS rank,\n"
    "       w.host AS rank_host, w.attempts AS attempts\n"
    "  FROM runs r LEFT JOIN sweep_runs w ON w.run_id = r.id\n"
    "  LEFT JOIN sweeps sw ON sw.id = w.sweep_id WHERE r.id = ?1";
static const char sql_config[] =
    "SELECT config_json, json_extract(config_json, '$.checks.frozen') FROM runs WHERE id = ?1";
static const char sql_summary[] =
    "SELECT lr, precision, steps, last_step, final_loss, best_loss, max_grad_norm, "
    "nonfinite_steps, first_nonfinite_step, nan_events, tags, steps_per_s, frozen_changed, "
    "last_checkpoint_step, final_eval_loss, best_eval_accuracy, best_eval_step FROM run_summary "
    "WHERE run_id = ?1";
static const char sql_nans[] =
    "SELECT step, phase, stage, tensor, nan_count, inf_count, input_absmax, inputs_finite "
    "FROM nan_events WHERE run_id = ?1 ORDER BY step, id LIMIT ?2";
/* A data-parallel run's events also say where they were found. */
static const char sql_nans_ranked[] =
    "SELECT step, phase, stage, tensor, nan_count, inf_count, input_absmax, inputs_finite, rank, "
    "host FROM nan_events WHERE run_id = ?1 ORDER BY step, id LIMIT ?2";
static const char sql_ranked[] =
    "SELECT EXISTS (SELECT 1 FROM nan_events WHERE run_id = ?1 AND rank IS NOT NULL) LIMIT ?2";
static const char sql_frozen[] =
    "SELECT step, parameter FROM frozen_changes WHERE run_id = ?1 ORDER BY step, id LIMIT ?2";
/* A size in bytes for people: "512 B", "1.5 MiB". */
#define SIZE_SQL(col)                                                                              \
    "CASE WHEN " col " IS NULL THEN NULL\n"                                                        \
    "            WHEN " col " < 1024 THEN " col " || ' B'\n"                                       \
    "            WHEN " col " < 1048576 THEN printf('%.1f KiB', " col " / 1024.0)\n"               \
    "            WHEN " col " < 1073741824 THEN printf('%.1f MiB', " col " / 1048576.0)\n"         \
    "            ELSE printf('%.1f GiB', " col " / 1073741824.0) END"
static const char sql_checkpoints[] =
    "SELECT step, path, substr(sha256, 1, 12) AS sha256,\n"
    "       " SIZE_SQL(
        "bytes") " AS size\n"
                 "  FROM artifacts WHERE run_id = ?1 AND kind = 'checkpoint' ORDER BY step";
/* The data it computed on: per role (train first), then the files. */
static const char sql_inputs_by_role[] = "SELECT role, count(*) AS files, " SIZE_SQL(
    "sum(bytes)") " AS size\n"
                  "  FROM run_inputs WHERE run_id = ?1 GROUP BY role ORDER BY role = 'eval', role";
static const char sql_inputs[] = "SELECT role, path, substr(sha256, 1, 12) AS sha256, " SIZE_SQL(
    "bytes") " AS size\n"
             "  FROM run_inputs WHERE run_id = ?1 ORDER BY role = 'eval', role, path LIMIT ?2";
static const char sql_classes[] =
    "SELECT id, name FROM run_classes WHERE run_id = ?1 ORDER BY id LIMIT ?2";
static const char sql_n_classes[] = "SELECT count(*) FROM run_classes WHERE run_id = ?1";
static const char sql_stats[] =
    "SELECT count(DISTINCT stage), count(DISTINCT step), min(step), max(step)\n"
    "  FROM stage_stats WHERE run_id = ?1";
static const char sql_stats_top[] =
    "SELECT step, stage, act_absmax, act_rms, grad_norm FROM stage_stats\n"
    " WHERE run_id = ?1 AND step = (SELECT max(step) FROM stage_stats WHERE run_id = ?1)\n"
    " ORDER BY act_absmax DESC, stage LIMIT 1";
static const char sql_stats_first[] =
    "SELECT stage, min(step) FROM stage_stats WHERE run_id = ?1\n"
    "   AND (act_absmax IS NULL OR act_absmax > 1e4) GROUP BY stage ORDER BY 2, 1 LIMIT 1";

/* Runs sql with ?1 = run_id (and ?2 = limit when limit is not 0; -1: no
 * limit) into *out. */
static int read_rows(orch_store *s, const char *sql, int64_t run_id, int64_t limit,
                     orch_rowset *out, orch_err *err)
{
    sqlite3_stmt *st = NULL;
    int rc = store_prepare(s, sql, 0, &st, err);
    if (rc == ORCH_OK && (sqlite3_bind_int64(st, 1, run_id) |
                          (limit != 0 ? sqlite3_bind_int64(st, 2, limit) : SQLITE_OK)) != SQLITE_OK)
        rc = store_dberr(s, sqlite3_errcode(s->db), "show", err);
    if (rc == ORCH_OK)
        rc = store_fetch_rows(s, st, out, err);
    sqlite3_finalize(st);
    return rc;
}

/* The integer in row 0, column col of rows; 0 when missing or NULL. */
static int64_t int_at(const orch_rowset *rows, int col)
{
    if (rows->n_rows == 0 || col >= rows->n_cols || rows->cells[col].kind != ORCH_VALUE_INT)
        return 0;
    return rows->cells[col].i;
}

enum { SUMMARY_NAN_EVENTS = 9, SUMMARY_FROZEN_CHANGED = 12, SUMMARY_LAST_CHECKPOINT = 13 };

/* Everything after the run's own row, inside the caller's transaction. */
static int read_sections(orch_store *s, int64_t run_id, int all_files, orch_run_report *r,
                         orch_err *err)
{
    orch_rowset config = {0};
    int rc = read_rows(s, sql_config, run_id, 0, &config, err);
    if (rc == ORCH_OK && config.n_rows == 1) {
        const orch_value *json = &config.cells[0], *frozen = &config.cells[1];
        r->config_json = strdup(json->kind == ORCH_VALUE_TEXT ? json->s : "{}");
        if (r->config_json == NULL)
            rc = orch_seterr(err, ORCH_ENOMEM, "show: out of memory");
        /* as sqlite3_column_int reads it: text by its leading number */
        r->frozen_checked = frozen->kind == ORCH_VALUE_NULL   ? -1
                            : frozen->kind == ORCH_VALUE_INT  ? frozen->i != 0
                            : frozen->kind == ORCH_VALUE_REAL ? (int64_t)frozen->r != 0
                                                              : strtoll(frozen->s, NULL, 10) != 0;
    }
    orch_rowset_free(&config);
    if (rc == ORCH_OK)
        rc = read_rows(s, sql_summary, run_id, 0, &r->summary, err);
    if (rc == ORCH_OK && r->summary.n_rows != 1)
        rc = orch_seterr(err, ORCH_EDB, "show: run %lld has no summary", (long long)run_id);
    if (rc != ORCH_OK)
        return rc;
    r->n_nan_events = int_at(&r->summary, SUMMARY_NAN_EVENTS);
    r->n_frozen_changes = int_at(&r->summary, SUMMARY_FROZEN_CHANGED);
    orch_rowset ranked;
    memset(&ranked, 0, sizeof ranked);
    rc = read_rows(s, sql_ranked, run_id, 1, &ranked, err);
    int with_rank = rc == ORCH_OK && int_at(&ranked, 0) > 0;
    orch_rowset_free(&ranked);
    if (rc == ORCH_OK)
        rc = read_rows(s, with_rank ? sql_nans_ranked : sql_nans, run_id, ORCH_REPORT_EVENTS,
                       &r->nan_events, err);
    if (rc == ORCH_OK)
        rc = read_rows(s, sql_frozen, run_id, ORCH_REPORT_EVENTS, &r->frozen_changes, err);
    if (rc == ORCH_OK)
        rc = read_rows(s, sql_checkpoints, run_id, 0, &r->checkpoints, err);
    if (rc == ORCH_OK)
        rc = read_rows(s, sql_stats, run_id, 0, &r->stats_extent, err);
    if (rc == ORCH_OK && int_at(&r->stats_extent, 0) > 0) {
        rc = read_rows(s, sql_stats_top, run_id, 0, &r->stats_top, err);
        if (rc == ORCH_OK)
            rc = read_rows(s, sql_stats_first, run_id, 0, &r->stats_first, err);
    }
    if (rc == ORCH_OK)
        rc = read_rows(s, sql_inputs_by_role, run_id, 0, &r->inputs_by_role, err);
    for (size_t i = 0; rc == ORCH_OK && i < r->inputs_by_role.n_rows; i++)
        r->n_inputs += r->inputs_by_role.cells[i * (size_t)r->inputs_by_role.n_cols + 1].i;
    if (rc == ORCH_OK)
        rc = read_rows(s, sql_inputs, run_id, all_files ? -1 : ORCH_REPORT_FILES, &r->inputs, err);
    orch_rowset n_classes;
    memset(&n_classes, 0, sizeof n_classes);
    if (rc == ORCH_OK)
        rc = read_rows(s, sql_n_classes, run_id, 0, &n_classes, err);
    r->n_classes = int_at(&n_classes, 0);
    orch_rowset_free(&n_classes);
    if (rc == ORCH_OK)
        rc = read_rows(s, sql_classes, run_id, ORCH_REPORT_EVENTS, &r->classes, err);
    return rc;
}

int orch_store_read_run(orch_store *s, int64_t run_id, orch_run_report *out, orch_err *err)
{
    return orch_store_read_run_files(s, run_id, 0, out, err);
}

int orch_store_read_run_files(orch_store *s, int64_t run_id, int all_files, orch_run_report *out,
                              orch_err *err)
{
    if (out != NULL)
        memset(out, 0, sizeof *out);
    if (s == NULL || out == NULL)
        return orch_seterr(err, ORCH_EINVAL, "show: no store");
    out->run_id = run_id;
    int rc = store_exec(s, "BEGIN", err);
    if (rc != ORCH_OK)
        return rc;
    rc = read_rows(s, sql_run, run_id, 0, &out->run, err);
    if (rc == ORCH_OK && out->run.n_rows == 0)
        rc = orch_seterr(err, ORCH_EINVAL, "no run %lld in %s", (long long)run_id, s->path);
    if (rc == ORCH_OK)
        rc = read_sections(s, run_id, all_files, out, err);
    store_exec(s, "COMMIT", NULL);
    if (rc != ORCH_OK)
        orch_run_report_free(out);
    return rc;
}

void orch_run_report_free(orch_run_report *r)
{
    if (r == NULL)
        return;
    orch_rowset_free(&r->run);
    orch_rowset_free(&r->summary);
    orch_rowset_free(&r->nan_events);
    orch_rowset_free(&r->frozen_changes);
    orch_rowset_free(&r->checkpoints);
    orch_rowset_free(&r->stats_extent);
    orch_rowset_free(&r->stats_top);
    orch_rowset_free(&r->stats_first);
    orch_rowset_free(&r->inputs_by_role);
    orch_rowset_free(&r->inputs);
    orch_rowset_free(&r->classes);
    free(r->config_json);
    memset(r, 0, sizeof *r);
}
