/* image_source.c - the `images` data source; see image_source.h. */
#include "core/image_source.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/checkpoint.h"
#include "core/image.h"
#include "core/regular_file.h"

/* The in-memory cache's default budget (ORCH_IMAGE_CACHE_MB overrides). */
#define DEFAULT_CACHE_MB 1024

/* One image of the set, as the index knows it before decoding. */
typedef struct src_image {
    char *path;  /* dir/file, owned */
    int line;    /* CSV line, 0 for ImageFolder */
    char *label; /* the label as written (CSV) or the class folder's name; owned */
    int height, width;
} src_image;

/* The list being built (check and open share it). */
typedef struct src_list {
    src_image *img;
    int n, cap;
    char **classes; /* ImageFolder classes or CSV class names, sorted; owned */
    int n_classes;
    int ids_as_written; /* CSV labels all non-negative integers */
    int classes_sorted; /* classes in strcmp order (binary search) */
} src_list;

static void list_free(src_list *l)
{
    for (int i = 0; i < l->n; i++) {
        free(l->img[i].path);
        free(l->img[i].label);
    }
    free(l->img);
    for (int i = 0; i < l->n_classes; i++)
        free(l->classes[i]);
    free(l->classes);
    memset(l, 0, sizeof *l);
}

static char *join(const char *dir, const char *name)
{
    if (name[0] == '/')
        return strdup(name);
    size_t a = strlen(dir), b = strlen(name);
    char *s = malloc(a + b + 2);
    if (s == NULL)
        return NULL;
    memcpy(s, dir, a);
    size_t k = a;
    if (k > 0 && s[k - 1] != '/')
        s[k++] = '/';
    memcpy(s + k, name, b + 1);
    return s;
}

static int list_add(src_list *l, char *path, char *label, int line, orch_err *err)
{
    if (path == NULL || label == NULL || (l->n == l->cap && l->cap >= (1 << 28))) {
        free(path);
        free(label);
        return orch_seterr(err, ORCH_ENOMEM, "images: out of memory listing the files");
    }
    if (l->n == l->cap) {
        int cap = l->cap ? 2 * l->cap : 64;
        src_image *grown = realloc(l->img, (size_t)cap * sizeof *grown);
        if (grown == NULL) {
            free(path);
            free(label);
            return orch_seterr(err, ORCH_ENOMEM, "images: out of memory listing the files");
        }
        l->img = grown;
        l->cap = cap;
    }
    l->img[l->n++] = (src_image){.path = path, .label = label, .line = line};
    return ORCH_OK;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int cmp_image_path(const void *a, const void *b)
{
    return strcmp(((const src_image *)a)->path, ((const src_image *)b)->path);
}

static int has_image_suffix(const char *name)
{
    const char *dot = strrchr(name, '.');
    return dot != NULL && (strcasecmp(dot, ".png") == 0 || strcasecmp(dot, ".jpg") == 0 ||
                           strcasecmp(dot, ".jpeg") == 0);
}

/* *is_image = 1 when path starts with PNG or JPEG magic bytes, else 0;
 * ORCH_EINVAL when it cannot be read. */
static int sniff(const char *path, int *is_image, orch_err *err)
{
    /* a FIFO named like an image must not block the open */
    int fd = orch_open_regular(path, NULL, ORCH_EINVAL, err);
    if (fd < 0)
        return err->code;
    uint8_t head[8];
    ssize_t got = read(fd, head, sizeof head);
    close(fd);
    size_t n = got > 0 ? (size_t)got : 0;
    *is_image = orch_image_format_of(head, n) != ORCH_IMAGE_UNKNOWN;
    return ORCH_OK;
}

/* Sub-folders deeper than this are refused: symbolic links are followed
 * (as torchvision does), and a link to an ancestor would recurse forever. */
#define MAX_DEPTH 32

/* The images under folder (recursively) with label class, ImageFolder's
 * rule of image_source.h. */
static int walk_class(const char *folder, const char *class, int depth, src_list *l, orch_err *err)
{
    if (depth > MAX_DEPTH)
        return orch_seterr(err, ORCH_EINVAL,
                           "%s: more than %d folders deep (a symbolic link to a parent?)", folder,
                           MAX_DEPTH);
    DIR *d = opendir(folder);
    if (d == NULL)
        return orch_seterr(err, ORCH_EINVAL, "%s: cannot open folder: %s", folder, strerror(errno));
    int rc = ORCH_OK;
    struct dirent *e;
    while (rc == ORCH_OK && (e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue; /* ., .., hidden files */
        char *path = join(folder, e->d_name);
        struct stat st;
        if (path == NULL) {
            rc = orch_seterr(err, ORCH_ENOMEM, "images: out of memory");
        } else if (stat(path, &st) != 0) {
            rc = orch_seterr(err, ORCH_EINVAL, "%s: cannot read: %s", path, strerror(errno));
        } else if (S_ISDIR(st.st_mode)) {
            rc = walk_class(path, class, depth + 1, l, err);
        } else if (S_ISREG(st.st_mode)) {
            int is_image = 0;
            rc = sniff(path, &is_image, err);
            if (rc == ORCH_OK && is_image) {
                rc = list_add(l, path, strdup(class), 0, err);
                path = NULL; /* owned by the list */
            } else if (rc == ORCH_OK && has_image_suffix(e->d_name)) {
                rc = orch_seterr(err, ORCH_EINVAL,
                                 "%s: named like an image but not a PNG or JPEG image (unknown "
                                 "magic bytes)",
                                 path);
            }
        } else if (has_image_suffix(e->d_name)) { /* a FIFO, a device: never opened */
            rc = orch_seterr(err, ORCH_EINVAL, "%s: named like an image but not a regular file",
                             path);
        }
        free(path);
    }
    closedir(d);
    return rc;
}

static int list_folder(const char *dir, src_list *l, orch_err *err)
{
    DIR *d = opendir(dir);
    if (d == NULL)
        return orch_seterr(err, ORCH_EINVAL, "%s: cannot open folder: %s", dir, strerror(errno));
    int rc = ORCH_OK, n_entries = 0, cap = 0;
    struct dirent *e;
    while (rc == ORCH_OK && (e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        n_entries++;
        char *path = join(dir, e->d_name);
        struct stat st;
        if (path == NULL || stat(path, &st) != 0 || !S_ISDIR(st.st_mode)) {
            free(path);
            continue;
        }
        free(path);
        if (l->n_classes == cap) {
            cap = cap ? 2 * cap : 16;
            char **grown = realloc(l->classes, (size_t)cap * sizeof *grown);
            if (grown == NULL) {
                rc = orch_seterr(err, ORCH_ENOMEM, "images: out of memory");
                break;
            }
            l->classes = grown;
        }
        l->classes[l->n_classes] = strdup(e->d_name);
        if (l->classes[l->n_classes] == NULL)
            rc = orch_seterr(err, ORCH_ENOMEM, "images: out of memory");
        else
            l->n_classes++;
    }
    closedir(d);
    if (rc != ORCH_OK)
        return rc;
    if (n_entries == 0)
        return orch_seterr(err, ORCH_EINVAL, "%s: empty folder: no images", dir);
    if (l->n_classes == 0)
        return orch_seterr(err, ORCH_EINVAL,
                           "%s: no class sub-folders and no data.labels: give a CSV `file,label` "
                           "or one sub-folder per class (cat/001.jpg)",
                           dir);
    qsort(l->classes, (size_t)l->n_classes, sizeof *l->classes, cmp_str);
    for (int c = 0; c < l->n_classes && rc == ORCH_OK; c++) {
        char *folder = join(dir, l->classes[c]);
        if (folder == NULL)
            return orch_seterr(err, ORCH_ENOMEM, "images: out of memory");
        int first = l->n;
        rc = walk_class(folder, l->classes[c], 1, l, err);
        if (rc == ORCH_OK && l->n == first)
            rc = orch_seterr(err, ORCH_EINVAL, "%s: class folder without PNG or JPEG images",
                             folder);
        free(folder);
        if (rc == ORCH_OK)
            qsort(l->img + first, (size_t)(l->n - first), sizeof *l->img, cmp_image_path);
    }
    return rc;
}

/* ----------------------------------------------------------------- CSV */

/* Splits one CSV line (no newline) into at most max fields in place:
 * separators are commas, a field may be double-quoted with "" for a quote.
 * Returns the field count, or -1 for an unterminated quote. */
static int split_csv(char *line, char **fields, int max)
{
    int n = 0;
    char *p = line;
    for (;;) {
        char *out = p, *start = p;
        if (*p == '"') {
            p++;
            for (;;) {
                if (*p == '\0')
                    return -1;
                if (*p == '"' && p[1] == '"') {
                    *out++ = '"';
                    p += 2;
                } else if (*p == '"') {
                    p++;
                    break;
                } else {
                    *out++ = *p++;
                }
            }
            while (*p != ',' && *p != '\0')
                p++; /* text after the closing quote: ignored like Python's csv */
        } else {
            while (*p != ',' && *p != '\0')
                out = ++p;
        }
        int last = *p == '\0';
        *out = '\0';
        if (n < max)
            fields[n] = start;
        n++;
        if (last)
            return n;
        p++;
    }
}

static int is_class_id(const char *s)
{
    if (*s == '\0' || strlen(s) > 9)
        return 0;
    for (; *s; s++)
        if (*s < '0' || *s > '9')
            return 0;
    return 1;
}

static int read_csv(const char *csv, const char *dir, src_list *l, orch_err *err)
{
    int fd = orch_open_regular(csv, NULL, ORCH_EINVAL, err); /* not a FIFO */
    if (fd < 0)
        return err->code;
    FILE *f = fdopen(fd, "r");
    if (f == NULL) {
        close(fd);
        return orch_seterr(err, ORCH_ENOMEM, "%s: cannot read: %s", csv, strerror(errno));
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    int lineno = 0, rc = ORCH_OK, header = 0;
    while (rc == ORCH_OK && (len = getline(&line, &cap, f)) >= 0) {
        lineno++;
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
            line[--len] = '\0';
        if (len == 0)
            continue; /* blank lines, e.g. at the end */
        char *fields[2];
        int n = split_csv(line, fields, 2);
        if (n != 2) {
            rc = orch_seterr(err, ORCH_EINVAL,
                             n < 0 ? "%s:%d: unterminated quote"
                                   : "%s:%d: expected 2 columns `file,label`, got %d",
                             csv, lineno, n);
            break;
        }
        if (!header) { /* the header row names the columns; its content is free */
            header = 1;
            continue;
        }
        if (fields[0][0] == '\0' || fields[1][0] == '\0') {
            rc = orch_seterr(err, ORCH_EINVAL, "%s:%d: empty %s", csv, lineno,
                             fields[0][0] == '\0' ? "file name" : "label");
            break;
        }
        rc = list_add(l, join(dir, fields[0]), strdup(fields[1]), lineno, err);
    }
    free(line);
    fclose(f);
    if (rc == ORCH_OK && l->n == 0)
        rc = orch_seterr(err, ORCH_EINVAL, "%s: no rows after the header `file,label`", csv);
    return rc;
}

/* Duplicate rows: two rows naming the same path. */
static int check_duplicates(const char *csv, const src_list *l, orch_err *err)
{
    src_image *sorted = malloc((size_t)l->n * sizeof *sorted);
    if (sorted == NULL)
        return orch_seterr(err, ORCH_ENOMEM, "images: out of memory");
    memcpy(sorted, l->img, (size_t)l->n * sizeof *sorted);
    qsort(sorted, (size_t)l->n, sizeof *sorted, cmp_image_path);
    int rc = ORCH_OK;
    for (int i = 1; i < l->n; i++)
        if (strcmp(sorted[i].path, sorted[i - 1].path) == 0) {
            int a = sorted[i - 1].line, b = sorted[i].line;
            rc = orch_seterr(err, ORCH_EINVAL, "%s:%d: duplicate row for %s (also line %d)", csv,
                             a > b ? a : b, sorted[i].path, a > b ? b : a);
            break;
        }
    free(sorted);
    return rc;
}

/* Class ids of a CSV: as written when all are integers, else the sorted
 * distinct names. */
static int csv_classes(src_list *l, orch_err *err)
{
    l->ids_as_written = 1;
    for (int i = 0; i < l->n && l->ids_as_written; i++)
        l->ids_as_written = is_class_id(l->img[i].label);
    if (l->ids_as_written)
        return ORCH_OK;
    char **names = malloc((size_t)l->n * sizeof *names);
    if (names == NULL)
        return orch_seterr(err, ORCH_ENOMEM, "images: out of memory");
    for (int i = 0; i < l->n; i++)
        names[i] = l->img[i].label;
    qsort(names, (size_t)l->n, sizeof *names, cmp_str);
    int k = 0;
    for (int i = 0; i < l->n; i++)
        if (k == 0 || strcmp(names[k - 1], names[i]) != 0)
            names[k++] = names[i];
    l->classes = calloc((size_t)k, sizeof *l->classes);
    if (l->classes == NULL) {
        free(names);
        return orch_seterr(err, ORCH_ENOMEM, "images: out of memory");
    }
    for (int i = 0; i < k; i++) {
        l->classes[i] = strdup(names[i]);
        if (l->classes[i] == NULL) {
            free(names);
            l->n_classes = i;
            return orch_seterr(err, ORCH_ENOMEM, "images: out of memory");
        }
    }
    l->n_classes = k;
    free(names);
    return ORCH_OK;
}

static int names_sorted(char *const *names, int n)
{
    for (int i = 1; i < n; i++)
        if (strcmp(names[i - 1], names[i]) >= 0)
            return 0;
    return 1;
}

/* The id of a class name: its place in l->classes (-1: not there). */
static int class_of(const src_list *l, const char *label)
{
    if (l->ids_as_written)
        return atoi(label);
    if (!l->classes_sorted) {
        for (int i = 0; i < l->n_classes; i++)
            if (strcmp(l->classes[i], label) == 0)
                return i;
        return -1;
    }
    int lo = 0, hi = l->n_classes - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2, c = strcmp(l->classes[mid], label);
        if (c == 0)
            return mid;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid - 1;
    }
    return -1;
}

/* "CSV:LINE: " or "" for messages about an image. */
static const char *where(const orch_image_source_config *cfg, const src_image *im, char *buf,
                         size_t cap)
{
    if (im->line > 0)
        snprintf(buf, cap, "%s:%d: ", cfg->labels, im->line);
    else
        buf[0] = '\0';
    return buf;
}

static int parse_target(const char *s, float *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || *end != '\0' || errno != 0 || v != v || v > 3.4e38 || v < -3.4e38)
        return 0;
    *out = (float)v;
    return 1;
}

/* The classes given by the caller (cfg->class_names, the training set's)
 * replace the set's own: every class name of the set must be among them,
 * and ids are places in the given list. */
static int adopt_classes(const orch_image_source_config *cfg, src_list *l, int use_csv,
                         orch_err *err)
{
    src_list given = {.classes = (char **)cfg->class_names,
                      .n_classes = cfg->n_class_names,
                      .classes_sorted = names_sorted(cfg->class_names, cfg->n_class_names)};
    for (int i = 0; i < l->n_classes; i++)
        if (class_of(&given, l->classes[i]) < 0) {
            /* the first image of that class, for its CSV line */
            int line = 0;
            for (int k = 0; k < l->n && line == 0; k++)
                if (strcmp(l->img[k].label, l->classes[i]) == 0)
                    line = l->img[k].line;
            if (use_csv)
                return orch_seterr(err, ORCH_EINVAL,
                                   "%s:%d: class \"%s\" is not a class of the training data "
                                   "(%d: %s, ...)",
                                   cfg->labels, line, l->classes[i], cfg->n_class_names,
                                   cfg->class_names[0]);
            return orch_seterr(err, ORCH_EINVAL,
                               "%s/%s: class \"%s\" is not a class of the training data (%d: "
                               "%s, ...)",
                               cfg->dir, l->classes[i], l->classes[i], cfg->n_class_names,
                               cfg->class_names[0]);
        }
    char **copy = calloc((size_t)cfg->n_class_names, sizeof *copy);
    if (copy == NULL)
        return orch_seterr(err, ORCH_ENOMEM, "images: out of memory");
    for (int i = 0; i < cfg->n_class_names; i++)
        if ((copy[i] = strdup(cfg->class_names[i])) == NULL) {
            for (int k = 0; k < i; k++)
                free(copy[k]);
            free(copy);
            return orch_seterr(err, ORCH_ENOMEM, "images: out of memory");
        }
    for (int i = 0; i < l->n_classes; i++)
        free(l->classes[i]);
    free(l->classes);
    l->classes = copy;
    l->n_classes = cfg->n_class_names;
    l->classes_sorted = given.classes_sorted;
    return ORCH_OK;
}

/* The index: files, labels, and with headers = 1 every image's header
 * checked and its size read (the grids). */
static int build_list(const orch_image_source_config *cfg, int headers, src_list *l, orch_err *err)
{
    memset(l, 0, sizeof *l);
    int use_csv = cfg->labels != NULL && cfg->labels[0] != '\0';
    int rc;
    if (use_csv) {
        struct stat st;
        if (stat(cfg->dir, &st) != 0 || !S_ISDIR(st.st_mode))
            return orch_seterr(err, ORCH_EINVAL, "%s: cannot open folder: %s", cfg->dir,
                               stat(cfg->dir, &st) != 0 ? strerror(errno) : "not a folder");
        rc = read_csv(cfg->labels, cfg->dir, l, err);
        if (rc == ORCH_OK)
            rc = check_duplicates(cfg->labels, l, err);
        if (rc == ORCH_OK && !cfg->regression)
            rc = csv_classes(l, err);
    } else {
        if (cfg->regression)
            return orch_seterr(err, ORCH_EINVAL,
                               "%s: a regression head needs data.labels, a CSV `file,label` of "
                               "float targets",
                               cfg->dir);
        rc = list_folder(cfg->dir, l, err);
    }
    if (rc != ORCH_OK)
        return rc;
    l->classes_sorted = 1; /* sorted by csv_classes / list_folder */
    if (!cfg->regression && !l->ids_as_written && cfg->n_class_names > 0) {
        rc = adopt_classes(cfg, l, use_csv, err);
        if (rc != ORCH_OK)
            return rc;
    }
    if (!headers)
        return ORCH_OK;
    if (!cfg->regression && !l->ids_as_written && cfg->n_classes > 0 &&
        l->n_classes > cfg->n_classes)
        return orch_seterr(err, ORCH_EINVAL, "%s: %d classes (%s, ...), but head.classes = %d",
                           use_csv ? cfg->labels : cfg->dir, l->n_classes, l->classes[0],
                           cfg->n_classes);
    char at[ORCH_ERR_MSG_MAX / 2];
    for (int i = 0; i < l->n; i++) {
        src_image *im = &l->img[i];
        if (cfg->regression) {
            float t;
            if (!parse_target(im->label, &t))
                return orch_seterr(err, ORCH_EINVAL,
                                   "%s:%d: label \"%s\" is not a finite number (head.kind = "
                                   "\"regression\")",
                                   cfg->labels, im->line, im->label);
        } else if (l->ids_as_written && cfg->n_classes > 0 && atoi(im->label) >= cfg->n_classes) {
            return orch_seterr(err, ORCH_EINVAL,
                               "%s:%d: label %s is outside [0, %d) (head.classes = %d)",
                               cfg->labels, im->line, im->label, cfg->n_classes, cfg->n_classes);
        }
        orch_err e2;
        rc = orch_image_size_file(im->path, &im->height, &im->width, &e2);
        if (rc == ORCH_OK) {
            int64_t grid[3];
            rc = orch_processor_plan(&cfg->proc, im->height, im->width, grid, &e2);
            if (rc != ORCH_OK)
                return orch_seterr(err, rc, "%s%s: %s", where(cfg, im, at, sizeof at), im->path,
                                   e2.msg);
        }
        if (rc != ORCH_OK)
            return orch_seterr(err, rc, "%s%s", where(cfg, im, at, sizeof at), e2.msg);
    }
    return ORCH_OK;
}

int orch_image_source_check_count(const orch_image_source_config *cfg, int *n_images, orch_err *err)
{
    src_list l;
    int rc = build_list(cfg, 1, &l, err);
    if (rc == ORCH_OK)
        *n_images = l.n;
    list_free(&l);
    return rc;
}

int orch_image_source_check(const orch_image_source_config *cfg, orch_err *err)
{
    int n;
    return orch_image_source_check_count(cfg, &n, err);
}

int orch_image_source_classes(const orch_image_source_config *cfg, char ***names, int *n,
                              orch_err *err)
{
    *names = NULL;
    *n = 0;
    src_list l;
    int rc = build_list(cfg, 0, &l, err);
    if (rc == ORCH_OK && !cfg->regression && !l.ids_as_written) {
        *names = l.classes; /* moved to the caller */
        *n = l.n_classes;
        l.classes = NULL;
        l.n_classes = 0;
    }
    list_free(&l);
    return rc;
}

/* ------------------------------------------------- lazy reader + cache */

/* What read_patches needs: the paths, the processor, and the cache: per
 * image its processed patch rows once decoded, while the byte budget
 * lasts. The cache's key is the image's index in a data set whose files'
 * contents (sha256, taken at open) and processor settings are fixed for
 * the run; an image decoded once is never decoded again in this process.
 * Images beyond the budget are decoded each time they are asked for
 * (first come, first kept: with a shuffled order an evicting cache would
 * hit no more often). */
typedef struct src_ctx {
    int n;
    char **paths;      /* owned */
    int64_t *grid_thw; /* (n, 3) the grids of the index, a copy; owned */
    int patch_dim;
    orch_processor_config proc;
    float **cached;     /* per image, its patch rows or NULL; owned */
    int64_t cache_used; /* bytes */
    int64_t cache_budget;
} src_ctx;

static void ctx_free(void *p)
{
    src_ctx *c = p;
    if (c == NULL)
        return;
    for (int i = 0; i < c->n; i++) {
        if (c->paths != NULL)
            free(c->paths[i]);
        if (c->cached != NULL)
            free(c->cached[i]);
    }
    free(c->paths);
    free(c->grid_thw);
    free(c->cached);
    free(c);
}

static int64_t cache_budget(int64_t asked)
{
    if (asked >= 0)
        return asked;
    const char *env = getenv("ORCH_IMAGE_CACHE_MB");
    if (env != NULL && *env != '\0') {
        char *end;
        long long mb = strtoll(env, &end, 10);
        if (*end == '\0' && mb >= 0 && mb < (1LL << 40))
            return mb * 1024 * 1024;
    }
    return (int64_t)DEFAULT_CACHE_MB * 1024 * 1024;
}

static int src_read(void *p, int index, float *dst, orch_err *err)
{
    src_ctx *c = p;
    const int64_t *want = &c->grid_thw[3 * index];
    size_t bytes = (size_t)(want[0] * want[1] * want[2]) * (size_t)c->patch_dim * sizeof(float);
    if (c->cached[index] != NULL) {
        memcpy(dst, c->cached[index], bytes);
        return ORCH_OK;
    }
    orch_image img;
    int rc = orch_image_load(c->paths[index], &img, err);
    if (rc != ORCH_OK)
        return rc;
    /* the decoded size must be the header's, which sized the batch */
    int64_t grid[3];
    rc = orch_processor_plan(&c->proc, img.height, img.width, grid, err);
    if (rc == ORCH_OK && memcmp(grid, want, sizeof grid) != 0)
        rc = orch_seterr(err, ORCH_EINVAL,
                         "%s: decoded as %dx%d pixels, not the size its header gave at the start "
                         "of the run (the file changed?)",
                         c->paths[index], img.height, img.width);
    if (rc == ORCH_OK)
        rc = orch_processor_run(&c->proc, img.rgb, img.height, img.width, dst, grid, err);
    orch_image_free(&img);
    if (rc != ORCH_OK)
        return rc;
    if (c->cache_used + (int64_t)bytes <= c->cache_budget) {
        float *copy = malloc(bytes); /* owned by the cache; NULL: simply not cached */
        if (copy != NULL) {
            memcpy(copy, dst, bytes);
            c->cached[index] = copy;
            c->cache_used += (int64_t)bytes;
        }
    }
    return ORCH_OK;
}

int orch_image_source_open(const orch_image_source_config *cfg, orch_dataset *out, orch_err *err)
{
    memset(out, 0, sizeof *out);
    src_list l;
    src_ctx *c = NULL;
    int rc = build_list(cfg, 1, &l, err);
    if (rc != ORCH_OK)
        goto out;
    int use_csv = cfg->labels != NULL && cfg->labels[0] != '\0';
    int n = l.n;
    out->n_images = n;
    out->patch_dim = orch_processor_patch_dim(&cfg->proc);
    out->merge = cfg->proc.merge_size;
    out->grid_thw = malloc((size_t)n * 3 * sizeof *out->grid_thw);
    out->n_files = n + use_csv;
    out->files = calloc((size_t)out->n_files, sizeof *out->files);
    c = calloc(1, sizeof *c);
    if (out->grid_thw == NULL || out->files == NULL || c == NULL) {
        rc = orch_seterr(err, ORCH_ENOMEM, "images: out of memory");
        goto out;
    }
    c->n = n;
    c->paths = calloc((size_t)n, sizeof *c->paths);
    c->grid_thw = malloc((size_t)n * 3 * sizeof *c->grid_thw);
    c->cached = calloc((size_t)n, sizeof *c->cached);
    if (c->paths == NULL || c->grid_thw == NULL || c->cached == NULL) {
        rc = orch_seterr(err, ORCH_ENOMEM, "images: out of memory");
        goto out;
    }
    c->patch_dim = out->patch_dim;
    c->proc = cfg->proc;
    c->cache_budget = cache_budget(cfg->cache_bytes);
    if (cfg->regression) {
        out->label_kind = ORCH_LABEL_REGRESSION;
        out->n_targets = 1;
        out->targets = malloc((size_t)n * sizeof *out->targets);
        if (out->targets == NULL) {
            rc = orch_seterr(err, ORCH_ENOMEM, "images: out of memory");
            goto out;
        }
    } else {
        out->label_kind = ORCH_LABEL_CLASS;
        out->class_labels = malloc((size_t)n * sizeof *out->class_labels);
        if (out->class_labels == NULL) {
            rc = orch_seterr(err, ORCH_ENOMEM, "images: out of memory");
            goto out;
        }
        out->n_classes = cfg->n_classes;
    }
    for (int i = 0; i < n && rc == ORCH_OK; i++) {
        src_image *im = &l.img[i];
        rc = orch_processor_plan(&cfg->proc, im->height, im->width, &out->grid_thw[3 * i], err);
        if (rc != ORCH_OK)
            break;
        memcpy(&c->grid_thw[3 * i], &out->grid_thw[3 * i], 3 * sizeof *c->grid_thw);
        if (cfg->regression)
            parse_target(im->label, &out->targets[i]); /* checked by build_list */
        else
            out->class_labels[i] = class_of(&l, im->label);
        orch_data_file *f = &out->files[i];
        rc = orch_file_sha256(im->path, f->sha256, &f->bytes, err);
        if (rc != ORCH_OK)
            break;
        f->path = im->path; /* moved: the list no longer owns it */
        c->paths[i] = strdup(im->path);
        im->path = NULL;
        if (c->paths[i] == NULL)
            rc = orch_seterr(err, ORCH_ENOMEM, "images: out of memory");
    }
    if (rc == ORCH_OK && use_csv) {
        orch_data_file *f = &out->files[n];
        rc = orch_file_sha256(cfg->labels, f->sha256, &f->bytes, err);
        if (rc == ORCH_OK && (f->path = strdup(cfg->labels)) == NULL)
            rc = orch_seterr(err, ORCH_ENOMEM, "images: out of memory");
    }
    if (rc != ORCH_OK)
        goto out;
    /* class names: moved from the list */
    if (!cfg->regression && !l.ids_as_written) {
        out->n_class_names = l.n_classes;
        out->class_names = l.classes;
        l.classes = NULL;
        l.n_classes = 0;
    }
    out->read_patches = src_read;
    out->free_ctx = ctx_free;
    out->ctx = c;
    c = NULL; /* owned by out */
    rc = orch_dataset_finish(out, use_csv ? cfg->labels : cfg->dir, err);
out:
    ctx_free(c);
    list_free(&l);
    if (rc != ORCH_OK)
        orch_dataset_free(out);
    return rc;
}
