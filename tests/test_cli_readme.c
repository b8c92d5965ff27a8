/* test_cli_readme.c - the README's tour works, as written, after `make run`.
 *
 * The commands are read from README.md itself (the ```sh block under
 * "## A two-minute tour"), so the README and this test cannot drift apart;
 * `make run` is read from the Makefile's run recipe. They run in a fresh
 * temporary directory holding two links, ./orch (the binary under test) and
 * ./pipelines (the repository's), with $ORCH_DB unset, so the store is
 * ./orch.db exactly as for a user; files a command writes land there too.
 *
 * Expectations, from the README's own comments:
 *   - every command exits 0, unless its comment says "(exit N)";
 *   - a comment "run K" means the command records (or shows) run K;
 *   - `orch show` of the NaN tour run prints its first NaN event;
 *   - the command before a comment line mentioning Ctrl-C is interrupted:
 *     it runs with --json and gets SIGINT once its "step": 2 line is out
 *     (a checkpoint exists then), so no timing is involved; it is shortened
 *     with a later --set schedule.steps=12 --set schedule.checkpoint_every=2
 *     (a later --set wins) to keep the suite fast. The resume that follows
 *     runs verbatim and must finish the same run. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/testutil.h"

#define MAX_COMMANDS 64

typedef struct tour_cmd {
    char *text;    /* the shell command, continuation lines included; owned */
    char *comment; /* its trailing comment, "" if none; owned */
    int interrupt; /* followed by a comment line about Ctrl-C */
} tour_cmd;

static char dir[256];
static tour_cmd cmds[MAX_COMMANDS];
static int n_cmds;
static char make_run[512]; /* the Makefile's `run` recipe */

/* Splits a line into command text and a trailing "# comment" outside quotes. */
static void split_comment(const char *line, char **text, char **comment)
{
    int in_single = 0, in_double = 0;
    size_t n = strlen(line), cut = n;
    for (size_t i = 0; i < n; i++) {
        char c = line[i];
        if (c == '\'' && !in_double)
            in_single = !in_single;
        else if (c == '"' && !in_single)
            in_double = !in_double;
        else if (c == '#' && !in_single && !in_double && i > 0 &&
                 (line[i - 1] == ' ' || line[i - 1] == '\t')) {
            cut = i;
            break;
        }
    }
    size_t end = cut;
    while (end > 0 && (line[end - 1] == ' ' || line[end - 1] == '\t'))
        end--;
    *text = strndup(line, end);
    *comment = strdup(cut < n ? line + cut + 1 : "");
}

/* 1 if text has an odd number of double quotes (a string still open). */
static int open_quote(const char *text)
{
    int in_double = 0;
    for (const char *p = text; *p; p++)
        if (*p == '"')
            in_double = !in_double;
    return in_double;
}

static void parse_tour(const char *readme)
{
    const char *tour = strstr(readme, "\n## A two-minute tour");
    assert_non_null(tour);
    const char *block = strstr(tour, "\n```sh\n");
    assert_non_null(block);
    block += strlen("\n```sh\n");
    const char *end = strstr(block, "\n```");
    assert_non_null(end);
    const char *line = block;
    while (line < end) {
        const char *nl = memchr(line, '\n', (size_t)(end - line));
        if (nl == NULL)
            nl = end;
        char *l = strndup(line, (size_t)(nl - line));
        assert_non_null(l);
        if (n_cmds > 0 && open_quote(cmds[n_cmds - 1].text)) {
            /* inside a multi-line quoted SQL string */
            char *text, *comment;
            split_comment(l, &text, &comment);
            tour_cmd *c = &cmds[n_cmds - 1];
            size_t len = strlen(c->text) + strlen(text) + 2;
            char *joined = malloc(len);
            assert_non_null(joined);
            snprintf(joined, len, "%s\n%s", c->text, text);
            free(c->text);
            c->text = joined;
            if (comment[0] != '\0') {
                free(c->comment);
                c->comment = comment;
            } else {
                free(comment);
            }
            free(text);
        } else if (l[0] == '#') {
            if (strstr(l, "Ctrl-C") != NULL && n_cmds > 0)
                cmds[n_cmds - 1].interrupt = 1;
            /* a comment line may name the run of the command before it */
            if (n_cmds > 0 && strstr(l, "run ") != NULL) {
                free(cmds[n_cmds - 1].comment);
                cmds[n_cmds - 1].comment = strdup(l + 1);
            }
        } else if (l[0] != '\0') {
            assert_true(n_cmds < MAX_COMMANDS);
            tour_cmd *c = &cmds[n_cmds++];
            split_comment(l, &c->text, &c->comment);
        }
        free(l);
        line = nl + 1;
    }
    assert_true(n_cmds >= 10);
}

static void parse_make_run(const char *makefile)
{
    const char *run = strstr(makefile, "\nrun:");
    assert_non_null(run);
    const char *recipe = strstr(run + 1, "\n\t");
    assert_non_null(recipe);
    recipe += 2;
    size_t n = strcspn(recipe, "\n");
    assert_true(n < sizeof make_run);
    memcpy(make_run, recipe, n);
    make_run[n] = '\0';
}

static int setup(void **state)
{
    (void)state;
    char *readme = read_whole_file("README.md", NULL);
    char *makefile = read_whole_file("Makefile", NULL);
    if (readme == NULL || makefile == NULL || make_temp_dir(dir, sizeof dir) == NULL)
        return -1;
    parse_tour(readme);
    parse_make_run(makefile);
    free(readme);
    free(makefile);
    char bin[PATH_MAX], pipelines[PATH_MAX], link[600];
    if (realpath(orch_bin(), bin) == NULL || realpath("pipelines", pipelines) == NULL)
        return -1;
    snprintf(link, sizeof link, "%s/orch", dir);
    if (symlink(bin, link) != 0)
        return -1;
    snprintf(link, sizeof link, "%s/pipelines", dir);
    return symlink(pipelines, link);
}

static int teardown(void **state)
{
    (void)state;
    for (int i = 0; i < n_cmds; i++) {
        free(cmds[i].text);
        free(cmds[i].comment);
    }
    remove_tree(dir);
    return 0;
}

/* Writes "exec COMMAND" into DIR/cmd.sh: sh runs it in DIR, as orch itself
 * (exec), so a signal reaches orch and quoting stays the README's. */
static void write_script(const char *command, const char *extra)
{
    char path[512];
    snprintf(path, sizeof path, "%s/cmd.sh", dir);
    size_t len = strlen(command) + strlen(extra) + 16;
    char *text = malloc(len);
    assert_non_null(text);
    snprintf(text, len, "exec %s%s\n", command, extra);
    assert_int_equal(write_text_file(path, text), 0);
    free(text);
}

static cli_result run_in_dir(const char *command)
{
    write_script(command, "");
    char shell[600];
    snprintf(shell, sizeof shell, "cd '%s' && unset ORCH_DB && exec sh ./cmd.sh", dir);
    cli_result r;
    assert_int_equal(run_shell(shell, &r), 0);
    return r;
}

/* Runs command with --json, sends SIGINT once "step": 2 is printed, and
 * returns the exit code. */
static int run_interrupted(const char *command)
{
    write_script(command, " --json --set schedule.steps=12 --set schedule.checkpoint_every=2");
    int out[2];
    assert_int_equal(pipe(out), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int devnull = open("/dev/null", O_RDWR);
        dup2(devnull, 0);
        dup2(devnull, 2);
        dup2(out[1], 1);
        close(out[0]);
        close(out[1]);
        unsetenv("ORCH_DB");
        if (chdir(dir) != 0)
            _exit(127);
        execl("/bin/sh", "sh", "./cmd.sh", (char *)NULL);
        _exit(127);
    }
    close(out[1]);
    FILE *fp = fdopen(out[0], "r");
    assert_non_null(fp);
    char line[1024];
    int sent = 0;
    while (fgets(line, sizeof line, fp) != NULL)
        if (!sent && strstr(line, "\"step\": 2,") != NULL) {
            kill(pid, SIGINT);
            sent = 1;
        }
    fclose(fp);
    int status;
    while (waitpid(pid, &status, 0) < 0)
        ;
    assert_true(sent);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static void test_tour(void **state)
{
    (void)state;
    cli_result r = run_in_dir(make_run);
    if (r.exit_code != 0)
        fail_msg("make run's '%s' exited %d: %s", make_run, r.exit_code, r.err);
    cli_result_free(&r);
    for (int i = 0; i < n_cmds; i++) {
        const tour_cmd *c = &cmds[i];
        int want = 0, run_id = 0;
        const char *exit_note = strstr(c->comment, "(exit ");
        if (exit_note != NULL)
            want = atoi(exit_note + 6);
        const char *run_note = strstr(c->comment, "run ");
        if (run_note != NULL)
            run_id = atoi(run_note + 4);
        if (c->interrupt) {
            int code = run_interrupted(c->text);
            if (code != 1)
                fail_msg("'%s' interrupted: exit %d, want 1 (interrupted)", c->text, code);
            continue;
        }
        r = run_in_dir(c->text);
        if (r.exit_code != want)
            fail_msg("README tour: '%s' exited %d, want %d; stderr: %s", c->text, r.exit_code, want,
                     r.err);
        char mark[64];
        if (run_id > 0 && strncmp(c->text, "./orch run ", 11) == 0) {
            snprintf(mark, sizeof mark, "run %d ", run_id);
            if (strstr(r.out, mark) == NULL)
                fail_msg("'%s' should record run %d; stdout: %s", c->text, run_id, r.out);
        }
        if (strncmp(c->text, "./orch resume ", 14) == 0) {
            snprintf(mark, sizeof mark, "run %d finished", atoi(c->text + 14));
            if (strstr(r.out, mark) == NULL)
                fail_msg("'%s' should finish the interrupted run; stdout: %s", c->text, r.out);
        }
        if (strncmp(c->text, "./orch show ", 12) == 0 && strstr(c->comment, "NaN") != NULL &&
            strstr(r.out, "first NaN event") == NULL)
            fail_msg("'%s' should show a run with a first NaN event; stdout: %s", c->text, r.out);
        cli_result_free(&r);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tour),
    };
    return cmocka_run_group_tests_name("cli readme tour", tests, setup, teardown);
}
