/* test_cli_export_adapter.c - `orch export-adapter` through the orch binary.
 *
 * LoRA: adapter_config.json and the header of adapter_model.safetensors are
 * byte for byte what PEFT writes for the same adapter (the fixture
 * tests/data/peft/, made by tests/data/peft/make_peft_fixture.py from
 * PEFT's save_pretrained and safetensors' serializer; its docstring names
 * the sources). Every strategy: names and shapes of each file, and each
 * tensor's bytes equal to the run's last checkpoint's. The refusals: an
 * unknown run, a run without a checkpoint, a full run, a non-empty folder
 * (untouched; --force replaces it), a file in the folder's place; and no
 * temporary folder is left behind. `orch predict` writes the logits of
 * the run's images (scripts/check_adapter.py compares them with PyTorch). */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "tests/testutil.h"

static char dir[256], db[320];

/* run ids, in the order setup runs them */
enum { RUN_LORA = 1, RUN_SURGERY, RUN_DETACH, RUN_MLP, RUN_FULL, RUN_DIVERGED };

static const char *const env[] = {"ORCH_THREADS=1", NULL};

static cli_result orch(const char *const argv[])
{
    cli_result r;
    assert_int_equal(run_orch(argv, env, &r), 0);
    return r;
}

static void orch_expect(const char *const argv[], int want_exit)
{
    cli_result r = orch(argv);
    if (r.exit_code != want_exit)
        fail_msg("%s %s: exit %d (want %d): %s", argv[0], argv[1] ? argv[1] : "", r.exit_code,
                 want_exit, r.err);
    cli_result_free(&r);
}

/* Runs pipelines/NAME.lua (the shipped ones) for 3 steps with overrides. */
static void run_pipeline(const char *file, const char *set1, const char *set2, int want_exit)
{
    const char *argv[] = {"run",   file, "--db",  db,   "--quiet", "--set", "schedule.steps=3",
                          "--set", set1, "--set", set2, NULL};
    orch_expect(argv, want_exit);
}

static int setup(void **state)
{
    (void)state;
    if (make_temp_store(dir, sizeof dir, db, sizeof db) != 0)
        return -1;
    run_pipeline("pipelines/lora.lua", "schedule.batch_size=2", "seed=1", 0);
    run_pipeline("pipelines/surgery.lua", "schedule.batch_size=2", "seed=2", 0);
    run_pipeline("pipelines/detach.lua", "schedule.batch_size=2", "seed=3", 0);
    /* the MLP adapter: strategy = detach { adapter = "mlp", hidden = 16 } */
    const char *mlp[] = {"run",
                         "pipelines/detach.lua",
                         "--db",
                         db,
                         "--quiet",
                         "--set",
                         "schedule.steps=3",
                         "--set",
                         "strategy.adapter=mlp",
                         "--set",
                         "strategy.hidden=16",
                         NULL};
    orch_expect(mlp, 0);
    run_pipeline("pipelines/base.lua", "schedule.batch_size=2", "seed=4", 0);
    /* diverges at step 1 under on_nan = "abort": no checkpoint */
    run_pipeline("pipelines/nan-repro.lua", "schedule.batch_size=4", "seed=1234", 1);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    remove_tree(dir);
    return 0;
}

/* ------------------------------------------------ reading safetensors */

typedef struct st_file {
    char *buf;
    size_t size;
    uint64_t header_len;
} st_file;

/* A whole binary file (read_whole_file stops at a NUL). */
static st_file read_binary(const char *path)
{
    st_file f = {0};
    FILE *in = fopen(path, "rb");
    if (in == NULL)
        fail_msg("%s: cannot open", path);
    fseek(in, 0, SEEK_END);
    f.size = (size_t)ftell(in);
    rewind(in);
    f.buf = malloc(f.size + 1);
    assert_non_null(f.buf);
    assert_int_equal(fread(f.buf, 1, f.size, in), f.size);
    fclose(in);
    return f;
}

static st_file st_load(const char *path)
{
    st_file f = read_binary(path);
    assert_true(f.size >= 8);
    for (int i = 7; i >= 0; i--)
        f.header_len = f.header_len << 8 | (unsigned char)f.buf[i];
    assert_true(8 + f.header_len <= f.size);
    return f;
}

/* The entry of name in f's header (orch and safetensors write it compact:
 * "NAME":{"dtype":"F32","shape":[..],"data_offsets":[a,b]}): its shape as
 * text ("4,128") into shape and its bytes; NULL when absent. */
static const char *st_find(const st_file *f, const char *name, char *shape, size_t n, size_t *bytes)
{
    char key[256];
    snprintf(key, sizeof key, "\"%s\":{\"dtype\":\"F32\",\"shape\":[", name);
    char *header = strndup(f->buf + 8, f->header_len);
    const char *at = strstr(header, key);
    if (at == NULL) {
        free(header);
        return NULL;
    }
    at += strlen(key);
    const char *end = strchr(at, ']');
    snprintf(shape, n, "%.*s", (int)(end - at), at);
    unsigned long long a = 0, b = 0;
    assert_int_equal(sscanf(end, "],\"data_offsets\":[%llu,%llu]}", &a, &b), 2);
    free(header);
    assert_true(8 + f->header_len + b <= f->size);
    *bytes = (size_t)(b - a);
    return f->buf + 8 + f->header_len + a;
}

/* Counts the tensors of f's header (entries with a "dtype"). */
static int st_count(const st_file *f)
{
    int n = 0;
    char *header = strndup(f->buf + 8, f->header_len);
    for (const char *p = header; (p = strstr(p, "\"dtype\":")) != NULL; p++)
        n++;
    free(header);
    return n;
}

/* ------------------------------------------------------------ helpers */

/* The path of run's newest checkpoint, from the store. */
static void last_checkpoint(int run, char *out, size_t n) /* n >= 600 */
{
    char sql[160];
    snprintf(sql, sizeof sql,
             "SELECT path FROM artifacts WHERE run_id = %d AND kind = 'checkpoint' ORDER BY "
             "step DESC LIMIT 1",
             run);
    const char *argv[] = {"query", "--db", db, "--csv", sql, NULL};
    cli_result r = orch(argv);
    assert_int_equal(r.exit_code, 0);
    const char *row = strchr(r.out, '\n');
    assert_non_null(row);
    snprintf(out, n, "%s", row + 1);
    out[strcspn(out, "\r\n")] = '\0';
    cli_result_free(&r);
    if (out[0] != '/') { /* recorded relative to the store's folder */
        char rel[256];
        snprintf(rel, sizeof rel, "%.255s", out);
        snprintf(out, n, "%s/%s", dir, rel);
    }
}

static void export_run(int run, const char *out, int want_exit, const char *extra)
{
    char id[16];
    snprintf(id, sizeof id, "%d", run);
    const char *argv[] = {"export-adapter", id, "-o", out, "--db", db, extra, NULL};
    orch_expect(argv, want_exit);
}

/* Asserts that file (in folder out) holds tensor dst of shape shape, whose
 * bytes are those of src in the checkpoint ck. */
static void assert_tensor(const char *out, const char *file, const char *dst, const char *shape,
                          const st_file *ck, const char *src)
{
    char path[512], got_shape[64], ck_shape[64];
    snprintf(path, sizeof path, "%s/%s", out, file);
    st_file f = st_load(path);
    size_t n = 0, ck_n = 0;
    const char *data = st_find(&f, dst, got_shape, sizeof got_shape, &n);
    if (data == NULL)
        fail_msg("%s: no tensor %s", path, dst);
    assert_string_equal(got_shape, shape);
    const char *want = st_find(ck, src, ck_shape, sizeof ck_shape, &ck_n);
    if (want == NULL)
        fail_msg("checkpoint: no tensor %s", src);
    assert_int_equal(n, ck_n);
    assert_memory_equal(data, want, n);
    free(f.buf);
}

static int file_count(const char *path)
{
    int n = 0;
    DIR *d = opendir(path);
    if (d == NULL)
        return -1;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

/* Entries of dir whose name contains ".tmp-" or ".old-". */
static int leftovers(void)
{
    int n = 0;
    DIR *d = opendir(dir);
    assert_non_null(d);
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        n += strstr(e->d_name, ".tmp-") != NULL || strstr(e->d_name, ".old-") != NULL;
    closedir(d);
    return n;
}

/* -------------------------------------------------------------- tests */

static void test_lora_is_peft_format(void **state)
{
    (void)state;
    char out[320], path[400], ckpt[640];
    snprintf(out, sizeof out, "%s/lora-adapter", dir);
    export_run(RUN_LORA, out, 0, NULL);
    assert_int_equal(file_count(out), 4);

    /* adapter_config.json: PEFT's keys and values, byte for byte */
    snprintf(path, sizeof path, "%s/adapter_config.json", out);
    char *got = read_whole_file(path, NULL);
    char *want = read_whole_file("tests/data/peft/adapter_config.json", NULL);
    assert_non_null(got);
    assert_non_null(want);
    assert_string_equal(got, want);
    free(got);
    free(want);

    /* adapter_model.safetensors: PEFT's header (names, dtype, shapes,
     * offsets, metadata) byte for byte */
    snprintf(path, sizeof path, "%s/adapter_model.safetensors", out);
    st_file f = st_load(path);
    st_file peft = st_load("tests/data/peft/adapter_model.safetensors");
    assert_int_equal(f.header_len, peft.header_len);
    assert_memory_equal(f.buf, peft.buf, 8 + peft.header_len);
    assert_int_equal(f.size, peft.size);
    free(f.buf);
    free(peft.buf);

    /* the values are the checkpoint's */
    last_checkpoint(RUN_LORA, ckpt, sizeof ckpt);
    st_file ck = st_load(ckpt);
    assert_tensor(out, "adapter_model.safetensors",
                  "base_model.model.visual.merger.mlp.0.lora_A.weight", "4,128", &ck,
                  "visual.merger.mlp.0.lora_A.weight");
    assert_tensor(out, "adapter_model.safetensors",
                  "base_model.model.visual.merger.mlp.2.lora_B.weight", "24,4", &ck,
                  "visual.merger.mlp.2.lora_B.weight");
    assert_tensor(out, "head.safetensors", "weight", "4,24", &ck, "head.weight");
    assert_tensor(out, "head.safetensors", "bias", "4", &ck, "head.bias");
    free(ck.buf);

    snprintf(path, sizeof path, "%s/export.json", out);
    char *meta = read_whole_file(path, NULL);
    assert_non_null(meta);
    assert_non_null(strstr(meta, "\"strategy\": \"lora\""));
    assert_non_null(strstr(meta, "\"step\": 2,"));
    assert_non_null(strstr(meta, "\"scaling\": 2.0"));
    free(meta);
    assert_int_equal(leftovers(), 0);
}

static void test_surgery(void **state)
{
    (void)state;
    char out[320], ckpt[640], path[400];
    snprintf(out, sizeof out, "%s/surgery-export", dir);
    export_run(RUN_SURGERY, out, 0, NULL);
    assert_int_equal(file_count(out), 3);
    last_checkpoint(RUN_SURGERY, ckpt, sizeof ckpt);
    st_file ck = st_load(ckpt);
    assert_tensor(out, "replacement.safetensors", "visual.merger.mlp.2.weight", "24,128", &ck,
                  "visual.merger.mlp.2.weight");
    assert_tensor(out, "replacement.safetensors", "visual.merger.mlp.2.bias", "24", &ck,
                  "visual.merger.mlp.2.bias");
    assert_tensor(out, "head.safetensors", "weight", "4,24", &ck, "head.weight");
    free(ck.buf);
    snprintf(path, sizeof path, "%s/replacement.safetensors", out);
    st_file f = st_load(path);
    assert_int_equal(st_count(&f), 2); /* no optimizer state */
    free(f.buf);
}

static void test_detach(void **state)
{
    (void)state;
    char out[320], ckpt[640], path[400];
    snprintf(out, sizeof out, "%s/detach-export", dir);
    export_run(RUN_DETACH, out, 0, NULL);
    assert_int_equal(file_count(out), 3);
    last_checkpoint(RUN_DETACH, ckpt, sizeof ckpt);
    st_file ck = st_load(ckpt);
    assert_tensor(out, "adapter.safetensors", "weight", "24,24", &ck, "adapter.weight");
    assert_tensor(out, "adapter.safetensors", "bias", "24", &ck, "adapter.bias");
    assert_tensor(out, "head.safetensors", "bias", "4", &ck, "head.bias");
    free(ck.buf);
    snprintf(path, sizeof path, "%s/export.json", out);
    char *meta = read_whole_file(path, NULL);
    assert_non_null(strstr(meta, "\"module\": \"torch.nn.Linear\""));
    free(meta);

    snprintf(out, sizeof out, "%s/mlp-export", dir);
    export_run(RUN_MLP, out, 0, NULL);
    last_checkpoint(RUN_MLP, ckpt, sizeof ckpt);
    ck = st_load(ckpt);
    assert_tensor(out, "adapter.safetensors", "0.weight", "16,24", &ck, "adapter.0.weight");
    assert_tensor(out, "adapter.safetensors", "0.bias", "16", &ck, "adapter.0.bias");
    assert_tensor(out, "adapter.safetensors", "2.weight", "24,16", &ck, "adapter.2.weight");
    assert_tensor(out, "adapter.safetensors", "2.bias", "24", &ck, "adapter.2.bias");
    free(ck.buf);
}

static void expect_refused(int run, const char *out, const char *extra, int want_exit,
                           const char *message)
{
    char id[16];
    snprintf(id, sizeof id, "%d", run);
    const char *argv[] = {"export-adapter", id, "-o", out, "--db", db, extra, NULL};
    cli_result r = orch(argv);
    assert_int_equal(r.exit_code, want_exit);
    if (strstr(r.err, message) == NULL)
        fail_msg("stderr '%s' lacks '%s'", r.err, message);
    assert_int_equal(strchr(r.err, '\n') - r.err + 1, (long)strlen(r.err)); /* one line */
    cli_result_free(&r);
}

static void test_refusals(void **state)
{
    (void)state;
    char out[320], msg[96];
    snprintf(out, sizeof out, "%s/refused", dir);
    expect_refused(99, out, NULL, 2, "no run 99 in");
    snprintf(msg, sizeof msg,
             "run %d has no checkpoint; run with schedule.checkpoint_every or to its end",
             RUN_DIVERGED);
    expect_refused(RUN_DIVERGED, out, NULL, 2, msg);
    expect_refused(RUN_FULL, out, NULL, 2, "strategy full");
    struct stat sb;
    assert_int_not_equal(stat(out, &sb), 0); /* nothing written */

    /* a file in the folder's place */
    char file[400];
    snprintf(file, sizeof file, "%s/a-file", dir);
    assert_int_equal(write_text_file(file, "x"), 0);
    expect_refused(RUN_LORA, file, NULL, 2, "exists and is not a directory");

    /* a non-empty folder: refused and untouched; --force replaces it */
    char keep[400];
    assert_int_equal(mkdir(out, 0777), 0);
    snprintf(keep, sizeof keep, "%s/mine.txt", out);
    assert_int_equal(write_text_file(keep, "mine"), 0);
    expect_refused(RUN_LORA, out, NULL, 2, "exists and is not empty (--force replaces it)");
    assert_int_equal(stat(keep, &sb), 0);
    assert_int_equal(file_count(out), 1);
    export_run(RUN_SURGERY, out, 0, "--force");
    assert_int_not_equal(stat(keep, &sb), 0);
    assert_int_equal(file_count(out), 3);

    /* an empty folder is simply filled */
    snprintf(out, sizeof out, "%s/empty", dir);
    assert_int_equal(mkdir(out, 0777), 0);
    export_run(RUN_DETACH, out, 0, NULL);
    assert_int_equal(file_count(out), 3);

    /* a folder whose parent is missing: a write failure (exit 1), nothing left */
    snprintf(out, sizeof out, "%s/no/such/parent", dir);
    export_run(RUN_LORA, out, 1, NULL);
    assert_int_equal(leftovers(), 0);
}

/* orch predict: the logits of every image of the run's data, (64, 4) */
static void test_predict(void **state)
{
    (void)state;
    char npy[400];
    snprintf(npy, sizeof npy, "%s/logits.npy", dir);
    const char *argv[] = {"predict", "1", "-o", npy, "--db", db, NULL};
    orch_expect(argv, 0);
    st_file f = read_binary(npy);
    assert_true(f.size == 128 + 64 * 4 * sizeof(float));
    assert_memory_equal(f.buf, "\x93NUMPY", 6);
    f.buf[127] = '\0';
    assert_non_null(strstr(f.buf + 10, "'descr': '<f4'"));
    assert_non_null(strstr(f.buf + 10, "'shape': (64, 4)"));
    free(f.buf);
    const char *none[] = {"predict", "6", "-o", npy, "--db", db, NULL};
    cli_result r = orch(none);
    assert_int_equal(r.exit_code, 2);
    assert_non_null(strstr(r.err, "run 6 has no checkpoint"));
    cli_result_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lora_is_peft_format),
        cmocka_unit_test(test_surgery),
        cmocka_unit_test(test_detach),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_predict),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
