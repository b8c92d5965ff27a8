/* cmd_resume.c - `orch resume RUN`: continue a run from its last checkpoint. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/checkpoint.h"
#include "core/cli.h"
#include "core/pipeline.h"
#include "core/pipeline_json.h"
#include "store/store.h"

/* The resolved pipeline and checkpoint of run_id, from the store. */
static int load_run(const char *db, int64_t run_id, orch_pipeline *pipeline, char *checkpoint,
                    size_t n, orch_err *err)
{
    orch_store *store = NULL;
    orch_resume_info info;
    memset(&info, 0, sizeof info);
    int rc = orch_store_open(db, ORCH_STORE_READWRITE, &store, err);
    if (rc == ORCH_OK)
        rc = orch_store_resume_info(store, run_id, &info, err);
    if (rc == ORCH_OK && strcmp(info.status, "finished") == 0)
        rc = orch_seterr(err, ORCH_EINVAL, "run %lld is finished; nothing to resume",
                         (long long)run_id);
    if (rc == ORCH_OK && strcmp(info.status, "running") == 0)
        rc = orch_seterr(err, ORCH_EINVAL, "run %lld is still running (pid alive)",
                         (long long)run_id);
    /* the run's own resolved config, not the pipeline file as it is now */
    if (rc == ORCH_OK)
        rc = orch_pipeline_from_json(info.config_json, pipeline, err);
    checkpoint[0] = '\0';
    if (rc == ORCH_OK && info.checkpoint_path != NULL) {
        char sha[65];
        int64_t bytes = 0;
        rc = orch_file_sha256(info.checkpoint_path, sha, &bytes, err);
        if (rc != ORCH_OK)
            rc = orch_seterr(err, ORCH_EINVAL, "run %lld: its checkpoint %s is unreadable",
                             (long long)run_id, info.checkpoint_path);
        else if (info.checkpoint_sha256 != NULL && strcmp(sha, info.checkpoint_sha256) != 0)
            rc = orch_seterr(err, ORCH_EINVAL,
                             "run %lld: checkpoint %s does not match its recorded sha256",
                             (long long)run_id, info.checkpoint_path);
        else
            snprintf(checkpoint, n, "%s", info.checkpoint_path);
    }
    orch_resume_info_free(&info);
    orch_store_close(store);
    return rc;
}

int orch_cmd_resume(int argc, char **argv, orch_cli_globals *globals, orch_err *err)
{
    enum { OPT_QUIET = 1, OPT_JSON };
    static const orch_opt opts[] = {{"quiet", 0, OPT_QUIET}, {"json", 0, OPT_JSON}, {NULL, 0, 0}};
    orch_opt_state st = {argc, argv, 1, NULL, "resume"};
    orch_cli_train_options opt = {NULL, 0, 0, 0, NULL};
    const char *run_text = NULL;
    for (;;) {
        int id = orch_opt_next(&st, opts, globals, err);
        if (id == ORCH_OPT_END)
            break;
        switch (id) {
        case ORCH_OPT_ERROR:
            return err->code;
        case ORCH_OPT_HELP:
            orch_cli_print_usage(orch_cmd_find("resume"));
            return ORCH_OK;
        case OPT_QUIET:
            opt.quiet = 1;
            break;
        case OPT_JSON:
            opt.json = 1;
            break;
        case ORCH_OPT_POSITIONAL:
            if (run_text != NULL)
                return orch_seterr(err, ORCH_EINVAL, "resume: one run at a time");
            run_text = st.value;
            break;
        }
    }
    if (run_text == NULL)
        return orch_seterr(err, ORCH_EINVAL, "resume: missing run id (usage: orch resume RUN)");
    int64_t run_id = 0;
    if (orch_parse_run_id("resume", run_text, &run_id, err) != ORCH_OK)
        return err->code;
    int rc = orch_cli_apply_threads(globals, err);
    if (rc != ORCH_OK)
        return rc;
    const char *db = orch_cli_db_path(globals);
    rc = orch_store_reap_path(db, stderr, err);
    orch_pipeline *pipeline = calloc(1, sizeof *pipeline);
    char checkpoint[ORCH_PATH_MAX + 128];
    if (rc == ORCH_OK && pipeline == NULL)
        rc = orch_seterr(err, ORCH_ENOMEM, "resume: out of memory");
    if (rc == ORCH_OK)
        rc = load_run(db, run_id, pipeline, checkpoint, sizeof checkpoint, err);
    if (rc == ORCH_OK) {
        opt.resume_run_id = run_id;
        opt.resume_checkpoint = checkpoint[0] ? checkpoint : NULL;
        rc = orch_cli_train(pipeline, globals, &opt, err);
    }
    free(pipeline);
    return rc;
}
