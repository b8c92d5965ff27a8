/*
 * render_html.c - the page of `orch report` (report_html.h): one
 * self-contained HTML file, no SQL and no external resource. Its charts
 * come from plot.c; its tables print the figures report_read.c read.
 *
 * What the page holds, in order: the legend of runs (click toggles a run
 * in every chart), loss and grad_norm (log) per run on shared axes, the
 * eval metrics (eval/...) when recorded, for a sweep the mean and spread over seeds
 * per group and the ranked groups, the compare table with the first NaN's
 * provenance, heat maps of stage statistics around the first NaN event,
 * and each run's pipeline and configuration (collapsed). A run's colour is
 * its strategy's and its dash its seed's, so seeds of one strategy read as
 * one family. Every string from the store is escaped (plot_esc).
 *
 * The inline script only adds: hover read-outs, toggling, and recording
 * any script error into body[data-errors] (the browser test reads it);
 * the page reads fully without it.
 */
#include "store/plot.h"
#include "store/report_html.h"
#include "store/store_int.h"

#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* How many heat maps a page draws (the runs with NaN events first in
 * order); each is up to ORCH_HTML_STATS_BEFORE + AFTER steps x the stages. */
#define HTML_HEATMAPS 8

/* Okabe & Ito's colours, distinguishable with the common colour-blindness
 * kinds, in an order that keeps neighbours apart; yellow is left out
 * (unreadable on white). */
static const char *const palette[] = {"#0072B2", "#D55E00", "#009E73", "#CC79A7",
                                      "#E69F00", "#56B4E9", "#000000"};
#define N_PALETTE ((int)(sizeof palette / sizeof palette[0]))
/* Line styles per seed: solid, dashed, dotted, dash-dot, long dash, ... */
static const char *const dashes[] = {"", "7 3", "2 2", "8 3 2 3", "12 4", "1 3", "4 2 1 2 1 2"};
#define N_DASHES ((int)(sizeof dashes / sizeof dashes[0]))

static const char page_css[] =
    "body{font:14px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;color:#1a1a1a;"
    "background:#fff;margin:0 auto;max-width:1100px;padding:12px 20px}\n"
    "h1{font-size:1.4em;margin:.4em 0}h2{font-size:1.15em;margin:1.4em 0 .4em;"
    "border-bottom:1px solid #ccc}\n"
    ".meta{color:#444}\n"
    "svg.chart,svg.heatmap{width:100%;height:auto;display:block;margin:.4em 0 1em}\n"
    "svg text{font:11px system-ui,sans-serif;fill:#222}svg "
    "text.ttl{font-weight:600;font-size:13px}\n"
    ".axis path{stroke:#444;fill:none}.axis path.grid{stroke:#e3e3e3}\n"
    "path.curve{fill:none;stroke-width:1.6;stroke-linejoin:round;stroke-linecap:round}\n"
    "path.nan{stroke:none}path.band{stroke:none;fill-opacity:.18}\n"
    "rect.first{fill:none;stroke:#d00;stroke-width:2.5}\n"
    ".off{display:none}\n"
    "ul.legend{list-style:none;padding:0;display:grid;grid-template-columns:repeat(auto-fill,"
    "minmax(320px,1fr));gap:1px 14px;margin:.3em 0}\n"
    "ul.legend "
    "li{cursor:pointer;white-space:nowrap;overflow:hidden;text-overflow:ellipsis}ul.legend "
    "li.hidden{opacity:.35}\n"
    "ul.legend svg{vertical-align:middle;margin-right:4px}\n"
    "table{border-collapse:collapse;margin:.4em 0;font-size:13px}\n"
    "th,td{border:1px solid #bbb;padding:2px 6px;text-align:left}"
    "td.n{text-align:right;font-variant-numeric:tabular-nums}th{background:#f0f0f0}\n"
    "pre{background:#f6f6f6;border:1px solid #ddd;padding:6px;overflow-x:auto;font-size:12px}\n"
    ".wide{overflow-x:auto}details{margin:.3em 0}summary{cursor:pointer}\n"
    ".note{color:#444;font-style:italic}\n"
    "@media print{body{max-width:none}ul.legend li{cursor:auto}}\n";

/* Records script errors where --dump-dom shows them; first in <head> so
 * it sees errors of everything after it. */
static const char page_js_head[] =
    "window.orchErrors=[];window.addEventListener('error',function(e){"
    "window.orchErrors.push(String(e.message));"
    "document.documentElement.setAttribute('data-errors',window.orchErrors.join(' | '));});\n";

static const char page_js[] =
    "(function(){\n"
    "function num(v){var a=Math.abs(v);return (a!==0&&(a<1e-3||a>=1e5))?v.toExponential(3)"
    ":String(+v.toPrecision(4));}\n"
    "document.querySelectorAll('svg.chart').forEach(function(svg){\n"
    " var d=svg.dataset,ro=svg.querySelector('text.readout');\n"
    " svg.addEventListener('mousemove',function(ev){\n"
    "  var m=svg.getScreenCTM();if(!m||!ro)return;var pt=svg.createSVGPoint();\n"
    "  pt.x=ev.clientX;pt.y=ev.clientY;pt=pt.matrixTransform(m.inverse());\n"
    "  var px0=+d.px0,px1=+d.px1,py0=+d.py0,py1=+d.py1;\n"
    "  if(pt.x<px0||pt.x>px1||pt.y<py1||pt.y>py0){ro.textContent='';return;}\n"
    "  var s=+d.x0+(pt.x-px0)/(px1-px0)*(+d.x1-+d.x0);\n"
    "  var v=+d.y0+(py0-pt.y)/(py0-py1)*(+d.y1-+d.y0);if(d.log==='1')v=Math.pow(10,v);\n"
    "  ro.textContent='step '+Math.round(s)+': '+num(v);});\n"
    " svg.addEventListener('mouseleave',function(){if(ro)ro.textContent='';});\n"
    "});\n"
    "document.querySelectorAll('ul.legend li[data-key]').forEach(function(li){\n"
    " li.addEventListener('click',function(){\n"
    "  var k=li.dataset.key,off=li.classList.toggle('hidden');\n"
    "  document.querySelectorAll('[data-key=\"'+k+'\"]').forEach(function(el){\n"
    "   if(el!==li)el.classList.toggle('off',off);});});\n"
    "});\n"
    "document.documentElement.setAttribute('data-js','ok');\n"
    "})();\n";

typedef struct page {
    FILE *out;
    const orch_html_report *r;
    int *colour; /* per run: palette index (by strategy) */
    int *dash;   /* per run: dash index (by seed) */
} page;

/* --------------------------------------------------------------- text */

static void esc(page *pg, const char *text)
{
    plot_esc(pg->out, text);
}

/* text escaped into buf (n bytes), cut when it does not fit. */
static void esc_buf(const char *in, char *buf, size_t n)
{
    size_t at = 0;
    for (; *in != '\0' && at + 7 < n; in++) {
        const char *rep = *in == '&'    ? "&amp;"
                          : *in == '<'  ? "&lt;"
                          : *in == '>'  ? "&gt;"
                          : *in == '"'  ? "&quot;"
                          : *in == '\'' ? "&#39;"
                                        : NULL;
        if (rep != NULL) {
            size_t k = strlen(rep);
            memcpy(buf + at, rep, k);
            at += k;
        } else {
            buf[at++] = *in;
        }
    }
    buf[at] = '\0';
}

static void cell_value(page *pg, const orch_value *v)
{
    switch (v->kind) {
    case ORCH_VALUE_NULL:
        fputs("<td>-</td>", pg->out);
        break;
    case ORCH_VALUE_INT:
        fprintf(pg->out, "<td class=\"n\">%lld</td>", (long long)v->i);
        break;
    case ORCH_VALUE_REAL:
        fputs("<td class=\"n\">", pg->out);
        if (isfinite(v->r))
            fprintf(pg->out, "%.6g", v->r);
        else
            plot_num(pg->out, v->r);
        fputs("</td>", pg->out);
        break;
    default:
        fputs("<td>", pg->out);
        esc(pg, v->kind == ORCH_VALUE_TEXT ? v->s : "(blob)");
        fputs("</td>", pg->out);
    }
}

static const orch_value *rs_at(const orch_rowset *rs, size_t row, const char *col)
{
    static const orch_value null_value = {0};
    int c = orch_rowset_column(rs, col);
    return c < 0 || row >= rs->n_rows ? &null_value
                                      : &rs->cells[row * (size_t)rs->n_cols + (size_t)c];
}

/* ------------------------------------------------------------- styles */

/* Index of s among the first n strings of list (added when new). */
static int intern(const char **list, int *n, const char *s)
{
    for (int i = 0; i < *n; i++)
        if (strcmp(list[i], s) == 0)
            return i;
    list[*n] = s;
    return (*n)++;
}

static int styles(page *pg)
{
    int n = pg->r->n_runs;
    pg->colour = calloc((size_t)n + 1, sizeof *pg->colour);
    pg->dash = calloc((size_t)n + 1, sizeof *pg->dash);
    const char **strategies = calloc((size_t)n + 1, sizeof *strategies);
    int64_t *seeds = calloc((size_t)n + 1, sizeof *seeds);
    if (pg->colour == NULL || pg->dash == NULL || strategies == NULL || seeds == NULL) {
        free(strategies);
        free(seeds);
        return -1;
    }
    int n_strategies = 0, n_seeds = 0;
    for (int i = 0; i < n; i++) {
        const orch_report_run *run = &pg->r->runs[i];
        pg->colour[i] = intern(strategies, &n_strategies, run->strategy) % N_PALETTE;
        int k = 0;
        while (k < n_seeds && seeds[k] != run->seed)
            k++;
        if (k == n_seeds)
            seeds[n_seeds++] = run->seed;
        /* outside a sweep, two runs of one strategy and seed (surgery and
         * nan-repro) would look alike: a later one takes the next line
         * style. A sweep keeps the rule (its groups have their own chart). */
        int same = 0;
        for (int j = 0; j < i && pg->r->sweep_id == 0; j++)
            same += pg->r->runs[j].seed == run->seed &&
                    strcmp(pg->r->runs[j].strategy, run->strategy) == 0;
        pg->dash[i] = (k + same) % N_DASHES;
    }
    free(strategies);
    free(seeds);
    return 0;
}

/* The path attributes of run i: data-key, colour, dash. */
static void run_attrs(const page *pg, int i, char *buf, size_t n)
{
    const char *dash = dashes[pg->dash[i]];
    snprintf(buf, n, "data-key=\"run-%lld\" data-run=\"%lld\" stroke=\"%s\" fill=\"%s\"%s%s%s",
             (long long)pg->r->runs[i].run_id, (long long)pg->r->runs[i].run_id,
             palette[pg->colour[i]], palette[pg->colour[i]], *dash ? " stroke-dasharray=\"" : "",
             dash, *dash ? "\"" : "");
}

static void legend_swatch(page *pg, const char *colour, const char *dash, int band)
{
    fprintf(pg->out, "<svg width=\"34\" height=\"10\" aria-hidden=\"true\">");
    if (band)
        fprintf(pg->out,
                "<rect x=\"0\" y=\"1\" width=\"34\" height=\"8\" fill=\"%s\" "
                "fill-opacity=\".25\"/>",
                colour);
    fprintf(pg->out, "<path d=\"M0 5H34\" stroke=\"%s\" stroke-width=\"2\"%s%s%s/></svg>", colour,
            *dash ? " stroke-dasharray=\"" : "", dash, *dash ? "\"" : "");
}

static void legend_runs(page *pg)
{
    fputs("<ul class=\"legend\" id=\"legend-runs\">\n", pg->out);
    for (int i = 0; i < pg->r->n_runs; i++) {
        const orch_report_run *run = &pg->r->runs[i];
        fprintf(pg->out, "<li data-key=\"run-%lld\" title=\"click to hide or show\">",
                (long long)run->run_id);
        legend_swatch(pg, palette[pg->colour[i]], dashes[pg->dash[i]], 0);
        fprintf(pg->out, "%lld ", (long long)run->run_id);
        esc(pg, run->name);
        fputs(" <span class=\"meta\">(", pg->out);
        esc(pg, run->strategy);
        fprintf(pg->out, ", seed %lld, ", (long long)run->seed);
        esc(pg, run->status);
        fputs(")</span></li>\n", pg->out);
    }
    fputs("</ul>\n", pg->out);
}

/* -------------------------------------------------------------- charts */

/* The first NaN event of run as one line, escaped into buf. */
static void first_event_text(const orch_report_run *run, char *buf, size_t n)
{
    char raw[600];
    if (run->nan_events.n_rows == 0) {
        snprintf(raw, sizeof raw, "no NaN event recorded");
    } else {
        const orch_rowset *e = &run->nan_events;
        const orch_value *finite = rs_at(e, 0, "inputs_finite");
        const orch_value *tensor = rs_at(e, 0, "tensor");
        snprintf(raw, sizeof raw, "first NaN event: step %lld %s %s%s%s (%s)",
                 (long long)rs_at(e, 0, "step")->i, rs_at(e, 0, "phase")->s,
                 rs_at(e, 0, "stage")->s, tensor->kind == ORCH_VALUE_TEXT ? " " : "",
                 tensor->kind == ORCH_VALUE_TEXT ? tensor->s : "",
                 finite->kind == ORCH_VALUE_INT && finite->i == 0 ? "propagated: its inputs were "
                                                                    "not finite"
                                                                  : "produced here");
    }
    esc_buf(raw, buf, n);
}

static void chart_steps(page *pg, const char *id, const char *title, const char *ylabel, int which,
                        int ylog)
{
    const orch_html_report *r = pg->r;
    plot_range yr;
    plot_range_init(&yr);
    int64_t xlo = 0, xhi = 0;
    int have_x = 0;
    for (int i = 0; i < r->n_runs; i++) {
        const orch_report_run *run = &r->runs[i];
        const double *v = which == 0 ? run->loss : run->grad_norm;
        for (int64_t k = 0; k < run->n_steps; k++)
            plot_range_add(&yr, v[k], ylog);
        if (run->n_steps > 0) {
            if (!have_x || run->step[0] < xlo)
                xlo = run->step[0];
            if (!have_x || run->step[run->n_steps - 1] > xhi)
                xhi = run->step[run->n_steps - 1];
            have_x = 1;
        }
    }
    plot p;
    plot_begin(&p, pg->out, id, title, ylabel, xlo, xhi, yr, ylog);
    for (int i = 0; i < r->n_runs; i++) {
        const orch_report_run *run = &r->runs[i];
        char attrs[256], name[400], event[1400], tip[2000];
        run_attrs(pg, i, attrs, sizeof attrs);
        esc_buf(run->name, name, sizeof name);
        first_event_text(run, event, sizeof event);
        snprintf(tip, sizeof tip,
                 "run %lld %s: %s not finite (or not drawable) at the marked "
                 "steps; %s",
                 (long long)run->run_id, name, ylabel, event);
        fprintf(pg->out, "<g data-key=\"run-%lld\"><title>run %lld %s</title>\n",
                (long long)run->run_id, (long long)run->run_id, name);
        plot_curve(&p, run->step, which == 0 ? run->loss : run->grad_norm, run->n_steps, attrs,
                   tip);
        fputs("</g>\n", pg->out);
    }
    plot_end(&p);
}

/* The distinct names of eval/ metrics over all runs, sorted, into names
 * (borrowed); returns how many (at most max). */
static int eval_names(const orch_html_report *r, const char **names, int max)
{
    int n = 0;
    for (int i = 0; i < r->n_runs; i++)
        for (int m = 0; m < r->runs[i].n_metrics; m++) {
            const char *name = r->runs[i].metrics[m].name;
            if (strncmp(name, "eval/", 5) != 0)
                continue;
            int k = 0;
            while (k < n && strcmp(names[k], name) != 0)
                k++;
            if (k == n && n < max)
                names[n++] = name;
        }
    for (int a = 1; a < n; a++)
        for (int b = a; b > 0 && strcmp(names[b - 1], names[b]) > 0; b--) {
            const char *t = names[b];
            names[b] = names[b - 1];
            names[b - 1] = t;
        }
    return n;
}

static const orch_report_series *find_metric(const orch_report_run *run, const char *name)
{
    for (int m = 0; m < run->n_metrics; m++)
        if (strcmp(run->metrics[m].name, name) == 0)
            return &run->metrics[m];
    return NULL;
}

static void chart_metric(page *pg, int index, const char *name)
{
    const orch_html_report *r = pg->r;
    plot_range yr;
    plot_range_init(&yr);
    int64_t xlo = 0, xhi = 0;
    int have_x = 0;
    for (int i = 0; i < r->n_runs; i++) {
        const orch_report_series *s = find_metric(&r->runs[i], name);
        if (s == NULL || s->n == 0)
            continue;
        for (int64_t k = 0; k < s->n; k++)
            plot_range_add(&yr, s->value[k], 0);
        if (!have_x || s->step[0] < xlo)
            xlo = s->step[0];
        if (!have_x || s->step[s->n - 1] > xhi)
            xhi = s->step[s->n - 1];
        have_x = 1;
    }
    char id[32];
    snprintf(id, sizeof id, "chart-eval-%d", index);
    plot p;
    plot_begin(&p, pg->out, id, name, name, xlo, xhi, yr, 0);
    for (int i = 0; i < r->n_runs; i++) {
        const orch_report_series *s = find_metric(&r->runs[i], name);
        if (s == NULL)
            continue;
        char attrs[256], tip[200];
        run_attrs(pg, i, attrs, sizeof attrs);
        snprintf(tip, sizeof tip, "run %lld: not finite at the marked steps",
                 (long long)r->runs[i].run_id);
        fprintf(pg->out, "<g data-key=\"run-%lld\">\n", (long long)r->runs[i].run_id);
        plot_curve(&p, s->step, s->value, s->n, attrs, tip);
        fputs("</g>\n", pg->out);
    }
    plot_end(&p);
}

/* ---------------------------------------------------------------- sweep */

typedef struct step_value {
    int64_t step;
    double v;
} step_value;

static int step_value_cmp(const void *a, const void *b)
{
    const step_value *x = a, *y = b;
    return (x->step > y->step) - (x->step < y->step);
}

/* Per group of seeds: the mean final... the mean loss per step and its
 * spread (lowest to highest over the seeds), from the runs' finite losses. */
static int chart_bands(page *pg)
{
    const orch_html_report *r = pg->r;
    int n_groups = 0;
    for (int i = 0; i < r->n_runs; i++)
        if (r->runs[i].group_index + 1 > n_groups)
            n_groups = r->runs[i].group_index + 1;
    if (n_groups == 0)
        return 0;
    plot_range yr;
    plot_range_init(&yr);
    int64_t xlo = 0, xhi = 0, total = 0;
    int have_x = 0;
    for (int i = 0; i < r->n_runs; i++) {
        const orch_report_run *run = &r->runs[i];
        for (int64_t k = 0; k < run->n_steps; k++)
            plot_range_add(&yr, run->loss[k], 0);
        if (run->n_steps > 0) {
            if (!have_x || run->step[0] < xlo)
                xlo = run->step[0];
            if (!have_x || run->step[run->n_steps - 1] > xhi)
                xhi = run->step[run->n_steps - 1];
            have_x = 1;
        }
        total += run->n_steps;
    }
    step_value *sv = malloc(((size_t)total + 1) * sizeof *sv);
    int64_t *steps = malloc(((size_t)total + 1) * sizeof *steps);
    double *mean = malloc(((size_t)total + 1) * sizeof *mean);
    double *lo = malloc(((size_t)total + 1) * sizeof *lo);
    double *hi = malloc(((size_t)total + 1) * sizeof *hi);
    if (sv == NULL || steps == NULL || mean == NULL || lo == NULL || hi == NULL) {
        free(sv);
        free(steps);
        free(mean);
        free(lo);
        free(hi);
        return -1;
    }
    fputs("<h3>Loss per configuration: mean over seeds, band from the lowest to the highest "
          "seed</h3>\n<ul class=\"legend\" id=\"legend-groups\">\n",
          pg->out);
    for (int g = 0; g < n_groups; g++) {
        for (int i = 0; i < r->n_runs; i++)
            if (r->runs[i].group_index == g) {
                fprintf(pg->out, "<li data-key=\"group-%d\">", g);
                legend_swatch(pg, palette[g % N_PALETTE], "", 1);
                esc(pg, r->runs[i].group);
                fputs("</li>\n", pg->out);
                break;
            }
    }
    fputs("</ul>\n", pg->out);
    plot p;
    plot_begin(&p, pg->out, "chart-bands", "loss: mean and spread over seeds", "loss", xlo, xhi, yr,
               0);
    for (int g = 0; g < n_groups; g++) {
        int64_t n = 0, n_runs = 0;
        for (int i = 0; i < r->n_runs; i++) {
            const orch_report_run *run = &r->runs[i];
            if (run->group_index != g)
                continue;
            n_runs++;
            for (int64_t k = 0; k < run->n_steps; k++)
                if (isfinite(run->loss[k]))
                    sv[n++] = (step_value){run->step[k], run->loss[k]};
        }
        qsort(sv, (size_t)n, sizeof *sv, step_value_cmp);
        int64_t m = 0;
        for (int64_t k = 0; k < n;) {
            int64_t j = k;
            double sum = 0, l = sv[k].v, h = sv[k].v;
            for (; j < n && sv[j].step == sv[k].step; j++) {
                sum += sv[j].v;
                l = sv[j].v < l ? sv[j].v : l;
                h = sv[j].v > h ? sv[j].v : h;
            }
            steps[m] = sv[k].step;
            mean[m] = sum / (double)(j - k);
            lo[m] = l;
            hi[m] = h;
            m++;
            k = j;
        }
        char attrs[160], tip[80];
        snprintf(attrs, sizeof attrs,
                 "data-key=\"group-%d\" data-group=\"%d\" stroke=\"%s\" "
                 "fill=\"%s\"",
                 g, g, palette[g % N_PALETTE], palette[g % N_PALETTE]);
        snprintf(tip, sizeof tip, "%lld runs", (long long)n_runs);
        plot_band(&p, steps, lo, hi, m, attrs);
        plot_curve(&p, steps, mean, m, attrs, tip);
    }
    plot_end(&p);
    free(sv);
    free(steps);
    free(mean);
    free(lo);
    free(hi);
    return 0;
}

static void table_rows(page *pg, const orch_rowset *rs, const char *id)
{
    fprintf(pg->out, "<table id=\"%s\">\n<tr>", id);
    for (int c = 0; c < rs->n_cols; c++) {
        fputs("<th>", pg->out);
        esc(pg, rs->names[c]);
        fputs("</th>", pg->out);
    }
    fputs("</tr>\n", pg->out);
    for (size_t row = 0; row < rs->n_rows; row++) {
        fputs("<tr>", pg->out);
        for (int c = 0; c < rs->n_cols; c++)
            cell_value(pg, &rs->cells[row * (size_t)rs->n_cols + (size_t)c]);
        fputs("</tr>\n", pg->out);
    }
    fputs("</table>\n", pg->out);
}

/* --------------------------------------------------------- compare table */

static void compare_table(page *pg)
{
    const orch_html_report *r = pg->r;
    const orch_rowset *cmp = &r->compare;
    static const char *const cols[] = {"run",        "name",      "strategy",      "precision",
                                       "lr",         "seed",      "status",        "steps",
                                       "final_loss", "best_loss", "max_grad_norm", "steps_per_s"};
    /* columns of a newer run_summary (schema 7), shown when the store has them */
    static const char *const extra[] = {"end_reason", "data_hash"};
    int has_extra[2] = {0, 0};
    int has_eval_loss = 0, has_eval_acc = 0;
    for (int i = 0; i < r->n_runs; i++) {
        has_eval_loss |= find_metric(&r->runs[i], "eval/loss") != NULL;
        has_eval_acc |= find_metric(&r->runs[i], "eval/accuracy") != NULL;
        for (int k = 0; k < 2; k++)
            has_extra[k] |= orch_rowset_column(&r->runs[i].summary, extra[k]) >= 0;
    }
    fputs("<div class=\"wide\"><table id=\"compare\">\n<tr>", pg->out);
    for (size_t c = 0; c < sizeof cols / sizeof *cols; c++)
        fprintf(pg->out, "<th>%s</th>", cols[c]);
    if (has_eval_loss)
        fputs("<th>final eval/loss</th>", pg->out);
    if (has_eval_acc)
        fputs("<th>best eval/accuracy</th>", pg->out);
    for (int k = 0; k < 2; k++)
        if (has_extra[k])
            fprintf(pg->out, "<th>%s</th>", extra[k]);
    fputs("<th>first NaN: step</th><th>phase</th><th>stage</th><th>tensor</th>"
          "<th>provenance</th></tr>\n",
          pg->out);
    /* compare's rows are the runs' (report_read.c); a report made by hand
     * without them shows "-" */
    for (size_t row = 0; (int)row < r->n_runs; row++) {
        const orch_report_run *run = &r->runs[row];
        fprintf(pg->out, "<tr data-run=\"%lld\">", (long long)run->run_id);
        for (size_t c = 0; c < sizeof cols / sizeof *cols; c++)
            cell_value(pg, rs_at(cmp, row, cols[c]));
        const orch_report_series *el = find_metric(run, "eval/loss");
        const orch_report_series *ea = find_metric(run, "eval/accuracy");
        if (has_eval_loss) {
            orch_value v = {.kind = el != NULL && el->n > 0 ? ORCH_VALUE_REAL : ORCH_VALUE_NULL};
            if (v.kind == ORCH_VALUE_REAL)
                v.r = el->value[el->n - 1];
            cell_value(pg, &v);
        }
        if (has_eval_acc) {
            orch_value v = {.kind = ORCH_VALUE_NULL};
            for (int64_t k = 0; ea != NULL && k < ea->n; k++)
                if (isfinite(ea->value[k]) && (v.kind == ORCH_VALUE_NULL || ea->value[k] > v.r)) {
                    v.kind = ORCH_VALUE_REAL;
                    v.r = ea->value[k];
                }
            cell_value(pg, &v);
        }
        for (int k = 0; k < 2; k++)
            if (has_extra[k])
                cell_value(pg, rs_at(&run->summary, 0, extra[k]));
        if (run->nan_events.n_rows > 0) {
            const orch_rowset *e = &run->nan_events;
            cell_value(pg, rs_at(e, 0, "step"));
            cell_value(pg, rs_at(e, 0, "phase"));
            cell_value(pg, rs_at(e, 0, "stage"));
            cell_value(pg, rs_at(e, 0, "tensor"));
            const orch_value *finite = rs_at(e, 0, "inputs_finite");
            fprintf(pg->out, "<td>%s</td>",
                    finite->kind != ORCH_VALUE_INT ? "-"
                    : finite->i != 0               ? "producer (inputs finite)"
                                                   : "propagator (inputs not finite)");
        } else {
            fputs("<td>-</td><td>-</td><td>-</td><td>-</td><td>-</td>", pg->out);
        }
        fputs("</tr>\n", pg->out);
    }
    fputs("</table></div>\n", pg->out);
}

/* ------------------------------------------------------------- heat maps */

static int int64_cmp(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static int heatmap(page *pg, const orch_report_run *run)
{
    int64_t *cols = malloc(((size_t)run->n_stats + 1) * sizeof *cols);
    plot_cell *cells = malloc(((size_t)run->n_stats + 1) * sizeof *cells);
    if (cols == NULL || cells == NULL) {
        free(cols);
        free(cells);
        return -1;
    }
    int n_cols = 0;
    for (int64_t i = 0; i < run->n_stats; i++)
        cols[n_cols++] = run->stats[i].step;
    qsort(cols, (size_t)n_cols, sizeof *cols, int64_cmp);
    int u = 0;
    for (int i = 0; i < n_cols; i++)
        if (u == 0 || cols[u - 1] != cols[i])
            cols[u++] = cols[i];
    n_cols = u;
    for (int64_t i = 0; i < run->n_stats; i++) {
        int c = 0;
        while (cols[c] != run->stats[i].step)
            c++;
        cells[i] = (plot_cell){run->stats[i].stage, c, run->stats[i].act_absmax};
    }
    /* the first event's cell: its stage's row, the column of its step (or
     * the nearest recorded step before it) */
    const orch_rowset *e = &run->nan_events;
    int mark_row = -1, mark_col = -1;
    const orch_value *stage = rs_at(e, 0, "stage");
    int64_t step = rs_at(e, 0, "step")->i;
    for (int s = 0; stage->kind == ORCH_VALUE_TEXT && s < run->n_stat_stages; s++)
        if (strcmp(run->stat_stages[s], stage->s) == 0)
            mark_row = s;
    for (int c = 0; c < n_cols; c++)
        if (cols[c] <= step)
            mark_col = c;
    char id[48], title[512], name[300];
    snprintf(id, sizeof id, "heatmap-%lld", (long long)run->run_id);
    snprintf(name, sizeof name, "%s", run->name);
    snprintf(title, sizeof title,
             "run %lld %s: act_absmax per stage around the first NaN event (step %lld, %s)",
             (long long)run->run_id, name, (long long)step,
             stage->kind == ORCH_VALUE_TEXT ? stage->s : "?");
    plot_heatmap(pg->out, id, title, (const char *const *)run->stat_stages, run->n_stat_stages,
                 cols, n_cols, cells, run->n_stats, mark_row, mark_col);
    free(cols);
    free(cells);
    return 0;
}

/* ------------------------------------------------------------- details */

static void run_details(page *pg, const orch_report_run *run)
{
    FILE *out = pg->out;
    fprintf(out, "<details id=\"config-%lld\"><summary>run %lld ", (long long)run->run_id,
            (long long)run->run_id);
    esc(pg, run->name);
    fputs(": ", out);
    esc(pg, run->pipeline);
    fputs("</summary>\n", out);
    if (run->pipeline_text != NULL) {
        fputs("<p>The pipeline file as it is now (it may have changed since the run):</p><pre>",
              out);
        esc(pg, run->pipeline_text);
        fputs("</pre>\n", out);
    }
    fputs("<p>The resolved configuration the run started with:</p><pre>", out);
    json_error_t jerr;
    json_t *root = json_loads(run->config_json, 0, &jerr);
    char *text = NULL;
    size_t len = 0;
    FILE *mem = root != NULL ? open_memstream(&text, &len) : NULL;
    if (mem != NULL) {
        store_json_print(root, 2, 0, mem);
        fclose(mem);
        esc(pg, text);
    } else {
        esc(pg, run->config_json);
    }
    free(text);
    json_decref(root);
    fputs("</pre>\n</details>\n", out);
}

/* ----------------------------------------------------------------- page */

int orch_render_html_report(const orch_html_report *r, FILE *out, orch_err *err)
{
    if (r == NULL || out == NULL)
        return orch_seterr(err, ORCH_EINVAL, "report: nothing to render");
    page pg = {out, r, NULL, NULL};
    if (styles(&pg) != 0) {
        free(pg.colour);
        free(pg.dash);
        return orch_seterr(err, ORCH_ENOMEM, "report: out of memory");
    }
    int rc = ORCH_OK;
    fputs("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
          "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>orch "
          "report: ",
          out);
    esc(&pg, r->title);
    fprintf(out, "</title>\n<script>%s</script>\n<style>\n%s</style>\n</head>\n<body>\n",
            page_js_head, page_css);
    fputs("<h1>orch report: ", out);
    esc(&pg, r->title);
    fprintf(out, "</h1>\n<p class=\"meta\">%d run%s from the store ", r->n_runs,
            r->n_runs == 1 ? "" : "s");
    esc(&pg, r->db);
    fputs(". Curves: one colour per strategy, one line style per seed; ▼ at the top marks "
          "steps whose value is NaN or infinite. Click a legend entry to hide or show a run.</p>\n",
          out);

    if (r->n_runs == 0) {
        fputs("<p class=\"note\" id=\"no-runs\">No runs to show.</p>\n", out);
    } else {
        fputs("<h2>Curves</h2>\n", out);
        legend_runs(&pg);
        chart_steps(&pg, "chart-loss", "loss per step", "loss", 0, 0);
        chart_steps(&pg, "chart-grad-norm", "grad_norm per step (log scale)", "grad_norm", 1, 1);
        const char *names[32];
        int n_eval = eval_names(r, names, 32);
        if (n_eval > 0)
            fputs("<h2>Evaluation</h2>\n", out);
        for (int m = 0; m < n_eval; m++)
            chart_metric(&pg, m, names[m]);
    }

    if (r->sweep_id > 0 && r->n_runs > 0) {
        fputs("<h2>Sweep: configurations over seeds</h2>\n", out);
        if (chart_bands(&pg) != 0)
            rc = orch_seterr(err, ORCH_ENOMEM, "report: out of memory");
        fputs("<h3>Groups of seeds, best mean final loss first (orch compare --sweep)</h3>\n", out);
        table_rows(&pg, &r->sweep_groups, "sweep-groups");
    }

    if (rc == ORCH_OK && r->n_runs > 0) {
        fputs("<h2>Runs side by side (orch compare)</h2>\n", out);
        compare_table(&pg);
        int drawn = 0, with_events = 0;
        for (int i = 0; i < r->n_runs; i++)
            with_events += r->runs[i].nan_events.n_rows > 0;
        if (with_events > 0)
            fputs("<h2>Where the first NaN came from: stage statistics</h2>\n<p>act_absmax (the "
                  "largest finite |x| of each stage's forward output) down the tower, around "
                  "each run's first NaN event; its cell is outlined.</p>\n",
                  out);
        for (int i = 0; i < r->n_runs && rc == ORCH_OK; i++) {
            const orch_report_run *run = &r->runs[i];
            if (run->nan_events.n_rows == 0)
                continue;
            if (run->n_stats == 0) {
                fprintf(out, "<p class=\"note\">run %lld ", (long long)run->run_id);
                esc(&pg, run->name);
                fputs(": no stage statistics around its first NaN event (record them with "
                      "checks.stats_every).</p>\n",
                      out);
            } else if (drawn < HTML_HEATMAPS) {
                if (heatmap(&pg, run) != 0)
                    rc = orch_seterr(err, ORCH_ENOMEM, "report: out of memory");
                drawn++;
            } else {
                fprintf(out,
                        "<p class=\"note\">run %lld: heat map left out (the page draws %d; "
                        "orch report %lld draws it).</p>\n",
                        (long long)run->run_id, HTML_HEATMAPS, (long long)run->run_id);
            }
        }
        fputs("<h2>Pipelines and configurations</h2>\n", out);
        for (int i = 0; i < r->n_runs; i++)
            run_details(&pg, &r->runs[i]);
    }
    fprintf(out,
            "<p class=\"meta\">Written by orch %s.</p>\n<script>\n%s</script>\n</body>\n"
            "</html>\n",
            ORCH_VERSION, page_js);
    free(pg.colour);
    free(pg.dash);
    if (rc == ORCH_OK && ferror(out))
        rc = orch_seterr(err, ORCH_EIO, "report: writing the page failed");
    return rc;
}
