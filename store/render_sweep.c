/*
 * render_sweep.c - printing what sweep_read.c read: `orch sweeps`, `orch
 * show sweep ID` and `orch compare --sweep ID`. No SQL here. Tables for
 * people show reals with 6 significant digits and NULL as "-"; CSV and
 * JSON give every column exactly, as read (format.c).
 */
#include "store/store_int.h"
#include "store/sweeps.h"

#include <string.h>

static const orch_render_opts people = {6, "-"};

static const orch_value null_value = {ORCH_VALUE_NULL, 0, 0.0, NULL, 0};

/* Column name of row r; NULL when rows have no such column. */
static const orch_value *cell(const orch_rowset *rows, size_t r, const char *name)
{
    int c = orch_rowset_column(rows, name);
    return c < 0 ? &null_value : &rows->cells[r * (size_t)rows->n_cols + (size_t)c];
}

static int check_format(const char *what, orch_format format, orch_err *err)
{
    if (format != ORCH_FMT_TABLE && format != ORCH_FMT_CSV && format != ORCH_FMT_JSON)
        return orch_seterr(err, ORCH_EINVAL, "%s: unknown output format %d", what, (int)format);
    return ORCH_OK;
}

/* A table for people of the n_cols columns cols of rows (a column the rows
 * lack prints as NULL). nan_col, when not NULL, is a loss column shown as
 * "NaN" when NULL in a row whose "steps" is > 0 (docs/store.md: NaN is
 * stored as NULL). */
static int people_table(const orch_rowset *rows, const char *const *cols, int n_cols,
                        const char *nan_col, FILE *out, orch_err *err)
{
    static char nan_text[] = "NaN";
    orch_value row[16];
    ORCH_ASSERT(n_cols <= 16);
    store_writer w;
    int rc = store_writer_begin(&w, ORCH_FMT_TABLE, &people, n_cols, cols, out);
    for (size_t r = 0; r < rows->n_rows && rc == ORCH_OK; r++) {
        const orch_value *steps = cell(rows, r, "steps");
        for (int c = 0; c < n_cols; c++) {
            row[c] = *cell(rows, r, cols[c]);
            if (nan_col != NULL && strcmp(cols[c], nan_col) == 0 &&
                row[c].kind == ORCH_VALUE_NULL && steps->kind == ORCH_VALUE_INT && steps->i > 0)
                row[c] = (orch_value){ORCH_VALUE_TEXT, 0, 0.0, nan_text, 3};
        }
        rc = store_writer_row(&w, row, err);
    }
    if (rc != ORCH_OK) {
        store_writer_free(&w);
        return rc;
    }
    return store_writer_end(&w, err);
}

int orch_render_sweeps(const orch_rowset *rows, orch_format format, FILE *out, orch_err *err)
{
    /* the table leaves out file and finished_at: `orch show sweep` has them */
    static const char *const cols[] = {"id",     "name",    "status",      "runs",
                                       "queued", "running", "finished",    "diverged",
                                       "failed", "skipped", "interrupted", "created_at"};
    int rc = check_format("sweeps", format, err);
    if (rc != ORCH_OK)
        return rc;
    if (format != ORCH_FMT_TABLE)
        return orch_render_rows(rows, format, NULL, out, err);
    return people_table(rows, cols, (int)(sizeof cols / sizeof cols[0]), NULL, out, err);
}

int orch_render_sweep_text(const orch_sweep_report *r, FILE *out, orch_err *err)
{
    static const char *const cols[] = {"point",    "run",   "status",     "rank", "host",
                                       "attempts", "steps", "final_loss", "error"};
    char buf[64];
    const orch_rowset *sw = &r->sweep;
    if (sw->n_rows != 1)
        return orch_seterr(err, ORCH_EINVAL, "show: no sweep to print");
    const orch_value *id = cell(sw, 0, "id");
    const orch_value *name = cell(sw, 0, "name");
    fprintf(out, "sweep %lld: %s\n", id->kind == ORCH_VALUE_INT ? (long long)id->i : 0LL,
            name->kind == ORCH_VALUE_TEXT ? name->s : "");
    for (int c = 0; c < sw->n_cols; c++) {
        const orch_value *v = &sw->cells[c];
        const char *text = "-";
        if (strcmp(sw->names[c], "id") == 0)
            continue; /* in the title */
        if (v->kind == ORCH_VALUE_INT) {
            snprintf(buf, sizeof buf, "%lld", (long long)v->i);
            text = buf;
        } else if (v->kind == ORCH_VALUE_REAL)
            text = store_format_real(v->r, 6, buf);
        else if (v->kind != ORCH_VALUE_NULL && v->s != NULL)
            text = v->s;
        fprintf(out, "  %-16s %s\n", sw->names[c], text);
    }
    fprintf(out, "\nruns (%zu)\n", r->runs.n_rows);
    int rc =
        people_table(&r->runs, cols, (int)(sizeof cols / sizeof cols[0]), "final_loss", out, err);
    if (rc == ORCH_OK && (fflush(out) != 0 || ferror(out)))
        rc = orch_seterr(err, ORCH_EIO, "show: writing the output failed");
    return rc;
}

int orch_render_compare_sweep(const orch_rowset *rows, orch_format format, FILE *out, orch_err *err)
{
    int rc = check_format("compare", format, err);
    if (rc != ORCH_OK)
        return rc;
    return orch_render_rows(rows, format, format == ORCH_FMT_TABLE ? &people : NULL, out, err);
}
