/*
 * err.h - status codes and the error record every library function fills.
 *
 * Library code never exits. A function that can fail returns an orch_status
 * and writes one human-readable line into an orch_err owned by the caller.
 * Only core/main.c turns a status into an exit code (orch_exit_code).
 *
 * Messages follow the CLI contract: "FILE:LINE: what is wrong" where a file
 * and line exist, otherwise "what is wrong". main prefixes "orch: ".
 */
#ifndef ORCH_ERR_H
#define ORCH_ERR_H

#include <stddef.h>

typedef enum orch_status {
    ORCH_OK = 0,
    ORCH_EINVAL = -1,   /* invalid input: pipeline, flags, files (exit 2) */
    ORCH_ERUNTIME = -2, /* a failure while running (exit 1) */
    ORCH_ENOMEM = -3,   /* allocation failed outside the hot path (exit 1) */
    ORCH_EDB = -4,      /* SQLite reported an error (exit 1) */
    ORCH_EIO = -5,      /* reading or writing a file failed (exit 1) */
    ORCH_EREFUSED = -6  /* a request was refused by policy, e.g. a write in
                           orch query (exit 2: the input was not allowed) */
} orch_status;

#define ORCH_ERR_MSG_MAX 1024

typedef struct orch_err {
    int code;                   /* an orch_status, ORCH_OK when clear */
    char msg[ORCH_ERR_MSG_MAX]; /* one line, no trailing newline */
} orch_err;

/* Records code and a printf-style message in e (e may be NULL) and returns
 * code, so callers can write `return orch_seterr(e, ORCH_EINVAL, ...)`. */
int orch_seterr(orch_err *e, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Clears e to ORCH_OK with an empty message. */
void orch_err_clear(orch_err *e);

/* Maps a status to the process exit code: 0 ok, 2 invalid input, 1 other. */
int orch_exit_code(int code);

/* A short name for a status ("invalid input", "database error", ...). */
const char *orch_status_name(int code);

/* Invariants that stay checked in every build (unlike assert(), which NDEBUG
 * removes). A broken invariant is a bug in orch, not bad input: it prints
 * "orch: FILE:LINE: internal error: EXPR" and aborts, so a core dump or a
 * sanitizer trace shows where. Never use it for user input. */
#define ORCH_ASSERT(expr) ((expr) ? (void)0 : orch_assert_fail(#expr, __FILE__, __LINE__, __func__))
/* Marks code that a valid enum can never reach (the __COUNT case of a switch). */
#define ORCH_UNREACHABLE() orch_assert_fail("unreachable", __FILE__, __LINE__, __func__)

_Noreturn void orch_assert_fail(const char *expr, const char *file, int line, const char *func);

#endif
