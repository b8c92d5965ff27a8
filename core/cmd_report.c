/* cmd_report.c - `orch report`: one self-contained HTML page about runs, a
 * sweep, a tag or a pipeline (store/report_html.h reads and renders it).
 * This file parses the options, reads each run's pipeline file when it is
 * still there (the store keeps its path, not its text), and writes the
 * page atomically: a temporary file beside the output, renamed over it
 * once complete, so a reader never sees half a page. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/cli.h"
#include "store/report_html.h"
#include "store/store.h"

enum { OPT_PIPELINE = 1, OPT_TAG, OPT_SWEEP, OPT_OUTPUT };

#define REPORT_MAX_IDS      4096
#define REPORT_PIPELINE_MAX (256 * 1024) /* larger pipeline files are not shown */

/* The file at path when it is a regular file of at most
 * REPORT_PIPELINE_MAX bytes, malloc'd; else NULL (not an error: the page
 * then shows the configuration only). */
static char *read_pipeline(const char *path)
{
    struct stat sb;
    if (path == NULL || *path == '\0' || stat(path, &sb) != 0 || !S_ISREG(sb.st_mode) ||
        sb.st_size > REPORT_PIPELINE_MAX)
        return NULL;
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    char *text = malloc((size_t)sb.st_size + 1);
    size_t n = text != NULL ? fread(text, 1, (size_t)sb.st_size, f) : 0;
    fclose(f);
    if (text != NULL)
        text[n] = '\0';
    return text;
}

/* Writes the page to out_path through a temporary file beside it. */
static int write_atomically(const orch_html_report *report, const char *out_path, orch_err *err)
{
    size_t n = strlen(out_path) + 16;
    char *tmp = malloc(n);
    if (tmp == NULL)
        return orch_seterr(err, ORCH_ENOMEM, "report: out of memory");
    snprintf(tmp, n, "%s.tmp-XXXXXX", out_path);
    int fd = mkstemp(tmp);
    if (fd < 0) {
        int e = errno;
        free(tmp);
        /* a missing folder or one we may not write is the user's input */
        return orch_seterr(err, e == ENOENT || e == ENOTDIR || e == EACCES ? ORCH_EINVAL : ORCH_EIO,
                           "report: cannot write %s: %s", out_path, strerror(e));
    }
    /* mkstemp makes 0600; a page is for reading like any file the user writes */
    mode_t mask = umask(0);
    umask(mask);
    fchmod(fd, 0666 & ~mask);
    FILE *f = fdopen(fd, "w");
    int rc = ORCH_OK;
    if (f == NULL) {
        close(fd);
        rc = orch_seterr(err, ORCH_EIO, "report: %s: %s", tmp, strerror(errno));
    } else {
        rc = orch_render_html_report(report, f, err);
        if (rc == ORCH_OK && (fflush(f) != 0 || fsync(fileno(f)) != 0))
            rc = orch_seterr(err, ORCH_EIO, "report: writing %s: %s", out_path, strerror(errno));
        if (fclose(f) != 0 && rc == ORCH_OK)
            rc = orch_seterr(err, ORCH_EIO, "report: writing %s: %s", out_path, strerror(errno));
    }
    if (rc == ORCH_OK && rename(tmp, out_path) != 0)
        rc = orch_seterr(err, ORCH_EIO, "report: %s: %s", out_path, strerror(errno));
    if (rc != ORCH_OK)
        unlink(tmp);
    free(tmp);
    return rc;
}

int orch_cmd_report(int argc, char **argv, orch_cli_globals *globals, orch_err *err)
{
    static const orch_opt opts[] = {{"pipeline", 1, OPT_PIPELINE},
                                    {"tag", 1, OPT_TAG},
                                    {"sweep", 1, OPT_SWEEP},
                                    {"output", 1, OPT_OUTPUT},
                                    {NULL, 0, 0}};
    orch_opt_state st = {argc, argv, 1, NULL, "report"};
    int n_ids = 0, want_output = 0;
    static int64_t ids[REPORT_MAX_IDS];
    int64_t sweep_id = 0;
    const char *pipeline = NULL, *tag = NULL, *output = NULL;
    int id, more;
    while ((more = orch_opt_each(&st, opts, globals, &id, err)) > 0) {
        if (want_output && id != ORCH_OPT_POSITIONAL)
            return orch_seterr(err, ORCH_EINVAL, "report: -o needs a file name");
        switch (id) {
        case OPT_PIPELINE:
            pipeline = st.value;
            break;
        case OPT_TAG:
            tag = st.value;
            break;
        case OPT_SWEEP: {
            long v = 0;
            if (orch_parse_int("sweep", st.value, 1, 0x7fffffffL, &v, err) != ORCH_OK)
                return orch_seterr(err, ORCH_EINVAL,
                                   "report: '%s' is not a sweep id (see 'orch sweeps')", st.value);
            sweep_id = v;
            break;
        }
        case OPT_OUTPUT:
            output = st.value;
            break;
        case ORCH_OPT_POSITIONAL:
            if (want_output) {
                output = st.value;
                want_output = 0;
            } else if (strcmp(st.value, "-o") == 0) {
                want_output = 1;
            } else if (n_ids == REPORT_MAX_IDS) {
                return orch_seterr(err, ORCH_EINVAL, "report: at most %d runs by id",
                                   REPORT_MAX_IDS);
            } else if (orch_parse_run_id("report", st.value, &ids[n_ids++], err) != ORCH_OK) {
                return err->code;
            }
            break;
        }
    }
    if (more < 0)
        return err->code;
    if (want_output || output == NULL || *output == '\0')
        return orch_seterr(err, ORCH_EINVAL,
                           "report: name the page to write with -o FILE.html (see 'orch report "
                           "--help')");
    if (sweep_id > 0 && (n_ids > 0 || pipeline != NULL || tag != NULL))
        return orch_seterr(err, ORCH_EINVAL,
                           "report: --sweep reports one sweep; it takes no run ids, --pipeline "
                           "or --tag");
    if (sweep_id == 0 && n_ids == 0 && pipeline == NULL && tag == NULL)
        return orch_seterr(err, ORCH_EINVAL,
                           "report: name runs (orch report 1 2 3), --pipeline P, --tag T or "
                           "--sweep ID");
    const char *db = orch_cli_db_path(globals);
    int rc = orch_store_reap_path(db, stderr, err);
    orch_store *store = NULL;
    if (rc == ORCH_OK)
        rc = orch_store_open(db, ORCH_STORE_READONLY, &store, err);
    orch_html_report report = {0};
    if (rc == ORCH_OK)
        rc = orch_store_read_html_report(store, ids, n_ids, pipeline, tag, sweep_id, &report, err);
    orch_store_close(store);
    for (int i = 0; rc == ORCH_OK && i < report.n_runs; i++)
        report.runs[i].pipeline_text = read_pipeline(report.runs[i].pipeline);
    if (rc == ORCH_OK)
        rc = write_atomically(&report, output, err);
    orch_html_report_free(&report);
    return rc;
}
