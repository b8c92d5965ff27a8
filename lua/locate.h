/*
 * locate.h - the source locator: which file and line set a pipeline field.
 *
 * Lua tables carry no source positions, so validation messages would have no
 * line to point at. The locator tokenizes every loaded pipeline file (the
 * main file and each file pulled in by require) and records, for every
 * `key =` inside a table constructor, its dotted path and line: nesting is
 * tracked through constructors and call parentheses, so in
 *
 *     return extend(base, {
 *         optimizer = { lr = 1e-3 },        -- records optimizer, optimizer.lr
 *         strategy = lora { rank = 4 },     -- records strategy, strategy.rank
 *         tags = { "a", "b" },              -- records tags, tags[1], tags[2]
 *     })
 *
 * Positional items are recorded as path[i]. Tables built outside the
 * returned constructor (a local helper table) are recorded from the root,
 * which is honest about what is known, not a guarantee.
 *
 * --set overrides are recorded too, and are their own location.
 *
 * Lookup (dsl_loc_find) for a path P, first match wins:
 *   1. a --set whose path is P or an ancestor of P (the latest such --set);
 *   2. the file entry for the most specific of P, parent(P), ... that any
 *      file recorded; among files, the one whose chunk finished last (a
 *      derived pipeline finishes after the base it requires);
 *   3. a --set below P (e.g. P = "optimiser" and --set optimiser.lr=1);
 *   4. the line of the main file's last top-level `return`.
 *
 * The locator never fails: when memory runs out it records less.
 */
#ifndef ORCH_LUA_LOCATE_H
#define ORCH_LUA_LOCATE_H

#include <stddef.h>

#define DSL_LOC_PATH_MAX 256

typedef struct dsl_loc_entry {
    char *path; /* "optimizer.lr", "data.image_grid_thw[1]" */
    int line;
    int source; /* index into sources */
} dsl_loc_entry;

typedef struct dsl_loc_source {
    char *name;      /* file path as in messages, or the whole --set argument */
    int is_set;      /* 1: a --set override */
    int rank;        /* 0 until its chunk finished; then increasing */
    int return_line; /* last top-level `return`, 0 if none */
} dsl_loc_source;

typedef struct dsl_locator {
    dsl_loc_entry *entries;
    size_t n_entries, cap_entries;
    dsl_loc_source *sources;
    size_t n_sources, cap_sources;
    int next_rank;
} dsl_locator;

/* Starts an empty locator (no allocation). */
void dsl_loc_init(dsl_locator *loc);

/* Frees everything the locator holds; loc may be zeroed. */
void dsl_loc_free(dsl_locator *loc);

/* Tokenizes src[0..len) (the text of file `name`, copied) and records its
 * fields. Returns the source index, or -1 if memory ran out. */
int dsl_loc_add_file(dsl_locator *loc, const char *name, const char *src, size_t len);

/* Marks source index `source` as finished: its entries now win over every
 * source finished before. */
void dsl_loc_finish(dsl_locator *loc, int source);

/* Records a --set override of path (in locator form, e.g. "optimizer.lr",
 * "optimizer.betas[2]"); arg is the whole "--set ..." text used as the
 * location. Sets count as finished at once. */
void dsl_loc_add_set(dsl_locator *loc, const char *path, const char *arg);

/* Writes the location of path into buf (size n): "FILE:LINE" for a file,
 * the --set text for an override, "FILE" when only the main file is known
 * (main names it). Returns 1 when a line or --set was found, else 0. */
int dsl_loc_find(const dsl_locator *loc, const char *path, const char *main, char *buf, size_t n);

/* The origin of the value at path, for resolving relative file names: the
 * name of the file that set it (by the rules of dsl_loc_find, steps 1-2), or
 * NULL when it came from a --set or is unknown. */
const char *dsl_loc_origin(const dsl_locator *loc, const char *path, int *from_set);

/* A sweep's point: a new finished source named file (so relative file
 * names it gives resolve against file's directory) whose entries the
 * caller adds with dsl_loc_add_entry, e.g. the grid entry
 * "grid.optimizer.lr[2]" of the sweep file recorded again as
 * "optimizer.lr". Finished after every file, so its entries win over the
 * base pipeline's for the same path. Returns the source index, or -1. */
int dsl_loc_add_derived(dsl_locator *loc, const char *file);

/* Records path at line for source (one made by dsl_loc_add_derived). */
void dsl_loc_add_entry(dsl_locator *loc, int source, const char *path, int line);

/* What the locator holds at a moment, to forget what came after
 * (a point's derived source, once the point is converted). */
typedef struct dsl_loc_mark {
    size_t n_entries, n_sources;
    int next_rank;
} dsl_loc_mark;

dsl_loc_mark dsl_loc_save(const dsl_locator *loc);
void dsl_loc_rewind(dsl_locator *loc, dsl_loc_mark mark);

/* Tokenizes a Lua source and calls fn(path, line, ud) for each recorded
 * field and fn(NULL, line, ud) for each top-level `return`. Exposed for
 * tests. */
void dsl_loc_scan(const char *src, size_t len, void (*fn)(const char *path, int line, void *ud),
                  void *ud);

#endif
