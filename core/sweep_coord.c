/* sweep_coord.c - the coordinator of a sweep; see sweep_coord.h. */
#include "core/sweep_coord.h"

#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/checkpoint.h"
#include "core/mpi_comm.h"
#include "core/pipeline_json.h"
#include "store/bundle.h"
#include "core/sweep_msg.h"
#include "core/sweep_worker.h"
#include "kernels/kernels.h"
#include "store/store.h"
#include "store/sweeps.h"

/* The coordinator's heartbeat in the store, well inside ORCH_STORE_STALE_S. */
#define HEARTBEAT_S 30.0
/* Rank 0 waits on its local mailbox between polls of MPI: 0.2 ms right
 * after a message (a remote rank that just ended a run waits for its next
 * one), doubling while nothing comes up to 3.2 ms. Polling every 0.2 ms
 * throughout cost rank 0's own worker thread a quarter of its speed (the
 * wake-ups and MPI progress run on its core): 28 ms steps against 22.7 ms
 * on rank 1, measured with bench/sweep's runs. With no MPI it waits until
 * a message comes or 50 ms pass (a signal is noticed within that). */
#define WAIT_MPI_US     200
#define WAIT_MPI_MAX_US 3200
#define WAIT_LOCAL_US   50000

typedef struct coord {
    const orch_sweep *sw;
    const orch_dag *dag;
    const orch_sweep_coord_options *opt;
    orch_sched sched;
    orch_store *store;
    orch_sink sink;
    int64_t sweep_id;
    int *busy;                   /* per rank: the node it computes, or -1 */
    char *lead;                  /* per rank: 1 when its DONE ends its node; 0 for the other
                                    ranks of a data-parallel group (their DONE frees them) */
    int *group;                  /* scratch of hand_out_ready: the free ranks >= 1 */
    orch_sweep_run_state *state; /* per run: as queued (id, status, attempts, checkpoint) */
    char (*checkpoint)[ORCH_PATH_MAX + 64]; /* per run: its newest checkpoint, as it opens */
    char *skip_recorded;                    /* per node: its skip is in the store */
    char **config_json;                     /* per run: canonical JSON (malloc'd) */
    orch_msg_buf out;
    int records_pending; /* records put since the last flush */
    int stopping;        /* hand out no more: a stop, an interrupted run, an error */
    int failed;          /* a failure stopped the sweep: err_first says why */
    orch_err err_first;
    double last_beat;
} coord;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* ------------------------------------------------------------ sending */

static int send_to(const orch_sweep_coord_options *opt, int rank, const void *data, size_t len,
                   orch_err *err)
{
    if (rank == 0)
        return orch_mailbox_put(opt->to_local, data, len, err);
    return orch_mpi_send(rank, data, len, err);
}

void orch_sweep_send_exit(const orch_sweep_coord_options *opt)
{
    unsigned char exit_msg = ORCH_MSG_EXIT;
    orch_err err;
    for (int r = 0; r < opt->size; r++)
        if (r > 0 || opt->to_local != NULL)
            send_to(opt, r, &exit_msg, 1, &err); /* a rank that cannot hear it is gone */
}

/* ---------------------------------------------------------- handshake */

int orch_sweep_gather_ready(const orch_sweep_coord_options *opt, const char *hash, orch_err *err)
{
    int waiting = opt->size - 1, rc = ORCH_OK;
    char *seen = calloc((size_t)opt->size, 1);
    if (seen == NULL)
        return orch_seterr(err, ORCH_ENOMEM, "sweep: out of memory");
    int sleep_us = 50;
    while (waiting > 0) {
        void *data = NULL;
        size_t len = 0;
        int source = 0;
        int got = orch_mpi_try_recv(&data, &len, &source, err);
        if (got < 0) {
            rc = err->code;
            break;
        }
        if (got == 0) {
            struct timespec ts = {0, sleep_us * 1000L};
            nanosleep(&ts, NULL);
            sleep_us = sleep_us < 2000 ? sleep_us * 2 : 2000;
            continue;
        }
        sleep_us = 50;
        orch_msg_ready ready;
        orch_err why;
        int drc = orch_msg_decode_ready(data, len, &ready, &why);
        free(data);
        if (source <= 0 || source >= opt->size || seen[source]) {
            if (rc == ORCH_OK)
                rc = orch_seterr(err, ORCH_ERUNTIME, "sweep: an unexpected message from rank %d",
                                 source);
            continue;
        }
        seen[source] = 1;
        waiting--;
        if (drc != ORCH_OK) {
            if (rc == ORCH_OK)
                rc = orch_seterr(err, ORCH_ERUNTIME, "sweep: rank %d: %s", source, why.msg);
            continue;
        }
        snprintf(opt->hosts[source], sizeof opt->hosts[source], "%s", ready.host);
        if (rc != ORCH_OK)
            continue;
        if (ready.status != ORCH_OK)
            rc =
                orch_seterr(err, ORCH_EINVAL, "rank %d on %s: %s", source, ready.host, ready.error);
        else if (strcmp(ready.hash, hash) != 0)
            rc = orch_seterr(err, ORCH_EINVAL,
                             "rank %d on %s expanded the sweep to hash %.12s, rank 0 to %.12s: "
                             "the ranks do not see the same sweep file, its modules or data; "
                             "nothing was recorded",
                             source, ready.host, ready.hash, hash);
    }
    free(seen);
    return rc;
}

/* ---------------------------------------------------------- the store */

static void fill_info(const coord *c, int i, orch_run_info *info)
{
    const orch_sweep_run *run = &c->sw->runs[i];
    const orch_pipeline *p = run->pipeline;
    const orch_blas_info *blas = orch_blas_get_info();
    memset(info, 0, sizeof *info);
    info->pipeline = c->sw->file;
    info->name = run->name;
    info->strategy = orch_strategy_name(p->strategy.kind);
    info->config_json = c->config_json[i];
    info->config_hash = run->config_hash;
    info->seed = p->seed;
    info->host = c->opt->host;
    info->pid = (int64_t)getpid();
    info->orch_version = ORCH_VERSION;
    info->kernels_why = blas->why;
    info->cpu = blas->cpu;
    info->threads = orch_threads_get();
}

/* Queues every run (or finds it from an earlier invocation) into c->state. */
static int queue_runs(coord *c, orch_err *err)
{
    int rc = ORCH_OK;
    for (int i = 0; i < c->sw->n_runs && rc == ORCH_OK; i++) {
        c->config_json[i] = orch_pipeline_to_json(c->sw->runs[i].pipeline, 0);
        if (c->config_json[i] == NULL)
            return orch_seterr(err, ORCH_ENOMEM, "sweep: cannot encode a pipeline");
        orch_run_info info;
        fill_info(c, i, &info);
        rc = orch_store_sweep_queue(c->store, c->sweep_id, c->sw->runs[i].point, &info,
                                    &c->state[i], err);
        if (rc == ORCH_OK)
            snprintf(c->checkpoint[i], sizeof c->checkpoint[i], "%s", c->state[i].checkpoint);
        /* the files as this invocation read them: a continued sweep's runs
         * that start now run them */
        if (rc == ORCH_OK && c->opt->n_sources > 0)
            rc = orch_store_record_sources(c->store, c->state[i].run_id, c->opt->sources,
                                           c->opt->n_sources, err);
    }
    return rc;
}

static void say(const coord *c, int rank, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* A progress line on opt->progress: "[rank 1 h1] ...", or without the
 * prefix for rank < 0 (the coordinator's own decisions). */
static void say(const coord *c, int rank, const char *fmt, ...)
{
    FILE *f = c->opt->progress;
    if (f == NULL)
        return;
    if (rank >= 0)
        fprintf(f, "[rank %d %s] ", rank, c->opt->hosts[rank]);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(f, fmt, ap);
    va_end(ap);
    fputc('\n', f);
    fflush(f);
}

/* Records the skips the scheduler decided since the last call. */
static int record_skips(coord *c, orch_err *err)
{
    int rc = ORCH_OK;
    for (int k = 0; k < c->dag->n_nodes && rc == ORCH_OK; k++) {
        const orch_dag_node *node = &c->dag->nodes[k];
        if (c->sched.state[k] != ORCH_SCHED_SKIPPED || c->skip_recorded[k])
            continue;
        c->skip_recorded[k] = 1;
        if (node->kind != ORCH_DAG_RUN)
            continue;
        const orch_sweep_run_state *st = &c->state[node->run];
        rc = orch_store_sweep_settle_run(c->store, st->run_id, ORCH_RUN_SKIPPED, c->sched.reason[k],
                                         err);
        say(c, -1, "%s (run %lld): skipped: %s", node->name, (long long)st->run_id,
            c->sched.reason[k]);
    }
    return rc;
}

/* 1 when the run's last attempt ended by a stop request (its end record:
 * "interrupted by SIGTERM", ...), not by the death of its worker: a run
 * stopped at a job's time limit again and again is not quarantined. */
static int stopped_cleanly(coord *c, int64_t run_id)
{
    orch_run_report report;
    orch_err why;
    memset(&report, 0, sizeof report);
    int clean = 0;
    if (orch_store_read_run(c->store, run_id, &report, &why) == ORCH_OK && report.run.n_rows == 1) {
        int col = orch_rowset_column(&report.run, "error");
        const orch_value *v = col >= 0 ? &report.run.cells[col] : NULL;
        clean = v != NULL && v->kind == ORCH_VALUE_TEXT && v->s != NULL &&
                strncmp(v->s, "interrupted by ", 15) == 0;
    }
    orch_run_report_free(&report);
    return clean;
}

/* The newest checkpoint of run_id that verifies (its recorded size and
 * sha256) into path, as `orch resume` picks it; "" when none does (the
 * run then starts again from step 0). */
static void pick_checkpoint(coord *c, int64_t run_id, char *path, size_t n)
{
    orch_resume_info info;
    orch_err why;
    path[0] = '\0';
    if (orch_store_resume_info(c->store, run_id, &info, &why) == ORCH_OK)
        for (int i = 0; i < info.n_checkpoints && path[0] == '\0'; i++) {
            const orch_resume_checkpoint *ck = &info.checkpoints[i];
            if (orch_checkpoint_verify(ck->path, ck->bytes, ck->sha256, &why) == ORCH_OK)
                snprintf(path, n, "%s", ck->path);
            else
                say(c, -1, "run %lld: checkpoint at step %lld is unusable: %s", (long long)run_id,
                    (long long)ck->step, why.msg);
        }
    orch_resume_info_free(&info);
}

/* The scheduler from what the store holds (a rerun). */
static int sched_from_store(coord *c, orch_err *err)
{
    int rc = ORCH_OK;
    for (int k = 0; k < c->dag->n_nodes && rc == ORCH_OK; k++) {
        const orch_dag_node *node = &c->dag->nodes[k];
        if (node->kind != ORCH_DAG_RUN)
            continue;
        const orch_sweep_run_state *st = &c->state[node->run];
        switch (st->status) {
        case ORCH_RUN_FINISHED:
            orch_sched_set(&c->sched, k, ORCH_SCHED_DONE, "");
            break;
        case ORCH_RUN_DIVERGED: /* complete, but no use to its dependents */
            orch_sched_set(&c->sched, k, ORCH_SCHED_FAILED, "diverged");
            break;
        case ORCH_RUN_FAILED:
            orch_sched_set(&c->sched, k, ORCH_SCHED_FAILED, "failed");
            break;
        case ORCH_RUN_SKIPPED:
            orch_sched_set(&c->sched, k, ORCH_SCHED_SKIPPED, "skipped");
            c->skip_recorded[k] = 1;
            break;
        case ORCH_RUN_INTERRUPTED:
            if (st->attempts >= 2 && !stopped_cleanly(c, st->run_id)) {
                char reason[128];
                snprintf(reason, sizeof reason, "killed its worker %lld times; quarantined",
                         (long long)st->attempts);
                rc =
                    orch_store_sweep_settle_run(c->store, st->run_id, ORCH_RUN_FAILED, reason, err);
                orch_sched_set(&c->sched, k, ORCH_SCHED_FAILED, reason);
                say(c, -1, "%s (run %lld): failed: %s", node->name, (long long)st->run_id, reason);
            }
            break;
        default: /* queued (or running: sweep_open made those interrupted) */
            break;
        }
    }
    orch_sched_settle(&c->sched);
    return rc == ORCH_OK ? record_skips(c, err) : rc;
}

/* ----------------------------------------------------------- handouts */

/* The final checkpoint of the run an output_of run starts from, into
 * path ("" when the run has no output_of). */
static int init_path_of(const coord *c, const orch_sweep_run *run, char *path, size_t n,
                        orch_err *err)
{
    path[0] = '\0';
    const char *init = run->pipeline->strategy.init;
    size_t plen = strlen(ORCH_OUTPUT_OF_PREFIX);
    if (strncmp(init, ORCH_OUTPUT_OF_PREFIX, plen) != 0)
        return ORCH_OK;
    int dep = orch_sweep_find(c->sw, init + plen);
    if (dep < 0)
        return orch_seterr(err, ORCH_EINVAL, "its init names %s, which is not a run of the sweep",
                           init + plen);
    if (c->checkpoint[dep][0] == '\0')
        return orch_seterr(err, ORCH_ERUNTIME, "its dependency %s finished without a checkpoint",
                           c->sw->runs[dep].name);
    snprintf(path, n, "%s", c->checkpoint[dep]);
    return ORCH_OK;
}

/* The ranks a run of the sweep trains on at once: parallel.data (1 for a
 * run that does not set it, and for a FEATURES node). */
static int ranks_of(const coord *c, int k)
{
    const orch_dag_node *node = &c->dag->nodes[k];
    if (node->kind != ORCH_DAG_RUN)
        return 1;
    int n = c->sw->runs[node->run].pipeline->parallel.data;
    return n > 1 ? n : 1;
}

/* Hands node k to the n_group ranks of group (lowest first; more than one
 * for a data-parallel run: the lowest forwards its records, and the store
 * records the hand-out to it). A run that cannot be handed out (its
 * dependency left no checkpoint) fails here. */
static int hand_out(coord *c, int k, const int *group, int n_group, orch_err *err)
{
    const orch_dag_node *node = &c->dag->nodes[k];
    int rank = group[0];
    orch_msg_assign a;
    memset(&a, 0, sizeof a);
    a.node = k;
    a.n_group = n_group;
    for (int i = 0; i < n_group; i++)
        a.group[i] = group[i];
    snprintf(a.run_dir, sizeof a.run_dir, "%s.runs", c->opt->db);
    snprintf(a.feature_dir, sizeof a.feature_dir, "%s.features", c->opt->db);
    if (node->kind == ORCH_DAG_RUN) {
        const orch_sweep_run *run = &c->sw->runs[node->run];
        orch_sweep_run_state *st = &c->state[node->run];
        orch_err why;
        orch_err_clear(&why);
        if (init_path_of(c, run, a.init_path, sizeof a.init_path, &why) != ORCH_OK) {
            orch_sched_end(&c->sched, k, 0, why.msg);
            say(c, -1, "%s (run %lld): failed: %s", node->name, (long long)st->run_id, why.msg);
            int rc =
                orch_store_sweep_settle_run(c->store, st->run_id, ORCH_RUN_FAILED, why.msg, err);
            return rc == ORCH_OK ? record_skips(c, err) : rc;
        }
        a.run_id = st->run_id;
        /* an interrupted run goes on from its newest checkpoint; a queued
         * one (or one without a checkpoint) from step 0 */
        if (st->status == ORCH_RUN_INTERRUPTED)
            pick_checkpoint(c, st->run_id, a.checkpoint, sizeof a.checkpoint);
        int rc = orch_store_sweep_handout(c->store, st->run_id, rank, c->opt->hosts[rank],
                                          &a.attempt, err);
        if (rc != ORCH_OK)
            return rc;
        st->attempts = a.attempt;
    }
    int rc = orch_msg_encode_assign(&c->out, &a, err);
    for (int i = 0; i < n_group && rc == ORCH_OK; i++) {
        rc = send_to(c->opt, group[i], c->out.data, c->out.len, err);
        if (rc == ORCH_OK) {
            c->busy[group[i]] = k;
            c->lead[group[i]] = i == 0;
        }
    }
    if (rc == ORCH_OK && n_group > 1)
        say(c, -1, "%s (run %lld): on %d ranks (data-parallel), rank %d forwards its records",
            node->name, (long long)a.run_id, n_group, rank);
    return rc;
}

/* Hands ready nodes out, the most urgent first, while ranks are free: a
 * node of one rank to the lowest free rank, a data-parallel run of N ranks
 * to the N lowest free ranks from 1 up (rank 0's worker is a thread of the
 * coordinator, which alone may call MPI: it cannot join a group). A node
 * that does not fit yet waits, and so does everything behind it, so the
 * ranks a data-parallel run needs are not taken by smaller nodes one by
 * one. */
static int hand_out_ready(coord *c, orch_err *err)
{
    int rc = ORCH_OK;
    while (rc == ORCH_OK && !c->stopping) {
        int k = orch_sched_next(&c->sched);
        if (k < 0)
            break;
        int need = ranks_of(c, k), n_free = 0;
        for (int r = need > 1 ? 1 : 0; r < c->opt->size && n_free < need; r++)
            if (c->busy[r] < 0)
                c->group[n_free++] = r;
        if (n_free < need) {
            orch_sched_set(&c->sched, k, ORCH_SCHED_READY, ""); /* back in line */
            break;
        }
        rc = hand_out(c, k, c->group, need, err);
    }
    return rc;
}

/* ORCH_EINVAL when a run needs more ranks than the sweep can give it at
 * once: ranks 1..size-1 (rank 0's worker cannot join a group). */
static int check_ranks(const coord *c, orch_err *err)
{
    int workers = c->opt->size - 1;
    for (int k = 0; k < c->dag->n_nodes; k++) {
        int need = ranks_of(c, k);
        if (need <= 1)
            continue;
        if (need > workers || need > ORCH_SWEEP_MAX_GROUP)
            return orch_seterr(err, ORCH_EINVAL,
                               "sweep %s: run %s has parallel.data = %d, but the sweep has %d "
                               "rank%s besides rank 0 to run it on (at least mpirun -np %d); "
                               "nothing was recorded",
                               c->sw->name, c->dag->nodes[k].name, need, workers,
                               workers == 1 ? "" : "s", need + 1);
    }
    return ORCH_OK;
}

/* ------------------------------------------------------------ arrivals */

/* The run whose id is run_id, or -1. */
static int run_of_id(const coord *c, int64_t run_id)
{
    for (int i = 0; i < c->sw->n_runs; i++)
        if (c->state[i].run_id == run_id)
            return i;
    return -1;
}

/* A failure of the coordinator (the store refused a write, a rank broke the
 * protocol): nothing more is handed out, the running nodes are waited for
 * (a worker left sending to a coordinator gone could block), then the
 * sweep ends with the first such error. */
static void coord_fail(coord *c, const orch_err *why)
{
    if (!c->failed)
        c->err_first = *why;
    c->failed = 1;
    c->stopping = 1;
}

static void on_records(coord *c, const unsigned char *data, size_t len)
{
    size_t pos = 0;
    orch_record rec;
    orch_err why;
    orch_err_clear(&why);
    int more;
    while ((more = orch_msg_records_next(data, len, &pos, &rec, &why)) > 0) {
        if (rec.kind == ORCH_REC_ARTIFACT && rec.as.artifact.kind == ORCH_ARTIFACT_CHECKPOINT) {
            int i = run_of_id(c, rec.run_id);
            if (i >= 0)
                snprintf(c->checkpoint[i], sizeof c->checkpoint[i], "%s", rec.as.artifact.path);
        }
        if (orch_sink_put(&c->sink, &rec, NULL, &why) != ORCH_OK) {
            coord_fail(c, &why);
            return;
        }
        c->records_pending++;
    }
    if (more < 0)
        coord_fail(c, &why);
}

static const char *loss_text(double v, char buf[32])
{
    if (isnan(v))
        return "NaN";
    if (isinf(v))
        return v > 0 ? "Infinity" : "-Infinity";
    snprintf(buf, 32, "%.4f", v);
    return buf;
}

static int on_done(coord *c, int rank, const orch_msg_done *d, orch_err *err)
{
    int k = d->node;
    int own = c->busy[rank];
    c->busy[rank] = -1; /* whatever it says, the rank is free */
    if (k < 0 || k >= c->dag->n_nodes || own != k)
        return orch_seterr(err, ORCH_ERUNTIME, "sweep: rank %d ended node %d, not its own (%d)",
                           rank, k, own);
    if (!c->lead[rank]) /* a data-parallel run's other rank: its lowest rank's DONE tells */
        return ORCH_OK;
    const orch_dag_node *node = &c->dag->nodes[k];
    if (node->kind == ORCH_DAG_FEATURES) {
        if (d->status == ORCH_RUN_INTERRUPTED) {
            orch_sched_set(&c->sched, k, ORCH_SCHED_READY, "");
            c->stopping = 1;
            return ORCH_OK;
        }
        /* the stage only saves work: when it fails, its runs compute the
         * tower themselves (and fail with their own message if the cause
         * is theirs, e.g. a bad weights file) */
        orch_sched_end(&c->sched, k, 1, "");
        if (d->status == ORCH_RUN_FINISHED)
            say(c, rank, "%s: %lld images in the feature cache, %lld computed (%.1f s)", node->name,
                (long long)d->steps, (long long)d->computed, d->seconds);
        else
            say(c, rank, "%s: failed (its runs compute the tower themselves): %s", node->name,
                d->error);
        return record_skips(c, err);
    }
    orch_sweep_run_state *st = &c->state[node->run];
    long long id = (long long)st->run_id;
    char first[32], final[32];
    int rc = ORCH_OK;
    switch (d->status) {
    case ORCH_RUN_FINISHED:
        st->status = ORCH_RUN_FINISHED;
        orch_sched_end(&c->sched, k, 1, "");
        if (d->steps_now < d->steps) /* its first loss is the first of this attempt */
            say(c, rank,
                "%s (run %lld): finished, loss %s -> %s (%lld steps, resumed after step "
                "%lld, %.1f s)",
                node->name, id, loss_text(d->first_loss, first), loss_text(d->final_loss, final),
                (long long)d->steps, (long long)(d->steps - d->steps_now - 1), d->seconds);
        else
            say(c, rank, "%s (run %lld): finished, loss %s -> %s (%lld steps, %.1f s)", node->name,
                id, loss_text(d->first_loss, first), loss_text(d->final_loss, final),
                (long long)d->steps, d->seconds);
        break;
    case ORCH_RUN_DIVERGED:
        st->status = ORCH_RUN_DIVERGED;
        orch_sched_end(&c->sched, k, 0, "diverged");
        say(c, rank, "%s (run %lld): diverged, loss %s -> %s: %s", node->name, id,
            loss_text(d->first_loss, first), loss_text(d->final_loss, final), d->error);
        break;
    case ORCH_RUN_INTERRUPTED:
        /* not an end: the run is resumed by the next invocation */
        st->status = d->started ? ORCH_RUN_INTERRUPTED : st->status;
        orch_sched_set(&c->sched, k, ORCH_SCHED_READY, "");
        c->stopping = 1;
        say(c, rank, "%s (run %lld): interrupted after %lld steps", node->name, id,
            (long long)d->steps);
        break;
    default:
        st->status = ORCH_RUN_FAILED;
        /* a run that failed before it was taken over (bad weights found as
         * it loads) has no end record: it is ended here */
        if (!d->started)
            rc = orch_store_sweep_settle_run(c->store, st->run_id, ORCH_RUN_FAILED, d->error, err);
        orch_sched_end(&c->sched, k, 0, d->error);
        say(c, rank, "%s (run %lld): failed: %s", node->name, id, d->error);
        break;
    }
    return rc == ORCH_OK ? record_skips(c, err) : rc;
}

/* One message from rank. */
static int on_message(coord *c, int rank, const unsigned char *data, size_t len, orch_err *err)
{
    int kind = orch_msg_kind_of(data, len);
    if (kind == ORCH_MSG_RECORDS) {
        on_records(c, data, len);
        return ORCH_OK;
    }
    if (kind == ORCH_MSG_DONE) {
        orch_msg_done d;
        int rc = orch_msg_decode_done(data, len, &d, err);
        /* a run's end is durable before anything depends on it */
        if (rc == ORCH_OK && c->records_pending > 0) {
            orch_err why;
            if (c->sink.flush(c->sink.ctx, &why) != ORCH_OK)
                coord_fail(c, &why);
            c->records_pending = 0;
        }
        return rc == ORCH_OK ? on_done(c, rank, &d, err) : rc;
    }
    return orch_seterr(err, ORCH_ERUNTIME, "sweep: rank %d sent a message of kind %d", rank, kind);
}

/* One message from rank; a failure stops the sweep (coord_fail). */
static void handle(coord *c, int rank, const unsigned char *data, size_t len)
{
    orch_err why;
    orch_err_clear(&why);
    if (on_message(c, rank, data, len, &why) != ORCH_OK)
        coord_fail(c, &why);
}

/* Handles what is waiting (local mailbox, then MPI); waits up to wait_us
 * for the local mailbox when nothing was. *got counts the messages handled.
 * Fails only when MPI does (the ranks can then not be waited for). */
static int receive(coord *c, long wait_us, int *got_out, orch_err *err)
{
    int got = 0, rc = ORCH_OK;
    *got_out = 0;
    orch_mail *mail;
    while ((mail = orch_mailbox_get(c->opt->inbox, 0)) != NULL) {
        handle(c, 0, mail->data, mail->len);
        free(mail);
        got++;
    }
    while (c->opt->mpi) {
        void *data = NULL;
        size_t len = 0;
        int source = 0;
        int n = orch_mpi_try_recv(&data, &len, &source, err);
        if (n < 0)
            return err->code;
        if (n == 0)
            break;
        if (source > 0 && source < c->opt->size)
            handle(c, source, data, len);
        free(data);
        got++;
    }
    *got_out = got;
    if (got > 0)
        return ORCH_OK;
    /* idle: what came is durable, the coordinator alive, then a short wait */
    if (c->records_pending > 0) {
        orch_err why;
        if (c->sink.flush(c->sink.ctx, &why) != ORCH_OK)
            coord_fail(c, &why);
        c->records_pending = 0;
    }
    if (now_s() - c->last_beat >= HEARTBEAT_S) {
        orch_err why;
        if (orch_store_sweep_heartbeat(c->store, c->sweep_id, &why) != ORCH_OK)
            coord_fail(c, &why);
        c->last_beat = now_s();
    }
    mail = orch_mailbox_get(c->opt->inbox, wait_us);
    if (mail != NULL) {
        handle(c, 0, mail->data, mail->len);
        *got_out = 1;
    }
    free(mail);
    return rc;
}

static int any_busy(const coord *c)
{
    for (int r = 0; r < c->opt->size; r++)
        if (c->busy[r] >= 0)
            return 1;
    return 0;
}

/* ------------------------------------------------------------- summary */

/* Counts by status, read back from the store. */
static int count_runs(coord *c, orch_sweep_counts *n, orch_err *err)
{
    memset(n, 0, sizeof *n);
    n->id = c->sweep_id;
    int rc = ORCH_OK;
    for (int i = 0; i < c->sw->n_runs && rc == ORCH_OK; i++) {
        orch_run_info info;
        orch_sweep_run_state st;
        fill_info(c, i, &info);
        /* the point is queued already: this reads its state */
        rc = orch_store_sweep_queue(c->store, c->sweep_id, c->sw->runs[i].point, &info, &st, err);
        n->runs++;
        switch (st.status) {
        case ORCH_RUN_FINISHED:
            n->finished++;
            break;
        case ORCH_RUN_DIVERGED:
            n->diverged++;
            break;
        case ORCH_RUN_FAILED:
            n->failed++;
            break;
        case ORCH_RUN_SKIPPED:
            n->skipped++;
            break;
        case ORCH_RUN_QUEUED:
            n->queued++;
            break;
        default:
            n->interrupted++;
            break;
        }
    }
    return rc;
}

static void coord_free(coord *c)
{
    orch_sched_free(&c->sched);
    if (c->config_json != NULL)
        for (int i = 0; i < c->sw->n_runs; i++)
            free(c->config_json[i]);
    free(c->config_json);
    free(c->busy);
    free(c->lead);
    free(c->group);
    free(c->state);
    free(c->checkpoint);
    free(c->skip_recorded);
    orch_msg_buf_free(&c->out);
}

int orch_sweep_coordinate(const orch_sweep *sw, const orch_dag *dag,
                          const orch_sweep_coord_options *opt, orch_sweep_counts *counts,
                          orch_err *err)
{
    coord c;
    memset(&c, 0, sizeof c);
    memset(counts, 0, sizeof *counts);
    c.sw = sw;
    c.dag = dag;
    c.opt = opt;
    size_t n = (size_t)(sw->n_runs > 0 ? sw->n_runs : 1);
    c.busy = malloc(sizeof *c.busy * (size_t)opt->size);
    c.lead = calloc((size_t)opt->size, 1);
    c.group = malloc(sizeof *c.group * (size_t)opt->size);
    c.state = calloc(n, sizeof *c.state);
    c.checkpoint = calloc(n, sizeof *c.checkpoint);
    c.config_json = calloc(n, sizeof *c.config_json);
    c.skip_recorded = calloc((size_t)dag->n_nodes + 1, 1);
    int rc = ORCH_OK;
    /* DB.runs and DB.features travel in every assignment */
    if (strlen(opt->db) + sizeof ".features" > sizeof((orch_msg_assign *)0)->run_dir)
        rc =
            orch_seterr(err, ORCH_EINVAL, "sweep: the store path is longer than %d bytes: %.64s...",
                        ORCH_PATH_MAX, opt->db);
    if (rc == ORCH_OK && (c.busy == NULL || c.lead == NULL || c.group == NULL || c.state == NULL ||
                          c.checkpoint == NULL || c.config_json == NULL || c.skip_recorded == NULL))
        rc = orch_seterr(err, ORCH_ENOMEM, "sweep: out of memory");
    for (int r = 0; rc == ORCH_OK && r < opt->size; r++)
        c.busy[r] = -1;
    if (rc == ORCH_OK)
        rc = orch_sched_init(&c.sched, dag, err);
    /* refused before the store is opened: nothing is written */
    if (rc == ORCH_OK)
        rc = check_ranks(&c, err);
    if (rc == ORCH_OK)
        rc = orch_store_open(opt->db, ORCH_STORE_READWRITE, &c.store, err);
    if (rc == ORCH_OK)
        rc = orch_store_sink(c.store, &c.sink, err);
    if (rc == ORCH_OK)
        rc = orch_store_sweep_open(c.store, sw->name, sw->file, sw->hash, opt->host,
                                   (int64_t)getpid(), &c.sweep_id, err);
    if (rc == ORCH_OK)
        rc = queue_runs(&c, err);
    c.last_beat = now_s();
    if (rc == ORCH_OK)
        rc = sched_from_store(&c, err);
    if (rc == ORCH_OK) {
        int to_run = 0;
        for (int k = 0; k < dag->n_nodes; k++)
            to_run +=
                dag->nodes[k].kind == ORCH_DAG_RUN &&
                (c.sched.state[k] == ORCH_SCHED_WAITING || c.sched.state[k] == ORCH_SCHED_READY);
        say(&c, -1, "sweep %s (id %lld): %d runs, %d to run, on %d rank%s", sw->name,
            (long long)c.sweep_id, sw->n_runs, to_run, opt->size, opt->size == 1 ? "" : "s");
    }
    /* the loop: hand out, receive, until every node has ended or a stop
     * has let the running ones end */
    long wait_us = opt->mpi ? WAIT_MPI_US : WAIT_LOCAL_US;
    while (rc == ORCH_OK) {
        if (orch_sweep_stop_requested())
            c.stopping = 1;
        orch_err why;
        orch_err_clear(&why);
        if (hand_out_ready(&c, &why) != ORCH_OK)
            coord_fail(&c, &why);
        /* every free rank took a ready node: with none busy, none is
         * ready, and none can become so */
        if (!any_busy(&c))
            break;
        int got = 0;
        rc = receive(&c, wait_us, &got, err);
        if (opt->mpi)
            wait_us = got > 0 ? WAIT_MPI_US
                              : (wait_us * 2 < WAIT_MPI_MAX_US ? wait_us * 2 : WAIT_MPI_MAX_US);
    }
    orch_sweep_send_exit(opt);
    if (c.store != NULL && c.records_pending > 0) {
        orch_err why;
        if (c.sink.flush(c.sink.ctx, &why) != ORCH_OK)
            coord_fail(&c, &why);
    }
    if (rc == ORCH_OK && c.failed)
        rc = orch_seterr(err, c.err_first.code, "%s", c.err_first.msg);
    if (c.sweep_id > 0) {
        orch_err close_err;
        int crc = orch_store_sweep_close(c.store, c.sweep_id, &close_err);
        if (rc == ORCH_OK && crc != ORCH_OK)
            rc = orch_seterr(err, crc, "%s", close_err.msg);
    }
    if (rc == ORCH_OK)
        rc = count_runs(&c, counts, err);
    if (rc == ORCH_OK && opt->out != NULL) {
        fprintf(opt->out,
                "sweep %s (id %lld): %d runs: %d finished, %d diverged, %d failed, %d "
                "skipped",
                sw->name, (long long)c.sweep_id, counts->runs, counts->finished, counts->diverged,
                counts->failed, counts->skipped);
        if (counts->interrupted + counts->queued > 0)
            fprintf(opt->out, ", %d interrupted, %d queued", counts->interrupted, counts->queued);
        fputc('\n', opt->out);
        fflush(opt->out);
    }
    if (rc == ORCH_OK && counts->finished + counts->diverged < counts->runs) {
        int left = counts->interrupted + counts->queued;
        if (left > 0)
            rc = orch_seterr(err, ORCH_ERUNTIME,
                             "sweep %s (id %lld) is not complete: %d of %d runs left; run the "
                             "same command again to finish them",
                             sw->name, (long long)c.sweep_id, left, counts->runs);
        else
            rc = orch_seterr(err, ORCH_ERUNTIME,
                             "sweep %s (id %lld) ended with %d failed and %d skipped runs (orch "
                             "runs --status failed; orch runs --status skipped)",
                             sw->name, (long long)c.sweep_id, counts->failed, counts->skipped);
    }
    orch_store_close(c.store);
    coord_free(&c);
    return rc;
}
