/*
 * pipeline_print.h - the resolved pipeline for people (`orch plan`).
 *
 * One field per line as `path = value`, with values written as Lua literals
 * ("tiny", 0.001, true, {1, 24, 24}), so any line can be pasted back as a
 * --set override. Fields are grouped by section with a blank line between
 * sections; a field that does not apply (optimizer.betas for sgd, the
 * options of another strategy kind, data.image_size for grids) is left out
 * (the JSON form has them all). `--` comments explain defaults that mean
 * "none" (no weights, no clipping, no loss scaling). The first lines are
 * comments with the file and the config hash. Which fields show, in what
 * order, and their notes are the field table's (core/pipeline_fields.h).
 */
#ifndef ORCH_PIPELINE_PRINT_H
#define ORCH_PIPELINE_PRINT_H

#include <stdio.h>

#include "core/pipeline.h"

/* Writes the listing of p to out. Write errors are left in out's error
 * indicator (check ferror). */
void orch_pipeline_print(const orch_pipeline *p, FILE *out);

#endif
