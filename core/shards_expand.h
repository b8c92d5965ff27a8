/*
 * shards_expand.h - shard patterns to file names, as WebDataset's
 * braceexpand and the shell do it.
 *
 *   "train-{000..003}.tar"  a range, zero-padded to the wider bound when
 *                           either bound has a leading zero: 000 001 002 003
 *   "train-{a,b}.tar"       a comma list
 *   "train-*.tar"           a glob (glob(3): * ? [...]), after braces
 * Braces nest and combine ("{a,b}-{0..1}.tar"). The names of all patterns
 * are sorted (strcmp) and de-duplicated.
 *
 * A name without glob characters must be a regular file ("data/train-002.tar:
 * no such shard (from data/train-{000..003}.tar)"); a glob must match at
 * least one ("PATTERN: matches no shard"). Both ORCH_EINVAL, so `orch plan`
 * refuses a missing shard (exit 2).
 */
#ifndef ORCH_SHARDS_EXPAND_H
#define ORCH_SHARDS_EXPAND_H

#include "core/err.h"

/* At most this many names per pattern ("{0..99999999}" is refused). */
#define ORCH_SHARDS_MAX_EXPANSION 100000

/* Expands patterns[0..n) into *paths (n_paths names; the array and each
 * name malloc'd, free with orch_shards_paths_free). */
int orch_shards_expand(const char *const *patterns, int n, char ***paths, int *n_paths,
                       orch_err *err);

/* Brace expansion alone, no file system: for tests and `orch plan`'s view. */
int orch_shards_brace(const char *pattern, char ***names, int *n_names, orch_err *err);

void orch_shards_paths_free(char **paths, int n);

#endif
