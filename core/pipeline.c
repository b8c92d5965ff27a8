/* pipeline.c - enum names of the resolved pipeline (from the field table); see pipeline.h. */
#include "core/pipeline.h"

#include "core/pipeline_fields.h"
#include "core/sink.h"

/* The name of value v of the ENUM field at path, "?" out of range: the
 * names are those of the field table, so Lua, JSON, the listing and the
 * store spell them alike. */
static const char *enum_name(const char *path, int v)
{
    const orch_field *f = orch_field_get(path);
    return v >= 0 && (size_t)v < f->n_names ? f->names[v] : "?";
}

const char *orch_strategy_name(orch_strategy_kind kind)
{
    return enum_name("strategy.kind", (int)kind);
}

const char *orch_precision_name(orch_precision precision)
{
    return enum_name("precision", (int)precision);
}

const char *orch_optimizer_name(orch_optimizer_kind kind)
{
    return enum_name("optimizer.kind", (int)kind);
}

const char *orch_phase_name(orch_phase phase)
{
    return enum_name("checks.inject.phase", (int)phase);
}

const char *orch_on_nan_name(orch_on_nan policy)
{
    return enum_name("checks.on_nan", (int)policy);
}

const char *orch_run_status_name(orch_run_status status)
{
    static const char *const names[] = {"queued", "running",     "finished", "diverged",
                                        "failed", "interrupted", "skipped"};
    if ((unsigned)status < sizeof names / sizeof names[0])
        return names[status];
    return "?";
}

const char *orch_head_name(orch_head_kind kind)
{
    return enum_name("head.kind", (int)kind);
}

const char *orch_loss_name(orch_loss_kind kind)
{
    return enum_name("loss", (int)kind);
}

const char *orch_data_source_name(orch_data_source src)
{
    return enum_name("data.source", (int)src);
}

const char *orch_adapter_name(orch_adapter_kind kind)
{
    return enum_name("strategy.adapter", (int)kind);
}

uint64_t orch_data_seed(const orch_data *d, uint64_t pipeline_seed)
{
    return d->has_seed ? d->seed : pipeline_seed;
}
