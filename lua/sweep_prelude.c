/* sweep_prelude.c - sweep{}, output_of and the distributions; see sweep.h. */
#include "lua/sweep.h"

#include <math.h>
#include <string.h>

#include <lauxlib.h>

#include "core/sweep.h"
#include "lua/prelude.h"

static const char sweep_key = 'S'; /* registry: the metatable of sweep{} tables */
static const char dist_key = 'D';  /* registry: the metatable of distributions */

static const char *const dist_names[] = {"uniform", "log_uniform", "int_uniform", "choice"};

/* 1 if the value at idx is a table whose metatable is the registry's key. */
static int marked(lua_State *L, int idx, const char *key)
{
    idx = lua_absindex(L, idx);
    if (lua_type(L, idx) != LUA_TTABLE || !lua_getmetatable(L, idx))
        return 0;
    lua_rawgetp(L, LUA_REGISTRYINDEX, key);
    int same = lua_rawequal(L, -1, -2);
    lua_pop(L, 2);
    return same;
}

int dsl_is_sweep(lua_State *L, int idx)
{
    return marked(L, idx, &sweep_key);
}

/* Sets the registry metatable key (made on first use) on the table on top. */
static void mark(lua_State *L, const char *key, const char *name)
{
    if (lua_rawgetp(L, LUA_REGISTRYINDEX, key) != LUA_TTABLE) {
        lua_pop(L, 1);
        lua_createtable(L, 0, 1);
        lua_pushstring(L, name);
        lua_setfield(L, -2, "__name");
        lua_pushvalue(L, -1);
        lua_rawsetp(L, LUA_REGISTRYINDEX, key);
    }
    lua_setmetatable(L, -2);
}

/* sweep { ... }: a marked shallow copy of its table. */
static int sweep_ctor(lua_State *L)
{
    if (lua_type(L, 1) != LUA_TTABLE)
        return luaL_error(L,
                          "sweep: expected a table, as in sweep { name = \"x\", base = base, "
                          "grid = { ... } } (got %s)",
                          luaL_typename(L, 1));
    lua_settop(L, 1);
    lua_newtable(L);
    lua_pushnil(L);
    while (lua_next(L, 1) != 0) {
        lua_pushvalue(L, -2);
        lua_insert(L, -2);
        lua_rawset(L, 2);
    }
    mark(L, &sweep_key, "sweep");
    return 1;
}

/* output_of "run": the text strategy.init holds for it. */
static int output_of(lua_State *L)
{
    if (lua_type(L, 1) != LUA_TSTRING || lua_rawlen(L, 1) == 0)
        return luaL_error(L, "output_of: expected the name of a run of the sweep, as in "
                             "output_of \"detach-best\"");
    const char *name = lua_tostring(L, 1);
    if (strlen(name) != lua_rawlen(L, 1) || strlen(name) >= ORCH_NAME_MAX)
        return luaL_error(L, "output_of: not a run name");
    lua_pushfstring(L, "%s%s", ORCH_OUTPUT_OF_PREFIX, name);
    return 1;
}

/* ------------------------------------------------------- distributions */

/* Pushes a new distribution table { dist = NAME, ... } (fields set by the
 * caller before mark). */
static void new_dist(lua_State *L, dsl_dist_kind kind)
{
    lua_createtable(L, 0, 3);
    lua_pushstring(L, dist_names[kind]);
    lua_setfield(L, -2, "dist");
}

/* lo and hi of NAME(lo, hi) as finite numbers with lo < hi. */
static void bounds(lua_State *L, const char *name, int integers, lua_Number *lo, lua_Number *hi)
{
    for (int i = 1; i <= 2; i++) {
        int ok = lua_type(L, i) == LUA_TNUMBER && isfinite(lua_tonumber(L, i));
        if (ok && integers && !lua_isinteger(L, i)) {
            lua_Number x = lua_tonumber(L, i);
            ok = x == floor(x) && fabs(x) < 0x1p53;
        }
        if (!ok)
            luaL_error(L, "%s(lo, hi): %s must be %s (got %s)", name, i == 1 ? "lo" : "hi",
                       integers ? "an integer" : "a finite number",
                       lua_type(L, i) == LUA_TNUMBER ? lua_pushfstring(L, "%f", lua_tonumber(L, i))
                                                     : luaL_typename(L, i));
    }
    *lo = lua_tonumber(L, 1);
    *hi = lua_tonumber(L, 2);
    if (!(*lo < *hi))
        luaL_error(L, "%s(lo, hi): lo must be less than hi (got %s, %s)", name,
                   luaL_tolstring(L, 1, NULL), luaL_tolstring(L, 2, NULL));
}

static int uniform(lua_State *L)
{
    lua_Number lo, hi;
    bounds(L, "uniform", 0, &lo, &hi);
    new_dist(L, DSL_DIST_UNIFORM);
    lua_pushnumber(L, lo);
    lua_setfield(L, -2, "lo");
    lua_pushnumber(L, hi);
    lua_setfield(L, -2, "hi");
    mark(L, &dist_key, "distribution");
    return 1;
}

static int log_uniform(lua_State *L)
{
    lua_Number lo, hi;
    bounds(L, "log_uniform", 0, &lo, &hi);
    if (!(lo > 0))
        return luaL_error(L, "log_uniform(lo, hi): lo must be > 0 (got %s)",
                          luaL_tolstring(L, 1, NULL));
    new_dist(L, DSL_DIST_LOG_UNIFORM);
    lua_pushnumber(L, lo);
    lua_setfield(L, -2, "lo");
    lua_pushnumber(L, hi);
    lua_setfield(L, -2, "hi");
    mark(L, &dist_key, "distribution");
    return 1;
}

static int int_uniform(lua_State *L)
{
    lua_Number lo, hi;
    bounds(L, "int_uniform", 1, &lo, &hi);
    new_dist(L, DSL_DIST_INT_UNIFORM);
    lua_pushinteger(L, (lua_Integer)lo);
    lua_setfield(L, -2, "lo");
    lua_pushinteger(L, (lua_Integer)hi);
    lua_setfield(L, -2, "hi");
    mark(L, &dist_key, "distribution");
    return 1;
}

static int choice(lua_State *L)
{
    if (lua_type(L, 1) != LUA_TTABLE || !dsl_is_sequence(L, 1))
        return luaL_error(L, "choice { v1, v2, ... }: expected a non-empty list of values%s",
                          lua_type(L, 1) == LUA_TTABLE ? " (got an empty or keyed table)" : "");
    new_dist(L, DSL_DIST_CHOICE);
    lua_pushvalue(L, 1);
    lua_setfield(L, -2, "values");
    mark(L, &dist_key, "distribution");
    return 1;
}

dsl_dist_kind dsl_dist_of(lua_State *L, int idx)
{
    idx = lua_absindex(L, idx);
    if (!marked(L, idx, &dist_key))
        return DSL_DIST_NONE;
    lua_pushliteral(L, "dist");
    lua_rawget(L, idx);
    const char *name = lua_tostring(L, -1);
    dsl_dist_kind kind = DSL_DIST_NONE;
    for (int k = 0; name != NULL && k < 4; k++)
        if (strcmp(name, dist_names[k]) == 0)
            kind = (dsl_dist_kind)k;
    lua_pop(L, 1);
    return kind;
}

int dsl_dist_is_real(lua_State *L, int idx)
{
    dsl_dist_kind k = dsl_dist_of(L, idx);
    return k == DSL_DIST_UNIFORM || k == DSL_DIST_LOG_UNIFORM;
}

/* splitmix64 (Steele, Lea, Flood 2014): one 64-bit value per call. */
static uint64_t next_u64(uint64_t *state)
{
    uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* A uniform double in [0, 1) from the top 53 bits. */
static double next_unit(uint64_t *state)
{
    return (double)(next_u64(state) >> 11) * 0x1.0p-53;
}

/* A uniform integer in [0, n) (n > 0), by Lemire's multiply-shift. */
static uint64_t next_below(uint64_t *state, uint64_t n)
{
    return (uint64_t)(((unsigned __int128)next_u64(state) * n) >> 64);
}

void dsl_dist_draw(lua_State *L, int idx, uint64_t *state, int *index)
{
    idx = lua_absindex(L, idx);
    dsl_dist_kind kind = dsl_dist_of(L, idx);
    *index = 0;
    if (kind == DSL_DIST_CHOICE) {
        lua_pushliteral(L, "values");
        lua_rawget(L, idx);
        lua_Unsigned n = lua_rawlen(L, -1);
        *index = (int)next_below(state, n) + 1;
        lua_rawgeti(L, -1, *index);
        lua_remove(L, -2);
        return;
    }
    lua_pushliteral(L, "lo");
    lua_rawget(L, idx);
    lua_pushliteral(L, "hi");
    lua_rawget(L, idx);
    if (kind == DSL_DIST_INT_UNIFORM) {
        lua_Integer lo = lua_tointeger(L, -2), hi = lua_tointeger(L, -1);
        lua_pop(L, 2);
        uint64_t span = (uint64_t)hi - (uint64_t)lo + 1; /* 0: the whole 64-bit range */
        uint64_t r = span == 0 ? next_u64(state) : next_below(state, span);
        lua_pushinteger(L, (lua_Integer)((uint64_t)lo + r));
        return;
    }
    double lo = lua_tonumber(L, -2), hi = lua_tonumber(L, -1);
    lua_pop(L, 2);
    double u = next_unit(state), v;
    if (kind == DSL_DIST_LOG_UNIFORM)
        v = exp(log(lo) + u * (log(hi) - log(lo)));
    else
        v = lo + u * (hi - lo);
    if (v >= hi) /* rounding; the interval is [lo, hi) */
        v = nextafter(hi, lo);
    lua_pushnumber(L, v);
}

void dsl_sweep_prelude_open(lua_State *L, int g)
{
    static const luaL_Reg fns[] = {{"sweep", sweep_ctor},
                                   {"output_of", output_of},
                                   {"uniform", uniform},
                                   {"log_uniform", log_uniform},
                                   {"int_uniform", int_uniform},
                                   {"choice", choice},
                                   {NULL, NULL}};
    g = lua_absindex(L, g);
    for (const luaL_Reg *f = fns; f->name != NULL; f++) {
        lua_pushcfunction(L, f->func);
        lua_setfield(L, g, f->name);
    }
}
