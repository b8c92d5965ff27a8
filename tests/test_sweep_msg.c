/*
 * test_sweep_msg.c - the pieces a sweep's ranks talk with, without MPI:
 * every message round-trips and every truncation of one is refused
 * (core/sweep_msg.c); the in-process mailbox is a FIFO and its bounded
 * wait returns empty-handed (core/mailbox.c); the forwarding sink
 * (core/sink_forward.c) batches steps and sends at once what must be
 * durable at once (resume, a run's first NaN event, an artifact, the end),
 * refuses begin_run, and its batches decode to the records given.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/mailbox.h"
#include "core/sink_forward.h"
#include "core/sweep_msg.h"

static void test_messages_round_trip(void **state)
{
    (void)state;
    orch_msg_buf b = {0};
    orch_err err;
    orch_msg_assign a = {.node = 7, .run_id = 12, .attempt = 2, .n_group = 3, .group = {1, 2, 4}};
    snprintf(a.checkpoint, sizeof a.checkpoint, "x.db.runs/12/checkpoint-5.safetensors");
    snprintf(a.init_path, sizeof a.init_path, "x.db.runs/3/checkpoint-7.safetensors");
    snprintf(a.run_dir, sizeof a.run_dir, "x.db.runs");
    snprintf(a.feature_dir, sizeof a.feature_dir, "x.db.features");
    assert_int_equal(orch_msg_encode_assign(&b, &a, &err), ORCH_OK);
    assert_int_equal(orch_msg_kind_of(b.data, b.len), ORCH_MSG_ASSIGN);
    orch_msg_assign a2;
    assert_int_equal(orch_msg_decode_assign(b.data, b.len, &a2, &err), ORCH_OK);
    assert_int_equal(a2.node, 7);
    assert_int_equal(a2.run_id, 12);
    assert_int_equal(a2.attempt, 2);
    assert_string_equal(a2.checkpoint, a.checkpoint);
    assert_string_equal(a2.init_path, a.init_path);
    assert_string_equal(a2.run_dir, a.run_dir);
    assert_string_equal(a2.feature_dir, a.feature_dir);
    /* a data-parallel run's group, lowest rank first */
    assert_int_equal(a2.n_group, 3);
    assert_int_equal(a2.group[0], 1);
    assert_int_equal(a2.group[1], 2);
    assert_int_equal(a2.group[2], 4);
    /* every truncation, and one byte too many, is refused */
    for (size_t n = 0; n < b.len; n++)
        assert_int_equal(orch_msg_decode_assign(b.data, n, &a2, &err), ORCH_EINVAL);
    unsigned char *longer = malloc(b.len + 1);
    memcpy(longer, b.data, b.len);
    longer[b.len] = 0;
    assert_int_equal(orch_msg_decode_assign(longer, b.len + 1, &a2, &err), ORCH_EINVAL);
    free(longer);
    /* an assignment to no rank is refused as it is encoded */
    orch_msg_assign none = a;
    none.n_group = 0;
    orch_msg_buf nb = {0};
    assert_int_equal(orch_msg_encode_assign(&nb, &none, &err), ORCH_EINVAL);
    orch_msg_buf_free(&nb);
    /* another kind is refused */
    orch_msg_done d2;
    assert_int_equal(orch_msg_decode_done(b.data, b.len, &d2, &err), ORCH_EINVAL);

    orch_msg_done d = {.node = 3,
                       .started = 1,
                       .status = ORCH_RUN_DIVERGED,
                       .steps = 8,
                       .computed = 0,
                       .first_loss = 1.5,
                       .final_loss = NAN,
                       .seconds = 0.25};
    snprintf(d.error, sizeof d.error, "diverged at step 2 backward head grad_weight");
    assert_int_equal(orch_msg_encode_done(&b, &d, &err), ORCH_OK);
    assert_int_equal(orch_msg_decode_done(b.data, b.len, &d2, &err), ORCH_OK);
    assert_int_equal(d2.node, 3);
    assert_int_equal(d2.started, 1);
    assert_int_equal(d2.status, ORCH_RUN_DIVERGED);
    assert_int_equal(d2.steps, 8);
    assert_true(d2.first_loss == 1.5);
    assert_true(isnan(d2.final_loss));
    assert_true(d2.seconds == 0.25);
    assert_string_equal(d2.error, d.error);
    for (size_t n = 0; n < b.len; n++)
        assert_int_equal(orch_msg_decode_done(b.data, n, &d2, &err), ORCH_EINVAL);

    orch_msg_ready r = {.status = ORCH_EINVAL};
    snprintf(r.hash, sizeof r.hash, "%064d", 0);
    snprintf(r.host, sizeof r.host, "node-3");
    snprintf(r.error, sizeof r.error, "sweep.lua:4: bad");
    assert_int_equal(orch_msg_encode_ready(&b, &r, &err), ORCH_OK);
    orch_msg_ready r2;
    assert_int_equal(orch_msg_decode_ready(b.data, b.len, &r2, &err), ORCH_OK);
    assert_int_equal(r2.status, ORCH_EINVAL);
    assert_string_equal(r2.hash, r.hash);
    assert_string_equal(r2.host, "node-3");
    assert_string_equal(r2.error, "sweep.lua:4: bad");
    for (size_t n = 0; n < b.len; n++)
        assert_int_equal(orch_msg_decode_ready(b.data, n, &r2, &err), ORCH_EINVAL);
    /* a string longer than its field is refused, never cut */
    size_t host_at = 1 + 8 + 4 + 65;
    b.data[host_at] = 0xff;
    b.data[host_at + 1] = 0xff;
    assert_int_equal(orch_msg_decode_ready(b.data, b.len, &r2, &err), ORCH_EINVAL);

    assert_int_equal(orch_msg_encode_exit(&b, &err), ORCH_OK);
    assert_int_equal(b.len, 1);
    assert_int_equal(orch_msg_kind_of(b.data, b.len), ORCH_MSG_EXIT);
    assert_int_equal(orch_msg_kind_of(b.data, 0), -1);
    orch_msg_buf_free(&b);
}

static void test_mailbox_fifo(void **state)
{
    (void)state;
    orch_mailbox m;
    orch_err err;
    assert_int_equal(orch_mailbox_init(&m, &err), ORCH_OK);
    /* empty: a bounded wait comes back with nothing */
    assert_null(orch_mailbox_get(&m, 0));
    assert_null(orch_mailbox_get(&m, 2000));
    assert_int_equal(orch_mailbox_put(&m, "one", 4, &err), ORCH_OK);
    assert_int_equal(orch_mailbox_put(&m, "", 0, &err), ORCH_OK);
    assert_int_equal(orch_mailbox_put(&m, "three", 6, &err), ORCH_OK);
    orch_mail *a = orch_mailbox_get(&m, -1);
    orch_mail *b = orch_mailbox_get(&m, 0);
    orch_mail *c = orch_mailbox_get(&m, 5000);
    assert_non_null(a);
    assert_non_null(b);
    assert_non_null(c);
    assert_string_equal((const char *)a->data, "one");
    assert_int_equal(b->len, 0);
    assert_string_equal((const char *)c->data, "three");
    free(a);
    free(b);
    free(c);
    assert_null(orch_mailbox_get(&m, 0));
    /* what is left is freed with the mailbox (make asan) */
    assert_int_equal(orch_mailbox_put(&m, "left", 5, &err), ORCH_OK);
    orch_mailbox_free(&m);
}

/* ------------------------------------------------- the forwarding sink */

typedef struct sent {
    int n;           /* messages */
    int records[64]; /* records in each */
    orch_record_kind last_kind[64];
    int64_t steps; /* step records over all messages */
} sent;

static int capture(void *ctx, const void *data, size_t len, orch_err *err)
{
    sent *s = ctx;
    assert_true(s->n < 64);
    size_t pos = 0;
    orch_record rec;
    int more, count = 0;
    while ((more = orch_msg_records_next(data, len, &pos, &rec, err)) > 0) {
        count++;
        s->last_kind[s->n] = rec.kind;
        if (rec.kind == ORCH_REC_STEP) {
            assert_int_equal(rec.run_id, 5);
            assert_int_equal(rec.as.step.step, s->steps);
            assert_true(rec.as.step.loss == 0.5 * (double)rec.as.step.step);
            s->steps++;
        }
    }
    assert_int_equal(more, 0);
    s->records[s->n++] = count;
    return ORCH_OK;
}

static void test_forward_sink_batches(void **state)
{
    (void)state;
    sent s;
    memset(&s, 0, sizeof s);
    orch_fwd_sink f;
    orch_fwd_sink_init(&f, capture, &s);
    orch_sink sink = orch_fwd_sink_make(&f);
    orch_err err;
    orch_run_info info = {.pipeline = "p.lua", .name = "sw/a", .strategy = "lora", .host = "h"};
    int64_t id = 99;
    /* a worker never begins a run: the coordinator queued it */
    assert_int_equal(sink.begin_run(sink.ctx, &info, &id, &err), ORCH_EINVAL);
    assert_int_equal(id, 0);
    assert_int_equal(s.n, 0);

    orch_run_resume resume = {info, -1};
    assert_int_equal(sink.resume_run(sink.ctx, 5, &resume, &err), ORCH_OK);
    assert_int_equal(s.n, 1); /* at once */
    assert_int_equal(s.last_kind[0], ORCH_REC_RUN_RESUME);
    for (int64_t k = 0; k < 10; k++) {
        orch_step_record st = {k, 0.5 * (double)k, 1.0, 1e-3, 2.0};
        assert_int_equal(sink.step(sink.ctx, 5, &st, &err), ORCH_OK);
    }
    assert_int_equal(s.n, 1); /* batched */
    orch_nan_record nan = {3, ORCH_PHASE_BACKWARD, "head", "grad_weight", 1, 0, 2.0, 1, -1, NULL};
    assert_int_equal(sink.nan_event(sink.ctx, 5, &nan, &err), ORCH_OK);
    assert_int_equal(s.n, 2); /* the first NaN event: at once, with the steps before it */
    assert_int_equal(s.records[1], 11);
    assert_int_equal(sink.nan_event(sink.ctx, 5, &nan, &err), ORCH_OK);
    assert_int_equal(s.n, 2); /* a later one waits */
    orch_artifact art = {9, ORCH_ARTIFACT_CHECKPOINT, "x/5/checkpoint-9.safetensors",
                         "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", 10};
    assert_int_equal(sink.artifact(sink.ctx, 5, &art, &err), ORCH_OK);
    assert_int_equal(s.n, 3);
    assert_int_equal(s.records[2], 2);
    assert_int_equal(s.last_kind[2], ORCH_REC_ARTIFACT);
    /* a full batch goes without being asked: ~ORCH_FWD_BATCH_BYTES */
    int64_t k = 10;
    while (s.n == 3) {
        orch_step_record st = {k, 0.5 * (double)k, 1.0, 1e-3, 2.0};
        assert_int_equal(sink.step(sink.ctx, 5, &st, &err), ORCH_OK);
        k++;
        assert_true(k < 100000);
    }
    assert_true(s.records[3] > 100);
    assert_int_equal(sink.flush(sink.ctx, &err), ORCH_OK);
    assert_int_equal(sink.flush(sink.ctx, &err), ORCH_OK); /* nothing left: nothing sent */
    int before_end = s.n;
    orch_run_end end = {ORCH_RUN_FINISHED, NULL, NULL};
    assert_int_equal(sink.end_run(sink.ctx, 5, &end, &err), ORCH_OK);
    assert_int_equal(s.n, before_end + 1);
    assert_int_equal(s.last_kind[s.n - 1], ORCH_REC_RUN_END);
    assert_int_equal(s.steps, k); /* every step once, in order (capture checks) */
    orch_fwd_sink_free(&f);
}

/* A run over a folder sends one input record per image: they travel in
 * batches like steps, unchanged and in order, and the classes after them. */
typedef struct inputs_seen {
    int messages;
    int64_t inputs, classes;
} inputs_seen;

static int capture_inputs(void *ctx, const void *data, size_t len, orch_err *err)
{
    inputs_seen *s = ctx;
    size_t pos = 0;
    orch_record rec;
    int more;
    s->messages++;
    while ((more = orch_msg_records_next(data, len, &pos, &rec, err)) > 0) {
        assert_int_equal(rec.run_id, 7);
        if (rec.kind == ORCH_REC_INPUT) {
            char path[64];
            snprintf(path, sizeof path, "imgs/%06lld.png", (long long)s->inputs);
            assert_int_equal(rec.as.input.role, s->inputs % 2 ? ORCH_ROLE_EVAL : ORCH_ROLE_TRAIN);
            assert_string_equal(rec.as.input.path, path);
            assert_string_equal(rec.as.input.sha256, "00112233445566778899aabbccddeeff"
                                                     "00112233445566778899aabbccddeeff");
            assert_int_equal(rec.as.input.bytes, 1000 + s->inputs);
            assert_int_equal(s->classes, 0); /* classes come after */
            s->inputs++;
        } else {
            assert_int_equal(rec.kind, ORCH_REC_CLASS);
            assert_int_equal(rec.as.run_class.id, s->classes);
            assert_string_equal(rec.as.run_class.name, s->classes ? "dog" : "cat");
            s->classes++;
        }
    }
    assert_int_equal(more, 0);
    return ORCH_OK;
}

static void test_forward_sink_inputs(void **state)
{
    (void)state;
    inputs_seen s = {0};
    orch_fwd_sink f;
    orch_fwd_sink_init(&f, capture_inputs, &s);
    orch_sink sink = orch_fwd_sink_make(&f);
    orch_err err;
    enum { N = 3000 };
    for (int64_t i = 0; i < N; i++) {
        char path[64];
        snprintf(path, sizeof path, "imgs/%06lld.png", (long long)i);
        orch_run_input in = {i % 2 ? ORCH_ROLE_EVAL : ORCH_ROLE_TRAIN, path,
                             "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff",
                             1000 + i};
        assert_int_equal(sink.input(sink.ctx, 7, &in, &err), ORCH_OK);
    }
    orch_run_class cat = {0, "cat"}, dog = {1, "dog"};
    assert_int_equal(sink.run_class(sink.ctx, 7, &cat, &err), ORCH_OK);
    assert_int_equal(sink.run_class(sink.ctx, 7, &dog, &err), ORCH_OK);
    assert_int_equal(sink.flush(sink.ctx, &err), ORCH_OK);
    assert_int_equal(s.inputs, N);
    assert_int_equal(s.classes, 2);
    /* ~100 bytes a record: a few 64 KiB batches, not one message each */
    assert_true(s.messages >= 2 && s.messages <= 10);
    orch_fwd_sink_free(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_messages_round_trip),
        cmocka_unit_test(test_mailbox_fifo),
        cmocka_unit_test(test_forward_sink_batches),
        cmocka_unit_test(test_forward_sink_inputs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
