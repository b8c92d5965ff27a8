/*
 * cmd_predict.c - `orch predict RUN -o LOGITS.npy`: the logits of a trained
 * run on its own data, for checking an exported adapter elsewhere
 * (scripts/check_adapter.py) against what orch computes.
 *
 * The run's resolved config and newest checkpoint are read from the store;
 * the graph is built as for training but in evaluation mode (LoRA dropout
 * off, as PEFT's model.eval(); no NaN injection), the frozen tensors come
 * from model.weights or the seeded init as in training, the trainable ones
 * from the checkpoint. Every image of the data set, in its stored order
 * (not the training order), goes forward once in batches of
 * schedule.batch_size; the head's outputs land in a float32 .npy of shape
 * (images, head outputs).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/checkpoint.h"
#include "core/cli.h"
#include "core/data_source.h"
#include "core/dataset.h"
#include "core/exec.h"
#include "core/graph.h"
#include "core/init.h"
#include "core/pipeline.h"
#include "store/npy.h"

/* Forward of every image of p's data through g with the checkpoint's
 * trainable tensors; logits[n_images * n_outputs] (caller-owned) filled. */
static int predict(const orch_pipeline *p, const char *checkpoint, float **logits, int *n_images,
                   orch_err *err)
{
    orch_dataset ds;
    orch_graph g;
    orch_exec ex;
    orch_batch batch = {0};
    memset(&ds, 0, sizeof ds);
    memset(&g, 0, sizeof g);
    memset(&ex, 0, sizeof ex);
    int *indices = NULL, exec_ready = 0;
    int rc = orch_data_open(p, &ds, err);
    int b = p->schedule.batch_size;
    if (rc == ORCH_OK)
        rc = orch_graph_build(p, &g, err);
    int64_t max_patches = 0;
    for (int i = 0; rc == ORCH_OK && i < ds.n_images; i += b) {
        int64_t sum = 0;
        for (int k = i; k < i + b && k < ds.n_images; k++)
            sum += orch_dataset_patches(&ds, k);
        if (sum > max_patches)
            max_patches = sum;
    }
    if (rc == ORCH_OK)
        rc = orch_graph_reserve(&g, max_patches, b, err);
    if (rc == ORCH_OK)
        rc = orch_init_params(&g, p, err);
    orch_checkpoint_state st;
    if (rc == ORCH_OK) /* the weights alone: no optimizer state is needed */
        rc = orch_checkpoint_read_weights(checkpoint, &g, &st, err);
    if (rc == ORCH_OK) {
        rc = orch_exec_init(&ex, &g, p, max_patches, b, err);
        exec_ready = rc == ORCH_OK;
    }
    if (rc == ORCH_OK)
        rc = orch_exec_refresh_lowp(&ex, 1, err);
    int outputs = p->head.n_outputs;
    /* owned here, handed to the caller on success */
    float *out =
        rc == ORCH_OK ? malloc(sizeof(float) * (size_t)ds.n_images * (size_t)outputs) : NULL;
    indices = rc == ORCH_OK ? malloc(sizeof(int) * (size_t)b) : NULL;
    if (rc == ORCH_OK && (out == NULL || indices == NULL))
        rc = orch_seterr(err, ORCH_ENOMEM, "predict: out of memory");
    for (int i = 0; rc == ORCH_OK && i < ds.n_images; i += b) {
        int n = ds.n_images - i < b ? ds.n_images - i : b;
        for (int k = 0; k < n; k++)
            indices[k] = i + k;
        rc = orch_dataset_batch(&ds, indices, n, &batch, err);
        if (rc == ORCH_OK)
            rc = orch_exec_set_batch(&ex, &batch, err);
        if (rc != ORCH_OK)
            break;
        ex.step = st.step;
        orch_exec_forward(&ex);
        memcpy(out + (size_t)i * (size_t)outputs, g.tensors[g.logits].data,
               sizeof(float) * (size_t)n * (size_t)outputs);
    }
    if (rc == ORCH_OK) {
        *logits = out;
        *n_images = ds.n_images;
    } else {
        free(out);
    }
    free(indices);
    orch_batch_free(&batch);
    if (exec_ready)
        orch_exec_free(&ex);
    orch_graph_free(&g);
    orch_dataset_free(&ds);
    return rc;
}

int orch_cmd_predict(int argc, char **argv, orch_cli_globals *globals, orch_err *err)
{
    enum { OPT_OUTPUT = 1 };
    static const orch_opt opts[] = {{"output", 1, OPT_OUTPUT}, {NULL, 0, 0}};
    orch_opt_state st = {argc, argv, 1, NULL, "predict"};
    const char *run_text = NULL, *out_path = NULL;
    int id, more;
    while ((more = orch_opt_each(&st, opts, globals, &id, err)) > 0) {
        switch (id) {
        case OPT_OUTPUT:
            out_path = st.value;
            break;
        case ORCH_OPT_POSITIONAL:
            if (strcmp(st.value, "-o") == 0) { /* the short form of --output */
                if (st.index >= st.argc)
                    return orch_seterr(err, ORCH_EINVAL, "predict: option '-o' needs a value");
                out_path = st.argv[st.index++];
            } else if (run_text != NULL) {
                return orch_seterr(err, ORCH_EINVAL, "predict: one run at a time");
            } else {
                run_text = st.value;
            }
            break;
        }
    }
    if (more < 0)
        return err->code;
    if (run_text == NULL || out_path == NULL)
        return orch_seterr(err, ORCH_EINVAL, "predict: usage: orch predict RUN -o LOGITS.npy");
    orch_cli_run_checkpoint run;
    memset(&run, 0, sizeof run);
    if (orch_parse_run_id("predict", run_text, &run.run_id, err) != ORCH_OK)
        return err->code;
    run.pipeline = calloc(1, sizeof *run.pipeline);
    if (run.pipeline == NULL)
        return orch_seterr(err, ORCH_ENOMEM, "predict: out of memory");
    int rc = orch_cli_load_run_checkpoint(orch_cli_db_path(globals), &run, err);
    if (rc == ORCH_OK) {
        /* evaluation mode */
        run.pipeline->strategy.dropout = 0.0;
        run.pipeline->checks.inject.enabled = 0;
        rc = orch_cli_apply_threads(globals, err);
    }
    float *logits = NULL;
    int n_images = 0;
    if (rc == ORCH_OK)
        rc = predict(run.pipeline, run.checkpoint, &logits, &n_images, err);
    if (rc == ORCH_OK) {
        int64_t shape[2] = {n_images, run.pipeline->head.n_outputs};
        rc = orch_npy_save_f32(out_path, logits, shape, 2, err);
    }
    if (rc == ORCH_OK)
        printf("run %lld (step %lld): logits of %d images written to %s\n", (long long)run.run_id,
               (long long)run.step, n_images, out_path);
    free(logits);
    free(run.pipeline);
    return rc;
}
