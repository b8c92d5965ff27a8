/*
 * convert.h - the Lua declaration to orch_pipeline, validating every field.
 *
 * dsl_convert runs in protected mode (it is a lua_CFunction). It reads the
 * declaration with raw accesses only (no metamethod runs), fills the
 * orch_pipeline and raises at the first invalid field with a one-line
 * message "LOCATION: what is wrong", where LOCATION comes from the source
 * locator ("pipelines/x.lua:12" or "--set optimizer.lr=abc"). It holds no
 * malloc'd memory, so raising is always safe.
 *
 * The cv_* helpers are shared by convert.c (top level, helpers),
 * convert_model.c (model, data) and convert_train.c (the rest).
 */
#ifndef ORCH_LUA_CONVERT_H
#define ORCH_LUA_CONVERT_H

#include <stddef.h>

#include <lua.h>

#include "core/pipeline.h"
#include "core/pipeline_fields.h"
#include "lua/dsl_ctx.h"

/* lua_CFunction: (root table, light userdata orch_pipeline *out). */
int dsl_convert(lua_State *L);

typedef struct cv {
    lua_State *L;
    dsl_ctx *ctx;
    orch_pipeline *p;
    unsigned model_given; /* bit i: model field i was given explicitly */
    int head_classes;     /* head.classes as given, 0 if absent */
} cv;

#define CV_INT_MAX 2147483647LL

/* Raises "LOCATION(path): message". Never returns. */
_Noreturn void cv_fail(cv *c, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Raises like cv_fail for a conflict between the fields path and other
 * (the one that makes path wrong), located at path, unless other was set by
 * a --set and path was not: the override that caused it is named then. */
_Noreturn void cv_fail_pair(cv *c, const char *path, const char *other, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Writes "parent.key" (or "key" for the root) into out[DSL_LOC_PATH_MAX]. */
void cv_join(char *out, const char *parent, const char *key);

/* Writes "parent[i]" into out[DSL_LOC_PATH_MAX]. */
void cv_index(char *out, const char *parent, long long i);

/* A short description of the value at idx for "(got ...)": "string 'x'",
 * "number 3.5", "boolean true", "a table", "nil". Writes into buf. */
const char *cv_describe(cv *c, int idx, char *buf, size_t n);

/* Pushes t[key] (raw) and returns its type. */
int cv_get(cv *c, int t, const char *key);

/* Fails on any key of the table at t that is not in valid[0..n-1]: "unknown
 * key 'model.dept' (did you mean 'model.depth'?)". Several unknown keys
 * report the alphabetically first. */
void cv_check_keys(cv *c, int t, const char *path, const char *const *valid, size_t n);

/* Fails with "path is required" plus hint (may be "") unless t[key] is set. */
void cv_need(cv *c, int t, const char *tpath, const char *key, const char *hint);

/* Fails unless t[key] is absent: "path is not used with WHY". */
void cv_forbid(cv *c, int t, const char *tpath, const char *key, const char *why);

/* Value readers: the value at idx, named path in messages. */
long long cv_int(cv *c, int idx, const char *path, long long lo, long long hi);
double cv_num(cv *c, int idx, const char *path);
int cv_bool(cv *c, int idx, const char *path);
void cv_str(cv *c, int idx, const char *path, char *out, size_t n);
int cv_enum(cv *c, int idx, const char *path, const char *const *names, size_t n);
/* The length of the list (sequence, or empty table) at idx; fails for any
 * other value or more than max items. */
size_t cv_list(cv *c, int idx, const char *path, size_t max);

/* ------------------------------------------------ the field table (core/pipeline_fields.h) */

/* Fails on any key of the table at t that is not a field of section
 * (kind >= 0: the kind field and the options of that kind; a key of another
 * kind is refused by name, "strategy.replace is an option of surgery, not of
 * lora"). */
void cv_check_section(cv *c, int t, const char *section, int kind);

/* cv_check_section for a table read as section but named at in messages
 * (eval.data, read with the rows of data). */
void cv_check_section_at(cv *c, int t, const char *section, int kind, const char *at);

/* Reads the value at idx as field f, with the table's type, range and enum
 * names, into out (f's member of c->p when out is NULL); named path in
 * messages. Scalars only (INT, U64, REAL, BOOL, ENUM, STRING, FILE). */
void cv_value(cv *c, const orch_field *f, int idx, const char *path, void *out);

/* Reads t[key] for field f when present (returns 1); else leaves the
 * destination alone (returns 0). t is the table of f's section. */
int cv_field(cv *c, int t, const orch_field *f, void *out);

/* Sets f's member of c->p to the table's default. */
void cv_default(cv *c, const orch_field *f);

/* cv_field into c->p, else cv_default. */
void cv_field_or_default(cv *c, int t, const orch_field *f);

/* Reads every scalar field directly inside section (INT, U64, REAL, BOOL,
 * ENUM, STRING, FILE rows; with kind >= 0 only the options of kind), in
 * table order: the value in the table at t when present, else the default
 * (fields without one stay as they are). t = 0: the section is absent, so
 * defaults only. Rows flagged KIND, CUSTOM or NO_DSL are left to the
 * caller. A new scalar field of a section needs nothing else here. */
void cv_scalars(cv *c, int t, const char *section, int kind);

/* Resolves a file name given at path: absolute names stay; relative ones
 * are taken against the directory of the file that set path (the current
 * directory for a --set). Fails unless the result is an existing regular
 * file. Writes the resolved name into out. */
void cv_file(cv *c, const char *path, const char *name, char *out, size_t n);

/* cv_file without the check that the file exists: for names the data source
 * checks (a folder, shard patterns). */
void cv_resolve(cv *c, const char *path, const char *name, char *out, size_t n);

/* The sections, in validation order (convert_model.c, convert_train.c). */
void cv_model(cv *c, int root);
void cv_processor(cv *c, int root);
void cv_data(cv *c, int root);
/* The data table at t, read into c->p->data and named at in messages
 * ("data"; "eval.data" with c->p a view whose data is the eval set). */
void cv_data_at(cv *c, int t, const char *at);
void cv_head_loss(cv *c, int root);
void cv_strategy(cv *c, int root);
void cv_optimizer(cv *c, int root);
void cv_schedule(cv *c, int root);
void cv_eval(cv *c, int root); /* eval, and what schedule.stop needs of it */
void cv_precision(cv *c, int root);
void cv_checks(cv *c, int root);
void cv_parallel(cv *c, int root);
void cv_tags_name(cv *c, int root);

#endif
