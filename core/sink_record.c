/*
 * sink_record.c - the sink's records as portable bytes (core/sink.h), and
 * handing a tagged record to a sink.
 *
 * One walk over a record's fields serves the three uses: counting its
 * bytes, writing them, and reading them back. The writer and the reader
 * are the same code (rec_fields) driven by a cursor that either writes or
 * reads, so the two can never disagree on the order of the fields. Every
 * read checks the bytes left first: a truncated or hostile buffer is an
 * error, never a read past its end.
 */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "core/sink.h"

/* A position in a byte buffer. writing: put values at p (when p is not
 * NULL; a NULL p only counts); else get them. ok drops to 0 at the first
 * malformed value and everything after it is skipped. */
typedef struct cursor {
    unsigned char *p;       /* writing: where the next byte goes (NULL: count only) */
    const unsigned char *q; /* reading: the next byte */
    size_t left;            /* reading: bytes left */
    size_t n;               /* bytes written or read so far */
    int writing;
    int ok;
    const char *bad; /* what was malformed, for the message */
} cursor;

static void fail(cursor *c, const char *what)
{
    if (c->ok) {
        c->ok = 0;
        c->bad = what;
    }
}

/* Moves n bytes: from v to the buffer or back. */
static void raw(cursor *c, void *v, size_t n, const char *what)
{
    if (!c->ok)
        return;
    if (c->writing) {
        if (c->p != NULL) {
            memcpy(c->p, v, n);
            c->p += n;
        }
    } else {
        if (c->left < n) {
            fail(c, what);
            return;
        }
        memcpy(v, c->q, n);
        c->q += n;
        c->left -= n;
    }
    c->n += n;
}

static void u64_field(cursor *c, uint64_t *v, const char *what)
{
    unsigned char b[8];
    if (c->writing)
        for (int i = 0; i < 8; i++)
            b[i] = (unsigned char)(*v >> (8 * i));
    raw(c, b, 8, what);
    if (!c->writing && c->ok) {
        uint64_t x = 0;
        for (int i = 0; i < 8; i++)
            x |= (uint64_t)b[i] << (8 * i);
        *v = x;
    }
}

static void i64_field(cursor *c, int64_t *v, const char *what)
{
    uint64_t u = (uint64_t)*v;
    u64_field(c, &u, what);
    if (!c->writing && c->ok)
        *v = (int64_t)u; /* two's complement on every machine we build for */
}

/* A double as its IEEE-754 bits: NaN payloads and infinities survive. */
static void f64_field(cursor *c, double *v, const char *what)
{
    uint64_t u = 0;
    memcpy(&u, v, sizeof u);
    u64_field(c, &u, what);
    if (!c->writing && c->ok)
        memcpy(v, &u, sizeof u);
}

/* An enum or flag as one byte, below `count` when read. */
static void byte_field(cursor *c, int *v, int count, const char *what)
{
    unsigned char b = (unsigned char)*v;
    if (c->writing && (*v < 0 || *v >= count)) {
        fail(c, what);
        return;
    }
    raw(c, &b, 1, what);
    if (!c->writing && c->ok) {
        if (b >= count)
            fail(c, what);
        else
            *v = b;
    }
}

static void u32_field(cursor *c, uint32_t *v, const char *what)
{
    unsigned char b[4];
    if (c->writing)
        for (int i = 0; i < 4; i++)
            b[i] = (unsigned char)(*v >> (8 * i));
    raw(c, b, 4, what);
    if (!c->writing && c->ok)
        *v = (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
}

/* A string: its length with the NUL (0 for NULL), then its bytes and NUL.
 * Read back, it points into the buffer. */
static void str_field(cursor *c, const char **s, const char *what)
{
    uint32_t n = 0;
    if (c->writing && *s != NULL) {
        size_t len = strlen(*s);
        if (len >= UINT32_MAX) {
            fail(c, what);
            return;
        }
        n = (uint32_t)len + 1;
    }
    u32_field(c, &n, what);
    if (!c->ok)
        return;
    if (c->writing) {
        if (n > 0)
            raw(c, (void *)*s, n, what);
        return;
    }
    if (n == 0) {
        *s = NULL;
        return;
    }
    if (c->left < n || c->q[n - 1] != '\0' || memchr(c->q, '\0', n - 1) != NULL) {
        fail(c, what);
        return;
    }
    *s = (const char *)c->q;
    c->q += n;
    c->left -= n;
    c->n += n;
}

static void info_fields(cursor *c, orch_run_info *r)
{
    str_field(c, &r->pipeline, "pipeline");
    str_field(c, &r->name, "name");
    str_field(c, &r->strategy, "strategy");
    str_field(c, &r->config_json, "config_json");
    str_field(c, &r->config_hash, "config_hash");
    u64_field(c, &r->seed, "seed");
    str_field(c, &r->host, "host");
    i64_field(c, &r->pid, "pid");
    str_field(c, &r->orch_version, "orch_version");
    str_field(c, &r->kernels, "kernels");
    str_field(c, &r->kernels_why, "kernels_why");
    str_field(c, &r->cpu, "cpu");
    i64_field(c, &r->threads, "threads");
    str_field(c, &r->data_hash, "data_hash");
}

/* The fields of one record after its version and kind bytes. */
static void rec_fields(cursor *c, orch_record *rec)
{
    i64_field(c, &rec->run_id, "run id");
    switch (rec->kind) {
    case ORCH_REC_RUN_BEGIN:
        info_fields(c, &rec->as.run_begin);
        break;
    case ORCH_REC_STEP: {
        orch_step_record *r = &rec->as.step;
        i64_field(c, &r->step, "step");
        f64_field(c, &r->loss, "loss");
        f64_field(c, &r->grad_norm, "grad_norm");
        f64_field(c, &r->lr, "lr");
        f64_field(c, &r->wall_ms, "wall_ms");
        break;
    }
    case ORCH_REC_METRIC: {
        orch_metric_record *r = &rec->as.metric;
        i64_field(c, &r->step, "step");
        str_field(c, &r->name, "name");
        f64_field(c, &r->value, "value");
        break;
    }
    case ORCH_REC_NAN: {
        orch_nan_record *r = &rec->as.nan;
        int phase = (int)r->phase;
        i64_field(c, &r->step, "step");
        byte_field(c, &phase, ORCH_PHASE_UPDATE + 1, "phase");
        r->phase = (orch_phase)phase;
        str_field(c, &r->stage, "stage");
        str_field(c, &r->tensor, "tensor");
        i64_field(c, &r->nan_count, "nan_count");
        i64_field(c, &r->inf_count, "inf_count");
        f64_field(c, &r->input_absmax, "input_absmax");
        byte_field(c, &r->inputs_finite, 2, "inputs_finite");
        i64_field(c, &r->rank, "rank");
        str_field(c, &r->host, "host");
        break;
    }
    case ORCH_REC_STAGE_STAT: {
        orch_stage_stat *r = &rec->as.stage_stat;
        i64_field(c, &r->step, "step");
        str_field(c, &r->stage, "stage");
        f64_field(c, &r->act_absmax, "act_absmax");
        f64_field(c, &r->act_rms, "act_rms");
        f64_field(c, &r->grad_norm, "grad_norm");
        break;
    }
    case ORCH_REC_ARTIFACT: {
        orch_artifact *r = &rec->as.artifact;
        i64_field(c, &r->step, "step");
        int kind = (int)r->kind;
        byte_field(c, &kind, ORCH_ARTIFACT__COUNT, "artifact kind");
        r->kind = (orch_artifact_kind)kind;
        str_field(c, &r->path, "path");
        str_field(c, &r->sha256, "sha256");
        i64_field(c, &r->bytes, "bytes");
        break;
    }
    case ORCH_REC_FROZEN_CHANGE: {
        orch_frozen_change *r = &rec->as.frozen_change;
        i64_field(c, &r->step, "step");
        str_field(c, &r->parameter, "parameter");
        break;
    }
    case ORCH_REC_RUN_END: {
        orch_run_end *r = &rec->as.run_end;
        int status = (int)r->status;
        byte_field(c, &status, ORCH_RUN_INTERRUPTED + 1, "status");
        r->status = (orch_run_status)status;
        str_field(c, &r->error, "error");
        str_field(c, &r->reason, "reason");
        break;
    }
    case ORCH_REC_RUN_RESUME:
        info_fields(c, &rec->as.run_resume.info);
        i64_field(c, &rec->as.run_resume.from_step, "from_step");
        break;
    case ORCH_REC_CACHE_USE:
        str_field(c, &rec->as.cache_use.key, "key");
        break;
    case ORCH_REC_INPUT: {
        orch_run_input *r = &rec->as.input;
        int role = (int)r->role;
        byte_field(c, &role, ORCH_ROLE__COUNT, "role");
        r->role = (orch_data_role)role;
        str_field(c, &r->path, "path");
        str_field(c, &r->sha256, "sha256");
        i64_field(c, &r->bytes, "bytes");
        break;
    }
    case ORCH_REC_CLASS:
        i64_field(c, &rec->as.run_class.id, "id");
        str_field(c, &rec->as.run_class.name, "name");
        break;
    case ORCH_REC_SOURCE_FILE: {
        orch_source_file *r = &rec->as.source_file;
        str_field(c, &r->path, "path");
        str_field(c, &r->sha256, "sha256");
        i64_field(c, &r->bytes, "bytes");
        if (c->ok && r->bytes < 0)
            fail(c, "bytes");
        if (c->ok && c->writing) {
            raw(c, (void *)r->text, (size_t)r->bytes, "text");
        } else if (c->ok) { /* the text points into the buffer, as strings do */
            if (c->left < (uint64_t)r->bytes) {
                fail(c, "text");
                break;
            }
            r->text = (const char *)c->q;
            c->q += r->bytes;
            c->left -= (size_t)r->bytes;
            c->n += (size_t)r->bytes;
        }
        break;
    }
    case ORCH_REC__COUNT:
        ORCH_UNREACHABLE();
    }
}

/* The version and kind bytes, then the fields. */
static void whole_record(cursor *c, orch_record *rec)
{
    unsigned char version = ORCH_RECORD_VERSION;
    int kind = (int)rec->kind;
    raw(c, &version, 1, "version");
    if (c->ok && version != ORCH_RECORD_VERSION)
        fail(c, "version");
    byte_field(c, &kind, ORCH_REC__COUNT, "kind");
    if (!c->ok)
        return;
    rec->kind = (orch_record_kind)kind;
    rec_fields(c, rec);
}

const char *orch_artifact_kind_name(orch_artifact_kind kind)
{
    static const char *const names[ORCH_ARTIFACT__COUNT] = {"checkpoint"};
    return (unsigned)kind < ORCH_ARTIFACT__COUNT ? names[kind] : "?";
}

const char *orch_data_role_name(orch_data_role role)
{
    static const char *const names[ORCH_ROLE__COUNT] = {"train", "eval"};
    return (unsigned)role < ORCH_ROLE__COUNT ? names[role] : "?";
}

const char *orch_record_kind_name(orch_record_kind kind)
{
    static const char *const names[ORCH_REC__COUNT] = {
        "run_begin", "step",          "metric",     "nan_event",  "stage_stat",
        "artifact",  "frozen_change", "run_end",    "run_resume", "cache_use",
        "input",     "class",         "source_file"};
    return (unsigned)kind < ORCH_REC__COUNT ? names[kind] : "?";
}

size_t orch_record_encoded_size(const orch_record *rec)
{
    cursor c = {.writing = 1, .ok = 1};
    orch_record copy = *rec; /* the walk takes non-const fields; writing changes nothing */
    whole_record(&c, &copy);
    return c.n;
}

int orch_record_encode(const orch_record *rec, unsigned char *buf, size_t cap, size_t *len,
                       orch_err *err)
{
    orch_record copy = *rec;
    cursor count = {.writing = 1, .ok = 1};
    whole_record(&count, &copy);
    if (!count.ok)
        return orch_seterr(err, ORCH_EINVAL, "record: cannot encode the %s of a %s record",
                           count.bad, orch_record_kind_name(rec->kind));
    *len = count.n;
    if (buf == NULL || cap < count.n)
        return orch_seterr(err, ORCH_EINVAL, "record: %zu bytes needed, %zu given", count.n, cap);
    cursor put = {.p = buf, .writing = 1, .ok = 1};
    whole_record(&put, &copy);
    ORCH_ASSERT(put.ok && put.n == count.n);
    return ORCH_OK;
}

int orch_record_decode(const unsigned char *buf, size_t len, orch_record *out, orch_err *err)
{
    memset(out, 0, sizeof *out);
    if (buf == NULL && len > 0)
        return orch_seterr(err, ORCH_EINVAL, "record: no bytes");
    cursor c = {.q = buf, .left = len, .ok = 1};
    orch_record rec;
    memset(&rec, 0, sizeof rec);
    whole_record(&c, &rec);
    if (!c.ok)
        return orch_seterr(err, ORCH_EINVAL, "record: bad or missing %s at byte %zu of %zu", c.bad,
                           c.n, len);
    if (c.left != 0)
        return orch_seterr(err, ORCH_EINVAL, "record: %zu bytes left over after a %s record",
                           c.left, orch_record_kind_name(rec.kind));
    *out = rec;
    return ORCH_OK;
}

int orch_sink_put(orch_sink *sink, const orch_record *rec, int64_t *run_id, orch_err *err)
{
    void *ctx = sink->ctx;
    int64_t id = rec->run_id;
    /* the callbacks a sink may leave out (stage_stat, artifact, ...) refuse
     * rather than crash on a record that arrives for them */
    if ((rec->kind == ORCH_REC_STAGE_STAT && sink->stage_stat == NULL) ||
        (rec->kind == ORCH_REC_ARTIFACT && sink->artifact == NULL) ||
        (rec->kind == ORCH_REC_FROZEN_CHANGE && sink->frozen_change == NULL) ||
        (rec->kind == ORCH_REC_RUN_RESUME && sink->resume_run == NULL) ||
        (rec->kind == ORCH_REC_CACHE_USE && sink->cache_use == NULL) ||
        (rec->kind == ORCH_REC_INPUT && sink->input == NULL) ||
        (rec->kind == ORCH_REC_CLASS && sink->run_class == NULL) ||
        (rec->kind == ORCH_REC_SOURCE_FILE && sink->source_file == NULL))
        return orch_seterr(err, ORCH_EINVAL, "record: this sink takes no %s records",
                           orch_record_kind_name(rec->kind));
    switch (rec->kind) {
    case ORCH_REC_RUN_BEGIN:
        if (run_id == NULL)
            return orch_seterr(err, ORCH_EINVAL, "record: run_begin needs somewhere for its id");
        return sink->begin_run(ctx, &rec->as.run_begin, run_id, err);
    case ORCH_REC_STEP:
        return sink->step(ctx, id, &rec->as.step, err);
    case ORCH_REC_METRIC:
        return sink->metric(ctx, id, &rec->as.metric, err);
    case ORCH_REC_NAN:
        return sink->nan_event(ctx, id, &rec->as.nan, err);
    case ORCH_REC_STAGE_STAT:
        return sink->stage_stat(ctx, id, &rec->as.stage_stat, err);
    case ORCH_REC_ARTIFACT:
        return sink->artifact(ctx, id, &rec->as.artifact, err);
    case ORCH_REC_FROZEN_CHANGE:
        return sink->frozen_change(ctx, id, &rec->as.frozen_change, err);
    case ORCH_REC_RUN_END:
        return sink->end_run(ctx, id, &rec->as.run_end, err);
    case ORCH_REC_RUN_RESUME:
        return sink->resume_run(ctx, id, &rec->as.run_resume, err);
    case ORCH_REC_CACHE_USE:
        return sink->cache_use(ctx, id, &rec->as.cache_use, err);
    case ORCH_REC_INPUT:
        return sink->input(ctx, id, &rec->as.input, err);
    case ORCH_REC_CLASS:
        return sink->run_class(ctx, id, &rec->as.run_class, err);
    case ORCH_REC_SOURCE_FILE:
        return sink->source_file(ctx, id, &rec->as.source_file, err);
    case ORCH_REC__COUNT:
        break;
    }
    return orch_seterr(err, ORCH_EINVAL, "record: unknown kind %d", (int)rec->kind);
}
