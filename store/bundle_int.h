/*
 * bundle_int.h - what the files of store/bundle_*.c share; not for use
 * outside them (see store/bundle.h).
 *
 *   bundle_sources.c  recording a run's pipeline files
 *   bundle_sha.c      SHA-256 of memory and of a stream
 *   bundle_csv.c      a table's rows as typed CSV, and back
 *   bundle_export.c   writing a bundle (libarchive)
 *   bundle_read.c     reading one safely into a staging folder (libarchive)
 *   bundle_import.c   a staged bundle into the store (store/merge.c's fold)
 *   bundle_replay.c   the runs' configurations and losses for orch replay
 */
#ifndef ORCH_STORE_BUNDLE_INT_H
#define ORCH_STORE_BUNDLE_INT_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#include "store/bundle.h"
#include "store/store_int.h"
#include "store/sweeps.h"

/* ---------------------------------------------------------------- sha */

void bundle_sha256_hex(const void *data, size_t n, char hex[65]);

/* A running digest; bundle_sha_start returns -1 when out of memory. */
typedef struct bundle_sha {
    EVP_MD_CTX *md;
} bundle_sha;
int bundle_sha_start(bundle_sha *h);
void bundle_sha_add(bundle_sha *h, const void *data, size_t n);
void bundle_sha_end(bundle_sha *h, char hex[65]); /* frees the context */

/* ---------------------------------------------------------------- csv */

/* A growing byte buffer (malloc'd; oom set when it could not grow). */
typedef struct bundle_buf {
    char *s;
    size_t len, cap;
    int oom;
} bundle_buf;
void bundle_buf_add(bundle_buf *b, const void *data, size_t n);
void bundle_buf_str(bundle_buf *b, const char *s);

/* The rows of `SELECT cols FROM table WHERE run_id = ?` (for "runs": id = ?)
 * as CSV into out: a header of the column names, then one line per row,
 * ordered by every column. Text quoted ("" inside), integers and reals
 * (%.17g, always with '.', 'e' or "Inf") bare, NULL an empty field, a blob
 * X'hex'; lines end with LF. Generated columns are left out. */
int bundle_csv_dump(orch_store *s, const char *table, int64_t run_id, bundle_buf *out,
                    orch_err *err);

/* Parsed CSV: n_cols names, then rows of typed cells (store/store.h's
 * orch_value). */
typedef struct bundle_csv {
    orch_rowset rows;
} bundle_csv;

/* Parses text[0..n) as written by bundle_csv_dump. ORCH_EINVAL
 * "NAME:LINE: what is wrong" for anything else. */
int bundle_csv_parse(const char *name, const char *text, size_t n, orch_rowset *out, orch_err *err);

/* The tables a bundle carries for each run, besides runs: every table with
 * a foreign key to runs but sweep_runs and run_features (the sweep and the
 * feature cache stay in their store), by name. names[i] is 128 bytes. */
int bundle_run_tables(orch_store *s, char (*names)[128], int *n, int max, orch_err *err);

/* ---------------------------------------------------------- read */

/* One member of a staged bundle. */
typedef struct bundle_member {
    char *name;      /* as in the archive and MANIFEST.json */
    char staged[64]; /* its file in the staging folder: "m000001" */
    int64_t bytes;
    char sha256[65];
} bundle_member;

typedef struct bundle_staged {
    char dir[STORE_PATH_MAX]; /* the staging folder (made by bundle_stage) */
    int n;
    bundle_member *members; /* in archive order; members[0] is MANIFEST.json */
    char *manifest;         /* MANIFEST.json's text */
} bundle_staged;

/* Reads the bundle at path member by member into a new folder made from
 * dir_template (mkdtemp), every check of store/bundle.h made. On failure
 * the folder is removed and *out holds nothing. */
int bundle_stage(const char *path, const orch_bundle_limits *limits, const char *dir_template,
                 bundle_staged *out, orch_err *err);

/* The member named name, or NULL. */
const bundle_member *bundle_find(const bundle_staged *b, const char *name);

/* Reads a staged member into a malloc'd NUL-terminated buffer. */
int bundle_slurp(const bundle_staged *b, const bundle_member *m, char **text, orch_err *err);

/* Removes the staging folder and frees *b. */
void bundle_unstage(bundle_staged *b);

/* The uuids of the runs MANIFEST.json lists, in order (malloc'd array of
 * 40-byte strings). */
int bundle_manifest_runs(const bundle_staged *b, const char *path, char (**uuids)[40], int *n,
                         orch_err *err);

/* The relative name under runs/UUID/pipeline/ of a recorded path: leading
 * '/' dropped, each ".." or "." component as "__" ... never leaving it. */
void bundle_source_name(const char *recorded, char *out, size_t n);

/* merge.c's fold with the artifact files of added runs moved into this
 * store's run folders (store/merge.c). */
int store_merge_placing(orch_store *s, const char *other_path, struct orch_merge_counts *counts,
                        int64_t *placed, orch_err *err);

#endif
