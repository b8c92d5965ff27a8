/* test_cli_plan_sizes.c - `orch plan` tells what a run will hold: the
 * parameter count (total and trainable), tokens per image and per batch,
 * and the estimated memory of a step with and without checkpointing, in
 * the listing (comment lines) and in --json ("sizes").
 *
 * The counts are checked against numbers worked out by hand from the tiny
 * preset (depth 4, hidden 32, intermediate 40, patch 2, temporal patch 2,
 * 3 channels, merge 2, out_hidden 24; pipelines/base.lua: 56x56 images,
 * batch 4, 4 classes):
 *   patch_embed 32*3*2*2*2                                  =    768
 *   a block: norm1 32, qkv 96*32+96, proj 32*32+32, norm2 32,
 *            gate and up 40*32+40 each, down 32*40+32     =   8240 (x4 = 32960)
 *   merger: ln_q 32, mlp.0 128*128+128, mlp.2 24*128+24     =  19640
 *   head 4*24+4                                             =    100
 *   total                                                   =  53468
 * surgery trains mlp.2 and the head: 3096 + 100 = 3196. LoRA (rank 4 on
 * mlp.0 and mlp.2) adds A 4*128 + B 128*4 and A 4*128 + B 24*4 = 1632:
 * 55100 total, 1632 + 100 = 1732 trainable. 56 px / patch 2 = 28x28 = 784
 * patches, 196 tokens after the 2x2 merger; a batch of 4: 3136 and 784. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "tests/testutil.h"

static char *plan(const char *const argv[])
{
    cli_result r;
    assert_int_equal(run_orch(argv, NULL, &r), 0);
    if (r.exit_code != 0)
        fail_msg("orch plan exited %d: %s", r.exit_code, r.err);
    free(r.err);
    return r.out;
}

static void test_surgery_listing(void **state)
{
    (void)state;
    const char *argv[] = {"plan", "pipelines/surgery.lua", NULL};
    char *out = plan(argv);
    assert_non_null(strstr(out, "\n-- parameters: 53468 total, 3196 trainable\n"));
    assert_non_null(strstr(out, "\n-- tokens: 784 patches per image, 196 after the 2x2 merger; "
                                "3136 per batch of 4, 784 merged\n"));
    assert_non_null(strstr(out, "\n-- step memory, checkpoint = false (estimate): "));
    assert_non_null(strstr(out, "\n-- step memory, checkpoint = true (estimate): "));
    /* the byte counts of the parameters, their gradients and AdamW's two
     * moments: 53468 * 4 B, 3196 * 4 B, 2 * 3196 * 4 B */
    assert_non_null(strstr(out, "(parameters 208.9 KiB, gradients 12.5 KiB, optimizer state "
                                "25.0 KiB, activations "));
    free(out);
}

static void test_lora_and_batch_override(void **state)
{
    (void)state;
    const char *argv[] = {"plan", "pipelines/lora.lua", "--set", "schedule.batch_size=2", NULL};
    char *out = plan(argv);
    assert_non_null(strstr(out, "\n-- parameters: 55100 total, 1732 trainable\n"));
    assert_non_null(strstr(out, "; 1568 per batch of 2, 392 merged\n"));
    free(out);
}

/* An int64 value of "key": in the JSON text after `after` (or anywhere). */
static long long json_int(const char *text, const char *after, const char *key)
{
    const char *from = after != NULL ? strstr(text, after) : text;
    assert_non_null(from);
    char quoted[64];
    snprintf(quoted, sizeof quoted, "\"%s\":", key);
    const char *at = strstr(from, quoted);
    if (at == NULL)
        fail_msg("no %s in %s", quoted, from);
    return strtoll(at + strlen(quoted), NULL, 10);
}

static void test_json_sizes(void **state)
{
    (void)state;
    const char *argv[] = {"plan", "pipelines/surgery.lua", "--json", NULL};
    char *out = plan(argv);
    const char *sizes = strstr(out, "\n  \"sizes\": {");
    assert_non_null(sizes);
    assert_int_equal(json_int(sizes, NULL, "params"), 53468);
    assert_int_equal(json_int(sizes, NULL, "trainable_params"), 3196);
    assert_int_equal(json_int(sizes, NULL, "patches_per_image"), 784);
    assert_int_equal(json_int(sizes, NULL, "tokens_per_image"), 196);
    assert_int_equal(json_int(sizes, NULL, "patches_per_batch"), 3136);
    assert_int_equal(json_int(sizes, NULL, "tokens_per_batch"), 784);
    const char *keys[] = {"\"step_bytes\"", "\"step_bytes_checkpoint\""};
    long long act[2];
    for (int k = 0; k < 2; k++) {
        long long params = json_int(sizes, keys[k], "params");
        long long grads = json_int(sizes, keys[k], "grads");
        long long opt = json_int(sizes, keys[k], "optimizer");
        act[k] = json_int(sizes, keys[k], "activations");
        assert_int_equal(params, 53468 * 4);
        assert_int_equal(grads, 3196 * 4);
        assert_int_equal(opt, 2 * 3196 * 4);
        assert_int_equal(json_int(sizes, keys[k], "total"), params + grads + opt + act[k]);
    }
    /* surgery leaves every block frozen: checkpointing keeps one block's
     * activations instead of four */
    assert_true(act[1] > 0 && act[1] < act[0] / 2);
    /* the sizes are the document's last key and close it */
    size_t n = strlen(out);
    assert_true(n > 4);
    assert_string_equal(out + n - 4, "}\n}\n");
    free(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_surgery_listing),
        cmocka_unit_test(test_lora_and_batch_override),
        cmocka_unit_test(test_json_sizes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
