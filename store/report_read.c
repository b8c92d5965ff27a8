/*
 * report_read.c - reading what `orch report` shows (store/report_html.h):
 * the selection, each run's steps, metrics, NaN events, stage statistics
 * around its first NaN event and configuration. render_html.c draws them;
 * no SQL lives there.
 *
 * The compare table comes from orch_store_read_compare and a sweep's
 * ranked groups from orch_store_read_compare_sweep, so the page shows the
 * figures `orch compare` prints; a sweep's runs are grouped by the same
 * statement (store_sql_sweep_groups). Each run is read inside one read
 * transaction, so a run that is still writing reads consistent.
 */
#include "store/report_html.h"
#include "store/store_int.h"
#include "store/sweeps.h"

#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#define STR_(x) #x
#define STR(x)  STR_(x)

static const char sql_steps[] = "SELECT step, loss, grad_norm FROM steps WHERE run_id = ?1"
                                " ORDER BY step";
static const char sql_metrics[] = "SELECT name, step, value FROM metrics WHERE run_id = ?1"
                                  " ORDER BY name, step";
static const char sql_events[] =
    "SELECT step, phase, stage, tensor, nan_count, inf_count, input_absmax, inputs_finite\n"
    "  FROM nan_events WHERE run_id = ?1 AND tensor IS NOT 'frozen_changed'\n"
    " ORDER BY step, id LIMIT " STR(ORCH_HTML_EVENTS);
static const char sql_n_events[] = "SELECT count(*) FROM nan_events WHERE run_id = ?1"
                                   " AND tensor IS NOT 'frozen_changed'";
static const char sql_stats[] = "SELECT step, stage, act_absmax FROM stage_stats"
                                " WHERE run_id = ?1 AND step BETWEEN ?2 AND ?3"
                                " ORDER BY step, stage";
static const char sql_run[] = "SELECT name, pipeline, strategy, status, seed, config_json,"
                              " json_extract(config_json, '$.precision') FROM runs WHERE id = ?1";
static const char sql_sweep_name[] = "SELECT name FROM sweeps WHERE id = ?1";
static const char sql_summary[] = "SELECT * FROM run_summary WHERE run_id = ?1";

/* A column of the current row as a malloc'd string ("" for NULL). */
static char *col_text(sqlite3_stmt *st, int c)
{
    const unsigned char *t = sqlite3_column_text(st, c);
    return strdup(t != NULL ? (const char *)t : "");
}

/* A real column; NULL (a NaN as stored) reads as NaN. */
static double col_real(sqlite3_stmt *st, int c)
{
    return sqlite3_column_type(st, c) == SQLITE_NULL ? NAN : sqlite3_column_double(st, c);
}

static int nomem(orch_err *err)
{
    return orch_seterr(err, ORCH_ENOMEM, "report: out of memory");
}

/* Grows *p (elements of size) to hold at least need; 0 or -1. */
static int grow(void **p, size_t size, int64_t *cap, int64_t need)
{
    if (need <= *cap)
        return 0;
    int64_t n = *cap > 0 ? *cap * 2 : 64;
    while (n < need)
        n *= 2;
    void *q = realloc(*p, (size_t)n * size);
    if (q == NULL)
        return -1;
    *p = q;
    *cap = n;
    return 0;
}

/* Prepares sql and binds ?1 = a (and ?2, ?3 when n_more says so). */
static int prepare_bound(orch_store *s, const char *sql, sqlite3_stmt **st, int n_bind,
                         const int64_t *binds, orch_err *err)
{
    int rc = store_prepare(s, sql, 0, st, err);
    for (int i = 0; rc == ORCH_OK && i < n_bind; i++)
        if (sqlite3_bind_int64(*st, i + 1, binds[i]) != SQLITE_OK)
            rc = store_dberr(s, sqlite3_errcode(s->db), "report", err);
    return rc;
}

static int read_steps(orch_store *s, orch_report_run *r, orch_err *err)
{
    sqlite3_stmt *st = NULL;
    int64_t cap = 0;
    int rc = prepare_bound(s, sql_steps, &st, 1, &r->run_id, err);
    int src;
    while (rc == ORCH_OK && (src = sqlite3_step(st)) == SQLITE_ROW) {
        int64_t c0 = cap, c1 = cap, c2 = cap;
        if (grow((void **)&r->step, sizeof *r->step, &c0, r->n_steps + 1) != 0 ||
            grow((void **)&r->loss, sizeof *r->loss, &c1, r->n_steps + 1) != 0 ||
            grow((void **)&r->grad_norm, sizeof *r->grad_norm, &c2, r->n_steps + 1) != 0) {
            /* the three grow alike; a partial grow leaves larger buffers, never smaller */
            rc = nomem(err);
            break;
        }
        cap = c0;
        r->step[r->n_steps] = sqlite3_column_int64(st, 0);
        r->loss[r->n_steps] = col_real(st, 1);
        r->grad_norm[r->n_steps] = col_real(st, 2);
        r->n_steps++;
    }
    if (rc == ORCH_OK && src != SQLITE_DONE)
        rc = store_dberr(s, src, "report", err);
    sqlite3_finalize(st);
    return rc;
}

static int read_metrics(orch_store *s, orch_report_run *r, orch_err *err)
{
    sqlite3_stmt *st = NULL;
    int64_t cap = 0, cap_points = 0;
    int rc = prepare_bound(s, sql_metrics, &st, 1, &r->run_id, err);
    int src;
    orch_report_series *cur = NULL;
    while (rc == ORCH_OK && (src = sqlite3_step(st)) == SQLITE_ROW) {
        const char *name = (const char *)sqlite3_column_text(st, 0);
        if (name == NULL)
            name = "";
        if (cur == NULL || strcmp(cur->name, name) != 0) {
            if (grow((void **)&r->metrics, sizeof *r->metrics, &cap, r->n_metrics + 1) != 0) {
                rc = nomem(err);
                break;
            }
            cur = &r->metrics[r->n_metrics++];
            memset(cur, 0, sizeof *cur);
            cap_points = 0;
            if ((cur->name = strdup(name)) == NULL) {
                rc = nomem(err);
                break;
            }
        }
        int64_t c1 = cap_points;
        if (grow((void **)&cur->step, sizeof *cur->step, &cap_points, cur->n + 1) != 0 ||
            grow((void **)&cur->value, sizeof *cur->value, &c1, cur->n + 1) != 0) {
            rc = nomem(err);
            break;
        }
        cur->step[cur->n] = sqlite3_column_int64(st, 1);
        cur->value[cur->n] = col_real(st, 2);
        cur->n++;
    }
    if (rc == ORCH_OK && src != SQLITE_DONE)
        rc = store_dberr(s, src, "report", err);
    sqlite3_finalize(st);
    return rc;
}

/* ------------------------------------------------------- stage order
 *
 * The heat map's rows go down the tower: patch embedding, blocks in
 * order, the merger, pooling, the head, the loss. Within a block and within the merger the
 * stages follow the order core/graph_build.c adds them; the lists below
 * only order rows, so a stage they do not know (a renamed one) still shows,
 * after the known ones of its part, by name. */
static const char *const block_order[] = {
    "norm1",         "attn.qkv",    "attn",       "attn.proj",     "attn_residual", "norm2",
    "mlp.gate_proj", "mlp.up_proj", "mlp.act_fn", "mlp.down_proj", "mlp_residual"};
static const char *const merger_order[] = {"ln_q", "mlp.0", "mlp.1", "mlp.2", "unpermute"};

typedef struct stage_key {
    int part; /* 0 patch embedding, 1 block, 2 merger, 3 head, 4 other */
    long block;
    int within; /* index in the lists above; 99 unknown */
} stage_key;

static int find_in(const char *name, const char *const *list, int n)
{
    for (int i = 0; i < n; i++)
        if (strcmp(name, list[i]) == 0)
            return i;
    return 99;
}

static stage_key stage_key_of(const char *name)
{
    stage_key k = {6, 0, 99};
    if (strncmp(name, "visual.patch_embed", 18) == 0) {
        k.part = 0;
    } else if (strncmp(name, "visual.blocks.", 14) == 0) {
        char *end = NULL;
        k.part = 1;
        k.block = strtol(name + 14, &end, 10);
        if (end != NULL && *end == '.')
            k.within =
                find_in(end + 1, block_order, (int)(sizeof block_order / sizeof *block_order));
    } else if (strncmp(name, "visual.merger.", 14) == 0) {
        k.part = 2;
        k.within =
            find_in(name + 14, merger_order, (int)(sizeof merger_order / sizeof *merger_order));
    } else if (strcmp(name, "pool") == 0) {
        k.part = 3;
    } else if (strncmp(name, "head", 4) == 0) {
        k.part = 4;
    } else if (strcmp(name, "loss") == 0) {
        k.part = 5;
    }
    return k;
}

static int stage_cmp(const void *a, const void *b)
{
    const char *x = *(const char *const *)a, *y = *(const char *const *)b;
    stage_key kx = stage_key_of(x), ky = stage_key_of(y);
    if (kx.part != ky.part)
        return kx.part - ky.part;
    if (kx.block != ky.block)
        return kx.block < ky.block ? -1 : 1;
    if (kx.within != ky.within)
        return kx.within - ky.within;
    return strcmp(x, y);
}

/* The index of name among r's stages, appending it when new; -1 on ENOMEM. */
static int stage_index(orch_report_run *r, const char *name, int64_t *cap)
{
    for (int i = 0; i < r->n_stat_stages; i++)
        if (strcmp(r->stat_stages[i], name) == 0)
            return i;
    if (grow((void **)&r->stat_stages, sizeof *r->stat_stages, cap, r->n_stat_stages + 1) != 0)
        return -1;
    if ((r->stat_stages[r->n_stat_stages] = strdup(name)) == NULL)
        return -1;
    return r->n_stat_stages++;
}

/* Statistics around the first NaN event; its stage gets a row even when it
 * has no statistics (a phase without a forward output, e.g. the head's
 * backward), so the outlined cell always has a place. */
static int read_stats(orch_store *s, orch_report_run *r, orch_err *err)
{
    if (r->nan_events.n_rows == 0)
        return ORCH_OK;
    const orch_value *first_step = &r->nan_events.cells[0];
    const orch_value *first_stage = &r->nan_events.cells[2];
    if (first_step->kind != ORCH_VALUE_INT)
        return ORCH_OK;
    int64_t binds[3] = {r->run_id, first_step->i - ORCH_HTML_STATS_BEFORE,
                        first_step->i + ORCH_HTML_STATS_AFTER};
    sqlite3_stmt *st = NULL;
    int64_t cap = 0, cap_stages = 0;
    int rc = prepare_bound(s, sql_stats, &st, 3, binds, err);
    int src;
    while (rc == ORCH_OK && (src = sqlite3_step(st)) == SQLITE_ROW) {
        const char *stage = (const char *)sqlite3_column_text(st, 1);
        int idx = stage_index(r, stage != NULL ? stage : "", &cap_stages);
        if (idx < 0 || grow((void **)&r->stats, sizeof *r->stats, &cap, r->n_stats + 1) != 0) {
            rc = nomem(err);
            break;
        }
        r->stats[r->n_stats++] =
            (orch_report_stat){sqlite3_column_int64(st, 0), idx, col_real(st, 2)};
    }
    if (rc == ORCH_OK && src != SQLITE_DONE)
        rc = store_dberr(s, src, "report", err);
    sqlite3_finalize(st);
    if (rc != ORCH_OK || r->n_stats == 0)
        return rc;
    if (first_stage->kind == ORCH_VALUE_TEXT && stage_index(r, first_stage->s, &cap_stages) < 0)
        return nomem(err);
    /* sort the stage names into tower order and renumber the statistics */
    char **sorted = malloc((size_t)r->n_stat_stages * sizeof *sorted);
    int *map = malloc((size_t)r->n_stat_stages * sizeof *map);
    if (sorted == NULL || map == NULL) {
        free(sorted);
        free(map);
        return nomem(err);
    }
    memcpy(sorted, r->stat_stages, (size_t)r->n_stat_stages * sizeof *sorted);
    qsort(sorted, (size_t)r->n_stat_stages, sizeof *sorted, stage_cmp);
    for (int i = 0; i < r->n_stat_stages; i++)
        for (int j = 0; j < r->n_stat_stages; j++)
            if (r->stat_stages[i] == sorted[j])
                map[i] = j;
    for (int64_t i = 0; i < r->n_stats; i++)
        r->stats[i].stage = map[r->stats[i].stage];
    free(r->stat_stages);
    r->stat_stages = sorted;
    free(map);
    return ORCH_OK;
}

static int read_run(orch_store *s, orch_report_run *r, orch_err *err)
{
    sqlite3_stmt *st = NULL;
    int rc = store_exec(s, "BEGIN", err);
    if (rc != ORCH_OK)
        return rc;
    rc = prepare_bound(s, sql_run, &st, 1, &r->run_id, err);
    if (rc == ORCH_OK) {
        int src = sqlite3_step(st);
        if (src == SQLITE_ROW) {
            r->name = col_text(st, 0);
            r->pipeline = col_text(st, 1);
            r->strategy = col_text(st, 2);
            r->status = col_text(st, 3);
            r->seed = sqlite3_column_int64(st, 4);
            r->config_json = col_text(st, 5);
            r->precision = col_text(st, 6);
            if (r->name == NULL || r->pipeline == NULL || r->strategy == NULL ||
                r->status == NULL || r->config_json == NULL || r->precision == NULL)
                rc = nomem(err);
        } else if (src == SQLITE_DONE) {
            rc = orch_seterr(err, ORCH_EINVAL, "report: no run %lld in %s", (long long)r->run_id,
                             s->path);
        } else {
            rc = store_dberr(s, src, "report", err);
        }
    }
    sqlite3_finalize(st);
    st = NULL;
    if (rc == ORCH_OK)
        rc = read_steps(s, r, err);
    if (rc == ORCH_OK)
        rc = read_metrics(s, r, err);
    if (rc == ORCH_OK)
        rc = prepare_bound(s, sql_events, &st, 1, &r->run_id, err);
    if (rc == ORCH_OK)
        rc = store_fetch_rows(s, st, &r->nan_events, err);
    sqlite3_finalize(st);
    st = NULL;
    if (rc == ORCH_OK)
        rc = prepare_bound(s, sql_n_events, &st, 1, &r->run_id, err);
    if (rc == ORCH_OK) {
        if (sqlite3_step(st) == SQLITE_ROW)
            r->n_nan_events = sqlite3_column_int64(st, 0);
        else
            rc = store_dberr(s, sqlite3_errcode(s->db), "report", err);
    }
    sqlite3_finalize(st);
    if (rc == ORCH_OK)
        rc = read_stats(s, r, err);
    st = NULL;
    if (rc == ORCH_OK)
        rc = prepare_bound(s, sql_summary, &st, 1, &r->run_id, err);
    if (rc == ORCH_OK)
        rc = store_fetch_rows(s, st, &r->summary, err);
    sqlite3_finalize(st);
    store_exec(s, "COMMIT", NULL);
    return rc;
}

static void run_free(orch_report_run *r)
{
    free(r->name);
    free(r->pipeline);
    free(r->strategy);
    free(r->status);
    free(r->precision);
    free(r->group);
    free(r->step);
    free(r->loss);
    free(r->grad_norm);
    for (int i = 0; i < r->n_metrics; i++) {
        free(r->metrics[i].name);
        free(r->metrics[i].step);
        free(r->metrics[i].value);
    }
    free(r->metrics);
    orch_rowset_free(&r->nan_events);
    orch_rowset_free(&r->summary);
    for (int i = 0; i < r->n_stat_stages; i++)
        free(r->stat_stages[i]);
    free(r->stat_stages);
    free(r->stats);
    free(r->config_json);
    free(r->pipeline_text);
    memset(r, 0, sizeof *r);
}

void orch_html_report_free(orch_html_report *r)
{
    if (r == NULL)
        return;
    for (int i = 0; i < r->n_runs; i++)
        run_free(&r->runs[i]);
    free(r->runs);
    free(r->title);
    free(r->db);
    orch_rowset_free(&r->sweep_groups);
    orch_rowset_free(&r->compare);
    memset(r, 0, sizeof *r);
}

/* orch_store_read_compare's own messages say "compare:"; this page's say
 * "report:". */
static void reprefix(orch_err *err)
{
    if (err != NULL && strncmp(err->msg, "compare: ", 9) == 0) {
        memmove(err->msg + 8, err->msg + 9, strlen(err->msg + 9) + 1);
        memcpy(err->msg, "report: ", 8);
    }
}

/* The sweep's runs by id with their group: ids into *ids, labels and
 * group indices into the runs once they exist (see below). */
static int read_sweep_groups(orch_store *s, int64_t sweep_id, orch_rowset *groups, orch_err *err)
{
    sqlite3_stmt *st = NULL;
    int rc = prepare_bound(s, store_sql_sweep_groups, &st, 1, &sweep_id, err);
    if (rc == ORCH_OK)
        rc = store_fetch_rows(s, st, groups, err);
    sqlite3_finalize(st);
    return rc;
}

static int int64_cmp(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* Sets every run's group and group_index from the sweep's grouping (rows
 * as store_sql_sweep_groups: run_id 0, grp 7, grp_key 8; a group's rows
 * adjacent). Groups are numbered in the order of their first run id, so
 * the colours follow the runs' order. */
static int assign_groups(orch_html_report *r, const orch_rowset *g, orch_err *err)
{
    size_t n = g->n_rows;
    int64_t *firsts = calloc(n + 1, sizeof *firsts);
    if (firsts == NULL)
        return nomem(err);
    /* first run id of each group, sorted: a group's index is its rank */
    size_t n_groups = 0;
    for (size_t i = 0; i < n; i++) {
        const orch_value *key = &g->cells[i * (size_t)g->n_cols + 8];
        const orch_value *prev = i > 0 ? &g->cells[(i - 1) * (size_t)g->n_cols + 8] : NULL;
        int same = prev != NULL && key->kind == ORCH_VALUE_TEXT && prev->kind == ORCH_VALUE_TEXT &&
                   key->n == prev->n && memcmp(key->s, prev->s, key->n) == 0;
        if (!same)
            firsts[n_groups++] = g->cells[i * (size_t)g->n_cols].i;
    }
    int64_t *sorted = malloc((n_groups + 1) * sizeof *sorted);
    if (sorted == NULL) {
        free(firsts);
        return nomem(err);
    }
    memcpy(sorted, firsts, n_groups * sizeof *sorted);
    qsort(sorted, n_groups, sizeof *sorted, int64_cmp);
    size_t group = 0;
    int rc = ORCH_OK;
    for (size_t i = 0; i < n && rc == ORCH_OK; i++) {
        const orch_value *row = &g->cells[i * (size_t)g->n_cols];
        if (i > 0 && group + 1 < n_groups && row[0].i == firsts[group + 1])
            group++;
        int idx = 0;
        while ((size_t)idx < n_groups && sorted[idx] != firsts[group])
            idx++;
        for (int k = 0; k < r->n_runs; k++) {
            if (r->runs[k].run_id != row[0].i)
                continue;
            r->runs[k].group_index = idx;
            r->runs[k].group = strdup(row[7].kind == ORCH_VALUE_TEXT ? row[7].s : "");
            if (r->runs[k].group == NULL)
                rc = nomem(err);
        }
    }
    free(sorted);
    free(firsts);
    return rc;
}

static char *fmt_title(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *fmt_title(const char *fmt, ...)
{
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    return strdup(buf);
}

int orch_store_read_html_report(orch_store *s, const int64_t *run_ids, int n_ids,
                                const char *pipeline, const char *tag, int64_t sweep_id,
                                orch_html_report *out, orch_err *err)
{
    if (out != NULL)
        memset(out, 0, sizeof *out);
    if (s == NULL || out == NULL)
        return orch_seterr(err, ORCH_EINVAL, "report: no store");
    if (sweep_id > 0 && (n_ids > 0 || pipeline != NULL || tag != NULL))
        return orch_seterr(err, ORCH_EINVAL,
                           "report: --sweep reports one sweep; it takes no run ids, --pipeline "
                           "or --tag");
    if (sweep_id <= 0 && n_ids == 0 && pipeline == NULL && tag == NULL)
        return orch_seterr(err, ORCH_EINVAL,
                           "report: name runs (orch report 1 2 3), --pipeline P, --tag T or "
                           "--sweep ID");
    int rc = ORCH_OK;
    orch_rowset groups = {0};
    int64_t *ids = NULL;
    int n = 0;
    out->sweep_id = sweep_id > 0 ? sweep_id : 0;
    out->db = strdup(s->path);
    if (out->db == NULL)
        rc = nomem(err);

    if (rc == ORCH_OK && sweep_id > 0) {
        /* the sweep's name; then its runs and groups */
        sqlite3_stmt *st = NULL;
        rc = prepare_bound(s, sql_sweep_name, &st, 1, &sweep_id, err);
        if (rc == ORCH_OK) {
            int src = sqlite3_step(st);
            if (src == SQLITE_ROW)
                out->title = fmt_title("sweep %lld (%s)", (long long)sweep_id,
                                       (const char *)sqlite3_column_text(st, 0));
            else if (src == SQLITE_DONE)
                rc = orch_seterr(err, ORCH_EINVAL, "report: no sweep %lld in %s",
                                 (long long)sweep_id, s->path);
            else
                rc = store_dberr(s, src, "report", err);
        }
        sqlite3_finalize(st);
        if (rc == ORCH_OK)
            rc = read_sweep_groups(s, sweep_id, &groups, err);
        if (rc == ORCH_OK && groups.n_rows > 0) {
            ids = malloc(groups.n_rows * sizeof *ids);
            if (ids == NULL)
                rc = nomem(err);
            for (size_t i = 0; rc == ORCH_OK && i < groups.n_rows; i++)
                ids[n++] = groups.cells[i * (size_t)groups.n_cols].i;
            if (rc == ORCH_OK)
                qsort(ids, (size_t)n, sizeof *ids, int64_cmp);
        }
        if (rc == ORCH_OK && n > 0)
            rc = orch_store_read_compare_sweep(s, sweep_id, &out->sweep_groups, err);
        if (rc == ORCH_OK && n > 0)
            rc = orch_store_read_compare(s, ids, n, NULL, NULL, &out->compare, err);
    } else if (rc == ORCH_OK) {
        rc = orch_store_read_compare(s, run_ids, n_ids, pipeline, tag, &out->compare, err);
        if (rc == ORCH_OK) {
            out->title = out->compare.n_rows == 1
                             ? fmt_title("run %lld", (long long)out->compare.cells[0].i)
                         : pipeline != NULL ? fmt_title("runs of %s", pipeline)
                         : tag != NULL      ? fmt_title("runs tagged %s", tag)
                                            : fmt_title("%zu runs", out->compare.n_rows);
        }
    }
    if (rc != ORCH_OK)
        reprefix(err);
    if (rc == ORCH_OK && out->title == NULL)
        rc = nomem(err);

    /* one orch_report_run per row of the compare table, in its order */
    size_t n_runs = out->compare.n_rows;
    if (rc == ORCH_OK && n_runs > 0) {
        out->runs = calloc(n_runs, sizeof *out->runs);
        if (out->runs == NULL)
            rc = nomem(err);
    }
    for (size_t i = 0; rc == ORCH_OK && i < n_runs; i++) {
        orch_report_run *run = &out->runs[out->n_runs++];
        run->run_id = out->compare.cells[i * (size_t)out->compare.n_cols].i;
        run->group_index = -1;
        rc = read_run(s, run, err);
    }
    if (rc == ORCH_OK && sweep_id > 0 && groups.n_rows > 0)
        rc = assign_groups(out, &groups, err);
    orch_rowset_free(&groups);
    free(ids);
    if (rc != ORCH_OK)
        orch_html_report_free(out);
    return rc;
}
