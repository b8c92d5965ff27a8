/* cmd_plan.c - `orch plan`: load, validate and print a pipeline, or a
 * sweep's runs and their DAG. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/cli.h"
#include "core/data_source.h"
#include "core/graph.h"
#include "core/pipeline.h"
#include "core/pipeline_json.h"
#include "core/pipeline_print.h"
#include "core/plan_sizes.h"
#include "core/sweep.h"
#include "core/sweep_dag.h"
#include "core/sweep_print.h"
#include "lua/dsl.h"

enum { OPT_SET = 1, OPT_JSON, OPT_DOT, OPT_FROM };

/* A Qwen preset names a published checkpoint; without model.weights the
 * run trains from a random tower (seeded init), almost never what is
 * meant at that size, and easy to miss in the printed plan. The small
 * presets have no checkpoint, so random init is their normal use. */
static void warn_random_init(const orch_pipeline *p)
{
    if (p->model.weights[0] != '\0' || strncmp(p->model.preset, "qwen", 4) != 0)
        return;
    fprintf(stderr,
            "orch: warning: %s: model.preset = \"%s\" without model.weights: the tower is "
            "randomly initialized (seeded), not the pretrained checkpoint; set model.weights to "
            "its safetensors file or index\n",
            p->path, p->model.preset);
}

/* The pipeline's JSON (what a run stores) with the plan's "sizes" object
 * added as its last key: the pretty text ends with the object's closing
 * brace, which the sizes go before. */
static int print_json(const orch_pipeline *p, const orch_plan_sizes *sizes, orch_err *err)
{
    char *text = orch_pipeline_to_json(p, 1);
    char *sizes_text = orch_plan_sizes_json(sizes);
    char *close = text != NULL ? strrchr(text, '}') : NULL;
    if (close == NULL || sizes_text == NULL) {
        free(text);
        free(sizes_text);
        return orch_seterr(err, ORCH_ENOMEM, "plan: cannot encode the pipeline as JSON");
    }
    char *end = close;
    while (end > text && (end[-1] == '\n' || end[-1] == ' '))
        end--;
    fwrite(text, 1, (size_t)(end - text), stdout);
    printf(",\n  \"sizes\": %s\n}\n", sizes_text);
    free(text);
    free(sizes_text);
    return ORCH_OK;
}

/* The .npy files of run r, checked as `orch plan` checks a pipeline's; an
 * error names the point as orch_dsl_load_sweep's do. */
static int check_run_data(const orch_sweep *s, int r, orch_err *err)
{
    orch_err data_err;
    orch_err_clear(&data_err);
    int rc = orch_data_check(s->runs[r].pipeline, &data_err);
    if (rc != ORCH_OK)
        return orch_seterr(err, rc, "%s:%d: point %s (%s): %s", s->file, s->runs[r].line,
                           s->runs[r].point, s->runs[r].overrides, data_err.msg);
    return ORCH_OK;
}

/* `orch plan SWEEP.lua`: the expanded runs in the DAG's order, as a table,
 * JSON or Graphviz. A cycle or an unknown dependency is refused here, before
 * anything runs. */
static int plan_sweep(const char *path, const char **sets, int n_sets, int json, int dot,
                      orch_err *err)
{
    orch_sweep sweep;
    memset(&sweep, 0, sizeof sweep);
    orch_dag dag;
    memset(&dag, 0, sizeof dag);
    int rc = orch_dsl_load_sweep(path, sets, n_sets, &sweep, err);
    for (int r = 0; r < sweep.n_runs && rc == ORCH_OK; r++)
        rc = check_run_data(&sweep, r, err);
    /* the warning once, not once per run */
    for (int r = 0; r < sweep.n_runs && rc == ORCH_OK; r++)
        if (sweep.runs[r].pipeline->model.weights[0] == '\0' &&
            strncmp(sweep.runs[r].pipeline->model.preset, "qwen", 4) == 0) {
            warn_random_init(sweep.runs[r].pipeline);
            break;
        }
    if (rc == ORCH_OK)
        rc = orch_dag_build(&sweep, &dag, err);
    if (rc == ORCH_OK && dot)
        rc = orch_dag_print_dot(&dag, &sweep, stdout, err);
    else if (rc == ORCH_OK && json)
        rc = orch_sweep_print_json(&sweep, &dag, stdout, err);
    else if (rc == ORCH_OK)
        rc = orch_sweep_print_plan(&sweep, &dag, stdout, err);
    orch_dag_free(&dag);
    orch_sweep_free(&sweep);
    return rc;
}

int orch_cmd_plan(int argc, char **argv, orch_cli_globals *globals, orch_err *err)
{
    static const orch_opt opts[] = {{"set", 1, OPT_SET},
                                    {"json", 0, OPT_JSON},
                                    {"dot", 0, OPT_DOT},
                                    {"from", 1, OPT_FROM},
                                    {NULL, 0, 0}};
    orch_opt_state st = {argc, argv, 1, NULL, "plan"};
    const char *sets[ORCH_MAX_SETS];
    int n_sets = 0, json = 0, dot = 0;
    const char *path = NULL, *from = NULL;
    int id, more;
    while ((more = orch_opt_each(&st, opts, globals, &id, err)) > 0) {
        switch (id) {
        case OPT_SET:
            if (orch_opt_add_set(&st, sets, &n_sets, err) != ORCH_OK)
                return err->code;
            break;
        case OPT_FROM:
            from = st.value;
            break;
        case OPT_JSON:
            json = 1;
            break;
        case OPT_DOT:
            dot = 1;
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
                           "plan: --from RUN plans that run's recorded configuration as it is; "
                           "give no pipeline file or --set with it");
    if (path == NULL && from == NULL)
        return orch_seterr(err, ORCH_EINVAL,
                           "plan: missing pipeline file (usage: orch plan FILE.lua)");

    orch_pipeline *pipeline = calloc(1, sizeof *pipeline);
    if (pipeline == NULL)
        return orch_seterr(err, ORCH_ENOMEM, "plan: out of memory");
    int rc = from != NULL ? orch_cli_load_from_run(globals, from, pipeline, NULL, err)
                          : orch_dsl_load(path, sets, n_sets, pipeline, err);
    /* orch_dsl_load refuses a sweep file: only then is the file probed, so
     * planning a pipeline runs its Lua once, as it always did */
    int is_sweep = 0;
    orch_err probe_err;
    if (rc == ORCH_EINVAL && from == NULL &&
        orch_dsl_file_is_sweep(path, &is_sweep, &probe_err) == ORCH_OK && is_sweep) {
        free(pipeline);
        return plan_sweep(path, sets, n_sets, json, dot, err);
    }
    if (rc == ORCH_OK)
        rc = orch_data_check(pipeline, err);
    if (rc == ORCH_OK)
        warn_random_init(pipeline);
    if (rc == ORCH_OK && dot) {
        /* the stage graph the run would execute, trainable stages marked */
        orch_graph graph;
        rc = orch_graph_build(pipeline, &graph, err);
        if (rc == ORCH_OK)
            orch_graph_print_dot(&graph, stdout);
        orch_graph_free(&graph);
    } else if (rc == ORCH_OK) {
        orch_plan_sizes sizes;
        rc = orch_plan_sizes_compute(pipeline, &sizes, err);
        if (rc == ORCH_OK && json)
            rc = print_json(pipeline, &sizes, err);
        else if (rc == ORCH_OK) {
            orch_pipeline_print(pipeline, stdout);
            orch_plan_sizes_print(&sizes, stdout);
            rc = orch_cli_apply_threads(globals, err);
            if (rc == ORCH_OK) {
                fputc('\n', stdout);
                orch_cli_print_kernels(stdout, "-- ");
            }
        }
    }
    free(pipeline);
    return rc;
}
