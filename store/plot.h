/*
 * plot.h - the report's SVG plotting (store/plot.c), room-internal to
 * store/: a chart with axes (ticks at nice numbers, a log scale for
 * grad_norm), decimated curves with markers for non-finite steps, bands,
 * and a heat map on a log colour scale. Writes SVG text to a FILE; knows
 * nothing of runs or the store.
 *
 * Every chart is an <svg class="chart"> whose data-* attributes give its
 * mapping (data-px0/px1: the plot's left and right edge in user units,
 * data-x0/x1: the steps there; data-py0/py1 and data-y0/y1 the same
 * vertically, data-log 1 for a log scale), which the page's script uses
 * for hover read-outs and tests use to check positions.
 */
#ifndef ORCH_STORE_PLOT_H
#define ORCH_STORE_PLOT_H

#include <stdint.h>
#include <stdio.h>

/* Chart geometry in SVG user units (the page scales it to its width). */
#define PLOT_W      720
#define PLOT_H      300
#define PLOT_LEFT   64
#define PLOT_RIGHT  16
#define PLOT_TOP    36
#define PLOT_BOTTOM 40
/* Curves keep at most the lowest and highest value per bucket of this many
 * units of x: 2 points per 2 units, whatever the number of steps. */
#define PLOT_BUCKET 2.0

typedef struct plot {
    FILE *out;
    double x0, x1; /* steps at the left and right edge */
    double y0, y1; /* values at the bottom and top (log: their log10) */
    int ylog;
} plot;

/* Range of values: plot_range_add each finite value (and positive ones
 * only for a log scale), then plot_begin. */
typedef struct plot_range {
    double lo, hi; /* +inf, -inf while empty */
} plot_range;

void plot_range_init(plot_range *r);
void plot_range_add(plot_range *r, double v, int ylog);

/* Opens the chart <svg id=id class="chart ..."> with a title, the axes
 * (nice ticks, grid lines, tick labels, axis labels). Steps xlo..xhi
 * (widened when equal); the value range is widened to nice numbers (a
 * decade for ylog). */
void plot_begin(plot *p, FILE *out, const char *id, const char *title, const char *ylabel,
                int64_t xlo, int64_t xhi, plot_range yr, int ylog);

/* Closes the chart. */
void plot_end(plot *p);

/* x and y in user units; y of a value outside the range is clamped. */
double plot_px(const plot *p, double step);
double plot_py(const plot *p, double v);

/* One curve: a single <path class="curve"> with attrs (already escaped:
 * data-run, stroke, dash, ...) whose line breaks at non-finite values and
 * keeps, per bucket of PLOT_BUCKET units, the lowest and highest value in
 * step order (so extremes survive decimation). Values that cannot be drawn
 * (NaN, +/-Inf; <= 0 on a log scale) are non-finite for the chart: when
 * there are any, a second <path class="nan"> with the same attrs holds one
 * triangle marker at the top per bucket that has such steps, data-step the
 * first such step and data-x its x, and tooltip as its <title>
 * (already escaped). A curve with nothing to draw still gets its path
 * ("M x y" at the left edge, invisible) so every series has one. */
void plot_curve(plot *p, const int64_t *step, const double *v, int64_t n, const char *attrs,
                const char *nan_tooltip);

/* A band between lo and hi (finite only) at steps, filled with colour at
 * low opacity, decimated as curves are. */
void plot_band(plot *p, const int64_t *step, const double *lo, const double *hi, int64_t n,
               const char *attrs);

/* A heat map <svg class="heatmap">: rows (names) x cols (steps), one rect
 * per value given (cells: row, col, value; NaN drawn grey as "no finite
 * value"), coloured on a log10 scale of the finite positive values; the
 * cell (mark_row, mark_col) is outlined (class "first", data-stage,
 * data-step) even when it has no value; mark_row < 0 marks nothing. */
typedef struct plot_cell {
    int row, col;
    double value;
} plot_cell;
void plot_heatmap(FILE *out, const char *id, const char *title, const char *const *rows, int n_rows,
                  const int64_t *cols, int n_cols, const plot_cell *cells, int64_t n_cells,
                  int mark_row, int mark_col);

/* Writes text escaped for HTML (element text and attribute values). */
void plot_esc(FILE *out, const char *text);

/* A value as short text ("0.25", "1e+04"): %.4g. */
void plot_num(FILE *out, double v);

#endif
