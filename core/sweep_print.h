/*
 * sweep_print.h - `orch plan SWEEP.lua`: a sweep and its DAG as text or JSON.
 *
 * Both list the runs in the DAG's order (dependencies first, otherwise as
 * declared: the order that matters to scheduling), then the feature stages
 * with the runs they feed. The Graphviz form is orch_dag_print_dot
 * (core/sweep_dag.h).
 */
#ifndef ORCH_SWEEP_PRINT_H
#define ORCH_SWEEP_PRINT_H

#include <stdio.h>

#include "core/err.h"
#include "core/sweep.h"
#include "core/sweep_dag.h"

/* The header (name, file, hash, run count), a table of the runs (name,
 * first 12 hex of the config hash, what it waits for, overrides) and the
 * feature stages. */
int orch_sweep_print_plan(const orch_sweep *s, const orch_dag *dag, FILE *out, orch_err *err);

/* One JSON object: {"name", "file", "hash", "runs": [{"name", "point",
 * "overrides", "config_hash", "strategy", "seed", "deps", "line", "cost"}],
 * "stages": [{"name", "kind": "features", "runs"}]}; "deps" are the names
 * of the runs it waits for (its feature stage is in "stages"), "cost" the
 * expected multiply-adds the scheduler orders by. */
int orch_sweep_print_json(const orch_sweep *s, const orch_dag *dag, FILE *out, orch_err *err);

#endif
