/* sweep_name.c - values in point names and overrides; see sweep_name.h. */
#include "lua/sweep_name.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>

#include "core/sweep.h"
#include "lua/prelude.h"

#define MAX_DEPTH 8
#define MAX_KEYS  64 /* keys of one table spelled or compared */

/* A bounded string builder: keeps the first n-1 bytes, then "...". */
typedef struct sbuf {
    char *buf;
    size_t n, len;
    int full;
} sbuf;

static void put(sbuf *b, const char *s)
{
    size_t k = strlen(s);
    if (b->full)
        return;
    if (b->len + k + 4 > b->n) { /* room for "..." */
        b->full = 1;
        if (b->n >= 4) {
            memcpy(b->buf + b->n - 4, "...", 4);
            b->len = b->n - 1;
        }
        return;
    }
    memcpy(b->buf + b->len, s, k + 1);
    b->len += k;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The string keys of the table at idx, sorted, into keys (they point into
 * the table's key strings, alive as long as the table). */
static int sorted_keys(lua_State *L, int idx, const char **keys, int max)
{
    idx = lua_absindex(L, idx);
    int n = 0;
    lua_pushnil(L);
    while (lua_next(L, idx) != 0) {
        lua_pop(L, 1);
        if (lua_type(L, -1) == LUA_TSTRING && n < max)
            keys[n++] = lua_tostring(L, -1);
    }
    qsort(keys, (size_t)n, sizeof *keys, cmp_str);
    return n;
}

/* ------------------------------------------------------------- numbers */

/* The shortest "%.*e" that reads back as x, as "M[.MMM]eE" (E without '+'
 * or leading zeros). */
static void exp_form(double x, char *out, size_t n)
{
    char t[64];
    for (int p = 0; p < 17; p++) {
        snprintf(t, sizeof t, "%.*e", p, x);
        if (strtod(t, NULL) == x)
            break;
    }
    char *e = strchr(t, 'e');
    if (e == NULL) {
        snprintf(out, n, "%s", t);
        return;
    }
    *e = '\0';
    int ex = atoi(e + 1);
    char tail[16];
    snprintf(tail, sizeof tail, "e%d", ex);
    size_t len = strlen(t);
    if (len + strlen(tail) < n) {
        memcpy(out, t, len);
        memcpy(out + len, tail, strlen(tail) + 1);
    } else if (n > 0) {
        out[0] = '\0';
    }
}

/* The shortest "%.*f" that reads back as x. */
static void plain_form(double x, char *out, size_t n)
{
    for (int k = 0; k <= 20; k++) {
        snprintf(out, n, "%.*f", k, x);
        if (strtod(out, NULL) == x)
            return;
    }
}

void dsl_short_number(double x, int digits, char *buf, size_t n)
{
    if (digits > 0) {
        char t[64];
        snprintf(t, sizeof t, "%.*e", digits - 1, x);
        x = strtod(t, NULL);
    }
    char e[64], f[512];
    exp_form(x, e, sizeof e);
    plain_form(x, f, sizeof f);
    snprintf(buf, n, "%s", strlen(e) < strlen(f) ? e : f);
}

/* The shortest "%.*g" that reads back as x (--set spelling: 0.0003). */
static void g_form(double x, char *out, size_t n)
{
    for (int p = 1; p <= 17; p++) {
        snprintf(out, n, "%.*g", p, x);
        if (strtod(out, NULL) == x)
            return;
    }
}

/* ------------------------------------------------------------- spelling */

/* 1 if s reads back as the same bare string in a --set value. */
static int bare(const char *s, size_t len)
{
    if (len == 0 || strlen(s) != len)
        return 0;
    if (strcmp(s, "true") == 0 || strcmp(s, "false") == 0 || strcmp(s, "nil") == 0)
        return 0;
    unsigned char c = (unsigned char)s[0];
    if (isdigit(c) || c == '-' || c == '+' || c == '.' || c == '{' || c == '[')
        return 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char d = (unsigned char)s[i];
        if (!(isalnum(d) || strchr("._/:+-", d) != NULL))
            return 0;
    }
    return 1;
}

static void spell(lua_State *L, int idx, sbuf *b, int depth)
{
    char t[600];
    idx = lua_absindex(L, idx);
    switch (lua_type(L, idx)) {
    case LUA_TNUMBER:
        if (lua_isinteger(L, idx))
            snprintf(t, sizeof t, "%lld", (long long)lua_tointeger(L, idx));
        else
            g_form((double)lua_tonumber(L, idx), t, sizeof t);
        put(b, t);
        return;
    case LUA_TBOOLEAN:
        put(b, lua_toboolean(L, idx) ? "true" : "false");
        return;
    case LUA_TSTRING: {
        size_t len;
        const char *s = lua_tolstring(L, idx, &len);
        if (bare(s, len)) {
            put(b, s);
            return;
        }
        put(b, "\"");
        for (size_t i = 0; i < len && !b->full; i++) {
            char c[8];
            unsigned char d = (unsigned char)s[i];
            if (d == '"' || d == '\\')
                snprintf(c, sizeof c, "\\%c", d);
            else if (d < 32 || d == 127)
                snprintf(c, sizeof c, "\\%u", d);
            else
                snprintf(c, sizeof c, "%c", d);
            put(b, c);
        }
        put(b, "\"");
        return;
    }
    case LUA_TTABLE:
        break;
    case LUA_TNIL:
        put(b, "nil");
        return;
    default:
        put(b, luaL_typename(L, idx));
        return;
    }
    if (dsl_is_unset(L, idx)) {
        put(b, "nil");
        return;
    }
    if (depth >= MAX_DEPTH) {
        put(b, "{...}");
        return;
    }
    luaL_checkstack(L, 8, "spelling a value");
    if (dsl_is_sequence(L, idx)) {
        put(b, "{");
        lua_Unsigned n = lua_rawlen(L, idx);
        for (lua_Unsigned i = 1; i <= n; i++) {
            if (i > 1)
                put(b, ",");
            lua_rawgeti(L, idx, (lua_Integer)i);
            spell(L, -1, b, depth + 1);
            lua_pop(L, 1);
        }
        put(b, "}");
        return;
    }
    lua_pushliteral(L, "kind"); /* constructors keep kind in the table itself */
    lua_rawget(L, idx);
    int has_kind = lua_type(L, -1) == LUA_TSTRING;
    if (has_kind)
        put(b, lua_tostring(L, -1));
    lua_pop(L, 1);
    const char *keys[MAX_KEYS];
    int n = sorted_keys(L, idx, keys, MAX_KEYS);
    put(b, "{");
    int first = 1;
    for (int i = 0; i < n; i++) {
        if (has_kind && strcmp(keys[i], "kind") == 0)
            continue;
        if (!first)
            put(b, ",");
        first = 0;
        put(b, keys[i]);
        put(b, "=");
        lua_pushstring(L, keys[i]);
        lua_rawget(L, idx);
        spell(L, -1, b, depth + 1);
        lua_pop(L, 1);
    }
    put(b, "}");
}

void dsl_spell_value(lua_State *L, int idx, char *buf, size_t n)
{
    sbuf b = {buf, n, 0, 0};
    buf[0] = '\0';
    spell(L, idx, &b, 0);
}

/* ---------------------------------------------------------------- names */

static void sanitize(char *s)
{
    for (; *s != '\0'; s++)
        if (!(isalnum((unsigned char)*s) || strchr("._+-", *s) != NULL))
            *s = '_';
}

static void name_value(lua_State *L, int idx, int digits, sbuf *b, int depth)
{
    char t[600];
    idx = lua_absindex(L, idx);
    switch (lua_type(L, idx)) {
    case LUA_TNUMBER:
        if (lua_isinteger(L, idx))
            snprintf(t, sizeof t, "%lld", (long long)lua_tointeger(L, idx));
        else
            dsl_short_number((double)lua_tonumber(L, idx), digits, t, sizeof t);
        break;
    case LUA_TBOOLEAN:
        snprintf(t, sizeof t, "%s", lua_toboolean(L, idx) ? "true" : "false");
        break;
    case LUA_TSTRING:
        snprintf(t, sizeof t, "%s", lua_tostring(L, idx));
        sanitize(t);
        break;
    case LUA_TTABLE:
        lua_pushliteral(L, "kind");
        if (lua_rawget(L, idx) == LUA_TSTRING) {
            snprintf(t, sizeof t, "%s", lua_tostring(L, -1));
            sanitize(t);
            lua_pop(L, 1);
            break;
        }
        lua_pop(L, 1);
        if (dsl_is_sequence(L, idx) && depth < MAX_DEPTH) {
            lua_Unsigned n = lua_rawlen(L, idx);
            for (lua_Unsigned i = 1; i <= n; i++) {
                if (i > 1)
                    put(b, "_");
                lua_rawgeti(L, idx, (lua_Integer)i);
                name_value(L, -1, digits, b, depth + 1);
                lua_pop(L, 1);
            }
            return;
        }
        snprintf(t, sizeof t, "table");
        break;
    default:
        snprintf(t, sizeof t, "%s", luaL_typename(L, idx));
        break;
    }
    put(b, t);
}

void dsl_name_value(lua_State *L, int idx, int digits, char *buf, size_t n)
{
    sbuf b = {buf, n, 0, 0};
    buf[0] = '\0';
    name_value(L, idx, digits, &b, 0);
}

void dsl_short_key(const char *key, char *buf, size_t n)
{
    const char *dot = strrchr(key, '.');
    const char *last = dot ? dot + 1 : key;
    if (dot != NULL && isdigit((unsigned char)*last)) {
        const char *prev = dot;
        while (prev > key && prev[-1] != '.')
            prev--;
        snprintf(buf, n, "%.*s%s", (int)(dot - prev), prev, last);
    } else {
        snprintf(buf, n, "%s", last);
    }
}

/* The kind of the value at idx (a strategy table or its shorthand string),
 * or NULL. */
static const char *kind_of(lua_State *L, int idx)
{
    idx = lua_absindex(L, idx);
    if (lua_type(L, idx) == LUA_TSTRING)
        return lua_tostring(L, idx);
    if (lua_type(L, idx) != LUA_TTABLE)
        return NULL;
    lua_pushliteral(L, "kind");
    lua_rawget(L, idx);
    const char *k = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : NULL;
    lua_pop(L, 1); /* the string stays alive in the table */
    return k;
}

void dsl_push_labels(lua_State *L, int idx, const char *key, int digits)
{
    idx = lua_absindex(L, idx);
    lua_Unsigned n = lua_rawlen(L, idx);
    lua_createtable(L, (int)(n < 4096 ? n : 4096), 0);
    int out = lua_gettop(L);
    int strategy = strcmp(key, "strategy") == 0 || strcmp(key, "strategy.kind") == 0;
    char short_key[128], v[256], label[512];
    dsl_short_key(key, short_key, sizeof short_key);
    for (lua_Unsigned i = 1; i <= n; i++) {
        lua_rawgeti(L, idx, (lua_Integer)i);
        int item = lua_gettop(L);
        const char *kind = strategy ? kind_of(L, item) : NULL;
        size_t plen = strlen(ORCH_OUTPUT_OF_PREFIX);
        if (kind == NULL && lua_type(L, item) == LUA_TSTRING &&
            strncmp(lua_tostring(L, item), ORCH_OUTPUT_OF_PREFIX, plen) == 0) {
            /* output_of "detach-best" reads "from-detach-best" */
            snprintf(v, sizeof v, "%s", lua_tostring(L, item) + plen);
            sanitize(v);
            snprintf(label, sizeof label, "from-%s", v);
            lua_pushstring(L, label);
            lua_rawseti(L, out, (lua_Integer)i);
            lua_pop(L, 1);
            continue;
        }
        if (kind == NULL) {
            dsl_name_value(L, item, digits, v, sizeof v);
            snprintf(label, sizeof label, "%s%s", short_key, v);
            lua_pushstring(L, label);
            lua_rawseti(L, out, (lua_Integer)i);
            lua_pop(L, 1);
            continue;
        }
        sbuf b = {label, sizeof label, 0, 0};
        label[0] = '\0';
        snprintf(v, sizeof v, "%s", kind);
        sanitize(v);
        put(&b, v);
        /* the options that tell this one from the others of its kind */
        if (lua_type(L, item) == LUA_TTABLE) {
            const char *keys[MAX_KEYS];
            int nk = sorted_keys(L, item, keys, MAX_KEYS);
            for (int k = 0; k < nk; k++) {
                if (strcmp(keys[k], "kind") == 0)
                    continue;
                char mine[256], other[256];
                lua_pushstring(L, keys[k]);
                lua_rawget(L, item);
                dsl_spell_value(L, -1, mine, sizeof mine);
                int differs = 0;
                for (lua_Unsigned j = 1; j <= n && !differs; j++) {
                    if (j == i)
                        continue;
                    lua_rawgeti(L, idx, (lua_Integer)j);
                    const char *ok = kind_of(L, -1);
                    if (ok != NULL && strcmp(ok, kind) == 0) {
                        if (lua_type(L, -1) == LUA_TTABLE) {
                            lua_pushstring(L, keys[k]);
                            lua_rawget(L, -2);
                        } else {
                            lua_pushnil(L);
                        }
                        dsl_spell_value(L, -1, other, sizeof other);
                        differs = strcmp(mine, other) != 0;
                        lua_pop(L, 1);
                    }
                    lua_pop(L, 1);
                }
                if (differs) {
                    char opt[128];
                    snprintf(opt, sizeof opt, "%s", keys[k]);
                    sanitize(opt);
                    dsl_name_value(L, -1, digits, v, sizeof v);
                    put(&b, "-");
                    put(&b, opt);
                    put(&b, v);
                }
                lua_pop(L, 1);
            }
        }
        lua_pushstring(L, label);
        lua_rawseti(L, out, (lua_Integer)i);
        lua_pop(L, 1);
    }
}

/* 1 if the tables at a and b are compared key by key: neither is a list,
 * and they do not differ in kind. */
static int compared_by_key(lua_State *L, int a, int b)
{
    if (lua_type(L, a) != LUA_TTABLE || lua_type(L, b) != LUA_TTABLE || dsl_is_unset(L, a) ||
        dsl_is_unset(L, b) || dsl_is_sequence(L, a) || dsl_is_sequence(L, b))
        return 0;
    const char *ka = kind_of(L, a), *kb = kind_of(L, b);
    return ka == NULL || kb == NULL || strcmp(ka, kb) == 0;
}

static void diff(lua_State *L, int a, int b, const char *prefix, sbuf *out, int depth)
{
    luaL_checkstack(L, 8, "comparing tables");
    const char *keys[MAX_KEYS];
    int n = sorted_keys(L, a, keys, MAX_KEYS);
    char path[256], v[1024], w[1024];
    for (int i = 0; i < n; i++) {
        if (depth == 0 && strcmp(keys[i], "name") == 0)
            continue; /* the sweep names its runs */
        snprintf(path, sizeof path, "%s%s%s", prefix, prefix[0] ? "." : "", keys[i]);
        lua_pushstring(L, keys[i]);
        lua_rawget(L, a);
        lua_pushstring(L, keys[i]);
        lua_rawget(L, b);
        int va = lua_gettop(L) - 1, vb = lua_gettop(L);
        if (depth < MAX_DEPTH && compared_by_key(L, va, vb)) {
            diff(L, va, vb, path, out, depth + 1);
        } else {
            dsl_spell_value(L, va, v, sizeof v);
            dsl_spell_value(L, vb, w, sizeof w);
            if (strcmp(v, w) != 0) {
                put(out, out->len ? " " : "");
                put(out, path);
                put(out, "=");
                put(out, v);
            }
        }
        lua_pop(L, 2);
    }
    n = sorted_keys(L, b, keys, MAX_KEYS);
    for (int i = 0; i < n; i++) {
        if (depth == 0 && strcmp(keys[i], "name") == 0)
            continue;
        lua_pushstring(L, keys[i]);
        int absent = lua_rawget(L, a) == LUA_TNIL;
        lua_pop(L, 1);
        if (absent) {
            put(out, out->len ? " " : "");
            put(out, prefix);
            put(out, prefix[0] ? "." : "");
            put(out, keys[i]);
            put(out, "=nil");
        }
    }
}

void dsl_spell_diff(lua_State *L, int a, int b, char *buf, size_t n)
{
    sbuf out = {buf, n, 0, 0};
    buf[0] = '\0';
    a = lua_absindex(L, a);
    b = lua_absindex(L, b);
    if (lua_type(L, a) == LUA_TTABLE && lua_type(L, b) == LUA_TTABLE)
        diff(L, a, b, "", &out, 0);
}
