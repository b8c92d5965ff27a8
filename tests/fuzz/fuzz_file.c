/* fuzz_file.c - the fuzz targets' temporary directory; see fuzz_file.h. */
#include "tests/fuzz/fuzz_file.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char g_dir[512];

/* Removes the files of g_dir (flat: the targets write no subdirectories)
 * and g_dir itself. */
static void remove_dir(void)
{
    DIR *d = opendir(g_dir);
    if (d == NULL)
        return;
    struct dirent *e;
    char path[1024];
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        snprintf(path, sizeof path, "%s/%s", g_dir, e->d_name);
        unlink(path);
    }
    closedir(d);
    rmdir(g_dir);
}

const char *fuzz_dir(void)
{
    if (g_dir[0] != '\0')
        return g_dir;
    /* /dev/shm: one file is written per input, thousands a second; in
     * memory that costs little next to the reader itself. */
    const char *tmp = getenv("TMPDIR");
    if (tmp == NULL || *tmp == '\0')
        tmp = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    snprintf(g_dir, sizeof g_dir, "%s/orch-fuzz-XXXXXX", tmp);
    if (mkdtemp(g_dir) == NULL) {
        perror("fuzz: mkdtemp");
        abort();
    }
    atexit(remove_dir);
    return g_dir;
}

const char *fuzz_write(const char *name, const uint8_t *data, size_t size)
{
    static char path[1024];
    snprintf(path, sizeof path, "%s/%s", fuzz_dir(), name);
    FILE *fp = fopen(path, "wb");
    if (fp == NULL || (size > 0 && fwrite(data, 1, size, fp) != size) || fclose(fp) != 0) {
        perror("fuzz: writing the input");
        abort();
    }
    return path;
}
