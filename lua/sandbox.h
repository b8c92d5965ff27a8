/*
 * sandbox.h - the Lua state a pipeline runs in.
 *
 * A pipeline is untrusted declaration code. Its state:
 *   - holds at most ctx->mem_limit bytes (a counting allocator);
 *   - opens only the base, string, table, math and utf8 libraries;
 *   - has no dofile, loadfile, os, io, debug, package or coroutine: reading
 *     one of those names raises "'os' is not available in pipelines
 *     (sandbox)" at the line that tried;
 *   - has a `load` that accepts text chunks only, and a `require` limited to
 *     the pipeline search path (require.c);
 *   - has pcall/xpcall that cannot swallow the instruction limit;
 *   - refuses metatables with __gc (finalizers run with hooks off, so the
 *     instruction limit could not stop one);
 *   - prints to stderr (stdout is for orch's own output);
 *   - seeds math.random with 0, so a declaration is deterministic;
 *   - is stopped by a count hook after ctx->instruction_limit instructions
 *     with "FILE:LINE: pipeline ran too long (...); endless loop?".
 */
#ifndef ORCH_LUA_SANDBOX_H
#define ORCH_LUA_SANDBOX_H

#include <lua.h>

#include "lua/dsl_ctx.h"

/* Makes a new state whose allocator counts against ctx->mem_limit and whose
 * extra space points at ctx. Nothing is opened yet. Returns NULL when out of
 * memory. Close with lua_close. */
lua_State *dsl_state_new(dsl_ctx *ctx);

/* A lua_CFunction to run in protected mode: opens the allowed libraries,
 * installs the sandbox, the DSL globals (prelude.c) and require. */
int dsl_sandbox_open(lua_State *L);

/* Raises a Lua error if the value at index mt is a table that holds __gc
 * (raw): a finalizer would run with hooks off, outside the instruction
 * limit. Call before every lua_setmetatable of a metatable the pipeline
 * made; the sandbox's setmetatable does. */
void dsl_check_metatable(lua_State *L, int mt);

/* Starts counting instructions (after dsl_sandbox_open). */
void dsl_sandbox_start_hook(lua_State *L);

/* lua_pcall with the sandbox's message handler, which turns any error into
 * a one-line string with the FILE:LINE of the innermost pipeline line when
 * the message has no position yet. Returns the lua_pcall status; on error
 * the message is on the top of the stack. */
int dsl_pcall(lua_State *L, int nargs, int nresults);

/* 1 if msg starts with a position "SOURCE:LINE: " as Lua writes it. */
int dsl_has_position(const char *msg);

/* 1 if msg starts with "NAME:" for a pipeline file the locator knows (or
 * the main file), or with "--set ". */
int dsl_names_source(const dsl_ctx *ctx, const char *msg);

/* Lua shortens long chunk names in its messages to "...TAIL:LINE: ...". If
 * msg starts so and TAIL ends a known file name, returns that name and sets
 * *skip to the length of "...TAIL"; else returns NULL. */
const char *dsl_truncated_source(const dsl_ctx *ctx, const char *msg, size_t *skip);

#endif
