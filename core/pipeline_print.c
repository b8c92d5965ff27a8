/* pipeline_print.c - the `orch plan` listing; see pipeline_print.h. */
#include "core/pipeline_print.h"

#include <stdlib.h>
#include <string.h>

#include "core/pipeline_json.h"

/* A real as the shortest of %.15g..%.17g that reads back exactly. */
static void put_real(FILE *out, double x)
{
    char buf[64];
    for (int digits = 15; digits <= 17; digits++) {
        snprintf(buf, sizeof buf, "%.*g", digits, x);
        if (strtod(buf, NULL) == x)
            break;
    }
    fputs(buf, out);
}

/* A Lua string literal. */
static void put_str(FILE *out, const char *s)
{
    fputc('"', out);
    for (; *s != '\0'; s++) {
        if (*s == '"' || *s == '\\')
            fputc('\\', out);
        fputc(*s, out);
    }
    fputc('"', out);
}

static void line_str(FILE *out, const char *path, const char *s, const char *comment)
{
    fprintf(out, "%s = ", path);
    put_str(out, s);
    fprintf(out, "%s%s\n", comment[0] ? "  -- " : "", comment);
}

static void line_int(FILE *out, const char *path, long long v, const char *comment)
{
    fprintf(out, "%s = %lld%s%s\n", path, v, comment[0] ? "  -- " : "", comment);
}

static void line_real(FILE *out, const char *path, double v, const char *comment)
{
    fprintf(out, "%s = ", path);
    put_real(out, v);
    fprintf(out, "%s%s\n", comment[0] ? "  -- " : "", comment);
}

static void line_bool(FILE *out, const char *path, int v)
{
    fprintf(out, "%s = %s\n", path, v ? "true" : "false");
}

static void print_model(const orch_model *m, FILE *out)
{
    const orch_model_config *c = &m->config;
    if (m->preset[0] != '\0')
        line_str(out, "model.preset", m->preset, "");
    line_str(out, "model.weights", m->weights, m->weights[0] ? "" : "none: seeded initialization");
    line_int(out, "model.depth", c->depth, "");
    line_int(out, "model.hidden_size", c->hidden_size, "");
    line_int(out, "model.num_heads", c->num_heads, "");
    line_int(out, "model.intermediate_size", c->intermediate_size, "");
    line_int(out, "model.patch_size", c->patch_size, "");
    line_int(out, "model.temporal_patch_size", c->temporal_patch_size, "");
    line_int(out, "model.in_channels", c->in_channels, "");
    line_int(out, "model.spatial_merge_size", c->spatial_merge_size, "");
    line_int(out, "model.window_size", c->window_size, "pixels");
    line_int(out, "model.out_hidden_size", c->out_hidden_size, "");
    fprintf(out, "model.fullatt_block_indexes = {");
    for (int i = 0; i < c->n_fullatt; i++)
        fprintf(out, "%s%d", i ? ", " : "", c->fullatt_block_indexes[i]);
    fprintf(out, "}\n");
    line_real(out, "model.initializer_range", c->initializer_range,
              m->weights[0] ? "unused: weights are loaded" : "");
}

static void print_data(const orch_data *d, FILE *out)
{
    line_str(out, "data.source", orch_data_source_name(d->source), "");
    if (d->source == ORCH_DATA_NPY) {
        line_str(out, "data.pixel_values", d->pixel_values, "");
        line_str(out, "data.image_grid_thw", d->grid_thw_path, "");
        line_str(out, "data.labels", d->labels, "");
    } else {
        line_int(out, "data.samples", d->n_samples, "");
        if (d->n_grids > 0) {
            fprintf(out, "data.image_grid_thw = {");
            for (int i = 0; i < d->n_grids; i++)
                fprintf(out, "%s{%lld, %lld, %lld}", i ? ", " : "",
                        (long long)d->image_grid_thw[i][0], (long long)d->image_grid_thw[i][1],
                        (long long)d->image_grid_thw[i][2]);
            fprintf(out, "}  -- [t, h, w] in patches\n");
        } else {
            fprintf(out, "data.image_size = {%d, %d}  -- height, width in pixels\n",
                    d->image_height, d->image_width);
        }
    }
    if (d->n_classes > 0)
        line_int(out, "data.classes", d->n_classes, "");
}

static void print_strategy(const orch_strategy *s, FILE *out)
{
    line_str(out, "strategy.kind", orch_strategy_name(s->kind), "");
    switch (s->kind) {
    case ORCH_STRATEGY_SURGERY:
        line_str(out, "strategy.replace", s->replace, "");
        line_str(out, "strategy.init", s->init, s->init[0] ? "" : "none: seeded initialization");
        line_bool(out, "strategy.grad_through_frozen", s->grad_through_frozen);
        break;
    case ORCH_STRATEGY_DETACH:
        line_str(out, "strategy.adapter", orch_adapter_name(s->adapter), "");
        if (s->adapter == ORCH_ADAPTER_MLP)
            line_int(out, "strategy.hidden", s->adapter_hidden, "");
        break;
    case ORCH_STRATEGY_LORA:
        line_int(out, "strategy.rank", s->rank, "");
        line_real(out, "strategy.alpha", s->alpha, "");
        line_real(out, "strategy.dropout", s->dropout, "");
        fprintf(out, "strategy.targets = {");
        for (int i = 0; i < s->n_targets; i++) {
            fputs(i ? ", " : "", out);
            put_str(out, s->targets[i]);
        }
        fprintf(out, "}\n");
        break;
    case ORCH_STRATEGY_FULL:
        break;
    }
}

static void print_optimizer(const orch_optimizer *o, FILE *out)
{
    line_str(out, "optimizer.kind", orch_optimizer_name(o->kind), "");
    line_real(out, "optimizer.lr", o->lr, "");
    if (o->kind == ORCH_OPT_SGD) {
        line_real(out, "optimizer.momentum", o->momentum, "");
        line_bool(out, "optimizer.nesterov", o->nesterov);
    } else {
        fprintf(out, "optimizer.betas = {");
        put_real(out, o->beta1);
        fputs(", ", out);
        put_real(out, o->beta2);
        fprintf(out, "}\n");
        line_real(out, "optimizer.eps", o->eps, "");
    }
    line_real(out, "optimizer.weight_decay", o->weight_decay, "");
    line_real(out, "optimizer.grad_clip", o->grad_clip, o->grad_clip > 0 ? "" : "no clipping");
}

static void print_checks(const orch_checks *k, FILE *out)
{
    line_bool(out, "checks.nan", k->nan);
    line_bool(out, "checks.frozen", k->frozen);
    line_str(out, "checks.on_nan", orch_on_nan_name(k->on_nan), "");
    line_int(out, "checks.stats_every", k->stats_every, k->stats_every ? "" : "off");
    if (k->inject.enabled) {
        line_int(out, "checks.inject.step", k->inject.step, "");
        line_str(out, "checks.inject.phase", orch_phase_name(k->inject.phase), "");
        line_str(out, "checks.inject.stage", k->inject.stage, "");
        line_str(out, "checks.inject.tensor", k->inject.tensor,
                 k->inject.tensor[0] ? "" : "the stage's main tensor");
        line_str(out, "checks.inject.value", k->inject.value_is_inf ? "inf" : "nan", "");
    }
}

void orch_pipeline_print(const orch_pipeline *p, FILE *out)
{
    char hash[65];
    fprintf(out, "-- pipeline %s\n", p->path);
    if (orch_pipeline_hash(p, hash) == ORCH_OK)
        fprintf(out, "-- config hash %s\n", hash);
    line_str(out, "name", p->name, "");
    fprintf(out, "tags = {");
    for (int i = 0; i < p->n_tags; i++) {
        fputs(i ? ", " : "", out);
        put_str(out, p->tags[i]);
    }
    fprintf(out, "}\n\n");
    print_model(&p->model, out);
    fputc('\n', out);
    print_data(&p->data, out);
    fputc('\n', out);
    print_strategy(&p->strategy, out);
    fputc('\n', out);
    line_str(out, "head.kind", orch_head_name(p->head.kind), "");
    line_int(out, p->head.kind == ORCH_HEAD_REGRESSION ? "head.outputs" : "head.classes",
             p->head.n_outputs, "");
    line_str(out, "loss", orch_loss_name(p->loss), "");
    fputc('\n', out);
    print_optimizer(&p->optimizer, out);
    fputc('\n', out);
    line_int(out, "schedule.steps", p->schedule.steps, "");
    line_int(out, "schedule.batch_size", p->schedule.batch_size, "");
    line_int(out, "schedule.warmup_steps", p->schedule.warmup_steps, "");
    line_int(out, "schedule.checkpoint_every", p->schedule.checkpoint_every,
             p->schedule.checkpoint_every ? "" : "only at the end");
    fputc('\n', out);
    line_str(out, "precision", orch_precision_name(p->precision), "");
    line_real(out, "loss_scale.init", p->loss_scale.init,
              p->loss_scale.init == 1 && !p->loss_scale.dynamic ? "no loss scaling" : "");
    line_bool(out, "loss_scale.dynamic", p->loss_scale.dynamic);
    line_int(out, "loss_scale.growth_interval", p->loss_scale.growth_interval, "");
    line_bool(out, "checkpoint", p->checkpoint);
    fprintf(out, "seed = %llu\n", (unsigned long long)p->seed);
    fputc('\n', out);
    print_checks(&p->checks, out);
}
