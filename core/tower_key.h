/*
 * tower_key.h - the facts that decide a frozen tower's output for an image.
 *
 * Under detach no gradient reaches the tower, so its output for an image
 * depends only on:
 *   - the tower's structural config (every orch_model_config field but
 *     initializer_range, which only matters through the weights) and the
 *     precision the forward runs in;
 *   - the tower's weights: model.weights when given, else the seeded init
 *     (the pipeline's seed and initializer_range);
 *   - the image: the data section, and the seed when the data is synthetic
 *     (the seed renders the images); for an images folder its dir, labels
 *     and the processor's bounds; for tar shards their patterns and the
 *     processor's bounds.
 * These facts are described here once. core/detach_cache.c keys its cache
 * on the config ints below plus the weights' actual values (exact, known
 * once the graph is built); core/sweep_dag.c groups detach runs whose
 * frozen forwards coincide by orch_tower_forward_key, computed from the
 * pipeline alone before anything runs.
 */
#ifndef ORCH_TOWER_KEY_H
#define ORCH_TOWER_KEY_H

#include <stdint.h>

#include "core/pipeline.h"

/* Ints orch_tower_config_ints writes at most. */
#define ORCH_TOWER_CONFIG_INTS (12 + ORCH_MAX_FULLATT)

/* The structural config and the precision as ints in a fixed order (the
 * order the feature cache's on-disk keys were made with: keep it), field
 * by field so struct padding never enters a key. Writes them to out
 * (ORCH_TOWER_CONFIG_INTS of room) and returns how many. */
int orch_tower_config_ints(const orch_model_config *cfg, orch_precision precision, int *out);

/* A 64-bit xxh3 of every fact above for pipeline p: two detach runs with
 * the same key compute the same tower output for every image of their
 * data, so one forward of the data fills the feature cache for both. */
uint64_t orch_tower_forward_key(const orch_pipeline *p);

#endif
