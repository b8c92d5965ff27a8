/* cmd_shards.c - `orch shards SRC -o PATTERN --per-shard N`: tar shards
 * in the WebDataset convention (core/shards.h) from an image folder, a
 * CSV or an .npy set, written by core/shards_write.h. */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/cli.h"
#include "core/dataset.h"
#include "core/shards_write.h"
#include "store/npy.h"
#include "store/npy_dataset.h"

/* One image file of the source and its label as written (a class name or
 * an integer id). */
typedef struct src_image {
    char *path;  /* as opened (owned) */
    char *rel;   /* relative to SRC, the sort key (owned) */
    char *label; /* owned */
    int id;
} src_image;

typedef struct src_list {
    src_image *v;
    int n, cap;
} src_list;

static void list_free(src_list *l)
{
    for (int i = 0; i < l->n; i++) {
        free(l->v[i].path);
        free(l->v[i].rel);
        free(l->v[i].label);
    }
    free(l->v);
    memset(l, 0, sizeof *l);
}

static int list_add(src_list *l, const char *path, const char *rel, const char *label,
                    orch_err *err)
{
    if (l->n == l->cap) {
        int cap = l->cap ? 2 * l->cap : 64;
        src_image *v = realloc(l->v, (size_t)cap * sizeof *v);
        if (v == NULL)
            return orch_seterr(err, ORCH_ENOMEM, "shards: out of memory");
        l->v = v;
        l->cap = cap;
    }
    src_image *s = &l->v[l->n];
    s->path = strdup(path);
    s->rel = strdup(rel);
    s->label = strdup(label);
    s->id = -1;
    if (s->path == NULL || s->rel == NULL || s->label == NULL) {
        free(s->path);
        free(s->rel);
        free(s->label);
        return orch_seterr(err, ORCH_ENOMEM, "shards: out of memory");
    }
    l->n++;
    return ORCH_OK;
}

/* The member extension of an image file name ("jpg", "jpeg", "png"), or
 * NULL for anything else. */
static const char *image_ext(const char *name)
{
    const char *dot = strrchr(name, '.');
    if (dot == NULL)
        return NULL;
    static const char *const exts[] = {"jpg", "jpeg", "png"};
    for (size_t i = 0; i < 3; i++)
        if (strcasecmp(dot + 1, exts[i]) == 0)
            return exts[i];
    return NULL;
}

static int is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static int is_file(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* Sub-folders as classes: SRC/CLASS/FILE.{jpg,jpeg,png}. */
static int scan_class_folders(const char *src, src_list *l, orch_err *err)
{
    DIR *d = opendir(src);
    if (d == NULL)
        return orch_seterr(err, ORCH_EINVAL, "%s: cannot open: %s", src, strerror(errno));
    int rc = ORCH_OK, loose = 0;
    struct dirent *e;
    while (rc == ORCH_OK && (e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        char sub[4096];
        snprintf(sub, sizeof sub, "%s/%s", src, e->d_name);
        if (!is_dir(sub)) {
            loose += image_ext(e->d_name) != NULL;
            continue;
        }
        DIR *cd = opendir(sub);
        if (cd == NULL) {
            rc = orch_seterr(err, ORCH_EINVAL, "%s: cannot open: %s", sub, strerror(errno));
            break;
        }
        struct dirent *f;
        while (rc == ORCH_OK && (f = readdir(cd)) != NULL) {
            if (f->d_name[0] == '.' || image_ext(f->d_name) == NULL)
                continue;
            char path[8192], rel[4096];
            snprintf(path, sizeof path, "%s/%s", sub, f->d_name);
            snprintf(rel, sizeof rel, "%s/%s", e->d_name, f->d_name);
            rc = list_add(l, path, rel, e->d_name, err);
        }
        closedir(cd);
    }
    closedir(d);
    if (rc == ORCH_OK && loose > 0 && l->n == 0)
        return orch_seterr(err, ORCH_EINVAL,
                           "%s: images without labels: give --labels FILE.csv or put them in "
                           "one sub-folder per class",
                           src);
    return rc;
}

/* A CSV `file,label` with a header row; files relative to dir. */
static int read_csv(const char *csv, const char *dir, src_list *l, orch_err *err)
{
    FILE *fp = fopen(csv, "r");
    if (fp == NULL)
        return orch_seterr(err, ORCH_EINVAL, "%s: cannot open: %s", csv, strerror(errno));
    char line[8192];
    int rc = ORCH_OK;
    for (int lineno = 1; rc == ORCH_OK && fgets(line, sizeof line, fp) != NULL; lineno++) {
        size_t n = strlen(line);
        while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r' || line[n - 1] == ' '))
            line[--n] = '\0';
        if (lineno == 1 || n == 0)
            continue; /* the header row */
        char *comma = strchr(line, ',');
        if (comma == NULL || strchr(comma + 1, ',') != NULL || strchr(line, '"') != NULL) {
            rc = orch_seterr(err, ORCH_EINVAL, "%s:%d: expected `file,label`", csv, lineno);
            break;
        }
        *comma = '\0';
        const char *file = line, *label = comma + 1;
        while (*label == ' ')
            label++;
        if (*file == '\0' || *label == '\0') {
            rc = orch_seterr(err, ORCH_EINVAL, "%s:%d: expected `file,label`", csv, lineno);
            break;
        }
        char path[8192];
        snprintf(path, sizeof path, "%s/%s", dir, file);
        if (!is_file(path))
            rc = orch_seterr(err, ORCH_EINVAL, "%s:%d: %s: no such file", csv, lineno, path);
        else if (image_ext(file) == NULL)
            rc = orch_seterr(err, ORCH_EINVAL, "%s:%d: %s: not a .jpg, .jpeg or .png file", csv,
                             lineno, file);
        else
            rc = list_add(l, path, file, label, err);
    }
    fclose(fp);
    return rc;
}

static int cmp_rel(const void *a, const void *b)
{
    return strcmp(((const src_image *)a)->rel, ((const src_image *)b)->rel);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int is_id(const char *s)
{
    if (*s == '\0' || strlen(s) > 9)
        return 0;
    for (; *s; s++)
        if (!isdigit((unsigned char)*s))
            return 0;
    return 1;
}

/* Labels to class ids: all integers are ids as written; otherwise the
 * distinct names in sorted order get 0, 1, ... (printed to out). */
static int assign_ids(src_list *l, FILE *out, orch_err *err)
{
    int all_ids = 1;
    for (int i = 0; i < l->n; i++)
        all_ids &= is_id(l->v[i].label);
    if (all_ids) {
        for (int i = 0; i < l->n; i++)
            l->v[i].id = atoi(l->v[i].label);
        return ORCH_OK;
    }
    char **names = malloc((size_t)l->n * sizeof *names);
    if (names == NULL)
        return orch_seterr(err, ORCH_ENOMEM, "shards: out of memory");
    for (int i = 0; i < l->n; i++)
        names[i] = l->v[i].label;
    qsort(names, (size_t)l->n, sizeof *names, cmp_str);
    int k = 0;
    for (int i = 0; i < l->n; i++)
        if (k == 0 || strcmp(names[k - 1], names[i]) != 0)
            names[k++] = names[i];
    for (int i = 0; i < l->n; i++) {
        char **hit = bsearch(&l->v[i].label, names, (size_t)k, sizeof *names, cmp_str);
        l->v[i].id = (int)(hit - names);
    }
    fprintf(out, "classes:");
    for (int c = 0; c < k; c++)
        fprintf(out, " %s=%d", names[c], c);
    fprintf(out, "\n");
    free(names);
    return ORCH_OK;
}

static int read_file(const char *path, unsigned char **buf, size_t *len, orch_err *err)
{
    FILE *fp = fopen(path, "rb");
    if (fp == NULL)
        return orch_seterr(err, ORCH_EINVAL, "%s: cannot open: %s", path, strerror(errno));
    int rc = ORCH_OK;
    if (fseek(fp, 0, SEEK_END) != 0) {
        fclose(fp);
        return orch_seterr(err, ORCH_EIO, "%s: %s", path, strerror(errno));
    }
    long size = ftell(fp);
    rewind(fp);
    unsigned char *b = malloc(size > 0 ? (size_t)size : 1);
    if (size < 0 || b == NULL)
        rc = orch_seterr(err, ORCH_ENOMEM, "%s: out of memory", path);
    else if (fread(b, 1, (size_t)size, fp) != (size_t)size)
        rc = orch_seterr(err, ORCH_EIO, "%s: read failed", path);
    fclose(fp);
    if (rc != ORCH_OK) {
        free(b);
        return rc;
    }
    *buf = b;
    *len = (size_t)size;
    return ORCH_OK;
}

typedef struct shards_args {
    const char *src, *out, *labels;
    int per_shard, force;
} shards_args;

static int write_images(const shards_args *a, src_list *l, orch_err *err)
{
    if (l->n == 0)
        return orch_seterr(err, ORCH_EINVAL, "%s: no .jpg, .jpeg or .png images", a->src);
    qsort(l->v, (size_t)l->n, sizeof *l->v, cmp_rel);
    int rc = assign_ids(l, stdout, err);
    orch_shard_writer *w = NULL;
    if (rc == ORCH_OK)
        rc = orch_shard_writer_open(a->out, a->per_shard, l->n, a->force, &w, err);
    for (int i = 0; rc == ORCH_OK && i < l->n; i++) {
        unsigned char *bytes = NULL;
        size_t len = 0;
        rc = read_file(l->v[i].path, &bytes, &len, err);
        if (rc != ORCH_OK)
            break;
        char key[32], cls[32];
        snprintf(key, sizeof key, "%06d", i);
        int cls_len = snprintf(cls, sizeof cls, "%d\n", l->v[i].id);
        orch_shard_member m[2] = {{image_ext(l->v[i].rel), bytes, len},
                                  {"cls", cls, (size_t)cls_len}};
        rc = orch_shard_writer_add(w, key, m, 2, err);
        free(bytes);
    }
    int n_shards = 0;
    if (w != NULL) {
        int crc = orch_shard_writer_close(w, rc != ORCH_OK, &n_shards, rc == ORCH_OK ? err : NULL);
        if (rc == ORCH_OK)
            rc = crc;
    }
    if (rc == ORCH_OK)
        printf("wrote %d samples in %d shard%s (%s)\n", l->n, n_shards, n_shards == 1 ? "" : "s",
               a->out);
    return rc;
}

/* An .npy set: SRC/pixel_values.npy, image_grid_thw.npy, labels.npy; each
 * image becomes KEY.pixel_values.npy (its rows), KEY.image_grid_thw.npy
 * (3,) and KEY.cls. */
static int write_npy_set(const shards_args *a, orch_err *err)
{
    char pv[4096], grid[4096], labels[4096];
    snprintf(pv, sizeof pv, "%s/pixel_values.npy", a->src);
    snprintf(grid, sizeof grid, "%s/image_grid_thw.npy", a->src);
    snprintf(labels, sizeof labels, "%s/labels.npy", a->src);
    if (!is_file(labels))
        return orch_seterr(err, ORCH_EINVAL, "%s: no such file (an .npy set needs class labels)",
                           labels);
    orch_npy head;
    int rc = orch_npy_read_header(pv, ORCH_NPY_F32, &head, err);
    if (rc != ORCH_OK)
        return rc;
    if (head.ndim != 2 || head.shape[1] < 1)
        return orch_seterr(err, ORCH_EINVAL, "%s: expected (patches, C*tp*P*P) float32", pv);
    orch_dataset ds;
    rc = orch_npy_dataset_load(pv, grid, labels, (int)head.shape[1], 1, &ds, err);
    if (rc != ORCH_OK)
        return rc;
    if (ds.label_kind != ORCH_LABEL_CLASS) {
        orch_dataset_free(&ds);
        return orch_seterr(err, ORCH_EINVAL, "%s: shards hold int64 class ids, not float targets",
                           labels);
    }
    orch_shard_writer *w = NULL;
    rc = orch_shard_writer_open(a->out, a->per_shard, ds.n_images, a->force, &w, err);
    for (int i = 0; rc == ORCH_OK && i < ds.n_images; i++) {
        int64_t rows = orch_dataset_patches(&ds, i);
        int64_t pv_shape[2] = {rows, ds.patch_dim}, grid_shape[1] = {3};
        void *pv_buf = NULL, *grid_buf = NULL;
        size_t pv_len = 0, grid_len = 0;
        rc = orch_npy_encode_f32(ds.pixel_values + ds.patch_offset[i] * ds.patch_dim, pv_shape, 2,
                                 &pv_buf, &pv_len, err);
        if (rc == ORCH_OK)
            rc = orch_npy_encode_i64(&ds.grid_thw[3 * i], grid_shape, 1, &grid_buf, &grid_len, err);
        if (rc == ORCH_OK) {
            char key[32], cls[32];
            snprintf(key, sizeof key, "%06d", i);
            int cls_len = snprintf(cls, sizeof cls, "%lld\n", (long long)ds.class_labels[i]);
            orch_shard_member m[3] = {{"pixel_values.npy", pv_buf, pv_len},
                                      {"image_grid_thw.npy", grid_buf, grid_len},
                                      {"cls", cls, (size_t)cls_len}};
            rc = orch_shard_writer_add(w, key, m, 3, err);
        }
        free(pv_buf);
        free(grid_buf);
    }
    int n_shards = 0, n = ds.n_images;
    if (w != NULL) {
        int crc = orch_shard_writer_close(w, rc != ORCH_OK, &n_shards, rc == ORCH_OK ? err : NULL);
        if (rc == ORCH_OK)
            rc = crc;
    }
    orch_dataset_free(&ds);
    if (rc == ORCH_OK)
        printf("wrote %d samples in %d shard%s (%s)\n", n, n_shards, n_shards == 1 ? "" : "s",
               a->out);
    return rc;
}

int orch_cmd_shards(int argc, char **argv, orch_cli_globals *globals, orch_err *err)
{
    enum { OPT_OUT = 1, OPT_PER, OPT_LABELS, OPT_FORCE };
    static const orch_opt opts[] = {{"out", 1, OPT_OUT},
                                    {"per-shard", 1, OPT_PER},
                                    {"labels", 1, OPT_LABELS},
                                    {"force", 0, OPT_FORCE},
                                    {NULL, 0, 0}};
    orch_opt_state st = {.argc = argc, .argv = argv, .index = 1, .cmd = "shards"};
    shards_args a = {.per_shard = 1000};
    int id, more;
    while ((more = orch_opt_each(&st, opts, globals, &id, err)) > 0) {
        switch (id) {
        case OPT_OUT:
            a.out = st.value;
            break;
        case OPT_PER: {
            char *end;
            long v = strtol(st.value, &end, 10);
            if (*end != '\0' || v < 1 || v > 100000000)
                return orch_seterr(err, ORCH_EINVAL, "--per-shard %s: expected a count >= 1",
                                   st.value);
            a.per_shard = (int)v;
            break;
        }
        case OPT_LABELS:
            a.labels = st.value;
            break;
        case OPT_FORCE:
            a.force = 1;
            break;
        case ORCH_OPT_POSITIONAL:
            /* the short -o of the usage; orch_opt_next knows long options only */
            if (strcmp(st.value, "-o") == 0) {
                if (st.index >= argc)
                    return orch_seterr(err, ORCH_EINVAL, "shards: option '-o' needs a value");
                a.out = argv[st.index++];
                break;
            }
            if (a.src != NULL)
                return orch_seterr(err, ORCH_EINVAL, "shards: one SRC only (got %s and %s)", a.src,
                                   st.value);
            a.src = st.value;
            break;
        }
    }
    if (more < 0)
        return err->code;
    if (a.src == NULL || a.out == NULL)
        return orch_seterr(err, ORCH_EINVAL,
                           "usage: orch shards SRC -o 'out/train-%%03d.tar' [--per-shard N]");
    src_list l = {0};
    int rc;
    size_t n = strlen(a.src);
    if (n > 4 && strcasecmp(a.src + n - 4, ".csv") == 0 && is_file(a.src)) {
        char dir[4096];
        snprintf(dir, sizeof dir, "%s", a.src);
        char *slash = strrchr(dir, '/');
        if (slash != NULL)
            *slash = '\0';
        else
            snprintf(dir, sizeof dir, ".");
        rc = read_csv(a.src, dir, &l, err);
        if (rc == ORCH_OK)
            rc = write_images(&a, &l, err);
    } else if (!is_dir(a.src)) {
        rc = orch_seterr(err, ORCH_EINVAL,
                         "%s: not a folder or a .csv file (SRC: an image folder, a CSV "
                         "`file,label` or a folder with pixel_values.npy)",
                         a.src);
    } else if (a.labels != NULL) {
        rc = read_csv(a.labels, a.src, &l, err);
        if (rc == ORCH_OK)
            rc = write_images(&a, &l, err);
    } else {
        char pv[4096];
        snprintf(pv, sizeof pv, "%s/pixel_values.npy", a.src);
        if (is_file(pv)) {
            rc = write_npy_set(&a, err);
        } else {
            rc = scan_class_folders(a.src, &l, err);
            if (rc == ORCH_OK)
                rc = write_images(&a, &l, err);
        }
    }
    list_free(&l);
    return rc;
}
