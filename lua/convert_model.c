/* convert_model.c - model (preset, config, weights) and data; see convert.h. */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>

#include "core/err.h"

#include "lua/convert.h"
#include "lua/suggest.h"
#include "lua/tower.h"

/* ---------------------------------------------------------------- model */

/* The structural fields: the INT rows of model in the table, in table
 * order (depth .. out_hidden_size), then fullatt_block_indexes; bit i of
 * cv.model_given is field i. */
enum {
    F_DEPTH,
    F_HIDDEN,
    F_HEADS,
    F_INTER,
    F_PATCH,
    F_TP,
    F_CH,
    F_MERGE,
    F_WINDOW,
    F_OUT,
    F_FULLATT,
    F__COUNT
};

/* The row of structural field i (F_*). */
static const orch_field *model_field(int i)
{
    int k = 0;
    for (size_t r = 0; r < orch_fields_count; r++) {
        const orch_field *f = &orch_fields[r];
        if (orch_field_in(f, "model") &&
            (f->type == ORCH_FIELD_INT || f->type == ORCH_FIELD_INT_LIST) && k++ == i)
            return f;
    }
    ORCH_UNREACHABLE();
}

/* "model.<key>" of field f (F_FULLATT included), as a constant. */
static const char *field_path(int f)
{
    return model_field(f)->path;
}

/* Where to point at for a rule between fields a and b: the one given
 * explicitly (b first), else the preset. */
static const char *blame(const cv *c, int a, int b)
{
    if (c->model_given & (1u << b))
        return field_path(b);
    if (c->model_given & (1u << a))
        return field_path(a);
    return c->p->model.preset[0] ? "model.preset" : "model";
}

static void check_config(cv *c)
{
    orch_model_config *k = &c->p->model.config;
    if (k->hidden_size % k->num_heads != 0)
        cv_fail(c, blame(c, F_HIDDEN, F_HEADS),
                "model.hidden_size = %d is not a multiple of model.num_heads = %d", k->hidden_size,
                k->num_heads);
    int head_dim = k->hidden_size / k->num_heads;
    if (head_dim % 4 != 0)
        cv_fail(c, blame(c, F_HIDDEN, F_HEADS),
                "head_dim = model.hidden_size / model.num_heads = %d must be a multiple of 4 "
                "(the rotary embedding splits it into h and w halves)",
                head_dim);
    int factor = k->patch_size * k->spatial_merge_size;
    if (k->window_size % factor != 0)
        cv_fail(c, blame(c, F_PATCH, F_WINDOW),
                "model.window_size = %d pixels is not a multiple of patch_size x "
                "spatial_merge_size = %d",
                k->window_size, factor);
    for (int i = 0; i < k->n_fullatt; i++) {
        int b = k->fullatt_block_indexes[i];
        if (b >= k->depth) {
            char where[DSL_LOC_PATH_MAX];
            if (c->model_given & (1u << F_FULLATT))
                cv_index(where, "model.fullatt_block_indexes", i + 1);
            else
                snprintf(where, sizeof where, "%s", blame(c, F_FULLATT, F_DEPTH));
            cv_fail(c, where,
                    "model.fullatt_block_indexes has block %d, but model.depth = %d (blocks are "
                    "0..%d)",
                    b, k->depth, k->depth - 1);
        }
        for (int j = 0; j < i; j++)
            if (k->fullatt_block_indexes[j] == b) {
                char where[DSL_LOC_PATH_MAX];
                cv_index(where, "model.fullatt_block_indexes", i + 1);
                cv_fail(c, where, "model.fullatt_block_indexes lists block %d twice", b);
            }
    }
    /* canonical order: membership is what counts */
    for (int i = 1; i < k->n_fullatt; i++)
        for (int j = i; j > 0 && k->fullatt_block_indexes[j - 1] > k->fullatt_block_indexes[j];
             j--) {
            int tmp = k->fullatt_block_indexes[j];
            k->fullatt_block_indexes[j] = k->fullatt_block_indexes[j - 1];
            k->fullatt_block_indexes[j - 1] = tmp;
        }
}

void cv_model(cv *c, int root)
{
    lua_State *L = c->L;
    orch_model *m = &c->p->model;
    int type = cv_get(c, root, "model");
    if (type == LUA_TNIL)
        cv_fail(c, "model", "model is required, e.g. model = { preset = \"tiny\" }");
    if (type == LUA_TSTRING) { /* model = "tiny" */
        lua_createtable(L, 0, 1);
        lua_insert(L, -2);
        lua_setfield(L, -2, "preset");
    } else if (type != LUA_TTABLE) {
        char got[96];
        cv_fail(c, "model", "model must be a table like { preset = \"tiny\" } (got %s)",
                cv_describe(c, -1, got, sizeof got));
    }
    int t = lua_gettop(L);
    cv_check_section(c, t, "model", -1);

    /* a preset name is an enum written into a string field */
    const orch_field *preset_field = orch_field_get("model.preset");
    int preset = -1;
    int have_preset = cv_get(c, t, "preset") != LUA_TNIL;
    if (have_preset)
        preset = cv_enum(c, -1, "model.preset", preset_field->names, preset_field->n_names);
    lua_pop(L, 1);
    if (have_preset) {
        snprintf(m->preset, sizeof m->preset, "%s", preset_field->names[preset]);
        int known = dsl_preset(m->preset, &m->config) == 0;
        ORCH_ASSERT(known); /* the name was checked against the same table */
    }
    char presets[256];
    dsl_join_names(presets, sizeof presets, preset_field->names, preset_field->n_names);
    for (int i = 0; i < F_FULLATT; i++) {
        const orch_field *f = model_field(i);
        if (cv_field(c, t, f, NULL))
            c->model_given |= 1u << i;
        else if (!have_preset)
            cv_fail(c, "model", "%s is required when model.preset is not given (presets: %s)",
                    f->path, presets);
    }

    type = cv_get(c, t, "fullatt_block_indexes");
    if (type != LUA_TNIL) {
        const char *path = "model.fullatt_block_indexes";
        size_t n = cv_list(c, -1, path, orch_field_get(path)->size);
        for (size_t i = 0; i < n; i++) {
            char item[DSL_LOC_PATH_MAX];
            cv_index(item, path, (long long)i + 1);
            lua_rawgeti(L, -1, (lua_Integer)i + 1);
            m->config.fullatt_block_indexes[i] = (int)cv_int(
                c, -1, item, model_field(F_FULLATT)->imin, model_field(F_FULLATT)->imax);
            lua_pop(L, 1);
        }
        m->config.n_fullatt = (int)n;
        c->model_given |= 1u << F_FULLATT;
    } else if (!have_preset) {
        cv_fail(c, "model",
                "model.fullatt_block_indexes is required when model.preset is not given ({} for "
                "none)");
    }
    lua_pop(L, 1);

    cv_field_or_default(c, t, orch_field_get("model.initializer_range"));
    cv_field(c, t, orch_field_get("model.weights"), NULL);
    check_config(c);
    lua_pop(L, 1);
}

/* ----------------------------------------------------------------- data */

/* The data table is read by the rows of data whatever its place: at names
 * it in messages ("data", or "eval.data" with c->p a view whose data is the
 * evaluation set), so eval.data needs no row of its own. */

#define MAX_SIDE              16384
#define MAX_PATCHES_PER_IMAGE (1LL << 22)

/* The row of data.KEY that applies to the data's source (data.shuffle has
 * one for shards and one for the other sources). */
static const orch_field *data_row(cv *c, const char *key)
{
    char path[DSL_LOC_PATH_MAX];
    cv_join(path, "data", key);
    for (size_t i = 0; i < orch_fields_count; i++)
        if (strcmp(orch_fields[i].path, path) == 0 && orch_field_applies(&orch_fields[i], c->p))
            return &orch_fields[i];
    ORCH_UNREACHABLE();
}

/* Reads t[key] into its data row when present (returns 1), named at.key. */
static int data_field(cv *c, int t, const char *at, const orch_field *f)
{
    char path[DSL_LOC_PATH_MAX];
    cv_join(path, at, orch_field_key(f));
    int present = cv_get(c, t, orch_field_key(f)) != LUA_TNIL;
    if (present)
        cv_value(c, f, -1, path, NULL);
    lua_pop(c->L, 1);
    return present;
}

static void image_size(cv *c, int t, const char *at)
{
    lua_State *L = c->L;
    const orch_model_config *k = &c->p->model.config;
    char path[DSL_LOC_PATH_MAX];
    cv_join(path, at, "image_size");
    const orch_field *f = orch_field_get("data.image_size");
    long long h, w;
    cv_get(c, t, "image_size");
    if (lua_type(L, -1) == LUA_TNUMBER) {
        h = w = cv_int(c, -1, path, f->imin, f->imax);
    } else {
        if (lua_type(L, -1) != LUA_TTABLE) {
            char got[96];
            cv_fail(c, path, "%s must be {height, width} in pixels (got %s)", path,
                    cv_describe(c, -1, got, sizeof got));
        }
        size_t n = cv_list(c, -1, path, 16);
        if (n != 2)
            cv_fail(c, path, "%s must be {height, width} in pixels (got %zu entries)", path, n);
        char item[DSL_LOC_PATH_MAX];
        lua_rawgeti(L, -1, 1);
        cv_index(item, path, 1);
        h = cv_int(c, -1, item, f->imin, f->imax);
        lua_rawgeti(L, -2, 2);
        cv_index(item, path, 2);
        w = cv_int(c, -1, item, f->imin, f->imax);
        lua_pop(L, 2);
    }
    lua_pop(L, 1);
    long long factor = (long long)k->patch_size * k->spatial_merge_size;
    if (h < factor || w < factor)
        cv_fail(c, path,
                "%s = {%lld, %lld}: each side must be at least patch_size x spatial_merge_size = "
                "%lld pixels",
                path, h, w, factor);
    if (h > MAX_SIDE || w > MAX_SIDE)
        cv_fail(c, path, "%s = {%lld, %lld}: each side must be at most %d pixels", path, h, w,
                MAX_SIDE);
    if ((h > w ? h : w) > 200 * (h < w ? h : w))
        cv_fail(c, path,
                "%s = {%lld, %lld}: the aspect ratio must be at most 200 (as in the "
                "Qwen2-VL processor)",
                path, h, w);
    c->p->data.image_height = (int)h;
    c->p->data.image_width = (int)w;
}

/* The synthetic row of data.image_grid_thw (the npy one is a file name). */
static const orch_field *grid_field(void)
{
    for (size_t i = 0; i < orch_fields_count; i++)
        if (orch_fields[i].type == ORCH_FIELD_GRIDS)
            return &orch_fields[i];
    ORCH_UNREACHABLE();
}

/* Reads the grid row at idx (named path) into row. */
static void grid_row(cv *c, int idx, const char *path, int64_t row[3])
{
    lua_State *L = c->L;
    const orch_field *f = grid_field();
    idx = lua_absindex(L, idx);
    if (lua_type(L, idx) != LUA_TTABLE) {
        char got[96];
        cv_fail(c, path, "%s must be a grid {t, h, w} of 3 integers (got %s)", path,
                cv_describe(c, idx, got, sizeof got));
    }
    size_t n = cv_list(c, idx, path, 16);
    if (n != 3)
        cv_fail(c, path, "%s must be a grid {t, h, w} of 3 integers (got %zu)", path, n);
    for (int i = 0; i < 3; i++) {
        char item[DSL_LOC_PATH_MAX];
        cv_index(item, path, i + 1);
        lua_rawgeti(L, idx, i + 1);
        row[i] = cv_int(c, -1, item, f->imin, f->imax);
        lua_pop(L, 1);
    }
    long long t = row[0], h = row[1], w = row[2];
    if (w == 1 && t > 1 && h > 1)
        cv_fail(c, path,
                "%s = [%lld, %lld, %lld]: the order is [t, h, w]; did you mean [1, %lld, %lld]?",
                path, t, h, w, t, h);
    int m = c->p->model.config.spatial_merge_size;
    if (h % m != 0)
        cv_fail(c, path,
                "%s = [%lld, %lld, %lld]: h = %lld is not a multiple of spatial_merge_size %d",
                path, t, h, w, h, m);
    if (w % m != 0)
        cv_fail(c, path,
                "%s = [%lld, %lld, %lld]: w = %lld is not a multiple of spatial_merge_size %d",
                path, t, h, w, w, m);
    if (t > MAX_PATCHES_PER_IMAGE || h > MAX_PATCHES_PER_IMAGE || t * h > MAX_PATCHES_PER_IMAGE ||
        t * h * w > MAX_PATCHES_PER_IMAGE)
        cv_fail(c, path, "%s = [%lld, %lld, %lld]: more than %lld patches in one image", path, t, h,
                w, MAX_PATCHES_PER_IMAGE);
}

static void grids(cv *c, int t, const char *at)
{
    lua_State *L = c->L;
    orch_data *d = &c->p->data;
    char path[DSL_LOC_PATH_MAX];
    cv_join(path, at, "image_grid_thw");
    int type = cv_get(c, t, "image_grid_thw");
    if (type == LUA_TSTRING)
        cv_fail(c, path,
                "%s names a file, which needs source = \"npy\"; synthetic data takes grids like "
                "{{1, 24, 24}}",
                path);
    if (type != LUA_TTABLE) {
        char got[96];
        cv_fail(c, path, "%s must be a list of grids {{t, h, w}, ...} (got %s)", path,
                cv_describe(c, -1, got, sizeof got));
    }
    int g = lua_gettop(L);
    int first = lua_rawgeti(L, g, 1);
    lua_pop(L, 1);
    if (first == LUA_TNUMBER) { /* one grid written flat: {1, 24, 24} */
        grid_row(c, g, path, d->image_grid_thw[0]);
        d->n_grids = 1;
    } else {
        size_t n = cv_list(c, g, path, grid_field()->size);
        if (n == 0)
            cv_fail(c, path, "%s is empty; give at least one grid {t, h, w}", path);
        for (size_t i = 0; i < n; i++) {
            char item[DSL_LOC_PATH_MAX];
            cv_index(item, path, (long long)i + 1);
            lua_rawgeti(L, g, (lua_Integer)i + 1);
            grid_row(c, -1, item, d->image_grid_thw[i]);
            lua_pop(L, 1);
        }
        d->n_grids = (int)n;
    }
    lua_pop(L, 1);
}

/* Reads the file name field at.KEY of source npy. */
static void data_file(cv *c, int t, const char *at, const char *key)
{
    cv_need(c, t, at, key, " with source = \"npy\" (a .npy file)");
    data_field(c, t, at, data_row(c, key)); /* image_grid_thw: the npy row, a file */
}

/* Reads the shard pattern at idx, named shown (located at where), into
 * out: a non-empty string with balanced braces, resolved against the
 * folder of the file that gives it; the data source expands it. */
static void shard_pattern(cv *c, int idx, const char *where, const char *shown, char *out)
{
    char name[ORCH_PATH_MAX];
    if (lua_type(c->L, idx) != LUA_TSTRING) {
        char got[96];
        cv_fail(c, where, "%s must be a file pattern such as \"train-{000..003}.tar\" (got %s)",
                shown, cv_describe(c, idx, got, sizeof got));
    }
    cv_str(c, idx, shown, name, sizeof name);
    int depth = 0;
    for (const char *s = name; *s != '\0'; s++) {
        depth += *s == '{' ? 1 : *s == '}' ? -1 : 0;
        if (depth < 0)
            break;
    }
    if (depth != 0)
        cv_fail(c, where, "%s = '%s' has an unbalanced brace (a range is written {000..003})",
                shown, name);
    cv_resolve(c, where, name, out, ORCH_PATH_MAX);
}

/* shards: the patterns are the positional entries (shards { "a.tar", ... })
 * or the list t.shards; the table's named keys are checked by the caller. */
static void shard_patterns(cv *c, int t, const char *at)
{
    lua_State *L = c->L;
    orch_data *d = &c->p->data;
    char path[DSL_LOC_PATH_MAX], item[DSL_LOC_PATH_MAX], shown[DSL_LOC_PATH_MAX];
    cv_join(path, at, "shards");
    size_t max = orch_field_get("data.shards")->size;
    size_t positional = (size_t)lua_rawlen(L, t);
    int keyed = cv_get(c, t, "shards") != LUA_TNIL;
    if (keyed && positional > 0)
        cv_fail(c, path,
                "%s: give the patterns as the entries of shards { ... } or as shards = { ... }, "
                "not both",
                path);
    int list = t;
    if (keyed) {
        cv_list(c, -1, path, max);
        list = lua_gettop(L);
    }
    size_t n = (size_t)lua_rawlen(L, list);
    if (n == 0)
        cv_fail(c, keyed ? path : at,
                "%s is empty; give at least one pattern, e.g. shards { \"train-{000..003}.tar\" }",
                path);
    if (n > max)
        cv_fail(c, keyed ? path : at, "%s has %zu patterns; at most %zu are allowed", path, n, max);
    for (size_t i = 0; i < n; i++) {
        cv_index(shown, path, (long long)i + 1);
        cv_index(item, at, (long long)i + 1); /* where the locator has it */
        lua_rawgeti(L, list, (lua_Integer)i + 1);
        shard_pattern(c, -1, keyed ? shown : item, shown, d->shards[i]);
        lua_pop(L, 1);
    }
    d->n_shards = (int)n;
    lua_pop(L, 1); /* t.shards or nil */
}

/* Pushes a copy of the named entries of the table at t (the positional
 * ones are shards' patterns, not keys). */
static void push_named(cv *c, int t)
{
    lua_State *L = c->L;
    lua_newtable(L);
    lua_pushnil(L);
    while (lua_next(L, t) != 0) {
        if (lua_type(L, -2) == LUA_TSTRING) {
            lua_pushvalue(L, -2);
            lua_insert(L, -2);
            lua_rawset(L, -4);
        } else {
            lua_pop(L, 1);
        }
    }
}

void cv_data_at(cv *c, int t, const char *at)
{
    lua_State *L = c->L;
    orch_data *d = &c->p->data;
    t = lua_absindex(L, t);
    const orch_field *source = orch_field_get("data.source");
    /* shards' patterns are positional: the keys are the named entries */
    int keys = t;
    if (cv_get(c, t, "source") == LUA_TSTRING && strcmp(lua_tostring(L, -1), "shards") == 0) {
        push_named(c, t);
        lua_remove(L, -2);
        keys = lua_gettop(L);
    } else {
        lua_pop(L, 1);
    }
    cv_check_section_at(c, keys, "data", -1, at);
    if (!data_field(c, t, at, source))
        cv_default(c, source);
    data_field(c, t, at, data_row(c, "classes"));

    switch (d->source) {
    case ORCH_DATA_SYNTHETIC: {
        const char *why = "source = \"synthetic\" (it names a .npy file for source = \"npy\")";
        cv_forbid(c, t, at, "pixel_values", why);
        cv_forbid(c, t, at, "labels", why);
        cv_check_section_at(c, keys, "data", (int)d->source, at);
        cv_need(c, t, at, "samples", " for synthetic data (the number of images)");
        data_field(c, t, at, data_row(c, "samples"));
        int has_size = cv_get(c, t, "image_size") != LUA_TNIL;
        int has_grid = cv_get(c, t, "image_grid_thw") != LUA_TNIL;
        lua_pop(L, 2);
        char grid_path[DSL_LOC_PATH_MAX];
        cv_join(grid_path, at, "image_grid_thw");
        if (has_size && has_grid)
            cv_fail(c, grid_path,
                    "give %s.image_size (pixels) or %s.image_grid_thw (patches), not both", at, at);
        if (!has_size && !has_grid)
            cv_fail(c, at,
                    "%s needs image_size = {height, width} in pixels or image_grid_thw = "
                    "{{t, h, w}, ...} in patches",
                    at);
        if (has_size)
            image_size(c, t, at);
        else
            grids(c, t, at);
        break;
    }
    case ORCH_DATA_NPY: {
        const char *why = "source = \"npy\" (the .npy files hold the images)";
        cv_forbid(c, t, at, "samples", why);
        cv_forbid(c, t, at, "image_size", why);
        cv_check_section_at(c, keys, "data", (int)d->source, at);
        data_file(c, t, at, "pixel_values");
        if (cv_get(c, t, "image_grid_thw") == LUA_TTABLE) {
            char grid_path[DSL_LOC_PATH_MAX];
            cv_join(grid_path, at, "image_grid_thw");
            cv_fail(c, grid_path,
                    "%s must name a .npy file with source = \"npy\" (grids as tables are for "
                    "synthetic data)",
                    grid_path);
        }
        lua_pop(L, 1);
        data_file(c, t, at, "image_grid_thw");
        data_file(c, t, at, "labels");
        break;
    }
    case ORCH_DATA_IMAGES:
        cv_check_section_at(c, keys, "data", (int)d->source, at);
        cv_need(c, t, at, "dir",
                " with source = \"images\" (a folder of PNG/JPEG files), e.g. images { dir = "
                "\"train/\" }");
        data_field(c, t, at, data_row(c, "dir"));
        data_field(c, t, at, data_row(c, "labels"));
        break;
    case ORCH_DATA_SHARDS:
        cv_check_section_at(c, keys, "data", (int)d->source, at);
        shard_patterns(c, t, at);
        break;
    }

    const orch_field *shuffle = data_row(c, "shuffle");
    if (!data_field(c, t, at, shuffle))
        cv_default(c, shuffle);
    data_field(c, t, at, data_row(c, "seed"));
    if (keys != t)
        lua_remove(L, keys);
}

void cv_data(cv *c, int root)
{
    lua_State *L = c->L;
    int type = cv_get(c, root, "data");
    if (type == LUA_TNIL)
        cv_fail(c, "data",
                "data is required, e.g. data = { source = \"synthetic\", samples = 64, classes = "
                "4, image_size = {56, 56} }");
    if (type != LUA_TTABLE) {
        char got[96];
        cv_fail(c, "data", "data must be a table (got %s)", cv_describe(c, -1, got, sizeof got));
    }
    cv_data_at(c, lua_gettop(L), "data");
    lua_pop(L, 1);
}

/* ------------------------------------------------------------ processor */

void cv_processor(cv *c, int root)
{
    lua_State *L = c->L;
    orch_processor_bounds *b = &c->p->processor;
    int t = 0;
    int type = cv_get(c, root, "processor");
    if (type == LUA_TTABLE) {
        t = lua_gettop(L);
        cv_check_section(c, t, "processor", -1);
    } else if (type != LUA_TNIL) {
        char got[96];
        cv_fail(c, "processor",
                "processor must be a table like { min_pixels = 3136, max_pixels = 1003520 } (got "
                "%s)",
                cv_describe(c, -1, got, sizeof got));
    }
    cv_scalars(c, t, "processor", -1);
    lua_pop(L, 1);
    if (t == 0)
        return; /* the hub's values: the data source fits them to the model */
    const orch_model_config *k = &c->p->model.config;
    long long factor = (long long)k->patch_size * k->spatial_merge_size;
    if (b->min_pixels < factor * factor)
        cv_fail_pair(c, "processor.min_pixels", "model.patch_size",
                     "processor.min_pixels = %d is less than (patch_size x spatial_merge_size)^2 "
                     "= %lld pixels, one merged patch",
                     b->min_pixels, factor * factor);
    if (b->min_pixels > b->max_pixels)
        cv_fail_pair(c, "processor.min_pixels", "processor.max_pixels",
                     "processor.min_pixels = %d is more than processor.max_pixels = %d",
                     b->min_pixels, b->max_pixels);
}
