/* cmd_sweep.c - `orch sweep FILE.lua`: run a sweep, in one process or as
 * rank 0 (coordinator and worker) or a worker rank under mpirun/srun. */
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/cli.h"
#include "core/mailbox.h"
#include "core/mpi_comm.h"
#include "core/sweep.h"
#include "core/run_sources.h"
#include "core/sweep_coord.h"
#include "core/sweep_dag.h"
#include "core/sweep_msg.h"
#include "core/sweep_worker.h"
#include "lua/dsl.h"

static void on_stop_signal(int sig)
{
    orch_sweep_request_stop(sig);
}

/* SIGINT, SIGTERM and SIGUSR1 (Ctrl-C; srun at a time limit, or
 * `--signal=USR1@120` before it; mpirun passes SIGUSR1 on to every rank,
 * while a SIGTERM to mpirun makes Open MPI kill the ranks): the running
 * runs end after their step, `interrupted`; nothing new starts; the sweep
 * is closed `interrupted`. */
static void install_stop_handlers(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGUSR1, &sa, NULL);
}

/* ------------------------------------------------------------- ports */

/* A remote rank: MPI to and from rank 0. */
static int mpi_send0(void *ctx, const void *data, size_t len, orch_err *err)
{
    (void)ctx;
    return orch_mpi_send(0, data, len, err);
}

/* Polls MPI, sleeping 20 us doubling to 500 us between polls: an idle rank
 * must not take a core from the ranks that compute (a blocking MPI_Recv
 * spins), and one that just ended a node hears of its next one soon. */
static int mpi_recv0(void *ctx, void **data, size_t *len, orch_err *err)
{
    (void)ctx;
    long sleep_us = 20;
    for (;;) {
        int source = 0;
        int got = orch_mpi_try_recv(data, len, &source, err);
        if (got < 0)
            return err->code;
        if (got > 0)
            return ORCH_OK;
        struct timespec ts = {0, sleep_us * 1000L};
        nanosleep(&ts, NULL);
        sleep_us = sleep_us < 250 ? sleep_us * 2 : 500;
    }
}

/* Rank 0's local worker: its two mailboxes. */
typedef struct local_link {
    orch_mailbox to_local, inbox;
    const orch_sweep *sw;
    const orch_dag *dag;
    int rc;
    orch_err err;
} local_link;

static int local_send(void *ctx, const void *data, size_t len, orch_err *err)
{
    local_link *l = ctx;
    return orch_mailbox_put(&l->inbox, data, len, err);
}

static int local_recv(void *ctx, void **data, size_t *len, orch_err *err)
{
    local_link *l = ctx;
    (void)err;
    orch_mail *mail = orch_mailbox_get(&l->to_local, -1);
    /* the message's bytes, moved to a buffer of their own for the caller */
    *data = malloc(mail->len + 1);
    if (*data == NULL) {
        free(mail);
        return orch_seterr(err, ORCH_ENOMEM, "sweep: out of memory");
    }
    memcpy(*data, mail->data, mail->len);
    *len = mail->len;
    free(mail);
    return ORCH_OK;
}

static void *local_worker(void *arg)
{
    local_link *l = arg;
    orch_sweep_port port = {local_send, local_recv, l};
    l->rc = orch_sweep_worker_loop(l->sw, l->dag, &port, &l->err);
    return NULL;
}

/* ------------------------------------------------------------- ranks */

/* A worker rank: READY (with the expansion's outcome), then work until EXIT. */
static int run_worker_rank(const orch_sweep *sw, const orch_dag *dag, int load_rc,
                           const orch_err *load_err, const char *host, orch_err *err)
{
    orch_msg_ready ready;
    memset(&ready, 0, sizeof ready);
    ready.status = load_rc;
    snprintf(ready.hash, sizeof ready.hash, "%s", load_rc == ORCH_OK ? sw->hash : "");
    snprintf(ready.host, sizeof ready.host, "%s", host);
    snprintf(ready.error, sizeof ready.error, "%s", load_rc == ORCH_OK ? "" : load_err->msg);
    orch_msg_buf buf = {0};
    int rc = orch_msg_encode_ready(&buf, &ready, err);
    if (rc == ORCH_OK)
        rc = orch_mpi_send(0, buf.data, buf.len, err);
    orch_msg_buf_free(&buf);
    orch_sweep_port port = {mpi_send0, mpi_recv0, NULL};
    if (rc == ORCH_OK)
        rc = orch_sweep_worker_loop(sw, dag, &port, err);
    return rc;
}

/* Rank 0 (or the only process): the coordinator on this thread, a worker
 * on another. */
static int run_coordinator(const orch_sweep *sw, const orch_dag *dag, orch_sweep_coord_options *opt,
                           orch_err *err)
{
    local_link link;
    memset(&link, 0, sizeof link);
    link.sw = sw;
    link.dag = dag;
    int rc = orch_mailbox_init(&link.to_local, err);
    if (rc != ORCH_OK)
        return rc;
    rc = orch_mailbox_init(&link.inbox, err);
    if (rc != ORCH_OK) {
        orch_mailbox_free(&link.to_local);
        return rc;
    }
    opt->to_local = &link.to_local;
    opt->inbox = &link.inbox;
    pthread_t thread;
    if (pthread_create(&thread, NULL, local_worker, &link) != 0) {
        opt->to_local = NULL;
        orch_sweep_send_exit(opt);
        orch_mailbox_free(&link.to_local);
        orch_mailbox_free(&link.inbox);
        return orch_seterr(err, ORCH_ERUNTIME, "sweep: cannot start the local worker thread");
    }
    orch_sweep_counts counts;
    rc = orch_sweep_coordinate(sw, dag, opt, &counts, err); /* sends EXIT to every rank */
    pthread_join(thread, NULL);
    if (rc == ORCH_OK && link.rc != ORCH_OK)
        rc = orch_seterr(err, link.rc, "%s", link.err.msg);
    orch_mailbox_free(&link.to_local);
    orch_mailbox_free(&link.inbox);
    return rc;
}

int orch_cmd_sweep(int argc, char **argv, orch_cli_globals *globals, orch_err *err)
{
    enum { OPT_SET = 1, OPT_QUIET };
    static const orch_opt opts[] = {{"set", 1, OPT_SET}, {"quiet", 0, OPT_QUIET}, {NULL, 0, 0}};
    orch_opt_state st = {argc, argv, 1, NULL, "sweep"};
    const char *sets[ORCH_MAX_SETS];
    int n_sets = 0, quiet = 0;
    const char *path = NULL;
    int id, more;
    while ((more = orch_opt_each(&st, opts, globals, &id, err)) > 0) {
        switch (id) {
        case OPT_SET:
            if (orch_opt_add_set(&st, sets, &n_sets, err) != ORCH_OK)
                return err->code;
            break;
        case OPT_QUIET:
            quiet = 1;
            break;
        case ORCH_OPT_POSITIONAL:
            if (orch_opt_pipeline_path(&st, &path, err) != ORCH_OK)
                return err->code;
            break;
        }
    }
    if (more < 0)
        return err->code;
    if (path == NULL)
        return orch_seterr(err, ORCH_EINVAL,
                           "sweep: missing sweep file (usage: orch sweep FILE.lua)");
    /* MPI only under a launcher, decided before anything starts threads */
    int mpi = orch_mpi_launched(), rank = 0, size = 1;
    if (mpi)
        orch_cli_threads_per_rank(globals);
    int rc = orch_cli_apply_threads(globals, err);
    if (rc != ORCH_OK)
        return rc;
    if (mpi && (rc = orch_mpi_init(&rank, &size, err)) != ORCH_OK)
        return rc;
    char host[256] = "";
    gethostname(host, sizeof host - 1);
    install_stop_handlers();

    /* every rank expands the sweep itself: deterministic, and checked by
     * its hash before anything is recorded */
    orch_sweep sw;
    orch_dag dag;
    memset(&sw, 0, sizeof sw);
    memset(&dag, 0, sizeof dag);
    orch_err load_err;
    orch_err_clear(&load_err);
    /* rank 0 records the files as read now with every run it queues */
    orch_dsl_files files = {0};
    orch_run_sources sources = {0};
    int load_rc =
        orch_dsl_load_sweep_recorded(path, sets, n_sets, &sw, rank == 0 ? &files : NULL, &load_err);
    if (load_rc == ORCH_OK)
        load_rc = orch_run_sources_make(&files, &sources, &load_err);
    if (load_rc == ORCH_OK)
        load_rc = orch_dag_build(&sw, &dag, &load_err);

    if (rank > 0) {
        rc = run_worker_rank(&sw, &dag, load_rc, &load_err, host, err);
    } else {
        char(*hosts)[256] = calloc((size_t)size, sizeof *hosts);
        orch_sweep_coord_options opt = {
            .db = orch_cli_db_path(globals),
            .size = size,
            .mpi = mpi,
            .host = host,
            .hosts = hosts,
            .progress = quiet ? NULL : stderr,
            .out = stdout,
            .sources = sources.files,
            .n_sources = sources.n,
        };
        rc = hosts == NULL ? orch_seterr(err, ORCH_ENOMEM, "sweep: out of memory") : load_rc;
        if (rc != ORCH_OK && rc == load_rc)
            *err = load_err;
        if (hosts != NULL)
            snprintf(hosts[0], sizeof hosts[0], "%s", host);
        if (hosts != NULL && size > 1) {
            orch_err ready_err;
            orch_err_clear(&ready_err);
            int ready_rc =
                orch_sweep_gather_ready(&opt, load_rc == ORCH_OK ? sw.hash : "", &ready_err);
            if (rc == ORCH_OK && ready_rc != ORCH_OK) {
                rc = ready_rc;
                *err = ready_err;
            }
        }
        if (rc == ORCH_OK)
            rc = run_coordinator(&sw, &dag, &opt, err);
        else if (hosts != NULL)
            orch_sweep_send_exit(&opt); /* to_local is NULL: the remote ranks only */
        free(hosts);
    }
    orch_dag_free(&dag);
    orch_sweep_free(&sw);
    orch_run_sources_free(&sources);
    orch_dsl_files_free(&files);
    if (mpi)
        orch_mpi_finalize();
    /* a worker rank's failure to expand was reported by rank 0, once */
    if (rank > 0 && rc == ORCH_OK)
        return ORCH_OK;
    return rc;
}
