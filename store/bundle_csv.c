/*
 * bundle_csv.c - a run's rows of one table as CSV with a header, and back
 * (see bundle_int.h). The text keeps each value's SQLite type so an import
 * stores exactly what was exported: text is always quoted, numbers never
 * (reals with 17 significant digits and a '.', 'e' or "Inf" so they stay
 * reals), NULL is an empty field, a blob X'hex'.
 */
#include "store/bundle_int.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

void bundle_buf_add(bundle_buf *b, const void *data, size_t n)
{
    if (b->oom)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *s = realloc(b->s, cap);
        if (s == NULL) {
            b->oom = 1;
            return;
        }
        b->s = s;
        b->cap = cap;
    }
    memcpy(b->s + b->len, data, n);
    b->len += n;
    b->s[b->len] = '\0';
}

void bundle_buf_str(bundle_buf *b, const char *s)
{
    bundle_buf_add(b, s, strlen(s));
}

static void add_quoted(bundle_buf *b, const char *s, size_t n)
{
    bundle_buf_add(b, "\"", 1);
    for (size_t i = 0; i < n; i++)
        bundle_buf_add(b, s[i] == '"' ? "\"\"" : &s[i], s[i] == '"' ? 2 : 1);
    bundle_buf_add(b, "\"", 1);
}

static void add_real(bundle_buf *b, double v)
{
    char t[40];
    if (isinf(v))
        snprintf(t, sizeof t, "%sInf", v < 0 ? "-" : "");
    else
        snprintf(t, sizeof t, "%.17g", v);
    if (strpbrk(t, ".eIn") == NULL)
        strcat(t, ".0");
    bundle_buf_str(b, t);
}

int bundle_run_tables(orch_store *s, char (*names)[128], int *n, int max, orch_err *err)
{
    /* a sweep's membership and the detach cache's uses stay with the store
     * that ran them */
    return store_child_tables(s, "'runs'", "'runs', 'sweep_runs', 'run_features'", "export", names,
                              n, max, err);
}

static void add_ident(bundle_buf *b, const char *name)
{
    add_quoted(b, name, strlen(name));
}

int bundle_csv_dump(orch_store *s, const char *table, int64_t run_id, bundle_buf *out,
                    orch_err *err)
{
    /* the stored (not generated) columns, in table order */
    bundle_buf sql = {0};
    sqlite3_stmt *st = NULL;
    int rc = store_prepare(s,
                           "SELECT name FROM pragma_table_xinfo(?1, 'main') WHERE hidden = 0 "
                           "ORDER BY cid",
                           0, &st, err);
    int ncol = 0, src = SQLITE_OK;
    if (rc == ORCH_OK && sqlite3_bind_text(st, 1, table, -1, SQLITE_STATIC) != SQLITE_OK)
        rc = store_dberr(s, sqlite3_errcode(s->db), "export", err);
    bundle_buf_str(&sql, "SELECT ");
    while (rc == ORCH_OK && (src = sqlite3_step(st)) == SQLITE_ROW) {
        if (ncol++)
            bundle_buf_str(&sql, ", ");
        add_ident(&sql, (const char *)sqlite3_column_text(st, 0));
    }
    if (rc == ORCH_OK && src != SQLITE_DONE)
        rc = store_dberr(s, src, "export: reading the schema", err);
    sqlite3_finalize(st);
    st = NULL;
    bundle_buf_str(&sql, " FROM ");
    add_ident(&sql, table);
    bundle_buf_str(&sql, strcmp(table, "runs") == 0 ? " WHERE id = ?1" : " WHERE run_id = ?1");
    bundle_buf_str(&sql, " ORDER BY ");
    for (int i = 1; i <= ncol; i++) {
        char k[16];
        snprintf(k, sizeof k, "%s%d", i > 1 ? ", " : "", i);
        bundle_buf_str(&sql, k);
    }
    if (rc == ORCH_OK && (sql.oom || ncol == 0))
        rc = sql.oom ? orch_seterr(err, ORCH_ENOMEM, "export: out of memory")
                     : orch_seterr(err, ORCH_EDB, "export: no table %s", table);
    if (rc == ORCH_OK)
        rc = store_prepare(s, sql.s, 0, &st, err);
    free(sql.s);
    if (rc == ORCH_OK && sqlite3_bind_int64(st, 1, run_id) != SQLITE_OK)
        rc = store_dberr(s, sqlite3_errcode(s->db), "export", err);
    for (int i = 0; rc == ORCH_OK && i < ncol; i++) {
        bundle_buf_str(out, i ? "," : "");
        bundle_buf_str(out, sqlite3_column_name(st, i));
    }
    bundle_buf_str(out, "\n");
    while (rc == ORCH_OK && (src = sqlite3_step(st)) == SQLITE_ROW) {
        for (int i = 0; i < ncol; i++) {
            if (i)
                bundle_buf_str(out, ",");
            switch (sqlite3_column_type(st, i)) {
            case SQLITE_INTEGER: {
                char t[32];
                snprintf(t, sizeof t, "%lld", (long long)sqlite3_column_int64(st, i));
                bundle_buf_str(out, t);
                break;
            }
            case SQLITE_FLOAT:
                add_real(out, sqlite3_column_double(st, i));
                break;
            case SQLITE_TEXT:
                add_quoted(out, (const char *)sqlite3_column_text(st, i),
                           (size_t)sqlite3_column_bytes(st, i));
                break;
            case SQLITE_BLOB: {
                const unsigned char *p = sqlite3_column_blob(st, i);
                int nb = sqlite3_column_bytes(st, i);
                bundle_buf_str(out, "X'");
                for (int k = 0; k < nb; k++) {
                    char h[3];
                    snprintf(h, sizeof h, "%02x", p[k]);
                    bundle_buf_add(out, h, 2);
                }
                bundle_buf_str(out, "'");
                break;
            }
            default:
                break; /* NULL: an empty field */
            }
        }
        bundle_buf_str(out, "\n");
    }
    if (rc == ORCH_OK && src != SQLITE_DONE)
        rc = store_dberr(s, src, "export: reading rows", err);
    sqlite3_finalize(st);
    if (rc == ORCH_OK && out->oom)
        rc = orch_seterr(err, ORCH_ENOMEM, "export: out of memory");
    return rc;
}

/* ----------------------------------------------------------- parsing */

/* Appends one cell to rows (which grows by whole rows). */
static int push_cell(orch_rowset *rows, size_t *n_cells, orch_value v)
{
    size_t need = *n_cells + 1;
    size_t cap_cells = rows->cap_rows * (size_t)rows->n_cols;
    if (need > cap_cells) {
        size_t cap = rows->cap_rows ? rows->cap_rows * 2 : 16;
        orch_value *c = realloc(rows->cells, sizeof *c * cap * (size_t)rows->n_cols);
        if (c == NULL)
            return -1;
        rows->cells = c;
        rows->cap_rows = cap;
    }
    rows->cells[(*n_cells)++] = v;
    return 0;
}

typedef struct field {
    char *text; /* malloc'd, NUL-terminated, unescaped */
    size_t n;
    int quoted;
} field;

/* Reads one field at *p (< end); *p moves past it and its separator; *eol
 * is set when the field ended its line. -1: malformed (*why says so). */
static int read_field(const char **p, const char *end, field *f, int *eol, const char **why)
{
    bundle_buf b = {0};
    const char *q = *p;
    f->quoted = 0;
    if (q < end && *q == '"') {
        f->quoted = 1;
        q++;
        for (;;) {
            if (q >= end) {
                free(b.s);
                *why = "a quoted field is not closed";
                return -1;
            }
            if (*q == '"') {
                if (q + 1 < end && q[1] == '"') {
                    bundle_buf_add(&b, "\"", 1);
                    q += 2;
                    continue;
                }
                q++;
                break;
            }
            bundle_buf_add(&b, q, 1);
            q++;
        }
    } else {
        while (q < end && *q != ',' && *q != '\n') {
            if (*q == '"' || *q == '\r') {
                free(b.s);
                *why = "a quote or carriage return inside an unquoted field";
                return -1;
            }
            bundle_buf_add(&b, q, 1);
            q++;
        }
    }
    if (q < end && *q != ',' && *q != '\n') {
        free(b.s);
        *why = "text after a quoted field";
        return -1;
    }
    *eol = q >= end || *q == '\n';
    if (q < end)
        q++;
    *p = q;
    if (b.oom) {
        free(b.s);
        *why = "out of memory";
        return -1;
    }
    if (b.s == NULL) {
        b.s = strdup("");
        if (b.s == NULL) {
            *why = "out of memory";
            return -1;
        }
    }
    f->text = b.s;
    f->n = b.len;
    return 0;
}

/* The typed value of an unquoted field (not empty). */
static int bare_value(const field *f, orch_value *v)
{
    const char *t = f->text;
    char *e = NULL;
    if (t[0] == 'X' && t[1] == '\'' && f->n >= 3 && t[f->n - 1] == '\'' && (f->n - 3) % 2 == 0) {
        size_t nb = (f->n - 3) / 2;
        unsigned char *blob = malloc(nb + 1);
        if (blob == NULL)
            return -1;
        for (size_t i = 0; i < nb; i++) {
            unsigned x;
            if (sscanf(t + 2 + 2 * i, "%2x", &x) != 1) {
                free(blob);
                return -1;
            }
            blob[i] = (unsigned char)x;
        }
        v->kind = ORCH_VALUE_BLOB;
        v->s = (char *)blob;
        v->n = nb;
        return 0;
    }
    if (strcmp(t, "Inf") == 0 || strcmp(t, "-Inf") == 0) {
        v->kind = ORCH_VALUE_REAL;
        v->r = t[0] == '-' ? -INFINITY : INFINITY;
        return 0;
    }
    int is_int = strpbrk(t, ".eE") == NULL;
    errno = 0;
    if (is_int) {
        long long i = strtoll(t, &e, 10);
        if (*e != '\0' || e == t || errno != 0)
            return -1;
        v->kind = ORCH_VALUE_INT;
        v->i = i;
        return 0;
    }
    double r = strtod(t, &e);
    if (*e != '\0' || e == t || errno == ERANGE || !isfinite(r))
        return -1;
    v->kind = ORCH_VALUE_REAL;
    v->r = r;
    return 0;
}

int bundle_csv_parse(const char *name, const char *text, size_t n, orch_rowset *out, orch_err *err)
{
    memset(out, 0, sizeof *out);
    const char *p = text, *end = text + n, *why = NULL;
    int line = 1, eol = 0;
    size_t n_cells = 0; /* cells pushed, a row not finished included */
    if (n == 0 || text[n - 1] != '\n')
        return orch_seterr(err, ORCH_EINVAL, "%s: malformed CSV: it does not end with a line end",
                           name);
    /* the header: bare column names */
    while (!eol) {
        field f;
        if (read_field(&p, end, &f, &eol, &why) != 0)
            goto bad;
        char **grown = realloc(out->names, sizeof *grown * (size_t)(out->n_cols + 1));
        if (grown == NULL || f.quoted || f.n == 0 || strlen(f.text) != f.n) {
            free(f.text);
            if (grown != NULL)
                out->names = grown;
            why = grown == NULL ? "out of memory" : "a column name must be a bare word";
            goto bad;
        }
        out->names = grown;
        out->names[out->n_cols++] = f.text;
    }
    while (p < end) {
        line++;
        int col = 0;
        eol = 0;
        while (!eol) {
            field f;
            if (read_field(&p, end, &f, &eol, &why) != 0)
                goto bad;
            orch_value v;
            memset(&v, 0, sizeof v);
            int ok = 0;
            if (f.quoted) {
                v.kind = ORCH_VALUE_TEXT;
                v.s = f.text; /* owned by the rowset from here */
                v.n = f.n;
                f.text = NULL;
            } else if (f.n == 0) {
                v.kind = ORCH_VALUE_NULL;
            } else if (bare_value(&f, &v) != 0) {
                ok = -1;
                why = "a bare field that is not a number";
            }
            free(f.text);
            if (ok == 0 && col >= out->n_cols) {
                ok = -1;
                why = "more fields than the header has columns";
            }
            if (ok == 0 && push_cell(out, &n_cells, v) != 0) {
                ok = -1;
                why = "out of memory";
            }
            if (ok != 0) {
                free(v.s);
                goto bad;
            }
            col++;
        }
        if (col != out->n_cols) {
            why = "fewer fields than the header has columns";
            goto bad;
        }
        out->n_rows = n_cells / (size_t)out->n_cols;
    }
    return ORCH_OK;
bad:
    /* the cells of the row not finished: orch_rowset_free frees whole rows */
    for (size_t i = out->n_rows * (size_t)out->n_cols; i < n_cells; i++)
        free(out->cells[i].s);
    orch_rowset_free(out);
    return orch_seterr(err, ORCH_EINVAL, "%s:%d: malformed CSV: %s", name, line,
                       why != NULL ? why : "?");
}
