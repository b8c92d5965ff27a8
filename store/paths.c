/*
 * paths.c - where a store's files are, and how their paths are recorded.
 *
 * Beside the store file PATH live the run folders, PATH.runs/RUN/, and the
 * detach feature cache, PATH.features/. A path recorded in the store (an
 * artifact) is relative to the store's directory when the file is inside
 * it, so the store and its folders can be moved or copied together and
 * read from any working directory; a file elsewhere is recorded absolute.
 * The comparison is lexical (no symlinks resolved), so it also works for
 * files that do not exist yet or any more.
 */
#include "store/store_int.h"

#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* path made absolute against the working directory, with "." and ".."
 * components and repeated slashes removed, into out (n bytes). -1 when it
 * does not fit or the working directory is unknown. */
static int absolute_path(const char *path, char *out, size_t n)
{
    char joined[2 * STORE_PATH_MAX];
    if (path[0] == '/') {
        if (strlen(path) >= sizeof joined)
            return -1;
        strcpy(joined, path);
    } else {
        char cwd[STORE_PATH_MAX];
        if (getcwd(cwd, sizeof cwd) == NULL)
            return -1;
        if ((size_t)snprintf(joined, sizeof joined, "%s/%s", cwd, path) >= sizeof joined)
            return -1;
    }
    /* out gets "/a/b" component by component; ".." drops the last one */
    size_t len = 0;
    char *save = NULL;
    if (n < 2)
        return -1;
    out[0] = '\0';
    for (char *c = strtok_r(joined, "/", &save); c != NULL; c = strtok_r(NULL, "/", &save)) {
        if (strcmp(c, ".") == 0)
            continue;
        if (strcmp(c, "..") == 0) {
            char *slash = strrchr(out, '/');
            len = slash != NULL ? (size_t)(slash - out) : 0;
            out[len] = '\0';
            continue;
        }
        size_t k = strlen(c);
        if (len + 1 + k + 1 > n)
            return -1;
        out[len++] = '/';
        memcpy(out + len, c, k + 1);
        len += k;
    }
    if (len == 0)
        strcpy(out, "/");
    return 0;
}

/* The absolute directory of the store file, into out. */
static int store_dir(const orch_store *s, char *out, size_t n)
{
    char tmp[STORE_PATH_MAX];
    const char *slash = strrchr(s->path, '/');
    if (slash == NULL)
        snprintf(tmp, sizeof tmp, ".");
    else if (slash == s->path)
        snprintf(tmp, sizeof tmp, "/");
    else if ((size_t)(slash - s->path) < sizeof tmp)
        snprintf(tmp, sizeof tmp, "%.*s", (int)(slash - s->path), s->path);
    else
        return -1;
    return absolute_path(tmp, out, n);
}

int store_record_path(const orch_store *s, const char *path, char *out, size_t n, orch_err *err)
{
    char dir[STORE_PATH_MAX], file[STORE_PATH_MAX];
    if (store_dir(s, dir, sizeof dir) != 0 || absolute_path(path, file, sizeof file) != 0)
        return orch_seterr(err, ORCH_EINVAL, "store: cannot make %s absolute", path);
    size_t k = strlen(dir);
    const char *rel = NULL;
    if (strcmp(dir, "/") == 0)
        rel = file + 1;
    else if (strncmp(file, dir, k) == 0 && file[k] == '/')
        rel = file + k + 1;
    if ((size_t)snprintf(out, n, "%s", rel != NULL ? rel : file) >= n)
        return orch_seterr(err, ORCH_EINVAL, "store: path %s is too long", path);
    return ORCH_OK;
}

int orch_store_resolve_path(const orch_store *s, const char *recorded, char *out, size_t n)
{
    if (s == NULL || recorded == NULL)
        return -1;
    if (recorded[0] == '/')
        return (size_t)snprintf(out, n, "%s", recorded) < n ? 0 : -1;
    const char *slash = strrchr(s->path, '/');
    int k = slash != NULL ? (int)(slash - s->path) + 1 : 0; /* the directory, with its '/' */
    if ((size_t)snprintf(out, n, "%.*s%s", k, s->path, recorded) >= n)
        return -1;
    /* A store of schema version 2 recorded paths relative to the directory
     * orch ran in: when the file is not beside the store but is there, that
     * is the one. */
    struct stat sb;
    if (stat(out, &sb) != 0 && stat(recorded, &sb) == 0)
        snprintf(out, n, "%s", recorded);
    return 0;
}

int orch_store_run_dir(const orch_store *s, int64_t run_id, char *out, size_t n)
{
    if (s == NULL || strcmp(s->path, ":memory:") == 0)
        return -1;
    return (size_t)snprintf(out, n, "%s.runs/%lld", s->path, (long long)run_id) < n ? 0 : -1;
}

int store_features_dir(const orch_store *s, char *out, size_t n)
{
    if (strcmp(s->path, ":memory:") == 0)
        return -1;
    return (size_t)snprintf(out, n, "%s.features", s->path) < n ? 0 : -1;
}

/* Is name a temporary file of an atomic write: "<anything>.tmp-XXXXXX"? */
static int is_tmp_name(const char *name)
{
    const char *t = strstr(name, ".tmp-");
    while (t != NULL && strstr(t + 1, ".tmp-") != NULL)
        t = strstr(t + 1, ".tmp-");
    return t != NULL && t != name && strlen(t + 5) == 6;
}

int64_t orch_store_clean_tmp(const orch_store *s, int64_t run_id, FILE *notes)
{
    char dir[STORE_PATH_MAX], path[2 * STORE_PATH_MAX];
    int64_t files = 0, bytes = 0;
    if (orch_store_run_dir(s, run_id, dir, sizeof dir) != 0)
        return 0;
    DIR *d = opendir(dir);
    if (d == NULL)
        return 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        struct stat sb;
        if (!is_tmp_name(e->d_name))
            continue;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        if (lstat(path, &sb) != 0 || !S_ISREG(sb.st_mode))
            continue;
        if (unlink(path) == 0) {
            files++;
            bytes += (int64_t)sb.st_size;
        }
    }
    closedir(d);
    if (files > 0 && notes != NULL) {
        char size[32];
        if (bytes >= (1LL << 30))
            snprintf(size, sizeof size, "%.1f GB", (double)bytes / (1 << 30));
        else if (bytes >= (1LL << 20))
            snprintf(size, sizeof size, "%.1f MB", (double)bytes / (1 << 20));
        else
            snprintf(size, sizeof size, "%lld bytes", (long long)bytes);
        fprintf(notes,
                "orch: run %lld: removed %lld temporary file%s (%s) left by an "
                "interrupted write\n",
                (long long)run_id, (long long)files, files == 1 ? "" : "s", size);
        fflush(notes);
    }
    return files;
}

void store_sanitize(const char *text, char *out, size_t n)
{
    size_t j = 0;
    if (n == 0)
        return;
    for (const unsigned char *c = (const unsigned char *)(text != NULL ? text : ""); *c != '\0';
         c++) {
        char esc[8];
        int k;
        if (*c < 0x20 || *c == 0x7f)
            k = snprintf(esc, sizeof esc, "\\x%02x", *c);
        else
            k = snprintf(esc, sizeof esc, "%c", *c);
        if (j + (size_t)k + 1 > n)
            break;
        memcpy(out + j, esc, (size_t)k);
        j += (size_t)k;
    }
    out[j] = '\0';
}

int orch_checkpoint_optimizer_path(const char *weights, char *out, size_t n)
{
    static const char ext[] = ".safetensors";
    size_t len = strlen(weights), k = sizeof ext - 1;
    if (len < k || strcmp(weights + len - k, ext) != 0)
        return -1;
    int w = snprintf(out, n, "%.*s.optimizer%s", (int)(len - k), weights, ext);
    return w < 0 || (size_t)w >= n ? -1 : 0;
}
