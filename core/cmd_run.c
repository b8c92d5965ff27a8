/* cmd_run.c - `orch run`: validate a pipeline, train it, record it. */
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "core/cli.h"
#include "core/pipeline.h"
#include "core/train.h"
#include "lua/dsl.h"
#include "store/store.h"

enum { OPT_SET = 1, OPT_NAME };

int orch_cmd_run(int argc, char **argv, orch_cli_globals *globals, orch_err *err)
{
    static const orch_opt opts[] = {{"set", 1, OPT_SET}, {"name", 1, OPT_NAME}, {NULL, 0, 0}};
    orch_opt_state st = {argc, argv, 1, NULL, "run"};
    const char *sets[ORCH_MAX_SETS];
    int n_sets = 0;
    const char *path = NULL, *name = NULL;
    for (;;) {
        int id = orch_opt_next(&st, opts, globals, err);
        if (id == ORCH_OPT_END)
            break;
        switch (id) {
        case ORCH_OPT_ERROR:
            return err->code;
        case ORCH_OPT_HELP:
            orch_cli_print_usage(orch_cmd_find("run"));
            return ORCH_OK;
        case OPT_SET:
            if (n_sets == ORCH_MAX_SETS)
                return orch_seterr(err, ORCH_EINVAL, "run: at most %d --set options",
                                   ORCH_MAX_SETS);
            sets[n_sets++] = st.value;
            break;
        case OPT_NAME:
            name = st.value;
            break;
        case ORCH_OPT_POSITIONAL:
            if (path != NULL)
                return orch_seterr(err, ORCH_EINVAL,
                                   "run: one pipeline file at a time (got '%s' and '%s')", path,
                                   st.value);
            path = st.value;
            break;
        }
    }
    if (path == NULL)
        return orch_seterr(err, ORCH_EINVAL,
                           "run: missing pipeline file (usage: orch run FILE.lua)");
    int rc = orch_cli_apply_threads(globals, err);
    if (rc != ORCH_OK)
        return rc;
    orch_pipeline *pipeline = calloc(1, sizeof *pipeline);
    if (pipeline == NULL)
        return orch_seterr(err, ORCH_ENOMEM, "run: out of memory");
    rc = orch_dsl_load(path, sets, n_sets, pipeline, err);
    orch_store *store = NULL;
    orch_sink sink;
    if (rc == ORCH_OK)
        rc = orch_store_open(orch_cli_db_path(globals), ORCH_STORE_READWRITE, &store, err);
    if (rc == ORCH_OK)
        rc = orch_store_sink(store, &sink, err);
    orch_train_result result;
    if (rc == ORCH_OK) {
        /* the detach feature cache lives beside the store, shared by its runs */
        char cache_dir[ORCH_PATH_MAX + 16];
        snprintf(cache_dir, sizeof cache_dir, "%s.features", orch_cli_db_path(globals));
        orch_train_options options = {name, isatty(2) ? stderr : NULL, cache_dir};
        rc = orch_train(pipeline, &options, &sink, &result, err);
    }
    if (rc == ORCH_OK) {
        printf("run %lld %s: %lld steps, loss %.4f -> %.4f, max grad_norm %.4g, %lld NaN events",
               (long long)result.run_id, orch_run_status_name(result.status),
               (long long)result.steps_done, result.first_loss, result.final_loss,
               result.max_grad_norm, (long long)result.nan_events);
        if (result.skipped_steps > 0)
            printf(", %lld skipped steps", (long long)result.skipped_steps);
        printf("\n");
        if (result.first_nan[0] != '\0')
            printf("first non-finite: %s (orch show %lld)\n", result.first_nan,
                   (long long)result.run_id);
        if (result.status == ORCH_RUN_DIVERGED)
            rc = orch_seterr(err, ORCH_ERUNTIME, "run %lld diverged at %s",
                             (long long)result.run_id, result.first_nan);
    }
    orch_store_close(store);
    free(pipeline);
    return rc;
}
