/*
 * test_store_archive_io.c - the libarchive door (store/archive_io.h):
 * members written through each compression read back with the same names,
 * types, sizes and bytes; the same members give the same bytes twice; a
 * truncated archive, a file that is no archive and a member over the cap
 * are refused with one line naming the archive (and the member); an
 * aborted writer leaves nothing behind.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store/archive_io.h"
#include "tests/testutil.h"

static char dir[256];

static int setup(void **state)
{
    (void)state;
    return make_temp_dir(dir, sizeof dir) == NULL ? -1 : 0;
}

static int teardown(void **state)
{
    (void)state;
    remove_tree(dir);
    return 0;
}

/* Bytes that do not compress (a fixed LCG), so cutting a compressed
 * archive in half cuts into member data. */
static unsigned char *noise(size_t n, uint32_t seed)
{
    unsigned char *p = malloc(n);
    assert_non_null(p);
    for (size_t i = 0; i < n; i++) {
        seed = seed * 1664525u + 1013904223u;
        p[i] = (unsigned char)(seed >> 24);
    }
    return p;
}

#define BIG 70000 /* more than one 64 KiB read */

typedef struct member {
    const char *name;
    const unsigned char *data;
    size_t len;
} member;

static void write_archive(const char *path, const member *m, int n, int pax)
{
    orch_archive_kind kind;
    assert_int_equal(orch_archive_kind_of(path, &kind), 0);
    orch_archive_layout layout = {.pax = pax, .mtime = 315532800, .owner = pax ? "orch" : NULL};
    orch_archive_writer *w = NULL;
    orch_err err = {0};
    assert_int_equal(orch_archive_writer_open(path, kind, &layout, &w, &err), ORCH_OK);
    assert_string_equal(orch_archive_writer_path(w), path);
    for (int i = 0; i < n; i++)
        assert_int_equal(orch_archive_writer_add(w, m[i].name, m[i].data, m[i].len, &err), ORCH_OK);
    assert_int_equal(orch_archive_writer_close(w, 0, &err), ORCH_OK);
}

static unsigned char *slurp(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *p = malloc((size_t)len + 1);
    assert_non_null(p);
    assert_int_equal(fread(p, 1, (size_t)len, f), (size_t)len);
    fclose(f);
    *n = (size_t)len;
    return p;
}

/* No name in dir holds ".tmp-": the writer's temporary files are gone. */
static void assert_no_temporaries(void)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        assert_null(strstr(e->d_name, ".tmp-"));
    closedir(d);
}

static void test_kind_of(void **state)
{
    (void)state;
    static const struct {
        const char *name;
        int kind; /* -1: refused */
    } table[] = {{"a.tar", ORCH_ARCHIVE_TAR},
                 {"a.tar.gz", ORCH_ARCHIVE_TAR_GZ},
                 {"a.tgz", ORCH_ARCHIVE_TAR_GZ},
                 {"a.tar.zst", ORCH_ARCHIVE_TAR_ZST},
                 {"a.tar.xz", ORCH_ARCHIVE_TAR_XZ},
                 {"a.zip", ORCH_ARCHIVE_ZIP},
                 {"a.tar.bz2", -1},
                 {"a.gz", -1},
                 {"tar", -1},
                 {".tar", -1}};
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++) {
        orch_archive_kind k = (orch_archive_kind)99;
        int rc = orch_archive_kind_of(table[i].name, &k);
        if (table[i].kind < 0) {
            assert_int_equal(rc, -1);
        } else {
            assert_int_equal(rc, 0);
            assert_int_equal((int)k, table[i].kind);
        }
    }
}

/* Every kind, both layouts: written twice to the same bytes, read back
 * member by member (the big one in pieces, the next one skipped unread). */
static void test_round_trip(void **state)
{
    (void)state;
    static const char *suffixes[] = {"tar", "tar.gz", "tgz", "tar.zst", "tar.xz", "zip"};
    unsigned char *big = noise(BIG, 7);
    const unsigned char label[] = "3\n";
    member m[] = {{"000000.cls", label, 2},
                  {"000000.bin", big, BIG},
                  {"skipped/000001.bin", big, 1000},
                  {"empty.txt", (const unsigned char *)"", 0},
                  {"last.cls", label, 2}};
    int n = (int)(sizeof m / sizeof m[0]);
    for (int pax = 0; pax <= 1; pax++) {
        for (size_t s = 0; s < sizeof suffixes / sizeof suffixes[0]; s++) {
            char a[400], b[400];
            snprintf(a, sizeof a, "%s/a%d.%s", dir, pax, suffixes[s]);
            snprintf(b, sizeof b, "%s/b%d.%s", dir, pax, suffixes[s]);
            write_archive(a, m, n, pax);
            write_archive(b, m, n, pax);
            size_t na, nb;
            unsigned char *pa = slurp(a, &na), *pb = slurp(b, &nb);
            assert_int_equal(na, nb);
            assert_memory_equal(pa, pb, na);
            free(pa);
            free(pb);
            struct stat st;
            assert_int_equal(stat(a, &st), 0);
            assert_int_equal(st.st_mode & 0777, 0644);

            orch_archive_reader *r = NULL;
            orch_err err = {0};
            assert_int_equal(orch_archive_reader_open(a, ORCH_ARCHIVE_READ_ZIP, &r, &err), ORCH_OK);
            unsigned char *buf = NULL;
            size_t cap = 0, len = 0;
            for (int i = 0; i < n; i++) {
                orch_archive_member h;
                assert_int_equal(orch_archive_next(r, &h, &err), ORCH_OK);
                assert_string_equal(h.name, m[i].name);
                assert_int_equal(h.type, ORCH_ARCHIVE_FILE);
                assert_null(h.link);
                if (h.has_size)
                    assert_int_equal(h.size, (int64_t)m[i].len);
                if (i == 2)
                    continue; /* skipped: the next call passes its bytes */
                if (i == 1) {
                    /* streamed in 4 KiB pieces */
                    unsigned char piece[4096];
                    size_t got = 0;
                    int64_t k;
                    while ((k = orch_archive_read(r, piece, sizeof piece, &err)) > 0) {
                        assert_true(got + (size_t)k <= m[i].len);
                        assert_memory_equal(piece, m[i].data + got, (size_t)k);
                        got += (size_t)k;
                    }
                    assert_int_equal(k, 0);
                    assert_int_equal(got, m[i].len);
                    continue;
                }
                assert_int_equal(orch_archive_read_member(r, &buf, &cap, &len, 1 << 20, &err),
                                 ORCH_OK);
                assert_int_equal(len, m[i].len);
                assert_memory_equal(buf, m[i].data, len);
                assert_int_equal(buf[len], '\0');
            }
            orch_archive_member h;
            assert_int_equal(orch_archive_next(r, &h, &err), 1);
            assert_true(orch_archive_packed_bytes(r) > 0);
            free(buf);
            orch_archive_reader_close(r);
        }
    }
    assert_no_temporaries();
    free(big);
}

/* Reads every member of path to the end; returns the first failure's
 * status with its line in *err, or ORCH_OK. */
static int read_through(const char *path, orch_err *err)
{
    orch_archive_reader *r = NULL;
    int rc = orch_archive_reader_open(path, 0, &r, err);
    unsigned char *buf = NULL;
    size_t cap = 0, len = 0;
    orch_archive_member h;
    while (rc == ORCH_OK && (rc = orch_archive_next(r, &h, err)) == ORCH_OK)
        rc = orch_archive_read_member(r, &buf, &cap, &len, 1 << 20, err);
    free(buf);
    orch_archive_reader_close(r);
    return rc == 1 ? ORCH_OK : rc;
}

static void assert_one_line(const orch_err *err, const char *path)
{
    assert_int_equal(strncmp(err->msg, path, strlen(path)), 0);
    assert_null(strchr(err->msg, '\n'));
    assert_true(strlen(err->msg) > strlen(path) + 2);
}

/* An archive cut short, plain and compressed, is refused with one line
 * naming it (and the member it broke in, where it broke in one). */
static void test_truncated(void **state)
{
    (void)state;
    unsigned char *big = noise(BIG, 11);
    member m[] = {{"000000.cls", (const unsigned char *)"1\n", 2}, {"000000.bin", big, BIG}};
    static const char *suffixes[] = {"tar", "tar.gz", "tar.zst", "tar.xz"};
    for (size_t s = 0; s < sizeof suffixes / sizeof suffixes[0]; s++) {
        char path[400];
        snprintf(path, sizeof path, "%s/cut.%s", dir, suffixes[s]);
        write_archive(path, m, 2, 0);
        orch_err err = {0};
        assert_int_equal(read_through(path, &err), ORCH_OK); /* whole: fine */
        struct stat st;
        assert_int_equal(stat(path, &st), 0);
        assert_int_equal(truncate(path, st.st_size / 2), 0);
        orch_err_clear(&err);
        assert_int_equal(read_through(path, &err), ORCH_EINVAL);
        assert_one_line(&err, path);
    }
    /* a file that is no archive at all */
    char path[400];
    snprintf(path, sizeof path, "%s/not.tar", dir);
    assert_int_equal(write_text_file(path, "this is not a tar archive, only some text\n"), 0);
    orch_err err = {0};
    assert_int_equal(read_through(path, &err), ORCH_EINVAL);
    assert_one_line(&err, path);
    /* a missing one */
    snprintf(path, sizeof path, "%s/missing.tar", dir);
    orch_err_clear(&err);
    assert_int_equal(read_through(path, &err), ORCH_EINVAL);
    assert_one_line(&err, path);
    free(big);
}

/* A member over the cap is refused by its header's size, before anything
 * is allocated; one at the cap is read. */
static void test_member_cap(void **state)
{
    (void)state;
    unsigned char *data = noise(1000, 3);
    member m[] = {{"a/big.bin", data, 1000}};
    char path[400];
    snprintf(path, sizeof path, "%s/cap.tar.gz", dir);
    write_archive(path, m, 1, 0);
    for (int64_t cap_bytes = 999; cap_bytes <= 1000; cap_bytes++) {
        orch_archive_reader *r = NULL;
        orch_err err = {0};
        assert_int_equal(orch_archive_reader_open(path, 0, &r, &err), ORCH_OK);
        orch_archive_member h;
        assert_int_equal(orch_archive_next(r, &h, &err), ORCH_OK);
        unsigned char *buf = NULL;
        size_t cap = 0, len = 0;
        int rc = orch_archive_read_member(r, &buf, &cap, &len, cap_bytes, &err);
        if (cap_bytes == 999) {
            assert_int_equal(rc, ORCH_EINVAL);
            assert_null(buf);
            char want[600];
            snprintf(want, sizeof want, "%s: a/big.bin: 1000 bytes (at most 999 per member)", path);
            assert_string_equal(err.msg, want);
        } else {
            assert_int_equal(rc, ORCH_OK);
            assert_int_equal(len, 1000);
            assert_memory_equal(buf, data, 1000);
        }
        free(buf);
        orch_archive_reader_close(r);
    }
    free(data);
}

/* An aborted writer leaves neither the archive nor its temporary file; an
 * existing archive of that name stays as it was until a close succeeds. */
static void test_abort(void **state)
{
    (void)state;
    char path[400];
    snprintf(path, sizeof path, "%s/abort.tar", dir);
    orch_archive_layout layout = {0};
    orch_archive_writer *w = NULL;
    orch_err err = {0};
    assert_int_equal(orch_archive_writer_open(path, ORCH_ARCHIVE_TAR, &layout, &w, &err), ORCH_OK);
    assert_int_equal(orch_archive_writer_add(w, "x.cls", "1", 1, &err), ORCH_OK);
    assert_int_equal(orch_archive_writer_close(w, 1, &err), ORCH_OK);
    struct stat st;
    assert_int_not_equal(stat(path, &st), 0);
    assert_no_temporaries();
    /* a writer into a folder that does not exist fails with one line */
    snprintf(path, sizeof path, "%s/no/such/folder/x.tar", dir);
    assert_int_equal(orch_archive_writer_open(path, ORCH_ARCHIVE_TAR, &layout, &w, &err), ORCH_EIO);
    assert_null(w);
    assert_one_line(&err, path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kind_of),   cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_truncated), cmocka_unit_test(test_member_cap),
        cmocka_unit_test(test_abort),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
