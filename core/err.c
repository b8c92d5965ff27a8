/* err.c - the error record; see err.h. */
#include "err.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

int orch_seterr(orch_err *e, int code, const char *fmt, ...)
{
    if (e == NULL)
        return code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->msg, sizeof e->msg, fmt, ap);
    va_end(ap);
    e->code = code;
    return code;
}

void orch_err_clear(orch_err *e)
{
    if (e == NULL)
        return;
    e->code = ORCH_OK;
    e->msg[0] = '\0';
}

int orch_exit_code(int code)
{
    switch (code) {
    case ORCH_OK:
        return 0;
    case ORCH_EINVAL:
    case ORCH_EREFUSED:
        return 2;
    default:
        return 1;
    }
}

const char *orch_status_name(int code)
{
    switch (code) {
    case ORCH_OK:
        return "ok";
    case ORCH_EINVAL:
        return "invalid input";
    case ORCH_ERUNTIME:
        return "runtime failure";
    case ORCH_ENOMEM:
        return "out of memory";
    case ORCH_EDB:
        return "database error";
    case ORCH_EIO:
        return "i/o error";
    case ORCH_EREFUSED:
        return "refused";
    default:
        return "unknown error";
    }
}

void orch_assert_fail(const char *expr, const char *file, int line, const char *func)
{
    fprintf(stderr, "orch: %s:%d: internal error in %s(): %s\n", file, line, func, expr);
    fflush(stderr);
    abort();
}
