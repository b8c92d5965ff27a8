/* sweep_worker.c - a sweep's worker; see sweep_worker.h. */
#include "core/sweep_worker.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/detach_cache.h"
#include "core/mpi_comm.h"
#include "core/train.h"

static volatile sig_atomic_t stop_requested;

void orch_sweep_request_stop(int sig)
{
    stop_requested = 1;
    orch_train_stop_by_signal(sig);
}

int orch_sweep_stop_requested(void)
{
    return stop_requested != 0;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* ORCH_TEST_KILL_AT="RUN-NAME:STEP" for this run: arms fwd's kill. */
static void arm_kill_hook(orch_fwd_sink *fwd, const char *run_name, int64_t run_id)
{
    fwd->kill_run = 0;
    fwd->kill_step = -1;
    const char *hook = getenv("ORCH_TEST_KILL_AT");
    const char *colon = hook != NULL ? strrchr(hook, ':') : NULL;
    if (colon == NULL || (size_t)(colon - hook) != strlen(run_name) ||
        strncmp(hook, run_name, (size_t)(colon - hook)) != 0)
        return;
    fwd->kill_run = run_id;
    fwd->kill_step = strtoll(colon + 1, NULL, 10);
}

static void work_run(const orch_sweep *sw, const orch_dag_node *node, const orch_msg_assign *a,
                     orch_fwd_sink *fwd, orch_msg_done *done)
{
    const orch_sweep_run *run = &sw->runs[node->run];
    orch_err err;
    orch_err_clear(&err);
    /* a data-parallel run: the group's own communicator, made by its ranks
     * together (the node's index tells concurrent groups apart) */
    orch_comm *comm = NULL;
    int rc = ORCH_OK;
    if (a->n_group > 1)
        rc = orch_comm_create_group(a->group, a->n_group, a->node, &comm, &err);
    /* the group's lowest rank forwards the run's records; the others
     * drop theirs (orch_train brings what they find to it) */
    int lead = comm == NULL || orch_comm_rank(comm) == 0;
    if (lead)
        arm_kill_hook(fwd, run->name, a->run_id);
    orch_train_options options = {
        .run_name = run->name,
        .feature_cache = a->feature_dir,
        .run_dir = a->run_dir,
        .resume_run_id = a->run_id,
        .resume_checkpoint = a->checkpoint[0] != '\0' ? a->checkpoint : NULL,
        .init_path = a->init_path[0] != '\0' ? a->init_path : NULL,
        .comm = comm,
    };
    orch_sink sink;
    if (lead)
        sink = orch_fwd_sink_make(fwd);
    else
        orch_sink_drop(&sink);
    orch_train_result result;
    memset(&result, 0, sizeof result);
    if (rc == ORCH_OK)
        rc = orch_train(run->pipeline, &options, &sink, &result, &err);
    /* the run's records reach the coordinator before its DONE */
    orch_err flush_err;
    orch_err_clear(&flush_err);
    if (lead && orch_fwd_sink_flush(fwd, &flush_err) != ORCH_OK && rc == ORCH_OK)
        rc = orch_seterr(&err, flush_err.code, "%s", flush_err.msg);
    /* A rank of a data-parallel group that fails alone leaves the others
     * waiting in a collective it will never join, and Open MPI 4.1 cannot
     * release them: end the job, as a dead rank would (before freeing the
     * group's communicator, which is collective too). Its records went to
     * the coordinator above; the same command again resumes the run, and a
     * run that ends the job twice is quarantined like one that kills its
     * worker. */
    if (comm != NULL && rc != ORCH_OK) {
        fprintf(stderr, "orch: %s: a rank of its data-parallel group failed (%s); ending the job\n",
                run->name, err.msg);
        orch_mpi_abort(1);
    }
    if (comm != NULL)
        orch_comm_free(comm);
    done->started = result.run_id != 0;
    done->status = rc == ORCH_OK ? (int32_t)result.status : ORCH_RUN_FAILED;
    done->steps = result.last_step + 1;
    done->steps_now = result.steps_done;
    done->first_loss = result.first_loss;
    done->final_loss = result.final_loss;
    if (rc != ORCH_OK)
        snprintf(done->error, sizeof done->error, "%s", err.msg);
    else if (result.status == ORCH_RUN_DIVERGED)
        snprintf(done->error, sizeof done->error, "diverged at %s", result.diverged_at);
    fwd->kill_run = 0;
}

static void work_features(const orch_sweep *sw, const orch_dag_node *node, const orch_msg_assign *a,
                          orch_msg_done *done)
{
    orch_err err;
    orch_err_clear(&err);
    int64_t images = 0, computed = 0;
    int rc = orch_detach_cache_fill(sw->runs[node->run].pipeline, a->feature_dir,
                                    orch_sweep_stop_requested, &images, &computed, &err);
    done->status = rc == ORCH_OK                 ? ORCH_RUN_FINISHED
                   : orch_sweep_stop_requested() ? ORCH_RUN_INTERRUPTED
                                                 : ORCH_RUN_FAILED;
    done->steps = images;
    done->computed = computed;
    if (rc != ORCH_OK)
        snprintf(done->error, sizeof done->error, "%s", err.msg);
}

void orch_sweep_work(const orch_sweep *sw, const orch_dag *dag, const orch_msg_assign *a,
                     orch_fwd_sink *fwd, orch_msg_done *done)
{
    memset(done, 0, sizeof *done);
    done->node = a->node;
    double t0 = now_s();
    if (a->node < 0 || a->node >= dag->n_nodes) {
        done->status = ORCH_RUN_FAILED;
        snprintf(done->error, sizeof done->error,
                 "sweep worker: node %d is not in this rank's DAG of %d nodes", (int)a->node,
                 dag->n_nodes);
    } else if (orch_sweep_stop_requested()) {
        /* a stop came while this rank waited: start nothing more */
        done->status = ORCH_RUN_INTERRUPTED;
        snprintf(done->error, sizeof done->error, "not started: the sweep was interrupted");
    } else if (dag->nodes[a->node].kind == ORCH_DAG_FEATURES) {
        work_features(sw, &dag->nodes[a->node], a, done);
    } else {
        work_run(sw, &dag->nodes[a->node], a, fwd, done);
    }
    done->seconds = now_s() - t0;
}

int orch_sweep_worker_loop(const orch_sweep *sw, const orch_dag *dag, const orch_sweep_port *port,
                           orch_err *err)
{
    orch_fwd_sink fwd;
    orch_fwd_sink_init(&fwd, port->send, port->ctx);
    orch_msg_buf out = {0};
    int rc = ORCH_OK;
    for (;;) {
        void *data = NULL;
        size_t len = 0;
        rc = port->recv(port->ctx, &data, &len, err);
        if (rc != ORCH_OK)
            break;
        int kind = orch_msg_kind_of(data, len);
        if (kind == ORCH_MSG_EXIT) {
            free(data);
            break;
        }
        orch_msg_assign a;
        rc = kind == ORCH_MSG_ASSIGN
                 ? orch_msg_decode_assign(data, len, &a, err)
                 : orch_seterr(err, ORCH_EINVAL, "sweep worker: unexpected message kind %d", kind);
        free(data);
        if (rc != ORCH_OK)
            break;
        orch_msg_done done;
        orch_sweep_work(sw, dag, &a, &fwd, &done);
        rc = orch_msg_encode_done(&out, &done, err);
        if (rc == ORCH_OK)
            rc = port->send(port->ctx, out.data, out.len, err);
        if (rc != ORCH_OK)
            break;
    }
    orch_fwd_sink_free(&fwd);
    orch_msg_buf_free(&out);
    return rc;
}
