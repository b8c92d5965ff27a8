/* require.c - pipeline files and the sandboxed require; see require.h. */
#include "lua/require.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <lauxlib.h>

#include "lua/dsl.h"
#include "lua/sandbox.h"

static const char loaded_key = 'L';  /* registry: name -> module value */
static const char loading_key = 'I'; /* the "being loaded" marker */

/* Writes dir joined with rel into out; returns 0 if it does not fit. */
static int join_path(char *out, size_t n, const char *dir, const char *rel)
{
    int len;
    if (dir[0] == '\0')
        len = snprintf(out, n, "%s", rel);
    else if (dir[strlen(dir) - 1] == '/')
        len = snprintf(out, n, "%s%s", dir, rel);
    else
        len = snprintf(out, n, "%s/%s", dir, rel);
    return len >= 0 && (size_t)len < n;
}

static void add_dir(dsl_ctx *ctx, const char *dir, size_t len)
{
    if (ctx->n_dirs == DSL_MAX_DIRS || len >= ORCH_PATH_MAX)
        return;
    while (len > 1 && dir[len - 1] == '/')
        len--;
    memcpy(ctx->dirs[ctx->n_dirs], dir, len);
    ctx->dirs[ctx->n_dirs][len] = '\0';
    ctx->n_dirs++;
}

void dsl_search_path_init(dsl_ctx *ctx, const char *main_path)
{
    ctx->n_dirs = 0;
    const char *slash = strrchr(main_path, '/');
    if (slash == NULL)
        add_dir(ctx, "", 0);
    else
        add_dir(ctx, main_path, slash == main_path ? 1 : (size_t)(slash - main_path));
    if (ctx->n_dirs == 0) /* an absurdly long path: keep dirs[0] meaningful */
        add_dir(ctx, "", 0);
    const char *env = getenv("ORCH_PIPELINE_PATH");
    while (env != NULL && *env != '\0') {
        const char *end = strchr(env, ':');
        size_t len = end ? (size_t)(end - env) : strlen(env);
        if (len > 0)
            add_dir(ctx, env, len);
        env = end ? end + 1 : NULL;
    }
}

/* The search path for messages: "pipelines, /opt/p" ("." for the cwd). */
static const char *search_path_text(lua_State *L, const dsl_ctx *ctx)
{
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    for (int i = 0; i < ctx->n_dirs; i++) {
        if (i)
            luaL_addstring(&b, ", ");
        luaL_addstring(&b, ctx->dirs[i][0] ? ctx->dirs[i] : ".");
    }
    luaL_pushresult(&b);
    return lua_tostring(L, -1);
}

/* ------------------------------------------------------------ run a file */

/* Reads path into a malloc'd buffer; returns NULL with errno set on
 * failure, or with errno = EFBIG when the file exceeds DSL_FILE_MAX. */
static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    while (buf != NULL) {
        if (n == cap) {
            if (cap >= DSL_FILE_MAX) {
                free(buf);
                buf = NULL;
                errno = EFBIG;
                break;
            }
            char *grown = realloc(buf, cap * 2);
            if (grown == NULL) {
                free(buf);
                buf = NULL;
                errno = ENOMEM;
                break;
            }
            buf = grown;
            cap *= 2;
        }
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (got == 0) {
            if (ferror(f)) {
                int saved = errno ? errno : EIO;
                free(buf);
                buf = NULL;
                errno = saved;
            }
            break;
        }
    }
    fclose(f);
    *len = n;
    return buf;
}

int dsl_files_add(dsl_ctx *ctx, const char *path, const char *text, size_t len)
{
    orch_dsl_files *f = ctx->files;
    if (f == NULL)
        return 0;
    for (int i = 0; i < f->n; i++)
        if (strcmp(f->files[i].path, path) == 0)
            return 0; /* a module runs once per load; a sweep may read a file again */
    if (f->n == f->cap) {
        int cap = f->cap ? 2 * f->cap : 8;
        orch_dsl_file *grown = realloc(f->files, sizeof *grown * (size_t)cap);
        if (grown == NULL)
            return -1;
        f->files = grown;
        f->cap = cap;
    }
    /* owned by f: freed by orch_dsl_files_free */
    char *p = strdup(path), *t = malloc(len + 1);
    if (p == NULL || t == NULL) {
        free(p);
        free(t);
        return -1;
    }
    memcpy(t, text, len);
    t[len] = '\0';
    f->files[f->n++] = (orch_dsl_file){p, t, len};
    return 0;
}

void orch_dsl_files_free(orch_dsl_files *files)
{
    if (files == NULL)
        return;
    for (int i = 0; i < files->n; i++) {
        free(files->files[i].path);
        free(files->files[i].text);
    }
    free(files->files);
    memset(files, 0, sizeof *files);
}

void dsl_run_file(lua_State *L, const char *path)
{
    dsl_ctx *ctx = dsl_ctx_get(L);
    const char *chunk = lua_pushfstring(L, "@%s", path); /* before anything is malloc'd */
    size_t len = 0;
    errno = 0;
    char *src = read_file(path, &len);
    if (src == NULL) {
        const char *why = errno == EFBIG ? "larger than 4 MB" : strerror(errno);
        lua_pushfstring(L, "%s: cannot read the pipeline file (%s)", path, why);
        lua_error(L);
        return;
    }
    if (len > 0 && src[0] == LUA_SIGNATURE[0]) {
        free(src);
        lua_pushfstring(L,
                        "%s: binary chunks (bytecode) are not allowed in pipelines (sandbox); "
                        "give the Lua source",
                        path);
        lua_error(L);
        return;
    }
    /* recorded as read, before the byte order mark and #! line are blanked */
    if (dsl_files_add(ctx, path, src, len) != 0) {
        free(src);
        luaL_error(L, "%s: out of memory recording the pipeline file", path);
        return;
    }
    size_t skip = 0;
    if (len >= 3 && memcmp(src, "\xEF\xBB\xBF", 3) == 0) /* UTF-8 byte order mark */
        memset(src, ' ', skip = 3);
    if (len > skip && src[skip] == '#') /* a #! line; keep the newline for line numbers */
        for (size_t i = skip; i < len && src[i] != '\n'; i++)
            src[i] = ' ';
    int source = dsl_loc_add_file(&ctx->loc, path, src, len);
    /* lua_load reports its errors as a status (it never jumps), so the
     * buffer is freed on every path before anything can raise */
    int status = luaL_loadbufferx(L, src, len, chunk, "t");
    free(src);
    lua_remove(L, -2); /* the chunk name */
    if (status != LUA_OK) {
        const char *msg = lua_tostring(L, -1);
        if (msg != NULL && !dsl_has_position(msg))
            lua_pushfstring(L, "%s: %s", path, msg);
        lua_error(L);
    }
    lua_call(L, 0, 1);
    dsl_loc_finish(&ctx->loc, source);
}

static int run_file_cf(lua_State *L)
{
    dsl_run_file(L, lua_tostring(L, 1));
    return 1;
}

/* ---------------------------------------------------------------- require */

/* Pushes the message for a name outside the search path and raises. */
static int refuse_outside(lua_State *L, const dsl_ctx *ctx, const char *name)
{
    return luaL_error(L,
                      "require \"%s\": outside the pipeline search path (sandbox): give a "
                      "module name like \"base\", looked up as base.lua in %s",
                      name, search_path_text(L, ctx));
}

/* Checks name and writes its relative file name ("sub/base.lua") into rel. */
static void check_name(lua_State *L, const dsl_ctx *ctx, const char *name, char *rel, size_t n)
{
    static const char *const std_libs[] = {"os", "io", "debug", "package", "coroutine"};
    size_t len = strlen(name);
    if (len == 0)
        luaL_error(L, "require: empty module name");
    if (name[0] == '/' || name[0] == '.' || strchr(name, '/') != NULL ||
        strstr(name, "..") != NULL || strchr(name, '\\') != NULL || name[len - 1] == '.')
        refuse_outside(L, ctx, name);
    for (size_t i = 0; i < sizeof std_libs / sizeof std_libs[0]; i++)
        if (strcmp(name, std_libs[i]) == 0)
            luaL_error(L, "require \"%s\": '%s' is not available in pipelines (sandbox)", name,
                       name);
    if (len > 4 && strcmp(name + len - 4, ".lua") == 0)
        luaL_error(L, "require \"%s\": give the module name without \".lua\": require \"%s\"", name,
                   lua_pushlstring(L, name, len - 4));
    for (size_t i = 0; i < len; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-' || c == '.'))
            luaL_error(L,
                       "require \"%s\": invalid module name (letters, digits, '_', '-' and "
                       "'.' only)",
                       name);
    }
    if (len + 5 > n)
        luaL_error(L, "require: module name too long");
    for (size_t i = 0; i < len; i++)
        rel[i] = name[i] == '.' ? '/' : name[i];
    memcpy(rel + len, ".lua", 5);
}

/* 1 if the real path of file lies inside the real path of dir. */
static int inside(const char *dir, const char *file)
{
    char real_dir[PATH_MAX], real_file[PATH_MAX];
    if (realpath(dir[0] ? dir : ".", real_dir) == NULL || realpath(file, real_file) == NULL)
        return 0;
    size_t n = strlen(real_dir);
    if (n == 1 && real_dir[0] == '/')
        return 1;
    return strncmp(real_dir, real_file, n) == 0 && real_file[n] == '/';
}

int dsl_require(lua_State *L)
{
    dsl_ctx *ctx = dsl_ctx_get(L);
    const char *name = luaL_checkstring(L, 1);
    lua_settop(L, 1);
    char rel[ORCH_PATH_MAX];
    check_name(L, ctx, name, rel, sizeof rel);

    if (lua_rawgetp(L, LUA_REGISTRYINDEX, &loaded_key) != LUA_TTABLE) {
        lua_pop(L, 1);
        lua_newtable(L);
        lua_pushvalue(L, -1);
        lua_rawsetp(L, LUA_REGISTRYINDEX, &loaded_key);
    }
    int cache = lua_gettop(L);
    lua_pushvalue(L, 1);
    lua_rawget(L, cache);
    if (lua_touserdata(L, -1) == &loading_key)
        return luaL_error(L,
                          "require \"%s\": circular require (the module requires itself, "
                          "directly or through another module)",
                          name);
    if (!lua_isnil(L, -1))
        return 1;
    lua_pop(L, 1);

    char full[ORCH_PATH_MAX];
    int found = 0;
    for (int i = 0; i < ctx->n_dirs && !found; i++) {
        struct stat st;
        if (!join_path(full, sizeof full, ctx->dirs[i], rel) || stat(full, &st) != 0 ||
            !S_ISREG(st.st_mode))
            continue;
        if (!inside(ctx->dirs[i], full))
            return refuse_outside(L, ctx, name);
        found = 1;
    }
    if (!found)
        return luaL_error(L, "require \"%s\": no file %s in the pipeline search path (%s)", name,
                          rel, search_path_text(L, ctx));

    lua_pushvalue(L, 1);
    lua_pushlightuserdata(L, (void *)&loading_key);
    lua_rawset(L, cache);
    lua_pushcfunction(L, run_file_cf);
    lua_pushstring(L, full);
    if (dsl_pcall(L, 1, 1) != LUA_OK) {
        lua_pushvalue(L, 1);
        lua_pushnil(L);
        lua_rawset(L, cache);
        return lua_error(L);
    }
    if (lua_isnil(L, -1)) {
        lua_pop(L, 1);
        lua_pushboolean(L, 1);
    }
    lua_pushvalue(L, 1);
    lua_pushvalue(L, -2);
    lua_rawset(L, cache);
    return 1;
}
