/*
 * cmd_bundle.c - `orch export`, `orch import` and `orch replay`: sharing
 * runs as bundles (docs/bundles.md, store/bundle.h); and loading a
 * recorded configuration for `orch run --from` and `orch plan --from`.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/cli.h"
#include "core/pipeline_json.h"
#include "core/train.h"
#include "kernels/kernels.h"
#include "store/bundle.h"
#include "store/store.h"

enum { OPT_OUT = 1, OPT_SWEEP, OPT_TAG, OPT_TOL };

#define MAX_EXPORT_RUNS 4096

int orch_cmd_export(int argc, char **argv, orch_cli_globals *globals, orch_err *err)
{
    static const orch_opt opts[] = {
        {"output", 1, OPT_OUT}, {"sweep", 1, OPT_SWEEP}, {"tag", 1, OPT_TAG}, {NULL, 0, 0}};
    orch_opt_state st = {argc, argv, 1, NULL, "export"};
    static int64_t ids[MAX_EXPORT_RUNS];
    int n_ids = 0, id, more, want_out = 0;
    int64_t sweep = 0;
    const char *out = NULL, *tag = NULL;
    while ((more = orch_opt_each(&st, opts, globals, &id, err)) > 0) {
        switch (id) {
        case OPT_OUT:
            out = st.value;
            break;
        case OPT_SWEEP:
            if (orch_parse_run_id("export --sweep", st.value, &sweep, err) != ORCH_OK)
                return err->code;
            break;
        case OPT_TAG:
            tag = st.value;
            break;
        case ORCH_OPT_POSITIONAL:
            if (want_out) { /* -o FILE: the parser knows long options only */
                out = st.value;
                want_out = 0;
                break;
            }
            if (strcmp(st.value, "-o") == 0) {
                want_out = 1;
                break;
            }
            if (n_ids == MAX_EXPORT_RUNS)
                return orch_seterr(err, ORCH_EINVAL, "export: at most %d runs at a time",
                                   MAX_EXPORT_RUNS);
            if (orch_parse_run_id("export", st.value, &ids[n_ids], err) != ORCH_OK)
                return err->code;
            n_ids++;
            break;
        }
    }
    if (more < 0)
        return err->code;
    if (out == NULL || want_out)
        return orch_seterr(err, ORCH_EINVAL,
                           "export: no output file (usage: orch export RUN... | --sweep ID | "
                           "--tag T -o FILE.tar.gz)");
    const char *db = orch_cli_db_path(globals);
    orch_store *store = NULL;
    int rc = orch_store_reap_path(db, stderr, err);
    if (rc == ORCH_OK)
        rc = orch_store_open(db, ORCH_STORE_READONLY, &store, err);
    int64_t *runs = NULL;
    int n_runs = 0;
    if (rc == ORCH_OK)
        rc = orch_bundle_select(store, ids, n_ids, sweep, tag, &runs, &n_runs, err);
    if (rc == ORCH_OK)
        rc = orch_bundle_export(store, runs, n_runs, out, err);
    if (rc == ORCH_OK) {
        struct stat sb;
        long long bytes = stat(out, &sb) == 0 ? (long long)sb.st_size : -1;
        printf("exported %d run%s to %s (%lld bytes)\n", n_runs, n_runs == 1 ? "" : "s", out,
               bytes);
    }
    free(runs);
    orch_store_close(store);
    return rc;
}

int orch_cmd_import(int argc, char **argv, orch_cli_globals *globals, orch_err *err)
{
    orch_opt_state st = {argc, argv, 1, NULL, "import"};
    const char *files[64];
    int n_files = 0, id, more;
    while ((more = orch_opt_each(&st, NULL, globals, &id, err)) > 0) {
        if (n_files == 64)
            return orch_seterr(err, ORCH_EINVAL, "import: at most 64 bundles at a time");
        files[n_files++] = st.value;
    }
    if (more < 0)
        return err->code;
    if (n_files == 0)
        return orch_seterr(err, ORCH_EINVAL, "import: name the bundle (usage: orch import FILE)");
    const char *db = orch_cli_db_path(globals);
    orch_store *store = NULL;
    int rc = orch_store_reap_path(db, stderr, err);
    if (rc == ORCH_OK)
        rc = orch_store_open(db, ORCH_STORE_READWRITE, &store, err);
    for (int i = 0; i < n_files && rc == ORCH_OK; i++) {
        orch_bundle_counts c;
        rc = orch_bundle_import(store, files[i], NULL, &c, err);
        if (rc == ORCH_OK)
            printf("imported %s: %lld run%s added, %lld already present; %lld file%s placed\n",
                   files[i], (long long)c.runs_added, c.runs_added == 1 ? "" : "s",
                   (long long)c.runs_present, (long long)c.files_placed,
                   c.files_placed == 1 ? "" : "s");
        fflush(stdout);
    }
    /* a store this command created and nothing was imported into goes again */
    if (rc != ORCH_OK)
        orch_store_close_unused(store);
    else
        orch_store_close(store);
    return rc;
}

/* ------------------------------------------------------------- --from */

int orch_cli_load_from_run(orch_cli_globals *globals, const char *run_text, orch_pipeline *out,
                           orch_stored_sources *sources, orch_err *err)
{
    int64_t run_id = 0;
    if (orch_parse_run_id("--from", run_text, &run_id, err) != ORCH_OK)
        return err->code;
    const char *db = orch_cli_db_path(globals);
    orch_store *store = NULL;
    orch_replay_set set = {0};
    int rc = orch_store_open(db, ORCH_STORE_READONLY, &store, err);
    if (rc == ORCH_OK)
        rc = orch_store_read_replay(store, run_id, &set, err);
    if (rc == ORCH_OK) {
        rc = orch_pipeline_from_json(set.runs[0].config_json, out, err);
        if (rc != ORCH_OK)
            orch_seterr(err, rc, "run %lld: %s", (long long)run_id, err->msg);
    }
    if (rc == ORCH_OK && sources != NULL)
        rc = orch_store_read_sources(store, run_id, sources, err);
    orch_replay_set_free(&set);
    orch_store_close(store);
    return rc;
}

/* ------------------------------------------------------------- replay */

/* A sink that keeps only the losses (the replay records nothing). */
typedef struct replay_sink {
    int64_t n, cap;
    int64_t *steps;
    double *losses;
    int oom;
} replay_sink;

static int replay_step(void *ctx, int64_t run_id, const orch_step_record *rec, orch_err *err)
{
    replay_sink *r = ctx;
    (void)run_id;
    if (r->n == r->cap) {
        int64_t cap = r->cap ? 2 * r->cap : 256;
        int64_t *s = realloc(r->steps, sizeof *s * (size_t)cap);
        if (s != NULL)
            r->steps = s;
        double *l = realloc(r->losses, sizeof *l * (size_t)cap);
        if (l != NULL)
            r->losses = l;
        if (s == NULL || l == NULL)
            return orch_seterr(err, ORCH_ENOMEM, "replay: out of memory");
        r->cap = cap;
    }
    /* a resumed step replaces its earlier record, as in the store */
    if (r->n > 0 && r->steps[r->n - 1] >= rec->step)
        while (r->n > 0 && r->steps[r->n - 1] >= rec->step)
            r->n--;
    r->steps[r->n] = rec->step;
    r->losses[r->n] = rec->loss;
    r->n++;
    return ORCH_OK;
}

static int same_bits(double a, double b)
{
    if (isnan(a) && isnan(b))
        return 1; /* the store keeps NaN as NULL: any NaN is the same NaN */
    return memcmp(&a, &b, sizeof a) == 0;
}

/* Replays one run; *matched 1 when its losses match. */
static int replay_one(const orch_replay_run *run, double tol, int *matched, orch_err *err)
{
    orch_pipeline *p = calloc(1, sizeof *p);
    replay_sink rs = {0};
    *matched = 0;
    if (p == NULL)
        return orch_seterr(err, ORCH_ENOMEM, "replay: out of memory");
    int rc = orch_pipeline_from_json(run->config_json, p, err);
    if (rc != ORCH_OK)
        orch_seterr(err, rc, "replay: run %s: %s", run->uuid, err->msg);
    orch_sink sink;
    orch_sink_drop(&sink);
    sink.ctx = &rs;
    sink.step = replay_step;
    orch_train_options options = {.run_name = run->name};
    orch_train_result result;
    memset(&result, 0, sizeof result);
    if (rc == ORCH_OK)
        rc = orch_train(p, &options, &sink, &result, err);
    free(p);
    if (rc != ORCH_OK) {
        free(rs.steps);
        free(rs.losses);
        return rc;
    }
    int threads = orch_threads_get();
    int same_threads = run->threads == threads;
    int64_t n = rs.n < run->n_steps ? rs.n : run->n_steps;
    int64_t differ = 0, worst_step = -1;
    double worst = 0;
    for (int64_t i = 0; i < n; i++) {
        double a = run->losses[i], b = rs.losses[i];
        if (run->steps[i] != rs.steps[i] || !same_bits(a, b)) {
            differ++;
            double rel = isnan(a) || isnan(b) ? INFINITY : fabs(a - b) / fmax(fabs(a), 1e-300);
            if (worst_step < 0 || rel > worst) {
                worst = rel;
                worst_step = run->steps[i];
            }
        }
    }
    int count_ok = rs.n == run->n_steps;
    if (same_threads)
        *matched = count_ok && differ == 0;
    else
        *matched = count_ok && worst <= tol;
    printf("run %s (%s): %lld steps recorded on %lld thread%s, %lld replayed on %d: ", run->uuid,
           run->name != NULL ? run->name : "", (long long)run->n_steps, (long long)run->threads,
           run->threads == 1 ? "" : "s", (long long)rs.n, threads);
    if (!count_ok)
        printf("the step counts differ; ");
    if (differ == 0)
        printf("every loss bit for bit the same");
    else
        printf("%lld loss%s differ, largest relative difference %.3g at step %lld",
               (long long)differ, differ == 1 ? "" : "es", worst, (long long)worst_step);
    if (!same_threads && count_ok)
        printf(" (other thread count: tolerance %g)", tol);
    printf(": %s\n", *matched ? "MATCH" : "DIFFERENT");
    fflush(stdout);
    free(rs.steps);
    free(rs.losses);
    return ORCH_OK;
}

int orch_cmd_replay(int argc, char **argv, orch_cli_globals *globals, orch_err *err)
{
    static const orch_opt opts[] = {{"tolerance", 1, OPT_TOL}, {NULL, 0, 0}};
    orch_opt_state st = {argc, argv, 1, NULL, "replay"};
    const char *what = NULL;
    double tol = 1e-4;
    int id, more;
    while ((more = orch_opt_each(&st, opts, globals, &id, err)) > 0) {
        if (id == OPT_TOL) {
            char *end = NULL;
            tol = strtod(st.value, &end);
            if (end == st.value || *end != '\0' || !(tol >= 0))
                return orch_seterr(err, ORCH_EINVAL,
                                   "replay: --tolerance must be a number >= 0 (got '%s')",
                                   st.value);
        } else if (what == NULL) {
            what = st.value;
        } else {
            return orch_seterr(err, ORCH_EINVAL, "replay: one bundle or run at a time");
        }
    }
    if (more < 0)
        return err->code;
    if (what == NULL)
        return orch_seterr(err, ORCH_EINVAL, "replay: usage: orch replay FILE|RUN");
    orch_replay_set set = {0};
    struct stat sb;
    int rc = ORCH_OK;
    if (stat(what, &sb) == 0) {
        rc = orch_bundle_read_runs(what, NULL, &set, err);
    } else {
        int64_t run_id = 0;
        orch_store *store = NULL;
        if (orch_parse_run_id("replay", what, &run_id, err) != ORCH_OK)
            return orch_seterr(err, ORCH_EINVAL, "replay: %s is neither a bundle file nor a run id",
                               what);
        rc = orch_store_open(orch_cli_db_path(globals), ORCH_STORE_READONLY, &store, err);
        if (rc == ORCH_OK)
            rc = orch_store_read_replay(store, run_id, &set, err);
        orch_store_close(store);
    }
    if (rc == ORCH_OK)
        rc = orch_cli_apply_threads(globals, err);
    int all = 1;
    for (int i = 0; i < set.n && rc == ORCH_OK; i++) {
        int matched = 0;
        rc = replay_one(&set.runs[i], tol, &matched, err);
        all &= matched;
    }
    orch_replay_set_free(&set);
    if (rc == ORCH_OK && !all)
        rc = orch_seterr(err, ORCH_ERUNTIME, "replay: the losses differ from the recorded ones");
    return rc;
}
