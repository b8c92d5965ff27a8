/*
 * literal.h - the value of a Lua literal written as text ("3e-4",
 * "{0.9, 0.999}", "\"linear\""): what --set values and the field table's
 * defaults (core/pipeline_fields.h) are written in.
 *
 * The text is compiled as `return TEXT` (text chunks only) and run in an
 * empty environment, under the state's instruction and memory limits, so
 * nothing but literals and operators on them is reachable.
 */
#ifndef ORCH_LUA_LITERAL_H
#define ORCH_LUA_LITERAL_H

#include <stddef.h>

#include <lua.h>

#include "core/pipeline_fields.h"

enum { DSL_LITERAL_OK = 0, DSL_LITERAL_SYNTAX, DSL_LITERAL_RUNTIME };

/* Pushes the value of text and returns DSL_LITERAL_OK; else pushes
 * nothing, writes Lua's message (without the "value:1: " prefix) into
 * msg[n] and returns DSL_LITERAL_SYNTAX or DSL_LITERAL_RUNTIME. Raises when
 * the instruction limit was hit (the limit's own message). */
int dsl_push_literal(lua_State *L, const char *text, char *msg, size_t n);

/* Pushes the default of field f (core/pipeline_fields.h; it must have
 * one). Raises "default of PATH: ..." if it does not evaluate, which only
 * running out of memory can cause. */
void dsl_push_default(lua_State *L, const orch_field *f);

#endif
