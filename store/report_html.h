/*
 * report_html.h - `orch report`: one self-contained HTML page (inline SVG
 * plots, a little inline JavaScript for hover read-outs and toggling
 * series) about a selection of runs, docs/report.md.
 *
 * As for `orch show` and `orch compare`, the page is made in two steps:
 * orch_store_read_html_report fetches everything the page shows into an
 * orch_html_report (store/report_read.c: SQL, no HTML) and
 * orch_render_html_report writes the page (store/render_html.c: HTML, no
 * SQL; its plots come from store/plot.c). The renderer is pure: the same
 * report gives the same bytes, so tests can build reports by hand.
 */
#ifndef ORCH_STORE_REPORT_HTML_H
#define ORCH_STORE_REPORT_HTML_H

#include <stdint.h>
#include <stdio.h>

#include "core/err.h"
#include "store/store.h"

/* A named series of one run, in step order; NaN for a value the store
 * holds as NULL (a NaN), the IEEE infinities as they are. */
typedef struct orch_report_series {
    char *name; /* "eval/loss", ...; malloc'd */
    int64_t n;
    int64_t *step; /* malloc'd, n entries */
    double *value; /* malloc'd, n entries */
} orch_report_series;

/* One stage statistic for the heat map. */
typedef struct orch_report_stat {
    int64_t step;
    int stage;         /* index into orch_report_run.stat_stages */
    double act_absmax; /* NaN when the store holds NULL */
} orch_report_stat;

/* How many NaN events of a run the page lists, and the steps of stage
 * statistics read around the first one (before it, and after it). */
#define ORCH_HTML_EVENTS       20
#define ORCH_HTML_STATS_BEFORE 24
#define ORCH_HTML_STATS_AFTER  6

typedef struct orch_report_run {
    int64_t run_id;
    char *name, *pipeline, *strategy, *status, *precision; /* malloc'd; "" when unknown */
    int64_t seed;
    char *group;     /* the run's group of seeds in a sweep (its label), else NULL */
    int group_index; /* 0.. in order of the groups' first run; -1 outside a sweep */
    /* steps: loss and grad_norm per step */
    int64_t n_steps;
    int64_t *step;
    double *loss, *grad_norm;
    /* the metrics table, one series per name, by name (eval/loss, ...) */
    int n_metrics;
    orch_report_series *metrics;
    /* NaN events (frozen-parameter changes left out), the first
     * ORCH_HTML_EVENTS by step: step, phase, stage, tensor, nan_count,
     * inf_count, input_absmax, inputs_finite; and how many there are */
    int64_t n_nan_events;
    orch_rowset nan_events;
    /* stage statistics around the first NaN event (steps first -
     * ORCH_HTML_STATS_BEFORE .. first + ORCH_HTML_STATS_AFTER); empty
     * without an event or without statistics */
    int n_stat_stages;
    char **stat_stages; /* malloc'd names, in tower order (see report_read.c) */
    int64_t n_stats;
    orch_report_stat *stats;
    /* the run's row of run_summary, every column it has: a newer schema's
     * columns (end_reason, data_hash of schema 7) show when present */
    orch_rowset summary;
    char *config_json;   /* the resolved configuration, as stored */
    char *pipeline_text; /* the pipeline file's text when the caller read it, else NULL */
} orch_report_run;

typedef struct orch_html_report {
    char *title;              /* "sweep 1 (strategies)", "runs 1, 2", ...; malloc'd */
    char *db;                 /* the store's path; malloc'd */
    int64_t sweep_id;         /* 0 when not a sweep */
    orch_rowset sweep_groups; /* orch_store_read_compare_sweep's rows (sweep only) */
    orch_rowset compare;      /* orch_store_read_compare's rows, one per run, in order */
    int n_runs;
    orch_report_run *runs; /* in the order of compare's rows */
} orch_html_report;

/* Selection, as for `orch compare`: the n_ids runs of run_ids (in that
 * order), then every other run matching pipeline and tag (when given); or,
 * with sweep_id > 0 (and nothing else), the sweep's runs by id. A sweep
 * without runs gives a report of zero runs; anything else that selects
 * nothing is ORCH_EINVAL with one line ("report: no runs in PATH match
 * --tag T", "report: no run 42 in PATH", "report: no sweep 4 in PATH").
 * Read in one read transaction. On failure *out holds nothing to free
 * (freeing it is still safe). */
int orch_store_read_html_report(orch_store *s, const int64_t *run_ids, int n_ids,
                                const char *pipeline, const char *tag, int64_t sweep_id,
                                orch_html_report *out, orch_err *err);

/* Frees everything the report holds and zeroes it; NULL-safe. */
void orch_html_report_free(orch_html_report *r);

/* Writes the page to out. ORCH_EIO when writing fails, ORCH_ENOMEM. */
int orch_render_html_report(const orch_html_report *r, FILE *out, orch_err *err);

#endif
