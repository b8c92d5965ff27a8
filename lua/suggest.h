/*
 * suggest.h - "did you mean ...?": the nearest valid name to a typo.
 *
 * Plain C, no Lua: used by the converter for unknown keys and enumeration
 * values, by require for module names, and by the module-name checks.
 */
#ifndef ORCH_LUA_SUGGEST_H
#define ORCH_LUA_SUGGEST_H

#include <stddef.h>

/* Levenshtein distance between a and b (insertions, deletions and
 * substitutions cost 1; ASCII case matters). Strings longer than 255 bytes
 * are compared on their first 255 bytes. */
int dsl_edit_distance(const char *a, const char *b);

/* Returns the element of names[0..n-1] nearest to word, or NULL when none is
 * close enough to be a plausible typo (distance > max(2, strlen(word) / 3)).
 * Ties go to the earlier name. The result points into names. */
const char *dsl_nearest(const char *word, const char *const *names, size_t n);

/* Writes names[0..n-1] joined by ", " into buf (size cap); truncates with
 * "..." when it does not fit. Returns buf. */
char *dsl_join_names(char *buf, size_t cap, const char *const *names, size_t n);

#endif
