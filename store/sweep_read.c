/*
 * sweep_read.c - reading sweeps (store/sweeps.h): what `orch sweeps`,
 * `orch show sweep ID` and `orch compare --sweep ID` print
 * (render_sweep.c prints them).
 *
 * The list and one sweep are plain SELECTs over sweeps, sweep_runs, runs and
 * run_summary. The comparison reads the sweep's runs with their group key
 * in SQL, ordered so that each group's runs are adjacent, and aggregates
 * the groups here (mean, sample standard deviation, best and worst seed),
 * which keeps the arithmetic independent of the SQLite build (sqrt is an
 * optional SQL function).
 *
 * Groups: runs that differ only in their seed. The key is the run's
 * resolved configuration (runs.config_json) without $.seed and without
 * what names the run rather than configures it ($.name, $.path, $.tags,
 * $.config_hash); a strategy.init of "output_of:RUN-s<seed>" whose suffix
 * is the run's own seed is compared without it (a warm start from the
 * same seed's parent). This does not depend on how points are named; the
 * group's name is only a label: its first run's point without the
 * "-s<seed>" suffix that sweep expansion gives seeded points.
 */
#include "store/store_int.h"
#include "store/sweeps.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char sql_sweeps[] =
    "SELECT w.id, w.name, w.file, w.status,\n"
    "       count(r.id) AS runs,\n"
    "       count(CASE WHEN r.status = 'queued' THEN 1 END) AS queued,\n"
    "       count(CASE WHEN r.status = 'running' THEN 1 END) AS running,\n"
    "       count(CASE WHEN r.status = 'finished' THEN 1 END) AS finished,\n"
    "       count(CASE WHEN r.status = 'diverged' THEN 1 END) AS diverged,\n"
    "       count(CASE WHEN r.status = 'failed' THEN 1 END) AS failed,\n"
    "       count(CASE WHEN r.status = 'skipped' THEN 1 END) AS skipped,\n"
    "       count(CASE WHEN r.status = 'interrupted' THEN 1 END) AS interrupted,\n"
    "       w.created_at, w.finished_at\n"
    "  FROM sweeps w\n"
    "  LEFT JOIN sweep_runs sr ON sr.sweep_id = w.id\n"
    "  LEFT JOIN runs r ON r.id = sr.run_id\n"
    " GROUP BY w.id ORDER BY w.id";

/* Every column of the sweep: `orch show sweep` prints them as fields. */
static const char sql_sweep[] = "SELECT * FROM sweeps WHERE id = ?1";

/* run_summary is filtered by run id (SQLite pushes the condition into the
 * view), so this reads only the sweep's runs. */
static const char sql_sweep_runs[] =
    "SELECT sr.point, sr.run_id AS run, r.status, sr.rank, sr.host, sr.attempts, s.steps,\n"
    "       s.final_loss, r.error\n"
    "  FROM sweep_runs sr\n"
    "  JOIN runs r ON r.id = sr.run_id\n"
    "  JOIN run_summary s ON s.run_id = sr.run_id\n"
    " WHERE sr.sweep_id = ?1\n"
    " ORDER BY sr.run_id";

/* One row per run of sweep ?1, with its group's key (see the top of the
 * file) and label, ordered by key then run: a group's runs are adjacent,
 * its first run first. Shared with report_read.c (store_int.h), which
 * draws each group's band from the same grouping. */
const char store_sql_sweep_groups[] =
    "WITH c AS (\n"
    "    SELECT sr.run_id, sr.point, r.seed, r.status, '-s' || r.seed AS suffix,\n"
    "           json_remove(r.config_json, '$.seed', '$.name', '$.path', '$.tags',\n"
    "                       '$.config_hash') AS k,\n"
    "           json_extract(r.config_json, '$.strategy.init') AS init\n"
    "      FROM sweep_runs sr JOIN runs r ON r.id = sr.run_id\n"
    "     WHERE sr.sweep_id = ?1)\n"
    "SELECT c.run_id, c.seed, c.status, s.strategy, s.lr, s.final_loss, s.nan_events,\n"
    "       CASE WHEN c.suffix IS NOT NULL AND length(c.point) > length(c.suffix)\n"
    "             AND substr(c.point, -length(c.suffix)) = c.suffix\n"
    "            THEN substr(c.point, 1, length(c.point) - length(c.suffix))\n"
    "            ELSE c.point END AS grp,\n"
    "       CASE WHEN c.suffix IS NOT NULL AND typeof(c.init) = 'text'\n"
    "             AND substr(c.init, 1, 10) = 'output_of:'\n"
    "             AND substr(c.init, -length(c.suffix)) = c.suffix\n"
    "            THEN json_set(c.k, '$.strategy.init',\n"
    "                          substr(c.init, 1, length(c.init) - length(c.suffix)))\n"
    "            ELSE c.k END AS grp_key,\n"
    "       s.best_eval_accuracy, s.final_eval_loss\n"
    "  FROM c JOIN run_summary s ON s.run_id = c.run_id\n"
    " ORDER BY grp_key, c.run_id";
enum {
    CMP_RUN = 0,
    CMP_SEED,
    CMP_STATUS,
    CMP_STRATEGY,
    CMP_LR,
    CMP_FINAL_LOSS,
    CMP_NAN_EVENTS,
    CMP_GROUP,
    CMP_KEY,
    CMP_EVAL_ACCURACY,
    CMP_EVAL_LOSS
};

/* Runs sql with ?1 = id (when id > 0) into *out. */
static int read_rows(orch_store *s, const char *sql, int64_t id, orch_rowset *out, orch_err *err)
{
    sqlite3_stmt *st = NULL;
    int rc = store_prepare(s, sql, 0, &st, err);
    if (rc == ORCH_OK && id > 0 && sqlite3_bind_int64(st, 1, id) != SQLITE_OK)
        rc = store_dberr(s, sqlite3_errcode(s->db), "sweeps", err);
    if (rc == ORCH_OK)
        rc = store_fetch_rows(s, st, out, err);
    sqlite3_finalize(st);
    return rc;
}

int orch_store_read_sweeps(orch_store *s, orch_rowset *out, orch_err *err)
{
    if (out != NULL)
        memset(out, 0, sizeof *out);
    if (s == NULL || out == NULL)
        return orch_seterr(err, ORCH_EINVAL, "sweeps: no store");
    int rc = read_rows(s, sql_sweeps, 0, out, err);
    if (rc != ORCH_OK)
        orch_rowset_free(out);
    return rc;
}

int orch_store_read_sweep(orch_store *s, int64_t sweep_id, orch_sweep_report *out, orch_err *err)
{
    if (out != NULL)
        memset(out, 0, sizeof *out);
    if (s == NULL || out == NULL)
        return orch_seterr(err, ORCH_EINVAL, "show: no store");
    /* one read transaction: a sweep being recorded reads consistent */
    int rc = store_exec(s, "BEGIN", err);
    if (rc != ORCH_OK)
        return rc;
    rc = read_rows(s, sql_sweep, sweep_id, &out->sweep, err);
    if (rc == ORCH_OK && out->sweep.n_rows == 0)
        rc = orch_seterr(err, ORCH_EINVAL, "no sweep %lld in %s", (long long)sweep_id, s->path);
    if (rc == ORCH_OK)
        rc = read_rows(s, sql_sweep_runs, sweep_id, &out->runs, err);
    store_exec(s, "COMMIT", NULL);
    if (rc != ORCH_OK)
        orch_sweep_report_free(out);
    return rc;
}

void orch_sweep_report_free(orch_sweep_report *r)
{
    if (r == NULL)
        return;
    orch_rowset_free(&r->sweep);
    orch_rowset_free(&r->runs);
}

/* ------------------------------------------------------------ compare */

/* The columns of orch_store_read_compare_sweep, as sweeps.h lists them. */
static const char *const compare_names[] = {"group",
                                            "strategy",
                                            "lr",
                                            "n",
                                            "finished",
                                            "mean_final_loss",
                                            "std_final_loss",
                                            "best_seed",
                                            "best_final_loss",
                                            "worst_seed",
                                            "worst_final_loss",
                                            "nan_events",
                                            "diverged",
                                            "failed",
                                            "skipped"};
#define N_COMPARE_COLS ((int)(sizeof compare_names / sizeof compare_names[0]))
/* ... and after them, when any run of the sweep was evaluated */
static const char *const eval_names[] = {"mean_best_eval_accuracy", "mean_final_eval_loss"};
#define N_EVAL_COLS ((int)(sizeof eval_names / sizeof eval_names[0]))

/* One group being aggregated. first is its first run's row in the input. */
typedef struct sweep_group {
    size_t first;
    int64_t n, finished, diverged, failed, skipped, nan_events;
    int64_t n_loss; /* finished runs with a final loss: what mean and std are over */
    double mean, std;
    size_t best, worst; /* rows of the lowest and highest final loss */
    /* evaluation, over its finished runs that have the figure */
    int64_t n_acc, n_eval_loss;
    double mean_acc, mean_eval_loss;
} sweep_group;

static const orch_value *at(const orch_rowset *rows, size_t r, int c)
{
    return &rows->cells[r * (size_t)rows->n_cols + (size_t)c];
}

static int is_text(const orch_value *v, const char *text)
{
    return v->kind == ORCH_VALUE_TEXT && strcmp(v->s, text) == 0;
}

/* Same group: the keys are equal. A NULL key (no configuration to read)
 * matches nothing: such a run is a group of its own. */
static int same_key(const orch_value *a, const orch_value *b)
{
    if (a->kind != b->kind)
        return 0;
    if (a->kind == ORCH_VALUE_NULL)
        return 0;
    return a->n == b->n && memcmp(a->s, b->s, a->n) == 0;
}

/* A finished run's final loss as a number; 0 when it has none (NaN is
 * stored as NULL, a run without steps has none). */
static int final_loss(const orch_rowset *rows, size_t r, double *loss)
{
    const orch_value *v = at(rows, r, CMP_FINAL_LOSS);
    if (!is_text(at(rows, r, CMP_STATUS), "finished"))
        return 0;
    if (v->kind == ORCH_VALUE_REAL)
        *loss = v->r;
    else if (v->kind == ORCH_VALUE_INT)
        *loss = (double)v->i;
    else
        return 0;
    return !isnan(*loss);
}

/* A finished run's figure in column col as a number; 0 when it has none. */
static int finished_number(const orch_rowset *rows, size_t r, int col, double *x)
{
    const orch_value *v = at(rows, r, col);
    if (!is_text(at(rows, r, CMP_STATUS), "finished"))
        return 0;
    if (v->kind == ORCH_VALUE_REAL)
        *x = v->r;
    else if (v->kind == ORCH_VALUE_INT)
        *x = (double)v->i;
    else
        return 0;
    return !isnan(*x);
}

/* Aggregates rows [g->first, end) into g. */
static void aggregate(const orch_rowset *rows, size_t end, sweep_group *g)
{
    double sum = 0.0, best = 0.0, worst = 0.0, loss = 0.0, x = 0.0;
    for (size_t r = g->first; r < end; r++) {
        if (finished_number(rows, r, CMP_EVAL_ACCURACY, &x)) {
            g->mean_acc += x;
            g->n_acc++;
        }
        if (finished_number(rows, r, CMP_EVAL_LOSS, &x)) {
            g->mean_eval_loss += x;
            g->n_eval_loss++;
        }
        const orch_value *status = at(rows, r, CMP_STATUS);
        const orch_value *nans = at(rows, r, CMP_NAN_EVENTS);
        g->n++;
        g->finished += is_text(status, "finished");
        g->diverged += is_text(status, "diverged");
        g->failed += is_text(status, "failed");
        g->skipped += is_text(status, "skipped");
        g->nan_events += nans->kind == ORCH_VALUE_INT ? nans->i : 0;
        if (!final_loss(rows, r, &loss))
            continue;
        /* ties keep the earlier run: rows are by run id within a group */
        if (g->n_loss == 0 || loss < best) {
            best = loss;
            g->best = r;
        }
        if (g->n_loss == 0 || loss > worst) {
            worst = loss;
            g->worst = r;
        }
        sum += loss;
        g->n_loss++;
    }
    if (g->n_acc > 0)
        g->mean_acc /= (double)g->n_acc;
    if (g->n_eval_loss > 0)
        g->mean_eval_loss /= (double)g->n_eval_loss;
    if (g->n_loss == 0)
        return;
    g->mean = sum / (double)g->n_loss;
    if (g->n_loss < 2)
        return;
    double ss = 0.0; /* two passes: no cancellation for losses close together */
    for (size_t r = g->first; r < end; r++)
        if (final_loss(rows, r, &loss))
            ss += (loss - g->mean) * (loss - g->mean);
    g->std = sqrt(ss / (double)(g->n_loss - 1));
}

/* Evaluated groups first: the highest mean accuracy, then the lowest mean
 * final eval loss; then groups with a mean, lowest mean first; then by
 * their first run. */
static int group_order(const void *pa, const void *pb, void *ctx)
{
    const sweep_group *a = pa, *b = pb;
    const orch_rowset *rows = ctx;
    if ((a->n_acc > 0) != (b->n_acc > 0))
        return a->n_acc > 0 ? -1 : 1;
    if (a->n_acc > 0 && a->mean_acc != b->mean_acc)
        return a->mean_acc > b->mean_acc ? -1 : 1;
    if ((a->n_eval_loss > 0) != (b->n_eval_loss > 0))
        return a->n_eval_loss > 0 ? -1 : 1;
    if (a->n_eval_loss > 0 && a->mean_eval_loss != b->mean_eval_loss)
        return a->mean_eval_loss < b->mean_eval_loss ? -1 : 1;
    int ha = a->n_loss > 0 && !isnan(a->mean), hb = b->n_loss > 0 && !isnan(b->mean);
    if (ha != hb)
        return ha ? -1 : 1;
    if (ha && a->mean != b->mean)
        return a->mean < b->mean ? -1 : 1;
    int64_t ra = at(rows, a->first, CMP_RUN)->i, rb = at(rows, b->first, CMP_RUN)->i;
    return ra < rb ? -1 : ra > rb;
}

static orch_value int_value(int64_t i)
{
    return (orch_value){ORCH_VALUE_INT, i, 0.0, NULL, 0};
}

static orch_value real_value(double r)
{
    return (orch_value){ORCH_VALUE_REAL, 0, r, NULL, 0};
}

static const orch_value null_value = {ORCH_VALUE_NULL, 0, 0.0, NULL, 0};

/* A copy of v that the new rowset owns. -1 when out of memory. */
static int copy_value(const orch_value *v, orch_value *out)
{
    *out = *v;
    if (v->kind != ORCH_VALUE_TEXT && v->kind != ORCH_VALUE_BLOB)
        return 0;
    out->s = malloc(v->n + 1);
    if (out->s == NULL) {
        *out = null_value;
        return -1;
    }
    memcpy(out->s, v->s, v->n);
    out->s[v->n] = '\0';
    return 0;
}

/* The output row of group g into row (N_COMPARE_COLS values, and
 * N_EVAL_COLS more when evaluated). */
static int group_row(const orch_rowset *rows, const sweep_group *g, int evaluated, orch_value *row)
{
    if (evaluated) {
        row[N_COMPARE_COLS] = g->n_acc > 0 ? real_value(g->mean_acc) : null_value;
        row[N_COMPARE_COLS + 1] = g->n_eval_loss > 0 ? real_value(g->mean_eval_loss) : null_value;
    }
    int oom = copy_value(at(rows, g->first, CMP_GROUP), &row[0]);
    oom |= copy_value(at(rows, g->first, CMP_STRATEGY), &row[1]);
    oom |= copy_value(at(rows, g->first, CMP_LR), &row[2]);
    row[3] = int_value(g->n);
    row[4] = int_value(g->finished);
    row[5] = g->n_loss > 0 ? real_value(g->mean) : null_value;
    row[6] = g->n_loss > 1 ? real_value(g->std) : null_value;
    row[7] = null_value;
    row[8] = null_value;
    row[9] = null_value;
    row[10] = null_value;
    if (g->n_loss > 0) {
        double loss = 0.0;
        oom |= copy_value(at(rows, g->best, CMP_SEED), &row[7]);
        final_loss(rows, g->best, &loss);
        row[8] = real_value(loss);
        oom |= copy_value(at(rows, g->worst, CMP_SEED), &row[9]);
        final_loss(rows, g->worst, &loss);
        row[10] = real_value(loss);
    }
    row[11] = int_value(g->nan_events);
    row[12] = int_value(g->diverged);
    row[13] = int_value(g->failed);
    row[14] = int_value(g->skipped);
    return oom ? -1 : 0;
}

/* The groups of runs (rows as store_sql_sweep_groups reads them) into *out. */
static int build_groups(const orch_rowset *runs, orch_rowset *out, orch_err *err)
{
    size_t n_groups = 0;
    int evaluated = 0; /* any run of the sweep: its groups gain the eval columns */
    for (size_t r = 0; r < runs->n_rows; r++)
        evaluated |= at(runs, r, CMP_EVAL_ACCURACY)->kind != ORCH_VALUE_NULL ||
                     at(runs, r, CMP_EVAL_LOSS)->kind != ORCH_VALUE_NULL;
    int n_cols = N_COMPARE_COLS + (evaluated ? N_EVAL_COLS : 0);
    sweep_group *groups = calloc(runs->n_rows > 0 ? runs->n_rows : 1, sizeof *groups);
    out->names = calloc((size_t)n_cols, sizeof *out->names);
    out->cells = calloc((runs->n_rows > 0 ? runs->n_rows : 1) * (size_t)n_cols, sizeof *out->cells);
    if (groups == NULL || out->names == NULL || out->cells == NULL)
        goto oom;
    out->n_cols = n_cols;
    for (int c = 0; c < n_cols; c++)
        if ((out->names[c] = strdup(c < N_COMPARE_COLS ? compare_names[c]
                                                       : eval_names[c - N_COMPARE_COLS])) == NULL)
            goto oom;
    out->cap_rows = runs->n_rows > 0 ? runs->n_rows : 1;
    for (size_t r = 0; r < runs->n_rows; r++) {
        if (r == 0 || !same_key(at(runs, r, CMP_KEY), at(runs, r - 1, CMP_KEY)))
            groups[n_groups++].first = r;
    }
    for (size_t g = 0; g < n_groups; g++)
        aggregate(runs, g + 1 < n_groups ? groups[g + 1].first : runs->n_rows, &groups[g]);
    qsort_r(groups, n_groups, sizeof *groups, group_order, (void *)runs);
    for (size_t g = 0; g < n_groups; g++) {
        out->n_rows++; /* counted first: a partly copied row is freed with the rest */
        if (group_row(runs, &groups[g], evaluated, out->cells + g * (size_t)n_cols) != 0)
            goto oom;
    }
    free(groups);
    return ORCH_OK;
oom:
    free(groups);
    return orch_seterr(err, ORCH_ENOMEM, "compare: out of memory");
}

int orch_store_read_compare_sweep(orch_store *s, int64_t sweep_id, orch_rowset *out, orch_err *err)
{
    orch_rowset sweep = {0}, runs = {0};
    if (out != NULL)
        memset(out, 0, sizeof *out);
    if (s == NULL || out == NULL)
        return orch_seterr(err, ORCH_EINVAL, "compare: no store");
    int rc = store_exec(s, "BEGIN", err);
    if (rc != ORCH_OK)
        return rc;
    rc = read_rows(s, "SELECT id FROM sweeps WHERE id = ?1", sweep_id, &sweep, err);
    if (rc == ORCH_OK && sweep.n_rows == 0)
        rc = orch_seterr(err, ORCH_EINVAL, "compare: no sweep %lld in %s", (long long)sweep_id,
                         s->path);
    if (rc == ORCH_OK)
        rc = read_rows(s, store_sql_sweep_groups, sweep_id, &runs, err);
    store_exec(s, "COMMIT", NULL);
    if (rc == ORCH_OK)
        rc = build_groups(&runs, out, err);
    orch_rowset_free(&sweep);
    orch_rowset_free(&runs);
    if (rc != ORCH_OK)
        orch_rowset_free(out);
    return rc;
}
