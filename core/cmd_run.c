/* cmd_run.c - `orch run`: validate a pipeline, train it, record it; and the
 * training driver `orch resume` shares. */
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/cli.h"
#include "core/mpi_comm.h"
#include "core/pipeline.h"
#include "core/run_sources.h"
#include "core/train.h"
#include "lua/dsl.h"
#include "store/bundle.h"
#include "store/store.h"

enum { OPT_SET = 1, OPT_NAME, OPT_QUIET, OPT_JSON, OPT_RANKS, OPT_FROM };

/* A value of the summary line: fixed decimals (fmt), or NaN, Infinity and
 * -Infinity as the store and its queries print them. Returns buf. */
static const char *summary_value(double v, const char *fmt, char buf[32])
{
    if (isnan(v))
        return strcpy(buf, "NaN");
    if (isinf(v))
        return strcpy(buf, v > 0 ? "Infinity" : "-Infinity");
    snprintf(buf, 32, fmt, v);
    return buf;
}

/* ORCH_TEST_STOP_AT=N: the test hook of orch_train_options.stop_at. */
static int64_t test_stop_at(void)
{
    const char *v = getenv("ORCH_TEST_STOP_AT");
    return v != NULL ? strtoll(v, NULL, 10) : 0;
}

static void on_stop_signal(int sig)
{
    orch_train_stop_by_signal(sig);
}

/* SIGINT and SIGTERM (Ctrl-C, Slurm's time limit) end the run cleanly. */
static void install_stop_handlers(struct sigaction *old_int, struct sigaction *old_term)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, old_int);
    sigaction(SIGTERM, &sa, old_term);
}

/* A rank > 0 of a data-parallel run: trains without a store (rank 0
 * records the run) and prints nothing. */
static int train_other_rank(const orch_pipeline *pipeline, orch_cli_train_options *opt,
                            orch_err *err)
{
    orch_sink sink;
    orch_sink_drop(&sink);
    orch_train_options options = {
        .resume_run_id = opt->resume_run_id,
        .resume_checkpoint = opt->resume_checkpoint,
        .comm = opt->comm,
        .stop_at = test_stop_at(),
    };
    orch_train_result result;
    struct sigaction old_int, old_term;
    install_stop_handlers(&old_int, &old_term);
    int rc = orch_train(pipeline, &options, &sink, &result, err);
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    opt->failed = rc != ORCH_OK;
    if (rc == ORCH_OK && result.status == ORCH_RUN_DIVERGED)
        rc = orch_seterr(err, ORCH_ERUNTIME, "diverged");
    else if (rc == ORCH_OK && result.status == ORCH_RUN_INTERRUPTED)
        rc = orch_seterr(err, ORCH_ERUNTIME, "interrupted");
    return rc;
}

int orch_cli_train(const orch_pipeline *pipeline, orch_cli_globals *globals,
                   orch_cli_train_options *opt, orch_err *err)
{
    if (opt->comm != NULL && orch_comm_rank(opt->comm) > 0)
        return train_other_rank(pipeline, opt, err);
    const char *db = orch_cli_db_path(globals);
    orch_store *store = NULL;
    orch_sink sink;
    int rc = orch_store_reap_path(db, stderr, err);
    if (rc == ORCH_OK)
        rc = orch_store_open(db, ORCH_STORE_READWRITE, &store, err);
    /* a store migrated by this open had nothing reaped above */
    if (rc == ORCH_OK)
        rc = orch_store_reap(store, stderr, err);
    if (rc == ORCH_OK)
        rc = orch_store_sink(store, &sink, err);
    orch_train_result result;
    memset(&result, 0, sizeof result);
    if (rc == ORCH_OK) {
        /* beside the store: the detach feature cache, shared by its runs, and
         * one folder per run for checkpoints */
        char cache_dir[ORCH_PATH_MAX + 16], run_dir[ORCH_PATH_MAX + 16];
        snprintf(cache_dir, sizeof cache_dir, "%s.features", db);
        snprintf(run_dir, sizeof run_dir, "%s.runs", db);
        orch_train_options options = {
            .run_name = opt->name,
            .progress = (!opt->quiet && !opt->json && isatty(2)) ? stderr : NULL,
            .json = opt->json ? stdout : NULL,
            .feature_cache = cache_dir,
            .run_dir = run_dir,
            .resume_run_id = opt->resume_run_id,
            .resume_checkpoint = opt->resume_checkpoint,
            .comm = opt->comm,
            .sources = opt->sources,
            .n_sources = opt->n_sources,
            .stop_at = test_stop_at(),
        };
        struct sigaction old_int, old_term;
        install_stop_handlers(&old_int, &old_term);
        rc = orch_train(pipeline, &options, &sink, &result, err);
        sigaction(SIGINT, &old_int, NULL);
        sigaction(SIGTERM, &old_term, NULL);
        opt->failed = rc != ORCH_OK && result.run_id != 0;
    }
    if (rc == ORCH_OK) {
        FILE *out = opt->json ? stderr : stdout;
        char first[32], final[32], norm[32];
        fprintf(out, "run %lld %s: %lld steps, loss %s -> %s, max grad_norm %s, %lld NaN events",
                (long long)result.run_id, orch_run_status_name(result.status),
                (long long)result.last_step + 1, summary_value(result.first_loss, "%.4f", first),
                summary_value(result.final_loss, "%.4f", final),
                summary_value(result.max_grad_norm, "%.4g", norm), (long long)result.nan_events);
        if (result.skipped_steps > 0)
            fprintf(out, ", %lld skipped steps", (long long)result.skipped_steps);
        fprintf(out, "\n");
        if (result.evals > 0) { /* the last evaluation's figures (eval = { ... }) */
            char loss[32], acc[32];
            fprintf(out, "eval: loss %s", summary_value(result.eval_loss, "%.4f", loss));
            if (pipeline->head.kind == ORCH_HEAD_CLASSIFIER)
                fprintf(out, ", accuracy %s", summary_value(result.eval_accuracy, "%.4f", acc));
            fprintf(out, " (%lld evaluation%s)\n", (long long)result.evals,
                    result.evals == 1 ? "" : "s");
        }
        if (result.end_reason[0] != '\0')
            fprintf(out, "%s\n", result.end_reason);
        if (result.first_nan[0] != '\0')
            fprintf(out, "first non-finite: %s (orch show %lld)\n", result.first_nan,
                    (long long)result.run_id);
        if (result.status == ORCH_RUN_DIVERGED)
            rc = orch_seterr(err, ORCH_ERUNTIME, "run %lld diverged at %s",
                             (long long)result.run_id, result.diverged_at);
        else if (result.status == ORCH_RUN_INTERRUPTED)
            rc = orch_seterr(err, ORCH_ERUNTIME,
                             "run %lld interrupted after step %lld; continue it with: orch resume "
                             "%lld",
                             (long long)result.run_id, (long long)result.last_step,
                             (long long)result.run_id);
    }
    /* input found bad before the run was recorded: a store this command
     * created holds nothing, and is not left behind */
    if (rc != ORCH_OK && result.run_id == 0)
        orch_store_close_unused(store);
    else
        orch_store_close(store);
    return rc;
}

int orch_cmd_run(int argc, char **argv, orch_cli_globals *globals, orch_err *err)
{
    static const orch_opt opts[] = {
        {"set", 1, OPT_SET},   {"name", 1, OPT_NAME},   {"quiet", 0, OPT_QUIET},
        {"json", 0, OPT_JSON}, {"ranks", 1, OPT_RANKS}, {"from", 1, OPT_FROM},
        {NULL, 0, 0}};
    orch_opt_state st = {argc, argv, 1, NULL, "run"};
    long ranks = 0;
    const char *sets[ORCH_MAX_SETS];
    int n_sets = 0;
    const char *path = NULL, *from = NULL;
    orch_cli_train_options opt = {NULL, 0, 0, 0, NULL, NULL, 0, NULL, 0};
    int id, more;
    while ((more = orch_opt_each(&st, opts, globals, &id, err)) > 0) {
        switch (id) {
        case OPT_SET:
            if (orch_opt_add_set(&st, sets, &n_sets, err) != ORCH_OK)
                return err->code;
            break;
        case OPT_NAME:
            if (st.value[0] == '\0') /* a run needs a name to be found by */
                return orch_seterr(err, ORCH_EINVAL,
                                   "run: --name is empty; give a name, or leave --name out to "
                                   "use the pipeline's name");
            opt.name = st.value;
            break;
        case OPT_QUIET:
            opt.quiet = 1;
            break;
        case OPT_JSON:
            opt.json = 1;
            break;
        case OPT_RANKS:
            if (orch_parse_int("ranks", st.value, 1, 1 << 20, &ranks, err) != ORCH_OK)
                return err->code;
            break;
        case OPT_FROM:
            from = st.value;
            break;
        case ORCH_OPT_POSITIONAL:
            if (orch_opt_pipeline_path(&st, &path, err) != ORCH_OK)
                return err->code;
            break;
        }
    }
    if (more < 0)
        return err->code;
    if (from != NULL && (path != NULL || n_sets > 0))
        return orch_seterr(err, ORCH_EINVAL,
                           "run: --from RUN runs that run's recorded configuration as it is; "
                           "give no pipeline file or --set with it");
    if (path == NULL && from == NULL)
        return orch_seterr(err, ORCH_EINVAL,
                           "run: missing pipeline file (usage: orch run FILE.lua)");
    /* MPI only under a launcher, started before the threads */
    orch_cli_dp dp;
    int rc = orch_cli_dp_init(globals, &dp, err);
    if (rc == ORCH_OK)
        rc = orch_cli_apply_threads(globals, err);
    orch_pipeline *pipeline = rc == ORCH_OK ? calloc(1, sizeof *pipeline) : NULL;
    if (rc == ORCH_OK && pipeline == NULL)
        rc = orch_seterr(err, ORCH_ENOMEM, "run: out of memory");
    /* the files as they are read now are what the run records */
    orch_dsl_files files = {0};
    orch_run_sources sources = {0};
    orch_stored_sources stored = {0}; /* --from: the files the run recorded */
    if (rc == ORCH_OK && from != NULL)
        rc = orch_cli_load_from_run(globals, from, pipeline, &stored, err);
    else if (rc == ORCH_OK)
        rc = orch_dsl_load_recorded(path, sets, n_sets, pipeline, &files, err);
    if (rc == ORCH_OK)
        rc = orch_run_sources_make(&files, &sources, err);
    opt.sources = from != NULL ? stored.files : sources.files;
    opt.n_sources = from != NULL ? stored.n : sources.n;
    if (rc == ORCH_OK)
        rc = orch_cli_dp_check(&dp, pipeline, (int)ranks, err);
    opt.comm = dp.comm;
    if (rc == ORCH_OK)
        rc = orch_cli_train(pipeline, globals, &opt, err);
    orch_run_sources_free(&sources);
    orch_stored_sources_free(&stored);
    orch_dsl_files_free(&files);
    free(pipeline);
    return orch_cli_dp_end(&dp, rc, opt.failed, err);
}
