/*
 * pipeline_json.h - the resolved pipeline as JSON, and its config hash.
 *
 * The JSON mirrors the DSL (docs/pipelines.md): the same section and field
 * names, enums as their names, so a field printed as optimizer.lr is
 * json_extract(config_json, '$.optimizer.lr') in the store and
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

#endif
