/*
 * test_store_files.c - the files around a store: checkpoint and shard
 * checks that never block or read forever, paths recorded relative to the
 * store, and text made safe for a terminal.
 *
 * A regression that blocks on a FIFO would hang the test: alarm() ends it
 * (as a failure) instead. It is a watchdog, not a synchronisation.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/checkpoint.h"
#include "store/safetensors.h"
#include "store/store.h"
#include "store/store_int.h"
#include "tests/testutil.h"

static char dir[256];

static int setup(void **state)
{
    (void)state;
    alarm(60);
    return make_temp_dir(dir, sizeof dir) == NULL ? -1 : 0;
}

static int teardown(void **state)
{
    (void)state;
    alarm(0);
    remove_tree(dir);
    return 0;
}

static void test_fifo_and_device_refused_without_reading(void **state)
{
    (void)state;
    char fifo[400], index[400];
    orch_err err = {0};
    char hex[65];
    int64_t bytes = 0;
    snprintf(fifo, sizeof fifo, "%s/checkpoint-9.safetensors", dir);
    assert_int_equal(mkfifo(fifo, 0600), 0);
    assert_int_equal(orch_file_sha256(fifo, hex, &bytes, &err), ORCH_EIO);
    assert_non_null(strstr(err.msg, "not a regular file (a FIFO)"));
    orch_err_clear(&err);
    assert_int_equal(orch_checkpoint_verify(fifo, 10, NULL, &err), ORCH_EINVAL);
    assert_non_null(strstr(err.msg, "not a regular file (a FIFO)"));

    /* a safetensors shard, and an index, replaced by a FIFO */
    orch_st_file *f = NULL;
    orch_err_clear(&err);
    assert_int_equal(orch_st_open(fifo, &f, &err), ORCH_EINVAL);
    assert_non_null(strstr(err.msg, "not a regular file"));
    snprintf(index, sizeof index, "%s/model.safetensors.index.json", dir);
    assert_int_equal(mkfifo(index, 0600), 0);
    orch_err_clear(&err);
    assert_int_equal(orch_st_open(index, &f, &err), ORCH_EINVAL);
    assert_non_null(strstr(err.msg, "not a regular file"));

    /* /dev/zero never ends: refused before it is read */
    orch_err_clear(&err);
    assert_int_equal(orch_file_sha256("/dev/zero", hex, &bytes, &err), ORCH_EIO);
    assert_non_null(strstr(err.msg, "a character device"));
    orch_err_clear(&err);
    assert_int_equal(orch_st_open("/dev/zero", &f, &err), ORCH_EINVAL);
}

static void test_verify_checks_size_first_and_says_why(void **state)
{
    (void)state;
    char path[400], hex[65];
    int64_t bytes = 0;
    orch_err err = {0};
    snprintf(path, sizeof path, "%s/c.safetensors", dir);
    assert_int_equal(write_text_file(path, "twelve bytes"), 0);
    assert_int_equal(orch_file_sha256(path, hex, &bytes, &err), ORCH_OK);
    assert_int_equal(bytes, 12);
    assert_int_equal(orch_checkpoint_verify(path, 12, hex, &err), ORCH_OK);
    assert_int_equal(orch_checkpoint_verify(path, -1, hex, &err), ORCH_OK);
    assert_int_equal(orch_checkpoint_verify(path, 4096, hex, &err), ORCH_EINVAL);
    assert_non_null(strstr(err.msg, ": 12 bytes, recorded as 4096"));
    char other[65];
    memcpy(other, hex, sizeof other);
    other[0] = other[0] == '0' ? '1' : '0';
    assert_int_equal(orch_checkpoint_verify(path, 12, other, &err), ORCH_EINVAL);
    assert_non_null(strstr(err.msg, "does not match its recorded sha256"));
    chmod(path, 0);
    if (getuid() != 0) { /* root reads anything */
        assert_int_equal(orch_checkpoint_verify(path, 12, hex, &err), ORCH_EINVAL);
        assert_non_null(strstr(err.msg, "cannot open: Permission denied"));
    }
    snprintf(path, sizeof path, "%s/missing.safetensors", dir);
    assert_int_equal(orch_checkpoint_verify(path, 12, hex, &err), ORCH_EINVAL);
    assert_non_null(strstr(err.msg, "cannot open: No such file or directory"));
}

static void test_paths_relative_to_the_store(void **state)
{
    (void)state;
    char db[400], in[600], out[STORE_PATH_MAX];
    orch_store *s = NULL;
    orch_err err = {0};
    snprintf(db, sizeof db, "%s/orch.db", dir);
    assert_int_equal(orch_store_open(db, ORCH_STORE_READWRITE, &s, &err), ORCH_OK);

    snprintf(in, sizeof in, "%s/orch.db.runs/3/checkpoint-9.safetensors", dir);
    assert_int_equal(store_record_path(s, in, out, sizeof out, &err), ORCH_OK);
    assert_string_equal(out, "orch.db.runs/3/checkpoint-9.safetensors");
    snprintf(in, sizeof in, "%s/./x/../orch.db.runs//3/c.safetensors", dir);
    assert_int_equal(store_record_path(s, in, out, sizeof out, &err), ORCH_OK);
    assert_string_equal(out, "orch.db.runs/3/c.safetensors");
    /* outside the store's directory: absolute */
    assert_int_equal(store_record_path(s, "/elsewhere/c.safetensors", out, sizeof out, &err),
                     ORCH_OK);
    assert_string_equal(out, "/elsewhere/c.safetensors");
    snprintf(in, sizeof in, "%s-other/c.safetensors", dir);
    assert_int_equal(store_record_path(s, in, out, sizeof out, &err), ORCH_OK);
    assert_string_equal(out, in);

    /* read back: relative to the store, from any working directory */
    assert_int_equal(orch_store_resolve_path(s, "orch.db.runs/3/c.safetensors", out, sizeof out),
                     0);
    snprintf(in, sizeof in, "%s/orch.db.runs/3/c.safetensors", dir);
    assert_string_equal(out, in);
    assert_int_equal(orch_store_resolve_path(s, "/abs/c", out, sizeof out), 0);
    assert_string_equal(out, "/abs/c");
    assert_int_equal(orch_store_run_dir(s, 3, out, sizeof out), 0);
    snprintf(in, sizeof in, "%s/orch.db.runs/3", dir);
    assert_string_equal(out, in);
    orch_store_close(s);
}

static void test_sanitize(void **state)
{
    (void)state;
    char out[64];
    store_sanitize("a\x1b[2Jb\nc\x7f", out, sizeof out);
    assert_string_equal(out, "a\\x1b[2Jb\\x0ac\\x7f");
    store_sanitize("\x01\x02\x03\x04", out, 9); /* never a cut escape */
    assert_string_equal(out, "\\x01\\x02");
    store_sanitize(NULL, out, sizeof out);
    assert_string_equal(out, "");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_fifo_and_device_refused_without_reading, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_verify_checks_size_first_and_says_why, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_paths_relative_to_the_store, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sanitize, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
