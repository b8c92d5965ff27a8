/* cmd_store.c - `orch runs`, `orch show`, `orch query`, `orch compare`,
 * `orch sweeps`: reading the store; `orch rm`: deleting runs from it;
 * `orch merge`: folding other stores into it. */
#include <stdlib.h>
#include <string.h>

#include "core/cli.h"
#include "core/pipeline.h"
#include "store/store.h"
#include "store/sweeps.h"

enum {
    OPT_CSV = 1,
    OPT_JSON,
    OPT_PIPELINE,
    OPT_STRATEGY,
    OPT_STATUS,
    OPT_TAG,
    OPT_DRY_RUN,
    OPT_SWEEP,
    OPT_FILES
};

#define ORCH_MAX_COMPARE 256

/* Opens the store read-only for a reading command, after marking runs
 * whose process is gone as interrupted (a note on stderr for each). */
static int open_for_reading(orch_cli_globals *globals, orch_store **store, orch_err *err)
{
    const char *db = orch_cli_db_path(globals);
    int rc = orch_store_reap_path(db, stderr, err);
    if (rc != ORCH_OK)
        return rc;
    return orch_store_open(db, ORCH_STORE_READONLY, store, err);
}

int orch_cmd_query(int argc, char **argv, orch_cli_globals *globals, orch_err *err)
{
    static const orch_opt opts[] = {{"csv", 0, OPT_CSV}, {"json", 0, OPT_JSON}, {NULL, 0, 0}};
    orch_opt_state st = {argc, argv, 1, NULL, "query"};
    int format = ORCH_FMT_TABLE;
    const char *sql = NULL;
    int id, more;
    while ((more = orch_opt_each(&st, opts, globals, &id, err)) > 0) {
        switch (id) {
        case OPT_CSV:
            format = ORCH_FMT_CSV;
            break;
        case OPT_JSON:
            format = ORCH_FMT_JSON;
            break;
        case ORCH_OPT_POSITIONAL:
            if (sql != NULL)
                return orch_seterr(err, ORCH_EINVAL,
                                   "query: one SQL statement, quoted as one argument");
            sql = st.value;
            break;
        }
    }
    if (more < 0)
        return err->code;
    if (sql == NULL)
        return orch_seterr(err, ORCH_EINVAL,
                           "query: missing SQL (usage: orch query \"SELECT ...\")");
    orch_store *store = NULL;
    int rc = open_for_reading(globals, &store, err);
    if (rc == ORCH_OK)
        rc = orch_store_query(store, sql, format, stdout, err);
    orch_store_close(store);
    return rc;
}

/* A filter naming no strategy matches nothing; refuse it as --status does. */
static int is_strategy_name(const char *name)
{
    for (int k = ORCH_STRATEGY_SURGERY; k <= ORCH_STRATEGY_FULL; k++)
        if (strcmp(name, orch_strategy_name((orch_strategy_kind)k)) == 0)
            return 1;
    return 0;
}

int orch_cmd_runs(int argc, char **argv, orch_cli_globals *globals, orch_err *err)
{
    static const orch_opt opts[] = {{"csv", 0, OPT_CSV},           {"json", 0, OPT_JSON},
                                    {"pipeline", 1, OPT_PIPELINE}, {"strategy", 1, OPT_STRATEGY},
                                    {"status", 1, OPT_STATUS},     {NULL, 0, 0}};
    orch_opt_state st = {argc, argv, 1, NULL, "runs"};
    int format = ORCH_FMT_TABLE;
    const char *pipeline = NULL, *strategy = NULL, *status = NULL;
    int id, more;
    while ((more = orch_opt_each(&st, opts, globals, &id, err)) > 0) {
        switch (id) {
        case OPT_CSV:
            format = ORCH_FMT_CSV;
            break;
        case OPT_JSON:
            format = ORCH_FMT_JSON;
            break;
        case OPT_PIPELINE:
            pipeline = st.value;
            break;
        case OPT_STRATEGY:
            strategy = st.value;
            break;
        case OPT_STATUS:
            status = st.value;
            break;
        case ORCH_OPT_POSITIONAL:
            return orch_seterr(err, ORCH_EINVAL, "runs: unexpected argument '%s'", st.value);
        }
    }
    if (more < 0)
        return err->code;
    if (strategy != NULL && !is_strategy_name(strategy))
        return orch_seterr(err, ORCH_EINVAL,
                           "runs: unknown strategy '%s' (surgery, detach, lora or full)", strategy);
    orch_store *store = NULL;
    int rc = open_for_reading(globals, &store, err);
    orch_rowset runs = {0};
    if (rc == ORCH_OK)
        rc = orch_store_read_runs(store, pipeline, strategy, status, &runs, err);
    if (rc == ORCH_OK)
        rc = orch_render_runs(&runs, format, stdout, err);
    orch_rowset_free(&runs);
    orch_store_close(store);
    return rc;
}

/* A sweep id (a positive integer) given to command cmd. */
static int parse_sweep_id(const char *cmd, const char *text, int64_t *out, orch_err *err)
{
    long id = 0;
    if (orch_parse_int("sweep", text, 1, 0x7fffffffL, &id, err) != ORCH_OK)
        return orch_seterr(err, ORCH_EINVAL, "%s: '%s' is not a sweep id (see 'orch sweeps')", cmd,
                           text);
    *out = id;
    return ORCH_OK;
}

/* `orch show sweep ID`. */
static int show_sweep(const char *id_text, orch_cli_globals *globals, orch_err *err)
{
    int64_t sweep_id = 0;
    if (id_text == NULL)
        return orch_seterr(err, ORCH_EINVAL, "show: missing sweep id (usage: orch show sweep ID)");
    if (parse_sweep_id("show", id_text, &sweep_id, err) != ORCH_OK)
        return err->code;
    orch_store *store = NULL;
    int rc = open_for_reading(globals, &store, err);
    orch_sweep_report report = {0};
    if (rc == ORCH_OK)
        rc = orch_store_read_sweep(store, sweep_id, &report, err);
    if (rc == ORCH_OK)
        rc = orch_render_sweep_text(&report, stdout, err);
    orch_sweep_report_free(&report);
    orch_store_close(store);
    return rc;
}

int orch_cmd_show(int argc, char **argv, orch_cli_globals *globals, orch_err *err)
{
    static const orch_opt opts[] = {{"files", 0, OPT_FILES}, {NULL, 0, 0}};
    orch_opt_state st = {argc, argv, 1, NULL, "show"};
    const char *args[3] = {NULL, NULL, NULL};
    int n_args = 0, all_files = 0;
    int id, more;
    while ((more = orch_opt_each(&st, opts, globals, &id, err)) > 0) {
        if (id == OPT_FILES) {
            all_files = 1;
            continue;
        }
        if (n_args == 2 || (n_args == 1 && strcmp(args[0], "sweep") != 0))
            return orch_seterr(err, ORCH_EINVAL, "show: one run or sweep at a time");
        args[n_args++] = st.value;
    }
    if (more < 0)
        return err->code;
    if (n_args > 0 && strcmp(args[0], "sweep") == 0)
        return show_sweep(args[1], globals, err);
    const char *run_text = args[0];
    if (run_text == NULL)
        return orch_seterr(err, ORCH_EINVAL,
                           "show: missing run id (usage: orch show RUN | orch show sweep ID)");
    int64_t run_id = 0;
    if (orch_parse_run_id("show", run_text, &run_id, err) != ORCH_OK)
        return err->code;
    orch_store *store = NULL;
    int rc = open_for_reading(globals, &store, err);
    orch_run_report report = {0};
    if (rc == ORCH_OK)
        rc = orch_store_read_run_files(store, run_id, all_files, &report, err);
    if (rc == ORCH_OK)
        rc = orch_render_run_text(&report, stdout, err);
    orch_run_report_free(&report);
    orch_store_close(store);
    return rc;
}

int orch_cmd_compare(int argc, char **argv, orch_cli_globals *globals, orch_err *err)
{
    static const orch_opt opts[] = {{"csv", 0, OPT_CSV},           {"json", 0, OPT_JSON},
                                    {"pipeline", 1, OPT_PIPELINE}, {"tag", 1, OPT_TAG},
                                    {"sweep", 1, OPT_SWEEP},       {NULL, 0, 0}};
    orch_opt_state st = {argc, argv, 1, NULL, "compare"};
    int format = ORCH_FMT_TABLE, n_ids = 0;
    int64_t ids[ORCH_MAX_COMPARE], sweep_id = 0;
    const char *pipeline = NULL, *tag = NULL;
    int id, more;
    while ((more = orch_opt_each(&st, opts, globals, &id, err)) > 0) {
        switch (id) {
        case OPT_CSV:
            format = ORCH_FMT_CSV;
            break;
        case OPT_JSON:
            format = ORCH_FMT_JSON;
            break;
        case OPT_PIPELINE:
            pipeline = st.value;
            break;
        case OPT_TAG:
            tag = st.value;
            break;
        case OPT_SWEEP:
            if (parse_sweep_id("compare", st.value, &sweep_id, err) != ORCH_OK)
                return err->code;
            break;
        case ORCH_OPT_POSITIONAL:
            if (n_ids == ORCH_MAX_COMPARE)
                return orch_seterr(err, ORCH_EINVAL, "compare: at most %d runs", ORCH_MAX_COMPARE);
            if (orch_parse_run_id("compare", st.value, &ids[n_ids++], err) != ORCH_OK)
                return err->code;
            break;
        }
    }
    if (more < 0)
        return err->code;
    if (sweep_id > 0 && (n_ids > 0 || pipeline != NULL || tag != NULL))
        return orch_seterr(err, ORCH_EINVAL,
                           "compare: --sweep compares the groups of one sweep; it takes no run "
                           "ids, --pipeline or --tag");
    if (sweep_id == 0 && n_ids == 0 && pipeline == NULL && tag == NULL)
        return orch_seterr(err, ORCH_EINVAL,
                           "compare: name runs (orch compare 1 2 3), "
                           "--pipeline P, --tag T or --sweep ID");
    orch_store *store = NULL;
    int rc = open_for_reading(globals, &store, err);
    orch_rowset runs = {0};
    if (rc == ORCH_OK && sweep_id > 0) {
        rc = orch_store_read_compare_sweep(store, sweep_id, &runs, err);
        if (rc == ORCH_OK)
            rc = orch_render_compare_sweep(&runs, format, stdout, err);
    } else if (rc == ORCH_OK) {
        rc = orch_store_read_compare(store, ids, n_ids, pipeline, tag, &runs, err);
        if (rc == ORCH_OK)
            rc = orch_render_compare(&runs, format, stdout, err);
    }
    orch_rowset_free(&runs);
    orch_store_close(store);
    return rc;
}

int orch_cmd_rm(int argc, char **argv, orch_cli_globals *globals, orch_err *err)
{
    static const orch_opt opts[] = {{"dry-run", 0, OPT_DRY_RUN}, {NULL, 0, 0}};
    orch_opt_state st = {argc, argv, 1, NULL, "rm"};
    int dry_run = 0, n_ids = 0;
    int64_t ids[ORCH_MAX_COMPARE];
    int id, more;
    while ((more = orch_opt_each(&st, opts, globals, &id, err)) > 0) {
        switch (id) {
        case OPT_DRY_RUN:
            dry_run = 1;
            break;
        case ORCH_OPT_POSITIONAL:
            if (n_ids == ORCH_MAX_COMPARE)
                return orch_seterr(err, ORCH_EINVAL, "rm: at most %d runs at a time",
                                   ORCH_MAX_COMPARE);
            if (orch_parse_run_id("rm", st.value, &ids[n_ids++], err) != ORCH_OK)
                return err->code;
            break;
        }
    }
    if (more < 0)
        return err->code;
    if (n_ids == 0)
        return orch_seterr(err, ORCH_EINVAL, "rm: missing run id (usage: orch rm RUN...)");
    const char *db = orch_cli_db_path(globals);
    orch_store *store = NULL;
    /* reaped first: a run whose process is gone is no longer "running" */
    int rc = orch_store_reap_path(db, stderr, err);
    if (rc == ORCH_OK)
        rc = orch_store_open(db, ORCH_STORE_READWRITE, &store, err);
    if (rc == ORCH_OK)
        rc = orch_store_rm(store, ids, n_ids, dry_run, stdout, err);
    orch_store_close(store);
    return rc;
}

int orch_cmd_sweeps(int argc, char **argv, orch_cli_globals *globals, orch_err *err)
{
    static const orch_opt opts[] = {{"csv", 0, OPT_CSV}, {"json", 0, OPT_JSON}, {NULL, 0, 0}};
    orch_opt_state st = {argc, argv, 1, NULL, "sweeps"};
    int format = ORCH_FMT_TABLE;
    int id, more;
    while ((more = orch_opt_each(&st, opts, globals, &id, err)) > 0) {
        switch (id) {
        case OPT_CSV:
            format = ORCH_FMT_CSV;
            break;
        case OPT_JSON:
            format = ORCH_FMT_JSON;
            break;
        case ORCH_OPT_POSITIONAL:
            return orch_seterr(err, ORCH_EINVAL, "sweeps: unexpected argument '%s'", st.value);
        }
    }
    if (more < 0)
        return err->code;
    orch_store *store = NULL;
    int rc = open_for_reading(globals, &store, err);
    orch_rowset rows = {0};
    if (rc == ORCH_OK)
        rc = orch_store_read_sweeps(store, &rows, err);
    if (rc == ORCH_OK)
        rc = orch_render_sweeps(&rows, format, stdout, err);
    orch_rowset_free(&rows);
    orch_store_close(store);
    return rc;
}

#define ORCH_MAX_MERGE 256

/* "1 run" or "2 runs". */
static const char *plural(int64_t n, const char *one, const char *many)
{
    return n == 1 ? one : many;
}

int orch_cmd_merge(int argc, char **argv, orch_cli_globals *globals, orch_err *err)
{
    orch_opt_state st = {argc, argv, 1, NULL, "merge"};
    const char *others[ORCH_MAX_MERGE];
    int n_others = 0;
    int id, more; /* no options of its own: id is always ORCH_OPT_POSITIONAL */
    while ((more = orch_opt_each(&st, NULL, globals, &id, err)) > 0) {
        if (n_others == ORCH_MAX_MERGE)
            return orch_seterr(err, ORCH_EINVAL, "merge: at most %d stores at a time",
                               ORCH_MAX_MERGE);
        others[n_others++] = st.value;
    }
    if (more < 0)
        return err->code;
    if (n_others == 0)
        return orch_seterr(err, ORCH_EINVAL,
                           "merge: name the stores to merge (usage: orch merge OTHER.db...)");
    const char *db = orch_cli_db_path(globals);
    /* every other store is checked before the destination is opened (or
     * created): a bad one changes nothing */
    for (int i = 0; i < n_others; i++)
        if (orch_store_merge_check(db, others[i], err) != ORCH_OK)
            return err->code;
    orch_store *store = NULL;
    int rc = orch_store_reap_path(db, stderr, err);
    if (rc == ORCH_OK)
        rc = orch_store_open(db, ORCH_STORE_READWRITE, &store, err);
    for (int i = 0; i < n_others && rc == ORCH_OK; i++) {
        orch_merge_counts c;
        rc = orch_store_merge(store, others[i], &c, err);
        if (rc != ORCH_OK)
            break;
        printf("merged %s: %lld %s added, %lld already present; %lld %s added", others[i],
               (long long)c.runs_added, plural(c.runs_added, "run", "runs"),
               (long long)c.runs_present, (long long)c.sweeps_added,
               plural(c.sweeps_added, "sweep", "sweeps"));
        if (c.sweeps_present > 0)
            printf(", %lld already present", (long long)c.sweeps_present);
        printf("\n");
        fflush(stdout);
    }
    /* a store this command created and nothing was merged into goes again */
    if (rc != ORCH_OK)
        orch_store_close_unused(store);
    else
        orch_store_close(store);
    return rc;
}
