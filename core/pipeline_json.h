/*
 * pipeline_json.h - the resolved pipeline as JSON, and its config hash.
 *
 * The JSON mirrors the DSL (docs/pipelines.md): the same section and field
 * names (both walk the field table, core/pipeline_fields.h), enums as their names, so a field
 * printed as optimizer.lr is json_extract(config_json, '$.optimizer.lr') in the store and
 * --set optimizer.lr=... on the command line. Every field of the struct is
 * present whatever the strategy or optimizer kind (unused ones hold their
 * zero/default), so the schema is stable; the two fields whose type
 * depends on a kind are data.image_grid_thw (a list of [t, h, w] for
 * synthetic data, the .npy file name for source "npy") and head.classes /
 * head.outputs (classifier / regression).
 *
 * Canonical form: keys sorted, compact separators, reals printed with the
 * fewest of 15, 16 or 17 significant digits that round-trip every real of
 * the pipeline. The config hash is the sha256 of the canonical JSON of the
 * configuration without path, name, tags and config_hash: it identifies
 * what runs, independent of the Lua source's formatting, key order,
 * composition, file name and labels.
 */
#ifndef ORCH_PIPELINE_JSON_H
#define ORCH_PIPELINE_JSON_H

#include "core/err.h"
#include "core/pipeline.h"

/* The whole resolved pipeline, plus "config_hash": pretty (2-space indent)
 * or canonical compact. Returns a malloc'd NUL-terminated string (free with
 * free), or NULL when out of memory. */
char *orch_pipeline_to_json(const orch_pipeline *p, int pretty);

/* The canonical compact JSON that orch_pipeline_hash hashes (no path, name,
 * tags, config_hash). malloc'd, or NULL when out of memory. */
char *orch_pipeline_config_json(const orch_pipeline *p);

/* Writes the lowercase hex sha256 of orch_pipeline_config_json(p) and a NUL
 * into hex. Returns ORCH_OK, or ORCH_ENOMEM (hex is then ""). */
int orch_pipeline_hash(const orch_pipeline *p, char hex[65]);

/* Parses JSON produced by orch_pipeline_to_json back into *out (zeroed
 * first). Every field orch_pipeline_to_json writes is read back; the result
 * is field-for-field equal to the struct that was serialized, so
 * orch_pipeline_hash(out) equals the hash of the original. Unknown keys or
 * wrong types are an error (ORCH_EINVAL, "config_json: <key>: <problem>"),
 * since the text comes from a store and must be exactly what orch wrote.
 *
 * Exactly: every key orch writes must be there (a missing one is an error
 * too), duplicate keys are refused, integers must fit their C field, lists
 * their fixed-size arrays and strings their buffers (no NUL bytes), enums
 * must be one of their names, and "config_hash" must equal the hash of the
 * configuration read, so a config_json edited by hand or written by an orch
 * with another schema is refused rather than silently run differently.
 * The values are not re-validated as the DSL does (ranges, consistency):
 * they were validated when the pipeline was loaded.
 *
 * Array entries past their count (tags, strategy.targets, grids,
 * fullatt_block_indexes) and the bytes after each string's NUL are zero in
 * *out. json may be pretty or compact. Keys are named by their JSON path,
 * list items 0-based: "config_json: strategy.targets[1]: expected a string,
 * got integer". Returns ORCH_OK; ORCH_EINVAL (and *out zeroed) for any
 * problem with the text; ORCH_ENOMEM when out of memory. */
int orch_pipeline_from_json(const char *json, orch_pipeline *out, orch_err *err);

#endif
