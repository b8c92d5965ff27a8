/* cmd_shards.c - `orch shards SRC -o PATTERN --per-shard N`: tar shards
 * in the WebDataset convention (core/shards.h) from an image folder, a
 * CSV or an .npy set, written by core/shards_write.h. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/cli.h"
#include "core/dataset.h"
#include "core/image.h"
#include "core/image_source.h"
#include "core/processor.h"
#include "core/shards_write.h"
#include "store/npy.h"
#include "store/npy_dataset.h"

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

/* An image folder (labels: a CSV, or "" for class sub-folders), listed by
 * the `images` source itself (core/image_source.h), so the shards hold the
 * images, labels and order a pipeline with images { ... } would train on.
 * The files go in as they are, never decoded. */
static int write_images(const shards_args *a, const char *dir, const char *labels, orch_err *err)
{
    orch_image_source_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.dir = dir;
    cfg.labels = labels;
    /* a processor that keeps every size: the listing checks headers only */
    orch_processor_defaults(&cfg.proc);
    cfg.proc.patch_size = cfg.proc.temporal_patch_size = cfg.proc.merge_size = 1;
    cfg.proc.min_pixels = 1;
    cfg.proc.max_pixels = INT_MAX;
    cfg.cache_bytes = 0;
    orch_dataset ds;
    int rc = orch_image_source_open(&cfg, &ds, err);
    if (rc != ORCH_OK)
        return rc;
    if (ds.n_class_names > 0) {
        printf("classes:");
        for (int c = 0; c < ds.n_class_names; c++)
            printf(" %s=%d", ds.class_names[c], c);
        printf("\n");
    }
    orch_shard_writer *w = NULL;
    rc = orch_shard_writer_open(a->out, a->per_shard, ds.n_images, a->force, &w, err);
    for (int i = 0; rc == ORCH_OK && i < ds.n_images; i++) {
        unsigned char *bytes = NULL;
        size_t len = 0;
        rc = read_file(ds.files[i].path, &bytes, &len, err);
        if (rc != ORCH_OK)
            break;
        char key[32], cls[32];
        snprintf(key, sizeof key, "%06d", i);
        int cls_len = snprintf(cls, sizeof cls, "%lld\n", (long long)ds.class_labels[i]);
        /* the member's extension follows the bytes, whatever the file is called */
        const char *ext = orch_image_format_of(bytes, len) == ORCH_IMAGE_PNG ? "png" : "jpg";
        orch_shard_member m[2] = {{ext, bytes, len}, {"cls", cls, (size_t)cls_len}};
        rc = orch_shard_writer_add(w, key, m, 2, err);
        free(bytes);
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
    int rc;
    size_t n = strlen(a.src);
    if (n > 4 && strcasecmp(a.src + n - 4, ".csv") == 0 && is_file(a.src)) {
        /* the CSV's files are relative to its folder */
        char dir[4096];
        snprintf(dir, sizeof dir, "%s", a.src);
        char *slash = strrchr(dir, '/');
        if (slash != NULL)
            *slash = '\0';
        else
            snprintf(dir, sizeof dir, ".");
        rc = write_images(&a, dir, a.src, err);
    } else if (!is_dir(a.src)) {
        rc = orch_seterr(err, ORCH_EINVAL,
                         "%s: not a folder or a .csv file (SRC: an image folder, a CSV "
                         "`file,label` or a folder with pixel_values.npy)",
                         a.src);
    } else {
        char pv[4096];
        snprintf(pv, sizeof pv, "%s/pixel_values.npy", a.src);
        if (a.labels == NULL && is_file(pv))
            rc = write_npy_set(&a, err);
        else
            rc = write_images(&a, a.src, a.labels != NULL ? a.labels : "", err);
    }
    return rc;
}
