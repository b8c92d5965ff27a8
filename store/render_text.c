/*
 * render_text.c - printing for people what report.c and compare.c read:
 * `orch runs`, `orch show RUN` and `orch compare` (their tables, CSV and
 * JSON go through format.c's writer). No SQL here: only the structs of
 * store.h. It lives in store/ beside format.c because both print values
 * by the same rules (store_format_real); another renderer (HTML) would sit
 * beside it and take the same structs.
 */
#include "store/store_int.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

/* Reals with 6 significant digits, NULL as "-". */
static const orch_render_opts people = {6, "-"};

/* The text of v for people: 6 significant digits for reals; NULL prints
 * as if_null. buf holds 64 bytes. */
static const char *val(const orch_value *v, const char *if_null, char *buf)
{
    switch (v->kind) {
    case ORCH_VALUE_NULL:
        return if_null;
    case ORCH_VALUE_REAL:
        return store_format_real(v->r, 6, buf);
    case ORCH_VALUE_INT:
        snprintf(buf, 64, "%lld", (long long)v->i);
        return buf;
    case ORCH_VALUE_TEXT:
    case ORCH_VALUE_BLOB:
        return v->s != NULL ? v->s : if_null;
    }
    return if_null;
}

/* v as SQL's || would make it text: integers plainly, reals as %.15g with
 * a '.0' when whole. NULL for NULL. buf holds 64 bytes. */
static const char *sql_text(const orch_value *v, char *buf)
{
    switch (v->kind) {
    case ORCH_VALUE_NULL:
        return NULL;
    case ORCH_VALUE_INT:
        snprintf(buf, 64, "%lld", (long long)v->i);
        return buf;
    case ORCH_VALUE_REAL:
        snprintf(buf, 64, "%.15g", v->r);
        if (strpbrk(buf, ".eni") == NULL)
            strcat(buf, ".0");
        return buf;
    default:
        return v->s != NULL ? v->s : "";
    }
}

static const orch_value null_value = {ORCH_VALUE_NULL, 0, 0.0, NULL, 0};

/* Column name of row r, or NULL when rows have no such column. */
static const orch_value *cell(const orch_rowset *rows, size_t r, const char *name)
{
    int c = orch_rowset_column(rows, name);
    return c < 0 ? &null_value : &rows->cells[r * (size_t)rows->n_cols + (size_t)c];
}

/* "NaN" for a NULL loss or grad norm of a run that has steps (docs/store.md:
 * NaN is stored as NULL). */
static orch_value nan_if_null(const orch_value *v, const orch_value *steps)
{
    static char nan_text[] = "NaN";
    if (v->kind == ORCH_VALUE_NULL && steps->kind == ORCH_VALUE_INT && steps->i > 0)
        return (orch_value){ORCH_VALUE_TEXT, 0, 0.0, nan_text, 3};
    return *v;
}

/* prefix step phase stage, as one text (malloc'd in *text); NULL when any is. */
static orch_value first_nan(const orch_rowset *rows, size_t r, const char *prefix, char **text)
{
    char b0[64], b1[64], b2[64];
    const char *step = sql_text(cell(rows, r, "first_nan_step"), b0);
    const char *phase = sql_text(cell(rows, r, "first_nan_phase"), b1);
    const char *stage = sql_text(cell(rows, r, "first_nan_stage"), b2);
    *text = NULL;
    if (step == NULL || phase == NULL || stage == NULL)
        return null_value;
    size_t n = strlen(prefix) + strlen(step) + strlen(phase) + strlen(stage) + 3;
    if ((*text = malloc(n)) == NULL)
        return null_value;
    snprintf(*text, n, "%s%s %s %s", prefix, step, phase, stage);
    return (orch_value){ORCH_VALUE_TEXT, 0, 0.0, *text, strlen(*text)};
}

/* ------------------------------------------------- runs and compare */

/* How a column of a people's table is made from a row of the rowset. */
typedef enum people_kind {
    PEOPLE_AS_IS,       /* the source column as read */
    PEOPLE_NAN_IF_NULL, /* the source column, "NaN" when NULL in a run with steps */
    PEOPLE_FIRST_NAN    /* "PREFIX step phase stage" of the first NaN event; source is PREFIX */
} people_kind;

typedef struct people_column {
    const char *header;
    const char *source; /* column of the rowset, or the prefix of PEOPLE_FIRST_NAN */
    people_kind kind;
} people_column;

#define PEOPLE_MAX_COLUMNS 20

/* Prints rows as command what ("runs", "compare") does: CSV and JSON as
 * read, a table for people made of the n_cols columns cols. */
static int render_people(const char *what, const people_column *cols, size_t n_cols,
                         const orch_rowset *rows, orch_format format, FILE *out, orch_err *err)
{
    ORCH_ASSERT(n_cols <= PEOPLE_MAX_COLUMNS);
    if (format != ORCH_FMT_TABLE && format != ORCH_FMT_CSV && format != ORCH_FMT_JSON)
        return orch_seterr(err, ORCH_EINVAL, "%s: unknown output format %d", what, (int)format);
    if (format != ORCH_FMT_TABLE)
        return orch_render_rows(rows, format, NULL, out, err);
    const char *names[PEOPLE_MAX_COLUMNS];
    for (size_t c = 0; c < n_cols; c++)
        names[c] = cols[c].header;
    store_writer w;
    int rc = store_writer_begin(&w, format, &people, (int)n_cols, names, out);
    for (size_t r = 0; r < rows->n_rows && rc == ORCH_OK; r++) {
        const orch_value *steps = cell(rows, r, "steps");
        char *text = NULL; /* owned: the first_nan text of this row */
        orch_value row[PEOPLE_MAX_COLUMNS];
        for (size_t c = 0; c < n_cols; c++) {
            switch (cols[c].kind) {
            case PEOPLE_AS_IS:
                row[c] = *cell(rows, r, cols[c].source);
                break;
            case PEOPLE_NAN_IF_NULL:
                row[c] = nan_if_null(cell(rows, r, cols[c].source), steps);
                break;
            case PEOPLE_FIRST_NAN:
                ORCH_ASSERT(text == NULL); /* one such column per table */
                row[c] = first_nan(rows, r, cols[c].source, &text);
                break;
            }
        }
        rc = store_writer_row(&w, row, err);
        free(text);
    }
    if (rc != ORCH_OK) {
        store_writer_free(&w);
        return rc;
    }
    return store_writer_end(&w, err);
}

int orch_render_runs(const orch_rowset *runs, orch_format format, FILE *out, orch_err *err)
{
    static const people_column cols[] = {
        {"id", "run_id", PEOPLE_AS_IS},
        {"name", "name", PEOPLE_AS_IS},
        {"strategy", "strategy", PEOPLE_AS_IS},
        {"status", "status", PEOPLE_AS_IS},
        {"steps", "steps", PEOPLE_AS_IS},
        {"final_loss", "final_loss", PEOPLE_NAN_IF_NULL},
        {"max_grad_norm", "max_grad_norm", PEOPLE_NAN_IF_NULL},
        {"first_nan", "step ", PEOPLE_FIRST_NAN},
        {"created_at", "created_at", PEOPLE_AS_IS},
        /* where it runs or ran: a sweep's runs spread over ranks and hosts */
        {"host", "host", PEOPLE_AS_IS},
        {"rank", "rank", PEOPLE_AS_IS},
    };
    return render_people("runs", cols, sizeof cols / sizeof cols[0], runs, format, out, err);
}

int orch_store_list_runs(orch_store *s, const char *pipeline, const char *strategy,
                         const char *status, orch_format format, FILE *out, orch_err *err)
{
    orch_rowset runs = {0};
    if (s == NULL || out == NULL)
        return orch_seterr(err, ORCH_EINVAL, "runs: no store");
    if (format != ORCH_FMT_TABLE && format != ORCH_FMT_CSV && format != ORCH_FMT_JSON)
        return orch_seterr(err, ORCH_EINVAL, "runs: unknown output format %d", (int)format);
    int rc = orch_store_read_runs(s, pipeline, strategy, status, &runs, err);
    if (rc == ORCH_OK)
        rc = orch_render_runs(&runs, format, out, err);
    orch_rowset_free(&runs);
    return rc;
}

/* -------------------------------------------------------- compare */

int orch_render_compare(const orch_rowset *runs, orch_format format, FILE *out, orch_err *err)
{
    static const people_column cols[] = {
        {"run", "run", PEOPLE_AS_IS},
        {"name", "name", PEOPLE_AS_IS},
        {"strategy", "strategy", PEOPLE_AS_IS},
        {"precision", "precision", PEOPLE_AS_IS},
        {"lr", "lr", PEOPLE_AS_IS},
        {"seed", "seed", PEOPLE_AS_IS},
        {"status", "status", PEOPLE_AS_IS},
        {"steps", "steps", PEOPLE_AS_IS},
        {"final_loss", "final_loss", PEOPLE_NAN_IF_NULL},
        {"best_loss", "best_loss", PEOPLE_AS_IS},
        {"max_grad_norm", "max_grad_norm", PEOPLE_NAN_IF_NULL},
        {"first_nan", "", PEOPLE_FIRST_NAN},
        {"steps_per_s", "steps_per_s", PEOPLE_AS_IS},
        /* what computed each run: steps_per_s means little across kernels */
        {"kernels", "kernels", PEOPLE_AS_IS},
        {"threads", "threads", PEOPLE_AS_IS},
    };
    /* evaluated runs (compare.c added the columns): their figures after
     * the training loss, which they rank before */
    static const people_column eval_cols[] = {
        {"run", "run", PEOPLE_AS_IS},
        {"name", "name", PEOPLE_AS_IS},
        {"strategy", "strategy", PEOPLE_AS_IS},
        {"precision", "precision", PEOPLE_AS_IS},
        {"lr", "lr", PEOPLE_AS_IS},
        {"seed", "seed", PEOPLE_AS_IS},
        {"status", "status", PEOPLE_AS_IS},
        {"steps", "steps", PEOPLE_AS_IS},
        {"final_loss", "final_loss", PEOPLE_NAN_IF_NULL},
        {"best_loss", "best_loss", PEOPLE_AS_IS},
        {"eval_loss", "final_eval_loss", PEOPLE_AS_IS},
        {"best_eval_acc", "best_eval_accuracy", PEOPLE_AS_IS},
        {"best_eval_step", "best_eval_step", PEOPLE_AS_IS},
        {"max_grad_norm", "max_grad_norm", PEOPLE_NAN_IF_NULL},
        {"first_nan", "", PEOPLE_FIRST_NAN},
        {"steps_per_s", "steps_per_s", PEOPLE_AS_IS},
        {"kernels", "kernels", PEOPLE_AS_IS},
        {"threads", "threads", PEOPLE_AS_IS},
    };
    if (orch_rowset_column(runs, "final_eval_loss") >= 0)
        return render_people("compare", eval_cols, sizeof eval_cols / sizeof eval_cols[0], runs,
                             format, out, err);
    return render_people("compare", cols, sizeof cols / sizeof cols[0], runs, format, out, err);
}

int orch_store_compare(orch_store *s, const int64_t *run_ids, int n_ids, const char *pipeline,
                       const char *tag, orch_format format, FILE *out, orch_err *err)
{
    orch_rowset runs = {0};
    if (s == NULL || out == NULL)
        return orch_seterr(err, ORCH_EINVAL, "compare: no store");
    if (format != ORCH_FMT_TABLE && format != ORCH_FMT_CSV && format != ORCH_FMT_JSON)
        return orch_seterr(err, ORCH_EINVAL, "compare: unknown output format %d", (int)format);
    int rc = orch_store_read_compare(s, run_ids, n_ids, pipeline, tag, &runs, err);
    if (rc == ORCH_OK)
        rc = orch_render_compare(&runs, format, out, err);
    orch_rowset_free(&runs);
    return rc;
}

/* ----------------------------------------------------------- show */

static void field(FILE *out, const char *name, const char *value)
{
    fprintf(out, "  %-16s %s\n", name, value);
}

/* Fields a run has only sometimes: left out when NULL. */
static int optional_field(const char *name)
{
    static const char *const optional[] = {"error", "end_reason", "sweep_id",  "sweep",
                                           "point", "rank",       "rank_host", "attempts"};
    for (size_t i = 0; i < sizeof optional / sizeof optional[0]; i++)
        if (strcmp(name, optional[i]) == 0)
            return 1;
    return 0;
}

/* The runs row: its columns are named as the fields print. */
static void print_run(const orch_run_report *r, FILE *out)
{
    char buf[64];
    const orch_rowset *run = &r->run;
    fprintf(out, "run %lld: %s\n", (long long)r->run_id, val(cell(run, 0, "name"), "", buf));
    for (int i = 0; i < run->n_cols; i++) {
        if (run->cells[i].kind == ORCH_VALUE_NULL && optional_field(run->names[i]))
            continue; /* no error, or not a sweep's run */
        field(out, run->names[i], val(&run->cells[i], "-", buf));
    }
}

/* The evaluation's figures, when the run was evaluated: the last eval/loss,
 * the best eval/accuracy and its step (or the step of the lowest eval/loss
 * for a run without accuracy). */
static void print_eval(const orch_rowset *sum, FILE *out)
{
    char buf[64], buf2[64], line[160];
    const orch_value *loss = cell(sum, 0, "final_eval_loss");
    const orch_value *acc = cell(sum, 0, "best_eval_accuracy");
    const orch_value *step = cell(sum, 0, "best_eval_step");
    if (loss->kind == ORCH_VALUE_NULL && acc->kind == ORCH_VALUE_NULL &&
        step->kind == ORCH_VALUE_NULL)
        return;
    field(out, "final_eval_loss", val(loss, "NaN", buf));
    if (acc->kind != ORCH_VALUE_NULL) {
        snprintf(line, sizeof line, "%s (step %s)", val(acc, "-", buf), val(step, "-", buf2));
        field(out, "best_eval_acc", line);
    } else {
        field(out, "best_eval_step", val(step, "-", buf));
    }
}

/* run_summary's figures. A NULL loss or grad norm of a run that has steps
 * is a NaN (docs/store.md). */
static void print_summary(const orch_rowset *sum, FILE *out)
{
    char buf[64], buf2[128]; /* buf2: a number and buf, with words */
    const orch_value *steps_v = cell(sum, 0, "steps");
    int64_t steps = steps_v->kind == ORCH_VALUE_INT ? steps_v->i : 0;
    const char *nan = steps > 0 ? "NaN" : "-";
    fputs("\nsummary\n", out);
    field(out, "lr", val(cell(sum, 0, "lr"), "-", buf));
    field(out, "precision", val(cell(sum, 0, "precision"), "-", buf));
    if (steps > 0)
        snprintf(buf2, sizeof buf2, "%lld (last step %s)", (long long)steps,
                 val(cell(sum, 0, "last_step"), "-", buf));
    else
        snprintf(buf2, sizeof buf2, "0");
    field(out, "steps", buf2);
    field(out, "final_loss", val(cell(sum, 0, "final_loss"), nan, buf));
    field(out, "best_loss", val(cell(sum, 0, "best_loss"), "-", buf));
    field(out, "max_grad_norm", val(cell(sum, 0, "max_grad_norm"), nan, buf));
    print_eval(sum, out);
    const orch_value *nonfinite = cell(sum, 0, "nonfinite_steps");
    if (nonfinite->kind == ORCH_VALUE_INT && nonfinite->i > 0)
        snprintf(buf2, sizeof buf2, "%lld (first at step %s)", (long long)nonfinite->i,
                 val(cell(sum, 0, "first_nonfinite_step"), "-", buf));
    else
        snprintf(buf2, sizeof buf2, "0");
    field(out, "nonfinite_steps", buf2);
    field(out, "nan_events", val(cell(sum, 0, "nan_events"), "0", buf));
    field(out, "steps_per_s", val(cell(sum, 0, "steps_per_s"), "-", buf));
    field(out, "tags", val(cell(sum, 0, "tags"), "-", buf));
}

/* The first NaN event's sentence and provenance (row 0 of the events). */
static void print_first_nan(const orch_rowset *ev, FILE *out)
{
    char b0[64], b1[64], b2[64], b3[64], b4[64], b5[64];
    fputs("\nfirst NaN event\n", out);
    fprintf(out, "  step %s, %s, stage %s, tensor %s: %s NaN, %s Inf\n",
            val(cell(ev, 0, "step"), "-", b0), val(cell(ev, 0, "phase"), "-", b1),
            val(cell(ev, 0, "stage"), "-", b2), val(cell(ev, 0, "tensor"), "-", b3),
            val(cell(ev, 0, "nan_count"), "0", b4), val(cell(ev, 0, "inf_count"), "0", b5));
    const orch_value *rank = cell(ev, 0, "rank");
    if (rank != NULL && rank->kind != ORCH_VALUE_NULL)
        fprintf(out, "  found on rank %s (host %s)\n", val(rank, "-", b0),
                val(cell(ev, 0, "host"), "-", b1));
    const orch_value *finite = cell(ev, 0, "inputs_finite");
    if (finite->kind == ORCH_VALUE_NULL)
        return;
    int produced = finite->kind == ORCH_VALUE_INT ? finite->i != 0 : 1;
    if (produced)
        fprintf(out,
                "  its inputs were finite (largest |x| %s): this stage produced the first "
                "non-finite value\n",
                val(cell(ev, 0, "input_absmax"), "-", b2));
    else
        fprintf(out,
                "  its inputs were already non-finite (largest finite |x| %s): it came from "
                "upstream\n",
                val(cell(ev, 0, "input_absmax"), "-", b2));
}

static int print_nan_events(const orch_run_report *r, FILE *out, orch_err *err)
{
    if (r->n_nan_events == 0 || r->nan_events.n_rows == 0)
        return ORCH_OK;
    print_first_nan(&r->nan_events, out);
    fprintf(out, "\nNaN events (%lld)\n", (long long)r->n_nan_events);
    int rc = orch_render_rows(&r->nan_events, ORCH_FMT_TABLE, &people, out, err);
    if (rc == ORCH_OK && r->n_nan_events > ORCH_REPORT_EVENTS)
        fprintf(out,
                "... %lld more: orch query \"SELECT * FROM nan_events WHERE run_id = %lld "
                "ORDER BY step, id\"\n",
                (long long)(r->n_nan_events - ORCH_REPORT_EVENTS), (long long)r->run_id);
    return rc;
}

static int print_frozen(const orch_run_report *r, FILE *out, orch_err *err)
{
    int64_t n = r->n_frozen_changes;
    fputs("\nfrozen parameters\n", out);
    if (n == 0) {
        fputs(r->frozen_checked == 1 ? "  unchanged (checked every step)\n"
                                     : "  not checked (checks.frozen is off)\n",
              out);
        return ORCH_OK;
    }
    fprintf(out, "  changed: %lld frozen tensor change%s recorded\n", (long long)n,
            n == 1 ? "" : "s");
    int rc = orch_render_rows(&r->frozen_changes, ORCH_FMT_TABLE, &people, out, err);
    if (rc == ORCH_OK && n > ORCH_REPORT_EVENTS)
        fprintf(out,
                "... %lld more: orch query \"SELECT step, parameter FROM frozen_changes WHERE "
                "run_id = %lld ORDER BY step, id\"\n",
                (long long)(n - ORCH_REPORT_EVENTS), (long long)r->run_id);
    return rc;
}

static int print_checkpoints(const orch_run_report *r, FILE *out, orch_err *err)
{
    fputs("\ncheckpoints\n", out);
    if (cell(&r->summary, 0, "last_checkpoint_step")->kind == ORCH_VALUE_NULL) {
        fputs("  none\n", out);
        return ORCH_OK;
    }
    return orch_render_rows(&r->checkpoints, ORCH_FMT_TABLE, &people, out, err);
}

/* The data it computed on: files and size per role, the class names, and
 * the files themselves when they are few (or all were read). */
static int print_data(const orch_run_report *r, FILE *out, orch_err *err)
{
    char b0[64], line[256];
    fputs("\ndata\n", out);
    if (r->n_inputs == 0)
        fputs("  no data files (synthetic data)\n", out);
    const orch_rowset *roles = &r->inputs_by_role;
    for (size_t i = 0; i < roles->n_rows; i++) {
        const orch_value *files = cell(roles, i, "files");
        int64_t n = files->kind == ORCH_VALUE_INT ? files->i : 0;
        snprintf(line, sizeof line, "%lld file%s, %s", (long long)n, n == 1 ? "" : "s",
                 val(cell(roles, i, "size"), "-", b0));
        field(out, val(cell(roles, i, "role"), "-", b0), line);
    }
    if (r->n_classes > 0) {
        size_t at = (size_t)snprintf(line, sizeof line, "%lld:", (long long)r->n_classes);
        for (size_t i = 0; i < r->classes.n_rows && at < sizeof line; i++)
            at += (size_t)snprintf(line + at, sizeof line - at, "%s %s", i > 0 ? "," : "",
                                   val(cell(&r->classes, i, "name"), "-", b0));
        if ((int64_t)r->classes.n_rows < r->n_classes && at < sizeof line)
            snprintf(line + at, sizeof line - at, ", ...");
        field(out, "classes", line);
    }
    if (r->inputs.n_rows == 0)
        return ORCH_OK;
    int rc = orch_render_rows(&r->inputs, ORCH_FMT_TABLE, &people, out, err);
    if (rc == ORCH_OK && (int64_t)r->inputs.n_rows < r->n_inputs)
        fprintf(out, "... %lld more: orch show %lld --files\n",
                (long long)(r->n_inputs - (int64_t)r->inputs.n_rows), (long long)r->run_id);
    return rc;
}

/* The query docs/store.md gives for "which stage blows up first". */
#define STATS_BLOWUP_SQL                                                                           \
    "SELECT stage, min(step) FROM stage_stats WHERE run_id = %lld AND (act_absmax IS NULL OR "     \
    "act_absmax > 1e4) GROUP BY stage ORDER BY 2 LIMIT 5"

/* A digest of the stage statistics, when the run has any. */
static void print_stage_stats(const orch_run_report *r, FILE *out)
{
    char b0[64], b1[64], b2[64], b3[64];
    const orch_rowset *ext = &r->stats_extent;
    if (ext->n_rows == 0 || ext->cells[0].kind != ORCH_VALUE_INT || ext->cells[0].i == 0)
        return; /* none recorded: no section */
    fputs("\nstage statistics\n", out);
    fprintf(out, "  %lld stages at %lld steps (%s to %s)\n", (long long)ext->cells[0].i,
            (long long)(ext->cells[1].kind == ORCH_VALUE_INT ? ext->cells[1].i : 0),
            val(&ext->cells[2], "-", b0), val(&ext->cells[3], "-", b1));
    const orch_rowset *top = &r->stats_top;
    if (top->n_rows > 0) {
        fprintf(out, "  largest act_absmax at step %s: %s, %s", val(&top->cells[0], "-", b0),
                val(&top->cells[1], "-", b1), val(&top->cells[2], "NaN", b2));
        fprintf(out, " (act_rms %s, ", val(&top->cells[3], "NaN", b3));
        fprintf(out, "grad_norm %s)\n", val(&top->cells[4], "none", b3));
    }
    const orch_rowset *first = &r->stats_first;
    if (first->n_rows > 0)
        fprintf(out, "  first past |x| > 1e4 (or non-finite): %s at step %s\n",
                val(&first->cells[0], "-", b0), val(&first->cells[1], "-", b1));
    else
        fputs("  no stage went past |x| > 1e4\n", out);
    fputs("  which stage blows up first: orch query \"", out);
    fprintf(out, STATS_BLOWUP_SQL, (long long)r->run_id);
    fputs("\"\n", out);
}

static int print_config(const char *text, FILE *out)
{
    json_error_t jerr;
    json_t *root = json_loads(text, JSON_DECODE_ANY, &jerr);
    fputs("\nconfig\n", out);
    if (root == NULL) {
        fprintf(out, "%s\n", text); /* the CHECK keeps this from happening */
        return ORCH_OK;
    }
    int rc = store_json_print(root, 2, 0, out);
    fputc('\n', out);
    json_decref(root);
    return rc == 0 ? ORCH_OK : ORCH_EIO;
}

int orch_render_run_text(const orch_run_report *r, FILE *out, orch_err *err)
{
    print_run(r, out);
    print_summary(&r->summary, out);
    int rc = print_data(r, out, err);
    if (rc == ORCH_OK)
        rc = print_nan_events(r, out, err);
    if (rc == ORCH_OK)
        rc = print_frozen(r, out, err);
    if (rc == ORCH_OK)
        rc = print_checkpoints(r, out, err);
    if (rc != ORCH_OK)
        return rc;
    print_stage_stats(r, out);
    if (print_config(r->config_json != NULL ? r->config_json : "{}", out) != ORCH_OK)
        return orch_seterr(err, ORCH_EIO, "show: writing the configuration failed");
    if (fflush(out) != 0 || ferror(out))
        return orch_seterr(err, ORCH_EIO, "show: writing the output failed");
    return ORCH_OK;
}

int orch_store_show_run(orch_store *s, int64_t run_id, FILE *out, orch_err *err)
{
    orch_run_report report;
    if (s == NULL || out == NULL)
        return orch_seterr(err, ORCH_EINVAL, "show: no store");
    int rc = orch_store_read_run(s, run_id, &report, err);
    if (rc == ORCH_OK)
        rc = orch_render_run_text(&report, out, err);
    orch_run_report_free(&report);
    return rc;
}
