/*
 * fuzz_bundle.c - libFuzzer target: a bundle (written to a temporary file:
 * the reader takes a path) staged by the safe reader of store/bundle_read.c
 * with small limits, and every staged member named *.csv parsed as the
 * bundle's CSV. Whatever the bytes, the reader refuses or stages, and the
 * staging folder is gone afterwards.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/err.h"
#include "store/bundle_int.h"
#include "tests/fuzz/fuzz_file.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fuzz_write("fuzz.bundle", data, size);
    char tmpl[600];
    snprintf(tmpl, sizeof tmpl, "%s/stage-XXXXXX", fuzz_dir());
    orch_bundle_limits lim;
    orch_bundle_default_limits(&lim);
    lim.max_member_bytes = 1 << 20;
    lim.max_total_bytes = 4 << 20;
    lim.max_members = 64;
    lim.ratio_floor = 1 << 16;
    orch_err err = {0};
    bundle_staged b;
    if (bundle_stage(path, &lim, tmpl, &b, &err) != ORCH_OK) {
        if (b.n != 0 || b.members != NULL || b.dir[0] != '\0')
            abort(); /* bundle_int.h: nothing left on failure */
        return 0;
    }
    for (int i = 0; i < b.n; i++) {
        size_t len = strlen(b.members[i].name);
        if (len < 4 || strcmp(b.members[i].name + len - 4, ".csv") != 0)
            continue;
        char *text = NULL;
        if (bundle_slurp(&b, &b.members[i], &text, &err) != ORCH_OK)
            abort(); /* a staged member reads back */
        orch_rowset rows;
        if (bundle_csv_parse("fuzz", text, (size_t)b.members[i].bytes, &rows, &err) == ORCH_OK)
            orch_rowset_free(&rows);
        free(text);
    }
    char dir[sizeof b.dir];
    snprintf(dir, sizeof dir, "%s", b.dir);
    bundle_unstage(&b);
    struct stat st;
    if (stat(dir, &st) == 0)
        abort(); /* the staging folder is removed */
    return 0;
}
