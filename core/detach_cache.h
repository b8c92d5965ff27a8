/*
 * detach_cache.h - the tower's forward, skipped when its output is known.
 *
 * Under detach no gradient reaches the tower, so an image's tower output
 * depends only on the tower's weights, its config, the precision and the
 * image itself (windows and attention segments never cross images; the
 * facts are listed once in core/tower_key.h). The
 * cache keys each image by a 128-bit xxh3 of all of these and keeps the
 * outputs on disk (store/feature_cache.h), so later epochs and other runs
 * of a sweep skip the tower entirely when every image of a batch hits.
 */
#ifndef ORCH_DETACH_CACHE_H
#define ORCH_DETACH_CACHE_H

#include <stdint.h>

#include "core/dataset.h"
#include "core/err.h"
#include "core/exec.h"
#include "store/feature_cache.h"

typedef struct orch_detach_cache {
    orch_fcache *disk;    /* owned */
    uint64_t model_hash;  /* tower weights + config + precision */
    int64_t hits, misses; /* images, over the run */
    void *hash_state;     /* an XXH3_state_t, owned */
    /* The entries this run used, so each is reported once (the run's
     * cache_use records): an open-addressing set of cap slots (a power of
     * two; a zero key marks a free slot, so the key {0,0} is never reported
     * and counted as used), malloc'd. */
    orch_fcache_key *used;
    size_t n_used, cap_used;
    orch_fcache_key *fresh; /* those the last forward used first, n_fresh of them; malloc'd */
    int n_fresh, cap_fresh;
} orch_detach_cache;

/* Opens the cache in dir for the graph's current tower weights. */
int orch_detach_cache_open(orch_detach_cache *c, const char *dir, const orch_exec *ex,
                           orch_err *err);

void orch_detach_cache_close(orch_detach_cache *c);

/* Forward of a batch already set on ex (orch_exec_set_batch), with the
 * tower's output taken from the cache when every image hits and stored
 * for the images that missed otherwise. *loss gets the loss; *hits and
 * *misses this batch's counts. */
int orch_detach_cache_forward(orch_detach_cache *c, orch_exec *ex, const orch_batch *batch,
                              double *loss, int *hits, int *misses, orch_err *err);

/* The feature stage of a sweep (core/sweep_dag.h, ORCH_DAG_FEATURES): the
 * frozen tower's forward of every image of p's data, stored in the cache
 * in dir exactly as orch_detach_cache_forward stores a miss (it is what
 * computes them, over the images in order, schedule.batch_size at a time),
 * so the detach runs that share p's tower, precision and data then hit on
 * every batch. Images already cached are not computed again. *images gets
 * the data's image count, *computed those computed now. stop (may be NULL)
 * is asked between batches: nonzero ends the fill with ORCH_ERUNTIME
 * "interrupted" (what is stored stays: the next fill skips it). ORCH_EINVAL
 * for a pipeline without a detached tower or bad data or weights. */
int orch_detach_cache_fill(const orch_pipeline *p, const char *dir, int (*stop)(void),
                           int64_t *images, int64_t *computed, orch_err *err);

/* The entries the last orch_detach_cache_forward used for the first time
 * in this run (read or written), *n of them: what the run reports as
 * cache_use records. Owned by c, valid until the next forward. */
const orch_fcache_key *orch_detach_cache_new_uses(const orch_detach_cache *c, int *n);

#endif
