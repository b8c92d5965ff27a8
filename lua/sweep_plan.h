/*
 * sweep_plan.h - what the two phases of a sweep's expansion share
 * (lua/sweep_read.c reads and counts, lua/sweep.c names, builds and
 * converts): the plan and the sweep file's locations.
 *
 * The plan has a C side (sw_plan: counts, keys in their order) and a Lua
 * side (a table in the registry, sw_push_plan): the sweep table, and the
 * lists the expansion reads (seeds, space, runs, after; then the grid's
 * values and labels and the random draws).
 */
#ifndef ORCH_LUA_SWEEP_PLAN_H
#define ORCH_LUA_SWEEP_PLAN_H

#include <stddef.h>
#include <stdint.h>

#include <lua.h>

#include "core/pipeline.h"
#include "lua/dsl_ctx.h"
#include "lua/locate.h"

#define SW_MAX_KEYS 16 /* grid keys, random.space keys */

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

/* lua_CFunction (light userdata sw_plan): runs the sweep file; for a sweep
 * (pl->is_sweep), unless pl->probe, checks its shape (keys, lists, seeds,
 * random, runs, the --set list against the grid) and counts its runs into
 * pl->n_runs from the lengths of its lists alone, refusing more than
 * ORCH_SWEEP_MAX_RUNS. Leaves the Lua side of the plan in the registry. */
int sw_read(lua_State *L);

/* Pushes the Lua side of the plan sw_read left. */
void sw_push_plan(lua_State *L);

/* The line of path in the sweep file itself (its own entries only), else
 * the line of its last top-level return, else 0. *index (may be NULL) gets
 * the entry's position (source order) or SIZE_MAX. */
int sw_line_at(const dsl_ctx *ctx, const sw_plan *pl, const char *path, size_t *index);
int sw_line(const dsl_ctx *ctx, const sw_plan *pl, const char *path);

/* Raises "SWEEPFILE:LINE: message" with the line of path. */
_Noreturn void sw_fail(lua_State *L, const sw_plan *pl, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* A short description of the value at idx for messages (3, string x, a
 * table). */
const char *sw_describe(lua_State *L, int idx, char *buf, size_t n);

/* snprintf whose truncation is intended (names and messages are cut to
 * their buffers). */
void sw_text(char *buf, size_t n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif
