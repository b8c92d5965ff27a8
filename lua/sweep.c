/*
 * sweep.c - orch_dsl_load_sweep and orch_dsl_file_is_sweep: a sweep file
 * expanded into its validated runs; see dsl.h and core/sweep.h.
 *
 * One sandboxed state for the whole expansion, in two protected phases
 * around the only allocation the caller owns:
 *   1. sw_read runs the file, checks the declaration's shape (keys, lists,
 *      seeds, runs, after, the --set list against the grid) and counts the
 *      runs from the list lengths alone, so a grid of 10^9 points is
 *      refused before anything is built;
 *   2. the C side allocates the runs (orch_sweep owns them from there);
 *   3. sw_expand names every point (names first, so output_of and `after`
 *      can refer to any run), then builds each point's table (a copy of the
 *      base with the grid's or the draw's values set as --set would, the
 *      seed, then the --set list), converts and validates it with
 *      dsl_convert, exactly as orch_dsl_load converts a pipeline.
 * Every message is one line with the sweep file's line; a point's
 * conversion errors name the point and its overrides.
 */
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>

#include "core/pipeline_fields.h"
#include "core/pipeline_json.h"
#include "core/sweep.h"
#include "lua/convert.h"
#include "lua/dsl.h"
#include "lua/dsl_ctx.h"
#include "lua/overrides.h"
#include "lua/prelude.h"
#include "lua/require.h"
#include "lua/sandbox.h"
#include "lua/suggest.h"
#include "lua/sweep.h"
#include "lua/sweep_name.h"

#define SW_MAX_KEYS 16 /* grid keys, random.space keys */
#define SW_GC_EVERY 16 /* points converted between full collections */

static const char plan_key = 'P'; /* registry: the Lua side of the plan (a table) */

typedef struct sw_key {
    char key[DSL_LOC_PATH_MAX];        /* as written: "optimizer.lr", "optimizer.betas.2" */
    char loc[DSL_LOC_PATH_MAX];        /* the locator's form: "optimizer.betas[2]" */
    char entry[DSL_LOC_PATH_MAX + 16]; /* its entry in the sweep file: "grid.optimizer.lr" */
    long long n;                       /* grid: values in its list */
    size_t order; /* index of its locator entry (source order); SIZE_MAX: none */
} sw_key;

typedef struct sw_plan {
    const char *const *sets;
    int n_sets;
    int probe;    /* orch_dsl_file_is_sweep: only tell */
    int is_sweep; /* the file returned sweep{} */
    int main_source;
    char name[ORCH_NAME_MAX];
    int has_base;
    int n_grid;
    sw_key grid[SW_MAX_KEYS];
    int n_space;
    sw_key space[SW_MAX_KEYS];
    long long n_seeds; /* 0: no seeds list */
    long long n_draws; /* random.n, 0 without random */
    uint64_t rng_seed; /* random.seed */
    long long n_explicit;
    long long n_grid_points; /* product of the grid's list lengths; 0 without a grid */
    long long n_runs;
    char prefix[ORCH_ERR_MSG_MAX]; /* ctx->point_prefix while a point converts */
} sw_plan;

/* snprintf whose truncation is intended (names and messages are cut to
 * their buffers). */
static void put_text(char *buf, size_t n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void put_text(char *buf, size_t n, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, n, fmt, ap);
    va_end(ap);
}

/* ------------------------------------------------------------ locations */

/* The line of path in the sweep file itself (its own entries only), else
 * the line of its last top-level return, else 0. *index gets the entry's
 * position (source order) or SIZE_MAX. */
static int sw_line_at(const dsl_ctx *ctx, const sw_plan *pl, const char *path, size_t *index)
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

static int sw_line(const dsl_ctx *ctx, const sw_plan *pl, const char *path)
{
    return sw_line_at(ctx, pl, path, NULL);
}

/* Raises "SWEEPFILE:LINE: message" with the line of path. */
static _Noreturn void sw_fail(lua_State *L, const sw_plan *pl, const char *path, const char *fmt,
                              ...) __attribute__((format(printf, 4, 5)));
static _Noreturn void sw_fail(lua_State *L, const sw_plan *pl, const char *path, const char *fmt,
                              ...)
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

/* A short description of the value at idx for messages. */
static const char *describe(lua_State *L, int idx, char *buf, size_t n)
{
    switch (lua_type(L, idx)) {
    case LUA_TNUMBER:
    case LUA_TSTRING:
    case LUA_TBOOLEAN:
        dsl_spell_value(L, idx, buf, n);
        if (lua_type(L, idx) == LUA_TSTRING) {
            char t[256];
            snprintf(t, sizeof t, "string %s", buf);
            put_text(buf, n, "%s", t);
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
                             f->type == ORCH_FIELD_GRIDS);
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
                    describe(L, -1, got, sizeof got));
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
                describe(L, -1, got, sizeof got));
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
                describe(L, idx, got, sizeof got));
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
                path, describe(L, idx, got, sizeof got));
    if (dsl_is_sweep(L, idx))
        sw_fail(L, pl, path, "%s is a sweep; sweeps do not nest", path);
}

/* lua_CFunction (light userdata sw_plan): runs the file; for a sweep,
 * checks its shape and counts its runs. Leaves the plan table in the
 * registry. */
static int sw_read(lua_State *L)
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
                    describe(L, -1, got, sizeof got));
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
                    describe(L, -1, got, sizeof got));
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
                        key->key, describe(L, -1, got, sizeof got));
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
                        k[0] ? k : describe(L, -1, got, sizeof got));
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
                    describe(L, -1, got, sizeof got));
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
                        pl->space[k].key, describe(L, -1, got, sizeof got));
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

/* ------------------------------------------------------------ expanding */

enum { PT_GRID, PT_RANDOM, PT_RUN };

typedef struct sw_point {
    int kind;
    long long g, d, e; /* grid point, draw, explicit run (0-based) */
    long long s;       /* seed index (0-based), -1 without seeds */
} sw_point;

static sw_point decode(const sw_plan *pl, long long i)
{
    sw_point pt = {PT_GRID, 0, 0, 0, -1};
    long long per = pl->n_seeds > 0 ? pl->n_seeds : 1;
    long long n_grid = pl->n_grid_points * per, n_random = pl->n_draws * per;
    if (i < n_grid) {
        pt.g = i / per;
        pt.s = pl->n_seeds > 0 ? i % per : -1;
    } else if (i < n_grid + n_random) {
        pt.kind = PT_RANDOM;
        pt.d = (i - n_grid) / per;
        pt.s = pl->n_seeds > 0 ? (i - n_grid) % per : -1;
    } else {
        pt.kind = PT_RUN;
        pt.e = i - n_grid - n_random;
    }
    return pt;
}

/* The value index (0-based) of grid key k at grid point g: row-major, the
 * last key varying fastest. */
static long long grid_index(const sw_plan *pl, long long g, int k)
{
    for (int j = pl->n_grid - 1; j > k; j--)
        g /= pl->grid[j].n;
    return g % pl->grid[k].n;
}

/* Pushes plan[field] (a table); plan is at index plan. */
static void plan_get(lua_State *L, int plan, const char *field)
{
    lua_pushstring(L, field);
    lua_rawget(L, plan);
}

/* Pushes t[i][j] of the table at index t. */
static void get2(lua_State *L, int t, long long i, long long j)
{
    lua_rawgeti(L, t, i);
    lua_rawgeti(L, -1, j);
    lua_remove(L, -2);
}

static long long seed_value(lua_State *L, int plan, long long s)
{
    plan_get(L, plan, "seeds");
    lua_rawgeti(L, -1, s + 1);
    long long v = lua_tointeger(L, -1);
    lua_pop(L, 2);
    return v;
}

/* Appends "-" (unless first) and text to buf[n]. */
static void add_part(char *buf, size_t n, const char *text)
{
    size_t len = strlen(buf);
    snprintf(buf + len, n - len, "%s%s", len ? "-" : "", text);
}

/* Appends " key=value" (spelled as --set) to buf[n]. */
static void add_override(lua_State *L, char *buf, size_t n, const char *key, int value)
{
    char v[1024];
    dsl_spell_value(L, value, v, sizeof v);
    size_t len = strlen(buf);
    snprintf(buf + len, n - len, "%s%s=%s", len ? " " : "", key, v);
}

/* Names run i (before suffixes), its overrides and line. */
static void describe_point(lua_State *L, sw_plan *pl, int plan, orch_sweep *out, long long i)
{
    dsl_ctx *ctx = dsl_ctx_get(L);
    orch_sweep_run *r = &out->runs[i];
    sw_point pt = decode(pl, i);
    char name[512] = "", path[DSL_LOC_PATH_MAX + 32];
    r->overrides[0] = '\0';
    if (pt.kind == PT_GRID) {
        plan_get(L, plan, "labels");
        plan_get(L, plan, "values");
        int labels = lua_gettop(L) - 1, values = lua_gettop(L);
        for (int pass = 0; pass < 2; pass++) /* the strategy first, then the others */
            for (int k = 0; k < pl->n_grid; k++) {
                int is_strategy = strcmp(pl->grid[k].key, "strategy") == 0 ||
                                  strcmp(pl->grid[k].key, "strategy.kind") == 0;
                if (pl->grid[k].n < 2 || is_strategy != (pass == 0))
                    continue;
                get2(L, labels, k + 1, grid_index(pl, pt.g, k) + 1);
                add_part(name, sizeof name, lua_tostring(L, -1));
                lua_pop(L, 1);
            }
        for (int k = 0; k < pl->n_grid; k++) {
            long long j = grid_index(pl, pt.g, k);
            get2(L, values, k + 1, j + 1);
            add_override(L, r->overrides, sizeof r->overrides, pl->grid[k].key, -1);
            lua_pop(L, 1);
        }
        lua_pop(L, 2);
        if (name[0] == '\0')
            snprintf(name, sizeof name, "base");
        put_text(path, sizeof path, "%s[%lld]", pl->grid[0].entry, grid_index(pl, pt.g, 0) + 1);
        size_t at;
        r->line = sw_line_at(ctx, pl, path, &at);
        if (at == SIZE_MAX)
            r->line = sw_line(ctx, pl, pl->grid[0].entry);
    } else if (pt.kind == PT_RANDOM) {
        plan_get(L, plan, "draw_labels");
        plan_get(L, plan, "draws");
        int labels = lua_gettop(L) - 1, draws = lua_gettop(L);
        for (int pass = 0; pass < 2; pass++)
            for (int k = 0; k < pl->n_space; k++) {
                int is_strategy = strcmp(pl->space[k].key, "strategy") == 0 ||
                                  strcmp(pl->space[k].key, "strategy.kind") == 0;
                if (is_strategy != (pass == 0))
                    continue;
                get2(L, labels, pt.d + 1, k + 1);
                add_part(name, sizeof name, lua_tostring(L, -1));
                lua_pop(L, 1);
            }
        for (int k = 0; k < pl->n_space; k++) {
            get2(L, draws, pt.d + 1, k + 1);
            add_override(L, r->overrides, sizeof r->overrides, pl->space[k].key, -1);
            lua_pop(L, 1);
        }
        lua_pop(L, 2);
        r->line = sw_line(ctx, pl, "random");
    } else {
        plan_get(L, plan, "runs");
        lua_rawgeti(L, -1, pt.e + 1);
        lua_pushliteral(L, "name");
        snprintf(path, sizeof path, "runs[%lld]", pt.e + 1);
        r->line = sw_line(ctx, pl, path);
        int named = lua_rawget(L, -2) == LUA_TSTRING;
        if (named && pl->has_base) { /* a name inherited from the base is no name */
            plan_get(L, plan, "sweep");
            lua_pushliteral(L, "base");
            lua_rawget(L, -2);
            lua_pushliteral(L, "name");
            lua_rawget(L, -2);
            named = !lua_rawequal(L, -1, -4);
            lua_pop(L, 3);
        }
        if (named) {
            snprintf(name, sizeof name, "%s", lua_tostring(L, -1));
            snprintf(path, sizeof path, "runs[%lld].name", pt.e + 1);
            for (const char *p = name; *p != '\0'; p++)
                if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
                      (*p >= '0' && *p <= '9') || strchr("._+-", *p) != NULL))
                    sw_fail(L, pl, path,
                            "runs[%lld].name '%s' may hold only letters, digits and . _ + - (it "
                            "is the run's point name, \"%s/%s\")",
                            pt.e + 1, name, pl->name, name);
            if (name[0] == '\0')
                sw_fail(L, pl, path, "runs[%lld].name is empty", pt.e + 1);
        } else {
            snprintf(name, sizeof name, "run%lld", pt.e + 1);
        }
        lua_pop(L, 1);
        if (pl->has_base) { /* what the run changes from the base */
            plan_get(L, plan, "sweep");
            lua_pushliteral(L, "base");
            lua_rawget(L, -2);
            dsl_spell_diff(L, -3, -1, r->overrides, sizeof r->overrides);
            lua_pop(L, 2);
        }
        lua_pop(L, 2);
    }
    if (pt.s >= 0) {
        long long seed = seed_value(L, plan, pt.s);
        char part[32];
        snprintf(part, sizeof part, "s%lld", seed);
        add_part(name, sizeof name, part);
        size_t len = strlen(r->overrides);
        snprintf(r->overrides + len, sizeof r->overrides - len, "%sseed=%lld", len ? " " : "",
                 seed);
    }
    if (strlen(pl->name) + 1 + strlen(name) >= ORCH_NAME_MAX) {
        snprintf(path, sizeof path, "runs[%lld]", pt.e + 1);
        lua_pushfstring(L,
                        "%s:%d: the run name '%s/%s' is longer than %d bytes; give the sweep "
                        "a shorter name%s",
                        ctx->main_path, r->line, pl->name, name, ORCH_NAME_MAX - 1,
                        pt.kind == PT_RUN ? " or the run a shorter name" : "");
        lua_error(L);
    }
    put_text(r->point, sizeof r->point, "%s", name);
}

/* 1 if point is taken by a run before i, or by an explicit run's own name. */
static int taken(const sw_plan *pl, const orch_sweep *out, long long i, const char *point)
{
    long long first_run = out->n_runs - pl->n_explicit;
    for (long long j = 0; j < out->n_runs; j++)
        if ((j < i || j >= first_run) && j != i && strcmp(out->runs[j].point, point) == 0)
            return 1;
    return 0;
}

/* Gives every run its point and full names, unique within the sweep:
 * explicit runs keep theirs (two alike are refused); a made name that is
 * taken gets "-2", "-3", ... */
static void name_points(lua_State *L, sw_plan *pl, int plan, orch_sweep *out)
{
    dsl_ctx *ctx = dsl_ctx_get(L);
    for (long long i = 0; i < out->n_runs; i++)
        describe_point(L, pl, plan, out, i);
    long long first_run = out->n_runs - pl->n_explicit;
    for (long long i = first_run; i < out->n_runs; i++)
        for (long long j = first_run; j < i; j++)
            if (strcmp(out->runs[i].point, out->runs[j].point) == 0) {
                lua_pushfstring(L, "%s:%d: runs[%d] and runs[%d] are both named '%s'",
                                ctx->main_path, out->runs[i].line, (int)(j - first_run + 1),
                                (int)(i - first_run + 1), out->runs[i].point);
                lua_error(L);
            }
    for (long long i = 0; i < first_run; i++) {
        orch_sweep_run *r = &out->runs[i];
        if (!taken(pl, out, i, r->point))
            continue;
        char base[ORCH_NAME_MAX];
        snprintf(base, sizeof base, "%s", r->point);
        for (int k = 2;; k++) {
            char cand[ORCH_NAME_MAX + 16];
            snprintf(cand, sizeof cand, "%s-%d", base, k);
            if (strlen(pl->name) + 1 + strlen(cand) >= ORCH_NAME_MAX) {
                lua_pushfstring(L,
                                "%s:%d: the run name '%s/%s' is longer than %d bytes; give "
                                "the sweep a shorter name",
                                ctx->main_path, r->line, pl->name, cand, ORCH_NAME_MAX - 1);
                lua_error(L);
            }
            if (!taken(pl, out, i, cand)) {
                put_text(r->point, sizeof r->point, "%s", cand);
                break;
            }
        }
    }
    for (long long i = 0; i < out->n_runs; i++) {
        orch_sweep_run *r = &out->runs[i];
        int len = snprintf(r->name, sizeof r->name, "%s/%s", pl->name, r->point);
        ORCH_ASSERT(len > 0 && (size_t)len < sizeof r->name);
    }
}

/* Records that run i waits for the run named full (deduplicated). */
static void add_dep(lua_State *L, const sw_plan *pl, orch_sweep *out, long long i, const char *full,
                    const char *path)
{
    orch_sweep_run *r = &out->runs[i];
    for (int k = 0; k < r->n_deps; k++)
        if (strcmp(r->deps[k], full) == 0)
            return;
    if (strcmp(r->name, full) == 0)
        sw_fail(L, pl, path, "run %s waits for itself", r->point);
    if (r->n_deps == ORCH_SWEEP_MAX_DEPS)
        sw_fail(L, pl, path, "run %s waits for more than %d runs (ORCH_SWEEP_MAX_DEPS)", r->point,
                ORCH_SWEEP_MAX_DEPS);
    snprintf(r->deps[r->n_deps++], ORCH_NAME_MAX, "%s", full);
}

/* The run named by the string at idx (point or full name), or a failure at
 * path. */
static int resolve(lua_State *L, const sw_plan *pl, const orch_sweep *out, int idx,
                   const char *path, const char *what)
{
    char got[128];
    if (lua_type(L, idx) != LUA_TSTRING)
        sw_fail(L, pl, path, "%s must be a run name (got %s)", what,
                describe(L, idx, got, sizeof got));
    const char *name = lua_tostring(L, idx);
    int r = orch_sweep_find(out, name);
    if (r >= 0)
        return r;
    const char *near = NULL;
    int best = 1 << 30;
    for (int k = 0; k < out->n_runs; k++) {
        int d = dsl_edit_distance(name, out->runs[k].point);
        if (d < best) {
            best = d;
            near = out->runs[k].point;
        }
    }
    int limit = (int)strlen(name) / 3 > 2 ? (int)strlen(name) / 3 : 2;
    if (near != NULL && best <= limit)
        sw_fail(L, pl, path, "%s: the sweep %s has no run '%s' (did you mean '%s'?)", what,
                pl->name, name, near);
    sw_fail(L, pl, path, "%s: the sweep %s has no run '%s'", what, pl->name, name);
}

/* after = { ["a"] = "b" } or { ["a"] = { "b", "c" } }: a waits for b (and c). */
static void read_after(lua_State *L, const sw_plan *pl, int plan, orch_sweep *out)
{
    plan_get(L, plan, "after");
    if (lua_isnil(L, -1)) {
        lua_pop(L, 1);
        return;
    }
    int after = lua_gettop(L);
    lua_pushnil(L);
    while (lua_next(L, after) != 0) {
        char path[DSL_LOC_PATH_MAX + 16];
        snprintf(path, sizeof path, "after.%s",
                 lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : "");
        if (lua_type(L, -2) != LUA_TSTRING)
            snprintf(path, sizeof path, "after");
        int waiter = resolve(L, pl, out, -2, path, "a key of after");
        if (lua_type(L, -1) == LUA_TTABLE && dsl_is_sequence(L, -1)) {
            lua_Unsigned n = lua_rawlen(L, -1);
            for (lua_Unsigned k = 1; k <= n; k++) {
                lua_rawgeti(L, -1, (lua_Integer)k);
                int dep = resolve(L, pl, out, -1, path, "a value of after");
                add_dep(L, pl, out, waiter, out->runs[dep].name, path);
                lua_pop(L, 1);
            }
        } else {
            int dep = resolve(L, pl, out, -1, path, "a value of after");
            add_dep(L, pl, out, waiter, out->runs[dep].name, path);
        }
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
}

/* Records in source src every entry of the sweep file under prefix (the
 * path itself or below it) again under to, with the rest of its path. */
static int map_entries(dsl_ctx *ctx, const sw_plan *pl, int src, const char *prefix, const char *to)
{
    size_t n = strlen(prefix), count = 0, end = ctx->loc.n_entries;
    for (size_t i = 0; i < end; i++) {
        const dsl_loc_entry *e = &ctx->loc.entries[i];
        if (e->source != pl->main_source || strncmp(e->path, prefix, n) != 0 ||
            (e->path[n] != '\0' && e->path[n] != '.' && e->path[n] != '['))
            continue;
        char mapped[DSL_LOC_PATH_MAX];
        const char *rest = e->path + n;
        if (to[0] == '\0' && rest[0] == '.')
            rest++;
        int len = snprintf(mapped, sizeof mapped, "%s%s", to, rest);
        if (len <= 0 || (size_t)len >= sizeof mapped)
            continue;
        int line = e->line;
        dsl_loc_add_entry(&ctx->loc, src, mapped, line);
        count++;
    }
    return (int)count;
}

/* Builds the table of run i on the top of the stack. */
static void build_point(lua_State *L, sw_plan *pl, int plan, const orch_sweep *out, long long i,
                        int src)
{
    dsl_ctx *ctx = dsl_ctx_get(L);
    sw_point pt = decode(pl, i);
    char label[ORCH_ERR_MSG_MAX], path[DSL_LOC_PATH_MAX + 32];
    if (pt.kind == PT_RUN) {
        plan_get(L, plan, "runs");
        lua_rawgeti(L, -1, pt.e + 1);
        dsl_deep_copy(L, -1);
        lua_replace(L, -3);
        lua_pop(L, 1);
        snprintf(path, sizeof path, "runs[%lld]", pt.e + 1);
        map_entries(ctx, pl, src, path, "");
    } else {
        plan_get(L, plan, "sweep");
        lua_pushliteral(L, "base");
        lua_rawget(L, -2);
        dsl_deep_copy(L, -1);
        lua_replace(L, -3);
        lua_pop(L, 1);
        int root = lua_gettop(L);
        const sw_key *keys = pt.kind == PT_GRID ? pl->grid : pl->space;
        int n = pt.kind == PT_GRID ? pl->n_grid : pl->n_space;
        plan_get(L, plan, pt.kind == PT_GRID ? "values" : "draws");
        int values = lua_gettop(L);
        for (int k = 0; k < n; k++) {
            long long j = pt.kind == PT_GRID ? grid_index(pl, pt.g, k) : 0;
            if (pt.kind == PT_GRID) {
                get2(L, values, k + 1, j + 1);
                snprintf(path, sizeof path, "%s[%lld]", keys[k].entry, j + 1);
            } else {
                get2(L, values, pt.d + 1, k + 1);
                snprintf(path, sizeof path, "%s", keys[k].entry);
            }
            if (map_entries(ctx, pl, src, path, keys[k].loc) == 0)
                dsl_loc_add_entry(&ctx->loc, src, keys[k].loc, sw_line(ctx, pl, keys[k].entry));
            put_text(label, sizeof label, "%s:%d: point %s: %s key '%s'", ctx->main_path,
                     sw_line(ctx, pl, path), out->runs[i].point,
                     pt.kind == PT_GRID ? "grid" : "random.space", keys[k].key);
            lua_pushcfunction(L, dsl_apply_value);
            lua_pushvalue(L, root);
            lua_pushlightuserdata(L, (void *)keys[k].key);
            lua_pushvalue(L, -4);
            lua_pushlightuserdata(L, label);
            lua_call(L, 4, 0);
            lua_pop(L, 1);
        }
        lua_pop(L, 1);
    }
    int root = lua_gettop(L);
    if (pt.s >= 0) {
        snprintf(path, sizeof path, "seeds[%lld]", pt.s + 1);
        dsl_loc_add_entry(&ctx->loc, src, "seed", sw_line(ctx, pl, path));
        lua_pushliteral(L, "seed");
        lua_pushinteger(L, seed_value(L, plan, pt.s));
        lua_rawset(L, root);
    }
    for (int k = 0; k < pl->n_sets; k++) {
        lua_pushcfunction(L, dsl_apply_set);
        lua_pushvalue(L, root);
        lua_pushlightuserdata(L, (void *)pl->sets[k]);
        lua_call(L, 2, 0);
    }
}

/* Computes the labels and values of the grid and the random draws into
 * the plan table. */
static void prepare_values(lua_State *L, sw_plan *pl, int plan)
{
    plan_get(L, plan, "sweep");
    int sweep = lua_gettop(L);
    if (pl->n_grid > 0) {
        lua_pushliteral(L, "grid");
        lua_rawget(L, sweep);
        int grid = lua_gettop(L);
        lua_createtable(L, pl->n_grid, 0);
        lua_createtable(L, pl->n_grid, 0);
        int labels = lua_gettop(L) - 1, values = lua_gettop(L);
        for (int k = 0; k < pl->n_grid; k++) {
            lua_pushstring(L, pl->grid[k].key);
            lua_rawget(L, grid);
            dsl_push_labels(L, -1, pl->grid[k].key, 0);
            lua_rawseti(L, labels, k + 1);
            lua_rawseti(L, values, k + 1);
        }
        lua_setfield(L, plan, "values");
        lua_setfield(L, plan, "labels");
        lua_pop(L, 1);
    }
    if (pl->n_draws > 0) {
        plan_get(L, plan, "space");
        int space = lua_gettop(L);
        /* the labels of each choice's values, as a grid list's */
        lua_createtable(L, pl->n_space, 0);
        int choice_labels = lua_gettop(L);
        for (int k = 0; k < pl->n_space; k++) {
            lua_pushstring(L, pl->space[k].key);
            lua_rawget(L, space);
            if (dsl_dist_of(L, -1) == DSL_DIST_CHOICE) {
                lua_pushliteral(L, "values");
                lua_rawget(L, -2);
                dsl_push_labels(L, -1, pl->space[k].key, 3);
                lua_rawseti(L, choice_labels, k + 1);
                lua_pop(L, 1);
            }
            lua_pop(L, 1);
        }
        lua_createtable(L, (int)pl->n_draws, 0);
        lua_createtable(L, (int)pl->n_draws, 0);
        int draws = lua_gettop(L) - 1, labels = lua_gettop(L);
        uint64_t state = pl->rng_seed;
        char short_key[128], v[256], text[512];
        for (long long d = 1; d <= pl->n_draws; d++) {
            lua_createtable(L, pl->n_space, 0);
            lua_createtable(L, pl->n_space, 0);
            int draw = lua_gettop(L) - 1, label = lua_gettop(L);
            for (int k = 0; k < pl->n_space; k++) {
                lua_pushstring(L, pl->space[k].key);
                lua_rawget(L, space);
                int dist = lua_gettop(L);
                int index = 0;
                dsl_dist_draw(L, dist, &state, &index);
                lua_pushvalue(L, -1);
                lua_rawseti(L, draw, k + 1);
                if (index > 0) {
                    get2(L, choice_labels, k + 1, index);
                } else {
                    dsl_short_key(pl->space[k].key, short_key, sizeof short_key);
                    dsl_name_value(L, -1, dsl_dist_is_real(L, dist) ? 3 : 0, v, sizeof v);
                    snprintf(text, sizeof text, "%s%s", short_key, v);
                    lua_pushstring(L, text);
                }
                lua_rawseti(L, label, k + 1);
                lua_pop(L, 2);
            }
            lua_rawseti(L, labels, d);
            lua_rawseti(L, draws, d);
        }
        lua_setfield(L, plan, "draw_labels");
        lua_setfield(L, plan, "draws");
        lua_pop(L, 2);
    }
    lua_pop(L, 1);
}

/* lua_CFunction (light userdata sw_plan, light userdata orch_sweep with
 * its runs allocated): names, converts and validates every run. */
static int sw_expand(lua_State *L)
{
    sw_plan *pl = lua_touserdata(L, 1);
    orch_sweep *out = lua_touserdata(L, 2);
    dsl_ctx *ctx = dsl_ctx_get(L);
    lua_settop(L, 0);
    lua_rawgetp(L, LUA_REGISTRYINDEX, &plan_key);
    int plan = 1;
    prepare_values(L, pl, plan);
    name_points(L, pl, plan, out);
    ctx->sweep = out;
    read_after(L, pl, plan, out);

    /* the base's own lines in the sweep file (base = extend(...) written
     * there) hold for every point */
    int base_src = dsl_loc_add_derived(&ctx->loc, ctx->main_path);
    map_entries(ctx, pl, base_src, "base", "");

    for (long long i = 0; i < out->n_runs; i++) {
        orch_sweep_run *r = &out->runs[i];
        dsl_loc_mark mark = dsl_loc_save(&ctx->loc);
        int src = dsl_loc_add_derived(&ctx->loc, ctx->main_path);
        build_point(L, pl, plan, out, i, src);
        if (r->overrides[0] != '\0')
            put_text(pl->prefix, sizeof pl->prefix, "point %s (%s): ", r->point, r->overrides);
        else
            snprintf(pl->prefix, sizeof pl->prefix, "point %s: ", r->point);
        ctx->point_prefix = pl->prefix;
        lua_pushcfunction(L, dsl_convert);
        lua_insert(L, -2);
        lua_pushlightuserdata(L, r->pipeline);
        lua_call(L, 2, 0);
        ctx->point_prefix = NULL;
        dsl_loc_rewind(&ctx->loc, mark);
        snprintf(r->pipeline->name, sizeof r->pipeline->name, "%s", r->name);
        const char *init = r->pipeline->strategy.init;
        size_t plen = strlen(ORCH_OUTPUT_OF_PREFIX);
        if (strncmp(init, ORCH_OUTPUT_OF_PREFIX, plen) == 0) {
            char path[64];
            snprintf(path, sizeof path, "runs[%lld]", decode(pl, i).e + 1);
            add_dep(L, pl, out, i, init + plen, decode(pl, i).kind == PT_RUN ? path : "grid");
        }
        lua_settop(L, plan);
        if ((i + 1) % SW_GC_EVERY == 0)
            lua_gc(L, LUA_GCCOLLECT);
    }
    return 0;
}

/* ------------------------------------------------------------ the doors */

/* sha256 over every run's name and config hash, in order ("NAME\tHASH\n"
 * per run). */
static int sweep_hash(orch_sweep *s)
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    if (md == NULL || EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1) {
        EVP_MD_CTX_free(md);
        return ORCH_ENOMEM;
    }
    int ok = 1;
    for (int i = 0; i < s->n_runs && ok; i++)
        ok = EVP_DigestUpdate(md, s->runs[i].name, strlen(s->runs[i].name)) == 1 &&
             EVP_DigestUpdate(md, "\t", 1) == 1 &&
             EVP_DigestUpdate(md, s->runs[i].config_hash, 64) == 1 &&
             EVP_DigestUpdate(md, "\n", 1) == 1;
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    ok = ok && EVP_DigestFinal_ex(md, digest, &len) == 1 && len == 32;
    EVP_MD_CTX_free(md);
    if (!ok)
        return ORCH_ENOMEM;
    for (unsigned int i = 0; i < len; i++)
        snprintf(s->hash + 2 * i, 3, "%02x", digest[i]);
    return ORCH_OK;
}

/* Runs sw_read and, unless probing, the rest; the state is closed by the caller. */
static int load_sweep_in_state(lua_State *L, dsl_ctx *ctx, sw_plan *pl, orch_sweep *out,
                               orch_err *err)
{
    int rc = dsl_open(L, ctx, err);
    if (rc != ORCH_OK)
        return rc;
    lua_pushcfunction(L, sw_read);
    lua_pushlightuserdata(L, pl);
    int status = dsl_pcall(L, 1, 0);
    if (status != LUA_OK)
        return dsl_failure(L, ctx, status, err);
    if (pl->probe)
        return ORCH_OK;
    if (!pl->is_sweep)
        return orch_seterr(err, ORCH_EINVAL,
                           "%s returns a pipeline, not a sweep; run it with `orch run %s`",
                           ctx->main_path, ctx->main_path);

    snprintf(out->name, sizeof out->name, "%s", pl->name);
    out->runs = calloc((size_t)pl->n_runs, sizeof *out->runs);
    if (out->runs == NULL)
        return orch_seterr(err, ORCH_ENOMEM, "out of memory");
    out->n_runs = (int)pl->n_runs;
    for (int i = 0; i < out->n_runs; i++) {
        out->runs[i].pipeline = calloc(1, sizeof *out->runs[i].pipeline);
        if (out->runs[i].pipeline == NULL)
            return orch_seterr(err, ORCH_ENOMEM, "out of memory");
    }

    lua_pushcfunction(L, sw_expand);
    lua_pushlightuserdata(L, pl);
    lua_pushlightuserdata(L, out);
    status = dsl_pcall(L, 2, 0);
    ctx->sweep = NULL;
    ctx->point_prefix = NULL;
    if (status != LUA_OK)
        return dsl_failure(L, ctx, status, err);

    for (int i = 0; i < out->n_runs; i++)
        if (orch_pipeline_hash(out->runs[i].pipeline, out->runs[i].config_hash) != ORCH_OK)
            return orch_seterr(err, ORCH_ENOMEM, "out of memory");
    if (sweep_hash(out) != ORCH_OK)
        return orch_seterr(err, ORCH_ENOMEM, "out of memory");
    return ORCH_OK;
}

/* The argument checks orch_dsl_load makes. */
static int check_args(const char *path, const char *const *sets, int n_sets, orch_err *err)
{
    if (path == NULL || path[0] == '\0')
        return orch_seterr(err, ORCH_EINVAL, "no sweep file given");
    if (strlen(path) >= ORCH_PATH_MAX)
        return orch_seterr(err, ORCH_EINVAL, "the sweep file's path is too long (at most %d bytes)",
                           ORCH_PATH_MAX - 1);
    if (n_sets < 0 || (n_sets > 0 && sets == NULL))
        return orch_seterr(err, ORCH_EINVAL, "bad --set list");
    for (int i = 0; i < n_sets; i++)
        if (sets[i] == NULL)
            return orch_seterr(err, ORCH_EINVAL, "bad --set list");
    return ORCH_OK;
}

static int run(const char *path, sw_plan *pl, orch_sweep *out, orch_err *err)
{
    dsl_ctx *ctx = dsl_ctx_new(path);
    if (ctx == NULL)
        return orch_seterr(err, ORCH_ENOMEM, "out of memory");
    int rc;
    lua_State *L = dsl_state_new(ctx);
    if (L == NULL) {
        rc = orch_seterr(err, ORCH_ENOMEM, "out of memory");
    } else {
        rc = load_sweep_in_state(L, ctx, pl, out, err);
        lua_close(L);
    }
    dsl_ctx_free(ctx);
    return rc;
}

int orch_dsl_load_sweep(const char *path, const char *const *sets, int n_sets, orch_sweep *out,
                        orch_err *err)
{
    orch_err_clear(err);
    if (out == NULL)
        return orch_seterr(err, ORCH_EINVAL, "no sweep to fill");
    memset(out, 0, sizeof *out);
    int rc = check_args(path, sets, n_sets, err);
    if (rc != ORCH_OK)
        return rc;
    sw_plan *pl = calloc(1, sizeof *pl);
    if (pl == NULL)
        return orch_seterr(err, ORCH_ENOMEM, "out of memory");
    pl->sets = sets;
    pl->n_sets = n_sets;
    snprintf(out->file, sizeof out->file, "%s", path);
    rc = run(path, pl, out, err);
    free(pl);
    if (rc != ORCH_OK)
        orch_sweep_free(out);
    return rc;
}

int orch_dsl_file_is_sweep(const char *path, int *is_sweep, orch_err *err)
{
    orch_err_clear(err);
    if (is_sweep != NULL)
        *is_sweep = 0;
    if (is_sweep == NULL)
        return orch_seterr(err, ORCH_EINVAL, "no result to fill");
    int rc = check_args(path, NULL, 0, err);
    if (rc != ORCH_OK)
        return rc;
    sw_plan *pl = calloc(1, sizeof *pl);
    if (pl == NULL)
        return orch_seterr(err, ORCH_ENOMEM, "out of memory");
    pl->probe = 1;
    orch_sweep unused;
    memset(&unused, 0, sizeof unused);
    rc = run(path, pl, &unused, err);
    if (rc == ORCH_OK)
        *is_sweep = pl->is_sweep;
    free(pl);
    return rc;
}
