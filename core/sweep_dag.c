/* sweep_dag.c - a sweep's DAG of runs and its scheduling state; see
 * sweep_dag.h.
 *
 * The DAG is built in a "proto" index space first (runs 0..n_runs-1 as
 * declared, then one feature node per group of detach runs), then laid
 * out in the order of a depth-first walk that visits each node's
 * dependencies before it, runs in declaration order: a topological order
 * that keeps the declaration's order where the edges allow, with each
 * feature node just before the first run it feeds. The same walk finds
 * cycles (a node met again while its own dependencies are being visited).
 *
 * Every group of detach runs with the same orch_tower_forward_key gets a
 * feature node, a group of one included: the node fills the cache before
 * the run starts, so the run's own epochs all hit, and the rule stays one
 * rule.
 *
 * Cost, the one formula (it only orders the hand-out: orch_sched_next
 * takes the node with the costliest chain ahead of it first):
 *   a run:          params x patches of a batch (batch_size x the largest
 *                   image) x steps,
 *   a feature node: params x patches of every image of the data set (one
 *                   forward of the data set),
 * with params and patches from orch_plan_sizes_compute (core/plan_sizes.h),
 * i.e. the multiply-adds of the forwards, a token through every weight
 * once. A run whose sizes cannot be computed (its data cannot be opened)
 * costs 0: it is handed out last and fails when it runs, recorded so. The
 * sizes are computed once per distinct set of the facts they depend on
 * (sizes_key).
 */
#include "core/sweep_dag.h"

#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "core/plan_sizes.h"
#include "core/tower_key.h"

enum { WHITE = 0, GREY, BLACK };

typedef struct builder {
    const orch_sweep *s;
    int n_runs, n_groups;                 /* proto nodes: runs, then groups */
    uint64_t *group_key;                  /* n_runs of room; the first n_groups used */
    int *group_first;                     /* a group's first run */
    int *run_group;                       /* per run: its group, or -1 (not detach) */
    int (*deps)[ORCH_SWEEP_MAX_DEPS + 1]; /* per proto node, proto indices */
    int *n_deps;
    int *mark;  /* WHITE, GREY (its dependencies are being visited), BLACK */
    int *stack; /* the GREY nodes, outermost first */
    int depth;
    int *order; /* proto indices in the DAG's order */
    int n_order;
} builder;

static void builder_free(builder *b)
{
    free(b->group_key);
    free(b->group_first);
    free(b->run_group);
    free(b->deps);
    free(b->n_deps);
    free(b->mark);
    free(b->stack);
    free(b->order);
}

/* "FILE:LINE: " of run r, or "" when the sweep has no file (built by hand). */
static void where(const orch_sweep *s, int r, char *out, size_t size)
{
    if (s->file[0] != '\0' && r >= 0 && s->runs[r].line > 0)
        snprintf(out, size, "%s:%d: ", s->file, s->runs[r].line);
    else
        out[0] = '\0';
}

static int find_run(const orch_sweep *s, const char *name)
{
    for (int r = 0; r < s->n_runs; r++)
        if (strcmp(s->runs[r].name, name) == 0)
            return r;
    return -1;
}

/* Groups the detach runs by orch_tower_forward_key. */
static void group_detach_runs(builder *b)
{
    for (int r = 0; r < b->n_runs; r++) {
        b->run_group[r] = -1;
        const orch_pipeline *p = b->s->runs[r].pipeline;
        if (p->strategy.kind != ORCH_STRATEGY_DETACH)
            continue;
        uint64_t key = orch_tower_forward_key(p);
        int g = 0;
        while (g < b->n_groups && b->group_key[g] != key)
            g++;
        if (g == b->n_groups) {
            b->group_key[g] = key;
            b->group_first[g] = r;
            b->n_groups++;
        }
        b->run_group[r] = g;
    }
}

/* The proto edges: a detach run waits for its group's feature node, every
 * run for the runs it names (each once). */
static int proto_edges(builder *b, orch_err *err)
{
    const orch_sweep *s = b->s;
    for (int r = 0; r < b->n_runs; r++) {
        const orch_sweep_run *run = &s->runs[r];
        ORCH_ASSERT(run->n_deps >= 0 && run->n_deps <= ORCH_SWEEP_MAX_DEPS);
        int n = 0;
        if (b->run_group[r] >= 0)
            b->deps[r][n++] = b->n_runs + b->run_group[r];
        for (int d = 0; d < run->n_deps; d++) {
            int dep = find_run(s, run->deps[d]);
            if (dep < 0) {
                char at[ORCH_PATH_MAX + 32];
                where(s, r, at, sizeof at);
                return orch_seterr(err, ORCH_EINVAL,
                                   "%ssweep %s: run '%s' waits for '%s', which is not a run of "
                                   "the sweep",
                                   at, s->name, run->name, run->deps[d]);
            }
            int seen = 0;
            for (int k = 0; k < n; k++)
                seen |= b->deps[r][k] == dep;
            if (!seen)
                b->deps[r][n++] = dep;
        }
        b->n_deps[r] = n;
    }
    for (int g = 0; g < b->n_groups; g++)
        b->n_deps[b->n_runs + g] = 0; /* the tower's forward needs no run's output */
    return ORCH_OK;
}

static const char *proto_name(const builder *b, int v, char *buf, size_t size)
{
    if (v < b->n_runs)
        return b->s->runs[v].name;
    snprintf(buf, size, "features/%016llx", (unsigned long long)b->group_key[v - b->n_runs]);
    return buf;
}

/* The cycle closed by meeting GREY node v again: the names from v along the
 * stack back to v. Only runs can be on a cycle (feature nodes wait for
 * nothing). */
static int cycle_error(const builder *b, int v, orch_err *err)
{
    int from = b->depth - 1;
    while (from > 0 && b->stack[from] != v)
        from--;
    char at[ORCH_PATH_MAX + 32];
    where(b->s, v, at, sizeof at);
    if (from == b->depth - 1)
        return orch_seterr(err, ORCH_EINVAL, "%ssweep %s: run '%s' waits for itself", at,
                           b->s->name, b->s->runs[v].name);
    char path[ORCH_ERR_MSG_MAX];
    size_t len = 0;
    path[0] = '\0';
    for (int k = from; k <= b->depth; k++) {
        int node = k < b->depth ? b->stack[k] : v;
        char buf[32];
        int wrote = snprintf(path + len, sizeof path - len, "%s%s", k > from ? " -> " : "",
                             proto_name(b, node, buf, sizeof buf));
        if (wrote < 0 || (size_t)wrote >= sizeof path - len)
            break; /* too long for one line: the message ends where it fits */
        len += (size_t)wrote;
    }
    return orch_seterr(err, ORCH_EINVAL, "%ssweep %s: the runs %s wait for each other", at,
                       b->s->name, path);
}

/* Visits v's dependencies, then appends v to the order. */
static int visit(builder *b, int v, orch_err *err)
{
    if (b->mark[v] == BLACK)
        return ORCH_OK;
    if (b->mark[v] == GREY)
        return cycle_error(b, v, err);
    b->mark[v] = GREY;
    b->stack[b->depth++] = v;
    for (int d = 0; d < b->n_deps[v]; d++) {
        int rc = visit(b, b->deps[v][d], err);
        if (rc != ORCH_OK)
            return rc;
    }
    b->depth--;
    b->mark[v] = BLACK;
    b->order[b->n_order++] = v;
    return ORCH_OK;
}

/* What a run's cost needs of its sizes; computed once per distinct
 * pipeline of the facts sizes depend on (sizes_key). */
typedef struct run_sizes {
    uint64_t key;
    int ok; /* 0: the sizes could not be computed (cost 0) */
    double params, batch_patches, data_patches;
} run_sizes;

typedef struct sizes_memo {
    run_sizes *known; /* n_known of them; malloc'd, owned */
    int n_known;
    orch_pipeline *scratch; /* one pipeline to normalize in; malloc'd, owned */
} sizes_memo;

/* A 64-bit xxh3 of p without what its sizes do not depend on: the
 * optimizer, the steps and their schedule, the seed (it draws synthetic
 * pixels, never their sizes), precision, checks, names and tags,
 * strategy.init and LoRA's alpha and dropout. Rendering a synthetic data
 * set or reading a .npy one to count its patches takes long at the 7B
 * tower's image sizes: a grid of learning rates x seeds counts them once. */
static uint64_t sizes_key(const orch_pipeline *p, orch_pipeline *scratch)
{
    memcpy(scratch, p, sizeof *scratch);
    memset(scratch->path, 0, sizeof scratch->path);
    memset(scratch->name, 0, sizeof scratch->name);
    memset(scratch->tags, 0, sizeof scratch->tags);
    scratch->n_tags = 0;
    memset(&scratch->optimizer, 0, sizeof scratch->optimizer);
    scratch->schedule.steps = scratch->schedule.warmup_steps = 0;
    scratch->schedule.checkpoint_every = 0;
    memset(&scratch->loss_scale, 0, sizeof scratch->loss_scale);
    memset(&scratch->checks, 0, sizeof scratch->checks);
    scratch->seed = 0;
    scratch->precision = ORCH_FP32;
    memset(scratch->strategy.init, 0, sizeof scratch->strategy.init);
    scratch->strategy.alpha = scratch->strategy.dropout = 0;
    return XXH3_64bits(scratch, sizeof *scratch);
}

/* The costs of run r (the formula at the top of this file): *train as a
 * run, *forward as the feature node of its group. ORCH_ENOMEM is the only
 * error. */
static int run_costs(const orch_sweep *s, int r, sizes_memo *memo, double *train, double *forward,
                     orch_err *err)
{
    const orch_pipeline *p = s->runs[r].pipeline;
    uint64_t key = sizes_key(p, memo->scratch);
    const run_sizes *known = NULL;
    for (int i = 0; i < memo->n_known && known == NULL; i++)
        if (memo->known[i].key == key)
            known = &memo->known[i];
    if (known == NULL) {
        orch_plan_sizes sizes;
        orch_err size_err;
        int rc = orch_plan_sizes_compute(p, &sizes, &size_err);
        if (rc == ORCH_ENOMEM)
            return orch_seterr(err, rc, "%s", size_err.msg);
        run_sizes *add = &memo->known[memo->n_known++];
        add->key = key;
        add->ok = rc == ORCH_OK;
        add->params = (double)sizes.params;
        add->batch_patches = (double)sizes.batch_patches;
        add->data_patches = (double)sizes.data_patches;
        known = add;
    }
    *train = *forward = 0;
    if (known->ok) {
        *train = known->params * known->batch_patches * (double)p->schedule.steps;
        *forward = known->params * known->data_patches;
    }
    return ORCH_OK;
}

/* Lays the proto nodes out in b->order as dag's nodes. */
static int lay_out(const builder *b, orch_dag *dag, orch_err *err)
{
    int n = b->n_order;
    int *at = malloc(sizeof *at * (size_t)n); /* proto index -> position */
    dag->nodes = calloc((size_t)n, sizeof *dag->nodes);
    if (at == NULL || dag->nodes == NULL) {
        free(at);
        return orch_seterr(err, ORCH_ENOMEM, "sweep %s: out of memory", b->s->name);
    }
    dag->n_nodes = n;
    for (int k = 0; k < n; k++)
        at[b->order[k]] = k;
    /* at most one distinct size per run */
    sizes_memo memo = {malloc(sizeof *memo.known * (size_t)(b->s->n_runs + 1)), 0,
                       malloc(sizeof *memo.scratch)};
    int rc = ORCH_OK;
    if (memo.known == NULL || memo.scratch == NULL)
        rc = orch_seterr(err, ORCH_ENOMEM, "sweep %s: out of memory", b->s->name);
    for (int k = 0; k < n && rc == ORCH_OK; k++) {
        int v = b->order[k];
        orch_dag_node *node = &dag->nodes[k];
        node->kind = v < b->n_runs ? ORCH_DAG_RUN : ORCH_DAG_FEATURES;
        node->run = v < b->n_runs ? v : b->group_first[v - b->n_runs];
        char buf[32];
        snprintf(node->name, sizeof node->name, "%s", proto_name(b, v, buf, sizeof buf));
        node->n_deps = b->n_deps[v];
        for (int d = 0; d < node->n_deps; d++)
            node->deps[d] = at[b->deps[v][d]];
        double train, forward;
        rc = run_costs(b->s, node->run, &memo, &train, &forward, err);
        node->cost = node->kind == ORCH_DAG_RUN ? train : forward;
    }
    free(memo.known);
    free(memo.scratch);
    free(at);
    return rc;
}

int orch_dag_build(const orch_sweep *s, orch_dag *out, orch_err *err)
{
    memset(out, 0, sizeof *out);
    builder b;
    memset(&b, 0, sizeof b);
    b.s = s;
    b.n_runs = s->n_runs;
    size_t runs = (size_t)s->n_runs + 1, proto = 2 * runs;
    b.group_key = malloc(sizeof *b.group_key * runs);
    b.group_first = malloc(sizeof *b.group_first * runs);
    b.run_group = malloc(sizeof *b.run_group * runs);
    b.deps = malloc(sizeof *b.deps * proto);
    b.n_deps = calloc(proto, sizeof *b.n_deps);
    b.mark = calloc(proto, sizeof *b.mark);
    b.stack = malloc(sizeof *b.stack * proto);
    b.order = malloc(sizeof *b.order * proto);
    int rc = ORCH_OK;
    if (b.group_key == NULL || b.group_first == NULL || b.run_group == NULL || b.deps == NULL ||
        b.n_deps == NULL || b.mark == NULL || b.stack == NULL || b.order == NULL)
        rc = orch_seterr(err, ORCH_ENOMEM, "sweep %s: out of memory", s->name);
    if (rc == ORCH_OK) {
        group_detach_runs(&b);
        rc = proto_edges(&b, err);
    }
    for (int r = 0; r < b.n_runs && rc == ORCH_OK; r++)
        rc = visit(&b, r, err);
    if (rc == ORCH_OK)
        rc = lay_out(&b, out, err);
    builder_free(&b);
    if (rc != ORCH_OK)
        orch_dag_free(out);
    return rc;
}

void orch_dag_free(orch_dag *dag)
{
    if (dag == NULL)
        return;
    free(dag->nodes);
    memset(dag, 0, sizeof *dag);
}

/* ------------------------------------------------------------------ dot */

/* text inside a DOT double-quoted string */
static void put_dot_text(FILE *out, const char *text)
{
    for (const char *c = text; *c != '\0'; c++) {
        if (*c == '"' || *c == '\\')
            fputc('\\', out);
        fputc(*c, out);
    }
}

/* How node waits for its dependency dep: "features", "output_of" (the run
 * starts from dep's checkpoint) or "after". */
static const char *edge_label(const orch_dag *dag, const orch_sweep *s, int node, int dep)
{
    if (dag->nodes[dep].kind == ORCH_DAG_FEATURES)
        return "features";
    const char *init = s->runs[dag->nodes[node].run].pipeline->strategy.init;
    size_t prefix = strlen(ORCH_OUTPUT_OF_PREFIX);
    if (strncmp(init, ORCH_OUTPUT_OF_PREFIX, prefix) == 0 &&
        strcmp(init + prefix, dag->nodes[dep].name) == 0)
        return "output_of";
    return "after";
}

int orch_dag_print_dot(const orch_dag *dag, const orch_sweep *s, FILE *out, orch_err *err)
{
    fputs("digraph \"sweep ", out);
    put_dot_text(out, s->name);
    fputs("\" {\n  rankdir=LR;\n  node [fontname=\"Helvetica\"];\n"
          "  edge [fontname=\"Helvetica\", fontsize=10];\n",
          out);
    for (int k = 0; k < dag->n_nodes; k++) {
        const orch_dag_node *node = &dag->nodes[k];
        fprintf(out, "  n%d [", k);
        if (node->kind == ORCH_DAG_RUN) {
            const orch_sweep_run *run = &s->runs[node->run];
            fputs("shape=box, label=\"", out);
            put_dot_text(out, run->point);
            if (run->overrides[0] != '\0') {
                fputs("\\n", out);
                put_dot_text(out, run->overrides);
            }
        } else {
            int fed = 0;
            for (int j = k + 1; j < dag->n_nodes; j++)
                for (int d = 0; d < dag->nodes[j].n_deps; d++)
                    fed += dag->nodes[j].deps[d] == k;
            fputs("shape=ellipse, style=filled, fillcolor=lightgrey, label=\"", out);
            put_dot_text(out, node->name);
            fprintf(out, "\\ntower forward for %d detach run%s", fed, fed == 1 ? "" : "s");
        }
        fputs("\"];\n", out);
    }
    for (int k = 0; k < dag->n_nodes; k++)
        for (int d = 0; d < dag->nodes[k].n_deps; d++) {
            int dep = dag->nodes[k].deps[d];
            const char *label = edge_label(dag, s, k, dep);
            fprintf(out, "  n%d -> n%d [label=\"%s\"%s];\n", dep, k, label,
                    strcmp(label, "features") == 0 ? ", style=dashed" : "");
        }
    fputs("}\n", out);
    if (ferror(out))
        return orch_seterr(err, ORCH_EIO, "sweep %s: cannot write the DAG", s->name);
    return ORCH_OK;
}

/* ------------------------------------------------------------ scheduler */

int orch_sched_init(orch_sched *sc, const orch_dag *dag, orch_err *err)
{
    memset(sc, 0, sizeof *sc);
    size_t n = (size_t)dag->n_nodes + 1;
    sc->dag = dag;
    sc->state = calloc(n, sizeof *sc->state);
    sc->reason = calloc(n, sizeof *sc->reason);
    sc->priority = calloc(n, sizeof *sc->priority);
    sc->needed = calloc(n, sizeof *sc->needed);
    if (sc->state == NULL || sc->reason == NULL || sc->priority == NULL || sc->needed == NULL) {
        orch_sched_free(sc);
        return orch_seterr(err, ORCH_ENOMEM, "scheduler: out of memory");
    }
    for (int k = 0; k < dag->n_nodes; k++)
        sc->state[k] = dag->nodes[k].n_deps == 0 ? ORCH_SCHED_READY : ORCH_SCHED_WAITING;
    /* dependents come after their dependencies: walking backwards, a node's
     * priority holds the largest of its dependents' when it is reached */
    for (int k = dag->n_nodes - 1; k >= 0; k--) {
        const orch_dag_node *node = &dag->nodes[k];
        sc->priority[k] += node->cost;
        for (int d = 0; d < node->n_deps; d++)
            if (sc->priority[node->deps[d]] < sc->priority[k])
                sc->priority[node->deps[d]] = sc->priority[k];
    }
    return ORCH_OK;
}

void orch_sched_free(orch_sched *sc)
{
    if (sc == NULL)
        return;
    free(sc->state);
    free(sc->reason);
    free(sc->priority);
    free(sc->needed);
    memset(sc, 0, sizeof *sc);
}

static void set_reason(orch_sched *sc, int node, const char *reason)
{
    snprintf(sc->reason[node], sizeof sc->reason[node], "%s", reason != NULL ? reason : "");
}

void orch_sched_set(orch_sched *sc, int node, orch_sched_state state, const char *reason)
{
    ORCH_ASSERT(node >= 0 && node < sc->dag->n_nodes);
    sc->state[node] = state;
    set_reason(sc, node, state == ORCH_SCHED_FAILED || state == ORCH_SCHED_SKIPPED ? reason : "");
}

static int is_ended(orch_sched_state st)
{
    return st == ORCH_SCHED_DONE || st == ORCH_SCHED_FAILED || st == ORCH_SCHED_SKIPPED;
}

/* The FAILED node at the root of node's skipping: its first FAILED or
 * SKIPPED dependency, followed down to a FAILED one. */
static int failed_root(const orch_sched *sc, int node)
{
    for (;;) {
        const orch_dag_node *n = &sc->dag->nodes[node];
        int next = -1;
        for (int d = 0; d < n->n_deps && next < 0; d++) {
            orch_sched_state st = sc->state[n->deps[d]];
            if (st == ORCH_SCHED_FAILED || st == ORCH_SCHED_SKIPPED)
                next = n->deps[d];
        }
        if (next < 0 || sc->state[next] == ORCH_SCHED_FAILED)
            return next;
        node = next;
    }
}

/* Why a node is skipped: its dependency dep failed, or was skipped because
 * root failed (root NULL: dep itself failed). A reason too long for size
 * ends with "...". */
static void skip_reason(char *out, size_t size, const char *dep, const char *root)
{
    int len = root == NULL
                  ? snprintf(out, size, "its dependency %s failed", dep)
                  : snprintf(out, size, "its dependency %s was skipped: %s failed", dep, root);
    if (len >= (int)size && size > 4)
        memcpy(out + size - 4, "...", 4);
}

int orch_sched_settle(orch_sched *sc)
{
    const orch_dag *dag = sc->dag;
    int changed = 0;
    /* dependencies come first in the DAG's order: one pass sees every
     * dependency's final state before its dependents */
    for (int k = 0; k < dag->n_nodes; k++) {
        orch_sched_state st = sc->state[k];
        if (st != ORCH_SCHED_WAITING && st != ORCH_SCHED_READY)
            continue;
        const orch_dag_node *node = &dag->nodes[k];
        int all_done = 1, blocked = -1;
        for (int d = 0; d < node->n_deps; d++) {
            orch_sched_state dep = sc->state[node->deps[d]];
            all_done &= dep == ORCH_SCHED_DONE;
            if (blocked < 0 && (dep == ORCH_SCHED_FAILED || dep == ORCH_SCHED_SKIPPED))
                blocked = node->deps[d];
        }
        orch_sched_state next = all_done ? ORCH_SCHED_READY : ORCH_SCHED_WAITING;
        if (blocked >= 0) {
            next = ORCH_SCHED_SKIPPED;
            int root = sc->state[blocked] == ORCH_SCHED_FAILED ? -1 : failed_root(sc, blocked);
            skip_reason(sc->reason[k], sizeof sc->reason[k], dag->nodes[blocked].name,
                        root >= 0 ? dag->nodes[root].name : NULL);
        }
        sc->state[k] = next;
        changed += next != st;
    }
    /* feature nodes no remaining run needs (a rerun whose detach runs all
     * ended before): skipped, never handed out */
    memset(sc->needed, 0, (size_t)dag->n_nodes);
    for (int k = 0; k < dag->n_nodes; k++)
        for (int d = 0; d < dag->nodes[k].n_deps && !is_ended(sc->state[k]); d++)
            sc->needed[dag->nodes[k].deps[d]] = 1;
    for (int k = 0; k < dag->n_nodes; k++) {
        orch_sched_state st = sc->state[k];
        if (dag->nodes[k].kind != ORCH_DAG_FEATURES || sc->needed[k] ||
            (st != ORCH_SCHED_WAITING && st != ORCH_SCHED_READY))
            continue;
        sc->state[k] = ORCH_SCHED_SKIPPED;
        set_reason(sc, k, "every run it feeds has ended");
        changed++;
    }
    return changed;
}

int orch_sched_next(orch_sched *sc)
{
    int best = -1;
    for (int k = 0; k < sc->dag->n_nodes; k++)
        if (sc->state[k] == ORCH_SCHED_READY && (best < 0 || sc->priority[k] > sc->priority[best]))
            best = k;
    if (best >= 0)
        sc->state[best] = ORCH_SCHED_RUNNING;
    return best;
}

void orch_sched_end(orch_sched *sc, int node, int ok, const char *reason)
{
    ORCH_ASSERT(node >= 0 && node < sc->dag->n_nodes && sc->state[node] == ORCH_SCHED_RUNNING);
    sc->state[node] = ok ? ORCH_SCHED_DONE : ORCH_SCHED_FAILED;
    set_reason(sc, node, ok ? "" : reason);
    orch_sched_settle(sc);
}

int orch_sched_finished(const orch_sched *sc)
{
    for (int k = 0; k < sc->dag->n_nodes; k++)
        if (!is_ended(sc->state[k]))
            return 0;
    return 1;
}
