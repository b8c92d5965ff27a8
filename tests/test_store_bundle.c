/*
 * test_store_bundle.c - reading hostile bundles (store/bundle.h): a table
 * of archives made here with libarchive's writer (or by cutting and
 * flipping the bytes of a good one), each refused by orch_bundle_import
 * with one line that says what is wrong, and nothing written: the store's
 * every row and the file tree around it (staging folders included) are the
 * same before and after. A good bundle made the same way imports, so the
 * table's refusals are the archives' own.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "store/bundle.h"
#include "store/bundle_int.h"
#include "store/store.h"
#include "tests/testutil.h"
#include "tests/testutil_sql.h"

#define UUID "0b7c3e9e-2f4a-4d61-9a55-3c0e8f1d2a47"

/* ------------------------------------------------------------- making */

/* One member of an archive to make. */
typedef struct entry {
    const char *name;
    unsigned type;        /* AE_IFREG (0 = AE_IFREG), AE_IFLNK, AE_IFCHR, AE_IFIFO, ... */
    const char *text;     /* a regular file's bytes (NULL: size zeros) */
    size_t size;          /* with text NULL */
    const char *link;     /* a symbolic link's target */
    const char *hardlink; /* a hard link's target */
    int unlisted;         /* left out of MANIFEST.json */
    int bad_sha;          /* listed with another sha256 */
} entry;

typedef struct bundle_spec {
    int gzip;
    int zip;               /* a .zip (deflate) instead of a tar */
    int format;            /* MANIFEST.json's format; 0: ORCH_BUNDLE_FORMAT */
    int no_manifest_first; /* the manifest goes last */
    entry e[8];
    int n;
} bundle_spec;

static const char *runs_csv = "id,uuid,pipeline,name,strategy,status,config_json\n"
                              "1,\"" UUID "\",\"p.lua\",\"good\",\"detach\",\"finished\",\"{}\"\n";

/* The bytes of entry e (malloc'd) and their count. */
static char *entry_bytes(const entry *e, size_t *n)
{
    if (e->text != NULL) {
        *n = strlen(e->text);
        return strdup(e->text);
    }
    *n = e->size;
    return calloc(1, e->size + 1);
}

static void write_entry(struct archive *a, const char *name, unsigned type, const char *data,
                        size_t n, const char *link, const char *hardlink)
{
    struct archive_entry *ae = archive_entry_new();
    archive_entry_set_pathname(ae, name);
    archive_entry_set_filetype(ae, type ? type : AE_IFREG);
    archive_entry_set_perm(ae, 0644);
    archive_entry_set_size(ae,
                           (type == 0 || type == AE_IFREG) && hardlink == NULL ? (la_int64_t)n : 0);
    if (link != NULL)
        archive_entry_set_symlink(ae, link);
    if (hardlink != NULL)
        archive_entry_set_hardlink(ae, hardlink);
    if (type == AE_IFCHR)
        archive_entry_set_rdev(ae, makedev(1, 3));
    assert_int_equal(archive_write_header(a, ae), ARCHIVE_OK);
    if (n > 0 && (type == 0 || type == AE_IFREG) && hardlink == NULL)
        assert_int_equal(archive_write_data(a, data, n), (la_ssize_t)n);
    archive_entry_free(ae);
}

/* Writes spec as an archive at path, with a MANIFEST.json listing its
 * regular members (but the unlisted ones) with their sizes and sha256. */
static void make_bundle(const char *path, const bundle_spec *spec)
{
    bundle_buf m = {0};
    char line[512];
    snprintf(line, sizeof line,
             "{\"format\": %d, \"orch_version\": \"test\", \"runs\": [\"" UUID
             "\"], \"members\": [",
             spec->format ? spec->format : ORCH_BUNDLE_FORMAT);
    bundle_buf_str(&m, line);
    int first = 1;
    for (int i = 0; i < spec->n; i++) {
        const entry *e = &spec->e[i];
        if (e->unlisted || (e->type != 0 && e->type != AE_IFREG) || e->hardlink != NULL)
            continue;
        size_t n;
        char *data = entry_bytes(e, &n), sha[65];
        bundle_sha256_hex(data, n, sha);
        if (e->bad_sha)
            sha[0] = sha[0] == '0' ? '1' : '0';
        snprintf(line, sizeof line, "%s{\"name\": \"%s\", \"bytes\": %zu, \"sha256\": \"%s\"}",
                 first ? "" : ", ", e->name, n, sha);
        bundle_buf_str(&m, line);
        first = 0;
        free(data);
    }
    bundle_buf_str(&m, "]}\n");
    struct archive *a = archive_write_new();
    if (spec->zip)
        archive_write_set_format_zip(a);
    else
        archive_write_set_format_pax_restricted(a);
    if (spec->gzip)
        archive_write_add_filter_gzip(a);
    assert_int_equal(archive_write_open_filename(a, path), ARCHIVE_OK);
    if (!spec->no_manifest_first)
        write_entry(a, "MANIFEST.json", 0, m.s, m.len, NULL, NULL);
    for (int i = 0; i < spec->n; i++) {
        size_t n;
        char *data = entry_bytes(&spec->e[i], &n);
        write_entry(a, spec->e[i].name, spec->e[i].type, data, n, spec->e[i].link,
                    spec->e[i].hardlink);
        free(data);
    }
    if (spec->no_manifest_first)
        write_entry(a, "MANIFEST.json", 0, m.s, m.len, NULL, NULL);
    archive_write_close(a);
    archive_write_free(a);
    free(m.s);
}

/* A good bundle: one run, its config and rows. */
static bundle_spec good_spec(void)
{
    bundle_spec s = {0};
    s.e[s.n++] = (entry){.name = "runs/" UUID "/config.json", .text = "{}"};
    s.e[s.n++] = (entry){.name = "runs/" UUID "/rows/runs.csv", .text = runs_csv};
    return s;
}

/* ------------------------------------------------------------- state */

typedef struct fixture {
    char dir[256], db[320];
    orch_store *s;
} fixture;

/* Every row of every table of the store, as text. */
static char *store_rows(const char *db)
{
    sqlite3 *c = peer_open(db);
    bundle_buf out = {0};
    sqlite3_stmt *t = NULL;
    assert_int_equal(sqlite3_prepare_v2(c,
                                        "SELECT name FROM sqlite_schema WHERE type = 'table' "
                                        "ORDER BY name",
                                        -1, &t, NULL),
                     SQLITE_OK);
    while (sqlite3_step(t) == SQLITE_ROW) {
        char sql[256];
        snprintf(sql, sizeof sql, "SELECT * FROM \"%s\"", (const char *)sqlite3_column_text(t, 0));
        bundle_buf_str(&out, sql);
        bundle_buf_str(&out, "\n");
        sqlite3_stmt *r = NULL;
        assert_int_equal(sqlite3_prepare_v2(c, sql, -1, &r, NULL), SQLITE_OK);
        while (sqlite3_step(r) == SQLITE_ROW) {
            for (int i = 0; i < sqlite3_column_count(r); i++) {
                const unsigned char *v = sqlite3_column_text(r, i);
                bundle_buf_str(&out, v != NULL ? (const char *)v : "NULL");
                bundle_buf_str(&out, "|");
            }
            bundle_buf_str(&out, "\n");
        }
        sqlite3_finalize(r);
    }
    sqlite3_finalize(t);
    sqlite3_close(c);
    return out.s;
}

/* Every path under dir with its type and size (the bundles excepted: they
 * are the test's). */
static void list_tree(const char *dir, bundle_buf *out)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    char names[256][256];
    int n = 0;
    while (d != NULL && (de = readdir(d)) != NULL && n < 256)
        if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0 &&
            strstr(de->d_name, ".bundle") == NULL && strstr(de->d_name, "-shm") == NULL)
            snprintf(names[n++], sizeof names[0], "%s", de->d_name);
    if (d != NULL)
        closedir(d);
    qsort(names, (size_t)n, sizeof names[0], (int (*)(const void *, const void *))strcmp);
    for (int i = 0; i < n; i++) {
        char p[2048], line[2200];
        struct stat st;
        if ((size_t)snprintf(p, sizeof p, "%s/%s", dir, names[i]) >= sizeof p)
            fail_msg("path too long");
        lstat(p, &st);
        /* the WAL's size moves with checkpoints; its presence is what counts */
        snprintf(line, sizeof line, "%s %o %lld\n", p, st.st_mode,
                 strstr(names[i], "-wal") ? 0LL : (long long)st.st_size);
        bundle_buf_str(out, line);
        if (S_ISDIR(st.st_mode))
            list_tree(p, out);
    }
}

static char *tree(const char *dir)
{
    bundle_buf out = {0};
    list_tree(dir, &out);
    bundle_buf_str(&out, "");
    return out.s;
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    if (f == NULL || make_temp_store(f->dir, sizeof f->dir, f->db, sizeof f->db) != 0)
        return -1;
    orch_err err;
    if (orch_store_open(f->db, ORCH_STORE_READWRITE, &f->s, &err) != ORCH_OK)
        return -1;
    /* one run of its own, so "unchanged" is about something */
    orch_sink k;
    orch_store_sink(f->s, &k, &err);
    orch_run_info info = {.pipeline = "x.lua",
                          .name = "mine",
                          .strategy = "detach",
                          .config_json = "{}",
                          .config_hash = "h",
                          .host = "h",
                          .pid = 0,
                          .orch_version = "t"};
    int64_t id = 0;
    if (k.begin_run(k.ctx, &info, &id, &err) != ORCH_OK)
        return -1;
    orch_step_record st = {0, 1.5, 2.0, 1e-3, 1.0};
    k.step(k.ctx, id, &st, &err);
    orch_run_end end = {ORCH_RUN_FINISHED, NULL, NULL};
    if (k.end_run(k.ctx, id, &end, &err) != ORCH_OK)
        return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    orch_store_close(f->s);
    remove_tree(f->dir);
    free(f);
    return 0;
}

/* Imports path with limits and asserts it is refused with a message
 * holding want, and that nothing changed. */
static void assert_refused(fixture *f, const char *path, const orch_bundle_limits *lim,
                           const char *want)
{
    char *rows = store_rows(f->db), *files = tree(f->dir);
    orch_err err;
    orch_err_clear(&err);
    orch_bundle_counts c;
    int rc = orch_bundle_import(f->s, path, lim, &c, &err);
    if (rc != ORCH_EINVAL || strstr(err.msg, want) == NULL)
        fail_msg("%s: rc %d, message \"%s\" (want ORCH_EINVAL and \"%s\")", path, rc, err.msg,
                 want);
    assert_null(strchr(err.msg, '\n'));
    assert_non_null(strstr(err.msg, path)); /* it names the bundle */
    print_message("  refused: %s\n", strrchr(err.msg, '/') + 1);
    char *rows2 = store_rows(f->db), *files2 = tree(f->dir);
    assert_string_equal(rows, rows2);
    assert_string_equal(files, files2);
    free(rows);
    free(rows2);
    free(files);
    free(files2);
}

/* ------------------------------------------------------------- tests */

static void test_good_bundle_imports(void **state)
{
    fixture *f = *state;
    char path[400];
    snprintf(path, sizeof path, "%s/good.bundle.tar.gz", f->dir);
    bundle_spec s = good_spec();
    s.gzip = 1;
    make_bundle(path, &s);
    orch_err err;
    orch_bundle_counts c;
    if (orch_bundle_import(f->s, path, NULL, &c, &err) != ORCH_OK)
        fail_msg("%s", err.msg);
    assert_int_equal(c.runs_added, 1);
    assert_int_equal(raw_int(f->db, "SELECT count(*) FROM runs WHERE uuid = '" UUID "'"), 1);
    assert_int_equal(orch_bundle_import(f->s, path, NULL, &c, &err), ORCH_OK);
    assert_int_equal(c.runs_added, 0);
    assert_int_equal(c.runs_present, 1);
}

/* The table: one hostile archive per row, each refused. */
static void test_hostile_table(void **state)
{
    fixture *f = *state;
    orch_bundle_limits def, small;
    orch_bundle_default_limits(&def);
    small = def;
    small.max_member_bytes = 1000;
    orch_bundle_limits bomb = def;
    bomb.max_ratio = 50;
    bomb.ratio_floor = 1 << 20;
    orch_bundle_limits few = def;
    few.max_members = 3;

    struct row {
        const char *what;
        entry extra;
        int gzip, format, manifest_last, drop_good; /* gzip: 1 .tar.gz, 2 .zip */
        const orch_bundle_limits *lim;
        const char *want;
    } rows[] = {
        {"path traversal",
         {.name = "runs/../../evil.txt", .text = "x", .unlisted = 1},
         0,
         0,
         0,
         0,
         &def,
         "a '..' in its path"},
        {"absolute path",
         {.name = "/tmp/orch-evil.txt", .text = "x", .unlisted = 1},
         0,
         0,
         0,
         0,
         &def,
         "an absolute path"},
        {"symlink escape",
         {.name = "runs/" UUID "/artifacts/link", .type = AE_IFLNK, .link = "../../../../etc"},
         0,
         0,
         0,
         0,
         &def,
         "a symbolic link (to ../../../../etc)"},
        {"hard link escape",
         {.name = "runs/" UUID "/artifacts/hard", .hardlink = "/etc/passwd"},
         0,
         0,
         0,
         0,
         &def,
         "a hard link (to /etc/passwd)"},
        {"device node",
         {.name = "runs/" UUID "/artifacts/null", .type = AE_IFCHR},
         0,
         0,
         0,
         0,
         &def,
         "a device file"},
        {"FIFO",
         {.name = "runs/" UUID "/artifacts/fifo", .type = AE_IFIFO},
         0,
         0,
         0,
         0,
         &def,
         "a FIFO"},
        {"oversized member",
         {.name = "runs/" UUID "/artifacts/big", .size = 4000},
         0,
         0,
         0,
         0,
         &small,
         "more than the limit of 1000 for a member"},
        {"zip bomb",
         {.name = "runs/" UUID "/artifacts/zeros", .size = 8 << 20},
         1,
         0,
         0,
         0,
         &bomb,
         "decompression bomb"},
        {"zip bomb in a .zip",
         {.name = "runs/" UUID "/artifacts/zeros", .size = 8 << 20},
         2,
         0,
         0,
         0,
         &bomb,
         "decompression bomb"},
        {"symlink in a .zip",
         {.name = "runs/" UUID "/artifacts/link", .type = AE_IFLNK, .link = "/etc/passwd"},
         2,
         0,
         0,
         0,
         &def,
         "a symbolic link (to /etc/passwd)"},
        {"checksum mismatch",
         {.name = "runs/" UUID "/artifacts/c", .text = "abc", .bad_sha = 1},
         0,
         0,
         0,
         0,
         &def,
         "checksum mismatch"},
        {"unknown version",
         {.name = "runs/" UUID "/x", .text = "x"},
         0,
         99,
         0,
         0,
         &def,
         "unknown bundle format 99"},
        {"duplicate member",
         {.name = "runs/" UUID "/config.json", .text = "{}", .unlisted = 1},
         0,
         0,
         0,
         0,
         &def,
         "a duplicate member"},
        {"member not in the manifest",
         {.name = "runs/" UUID "/extra", .text = "x", .unlisted = 1},
         0,
         0,
         0,
         0,
         &def,
         "not listed in MANIFEST.json"},
        {"manifest not first",
         {.name = "runs/" UUID "/x", .text = "x"},
         0,
         0,
         1,
         0,
         &def,
         "the first member must be MANIFEST.json"},
        {"too many members",
         {.name = "runs/" UUID "/x", .text = "x"},
         0,
         0,
         0,
         0,
         &few,
         "more than the limit of 3"},
        {"malformed CSV",
         {.name = "runs/" UUID "/rows/steps.csv", .text = "run_id,step,loss\n1,0,\"x\n"},
         0,
         0,
         0,
         0,
         &def,
         "malformed CSV"},
        {"unknown CSV column",
         {.name = "runs/" UUID "/rows/steps.csv", .text = "run_id,step,nonsense\n1,0,2\n"},
         0,
         0,
         0,
         0,
         &def,
         "no column nonsense"},
        {"missing listed member",
         {.name = "runs/" UUID "/x", .text = "x"},
         0,
         0,
         0,
         1,
         &def,
         "listed in MANIFEST.json but not in the archive"},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        char path[400];
        snprintf(path, sizeof path, "%s/hostile-%zu.bundle%s", f->dir, i,
                 rows[i].gzip == 2 ? ".zip"
                 : rows[i].gzip    ? ".tar.gz"
                                   : ".tar");
        bundle_spec s = good_spec();
        s.gzip = rows[i].gzip == 1;
        s.zip = rows[i].gzip == 2;
        s.format = rows[i].format;
        s.no_manifest_first = rows[i].manifest_last;
        s.e[s.n++] = rows[i].extra;
        make_bundle(path, &s);
        if (rows[i].drop_good) { /* listed, then left out of the archive */
            bundle_spec t = s;
            t.n = 1;
            /* the manifest of s, the members of t: rebuild by hand */
            make_bundle(path, &s);
            char cmd[2400];
            snprintf(cmd, sizeof cmd,
                     "cd '%s' && mkdir -p cut && tar xf '%s' -C cut && "
                     "tar --format=pax -cf '%s' -C cut MANIFEST.json 'runs/" UUID
                     "/config.json' && rm -rf cut",
                     f->dir, path, path);
            cli_result r;
            assert_int_equal(run_shell(cmd, &r), 0);
            assert_int_equal(r.exit_code, 0);
            cli_result_free(&r);
            (void)t;
        }
        print_message("%s:\n", rows[i].what);
        assert_refused(f, path, rows[i].lim, rows[i].want);
    }
}

/* Bytes cut or flipped: a truncated archive and a corrupt header. */
static void test_truncated_and_corrupt(void **state)
{
    fixture *f = *state;
    char good[400], cut[400], flip[400];
    snprintf(good, sizeof good, "%s/g.bundle.tar", f->dir);
    snprintf(cut, sizeof cut, "%s/cut.bundle.tar", f->dir);
    snprintf(flip, sizeof flip, "%s/flip.bundle.tar", f->dir);
    bundle_spec s = good_spec();
    s.e[s.n++] = (entry){.name = "runs/" UUID "/artifacts/ckpt", .size = 5000};
    make_bundle(good, &s);
    /* binary: read_whole_file stops at a NUL */
    FILE *in = fopen(good, "rb");
    assert_non_null(in);
    static char bytes[1 << 16];
    size_t n = fread(bytes, 1, sizeof bytes, in);
    fclose(in);
    assert_true(n > 8192 && n < sizeof bytes);
    /* cut inside the last member's data */
    FILE *o = fopen(cut, "wb");
    fwrite(bytes, 1, n - 1024 - 3000, o);
    fclose(o);
    /* a byte of the second member's header name: its header checksum no
     * longer adds up (pax_restricted: one 512-byte header, then the data) */
    size_t manifest_blocks = 0;
    {
        /* the first header's size field (octal, offset 124) */
        char size_field[13];
        memcpy(size_field, bytes + 124, 12);
        size_field[12] = '\0';
        manifest_blocks = (strtoul(size_field, NULL, 8) + 511) / 512;
    }
    bytes[512 * (1 + manifest_blocks) + 5] ^= 0x20;
    o = fopen(flip, "wb");
    fwrite(bytes, 1, n, o);
    fclose(o);
    assert_refused(f, cut, NULL, "truncated");
    assert_refused(f, flip, NULL, "truncated or corrupt archive");
    /* not an archive at all, and an empty file */
    char junk[400];
    snprintf(junk, sizeof junk, "%s/junk.bundle.tar", f->dir);
    write_text_file(junk, "this is not an archive, just some text that is long enough to bid\n");
    assert_refused(f, junk, NULL, "truncated or corrupt archive");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_good_bundle_imports, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hostile_table, setup, teardown),
        cmocka_unit_test_setup_teardown(test_truncated_and_corrupt, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
