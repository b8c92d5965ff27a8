/* test_cli_data_identity.c - the data a run computed on, through the orch
 * binary: two runs of one configuration over .npy files, one byte of
 * pv.npy changed between them, show the same config hash and different
 * data hashes in `orch show`; each data file is recorded with the sha256
 * sha256sum gives, and the data hash is the one data_identity.h describes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <limits.h>

#include "tests/testutil.h"

static char dir[256];

static int setup(void **state)
{
    (void)state;
    return make_temp_dir(dir, sizeof dir) == NULL ? -1 : 0;
}

static int teardown(void **state)
{
    (void)state;
    remove_tree(dir);
    return 0;
}

/* Writes an .npy v1 file with the given header dict and payload bytes. */
static void write_npy(const char *path, const char *dict, const void *data, size_t bytes)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    int n = (int)strlen(dict);
    /* pad so magic(6)+version(2)+len(2)+header ends on a multiple of 64, newline last */
    int total = 10 + n + 1;
    int pad = (64 - total % 64) % 64;
    uint16_t hlen = (uint16_t)(n + pad + 1);
    fwrite("\x93NUMPY\x01\x00", 1, 8, f);
    fwrite(&hlen, 2, 1, f);
    fwrite(dict, 1, (size_t)n, f);
    for (int i = 0; i < pad; i++)
        fputc(' ', f);
    fputc('\n', f);
    fwrite(data, 1, bytes, f);
    fclose(f);
}

static const char *pipeline =
    "return {\n"
    "  model = { preset = \"tiny\" },\n"
    "  data = { source = \"npy\", pixel_values = \"pv.npy\", image_grid_thw = \"grid.npy\",\n"
    "           labels = \"labels.npy\" },\n"
    "  strategy = detach {},\n"
    "  head = { kind = \"classifier\", classes = 2 },\n"
    "  optimizer = { kind = \"sgd\", lr = 0.01 },\n"
    "  schedule = { steps = 2, batch_size = 2 },\n"
    "}\n";

/* Two images (16 + 4 patches of 24 values), labels 0 and 1. */
static void write_data(void)
{
    char path[512];
    float pv[20 * 24];
    for (int i = 0; i < 20 * 24; i++)
        pv[i] = (float)(i % 7) * 0.125f;
    snprintf(path, sizeof path, "%s/pv.npy", dir);
    write_npy(path, "{'descr': '<f4', 'fortran_order': False, 'shape': (20, 24), }", pv, sizeof pv);
    const int64_t grid[6] = {1, 4, 4, 1, 2, 2};
    snprintf(path, sizeof path, "%s/grid.npy", dir);
    write_npy(path, "{'descr': '<i8', 'fortran_order': False, 'shape': (2, 3), }", grid,
              sizeof grid);
    const int64_t labels[2] = {0, 1};
    snprintf(path, sizeof path, "%s/labels.npy", dir);
    write_npy(path, "{'descr': '<i8', 'fortran_order': False, 'shape': (2,), }", labels,
              sizeof labels);
    snprintf(path, sizeof path, "%s/p.lua", dir);
    assert_int_equal(write_text_file(path, pipeline), 0);
}

/* Runs a shell command in dir ("$ORCH" is the binary); returns its stdout
 * (malloc'd) after asserting exit 0. */
static char *sh(const char *command)
{
    char line[PATH_MAX + 2048], bin[PATH_MAX];
    if (realpath(orch_bin(), bin) == NULL) /* the commands run in dir */
        fail_msg("no orch binary at %s", orch_bin());
    snprintf(line, sizeof line, "ORCH='%s'; cd '%s' && %s", bin, dir, command);
    cli_result r;
    assert_int_equal(run_shell(line, &r), 0);
    if (r.exit_code != 0)
        fail_msg("%s: exit %d\n%s%s", command, r.exit_code, r.out, r.err);
    char *out = strdup(r.out);
    assert_non_null(out);
    cli_result_free(&r);
    return out;
}

/* The value of `orch show`'s field name ("  name   value"), copied into buf. */
static const char *field_of(const char *show, const char *name, char *buf, size_t n)
{
    char key[64];
    snprintf(key, sizeof key, "\n  %s ", name);
    const char *at = strstr(show, key);
    if (at == NULL)
        fail_msg("no field %s in:\n%s", name, show);
    at += strlen(key);
    while (*at == ' ')
        at++;
    size_t len = strcspn(at, "\n");
    snprintf(buf, n, "%.*s", (int)len, at);
    return buf;
}

/* The line of text that holds both a and b (copied into buf), or NULL. */
static const char *line_with(const char *text, const char *a, const char *b, char *buf, size_t n)
{
    for (const char *at = text; *at != '\0';) {
        size_t len = strcspn(at, "\n");
        snprintf(buf, n, "%.*s", (int)len, at);
        if (strstr(buf, a) != NULL && strstr(buf, b) != NULL)
            return buf;
        at += len + (at[len] == '\n');
    }
    return NULL;
}

static void test_changed_file_changes_data_hash(void **state)
{
    (void)state;
    write_data();
    free(sh("\"$ORCH\" run p.lua --db orch.db --quiet >/dev/null"));
    char *sha_before = sh("sha256sum pv.npy | cut -c1-64");
    /* one byte of the first float's payload: 0.0f becomes a denormal */
    free(sh("printf '\\001' | dd of=pv.npy bs=1 seek=128 conv=notrunc status=none"));
    char *sha_after = sh("sha256sum pv.npy | cut -c1-64");
    assert_string_not_equal(sha_before, sha_after);
    free(sh("\"$ORCH\" run p.lua --db orch.db --quiet >/dev/null"));

    char *show1 = sh("\"$ORCH\" show 1 --db orch.db");
    char *show2 = sh("\"$ORCH\" show 2 --db orch.db");
    char c1[128], c2[128], d1[128], d2[128];
    field_of(show1, "config_hash", c1, sizeof c1);
    field_of(show2, "config_hash", c2, sizeof c2);
    field_of(show1, "data_hash", d1, sizeof d1);
    field_of(show2, "data_hash", d2, sizeof d2);
    assert_int_equal(strlen(c1), 64);
    assert_string_equal(c1, c2);
    assert_int_equal(strlen(d1), 64);
    assert_int_equal(strlen(d2), 64);
    assert_string_not_equal(d1, d2);

    /* the data section: three train files, each with its sha256 */
    char buf[256];
    assert_string_equal(field_of(show1, "train", buf, sizeof buf), "3 files, 2.3 KiB");
    assert_non_null(strstr(show1, "\ndata\n  train "));
    char sha12[13];
    snprintf(sha12, sizeof sha12, "%.12s", sha_before);
    if (line_with(show1, "train  pv.npy ", sha12, buf, sizeof buf) == NULL)
        fail_msg("no pv.npy with %s in:\n%s", sha12, show1);
    snprintf(sha12, sizeof sha12, "%.12s", sha_after);
    if (line_with(show2, "train  pv.npy ", sha12, buf, sizeof buf) == NULL)
        fail_msg("no pv.npy with %s in:\n%s", sha12, show2);

    /* recorded whole, as sha256sum computes it; the run's own hash once */
    char *rows = sh("\"$ORCH\" query --db orch.db --csv \"SELECT run_id, role, path, sha256, "
                    "bytes FROM run_inputs ORDER BY run_id, path\" | tr -d '\\r'");
    char expect[1024];
    char *sha_grid = sh("sha256sum grid.npy | cut -c1-64");
    char *sha_labels = sh("sha256sum labels.npy | cut -c1-64");
    sha_before[64] = sha_after[64] = sha_grid[64] = sha_labels[64] = '\0';
    snprintf(expect, sizeof expect,
             "run_id,role,path,sha256,bytes\n"
             "1,train,grid.npy,%s,176\n1,train,labels.npy,%s,144\n1,train,pv.npy,%s,2048\n"
             "2,train,grid.npy,%s,176\n2,train,labels.npy,%s,144\n2,train,pv.npy,%s,2048\n",
             sha_grid, sha_labels, sha_before, sha_grid, sha_labels, sha_after);
    assert_string_equal(rows, expect);
    free(rows);
    /* the data hash is the sha256 of "role\0path\0sha256\0" in (role, path) order */
    char cmd[1024];
    snprintf(cmd, sizeof cmd,
             "printf 'train\\000grid.npy\\000%s\\000train\\000labels.npy\\000%s\\000"
             "train\\000pv.npy\\000%s\\000' | sha256sum | cut -c1-64",
             sha_grid, sha_labels, sha_before);
    char *hash = sh(cmd);
    hash[64] = '\0';
    assert_string_equal(hash, d1);
    free(hash);

    free(sha_grid);
    free(sha_labels);
    free(sha_before);
    free(sha_after);
    free(show1);
    free(show2);
}

/* Synthetic data has no files and no data hash (test_store_show_data
 * checks the listing of many files). */
static void test_synthetic_has_no_files(void **state)
{
    (void)state;
    char path[512];
    snprintf(path, sizeof path, "%s/s.lua", dir);
    assert_int_equal(
        write_text_file(path, "return {\n"
                              "  model = { preset = \"tiny\" },\n"
                              "  data = { source = \"synthetic\", samples = 4, classes = 2,\n"
                              "           image_size = {16, 16} },\n"
                              "  strategy = detach {},\n"
                              "  head = { kind = \"classifier\", classes = 2 },\n"
                              "  optimizer = { kind = \"sgd\", lr = 0.01 },\n"
                              "  schedule = { steps = 1, batch_size = 2 },\n"
                              "}\n"),
        0);
    free(sh("\"$ORCH\" run s.lua --db s.db --quiet >/dev/null"));
    char *show = sh("\"$ORCH\" show 1 --db s.db");
    char buf[128];
    assert_string_equal(field_of(show, "data_hash", buf, sizeof buf), "-");
    assert_non_null(strstr(show, "\ndata\n  no data files (synthetic data)\n"));
    free(show);

    /* --files is accepted; with no files there is nothing more to list */
    show = sh("\"$ORCH\" show 1 --files --db s.db");
    assert_non_null(strstr(show, "\ndata\n  no data files (synthetic data)\n"));
    free(show);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_changed_file_changes_data_hash, setup, teardown),
        cmocka_unit_test_setup_teardown(test_synthetic_has_no_files, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
