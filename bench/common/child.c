/* child.c - running orch from a bench program; see child.h. */
#include "bench/common/child.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

int bench_child_run(char *const argv[], const char *work, const char *log, struct rusage *ru)
{
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        FILE *out = fopen(log, "a");
        if (out == NULL)
            _exit(127);
        dup2(fileno(out), 1);
        dup2(fileno(out), 2);
        setenv("ORCH_THREADS", "1", 1);
        setenv("OMPI_MCA_pml", "ob1", 1);
        setenv("OMPI_MCA_btl", "self,vader,tcp", 1);
        setenv("OMPI_MCA_btl_vader_single_copy_mechanism", "none", 1);
        setenv("OMPI_MCA_hwloc_base_binding_policy", "none", 1);
        setenv("OMPI_MCA_rmaps_base_oversubscribe", "1", 1);
        setenv("OMPI_MCA_orte_tmpdir_base", work, 1);
        if (geteuid() == 0) { /* Open MPI refuses root without both */
            setenv("OMPI_ALLOW_RUN_AS_ROOT", "1", 1);
            setenv("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1", 1);
        }
        execvp(argv[0], argv);
        _exit(127);
    }
    int status = 0;
    struct rusage usage;
    while (wait4(pid, &status, 0, &usage) < 0)
        ;
    if (ru != NULL)
        *ru = usage;
    return status;
}

int bench_orch_path(const char *argv0, char *out, size_t n)
{
    char self[PATH_MAX];
    if (realpath(argv0, self) == NULL)
        return -1;
    for (int up = 0; up < 2; up++) { /* BUILD/bench/NAME -> BUILD */
        char *slash = strrchr(self, '/');
        if (slash == NULL) {
            errno = ENOENT;
            return -1;
        }
        *slash = '\0';
    }
    if ((size_t)snprintf(out, n, "%s/orch", self) >= n) {
        errno = ENAMETOOLONG;
        return -1;
    }
    return 0;
}
