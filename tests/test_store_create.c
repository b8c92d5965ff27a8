/*
 * test_store_create.c - creating a store, and refusing files that are not
 * one, without harm to readers or to other applications' files.
 *
 * A reader racing the creation of a new store is checked deterministically:
 * the store's creation hook (store_int.h) runs the reader at the exact point
 * where it would have seen a half-made store.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "store/store.h"
#include "store/store_int.h"
#include "tests/testutil.h"
#include "tests/testutil_sql.h"

typedef struct fixture {
    char dir[256];
    char db[300];
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    if (f == NULL || make_temp_store(f->dir, sizeof f->dir, f->db, sizeof f->db) != 0)
        return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    store_create_hook = NULL;
    store_create_hook_ctx = NULL;
    remove_tree(f->dir);
    free(f);
    return 0;
}

/* A whole binary file, malloc'd; its size in *n. */
static char *read_bytes(const char *path, size_t *n)
{
    FILE *fp = fopen(path, "rb");
    assert_non_null(fp);
    fseek(fp, 0, SEEK_END);
    long size = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    char *buf = malloc((size_t)size + 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)size, fp), (size_t)size);
    fclose(fp);
    *n = (size_t)size;
    return buf;
}

static int exists(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0;
}

/* What a reader saw while the store was being created. */
typedef struct race {
    int calls;
    int read_rc;
    char read_msg[ORCH_ERR_MSG_MAX];
    int reap_rc;
    int reap_found; /* orch_store_reap_path's open found a store */
} race;

static void read_during_creation(const char *path, void *ctx)
{
    race *r = ctx;
    orch_store *s = NULL;
    orch_err err = {0};
    r->calls++;
    r->read_rc = orch_store_open(path, ORCH_STORE_READONLY, &s, &err);
    snprintf(r->read_msg, sizeof r->read_msg, "%s", err.msg);
    orch_store_close(s);
    s = NULL;
    orch_err_clear(&err);
    r->reap_rc = store_open_existing(path, &s, &err);
    r->reap_found = s != NULL;
    orch_store_close(s);
}

static void test_reader_racing_creation_sees_no_store(void **state)
{
    fixture *f = *state;
    race r;
    memset(&r, 0, sizeof r);
    store_create_hook = read_during_creation;
    store_create_hook_ctx = &r;
    orch_store *s = NULL;
    orch_err err = {0};
    assert_int_equal(orch_store_open(f->db, ORCH_STORE_READWRITE, &s, &err), ORCH_OK);
    store_create_hook = NULL;
    assert_int_equal(r.calls, 1);
    /* the reader saw either no file or a complete store: here, no file */
    char want[400];
    snprintf(want, sizeof want, "no store at %s (run a pipeline first, or pass --db)", f->db);
    assert_int_equal(r.read_rc, ORCH_EINVAL);
    assert_string_equal(r.read_msg, want);
    assert_int_equal(r.reap_rc, ORCH_OK);
    assert_int_equal(r.reap_found, 0);
    orch_store_close(s);

    /* once created, it reads; opening it again creates nothing */
    s = NULL;
    assert_int_equal(orch_store_open(f->db, ORCH_STORE_READONLY, &s, &err), ORCH_OK);
    orch_store_close(s);
    memset(&r, 0, sizeof r);
    store_create_hook = read_during_creation;
    s = NULL;
    assert_int_equal(orch_store_open(f->db, ORCH_STORE_READWRITE, &s, &err), ORCH_OK);
    assert_int_equal(r.calls, 0);
    orch_store_close(s);
}

/* Many creators at once: all succeed on the same store, no temporary file
 * is left behind. */
static void test_concurrent_creators(void **state)
{
    fixture *f = *state;
    enum { N = 6 };
    pid_t kids[N];
    for (int i = 0; i < N; i++) {
        kids[i] = fork();
        assert_true(kids[i] >= 0);
        if (kids[i] == 0) {
            orch_store *s = NULL;
            orch_err err = {0};
            int rc = orch_store_open(f->db, i % 2 ? ORCH_STORE_READWRITE : ORCH_STORE_READWRITE, &s,
                                     &err);
            orch_store_close(s);
            _exit(rc == ORCH_OK ? 0 : 1);
        }
    }
    for (int i = 0; i < N; i++) {
        int status = 0;
        assert_int_equal(waitpid(kids[i], &status, 0), kids[i]);
        assert_true(WIFEXITED(status));
        assert_int_equal(WEXITSTATUS(status), 0);
    }
    cli_result r;
    char cmd[600];
    snprintf(cmd, sizeof cmd, "ls -A '%s'", f->dir);
    assert_int_equal(run_shell(cmd, &r), 0);
    assert_string_equal(r.out, "orch.db\n");
    cli_result_free(&r);
}

/* --------------------------------------------- other applications' files */

/* Opens path both ways, expects a refusal, and checks that the file's bytes
 * are as before and that no -wal, -shm or -journal appeared. */
static void refused_untouched(const char *path, const char *want_msg)
{
    size_t n_before = 0, n_after = 0;
    char *before = read_bytes(path, &n_before);
    assert_non_null(before);
    for (int mode = 0; mode < 2; mode++) {
        orch_store *s = NULL;
        orch_err err = {0};
        assert_int_equal(
            orch_store_open(path, mode ? ORCH_STORE_READONLY : ORCH_STORE_READWRITE, &s, &err),
            ORCH_EINVAL);
        assert_non_null(strstr(err.msg, want_msg));
        char *after = read_bytes(path, &n_after);
        assert_non_null(after);
        assert_int_equal(n_after, n_before);
        assert_memory_equal(after, before, n_before);
        free(after);
        const char *suffixes[] = {"-wal", "-shm", "-journal"};
        for (int i = 0; i < 3; i++) {
            char side[400];
            snprintf(side, sizeof side, "%s%s", path, suffixes[i]);
            if (exists(side))
                fail_msg("%s appeared", side);
        }
    }
    free(before);
}

static void test_foreign_database_left_untouched(void **state)
{
    fixture *f = *state;
    /* another application's database: its own application_id */
    raw_exec(f->db, "PRAGMA application_id = 305419896; "
                    "CREATE TABLE photos (id INTEGER PRIMARY KEY, path TEXT); "
                    "INSERT INTO photos (path) VALUES ('a.jpg')");
    /* byte 18/19 of the header: 1 1 = rollback journal, 2 2 = WAL */
    size_t n_hdr = 0;
    unsigned char *hdr = (unsigned char *)read_bytes(f->db, &n_hdr);
    assert_int_equal(hdr[18], 1);
    free(hdr);
    refused_untouched(f->db, "another application");

    /* tables but no application_id, and a user_version without one */
    char other[320];
    snprintf(other, sizeof other, "%s/other.db", f->dir);
    raw_exec(other, "CREATE TABLE t (x)");
    refused_untouched(other, "not an orch store");
    snprintf(other, sizeof other, "%s/versioned.db", f->dir);
    raw_exec(other, "PRAGMA user_version = 7");
    refused_untouched(other, "not an orch store");
}

/* ------------------------------------------------------------- messages */

static void test_errors_name_the_store(void **state)
{
    fixture *f = *state;
    orch_store *s = NULL;
    orch_err err = {0};
    assert_int_equal(orch_store_open(f->db, ORCH_STORE_READWRITE, &s, &err), ORCH_OK);
    orch_store_close(s);
    /* damage the schema page past the header: SQLite says "malformed" */
    size_t n = 0;
    char *bytes = read_bytes(f->db, &n);
    assert_non_null(bytes);
    if (n <= 4096)
        fail_msg("store of %zu bytes", n);
    memset(bytes + 100, 0x5a, 3000);
    FILE *fp = fopen(f->db, "wb");
    assert_non_null(fp);
    assert_int_equal(fwrite(bytes, 1, n, fp), n);
    fclose(fp);
    free(bytes);
    FILE *devnull = fopen("/dev/null", "w");
    assert_non_null(devnull);
    for (int mode = 0; mode < 2; mode++) {
        s = NULL;
        orch_err_clear(&err);
        int rc =
            orch_store_open(f->db, mode ? ORCH_STORE_READONLY : ORCH_STORE_READWRITE, &s, &err);
        /* the header is intact, so the open may succeed; the first read
         * of a table fails */
        if (rc == ORCH_OK)
            rc = mode ? orch_store_list_runs(s, NULL, NULL, NULL, ORCH_FMT_CSV, devnull, &err)
                      : orch_store_reap(s, NULL, &err);
        orch_store_close(s);
        assert_int_not_equal(rc, ORCH_OK);
        if (strstr(err.msg, f->db) == NULL)
            fail_msg("the message names no store: %s", err.msg);
    }
    fclose(devnull);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_reader_racing_creation_sees_no_store, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_creators, setup, teardown),
        cmocka_unit_test_setup_teardown(test_foreign_database_left_untouched, setup, teardown),
        cmocka_unit_test_setup_teardown(test_errors_name_the_store, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
