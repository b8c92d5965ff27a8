/* sweep_msg.c - the sweep's messages as bytes; see sweep_msg.h. */
#include "core/sweep_msg.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void orch_msg_buf_free(orch_msg_buf *b)
{
    free(b->data);
    memset(b, 0, sizeof *b);
}

static int reserve(orch_msg_buf *b, size_t more, orch_err *err)
{
    if (b->len + more <= b->cap)
        return ORCH_OK;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + more)
        cap *= 2;
    unsigned char *grown = realloc(b->data, cap);
    if (grown == NULL)
        return orch_seterr(err, ORCH_ENOMEM, "sweep message: out of memory");
    b->data = grown;
    b->cap = cap;
    return ORCH_OK;
}

static int put_u64(orch_msg_buf *b, uint64_t v, orch_err *err)
{
    int rc = reserve(b, 8, err);
    for (int i = 0; i < 8 && rc == ORCH_OK; i++)
        b->data[b->len++] = (unsigned char)(v >> (8 * i));
    return rc;
}

static int put_u32(orch_msg_buf *b, uint32_t v, orch_err *err)
{
    int rc = reserve(b, 4, err);
    for (int i = 0; i < 4 && rc == ORCH_OK; i++)
        b->data[b->len++] = (unsigned char)(v >> (8 * i));
    return rc;
}

static int put_f64(orch_msg_buf *b, double v, orch_err *err)
{
    uint64_t bits;
    memcpy(&bits, &v, sizeof bits);
    return put_u64(b, bits, err);
}

static int put_str(orch_msg_buf *b, const char *s, orch_err *err)
{
    size_t n = strlen(s) + 1;
    int rc = put_u32(b, (uint32_t)n, err);
    if (rc == ORCH_OK)
        rc = reserve(b, n, err);
    if (rc == ORCH_OK) {
        memcpy(b->data + b->len, s, n);
        b->len += n;
    }
    return rc;
}

static int start(orch_msg_buf *b, orch_msg_kind kind, orch_err *err)
{
    b->len = 0;
    int rc = reserve(b, 1, err);
    if (rc == ORCH_OK)
        b->data[b->len++] = (unsigned char)kind;
    return rc;
}

/* A reader over a message; the first error sticks. */
typedef struct reader {
    const unsigned char *data;
    size_t len, pos;
    int bad;
} reader;

static uint64_t get_u64(reader *r)
{
    if (r->bad || r->len - r->pos < 8) {
        r->bad = 1;
        return 0;
    }
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v |= (uint64_t)r->data[r->pos + (size_t)i] << (8 * i);
    r->pos += 8;
    return v;
}

static uint32_t get_u32(reader *r)
{
    if (r->bad || r->len - r->pos < 4) {
        r->bad = 1;
        return 0;
    }
    uint32_t v = 0;
    for (int i = 0; i < 4; i++)
        v |= (uint32_t)r->data[r->pos + (size_t)i] << (8 * i);
    r->pos += 4;
    return v;
}

static double get_f64(reader *r)
{
    uint64_t bits = get_u64(r);
    double v;
    memcpy(&v, &bits, sizeof v);
    return v;
}

/* Copies a string into out[n]; too long, without its NUL or with one
 * inside is malformed. */
static void get_str(reader *r, char *out, size_t n)
{
    uint32_t len = get_u32(r);
    if (r->bad || len == 0 || len > n || r->len - r->pos < len ||
        memchr(r->data + r->pos, '\0', len) != r->data + r->pos + len - 1) {
        r->bad = 1;
        out[0] = '\0';
        return;
    }
    memcpy(out, r->data + r->pos, len);
    r->pos += len;
}

static int reader_start(reader *r, const unsigned char *data, size_t len, orch_msg_kind kind)
{
    r->data = data;
    r->len = len;
    r->pos = 1;
    r->bad = len < 1 || data[0] != (unsigned char)kind;
    return !r->bad;
}

static int reader_end(reader *r, const char *what, orch_err *err)
{
    if (r->bad || r->pos != r->len)
        return orch_seterr(err, ORCH_EINVAL, "sweep message: a malformed %s message", what);
    return ORCH_OK;
}

int orch_msg_kind_of(const unsigned char *data, size_t len)
{
    return len > 0 ? data[0] : -1;
}

/* ----------------------------------------------------------- messages */

int orch_msg_encode_ready(orch_msg_buf *b, const orch_msg_ready *m, orch_err *err)
{
    int rc = start(b, ORCH_MSG_READY, err);
    if (rc == ORCH_OK)
        rc = put_u64(b, (uint64_t)(int64_t)m->status, err);
    if (rc == ORCH_OK)
        rc = put_str(b, m->hash, err);
    if (rc == ORCH_OK)
        rc = put_str(b, m->host, err);
    if (rc == ORCH_OK)
        rc = put_str(b, m->error, err);
    return rc;
}

int orch_msg_decode_ready(const unsigned char *data, size_t len, orch_msg_ready *m, orch_err *err)
{
    reader r;
    memset(m, 0, sizeof *m);
    reader_start(&r, data, len, ORCH_MSG_READY);
    m->status = (int32_t)(int64_t)get_u64(&r);
    get_str(&r, m->hash, sizeof m->hash);
    get_str(&r, m->host, sizeof m->host);
    get_str(&r, m->error, sizeof m->error);
    return reader_end(&r, "ready", err);
}

int orch_msg_encode_assign(orch_msg_buf *b, const orch_msg_assign *m, orch_err *err)
{
    int rc = start(b, ORCH_MSG_ASSIGN, err);
    if (rc == ORCH_OK)
        rc = put_u64(b, (uint64_t)(int64_t)m->node, err);
    if (rc == ORCH_OK)
        rc = put_u64(b, (uint64_t)m->run_id, err);
    if (rc == ORCH_OK)
        rc = put_u64(b, (uint64_t)m->attempt, err);
    if (rc == ORCH_OK)
        rc = put_str(b, m->checkpoint, err);
    if (rc == ORCH_OK)
        rc = put_str(b, m->init_path, err);
    if (rc == ORCH_OK)
        rc = put_str(b, m->run_dir, err);
    if (rc == ORCH_OK)
        rc = put_str(b, m->feature_dir, err);
    if (rc == ORCH_OK && (m->n_group < 1 || m->n_group > ORCH_SWEEP_MAX_GROUP))
        rc = orch_seterr(err, ORCH_EINVAL, "sweep message: assign: a group of %d ranks",
                         (int)m->n_group);
    if (rc == ORCH_OK)
        rc = put_u64(b, (uint64_t)(int64_t)m->n_group, err);
    for (int i = 0; rc == ORCH_OK && i < m->n_group; i++)
        rc = put_u64(b, (uint64_t)(int64_t)m->group[i], err);
    return rc;
}

int orch_msg_decode_assign(const unsigned char *data, size_t len, orch_msg_assign *m, orch_err *err)
{
    reader r;
    memset(m, 0, sizeof *m);
    reader_start(&r, data, len, ORCH_MSG_ASSIGN);
    m->node = (int32_t)(int64_t)get_u64(&r);
    m->run_id = (int64_t)get_u64(&r);
    m->attempt = (int64_t)get_u64(&r);
    get_str(&r, m->checkpoint, sizeof m->checkpoint);
    get_str(&r, m->init_path, sizeof m->init_path);
    get_str(&r, m->run_dir, sizeof m->run_dir);
    get_str(&r, m->feature_dir, sizeof m->feature_dir);
    int64_t n_group = (int64_t)get_u64(&r);
    if (n_group < 1 || n_group > ORCH_SWEEP_MAX_GROUP)
        return orch_seterr(err, ORCH_EINVAL, "sweep message: assign: a group of %lld ranks",
                           (long long)n_group);
    m->n_group = (int32_t)n_group;
    for (int i = 0; i < m->n_group; i++)
        m->group[i] = (int32_t)(int64_t)get_u64(&r);
    return reader_end(&r, "assign", err);
}

int orch_msg_encode_done(orch_msg_buf *b, const orch_msg_done *m, orch_err *err)
{
    int rc = start(b, ORCH_MSG_DONE, err);
    if (rc == ORCH_OK)
        rc = put_u64(b, (uint64_t)(int64_t)m->node, err);
    if (rc == ORCH_OK)
        rc = put_u64(b, (uint64_t)(int64_t)m->started, err);
    if (rc == ORCH_OK)
        rc = put_u64(b, (uint64_t)(int64_t)m->status, err);
    if (rc == ORCH_OK)
        rc = put_u64(b, (uint64_t)m->steps, err);
    if (rc == ORCH_OK)
        rc = put_u64(b, (uint64_t)m->steps_now, err);
    if (rc == ORCH_OK)
        rc = put_u64(b, (uint64_t)m->computed, err);
    if (rc == ORCH_OK)
        rc = put_f64(b, m->first_loss, err);
    if (rc == ORCH_OK)
        rc = put_f64(b, m->final_loss, err);
    if (rc == ORCH_OK)
        rc = put_f64(b, m->seconds, err);
    if (rc == ORCH_OK)
        rc = put_str(b, m->error, err);
    return rc;
}

int orch_msg_decode_done(const unsigned char *data, size_t len, orch_msg_done *m, orch_err *err)
{
    reader r;
    memset(m, 0, sizeof *m);
    reader_start(&r, data, len, ORCH_MSG_DONE);
    m->node = (int32_t)(int64_t)get_u64(&r);
    m->started = (int32_t)(int64_t)get_u64(&r);
    m->status = (int32_t)(int64_t)get_u64(&r);
    m->steps = (int64_t)get_u64(&r);
    m->steps_now = (int64_t)get_u64(&r);
    m->computed = (int64_t)get_u64(&r);
    m->first_loss = get_f64(&r);
    m->final_loss = get_f64(&r);
    m->seconds = get_f64(&r);
    get_str(&r, m->error, sizeof m->error);
    return reader_end(&r, "done", err);
}

int orch_msg_encode_exit(orch_msg_buf *b, orch_err *err)
{
    return start(b, ORCH_MSG_EXIT, err);
}

int orch_msg_records_begin(orch_msg_buf *b, orch_err *err)
{
    return start(b, ORCH_MSG_RECORDS, err);
}

int orch_msg_records_add(orch_msg_buf *b, const orch_record *rec, orch_err *err)
{
    size_t need = orch_record_encoded_size(rec);
    if (need > UINT32_MAX)
        return orch_seterr(err, ORCH_EINVAL, "sweep message: a record of %zu bytes", need);
    size_t at = b->len;
    int rc = put_u32(b, (uint32_t)need, err);
    if (rc == ORCH_OK)
        rc = reserve(b, need, err);
    size_t written = 0;
    if (rc == ORCH_OK)
        rc = orch_record_encode(rec, b->data + b->len, b->cap - b->len, &written, err);
    if (rc != ORCH_OK) {
        b->len = at;
        return rc;
    }
    b->len += written;
    return ORCH_OK;
}

int orch_msg_records_next(const unsigned char *data, size_t len, size_t *pos, orch_record *rec,
                          orch_err *err)
{
    if (*pos == 0) {
        if (len < 1 || data[0] != ORCH_MSG_RECORDS)
            return orch_seterr(err, ORCH_EINVAL, "sweep message: not a records message");
        *pos = 1;
    }
    if (*pos == len)
        return 0;
    reader r = {data, len, *pos, 0};
    uint32_t n = get_u32(&r);
    if (r.bad || r.len - r.pos < n)
        return orch_seterr(err, ORCH_EINVAL, "sweep message: a truncated record");
    int rc = orch_record_decode(data + r.pos, n, rec, err);
    if (rc != ORCH_OK)
        return rc;
    *pos = r.pos + n;
    return 1;
}
