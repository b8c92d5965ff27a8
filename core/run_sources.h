/*
 * run_sources.h - the pipeline files a load read (lua/dsl.h's
 * orch_dsl_files) as source_file records (core/sink.h), each with its
 * sha256, for the run loop to record when a run begins (docs/bundles.md).
 */
#ifndef ORCH_CORE_RUN_SOURCES_H
#define ORCH_CORE_RUN_SOURCES_H

#include "core/err.h"
#include "core/sink.h"
#include "lua/dsl.h"

typedef struct orch_run_sources {
    int n;
    orch_source_file *files; /* malloc'd; path and text borrowed from the orch_dsl_files */
    char (*sha256)[65];      /* malloc'd; files[i].sha256 points here */
} orch_run_sources;

/* Fills *out from files (which must outlive it). ORCH_ENOMEM. */
int orch_run_sources_make(const orch_dsl_files *files, orch_run_sources *out, orch_err *err);

/* Frees what orch_run_sources_make allocated; zeroes *out; NULL-safe. */
void orch_run_sources_free(orch_run_sources *out);

#endif
