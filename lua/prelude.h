/*
 * prelude.h - the globals a pipeline file sees besides the standard ones.
 *
 *   surgery{...}, detach{...}, lora{...}, full{...}
 *       Strategy constructors: return a NEW table with the given options and
 *       kind = "<name>". The defaults of the kind's options (the field
 *       table, core/pipeline_fields.h) are visible through the
 *       table's metatable (__index), not stored in it, so extend() of two
 *       lora{} tables merges only what each one set explicitly.
 *   images{...}, shards{...}
 *       Data constructors: return a NEW table with the given entries and
 *       source = "<name>" (shards' patterns stay its positional entries).
 *   extend(base, overrides)
 *       Deep merge into a NEW table (neither argument changes): nested
 *       tables merge key by key; sequences (arrays) and empty tables
 *       replace; a table with a `kind` replaces wholesale when its kind
 *       differs from the base's (lora over surgery is a new strategy), and
 *       so does a table with a `source` (images over synthetic data).
 *   sweep{...}, output_of "run", log_uniform, uniform, int_uniform, choice
 *       The sweep declaration and its values (lua/sweep.h).
 */
#ifndef ORCH_LUA_PRELUDE_H
#define ORCH_LUA_PRELUDE_H

#include <lua.h>

/*   unset
 *       A marker value: extend(base, { data = { image_size = unset } })
 *       removes data.image_size from the result (a nil in a table
 *       constructor is no value at all, so it cannot). Anywhere else the
 *       converter reads it as an absent field.
 */

/* Registers the prelude functions in the table at index g (the globals).
 * Raises on memory errors; call in protected mode. */
void dsl_prelude_open(lua_State *L, int g);

/* 1 if the table at idx is a non-empty sequence: its keys are exactly the
 * integers 1..n. Raw access only. */
int dsl_is_sequence(lua_State *L, int idx);

/* Pushes the merge of the values at b and o as extend() makes it: a copy
 * of o when either is no table or they do not merge. Raises on tables
 * nested too deep. */
void dsl_merge(lua_State *L, int b, int o);

/* Pushes a deep copy of the value at idx (tables with their metatables). */
void dsl_deep_copy(lua_State *L, int idx);

/* 1 if the value at idx is the `unset` marker. */
int dsl_is_unset(lua_State *L, int idx);

#endif
