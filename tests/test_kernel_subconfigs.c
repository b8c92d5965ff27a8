/*
 * test_kernel_subconfigs.c - orch's choice of BLIS kernels, and the
 * numerics under every BLIS sub-configuration this CPU can run.
 *
 * The choice (kernels/blis_arch.h) is a pure function of the CPU and
 * BLIS_ARCH_TYPE: tested on made-up CPUs. Then, for each sub-configuration
 * BLIS has, the test either says why it skips it (the CPU lacks its
 * instructions) or forces it with BLIS_ARCH_TYPE and runs `orch --version`
 * (which must report it) and the numerics tests (kernels against finite
 * differences, the tower against the PyTorch fixtures, whole runs), which
 * must pass unchanged. `make test-subconfigs` runs the whole suite so.
 *
 *   test_kernel_subconfigs --list   prints the names this CPU runs, one per line
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kernels/blis_arch.h"
#include "kernels/kernels.h"
#include "tests/testutil.h"

/* ------------------------------------------------ the choice, pure */

#define AVX2_FMA (ORCH_CPU_SSE3 | ORCH_CPU_SSSE3 | ORCH_CPU_AVX | ORCH_CPU_FMA3 | ORCH_CPU_AVX2)
#define AVX512                                                                                     \
    (AVX2_FMA | ORCH_CPU_AVX512F | ORCH_CPU_AVX512DQ | ORCH_CPU_AVX512CD | ORCH_CPU_AVX512BW |     \
     ORCH_CPU_AVX512VL)

static int id_of(const char *name)
{
    for (int i = 0; i < orch_blis_n_subconfigs(); i++) {
        int id = orch_blis_subconfig_id(i);
        if (strcmp(orch_blis_subconfig_name(id), name) == 0)
            return id;
    }
    fail_msg("no sub-configuration %s", name);
    return -1;
}

static orch_blis_choice choose(orch_cpu_vendor v, unsigned family, unsigned model,
                               unsigned features, const char *env, int want_rc)
{
    orch_cpu cpu = {v, family, model, features, ""};
    orch_blis_choice c;
    orch_err err = {0};
    int rc = orch_blis_choose(&cpu, env, &c, &err);
    if (rc != want_rc)
        fail_msg("choose(%s): rc %d, want %d (%s)", env ? env : "unset", rc, want_rc, err.msg);
    return c;
}

static void test_choice_without_env(void **state)
{
    (void)state;
    /* Zen 5 (family 0x1a): BLIS 0.9 falls back to generic; orch picks skx */
    orch_blis_choice c = choose(ORCH_VENDOR_AMD, 0x1a, 0x2, AVX512, NULL, ORCH_OK);
    assert_int_equal(c.id, id_of("skx"));
    assert_true(c.set_env);
    assert_non_null(strstr(c.why, "does not know AMD family 0x1a"));
    /* the same without AVX-512: zen3 */
    c = choose(ORCH_VENDOR_AMD, 0x1a, 0x2, AVX2_FMA, NULL, ORCH_OK);
    assert_int_equal(c.id, id_of("zen3"));
    /* a vendor BLIS does not know (Hygon, a VM hiding its vendor), AVX2: haswell */
    c = choose(ORCH_VENDOR_OTHER, 0x18, 0x0, AVX2_FMA, NULL, ORCH_OK);
    assert_int_equal(c.id, id_of("haswell"));
    /* CPUs BLIS knows keep BLIS's own choice (it may know their FMA units better) */
    c = choose(ORCH_VENDOR_AMD, 0x19, 0x1, AVX2_FMA, NULL, ORCH_OK);
    assert_int_equal(c.id, -1);
    assert_false(c.set_env);
    assert_non_null(strstr(c.why, "BLIS's own choice"));
    c = choose(ORCH_VENDOR_INTEL, 0x6, 0x55, AVX512, NULL, ORCH_OK);
    assert_int_equal(c.id, -1);
    c = choose(ORCH_VENDOR_AMD, 0x17, 0x31, AVX2_FMA, NULL, ORCH_OK);
    assert_int_equal(c.id, -1);
    /* nothing better than generic: nothing to change */
    c = choose(ORCH_VENDOR_OTHER, 0x6, 0x0, 0, NULL, ORCH_OK);
    assert_int_equal(c.id, -1);
    c = choose(ORCH_VENDOR_AMD, 0x1a, 0x2, AVX512, "", ORCH_OK); /* empty = unset */
    assert_int_equal(c.id, id_of("skx"));
}

static void test_choice_with_env(void **state)
{
    (void)state;
    /* names are accepted (BLIS itself would read "zen3" as 0, i.e. skx) */
    orch_blis_choice c = choose(ORCH_VENDOR_AMD, 0x1a, 0x2, AVX512, "zen3", ORCH_OK);
    assert_int_equal(c.id, id_of("zen3"));
    assert_true(c.set_env);
    assert_non_null(strstr(c.why, "set by the user"));
    c = choose(ORCH_VENDOR_AMD, 0x1a, 0x2, AVX512, "HASWELL", ORCH_OK);
    assert_int_equal(c.id, id_of("haswell"));
    char num[16];
    snprintf(num, sizeof num, "%d", id_of("generic"));
    c = choose(ORCH_VENDOR_AMD, 0x1a, 0x2, AVX512, num, ORCH_OK);
    assert_int_equal(c.id, id_of("generic"));

    /* kernels the CPU cannot execute would die with SIGILL: refused */
    orch_cpu cpu = {ORCH_VENDOR_INTEL, 0x6, 0x3c, AVX2_FMA, ""};
    orch_blis_choice out;
    orch_err err = {0};
    assert_int_equal(orch_blis_choose(&cpu, "skx", &out, &err), ORCH_EINVAL);
    assert_string_equal(err.msg, "BLIS_ARCH_TYPE=skx: the 'skx' kernels need AVX-512 F, DQ, BW "
                                 "and VL, which this CPU does not have");
    assert_int_equal(orch_blis_choose(&cpu, "bulldozer", &out, &err), ORCH_EINVAL);
    assert_non_null(strstr(err.msg, "FMA4"));
    /* unknown names and numbers, garbage */
    const char *bad[] = {"skylake", "99", "-1", "3x", "0x3", " "};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(orch_blis_choose(&cpu, bad[i], &out, &err), ORCH_EINVAL);
        assert_non_null(strstr(err.msg, "is not a sub-configuration of this BLIS"));
    }
}

static void test_this_machine(void **state)
{
    (void)state;
    orch_err err = {0};
    assert_int_equal(orch_blas_init(&err), ORCH_OK);
    const orch_blas_info *b = orch_blas_get_info();
    orch_cpu cpu;
    orch_cpu_read(&cpu);
    /* whatever was chosen, the CPU runs it, and it is never generic when
     * the CPU runs better kernels (unless the user asked for it) */
    int id = id_of(b->subconfig);
    assert_null(orch_blis_unsupported(&cpu, id));
    const char *env = getenv("BLIS_ARCH_TYPE");
    if (env == NULL || env[0] == '\0')
        assert_true(id != orch_blis_generic_id() || orch_blis_best(&cpu) == id);
    assert_true(strlen(b->version) > 0);
    assert_true(strlen(b->why) > 0);
}

/* ------------------------------------- every sub-configuration, forced */

static char g_dir[4096]; /* where the test binaries are */

/* The numerics tests run again under each forced sub-configuration. */
static const char *const numerics[] = {"test_kernel_forward", "test_kernel_grad",
                                       "test_kernel_edge", "test_model_oracle", "test_model_run"};

static void test_every_subconfig(void **state)
{
    (void)state;
    const char *forced = getenv("BLIS_ARCH_TYPE");
    if (forced != NULL && forced[0] != '\0') {
        /* make test-subconfigs: the whole suite already runs once per sub-configuration */
        printf("every sub-configuration: not looped, BLIS_ARCH_TYPE=%s is forced outside\n",
               forced);
        return;
    }
    orch_cpu cpu;
    orch_cpu_read(&cpu);
    int ran = 0;
    for (int i = 0; i < orch_blis_n_subconfigs(); i++) {
        int id = orch_blis_subconfig_id(i);
        const char *name = orch_blis_subconfig_name(id);
        const char *lacking = orch_blis_unsupported(&cpu, id);
        if (lacking != NULL) {
            printf("subconfig %-12s skipped: its kernels need %s\n", name, lacking);
            continue;
        }
        char env[64];
        snprintf(env, sizeof env, "BLIS_ARCH_TYPE=%s", name);
        const char *envs[] = {env, "OMP_NUM_THREADS=2", NULL};

        cli_result r;
        const char *version[] = {"--version", NULL};
        assert_int_equal(run_orch(version, envs, &r), 0);
        char want[64];
        snprintf(want, sizeof want, "kernels '%s' (BLIS_ARCH_TYPE=%s set by the user)", name, name);
        if (r.exit_code != 0 || strstr(r.out, want) == NULL)
            fail_msg("%s: orch --version exit %d, no \"%s\" in:\n%s%s", name, r.exit_code, want,
                     r.out, r.err);
        cli_result_free(&r);

        for (size_t t = 0; t < sizeof numerics / sizeof numerics[0]; t++) {
            char cmd[4600];
            snprintf(cmd, sizeof cmd, "%s '%s/%s'", env, g_dir, numerics[t]);
            assert_int_equal(run_shell(cmd, &r), 0);
            if (r.exit_code != 0)
                fail_msg("%s: %s failed (exit %d):\n%s%s", name, numerics[t], r.exit_code, r.out,
                         r.err);
            cli_result_free(&r);
        }
        printf("subconfig %-12s passed: orch --version and %zu numerics tests\n", name,
               sizeof numerics / sizeof numerics[0]);
        ran++;
    }
    assert_true(ran >= 1); /* generic always runs */
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "--list") == 0) {
        orch_cpu cpu;
        orch_cpu_read(&cpu);
        for (int i = 0; i < orch_blis_n_subconfigs(); i++) {
            int id = orch_blis_subconfig_id(i);
            if (orch_blis_unsupported(&cpu, id) == NULL)
                printf("%s\n", orch_blis_subconfig_name(id));
        }
        return 0;
    }
    char self[4096];
    snprintf(self, sizeof self, "%s", argv[0]);
    snprintf(g_dir, sizeof g_dir, "%s", dirname(self));
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_choice_without_env),
        cmocka_unit_test(test_choice_with_env),
        cmocka_unit_test(test_this_machine),
        cmocka_unit_test(test_every_subconfig),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
