/* overrides.c - --set key.sub=value; see overrides.h. */
#include "lua/overrides.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include <lauxlib.h>

#include "core/pipeline_fields.h"
#include "lua/dsl_ctx.h"
#include "lua/literal.h"
#include "lua/locate.h"
#include "lua/prelude.h"

#define MAX_SEGMENTS 16

typedef struct segment {
    const char *s; /* into the --set argument */
    size_t len;
    long long index; /* > 0 for a list position */
} segment;

/* Raises "LABEL: message" (LABEL: "--set ARG"). */
static int set_fail(lua_State *L, const char *label, const char *fmt, const char *a)
{
    char msg[ORCH_ERR_MSG_MAX];
    snprintf(msg, sizeof msg, fmt, a);
    lua_pushfstring(L, "%s: %s", label, msg);
    return lua_error(L);
}

/* Splits key[0..len) into segments; returns their count or -1. */
static int split_key(const char *key, size_t len, segment *seg)
{
    int n = 0;
    size_t i = 0;
    while (i <= len) {
        size_t j = i;
        while (j < len && key[j] != '.')
            j++;
        if (j == i || n == MAX_SEGMENTS)
            return -1;
        segment *s = &seg[n++];
        s->s = key + i;
        s->len = j - i;
        s->index = 0;
        if (isdigit((unsigned char)key[i])) {
            if (key[i] == '0' || s->len > 9)
                return -1;
            for (size_t k = i; k < j; k++) {
                if (!isdigit((unsigned char)key[k]))
                    return -1;
                s->index = s->index * 10 + (key[k] - '0');
            }
        } else {
            for (size_t k = i; k < j; k++)
                if (!(isalnum((unsigned char)key[k]) || key[k] == '_'))
                    return -1;
        }
        i = j + 1;
    }
    return n;
}

static void push_key(lua_State *L, const segment *s)
{
    if (s->index > 0)
        lua_pushinteger(L, s->index);
    else
        lua_pushlstring(L, s->s, s->len);
}

/* The field a string shorthand stands for at the top level (strategy =
 * "lora" is { kind = "lora" }), or NULL. */
static const char *shorthand(const segment *s)
{
    if (s->index == 0 && s->len == 8 && memcmp(s->s, "strategy", 8) == 0)
        return "kind";
    if (s->index == 0 && s->len == 4 && memcmp(s->s, "head", 4) == 0)
        return "kind";
    if (s->index == 0 && s->len == 5 && memcmp(s->s, "model", 5) == 0)
        return "preset";
    return NULL;
}

/* 1 if text must be read as a Lua literal rather than as a bare string. */
static int is_literal(const char *text)
{
    unsigned char c = (unsigned char)text[0];
    if (isdigit(c) || c == '{' || c == '"' || c == '\'')
        return 1;
    if (c == '[' && (text[1] == '[' || text[1] == '='))
        return 1;
    if (c == '-' || c == '+' || c == '.') {
        const char *q = text + 1;
        if (c != '.' && *q == '.')
            q++;
        return isdigit((unsigned char)*q);
    }
    return 0;
}

/* Pushes the value of text (see overrides.h). */
static void push_value(lua_State *L, const char *arg, const char *text)
{
    if (text[0] == '\0')
        set_fail(L, arg,
                 "%sempty value; write KEY=nil to remove a field, KEY='' for an empty "
                 "string",
                 "");
    if (strcmp(text, "true") == 0 || strcmp(text, "false") == 0) {
        lua_pushboolean(L, text[0] == 't');
        return;
    }
    if (strcmp(text, "nil") == 0) {
        lua_pushnil(L);
        return;
    }
    if (!is_literal(text)) {
        lua_pushstring(L, text);
        return;
    }
    const char *src = text[0] == '+' ? text + 1 : text;
    char msg[512];
    int status = dsl_push_literal(L, src, msg, sizeof msg);
    if (status == DSL_LITERAL_SYNTAX)
        set_fail(L, arg, "not a valid value (%s)", msg);
    if (status == DSL_LITERAL_RUNTIME)
        set_fail(L, arg, "cannot evaluate the value (%s)", msg);
}

/* The field seg[0..n-1] names, when all are names, or NULL. */
static const orch_field *field_of(const segment *seg, int n)
{
    char path[DSL_LOC_PATH_MAX] = "";
    for (int i = 0; i < n; i++) {
        size_t len = strlen(path);
        if (seg[i].index > 0)
            return NULL;
        snprintf(path + len, sizeof path - len, "%s%.*s", i ? "." : "", (int)seg[i].len, seg[i].s);
    }
    return orch_field_find(path);
}

/* Pushes the table that stands for the missing list seg[0..n-1] inside the
 * table at parent when one of its elements is set: a copy of the field's
 * default (strategy.targets, optimizer.betas) when it has one for the kind
 * of parent, so the other elements keep their defaults; else a new empty
 * table. */
static void push_missing_list(lua_State *L, const char *arg, int parent, const segment *seg, int n)
{
    const orch_field *f = field_of(seg, n);
    int is_list =
        f != NULL && (f->type == ORCH_FIELD_STRING_LIST || f->type == ORCH_FIELD_INT_LIST ||
                      f->type == ORCH_FIELD_REAL_PAIR || f->type == ORCH_FIELD_INT_PAIR);
    if (is_list && f->def != NULL) {
        int applies = f->kinds == 0;
        if (!applies) {
            /* an option of a kind: only when the table is of that kind */
            const orch_field *kind = n >= 2 ? field_of(seg, n - 1) : NULL;
            char kind_path[DSL_LOC_PATH_MAX];
            snprintf(kind_path, sizeof kind_path, "%s.kind", kind ? kind->path : "");
            kind = orch_field_find(kind_path);
            lua_pushliteral(L, "kind");
            if (kind != NULL && lua_rawget(L, parent) == LUA_TSTRING)
                for (size_t k = 0; k < kind->n_names; k++)
                    applies |=
                        strcmp(lua_tostring(L, -1), kind->names[k]) == 0 && (f->kinds & (1u << k));
            lua_pop(L, 1);
        }
        if (applies) {
            push_value(L, arg, f->def);
            return;
        }
    }
    lua_newtable(L);
}

/* Stores the value at index v under key[0..keylen) (a dotted path) in the
 * table at index 1. label names the assignment in messages ("--set ARG");
 * rec, when not NULL, is recorded with the locator as the location of the
 * path. With merge, a table value merges into the table it replaces as
 * extend() does (and is copied either way). */
static void assign(lua_State *L, const char *label, const char *key, size_t keylen, int v,
                   const char *rec, int merge)
{
    dsl_ctx *ctx = dsl_ctx_get(L);
    v = lua_absindex(L, v);
    segment seg[MAX_SEGMENTS];
    int n = split_key(key, keylen, seg);
    if (n < 1) {
        lua_pushlstring(L, key, keylen);
        set_fail(L, label,
                 "bad key '%s' (names and list positions separated by dots, e.g. "
                 "optimizer.lr or optimizer.betas.2)",
                 lua_tostring(L, -1));
    }
    char path[DSL_LOC_PATH_MAX] = "";
    for (int i = 0; i < n; i++) {
        size_t len = strlen(path);
        if (seg[i].index > 0)
            snprintf(path + len, sizeof path - len, "[%lld]", seg[i].index);
        else
            snprintf(path + len, sizeof path - len, "%s%.*s", i ? "." : "", (int)seg[i].len,
                     seg[i].s);
    }

    int table = 1;
    for (int i = 0; i < n - 1; i++) {
        push_key(L, &seg[i]);
        lua_rawget(L, table);
        if (lua_isnil(L, -1)) {
            lua_pop(L, 1);
            if (seg[i + 1].index > 0)
                push_missing_list(L, label, table, seg, i + 1);
            else
                lua_newtable(L);
            push_key(L, &seg[i]);
            lua_pushvalue(L, -2);
            lua_rawset(L, table);
        } else if (lua_type(L, -1) == LUA_TSTRING && i == 0 && shorthand(&seg[0]) != NULL) {
            /* strategy = "lora" and friends: expand to { kind = "lora" } */
            lua_createtable(L, 0, 1);
            lua_insert(L, -2);
            lua_setfield(L, -2, shorthand(&seg[0]));
            push_key(L, &seg[i]);
            lua_pushvalue(L, -2);
            lua_rawset(L, table);
        } else if (lua_type(L, -1) != LUA_TTABLE) {
            lua_pushlstring(L, key, (size_t)(seg[i].s + seg[i].len - key));
            set_fail(L, label, "'%s' is not a table, so it has no fields", lua_tostring(L, -1));
        }
        table = lua_gettop(L);
    }
    /* strategy.kind = another kind: a new strategy, as extend() does */
    if (n == 2 && seg[0].index == 0 && seg[0].len == 8 && memcmp(seg[0].s, "strategy", 8) == 0 &&
        seg[1].len == 4 && memcmp(seg[1].s, "kind", 4) == 0) {
        lua_pushliteral(L, "kind");
        lua_rawget(L, table);
        int same = lua_rawequal(L, -1, v);
        lua_pop(L, 1);
        if (!same) {
            lua_pushliteral(L, "strategy");
            lua_newtable(L);
            lua_pushvalue(L, v);
            lua_setfield(L, -2, "kind");
            lua_rawset(L, 1);
            if (rec != NULL)
                dsl_loc_add_set(&ctx->loc, "strategy", rec);
            return;
        }
    }
    push_key(L, &seg[n - 1]);
    if (merge && lua_type(L, v) == LUA_TTABLE) {
        push_key(L, &seg[n - 1]);
        lua_rawget(L, table);
        dsl_merge(L, -1, v); /* a copy of v when the old value is no table */
        lua_remove(L, -2);
    } else {
        lua_pushvalue(L, v);
    }
    lua_rawset(L, table);
    if (rec != NULL)
        dsl_loc_add_set(&ctx->loc, path, rec);
}

int dsl_apply_set(lua_State *L)
{
    const char *arg = lua_touserdata(L, 2);
    lua_settop(L, 1);
    const char *label = lua_pushfstring(L, "--set %s", arg); /* at 2 */
    const char *eq = strchr(arg, '=');
    if (eq == NULL)
        return set_fail(L, label, "%sexpected KEY=VALUE, e.g. --set optimizer.lr=3e-4", "");
    push_value(L, label, eq + 1); /* at 3 */
    assign(L, label, arg, (size_t)(eq - arg), 3, label, 0);
    return 0;
}

int dsl_apply_value(lua_State *L)
{
    const char *key = lua_touserdata(L, 2);
    const char *label = lua_touserdata(L, 4);
    lua_settop(L, 3);
    lua_remove(L, 2); /* root, value */
    assign(L, label, key, strlen(key), 2, NULL, 1);
    return 0;
}
