/* convert_train.c - head, loss, strategy, optimizer, schedule, precision,
 * checks, tags and name; see convert.h. */
#include <stdio.h>
#include <string.h>

#include <lauxlib.h>

#include "lua/convert.h"
#include "lua/literal.h"
#include "lua/tower.h"

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

void cv_head_loss(cv *c, int root)
{
    orch_head *h = &c->p->head;
    orch_data *d = &c->p->data;
    int kind = ORCH_HEAD_CLASSIFIER, has_classes = 0, has_outputs = 0, has_head;
    int classes = 0, outputs = 0;
    has_head = section(c, root, "head", "kind", "{ kind = \"classifier\", classes = 4 }", NULL);
    if (has_head) {
        int t = lua_gettop(c->L);
        cv_check_section(c, t, "head", -1);
        cv_field(c, t, orch_field_get("head.kind"), &kind);
        has_classes = cv_field(c, t, orch_field_get("head.classes"), &classes);
        has_outputs = cv_field(c, t, orch_field_get("head.outputs"), &outputs);
        lua_pop(c->L, 1);
    }
    h->kind = (orch_head_kind)kind;
    if (h->kind == ORCH_HEAD_CLASSIFIER) {
        if (has_outputs)
            cv_fail(c, "head.outputs",
                    "head.outputs is for kind = \"regression\"; a classifier takes classes");
        if (has_classes && d->n_classes != 0 && classes != d->n_classes)
            cv_fail_pair(c, "head.classes", "data.classes",
                         "head.classes = %d does not match data.classes = %d", classes,
                         d->n_classes);
        if (has_classes)
            d->n_classes = classes;
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
        h->n_outputs = outputs;
    }

    int loss = h->kind == ORCH_HEAD_CLASSIFIER ? ORCH_LOSS_CROSS_ENTROPY : ORCH_LOSS_MSE;
    const orch_field *loss_field = orch_field_get("loss");
    const char *const *losses = loss_field->names;
    if (cv_field(c, root, loss_field, &loss)) {
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

/* --------------------------------------------------------------- strategy */

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
    if (cv_get(c, t, "targets") == LUA_TNIL) { /* the default list, read as if given */
        lua_pop(L, 1);
        dsl_push_default(L, orch_field_get(path));
    }
    size_t n = cv_list(c, -1, path, orch_field_get(path)->size);
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
    cv_value(c, orch_field_get("strategy.kind"), -1, "strategy.kind", NULL);
    lua_pop(L, 1);
    int kind = (int)s->kind;
    cv_check_section(c, t, "strategy", kind);

    /* the kind's options, and init (a safetensors file every strategy may
     * start its trainable tensors from), with the table's defaults */
    cv_scalars(c, t, "strategy", kind);
    switch (s->kind) {
    case ORCH_STRATEGY_SURGERY:
        check_linear(c, "strategy.replace", s->replace);
        break;
    case ORCH_STRATEGY_DETACH:
        if (s->adapter == ORCH_ADAPTER_MLP) {
            s->adapter_hidden = c->p->model.config.out_hidden_size;
            cv_field(c, t, orch_field_get("strategy.hidden"), NULL);
        } else {
            cv_forbid(c, t, "strategy", "hidden",
                      "adapter = \"linear\" (it is the MLP adapter's width)");
        }
        break;
    case ORCH_STRATEGY_LORA:
        lora_targets(c, t);
        break;
    case ORCH_STRATEGY_FULL:
        break;
    }
    lua_pop(L, 1);
}

/* -------------------------------------------------------------- optimizer */

void cv_optimizer(cv *c, int root)
{
    lua_State *L = c->L;
    orch_optimizer *o = &c->p->optimizer;
    section(c, root, "optimizer", NULL, "{ kind = \"adamw\", lr = 1e-3 }",
            ", e.g. optimizer = { kind = \"adamw\", lr = 1e-3 }");
    int t = lua_gettop(L);
    if (cv_get(c, t, "kind") == LUA_TNIL)
        cv_fail(c, "optimizer", "optimizer.kind is required (sgd or adamw)");
    cv_value(c, orch_field_get("optimizer.kind"), -1, "optimizer.kind", NULL);
    lua_pop(L, 1);
    int kind = (int)o->kind;
    cv_check_section(c, t, "optimizer", kind);

    cv_need(c, t, "optimizer", "lr", " (the learning rate, e.g. lr = 1e-3)");
    cv_scalars(c, t, "optimizer", kind);
    if (o->kind == ORCH_OPT_SGD) {
        if (o->nesterov && o->momentum == 0)
            cv_fail_pair(c, "optimizer.nesterov", "optimizer.momentum",
                         "optimizer.nesterov = true needs optimizer.momentum > 0");
    } else {
        const char *path = "optimizer.betas";
        const orch_field *betas = orch_field_get(path);
        if (cv_get(c, t, "betas") == LUA_TNIL) { /* the default, read as if given */
            lua_pop(L, 1);
            dsl_push_default(L, betas);
        }
        if (cv_list(c, -1, path, 16) != 2)
            cv_fail(c, path, "%s must be {beta1, beta2}, e.g. {0.9, 0.999}", path);
        double b[2];
        for (int i = 0; i < 2; i++) {
            char item[DSL_LOC_PATH_MAX];
            cv_index(item, path, i + 1);
            lua_rawgeti(L, -1, i + 1);
            b[i] = cv_num(c, -1, item);
            lua_pop(L, 1);
            if (!(b[i] >= betas->rmin && b[i] < betas->rmax))
                cv_fail(c, item, "%s must be in [%g, %g) (got %.14g)", item, betas->rmin,
                        betas->rmax, b[i]);
        }
        o->beta1 = b[0];
        o->beta2 = b[1];
        lua_pop(L, 1);
    }
    if (!(o->min_lr < o->lr))
        cv_fail_pair(c, "optimizer.min_lr", "optimizer.lr",
                     "optimizer.min_lr = %.14g must be less than optimizer.lr = %.14g", o->min_lr,
                     o->lr);
    lua_pop(L, 1);
}

/* --------------------------------------------------------------- schedule */

/* schedule.stop at t: a metric the head produces, and patience. */
static void stop(cv *c, int t)
{
    lua_State *L = c->L;
    orch_stop *st = &c->p->schedule.stop;
    const char *path = "schedule.stop";
    cv_check_section(c, t, path, -1);
    cv_need(c, t, path, "patience", " (evaluations without improvement before the run stops)");
    cv_scalars(c, t, path, -1);
    const orch_field *metric = orch_field_get("schedule.stop.metric");
    if (cv_get(c, t, "metric") == LUA_TNIL) {
        lua_pop(L, 1);
        dsl_push_default(L, metric);
    }
    int m = cv_enum(c, -1, "schedule.stop.metric", metric->names, metric->n_names);
    lua_pop(L, 1);
    snprintf(st->metric, sizeof st->metric, "%s", metric->names[m]);
    const orch_head *h = &c->p->head;
    if (h->kind == ORCH_HEAD_CLASSIFIER && strcmp(st->metric, "eval/mse") == 0)
        cv_fail_pair(c, "schedule.stop.metric", "head.kind",
                     "schedule.stop.metric = \"eval/mse\" is a regression head's; a classifier "
                     "reports eval/loss, eval/accuracy%s",
                     h->n_outputs > 5 ? " and eval/accuracy_top5" : "");
    if (h->kind == ORCH_HEAD_REGRESSION && strncmp(st->metric, "eval/accuracy", 13) == 0)
        cv_fail_pair(c, "schedule.stop.metric", "head.kind",
                     "schedule.stop.metric = \"%s\" is a classifier's; a regression head reports "
                     "eval/loss and eval/mse",
                     st->metric);
    if (h->kind == ORCH_HEAD_CLASSIFIER && strcmp(st->metric, "eval/accuracy_top5") == 0 &&
        h->n_outputs <= 5)
        cv_fail_pair(c, "schedule.stop.metric", "head.classes",
                     "schedule.stop.metric = \"eval/accuracy_top5\" needs more than 5 classes "
                     "(head.classes = %d)",
                     h->n_outputs);
    st->enabled = 1;
}

void cv_schedule(cv *c, int root)
{
    lua_State *L = c->L;
    orch_schedule *s = &c->p->schedule;
    section(c, root, "schedule", NULL, "{ steps = 20, batch_size = 4 }",
            ", e.g. schedule = { steps = 20, batch_size = 4 }");
    int t = lua_gettop(L);
    cv_check_section(c, t, "schedule", -1);
    cv_need(c, t, "schedule", "steps", " (optimizer steps to run)");
    cv_need(c, t, "schedule", "batch_size", " (images per step)");
    cv_scalars(c, t, "schedule", -1);
    if (s->warmup_steps > s->steps)
        cv_fail_pair(c, "schedule.warmup_steps", "schedule.steps",
                     "schedule.warmup_steps = %d is more than schedule.steps = %d", s->warmup_steps,
                     s->steps);
    const orch_data *d = &c->p->data;
    if (d->source == ORCH_DATA_SYNTHETIC && s->batch_size > d->n_samples)
        cv_fail_pair(c, "schedule.batch_size", "data.samples",
                     "schedule.batch_size = %d is larger than data.samples = %d", s->batch_size,
                     d->n_samples);
    else if (d->source == ORCH_DATA_SYNTHETIC &&
             (int64_t)s->batch_size * s->grad_accum > d->n_samples)
        cv_fail_pair(c, "schedule.grad_accum", "data.samples",
                     "schedule.batch_size x schedule.grad_accum = %lld images is more than "
                     "data.samples = %d",
                     (long long)s->batch_size * s->grad_accum, d->n_samples);
    int type = cv_get(c, t, "stop");
    if (type != LUA_TNIL) {
        if (type != LUA_TTABLE) {
            char got[96];
            cv_fail(c, "schedule.stop",
                    "schedule.stop must be a table like { metric = \"eval/loss\", patience = 3 } "
                    "(got %s)",
                    cv_describe(c, -1, got, sizeof got));
        }
        stop(c, lua_gettop(L));
    }
    lua_pop(L, 2);
}

/* ------------------------------------------------------------------- eval */

/* The evaluation set fits the head: a classifier's set has its classes. */
static void eval_data_fits(cv *c)
{
    orch_data *d = &c->p->eval.data;
    if (c->p->head.kind == ORCH_HEAD_REGRESSION) {
        if (d->n_classes != 0)
            cv_fail_pair(c, "eval.data.classes", "head.kind",
                         "eval.data.classes is for a classifier head, but head.kind = "
                         "\"regression\"");
        return;
    }
    if (d->n_classes != 0 && d->n_classes != c->p->head.n_outputs)
        cv_fail_pair(c, "eval.data.classes", "head.classes",
                     "eval.data.classes = %d does not match head.classes = %d", d->n_classes,
                     c->p->head.n_outputs);
    d->n_classes = c->p->head.n_outputs;
}

void cv_eval(cv *c, int root)
{
    lua_State *L = c->L;
    orch_eval *e = &c->p->eval;
    int type = cv_get(c, root, "eval");
    if (type == LUA_TNIL) {
        lua_pop(L, 1);
        if (c->p->schedule.stop.enabled)
            cv_fail(c, "schedule.stop",
                    "schedule.stop needs an evaluation to watch: add eval = { data = ..., every "
                    "= N } (or eval = { split = 0.1, every = N })");
        return;
    }
    if (type != LUA_TTABLE) {
        char got[96];
        cv_fail(c, "eval",
                "eval must be a table like { data = images { dir = \"val/\" }, every = 50 } (got "
                "%s)",
                cv_describe(c, -1, got, sizeof got));
    }
    int t = lua_gettop(L);
    cv_check_section(c, t, "eval", -1);
    int has_data = cv_get(c, t, "data") != LUA_TNIL;
    int has_split = cv_get(c, t, "split") != LUA_TNIL;
    lua_pop(L, 2);
    if (has_data && has_split)
        cv_fail(c, "eval.split",
                "give eval.data (a set) or eval.split (a fraction of data), not both");
    if (!has_data && !has_split)
        cv_fail(c, "eval",
                "eval needs data = images { ... } | shards { ... } | { source = ..., ... }, or "
                "split = 0.1 (a fraction of the training data)");
    if (has_split) {
        cv_get(c, t, "split");
        cv_value(c, orch_field_get("eval.split"), -1, "eval.split", NULL);
        lua_pop(L, 1);
    } else {
        if (cv_get(c, t, "data") != LUA_TTABLE) {
            char got[96];
            cv_fail(c, "eval.data",
                    "eval.data must be a table like images { dir = \"val/\" } (got %s)",
                    cv_describe(c, -1, got, sizeof got));
        }
        /* read by the rows of data through a view (userdata: collected,
         * so a refusal leaks nothing) */
        const orch_field *row = orch_field_get("eval.data");
        orch_pipeline *view = lua_newuserdatauv(L, sizeof *view, 0);
        orch_field_view(row, c->p, view);
        cv sub = *c;
        sub.p = view;
        cv_data_at(&sub, -2, "eval.data");
        orch_field_view_back(row, view, c->p);
        lua_pop(L, 2);
        eval_data_fits(c);
    }
    cv_scalars(c, t, "eval", -1);
    if (e->every > c->p->schedule.steps)
        cv_fail_pair(c, "eval.every", "schedule.steps",
                     "eval.every = %d is more than schedule.steps = %d", e->every,
                     c->p->schedule.steps);
    e->batch_size = c->p->schedule.batch_size;
    cv_field(c, t, orch_field_get("eval.batch_size"), NULL);
    if (has_data && e->data.source == ORCH_DATA_SYNTHETIC && e->batch_size > e->data.n_samples)
        cv_fail_pair(c, "eval.batch_size", "eval.data.samples",
                     "eval.batch_size = %d is larger than eval.data.samples = %d", e->batch_size,
                     e->data.n_samples);
    e->enabled = 1;
    lua_pop(L, 1);
}

/* ------------------------------------------ precision, loss_scale, seed */

void cv_precision(cv *c, int root)
{
    cv_scalars(c, root, "", -1); /* precision, checkpoint, seed */
    int t = 0;
    if (section(c, root, "loss_scale", NULL, "{ init = 65536, dynamic = true }", NULL)) {
        t = lua_gettop(c->L);
        cv_check_section(c, t, "loss_scale", -1);
    }
    cv_scalars(c, t, "loss_scale", -1);
    if (t != 0)
        lua_pop(c->L, 1);
}

/* --------------------------------------------------------------- parallel */

void cv_parallel(cv *c, int root)
{
    int t = 0;
    if (section(c, root, "parallel", NULL, "{ data = 2 }", NULL)) {
        t = lua_gettop(c->L);
        cv_check_section(c, t, "parallel", -1);
    }
    cv_scalars(c, t, "parallel", -1);
    if (t != 0)
        lua_pop(c->L, 1);
}

/* ----------------------------------------------------------------- checks */

static void inject(cv *c, int t)
{
    orch_inject *in = &c->p->checks.inject;
    const char *path = "checks.inject";
    cv_check_section(c, t, path, -1);
    cv_need(c, t, path, "step", " (the step to inject at, counted from 0)");
    cv_need(c, t, path, "stage", " (a module such as \"visual.merger.mlp.2\")");
    cv_scalars(c, t, path, -1);
    if (in->step >= c->p->schedule.steps)
        cv_fail_pair(c, "checks.inject.step", "schedule.steps",
                     "checks.inject.step = %d is past the last step %d (steps count from 0)",
                     in->step, c->p->schedule.steps - 1);
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
    in->enabled = 1;
}

void cv_checks(cv *c, int root)
{
    lua_State *L = c->L;
    if (!section(c, root, "checks", NULL, "{ nan = true, frozen = true }", NULL)) {
        cv_scalars(c, 0, "checks", -1);
        return;
    }
    int t = lua_gettop(L);
    cv_check_section(c, t, "checks", -1);
    cv_scalars(c, t, "checks", -1);
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
        size_t n = cv_list(c, -1, "tags", orch_field_get("tags")->size);
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

    if (cv_field(c, root, orch_field_get("name"), NULL)) {
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
