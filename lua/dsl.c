/* dsl.c - orch_dsl_load: one sandboxed state per pipeline; see dsl.h. */
#include "lua/dsl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>

#include "lua/convert.h"
#include "lua/dsl_ctx.h"
#include "lua/overrides.h"
#include "lua/require.h"
#include "lua/sandbox.h"
#include "lua/sweep.h"

/* Protected: runs the main file and leaves its table on the stack. */
static int run_main(lua_State *L)
{
    dsl_ctx *ctx = dsl_ctx_get(L);
    dsl_run_file(L, ctx->main_path);
    if (dsl_is_sweep(L, -1))
        return luaL_error(L,
                          "%s: this file declares a sweep; run it with `orch sweep %s` (plan it "
                          "with `orch plan %s`)",
                          ctx->main_path, ctx->main_path, ctx->main_path);
    if (lua_type(L, -1) != LUA_TTABLE) {
        char where[ORCH_PATH_MAX + 32];
        dsl_loc_find(&ctx->loc, "", ctx->main_path, where, sizeof where);
        lua_pushfstring(L,
                        "%s: the pipeline must return a table, e.g. return { model = ... } "
                        "(got %s)",
                        where, luaL_typename(L, -1));
        return lua_error(L);
    }
    return 1;
}

int dsl_failure(lua_State *L, const dsl_ctx *ctx, int status, orch_err *err)
{
    if (ctx->killed)
        return orch_seterr(err, ORCH_EINVAL, "%s", ctx->kill_msg);
    if (status == LUA_ERRMEM) {
        if (ctx->mem_refused)
            return orch_seterr(err, ORCH_EINVAL,
                               "%s: out of memory: a pipeline may use at most %zu MB",
                               ctx->main_path, ctx->mem_limit >> 20);
        return orch_seterr(err, ORCH_ENOMEM, "%s: out of memory", ctx->main_path);
    }
    const char *msg = lua_tostring(L, -1);
    if (msg == NULL)
        msg = "(error object is not a string)";
    size_t skip = 0;
    const char *full = dsl_truncated_source(ctx, msg, &skip);
    if (full != NULL) /* Lua shortened a long file name: give it whole */
        orch_seterr(err, ORCH_EINVAL, "%s%s", full, msg + skip);
    else if (dsl_names_source(ctx, msg) || dsl_has_position(msg))
        orch_seterr(err, ORCH_EINVAL, "%s", msg);
    else
        orch_seterr(err, ORCH_EINVAL, "%s: %s", ctx->main_path, msg);
    for (char *p = err->msg; *p != '\0'; p++) /* one line */
        if (*p == '\n' || *p == '\r' || *p == '\t')
            *p = ' ';
    return ORCH_EINVAL;
}

int dsl_open(lua_State *L, dsl_ctx *ctx, orch_err *err)
{
    lua_pushcfunction(L, dsl_sandbox_open);
    int status = dsl_pcall(L, 0, 0);
    if (status != LUA_OK)
        return status == LUA_ERRMEM ? orch_seterr(err, ORCH_ENOMEM, "out of memory")
                                    : dsl_failure(L, ctx, status, err);
    dsl_sandbox_start_hook(L);
    return ORCH_OK;
}

dsl_ctx *dsl_ctx_new(const char *path)
{
    dsl_ctx *ctx = calloc(1, sizeof *ctx);
    if (ctx == NULL)
        return NULL;
    ctx->main_path = path;
    ctx->mem_limit = DSL_MEM_LIMIT;
    ctx->instruction_limit = DSL_INSTRUCTION_LIMIT;
    dsl_loc_init(&ctx->loc);
    dsl_search_path_init(ctx, path);
    return ctx;
}

void dsl_ctx_free(dsl_ctx *ctx)
{
    if (ctx == NULL)
        return;
    dsl_loc_free(&ctx->loc);
    free(ctx);
}

/* Runs everything that touches Lua; returns an orch_status. */
static int load_in_state(lua_State *L, dsl_ctx *ctx, const char *const *sets, int n_sets,
                         orch_pipeline *out, orch_err *err)
{
    int status = dsl_open(L, ctx, err);
    if (status != ORCH_OK)
        return status;

    lua_pushcfunction(L, run_main);
    status = dsl_pcall(L, 0, 1);
    if (status != LUA_OK)
        return dsl_failure(L, ctx, status, err);
    int root = lua_gettop(L);
    /* no collection runs from now on while C reads the declaration (the
     * sandbox admits no __gc finalizer anyway); emergency collections still
     * free memory */
    lua_gc(L, LUA_GCSTOP);

    for (int i = 0; i < n_sets; i++) {
        lua_pushcfunction(L, dsl_apply_set);
        lua_pushvalue(L, root);
        lua_pushlightuserdata(L, (void *)sets[i]);
        status = dsl_pcall(L, 2, 0);
        if (status != LUA_OK)
            return dsl_failure(L, ctx, status, err);
    }

    lua_pushcfunction(L, dsl_convert);
    lua_pushvalue(L, root);
    lua_pushlightuserdata(L, out);
    status = dsl_pcall(L, 2, 0);
    if (status != LUA_OK)
        return dsl_failure(L, ctx, status, err);
    return ORCH_OK;
}

static int load(const char *path, const char *const *sets, int n_sets, orch_pipeline *out,
                orch_dsl_files *files, orch_err *err);

int orch_dsl_load(const char *path, const char *const *sets, int n_sets, orch_pipeline *out,
                  orch_err *err)
{
    return load(path, sets, n_sets, out, NULL, err);
}

int orch_dsl_load_recorded(const char *path, const char *const *sets, int n_sets,
                           orch_pipeline *out, orch_dsl_files *files, orch_err *err)
{
    if (files != NULL)
        memset(files, 0, sizeof *files);
    return load(path, sets, n_sets, out, files, err);
}

static int load(const char *path, const char *const *sets, int n_sets, orch_pipeline *out,
                orch_dsl_files *files, orch_err *err)
{
    orch_err_clear(err);
    if (out != NULL)
        memset(out, 0, sizeof *out);
    if (path == NULL || path[0] == '\0' || out == NULL)
        return orch_seterr(err, ORCH_EINVAL, "no pipeline file given");
    if (n_sets < 0 || (n_sets > 0 && sets == NULL))
        return orch_seterr(err, ORCH_EINVAL, "bad --set list");
    for (int i = 0; i < n_sets; i++)
        if (sets[i] == NULL)
            return orch_seterr(err, ORCH_EINVAL, "bad --set list");

    dsl_ctx *ctx = dsl_ctx_new(path);
    if (ctx == NULL)
        return orch_seterr(err, ORCH_ENOMEM, "out of memory");
    ctx->files = files;

    int rc;
    lua_State *L = dsl_state_new(ctx);
    if (L == NULL) {
        rc = orch_seterr(err, ORCH_ENOMEM, "out of memory");
    } else {
        rc = load_in_state(L, ctx, sets, n_sets, out, err);
        lua_close(L);
    }
    dsl_ctx_free(ctx);
    if (rc != ORCH_OK)
        memset(out, 0, sizeof *out);
    return rc;
}

int orch_dsl_search_path(const char *path, char *buf, size_t n)
{
    dsl_ctx *ctx = calloc(1, sizeof *ctx);
    if (ctx == NULL || n == 0) {
        free(ctx);
        return -1;
    }
    dsl_search_path_init(ctx, path);
    size_t len = 0;
    int truncated = 0;
    buf[0] = '\0';
    for (int i = 0; i < ctx->n_dirs; i++) {
        int w = snprintf(buf + len, n - len, "%s%s", i ? ":" : "",
                         ctx->dirs[i][0] ? ctx->dirs[i] : ".");
        if (w < 0 || (size_t)w >= n - len) {
            truncated = 1;
            break;
        }
        len += (size_t)w;
    }
    free(ctx);
    return truncated ? -1 : 0;
}
