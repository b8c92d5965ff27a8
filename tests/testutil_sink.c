/* testutil_sink.c - see testutil_sink.h. */
#include "testutil_sink.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "bench/null_sink.h"

static int mem_begin(void *ctx, const orch_run_info *info, int64_t *run_id, orch_err *err)
{
    memory_sink *m = ctx;
    (void)err;
    snprintf(m->data_hash, sizeof m->data_hash, "%s", info->data_hash ? info->data_hash : "");
    m->begun = 1;
    *run_id = 1;
    return ORCH_OK;
}

static int mem_step(void *ctx, int64_t run_id, const orch_step_record *rec, orch_err *err)
{
    memory_sink *m = ctx;
    (void)run_id;
    (void)err;
    if (m->n_steps < MEMORY_SINK_STEPS) {
        m->loss[m->n_steps] = rec->loss;
        m->grad_norm[m->n_steps] = rec->grad_norm;
    }
    m->n_steps++;
    m->last_loss = rec->loss;
    return ORCH_OK;
}

/* The next event slot, or NULL once MEMORY_SINK_EVENTS are kept; counts the
 * event either way. */
static memory_event *next_event(memory_sink *m)
{
    memory_event *e = NULL;
    if (m->n_events < MEMORY_SINK_EVENTS) {
        e = &m->events[m->n_events];
        memset(e, 0, sizeof *e);
    }
    m->n_events++;
    return e;
}

static int mem_nan(void *ctx, int64_t run_id, const orch_nan_record *rec, orch_err *err)
{
    (void)run_id;
    (void)err;
    memory_event *e = next_event(ctx);
    if (e != NULL) {
        e->step = rec->step;
        snprintf(e->phase, sizeof e->phase, "%s", orch_phase_name(rec->phase));
        snprintf(e->stage, sizeof e->stage, "%s", rec->stage);
        snprintf(e->tensor, sizeof e->tensor, "%s", rec->tensor);
        e->nan_count = rec->nan_count;
        e->inf_count = rec->inf_count;
        e->inputs_finite = rec->inputs_finite;
    }
    return ORCH_OK;
}

static int mem_frozen(void *ctx, int64_t run_id, const orch_frozen_change *rec, orch_err *err)
{
    memory_sink *m = ctx;
    (void)run_id;
    (void)err;
    if (m->n_frozen < MEMORY_SINK_FROZEN) {
        char *name = m->frozen_names[m->n_frozen];
        snprintf(name, ORCH_NAME_MAX, "%s", rec->parameter);
        m->frozen[m->n_frozen] = *rec;
        m->frozen[m->n_frozen].parameter = name;
    }
    m->n_frozen++;
    return ORCH_OK;
}

static int mem_end(void *ctx, int64_t run_id, const orch_run_end *rec, orch_err *err)
{
    memory_sink *m = ctx;
    (void)run_id;
    (void)err;
    m->status = rec->status;
    snprintf(m->end_reason, sizeof m->end_reason, "%s", rec->reason ? rec->reason : "");
    m->ended = 1;
    return ORCH_OK;
}

static int mem_input(void *ctx, int64_t run_id, const orch_run_input *rec, orch_err *err)
{
    memory_sink *m = ctx;
    (void)run_id;
    (void)err;
    if (m->n_inputs < MEMORY_SINK_INPUTS) {
        int i = m->n_inputs;
        m->input_role[i] = rec->role;
        snprintf(m->input_path[i], sizeof m->input_path[i], "%s", rec->path);
        snprintf(m->input_sha256[i], sizeof m->input_sha256[i], "%s", rec->sha256);
        m->input_bytes[i] = rec->bytes;
    }
    m->n_inputs++;
    return ORCH_OK;
}

static int mem_class(void *ctx, int64_t run_id, const orch_run_class *rec, orch_err *err)
{
    memory_sink *m = ctx;
    (void)run_id;
    (void)rec;
    (void)err;
    m->n_classes++;
    return ORCH_OK;
}

memory_sink *memory_sink_new(void)
{
    memory_sink *m = calloc(1, sizeof *m);
    assert_non_null(m);
    return m;
}

orch_sink memory_sink_of(memory_sink *m)
{
    orch_sink sink = bench_null_sink(m);
    sink.begin_run = mem_begin;
    sink.step = mem_step;
    sink.nan_event = mem_nan;
    sink.frozen_change = mem_frozen;
    sink.end_run = mem_end;
    sink.input = mem_input;
    sink.run_class = mem_class;
    return sink;
}
