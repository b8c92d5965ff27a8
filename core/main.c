/*
 * main.c - the orch executable: global options, command dispatch, exit codes.
 *
 * The only place that prints an error for the user and chooses the exit
 * code: 0 success, 2 invalid input, 1 runtime failure (core/err.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/cli.h"
#include "core/err.h"
#include "core/startup_env.h"

int main(int argc, char **argv)
{
    orch_cli_globals globals = {NULL, 0};
    orch_err err;
    orch_err_clear(&err);

    /* Global options may come before the command: orch --db x.db runs */
    int first = 1;
    while (first < argc && strncmp(argv[first], "-", 1) == 0) {
        const char *arg = argv[first];
        if (strcmp(arg, "--version") == 0 || strcmp(arg, "-V") == 0) {
            printf("orch %s\n", ORCH_VERSION);
            if (orch_cli_apply_threads(&globals, &err) != ORCH_OK) {
                fflush(stdout);
                fprintf(stderr, "orch: %s\n", err.msg);
                return orch_exit_code(err.code);
            }
            orch_cli_print_kernels(stdout, "");
            return 0;
        }
        if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
            orch_cli_print_help(stdout);
            return 0;
        }
        if ((strcmp(arg, "--db") == 0 || strcmp(arg, "--threads") == 0) && first + 1 < argc) {
            if (arg[2] == 'd') {
                globals.db_path = argv[first + 1];
            } else {
                long threads = 0;
                if (orch_parse_int("threads", argv[first + 1], 1, 1024, &threads, &err) !=
                    ORCH_OK) {
                    fprintf(stderr, "orch: %s\n", err.msg);
                    return 2;
                }
                globals.threads = (int)threads;
            }
            first += 2;
            continue;
        }
        if (strncmp(arg, "--db=", 5) == 0) {
            globals.db_path = arg + 5;
            first++;
            continue;
        }
        fprintf(stderr, "orch: unknown option '%s' (see 'orch help')\n", arg);
        return 2;
    }
    if (first >= argc) {
        orch_cli_print_help(stderr);
        return 2;
    }
    const orch_cmd *cmd = orch_cmd_find(argv[first]);
    if (cmd == NULL) {
        fprintf(stderr, "orch: '%s' is not an orch command (see 'orch help')\n", argv[first]);
        return 2;
    }
    /* Commands that run kernels start again with the wait policy libgomp
     * must see at load (docs/threads.md); nothing was printed yet. The
     * others do not pay the second exec (~10 ms of CPU). */
    if (strcmp(cmd->name, "run") == 0 || strcmp(cmd->name, "resume") == 0 ||
        strcmp(cmd->name, "sweep") == 0)
        orch_startup_env(argv);
    int rc = cmd->run(argc - first, argv + first, &globals, &err);
    if (rc != ORCH_OK) {
        fflush(stdout);
        fprintf(stderr, "orch: %s\n", err.msg[0] ? err.msg : orch_status_name(rc));
        return orch_exit_code(rc);
    }
    return fflush(stdout) == 0 ? 0 : 1;
}
