/* sandbox.c - the pipeline's Lua state: libraries, limits, guards; see sandbox.h. */
#include "lua/sandbox.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lualib.h>

#include "lua/prelude.h"
#include "lua/require.h"

dsl_ctx *dsl_ctx_get(lua_State *L)
{
    dsl_ctx *ctx;
    memcpy(&ctx, lua_getextraspace(L), sizeof ctx);
    return ctx;
}

/* ------------------------------------------------------------- allocator */

/* lua_Alloc counting live bytes against ctx->mem_limit. Shrinking never
 * fails, as Lua requires. */
static void *capped_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
    dsl_ctx *ctx = ud;
    size_t old = ptr != NULL ? osize : 0;
    if (nsize == 0) {
        free(ptr);
        ctx->mem_used -= old;
        return NULL;
    }
    if (nsize > old && ctx->mem_used + (nsize - old) > ctx->mem_limit) {
        ctx->mem_refused = 1;
        return NULL;
    }
    void *grown = realloc(ptr, nsize);
    if (grown == NULL)
        return nsize <= old ? ptr : NULL;
    ctx->mem_used = ctx->mem_used - old + nsize;
    return grown;
}

lua_State *dsl_state_new(dsl_ctx *ctx)
{
    lua_State *L = lua_newstate(capped_alloc, ctx);
    if (L == NULL)
        return NULL;
    memcpy(lua_getextraspace(L), &ctx, sizeof ctx);
    return L;
}

/* ------------------------------------------------------------------ hook */

/* The source name of a function for messages: the file of "@file", the
 * text of "=text", else Lua's short form. */
static const char *source_name(const lua_Debug *ar)
{
    if (ar->source != NULL && (ar->source[0] == '@' || ar->source[0] == '='))
        return ar->source + 1;
    return ar->short_src;
}

static void count_hook(lua_State *L, lua_Debug *ar)
{
    dsl_ctx *ctx = dsl_ctx_get(L);
    if (!ctx->killed) {
        ctx->instructions += DSL_HOOK_PERIOD;
        if (ctx->instructions < ctx->instruction_limit)
            return;
        ctx->killed = 1;
        lua_getinfo(L, "Sl", ar);
        snprintf(ctx->kill_msg, sizeof ctx->kill_msg,
                 "%s:%d: pipeline ran too long (more than %lld million Lua instructions); "
                 "endless loop?",
                 source_name(ar), ar->currentline, ctx->instruction_limit / 1000000);
        /* from now on every instruction raises, so nothing can outlast it */
        lua_sethook(L, count_hook, LUA_MASKCOUNT, 1);
    }
    lua_pushstring(L, ctx->kill_msg);
    lua_error(L);
}

void dsl_sandbox_start_hook(lua_State *L)
{
    lua_sethook(L, count_hook, LUA_MASKCOUNT, DSL_HOOK_PERIOD);
}

/* ------------------------------------------------------- message handler */

int dsl_has_position(const char *msg)
{
    const char *sep = strstr(msg, ": ");
    if (sep == NULL)
        return 0;
    const char *q = sep;
    while (q > msg && q[-1] >= '0' && q[-1] <= '9')
        q--;
    return q < sep && q > msg && q[-1] == ':';
}

const char *dsl_truncated_source(const dsl_ctx *ctx, const char *msg, size_t *skip)
{
    if (strncmp(msg, "...", 3) != 0)
        return NULL;
    const char *colon = strchr(msg + 3, ':');
    if (colon == NULL || colon[1] < '0' || colon[1] > '9')
        return NULL;
    size_t tail = (size_t)(colon - (msg + 3));
    for (size_t i = 0; i < ctx->loc.n_sources; i++) {
        const char *name = ctx->loc.sources[i].name;
        size_t n = strlen(name);
        if (!ctx->loc.sources[i].is_set && n > tail &&
            strncmp(name + n - tail, msg + 3, tail) == 0) {
            *skip = (size_t)(colon - msg);
            return name;
        }
    }
    return NULL;
}

int dsl_names_source(const dsl_ctx *ctx, const char *msg)
{
    size_t skip;
    if (strncmp(msg, "--set ", 6) == 0 || dsl_truncated_source(ctx, msg, &skip) != NULL)
        return 1;
    for (size_t i = 0; i < ctx->loc.n_sources; i++) {
        size_t n = strlen(ctx->loc.sources[i].name);
        if (!ctx->loc.sources[i].is_set && strncmp(msg, ctx->loc.sources[i].name, n) == 0 &&
            msg[n] == ':')
            return 1;
    }
    size_t n = strlen(ctx->main_path);
    return strncmp(msg, ctx->main_path, n) == 0 && msg[n] == ':';
}

/* Message handler: a string with a position; never a traceback, so the
 * message stays one line. Adds the innermost pipeline-file line when the
 * error has none (error("x", 0), a table as error object) or only the
 * position of a chunk made by load(). */
static int message_handler(lua_State *L)
{
    dsl_ctx *ctx = dsl_ctx_get(L);
    if (ctx->killed) {
        lua_pushstring(L, ctx->kill_msg);
        return 1;
    }
    const char *msg = lua_type(L, 1) == LUA_TSTRING ? lua_tostring(L, 1) : NULL;
    if (msg == NULL)
        msg = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
    if (dsl_names_source(ctx, msg))
        return 1;
    lua_Debug ar;
    for (int level = 0; lua_getstack(L, level, &ar); level++) {
        lua_getinfo(L, "Sl", &ar);
        if (ar.currentline > 0 && ar.source != NULL && ar.source[0] == '@') {
            lua_pushfstring(L, "%s:%d: %s", ar.source + 1, ar.currentline, msg);
            return 1;
        }
    }
    lua_pushstring(L, msg);
    return 1;
}

int dsl_pcall(lua_State *L, int nargs, int nresults)
{
    int base = lua_gettop(L) - nargs;
    lua_pushcfunction(L, message_handler);
    lua_insert(L, base);
    int status = lua_pcall(L, nargs, nresults, base);
    lua_remove(L, base);
    return status;
}

/* ------------------------------------------------------- guarded globals */

/* pcall that does not catch the instruction limit. */
static int guarded_pcall(lua_State *L)
{
    luaL_checkany(L, 1);
    int status = lua_pcall(L, lua_gettop(L) - 1, LUA_MULTRET, 0);
    dsl_ctx *ctx = dsl_ctx_get(L);
    if (ctx->killed) {
        lua_pushstring(L, ctx->kill_msg);
        return lua_error(L);
    }
    if (status != LUA_OK) {
        lua_pushboolean(L, 0);
        lua_insert(L, -2);
        return 2;
    }
    lua_pushboolean(L, 1);
    lua_insert(L, 1);
    return lua_gettop(L);
}

/* xpcall(f, handler, ...) that does not catch the instruction limit. */
static int guarded_xpcall(lua_State *L)
{
    int n = lua_gettop(L);
    luaL_checktype(L, 2, LUA_TFUNCTION);
    lua_pushvalue(L, 1);
    lua_copy(L, 2, 1); /* handler at 1 */
    lua_replace(L, 2); /* function at 2 */
    int status = lua_pcall(L, n - 2, LUA_MULTRET, 1);
    dsl_ctx *ctx = dsl_ctx_get(L);
    if (ctx->killed) {
        lua_pushstring(L, ctx->kill_msg);
        return lua_error(L);
    }
    if (status != LUA_OK) {
        lua_pushboolean(L, 0);
        lua_insert(L, -2);
        return 2;
    }
    lua_pushboolean(L, 1);
    lua_replace(L, 1);
    return lua_gettop(L);
}

/* Lua 5.4 runs __gc finalizers with hooks off (GCTM clears allowhook), both
 * in collections during the load and in lua_close, so no instruction limit
 * can stop one: an endless loop there would hang orch. A table is marked for
 * finalization only when a metatable that (raw) holds __gc is set on it, so
 * refusing such metatables wherever one is set keeps every finalizer out of
 * the state. __gc added to a metatable afterwards is never called (Lua's
 * rule), and __close runs with hooks on, under the limit. */
void dsl_check_metatable(lua_State *L, int mt)
{
    mt = lua_absindex(L, mt);
    if (lua_type(L, mt) != LUA_TTABLE)
        return;
    lua_pushliteral(L, "__gc");
    int has_gc = lua_rawget(L, mt) != LUA_TNIL;
    lua_pop(L, 1);
    if (has_gc)
        luaL_error(L, "metatables with __gc (finalizers) are not allowed in pipelines (sandbox)");
}

/* setmetatable(t, mt) refusing a metatable with __gc (dsl_check_metatable). */
static int guarded_setmetatable(lua_State *L)
{
    dsl_check_metatable(L, 2);
    lua_pushvalue(L, lua_upvalueindex(1)); /* the base library's setmetatable */
    lua_insert(L, 1);
    lua_call(L, lua_gettop(L) - 1, 1);
    return 1;
}

/* load(chunk [, chunkname [, mode [, env]]]) for text chunks only. */
static int text_load(lua_State *L)
{
    int top = lua_gettop(L);
    if (lua_type(L, 1) == LUA_TSTRING) {
        size_t len;
        const char *s = lua_tolstring(L, 1, &len);
        if (len > 0 && s[0] == LUA_SIGNATURE[0])
            return luaL_error(L, "load: binary chunks (bytecode) are not allowed in pipelines "
                                 "(sandbox)");
    }
    int nargs = top >= 4 ? 4 : 3; /* an explicit env, even nil, counts */
    lua_settop(L, 4);
    lua_pushvalue(L, lua_upvalueindex(1)); /* the base library's load */
    lua_pushvalue(L, 1);
    lua_pushvalue(L, 2);
    lua_pushliteral(L, "t");
    if (nargs == 4)
        lua_pushvalue(L, 4);
    lua_call(L, nargs, LUA_MULTRET);
    return lua_gettop(L) - 4;
}

/* print to stderr: stdout carries orch's own output (plan, --json). */
static int stderr_print(lua_State *L)
{
    int n = lua_gettop(L);
    for (int i = 1; i <= n; i++) {
        size_t len;
        const char *s = luaL_tolstring(L, i, &len);
        if (i > 1)
            fputc('\t', stderr);
        fwrite(s, 1, len, stderr);
        lua_pop(L, 1);
    }
    fputc('\n', stderr);
    return 0;
}

typedef struct blocked_name {
    const char *name;
    const char *hint;
} blocked_name;

static const blocked_name blocked[] = {
    {"os", ""},
    {"io", ""},
    {"debug", ""},
    {"package", "; use require \"name\" for files in the pipeline's directory"},
    {"coroutine", ""},
    {"dofile", "; use require \"name\" for files in the pipeline's directory"},
    {"loadfile", "; use require \"name\" for files in the pipeline's directory"},
    {"loadstring", "; use load(text)"},
    {"module", ""},
    {"setfenv", ""},
    {"getfenv", ""},
};

/* __index of _G: a missing global is nil, except the names of what the
 * sandbox removed, which raise a clear error at the line that asked. */
static int global_index(lua_State *L)
{
    if (lua_type(L, 2) == LUA_TSTRING) {
        const char *key = lua_tostring(L, 2);
        for (size_t i = 0; i < sizeof blocked / sizeof blocked[0]; i++)
            if (strcmp(key, blocked[i].name) == 0)
                return luaL_error(L, "'%s' is not available in pipelines (sandbox)%s", key,
                                  blocked[i].hint);
    }
    lua_pushnil(L);
    return 1;
}

int dsl_sandbox_open(lua_State *L)
{
    static const luaL_Reg libs[] = {
        {LUA_GNAME, luaopen_base},       {LUA_STRLIBNAME, luaopen_string},
        {LUA_TABLIBNAME, luaopen_table}, {LUA_MATHLIBNAME, luaopen_math},
        {LUA_UTF8LIBNAME, luaopen_utf8}, {NULL, NULL}};
    for (const luaL_Reg *lib = libs; lib->func != NULL; lib++) {
        luaL_requiref(L, lib->name, lib->func, 1);
        lua_pop(L, 1);
    }
    lua_pushglobaltable(L);
    int g = lua_gettop(L);

    /* deterministic math.random */
    lua_getfield(L, g, LUA_MATHLIBNAME);
    lua_getfield(L, -1, "randomseed");
    lua_pushinteger(L, 0);
    lua_call(L, 1, 0);
    lua_pop(L, 1);

    for (size_t i = 0; i < sizeof blocked / sizeof blocked[0]; i++) {
        lua_pushnil(L);
        lua_setfield(L, g, blocked[i].name);
    }
    lua_getfield(L, g, "load");
    lua_pushcclosure(L, text_load, 1);
    lua_setfield(L, g, "load");
    lua_getfield(L, g, "setmetatable");
    lua_pushcclosure(L, guarded_setmetatable, 1);
    lua_setfield(L, g, "setmetatable");
    lua_pushcfunction(L, guarded_pcall);
    lua_setfield(L, g, "pcall");
    lua_pushcfunction(L, guarded_xpcall);
    lua_setfield(L, g, "xpcall");
    lua_pushcfunction(L, stderr_print);
    lua_setfield(L, g, "print");
    lua_pushcfunction(L, dsl_require);
    lua_setfield(L, g, "require");
    dsl_prelude_open(L, g);

    lua_newtable(L);
    lua_pushcfunction(L, global_index);
    lua_setfield(L, -2, "__index");
    lua_pushliteral(L, "the pipeline sandbox");
    lua_setfield(L, -2, "__metatable");
    lua_setmetatable(L, g);
    lua_pop(L, 1);
    return 0;
}
