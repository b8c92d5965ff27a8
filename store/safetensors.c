/* safetensors.c - safetensors reader (mmap) and writer; see safetensors.h. */
#include "store/safetensors.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kernels/half.h"

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "safetensors.c assumes a little-endian host (safetensors data is little-endian)"
#endif

/* The reference implementation refuses headers above 100 MB. */
#define HEADER_MAX 100000000ull

typedef struct shard {
    char *path; /* as opened: the given path, or index dir + weight_map file */
    void *map;  /* whole file, read-only */
    size_t size;
    int heap;               /* map is a malloc'd copy (orch_st_open_memory), not mmap'd */
    json_t *header;         /* keeps the tensor names alive */
    const json_t *metadata; /* "__metadata__" object inside header, or NULL */
} shard;

struct orch_st_file {
    char *path;
    int n_shards;
    shard *shards;
    int n_tensors;
    orch_st_tensor *tensors; /* sorted by name */
};

/* --------------------------------------------------------------- dtypes */

typedef struct dtype_info {
    const char *name;
    size_t size;
    orch_st_dtype dtype;
} dtype_info;

/* Every dtype of the safetensors spec; only the first three are read. */
static const dtype_info DTYPES[] = {
    {"F32", 4, ORCH_ST_F32},       {"BF16", 2, ORCH_ST_BF16},     {"F16", 2, ORCH_ST_F16},
    {"F64", 8, ORCH_ST_OTHER},     {"I64", 8, ORCH_ST_OTHER},     {"U64", 8, ORCH_ST_OTHER},
    {"I32", 4, ORCH_ST_OTHER},     {"U32", 4, ORCH_ST_OTHER},     {"I16", 2, ORCH_ST_OTHER},
    {"U16", 2, ORCH_ST_OTHER},     {"I8", 1, ORCH_ST_OTHER},      {"U8", 1, ORCH_ST_OTHER},
    {"BOOL", 1, ORCH_ST_OTHER},    {"F8_E5M2", 1, ORCH_ST_OTHER}, {"F8_E4M3", 1, ORCH_ST_OTHER},
    {"F8_E8M0", 1, ORCH_ST_OTHER},
};

static const dtype_info *find_dtype(const char *name)
{
    for (size_t i = 0; i < sizeof DTYPES / sizeof DTYPES[0]; i++)
        if (strcmp(DTYPES[i].name, name) == 0)
            return &DTYPES[i];
    return NULL;
}

/* "[2048, 5120]" into buf. */
static const char *shape_str(const int64_t *shape, int ndim, char *buf, size_t n)
{
    size_t len = 0;
    len += (size_t)snprintf(buf, n, "[");
    for (int i = 0; i < ndim && len < n; i++)
        len += (size_t)snprintf(buf + len, n - len, "%s%lld", i ? ", " : "", (long long)shape[i]);
    if (len < n)
        snprintf(buf + len, n - len, "]");
    return buf;
}

/* ------------------------------------------------------------ one shard */

static int64_t le64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return (int64_t)(v > (uint64_t)INT64_MAX ? INT64_MAX : v);
}

/* Reads a JSON integer >= 0 into *v; 0 when j is not one. */
static int get_count(const json_t *j, int64_t *v)
{
    if (!json_is_integer(j) || json_integer_value(j) < 0)
        return 0;
    *v = (int64_t)json_integer_value(j);
    return 1;
}

/* Validates one header entry and fills t (name and data pointer included). */
static int parse_entry(const char *path, const char *name, const json_t *e,
                       const unsigned char *data, int64_t data_size, orch_st_tensor *t,
                       orch_err *err)
{
    if (!json_is_object(e))
        return orch_seterr(err, ORCH_EINVAL, "%s: header entry '%s' is not a JSON object", path,
                           name);
    const json_t *jd = json_object_get(e, "dtype");
    const json_t *js = json_object_get(e, "shape");
    const json_t *jo = json_object_get(e, "data_offsets");
    if (!json_is_string(jd))
        return orch_seterr(err, ORCH_EINVAL, "%s: tensor '%s' has no \"dtype\" string", path, name);
    if (!json_is_array(js))
        return orch_seterr(err, ORCH_EINVAL, "%s: tensor '%s' has no \"shape\" array", path, name);
    if (!json_is_array(jo) || json_array_size(jo) != 2)
        return orch_seterr(err, ORCH_EINVAL,
                           "%s: tensor '%s' has no \"data_offsets\" array [begin, end]", path,
                           name);
    const dtype_info *dt = find_dtype(json_string_value(jd));
    if (dt == NULL)
        return orch_seterr(err, ORCH_EINVAL, "%s: tensor '%s' has unknown dtype '%s'", path, name,
                           json_string_value(jd));
    size_t ndim = json_array_size(js);
    if (ndim > ORCH_ST_MAX_DIMS)
        return orch_seterr(err, ORCH_EINVAL,
                           "%s: tensor '%s' has %zu dimensions (orch reads at most %d)", path, name,
                           ndim, ORCH_ST_MAX_DIMS);
    memset(t, 0, sizeof *t);
    t->name = name;
    t->dtype = dt->dtype;
    t->dtype_name = dt->name;
    t->ndim = (int)ndim;
    int64_t numel = 1;
    for (size_t i = 0; i < ndim; i++) {
        if (!get_count(json_array_get(js, i), &t->shape[i]))
            return orch_seterr(err, ORCH_EINVAL,
                               "%s: tensor '%s': shape entry %zu is not a non-negative integer",
                               path, name, i);
        if (t->shape[i] > 0 && numel > (INT64_MAX / 8) / t->shape[i])
            return orch_seterr(err, ORCH_EINVAL, "%s: tensor '%s': shape is implausibly large",
                               path, name);
        numel *= t->shape[i];
    }
    t->numel = numel;
    int64_t begin, end;
    if (!get_count(json_array_get(jo, 0), &begin) || !get_count(json_array_get(jo, 1), &end))
        return orch_seterr(err, ORCH_EINVAL,
                           "%s: tensor '%s': data_offsets are not non-negative integers", path,
                           name);
    if (begin > end)
        return orch_seterr(err, ORCH_EINVAL,
                           "%s: tensor '%s': data_offsets [%lld, %lld] are out of order", path,
                           name, (long long)begin, (long long)end);
    char sbuf[160];
    int64_t need = numel * (int64_t)dt->size;
    if (end - begin != need)
        return orch_seterr(err, ORCH_EINVAL,
                           "%s: tensor '%s': data_offsets [%lld, %lld] hold %lld bytes but %s %s "
                           "needs %lld",
                           path, name, (long long)begin, (long long)end, (long long)(end - begin),
                           dt->name, shape_str(t->shape, t->ndim, sbuf, sizeof sbuf),
                           (long long)need);
    if (end > data_size)
        return orch_seterr(err, ORCH_EINVAL,
                           "%s: truncated: tensor '%s' needs bytes [%lld, %lld) of the data "
                           "region, which holds only %lld",
                           path, name, (long long)begin, (long long)end, (long long)data_size);
    t->data = data + begin;
    t->nbytes = (size_t)need;
    return ORCH_OK;
}

static void shard_fini(shard *s)
{
    if (s->heap)
        free(s->map);
    else if (s->map != NULL)
        munmap(s->map, s->size);
    json_decref(s->header);
    free(s->path);
    memset(s, 0, sizeof *s);
}

/* Refuses a file too short for the header length (before mapping it: an
 * empty file cannot be mapped). */
static int check_size(const shard *s, orch_err *err)
{
    if (s->size < 8)
        return orch_seterr(err, ORCH_EINVAL,
                           "%s: truncated: %zu bytes, too short for the 8-byte header length",
                           s->path, s->size);
    return ORCH_OK;
}

/* Maps the file at s->path (already set). */
static int map_file(shard *s, orch_err *err)
{
    int rc = ORCH_OK;
    /* O_NONBLOCK: a FIFO in a shard's place must not block the open; the
     * S_ISREG check below refuses it (and devices) before any read */
    int fd = open(s->path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0)
        return orch_seterr(err, ORCH_EINVAL, "%s: cannot open: %s", s->path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        rc = orch_seterr(err, ORCH_EIO, "%s: cannot stat: %s", s->path, strerror(errno));
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        rc = orch_seterr(err, ORCH_EINVAL, "%s: not a regular file", s->path);
        goto out;
    }
    s->size = (size_t)st.st_size;
    rc = check_size(s, err);
    if (rc != ORCH_OK)
        goto out;
    s->map = mmap(NULL, s->size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (s->map == MAP_FAILED) {
        s->map = NULL;
        rc = orch_seterr(err, ORCH_EIO, "%s: cannot mmap: %s", s->path, strerror(errno));
        goto out;
    }
out:
    close(fd);
    return rc;
}

/* Parses the mapped header of s and appends its tensors to *ts (n/cap). */
static int parse_shard(shard *s, orch_st_tensor **ts, int *n, int *cap, orch_err *err)
{
    const unsigned char *base = s->map;
    int64_t hlen = le64(base);
    if (hlen == 0)
        return orch_seterr(err, ORCH_EINVAL, "%s: header length is 0 (not a safetensors file?)",
                           s->path);
    if ((uint64_t)hlen > HEADER_MAX)
        return orch_seterr(err, ORCH_EINVAL,
                           "%s: header length %lld exceeds the %llu-byte limit (not a safetensors "
                           "file?)",
                           s->path, (long long)hlen, HEADER_MAX);
    if ((uint64_t)hlen > s->size - 8)
        return orch_seterr(err, ORCH_EINVAL,
                           "%s: truncated: header length %lld but only %zu bytes follow it",
                           s->path, (long long)hlen, s->size - 8);
    json_error_t jerr;
    s->header = json_loadb((const char *)base + 8, (size_t)hlen, JSON_REJECT_DUPLICATES, &jerr);
    if (s->header == NULL)
        return orch_seterr(err, ORCH_EINVAL, "%s: header is not valid JSON: %s (at byte %d)",
                           s->path, jerr.text, jerr.position);
    if (!json_is_object(s->header))
        return orch_seterr(err, ORCH_EINVAL, "%s: header is not a JSON object", s->path);
    const unsigned char *data = base + 8 + hlen;
    int64_t data_size = (int64_t)(s->size - 8 - (size_t)hlen);
    const char *key;
    json_t *value;
    json_object_foreach(s->header, key, value)
    {
        if (strcmp(key, "__metadata__") == 0) {
            if (!json_is_object(value))
                return orch_seterr(err, ORCH_EINVAL, "%s: \"__metadata__\" is not a JSON object",
                                   s->path);
            s->metadata = value;
            continue;
        }
        if (*n == *cap) {
            int ncap = *cap ? *cap * 2 : 64;
            orch_st_tensor *grown = realloc(*ts, (size_t)ncap * sizeof **ts);
            if (grown == NULL)
                return orch_seterr(err, ORCH_ENOMEM, "%s: out of memory", s->path);
            *ts = grown;
            *cap = ncap;
        }
        orch_st_tensor *t = &(*ts)[*n];
        int rc = parse_entry(s->path, key, value, data, data_size, t, err);
        if (rc != ORCH_OK)
            return rc;
        t->shard = s->path;
        (*n)++;
    }
    return ORCH_OK;
}

static int cmp_tensor(const void *a, const void *b)
{
    return strcmp(((const orch_st_tensor *)a)->name, ((const orch_st_tensor *)b)->name);
}

/* Sorts f->tensors and refuses a name present twice (two shards). */
static int sort_tensors(orch_st_file *f, orch_err *err)
{
    if (f->n_tensors > 1)
        qsort(f->tensors, (size_t)f->n_tensors, sizeof *f->tensors, cmp_tensor);
    for (int i = 1; i < f->n_tensors; i++)
        if (strcmp(f->tensors[i - 1].name, f->tensors[i].name) == 0)
            return orch_seterr(err, ORCH_EINVAL, "%s: tensor '%s' is in both %s and %s", f->path,
                               f->tensors[i].name, f->tensors[i - 1].shard, f->tensors[i].shard);
    return ORCH_OK;
}

/* -------------------------------------------------------- sharded index */

static int has_suffix(const char *s, const char *suffix)
{
    size_t ls = strlen(s), lx = strlen(suffix);
    return ls >= lx && strcmp(s + ls - lx, suffix) == 0;
}

/* Decides whether an open file is an index: ".json" suffix, or a file that
 * starts with '{' and is not a plausible safetensors header. */
static int looks_like_index(const char *path)
{
    if (has_suffix(path, ".json"))
        return 1;
    unsigned char head[9];
    struct stat sb;
    if (stat(path, &sb) != 0 || !S_ISREG(sb.st_mode))
        return 0; /* map_file says what it is; reading a FIFO would block */
    FILE *fp = fopen(path, "rb");
    if (fp == NULL)
        return 0;
    size_t got = fread(head, 1, sizeof head, fp);
    fclose(fp);
    if (got < 1 || head[0] != '{')
        return 0;
    return got < 9 || head[8] != '{'; /* a safetensors header starts at byte 8 */
}

/* Joins dir (the index file's directory, "" for none) with name. */
static char *join_path(const char *index_path, const char *name)
{
    const char *slash = strrchr(index_path, '/');
    size_t dlen = slash ? (size_t)(slash - index_path) + 1 : 0;
    if (name[0] == '/')
        dlen = 0;
    size_t n = dlen + strlen(name) + 1;
    char *p = malloc(n);
    if (p == NULL)
        return NULL;
    memcpy(p, index_path, dlen);
    strcpy(p + dlen, name);
    return p;
}

/* Appends "(shard listed in INDEX)" to the message of a shard error. */
static int shard_error(orch_err *err, int rc, const char *index_path)
{
    if (err == NULL)
        return rc;
    char msg[ORCH_ERR_MSG_MAX];
    snprintf(msg, sizeof msg, "%s", err->msg);
    return orch_seterr(err, rc, "%s (shard listed in %s)", msg, index_path);
}

static int open_index(orch_st_file *f, orch_err *err)
{
    int rc = ORCH_OK;
    int cap = 0;
    json_error_t jerr;
    struct stat sb;
    if (stat(f->path, &sb) == 0 && !S_ISREG(sb.st_mode))
        return orch_seterr(err, ORCH_EINVAL, "%s: not a regular file", f->path);
    json_t *root = json_load_file(f->path, JSON_REJECT_DUPLICATES, &jerr);
    if (root == NULL) {
        if (access(f->path, R_OK) != 0)
            return orch_seterr(err, ORCH_EINVAL, "%s: cannot open: %s", f->path, strerror(errno));
        return orch_seterr(err, ORCH_EINVAL, "%s:%d: index is not valid JSON: %s", f->path,
                           jerr.line, jerr.text);
    }
    const json_t *wm = json_object_get(root, "weight_map");
    if (!json_is_object(wm)) {
        rc = orch_seterr(err, ORCH_EINVAL, "%s: index has no \"weight_map\" object", f->path);
        goto out;
    }
    size_t n_entries = json_object_size(wm);
    if (n_entries == 0) {
        rc = orch_seterr(err, ORCH_EINVAL, "%s: \"weight_map\" is empty", f->path);
        goto out;
    }
    f->shards = calloc(n_entries, sizeof *f->shards);
    if (f->shards == NULL) {
        rc = orch_seterr(err, ORCH_ENOMEM, "%s: out of memory", f->path);
        goto out;
    }
    const char *key;
    const json_t *value;
    json_object_foreach((json_t *)wm, key, value)
    {
        if (!json_is_string(value) || json_string_length(value) == 0) {
            rc = orch_seterr(err, ORCH_EINVAL, "%s: weight_map entry '%s' is not a file name",
                             f->path, key);
            goto out;
        }
        char *path = join_path(f->path, json_string_value(value));
        if (path == NULL) {
            rc = orch_seterr(err, ORCH_ENOMEM, "%s: out of memory", f->path);
            goto out;
        }
        int seen = 0;
        for (int i = 0; i < f->n_shards && !seen; i++)
            seen = strcmp(f->shards[i].path, path) == 0;
        if (seen) {
            free(path);
            continue;
        }
        shard *s = &f->shards[f->n_shards++];
        s->path = path;
        rc = map_file(s, err);
        if (rc == ORCH_OK)
            rc = parse_shard(s, &f->tensors, &f->n_tensors, &cap, err);
        if (rc != ORCH_OK) {
            rc = shard_error(err, rc, f->path);
            goto out;
        }
    }
    rc = sort_tensors(f, err);
    if (rc != ORCH_OK)
        goto out;
    /* every weight_map entry must be in the shard it names */
    json_object_foreach((json_t *)wm, key, value)
    {
        const orch_st_tensor key_t = {.name = key};
        const orch_st_tensor *t =
            bsearch(&key_t, f->tensors, (size_t)f->n_tensors, sizeof *f->tensors, cmp_tensor);
        char *path = join_path(f->path, json_string_value(value));
        if (path == NULL) {
            rc = orch_seterr(err, ORCH_ENOMEM, "%s: out of memory", f->path);
            goto out;
        }
        int ok = t != NULL && strcmp(t->shard, path) == 0;
        free(path);
        if (!ok) {
            rc = orch_seterr(err, ORCH_EINVAL,
                             "%s: weight_map puts '%s' in %s, but that shard has no such tensor",
                             f->path, key, json_string_value(value));
            goto out;
        }
    }
out:
    json_decref(root);
    return rc;
}

/* ----------------------------------------------------------------- open */

/* A copy of path, or for a directory (a Hugging Face snapshot) the path of
 * its model.safetensors.index.json, else of its model.safetensors. NULL on
 * ENOMEM. */
static char *directory_entry(const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode))
        return strdup(path);
    static const char *const names[] = {"model.safetensors.index.json", "model.safetensors"};
    size_t len = strlen(path);
    char *p = malloc(len + 32);
    if (p == NULL)
        return NULL;
    for (int i = 0; i < 2; i++) {
        sprintf(p, "%s%s%s", path, len > 0 && path[len - 1] == '/' ? "" : "/", names[i]);
        if (access(p, F_OK) == 0 || i == 1)
            break;
    }
    return p;
}

int orch_st_open(const char *path, orch_st_file **out, orch_err *err)
{
    int rc = ORCH_OK;
    int cap = 0;
    *out = NULL;
    orch_st_file *f = calloc(1, sizeof *f);
    if (f == NULL || (f->path = directory_entry(path)) == NULL) {
        rc = orch_seterr(err, ORCH_ENOMEM, "%s: out of memory", path);
        goto out;
    }
    path = f->path;
    if (looks_like_index(path)) {
        rc = open_index(f, err);
        goto out;
    }
    f->shards = calloc(1, sizeof *f->shards);
    if (f->shards == NULL || (f->shards[0].path = strdup(path)) == NULL) {
        rc = orch_seterr(err, ORCH_ENOMEM, "%s: out of memory", path);
        goto out;
    }
    f->n_shards = 1;
    rc = map_file(&f->shards[0], err);
    if (rc == ORCH_OK)
        rc = parse_shard(&f->shards[0], &f->tensors, &f->n_tensors, &cap, err);
    if (rc == ORCH_OK)
        rc = sort_tensors(f, err);
out:
    if (rc != ORCH_OK) {
        orch_st_close(f);
        return rc;
    }
    *out = f;
    return ORCH_OK;
}

int orch_st_open_memory(const void *buf, size_t size, const char *name, orch_st_file **out,
                        orch_err *err)
{
    int rc = ORCH_OK;
    int cap = 0;
    *out = NULL;
    orch_st_file *f = calloc(1, sizeof *f);
    if (f == NULL || (f->path = strdup(name)) == NULL ||
        (f->shards = calloc(1, sizeof *f->shards)) == NULL ||
        (f->shards[0].path = strdup(name)) == NULL) {
        rc = orch_seterr(err, ORCH_ENOMEM, "%s: out of memory", name);
        goto out;
    }
    f->n_shards = 1;
    shard *s = &f->shards[0];
    s->size = size;
    rc = check_size(s, err);
    if (rc != ORCH_OK)
        goto out;
    /* A copy, so the caller's buffer is free after the call, exactly like a
     * file that is closed once mapped. */
    s->map = malloc(size);
    if (s->map == NULL) {
        rc = orch_seterr(err, ORCH_ENOMEM, "%s: out of memory", name);
        goto out;
    }
    s->heap = 1;
    memcpy(s->map, buf, size);
    rc = parse_shard(s, &f->tensors, &f->n_tensors, &cap, err);
    if (rc == ORCH_OK)
        rc = sort_tensors(f, err);
out:
    if (rc != ORCH_OK) {
        orch_st_close(f);
        return rc;
    }
    *out = f;
    return ORCH_OK;
}

void orch_st_close(orch_st_file *f)
{
    if (f == NULL)
        return;
    for (int i = 0; i < f->n_shards; i++)
        shard_fini(&f->shards[i]);
    free(f->shards);
    free(f->tensors);
    free(f->path);
    free(f);
}

const char *orch_st_path(const orch_st_file *f)
{
    return f->path;
}

int orch_st_count(const orch_st_file *f)
{
    return f->n_tensors;
}

const orch_st_tensor *orch_st_tensor_at(const orch_st_file *f, int i)
{
    return (i >= 0 && i < f->n_tensors) ? &f->tensors[i] : NULL;
}

static const orch_st_tensor *find_exact(const orch_st_file *f, const char *name)
{
    const orch_st_tensor key = {.name = name};
    return bsearch(&key, f->tensors, (size_t)f->n_tensors, sizeof *f->tensors, cmp_tensor);
}

const orch_st_tensor *orch_st_find(const orch_st_file *f, const char *name)
{
    const orch_st_tensor *t = find_exact(f, name);
    if (t != NULL)
        return t;
    size_t n = strlen(name);
    char small[256];
    char *prefixed = n + 7 <= sizeof small ? small : malloc(n + 7);
    if (prefixed != NULL) {
        memcpy(prefixed, "model.", 6);
        memcpy(prefixed + 6, name, n + 1);
        t = find_exact(f, prefixed);
        if (prefixed != small)
            free(prefixed);
        if (t != NULL)
            return t;
    }
    if (strncmp(name, "model.", 6) == 0)
        return find_exact(f, name + 6);
    return NULL;
}

const char *orch_st_metadata(const orch_st_file *f, const char *key)
{
    for (int i = 0; i < f->n_shards; i++) {
        const json_t *v = json_object_get(f->shards[i].metadata, key);
        if (json_is_string(v))
            return json_string_value(v);
    }
    return NULL;
}

/* ----------------------------------------------------------------- read */

static int64_t shape_numel(const int64_t *shape, int ndim)
{
    int64_t n = 1;
    for (int i = 0; i < ndim; i++)
        n *= shape[i];
    return n;
}

int orch_st_shape_compatible(const int64_t *a, int na, const int64_t *b, int nb)
{
    if (na == nb && (na == 0 || memcmp(a, b, (size_t)na * sizeof *a) == 0))
        return 1;
    if (na < 2 || nb < 2 || a[0] != b[0])
        return 0;
    if (na != 2 && nb != 2)
        return 0;
    return shape_numel(a + 1, na - 1) == shape_numel(b + 1, nb - 1);
}

void orch_st_tensor_to_f32(const orch_st_tensor *t, float *dst)
{
    const unsigned char *p = t->data;
    switch (t->dtype) {
    case ORCH_ST_F32:
        memcpy(dst, p, (size_t)t->numel * sizeof(float));
        break;
    case ORCH_ST_BF16:
        /* one loop per dtype, no test per element: the whole tower of a
         * bf16 checkpoint goes through here */
        for (int64_t i = 0; i < t->numel; i++) {
            uint16_t h;
            memcpy(&h, p + 2 * i, sizeof h);
            dst[i] = orch_bf16_to_f32(h);
        }
        break;
    case ORCH_ST_F16:
        for (int64_t i = 0; i < t->numel; i++) {
            uint16_t h;
            memcpy(&h, p + 2 * i, sizeof h);
            dst[i] = orch_f16_to_f32(h);
        }
        break;
    case ORCH_ST_OTHER:
        break;
    }
}

int64_t orch_st_count_nonfinite(const orch_st_tensor *t)
{
    const unsigned char *p = t->data;
    int64_t bad = 0;
    for (int64_t i = 0; i < t->numel; i++) {
        float v;
        if (t->dtype == ORCH_ST_F32) {
            memcpy(&v, p + 4 * i, sizeof v);
        } else if (t->dtype == ORCH_ST_BF16 || t->dtype == ORCH_ST_F16) {
            uint16_t h;
            memcpy(&h, p + 2 * i, sizeof h);
            v = t->dtype == ORCH_ST_BF16 ? orch_bf16_to_f32(h) : orch_f16_to_f32(h);
        } else {
            return 0;
        }
        bad += !isfinite(v);
    }
    return bad;
}

/* Finds name and checks its dtype; fills *out. */
static int find_readable(const orch_st_file *f, const char *name, const orch_st_tensor **out,
                         orch_err *err)
{
    const orch_st_tensor *t = orch_st_find(f, name);
    if (t == NULL)
        return orch_seterr(err, ORCH_EINVAL, "%s: no tensor '%s'", f->path, name);
    if (t->dtype == ORCH_ST_OTHER)
        return orch_seterr(err, ORCH_EINVAL,
                           "%s: unsupported dtype %s for tensor %s (orch reads F32, BF16, F16)",
                           t->shard, t->dtype_name, t->name);
    *out = t;
    return ORCH_OK;
}

int orch_st_read_f32(const orch_st_file *f, const char *name, const int64_t *expected_shape,
                     int ndim, float *dst, orch_err *err)
{
    const orch_st_tensor *t = NULL;
    int rc = find_readable(f, name, &t, err);
    if (rc != ORCH_OK)
        return rc;
    if (!orch_st_shape_compatible(t->shape, t->ndim, expected_shape, ndim)) {
        char have[160], want[160];
        return orch_seterr(err, ORCH_EINVAL, "%s: %s: shape %s in file, expected %s", t->shard,
                           t->name, shape_str(t->shape, t->ndim, have, sizeof have),
                           shape_str(expected_shape, ndim, want, sizeof want));
    }
    orch_st_tensor_to_f32(t, dst);
    return ORCH_OK;
}

int orch_st_read_f32_numel(const orch_st_file *f, const char *name, int64_t numel, float *dst,
                           orch_err *err)
{
    const orch_st_tensor *t = NULL;
    int rc = find_readable(f, name, &t, err);
    if (rc != ORCH_OK)
        return rc;
    if (t->numel != numel)
        return orch_seterr(err, ORCH_EINVAL, "%s: %s: %lld elements in file, expected %lld",
                           t->shard, t->name, (long long)t->numel, (long long)numel);
    orch_st_tensor_to_f32(t, dst);
    return ORCH_OK;
}

/* ---------------------------------------------------------------- write */

static int write_all(int fd, const void *buf, size_t n)
{
    const char *p = buf;
    while (n > 0) {
        ssize_t w = write(fd, p, n > (1u << 30) ? (1u << 30) : n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* fsyncs the directory holding path so a rename survives a crash. */
static void sync_parent_dir(const char *path)
{
    char dir[4096];
    const char *slash = strrchr(path, '/');
    if (slash == NULL)
        snprintf(dir, sizeof dir, ".");
    else if (slash == path)
        snprintf(dir, sizeof dir, "/");
    else
        snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path);
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        fsync(fd); /* best effort: some filesystems refuse directory fsync */
        close(fd);
    }
}

static int cmp_entry(const void *a, const void *b)
{
    return strcmp((*(const orch_st_entry *const *)a)->name,
                  (*(const orch_st_entry *const *)b)->name);
}

/* Validates the entries, sorts them by name into order[] and builds the
 * padded header text (malloc'd into *text, length *len). */
static int build_header(const char *path, const orch_st_entry *e, int n, const char *metadata_json,
                        const orch_st_entry **order, char **text, size_t *len, orch_err *err)
{
    int rc = ORCH_OK;
    json_t *root = json_object();
    json_t *meta = NULL;
    char *dumped = NULL;
    if (root == NULL) {
        rc = orch_seterr(err, ORCH_ENOMEM, "%s: out of memory", path);
        goto out;
    }
    if (metadata_json != NULL) {
        json_error_t jerr;
        meta = json_loads(metadata_json, JSON_REJECT_DUPLICATES, &jerr);
        if (!json_is_object(meta)) {
            rc = orch_seterr(err, ORCH_EINVAL, "%s: metadata is not a JSON object", path);
            goto out;
        }
        const char *k;
        json_t *v;
        json_object_foreach(meta, k, v)
        {
            if (!json_is_string(v)) {
                rc = orch_seterr(err, ORCH_EINVAL,
                                 "%s: metadata value of '%s' is not a string (safetensors "
                                 "metadata maps strings to strings)",
                                 path, k);
                goto out;
            }
        }
        if (json_object_set(root, "__metadata__", meta) != 0) {
            rc = orch_seterr(err, ORCH_ENOMEM, "%s: out of memory", path);
            goto out;
        }
    }
    for (int i = 0; i < n; i++) {
        order[i] = &e[i];
        if (e[i].name == NULL || e[i].name[0] == '\0' || strcmp(e[i].name, "__metadata__") == 0) {
            rc = orch_seterr(err, ORCH_EINVAL, "%s: entry %d has an invalid tensor name", path, i);
            goto out;
        }
        if (e[i].ndim < 0 || e[i].ndim > ORCH_ST_MAX_DIMS) {
            rc = orch_seterr(err, ORCH_EINVAL, "%s: tensor '%s' has %d dimensions", path, e[i].name,
                             e[i].ndim);
            goto out;
        }
        for (int d = 0; d < e[i].ndim; d++)
            if (e[i].shape[d] < 0) {
                rc = orch_seterr(err, ORCH_EINVAL, "%s: tensor '%s' has a negative dimension", path,
                                 e[i].name);
                goto out;
            }
        if (e[i].data == NULL && shape_numel(e[i].shape, e[i].ndim) > 0) {
            rc = orch_seterr(err, ORCH_EINVAL, "%s: tensor '%s' has no data", path, e[i].name);
            goto out;
        }
    }
    if (n > 1)
        qsort(order, (size_t)n, sizeof *order, cmp_entry);
    int64_t offset = 0;
    for (int k = 0; k < n; k++) {
        const orch_st_entry *x = order[k];
        if (k > 0 && strcmp(order[k - 1]->name, x->name) == 0) {
            rc = orch_seterr(err, ORCH_EINVAL, "%s: duplicate tensor name '%s'", path, x->name);
            goto out;
        }
        int64_t bytes = shape_numel(x->shape, x->ndim) * (int64_t)sizeof(float);
        json_t *shape = json_array();
        for (int d = 0; d < x->ndim && shape != NULL; d++)
            json_array_append_new(shape, json_integer(x->shape[d]));
        json_t *entry = json_pack("{s:s, s:o, s:[I, I]}", "dtype", "F32", "shape", shape,
                                  "data_offsets", (json_int_t)offset, (json_int_t)(offset + bytes));
        if (entry == NULL || json_object_set_new(root, x->name, entry) != 0) {
            rc = orch_seterr(err, ORCH_ENOMEM, "%s: out of memory", path);
            goto out;
        }
        offset += bytes;
    }
    dumped = json_dumps(root, JSON_COMPACT);
    if (dumped == NULL) {
        rc = orch_seterr(err, ORCH_ENOMEM, "%s: out of memory", path);
        goto out;
    }
    size_t dl = strlen(dumped);
    size_t padded = (dl + 7) / 8 * 8;
    *text = malloc(padded);
    if (*text == NULL) {
        rc = orch_seterr(err, ORCH_ENOMEM, "%s: out of memory", path);
        goto out;
    }
    memcpy(*text, dumped, dl);
    memset(*text + dl, ' ', padded - dl);
    *len = padded;
out:
    free(dumped);
    json_decref(meta);
    json_decref(root);
    return rc;
}

int orch_st_write(const char *path, const orch_st_entry *entries, int n, const char *metadata_json,
                  orch_err *err)
{
    int rc = ORCH_OK;
    int fd = -1;
    int created = 0;
    const orch_st_entry **order = NULL;
    char *header = NULL;
    char *tmp = NULL;
    size_t hlen = 0;
    if (n < 0 || (n > 0 && entries == NULL))
        return orch_seterr(err, ORCH_EINVAL, "%s: invalid tensor list", path);
    order = malloc((size_t)(n > 0 ? n : 1) * sizeof *order);
    tmp = malloc(strlen(path) + 16);
    if (order == NULL || tmp == NULL) {
        rc = orch_seterr(err, ORCH_ENOMEM, "%s: out of memory", path);
        goto out;
    }
    rc = build_header(path, entries, n, metadata_json, order, &header, &hlen, err);
    if (rc != ORCH_OK)
        goto out;
    sprintf(tmp, "%s.tmp-XXXXXX", path);
    fd = mkstemp(tmp);
    created = fd >= 0;
    if (fd < 0) {
        rc = orch_seterr(err, ORCH_EIO, "%s: cannot create a temporary file: %s", path,
                         strerror(errno));
        goto out;
    }
    unsigned char lenbuf[8];
    for (int i = 0; i < 8; i++)
        lenbuf[i] = (unsigned char)((uint64_t)hlen >> (8 * i));
    int bad =
        fchmod(fd, 0644) != 0 || write_all(fd, lenbuf, 8) != 0 || write_all(fd, header, hlen) != 0;
    for (int k = 0; k < n && !bad; k++) {
        const orch_st_entry *x = order[k];
        size_t bytes = (size_t)shape_numel(x->shape, x->ndim) * sizeof(float);
        bad = bytes > 0 && write_all(fd, x->data, bytes) != 0;
    }
    if (bad || fsync(fd) != 0) {
        rc = orch_seterr(err, ORCH_EIO, "%s: write failed: %s", path, strerror(errno));
        goto out;
    }
    int closed = close(fd);
    fd = -1;
    if (closed != 0 || rename(tmp, path) != 0) {
        rc = orch_seterr(err, ORCH_EIO, "%s: cannot finish the file: %s", path, strerror(errno));
        goto out;
    }
    sync_parent_dir(path);
out:
    if (fd >= 0)
        close(fd);
    if (rc != ORCH_OK && created)
        unlink(tmp);
    free(tmp);
    free(header);
    free(order);
    return rc;
}
