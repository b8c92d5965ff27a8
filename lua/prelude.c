/* prelude.c - strategy constructors and extend(); see prelude.h. */
#include "lua/prelude.h"

#include <string.h>

#include <lauxlib.h>

#include "core/err.h"
#include "core/pipeline_fields.h"
#include "lua/literal.h"
#include "lua/sandbox.h"
#include "lua/sweep.h"

#define MAX_NESTING 64

static const char unset_key = 'U'; /* registry: the `unset` marker */

int dsl_is_unset(lua_State *L, int idx)
{
    if (lua_type(L, idx) != LUA_TTABLE)
        return 0;
    idx = lua_absindex(L, idx);
    lua_rawgetp(L, LUA_REGISTRYINDEX, &unset_key);
    int same = lua_rawequal(L, idx, -1);
    lua_pop(L, 1);
    return same;
}

static int unset_tostring(lua_State *L)
{
    lua_pushliteral(L, "unset");
    return 1;
}

static int unset_newindex(lua_State *L)
{
    return luaL_error(L, "unset is a marker for extend(), not a table");
}

/* Pushes a new `unset` marker and registers it. */
static void push_unset(lua_State *L)
{
    lua_newtable(L);
    lua_createtable(L, 0, 4);
    lua_pushcfunction(L, unset_tostring);
    lua_setfield(L, -2, "__tostring");
    lua_pushcfunction(L, unset_newindex);
    lua_setfield(L, -2, "__newindex");
    lua_pushliteral(L, "unset");
    lua_setfield(L, -2, "__name");
    lua_pushboolean(L, 0);
    lua_setfield(L, -2, "__metatable");
    lua_setmetatable(L, -2);
    lua_pushvalue(L, -1);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &unset_key);
}

int dsl_is_sequence(lua_State *L, int idx)
{
    idx = lua_absindex(L, idx);
    if (lua_type(L, idx) != LUA_TTABLE)
        return 0;
    lua_Unsigned n = lua_rawlen(L, idx);
    if (n == 0)
        return 0;
    lua_Unsigned count = 0;
    int ok = 1;
    lua_pushnil(L);
    while (lua_next(L, idx) != 0) {
        lua_pop(L, 1);
        if (!lua_isinteger(L, -1)) {
            ok = 0;
        } else {
            lua_Integer k = lua_tointeger(L, -1);
            if (k < 1 || (lua_Unsigned)k > n)
                ok = 0;
        }
        count++;
    }
    return ok && count == n;
}

/* ------------------------------------------------------- constructors */

/* Pushes a fresh table of the defaults of strategy kind: the options of
 * the kind that have a default in the field table. */
static void push_defaults(lua_State *L, const char *kind)
{
    const orch_field *kinds = orch_field_get("strategy.kind");
    unsigned bit = 0;
    for (size_t k = 0; k < kinds->n_names; k++)
        if (strcmp(kinds->names[k], kind) == 0)
            bit = 1u << k;
    ORCH_ASSERT(bit != 0);
    lua_newtable(L);
    for (size_t i = 0; i < orch_fields_count; i++) {
        const orch_field *f = &orch_fields[i];
        if (!orch_field_in(f, "strategy") || !(f->kinds & bit) || f->def == NULL)
            continue;
        dsl_push_default(L, f);
        lua_setfield(L, -2, orch_field_key(f));
    }
}

/* What the constructors share: leaves at index 2 a copy of the table of
 * options at index 1 (an empty one when absent) with key set to value,
 * which the caller may not set to anything else; what completes "expected
 * a table" in the message. Raises a Lua error on bad input. */
static void tagged_copy(lua_State *L, const char *key, const char *value, const char *what)
{
    int type = lua_type(L, 1);
    if (type == LUA_TNONE || type == LUA_TNIL) {
        lua_settop(L, 0);
        lua_newtable(L);
    } else if (type != LUA_TTABLE) {
        luaL_error(L, "%s: expected a table%s, as in %s { ... } (got %s)", value, what, value,
                   luaL_typename(L, 1));
    }
    lua_settop(L, 1);
    lua_newtable(L);
    lua_pushnil(L);
    while (lua_next(L, 1) != 0) {
        lua_pushvalue(L, -2);
        lua_insert(L, -2);
        lua_rawset(L, 2);
    }
    lua_pushstring(L, key);
    lua_rawget(L, 2);
    if (!lua_isnil(L, -1) &&
        (lua_type(L, -1) != LUA_TSTRING || strcmp(lua_tostring(L, -1), value) != 0))
        luaL_error(L, "%s: %s is set by the constructor; leave it out (got %s)", value, key,
                   lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : luaL_typename(L, -1));
    lua_pop(L, 1);
    lua_pushstring(L, value);
    lua_setfield(L, 2, key);
}

/* surgery{...} and friends; upvalue 1 is the kind. */
static int strategy_ctor(lua_State *L)
{
    const char *kind = lua_tostring(L, lua_upvalueindex(1));
    tagged_copy(L, "kind", kind, " of options");
    lua_createtable(L, 0, 1);
    push_defaults(L, kind);
    lua_setfield(L, -2, "__index");
    lua_setmetatable(L, 2);
    return 1;
}

/* images{...} and shards{...}; upvalue 1 is the source. A copy of the
 * table with source set: shards' patterns stay its positional entries,
 * where the locator has their lines (the converter reads them). */
static int data_ctor(lua_State *L)
{
    tagged_copy(L, "source", lua_tostring(L, lua_upvalueindex(1)), "");
    return 1;
}

/* ------------------------------------------------------------- extend */

/* Pushes a deep copy of the value at idx (tables copied with their
 * metatables; keys are not copied). */
static void deep_copy(lua_State *L, int idx, int depth)
{
    idx = lua_absindex(L, idx);
    if (lua_type(L, idx) != LUA_TTABLE || dsl_is_unset(L, idx)) {
        lua_pushvalue(L, idx);
        return;
    }
    if (depth > MAX_NESTING)
        luaL_error(L,
                   "extend: tables nested more than %d levels deep (a table that contains "
                   "itself?)",
                   MAX_NESTING);
    luaL_checkstack(L, 6, "extend: tables nested too deep");
    lua_newtable(L);
    int r = lua_gettop(L);
    lua_pushnil(L);
    while (lua_next(L, idx) != 0) {
        deep_copy(L, -1, depth + 1); /* key, value, copy */
        lua_pushvalue(L, -3);        /* key, value, copy, key */
        lua_insert(L, -2);           /* key, value, key, copy */
        lua_rawset(L, r);            /* key, value */
        lua_pop(L, 1);
    }
    if (lua_getmetatable(L, idx)) {
        dsl_check_metatable(L, -1);
        lua_setmetatable(L, r);
    }
}

/* 1 if the tables at b and o merge key by key (see prelude.h). */
static int mergeable(lua_State *L, int b, int o)
{
    if (dsl_is_sequence(L, b) || dsl_is_sequence(L, o))
        return 0;
    /* kind (strategy, optimizer) and data's source: another one is a new
     * table; a data table without a source is synthetic data */
    static const char *const kinds[] = {"kind", "source"};
    for (int i = 0; i < 2; i++) {
        lua_pushstring(L, kinds[i]);
        lua_rawget(L, b);
        lua_pushstring(L, kinds[i]);
        lua_rawget(L, o);
        if (i == 1 && lua_isnil(L, -2) && !lua_isnil(L, -1)) {
            lua_pushliteral(L, "synthetic");
            lua_replace(L, -3);
        }
        int same = lua_isnil(L, -1) || lua_isnil(L, -2) || lua_rawequal(L, -1, -2);
        lua_pop(L, 2);
        if (!same)
            return 0;
    }
    return 1;
}

/* Pushes the merge of the values at b and o. */
static void merge(lua_State *L, int b, int o, int depth)
{
    b = lua_absindex(L, b);
    o = lua_absindex(L, o);
    if (lua_type(L, b) != LUA_TTABLE || lua_type(L, o) != LUA_TTABLE || !mergeable(L, b, o)) {
        deep_copy(L, o, depth);
        return;
    }
    if (depth > MAX_NESTING)
        luaL_error(L,
                   "extend: tables nested more than %d levels deep (a table that contains "
                   "itself?)",
                   MAX_NESTING);
    luaL_checkstack(L, 8, "extend: tables nested too deep");
    deep_copy(L, b, depth);
    int r = lua_gettop(L);
    lua_pushnil(L);
    while (lua_next(L, o) != 0) {  /* key, value */
        if (dsl_is_unset(L, -1)) { /* remove the key */
            lua_pushvalue(L, -2);
            lua_pushnil(L);
            lua_rawset(L, r);
            lua_pop(L, 1);
            continue;
        }
        lua_pushvalue(L, -2);
        lua_rawget(L, r);            /* key, value, old */
        merge(L, -1, -2, depth + 1); /* key, value, old, merged */
        lua_remove(L, -2);           /* key, value, merged */
        lua_pushvalue(L, -3);        /* key, value, merged, key */
        lua_insert(L, -2);           /* key, value, key, merged */
        lua_rawset(L, r);            /* key, value */
        lua_pop(L, 1);
    }
    if (lua_getmetatable(L, o)) {
        dsl_check_metatable(L, -1);
        lua_setmetatable(L, r);
    }
}

void dsl_merge(lua_State *L, int b, int o)
{
    merge(L, b, o, 0);
}

void dsl_deep_copy(lua_State *L, int idx)
{
    deep_copy(L, idx, 0);
}

/* extend(base, overrides, ...): folds the overrides into a copy of base. */
static int extend(lua_State *L)
{
    int n = lua_gettop(L);
    if (lua_type(L, 1) != LUA_TTABLE)
        return luaL_error(L, "extend: the base must be a table (got %s)", luaL_typename(L, 1));
    if (n < 2)
        return luaL_error(L, "extend: expected extend(base, overrides)");
    for (int i = 2; i <= n; i++)
        if (lua_type(L, i) != LUA_TTABLE)
            return luaL_error(L, "extend: the overrides (argument %d) must be a table (got %s)", i,
                              luaL_typename(L, i));
    lua_pushvalue(L, 1);
    for (int i = 2; i <= n; i++) {
        merge(L, -1, i, 0);
        lua_remove(L, -2);
    }
    return 1;
}

void dsl_prelude_open(lua_State *L, int g)
{
    static const char *const kinds[] = {"surgery", "detach", "lora", "full"};
    g = lua_absindex(L, g);
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
        lua_pushstring(L, kinds[i]);
        lua_pushcclosure(L, strategy_ctor, 1);
        lua_setfield(L, g, kinds[i]);
    }
    static const char *const sources[] = {"images", "shards"};
    for (size_t i = 0; i < sizeof sources / sizeof sources[0]; i++) {
        lua_pushstring(L, sources[i]);
        lua_pushcclosure(L, data_ctor, 1);
        lua_setfield(L, g, sources[i]);
    }
    lua_pushcfunction(L, extend);
    lua_setfield(L, g, "extend");
    push_unset(L);
    lua_setfield(L, g, "unset");
    dsl_sweep_prelude_open(L, g);
}
