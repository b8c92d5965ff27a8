/*
 * mailbox.h - an in-process queue of byte messages between two threads.
 *
 * Rank 0 runs the coordinator on its main thread and one worker on a
 * thread of its own; they talk through two mailboxes with the same
 * messages (core/sweep_msg.h) remote ranks send over MPI, so a local run's
 * records take the same path as a remote one's. A FIFO under a mutex; a
 * reader may wait on it with a bound (the coordinator also polls MPI, so
 * it never waits long).
 */
#ifndef ORCH_MAILBOX_H
#define ORCH_MAILBOX_H

#include <pthread.h>
#include <stddef.h>

#include "core/err.h"

typedef struct orch_mail {
    struct orch_mail *next;
    size_t len;
    unsigned char data[]; /* len bytes */
} orch_mail;

typedef struct orch_mailbox {
    pthread_mutex_t lock;
    pthread_cond_t ready;   /* signalled on every put */
    orch_mail *head, *tail; /* owned */
} orch_mailbox;

int orch_mailbox_init(orch_mailbox *m, orch_err *err);

/* Frees every message left and the mailbox's locks. */
void orch_mailbox_free(orch_mailbox *m);

/* Appends a copy of len bytes of data. ORCH_ENOMEM. */
int orch_mailbox_put(orch_mailbox *m, const void *data, size_t len, orch_err *err);

/* The oldest message (malloc'd, the caller frees it), waiting up to
 * wait_us microseconds for one (0: do not wait; < 0: wait for ever).
 * NULL when none came. */
orch_mail *orch_mailbox_get(orch_mailbox *m, long wait_us);

#endif
