/*
 * guard.c - the authorizer of read-only stores.
 *
 * SQLite asks the authorizer about every action while it compiles a
 * statement. Reading is allowed: SELECT, reading columns, functions
 * (except load_extension and fts3_tokenizer), recursive CTEs, and the PRAGMAs that only report
 * (table_info(runs), user_version, ...). Everything else is denied and the
 * first denied action is remembered for the message: INSERT, UPDATE,
 * DELETE, CREATE, DROP, ALTER, ATTACH, DETACH, BEGIN/COMMIT/SAVEPOINT,
 * ANALYZE, a PRAGMA that sets a value or does something (user_version = 5,
 * journal_mode = DELETE, wal_checkpoint), ...
 *
 * It is one of three locks: the connection is SQLITE_OPEN_READONLY with
 * query_only and DEFENSIVE set, and query.c refuses any statement for which
 * sqlite3_stmt_readonly() is false (VACUUM asks the authorizer nothing).
 */
#include "store/store_int.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

/* PRAGMAs that report and take a table or index name (or nothing). */
static const char *const pragma_named[] = {
    "table_info",  "table_xinfo",      "table_list",        "index_list",      "index_info",
    "index_xinfo", "foreign_key_list", "foreign_key_check", "integrity_check", "quick_check",
};

/* PRAGMAs that report when given no argument (and set something with one). */
static const char *const pragma_plain[] = {
    "application_id", "user_version",   "schema_version",  "data_version",  "journal_mode",
    "page_size",      "page_count",     "freelist_count",  "encoding",      "foreign_keys",
    "auto_vacuum",    "synchronous",    "compile_options", "database_list", "function_list",
    "pragma_list",    "collation_list", "module_list",
};

static int in_list(const char *name, const char *const *list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (strcasecmp(name, list[i]) == 0)
            return 1;
    return 0;
}

static int pragma_reads(const char *name, const char *arg)
{
    if (name == NULL)
        return 0;
    if (in_list(name, pragma_named, sizeof pragma_named / sizeof pragma_named[0]))
        return 1;
    return arg == NULL && in_list(name, pragma_plain, sizeof pragma_plain / sizeof pragma_plain[0]);
}

static int is_schema_table(const char *name)
{
    return strcmp(name, "sqlite_master") == 0 || strcmp(name, "sqlite_temp_master") == 0;
}

/* The SQL words of a denied action. */
static const char *action_name(int action)
{
    switch (action) {
    case SQLITE_CREATE_INDEX:
        return "CREATE INDEX";
    case SQLITE_CREATE_TABLE:
        return "CREATE TABLE";
    case SQLITE_CREATE_TEMP_INDEX:
        return "CREATE TEMP INDEX";
    case SQLITE_CREATE_TEMP_TABLE:
        return "CREATE TEMP TABLE";
    case SQLITE_CREATE_TEMP_TRIGGER:
        return "CREATE TEMP TRIGGER";
    case SQLITE_CREATE_TEMP_VIEW:
        return "CREATE TEMP VIEW";
    case SQLITE_CREATE_TRIGGER:
        return "CREATE TRIGGER";
    case SQLITE_CREATE_VIEW:
        return "CREATE VIEW";
    case SQLITE_DELETE:
        return "DELETE";
    case SQLITE_DROP_INDEX:
        return "DROP INDEX";
    case SQLITE_DROP_TABLE:
        return "DROP TABLE";
    case SQLITE_DROP_TEMP_INDEX:
        return "DROP TEMP INDEX";
    case SQLITE_DROP_TEMP_TABLE:
        return "DROP TEMP TABLE";
    case SQLITE_DROP_TEMP_TRIGGER:
        return "DROP TEMP TRIGGER";
    case SQLITE_DROP_TEMP_VIEW:
        return "DROP TEMP VIEW";
    case SQLITE_DROP_TRIGGER:
        return "DROP TRIGGER";
    case SQLITE_DROP_VIEW:
        return "DROP VIEW";
    case SQLITE_INSERT:
        return "INSERT";
    case SQLITE_UPDATE:
        return "UPDATE";
    case SQLITE_ATTACH:
        return "ATTACH";
    case SQLITE_DETACH:
        return "DETACH";
    case SQLITE_ALTER_TABLE:
        return "ALTER TABLE";
    case SQLITE_REINDEX:
        return "REINDEX";
    case SQLITE_ANALYZE:
        return "ANALYZE";
    case SQLITE_CREATE_VTABLE:
        return "CREATE VIRTUAL TABLE";
    case SQLITE_DROP_VTABLE:
        return "DROP VIRTUAL TABLE";
    case SQLITE_SAVEPOINT:
        return "SAVEPOINT";
    default:
        return "this statement";
    }
}

static int deny(store_guard *g, const char *fmt, const char *a, const char *b)
{
    if (!g->refused) {
        g->refused = 1;
        snprintf(g->what, sizeof g->what, fmt, a, b);
    }
    return SQLITE_DENY;
}

int store_guard_authorize(void *ctx, int action, const char *a1, const char *a2,
                          const char *db_name, const char *trigger)
{
    store_guard *g = ctx;
    (void)db_name;
    (void)trigger;
    if (g->trusted)
        return SQLITE_OK;
    switch (action) {
    case SQLITE_SELECT:
    case SQLITE_READ:
    case SQLITE_RECURSIVE:
        return SQLITE_OK;
    case SQLITE_FUNCTION:
        if (a2 != NULL &&
            (strcasecmp(a2, "load_extension") == 0 || strcasecmp(a2, "fts3_tokenizer") == 0))
            return deny(g, "%s()", a2, "");
        return SQLITE_OK;
    case SQLITE_PRAGMA:
        if (pragma_reads(a1, a2))
            return SQLITE_OK;
        if (a2 != NULL)
            return deny(g, "PRAGMA %s = %s", a1 ? a1 : "?", a2);
        return deny(g, "PRAGMA %s%s", a1 ? a1 : "?", "");
    case SQLITE_TRANSACTION: /* a1: BEGIN, COMMIT or ROLLBACK */
        return deny(g, "%s%s", a1 ? a1 : "BEGIN", "");
    case SQLITE_INSERT:
    case SQLITE_UPDATE:
    case SQLITE_DELETE:
        /* SQLite asks about the schema table before the statement's own
         * action: DELETE before DROP TABLE, INSERT before CREATE, and UPDATE
         * while it registers an eponymous virtual table (json_each,
         * pragma_table_info) that is only read. Let those through so the
         * real action is the one judged and named. A statement that would
         * write sqlite_master itself does not compile (DEFENSIVE), and
         * query.c refuses what is not sqlite3_stmt_readonly(). */
        if (a1 != NULL && is_schema_table(a1))
            return SQLITE_OK;
        return deny(g, "%s%s", action_name(action), "");
    case SQLITE_CREATE_TABLE:
        /* ANALYZE first asks to create its sqlite_stat tables. */
        if (a1 != NULL && strncmp(a1, "sqlite_stat", 11) == 0)
            return deny(g, "%s%s", "ANALYZE", "");
        return deny(g, "%s%s", action_name(action), "");
    default:
        return deny(g, "%s%s", action_name(action), "");
    }
}
