/* convert.c - declaration to orch_pipeline: helpers and the top level; see convert.h. */
#include "lua/convert.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <lauxlib.h>

#include "core/sweep.h"
#include "lua/literal.h"
#include "lua/prelude.h"
#include "lua/suggest.h"

static void output_of(cv *c, const char *path, const char *run, char *out, size_t n);

/* ------------------------------------------------------------- messages */

void cv_fail(cv *c, const char *path, const char *fmt, ...)
{
    char where[ORCH_PATH_MAX + 64];
    char msg[ORCH_ERR_MSG_MAX];
    dsl_loc_find(&c->ctx->loc, path, c->ctx->main_path, where, sizeof where);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    lua_pushfstring(c->L, "%s: %s%s", where, c->ctx->point_prefix ? c->ctx->point_prefix : "", msg);
    lua_error(c->L);
    abort(); /* unreachable: lua_error does not return */
}

void cv_fail_pair(cv *c, const char *path, const char *other, const char *fmt, ...)
{
    int path_set = 0, other_set = 0;
    dsl_loc_origin(&c->ctx->loc, path, &path_set);
    dsl_loc_origin(&c->ctx->loc, other, &other_set);
    char msg[ORCH_ERR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    cv_fail(c, other_set && !path_set ? other : path, "%s", msg);
}

void cv_join(char *out, const char *parent, const char *key)
{
    if (parent[0] == '\0')
        snprintf(out, DSL_LOC_PATH_MAX, "%s", key);
    else
        snprintf(out, DSL_LOC_PATH_MAX, "%s.%s", parent, key);
}

void cv_index(char *out, const char *parent, long long i)
{
    snprintf(out, DSL_LOC_PATH_MAX, "%s[%lld]", parent, i);
}

const char *cv_describe(cv *c, int idx, char *buf, size_t n)
{
    lua_State *L = c->L;
    switch (lua_type(L, idx)) {
    case LUA_TNUMBER:
        if (lua_isinteger(L, idx))
            snprintf(buf, n, "number %lld", (long long)lua_tointeger(L, idx));
        else
            snprintf(buf, n, "number %.14g", (double)lua_tonumber(L, idx));
        break;
    case LUA_TSTRING: {
        size_t len;
        const char *s = lua_tolstring(L, idx, &len);
        char shown[48];
        size_t k = 0;
        for (size_t i = 0; i < len && k < 40; i++)
            shown[k++] = (s[i] >= 0 && s[i] < 32) ? '?' : s[i];
        shown[k] = '\0';
        snprintf(buf, n, "string '%s%s'", shown, len > 40 ? "..." : "");
        break;
    }
    case LUA_TBOOLEAN:
        snprintf(buf, n, "boolean %s", lua_toboolean(L, idx) ? "true" : "false");
        break;
    case LUA_TNIL:
    case LUA_TNONE:
        snprintf(buf, n, "nil");
        break;
    default:
        snprintf(buf, n, "a %s", luaL_typename(L, idx));
        break;
    }
    return buf;
}

/* Fails with "path must be WHAT (got ...)" for the value at idx. */
static _Noreturn void type_fail(cv *c, int idx, const char *path, const char *what)
{
    char got[96];
    cv_fail(c, path, "%s must be %s (got %s)", path, what, cv_describe(c, idx, got, sizeof got));
}

/* ----------------------------------------------------------------- keys */

int cv_get(cv *c, int t, const char *key)
{
    t = lua_absindex(c->L, t);
    lua_pushstring(c->L, key);
    int type = lua_rawget(c->L, t);
    if (type == LUA_TTABLE && dsl_is_unset(c->L, -1)) {
        lua_pop(c->L, 1);
        lua_pushnil(c->L);
        return LUA_TNIL;
    }
    return type;
}

void cv_check_keys(cv *c, int t, const char *path, const char *const *valid, size_t n)
{
    lua_State *L = c->L;
    t = lua_absindex(L, t);
    char unknown[DSL_LOC_PATH_MAX] = "";
    int have_unknown = 0;
    lua_pushnil(L);
    while (lua_next(L, t) != 0) {
        lua_pop(L, 1);
        if (lua_type(L, -1) != LUA_TSTRING) {
            char sub[DSL_LOC_PATH_MAX], valid_text[512], got[96];
            if (lua_isinteger(L, -1))
                cv_index(sub, path, (long long)lua_tointeger(L, -1));
            else
                snprintf(sub, sizeof sub, "%s", path);
            lua_pushvalue(L, -1);
            lua_rawget(L, t);
            cv_fail(c, sub,
                    "%s has a value without a name (%s); write key = value (valid keys: %s)",
                    path[0] ? path : "the pipeline", cv_describe(c, -1, got, sizeof got),
                    dsl_join_names(valid_text, sizeof valid_text, valid, n));
        }
        const char *key = lua_tostring(L, -1);
        size_t i = 0;
        while (i < n && strcmp(key, valid[i]) != 0)
            i++;
        if (i == n && (!have_unknown || strcmp(key, unknown) < 0)) {
            snprintf(unknown, sizeof unknown, "%s", key);
            have_unknown = 1;
        }
    }
    if (!have_unknown)
        return;
    char full[DSL_LOC_PATH_MAX], near_full[DSL_LOC_PATH_MAX], valid_text[512];
    cv_join(full, path, unknown);
    const char *near = dsl_nearest(unknown, valid, n);
    if (near != NULL) {
        cv_join(near_full, path, near);
        cv_fail(c, full, "unknown key '%s' (did you mean '%s'?)", full, near_full);
    }
    cv_fail(c, full, "unknown key '%s' (valid keys%s%s: %s)", full, path[0] ? " of " : "", path,
            dsl_join_names(valid_text, sizeof valid_text, valid, n));
}

void cv_need(cv *c, int t, const char *tpath, const char *key, const char *hint)
{
    int type = cv_get(c, t, key);
    lua_pop(c->L, 1);
    if (type == LUA_TNIL) {
        char full[DSL_LOC_PATH_MAX];
        cv_join(full, tpath, key);
        cv_fail(c, tpath[0] ? tpath : full, "%s is required%s", full, hint);
    }
}

void cv_forbid(cv *c, int t, const char *tpath, const char *key, const char *why)
{
    int type = cv_get(c, t, key);
    lua_pop(c->L, 1);
    if (type != LUA_TNIL) {
        char full[DSL_LOC_PATH_MAX];
        cv_join(full, tpath, key);
        cv_fail(c, full, "%s is not used with %s", full, why);
    }
}

/* --------------------------------------------------------------- values */

long long cv_int(cv *c, int idx, const char *path, long long lo, long long hi)
{
    if (lua_type(c->L, idx) != LUA_TNUMBER)
        type_fail(c, idx, path, "an integer");
    int ok = 0;
    lua_Integer v = lua_tointegerx(c->L, idx, &ok);
    if (!ok)
        type_fail(c, idx, path, "an integer");
    if (v < lo || v > hi) {
        if (hi >= CV_INT_MAX)
            cv_fail(c, path, "%s must be >= %lld (got %lld)", path, lo, (long long)v);
        cv_fail(c, path, "%s must be between %lld and %lld (got %lld)", path, lo, hi, (long long)v);
    }
    return v;
}

double cv_num(cv *c, int idx, const char *path)
{
    if (lua_type(c->L, idx) != LUA_TNUMBER)
        type_fail(c, idx, path, "a number");
    double v = (double)lua_tonumber(c->L, idx);
    if (!isfinite(v))
        type_fail(c, idx, path, "a finite number");
    return v;
}

int cv_bool(cv *c, int idx, const char *path)
{
    if (lua_type(c->L, idx) != LUA_TBOOLEAN)
        type_fail(c, idx, path, "true or false");
    return lua_toboolean(c->L, idx);
}

/* 1 if s[0..n) is well-formed UTF-8 (no overlongs, surrogates or code
 * points above U+10FFFF). */
static int valid_utf8(const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s, *end = p + n;
    while (p < end) {
        unsigned c = *p++;
        if (c < 0x80)
            continue;
        int more = c >= 0xF0 ? 3 : c >= 0xE0 ? 2 : c >= 0xC2 ? 1 : -1;
        if (more < 0 || c > 0xF4 || end - p < more)
            return 0;
        unsigned cp = c & (0x3F >> more);
        for (int i = 0; i < more; i++, p++) {
            if ((*p & 0xC0) != 0x80)
                return 0;
            cp = (cp << 6) | (*p & 0x3F);
        }
        if ((more == 2 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) ||
            (more == 3 && (cp < 0x10000 || cp > 0x10FFFF)))
            return 0;
    }
    return 1;
}

void cv_str(cv *c, int idx, const char *path, char *out, size_t n)
{
    if (lua_type(c->L, idx) != LUA_TSTRING)
        type_fail(c, idx, path, "a string");
    size_t len;
    const char *s = lua_tolstring(c->L, idx, &len);
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)s[i] < 32 || s[i] == 127)
            cv_fail(c, path, "%s must not contain control characters or NUL bytes", path);
    if (!valid_utf8(s, len))
        cv_fail(c, path, "%s must be valid UTF-8 text", path);
    if (len >= n)
        cv_fail(c, path, "%s is too long (%zu bytes; at most %zu)", path, len, n - 1);
    memcpy(out, s, len + 1);
}

int cv_enum(cv *c, int idx, const char *path, const char *const *names, size_t n)
{
    char list[512];
    dsl_join_names(list, sizeof list, names, n);
    if (lua_type(c->L, idx) != LUA_TSTRING) {
        char what[600];
        snprintf(what, sizeof what, "one of %s", list);
        type_fail(c, idx, path, what);
    }
    const char *s = lua_tostring(c->L, idx);
    for (size_t i = 0; i < n; i++)
        if (strcmp(s, names[i]) == 0)
            return (int)i;
    char got[96];
    const char *near = dsl_nearest(s, names, n);
    if (near != NULL)
        cv_fail(c, path, "%s must be one of %s (got %s; did you mean '%s'?)", path, list,
                cv_describe(c, idx, got, sizeof got), near);
    cv_fail(c, path, "%s must be one of %s (got %s)", path, list,
            cv_describe(c, idx, got, sizeof got));
}

size_t cv_list(cv *c, int idx, const char *path, size_t max)
{
    lua_State *L = c->L;
    idx = lua_absindex(L, idx);
    if (lua_type(L, idx) != LUA_TTABLE)
        type_fail(c, idx, path, "a list like {a, b}");
    lua_pushnil(L);
    int empty = lua_next(L, idx) == 0;
    if (!empty)
        lua_pop(L, 2);
    if (!empty && !dsl_is_sequence(L, idx))
        cv_fail(c, path,
                "%s must be a list like {a, b} (got a table with named or missing "
                "entries)",
                path);
    size_t len = (size_t)lua_rawlen(L, idx);
    if (len > max)
        cv_fail(c, path, "%s has %zu entries; at most %zu are allowed", path, len, max);
    return len;
}

/* ------------------------------------------------------------ the table */

/* Fails for a key of the table at t that is an option of another kind than
 * kind: "strategy.replace is an option of surgery, not of lora". */
static void check_other_kinds(cv *c, int t, const char *section, int kind, const char *at)
{
    lua_State *L = c->L;
    const orch_field *kinds = orch_field_kind_of(section);
    ORCH_ASSERT(kinds != NULL);
    lua_pushnil(L);
    while (lua_next(L, t) != 0) {
        lua_pop(L, 1);
        if (lua_type(L, -1) != LUA_TSTRING)
            continue;
        char full[DSL_LOC_PATH_MAX], row[DSL_LOC_PATH_MAX];
        cv_join(full, at, lua_tostring(L, -1));
        cv_join(row, section, lua_tostring(L, -1));
        /* a path may have a row per kind (optimizer.weight_decay) */
        const orch_field *f = NULL;
        int mine = 0;
        for (size_t i = 0; i < orch_fields_count; i++)
            if (strcmp(orch_fields[i].path, row) == 0) {
                f = &orch_fields[i];
                mine |= f->kinds == 0 || (f->kinds & (1u << kind));
            }
        if (f == NULL || mine)
            continue;
        const char *keys[32], *other = "?";
        size_t n = orch_field_keys(section, kind, keys, 32);
        for (size_t k = 0; k < kinds->n_names; k++)
            if (f->kinds & (1u << k)) {
                other = kinds->names[k];
                break;
            }
        char list[256];
        if (n > 1)
            dsl_join_names(list, sizeof list, keys + 1, n - 1); /* keys[0] is kind */
        else
            snprintf(list, sizeof list, "none");
        cv_fail(c, full, "%s is an option of %s, not of %s (options of %s: %s)", full, other,
                kinds->names[kind], kinds->names[kind], list);
    }
}

void cv_check_section_at(cv *c, int t, const char *section, int kind, const char *at)
{
    t = lua_absindex(c->L, t);
    if (kind >= 0)
        check_other_kinds(c, t, section, kind, at);
    const char *keys[32];
    size_t n = orch_field_keys(section, kind, keys, 32);
    cv_check_keys(c, t, at, keys, n);
}

void cv_check_section(cv *c, int t, const char *section, int kind)
{
    cv_check_section_at(c, t, section, kind, section);
}

void cv_value(cv *c, const orch_field *f, int idx, const char *path, void *out)
{
    if (out == NULL) {
        out = orch_field_ptr(f, c->p);
        if (f->given_offset != 0) { /* data.has_seed */
            int on = 1;
            memcpy((char *)c->p + f->given_offset, &on, sizeof on);
        }
    }
    int v;
    switch (f->type) {
    case ORCH_FIELD_INT:
        v = (int)cv_int(c, idx, path, f->imin, f->imax);
        memcpy(out, &v, sizeof v);
        return;
    case ORCH_FIELD_U64:
        *(uint64_t *)out = (uint64_t)cv_int(c, idx, path, f->imin, f->imax);
        return;
    case ORCH_FIELD_BOOL:
        v = cv_bool(c, idx, path);
        memcpy(out, &v, sizeof v);
        return;
    case ORCH_FIELD_ENUM:
        v = cv_enum(c, idx, path, f->names, f->n_names);
        memcpy(out, &v, sizeof v);
        return;
    case ORCH_FIELD_STRING:
        cv_str(c, idx, path, out, f->size);
        return;
    case ORCH_FIELD_FILE: {
        char name[ORCH_PATH_MAX];
        cv_str(c, idx, path, name, sizeof name);
        if (strcmp(f->path, "strategy.init") == 0 &&
            strncmp(name, ORCH_OUTPUT_OF_PREFIX, strlen(ORCH_OUTPUT_OF_PREFIX)) == 0) {
            output_of(c, path, name + strlen(ORCH_OUTPUT_OF_PREFIX), out, f->size);
            return;
        }
        if (f->flags & ORCH_FIELDF_NO_STAT)
            cv_resolve(c, path, name, out, f->size);
        else
            cv_file(c, path, name, out, f->size);
        return;
    }
    case ORCH_FIELD_REAL: {
        double x = cv_num(c, idx, path);
        unsigned r = f->rflags;
        int ok =
            ((r & ORCH_RANGE_MIN_OPEN) ? x > f->rmin : x >= f->rmin) &&
            (!(r & ORCH_RANGE_MAX) || ((r & ORCH_RANGE_MAX_OPEN) ? x < f->rmax : x <= f->rmax));
        if (!ok && (r & ORCH_RANGE_MAX))
            cv_fail(c, path, "%s must be in %c%g, %g%c (got %.14g)", path,
                    (r & ORCH_RANGE_MIN_OPEN) ? '(' : '[', f->rmin, f->rmax,
                    (r & ORCH_RANGE_MAX_OPEN) ? ')' : ']', x);
        if (!ok)
            cv_fail(c, path, "%s must be %s %g (got %.14g)", path,
                    (r & ORCH_RANGE_MIN_OPEN) ? ">" : ">=", f->rmin, x);
        *(double *)out = x;
        return;
    }
    default:
        break;
    }
    ORCH_UNREACHABLE(); /* lists have their own readers */
}

int cv_field(cv *c, int t, const orch_field *f, void *out)
{
    int present = cv_get(c, t, orch_field_key(f)) != LUA_TNIL;
    if (present)
        cv_value(c, f, -1, f->path, out);
    lua_pop(c->L, 1);
    return present;
}

void cv_default(cv *c, const orch_field *f)
{
    dsl_push_default(c->L, f);
    cv_value(c, f, -1, f->path, NULL);
    lua_pop(c->L, 1);
}

static int is_scalar(orch_field_type type)
{
    switch (type) {
    case ORCH_FIELD_INT:
    case ORCH_FIELD_U64:
    case ORCH_FIELD_REAL:
    case ORCH_FIELD_BOOL:
    case ORCH_FIELD_ENUM:
    case ORCH_FIELD_STRING:
    case ORCH_FIELD_FILE:
        return 1;
    default:
        return 0;
    }
}

void cv_scalars(cv *c, int t, const char *section, int kind)
{
    for (size_t i = 0; i < orch_fields_count; i++) {
        const orch_field *f = &orch_fields[i];
        if (!orch_field_in(f, section) || !is_scalar(f->type) ||
            (f->flags & (ORCH_FIELDF_KIND | ORCH_FIELDF_CUSTOM | ORCH_FIELDF_NO_DSL)) ||
            (kind >= 0 && f->kinds != 0 && !(f->kinds & (1u << kind))))
            continue;
        if ((t == 0 || !cv_field(c, t, f, NULL)) && f->def != NULL)
            cv_default(c, f);
    }
}

void cv_field_or_default(cv *c, int t, const orch_field *f)
{
    if (!cv_field(c, t, f, NULL))
        cv_default(c, f);
}

void cv_resolve(cv *c, const char *path, const char *name, char *out, size_t n)
{
    if (name[0] == '\0')
        cv_fail(c, path, "%s: the file name is empty", path);
    int from_set = 0;
    const char *origin = dsl_loc_origin(&c->ctx->loc, path, &from_set);
    if (origin == NULL && !from_set)
        origin = c->ctx->main_path;
    int len;
    const char *slash = origin ? strrchr(origin, '/') : NULL;
    if (name[0] == '/' || slash == NULL)
        len = snprintf(out, n, "%s", name);
    else
        len = snprintf(out, n, "%.*s/%s", (int)(slash - origin), origin, name);
    if (len < 0 || (size_t)len >= n)
        cv_fail(c, path, "%s: the file name '%s' is too long", path, name);
}

void cv_file(cv *c, const char *path, const char *name, char *out, size_t n)
{
    cv_resolve(c, path, name, out, n);
    struct stat st;
    if (stat(out, &st) != 0) {
        int e = errno;
        if (e == ENOENT && strcmp(out, name) != 0)
            cv_fail(c, path,
                    "%s: no such file '%s' (relative names are resolved against the directory "
                    "of the pipeline file that gives them: %s)",
                    path, name, out);
        if (e == ENOENT)
            cv_fail(c, path, "%s: no such file '%s'", path, name);
        cv_fail(c, path, "%s: cannot use '%s' (%s)", path, out, strerror(e));
    }
    if (!S_ISREG(st.st_mode))
        cv_fail(c, path, "%s: '%s' is not a regular file", path, out);
}

/* strategy.init = output_of "run": the run must be one of the sweep
 * being expanded; writes the prefix and its full name into out. */
static void output_of(cv *c, const char *path, const char *run, char *out, size_t n)
{
    const orch_sweep *s = c->ctx->sweep;
    if (s == NULL)
        cv_fail(c, path,
                "%s = output_of \"%s\" starts from a run of a sweep; it is only meaningful in a "
                "sweep file",
                path, run);
    int i = orch_sweep_find(s, run);
    if (i < 0) {
        const char *near = NULL;
        int best = 1 << 30;
        for (int k = 0; k < s->n_runs; k++) {
            int d = dsl_edit_distance(run, s->runs[k].point);
            if (d < best) {
                best = d;
                near = s->runs[k].point;
            }
        }
        int plausible = near != NULL && best <= (strlen(run) / 3 > 2 ? (int)strlen(run) / 3 : 2);
        cv_fail(c, path, "%s = output_of \"%s\": the sweep %s has no run '%s'%s%s%s", path, run,
                s->name, run, plausible ? " (did you mean '" : "", plausible ? near : "",
                plausible ? "'?)" : "");
    }
    int len = snprintf(out, n, "%s%s", ORCH_OUTPUT_OF_PREFIX, s->runs[i].name);
    ORCH_ASSERT(len > 0 && (size_t)len < n);
}

/* ------------------------------------------------------------ top level */

int dsl_convert(lua_State *L)
{
    cv c = {L, dsl_ctx_get(L), lua_touserdata(L, 2), 0, 0};
    lua_settop(L, 1);
    memset(c.p, 0, sizeof *c.p);
    if (strlen(c.ctx->main_path) >= sizeof c.p->path)
        cv_fail(&c, "", "the pipeline path is too long (at most %zu bytes)", sizeof c.p->path - 1);
    if (!valid_utf8(c.ctx->main_path, strlen(c.ctx->main_path)))
        cv_fail(&c, "", "the pipeline path must be valid UTF-8 text");
    snprintf(c.p->path, sizeof c.p->path, "%s", c.ctx->main_path);
    cv_check_section(&c, 1, "", -1);
    cv_model(&c, 1);
    cv_processor(&c, 1);
    cv_data(&c, 1);
    cv_head_loss(&c, 1);
    cv_strategy(&c, 1);
    cv_optimizer(&c, 1);
    cv_schedule(&c, 1);
    cv_eval(&c, 1);
    cv_precision(&c, 1);
    cv_checks(&c, 1);
    cv_parallel(&c, 1);
    cv_tags_name(&c, 1);
    return 0;
}
