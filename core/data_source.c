/* data_source.c - pipeline data -> orch_dataset; see data_source.h. */
#include "core/data_source.h"

#include <string.h>

#include "core/processor.h"
#include "core/synthetic.h"
#include "store/npy_dataset.h"

int orch_data_open(const orch_pipeline *p, orch_dataset *out, orch_err *err)
{
    const orch_model_config *c = &p->model.config;
    int patch_dim = c->in_channels * c->temporal_patch_size * c->patch_size * c->patch_size;
    memset(out, 0, sizeof *out);
    if (p->data.source == ORCH_DATA_NPY)
        return orch_npy_dataset_load(p->data.pixel_values, p->data.grid_thw_path, p->data.labels,
                                     patch_dim, c->spatial_merge_size, out, err);

    /* The processor of this tower: Qwen's constants, this config's sizes;
     * min/max pixels keep Qwen's ratio to the resize factor (4 and 16384
     * factor^2 areas). */
    orch_processor_config proc;
    orch_processor_defaults(&proc);
    proc.patch_size = c->patch_size;
    proc.temporal_patch_size = c->temporal_patch_size;
    proc.merge_size = c->spatial_merge_size;
    int factor = c->patch_size * c->spatial_merge_size;
    proc.min_pixels = 4 * factor * factor;
    proc.max_pixels = 16384 * factor * factor;
    orch_synthetic_config syn;
    memset(&syn, 0, sizeof syn);
    syn.n_images = p->data.n_samples;
    syn.n_classes = p->data.n_classes;
    syn.height = p->data.image_height;
    syn.width = p->data.image_width;
    syn.n_grids = p->data.n_grids;
    syn.grids = &p->data.image_grid_thw[0][0];
    syn.seed = p->seed;
    syn.in_memory = 1;
    return orch_synthetic_load(&syn, &proc, out, err);
}
