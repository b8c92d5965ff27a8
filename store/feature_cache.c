/* feature_cache.c - tower outputs on disk, one file per key; see feature_cache.h. */
#include "store/feature_cache.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct orch_fcache {
    char dir[4096];
};

/* "ORCHFC1\0" then the float count: a file of another format or size is a miss. */
static const char magic[8] = {'O', 'R', 'C', 'H', 'F', 'C', '1', '\0'};

void orch_fcache_key_hex(orch_fcache_key key, char out[ORCH_FCACHE_KEY_HEX])
{
    snprintf(out, ORCH_FCACHE_KEY_HEX, "%016llx%016llx", (unsigned long long)key.hi,
             (unsigned long long)key.lo);
}

int orch_fcache_entry_file(const char *dir, const char *hex, char *buf, size_t n)
{
    return (size_t)snprintf(buf, n, "%s/%s.f32", dir, hex) < n ? 0 : -1;
}

static void entry_path(const orch_fcache *c, orch_fcache_key key, char *buf, size_t n)
{
    char hex[ORCH_FCACHE_KEY_HEX];
    orch_fcache_key_hex(key, hex);
    orch_fcache_entry_file(c->dir, hex, buf, n);
}

int orch_fcache_open(const char *dir, orch_fcache **out, orch_err *err)
{
    *out = NULL;
    if (mkdir(dir, 0777) != 0 && errno != EEXIST)
        return orch_seterr(err, ORCH_EIO, "feature cache %s: %s", dir, strerror(errno));
    orch_fcache *c = calloc(1, sizeof *c);
    if (c == NULL)
        return orch_seterr(err, ORCH_ENOMEM, "feature cache: out of memory");
    snprintf(c->dir, sizeof c->dir, "%s", dir);
    *out = c;
    return ORCH_OK;
}

void orch_fcache_close(orch_fcache *c)
{
    free(c);
}

int orch_fcache_get(orch_fcache *c, orch_fcache_key key, float *dst, size_t n)
{
    char path[4200];
    entry_path(c, key, path, sizeof path);
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return 0;
    char head[8];
    uint64_t count = 0;
    int hit = fread(head, 1, 8, f) == 8 && memcmp(head, magic, 8) == 0 &&
              fread(&count, sizeof count, 1, f) == 1 && count == n &&
              fread(dst, sizeof(float), n, f) == n;
    fclose(f);
    return hit;
}

int orch_fcache_put(orch_fcache *c, orch_fcache_key key, const float *src, size_t n, orch_err *err)
{
    char path[4200], tmp[4300];
    entry_path(c, key, path, sizeof path);
    snprintf(tmp, sizeof tmp, "%s.%ld.tmp", path, (long)getpid());
    FILE *f = fopen(tmp, "wb");
    if (f == NULL)
        return orch_seterr(err, ORCH_EIO, "feature cache %s: %s", tmp, strerror(errno));
    uint64_t count = n;
    int ok = fwrite(magic, 1, 8, f) == 8 && fwrite(&count, sizeof count, 1, f) == 1 &&
             fwrite(src, sizeof(float), n, f) == n;
    ok = (fclose(f) == 0) && ok;
    if (!ok || rename(tmp, path) != 0) {
        unlink(tmp);
        return orch_seterr(err, ORCH_EIO, "feature cache %s: cannot write", path);
    }
    return ORCH_OK;
}
