/* test_formats_safetensors.c - store/safetensors: reader, writer, shards, bad files. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "store/safetensors.h"
#include "tests/testutil.h"

#define DATA "tests/data/"

static char g_dir[256];

static int setup(void **state)
{
    (void)state;
    return make_temp_dir(g_dir, sizeof g_dir) == NULL ? -1 : 0;
}

static int teardown(void **state)
{
    (void)state;
    remove_tree(g_dir);
    return 0;
}

static const char *tmp_path(const char *name)
{
    static char buf[8][512];
    static int next;
    char *p = buf[next++ % 8];
    snprintf(p, sizeof buf[0], "%s/%s", g_dir, name);
    return p;
}

static void write_bytes(const char *path, const void *a, size_t na, const void *b, size_t nb)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    if (na > 0)
        assert_int_equal(fwrite(a, 1, na, f), na);
    if (nb > 0)
        assert_int_equal(fwrite(b, 1, nb, f), nb);
    assert_int_equal(fclose(f), 0);
}

/* A safetensors file: 8-byte header length (hlen, or strlen(header) when
 * hlen < 0), the header text, then data. */
static const char *make_st(const char *name, long long hlen, const char *header, const void *data,
                           size_t data_len)
{
    const char *path = tmp_path(name);
    size_t len = strlen(header);
    unsigned long long n = hlen < 0 ? (unsigned long long)len : (unsigned long long)hlen;
    unsigned char buf[4096];
    assert_true(8 + len + data_len <= sizeof buf);
    for (int i = 0; i < 8; i++)
        buf[i] = (unsigned char)(n >> (8 * i));
    memcpy(buf + 8, header, len);
    if (data_len > 0)
        memcpy(buf + 8 + len, data, data_len);
    write_bytes(path, buf, 8 + len + data_len, NULL, 0);
    return path;
}

static void expect_error(int rc, const orch_err *err, int code, const char *needle)
{
    if (rc != code || strstr(err->msg, needle) == NULL)
        fail_msg("expected code %d with \"%s\", got code %d: \"%s\"", code, needle, rc, err->msg);
    if (strchr(err->msg, '\n') != NULL)
        fail_msg("message is not one line: \"%s\"", err->msg);
}

/* Opening path must fail with ORCH_EINVAL and a message containing needle. */
static void expect_open_error(const char *path, const char *needle)
{
    orch_err err;
    orch_err_clear(&err);
    orch_st_file *f = (orch_st_file *)&err; /* must be reset to NULL */
    int rc = orch_st_open(path, &f, &err);
    assert_null(f);
    expect_error(rc, &err, ORCH_EINVAL, needle);
}

/* ------------------------------------------------------------ fixture */

static void test_fixture_reads(void **state)
{
    (void)state;
    orch_err err;
    orch_st_file *f = NULL;
    int rc = orch_st_open(DATA "st_small.safetensors", &f, &err);
    if (rc != ORCH_OK)
        fail_msg("%s", err.msg);
    assert_int_equal(orch_st_count(f), 4);
    assert_string_equal(orch_st_tensor_at(f, 0)->name, "lm_head.int_scale");
    assert_string_equal(orch_st_metadata(f, "format"), "pt");
    assert_null(orch_st_metadata(f, "nope"));

    /* Conv3d weight (2, 3, 2, 2, 2), asked without "model." and as 5-D and 2-D */
    float conv[48];
    const int64_t shape5[5] = {2, 3, 2, 2, 2}, shape2[2] = {2, 24};
    assert_int_equal(orch_st_read_f32(f, "visual.patch_embed.proj.weight", shape5, 5, conv, &err),
                     ORCH_OK);
    for (int i = 0; i < 48; i++)
        assert_true(conv[i] == (float)i * 0.25f - 6.0f);
    memset(conv, 0, sizeof conv);
    assert_int_equal(orch_st_read_f32(f, "visual.patch_embed.proj.weight", shape2, 2, conv, &err),
                     ORCH_OK);
    assert_true(conv[47] == 47 * 0.25f - 6.0f);

    float bf[4], hf[3];
    const int64_t s4[1] = {4}, s3[1] = {3};
    assert_int_equal(orch_st_read_f32(f, "model.visual.blocks.0.norm1.weight", s4, 1, bf, &err),
                     ORCH_OK);
    assert_true(bf[0] == 1.0f && bf[1] == -2.5f && bf[2] == 3.140625f && bf[3] == 0x1p-10f);
    assert_int_equal(orch_st_read_f32(f, "visual.merger.mlp.2.bias", s3, 1, hf, &err), ORCH_OK);
    assert_true(hf[0] == 0.5f && hf[1] == -65504.0f && hf[2] == 0x1p-24f);

    const orch_st_tensor *t = orch_st_find(f, "visual.blocks.0.norm1.weight");
    assert_non_null(t);
    assert_int_equal(t->dtype, ORCH_ST_BF16);
    assert_int_equal(t->nbytes, 8);
    assert_int_equal(orch_st_count_nonfinite(t), 0);

    const int64_t s2[1] = {2};
    float i8[2];
    rc = orch_st_read_f32(f, "lm_head.int_scale", s2, 1, i8, &err);
    expect_error(rc, &err, ORCH_EINVAL,
                 "st_small.safetensors: unsupported dtype I8 for tensor lm_head.int_scale (orch "
                 "reads F32, BF16, F16)");
    const int64_t wrong[2] = {24, 128};
    rc = orch_st_read_f32(f, "visual.merger.mlp.2.bias", wrong, 2, hf, &err);
    expect_error(rc, &err, ORCH_EINVAL,
                 "st_small.safetensors: visual.merger.mlp.2.bias: shape [3] in file, expected "
                 "[24, 128]");
    rc = orch_st_read_f32(f, "visual.merger.mlp.2.weight", wrong, 2, hf, &err);
    expect_error(rc, &err, ORCH_EINVAL,
                 "st_small.safetensors: no tensor 'visual.merger.mlp.2.weight'");
    rc = orch_st_read_f32_numel(f, "visual.merger.mlp.2.bias", 96, hf, &err);
    expect_error(rc, &err, ORCH_EINVAL,
                 "visual.merger.mlp.2.bias: 3 elements in file, expected 96");
    assert_int_equal(orch_st_read_f32_numel(f, "visual.merger.mlp.2.bias", 3, hf, &err), ORCH_OK);
    orch_st_close(f);
    orch_st_close(NULL);
}

/* ------------------------------------------------------- name lookup */

static void test_prefix_rule(void **state)
{
    (void)state;
    float a = 1, b = 2;
    orch_st_entry e[2] = {{"visual.a", 0, {0}, &a}, {"model.visual.b", 0, {0}, &b}};
    orch_err err;
    const char *path = tmp_path("prefix.safetensors");
    assert_int_equal(orch_st_write(path, e, 2, NULL, &err), ORCH_OK);
    orch_st_file *f = NULL;
    assert_int_equal(orch_st_open(path, &f, &err), ORCH_OK);
    assert_string_equal(orch_st_find(f, "visual.a")->name, "visual.a");
    assert_string_equal(orch_st_find(f, "model.visual.a")->name, "visual.a");
    assert_string_equal(orch_st_find(f, "visual.b")->name, "model.visual.b");
    assert_string_equal(orch_st_find(f, "model.visual.b")->name, "model.visual.b");
    assert_null(orch_st_find(f, "a"));
    assert_null(orch_st_find(f, "b"));
    assert_null(orch_st_find(f, "visual.c"));
    assert_null(orch_st_find(f, "model.visual.c"));
    orch_st_close(f);
}

static void test_shape_compatible(void **state)
{
    (void)state;
    const int64_t conv[5] = {8, 3, 2, 4, 4}, flat[2] = {8, 96}, bad[2] = {8, 95};
    const int64_t other[2] = {4, 192}, v[1] = {8}, m34[2] = {3, 4}, m43[2] = {4, 3};
    assert_true(orch_st_shape_compatible(conv, 5, conv, 5));
    assert_true(orch_st_shape_compatible(conv, 5, flat, 2));
    assert_true(orch_st_shape_compatible(flat, 2, conv, 5));
    assert_false(orch_st_shape_compatible(conv, 5, bad, 2));
    assert_false(orch_st_shape_compatible(conv, 5, other, 2));
    assert_false(orch_st_shape_compatible(v, 1, flat, 2));
    assert_false(orch_st_shape_compatible(m34, 2, m43, 2));
    assert_true(orch_st_shape_compatible(v, 0, flat, 0));
}

/* ------------------------------------------------------------ writer */

static void test_roundtrip(void **state)
{
    (void)state;
    float w[12], bias[3] = {0.5f, -1.0f, 1e-30f}, scalar = 7.25f;
    for (int i = 0; i < 12; i++)
        w[i] = sinf((float)i) * 100.0f;
    orch_st_entry e[4] = {
        {"zeta.weight", 2, {4, 3}, w},
        {"alpha.bias", 1, {3}, bias},
        {"scalar", 0, {0}, &scalar},
        {"empty", 2, {0, 5}, NULL},
    };
    orch_err err;
    const char *path = tmp_path("rt.safetensors");
    int rc = orch_st_write(path, e, 4, "{\"format\": \"pt\", \"step\": \"12\"}", &err);
    if (rc != ORCH_OK)
        fail_msg("%s", err.msg);

    /* the layout: header length a multiple of 8, space padded, no temp file left */
    FILE *fp = fopen(path, "rb");
    assert_non_null(fp);
    unsigned char raw[1024];
    size_t got = fread(raw, 1, sizeof raw, fp);
    fclose(fp);
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--)
        hlen = (hlen << 8) | raw[i];
    assert_int_equal(hlen % 8, 0);
    assert_int_equal(got, 8 + hlen + (12 + 3 + 1) * 4);
    assert_int_equal(raw[8], '{');
    assert_memory_equal(
        raw + 8, "{\"__metadata__\":{\"format\":\"pt\",\"step\":\"12\"},\"alpha.bias\":", 56);
    DIR *d = opendir(g_dir);
    assert_non_null(d);
    for (struct dirent *de; (de = readdir(d)) != NULL;)
        assert_null(strstr(de->d_name, ".tmp-"));
    closedir(d);

    orch_st_file *f = NULL;
    rc = orch_st_open(path, &f, &err);
    if (rc != ORCH_OK)
        fail_msg("%s", err.msg);
    assert_int_equal(orch_st_count(f), 4);
    assert_string_equal(orch_st_metadata(f, "step"), "12");
    float back[12];
    const int64_t s43[2] = {4, 3}, s3[1] = {3}, s05[2] = {0, 5};
    assert_int_equal(orch_st_read_f32(f, "zeta.weight", s43, 2, back, &err), ORCH_OK);
    assert_memory_equal(back, w, sizeof w);
    assert_int_equal(orch_st_read_f32(f, "alpha.bias", s3, 1, back, &err), ORCH_OK);
    assert_memory_equal(back, bias, sizeof bias);
    assert_int_equal(orch_st_read_f32(f, "scalar", NULL, 0, back, &err), ORCH_OK);
    assert_true(back[0] == 7.25f);
    assert_int_equal(orch_st_read_f32(f, "empty", s05, 2, back, &err), ORCH_OK);
    const orch_st_tensor *t = orch_st_find(f, "scalar");
    assert_int_equal(t->ndim, 0);
    assert_int_equal(t->numel, 1);
    assert_int_equal(orch_st_find(f, "empty")->numel, 0);
    orch_st_close(f);
}

static void test_write_errors(void **state)
{
    (void)state;
    float x[2] = {1, 2};
    orch_err err;
    orch_st_entry dup[2] = {{"a", 1, {2}, x}, {"a", 1, {2}, x}};
    const char *path = tmp_path("bad_write.safetensors");
    expect_error(orch_st_write(path, dup, 2, NULL, &err), &err, ORCH_EINVAL,
                 "duplicate tensor name 'a'");
    orch_st_entry meta[1] = {{"__metadata__", 1, {2}, x}};
    expect_error(orch_st_write(path, meta, 1, NULL, &err), &err, ORCH_EINVAL,
                 "invalid tensor name");
    orch_st_entry ok[1] = {{"a", 1, {2}, x}};
    expect_error(orch_st_write(path, ok, 1, "{\"n\": 3}", &err), &err, ORCH_EINVAL,
                 "metadata value of 'n' is not a string");
    expect_error(orch_st_write(path, ok, 1, "[1]", &err), &err, ORCH_EINVAL,
                 "metadata is not a JSON object");
    orch_st_entry nodata[1] = {{"a", 1, {2}, NULL}};
    expect_error(orch_st_write(path, nodata, 1, NULL, &err), &err, ORCH_EINVAL,
                 "tensor 'a' has no data");
    FILE *fp = fopen(path, "rb");
    assert_null(fp); /* nothing written by the failures */
    const char *nodir = tmp_path("no/such/dir/x.safetensors");
    expect_error(orch_st_write(nodir, ok, 1, NULL, &err), &err, ORCH_EIO,
                 "cannot create a temporary file");
}

static void test_nonfinite(void **state)
{
    (void)state;
    float x[4] = {1.0f, NAN, -INFINITY, 0.0f};
    orch_st_entry e[1] = {{"x", 1, {4}, x}};
    orch_err err;
    const char *path = tmp_path("nan.safetensors");
    assert_int_equal(orch_st_write(path, e, 1, NULL, &err), ORCH_OK);
    orch_st_file *f = NULL;
    assert_int_equal(orch_st_open(path, &f, &err), ORCH_OK);
    assert_int_equal(orch_st_count_nonfinite(orch_st_find(f, "x")), 2);
    orch_st_close(f);
}

/* --------------------------------------------------------- bad files */

static void test_bad_files(void **state)
{
    (void)state;
    const float d3[3] = {1, 2, 3};
    expect_open_error(tmp_path("missing.safetensors"), "missing.safetensors: cannot open");

    const char *p = tmp_path("short.safetensors");
    write_bytes(p, "\x05\0\0\0\0", 5, NULL, 0);
    expect_open_error(p, "short.safetensors: truncated: 5 bytes, too short for the 8-byte header");

    p = make_st("zero.safetensors", 0, "", NULL, 0);
    expect_open_error(p, "zero.safetensors: header length is 0");

    p = make_st("huge.safetensors", 1LL << 40, "{}", NULL, 0);
    expect_open_error(p, "huge.safetensors: header length 1099511627776 exceeds the "
                         "100000000-byte limit");

    p = make_st("trunc_header.safetensors", 100, "{\"a\":", NULL, 0);
    expect_open_error(p, "trunc_header.safetensors: truncated: header length 100 but only 5 "
                         "bytes follow it");

    p = make_st("notjson.safetensors", -1, "{not json}", NULL, 0);
    expect_open_error(p, "notjson.safetensors: header is not valid JSON");

    p = make_st("dupkey.safetensors", -1,
                "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}",
                d3, 4);
    expect_open_error(p, "dupkey.safetensors: header is not valid JSON: duplicate object key");

    p = make_st("array.safetensors", -1, "[1, 2]", NULL, 0);
    expect_open_error(p, "array.safetensors: header is not a JSON object");

    p = make_st("nodtype.safetensors", -1, "{\"a\":{\"shape\":[3],\"data_offsets\":[0,12]}}", d3,
                12);
    expect_open_error(p, "nodtype.safetensors: tensor 'a' has no \"dtype\" string");

    p = make_st("noshape.safetensors", -1, "{\"a\":{\"dtype\":\"F32\",\"data_offsets\":[0,12]}}",
                d3, 12);
    expect_open_error(p, "noshape.safetensors: tensor 'a' has no \"shape\" array");

    p = make_st("nooffsets.safetensors", -1, "{\"a\":{\"dtype\":\"F32\",\"shape\":[3]}}", d3, 12);
    expect_open_error(p, "nooffsets.safetensors: tensor 'a' has no \"data_offsets\"");

    p = make_st("entry.safetensors", -1, "{\"a\":3}", d3, 12);
    expect_open_error(p, "entry.safetensors: header entry 'a' is not a JSON object");

    p = make_st("dtype.safetensors", -1,
                "{\"a\":{\"dtype\":\"F33\",\"shape\":[3],\"data_offsets\":[0,12]}}", d3, 12);
    expect_open_error(p, "dtype.safetensors: tensor 'a' has unknown dtype 'F33'");

    p = make_st("negshape.safetensors", -1,
                "{\"a\":{\"dtype\":\"F32\",\"shape\":[-3],\"data_offsets\":[0,12]}}", d3, 12);
    expect_open_error(p, "negshape.safetensors: tensor 'a': shape entry 0 is not a non-negative");

    p = make_st("size.safetensors", -1,
                "{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", d3, 12);
    expect_open_error(p, "size.safetensors: tensor 'a': data_offsets [0, 8] hold 8 bytes but F32 "
                         "[3] needs 12");

    p = make_st("order.safetensors", -1,
                "{\"a\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[12,0]}}", d3, 12);
    expect_open_error(p, "order.safetensors: tensor 'a': data_offsets [12, 0] are out of order");

    p = make_st("trunc_data.safetensors", -1,
                "{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,12]}}", d3, 8);
    expect_open_error(p, "trunc_data.safetensors: truncated: tensor 'a' needs bytes [0, 12) of "
                         "the data region, which holds only 8");

    p = make_st("meta.safetensors", -1, "{\"__metadata__\":[1]}", NULL, 0);
    expect_open_error(p, "meta.safetensors: \"__metadata__\" is not a JSON object");

    /* a header with only metadata is a valid, empty file */
    p = make_st("onlymeta.safetensors", -1, "{\"__metadata__\":{\"k\":\"v\"}}", NULL, 0);
    orch_st_file *f = NULL;
    orch_err err;
    assert_int_equal(orch_st_open(p, &f, &err), ORCH_OK);
    assert_int_equal(orch_st_count(f), 0);
    assert_string_equal(orch_st_metadata(f, "k"), "v");
    orch_st_close(f);
}

/* ----------------------------------------------------------- shards */

static void write_shards(void)
{
    float a[6] = {1, 2, 3, 4, 5, 6}, b[2] = {7, 8}, c[1] = {9};
    orch_st_entry s1[2] = {{"model.visual.blocks.0.attn.qkv.weight", 2, {2, 3}, a},
                           {"model.visual.blocks.0.attn.qkv.bias", 1, {2}, b}};
    orch_st_entry s2[1] = {{"model.visual.merger.ln_q.weight", 1, {1}, c}};
    orch_err err;
    assert_int_equal(orch_st_write(tmp_path("model-00001-of-00002.safetensors"), s1, 2,
                                   "{\"format\":\"pt\"}", &err),
                     ORCH_OK);
    assert_int_equal(orch_st_write(tmp_path("model-00002-of-00002.safetensors"), s2, 1, NULL, &err),
                     ORCH_OK);
}

static const char *INDEX_OK =
    "{\"metadata\": {\"total_size\": 36},\n \"weight_map\": {\n"
    "  \"model.visual.blocks.0.attn.qkv.bias\": \"model-00001-of-00002.safetensors\",\n"
    "  \"model.visual.blocks.0.attn.qkv.weight\": \"model-00001-of-00002.safetensors\",\n"
    "  \"model.visual.merger.ln_q.weight\": \"model-00002-of-00002.safetensors\"}}\n";

static void test_sharded(void **state)
{
    (void)state;
    write_shards();
    const char *index = tmp_path("model.safetensors.index.json");
    assert_int_equal(write_text_file(index, INDEX_OK), 0);
    orch_err err;
    orch_st_file *f = NULL;
    int rc = orch_st_open(index, &f, &err);
    if (rc != ORCH_OK)
        fail_msg("%s", err.msg);
    assert_int_equal(orch_st_count(f), 3);
    assert_string_equal(orch_st_path(f), index);
    assert_string_equal(orch_st_metadata(f, "format"), "pt");
    float got[6];
    const int64_t s23[2] = {2, 3}, s1[1] = {1};
    assert_int_equal(orch_st_read_f32(f, "visual.blocks.0.attn.qkv.weight", s23, 2, got, &err),
                     ORCH_OK);
    assert_true(got[5] == 6.0f);
    assert_int_equal(orch_st_read_f32(f, "visual.merger.ln_q.weight", s1, 1, got, &err), ORCH_OK);
    assert_true(got[0] == 9.0f);
    const orch_st_tensor *t = orch_st_find(f, "visual.merger.ln_q.weight");
    assert_non_null(strstr(t->shard, "model-00002-of-00002.safetensors"));
    rc = orch_st_read_f32(f, "visual.merger.mlp.0.weight", s1, 1, got, &err);
    expect_error(rc, &err, ORCH_EINVAL,
                 "model.safetensors.index.json: no tensor "
                 "'visual.merger.mlp.0.weight'");
    orch_st_close(f);

    /* a snapshot directory opens its index */
    assert_int_equal(orch_st_open(g_dir, &f, &err), ORCH_OK);
    assert_int_equal(orch_st_count(f), 3);
    assert_non_null(strstr(orch_st_path(f), "/model.safetensors.index.json"));
    orch_st_close(f);

    /* detected by content, without the .json suffix */
    const char *renamed = tmp_path("weights.index");
    assert_int_equal(write_text_file(renamed, INDEX_OK), 0);
    assert_int_equal(orch_st_open(renamed, &f, &err), ORCH_OK);
    assert_int_equal(orch_st_count(f), 3);
    orch_st_close(f);
}

static void test_sharded_errors(void **state)
{
    (void)state;
    write_shards();
    const char *index = tmp_path("bad.index.json");

    assert_int_equal(write_text_file(index, "{\"weight_map\": {\"x\": \"model-00003-of-00003."
                                            "safetensors\"}}"),
                     0);
    expect_open_error(index, "model-00003-of-00003.safetensors: cannot open: No such file or "
                             "directory (shard listed in ");

    assert_int_equal(write_text_file(index,
                                     "{\"weight_map\": {\"model.visual.merger.ln_q.weight\": "
                                     "\"model-00001-of-00002.safetensors\"}}"),
                     0);
    expect_open_error(index, "bad.index.json: weight_map puts 'model.visual.merger.ln_q.weight' "
                             "in model-00001-of-00002.safetensors, but that shard has no such "
                             "tensor");

    assert_int_equal(write_text_file(index, "{\"metadata\": {}}"), 0);
    expect_open_error(index, "bad.index.json: index has no \"weight_map\" object");

    assert_int_equal(write_text_file(index, "{\"weight_map\": "), 0);
    expect_open_error(index, "bad.index.json:1: index is not valid JSON");

    /* the same tensor in two shards */
    float x[1] = {1};
    orch_st_entry e[1] = {{"model.visual.merger.ln_q.weight", 1, {1}, x}};
    orch_err err;
    assert_int_equal(orch_st_write(tmp_path("dup.safetensors"), e, 1, NULL, &err), ORCH_OK);
    assert_int_equal(write_text_file(index,
                                     "{\"weight_map\": {\"model.visual.merger.ln_q.weight\": "
                                     "\"model-00002-of-00002.safetensors\", \"other\": "
                                     "\"dup.safetensors\"}}"),
                     0);
    expect_open_error(index, "tensor 'model.visual.merger.ln_q.weight' is in both");

    /* a corrupt shard names the shard and the index */
    make_st("corrupt.safetensors", 500, "{}", NULL, 0);
    assert_int_equal(write_text_file(index, "{\"weight_map\": {\"a\": \"corrupt.safetensors\"}}"),
                     0);
    expect_open_error(index, "corrupt.safetensors: truncated: header length 500");
    expect_open_error(index, "(shard listed in ");
}

/* orch_st_open_memory (the fuzz target's entry): the same tensors as the
 * file, from a copy (the caller's buffer is gone before the reads), and the
 * file reader's errors under the given name. */
static void test_open_memory(void **state)
{
    (void)state;
    orch_err err;
    /* binary: read_whole_file stops at the first NUL */
    FILE *fp = fopen(DATA "st_small.safetensors", "rb");
    assert_non_null(fp);
    char *bytes = malloc(4096);
    assert_non_null(bytes);
    size_t n = fread(bytes, 1, 4096, fp);
    fclose(fp);
    assert_int_equal(n, 624);
    orch_st_file *f = NULL;
    int rc = orch_st_open_memory(bytes, n, "mem.safetensors", &f, &err);
    if (rc != ORCH_OK)
        fail_msg("%s", err.msg);
    memset(bytes, 0xff, n);
    free(bytes);
    assert_string_equal(orch_st_path(f), "mem.safetensors");
    assert_int_equal(orch_st_count(f), 4);
    assert_string_equal(orch_st_metadata(f, "format"), "pt");
    float hf[3];
    const int64_t s3[1] = {3};
    assert_int_equal(orch_st_read_f32(f, "visual.merger.mlp.2.bias", s3, 1, hf, &err), ORCH_OK);
    assert_true(hf[0] == 0.5f && hf[1] == -65504.0f && hf[2] == 0x1p-24f);
    orch_st_close(f);

    f = (orch_st_file *)&err; /* must come back NULL */
    assert_int_equal(orch_st_open_memory("\x10\0\0", 3, "short", &f, &err), ORCH_EINVAL);
    assert_null(f);
    assert_string_equal(err.msg, "short: truncated: 3 bytes, too short for the 8-byte header "
                                 "length");
    static const char not_json[] = "\x04\0\0\0\0\0\0\0{no}";
    assert_int_equal(orch_st_open_memory(not_json, sizeof not_json - 1, "bad", &f, &err),
                     ORCH_EINVAL);
    assert_null(f);
    assert_non_null(strstr(err.msg, "bad: header is not valid JSON"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fixture_reads),    cmocka_unit_test(test_prefix_rule),
        cmocka_unit_test(test_shape_compatible), cmocka_unit_test(test_roundtrip),
        cmocka_unit_test(test_write_errors),     cmocka_unit_test(test_nonfinite),
        cmocka_unit_test(test_bad_files),        cmocka_unit_test(test_sharded),
        cmocka_unit_test(test_sharded_errors),   cmocka_unit_test(test_open_memory),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
