/* test_cli_lua_finalizer.c - finalizers and to-be-closed values cannot
 * outlast the pipeline's instruction limit.
 *
 * Lua 5.4 runs __gc metamethods with hooks off, in collections and in
 * lua_close, so an endless loop in one once hung `orch plan` and `orch run`
 * forever. Each case writes a pipeline into a temporary directory and runs
 * it under both commands; orch must exit 2 with one line naming the file.
 * A regression must not hang the suite: every orch runs under coreutils
 * timeout (60 s, generous for a loaded machine), which kills it, and the
 * kill fails the test. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "tests/testutil.h"

#define WATCHDOG_SECONDS 60

static char dir[256];

static int setup(void **state)
{
    (void)state;
    if (make_temp_dir(dir, sizeof dir) == NULL)
        return -1;
    char path[512];
    snprintf(path, sizeof path, "%s/common.lua", dir);
    return write_text_file(
        path,
        "return {\n"
        "  model = { preset = \"tiny\" },\n"
        "  data = { source = \"synthetic\", samples = 4, classes = 2, image_size = {16, 16} },\n"
        "  strategy = surgery {},\n"
        "  head = { kind = \"classifier\", classes = 2 },\n"
        "  optimizer = { kind = \"sgd\", lr = 0.01 },\n"
        "  schedule = { steps = 1, batch_size = 2 },\n"
        "}\n");
}

static int teardown(void **state)
{
    (void)state;
    remove_tree(dir);
    return 0;
}

/* Writes name.lua with text, runs `orch plan` and `orch run` on it under the
 * watchdog; each must exit 2 with one line "orch: PATH:..." containing want. */
static void expect_refused_in_time(const char *name, const char *text, const char *want)
{
    char path[512], db[512], cmd[2048];
    snprintf(path, sizeof path, "%s/%s.lua", dir, name);
    snprintf(db, sizeof db, "%s/orch.db", dir);
    assert_int_equal(write_text_file(path, text), 0);
    static const char *const commands[] = {"plan", "run"};
    for (size_t i = 0; i < 2; i++) {
        snprintf(cmd, sizeof cmd, "exec timeout -s KILL %d '%s' %s --db '%s' '%s'",
                 WATCHDOG_SECONDS, orch_bin(), commands[i], db, path);
        cli_result r;
        assert_int_equal(run_shell(cmd, &r), 0);
        if (r.exit_code == 128 + 9 || r.exit_code == 124)
            fail_msg("orch %s %s: still running after %d s (killed): the instruction limit does "
                     "not hold",
                     commands[i], path, WATCHDOG_SECONDS);
        const char *newline = strchr(r.err, '\n');
        if (r.exit_code != 2 || strncmp(r.err, "orch: ", 6) != 0 || strstr(r.err, path) == NULL ||
            strstr(r.err, want) == NULL || newline == NULL || newline[1] != '\0')
            fail_msg("orch %s %s: want exit 2 and one line with '%s', got exit %d, stderr: %s",
                     commands[i], path, want, r.exit_code, r.err);
        cli_result_free(&r);
    }
}

/* The case of the report: a table with a looping finalizer. */
static void test_gc_endless_loop(void **state)
{
    (void)state;
    expect_refused_in_time("gc_loop",
                           "local base = require \"common\"\n"
                           "setmetatable({}, {__gc = function() while true do end end})\n"
                           "return base\n",
                           ":2: metatables with __gc (finalizers) are not allowed");
}

/* The same finalizer on a table kept reachable until lua_close. */
static void test_gc_reachable_until_close(void **state)
{
    (void)state;
    expect_refused_in_time("gc_kept",
                           "local base = require \"common\"\n"
                           "local mt = { __gc = function() while true do end end }\n"
                           "base.keep = setmetatable({}, mt)\n"
                           "return base\n",
                           ":3: metatables with __gc");
}

/* __gc added after setmetatable is never called by Lua, but extend() copies
 * metatables with lua_setmetatable, which would mark the copy: refused too. */
static void test_gc_through_extend(void **state)
{
    (void)state;
    expect_refused_in_time("gc_extend",
                           "local base = require \"common\"\n"
                           "local mt = {}\n"
                           "local t = setmetatable({}, mt)\n"
                           "mt.__gc = function() while true do end end\n"
                           "return extend(base, { tags = t })\n",
                           ":5: metatables with __gc");
}

/* __close runs with hooks on: the instruction limit stops it. */
static void test_close_endless_loop(void **state)
{
    (void)state;
    expect_refused_in_time("close_loop",
                           "local base = require \"common\"\n"
                           "do\n"
                           "  local x <close> = setmetatable({}, {__close = function()\n"
                           "    while true do end\n"
                           "  end})\n"
                           "end\n"
                           "return base\n",
                           "pipeline ran too long");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gc_endless_loop),
        cmocka_unit_test(test_gc_reachable_until_close),
        cmocka_unit_test(test_gc_through_extend),
        cmocka_unit_test(test_close_endless_loop),
    };
    return cmocka_run_group_tests_name("cli lua finalizers", tests, setup, teardown);
}
