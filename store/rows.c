/*
 * rows.c - a statement's rows as values: read into orch_rowset (what the
 * reports fetch before they render), or streamed to format.c's writer as
 * they come (orch query, whose results may be large). The only place that
 * turns SQLite columns into orch_value.
 */
#include "store/store_int.h"

#include <stdlib.h>
#include <string.h>

/* Column i of the current row as a value whose bytes point into st (valid
 * until the next step). */
static orch_value column_view(sqlite3_stmt *st, int i)
{
    orch_value v = {ORCH_VALUE_NULL, 0, 0.0, NULL, 0};
    switch (sqlite3_column_type(st, i)) {
    case SQLITE_INTEGER:
        v.kind = ORCH_VALUE_INT;
        v.i = sqlite3_column_int64(st, i);
        break;
    case SQLITE_FLOAT:
        v.kind = ORCH_VALUE_REAL;
        v.r = sqlite3_column_double(st, i);
        break;
    case SQLITE_BLOB:
        v.kind = ORCH_VALUE_BLOB;
        /* the writer only reads it: the cast drops const for the shared struct */
        v.s = (char *)sqlite3_column_blob(st, i);
        v.n = (size_t)sqlite3_column_bytes(st, i);
        break;
    case SQLITE_TEXT:
        v.kind = ORCH_VALUE_TEXT;
        v.s = (char *)sqlite3_column_text(st, i);
        v.n = (size_t)sqlite3_column_bytes(st, i);
        break;
    default:
        break;
    }
    return v;
}

/* *v with its bytes copied: owned by the value. -1 when out of memory. */
static int value_own(orch_value *v)
{
    if (v->kind != ORCH_VALUE_TEXT && v->kind != ORCH_VALUE_BLOB)
        return 0;
    char *copy = malloc(v->n + 1);
    if (copy == NULL) {
        v->kind = ORCH_VALUE_NULL;
        v->s = NULL;
        return -1;
    }
    if (v->n > 0)
        memcpy(copy, v->s, v->n);
    copy[v->n] = '\0';
    v->s = copy;
    return 0;
}

int store_print_rows(orch_store *s, sqlite3_stmt *st, orch_format format,
                     const orch_render_opts *opts, FILE *out, orch_err *err)
{
    int n_cols = sqlite3_column_count(st);
    const char **names = calloc(n_cols > 0 ? (size_t)n_cols : 1, sizeof *names);
    orch_value *vals = calloc(n_cols > 0 ? (size_t)n_cols : 1, sizeof *vals);
    store_writer w;
    int rc = ORCH_OK;
    int src;
    if (names == NULL || vals == NULL) {
        free(names);
        free(vals);
        return orch_seterr(err, ORCH_ENOMEM, "query: out of memory");
    }
    for (int i = 0; i < n_cols; i++)
        names[i] = sqlite3_column_name(st, i);
    store_writer_begin(&w, format, opts, n_cols, names, out);
    while ((src = sqlite3_step(st)) == SQLITE_ROW) {
        for (int i = 0; i < n_cols; i++)
            vals[i] = column_view(st, i);
        rc = store_writer_row(&w, vals, err);
        if (rc != ORCH_OK)
            break;
    }
    if (rc == ORCH_OK && src != SQLITE_DONE)
        rc = store_dberr(s, src, "query", err);
    if (rc == ORCH_OK)
        rc = store_writer_end(&w, err);
    else
        store_writer_free(&w);
    sqlite3_reset(st);
    free(names);
    free(vals);
    return rc;
}

/* Room for one more row. */
static int rows_grow(orch_rowset *r)
{
    if (r->n_rows < r->cap_rows)
        return 0;
    size_t cap = r->cap_rows ? 2 * r->cap_rows : 8;
    size_t nc = r->n_cols > 0 ? (size_t)r->n_cols : 1;
    orch_value *c = realloc(r->cells, cap * nc * sizeof *c);
    if (c == NULL)
        return -1;
    r->cells = c;
    r->cap_rows = cap;
    return 0;
}

int store_fetch_rows(orch_store *s, sqlite3_stmt *st, orch_rowset *out, orch_err *err)
{
    int src;
    int rc = ORCH_OK;
    if (out->names == NULL) {
        int n_cols = sqlite3_column_count(st);
        out->names = calloc(n_cols > 0 ? (size_t)n_cols : 1, sizeof *out->names);
        if (out->names == NULL)
            return orch_seterr(err, ORCH_ENOMEM, "store: out of memory reading rows");
        out->n_cols = n_cols;
        for (int i = 0; i < n_cols; i++)
            if ((out->names[i] = strdup(sqlite3_column_name(st, i))) == NULL)
                return orch_seterr(err, ORCH_ENOMEM, "store: out of memory reading rows");
    }
    while ((src = sqlite3_step(st)) == SQLITE_ROW) {
        if (rows_grow(out) != 0) {
            rc = orch_seterr(err, ORCH_ENOMEM, "store: out of memory reading rows");
            break;
        }
        orch_value *row = out->cells + out->n_rows * (size_t)out->n_cols;
        int oom = 0;
        for (int i = 0; i < out->n_cols; i++) {
            row[i] = column_view(st, i);
            oom |= value_own(&row[i]);
        }
        out->n_rows++; /* counted even when a copy failed: freed with the rest */
        if (oom) {
            rc = orch_seterr(err, ORCH_ENOMEM, "store: out of memory reading rows");
            break;
        }
    }
    if (rc == ORCH_OK && src != SQLITE_DONE)
        rc = store_dberr(s, src, "store: reading", err);
    sqlite3_reset(st);
    return rc;
}

void orch_rowset_free(orch_rowset *rows)
{
    if (rows == NULL)
        return;
    for (size_t i = 0; i < rows->n_rows * (size_t)(rows->n_cols > 0 ? rows->n_cols : 0); i++)
        free(rows->cells[i].s);
    for (int i = 0; rows->names != NULL && i < rows->n_cols; i++)
        free(rows->names[i]);
    free(rows->names);
    free(rows->cells);
    memset(rows, 0, sizeof *rows);
}

int orch_rowset_column(const orch_rowset *rows, const char *name)
{
    for (int i = 0; i < rows->n_cols; i++)
        if (strcmp(rows->names[i], name) == 0)
            return i;
    return -1;
}
