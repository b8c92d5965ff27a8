/*
 * require.h - loading pipeline files: the main one and those it requires.
 *
 * require "name" looks for name.lua in the pipeline search path only: the
 * directory of the main pipeline file, then each directory of
 * $ORCH_PIPELINE_PATH (colon-separated). A dotted name "sub.base" means
 * sub/base.lua. Names with "/", "..", a leading "." or other characters
 * than letters, digits, '_', '-' and '.' are refused, and so is a file
 * whose real path (symlinks resolved) lies outside its search directory.
 * A module runs once per load; its value (true when it returns nothing) is
 * cached; a cycle of requires is an error.
 *
 * Every file is loaded as text only (no bytecode) and registered with the
 * source locator before it runs.
 */
#ifndef ORCH_LUA_REQUIRE_H
#define ORCH_LUA_REQUIRE_H

#include <lua.h>

#include "lua/dsl_ctx.h"

/* Fills ctx->dirs/n_dirs from the main file's path and $ORCH_PIPELINE_PATH
 * (entries that do not fit are dropped). */
void dsl_search_path_init(dsl_ctx *ctx, const char *main_path);

/* Reads the file at path, registers it with the locator, loads it (text
 * only) with chunk name "@path" and calls it with no arguments. Leaves its
 * first result on the stack. Raises on any failure (a missing file, a syntax
 * error, an error while running), so call it in protected mode. */
void dsl_run_file(lua_State *L, const char *path);

/* The `require` global (a lua_CFunction). */
int dsl_require(lua_State *L);

#endif
