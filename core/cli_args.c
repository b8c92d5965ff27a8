/* cli_args.c - option parsing shared by every subcommand; see cli.h. */
#include "core/cli.h"

#include "kernels/kernels.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int orch_parse_int(const char *name, const char *text, long min, long max, long *out, orch_err *err)
{
    char *end = NULL;
    errno = 0;
    long value = strtol(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0')
        return orch_seterr(err, ORCH_EINVAL, "--%s: '%s' is not an integer", name, text);
    if (value < min || value > max)
        return orch_seterr(err, ORCH_EINVAL, "--%s: %ld is out of range [%ld, %ld]", name, value,
                           min, max);
    *out = value;
    return ORCH_OK;
}

int orch_parse_run_id(const char *cmd, const char *text, int64_t *out, orch_err *err)
{
    long id = 0;
    if (orch_parse_int("run", text, 1, 0x7fffffffL, &id, err) != ORCH_OK)
        return orch_seterr(err, ORCH_EINVAL, "%s: '%s' is not a run id (see 'orch runs')", cmd,
                           text);
    *out = id;
    return ORCH_OK;
}

/* Splits "--name=value" or "--name" into the name (copied to buf) and value. */
static const char *split_long(const char *arg, char *buf, size_t n, const char **inline_value)
{
    const char *name = arg + 2;
    const char *eq = strchr(name, '=');
    size_t len = eq ? (size_t)(eq - name) : strlen(name);
    if (len >= n)
        len = n - 1;
    memcpy(buf, name, len);
    buf[len] = '\0';
    *inline_value = eq ? eq + 1 : NULL;
    return buf;
}

int orch_opt_next(orch_opt_state *st, const orch_opt *opts, orch_cli_globals *globals,
                  orch_err *err)
{
    static const orch_opt common[] = {{"db", 1, -10}, {"threads", 1, -11}, {"help", 0, -12}};
    for (;;) {
        if (st->index >= st->argc)
            return ORCH_OPT_END;
        const char *arg = st->argv[st->index++];
        if (strcmp(arg, "--") == 0) {
            /* everything after is positional: mark by consuming the rest one by one */
            if (st->index >= st->argc)
                return ORCH_OPT_END;
            st->value = st->argv[st->index++];
            return ORCH_OPT_POSITIONAL;
        }
        if (strcmp(arg, "-h") == 0)
            return ORCH_OPT_HELP;
        if (strncmp(arg, "--", 2) != 0 || arg[2] == '\0') {
            st->value = arg;
            return ORCH_OPT_POSITIONAL;
        }
        char name[64];
        const char *inline_value = NULL;
        split_long(arg, name, sizeof name, &inline_value);
        const orch_opt *found = NULL;
        for (size_t i = 0; opts != NULL && opts[i].name != NULL; i++)
            if (strcmp(opts[i].name, name) == 0)
                found = &opts[i];
        for (size_t i = 0; found == NULL && i < sizeof common / sizeof common[0]; i++)
            if (strcmp(common[i].name, name) == 0)
                found = &common[i];
        if (found == NULL)
            return orch_seterr(err, ORCH_EINVAL, "%s: unknown option '--%s' (see 'orch %s --help')",
                               st->cmd, name, st->cmd),
                   ORCH_OPT_ERROR;
        st->value = NULL;
        if (found->has_arg) {
            if (inline_value != NULL) {
                st->value = inline_value;
            } else if (st->index < st->argc) {
                st->value = st->argv[st->index++];
            } else {
                orch_seterr(err, ORCH_EINVAL, "%s: option '--%s' needs a value", st->cmd, name);
                return ORCH_OPT_ERROR;
            }
        } else if (inline_value != NULL) {
            orch_seterr(err, ORCH_EINVAL, "%s: option '--%s' takes no value", st->cmd, name);
            return ORCH_OPT_ERROR;
        }
        switch (found->id) {
        case -10:
            globals->db_path = st->value;
            continue;
        case -11: {
            long threads = 0;
            if (orch_parse_int("threads", st->value, 1, 1024, &threads, err) != ORCH_OK)
                return ORCH_OPT_ERROR;
            globals->threads = (int)threads;
            continue;
        }
        case -12:
            return ORCH_OPT_HELP;
        default:
            return found->id;
        }
    }
}

int orch_opt_each(orch_opt_state *st, const orch_opt *opts, orch_cli_globals *globals, int *id,
                  orch_err *err)
{
    *id = orch_opt_next(st, opts, globals, err);
    switch (*id) {
    case ORCH_OPT_END:
        return 0;
    case ORCH_OPT_ERROR:
        return -1;
    case ORCH_OPT_HELP:
        orch_cli_print_usage(orch_cmd_find(st->cmd));
        orch_err_clear(err);
        return -1;
    default:
        return 1;
    }
}

int orch_opt_add_set(const orch_opt_state *st, const char **sets, int *n_sets, orch_err *err)
{
    if (*n_sets == ORCH_MAX_SETS)
        return orch_seterr(err, ORCH_EINVAL, "%s: at most %d --set options", st->cmd,
                           ORCH_MAX_SETS);
    sets[(*n_sets)++] = st->value;
    return ORCH_OK;
}

int orch_opt_pipeline_path(const orch_opt_state *st, const char **path, orch_err *err)
{
    if (*path != NULL)
        return orch_seterr(err, ORCH_EINVAL, "%s: one pipeline file at a time (got '%s' and '%s')",
                           st->cmd, *path, st->value);
    *path = st->value;
    return ORCH_OK;
}

int orch_cli_apply_threads(orch_cli_globals *globals, orch_err *err)
{
    if (orch_blas_init(err) != ORCH_OK)
        return err->code;
    if (globals->threads == 0) {
        const char *env = getenv("ORCH_THREADS");
        if (env != NULL && env[0] != '\0') {
            long threads = 0;
            if (orch_parse_int("threads", env, 1, 1024, &threads, err) != ORCH_OK)
                return orch_seterr(err, ORCH_EINVAL,
                                   "ORCH_THREADS: '%s' is not a thread count in [1, 1024]", env);
            globals->threads = (int)threads;
        }
    }
    if (globals->threads > 0)
        orch_threads_set(globals->threads);
    return ORCH_OK;
}

const char *orch_cli_db_path(const orch_cli_globals *globals)
{
    if (globals->db_path != NULL && globals->db_path[0] != '\0')
        return globals->db_path;
    const char *env = getenv("ORCH_DB");
    if (env != NULL && env[0] != '\0')
        return env;
    return "orch.db";
}
