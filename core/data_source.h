/*
 * data_source.h - the data set a pipeline's `data` table declares.
 *
 * One entry point turns orch_data into an orch_dataset (core/dataset.h),
 * whatever the source: the built-in synthetic images through the C port of
 * the processor, or the processor's own outputs saved as .npy. A later
 * source (tar shards) adds a case here and nothing else changes.
 */
#ifndef ORCH_DATA_SOURCE_H
#define ORCH_DATA_SOURCE_H

#include "core/dataset.h"
#include "core/err.h"
#include "core/pipeline.h"

/* Opens the data of pipeline p into *out. Returns ORCH_OK, ORCH_EINVAL (bad
 * files or shapes, one line naming the file) or ORCH_ENOMEM. */
int orch_data_open(const orch_pipeline *p, orch_dataset *out, orch_err *err);

#endif
