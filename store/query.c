/*
 * query.c - `orch query`: one read-only SQL statement on the store.
 *
 * The statement is compiled under the authorizer of guard.c (a denied action
 * makes the compile fail), then must be the only statement of the text and
 * sqlite3_stmt_readonly(); only then is it stepped, and its rows printed by
 * format.c. Nothing is printed for a refused or invalid statement.
 */
#include "store/store_int.h"

#include <ctype.h>
#include <string.h>

/* Skips blanks, ';' and SQL comments; returns where real text starts (or
 * the terminating NUL). */
static const char *skip_noise(const char *p)
{
    for (;;) {
        while (*p != '\0' && (isspace((unsigned char)*p) || *p == ';'))
            p++;
        if (p[0] == '-' && p[1] == '-') {
            while (*p != '\0' && *p != '\n')
                p++;
        } else if (p[0] == '/' && p[1] == '*') {
            const char *end = strstr(p + 2, "*/");
            p = end != NULL ? end + 2 : p + strlen(p);
        } else {
            return p;
        }
    }
}

/* The statement's first word in capitals ("VACUUM"), for messages. */
static void first_word(const char *sql, char *buf, size_t n)
{
    const char *p = skip_noise(sql);
    size_t i = 0;
    while (i + 1 < n && isalpha((unsigned char)p[i])) {
        buf[i] = (char)toupper((unsigned char)p[i]);
        i++;
    }
    buf[i] = '\0';
    if (i == 0)
        snprintf(buf, n, "this statement");
}

/* Does a statement starting with this word write (or manage transactions)? */
static int writes(const char *word)
{
    static const char *const words[] = {
        "INSERT",    "UPDATE",  "DELETE", "REPLACE", "UPSERT",  "CREATE", "DROP",
        "ALTER",     "ATTACH",  "DETACH", "BEGIN",   "COMMIT",  "END",    "ROLLBACK",
        "SAVEPOINT", "RELEASE", "VACUUM", "REINDEX", "ANALYZE",
    };
    for (size_t i = 0; i < sizeof words / sizeof words[0]; i++)
        if (strcmp(word, words[i]) == 0)
            return 1;
    return 0;
}

int orch_store_query(orch_store *s, const char *sql, orch_format format, FILE *out, orch_err *err)
{
    sqlite3_stmt *st = NULL;
    const char *tail = NULL;
    char word[32];
    int rc = ORCH_OK;
    if (s == NULL || sql == NULL || out == NULL)
        return orch_seterr(err, ORCH_EINVAL, "query: no store or no SQL");
    if (s->mode != ORCH_STORE_READONLY)
        return orch_seterr(err, ORCH_EINVAL, "query: the store must be opened read-only");
    if (format != ORCH_FMT_TABLE && format != ORCH_FMT_CSV && format != ORCH_FMT_JSON)
        return orch_seterr(err, ORCH_EINVAL, "query: unknown output format %d", (int)format);

    sql = skip_noise(sql); /* ";SELECT 1" would compile to no statement */
    s->guard.refused = 0;
    s->guard.what[0] = '\0';
    int src = sqlite3_prepare_v2(s->db, sql, -1, &st, &tail);
    if (s->guard.refused) {
        rc = orch_seterr(err, ORCH_EREFUSED,
                         "query refused: orch query is read-only (%s is not allowed)",
                         s->guard.what);
        goto out;
    }
    first_word(sql, word, sizeof word);
    if (src != SQLITE_OK && writes(word)) {
        /* "DELETE FROM sqlite_master" fails to compile; "DELETE FRM runs"
         * too: either way the answer is no. */
        rc = orch_seterr(err, ORCH_EREFUSED,
                         "query refused: orch query is read-only (%s is not allowed)", word);
        goto out;
    }
    if (src != SQLITE_OK) {
        /* SQLITE_ERROR is the SQL's fault: syntax, no such table or column. */
        if ((src & 0xff) == SQLITE_ERROR)
            rc = orch_seterr(err, ORCH_EINVAL, "query: %s", sqlite3_errmsg(s->db));
        else
            rc = store_dberr(s, src, "query", err);
        goto out;
    }
    if (st == NULL) {
        rc = orch_seterr(err, ORCH_EINVAL, "query: no SQL statement given");
        goto out;
    }
    if (*skip_noise(tail) != '\0') {
        rc = orch_seterr(err, ORCH_EREFUSED,
                         "query refused: orch query runs one statement, and more follows "
                         "the first ';'");
        goto out;
    }
    /* A PRAGMA got past the guard only if it reports; some that report
     * (journal_mode) are still not marked read-only by SQLite. */
    if (!sqlite3_stmt_readonly(st) && strcmp(word, "PRAGMA") != 0) {
        rc = orch_seterr(err, ORCH_EREFUSED,
                         "query refused: orch query is read-only (%s is not allowed)", word);
        goto out;
    }
    rc = store_print_rows(s, st, format, NULL, out, err);
    if (rc == ORCH_EDB) {
        /* Some statements compile and fail only when stepped: a table-valued
         * PRAGMA the authorizer denies then (SQLITE_AUTH), an unknown schema
         * name given as an argument, malformed JSON (SQLITE_ERROR). The SQL
         * is at fault, as at compile time; other codes (I/O, corruption)
         * stay runtime failures. */
        int code = sqlite3_errcode(s->db) & 0xff;
        if (s->guard.refused)
            rc = orch_seterr(err, ORCH_EREFUSED,
                             "query refused: orch query is read-only (%s is not allowed)",
                             s->guard.what);
        else if (code == SQLITE_AUTH)
            rc = orch_seterr(err, ORCH_EREFUSED, "query refused: orch query is read-only (%s)",
                             sqlite3_errmsg(s->db));
        else if (code == SQLITE_ERROR)
            rc = orch_seterr(err, ORCH_EINVAL, "query: %s", sqlite3_errmsg(s->db));
    }
out:
    sqlite3_finalize(st);
    return rc;
}
