/* cmd_resume.c - `orch resume RUN`: continue a run from its last checkpoint. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/checkpoint.h"
#include "core/cli.h"
#include "core/mpi_comm.h"
#include "core/pipeline.h"
#include "core/pipeline_json.h"
#include "store/store.h"

/* Picks the checkpoint to resume from into checkpoint (n bytes): the one
 * at from_step when from_step >= 0, else the newest that verifies (a
 * regular file of the recorded size and sha256), saying on stderr why each
 * newer one was passed over. "" when the run has none. */
static int pick_checkpoint(const orch_resume_info *info, int64_t from_step, char *checkpoint,
                           size_t n, orch_err *err)
{
    long long run = (long long)info->run_id;
    checkpoint[0] = '\0';
    if (from_step >= 0) {
        for (int i = 0; i < info->n_checkpoints; i++) {
            const orch_resume_checkpoint *c = &info->checkpoints[i];
            if (c->step != from_step)
                continue;
            orch_err why = {0};
            if (orch_checkpoint_verify(c->path, c->bytes, c->sha256, &why) != ORCH_OK)
                return orch_seterr(err, ORCH_EINVAL, "run %lld: checkpoint at step %lld: %s", run,
                                   (long long)from_step, why.msg);
            snprintf(checkpoint, n, "%s", c->path);
            return ORCH_OK;
        }
        char steps[256] = "";
        size_t k = 0;
        for (int i = info->n_checkpoints - 1; i >= 0 && k + 24 < sizeof steps; i--)
            k += (size_t)snprintf(steps + k, sizeof steps - k, "%s%lld", k ? ", " : "",
                                  (long long)info->checkpoints[i].step);
        return orch_seterr(err, ORCH_EINVAL, "run %lld has no checkpoint at step %lld (%s%s)", run,
                           (long long)from_step, k ? "it has steps " : "it has none", steps);
    }
    orch_err newest = {0};
    for (int i = 0; i < info->n_checkpoints; i++) {
        const orch_resume_checkpoint *c = &info->checkpoints[i];
        orch_err why = {0};
        if (orch_checkpoint_verify(c->path, c->bytes, c->sha256, &why) == ORCH_OK) {
            if (i > 0)
                fprintf(stderr,
                        "orch: run %lld: resuming from the checkpoint at step %lld, the newest "
                        "that verifies\n",
                        run, (long long)c->step);
            snprintf(checkpoint, n, "%s", c->path);
            return ORCH_OK;
        }
        fprintf(stderr, "orch: run %lld: checkpoint at step %lld is unusable: %s\n", run,
                (long long)c->step, why.msg);
        if (i == 0)
            newest = why;
    }
    if (info->n_checkpoints > 0)
        return orch_seterr(err, ORCH_EINVAL,
                           "run %lld: none of its %d checkpoints verifies (the newest: %s)", run,
                           info->n_checkpoints, newest.msg);
    return ORCH_OK;
}

static int env_set(const char *name)
{
    const char *v = getenv(name);
    return v != NULL && v[0] != '\0';
}

/* The resolved pipeline and checkpoint of run_id, from the store; cleans
 * the temporary files a killed checkpoint write left in its folder. */
static int load_run(const char *db, int64_t run_id, int64_t from_step, orch_pipeline *pipeline,
                    char *checkpoint, size_t n, int64_t *threads, orch_err *err)
{
    orch_store *store = NULL;
    orch_resume_info info;
    memset(&info, 0, sizeof info);
    checkpoint[0] = '\0';
    int rc = orch_store_open(db, ORCH_STORE_READWRITE, &store, err);
    if (rc == ORCH_OK)
        rc = orch_store_resume_info(store, run_id, &info, err);
    if (rc == ORCH_OK && strcmp(info.status, "finished") == 0)
        rc = orch_seterr(err, ORCH_EINVAL, "run %lld is finished; nothing to resume",
                         (long long)run_id);
    /* The sink starts a queued run with from_step -1 (how a sweep's worker
     * starts one); by hand it is still refused, as it always was. */
    if (rc == ORCH_OK && strcmp(info.status, "queued") == 0)
        rc = orch_seterr(err, ORCH_EINVAL, "run %lld never started; nothing to resume",
                         (long long)run_id);
    if (rc == ORCH_OK && strcmp(info.status, "skipped") == 0)
        rc = orch_seterr(err, ORCH_EINVAL,
                         "run %lld was skipped (a dependency in its sweep failed; 'orch show "
                         "%lld' says which); nothing to resume",
                         (long long)run_id, (long long)run_id);
    if (rc == ORCH_OK && strcmp(info.status, "running") == 0)
        rc = orch_seterr(err, ORCH_EINVAL, "run %lld is still running (pid alive)",
                         (long long)run_id);
    /* the run's own resolved config, not the pipeline file as it is now */
    if (rc == ORCH_OK)
        rc = orch_pipeline_from_json(info.config_json, pipeline, err);
    if (rc == ORCH_OK)
        rc = pick_checkpoint(&info, from_step, checkpoint, n, err);
    if (rc == ORCH_OK)
        orch_store_clean_tmp(store, run_id, stderr);
    *threads = info.threads;
    orch_resume_info_free(&info);
    orch_store_close(store);
    return rc;
}

/* Rank 0's outcome of load_run, and on success the run's pipeline,
 * checkpoint and threads, to every rank. A rank > 0 that gets an error
 * returns it with a message of its own (rank 0 prints the real one). */
static int share_run(orch_cli_dp *dp, int rc, orch_pipeline *pipeline, char *checkpoint, size_t n,
                     int64_t *threads, orch_err *err)
{
    struct orch_comm *world = orch_comm_world();
    int64_t head[2] = {rc, *threads};
    orch_err bcast_err;
    orch_err_clear(&bcast_err);
    int brc = orch_comm_bcast(world, head, sizeof head, 0, &bcast_err);
    if (brc == ORCH_OK && head[0] == ORCH_OK)
        brc = orch_comm_bcast(world, pipeline, sizeof *pipeline, 0, &bcast_err);
    if (brc == ORCH_OK && head[0] == ORCH_OK)
        brc = orch_comm_bcast(world, checkpoint, n, 0, &bcast_err);
    if (brc != ORCH_OK) {
        *err = bcast_err;
        return brc;
    }
    if (dp->rank > 0 && head[0] != ORCH_OK)
        return orch_seterr(err, (int)head[0], "resume: rank 0 could not load the run");
    *threads = head[1];
    return rc;
}

int orch_cmd_resume(int argc, char **argv, orch_cli_globals *globals, orch_err *err)
{
    enum { OPT_QUIET = 1, OPT_JSON, OPT_FROM_STEP };
    static const orch_opt opts[] = {{"quiet", 0, OPT_QUIET},
                                    {"json", 0, OPT_JSON},
                                    {"from-step", 1, OPT_FROM_STEP},
                                    {NULL, 0, 0}};
    long from_step = -1;
    orch_opt_state st = {argc, argv, 1, NULL, "resume"};
    orch_cli_train_options opt = {NULL, 0, 0, 0, NULL, NULL, 0, NULL, 0};
    const char *run_text = NULL;
    int id, more;
    while ((more = orch_opt_each(&st, opts, globals, &id, err)) > 0) {
        switch (id) {
        case OPT_QUIET:
            opt.quiet = 1;
            break;
        case OPT_JSON:
            opt.json = 1;
            break;
        case OPT_FROM_STEP:
            if (orch_parse_int("from-step", st.value, 0, 0x7fffffffL, &from_step, err) != ORCH_OK)
                return err->code;
            break;
        case ORCH_OPT_POSITIONAL:
            if (run_text != NULL)
                return orch_seterr(err, ORCH_EINVAL, "resume: one run at a time");
            run_text = st.value;
            break;
        }
    }
    if (more < 0)
        return err->code;
    if (run_text == NULL)
        return orch_seterr(err, ORCH_EINVAL, "resume: missing run id (usage: orch resume RUN)");
    int64_t run_id = 0;
    if (orch_parse_run_id("resume", run_text, &run_id, err) != ORCH_OK)
        return err->code;
    const char *db = orch_cli_db_path(globals);
    /* under mpirun/srun the run continues on the ranks started, however
     * many it ran on before; only rank 0 reads the store */
    orch_cli_dp dp;
    int rc = orch_cli_dp_init(globals, &dp, err);
    if (rc != ORCH_OK)
        return rc;
    orch_pipeline *pipeline = calloc(1, sizeof *pipeline);
    char checkpoint[4096] = "";
    int64_t threads = 0;
    if (pipeline == NULL)
        rc = orch_seterr(err, ORCH_ENOMEM, "resume: out of memory");
    if (rc == ORCH_OK && dp.rank == 0)
        rc = orch_store_reap_path(db, stderr, err);
    if (rc == ORCH_OK && dp.rank == 0)
        rc =
            load_run(db, run_id, from_step, pipeline, checkpoint, sizeof checkpoint, &threads, err);
    if (dp.size > 1 && pipeline != NULL)
        rc = share_run(&dp, rc, pipeline, checkpoint, sizeof checkpoint, &threads, err);
    if (rc == ORCH_OK)
        orch_cli_dp_resume(&dp, pipeline);
    opt.comm = dp.comm;
    /* Sums are split by thread, so the same count continues the run bit for
     * bit; the free-core default could pick another. A count the user gives
     * still wins. */
    if (rc == ORCH_OK && globals->threads == 0 && !env_set("ORCH_THREADS") &&
        !env_set("OMP_NUM_THREADS") && threads > 0 && threads <= 1024)
        globals->threads = (int)threads;
    if (rc == ORCH_OK)
        rc = orch_cli_apply_threads(globals, err);
    if (rc == ORCH_OK) {
        opt.resume_run_id = run_id;
        opt.resume_checkpoint = checkpoint[0] ? checkpoint : NULL;
        rc = orch_cli_train(pipeline, globals, &opt, err);
    }
    free(pipeline);
    return orch_cli_dp_end(&dp, rc, opt.failed, err);
}
