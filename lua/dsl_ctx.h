/*
 * dsl_ctx.h - the state of one orch_dsl_load call, shared by the lua/ files.
 *
 * One dsl_ctx lives on the C side for the whole load: it owns the locator
 * and the limits, and outlives the Lua state. Lua code reaches it through
 * the state's extra space (dsl_ctx_get), never through a global.
 */
#ifndef ORCH_LUA_DSL_CTX_H
#define ORCH_LUA_DSL_CTX_H

#include <stddef.h>

#include <lua.h>

#include "core/err.h"
#include "core/pipeline.h"
#include "lua/locate.h"

#define DSL_MAX_DIRS          8                   /* require search directories */
#define DSL_MEM_LIMIT         ((size_t)256 << 20) /* bytes a pipeline's Lua state may hold */
#define DSL_INSTRUCTION_LIMIT 100000000LL         /* Lua instructions per load */
#define DSL_HOOK_PERIOD       10000               /* instructions between hook calls */
#define DSL_FILE_MAX          ((size_t)4 << 20)   /* bytes of one pipeline file */

typedef struct dsl_ctx {
    const char *main_path; /* the pipeline file as given (borrowed) */
    /* require search path; dirs[0] is the main file's directory, "" = the
     * current directory; the rest come from $ORCH_PIPELINE_PATH */
    int n_dirs;
    char dirs[DSL_MAX_DIRS][ORCH_PATH_MAX];
    dsl_locator loc;
    size_t mem_used, mem_limit;
    int mem_refused; /* the allocator refused a request over mem_limit */
    long long instructions, instruction_limit;
    int killed;                      /* the instruction limit was hit */
    char kill_msg[ORCH_ERR_MSG_MAX]; /* the message every later hook call raises */
    /* a sweep (lua/sweep.c): the sweep being expanded, whose run names are
     * known before any point is converted (output_of resolves against
     * them); NULL when loading a single pipeline */
    const struct orch_sweep *sweep;
    /* while a sweep's point is converted: "point NAME (OVERRIDES): ",
     * written between the location and the message of its errors */
    const char *point_prefix;
    /* where dsl_run_file records each file it reads (lua/dsl.h), or NULL:
     * record nothing; borrowed from the caller of the load */
    struct orch_dsl_files *files;
} dsl_ctx;

/* The dsl_ctx of a state made by dsl_state_new. */
dsl_ctx *dsl_ctx_get(lua_State *L);

/* A new context for the file at path (borrowed): default limits, empty
 * locator, the require search path. NULL when out of memory. dsl.c. */
dsl_ctx *dsl_ctx_new(const char *path);
void dsl_ctx_free(dsl_ctx *ctx);

/* Opens the sandbox in L (a state of dsl_state_new) and starts the
 * instruction count. Returns an orch_status. */
int dsl_open(lua_State *L, dsl_ctx *ctx, orch_err *err);

/* Copies the error of a failed protected call (status, message on the top
 * of the stack) into err as one line; returns the orch_status. */
int dsl_failure(lua_State *L, const dsl_ctx *ctx, int status, orch_err *err);

/* Appends a copy of path and text[0..len) to ctx->files unless a file of
 * that path is there already (or ctx->files is NULL). Returns 0, or -1 when
 * memory runs out (nothing appended). require.c. */
int dsl_files_add(dsl_ctx *ctx, const char *path, const char *text, size_t len);

#endif
