/*
 * test_startup_env.c - orch_startup_env() re-executes the program once with
 * GOMP_SPINCOUNT set, keeping what the caller sees: argv, the environment,
 * stdin, stdout, the pid and the exit code; and leaves a user's own wait
 * policy alone.
 *
 * The program re-executed is this test binary: started with
 * "--reexec-child", main() prints what it received and exits with the code
 * in its argv, instead of running the tests.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/startup_env.h"

/* The re-executed side: everything it was given, one fact a line. */
static int child_main(int argc, char **argv)
{
    char line[128] = "";
    if (fgets(line, sizeof line, stdin) == NULL)
        line[0] = '\0';
    line[strcspn(line, "\n")] = '\0';
    printf("pid=%ld\n", (long)getpid());
    printf("argc=%d\n", argc);
    for (int i = 0; i < argc; i++)
        printf("argv[%d]=%s\n", i, argv[i]);
    const char *names[] = {"GOMP_SPINCOUNT", ORCH_STARTUP_MARK, "OMP_WAIT_POLICY", "KEEP_ME"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        printf("%s=%s\n", names[i], getenv(names[i]) ? getenv(names[i]) : "(unset)");
    printf("stdin=%s\n", line);
    printf("wait=%s\n", orch_startup_env_describe());
    return atoi(argv[2]);
}

typedef struct child_run {
    int exit_code;
    long pid;
    char out[2048];
} child_run;

/* Forks; the child sets the environment pairs in env ("NAME=value", or
 * "NAME=" to unset), calls orch_startup_env() and, if that returns, prints
 * what it has (through child_main) and exits with code+100. stdin gets
 * "hello from the parent". */
static void run_child(const char *const *env, const char *code, child_run *r)
{
    int in[2], out[2];
    assert_int_equal(pipe(in), 0);
    assert_int_equal(pipe(out), 0);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        dup2(in[0], 0);
        dup2(out[1], 1);
        close(in[0]), close(in[1]), close(out[0]), close(out[1]);
        for (int i = 0; env[i] != NULL; i++) {
            char name[64];
            const char *eq = strchr(env[i], '=');
            snprintf(name, sizeof name, "%.*s", (int)(eq - env[i]), env[i]);
            if (eq[1] == '\0')
                unsetenv(name);
            else
                setenv(name, eq + 1, 1);
        }
        static char arg0[] = "renamed argv0", arg1[] = "--reexec-child", arg3[] = "two words",
                    arg4[] = "";
        char *argv[] = {arg0, arg1, (char *)code, arg3, arg4, NULL};
        orch_startup_env(argv);
        /* not re-executed: report from here, with a code that says so */
        char code100[16];
        snprintf(code100, sizeof code100, "%d", atoi(code) + 100);
        argv[2] = code100;
        int rc = child_main(5, argv);
        fflush(stdout); /* _exit does not flush */
        _exit(rc);
    }
    close(in[0]);
    close(out[1]);
    const char hello[] = "hello from the parent\n";
    assert_int_equal(write(in[1], hello, sizeof hello - 1), (ssize_t)(sizeof hello - 1));
    close(in[1]);
    size_t got = 0;
    ssize_t n;
    while ((n = read(out[0], r->out + got, sizeof r->out - 1 - got)) > 0)
        got += (size_t)n;
    r->out[got] = '\0';
    close(out[0]);
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    r->exit_code = WEXITSTATUS(status);
    r->pid = (long)pid;
}

static void assert_has(const char *out, const char *line)
{
    if (strstr(out, line) == NULL)
        fail_msg("missing '%s' in:\n%s", line, out);
}

static void test_reexec_keeps_argv_env_stdin_exit(void **state)
{
    (void)state;
    const char *env[] = {"OMP_WAIT_POLICY=", "GOMP_SPINCOUNT=", ORCH_STARTUP_MARK "=",
                         "KEEP_ME=a value with spaces", NULL};
    child_run r;
    run_child(env, "7", &r);
    assert_int_equal(r.exit_code, 7); /* re-executed: child_main's code, not 107 */
    char pid[32];
    snprintf(pid, sizeof pid, "pid=%ld\n", r.pid);
    assert_has(r.out, pid); /* exec, not a new process */
    assert_has(r.out, "argc=5\n");
    assert_has(r.out, "argv[0]=renamed argv0\n");
    assert_has(r.out, "argv[3]=two words\n");
    assert_has(r.out, "argv[4]=\n");
    assert_has(r.out, "GOMP_SPINCOUNT=" ORCH_GOMP_SPINCOUNT "\n");
    assert_has(r.out, ORCH_STARTUP_MARK "=1\n");
    assert_has(r.out, "OMP_WAIT_POLICY=(unset)\n");
    assert_has(r.out, "KEEP_ME=a value with spaces\n");
    assert_has(r.out, "stdin=hello from the parent\n");
    assert_has(r.out, "wait=GOMP_SPINCOUNT=" ORCH_GOMP_SPINCOUNT " (set by orch)\n");
}

static void test_reexec_keeps_exit_zero(void **state)
{
    (void)state;
    const char *env[] = {"OMP_WAIT_POLICY=", "GOMP_SPINCOUNT=", ORCH_STARTUP_MARK "=", NULL};
    child_run r;
    run_child(env, "0", &r);
    assert_int_equal(r.exit_code, 0);
    assert_has(r.out, ORCH_STARTUP_MARK "=1\n");
}

static void test_users_wait_policy_is_left_alone(void **state)
{
    (void)state;
    const char *env[] = {"OMP_WAIT_POLICY=active", "GOMP_SPINCOUNT=", ORCH_STARTUP_MARK "=", NULL};
    child_run r;
    run_child(env, "3", &r);
    assert_int_equal(r.exit_code, 103); /* not re-executed */
    assert_has(r.out, "GOMP_SPINCOUNT=(unset)\n");
    assert_has(r.out, "wait=OMP_WAIT_POLICY=active (yours)\n");

    const char *env2[] = {"OMP_WAIT_POLICY=", "GOMP_SPINCOUNT=123", ORCH_STARTUP_MARK "=", NULL};
    run_child(env2, "4", &r);
    assert_int_equal(r.exit_code, 104);
    assert_has(r.out, "GOMP_SPINCOUNT=123\n");
    assert_has(r.out, "wait=GOMP_SPINCOUNT=123 (yours)\n");
}

static void test_mark_stops_a_loop(void **state)
{
    (void)state;
    /* the mark without the variables (a user unset them): no second exec */
    const char *env[] = {"OMP_WAIT_POLICY=", "GOMP_SPINCOUNT=", ORCH_STARTUP_MARK "=1", NULL};
    child_run r;
    run_child(env, "5", &r);
    assert_int_equal(r.exit_code, 105);
    assert_has(r.out, "wait=libgomp's default wait\n");
}

int main(int argc, char **argv)
{
    if (argc >= 3 && strcmp(argv[1], "--reexec-child") == 0)
        return child_main(argc, argv);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reexec_keeps_argv_env_stdin_exit),
        cmocka_unit_test(test_reexec_keeps_exit_zero),
        cmocka_unit_test(test_users_wait_policy_is_left_alone),
        cmocka_unit_test(test_mark_stops_a_loop),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
