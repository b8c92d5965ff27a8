/*
 * feature_cache.h - an on-disk cache of tower outputs, for detach.
 *
 * With detach no gradient reaches the tower, so its output for an image is
 * a pure function of the tower's weights, its config, the precision and the
 * image's pixels. The caller hashes all of that into a 128-bit key; the
 * cache maps keys to float arrays, one file per key in a directory, written
 * to a temporary name and renamed so a half-written entry never looks
 * finished. An entry is found only under its exact key, so a change of any
 * part of the key never reuses it.
 */
#ifndef ORCH_FEATURE_CACHE_H
#define ORCH_FEATURE_CACHE_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

typedef struct orch_fcache_key {
    uint64_t hi, lo;
} orch_fcache_key;

typedef struct orch_fcache orch_fcache;

/* Opens (creating if needed) the cache directory dir. Returns ORCH_OK or
 * ORCH_EIO with err filled. *out is owned by the caller: orch_fcache_close. */
int orch_fcache_open(const char *dir, orch_fcache **out, orch_err *err);

void orch_fcache_close(orch_fcache *c);

/* Reads entry key into dst (n floats). Returns 1 on a hit, 0 on a miss (no
 * entry, or an entry of another size, which is treated as absent). */
int orch_fcache_get(orch_fcache *c, orch_fcache_key key, float *dst, size_t n);

/* Stores src (n floats) under key. Returns ORCH_OK or ORCH_EIO. */
int orch_fcache_put(orch_fcache *c, orch_fcache_key key, const float *src, size_t n, orch_err *err);

#endif
