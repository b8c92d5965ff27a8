/*
 * plot.c - SVG charts for the report (plot.h): axes with nice ticks,
 * linear and log scales, decimated curves with non-finite markers, bands
 * and a heat map on a log colour scale. All the report's drawing is here.
 *
 * Coordinates are written with one decimal: the chart is 720 units wide,
 * so a tenth of a unit is below any screen's pixel, and short numbers keep
 * a page of 200 runs x 1,000 steps small.
 */
#include "store/plot.h"

#include <math.h>
#include <string.h>

void plot_esc(FILE *out, const char *text)
{
    for (const char *c = text != NULL ? text : ""; *c != '\0'; c++) {
        switch (*c) {
        case '&':
            fputs("&amp;", out);
            break;
        case '<':
            fputs("&lt;", out);
            break;
        case '>':
            fputs("&gt;", out);
            break;
        case '"':
            fputs("&quot;", out);
            break;
        case '\'':
            fputs("&#39;", out);
            break;
        default:
            fputc(*c, out);
        }
    }
}

void plot_num(FILE *out, double v)
{
    if (isnan(v))
        fputs("NaN", out);
    else if (isinf(v))
        fputs(v > 0 ? "Inf" : "-Inf", out);
    else
        fprintf(out, "%.4g", v);
}

void plot_range_init(plot_range *r)
{
    r->lo = INFINITY;
    r->hi = -INFINITY;
}

void plot_range_add(plot_range *r, double v, int ylog)
{
    if (!isfinite(v) || (ylog && v <= 0))
        return;
    if (v < r->lo)
        r->lo = v;
    if (v > r->hi)
        r->hi = v;
}

/* The plot area in user units. */
static const double area_l = PLOT_LEFT, area_r = PLOT_W - PLOT_RIGHT;
static const double area_t = PLOT_TOP, area_b = PLOT_H - PLOT_BOTTOM;

double plot_px(const plot *p, double step)
{
    return area_l + (step - p->x0) / (p->x1 - p->x0) * (area_r - area_l);
}

double plot_py(const plot *p, double v)
{
    double t = p->ylog ? log10(v) : v;
    double y = area_b - (t - p->y0) / (p->y1 - p->y0) * (area_b - area_t);
    return y < area_t ? area_t : y > area_b ? area_b : y;
}

/* A nice tick spacing for range over about `want` intervals: 1, 2 or 5
 * times a power of ten. */
static double nice_step(double range, int want)
{
    double raw = range / want;
    double mag = pow(10, floor(log10(raw)));
    double f = raw / mag;
    return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10) * mag;
}

/* A value that can be drawn on this chart. */
static int drawable(const plot *p, double v)
{
    return isfinite(v) && (!p->ylog || v > 0);
}

void plot_begin(plot *p, FILE *out, const char *id, const char *title, const char *ylabel,
                int64_t xlo, int64_t xhi, plot_range yr, int ylog)
{
    p->out = out;
    p->ylog = ylog;
    p->x0 = (double)xlo;
    p->x1 = (double)(xhi > xlo ? xhi : xlo + 1);
    if (!(yr.lo <= yr.hi)) { /* no finite value at all */
        yr.lo = ylog ? 0.1 : 0;
        yr.hi = ylog ? 10 : 1;
    }
    double ystep;
    if (ylog) {
        p->y0 = floor(log10(yr.lo));
        p->y1 = ceil(log10(yr.hi));
        if (p->y1 <= p->y0)
            p->y1 = p->y0 + 1;
        ystep = ceil((p->y1 - p->y0) / 6);
    } else {
        double lo = yr.lo, hi = yr.hi;
        if (hi - lo < 1e-12 * (fabs(hi) + 1)) {
            lo -= 0.5 * (fabs(lo) + 1e-3);
            hi += 0.5 * (fabs(hi) + 1e-3);
        }
        ystep = nice_step(hi - lo, 5);
        p->y0 = floor(lo / ystep) * ystep;
        p->y1 = ceil(hi / ystep) * ystep;
    }
    fprintf(out,
            "<svg id=\"%s\" class=\"chart\" viewBox=\"0 0 %d %d\" role=\"img\" "
            "data-px0=\"%g\" data-px1=\"%g\" data-x0=\"%g\" data-x1=\"%g\" data-py0=\"%g\" "
            "data-py1=\"%g\" data-y0=\"%.17g\" data-y1=\"%.17g\" data-log=\"%d\">\n<title>",
            id, PLOT_W, PLOT_H, area_l, area_r, p->x0, p->x1, area_b, area_t, p->y0, p->y1, ylog);
    plot_esc(out, title);
    fputs("</title>\n<text class=\"ttl\" x=\"", out);
    fprintf(out, "%g\" y=\"18\">", area_l);
    plot_esc(out, title);
    fputs("</text>\n<g class=\"axis\">\n", out);
    /* y ticks and grid */
    for (double t = p->y0; t <= p->y1 + 1e-9 * fabs(ystep); t += ystep) {
        double y = area_b - (t - p->y0) / (p->y1 - p->y0) * (area_b - area_t);
        fprintf(out,
                "<path class=\"grid\" d=\"M%g %.1fH%g\"/><text x=\"%g\" y=\"%.1f\" "
                "text-anchor=\"end\">",
                area_l, y, area_r, area_l - 6, y + 4);
        plot_num(out, ylog ? pow(10, t) : (fabs(t) < 1e-12 * ystep ? 0 : t));
        fputs("</text>\n", out);
    }
    /* x ticks at integer steps */
    double xstep = nice_step(p->x1 - p->x0, 6);
    if (xstep < 1)
        xstep = 1;
    for (double t = ceil(p->x0 / xstep) * xstep; t <= p->x1 + 1e-9; t += xstep) {
        double x = plot_px(p, t);
        fprintf(out,
                "<path d=\"M%.1f %gv5\"/><text x=\"%.1f\" y=\"%g\" text-anchor=\"middle\">%.0f"
                "</text>\n",
                x, area_b, x, area_b + 18, t);
    }
    fprintf(out, "<path d=\"M%g %gV%gH%g\"/>\n", area_l, area_t, area_b, area_r);
    fprintf(out, "<text x=\"%g\" y=\"%d\" text-anchor=\"middle\">step</text>\n",
            (area_l + area_r) / 2, PLOT_H - 4);
    fprintf(out, "<text x=\"14\" y=\"%g\" text-anchor=\"middle\" transform=\"rotate(-90 14 %g)\">",
            (area_t + area_b) / 2, (area_t + area_b) / 2);
    plot_esc(out, ylabel);
    if (ylog)
        fputs(" (log)", out);
    fputs("</text>\n</g>\n", out);
}

void plot_end(plot *p)
{
    fprintf(p->out,
            "<text class=\"readout\" x=\"%g\" y=\"18\" text-anchor=\"end\"></text>\n"
            "</svg>\n",
            area_r);
}

/* ------------------------------------------------------------- curves */

/* The pen of a path being written: "M" after a break, implicit lineto
 * after that (SVG repeats the last command for further pairs). */
typedef struct pen {
    FILE *out;
    int down; /* points written since the last break */
    int any;  /* anything was written */
} pen;

/* Ends the segment; a segment of one point becomes a short dash centred
 * on it, so a lone finite step between NaNs shows. */
static void pen_up(pen *pn)
{
    if (pn->down == 1)
        fputs("m-2.5 0h5", pn->out);
    pn->down = 0;
}

static void pen_point(pen *pn, double x, double y)
{
    if (pn->down)
        fprintf(pn->out, " %.1f %.1f", x, y);
    else
        fprintf(pn->out, "%sM%.1f %.1f", pn->any ? " " : "", x, y);
    pn->down++;
    pn->any = 1;
}

/* The finite points of one bucket: the lowest and highest, in step order. */
typedef struct bucket {
    long col; /* bucket index; LONG_MIN-ish when empty */
    int n;
    double min_x, min_y, max_x, max_y; /* values */
    double min_s, max_s;               /* steps */
} bucket;

static void bucket_flush(plot *p, bucket *b, pen *pn)
{
    if (b->n == 0)
        return;
    if (b->n == 1 || b->min_s == b->max_s) {
        pen_point(pn, plot_px(p, b->min_s), plot_py(p, b->min_y));
    } else if (b->min_s < b->max_s) {
        pen_point(pn, plot_px(p, b->min_s), plot_py(p, b->min_y));
        pen_point(pn, plot_px(p, b->max_s), plot_py(p, b->max_y));
    } else {
        pen_point(pn, plot_px(p, b->max_s), plot_py(p, b->max_y));
        pen_point(pn, plot_px(p, b->min_s), plot_py(p, b->min_y));
    }
    b->n = 0;
}

static void bucket_add(bucket *b, double s, double v)
{
    if (b->n == 0 || v < b->min_y) {
        b->min_y = v;
        b->min_s = s;
    }
    if (b->n == 0 || v > b->max_y) {
        b->max_y = v;
        b->max_s = s;
    }
    b->n++;
}

static long col_of(const plot *p, double step)
{
    return (long)floor((plot_px(p, step) - area_l) / PLOT_BUCKET);
}

void plot_curve(plot *p, const int64_t *step, const double *v, int64_t n, const char *attrs,
                const char *nan_tooltip)
{
    FILE *out = p->out;
    pen pn = {out, 0, 0};
    bucket b = {0};
    int64_t n_bad = 0, first_bad = -1;
    fprintf(out, "<path class=\"curve\" %s d=\"", attrs);
    for (int64_t i = 0; i < n; i++) {
        long col = col_of(p, (double)step[i]);
        if (!drawable(p, v[i])) {
            /* the line breaks here: what came before is drawn first */
            bucket_flush(p, &b, &pn);
            pen_up(&pn);
            if (n_bad++ == 0)
                first_bad = step[i];
            continue;
        }
        if (b.n > 0 && col != b.col)
            bucket_flush(p, &b, &pn);
        b.col = col;
        bucket_add(&b, (double)step[i], v[i]);
    }
    bucket_flush(p, &b, &pn);
    pen_up(&pn);
    if (!pn.any)
        fprintf(out, "M%g %g", area_l, area_b);
    fputs("\"/>\n", out);
    if (n_bad == 0)
        return;
    /* markers: one triangle at the top per bucket with non-finite steps */
    fprintf(out, "<path class=\"nan\" %s data-step=\"%lld\" data-x=\"%.1f\" d=\"", attrs,
            (long long)first_bad, plot_px(p, (double)first_bad));
    long last_col = 0;
    int any = 0;
    for (int64_t i = 0; i < n; i++) {
        if (drawable(p, v[i]))
            continue;
        long col = col_of(p, (double)step[i]);
        if (any && col == last_col)
            continue;
        fprintf(out, "%sM%.1f %gl4 -7h-8z", any ? " " : "", plot_px(p, (double)step[i]), area_t);
        last_col = col;
        any = 1;
    }
    fputs("\"><title>", out);
    fputs(nan_tooltip != NULL ? nan_tooltip : "", out);
    fputs("</title></path>\n", out);
}

void plot_band(plot *p, const int64_t *step, const double *lo, const double *hi, int64_t n,
               const char *attrs)
{
    /* upper edge left to right, lower edge right to left, per run of
     * finite points; decimated to one point per bucket (the extreme) */
    FILE *out = p->out;
    fprintf(out, "<path class=\"band\" %s d=\"", attrs);
    int any = 0;
    int64_t i = 0;
    while (i < n) {
        while (i < n && !(drawable(p, lo[i]) && drawable(p, hi[i])))
            i++;
        int64_t j = i;
        while (j < n && drawable(p, lo[j]) && drawable(p, hi[j]))
            j++;
        if (j > i) {
            pen pn = {out, 0, any};
            /* upper edge */
            long col = 0;
            double best = 0, s = 0;
            int have = 0;
            for (int64_t k = i; k <= j; k++) {
                long c = k < j ? col_of(p, (double)step[k]) : 0;
                if (have && (k == j || c != col)) {
                    pen_point(&pn, plot_px(p, s), plot_py(p, best));
                    have = 0;
                }
                if (k == j)
                    break;
                if (!have || hi[k] > best) {
                    best = hi[k];
                    s = (double)step[k];
                }
                col = c;
                have = 1;
            }
            for (int64_t k = j - 1; k >= i - 1; k--) {
                long c = k >= i ? col_of(p, (double)step[k]) : 0;
                if (have && (k < i || c != col)) {
                    pen_point(&pn, plot_px(p, s), plot_py(p, best));
                    have = 0;
                }
                if (k < i)
                    break;
                if (!have || lo[k] < best) {
                    best = lo[k];
                    s = (double)step[k];
                }
                col = c;
                have = 1;
            }
            fputc('Z', out);
            any = 1;
        }
        i = j;
    }
    if (!any)
        fprintf(out, "M%g %g", area_l, area_b);
    fputs("\"/>\n", out);
}

/* ------------------------------------------------------------ heat map */

/* A colour-blind-safe sequential scale (viridis, 9 stops), dark to light. */
static const unsigned char viridis[9][3] = {{68, 1, 84},    {71, 45, 123},  {59, 82, 139},
                                            {44, 114, 142}, {33, 145, 140}, {40, 174, 128},
                                            {94, 201, 98},  {170, 220, 50}, {253, 231, 37}};

static void colour_of(double t, char out[8])
{
    t = t < 0 ? 0 : t > 1 ? 1 : t;
    double f = t * 8;
    int i = (int)f;
    if (i >= 8)
        i = 7;
    double u = f - i;
    int c[3];
    for (int k = 0; k < 3; k++)
        c[k] = (int)lround(viridis[i][k] + u * (viridis[i + 1][k] - viridis[i][k]));
    snprintf(out, 8, "#%02x%02x%02x", c[0], c[1], c[2]);
}

void plot_heatmap(FILE *out, const char *id, const char *title, const char *const *rows, int n_rows,
                  const int64_t *cols, int n_cols, const plot_cell *cells, int64_t n_cells,
                  int mark_row, int mark_col)
{
    const double left = 210, top = 30, right = 16, bar = 46;
    double cw = n_cols > 0 ? (PLOT_W - left - right) / n_cols : 10;
    if (cw > 28)
        cw = 28;
    const double ch = 13;
    double height = top + n_rows * ch + 24 + bar;
    double lo = INFINITY, hi = -INFINITY;
    for (int64_t i = 0; i < n_cells; i++)
        if (isfinite(cells[i].value) && cells[i].value > 0) {
            double l = log10(cells[i].value);
            lo = l < lo ? l : lo;
            hi = l > hi ? l : hi;
        }
    if (!(lo <= hi)) {
        lo = 0;
        hi = 1;
    }
    if (hi - lo < 1e-9)
        hi = lo + 1;
    fprintf(out,
            "<svg id=\"%s\" class=\"heatmap\" viewBox=\"0 0 %d %.0f\" role=\"img\" "
            "data-left=\"%g\" data-top=\"%g\" data-cw=\"%.3f\" data-ch=\"%g\">\n<title>",
            id, PLOT_W, height, left, top, cw, ch);
    plot_esc(out, title);
    fputs("</title>\n<text class=\"ttl\" x=\"4\" y=\"18\">", out);
    plot_esc(out, title);
    fputs("</text>\n", out);
    for (int r = 0; r < n_rows; r++) {
        fprintf(out, "<text class=\"stage\" x=\"%g\" y=\"%.1f\" text-anchor=\"end\">", left - 4,
                top + r * ch + ch - 3);
        plot_esc(out, rows[r]);
        fputs("</text>\n", out);
    }
    int every = n_cols > 12 ? (n_cols + 11) / 12 : 1;
    for (int c = 0; c < n_cols; c += every)
        fprintf(out,
                "<text class=\"tick\" x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%lld</text>\n",
                left + c * cw + cw / 2, top + n_rows * ch + 14, (long long)cols[c]);
    fprintf(out, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">step</text>\n",
            left + n_cols * cw / 2, top + n_rows * ch + 26);
    for (int64_t i = 0; i < n_cells; i++) {
        const plot_cell *c = &cells[i];
        char colour[8] = "#bdbdbd";
        int finite = isfinite(c->value) && c->value > 0;
        if (finite)
            colour_of((log10(c->value) - lo) / (hi - lo), colour);
        fprintf(out, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%g\" fill=\"%s\"><title>",
                left + c->col * cw, top + c->row * ch, cw, ch, colour);
        plot_esc(out, rows[c->row]);
        fprintf(out, ", step %lld: act_absmax ", (long long)cols[c->col]);
        if (finite)
            plot_num(out, c->value);
        else
            fputs("no finite value", out);
        fputs("</title></rect>\n", out);
    }
    if (mark_row >= 0 && mark_row < n_rows && mark_col >= 0 && mark_col < n_cols) {
        fprintf(out,
                "<rect class=\"first\" x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%g\" "
                "data-stage=\"",
                left + mark_col * cw, top + mark_row * ch, cw, ch);
        plot_esc(out, rows[mark_row]);
        fprintf(out, "\" data-step=\"%lld\"><title>first NaN event: ", (long long)cols[mark_col]);
        plot_esc(out, rows[mark_row]);
        fprintf(out, ", step %lld</title></rect>\n", (long long)cols[mark_col]);
    }
    /* the colour scale */
    double by = top + n_rows * ch + 34;
    fprintf(out, "<defs><linearGradient id=\"%s-scale\">", id);
    for (int i = 0; i < 9; i++)
        fprintf(out, "<stop offset=\"%d%%\" stop-color=\"#%02x%02x%02x\"/>", i * 100 / 8,
                viridis[i][0], viridis[i][1], viridis[i][2]);
    fprintf(out,
            "</linearGradient></defs>\n<rect x=\"%g\" y=\"%.1f\" width=\"200\" height=\"10\" "
            "fill=\"url(#%s-scale)\"/>\n",
            left, by, id);
    fprintf(out, "<text x=\"%g\" y=\"%.1f\" text-anchor=\"end\">act_absmax ", left - 4, by + 9);
    plot_num(out, pow(10, lo));
    fprintf(out, "</text><text x=\"%g\" y=\"%.1f\">", left + 204, by + 9);
    plot_num(out, pow(10, hi));
    fprintf(out,
            " (log scale)</text><rect x=\"%g\" y=\"%.1f\" width=\"10\" height=\"10\" "
            "fill=\"#bdbdbd\"/><text x=\"%g\" y=\"%.1f\">no finite value</text>\n",
            left + 330, by, left + 344, by + 9);
    fputs("</svg>\n", out);
}
