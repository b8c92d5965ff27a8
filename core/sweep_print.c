/* sweep_print.c - a sweep's plan as text or JSON; see sweep_print.h. */
#include "core/sweep_print.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#define HASH_SHOWN 12 /* hex digits of a config hash in the table */

/* The names node k waits for, ", "-separated, into out ("-" for none). */
static void waits_for(const orch_dag *dag, int k, char *out, size_t size)
{
    const orch_dag_node *node = &dag->nodes[k];
    size_t len = 0;
    out[0] = '\0';
    if (node->n_deps == 0)
        snprintf(out, size, "-");
    for (int d = 0; d < node->n_deps && len < size; d++) {
        int wrote = snprintf(out + len, size - len, "%s%s", d > 0 ? ", " : "",
                             dag->nodes[node->deps[d]].name);
        if (wrote < 0)
            break;
        len += (size_t)wrote;
    }
}

static int n_kind(const orch_dag *dag, orch_dag_kind kind)
{
    int n = 0;
    for (int k = 0; k < dag->n_nodes; k++)
        n += dag->nodes[k].kind == kind;
    return n;
}

int orch_sweep_print_plan(const orch_sweep *s, const orch_dag *dag, FILE *out, orch_err *err)
{
    int n_stages = n_kind(dag, ORCH_DAG_FEATURES);
    fprintf(out, "sweep  %s\nfile   %s\nhash   %s\nruns   %d", s->name, s->file, s->hash,
            s->n_runs);
    if (n_stages > 0)
        fprintf(out, " (and %d feature stage%s)", n_stages, n_stages == 1 ? "" : "s");
    fputs("\n\n", out);

    /* columns as wide as their longest cell */
    enum { WAITS_MAX = (ORCH_SWEEP_MAX_DEPS + 1) * (ORCH_NAME_MAX + 2) };
    char waits[WAITS_MAX];
    int name_w = (int)strlen("RUN"), waits_w = (int)strlen("WAITS FOR");
    for (int k = 0; k < dag->n_nodes; k++) {
        if (dag->nodes[k].kind != ORCH_DAG_RUN)
            continue;
        int len = (int)strlen(dag->nodes[k].name);
        name_w = len > name_w ? len : name_w;
        waits_for(dag, k, waits, sizeof waits);
        len = (int)strlen(waits);
        waits_w = len > waits_w ? len : waits_w;
    }
    fprintf(out, "%-*s  %-*s  %-*s  %s\n", name_w, "RUN", HASH_SHOWN, "CONFIG", waits_w,
            "WAITS FOR", "OVERRIDES");
    for (int k = 0; k < dag->n_nodes; k++) {
        if (dag->nodes[k].kind != ORCH_DAG_RUN)
            continue;
        const orch_sweep_run *run = &s->runs[dag->nodes[k].run];
        waits_for(dag, k, waits, sizeof waits);
        fprintf(out, "%-*s  %-*.*s  %-*s  %s\n", name_w, run->name, HASH_SHOWN, HASH_SHOWN,
                run->config_hash, waits_w, waits, run->overrides[0] ? run->overrides : "-");
    }

    if (n_stages > 0)
        fputs("\nfeature stages (the frozen tower's forward of the data set, computed once "
              "before the detach runs it feeds):\n",
              out);
    for (int k = 0; k < dag->n_nodes; k++) {
        if (dag->nodes[k].kind != ORCH_DAG_FEATURES)
            continue;
        fprintf(out, "%s  feeds", dag->nodes[k].name);
        int first = 1;
        for (int j = k + 1; j < dag->n_nodes; j++)
            for (int d = 0; d < dag->nodes[j].n_deps; d++)
                if (dag->nodes[j].deps[d] == k) {
                    fprintf(out, "%s %s", first ? "" : ",", dag->nodes[j].name);
                    first = 0;
                }
        fputc('\n', out);
    }
    if (ferror(out))
        return orch_seterr(err, ORCH_EIO, "plan: cannot write the sweep's plan");
    return ORCH_OK;
}

/* {"name", ..., "cost"} of the run of node k; NULL when out of memory. */
static json_t *run_json(const orch_sweep *s, const orch_dag *dag, int k)
{
    const orch_dag_node *node = &dag->nodes[k];
    const orch_sweep_run *run = &s->runs[node->run];
    json_t *deps = json_array();
    for (int d = 0; d < node->n_deps && deps != NULL; d++) {
        const orch_dag_node *dep = &dag->nodes[node->deps[d]];
        if (dep->kind == ORCH_DAG_RUN && json_array_append_new(deps, json_string(dep->name)) != 0) {
            json_decref(deps);
            deps = NULL;
        }
    }
    if (deps == NULL)
        return NULL;
    return json_pack("{s:s, s:s, s:s, s:s, s:s, s:I, s:o, s:i, s:f}", "name", run->name, "point",
                     run->point, "overrides", run->overrides, "config_hash", run->config_hash,
                     "strategy", orch_strategy_name(run->pipeline->strategy.kind), "seed",
                     (json_int_t)run->pipeline->seed, "deps", deps, "line", run->line, "cost",
                     node->cost);
}

/* {"name", "kind", "runs"} of feature node k; NULL when out of memory. */
static json_t *stage_json(const orch_dag *dag, int k)
{
    json_t *runs = json_array();
    for (int j = k + 1; j < dag->n_nodes && runs != NULL; j++)
        for (int d = 0; d < dag->nodes[j].n_deps; d++)
            if (dag->nodes[j].deps[d] == k &&
                json_array_append_new(runs, json_string(dag->nodes[j].name)) != 0) {
                json_decref(runs);
                runs = NULL;
                break;
            }
    if (runs == NULL)
        return NULL;
    return json_pack("{s:s, s:s, s:o}", "name", dag->nodes[k].name, "kind", "features", "runs",
                     runs);
}

int orch_sweep_print_json(const orch_sweep *s, const orch_dag *dag, FILE *out, orch_err *err)
{
    json_t *runs = json_array(), *stages = json_array();
    int ok = runs != NULL && stages != NULL;
    for (int k = 0; k < dag->n_nodes && ok; k++) {
        int is_run = dag->nodes[k].kind == ORCH_DAG_RUN;
        json_t *item = is_run ? run_json(s, dag, k) : stage_json(dag, k);
        ok = item != NULL && json_array_append_new(is_run ? runs : stages, item) == 0;
    }
    json_t *root = NULL;
    if (ok)
        root = json_pack("{s:s, s:s, s:s, s:O, s:O}", "name", s->name, "file", s->file, "hash",
                         s->hash, "runs", runs, "stages", stages);
    json_decref(runs);
    json_decref(stages);
    if (root == NULL)
        return orch_seterr(err, ORCH_ENOMEM, "plan: cannot encode the sweep as JSON");
    int rc = json_dumpf(root, out, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    json_decref(root);
    fputc('\n', out);
    if (rc != 0 || ferror(out))
        return orch_seterr(err, ORCH_EIO, "plan: cannot write the sweep's JSON");
    return ORCH_OK;
}
