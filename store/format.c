/*
 * format.c - printing rows of values as an aligned table, as CSV or as
 * JSON: the writer that orch query streams a statement's rows into
 * (rows.c), and that renders rows already read (orch_render_rows). No SQL
 * here.
 *
 * Values keep their SQLite type: INTEGER and REAL print as numbers, TEXT as
 * text, BLOB as lowercase hexadecimal text. A REAL prints as the shortest
 * decimal that reads back to the same double, with a '.' or an exponent so
 * it is visibly a real; +/-Inf as "Infinity"/"-Infinity" (a string in JSON,
 * which has no infinities). NULL is empty in CSV, null in JSON and
 * null_text in a table.
 *
 * The table is for people: it is buffered to align columns, numbers are
 * right-aligned, control characters in text are escaped, and a "(N rows)"
 * line ends it. CSV (RFC 4180) and JSON stream row by row.
 */
#include "store/store_int.h"

#include <jansson.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* ----------------------------------------------------------- values */

char *store_format_real(double v, int digits, char *buf)
{
    if (isnan(v)) {
        strcpy(buf, "NaN");
        return buf;
    }
    if (isinf(v)) {
        strcpy(buf, v > 0 ? "Infinity" : "-Infinity");
        return buf;
    }
    if (digits > 0) {
        snprintf(buf, 32, "%.*g", digits, v);
    } else {
        for (int p = 1; p <= 17; p++) {
            snprintf(buf, 32, "%.*g", p, v);
            if (strtod(buf, NULL) == v)
                break;
        }
    }
    if (strpbrk(buf, ".e") == NULL)
        strcat(buf, ".0");
    return buf;
}

static const char hexdigits[] = "0123456789abcdef";

/* A malloc'd NUL-terminated copy of v as text (see the file comment);
 * NULL for SQL NULL or when out of memory (*oom set). */
static char *cell_text(const orch_value *v, int digits, int *oom)
{
    char num[32];
    const char *src = NULL;
    size_t n = 0;
    char *out = NULL;
    switch (v->kind) {
    case ORCH_VALUE_NULL:
        return NULL;
    case ORCH_VALUE_INT:
        snprintf(num, sizeof num, "%lld", (long long)v->i);
        src = num;
        n = strlen(num);
        break;
    case ORCH_VALUE_REAL:
        src = store_format_real(v->r, digits, num);
        n = strlen(num);
        break;
    case ORCH_VALUE_BLOB: {
        const unsigned char *b = (const unsigned char *)v->s;
        n = v->n;
        out = malloc(2 * n + 1);
        if (out == NULL) {
            *oom = 1;
            return NULL;
        }
        for (size_t j = 0; j < n; j++) {
            out[2 * j] = hexdigits[b[j] >> 4];
            out[2 * j + 1] = hexdigits[b[j] & 15];
        }
        out[2 * n] = '\0';
        return out;
    }
    case ORCH_VALUE_TEXT:
        src = v->s != NULL ? v->s : "";
        n = v->n;
        break;
    }
    if (src != NULL && (out = malloc(n + 1)) != NULL) {
        memcpy(out, src, n);
        out[n] = '\0';
    }
    if (out == NULL)
        *oom = 1;
    return out;
}

/* Aligns as a number: INTEGER, REAL, and the texts the reports use for
 * non-finite reals. */
static int is_number(const orch_value *v)
{
    if (v->kind == ORCH_VALUE_TEXT) {
        const char *s = v->s;
        return s != NULL &&
               (strcmp(s, "NaN") == 0 || strcmp(s, "Infinity") == 0 || strcmp(s, "-Infinity") == 0);
    }
    return v->kind == ORCH_VALUE_INT || v->kind == ORCH_VALUE_REAL;
}

/* ------------------------------------------------------------ table */

/* Display width: code points, with escaped control characters counted as
 * they print. */
static size_t text_width(const char *s)
{
    size_t w = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p < 0x20 || *p == 0x7f)
            w += (*p == '\n' || *p == '\t' || *p == '\r') ? 2 : 4;
        else if ((*p & 0xc0) != 0x80)
            w++;
    }
    return w;
}

static void put_escaped(const char *s, FILE *out)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '\n')
            fputs("\\n", out);
        else if (*p == '\t')
            fputs("\\t", out);
        else if (*p == '\r')
            fputs("\\r", out);
        else if (*p < 0x20 || *p == 0x7f)
            fprintf(out, "\\x%02x", *p);
        else
            fputc(*p, out);
    }
}

static void put_cell(const char *s, size_t width, int right, int last, FILE *out)
{
    size_t w = text_width(s);
    if (right)
        for (size_t i = w; i < width; i++)
            fputc(' ', out);
    put_escaped(s, out);
    if (!right && !last)
        for (size_t i = w; i < width; i++)
            fputc(' ', out);
}

typedef store_table table;

static void table_free(table *t)
{
    for (size_t i = 0; i < t->n_rows * (size_t)t->n_cols; i++)
        free(t->cells[i]);
    free(t->cells);
    free(t->num);
}

static int table_add_row(table *t, const orch_value *vals, int digits)
{
    size_t nc = (size_t)t->n_cols;
    if (t->n_rows == t->cap_rows) {
        size_t cap = t->cap_rows ? 2 * t->cap_rows : 64;
        char **c = realloc(t->cells, cap * nc * sizeof *c);
        if (c == NULL)
            return -1;
        t->cells = c;
        unsigned char *m = realloc(t->num, cap * nc);
        if (m == NULL)
            return -1;
        t->num = m;
        t->cap_rows = cap;
    }
    int oom = 0;
    char **row = t->cells + t->n_rows * nc;
    for (size_t i = 0; i < nc; i++) {
        row[i] = cell_text(&vals[i], digits, &oom);
        t->num[t->n_rows * nc + i] = (unsigned char)is_number(&vals[i]);
    }
    t->n_rows++;
    return oom ? -1 : 0;
}

static void table_print(const table *t, const char *const *names, const char *null_text, FILE *out)
{
    size_t nc = (size_t)t->n_cols;
    size_t *width = calloc(nc ? nc : 1, sizeof *width);
    int *right = calloc(nc ? nc : 1, sizeof *right);
    if (width == NULL || right == NULL)
        goto out;
    for (size_t c = 0; c < nc; c++) {
        width[c] = text_width(names[c]);
        int numbers = 0, others = 0;
        for (size_t r = 0; r < t->n_rows; r++) {
            const char *cell = t->cells[r * nc + c];
            size_t w = text_width(cell != NULL ? cell : null_text);
            if (w > width[c])
                width[c] = w;
            if (cell != NULL && t->num[r * nc + c])
                numbers++;
            else if (cell != NULL)
                others++;
        }
        right[c] = numbers > 0 && others == 0;
    }
    for (size_t c = 0; c < nc; c++) {
        if (c > 0)
            fputs("  ", out);
        put_cell(names[c], width[c], right[c], c + 1 == nc, out);
    }
    fputc('\n', out);
    for (size_t c = 0; c < nc; c++) {
        if (c > 0)
            fputs("  ", out);
        for (size_t i = 0; i < width[c]; i++)
            fputc('-', out);
    }
    fputc('\n', out);
    for (size_t r = 0; r < t->n_rows; r++) {
        for (size_t c = 0; c < nc; c++) {
            const char *cell = t->cells[r * nc + c];
            if (c > 0)
                fputs("  ", out);
            put_cell(cell != NULL ? cell : null_text, width[c], right[c], c + 1 == nc, out);
        }
        fputc('\n', out);
    }
    fprintf(out, "(%zu row%s)\n", t->n_rows, t->n_rows == 1 ? "" : "s");
out:
    free(width);
    free(right);
}

/* -------------------------------------------------------------- CSV */

static void csv_field(const char *s, FILE *out)
{
    if (s == NULL)
        return;
    if (strpbrk(s, ",\"\r\n") == NULL) {
        fputs(s, out);
        return;
    }
    fputc('"', out);
    for (const char *p = s; *p; p++) {
        if (*p == '"')
            fputc('"', out);
        fputc(*p, out);
    }
    fputc('"', out);
}

/* ------------------------------------------------------------- JSON */

/* A copy of s[0..n) that is valid UTF-8: each invalid byte becomes U+FFFD.
 * *len gets the copy's length. NULL when out of memory. */
static char *utf8_clean(const unsigned char *s, size_t n, size_t *len)
{
    char *out = malloc(3 * n + 1);
    size_t o = 0;
    if (out == NULL)
        return NULL;
    for (size_t i = 0; i < n;) {
        unsigned c = s[i];
        size_t k = c < 0x80                 ? 1
                   : c >= 0xc2 && c <= 0xdf ? 2
                   : c >= 0xe0 && c <= 0xef ? 3
                   : c >= 0xf0 && c <= 0xf4 ? 4
                                            : 0;
        int ok = k > 0 && i + k <= n;
        for (size_t j = 1; ok && j < k; j++)
            ok = (s[i + j] & 0xc0) == 0x80;
        if (ok && k == 3) {
            unsigned c1 = s[i + 1];
            ok = !(c == 0xe0 && c1 < 0xa0) && !(c == 0xed && c1 >= 0xa0);
        } else if (ok && k == 4) {
            unsigned c1 = s[i + 1];
            ok = !(c == 0xf0 && c1 < 0x90) && !(c == 0xf4 && c1 >= 0x90);
        }
        if (ok && !(k == 1 && c == 0)) {
            memcpy(out + o, s + i, k);
            o += k;
            i += k;
        } else {
            memcpy(out + o, "\xef\xbf\xbd", 3);
            o += 3;
            i += 1;
        }
    }
    out[o] = '\0';
    *len = o;
    return out;
}

static json_t *json_text(const unsigned char *s, size_t n)
{
    json_t *v = json_stringn((const char *)s, n);
    if (v == NULL) {
        size_t len = 0;
        char *clean = utf8_clean(s, n, &len);
        if (clean != NULL)
            v = json_stringn(clean, len);
        free(clean);
    }
    return v;
}

static json_t *json_cell(const orch_value *v)
{
    switch (v->kind) {
    case ORCH_VALUE_NULL:
        return json_null();
    case ORCH_VALUE_INT:
        return json_integer((json_int_t)v->i);
    case ORCH_VALUE_REAL:
        if (isinf(v->r))
            return json_string(v->r > 0 ? "Infinity" : "-Infinity");
        return json_real(v->r);
    case ORCH_VALUE_BLOB: {
        int oom = 0;
        char *hex = cell_text(v, 0, &oom);
        json_t *j = hex != NULL ? json_string(hex) : NULL;
        free(hex);
        return j;
    }
    case ORCH_VALUE_TEXT:
        return json_text((const unsigned char *)(v->s != NULL ? v->s : ""), v->n);
    }
    return NULL;
}

/* Prints a real with the fewest digits that read back exactly. */
static int json_put_real(json_t *v, FILE *out)
{
    double d = json_real_value(v);
    int p = 17;
    char buf[32];
    for (int q = 1; q <= 17; q++) {
        snprintf(buf, sizeof buf, "%.*g", q, d);
        if (strtod(buf, NULL) == d) {
            p = q;
            break;
        }
    }
    return json_dumpf(v, out, JSON_ENCODE_ANY | JSON_REAL_PRECISION(p));
}

static void json_newline(int indent, int depth, FILE *out)
{
    if (indent < 0)
        return;
    fputc('\n', out);
    for (int i = 0; i < indent * depth; i++)
        fputc(' ', out);
}

int store_json_print(json_t *v, int indent, int depth, FILE *out)
{
    int rc = 0;
    if (json_is_object(v)) {
        const char *key;
        json_t *item;
        int first = 1;
        if (json_object_size(v) == 0)
            return fputs("{}", out) < 0 ? -1 : 0;
        fputc('{', out);
        json_object_foreach(v, key, item)
        {
            if (!first)
                fputs(indent < 0 ? ", " : ",", out);
            first = 0;
            json_newline(indent, depth + 1, out);
            json_t *k = json_text((const unsigned char *)key, strlen(key));
            rc |= k != NULL ? json_dumpf(k, out, JSON_ENCODE_ANY) : -1;
            json_decref(k);
            fputs(": ", out);
            rc |= store_json_print(item, indent, depth + 1, out);
        }
        json_newline(indent, depth, out);
        fputc('}', out);
    } else if (json_is_array(v)) {
        size_t i;
        json_t *item;
        if (json_array_size(v) == 0)
            return fputs("[]", out) < 0 ? -1 : 0;
        fputc('[', out);
        json_array_foreach(v, i, item)
        {
            if (i > 0)
                fputs(indent < 0 ? ", " : ",", out);
            json_newline(indent, depth + 1, out);
            rc |= store_json_print(item, indent, depth + 1, out);
        }
        json_newline(indent, depth, out);
        fputc(']', out);
    } else if (json_is_real(v)) {
        rc = json_put_real(v, out);
    } else {
        rc = json_dumpf(v, out, JSON_ENCODE_ANY);
    }
    return rc == 0 ? 0 : -1;
}

static int json_row(const char *const *names, const orch_value *vals, int n_cols, FILE *out)
{
    json_t *row = json_object();
    int rc = row != NULL ? 0 : -1;
    for (int i = 0; i < n_cols && rc == 0; i++) {
        json_t *v = json_cell(&vals[i]);
        if (v == NULL || names[i] == NULL || json_object_set_new(row, names[i], v) != 0)
            rc = -1;
    }
    if (rc == 0)
        rc = store_json_print(row, -1, 1, out);
    json_decref(row);
    return rc;
}

/* ------------------------------------------------------------ writer */

int store_writer_begin(store_writer *w, orch_format format, const orch_render_opts *opts,
                       int n_cols, const char *const *names, FILE *out)
{
    static const orch_render_opts exact = {0, "NULL"};
    memset(w, 0, sizeof *w);
    w->format = format;
    w->opts = opts != NULL ? opts : &exact;
    w->n_cols = n_cols;
    w->names = names;
    w->out = out;
    w->t.n_cols = n_cols;
    if (format == ORCH_FMT_CSV) {
        for (int i = 0; i < n_cols; i++) {
            if (i > 0)
                fputc(',', out);
            csv_field(names[i], out);
        }
        fputs("\r\n", out);
    } else if (format == ORCH_FMT_JSON) {
        fputc('[', out);
    }
    return ORCH_OK;
}

int store_writer_row(store_writer *w, const orch_value *vals, orch_err *err)
{
    FILE *out = w->out;
    if (w->format == ORCH_FMT_TABLE) {
        if (table_add_row(&w->t, vals, w->opts->real_digits) != 0)
            return orch_seterr(err, ORCH_ENOMEM, "query: out of memory holding the rows");
    } else if (w->format == ORCH_FMT_CSV) {
        int oom = 0;
        for (int i = 0; i < w->n_cols; i++) {
            char *cell = cell_text(&vals[i], 0, &oom);
            if (i > 0)
                fputc(',', out);
            csv_field(cell, out);
            free(cell);
        }
        fputs("\r\n", out);
        if (oom)
            return orch_seterr(err, ORCH_ENOMEM, "query: out of memory");
    } else {
        fputs(w->n == 0 ? "\n  " : ",\n  ", out);
        if (json_row(w->names, vals, w->n_cols, out) != 0)
            return orch_seterr(err, ORCH_EIO, "query: writing a JSON row failed");
    }
    w->n++;
    return ORCH_OK;
}

int store_writer_end(store_writer *w, orch_err *err)
{
    int rc = ORCH_OK;
    if (w->format == ORCH_FMT_TABLE)
        table_print(&w->t, w->names, w->opts->null_text, w->out);
    else if (w->format == ORCH_FMT_JSON)
        fputs(w->n == 0 ? "]\n" : "\n]\n", w->out);
    if (fflush(w->out) != 0 || ferror(w->out))
        rc = orch_seterr(err, ORCH_EIO, "query: writing the output failed");
    store_writer_free(w);
    return rc;
}

void store_writer_free(store_writer *w)
{
    table_free(&w->t);
    memset(&w->t, 0, sizeof w->t);
}

int orch_render_rows(const orch_rowset *rows, orch_format format, const orch_render_opts *opts,
                     FILE *out, orch_err *err)
{
    store_writer w;
    if (format != ORCH_FMT_TABLE && format != ORCH_FMT_CSV && format != ORCH_FMT_JSON)
        return orch_seterr(err, ORCH_EINVAL, "unknown output format %d", (int)format);
    int rc =
        store_writer_begin(&w, format, opts, rows->n_cols, (const char *const *)rows->names, out);
    for (size_t r = 0; r < rows->n_rows && rc == ORCH_OK; r++)
        rc = store_writer_row(&w, rows->cells + r * (size_t)rows->n_cols, err);
    if (rc != ORCH_OK) {
        store_writer_free(&w);
        return rc;
    }
    return store_writer_end(&w, err);
}
