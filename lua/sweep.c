/*
 * sweep.c - orch_dsl_load_sweep and orch_dsl_file_is_sweep: a sweep file
 * expanded into its validated runs; see dsl.h and core/sweep.h.
 *
 * One sandboxed state for the whole expansion, in two protected phases
 * around the only allocation the caller owns:
 *   1. sw_read (sweep_read.c) runs the file, checks the declaration's
 *      shape (keys, lists, seeds, runs, after, the --set list against the
 *      grid) and counts the runs from the list lengths alone, so a grid of
 *      10^9 points is refused before anything is built;
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
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>

#include "core/pipeline_json.h"
#include "core/sweep.h"
#include "lua/convert.h"
#include "lua/dsl.h"
#include "lua/dsl_ctx.h"
#include "lua/overrides.h"
#include "lua/prelude.h"
#include "lua/sandbox.h"
#include "lua/suggest.h"
#include "lua/sweep.h"
#include "lua/sweep_name.h"
#include "lua/sweep_plan.h"

#define SW_GC_EVERY 16 /* points converted between full collections */

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
        sw_text(path, sizeof path, "%s[%lld]", pl->grid[0].entry, grid_index(pl, pt.g, 0) + 1);
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
    sw_text(r->point, sizeof r->point, "%s", name);
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
                sw_text(r->point, sizeof r->point, "%s", cand);
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
                sw_describe(L, idx, got, sizeof got));
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
            sw_text(label, sizeof label, "%s:%d: point %s: %s key '%s'", ctx->main_path,
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
    sw_push_plan(L);
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
            sw_text(pl->prefix, sizeof pl->prefix, "point %s (%s): ", r->point, r->overrides);
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

static int run(const char *path, sw_plan *pl, orch_sweep *out, orch_dsl_files *files, orch_err *err)
{
    dsl_ctx *ctx = dsl_ctx_new(path);
    if (ctx == NULL)
        return orch_seterr(err, ORCH_ENOMEM, "out of memory");
    ctx->files = files;
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
    return orch_dsl_load_sweep_recorded(path, sets, n_sets, out, NULL, err);
}

int orch_dsl_load_sweep_recorded(const char *path, const char *const *sets, int n_sets,
                                 orch_sweep *out, orch_dsl_files *files, orch_err *err)
{
    if (files != NULL)
        memset(files, 0, sizeof *files);
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
    rc = run(path, pl, out, files, err);
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
    rc = run(path, pl, &unused, NULL, err);
    if (rc == ORCH_OK)
        *is_sweep = pl->is_sweep;
    free(pl);
    return rc;
}
