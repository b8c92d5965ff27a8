/*
 * testutil_sql.h - raw SQLite access for tests that check what orch wrote
 * (or tamper with it) behind its back, the way another process would.
 *
 * Each helper fails the current test (cmocka) when the database cannot be
 * opened or the SQL does not compile. The path helpers open a connection of
 * their own per call (read-only, except raw_exec); the peer_ ones work on a
 * connection the test keeps open (peer_open).
 */
#ifndef ORCH_TESTUTIL_SQL_H
#define ORCH_TESTUTIL_SQL_H

#include <stdint.h>

#include <sqlite3.h>

/* Runs sql (any number of statements) on a read-write connection to path,
 * creating the file if needed. */
void raw_exec(const char *path, const char *sql);

/* The first column of the first row of sql on path; -1 when there is no
 * row. */
int64_t raw_int(const char *path, const char *sql);
double raw_real(const char *path, const char *sql);

/* Likewise as text: malloc'd (the caller frees it), NULL when there is no
 * row or the value is NULL. */
char *raw_text(const char *path, const char *sql);

/* A read-only connection to path; the caller closes it with sqlite3_close. */
sqlite3 *peer_open(const char *path);

/* raw_int and raw_text on an open connection. */
int64_t peer_int(sqlite3 *db, const char *sql);
char *peer_text(sqlite3 *db, const char *sql);

#endif
