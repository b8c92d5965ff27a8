/* pipeline.c - enum names of the resolved pipeline; see pipeline.h. */
#include "core/pipeline.h"

#include "core/sink.h"

const char *orch_strategy_name(orch_strategy_kind kind)
{
    switch (kind) {
    case ORCH_STRATEGY_SURGERY:
        return "surgery";
    case ORCH_STRATEGY_DETACH:
        return "detach";
    case ORCH_STRATEGY_LORA:
        return "lora";
    case ORCH_STRATEGY_FULL:
        return "full";
    }
    return "?";
}

const char *orch_precision_name(orch_precision precision)
{
    switch (precision) {
    case ORCH_FP32:
        return "fp32";
    case ORCH_BF16:
        return "bf16";
    case ORCH_FP16:
        return "fp16";
    }
    return "?";
}

const char *orch_optimizer_name(orch_optimizer_kind kind)
{
    return kind == ORCH_OPT_SGD ? "sgd" : "adamw";
}

const char *orch_phase_name(orch_phase phase)
{
    switch (phase) {
    case ORCH_PHASE_FORWARD:
        return "forward";
    case ORCH_PHASE_BACKWARD:
        return "backward";
    case ORCH_PHASE_UPDATE:
        return "update";
    }
    return "?";
}

const char *orch_on_nan_name(orch_on_nan policy)
{
    switch (policy) {
    case ORCH_ON_NAN_ABORT:
        return "abort";
    case ORCH_ON_NAN_SKIP_UPDATE:
        return "skip_update";
    case ORCH_ON_NAN_CONTINUE:
        return "continue";
    }
    return "?";
}

const char *orch_run_status_name(orch_run_status status)
{
    static const char *const names[] = {"queued",   "running", "finished",
                                        "diverged", "failed",  "interrupted"};
    if ((unsigned)status < sizeof names / sizeof names[0])
        return names[status];
    return "?";
}

const char *orch_head_name(orch_head_kind kind)
{
    return kind == ORCH_HEAD_REGRESSION ? "regression" : "classifier";
}

const char *orch_loss_name(orch_loss_kind kind)
{
    return kind == ORCH_LOSS_MSE ? "mse" : "cross_entropy";
}

const char *orch_data_source_name(orch_data_source src)
{
    return src == ORCH_DATA_NPY ? "npy" : "synthetic";
}

const char *orch_adapter_name(orch_adapter_kind kind)
{
    return kind == ORCH_ADAPTER_MLP ? "mlp" : "linear";
}
