/*
 * sweep_name.h - how a sweep writes values: in a point's name (short,
 * readable, safe in a run name) and in its overrides (as --set spells
 * them). Rules in docs/pipelines.md, "Sweeps".
 */
#ifndef ORCH_LUA_SWEEP_NAME_H
#define ORCH_LUA_SWEEP_NAME_H

#include <stddef.h>

#include <lua.h>

/* The value at idx as a --set value: 0.0003, 2, true, lora, "a b",
 * lora{alpha=8,rank=4} (keys sorted), {0.9,0.99}. Truncated with "..." to
 * fit buf[n]. */
void dsl_spell_value(lua_State *L, int idx, char *buf, size_t n);

/* x written short: the shorter of its shortest exact decimal and
 * exponent forms (0.001 -> 1e-3, 3e-4, 0.5, 100, 1e5); with digits > 0,
 * rounded to that many significant digits first. */
void dsl_short_number(double x, int digits, char *buf, size_t n);

/* The value at idx for a point's name: numbers short (digits as
 * dsl_short_number), integers and booleans as they are, strings with
 * every byte outside [A-Za-z0-9._+-] as '_', a strategy by its kind, a
 * list as its items joined by '_'. */
void dsl_name_value(lua_State *L, int idx, int digits, char *buf, size_t n);

/* The short name of a dotted key: its last component (optimizer.lr ->
 * lr); a list position joins the name before it (optimizer.betas.2 ->
 * betas2). */
void dsl_short_key(const char *key, char *buf, size_t n);

/* Pushes a table of the labels (strings) of the values of the list at idx
 * for key, as they appear in point names: short key and value (lr3e-4);
 * for strategies their kind, and when two share a kind, each option whose
 * value differs among them (lora-rank4, lora-rank8); output_of "x" as
 * from-x. digits as in dsl_name_value. */
void dsl_push_labels(lua_State *L, int idx, const char *key, int digits);

/* What the table at a changes from the table at b, as --set would spell
 * it: "strategy=lora{rank=4} optimizer.lr=0.0003" (paths sorted; a key of
 * b that a lacks is "KEY=nil"; tables of another kind, and lists, whole;
 * the top-level name left out). For an explicit run against the base. */
void dsl_spell_diff(lua_State *L, int a, int b, char *buf, size_t n);

#endif
