/*
 * sweep.h - the sweep declaration inside lua/: its prelude globals and the
 * markers they make. The expansion itself is orch_dsl_load_sweep (lua/dsl.h,
 * lua/sweep.c); the values a point's name is made of, lua/sweep_name.c.
 *
 *   sweep { name = , base = , grid = , seeds = , random = , runs = , after = }
 *       Returns a NEW table holding the same fields, marked as a sweep (its
 *       metatable), so orch_dsl_load can refuse it and orch_dsl_load_sweep
 *       expand it. Only a table is accepted; the fields are checked when
 *       the sweep is expanded, where the source locator gives their lines.
 *   output_of "run"
 *       The string ORCH_OUTPUT_OF_PREFIX .. "run": as strategy.init, the run
 *       starts from that run's final checkpoint (core/sweep.h).
 *   log_uniform(lo, hi), uniform(lo, hi), int_uniform(lo, hi), choice { ... }
 *       Distributions for random.space, checked when made (lo < hi, lo > 0
 *       for log_uniform, integers for int_uniform, a non-empty choice).
 */
#ifndef ORCH_LUA_SWEEP_H
#define ORCH_LUA_SWEEP_H

#include <stdint.h>

#include <lua.h>

/* Registers the globals above in the table at index g. */
void dsl_sweep_prelude_open(lua_State *L, int g);

/* 1 if the value at idx is a table made by sweep{}. */
int dsl_is_sweep(lua_State *L, int idx);

typedef enum dsl_dist_kind {
    DSL_DIST_NONE = -1,
    DSL_DIST_UNIFORM = 0,
    DSL_DIST_LOG_UNIFORM,
    DSL_DIST_INT_UNIFORM,
    DSL_DIST_CHOICE
} dsl_dist_kind;

/* The kind of the distribution at idx, DSL_DIST_NONE for any other value. */
dsl_dist_kind dsl_dist_of(lua_State *L, int idx);

/* Pushes one draw of the distribution at idx, taking what it needs from
 * the splitmix64 stream *state (the same state and distribution always
 * give the same value). *index gets the 1-based position of a choice's
 * value, 0 for the other kinds. */
void dsl_dist_draw(lua_State *L, int idx, uint64_t *state, int *index);

/* 1 if the draws of the distribution at idx are reals (uniform,
 * log_uniform): their names are written with 3 significant digits. */
int dsl_dist_is_real(lua_State *L, int idx);

#endif
