/*
 * open_log.c - a debug hook: which host and process opened which store.
 *
 * With ORCH_STORE_OPEN_LOG=FILE in the environment, every orch_store_open
 * appends one line "HOST PID PATH\n" to FILE (created 0644 if missing)
 * before it does anything else, so refused and failed opens are logged
 * too. It exists so a test (tests/test_cli_sweep_multihost.c) can check
 * that under MPI only the coordinator on host 0 opened the store; nothing
 * else reads it. The file is opened O_APPEND and each line goes out in one
 * write(), so processes on several hosts sharing FILE do not interleave
 * within a line. The hook never fails an open: a log it cannot write is
 * ignored (library code does not print).
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "store/store_int.h"

void store_open_log(const char *path)
{
    const char *log = getenv(STORE_OPEN_LOG_ENV);
    if (log == NULL || log[0] == '\0')
        return;
    char host[256];
    if (gethostname(host, sizeof host) != 0)
        snprintf(host, sizeof host, "?");
    host[sizeof host - 1] = '\0';
    char line[STORE_PATH_MAX + 320];
    int n = snprintf(line, sizeof line, "%s %lld %s\n", host, (long long)getpid(),
                     path != NULL ? path : "(null)");
    if (n < 0)
        return;
    if ((size_t)n >= sizeof line) { /* a path too long for one line: keep the newline */
        n = (int)sizeof line - 1;
        line[n - 1] = '\n';
    }
    int fd = open(log, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0)
        return;
    ssize_t written = write(fd, line, (size_t)n);
    (void)written; /* best effort: see above */
    close(fd);
}
