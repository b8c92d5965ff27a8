/* convert_train.c - head, loss, strategy, optimizer, schedule, precision,
 * checks, tags and name; see convert.h. */
#include <stdio.h>
#include <string.h>

#include <lauxlib.h>

#include "lua/convert.h"
#include "lua/defaults.h"
#include "lua/suggest.h"
#include "lua/tower.h"

#define N_OF(a) (sizeof(a) / sizeof((a)[0]))

/* Pushes root[key] as a table: a string s becomes { [as] = s } when as is
 * not NULL (the shorthand strategy = "lora"); nil pushes nothing and
 * returns 0 (or fails with required_msg when it is not NULL). */
static int section(cv *c, int root, const char *key, const char *as, const char *example,
                   const char *required_msg)
{
    lua_State *L = c->L;
    int type = cv_get(c, root, key);
    if (type == LUA_TNIL) {
        lua_pop(L, 1);
        if (required_msg != NULL)
            cv_fail(c, key, "%s is required%s", key, required_msg);
        return 0;
    }
    if (type == LUA_TSTRING && as != NULL) {
        lua_createtable(L, 0, 1);
        lua_insert(L, -2);
        lua_setfield(L, -2, as);
    } else if (type != LUA_TTABLE) {
        char got[96];
        cv_fail(c, key, "%s must be a table like %s (got %s)", key, example,
                cv_describe(c, -1, got, sizeof got));
    }
    return 1;
}

/* ----------------------------------------------------------- head, loss */

static const char *const head_keys[] = {"kind", "classes", "outputs"};
static const char *const head_kinds[] = {"classifier", "regression"};
static const char *const losses[] = {"cross_entropy", "mse"};

void cv_head_loss(cv *c, int root)
{
    orch_head *h = &c->p->head;
    orch_data *d = &c->p->data;
    int kind = ORCH_HEAD_CLASSIFIER, has_classes = 0, has_outputs = 0, has_head;
    long long classes = 0, outputs = 0;
    has_head = section(c, root, "head", "kind", "{ kind = \"classifier\", classes = 4 }", NULL);
    if (has_head) {
        int t = lua_gettop(c->L);
        cv_check_keys(c, t, "head", head_keys, N_OF(head_keys));
        cv_opt_enum(c, t, "head", "kind", head_kinds, N_OF(head_kinds), &kind);
        has_classes = cv_opt_int(c, t, "head", "classes", 2, 1 << 20, &classes);
        has_outputs = cv_opt_int(c, t, "head", "outputs", 1, 1 << 16, &outputs);
        lua_pop(c->L, 1);
    }
    h->kind = (orch_head_kind)kind;
    if (h->kind == ORCH_HEAD_CLASSIFIER) {
        if (has_outputs)
            cv_fail(c, "head.outputs",
                    "head.outputs is for kind = \"regression\"; a classifier takes classes");
        if (has_classes && d->n_classes != 0 && classes != d->n_classes)
            cv_fail_pair(c, "head.classes", "data.classes",
                         "head.classes = %lld does not match data.classes = %d", classes,
                         d->n_classes);
        if (has_classes)
            d->n_classes = (int)classes;
        if (d->n_classes == 0)
            cv_fail(c, "data",
                    "a classifier head needs the number of classes: set data.classes (or "
                    "head.classes)");
        h->n_outputs = d->n_classes;
    } else {
        if (has_classes)
            cv_fail_pair(c, "head.classes", "head.kind",
                         "head.classes is for kind = \"classifier\"; a regression head takes "
                         "outputs");
        if (d->n_classes != 0)
            cv_fail_pair(c, "data.classes", "head.kind",
                         "data.classes is for a classifier head, but head.kind = \"regression\"");
        if (!has_outputs)
            cv_fail(c, "head",
                    "head.outputs is required for kind = \"regression\" (values per image)");
        h->n_outputs = (int)outputs;
    }

    int loss = h->kind == ORCH_HEAD_CLASSIFIER ? ORCH_LOSS_CROSS_ENTROPY : ORCH_LOSS_MSE;
    if (cv_opt_enum(c, root, "", "loss", losses, N_OF(losses), &loss)) {
        if (h->kind == ORCH_HEAD_CLASSIFIER && loss != ORCH_LOSS_CROSS_ENTROPY)
            cv_fail_pair(c, "loss", "head.kind",
                         "loss = \"%s\" does not fit a classifier head (use \"cross_entropy\")",
                         losses[loss]);
        if (h->kind == ORCH_HEAD_REGRESSION && loss != ORCH_LOSS_MSE)
            cv_fail_pair(c, "loss", "head.kind",
                         "loss = \"%s\" does not fit a regression head (use \"mse\")",
                         losses[loss]);
    }
    c->p->loss = (orch_loss_kind)loss;
}

/* --------------------------------------------------------------- options */

typedef struct kind_options {
    const char *kind;
    const char *const *keys; /* "kind" first */
    size_t n;
} kind_options;

/* Fails for a key of the table at t that belongs to another kind than
 * kinds[self]: "strategy.replace is an option of surgery, not of lora". Then
 * checks the keys against kinds[self] (typos get a suggestion). */
static void check_kind_keys(cv *c, int t, const char *path, const kind_options *kinds,
                            size_t n_kinds, size_t self)
{
    lua_State *L = c->L;
    lua_pushnil(L);
    while (lua_next(L, t) != 0) {
        lua_pop(L, 1);
        if (lua_type(L, -1) != LUA_TSTRING)
            continue;
        const char *key = lua_tostring(L, -1);
        int mine = 0;
        for (size_t i = 0; i < kinds[self].n; i++)
            mine |= strcmp(key, kinds[self].keys[i]) == 0;
        if (mine)
            continue;
        for (size_t k = 0; k < n_kinds; k++) {
            if (k == self)
                continue;
            for (size_t i = 0; i < kinds[k].n; i++) {
                if (strcmp(key, kinds[k].keys[i]) != 0)
                    continue;
                char full[DSL_LOC_PATH_MAX], list[256];
                cv_join(full, path, key);
                if (kinds[self].n > 1)
                    dsl_join_names(list, sizeof list, kinds[self].keys + 1, kinds[self].n - 1);
                else
                    snprintf(list, sizeof list, "none");
                cv_fail(c, full, "%s is an option of %s, not of %s (options of %s: %s)", full,
                        kinds[k].kind, kinds[self].kind, kinds[self].kind, list);
            }
        }
    }
    cv_check_keys(c, t, path, kinds[self].keys, kinds[self].n);
}

/* --------------------------------------------------------------- strategy */

static const char *const strategy_names[] = {"surgery", "detach", "lora", "full"};
static const char *const surgery_keys[] = {"kind", "replace", "init", "grad_through_frozen"};
static const char *const detach_keys[] = {"kind", "adapter", "hidden", "init"};
static const char *const lora_keys[] = {"kind", "rank", "alpha", "dropout", "targets", "init"};
static const char *const full_keys[] = {"kind", "init"};
static const kind_options strategy_options[] = {
    {"surgery", surgery_keys, N_OF(surgery_keys)},
    {"detach", detach_keys, N_OF(detach_keys)},
    {"lora", lora_keys, N_OF(lora_keys)},
    {"full", full_keys, N_OF(full_keys)},
};
static const char *const adapters[] = {"linear", "mlp"};

static void check_linear(cv *c, const char *path, const char *name)
{
    int depth = c->p->model.config.depth;
    char near[ORCH_NAME_MAX], hint[ORCH_NAME_MAX + 32] = "";
    int found = dsl_find_stage(c->p, name, 1, near, sizeof near);
    if (found < 0)
        cv_fail(c, path, "out of memory");
    if (found)
        return;
    if (near[0] != '\0')
        snprintf(hint, sizeof hint, " (did you mean '%s'?)", near);
    cv_fail(c, path,
            "%s = '%s' is not a Linear of the tower%s; the Linears are "
            "visual.blocks.N.{attn.qkv, attn.proj, mlp.gate_proj, mlp.up_proj, mlp.down_proj} "
            "with N < %d, visual.merger.mlp.0 and visual.merger.mlp.2",
            path, name, hint, depth);
}

static void lora_targets(cv *c, int t)
{
    lua_State *L = c->L;
    orch_strategy *s = &c->p->strategy;
    const char *path = "strategy.targets";
    if (cv_get(c, t, "targets") == LUA_TNIL) {
        lua_pop(L, 1);
        snprintf(s->targets[0], sizeof s->targets[0], "%s", DSL_DEFAULT_LORA_TARGET_0);
        snprintf(s->targets[1], sizeof s->targets[1], "%s", DSL_DEFAULT_LORA_TARGET_1);
        s->n_targets = 2;
        return;
    }
    size_t n = cv_list(c, -1, path, ORCH_MAX_TARGETS);
    if (n == 0)
        cv_fail(c, path, "%s is empty; give at least one Linear, e.g. {\"visual.merger.mlp.0\"}",
                path);
    for (size_t i = 0; i < n; i++) {
        char item[DSL_LOC_PATH_MAX];
        cv_index(item, path, (long long)i + 1);
        lua_rawgeti(L, -1, (lua_Integer)i + 1);
        cv_str(c, -1, item, s->targets[i], sizeof s->targets[i]);
        lua_pop(L, 1);
        check_linear(c, item, s->targets[i]);
        for (size_t j = 0; j < i; j++)
            if (strcmp(s->targets[j], s->targets[i]) == 0)
                cv_fail(c, item, "%s lists '%s' twice", path, s->targets[i]);
    }
    s->n_targets = (int)n;
    lua_pop(L, 1);
}

void cv_strategy(cv *c, int root)
{
    lua_State *L = c->L;
    orch_strategy *s = &c->p->strategy;
    section(c, root, "strategy", "kind", "lora { rank = 4 }",
            ": surgery { ... }, detach { ... }, lora { ... } or full {}");
    int t = lua_gettop(L);
    if (cv_get(c, t, "kind") == LUA_TNIL)
        cv_fail(c, "strategy",
                "strategy.kind is required (surgery, detach, lora or full); or use a "
                "constructor such as lora { rank = 4 }");
    int kind = cv_enum(c, -1, "strategy.kind", strategy_names, N_OF(strategy_names));
    lua_pop(L, 1);
    s->kind = (orch_strategy_kind)kind;
    check_kind_keys(c, t, "strategy", strategy_options, N_OF(strategy_options), (size_t)kind);

    char name[ORCH_PATH_MAX];
    long long v;
    /* every strategy may start its trainable tensors from a safetensors file
     * (the names checkpoints are written with) */
    if (cv_opt_str(c, t, "strategy", "init", name, sizeof name))
        cv_file(c, "strategy.init", name, s->init, sizeof s->init);
    switch (s->kind) {
    case ORCH_STRATEGY_SURGERY:
        snprintf(s->replace, sizeof s->replace, "%s", DSL_DEFAULT_SURGERY_REPLACE);
        cv_opt_str(c, t, "strategy", "replace", s->replace, sizeof s->replace);
        check_linear(c, "strategy.replace", s->replace);
        cv_opt_bool(c, t, "strategy", "grad_through_frozen", &s->grad_through_frozen);
        break;
    case ORCH_STRATEGY_DETACH: {
        int adapter = ORCH_ADAPTER_LINEAR;
        cv_opt_enum(c, t, "strategy", "adapter", adapters, N_OF(adapters), &adapter);
        s->adapter = (orch_adapter_kind)adapter;
        if (s->adapter == ORCH_ADAPTER_MLP) {
            s->adapter_hidden = c->p->model.config.out_hidden_size;
            if (cv_opt_int(c, t, "strategy", "hidden", 1, 1 << 16, &v))
                s->adapter_hidden = (int)v;
        } else {
            cv_forbid(c, t, "strategy", "hidden",
                      "adapter = \"linear\" (it is the MLP adapter's width)");
        }
        break;
    }
    case ORCH_STRATEGY_LORA: {
        double x;
        s->rank = DSL_DEFAULT_LORA_RANK;
        s->alpha = DSL_DEFAULT_LORA_ALPHA;
        s->dropout = DSL_DEFAULT_LORA_DROPOUT;
        if (cv_opt_int(c, t, "strategy", "rank", 1, 4096, &v))
            s->rank = (int)v;
        if (cv_opt_num(c, t, "strategy", "alpha", &x)) {
            if (!(x > 0))
                cv_fail(c, "strategy.alpha", "strategy.alpha must be > 0 (got %.14g)", x);
            s->alpha = x;
        }
        if (cv_opt_num(c, t, "strategy", "dropout", &x)) {
            if (!(x >= 0 && x < 1))
                cv_fail(c, "strategy.dropout", "strategy.dropout must be in [0, 1) (got %.14g)", x);
            s->dropout = x;
        }
        lora_targets(c, t);
        break;
    }
    case ORCH_STRATEGY_FULL:
        break;
    }
    lua_pop(L, 1);
}

/* -------------------------------------------------------------- optimizer */

static const char *const optimizer_names[] = {"sgd", "adamw"};
static const char *const sgd_keys[] = {"kind",      "lr",       "weight_decay",
                                       "grad_clip", "momentum", "nesterov"};
static const char *const adamw_keys[] = {"kind", "lr", "weight_decay", "grad_clip", "betas", "eps"};
static const kind_options optimizer_options[] = {
    {"sgd", sgd_keys, N_OF(sgd_keys)},
    {"adamw", adamw_keys, N_OF(adamw_keys)},
};

/* Reads t[key] as a number that must satisfy lo <= x (or lo < x when
 * open_lo) and x < hi when hi_open; returns 1 when present. */
static int opt_range(cv *c, int t, const char *tpath, const char *key, double lo, int open_lo,
                     double hi, double *out)
{
    double x;
    if (!cv_opt_num(c, t, tpath, key, &x))
        return 0;
    char full[DSL_LOC_PATH_MAX];
    cv_join(full, tpath, key);
    int ok = (open_lo ? x > lo : x >= lo) && (hi <= 0 || x < hi);
    if (!ok) {
        if (hi > 0)
            cv_fail(c, full, "%s must be in %s%g, %g) (got %.14g)", full, open_lo ? "(" : "[", lo,
                    hi, x);
        cv_fail(c, full, "%s must be %s %g (got %.14g)", full, open_lo ? ">" : ">=", lo, x);
    }
    *out = x;
    return 1;
}

void cv_optimizer(cv *c, int root)
{
    lua_State *L = c->L;
    orch_optimizer *o = &c->p->optimizer;
    section(c, root, "optimizer", NULL, "{ kind = \"adamw\", lr = 1e-3 }",
            ", e.g. optimizer = { kind = \"adamw\", lr = 1e-3 }");
    int t = lua_gettop(L);
    if (cv_get(c, t, "kind") == LUA_TNIL)
        cv_fail(c, "optimizer", "optimizer.kind is required (sgd or adamw)");
    int kind = cv_enum(c, -1, "optimizer.kind", optimizer_names, N_OF(optimizer_names));
    lua_pop(L, 1);
    o->kind = (orch_optimizer_kind)kind;
    check_kind_keys(c, t, "optimizer", optimizer_options, N_OF(optimizer_options), (size_t)kind);

    cv_need(c, t, "optimizer", "lr", " (the learning rate, e.g. lr = 1e-3)");
    opt_range(c, t, "optimizer", "lr", 0, 1, 0, &o->lr);
    o->weight_decay =
        o->kind == ORCH_OPT_ADAMW ? DSL_DEFAULT_ADAMW_WEIGHT_DECAY : DSL_DEFAULT_SGD_WEIGHT_DECAY;
    opt_range(c, t, "optimizer", "weight_decay", 0, 0, 0, &o->weight_decay);
    o->grad_clip = DSL_DEFAULT_GRAD_CLIP;
    opt_range(c, t, "optimizer", "grad_clip", 0, 0, 0, &o->grad_clip);
    if (o->kind == ORCH_OPT_SGD) {
        opt_range(c, t, "optimizer", "momentum", 0, 0, 1, &o->momentum);
        cv_opt_bool(c, t, "optimizer", "nesterov", &o->nesterov);
        if (o->nesterov && o->momentum == 0)
            cv_fail_pair(c, "optimizer.nesterov", "optimizer.momentum",
                         "optimizer.nesterov = true needs optimizer.momentum > 0");
    } else {
        o->beta1 = DSL_DEFAULT_BETA1;
        o->beta2 = DSL_DEFAULT_BETA2;
        o->eps = DSL_DEFAULT_EPS;
        if (cv_get(c, t, "betas") != LUA_TNIL) {
            const char *path = "optimizer.betas";
            if (cv_list(c, -1, path, 16) != 2)
                cv_fail(c, path, "%s must be {beta1, beta2}, e.g. {0.9, 0.999}", path);
            double b[2];
            for (int i = 0; i < 2; i++) {
                char item[DSL_LOC_PATH_MAX];
                cv_index(item, path, i + 1);
                lua_rawgeti(L, -1, i + 1);
                b[i] = cv_num(c, -1, item);
                lua_pop(L, 1);
                if (!(b[i] >= 0 && b[i] < 1))
                    cv_fail(c, item, "%s must be in [0, 1) (got %.14g)", item, b[i]);
            }
            o->beta1 = b[0];
            o->beta2 = b[1];
        }
        lua_pop(L, 1);
        opt_range(c, t, "optimizer", "eps", 0, 1, 0, &o->eps);
    }
    lua_pop(L, 1);
}

/* --------------------------------------------------------------- schedule */

static const char *const schedule_keys[] = {"steps", "batch_size", "warmup_steps",
                                            "checkpoint_every"};

void cv_schedule(cv *c, int root)
{
    lua_State *L = c->L;
    orch_schedule *s = &c->p->schedule;
    section(c, root, "schedule", NULL, "{ steps = 20, batch_size = 4 }",
            ", e.g. schedule = { steps = 20, batch_size = 4 }");
    int t = lua_gettop(L);
    cv_check_keys(c, t, "schedule", schedule_keys, N_OF(schedule_keys));
    long long v;
    cv_need(c, t, "schedule", "steps", " (optimizer steps to run)");
    cv_opt_int(c, t, "schedule", "steps", 1, 1000000000, &v);
    s->steps = (int)v;
    cv_need(c, t, "schedule", "batch_size", " (images per step)");
    cv_opt_int(c, t, "schedule", "batch_size", 1, 1 << 20, &v);
    s->batch_size = (int)v;
    if (cv_opt_int(c, t, "schedule", "warmup_steps", 0, CV_INT_MAX, &v)) {
        if (v > s->steps)
            cv_fail_pair(c, "schedule.warmup_steps", "schedule.steps",
                         "schedule.warmup_steps = %lld is more than schedule.steps = %d", v,
                         s->steps);
        s->warmup_steps = (int)v;
    }
    if (cv_opt_int(c, t, "schedule", "checkpoint_every", 0, CV_INT_MAX, &v))
        s->checkpoint_every = (int)v;
    const orch_data *d = &c->p->data;
    if (d->source == ORCH_DATA_SYNTHETIC && s->batch_size > d->n_samples)
        cv_fail_pair(c, "schedule.batch_size", "data.samples",
                     "schedule.batch_size = %d is larger than data.samples = %d", s->batch_size,
                     d->n_samples);
    lua_pop(L, 1);
}

/* ------------------------------------------ precision, loss_scale, seed */

static const char *const precisions[] = {"fp32", "bf16", "fp16"};
static const char *const loss_scale_keys[] = {"init", "dynamic", "growth_interval"};

void cv_precision(cv *c, int root)
{
    orch_pipeline *p = c->p;
    int precision = ORCH_FP32;
    cv_opt_enum(c, root, "", "precision", precisions, N_OF(precisions), &precision);
    p->precision = (orch_precision)precision;

    p->loss_scale.init = DSL_DEFAULT_LOSS_SCALE_INIT;
    p->loss_scale.dynamic = 0;
    p->loss_scale.growth_interval = DSL_DEFAULT_LOSS_SCALE_GROWTH;
    if (section(c, root, "loss_scale", NULL, "{ init = 65536, dynamic = true }", NULL)) {
        int t = lua_gettop(c->L);
        long long v;
        cv_check_keys(c, t, "loss_scale", loss_scale_keys, N_OF(loss_scale_keys));
        opt_range(c, t, "loss_scale", "init", 0, 1, 0, &p->loss_scale.init);
        cv_opt_bool(c, t, "loss_scale", "dynamic", &p->loss_scale.dynamic);
        if (cv_opt_int(c, t, "loss_scale", "growth_interval", 1, 1000000000, &v))
            p->loss_scale.growth_interval = (int)v;
        lua_pop(c->L, 1);
    }
    cv_opt_bool(c, root, "", "checkpoint", &p->checkpoint);
    long long seed = 0;
    cv_opt_int(c, root, "", "seed", 0, 0x7fffffffffffffffLL, &seed);
    p->seed = (uint64_t)seed;
}

/* ----------------------------------------------------------------- checks */

static const char *const checks_keys[] = {"nan", "frozen", "on_nan", "stats_every", "inject"};
static const char *const on_nan_names[] = {"abort", "skip_update", "continue"};
static const char *const inject_keys[] = {"step", "phase", "stage", "tensor", "value"};
static const char *const phases[] = {"forward", "backward", "update"};
static const char *const inject_values[] = {"nan", "inf"};

static void inject(cv *c, int t)
{
    orch_inject *in = &c->p->checks.inject;
    const char *path = "checks.inject";
    cv_check_keys(c, t, path, inject_keys, N_OF(inject_keys));
    long long step;
    cv_need(c, t, path, "step", " (the step to inject at, counted from 0)");
    cv_opt_int(c, t, path, "step", 0, CV_INT_MAX, &step);
    if (step >= c->p->schedule.steps)
        cv_fail_pair(c, "checks.inject.step", "schedule.steps",
                     "checks.inject.step = %lld is past the last step %d (steps count from 0)",
                     step, c->p->schedule.steps - 1);
    in->step = (int)step;
    int phase = ORCH_PHASE_FORWARD;
    cv_opt_enum(c, t, path, "phase", phases, N_OF(phases), &phase);
    in->phase = (orch_phase)phase;
    cv_need(c, t, path, "stage", " (a module such as \"visual.merger.mlp.2\")");
    cv_opt_str(c, t, path, "stage", in->stage, sizeof in->stage);
    char near[ORCH_NAME_MAX], hint[ORCH_NAME_MAX + 32] = "";
    int found = dsl_find_stage(c->p, in->stage, 0, near, sizeof near);
    if (found < 0)
        cv_fail(c, "checks.inject.stage", "out of memory");
    if (!found) {
        if (near[0] != '\0')
            snprintf(hint, sizeof hint, " (did you mean '%s'?)", near);
        cv_fail(c, "checks.inject.stage",
                "checks.inject.stage = '%s' is not a stage%s; the stages are the nodes of the "
                "graph this pipeline builds (orch plan FILE --dot shows them)",
                in->stage, hint);
    }
    cv_opt_str(c, t, path, "tensor", in->tensor, sizeof in->tensor);
    int value = 0;
    cv_opt_enum(c, t, path, "value", inject_values, N_OF(inject_values), &value);
    in->value_is_inf = value;
    in->enabled = 1;
}

void cv_checks(cv *c, int root)
{
    lua_State *L = c->L;
    orch_checks *k = &c->p->checks;
    k->nan = 1;
    k->frozen = 0;
    k->on_nan = ORCH_ON_NAN_ABORT;
    k->stats_every = 0;
    if (!section(c, root, "checks", NULL, "{ nan = true, frozen = true }", NULL))
        return;
    int t = lua_gettop(L);
    cv_check_keys(c, t, "checks", checks_keys, N_OF(checks_keys));
    cv_opt_bool(c, t, "checks", "nan", &k->nan);
    cv_opt_bool(c, t, "checks", "frozen", &k->frozen);
    int on_nan = ORCH_ON_NAN_ABORT;
    cv_opt_enum(c, t, "checks", "on_nan", on_nan_names, N_OF(on_nan_names), &on_nan);
    k->on_nan = (orch_on_nan)on_nan;
    long long v;
    if (cv_opt_int(c, t, "checks", "stats_every", 0, 1000000000, &v))
        k->stats_every = (int)v;
    int type = cv_get(c, t, "inject");
    if (type != LUA_TNIL) {
        if (type != LUA_TTABLE) {
            char got[96];
            cv_fail(c, "checks.inject",
                    "checks.inject must be a table like { step = 3, phase = \"backward\", stage "
                    "= \"visual.merger.mlp.2\" } (got %s)",
                    cv_describe(c, -1, got, sizeof got));
        }
        inject(c, lua_gettop(L));
    }
    lua_pop(L, 2);
}

/* ------------------------------------------------------------ tags, name */

void cv_tags_name(cv *c, int root)
{
    lua_State *L = c->L;
    orch_pipeline *p = c->p;
    if (cv_get(c, root, "tags") != LUA_TNIL) {
        size_t n = cv_list(c, -1, "tags", ORCH_MAX_TAGS);
        for (size_t i = 0; i < n; i++) {
            char item[DSL_LOC_PATH_MAX];
            cv_index(item, "tags", (long long)i + 1);
            lua_rawgeti(L, -1, (lua_Integer)i + 1);
            cv_str(c, -1, item, p->tags[i], sizeof p->tags[i]);
            lua_pop(L, 1);
            if (p->tags[i][0] == '\0')
                cv_fail(c, item, "%s is empty", item);
        }
        p->n_tags = (int)n;
    }
    lua_pop(L, 1);

    if (cv_opt_str(c, root, "", "name", p->name, sizeof p->name)) {
        if (p->name[0] == '\0')
            cv_fail(c, "name", "name is empty");
        return;
    }
    const char *base = strrchr(p->path, '/');
    base = base ? base + 1 : p->path;
    size_t len = strlen(base);
    if (len > 4 && strcmp(base + len - 4, ".lua") == 0)
        len -= 4;
    if (len >= sizeof p->name)
        len = sizeof p->name - 1;
    memcpy(p->name, base, len);
    p->name[len] = '\0';
}
