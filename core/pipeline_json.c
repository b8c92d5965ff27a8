/* pipeline_json.c - JSON form and config hash of a pipeline; see pipeline_json.h. */
#include "core/pipeline_json.h"

#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "core/err.h"
#include "core/pipeline_fields.h"

/* ---------------------------------------------------------------- reals */
/* ---------------------------------------------------------------- reals */

static int round_trips(double x, int digits)
{
    char buf[64];
    snprintf(buf, sizeof buf, "%.*g", digits, x);
    return strtod(buf, NULL) == x;
}

/* 1 if every real field of p prints exactly with digits. */
static int all_round_trip(const orch_pipeline *p, int digits)
{
    for (size_t i = 0; i < orch_fields_count; i++) {
        const orch_field *f = &orch_fields[i];
        const double *x = orch_field_cptr(f, p);
        if (f->type == ORCH_FIELD_REAL && !round_trips(x[0], digits))
            return 0;
        if (f->type == ORCH_FIELD_REAL_PAIR &&
            !(round_trips(x[0], digits) && round_trips(x[1], digits)))
            return 0;
    }
    return 1;
}

/* The fewest of 15..17 significant digits that print every real of p
 * exactly. */
static int real_precision(const orch_pipeline *p)
{
    for (int digits = 15; digits < 17; digits++)
        if (all_round_trip(p, digits))
            return digits;
    return 17;
}

/* ---------------------------------------------------------------- build */

/* Sets obj[key] = value (stolen); records a failure in *bad. */
static void put(json_t *obj, const char *key, json_t *value, int *bad)
{
    if (obj == NULL || value == NULL || json_object_set_new(obj, key, value) != 0)
        *bad = 1;
}

static void push(json_t *arr, json_t *value, int *bad)
{
    if (arr == NULL || value == NULL || json_array_append_new(arr, value) != 0)
        *bad = 1;
}

static int int_at(const void *at)
{
    int v;
    memcpy(&v, at, sizeof v);
    return v;
}

/* The value of field f of p (not a section), a new reference. */
static json_t *value_json(const orch_field *f, const orch_pipeline *p, int *bad)
{
    const void *at = orch_field_cptr(f, p);
    int count = f->count_offset ? int_at((const char *)p + f->count_offset) : 0;
    json_t *arr = NULL;
    switch (f->type) {
    case ORCH_FIELD_INT:
    case ORCH_FIELD_BOOL:
        return f->type == ORCH_FIELD_INT ? json_integer(int_at(at)) : json_boolean(int_at(at));
    case ORCH_FIELD_U64:
        return json_integer((json_int_t) * (const uint64_t *)at);
    case ORCH_FIELD_REAL:
        return json_real(*(const double *)at);
    case ORCH_FIELD_ENUM: {
        int v = int_at(at);
        ORCH_ASSERT(v >= 0 && (size_t)v < f->n_names);
        return json_string(f->names[v]);
    }
    case ORCH_FIELD_STRING:
    case ORCH_FIELD_FILE:
        return json_string(at);
    case ORCH_FIELD_INT_LIST:
        arr = json_array();
        for (int i = 0; i < count; i++)
            push(arr, json_integer(((const int *)at)[i]), bad);
        return arr;
    case ORCH_FIELD_STRING_LIST:
        arr = json_array();
        for (int i = 0; i < count; i++)
            push(arr, json_string((const char *)at + (size_t)i * ORCH_NAME_MAX), bad);
        return arr;
    case ORCH_FIELD_FILE_LIST:
        arr = json_array();
        for (int i = 0; i < count; i++)
            push(arr, json_string((const char *)at + (size_t)i * ORCH_PATH_MAX), bad);
        return arr;
    case ORCH_FIELD_INT_PAIR:
        arr = json_array();
        push(arr, json_integer(((const int *)at)[0]), bad);
        push(arr, json_integer(((const int *)at)[1]), bad);
        return arr;
    case ORCH_FIELD_REAL_PAIR:
        arr = json_array();
        push(arr, json_real(((const double *)at)[0]), bad);
        push(arr, json_real(((const double *)at)[1]), bad);
        return arr;
    case ORCH_FIELD_GRIDS:
        arr = json_array();
        for (int i = 0; i < count; i++) {
            const int64_t *g = (const int64_t *)at + 3 * i;
            json_t *row = json_array();
            for (int k = 0; k < 3; k++)
                push(row, json_integer((json_int_t)g[k]), bad);
            push(arr, row, bad);
        }
        return arr;
    case ORCH_FIELD_SECTION:
    case ORCH_FIELD_OPTIONAL:
    case ORCH_FIELD__COUNT:
        break;
    }
    ORCH_UNREACHABLE();
}

static json_t *section_json(const orch_pipeline *p, const char *section, int with_meta, int *bad);

/* The object of a section with the rows of another (eval.data): written by
 * those rows, through a view of p. */
static json_t *view_json(const orch_field *f, const orch_pipeline *p, int with_meta, int *bad)
{
    orch_pipeline *view = malloc(sizeof *view); /* large: off the stack; freed below */
    if (view == NULL) {
        *bad = 1;
        return NULL;
    }
    orch_field_view(f, p, view);
    json_t *v = section_json(view, f->same_as, with_meta, bad);
    free(view);
    return v;
}

/* The object of the fields directly inside section ("" = the top level). */
static json_t *section_json(const orch_pipeline *p, const char *section, int with_meta, int *bad)
{
    json_t *o = json_object();
    for (size_t i = 0; i < orch_fields_count; i++) {
        const orch_field *f = &orch_fields[i];
        if (!orch_field_in(f, section) || (f->in_json != NULL && !f->in_json(p)) ||
            ((f->flags & ORCH_FIELDF_META) && !with_meta))
            continue;
        json_t *v;
        if (f->same_as != NULL)
            v = view_json(f, p, with_meta, bad);
        else if (f->type == ORCH_FIELD_SECTION)
            v = section_json(p, f->path, with_meta, bad);
        else if (f->type == ORCH_FIELD_OPTIONAL)
            v = int_at(orch_field_cptr(f, p)) ? section_json(p, f->path, with_meta, bad)
                                              : json_null();
        else
            v = value_json(f, p, bad);
        put(o, orch_field_key(f), v, bad);
    }
    return o;
}

/* The configuration; with_meta adds path, name and tags. */
static json_t *build(const orch_pipeline *p, int with_meta)
{
    int bad = 0;
    json_t *root = section_json(p, "", with_meta, &bad);
    if (bad) {
        json_decref(root);
        return NULL;
    }
    return root;
}
static char *dump(json_t *root, const orch_pipeline *p, int pretty)
{
    size_t flags = JSON_SORT_KEYS | JSON_REAL_PRECISION(real_precision(p));
    flags |= pretty ? JSON_INDENT(2) : JSON_COMPACT;
    return json_dumps(root, flags);
}

char *orch_pipeline_config_json(const orch_pipeline *p)
{
    json_t *root = build(p, 0);
    if (root == NULL)
        return NULL;
    char *text = dump(root, p, 0);
    json_decref(root);
    return text;
}

int orch_pipeline_hash(const orch_pipeline *p, char hex[65])
{
    hex[0] = '\0';
    char *text = orch_pipeline_config_json(p);
    if (text == NULL)
        return ORCH_ENOMEM;
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    int ok = EVP_Digest(text, strlen(text), md, &len, EVP_sha256(), NULL);
    free(text);
    if (!ok || len != 32)
        return ORCH_ENOMEM;
    for (unsigned int i = 0; i < len; i++)
        snprintf(hex + 2 * i, 3, "%02x", md[i]);
    return ORCH_OK;
}

char *orch_pipeline_to_json(const orch_pipeline *p, int pretty)
{
    char hex[65];
    if (orch_pipeline_hash(p, hex) != ORCH_OK)
        return NULL;
    json_t *root = build(p, 1);
    if (root == NULL)
        return NULL;
    char *text = NULL;
    if (json_object_set_new(root, "config_hash", json_string(hex)) == 0)
        text = dump(root, p, pretty);
    json_decref(root);
    return text;
}

/* ---------------------------------------------------------------- parse */

/* The reader's state: the first error sticks, and every reader is a no-op
 * once one is recorded, so the section readers need no error plumbing. */
typedef struct rd {
    orch_err *err;
    int failed;
} rd;

#define PATH_LEN 96 /* "checks.inject.tensor", "data.image_grid_thw[63][2]" */

static void fail(rd *r, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Records "config_json: PATH: problem" unless an error is recorded. */
static void fail(rd *r, const char *path, const char *fmt, ...)
{
    if (r->failed)
        return;
    char msg[ORCH_ERR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    r->failed = 1;
    orch_seterr(r->err, ORCH_EINVAL, "config_json: %s: %s", path, msg);
}

/* Writes "parent.key" (or "key" for the root) into out[PATH_LEN]; key is
 * shown with control bytes as '?' and cut at 40 bytes, so a stray key keeps
 * the message on one line. */
static void join(char out[PATH_LEN], const char *parent, const char *key)
{
    char shown[48];
    size_t k = 0;
    for (; key[k] != '\0' && k < 40; k++)
        shown[k] = ((unsigned char)key[k] < 32 || key[k] == 127) ? '?' : key[k];
    shown[k] = '\0';
    snprintf(out, PATH_LEN, "%s%s%s%s", parent, parent[0] ? "." : "", shown,
             key[k] != '\0' ? "..." : "");
}

/* Writes "parent[i]" into out[PATH_LEN]; parents are at most 70 bytes
 * (the longest path is "data.image_grid_thw[63][2]"). */
static void item(char out[PATH_LEN], const char *parent, size_t i)
{
    snprintf(out, PATH_LEN, "%.70s[%zu]", parent, i);
}

static const char *type_name(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        return "object";
    case JSON_ARRAY:
        return "array";
    case JSON_STRING:
        return "string";
    case JSON_INTEGER:
        return "integer";
    case JSON_REAL:
        return "real";
    case JSON_TRUE:
    case JSON_FALSE:
        return "boolean";
    case JSON_NULL:
        return "null";
    }
    return "?";
}

/* 1 if v has type want, JSON_TRUE standing for either boolean; else records
 * "missing" (v NULL) or "expected WHAT, got TYPE". */
static int expect(rd *r, const json_t *v, const char *path, int want, const char *what)
{
    if (r->failed)
        return 0;
    if (v == NULL) {
        fail(r, path, "missing");
        return 0;
    }
    int ok = want == JSON_TRUE ? json_is_boolean(v) : json_typeof(v) == (json_type)want;
    if (!ok)
        fail(r, path, "expected %s, got %s", what, type_name(v));
    return ok;
}

static long long int_value(rd *r, const json_t *v, const char *path, long long lo, long long hi)
{
    if (!expect(r, v, path, JSON_INTEGER, "an integer"))
        return 0;
    long long x = json_integer_value(v);
    if (x < lo || x > hi) {
        fail(r, path, "%lld is out of range (%lld .. %lld)", x, lo, hi);
        return 0;
    }
    return x;
}

/* A non-negative int: every int of the pipeline is a size, count or index. */
static int nat_value(rd *r, const json_t *v, const char *path)
{
    return (int)int_value(r, v, path, 0, INT_MAX);
}

static double real_value(rd *r, const json_t *v, const char *path)
{
    if (!expect(r, v, path, JSON_REAL, "a real number"))
        return 0;
    return json_real_value(v);
}

static int bool_value(rd *r, const json_t *v, const char *path)
{
    if (!expect(r, v, path, JSON_TRUE, "true or false"))
        return 0;
    return json_is_true(v);
}

/* Copies the string at v into out[n] (zero-padded: out was zeroed). */
static void str_value(rd *r, const json_t *v, const char *path, char *out, size_t n)
{
    if (!expect(r, v, path, JSON_STRING, "a string"))
        return;
    size_t len = json_string_length(v);
    const char *s = json_string_value(v);
    if (memchr(s, '\0', len) != NULL)
        fail(r, path, "contains a NUL byte");
    else if (len >= n)
        fail(r, path, "too long (%zu bytes; at most %zu)", len, n - 1);
    else
        memcpy(out, s, len + 1);
}

/* The index of the string at v in names[0..n-1]. */
static int enum_value(rd *r, const json_t *v, const char *path, const char *const *names, size_t n)
{
    if (!expect(r, v, path, JSON_STRING, "a string"))
        return 0;
    const char *s = json_string_value(v);
    for (size_t i = 0; i < n; i++)
        if (strcmp(s, names[i]) == 0)
            return (int)i;
    char list[256] = "";
    size_t len = 0;
    for (size_t i = 0; i < n && len < sizeof list; i++)
        len += (size_t)snprintf(list + len, sizeof list - len, "%s%s", i ? ", " : "", names[i]);
    char key[PATH_LEN];
    join(key, "", s); /* the value, shown safely */
    fail(r, path, "'%s' is not one of %s", key, list);
    return 0;
}

/* The size of the array at v, which must be at most max entries (exactly
 * max when exact). */
static size_t array_value(rd *r, const json_t *v, const char *path, size_t max, int exact)
{
    if (!expect(r, v, path, JSON_ARRAY, "an array"))
        return 0;
    size_t n = json_array_size(v);
    if (exact && n != max) {
        fail(r, path, "expected %zu entries, got %zu", max, n);
        return 0;
    }
    if (n > max) {
        fail(r, path, "%zu entries; at most %zu", n, max);
        return 0;
    }
    return n;
}

/* ------------------------------------------------------------ fields */

/* Reads the value v of field f (not a section), named path, into p. */
static void read_value(rd *r, const orch_field *f, json_t *v, const char *path, orch_pipeline *p)
{
    void *at = orch_field_ptr(f, p);
    char sub[PATH_LEN], row_path[PATH_LEN];
    size_t n = 0;
    int iv;
    if (f->given_offset != 0) { /* present: given (data.has_seed) */
        iv = 1;
        memcpy((char *)p + f->given_offset, &iv, sizeof iv);
    }
    switch (f->type) {
    case ORCH_FIELD_INT:
        iv = nat_value(r, v, path);
        memcpy(at, &iv, sizeof iv);
        return;
    case ORCH_FIELD_BOOL:
        iv = bool_value(r, v, path);
        memcpy(at, &iv, sizeof iv);
        return;
    case ORCH_FIELD_ENUM:
        iv = enum_value(r, v, path, f->names, f->n_names);
        memcpy(at, &iv, sizeof iv);
        return;
    case ORCH_FIELD_U64:
        *(uint64_t *)at = (uint64_t)int_value(r, v, path, 0, INT64_MAX);
        return;
    case ORCH_FIELD_REAL:
        *(double *)at = real_value(r, v, path);
        return;
    case ORCH_FIELD_STRING:
    case ORCH_FIELD_FILE:
        str_value(r, v, path, at, f->size);
        return;
    case ORCH_FIELD_INT_LIST:
        n = array_value(r, v, path, f->size, 0);
        for (size_t i = 0; i < n; i++) {
            item(sub, path, i);
            ((int *)at)[i] = nat_value(r, json_array_get(v, i), sub);
        }
        break;
    case ORCH_FIELD_STRING_LIST:
        n = array_value(r, v, path, f->size, 0);
        for (size_t i = 0; i < n; i++) {
            item(sub, path, i);
            str_value(r, json_array_get(v, i), sub, (char *)at + i * ORCH_NAME_MAX, ORCH_NAME_MAX);
        }
        break;
    case ORCH_FIELD_FILE_LIST:
        n = array_value(r, v, path, f->size, 0);
        for (size_t i = 0; i < n; i++) {
            item(sub, path, i);
            str_value(r, json_array_get(v, i), sub, (char *)at + i * ORCH_PATH_MAX, ORCH_PATH_MAX);
        }
        break;
    case ORCH_FIELD_INT_PAIR:
        array_value(r, v, path, 2, 1);
        for (size_t i = 0; i < 2; i++) {
            item(sub, path, i);
            ((int *)at)[i] = nat_value(r, json_array_get(v, i), sub);
        }
        return;
    case ORCH_FIELD_REAL_PAIR:
        array_value(r, v, path, 2, 1);
        for (size_t i = 0; i < 2; i++) {
            item(sub, path, i);
            ((double *)at)[i] = real_value(r, json_array_get(v, i), sub);
        }
        return;
    case ORCH_FIELD_GRIDS:
        n = array_value(r, v, path, f->size, 0);
        for (size_t i = 0; i < n; i++) {
            item(row_path, path, i);
            json_t *row = json_array_get(v, i);
            array_value(r, row, row_path, 3, 1);
            for (size_t k = 0; k < 3 && !r->failed; k++) {
                item(sub, row_path, k);
                ((int64_t *)at)[3 * i + k] =
                    (int64_t)int_value(r, json_array_get(row, k), sub, 0, INT64_MAX);
            }
        }
        break;
    case ORCH_FIELD_SECTION:
    case ORCH_FIELD_OPTIONAL:
    case ORCH_FIELD__COUNT:
        ORCH_UNREACHABLE();
    }
    iv = (int)n; /* the lists' count */
    memcpy((char *)p + f->count_offset, &iv, sizeof iv);
}

/* An ORCH_FIELDF_SPARSE field (schedule.grad_accum when not 1, parallel
 * when data > 1, checks.inject.rank when set, the fields of issue 12):
 * written only when its predicate holds; read when present, its default
 * when absent, as the JSON of other configurations (and of older orch) has
 * it. A sparse field of another kind than its section's (data.shuffle of
 * shards in a folder of images) is neither. */
static int is_sparse(const orch_field *f)
{
    return (f->flags & ORCH_FIELDF_SPARSE) && f->in_json != NULL;
}

/* Sets the sparse field f, absent from the JSON, to its default: the INT
 * or BOOL def of the table; every other default is zero, as p already is;
 * an absent section's fields take theirs. */
static void sparse_default(const orch_field *f, orch_pipeline *p)
{
    if (f->type == ORCH_FIELD_SECTION) {
        for (size_t i = 0; i < orch_fields_count; i++)
            if (orch_field_in(&orch_fields[i], f->path) && is_sparse(&orch_fields[i]) &&
                orch_field_applies(&orch_fields[i], p))
                sparse_default(&orch_fields[i], p);
        return;
    }
    if ((f->type != ORCH_FIELD_INT && f->type != ORCH_FIELD_BOOL) || f->def == NULL)
        return;
    int def = f->type == ORCH_FIELD_BOOL ? strcmp(f->def, "true") == 0 : atoi(f->def);
    memcpy(orch_field_ptr(f, p), &def, sizeof def);
}

/* 1 if key is written for the fields of section as read so far, or is one
 * of extra[0..n_extra-1]. */
static int known_key(const orch_pipeline *p, const char *section, const char *key,
                     const char *const *extra, size_t n_extra)
{
    for (size_t i = 0; i < n_extra; i++)
        if (strcmp(key, extra[i]) == 0)
            return 1;
    for (size_t i = 0; i < orch_fields_count; i++) {
        const orch_field *f = &orch_fields[i];
        if (orch_field_in(f, section) &&
            (f->in_json == NULL || f->in_json(p) || (is_sparse(f) && orch_field_applies(f, p))) &&
            strcmp(orch_field_key(f), key) == 0)
            return 1;
    }
    return 0;
}

static void read_section(rd *r, json_t *o, const char *section, const char *at, orch_pipeline *p,
                         const char *const *extra, size_t n_extra);

/* Reads the object o of a section with the rows of another (eval.data),
 * named at, through a view of p. */
static void read_view(rd *r, json_t *o, const orch_field *f, const char *at, orch_pipeline *p)
{
    orch_pipeline *view = malloc(sizeof *view); /* large: off the stack; freed below */
    if (view == NULL) {
        fail(r, at, "out of memory");
        return;
    }
    orch_field_view(f, p, view);
    read_section(r, o, f->same_as, at, view, NULL, 0);
    orch_field_view_back(f, view, p);
    free(view);
}

/* Reads the object o (checked to be one) of the fields directly inside
 * section, named at in messages: its kinds first (they decide which keys
 * belong), then exactly the keys orch writes (an unknown key is reported
 * before a missing one), then the fields in table order. */
static void read_section(rd *r, json_t *o, const char *section, const char *at, orch_pipeline *p,
                         const char *const *extra, size_t n_extra)
{
    char path[PATH_LEN];
    for (size_t i = 0; i < orch_fields_count; i++) {
        const orch_field *f = &orch_fields[i];
        if (orch_field_in(f, section) && (f->flags & ORCH_FIELDF_KIND)) {
            join(path, at, orch_field_key(f));
            read_value(r, f, json_object_get(o, orch_field_key(f)), path, p);
        }
    }
    const char *key;
    json_t *value;
    json_object_foreach(o, key, value)
    {
        if (!known_key(p, section, key, extra, n_extra)) {
            join(path, at, key);
            fail(r, path, "unknown key");
            return;
        }
    }
    for (size_t i = 0; i < orch_fields_count; i++) {
        const orch_field *f = &orch_fields[i];
        if (orch_field_in(f, section) && (f->in_json == NULL || f->in_json(p)) && !is_sparse(f) &&
            json_object_get(o, orch_field_key(f)) == NULL) {
            join(path, at, orch_field_key(f));
            fail(r, path, "missing");
            return;
        }
    }
    for (size_t i = 0; i < n_extra; i++)
        if (json_object_get(o, extra[i]) == NULL) {
            join(path, at, extra[i]);
            fail(r, path, "missing");
            return;
        }
    for (size_t i = 0; i < orch_fields_count && !r->failed; i++) {
        const orch_field *f = &orch_fields[i];
        if (!orch_field_in(f, section) || (f->flags & ORCH_FIELDF_KIND) ||
            (f->in_json != NULL && !f->in_json(p) && !is_sparse(f)) ||
            (is_sparse(f) && !orch_field_applies(f, p)))
            continue;
        json_t *v = json_object_get(o, orch_field_key(f));
        if (v == NULL && is_sparse(f)) {
            sparse_default(f, p);
            continue;
        }
        join(path, at, orch_field_key(f));
        if (f->type == ORCH_FIELD_OPTIONAL && json_is_null(v))
            continue; /* the flag stays 0, the fields zero */
        if (f->type == ORCH_FIELD_SECTION || f->type == ORCH_FIELD_OPTIONAL) {
            if (!expect(r, v, path, JSON_OBJECT, "an object"))
                return;
            if (f->type == ORCH_FIELD_OPTIONAL) {
                int on = 1;
                memcpy(orch_field_ptr(f, p), &on, sizeof on);
            }
            if (f->same_as != NULL)
                read_view(r, v, f, path, p);
            else
                read_section(r, v, f->path, path, p, NULL, 0);
        } else {
            read_value(r, f, v, path, p);
        }
    }
}

/* The whole document; the hash check is left to the caller. */
static void read_root(rd *r, json_t *root, orch_pipeline *p, char hash[65])
{
    static const char *const extra[] = {"config_hash"};
    if (!json_is_object(root)) {
        fail(r, "(top level)", "expected an object, got %s", type_name(root));
        return;
    }
    read_section(r, root, "", "", p, extra, 1);
    str_value(r, json_object_get(root, "config_hash"), "config_hash", hash, 65);
}
int orch_pipeline_from_json(const char *json, orch_pipeline *out, orch_err *err)
{
    orch_err_clear(err);
    memset(out, 0, sizeof *out);
    if (json == NULL)
        return orch_seterr(err, ORCH_EINVAL, "config_json: no text (NULL)");
    json_error_t jerr;
    json_t *root = json_loads(json, JSON_REJECT_DUPLICATES, &jerr);
    if (root == NULL) {
        if (json_error_code(&jerr) == json_error_out_of_memory)
            return orch_seterr(err, ORCH_ENOMEM, "config_json: out of memory");
        return orch_seterr(err, ORCH_EINVAL, "config_json: not valid JSON: %s (line %d, column %d)",
                           jerr.text, jerr.line, jerr.column);
    }
    rd r = {err, 0};
    char stored[65] = "";
    read_root(&r, root, out, stored);
    json_decref(root);
    if (r.failed) {
        memset(out, 0, sizeof *out);
        return ORCH_EINVAL;
    }
    if (out->parallel.data == 0) /* written only when > 1 */
        out->parallel.data = 1;
    char hash[65];
    if (orch_pipeline_hash(out, hash) != ORCH_OK) {
        memset(out, 0, sizeof *out);
        return orch_seterr(err, ORCH_ENOMEM, "config_json: out of memory");
    }
    if (strcmp(hash, stored) != 0) {
        memset(out, 0, sizeof *out);
        char shown[PATH_LEN];
        join(shown, "", stored);
        return orch_seterr(err, ORCH_EINVAL,
                           "config_json: config_hash: '%s' is not the hash of the configuration "
                           "(%s): edited, or written by another version of orch",
                           shown, hash);
    }
    return ORCH_OK;
}
