/*
 * data_source.h - the data set a pipeline's `data` table declares.
 *
 * One entry point turns orch_data into an orch_dataset (core/dataset.h),
 * whatever the source: the built-in synthetic images through the C port of
 * the processor, or the processor's own outputs saved as .npy. A later
 * source (tar shards) adds a value to orch_data_source (and its name to the
 * field table's data.source row), a case here and its reader; batching and
 * epoch order (core/dataset.h) stay as they are.
 */
#ifndef ORCH_DATA_SOURCE_H
#define ORCH_DATA_SOURCE_H

#include "core/dataset.h"
#include "core/err.h"
#include "core/pipeline.h"

/* Opens the data of pipeline p into *out. Returns ORCH_OK, ORCH_EINVAL (bad
 * files or shapes, or labels that do not fit the head, one line naming the
 * file) or ORCH_ENOMEM. Labels must fit the head: a classifier takes
 * (images,) int64 class ids in [0, head.classes); a regression head
 * float32 targets (images, head.outputs), or (images,) when head.outputs
 * is 1. */
int orch_data_open(const orch_pipeline *p, orch_dataset *out, orch_err *err);

/* orch_data_open of a set p declares other than p->data (eval.data): the
 * same sources and checks against p's model and head. Synthetic images
 * are drawn from data->seed when data->has_seed, else from p->seed. */
int orch_data_open_set(const orch_pipeline *p, const orch_data *data, orch_dataset *out,
                       orch_err *err);

/* Every check of orch_data_open that needs no pixels, for `orch plan`: the
 * .npy files are validated with pixel_values read by its header only (the
 * grid and labels, which are small, whole). Synthetic data needs nothing
 * beyond what the DSL checked. With eval = { data = ... }, the evaluation
 * set is checked the same way. Same errors as orch_data_open. */
int orch_data_check(const orch_pipeline *p, orch_err *err);

#endif
