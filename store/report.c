/*
 * report.c - `orch runs` (the list of runs) and `orch show RUN` (one run).
 *
 * Both read run_summary, the view that docs/store.md describes, through
 * store/'s own prepared statements with bound parameters. show reads inside
 * one transaction so a run that is still writing appears consistent; its
 * sections are: the run's fields, summary, first NaN event and NaN events,
 * frozen parameters, checkpoints, stage statistics, configuration.
 */
#include "store/store_int.h"

#include <jansson.h>
#include <math.h>
#include <string.h>

#define SHOW_NAN_EVENTS 20

static const char sql_list_table[] =
    "SELECT run_id AS id, name, strategy, status, steps,\n"
    "       CASE WHEN final_loss IS NULL AND steps > 0 THEN 'NaN' ELSE final_loss END\n"
    "         AS final_loss,\n"
    "       CASE WHEN max_grad_norm IS NULL AND steps > 0 THEN 'NaN' ELSE max_grad_norm END\n"
    "         AS max_grad_norm,\n"
    "       CASE WHEN first_nan_step IS NULL THEN NULL\n"
    "            ELSE 'step ' || first_nan_step || ' ' || first_nan_phase || ' '\n"
    "                 || first_nan_stage END AS first_nan,\n"
    "       created_at\n"
    "  FROM run_summary\n";
static const char sql_list_all[] = "SELECT * FROM run_summary\n";
static const char sql_list_where[] = " WHERE (?1 IS NULL OR pipeline = ?1 OR name = ?1\n"
                                     "        OR substr(pipeline, -length(?1) - 1) = '/' || ?1)\n"
                                     "   AND (?2 IS NULL OR strategy = ?2)\n"
                                     "   AND (?3 IS NULL OR status = ?3)\n"
                                     " ORDER BY run_id";

static int valid_status(const char *status)
{
    for (int i = ORCH_RUN_QUEUED; i <= ORCH_RUN_INTERRUPTED; i++)
        if (strcmp(status, orch_run_status_name((orch_run_status)i)) == 0)
            return 1;
    return 0;
}

int orch_store_list_runs(orch_store *s, const char *pipeline, const char *strategy,
                         const char *status, orch_format format, FILE *out, orch_err *err)
{
    static const store_print_opts people = {6, "-"};
    sqlite3_stmt *st = NULL;
    char sql[sizeof sql_list_table + sizeof sql_list_where];
    int rc = ORCH_OK;
    if (s == NULL || out == NULL)
        return orch_seterr(err, ORCH_EINVAL, "runs: no store");
    if (format != ORCH_FMT_TABLE && format != ORCH_FMT_CSV && format != ORCH_FMT_JSON)
        return orch_seterr(err, ORCH_EINVAL, "runs: unknown output format %d", (int)format);
    if (status != NULL && !valid_status(status))
        return orch_seterr(err, ORCH_EINVAL,
                           "runs: unknown status '%s' (queued, running, finished, diverged, "
                           "failed or interrupted)",
                           status);
    snprintf(sql, sizeof sql, "%s%s", format == ORCH_FMT_TABLE ? sql_list_table : sql_list_all,
             sql_list_where);
    rc = store_prepare(s, sql, 0, &st, err);
    if (rc != ORCH_OK)
        goto out;
    if ((sqlite3_bind_text(st, 1, pipeline, -1, SQLITE_STATIC) |
         sqlite3_bind_text(st, 2, strategy, -1, SQLITE_STATIC) |
         sqlite3_bind_text(st, 3, status, -1, SQLITE_STATIC)) != SQLITE_OK) {
        rc = store_dberr(s, sqlite3_errcode(s->db), "runs", err);
        goto out;
    }
    rc = store_print_rows(s, st, format, format == ORCH_FMT_TABLE ? &people : NULL, out, err);
out:
    sqlite3_finalize(st);
    return rc;
}

/* ------------------------------------------------------------- show */

#define SHOW_FROZEN_EVENTS 20

static const char sql_show_run[] =
    "SELECT id, pipeline, name, strategy, status, seed, host, pid, orch_version, config_hash, "
    "created_at, started_at, heartbeat_at, finished_at, error, config_json, "
    "json_extract(config_json, '$.checks.frozen') FROM runs WHERE id = ?1";
static const char sql_show_summary[] =
    "SELECT lr, precision, steps, last_step, final_loss, best_loss, max_grad_norm, "
    "nonfinite_steps, first_nonfinite_step, nan_events, tags, steps_per_s, frozen_changed, "
    "last_checkpoint_step FROM run_summary WHERE run_id = ?1";
static const char sql_show_nans[] =
    "SELECT step, phase, stage, tensor, nan_count, inf_count, input_absmax, inputs_finite "
    "FROM nan_events WHERE run_id = ?1 AND tensor IS NOT '" STORE_FROZEN_TENSOR "' "
    "ORDER BY step, id LIMIT ?2";
static const char sql_show_frozen[] =
    "SELECT step, stage AS parameter FROM nan_events WHERE run_id = ?1 "
    "AND tensor = '" STORE_FROZEN_TENSOR "' ORDER BY step, id LIMIT ?2";
static const char sql_show_checkpoints[] =
    "SELECT step, path, substr(sha256, 1, 12) AS sha256,\n"
    "       CASE WHEN bytes IS NULL THEN NULL\n"
    "            WHEN bytes < 1024 THEN bytes || ' B'\n"
    "            WHEN bytes < 1048576 THEN printf('%.1f KiB', bytes / 1024.0)\n"
    "            WHEN bytes < 1073741824 THEN printf('%.1f MiB', bytes / 1048576.0)\n"
    "            ELSE printf('%.1f GiB', bytes / 1073741824.0) END AS size\n"
    "  FROM artifacts WHERE run_id = ?1 AND kind = 'checkpoint' ORDER BY step";
static const char sql_show_stats[] =
    "SELECT count(DISTINCT stage), count(DISTINCT step), min(step), max(step)\n"
    "  FROM stage_stats WHERE run_id = ?1";
static const char sql_show_stats_top[] =
    "SELECT step, stage, act_absmax, act_rms, grad_norm FROM stage_stats\n"
    " WHERE run_id = ?1 AND step = (SELECT max(step) FROM stage_stats WHERE run_id = ?1)\n"
    " ORDER BY act_absmax DESC, stage LIMIT 1";
/* The query docs/store.md gives for "which stage blows up first". */
#define STATS_BLOWUP_SQL                                                                           \
    "SELECT stage, min(step) FROM stage_stats WHERE run_id = %lld AND (act_absmax IS NULL OR "     \
    "act_absmax > 1e4) GROUP BY stage ORDER BY 2 LIMIT 5"
static const char sql_show_stats_first[] =
    "SELECT stage, min(step) FROM stage_stats WHERE run_id = ?1\n"
    "   AND (act_absmax IS NULL OR act_absmax > 1e4) GROUP BY stage ORDER BY 2, 1 LIMIT 1";

/* The text of column i for people: 6 significant digits for reals; NULL
 * prints as if_null. buf holds 64 bytes. */
static const char *col(sqlite3_stmt *st, int i, const char *if_null, char *buf)
{
    switch (sqlite3_column_type(st, i)) {
    case SQLITE_NULL:
        return if_null;
    case SQLITE_FLOAT:
        return store_format_real(sqlite3_column_double(st, i), 6, buf);
    case SQLITE_INTEGER:
        snprintf(buf, 64, "%lld", (long long)sqlite3_column_int64(st, i));
        return buf;
    default: {
        const char *t = (const char *)sqlite3_column_text(st, i);
        return t != NULL ? t : if_null;
    }
    }
}

static void field(FILE *out, const char *name, const char *value)
{
    fprintf(out, "  %-16s %s\n", name, value);
}

/* Columns of sql_show_run after id. */
enum { RUN_ERROR = 14, RUN_CONFIG = 15, RUN_FROZEN_CHECK = 16 };

/* Prints the runs row. */
static void print_run(sqlite3_stmt *st, FILE *out)
{
    static const char *const names[] = {"pipeline",    "name",       "strategy",   "status",
                                        "seed",        "host",       "pid",        "orch_version",
                                        "config_hash", "created_at", "started_at", "heartbeat_at",
                                        "finished_at", "error"};
    char buf[64];
    fprintf(out, "run %lld: %s\n", (long long)sqlite3_column_int64(st, 0), col(st, 2, "", buf));
    for (int i = 0; i < RUN_ERROR; i++) {
        if (i + 1 == RUN_ERROR && sqlite3_column_type(st, RUN_ERROR) == SQLITE_NULL)
            continue; /* no error */
        field(out, names[i], col(st, i + 1, "-", buf));
    }
}

/* Prints run_summary's figures. A NULL loss or grad norm of a run that has
 * steps is a NaN (docs/store.md). */
static void print_summary(sqlite3_stmt *st, FILE *out)
{
    char buf[64], buf2[64];
    int64_t steps = sqlite3_column_int64(st, 2);
    const char *nan = steps > 0 ? "NaN" : "-";
    fputs("\nsummary\n", out);
    field(out, "lr", col(st, 0, "-", buf));
    field(out, "precision", col(st, 1, "-", buf));
    if (steps > 0)
        snprintf(buf2, sizeof buf2, "%lld (last step %s)", (long long)steps, col(st, 3, "-", buf));
    else
        snprintf(buf2, sizeof buf2, "0");
    field(out, "steps", buf2);
    field(out, "final_loss", col(st, 4, nan, buf));
    field(out, "best_loss", col(st, 5, "-", buf));
    field(out, "max_grad_norm", col(st, 6, nan, buf));
    if (sqlite3_column_int64(st, 7) > 0)
        snprintf(buf2, sizeof buf2, "%lld (first at step %s)",
                 (long long)sqlite3_column_int64(st, 7), col(st, 8, "-", buf));
    else
        snprintf(buf2, sizeof buf2, "0");
    field(out, "nonfinite_steps", buf2);
    field(out, "nan_events", col(st, 9, "0", buf));
    field(out, "steps_per_s", col(st, 11, "-", buf));
    field(out, "tags", col(st, 10, "-", buf));
}

/* Prints the first NaN event's sentence and provenance. */
static void print_first_nan(sqlite3_stmt *st, FILE *out)
{
    char b0[64], b1[64], b2[64], b3[64], b4[64], b5[64];
    fputs("\nfirst NaN event\n", out);
    fprintf(out, "  step %s, %s, stage %s, tensor %s: %s NaN, %s Inf\n", col(st, 0, "-", b0),
            col(st, 1, "-", b1), col(st, 2, "-", b2), col(st, 3, "-", b3), col(st, 4, "0", b4),
            col(st, 5, "0", b5));
    if (sqlite3_column_type(st, 7) == SQLITE_NULL)
        return;
    if (sqlite3_column_int(st, 7))
        fprintf(out,
                "  its inputs were finite (largest |x| %s): this stage produced the first "
                "non-finite value\n",
                col(st, 6, "-", b2));
    else
        fprintf(out,
                "  its inputs were already non-finite (largest finite |x| %s): it came from "
                "upstream\n",
                col(st, 6, "-", b2));
}

static int print_config(const char *text, FILE *out)
{
    json_error_t jerr;
    json_t *root = json_loads(text, JSON_DECODE_ANY, &jerr);
    fputs("\nconfig\n", out);
    if (root == NULL) {
        fprintf(out, "%s\n", text); /* the CHECK keeps this from happening */
        return ORCH_OK;
    }
    int rc = store_json_print(root, 2, 0, out);
    fputc('\n', out);
    json_decref(root);
    return rc == 0 ? ORCH_OK : ORCH_EIO;
}

/* Prepares one of show's statements with ?1 bound to run_id. */
static int prepare_run(orch_store *s, const char *sql, int64_t run_id, sqlite3_stmt **st,
                       orch_err *err)
{
    int rc = store_prepare(s, sql, 0, st, err);
    if (rc == ORCH_OK && sqlite3_bind_int64(*st, 1, run_id) != SQLITE_OK)
        rc = store_dberr(s, sqlite3_errcode(s->db), "show", err);
    return rc;
}

/* The first NaN event and the list of them (n_nan of them). */
static int show_nan_events(orch_store *s, int64_t run_id, int64_t n_nan, FILE *out, orch_err *err)
{
    static const store_print_opts people = {6, "-"};
    sqlite3_stmt *nans = NULL;
    int rc = prepare_run(s, sql_show_nans, run_id, &nans, err);
    if (rc != ORCH_OK)
        goto out;
    int src = sqlite3_bind_int64(nans, 2, 1);
    if (src == SQLITE_OK)
        src = sqlite3_step(nans);
    if (src != SQLITE_ROW) {
        rc = store_dberr(s, src, "show", err);
        goto out;
    }
    print_first_nan(nans, out);
    sqlite3_reset(nans);
    if (sqlite3_bind_int64(nans, 2, SHOW_NAN_EVENTS) != SQLITE_OK) {
        rc = store_dberr(s, sqlite3_errcode(s->db), "show", err);
        goto out;
    }
    fprintf(out, "\nNaN events (%lld)\n", (long long)n_nan);
    rc = store_print_rows(s, nans, ORCH_FMT_TABLE, &people, out, err);
    if (rc == ORCH_OK && n_nan > SHOW_NAN_EVENTS)
        fprintf(out,
                "... %lld more: orch query \"SELECT * FROM nan_events WHERE run_id = %lld "
                "ORDER BY step, id\"\n",
                (long long)(n_nan - SHOW_NAN_EVENTS), (long long)run_id);
out:
    sqlite3_finalize(nans);
    return rc;
}

/* The frozen-parameter check: checked is $.checks.frozen (1, 0, or -1 when
 * the configuration does not say), n_changed the frozen_changed events. */
static int show_frozen(orch_store *s, int64_t run_id, int checked, int64_t n_changed, FILE *out,
                       orch_err *err)
{
    static const store_print_opts people = {6, "-"};
    sqlite3_stmt *st = NULL;
    fputs("\nfrozen parameters\n", out);
    if (n_changed == 0) {
        fputs(checked == 1 ? "  unchanged (checked every step)\n"
                           : "  not checked (checks.frozen is off)\n",
              out);
        return ORCH_OK;
    }
    fprintf(out, "  changed: %lld frozen tensor change%s recorded\n", (long long)n_changed,
            n_changed == 1 ? "" : "s");
    int rc = prepare_run(s, sql_show_frozen, run_id, &st, err);
    if (rc == ORCH_OK && sqlite3_bind_int64(st, 2, SHOW_FROZEN_EVENTS) != SQLITE_OK)
        rc = store_dberr(s, sqlite3_errcode(s->db), "show", err);
    if (rc == ORCH_OK)
        rc = store_print_rows(s, st, ORCH_FMT_TABLE, &people, out, err);
    if (rc == ORCH_OK && n_changed > SHOW_FROZEN_EVENTS)
        fprintf(out,
                "... %lld more: orch query \"SELECT step, stage FROM nan_events WHERE run_id = "
                "%lld AND tensor = '" STORE_FROZEN_TENSOR "' ORDER BY step, id\"\n",
                (long long)(n_changed - SHOW_FROZEN_EVENTS), (long long)run_id);
    sqlite3_finalize(st);
    return rc;
}

/* The run's checkpoints; has_any from run_summary.last_checkpoint_step. */
static int show_checkpoints(orch_store *s, int64_t run_id, int has_any, FILE *out, orch_err *err)
{
    static const store_print_opts people = {6, "-"};
    sqlite3_stmt *st = NULL;
    fputs("\ncheckpoints\n", out);
    if (!has_any) {
        fputs("  none\n", out);
        return ORCH_OK;
    }
    int rc = prepare_run(s, sql_show_checkpoints, run_id, &st, err);
    if (rc == ORCH_OK)
        rc = store_print_rows(s, st, ORCH_FMT_TABLE, &people, out, err);
    sqlite3_finalize(st);
    return rc;
}

/* A digest of the stage statistics, when the run has any. */
static int show_stage_stats(orch_store *s, int64_t run_id, FILE *out, orch_err *err)
{
    sqlite3_stmt *cnt = NULL, *top = NULL, *first = NULL;
    char b0[64], b1[64], b2[64], b3[64];
    int src;
    int rc = prepare_run(s, sql_show_stats, run_id, &cnt, err);
    if (rc == ORCH_OK)
        rc = prepare_run(s, sql_show_stats_top, run_id, &top, err);
    if (rc == ORCH_OK)
        rc = prepare_run(s, sql_show_stats_first, run_id, &first, err);
    if (rc != ORCH_OK)
        goto out;
    if ((src = sqlite3_step(cnt)) != SQLITE_ROW) {
        rc = store_dberr(s, src, "show", err);
        goto out;
    }
    if (sqlite3_column_int64(cnt, 0) == 0)
        goto out; /* none recorded: no section */
    fputs("\nstage statistics\n", out);
    fprintf(out, "  %lld stages at %lld steps (%s to %s)\n",
            (long long)sqlite3_column_int64(cnt, 0), (long long)sqlite3_column_int64(cnt, 1),
            col(cnt, 2, "-", b0), col(cnt, 3, "-", b1));
    if ((src = sqlite3_step(top)) == SQLITE_ROW) {
        fprintf(out, "  largest act_absmax at step %s: %s, %s", col(top, 0, "-", b0),
                col(top, 1, "-", b1), col(top, 2, "NaN", b2));
        fprintf(out, " (act_rms %s, ", col(top, 3, "NaN", b3));
        fprintf(out, "grad_norm %s)\n", col(top, 4, "none", b3));
    } else if (src != SQLITE_DONE) {
        rc = store_dberr(s, src, "show", err);
        goto out;
    }
    if ((src = sqlite3_step(first)) == SQLITE_ROW)
        fprintf(out, "  first past |x| > 1e4 (or non-finite): %s at step %s\n",
                col(first, 0, "-", b0), col(first, 1, "-", b1));
    else if (src == SQLITE_DONE)
        fputs("  no stage went past |x| > 1e4\n", out);
    else {
        rc = store_dberr(s, src, "show", err);
        goto out;
    }
    fputs("  which stage blows up first: orch query \"", out);
    fprintf(out, STATS_BLOWUP_SQL, (long long)run_id);
    fputs("\"\n", out);
out:
    sqlite3_finalize(cnt);
    sqlite3_finalize(top);
    sqlite3_finalize(first);
    return rc;
}

int orch_store_show_run(orch_store *s, int64_t run_id, FILE *out, orch_err *err)
{
    sqlite3_stmt *run = NULL, *sum = NULL;
    int in_txn = 0;
    int rc = ORCH_OK;
    int src;
    if (s == NULL || out == NULL)
        return orch_seterr(err, ORCH_EINVAL, "show: no store");
    rc = prepare_run(s, sql_show_run, run_id, &run, err);
    if (rc == ORCH_OK)
        rc = prepare_run(s, sql_show_summary, run_id, &sum, err);
    if (rc != ORCH_OK)
        goto out;
    rc = store_exec(s, "BEGIN", err);
    if (rc != ORCH_OK)
        goto out;
    in_txn = 1;

    src = sqlite3_step(run);
    if (src == SQLITE_DONE) {
        rc = orch_seterr(err, ORCH_EINVAL, "no run %lld in %s", (long long)run_id, s->path);
        goto out;
    }
    if (src != SQLITE_ROW) {
        rc = store_dberr(s, src, "show", err);
        goto out;
    }
    print_run(run, out);

    src = sqlite3_step(sum);
    if (src != SQLITE_ROW) {
        rc = store_dberr(s, src, "show", err);
        goto out;
    }
    print_summary(sum, out);
    int64_t n_nan = sqlite3_column_int64(sum, 9);
    int64_t n_frozen = sqlite3_column_int64(sum, 12);
    int has_ckpt = sqlite3_column_type(sum, 13) != SQLITE_NULL;
    int checked = sqlite3_column_type(run, RUN_FROZEN_CHECK) == SQLITE_NULL
                      ? -1
                      : sqlite3_column_int(run, RUN_FROZEN_CHECK) != 0;

    if (n_nan > 0)
        rc = show_nan_events(s, run_id, n_nan, out, err);
    if (rc == ORCH_OK)
        rc = show_frozen(s, run_id, checked, n_frozen, out, err);
    if (rc == ORCH_OK)
        rc = show_checkpoints(s, run_id, has_ckpt, out, err);
    if (rc == ORCH_OK)
        rc = show_stage_stats(s, run_id, out, err);
    if (rc != ORCH_OK)
        goto out;
    rc = print_config((const char *)sqlite3_column_text(run, RUN_CONFIG), out);
    if (rc != ORCH_OK) {
        rc = orch_seterr(err, ORCH_EIO, "show: writing the configuration failed");
        goto out;
    }
    if (fflush(out) != 0 || ferror(out))
        rc = orch_seterr(err, ORCH_EIO, "show: writing the output failed");
out:
    sqlite3_finalize(run);
    sqlite3_finalize(sum);
    if (in_txn)
        store_exec(s, "COMMIT", NULL);
    return rc;
}
