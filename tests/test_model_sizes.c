/* test_model_sizes.c - the activation memory `orch plan` estimates is the
 * memory a run reserves: orch_graph_activation_bytes_for on a graph without
 * memory equals orch_graph_activation_bytes after orch_graph_reserve with
 * the same limits, for every strategy, with and without checkpointing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "core/graph.h"
#include "tests/testutil.h"

static void test_estimate_equals_reservation(void **state)
{
    (void)state;
    const orch_strategy_kind kinds[] = {ORCH_STRATEGY_SURGERY, ORCH_STRATEGY_DETACH,
                                        ORCH_STRATEGY_LORA, ORCH_STRATEGY_FULL};
    for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
        int64_t bytes[2];
        for (int ckpt = 0; ckpt <= 1; ckpt++) {
            orch_pipeline p;
            tiny_pipeline(&p, kinds[k]);
            p.checkpoint = ckpt;
            orch_graph planned, reserved;
            orch_err err;
            assert_int_equal(orch_graph_build(&p, &planned, &err), ORCH_OK);
            assert_int_equal(orch_graph_build(&p, &reserved, &err), ORCH_OK);
            int64_t estimate = orch_graph_activation_bytes_for(&planned, 152, 2);
            assert_null(planned.param_memory); /* nothing was allocated */
            assert_int_equal(orch_graph_reserve(&reserved, 152, 2, &err), ORCH_OK);
            assert_true(estimate > 0);
            assert_int_equal(estimate, orch_graph_activation_bytes(&reserved));
            bytes[ckpt] = estimate;
            orch_graph_free(&planned);
            orch_graph_free(&reserved);
        }
        /* full fine-tuning trains every block: nothing to recompute */
        if (kinds[k] == ORCH_STRATEGY_FULL)
            assert_int_equal(bytes[1], bytes[0]);
        else
            assert_true(bytes[1] < bytes[0]);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_estimate_equals_reservation),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
