/*
 * format.c - printing the rows of a statement as an aligned table, as CSV
 * or as JSON.
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

/* A malloc'd NUL-terminated copy of column i as text (see the file comment);
 * NULL for SQL NULL or when out of memory (*oom set). */
static char *cell_text(sqlite3_stmt *st, int i, int digits, int *oom)
{
    char num[32];
    const char *src = NULL;
    size_t n = 0;
    char *out = NULL;
    switch (sqlite3_column_type(st, i)) {
    case SQLITE_NULL:
        return NULL;
    case SQLITE_INTEGER:
        snprintf(num, sizeof num, "%lld", (long long)sqlite3_column_int64(st, i));
        src = num;
        n = strlen(num);
        break;
    case SQLITE_FLOAT:
        src = store_format_real(sqlite3_column_double(st, i), digits, num);
        n = strlen(num);
        break;
    case SQLITE_BLOB: {
        const unsigned char *b = sqlite3_column_blob(st, i);
        n = (size_t)sqlite3_column_bytes(st, i);
        out = malloc(2 * n + 1);
        if (out == NULL)
            break;
        for (size_t j = 0; j < n; j++) {
            out[2 * j] = hexdigits[b[j] >> 4];
            out[2 * j + 1] = hexdigits[b[j] & 15];
        }
        out[2 * n] = '\0';
        return out;
    }
    default:
        src = (const char *)sqlite3_column_text(st, i);
        n = (size_t)sqlite3_column_bytes(st, i);
        if (src == NULL) {
            *oom = 1;
            return NULL;
        }
        break;
    }
    if (out == NULL && src != NULL && (out = malloc(n + 1)) != NULL) {
        memcpy(out, src, n);
        out[n] = '\0';
    }
    if (out == NULL)
        *oom = 1;
    return out;
}

/* Aligns as a number: INTEGER, REAL, and the texts the reports use for
 * non-finite reals. */
static int is_number(sqlite3_stmt *st, int i)
{
    int t = sqlite3_column_type(st, i);
    if (t == SQLITE_TEXT) {
        const char *s = (const char *)sqlite3_column_text(st, i);
        return s != NULL &&
               (strcmp(s, "NaN") == 0 || strcmp(s, "Infinity") == 0 || strcmp(s, "-Infinity") == 0);
    }
    return t == SQLITE_INTEGER || t == SQLITE_FLOAT;
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

typedef struct table {
    int n_cols;
    size_t n_rows, cap_rows;
    char **cells;       /* n_rows * n_cols, NULL = SQL NULL */
    unsigned char *num; /* n_rows * n_cols: right-align */
} table;

static void table_free(table *t)
{
    for (size_t i = 0; i < t->n_rows * (size_t)t->n_cols; i++)
        free(t->cells[i]);
    free(t->cells);
    free(t->num);
}

static int table_add_row(table *t, sqlite3_stmt *st, int digits)
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
        row[i] = cell_text(st, (int)i, digits, &oom);
        t->num[t->n_rows * nc + i] = (unsigned char)is_number(st, (int)i);
    }
    t->n_rows++;
    return oom ? -1 : 0;
}

static void table_print(const table *t, sqlite3_stmt *st, const char *null_text, FILE *out)
{
    size_t nc = (size_t)t->n_cols;
    size_t *width = calloc(nc ? nc : 1, sizeof *width);
    int *right = calloc(nc ? nc : 1, sizeof *right);
    if (width == NULL || right == NULL)
        goto out;
    for (size_t c = 0; c < nc; c++) {
        width[c] = text_width(sqlite3_column_name(st, (int)c));
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
        put_cell(sqlite3_column_name(st, (int)c), width[c], right[c], c + 1 == nc, out);
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

static json_t *json_cell(sqlite3_stmt *st, int i)
{
    switch (sqlite3_column_type(st, i)) {
    case SQLITE_NULL:
        return json_null();
    case SQLITE_INTEGER:
        return json_integer((json_int_t)sqlite3_column_int64(st, i));
    case SQLITE_FLOAT: {
        double v = sqlite3_column_double(st, i);
        if (isinf(v))
            return json_string(v > 0 ? "Infinity" : "-Infinity");
        return json_real(v);
    }
    case SQLITE_BLOB: {
        int oom = 0;
        char *hex = cell_text(st, i, 0, &oom);
        json_t *v = hex != NULL ? json_string(hex) : NULL;
        free(hex);
        return v;
    }
    default: {
        const unsigned char *s = sqlite3_column_text(st, i);
        return s != NULL ? json_text(s, (size_t)sqlite3_column_bytes(st, i)) : NULL;
    }
    }
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

static int json_row(sqlite3_stmt *st, int n_cols, FILE *out)
{
    json_t *row = json_object();
    int rc = row != NULL ? 0 : -1;
    for (int i = 0; i < n_cols && rc == 0; i++) {
        json_t *v = json_cell(st, i);
        const char *name = sqlite3_column_name(st, i);
        if (v == NULL || name == NULL || json_object_set_new(row, name, v) != 0)
            rc = -1;
    }
    if (rc == 0)
        rc = store_json_print(row, -1, 1, out);
    json_decref(row);
    return rc;
}

/* ------------------------------------------------------------ driver */

int store_print_rows(orch_store *s, sqlite3_stmt *st, orch_format format,
                     const store_print_opts *opts, FILE *out, orch_err *err)
{
    static const store_print_opts exact = {0, "NULL"};
    table t = {0};
    int n_cols = sqlite3_column_count(st);
    int rc = ORCH_OK;
    int src;
    size_t n = 0;
    if (opts == NULL)
        opts = &exact;
    t.n_cols = n_cols;
    if (format == ORCH_FMT_CSV) {
        for (int i = 0; i < n_cols; i++) {
            if (i > 0)
                fputc(',', out);
            csv_field(sqlite3_column_name(st, i), out);
        }
        fputs("\r\n", out);
    } else if (format == ORCH_FMT_JSON) {
        fputc('[', out);
    }
    while ((src = sqlite3_step(st)) == SQLITE_ROW) {
        if (format == ORCH_FMT_TABLE) {
            if (table_add_row(&t, st, opts->real_digits) != 0) {
                rc = orch_seterr(err, ORCH_ENOMEM, "query: out of memory holding the rows");
                goto out;
            }
        } else if (format == ORCH_FMT_CSV) {
            int oom = 0;
            for (int i = 0; i < n_cols; i++) {
                char *cell = cell_text(st, i, 0, &oom);
                if (i > 0)
                    fputc(',', out);
                csv_field(cell, out);
                free(cell);
            }
            fputs("\r\n", out);
            if (oom) {
                rc = orch_seterr(err, ORCH_ENOMEM, "query: out of memory");
                goto out;
            }
        } else {
            fputs(n == 0 ? "\n  " : ",\n  ", out);
            if (json_row(st, n_cols, out) != 0) {
                rc = orch_seterr(err, ORCH_EIO, "query: writing a JSON row failed");
                goto out;
            }
        }
        n++;
    }
    if (src != SQLITE_DONE) {
        rc = store_dberr(s, src, "query", err);
        goto out;
    }
    if (format == ORCH_FMT_TABLE)
        table_print(&t, st, opts->null_text, out);
    else if (format == ORCH_FMT_JSON)
        fputs(n == 0 ? "]\n" : "\n]\n", out);
    if (fflush(out) != 0 || ferror(out))
        rc = orch_seterr(err, ORCH_EIO, "query: writing the output failed");
out:
    table_free(&t);
    sqlite3_reset(st);
    return rc;
}
