/* literal.c - Lua literals written as text; see literal.h. */
#include "lua/literal.h"

#include <stdio.h>
#include <string.h>

#include <lauxlib.h>

#include "core/err.h"
#include "core/pipeline_fields.h"
#include "lua/dsl_ctx.h"

/* Copies the message on top of the stack into msg and pops it. */
static void take_message(lua_State *L, char *msg, size_t n)
{
    const char *s = lua_tostring(L, -1);
    if (s == NULL)
        s = "error";
    if (strncmp(s, "value:1: ", 9) == 0)
        s += 9;
    snprintf(msg, n, "%s", s);
    lua_pop(L, 1);
}

int dsl_push_literal(lua_State *L, const char *text, char *msg, size_t n)
{
    const char *chunk = lua_pushfstring(L, "return %s", text);
    if (luaL_loadbufferx(L, chunk, strlen(chunk), "=value", "t") != LUA_OK) {
        take_message(L, msg, n);
        lua_pop(L, 1); /* the chunk text */
        return DSL_LITERAL_SYNTAX;
    }
    lua_newtable(L); /* an empty environment: literals only */
    lua_setupvalue(L, -2, 1);
    int status = lua_pcall(L, 0, 1, 0);
    dsl_ctx *ctx = dsl_ctx_get(L);
    if (ctx->killed) {
        lua_pushstring(L, ctx->kill_msg);
        lua_error(L);
    }
    if (status != LUA_OK) {
        take_message(L, msg, n);
        lua_pop(L, 1);
        return DSL_LITERAL_RUNTIME;
    }
    lua_remove(L, -2); /* the chunk text */
    return DSL_LITERAL_OK;
}

void dsl_push_default(lua_State *L, const orch_field *f)
{
    ORCH_ASSERT(f->def != NULL);
    char msg[256];
    if (dsl_push_literal(L, f->def, msg, sizeof msg) != DSL_LITERAL_OK)
        luaL_error(L, "default of %s: %s", f->path, msg);
}
