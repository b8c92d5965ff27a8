/*
 * dsl.h - the pipeline DSL: a Lua file (plus --set overrides) to a
 * validated orch_pipeline. The one door into lua/; nothing else in the
 * program sees a lua_State.
 *
 * A pipeline file returns one table (docs/pipelines.md). orch_dsl_load runs
 * it in a fresh sandboxed Lua 5.4 state (only base, string, table, math and
 * utf8; a require limited to the pipeline search path; an instruction limit
 * and a memory cap), applies the --set overrides, converts the table into
 * the struct and validates every field, then closes the state. Nothing is
 * run, written or allocated for the caller.
 *
 * Every error is one line, "LOCATION: what is wrong", where LOCATION is
 * "FILE:LINE" of the offending field (the file that set it, for composed
 * pipelines), or "--set KEY=VALUE" for an override, e.g.
 *     pipelines/x.lua:12: optimizer.lr must be > 0 (got -0.001)
 *     --set optimizer.lr=abc: optimizer.lr must be a number (got string 'abc')
 * (main.c adds the "orch: " prefix).
 */
#ifndef ORCH_LUA_DSL_H
#define ORCH_LUA_DSL_H

#include <stddef.h>

#include "core/err.h"
#include "core/pipeline.h"
#include "core/sweep.h"

/* Loads the pipeline file at path with sets[0..n_sets-1] ("key.sub=value",
 * applied in order) into *out. out is caller-owned and fully overwritten;
 * on failure it is zeroed. The strings are borrowed for the call.
 * Relative file names in the pipeline (model.weights, strategy.init, the
 * data.*.npy files) are resolved against the directory of the pipeline file
 * that gives them (the current directory for --set) and stored resolved.
 * Returns ORCH_OK; ORCH_EINVAL for anything wrong with the pipeline, its
 * files or the overrides (err->msg says what and where); ORCH_ENOMEM when
 * the process itself runs out of memory. */
int orch_dsl_load(const char *path, const char *const *sets, int n_sets, orch_pipeline *out,
                  orch_err *err);

/* Loads the sweep file at path (a file that returns sweep { ... },
 * docs/pipelines.md "Sweeps") in the same sandbox, with the same require,
 * extend and prelude as orch_dsl_load, and expands it into *out
 * (core/sweep.h): one run per grid point and seed, per random draw and
 * seed, and per explicit run, in that order, each named, converted and
 * validated exactly as orch_dsl_load converts a pipeline (pipeline->name
 * is the run's full name "<sweep>/<point>"; config_hash is
 * orch_pipeline_hash). sets[0..n_sets-1] (--set) apply to every run, after
 * the point's own values (so they reach explicit runs too); a --set of a
 * key the grid, random.space or seeds also set is refused as ambiguous.
 * out is caller-owned and fully overwritten; release it with
 * orch_sweep_free; on failure it is zeroed with nothing left allocated.
 * Returns ORCH_OK; ORCH_EINVAL with one line "SWEEPFILE:LINE: ..." for
 * anything wrong (an invalid point reads "SWEEPFILE:LINE: point NAME
 * (OVERRIDES): what is wrong"), including a file that returns a plain
 * pipeline; ORCH_ENOMEM. */
int orch_dsl_load_sweep(const char *path, const char *const *sets, int n_sets, orch_sweep *out,
                        orch_err *err);

/* Runs the file at path in the sandbox and sets *is_sweep to 1 when it
 * returns sweep { ... }, 0 for anything else (a pipeline table, or a value
 * orch_dsl_load will refuse), so `orch plan`, `orch run` and `orch sweep`
 * can dispatch. Nothing is expanded or converted. ORCH_EINVAL when the file
 * cannot be run (a missing file, a syntax or runtime error: the message
 * orch_dsl_load would give). */
int orch_dsl_file_is_sweep(const char *path, int *is_sweep, orch_err *err);

/* One pipeline file exactly as a load read it: the main file or a module
 * it required (before the loader blanks a byte order mark or a #! line).
 * Both buffers are malloc'd and owned by the orch_dsl_files holding it. */
typedef struct orch_dsl_file {
    char *path; /* as opened: the main path as given, a module's search dir joined with it */
    char *text; /* the bytes, NUL-terminated for convenience (len excludes it) */
    size_t len;
} orch_dsl_file;

/* The files one load ran, in the order they were first read (the main
 * file first), each once. Release with orch_dsl_files_free. */
typedef struct orch_dsl_files {
    orch_dsl_file *files;
    int n, cap;
} orch_dsl_files;

/* orch_dsl_load, and the files it ran into *files (zeroed first; filled
 * also when loading fails, with what was read until then). So a run can
 * record its pipeline files as they were, whatever edits come later
 * (docs/bundles.md). ORCH_ENOMEM when the list cannot grow. */
int orch_dsl_load_recorded(const char *path, const char *const *sets, int n_sets,
                           orch_pipeline *out, orch_dsl_files *files, orch_err *err);

/* orch_dsl_load_sweep, and the files it ran (the sweep file, the
 * pipelines and modules it required) into *files, as above. */
int orch_dsl_load_sweep_recorded(const char *path, const char *const *sets, int n_sets,
                                 orch_sweep *out, orch_dsl_files *files, orch_err *err);

/* Frees every file of files and zeroes it; NULL-safe. */
void orch_dsl_files_free(orch_dsl_files *files);

/* Writes the require search path for the pipeline at path into buf (size
 * n): its directory ("." for the current one), then each directory of
 * $ORCH_PIPELINE_PATH, separated by ':'. Returns 0, or -1 if it was
 * truncated. */
int orch_dsl_search_path(const char *path, char *buf, size_t n);

#endif
