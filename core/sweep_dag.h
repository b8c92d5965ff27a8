/*
 * sweep_dag.h - a sweep's DAG of runs, and the order it is scheduled in.
 *
 * Nodes are the sweep's runs and the shared stages the runs need: one
 * ORCH_DAG_FEATURES node per group of detach runs with the same tower
 * weights, tower config, precision and data, which computes the frozen
 * tower's forward of every image into the feature cache once, before the
 * group fans out. Edges come from output_of (strategy.init) and `after`,
 * and from each detach run to its feature node. A cycle, or an edge to a
 * run that does not exist, is refused when the DAG is built, naming the
 * runs involved.
 *
 * orch_sched is the scheduling state over a DAG: which nodes are waiting,
 * ready, handed out, done, failed or skipped. The coordinator asks it for
 * the next ready node (the longest expected first), tells it how each one
 * ended, and it skips the dependents of a failed node (transitively), with
 * the reason. It knows nothing of ranks, MPI or the store.
 */
#ifndef ORCH_SWEEP_DAG_H
#define ORCH_SWEEP_DAG_H

#include <stdint.h>
#include <stdio.h>

#include "core/err.h"
#include "core/sweep.h"

typedef enum orch_dag_kind {
    ORCH_DAG_RUN = 0, /* train sweep->runs[run] */
    ORCH_DAG_FEATURES /* fill the feature cache for the detach runs that depend on it */
} orch_dag_kind;

typedef struct orch_dag_node {
    orch_dag_kind kind;
    int run;                  /* RUN: index into sweep->runs; FEATURES: the first run of its
                                 group, whose pipeline (tower, precision, data) it computes */
    char name[ORCH_NAME_MAX]; /* RUN: the run's full name; FEATURES: "features/<16 hex of the
                                 group key>" */
    int deps[ORCH_SWEEP_MAX_DEPS + 1]; /* node indices this node waits for */
    int n_deps;
    /* expected cost in multiply-adds (parameters x patches of a batch x
     * steps; a FEATURES node: parameters x patches of the data set;
     * core/sweep_dag.c), to hand out the longest first */
    double cost;
} orch_dag_node;

typedef struct orch_dag {
    orch_dag_node *nodes; /* malloc'd, owned; a topological order */
    int n_nodes;
} orch_dag;

/* Builds the DAG of s into *out (caller-owned; orch_dag_free). ORCH_EINVAL
 * with one line for a dependency on a run that does not exist ("sweep X:
 * run 'a' waits for 'b', which is not a run of the sweep") or a cycle
 * ("sweep X: the runs a -> b -> a wait for each other"); ORCH_ENOMEM. */
int orch_dag_build(const orch_sweep *s, orch_dag *out, orch_err *err);

void orch_dag_free(orch_dag *dag);

/* Graphviz of the DAG (`orch plan SWEEP.lua --dot`). */
int orch_dag_print_dot(const orch_dag *dag, const orch_sweep *s, FILE *out, orch_err *err);

typedef enum orch_sched_state {
    ORCH_SCHED_WAITING = 0, /* a dependency is not done yet */
    ORCH_SCHED_READY,
    ORCH_SCHED_RUNNING, /* handed out */
    ORCH_SCHED_DONE,    /* finished (a RUN's dependents may start) */
    ORCH_SCHED_FAILED,  /* failed or diverged: its dependents are skipped */
    ORCH_SCHED_SKIPPED  /* a dependency failed; not run */
} orch_sched_state;

typedef struct orch_sched {
    const orch_dag *dag;     /* borrowed */
    orch_sched_state *state; /* n_nodes; malloc'd, owned */
    char (*reason)[256];     /* SKIPPED and FAILED: why; malloc'd, owned */
    double *priority;        /* n_nodes: the node's cost plus the costliest chain of
                                dependents after it (what orch_sched_next orders by);
                                malloc'd, owned */
    char *needed;            /* n_nodes: scratch of orch_sched_settle; malloc'd, owned */
} orch_sched;

/* Every node starts WAITING or READY. */
int orch_sched_init(orch_sched *sc, const orch_dag *dag, orch_err *err);
void orch_sched_free(orch_sched *sc);

/* Sets a node's state from what the store already holds (a rerun):
 * DONE for a run finished earlier, FAILED for one failed or quarantined.
 * Call before the first orch_sched_next; then orch_sched_settle. */
void orch_sched_set(orch_sched *sc, int node, orch_sched_state state, const char *reason);

/* Propagates: nodes whose dependencies are all DONE become READY, the
 * dependents of FAILED or SKIPPED nodes become SKIPPED with a reason
 * naming the dependency ("its dependency strategies/detach-lr1e-3-s1
 * failed"; further down "its dependency strategies/b was skipped:
 * strategies/a failed"). A FEATURES node not yet handed out whose runs
 * have all ended (a rerun: they finished earlier) becomes SKIPPED, "every
 * run it feeds has ended": nothing is left to fill the cache for. Returns
 * how many nodes changed state. */
int orch_sched_settle(orch_sched *sc);

/* The READY node of largest priority (ties: the lower index), now RUNNING;
 * -1 when none is ready. The priority is the longest expected time from the
 * node's start to the end of the sweep: its cost plus the costliest chain
 * of its dependents, so a cheap feature stage that five detach runs wait
 * for goes before a long run nothing waits for; without dependents it is
 * the node's cost (the longest first). */
int orch_sched_next(orch_sched *sc);

/* A RUNNING node ended: DONE when ok, else FAILED with reason; then settles. */
void orch_sched_end(orch_sched *sc, int node, int ok, const char *reason);

/* 1 when no node is WAITING, READY or RUNNING. */
int orch_sched_finished(const orch_sched *sc);

#endif
