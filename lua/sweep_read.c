/* sweep_read.c - the first phase of a sweep's expansion: running the file,
 * checking the declaration's shape and counting its runs; see sweep_plan.h. */
#include "lua/sweep_plan.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>

#include "core/pipeline_fields.h"
#include "core/sweep.h"
#include "lua/prelude.h"
#include "lua/require.h"
#include "lua/suggest.h"
#include "lua/sweep.h"
#include "lua/sweep_name.h"

static const char plan_key = 'P'; /* registry: the Lua side of the plan (a table) */

void sw_push_plan(lua_State *L)
{
    lua_rawgetp(L, LUA_REGISTRYINDEX, &plan_key);
}

void sw_text(char *buf, size_t n, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, n, fmt, ap);
    va_end(ap);
}

/* ------------------------------------------------------------ locations */

int sw_line_at(const dsl_ctx *ctx, const sw_plan *pl, const char *path, size_t *index)
{
    const dsl_locator *loc = &ctx->loc;
    if (index != NULL)
        *index = SIZE_MAX;
    for (size_t i = 0; i < loc->n_entries; i++)
        if (loc->entries[i].source == pl->main_source && strcmp(loc->entries[i].path, path) == 0) {
            if (index != NULL)
                *index = i;
            return loc->entries[i].line;
        }
    if (pl->main_source >= 0 && (size_t)pl->main_source < loc->n_sources)
        return loc->sources[pl->main_source].return_line;
    return 0;
}

int sw_line(const dsl_ctx *ctx, const sw_plan *pl, const char *path)
{
    return sw_line_at(ctx, pl, path, NULL);
}

/* Raises "SWEEPFILE:LINE: message" with the line of path. */
void sw_fail(lua_State *L, const sw_plan *pl, const char *path, const char *fmt, ...)
{
    dsl_ctx *ctx = dsl_ctx_get(L);
    char msg[ORCH_ERR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    int line = sw_line(ctx, pl, path);
    if (line > 0)
        lua_pushfstring(L, "%s:%d: %s", ctx->main_path, line, msg);
    else
        lua_pushfstring(L, "%s: %s", ctx->main_path, msg);
    lua_error(L);
    abort();
}

/* ------------------------------------------------------------- reading */

const char *sw_describe(lua_State *L, int idx, char *buf, size_t n)
{
    switch (lua_type(L, idx)) {
    case LUA_TNUMBER:
    case LUA_TSTRING:
    case LUA_TBOOLEAN:
        dsl_spell_value(L, idx, buf, n);
        if (lua_type(L, idx) == LUA_TSTRING) {
            char t[256];
            snprintf(t, sizeof t, "string %s", buf);
            sw_text(buf, n, "%s", t);
        }
        return buf;
    default:
        snprintf(buf, n, "%s", luaL_typename(L, idx));
        return buf;
    }
}

/* Checks a grid or random.space key: a dotted path --set accepts that names
 * a field (a list position only after a list field). Writes its locator
 * form into k->loc. */
static void check_key(lua_State *L, const sw_plan *pl, const char *what, sw_key *k)
{
    const char *key = k->key;
    char names[DSL_LOC_PATH_MAX] = "", loc[DSL_LOC_PATH_MAX] = "";
    int bad = key[0] == '\0', positions = 0;
    for (const char *p = key; *p != '\0' && !bad;) {
        const char *end = strchr(p, '.');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        int digits = len > 0, alnum = len > 0;
        for (size_t i = 0; i < len; i++) {
            digits &= p[i] >= '0' && p[i] <= '9';
            alnum &= (p[i] >= 'a' && p[i] <= 'z') || (p[i] >= 'A' && p[i] <= 'Z') ||
                     (p[i] >= '0' && p[i] <= '9') || p[i] == '_';
        }
        size_t nl = strlen(names), ll = strlen(loc);
        if (digits && p[0] != '0' && len <= 9 && nl > 0) {
            positions++;
            snprintf(loc + ll, sizeof loc - ll, "[%.*s]", (int)len, p);
        } else if (alnum && !digits && positions == 0) {
            snprintf(names + nl, sizeof names - nl, "%s%.*s", nl ? "." : "", (int)len, p);
            snprintf(loc + ll, sizeof loc - ll, "%s%.*s", ll ? "." : "", (int)len, p);
        } else {
            bad = 1;
        }
        if (end != NULL && end[1] == '\0')
            bad = 1;
        p = end ? end + 1 : p + len;
    }
    const orch_field *f = bad ? NULL : orch_field_find(names);
    int list = f != NULL && (f->type == ORCH_FIELD_STRING_LIST || f->type == ORCH_FIELD_INT_LIST ||
                             f->type == ORCH_FIELD_REAL_PAIR || f->type == ORCH_FIELD_INT_PAIR ||
                             f->type == ORCH_FIELD_GRIDS || f->type == ORCH_FIELD_FILE_LIST);
    if (f != NULL && (f->flags & ORCH_FIELDF_NO_DSL))
        f = NULL;
    if (f != NULL && strcmp(names, "name") == 0)
        sw_fail(L, pl, k->entry,
                "%s key 'name': a run's name is made by the sweep (docs/pipelines.md, Sweeps)",
                what);
    if (f != NULL && (positions == 0 || list)) {
        snprintf(k->loc, sizeof k->loc, "%s", loc);
        return;
    }
    const char *paths[512];
    size_t n = 0;
    for (size_t i = 0; i < orch_fields_count && n < 512; i++)
        if (!(orch_fields[i].flags & ORCH_FIELDF_NO_DSL))
            paths[n++] = orch_fields[i].path;
    const char *near = dsl_nearest(key, paths, n);
    if (near != NULL)
        sw_fail(L, pl, k->entry, "%s key '%s' is not a field of a pipeline (did you mean '%s'?)",
                what, key, near);
    sw_fail(L, pl, k->entry,
            "%s key '%s' is not a field of a pipeline (keys are the dotted paths --set takes, "
            "e.g. optimizer.lr or strategy)",
            what, key);
}

static int cmp_order(const void *a, const void *b)
{
    const sw_key *x = a, *y = b;
    if (x->order != y->order)
        return x->order < y->order ? -1 : 1;
    return strcmp(x->key, y->key);
}

static int cmp_name(const void *a, const void *b)
{
    return strcmp(((const sw_key *)a)->key, ((const sw_key *)b)->key);
}

/* Reads the keys of the table at t (grid or random.space) into keys. */
static int read_keys(lua_State *L, sw_plan *pl, int t, const char *what, sw_key *keys)
{
    dsl_ctx *ctx = dsl_ctx_get(L);
    int n = 0;
    lua_pushnil(L);
    while (lua_next(L, t) != 0) {
        lua_pop(L, 1);
        if (lua_type(L, -1) != LUA_TSTRING) {
            char got[128];
            sw_fail(L, pl, what,
                    "%s has a value without a key (%s); write [\"optimizer.lr\"] = { ... }", what,
                    sw_describe(L, -1, got, sizeof got));
        }
        if (n == SW_MAX_KEYS)
            sw_fail(L, pl, what, "%s has more than %d keys", what, SW_MAX_KEYS);
        sw_key *k = &keys[n++];
        memset(k, 0, sizeof *k);
        snprintf(k->key, sizeof k->key, "%s", lua_tostring(L, -1));
        snprintf(k->entry, sizeof k->entry, "%s.%s", what, k->key);
        sw_line_at(ctx, pl, k->entry, &k->order);
        check_key(L, pl, what, k);
    }
    return n;
}

/* A value of the sweep table that must be a table when present. */
static int opt_table(lua_State *L, const sw_plan *pl, int sweep, const char *key,
                     const char *example)
{
    lua_pushstring(L, key);
    int type = lua_rawget(L, sweep);
    if (type == LUA_TNIL) {
        lua_pop(L, 1);
        return 0;
    }
    if (type != LUA_TTABLE || dsl_is_unset(L, -1)) {
        char got[128];
        sw_fail(L, pl, key, "%s must be a table like %s (got %s)", key, example,
                sw_describe(L, -1, got, sizeof got));
    }
    return lua_gettop(L);
}

/* An integer at idx in [lo, hi], or a one-line failure at path. */
static long long want_int(lua_State *L, const sw_plan *pl, int idx, const char *path,
                          const char *what, long long lo, long long hi)
{
    int ok = 0;
    lua_Integer v = 0;
    if (lua_type(L, idx) == LUA_TNUMBER)
        v = lua_tointegerx(L, idx, &ok);
    char got[128];
    if (!ok)
        sw_fail(L, pl, path, "%s must be an integer (got %s)", what,
                sw_describe(L, idx, got, sizeof got));
    if (v < lo || v > hi)
        sw_fail(L, pl, path, "%s must be between %lld and %lld (got %lld)", what, lo, hi,
                (long long)v);
    return v;
}

/* A multiplication of run counts that stays below 2^62, else -1. */
static long long mul(long long a, long long b)
{
    long long r;
    if (a < 0 || b < 0 || __builtin_mul_overflow(a, b, &r) || r > (1LL << 62))
        return -1;
    return r;
}

static long long add(long long a, long long b)
{
    return a < 0 || b < 0 || a + b > (1LL << 62) ? -1 : a + b;
}

/* 1 if a --set of key would change what grid key g sets: the same key, an
 * ancestor of it, or strategy.kind for a grid of strategies. */
static int set_overlaps(const char *key, size_t len, const char *g)
{
    if (strlen(g) == len && strncmp(key, g, len) == 0)
        return 1;
    if (strncmp(g, key, len) == 0 && g[len] == '.')
        return 1;
    return strcmp(g, "strategy") == 0 && len == 13 && strncmp(key, "strategy.kind", 13) == 0;
}

/* Refuses a --set of a key the grid, random.space or seeds also set. */
static void check_sets(lua_State *L, const sw_plan *pl)
{
    for (int i = 0; i < pl->n_sets; i++) {
        const char *arg = pl->sets[i];
        const char *eq = strchr(arg, '=');
        size_t len = eq ? (size_t)(eq - arg) : strlen(arg);
        for (int s = 0; s < 2; s++) {
            const sw_key *keys = s == 0 ? pl->grid : pl->space;
            int n = s == 0 ? pl->n_grid : pl->n_space;
            for (int k = 0; k < n; k++)
                if (set_overlaps(arg, len, keys[k].key)) {
                    dsl_ctx *ctx = dsl_ctx_get(L);
                    luaL_error(L,
                               "--set %s: the sweep's %s also sets %s (%s:%d); a --set of it "
                               "would be ambiguous",
                               arg, s == 0 ? "grid" : "random.space", keys[k].key, ctx->main_path,
                               sw_line(ctx, pl, keys[k].entry));
                }
        }
        if (pl->n_seeds > 0 && len == 4 && strncmp(arg, "seed", 4) == 0) {
            dsl_ctx *ctx = dsl_ctx_get(L);
            luaL_error(L,
                       "--set %s: the sweep's seeds also set seed (%s:%d); a --set of it would "
                       "be ambiguous",
                       arg, ctx->main_path, sw_line(ctx, pl, "seeds"));
        }
    }
}

/* Checks one pipeline table of the sweep (base, runs[i]). */
static void check_pipeline(lua_State *L, const sw_plan *pl, int idx, const char *path)
{
    char got[128];
    if (lua_type(L, idx) != LUA_TTABLE || dsl_is_unset(L, idx))
        sw_fail(L, pl, path, "%s must be a pipeline table, e.g. extend(base, { ... }) (got %s)",
                path, sw_describe(L, idx, got, sizeof got));
    if (dsl_is_sweep(L, idx))
        sw_fail(L, pl, path, "%s is a sweep; sweeps do not nest", path);
}

int sw_read(lua_State *L)
{
    sw_plan *pl = lua_touserdata(L, 1);
    dsl_ctx *ctx = dsl_ctx_get(L);
    lua_settop(L, 0);
    dsl_run_file(L, ctx->main_path);
    pl->is_sweep = dsl_is_sweep(L, 1);
    if (!pl->is_sweep || pl->probe)
        return 0;
    pl->main_source = -1;
    for (size_t i = 0; i < ctx->loc.n_sources && pl->main_source < 0; i++)
        if (!ctx->loc.sources[i].is_set && strcmp(ctx->loc.sources[i].name, ctx->main_path) == 0)
            pl->main_source = (int)i;
    lua_gc(L, LUA_GCSTOP); /* as orch_dsl_load: no collection while C reads */
    const int sweep = 1;
    char got[128];

    static const char *const valid[] = {"name", "base", "grid", "seeds", "random", "runs", "after"};
    lua_pushnil(L);
    while (lua_next(L, sweep) != 0) {
        lua_pop(L, 1);
        const char *key = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : NULL;
        size_t i = 0;
        while (key != NULL && i < 7 && strcmp(key, valid[i]) != 0)
            i++;
        if (key == NULL)
            sw_fail(L, pl, "",
                    "the sweep has a value without a key (%s); keys: name, base, "
                    "grid, seeds, random, runs, after",
                    sw_describe(L, -1, got, sizeof got));
        if (i == 7) {
            const char *near = dsl_nearest(key, valid, 7);
            if (near != NULL)
                sw_fail(L, pl, key, "unknown key '%s' of the sweep (did you mean '%s'?)", key,
                        near);
            sw_fail(L, pl, key,
                    "unknown key '%s' of the sweep (keys: name, base, grid, seeds, random, runs, "
                    "after)",
                    key);
        }
    }

    /* name: the sweep's, else the file's base name */
    lua_pushliteral(L, "name");
    if (lua_rawget(L, sweep) != LUA_TNIL) {
        size_t len = 0;
        const char *s = lua_type(L, -1) == LUA_TSTRING ? lua_tolstring(L, -1, &len) : NULL;
        if (s == NULL)
            sw_fail(L, pl, "name", "name must be a string (got %s)",
                    sw_describe(L, -1, got, sizeof got));
        snprintf(pl->name, sizeof pl->name, "%s", s);
        if (len == 0 || len >= ORCH_NAME_MAX - 1)
            sw_fail(L, pl, "name", "name must be 1 to %d bytes (got %zu)", ORCH_NAME_MAX - 2, len);
    } else {
        const char *base = strrchr(ctx->main_path, '/');
        base = base ? base + 1 : ctx->main_path;
        size_t len = strlen(base);
        if (len > 4 && strcmp(base + len - 4, ".lua") == 0)
            len -= 4;
        if (len >= ORCH_NAME_MAX - 1)
            len = ORCH_NAME_MAX - 2;
        snprintf(pl->name, sizeof pl->name, "%.*s", (int)len, base);
    }
    lua_pop(L, 1);
    for (const char *p = pl->name; *p != '\0'; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              strchr("._+-", *p) != NULL))
            sw_fail(L, pl, "name",
                    "the sweep's name '%s' may hold only letters, digits and . _ + - (it "
                    "starts every run's name, \"%s/<point>\"); give name = \"...\"",
                    pl->name, pl->name);

    lua_newtable(L); /* the plan table, at 2 */
    int plan = lua_gettop(L);
    lua_pushvalue(L, sweep);
    lua_setfield(L, plan, "sweep");

    lua_pushliteral(L, "base");
    if (lua_rawget(L, sweep) != LUA_TNIL) {
        check_pipeline(L, pl, -1, "base");
        pl->has_base = 1;
    }
    lua_pop(L, 1);

    /* grid */
    int grid = opt_table(L, pl, sweep, "grid", "{ [\"optimizer.lr\"] = { 1e-3, 3e-4 } }");
    if (grid) {
        pl->n_grid = read_keys(L, pl, grid, "grid", pl->grid);
        if (pl->n_grid == 0)
            sw_fail(L, pl, "grid", "grid is empty; give each key a list of values");
        qsort(pl->grid, (size_t)pl->n_grid, sizeof pl->grid[0], cmp_order);
        pl->n_grid_points = 1;
        for (int k = 0; k < pl->n_grid; k++) {
            sw_key *key = &pl->grid[k];
            lua_pushstring(L, key->key);
            lua_rawget(L, grid);
            if (lua_type(L, -1) != LUA_TTABLE || dsl_is_unset(L, -1) ||
                dsl_dist_of(L, -1) != DSL_DIST_NONE)
                sw_fail(L, pl, key->entry,
                        "grid[\"%s\"] must be a list of values, e.g. { 1e-3, 3e-4 } (got %s)",
                        key->key, sw_describe(L, -1, got, sizeof got));
            key->n = (long long)lua_rawlen(L, -1);
            if (key->n == 0 || !dsl_is_sequence(L, -1))
                sw_fail(L, pl, key->entry,
                        "grid[\"%s\"] is %s; give a non-empty list of values, e.g. { 1e-3, "
                        "3e-4 }",
                        key->key, key->n == 0 ? "an empty list" : "not a list");
            lua_pop(L, 1);
            pl->n_grid_points = mul(pl->n_grid_points, key->n);
        }
        lua_pop(L, 1);
    }

    /* seeds */
    int seeds = opt_table(L, pl, sweep, "seeds", "{ 1, 2, 3 }");
    if (seeds) {
        pl->n_seeds = (long long)lua_rawlen(L, seeds);
        if (pl->n_seeds == 0 || !dsl_is_sequence(L, seeds))
            sw_fail(L, pl, "seeds", "seeds must be a non-empty list of integers, e.g. { 1, 2, 3 }");
        for (long long i = 1; i <= pl->n_seeds; i++) {
            char path[64];
            snprintf(path, sizeof path, "seeds[%lld]", i);
            lua_rawgeti(L, seeds, i);
            long long v = want_int(L, pl, -1, path, path, 0, INT64_MAX);
            lua_pop(L, 1);
            for (long long j = 1; j < i; j++) {
                lua_rawgeti(L, seeds, j);
                int same = lua_tointeger(L, -1) == v;
                lua_pop(L, 1);
                if (same)
                    sw_fail(L, pl, path, "seeds lists %lld twice (seeds[%lld] and %s)", v, j, path);
            }
        }
        for (int k = 0; k < pl->n_grid; k++)
            if (strcmp(pl->grid[k].key, "seed") == 0)
                sw_fail(L, pl, pl->grid[k].entry,
                        "grid key 'seed' and seeds both set the seed; give one of them");
        lua_setfield(L, plan, "seeds");
    }

    /* random */
    int random = opt_table(L, pl, sweep, "random",
                           "{ n = 16, space = { [\"optimizer.lr\"] = log_uniform(1e-5, 1e-2) }, "
                           "seed = 7 }");
    if (random) {
        lua_pushnil(L);
        while (lua_next(L, random) != 0) {
            lua_pop(L, 1);
            const char *k = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : "";
            if (strcmp(k, "n") != 0 && strcmp(k, "space") != 0 && strcmp(k, "seed") != 0)
                sw_fail(L, pl, "random", "unknown key '%s' of random (keys: n, space, seed)",
                        k[0] ? k : sw_describe(L, -1, got, sizeof got));
        }
        lua_pushliteral(L, "n");
        lua_rawget(L, random);
        if (lua_isnil(L, -1))
            sw_fail(L, pl, "random", "random.n is required (the number of draws)");
        pl->n_draws = want_int(L, pl, -1, "random.n", "random.n", 1, ORCH_SWEEP_MAX_RUNS);
        lua_pop(L, 1);
        lua_pushliteral(L, "seed");
        lua_rawget(L, random);
        if (!lua_isnil(L, -1))
            pl->rng_seed =
                (uint64_t)want_int(L, pl, -1, "random.seed", "random.seed", 0, INT64_MAX);
        lua_pop(L, 1);
        lua_pushliteral(L, "space");
        lua_rawget(L, random);
        if (lua_type(L, -1) != LUA_TTABLE)
            sw_fail(L, pl, "random",
                    "random.space must be a table of distributions, e.g. { [\"optimizer.lr\"] = "
                    "log_uniform(1e-5, 1e-2) } (got %s)",
                    sw_describe(L, -1, got, sizeof got));
        int space = lua_gettop(L);
        pl->n_space = read_keys(L, pl, space, "random.space", pl->space);
        if (pl->n_space == 0)
            sw_fail(L, pl, "random", "random.space is empty");
        /* draws take the keys in alphabetical order: source order cannot be
         * relied on (a space may be built by code) and draws must not move */
        qsort(pl->space, (size_t)pl->n_space, sizeof pl->space[0], cmp_name);
        for (int k = 0; k < pl->n_space; k++) {
            lua_pushstring(L, pl->space[k].key);
            lua_rawget(L, space);
            if (dsl_dist_of(L, -1) == DSL_DIST_NONE)
                sw_fail(L, pl, pl->space[k].entry,
                        "random.space[\"%s\"] must be a distribution: log_uniform(lo, hi), "
                        "uniform(lo, hi), int_uniform(lo, hi) or choice { ... } (got %s)",
                        pl->space[k].key, sw_describe(L, -1, got, sizeof got));
            lua_pop(L, 1);
        }
        lua_setfield(L, plan, "space");
        lua_pop(L, 1);
    }

    /* runs */
    int runs = opt_table(L, pl, sweep, "runs", "{ extend(base, { ... }), ... }");
    if (runs) {
        pl->n_explicit = (long long)lua_rawlen(L, runs);
        if (pl->n_explicit == 0 || !dsl_is_sequence(L, runs))
            sw_fail(L, pl, "runs",
                    "runs must be a non-empty list of pipelines, e.g. { "
                    "extend(base, { name = \"x\", ... }) }");
        /* a list longer than a sweep may be is refused below by the count */
        for (long long i = 1; i <= pl->n_explicit && i <= ORCH_SWEEP_MAX_RUNS; i++) {
            char path[64];
            snprintf(path, sizeof path, "runs[%lld]", i);
            lua_rawgeti(L, runs, i);
            check_pipeline(L, pl, -1, path);
            lua_pop(L, 1);
        }
        lua_setfield(L, plan, "runs");
    }

    int after = opt_table(L, pl, sweep, "after", "{ [\"lora-warm\"] = \"detach-best\" }");
    if (after)
        lua_setfield(L, plan, "after");

    if (pl->n_grid == 0 && pl->n_draws == 0 && pl->n_explicit == 0)
        sw_fail(L, pl, "", "the sweep declares no runs: give grid, random or runs");
    if ((pl->n_grid > 0 || pl->n_draws > 0) && !pl->has_base)
        sw_fail(L, pl, pl->n_grid > 0 ? "grid" : "random",
                "base is required with %s: the pipeline every point starts from",
                pl->n_grid > 0 ? "grid" : "random");
    check_sets(L, pl);

    long long per = pl->n_seeds > 0 ? pl->n_seeds : 1;
    long long total = add(add(mul(pl->n_grid_points, per), mul(pl->n_draws, per)), pl->n_explicit);
    const char *at = pl->n_grid > 0 ? "grid" : pl->n_draws > 0 ? "random" : "runs";
    if (total < 0)
        sw_fail(L, pl, at, "the sweep has more than 2^62 runs; at most %d (ORCH_SWEEP_MAX_RUNS)",
                ORCH_SWEEP_MAX_RUNS);
    if (total > ORCH_SWEEP_MAX_RUNS)
        sw_fail(L, pl, at, "the sweep has %lld runs; at most %d (ORCH_SWEEP_MAX_RUNS)", total,
                ORCH_SWEEP_MAX_RUNS);
    pl->n_runs = total;
    lua_pushvalue(L, plan);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &plan_key);
    return 0;
}
