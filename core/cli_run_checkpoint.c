/* cli_run_checkpoint.c - a trained run and its newest checkpoint, from the
 * store; see cli.h. */
#include <stdio.h>
#include <string.h>

#include "core/checkpoint.h"
#include "core/cli.h"
#include "core/pipeline.h"
#include "core/pipeline_json.h"
#include "store/store.h"

int orch_cli_load_run_checkpoint(const char *db, orch_cli_run_checkpoint *run, orch_err *err)
{
    orch_store *store = NULL;
    orch_resume_info info;
    memset(&info, 0, sizeof info);
    long long id = (long long)run->run_id;
    int rc = orch_store_open(db, ORCH_STORE_READONLY, &store, err);
    if (rc == ORCH_OK)
        rc = orch_store_resume_info(store, run->run_id, &info, err);
    if (rc == ORCH_OK)
        rc = orch_pipeline_from_json(info.config_json, run->pipeline, err);
    if (rc == ORCH_OK && info.n_checkpoints == 0)
        rc = orch_seterr(err, ORCH_EINVAL,
                         "run %lld has no checkpoint; run with schedule.checkpoint_every or to "
                         "its end",
                         id);
    if (rc == ORCH_OK) {
        /* the newest: an older one would misstate the run. Its weights
         * alone: the optimizer state is not read */
        const orch_resume_checkpoint *c = &info.checkpoints[0];
        orch_err why = {0};
        if (orch_checkpoint_verify_file(c->path, c->bytes, c->sha256, &why) != ORCH_OK)
            rc = orch_seterr(err, ORCH_EINVAL, "run %lld: its checkpoint at step %lld: %s", id,
                             (long long)c->step, why.msg);
        else if ((size_t)snprintf(run->checkpoint, sizeof run->checkpoint, "%s", c->path) >=
                 sizeof run->checkpoint)
            rc = orch_seterr(err, ORCH_EINVAL, "run %lld: its checkpoint path is too long", id);
        snprintf(run->sha256, sizeof run->sha256, "%s", c->sha256 ? c->sha256 : "");
        run->step = c->step;
        snprintf(run->name, sizeof run->name, "%s", info.name ? info.name : "");
    }
    orch_resume_info_free(&info);
    orch_store_close(store);
    return rc;
}
