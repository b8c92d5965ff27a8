/*
 * pipeline_fields.h - every field of the pipeline, described once.
 *
 * One row per field of orch_pipeline: its DSL/JSON path ("optimizer.grad_clip"),
 * type, place in the struct, valid range, default, enum names and a one-line
 * doc. Generic code walks the table:
 *   - core/pipeline_json.c writes and reads the JSON form (so the config hash),
 *   - core/pipeline_print.c prints the `orch plan` listing,
 *   - lua/convert_*.c read scalar fields with the table's type, range and enum
 *     names, and derive the keys each DSL table accepts,
 *   - lua/overrides.c and lua/prelude.c take list and constructor defaults,
 *   - orch_fields_markdown generates the field tables of docs/pipelines.md
 *     (`make docs`; tests/test_pipeline_fields.c fails when the doc is stale).
 * Fields with special semantics (model presets, image_grid_thw, the head's
 * classes/outputs, stage names) keep custom checks in lua/, but their path,
 * doc and default still live here.
 *
 * Adding a field: a member in pipeline.h, one row in pipeline_fields.c, its
 * use; then `make docs`.
 */
#ifndef ORCH_PIPELINE_FIELDS_H
#define ORCH_PIPELINE_FIELDS_H

#include <stddef.h>
#include <stdio.h>

#include "core/pipeline.h"

typedef enum orch_field_type {
    ORCH_FIELD_SECTION = 0, /* a table of fields (model, optimizer, ...) */
    ORCH_FIELD_OPTIONAL,    /* a table that may be absent (checks.inject): int flag at offset,
                               JSON null when 0 */
    ORCH_FIELD_INT,         /* int */
    ORCH_FIELD_U64,         /* uint64_t, 0 .. 2^63-1 (seed) */
    ORCH_FIELD_REAL,        /* double */
    ORCH_FIELD_BOOL,        /* int, 0 or 1 */
    ORCH_FIELD_ENUM,        /* an int-sized enum; names[] in enum order */
    ORCH_FIELD_STRING,      /* char[size] */
    ORCH_FIELD_FILE,        /* char[size]: a file name, resolved by the DSL */
    ORCH_FIELD_INT_LIST,    /* int[size], count in the int at count_offset */
    ORCH_FIELD_STRING_LIST, /* char[size][ORCH_NAME_MAX], count at count_offset */
    ORCH_FIELD_INT_PAIR,    /* two consecutive ints (data.image_size: height, width) */
    ORCH_FIELD_REAL_PAIR,   /* two consecutive doubles (optimizer.betas) */
    ORCH_FIELD_GRIDS,       /* int64_t[size][3], count at count_offset */
    ORCH_FIELD_FILE_LIST,   /* char[size][ORCH_PATH_MAX]: file names or patterns resolved by
                               the DSL (not checked: data.shards), count at count_offset */
    ORCH_FIELD__COUNT
} orch_field_type;

/* Range flags for REAL (and the items of REAL_PAIR). */
enum {
    ORCH_RANGE_MIN_OPEN = 1, /* min < x instead of min <= x */
    ORCH_RANGE_MAX = 2,      /* there is an upper bound */
    ORCH_RANGE_MAX_OPEN = 4, /* x < max instead of x <= max */
};

/* A predicate on the (resolved) pipeline; NULL means always. */
typedef int (*orch_field_pred)(const orch_pipeline *p);

typedef struct orch_field {
    const char *path; /* "optimizer.grad_clip"; "" never */
    orch_field_type type;
    size_t offset;            /* into orch_pipeline */
    size_t count_offset;      /* lists: the int count */
    size_t size;              /* strings: buffer bytes; lists: max entries */
    const char *const *names; /* ENUM: names in enum order */
    size_t n_names;
    long long imin, imax;    /* INT, U64, INT_LIST items: inclusive range */
    double rmin, rmax;       /* REAL, REAL_PAIR items */
    unsigned rflags;         /* ORCH_RANGE_* */
    unsigned kinds;          /* options of a kind: bit k = strategy/optimizer kind k; 0 = all */
    const char *def;         /* the default as a Lua literal ("0.01", "\"linear\"", "{0.9, 0.999}"),
                                or NULL when it is not one fixed value */
    const char *def_doc;     /* the default as the docs say it, when def is NULL or needs words */
    const char *type_doc;    /* the type as the docs say it, when the generic word is not enough */
    const char *doc;         /* one line: what the field means, constraints beyond the range */
    unsigned flags;          /* ORCH_FIELDF_* */
    orch_field_pred in_json; /* written to / read from JSON when true */
    orch_field_pred in_plan; /* listed by `orch plan` when true */
    const char *note;        /* `--` comment in the listing ... */
    orch_field_pred note_if; /* ... when this holds (NULL: always) */
    size_t given_offset;     /* an int set to 1 when the field is given (data.has_seed); 0: none */
    const char *same_as;     /* SECTION: its rows are those of this section (eval.data has the
                                rows of data), for the struct at offset (size bytes) */
} orch_field;

enum {
    ORCH_FIELDF_META = 1,      /* not part of the configuration: not hashed (path, name, tags) */
    ORCH_FIELDF_NO_DSL = 2,    /* not written in a pipeline (path) */
    ORCH_FIELDF_KIND = 4,      /* the kind of its section: read first, selects the others */
    ORCH_FIELDF_BREAK = 8,     /* the listing puts a blank line before this group */
    ORCH_FIELDF_REQUIRED = 16, /* the DSL needs it (docs) */
    ORCH_FIELDF_CUSTOM = 32,   /* the DSL reads it by hand (lua/convert_*.c), not in the
                                  generic loop over a section's scalars */
    ORCH_FIELDF_SPARSE = 128,  /* written to JSON (and so the hash) only when in_json holds
                                  (e.g. when it is not its default), read back when present and
                                  as its default (an INT's def) when absent: a field added after
                                  runs were recorded keeps their JSON and hashes, so their
                                  checkpoints still resume */
    ORCH_FIELDF_NO_STAT = 256, /* FILE: resolved by the DSL but not checked; the data source
                                  checks it (data.dir, a folder) */
};

/* The table, in listing order; orch_fields_count entries. */
extern const orch_field orch_fields[];
extern const size_t orch_fields_count;

/* The row of path, or NULL; a path inside a section with another's rows
 * (eval.data.dir) gives that row (data.dir). */
const orch_field *orch_field_find(const char *path);

/* The row of path; path must be in the table (an invariant, asserted). */
const orch_field *orch_field_get(const char *path);

/* The DSL keys directly inside section ("" = the top level), in table
 * order, each once: those of every row when kind < 0, else the kind field
 * and the options of kind. Writes at most max into keys; returns the count. */
size_t orch_field_keys(const char *section, int kind, const char **keys, size_t max);

/* The KIND row of section (strategy.kind, optimizer.kind, data.source), or
 * NULL when the section has no kinds. */
const orch_field *orch_field_kind_of(const char *section);

/* 1 if f applies to the kind the section of f has in p: a row without
 * kinds, or one whose kinds include it. */
int orch_field_applies(const orch_field *f, const orch_pipeline *p);

/* For a section row f with same_as: writes into view a copy of p whose
 * same_as struct is f's (so the rows of same_as, their predicates included,
 * read f's struct through view); orch_field_view_back copies it back. */
void orch_field_view(const orch_field *f, const orch_pipeline *p, orch_pipeline *view);
void orch_field_view_back(const orch_field *f, const orch_pipeline *view, orch_pipeline *p);

/* The last segment of f->path ("grad_clip"). */
const char *orch_field_key(const orch_field *f);

/* 1 if f is directly inside the section at parent ("" = top level). */
int orch_field_in(const orch_field *f, const char *parent);

/* A pointer to f's member in p. */
void *orch_field_ptr(const orch_field *f, orch_pipeline *p);
const void *orch_field_cptr(const orch_field *f, const orch_pipeline *p);

/* Writes the markdown table of the fields directly inside section ("" for
 * the top level) to out. */
void orch_fields_markdown(const char *section, FILE *out);

/* Returns text (the whole of docs/pipelines.md) with every generated table
 * between "<!-- fields:SECTION -->" and "<!-- /fields -->" regenerated.
 * malloc'd (free with free), or NULL when out of memory or a marker is not
 * closed. */
char *orch_fields_update_doc(const char *text);

#endif
