/* mailbox.c - an in-process FIFO of byte messages; see mailbox.h. */
#include "core/mailbox.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int orch_mailbox_init(orch_mailbox *m, orch_err *err)
{
    memset(m, 0, sizeof *m);
    pthread_condattr_t attr;
    /* a monotonic clock for the bounded wait: a clock change must not
     * stretch it */
    if (pthread_condattr_init(&attr) != 0 ||
        pthread_condattr_setclock(&attr, CLOCK_MONOTONIC) != 0 ||
        pthread_cond_init(&m->ready, &attr) != 0)
        return orch_seterr(err, ORCH_ERUNTIME, "mailbox: cannot make a condition variable");
    pthread_condattr_destroy(&attr);
    if (pthread_mutex_init(&m->lock, NULL) != 0) {
        pthread_cond_destroy(&m->ready);
        return orch_seterr(err, ORCH_ERUNTIME, "mailbox: cannot make a mutex");
    }
    return ORCH_OK;
}

void orch_mailbox_free(orch_mailbox *m)
{
    for (orch_mail *p = m->head, *next; p != NULL; p = next) {
        next = p->next;
        free(p);
    }
    pthread_mutex_destroy(&m->lock);
    pthread_cond_destroy(&m->ready);
    memset(m, 0, sizeof *m);
}

int orch_mailbox_put(orch_mailbox *m, const void *data, size_t len, orch_err *err)
{
    orch_mail *mail = malloc(sizeof *mail + len);
    if (mail == NULL)
        return orch_seterr(err, ORCH_ENOMEM, "mailbox: out of memory for a message");
    mail->next = NULL;
    mail->len = len;
    if (len > 0)
        memcpy(mail->data, data, len);
    pthread_mutex_lock(&m->lock);
    if (m->tail != NULL)
        m->tail->next = mail;
    else
        m->head = mail;
    m->tail = mail;
    pthread_cond_signal(&m->ready);
    pthread_mutex_unlock(&m->lock);
    return ORCH_OK;
}

orch_mail *orch_mailbox_get(orch_mailbox *m, long wait_us)
{
    pthread_mutex_lock(&m->lock);
    if (m->head == NULL && wait_us != 0) {
        struct timespec until;
        clock_gettime(CLOCK_MONOTONIC, &until);
        if (wait_us > 0) {
            until.tv_sec += wait_us / 1000000L;
            until.tv_nsec += (wait_us % 1000000L) * 1000L;
            if (until.tv_nsec >= 1000000000L) {
                until.tv_sec++;
                until.tv_nsec -= 1000000000L;
            }
        }
        while (m->head == NULL) {
            int rc = wait_us > 0 ? pthread_cond_timedwait(&m->ready, &m->lock, &until)
                                 : pthread_cond_wait(&m->ready, &m->lock);
            if (rc == ETIMEDOUT)
                break;
        }
    }
    orch_mail *mail = m->head;
    if (mail != NULL) {
        m->head = mail->next;
        if (m->head == NULL)
            m->tail = NULL;
        mail->next = NULL;
    }
    pthread_mutex_unlock(&m->lock);
    return mail;
}
