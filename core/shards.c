/* shards.c - the tar-shard data source: index, streaming reader, order
 * hook; see shards.h. Archives are read through store/archive_io.h. */
#include "core/shards.h"

#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/checkpoint.h"
#include "core/image.h"
#include "core/shards_expand.h"
#include "core/shards_order.h"
#include "store/archive_io.h"
#include "store/npy.h"

/* A member larger than this is refused: a hostile size field must not make
 * the index allocate gigabytes. */
#define MEMBER_MAX (512ll << 20)
#define KEY_MAX    1024

typedef enum member_kind {
    M_OTHER = 0,
    M_JPEG,
    M_PNG,
    M_NPY,  /* RGB uint8 (H, W, 3) */
    M_PV,   /* processed patch rows */
    M_GRID, /* the grid of M_PV */
    M_CLS,
    M_JSON
} member_kind;

static member_kind kind_of(const char *ext)
{
    static const struct {
        const char *ext;
        member_kind kind;
    } table[] = {{"jpg", M_JPEG},
                 {"jpeg", M_JPEG},
                 {"png", M_PNG},
                 {"npy", M_NPY},
                 {"pixel_values.npy", M_PV},
                 {"image_grid_thw.npy", M_GRID},
                 {"cls", M_CLS},
                 {"json", M_JSON}};
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
        if (strcmp(ext, table[i].ext) == 0)
            return table[i].kind;
    return M_OTHER;
}

static int is_image(member_kind k)
{
    return k == M_JPEG || k == M_PNG || k == M_NPY || k == M_PV;
}

/* One image of the set: where its pixels are. */
typedef struct sample {
    int shard;
    int64_t entry; /* ordinal of its image member among the shard's entries */
    member_kind kind;
} sample;

/* Member bytes kept by the reader for an image it streamed past. */
typedef struct kept {
    int index;
    char *name; /* the member's, for messages */
    unsigned char *bytes;
    size_t len;
} kept;

/* Streams open at once: the buffer spans few shards when shards hold more
 * images than it; more shards in flight are re-opened (correct, slower). */
#define MAX_STREAMS 4

/* One shard being read: open at entry next_entry, whose next image is
 * next_image. */
typedef struct stream {
    orch_archive_reader *ar; /* owned; NULL: unused */
    int shard;
    int64_t next_entry;
    int next_image;
    int64_t used; /* clock of the last read */
} stream;

typedef struct shards_ctx {
    int n_shards;
    char **paths;     /* owned */
    int *first_image; /* (n_shards + 1) */
    sample *samples;  /* (n_images) */
    int n_images;
    int shuffle;
    orch_processor_config proc;
    int patch_dim;
    const int64_t *grid_thw; /* the dataset's, for checking decoded images */
    int *order_scratch;
    /* open streams, one per shard at most: the shuffle buffer draws from
     * the tail of one shard and the head of the next at once */
    stream streams[MAX_STREAMS];
    int64_t clock; /* for least-recently-used stream replacement */
    int64_t opens; /* shard openings by the reader */
    /* FIFO of at most shuffle images streamed past, oldest first */
    kept *fifo;
    int fifo_count;
    /* scratch, grown as needed */
    unsigned char *member;
    size_t member_cap;
} shards_ctx;

/* ------------------------------------------------------------ archives */

static orch_archive_reader *open_shard(const char *path, orch_err *err)
{
    orch_archive_reader *ar;
    /* any compression, detected from the bytes; tar only */
    if (orch_archive_reader_open(path, ORCH_ARCHIVE_READ_ANY_FILTER, &ar, err) != ORCH_OK) {
        orch_archive_reader_close(ar);
        return NULL;
    }
    return ar;
}

/* Reads the current member's data into *buf (grown, capacity *cap). */
static int read_member(orch_archive_reader *ar, unsigned char **buf, size_t *cap, size_t *len,
                       orch_err *err)
{
    return orch_archive_read_member(ar, buf, cap, len, MEMBER_MAX, err);
}

/* The next header; ORCH_OK with *m, or 1 at the end, or an error naming
 * the member after which the archive broke. */
static int next_header(orch_archive_reader *ar, const char *shard, const char *after,
                       orch_archive_member *m, orch_err *err)
{
    int r = orch_archive_next(ar, m, err);
    if (r == ORCH_OK || r == 1 || after[0] == '\0')
        return r;
    return orch_seterr(err, ORCH_EINVAL, "%s: after %s: %s", shard, after,
                       orch_archive_reader_error(ar));
}

/* Splits a member path into key (path up to the first dot of its
 * basename) and lowercased extension. 0 when it has no extension. */
static int split_name(const char *name, char *key, char *ext)
{
    const char *base = strrchr(name, '/');
    base = base ? base + 1 : name;
    const char *dot = strchr(base, '.');
    size_t klen = dot ? (size_t)(dot - name) : strlen(name);
    if (dot == NULL || klen >= KEY_MAX || strlen(dot + 1) >= 64)
        return 0;
    memcpy(key, name, klen);
    key[klen] = '\0';
    size_t i = 0;
    for (const char *p = dot + 1; *p; p++)
        ext[i++] = (char)tolower((unsigned char)*p);
    ext[i] = '\0';
    return 1;
}

/* ------------------------------------------------------------ labels */

static int parse_int(const char *s, long long *v)
{
    while (isspace((unsigned char)*s))
        s++;
    if (*s == '\0')
        return 0;
    char *end;
    errno = 0;
    *v = strtoll(s, &end, 10);
    if (errno != 0 || end == s)
        return 0;
    while (isspace((unsigned char)*end))
        end++;
    return *end == '\0';
}

static int parse_label(member_kind kind, const unsigned char *buf, size_t len, const char *shard,
                       const char *name, long long *label, orch_err *err)
{
    if (strlen((const char *)buf) != len)
        return orch_seterr(err, ORCH_EINVAL, "%s: %s: a label is text, not binary data", shard,
                           name);
    if (kind == M_CLS) {
        if (!parse_int((const char *)buf, label))
            return orch_seterr(err, ORCH_EINVAL, "%s: %s: not an integer class id", shard, name);
        return ORCH_OK;
    }
    json_error_t jerr;
    json_t *j = json_loadb((const char *)buf, len, JSON_DECODE_ANY, &jerr);
    if (j == NULL)
        return orch_seterr(err, ORCH_EINVAL, "%s: %s: line %d: %s", shard, name, jerr.line,
                           jerr.text);
    json_t *v = json_is_object(j) ? json_object_get(j, "label") : j;
    int ok = v != NULL && json_is_integer(v);
    if (ok)
        *label = json_integer_value(v);
    json_decref(j);
    if (!ok)
        return orch_seterr(err, ORCH_EINVAL,
                           "%s: %s: expected an integer class id or {\"label\": id}", shard, name);
    return ORCH_OK;
}

/* ------------------------------------------------------------- index */

/* A sample being read: the members with one key. */
typedef struct pending {
    char key[KEY_MAX];
    char image_name[KEY_MAX + 64], label_name[KEY_MAX + 64], grid_name[KEY_MAX + 64];
    int has_image, has_label, has_grid;
    member_kind kind;
    int64_t entry;
    int h, w;        /* images */
    int64_t pv_rows; /* M_PV */
    int64_t grid[3]; /* M_PV: from its grid member */
    long long label;
} pending;

/* What the index grows: per image a sample, a grid row and a label. */
typedef struct index_out {
    sample *samples;
    int64_t *grid;
    int64_t *labels;
    int n, cap;
} index_out;

static int index_add(index_out *ix, const sample *s, const int64_t grid[3], long long label)
{
    if (ix->n == ix->cap) {
        int cap = ix->cap ? 2 * ix->cap : 256;
        sample *sv = realloc(ix->samples, (size_t)cap * sizeof *sv);
        if (sv == NULL)
            return -1;
        ix->samples = sv;
        int64_t *g = realloc(ix->grid, (size_t)cap * 3 * sizeof *g);
        if (g == NULL)
            return -1;
        ix->grid = g;
        int64_t *l = realloc(ix->labels, (size_t)cap * sizeof *l);
        if (l == NULL)
            return -1;
        ix->labels = l;
        ix->cap = cap;
    }
    ix->samples[ix->n] = *s;
    memcpy(&ix->grid[3 * ix->n], grid, 3 * sizeof *grid);
    ix->labels[ix->n] = label;
    ix->n++;
    return 0;
}

/* Closes the sample p of shard s: it needs one image and one label in
 * range. */
static int finish_sample(const orch_shards_config *cfg, int s, pending *p, index_out *ix,
                         orch_err *err)
{
    const char *shard = cfg->paths[s];
    if (!p->has_image)
        return orch_seterr(err, ORCH_EINVAL,
                           "%s: %s: no image with this key (.jpg, .jpeg, .png, .npy or "
                           ".pixel_values.npy)",
                           shard, p->has_label ? p->label_name : p->grid_name);
    if (!p->has_label)
        return orch_seterr(err, ORCH_EINVAL, "%s: %s: no label (%s.cls or %s.json)", shard,
                           p->image_name, p->key, p->key);
    if (p->label < 0 || (cfg->n_classes > 0 && p->label >= cfg->n_classes))
        return orch_seterr(err, ORCH_EINVAL, "%s: %s: label %lld is outside [0, %d)", shard,
                           p->label_name, p->label, cfg->n_classes);
    int64_t grid[3];
    if (p->kind == M_PV) {
        if (!p->has_grid)
            return orch_seterr(err, ORCH_EINVAL, "%s: %s: no %s.image_grid_thw.npy", shard,
                               p->image_name, p->key);
        memcpy(grid, p->grid, sizeof grid);
        if (grid[0] < 1 || grid[1] < 1 || grid[2] < 1 || grid[0] > (1 << 20) ||
            grid[1] > (1 << 20) || grid[2] > (1 << 20) || grid[0] * grid[1] * grid[2] != p->pv_rows)
            return orch_seterr(err, ORCH_EINVAL,
                               "%s: %s: %lld patch rows, but %s says [%lld, %lld, %lld]", shard,
                               p->image_name, (long long)p->pv_rows, p->grid_name,
                               (long long)grid[0], (long long)grid[1], (long long)grid[2]);
    } else {
        if (p->has_grid)
            return orch_seterr(err, ORCH_EINVAL,
                               "%s: %s: a grid belongs with .pixel_values.npy, not with an image",
                               shard, p->grid_name);
        orch_err sub;
        orch_err_clear(&sub);
        int rc = orch_processor_plan(cfg->proc, p->h, p->w, grid, &sub);
        if (rc != ORCH_OK)
            return orch_seterr(err, rc, "%s: %s: %s", shard, p->image_name, sub.msg);
    }
    sample sm = {.shard = s, .entry = p->entry, .kind = p->kind};
    if (index_add(ix, &sm, grid, p->label) != 0)
        return orch_seterr(err, ORCH_ENOMEM, "%s: out of memory", shard);
    return ORCH_OK;
}

/* The image header of member name (kind) of bytes buf: its size, or for
 * processed rows their count; for a grid member the grid. */
static int read_image_header(const orch_shards_config *cfg, const char *shard, const char *name,
                             member_kind kind, const unsigned char *buf, size_t len, pending *p,
                             orch_err *err)
{
    char what[KEY_MAX + 1200];
    snprintf(what, sizeof what, "%s: %s", shard, name);
    if (kind == M_JPEG || kind == M_PNG)
        return orch_image_size(buf, len, what, &p->h, &p->w, err);
    orch_npy a;
    int rc = orch_npy_load_mem(what, buf, len, kind == M_PV ? ORCH_NPY_F32 : ORCH_NPY_I64,
                               kind != M_GRID, &a, err);
    if (rc != ORCH_OK)
        return rc;
    if (kind == M_NPY) {
        if (strcmp(a.descr, "|u1") != 0 || a.ndim != 3 || a.shape[2] != 3 || a.shape[0] < 1 ||
            a.shape[1] < 1 || a.shape[0] > (1 << 20) || a.shape[1] > (1 << 20))
            rc = orch_seterr(err, ORCH_EINVAL,
                             "%s: an .npy image is RGB uint8 '|u1' of shape (H, W, 3); this is "
                             "'%s' with %d dimensions",
                             what, a.descr, a.ndim);
        else {
            p->h = (int)a.shape[0];
            p->w = (int)a.shape[1];
        }
    } else if (kind == M_PV) {
        if (a.ndim != 2 || a.shape[1] != cfg->patch_dim)
            rc = orch_seterr(err, ORCH_EINVAL,
                             "%s: pixel_values must be (patches, %d) float32 for this model", what,
                             cfg->patch_dim);
        else
            p->pv_rows = a.shape[0];
    } else { /* M_GRID */
        if (a.numel != 3 || a.ndim < 1 || a.ndim > 2)
            rc = orch_seterr(err, ORCH_EINVAL, "%s: image_grid_thw must be (3,) or (1, 3) int64",
                             what);
        else
            memcpy(p->grid, a.i64, sizeof p->grid);
    }
    orch_npy_free(&a);
    return rc;
}

static int cmp_key(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Indexes shard s into ix: one pass over its members. */
static int index_shard(const orch_shards_config *cfg, int s, index_out *ix, orch_err *err)
{
    const char *shard = cfg->paths[s];
    orch_archive_reader *ar = open_shard(shard, err);
    if (ar == NULL)
        return err->code;
    unsigned char *buf = NULL;
    size_t cap = 0, len = 0;
    char **keys = NULL;
    int n_keys = 0, cap_keys = 0, before = ix->n;
    pending *p = calloc(1, sizeof *p);
    char *last = calloc(1, KEY_MAX + 64);
    int rc = p == NULL || last == NULL ? orch_seterr(err, ORCH_ENOMEM, "%s: out of memory", shard)
                                       : ORCH_OK;
    int open_sample = 0;
    for (int64_t e = 0; rc == ORCH_OK; e++) {
        orch_archive_member ent;
        int h = next_header(ar, shard, last, &ent, err);
        if (h == 1)
            break;
        if (h != ORCH_OK) {
            rc = h;
            break;
        }
        /* directories and links (hard links too: libarchive gives them no
         * file type) carry no sample */
        if (ent.type != ORCH_ARCHIVE_FILE)
            continue;
        const char *name = ent.name;
        snprintf(last, KEY_MAX + 64, "%s", name);
        char key[KEY_MAX], ext[64];
        if (!split_name(name, key, ext)) {
            rc = orch_seterr(err, ORCH_EINVAL,
                             "%s: %s: no extension, so not a sample member (KEY.jpg, KEY.cls, "
                             "...)",
                             shard, name);
            break;
        }
        member_kind kind = kind_of(ext);
        if (kind == M_OTHER) {
            rc = orch_seterr(err, ORCH_EINVAL,
                             "%s: %s: unsupported member '.%s' (images: .jpg .jpeg .png .npy "
                             ".pixel_values.npy; labels: .cls .json)",
                             shard, name, ext);
            break;
        }
        if (!open_sample || strcmp(key, p->key) != 0) {
            if (open_sample && (rc = finish_sample(cfg, s, p, ix, err)) != ORCH_OK)
                break;
            memset(p, 0, sizeof *p);
            snprintf(p->key, sizeof p->key, "%s", key);
            open_sample = 1;
            if (n_keys == cap_keys) {
                cap_keys = cap_keys ? 2 * cap_keys : 256;
                char **k = realloc(keys, (size_t)cap_keys * sizeof *k);
                if (k == NULL) {
                    rc = orch_seterr(err, ORCH_ENOMEM, "%s: out of memory", shard);
                    break;
                }
                keys = k;
            }
            if ((keys[n_keys] = strdup(key)) == NULL) {
                rc = orch_seterr(err, ORCH_ENOMEM, "%s: out of memory", shard);
                break;
            }
            n_keys++;
        }
        rc = read_member(ar, &buf, &cap, &len, err);
        if (rc != ORCH_OK)
            break;
        if (is_image(kind)) {
            if (p->has_image) {
                rc = orch_seterr(err, ORCH_EINVAL, "%s: %s: a second image for key %s (after %s)",
                                 shard, name, key, p->image_name);
                break;
            }
            p->has_image = 1;
            p->kind = kind;
            p->entry = e;
            snprintf(p->image_name, sizeof p->image_name, "%s", name);
            rc = read_image_header(cfg, shard, name, kind, buf, len, p, err);
        } else if (kind == M_GRID) {
            p->has_grid = 1;
            snprintf(p->grid_name, sizeof p->grid_name, "%s", name);
            rc = read_image_header(cfg, shard, name, kind, buf, len, p, err);
        } else {
            if (p->has_label) {
                rc = orch_seterr(err, ORCH_EINVAL, "%s: %s: a second label for key %s (after %s)",
                                 shard, name, key, p->label_name);
                break;
            }
            p->has_label = 1;
            snprintf(p->label_name, sizeof p->label_name, "%s", name);
            rc = parse_label(kind, buf, len, shard, name, &p->label, err);
        }
    }
    if (rc == ORCH_OK && open_sample)
        rc = finish_sample(cfg, s, p, ix, err);
    if (rc == ORCH_OK && ix->n == before)
        rc = orch_seterr(err, ORCH_EINVAL, "%s: no samples (an empty shard)", shard);
    if (rc == ORCH_OK && n_keys > 1) {
        /* members of a sample must be adjacent: a key seen again later is
         * a second sample with the same name */
        qsort(keys, (size_t)n_keys, sizeof *keys, cmp_key);
        for (int i = 1; i < n_keys && rc == ORCH_OK; i++)
            if (strcmp(keys[i - 1], keys[i]) == 0)
                rc = orch_seterr(err, ORCH_EINVAL,
                                 "%s: key %s appears twice (the members of a sample must follow "
                                 "each other)",
                                 shard, keys[i]);
    }
    for (int i = 0; i < n_keys; i++)
        free(keys[i]);
    free(keys);
    free(p);
    free(last);
    free(buf);
    orch_archive_reader_close(ar);
    return rc;
}

/* ------------------------------------------------------------ reader */

static void close_stream(stream *st)
{
    orch_archive_reader_close(st->ar);
    st->ar = NULL;
}

static void free_ctx(void *p)
{
    shards_ctx *c = p;
    if (c == NULL)
        return;
    for (int i = 0; i < MAX_STREAMS; i++)
        close_stream(&c->streams[i]);
    for (int i = 0; i < c->fifo_count; i++) {
        free(c->fifo[i].name);
        free(c->fifo[i].bytes);
    }
    free(c->fifo);
    orch_shards_paths_free(c->paths, c->n_shards);
    free(c->first_image);
    free(c->samples);
    free(c->order_scratch);
    free(c->member);
    free(c);
}

/* Patch rows of image index from its member bytes into dst. */
static int decode_into(shards_ctx *c, int index, const char *name, const unsigned char *buf,
                       size_t len, float *dst, orch_err *err)
{
    const sample *sm = &c->samples[index];
    const char *shard = c->paths[sm->shard];
    const int64_t *g = &c->grid_thw[3 * index];
    int64_t rows = g[0] * g[1] * g[2];
    char what[KEY_MAX + 1200];
    snprintf(what, sizeof what, "%s: %s", shard, name);
    orch_npy a;
    int rc;
    if (sm->kind == M_PV) {
        rc = orch_npy_load_mem(what, buf, len, ORCH_NPY_F32, 0, &a, err);
        if (rc != ORCH_OK)
            return rc;
        if (a.ndim != 2 || a.shape[0] != rows || a.shape[1] != c->patch_dim)
            rc = orch_seterr(err, ORCH_EINVAL, "%s: changed since the shard was indexed", what);
        else
            memcpy(dst, a.f32, (size_t)(rows * c->patch_dim) * sizeof(float));
        orch_npy_free(&a);
        return rc;
    }
    uint8_t *rgb = NULL;
    int h = 0, w = 0;
    if (sm->kind == M_NPY) {
        rc = orch_npy_load_mem(what, buf, len, ORCH_NPY_I64, 0, &a, err);
        if (rc != ORCH_OK)
            return rc;
        if (a.ndim != 3 || a.shape[2] != 3 || strcmp(a.descr, "|u1") != 0) {
            orch_npy_free(&a);
            return orch_seterr(err, ORCH_EINVAL, "%s: changed since the shard was indexed", what);
        }
        h = (int)a.shape[0];
        w = (int)a.shape[1];
        rgb = malloc((size_t)a.numel);
        if (rgb == NULL) {
            orch_npy_free(&a);
            return orch_seterr(err, ORCH_ENOMEM, "%s: out of memory", what);
        }
        for (int64_t k = 0; k < a.numel; k++)
            rgb[k] = (uint8_t)a.i64[k];
        orch_npy_free(&a);
    } else {
        orch_image img;
        rc = orch_image_decode(buf, len, what, &img, err);
        if (rc != ORCH_OK)
            return rc;
        rgb = img.rgb; /* taken over: freed below */
        h = img.height;
        w = img.width;
    }
    /* the grid decides how many rows dst holds: check it before writing */
    int64_t grid[3];
    orch_err sub;
    orch_err_clear(&sub);
    rc = orch_processor_plan(&c->proc, h, w, grid, &sub);
    if (rc != ORCH_OK)
        rc = orch_seterr(err, rc, "%s: %s", what, sub.msg);
    else if (memcmp(grid, g, sizeof grid) != 0)
        rc = orch_seterr(err, ORCH_EINVAL, "%s: changed since the shard was indexed", what);
    else if ((rc = orch_processor_run(&c->proc, rgb, h, w, dst, grid, &sub)) != ORCH_OK)
        rc = orch_seterr(err, rc, "%s: %s", what, sub.msg);
    free(rgb);
    return rc;
}

/* Keeps the member bytes of image index (streamed past) for later. */
static int keep(shards_ctx *c, orch_archive_reader *ar, int index, const char *name, orch_err *err)
{
    const char *shard = c->paths[c->samples[index].shard];
    kept k = {.index = index};
    size_t cap = 0;
    int rc = read_member(ar, &k.bytes, &cap, &k.len, err);
    if (rc == ORCH_OK && (k.name = strdup(name)) == NULL)
        rc = orch_seterr(err, ORCH_ENOMEM, "%s: out of memory", shard);
    if (rc != ORCH_OK) {
        free(k.bytes);
        return rc;
    }
    if (c->fifo_count == c->shuffle) { /* full: the oldest goes */
        free(c->fifo[0].name);
        free(c->fifo[0].bytes);
        memmove(c->fifo, c->fifo + 1, (size_t)(c->fifo_count - 1) * sizeof *c->fifo);
        c->fifo_count--;
    }
    c->fifo[c->fifo_count++] = k;
    return ORCH_OK;
}

static int read_patches(void *ctx, int index, float *dst, orch_err *err)
{
    shards_ctx *c = ctx;
    for (int i = 0; i < c->fifo_count; i++) {
        if (c->fifo[i].index != index)
            continue;
        kept k = c->fifo[i];
        memmove(c->fifo + i, c->fifo + i + 1, (size_t)(c->fifo_count - i - 1) * sizeof *c->fifo);
        c->fifo_count--;
        int rc = decode_into(c, index, k.name, k.bytes, k.len, dst, err);
        free(k.name);
        free(k.bytes);
        return rc;
    }
    const sample *sm = &c->samples[index];
    const char *shard = c->paths[sm->shard];
    /* the shard's stream when it has not passed the image yet; else a
     * fresh one in the least recently used slot */
    stream *st = NULL;
    for (int i = 0; i < MAX_STREAMS && st == NULL; i++)
        if (c->streams[i].ar != NULL && c->streams[i].shard == sm->shard)
            st = &c->streams[i];
    if (st == NULL || st->next_entry > sm->entry) {
        if (st == NULL) {
            st = &c->streams[0];
            for (int i = 1; i < MAX_STREAMS; i++)
                if (c->streams[i].ar == NULL || (st->ar != NULL && c->streams[i].used < st->used))
                    st = &c->streams[i];
        }
        close_stream(st);
        if ((st->ar = open_shard(shard, err)) == NULL)
            return err->code;
        c->opens++;
        st->shard = sm->shard;
        st->next_entry = 0;
        st->next_image = c->first_image[sm->shard];
    }
    st->used = ++c->clock;
    for (;;) {
        orch_archive_member ent;
        int h = next_header(st->ar, shard, "", &ent, err);
        if (h == 1)
            h = orch_seterr(err, ORCH_EINVAL,
                            "%s: ended before image %d: changed since it was indexed", shard,
                            index);
        if (h != ORCH_OK) {
            close_stream(st);
            return h;
        }
        int64_t e = st->next_entry++;
        int j = st->next_image;
        if (j >= c->first_image[sm->shard + 1] || c->samples[j].entry != e)
            continue; /* a label or a grid: its data is skipped */
        st->next_image++;
        const char *name = ent.name;
        int rc = ORCH_OK;
        if (j == index) {
            size_t len = 0;
            rc = read_member(st->ar, &c->member, &c->member_cap, &len, err);
            if (rc == ORCH_OK)
                rc = decode_into(c, index, name, c->member, len, dst, err);
            if (rc != ORCH_OK)
                close_stream(st);
            return rc;
        }
        if (c->shuffle > 0 && (rc = keep(c, st->ar, j, name, err)) != ORCH_OK) {
            close_stream(st);
            return rc;
        }
    }
}

static void order_hook(const orch_dataset *ds, uint64_t seed, int64_t epoch, int *perm)
{
    shards_ctx *c = ds->ctx;
    orch_shards_order(c->first_image, c->n_shards, c->shuffle, seed, epoch, c->order_scratch, perm);
}

void orch_shards_reader_stats(const orch_dataset *ds, int *held, int64_t *opens)
{
    const shards_ctx *c = ds->ctx;
    *held = c->fifo_count;
    *opens = c->opens;
}

/* -------------------------------------------------------------- open */

int orch_shards_open(const orch_shards_config *cfg, orch_dataset *out, orch_err *err)
{
    memset(out, 0, sizeof *out);
    if (cfg->n_paths < 1)
        return orch_seterr(err, ORCH_EINVAL, "shards: no shards");
    if (orch_processor_patch_dim(cfg->proc) != cfg->patch_dim)
        return orch_seterr(err, ORCH_EINVAL,
                           "shards: the processor makes rows of %d values, the model takes %d",
                           orch_processor_patch_dim(cfg->proc), cfg->patch_dim);
    shards_ctx *c = calloc(1, sizeof *c);
    index_out ix = {0};
    int rc = ORCH_OK;
    if (c == NULL || (c->first_image = calloc((size_t)cfg->n_paths + 1, sizeof(int))) == NULL ||
        (c->paths = calloc((size_t)cfg->n_paths, sizeof(char *))) == NULL)
        rc = orch_seterr(err, ORCH_ENOMEM, "shards: out of memory");
    if (rc == ORCH_OK)
        c->n_shards = cfg->n_paths;
    for (int s = 0; rc == ORCH_OK && s < cfg->n_paths; s++) {
        if ((c->paths[s] = strdup(cfg->paths[s])) == NULL)
            rc = orch_seterr(err, ORCH_ENOMEM, "shards: out of memory");
        else
            rc = index_shard(cfg, s, &ix, err);
        c->first_image[s + 1] = ix.n;
    }
    out->n_images = ix.n;
    out->patch_dim = cfg->patch_dim;
    out->merge = cfg->proc->merge_size;
    out->grid_thw = ix.grid;
    out->label_kind = ORCH_LABEL_CLASS;
    out->n_classes = cfg->n_classes;
    out->class_labels = ix.labels;
    if (rc == ORCH_OK && !cfg->index_only &&
        (out->files = calloc((size_t)cfg->n_paths, sizeof *out->files)) == NULL)
        rc = orch_seterr(err, ORCH_ENOMEM, "shards: out of memory");
    /* the record of the inputs needs the hashes; a plan-time check does not */
    for (int s = 0; rc == ORCH_OK && !cfg->index_only && s < cfg->n_paths; s++) {
        orch_data_file *f = &out->files[s];
        if ((f->path = strdup(cfg->paths[s])) == NULL)
            rc = orch_seterr(err, ORCH_ENOMEM, "shards: out of memory");
        else
            rc = orch_file_sha256(cfg->paths[s], f->sha256, &f->bytes, err);
        out->n_files = s + 1;
    }
    if (rc == ORCH_OK && cfg->index_only) {
        rc = orch_dataset_index(out, cfg->paths[0], err);
        free_ctx(c);
        c = NULL;
        free(ix.samples);
    } else if (rc == ORCH_OK) {
        c->samples = ix.samples;
        c->n_images = ix.n;
        c->shuffle = cfg->shuffle > 0 ? cfg->shuffle : 0;
        c->proc = *cfg->proc;
        c->patch_dim = cfg->patch_dim;
        c->grid_thw = out->grid_thw;
        c->order_scratch =
            malloc((size_t)orch_shards_order_scratch(c->n_shards, ix.n, c->shuffle) * sizeof(int));
        c->fifo = malloc((size_t)(c->shuffle > 0 ? c->shuffle : 1) * sizeof *c->fifo);
        if (c->order_scratch == NULL || c->fifo == NULL)
            rc = orch_seterr(err, ORCH_ENOMEM, "shards: out of memory");
        out->read_patches = read_patches;
        out->ctx = c;
        out->free_ctx = free_ctx;
        out->order = order_hook;
        c = NULL;
        if (rc == ORCH_OK)
            rc = orch_dataset_finish(out, cfg->paths[0], err);
    } else {
        free(ix.samples);
    }
    free_ctx(c);
    if (rc != ORCH_OK)
        orch_dataset_free(out);
    return rc;
}
