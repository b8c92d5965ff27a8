/*
 * overrides.h - --set key.sub=value applied to a loaded declaration.
 *
 * The key is a dotted path of names (optimizer.lr) and list positions
 * (optimizer.betas.2). Missing tables on the way are created; a value that
 * is not a table on the way is an error. A missing list whose element is
 * set starts as a copy of the field's default (core/pipeline_fields.h), so
 * strategy.targets.1=X replaces the first default target and keeps the
 * others, as assigning t[1] in Lua would. The value is a Lua literal:
 *   - true, false; nil removes the field (its default applies again);
 *   - text starting with a digit, a sign or '.' and a digit, a quote, '{'
 *     or "[[" is evaluated as a Lua expression: text only, in an empty
 *     environment, under the instruction and memory limits (so
 *     {1, 24, 24}, -1e-3, "x y" and 2^10 work, and nothing else is
 *     reachable);
 *   - anything else is taken as a bare string: lora, qwen2.5-vl-3b,
 *     visual.merger.mlp.0, weights/w.safetensors.
 * Setting strategy.kind to another kind replaces the whole strategy table,
 * as extend() does. The override is recorded with the locator, so any later
 * validation error about the field names "--set KEY=VALUE" as its location.
 */
#ifndef ORCH_LUA_OVERRIDES_H
#define ORCH_LUA_OVERRIDES_H

#include <lua.h>

/* lua_CFunction: (root table, light userdata const char *arg) where arg is
 * "key.sub=value". Raises "--set ARG: what is wrong" on a bad override. */
int dsl_apply_set(lua_State *L);

/* lua_CFunction: (root table, light userdata const char *key, value, light
 * userdata const char *label): a sweep's grid or random value set at key
 * (a dotted path as --set takes it) in the point's table, by the same
 * rules as --set, except that a table value merges into the table it
 * replaces as extend() does (a strategy constructor of another kind
 * replaces the strategy; sequences replace). Nothing is recorded with the
 * locator (the sweep records the point's lines itself). Raises "LABEL:
 * what is wrong". */
int dsl_apply_value(lua_State *L);

#endif
