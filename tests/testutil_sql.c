/* testutil_sql.c - see testutil_sql.h. */
#include "testutil_sql.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

void raw_exec(const char *path, const char *sql)
{
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    char *msg = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK)
        fail_msg("%s: %s", sql, msg);
    sqlite3_close(db);
}

sqlite3 *peer_open(const char *path)
{
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    return db;
}

/* The first row of sql on db, stepped: the caller reads column 0 and
 * finalizes it. *has_row says whether there is a row. */
static sqlite3_stmt *first_row(sqlite3 *db, const char *sql, int *has_row)
{
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    *has_row = sqlite3_step(st) == SQLITE_ROW;
    return st;
}

int64_t peer_int(sqlite3 *db, const char *sql)
{
    int has_row = 0;
    sqlite3_stmt *st = first_row(db, sql, &has_row);
    int64_t v = has_row ? sqlite3_column_int64(st, 0) : -1;
    sqlite3_finalize(st);
    return v;
}

char *peer_text(sqlite3 *db, const char *sql)
{
    int has_row = 0;
    sqlite3_stmt *st = first_row(db, sql, &has_row);
    const unsigned char *text = has_row ? sqlite3_column_text(st, 0) : NULL;
    char *v = text != NULL ? strdup((const char *)text) : NULL;
    sqlite3_finalize(st);
    return v;
}

int64_t raw_int(const char *path, const char *sql)
{
    sqlite3 *db = peer_open(path);
    int64_t v = peer_int(db, sql);
    sqlite3_close(db);
    return v;
}

double raw_real(const char *path, const char *sql)
{
    sqlite3 *db = peer_open(path);
    int has_row = 0;
    sqlite3_stmt *st = first_row(db, sql, &has_row);
    double v = has_row ? sqlite3_column_double(st, 0) : -1;
    sqlite3_finalize(st);
    sqlite3_close(db);
    return v;
}

char *raw_text(const char *path, const char *sql)
{
    sqlite3 *db = peer_open(path);
    char *v = peer_text(db, sql);
    sqlite3_close(db);
    return v;
}
