/*
 * cli.h - the orch command line: one function per subcommand.
 *
 * main.c parses the global options, picks a command from the table in
 * cli_table.c and calls it with the remaining arguments (argv[0] is the
 * command name). A command returns an orch_status and fills err; it prints
 * its results to stdout. Only main.c prints err and chooses the exit code.
 */
#ifndef ORCH_CLI_H
#define ORCH_CLI_H

#include <stdint.h>
#include <stdio.h>

#include "core/err.h"
#include "core/sink.h"

#define ORCH_MAX_SETS 64 /* --set options per command */

/* Options every command understands, resolved before the command runs. */
typedef struct orch_cli_globals {
    const char *db_path; /* --db, else $ORCH_DB, else ./orch.db */
    int threads;         /* --threads, else $ORCH_THREADS, else 0 = library default */
} orch_cli_globals;

typedef int (*orch_cmd_fn)(int argc, char **argv, orch_cli_globals *globals, orch_err *err);

typedef struct orch_cmd {
    const char *name;
    orch_cmd_fn run;
    const char *summary; /* one line for `orch help` */
    const char *usage;   /* full text for `orch CMD --help` */
} orch_cmd;

/* The command table, terminated by an entry with name == NULL. */
extern const orch_cmd orch_commands[];

const orch_cmd *orch_cmd_find(const char *name);

/* Prints `orch help` (the command list) to out. */
void orch_cli_print_help(FILE *out);

/* Subcommands (cmd_*.c). */
int orch_cmd_plan(int argc, char **argv, orch_cli_globals *globals, orch_err *err);
int orch_cmd_run(int argc, char **argv, orch_cli_globals *globals, orch_err *err);
int orch_cmd_runs(int argc, char **argv, orch_cli_globals *globals, orch_err *err);
int orch_cmd_show(int argc, char **argv, orch_cli_globals *globals, orch_err *err);
int orch_cmd_query(int argc, char **argv, orch_cli_globals *globals, orch_err *err);
int orch_cmd_sweep(int argc, char **argv, orch_cli_globals *globals, orch_err *err);
int orch_cmd_resume(int argc, char **argv, orch_cli_globals *globals, orch_err *err);
int orch_cmd_rm(int argc, char **argv, orch_cli_globals *globals, orch_err *err);
int orch_cmd_compare(int argc, char **argv, orch_cli_globals *globals, orch_err *err);
int orch_cmd_sweeps(int argc, char **argv, orch_cli_globals *globals, orch_err *err);
int orch_cmd_export_adapter(int argc, char **argv, orch_cli_globals *globals, orch_err *err);
int orch_cmd_predict(int argc, char **argv, orch_cli_globals *globals, orch_err *err);
int orch_cmd_merge(int argc, char **argv, orch_cli_globals *globals, orch_err *err);
int orch_cmd_shards(int argc, char **argv, orch_cli_globals *globals, orch_err *err);
int orch_cmd_report(int argc, char **argv, orch_cli_globals *globals, orch_err *err);
/* bundles (core/cmd_bundle.c, docs/bundles.md) */
int orch_cmd_export(int argc, char **argv, orch_cli_globals *globals, orch_err *err);
int orch_cmd_import(int argc, char **argv, orch_cli_globals *globals, orch_err *err);
int orch_cmd_replay(int argc, char **argv, orch_cli_globals *globals, orch_err *err);
int orch_cmd_help(int argc, char **argv, orch_cli_globals *globals, orch_err *err);

/* ------------------------------------------------------ argument parsing */

/* One option of a command. has_arg: 0 flag, 1 takes a value. */
typedef struct orch_opt {
    const char *name; /* long name without dashes, e.g. "json" */
    int has_arg;
    int id; /* returned by orch_opt_next */
} orch_opt;

typedef struct orch_opt_state {
    int argc;
    char **argv;
    int index;         /* next argv element to look at */
    const char *value; /* the option's value, for has_arg options */
    const char *cmd;   /* command name, for messages and its --help */
} orch_opt_state;

enum { ORCH_OPT_END = -1, ORCH_OPT_POSITIONAL = -2, ORCH_OPT_ERROR = -3 };

/* Walks argv[1..]: returns an option's id (value in st->value), or
 * ORCH_OPT_POSITIONAL with st->value set to a positional argument, or
 * ORCH_OPT_END, or ORCH_OPT_ERROR with err filled (unknown option, missing
 * value). Accepts "--name value", "--name=value", and "--" to end options.
 * The options --db, --threads and --help are handled here for every
 * command: --db/--threads update globals, --help returns id ORCH_OPT_HELP. */
enum { ORCH_OPT_HELP = 1000 };
int orch_opt_next(orch_opt_state *st, const orch_opt *opts, orch_cli_globals *globals,
                  orch_err *err);

/* A command's option loop, without the parts every command shares:
 *
 *     int id, more;
 *     while ((more = orch_opt_each(&st, opts, globals, &id, err)) > 0) {
 *         switch (id) { ...the command's options and ORCH_OPT_POSITIONAL... }
 *     }
 *     if (more < 0)
 *         return err->code;
 *
 * Returns 1 with *id an option's id or ORCH_OPT_POSITIONAL (see
 * orch_opt_next); 0 at the end of the arguments; -1 when the command must
 * return err->code at once: an error (err filled), or --help, answered here
 * with st->cmd's usage on stdout (err cleared: ORCH_OK). */
int orch_opt_each(orch_opt_state *st, const orch_opt *opts, orch_cli_globals *globals, int *id,
                  orch_err *err);

/* A --set of `orch plan` or `orch run`: appends st->value to sets, which
 * holds *n_sets of at most ORCH_MAX_SETS. */
int orch_opt_add_set(const orch_opt_state *st, const char **sets, int *n_sets, orch_err *err);

/* The pipeline file of `orch plan` or `orch run`, a positional argument:
 * keeps st->value in *path, refusing a second one. */
int orch_opt_pipeline_path(const orch_opt_state *st, const char **path, orch_err *err);

/* Prints the usage of cmd to stdout (for --help). */
void orch_cli_print_usage(const orch_cmd *cmd);

/* Parses a positive int for option name; fills err on failure. */
int orch_parse_int(const char *name, const char *text, long min, long max, long *out,
                   orch_err *err);

struct orch_pipeline;
struct orch_comm;

/* How `orch run` and `orch resume` drive a training. */
typedef struct orch_cli_train_options {
    const char *name;                /* --name, or NULL */
    int quiet;                       /* --quiet: no live line */
    int json;                        /* --json: one JSON object per step on stdout */
    int64_t resume_run_id;           /* > 0: continue this run */
    const char *resume_checkpoint;   /* its last checkpoint, or NULL */
    struct orch_comm *comm;          /* data parallelism: the ranks training the run; NULL: one.
                                        Only rank 0 opens the store and prints. */
    int failed;                      /* out: the run started and ended `failed` (or never
                                        started on a rank > 0) */
    const orch_source_file *sources; /* the pipeline files to record (borrowed), or NULL */
    int n_sources;
} orch_cli_train_options;

/* ------------------------------------------- data parallelism (cli_dp.c) */

/* How this process takes part in a run under mpirun or srun. */
typedef struct orch_cli_dp {
    int mpi;                /* started by a launcher: MPI is initialized */
    int rank, size;         /* in MPI_COMM_WORLD; 0 and 1 without MPI */
    struct orch_comm *comm; /* the world when the run is data-parallel (size > 1), else NULL */
} orch_cli_dp;

/* Under mpirun/srun without --threads, ORCH_THREADS or OMP_NUM_THREADS:
 * the cores this rank may use, shared with the other ranks of its node
 * unless the launcher bound each rank to its own. */
void orch_cli_threads_per_rank(orch_cli_globals *globals);

/* Under a launcher (orch_mpi_launched): threads per rank, then MPI. Call
 * before orch_cli_apply_threads. */
int orch_cli_dp_init(orch_cli_globals *globals, orch_cli_dp *dp, orch_err *err);

/* `orch run`: the data-parallel degree (--ranks when ranks_opt > 0, else
 * p->parallel.data) must equal the ranks the launcher started, and be 1
 * without one; else ORCH_EINVAL, one line naming both and the fix. Sets
 * p->parallel.data (recorded with the run) and dp->comm. */
int orch_cli_dp_check(orch_cli_dp *dp, struct orch_pipeline *p, int ranks_opt, orch_err *err);

/* `orch resume`: the run continues on however many ranks were started. */
int orch_cli_dp_resume(orch_cli_dp *dp, struct orch_pipeline *p);

/* The command's end under MPI: finalizes, and returns rc on rank 0; a rank
 * > 0 returns ORCH_OK for an error every rank shares (rank 0 reports it and
 * gives the job its exit code), and exits at once with its code when its
 * own run failed (run_failed), after printing "orch: rank R: " and err's
 * message (the launcher then ends the job). A failed
 * run on rank 0 aborts the job, whose other ranks may wait in a
 * collective. Without MPI returns rc. */
int orch_cli_dp_end(orch_cli_dp *dp, int rc, int run_failed, const orch_err *err);

struct orch_pipeline;

/* Trains a validated pipeline into the store (--db): reaps runs whose
 * process is gone, records through the SQLite sink, turns SIGINT/SIGTERM
 * into an `interrupted` end, prints the summary. A diverged or interrupted
 * run returns ORCH_ERUNTIME with a message saying so. */
int orch_cli_train(const struct orch_pipeline *pipeline, orch_cli_globals *globals,
                   orch_cli_train_options *opt, orch_err *err);

/* `orch run --from RUN`, `orch plan --from RUN`: run RUN's recorded
 * configuration (runs.config_json) of the store as *out, and its pipeline
 * files into *sources when not NULL (store/bundle.h; the caller frees them
 * with orch_stored_sources_free), so the new run records them too
 * (core/cmd_bundle.c).
 * ORCH_EINVAL for an unknown run or a configuration this orch cannot read. */
struct orch_pipeline;
struct orch_stored_sources;
int orch_cli_load_from_run(orch_cli_globals *globals, const char *run_text,
                           struct orch_pipeline *out, struct orch_stored_sources *sources,
                           orch_err *err);

/* Parses a run id (a positive integer) given to command cmd; the message
 * on failure names the command and points at `orch runs`. */
int orch_parse_run_id(const char *cmd, const char *text, int64_t *out, orch_err *err);

/* A run and its newest checkpoint, for the commands that read a trained
 * run (export-adapter, predict). */
typedef struct orch_cli_run_checkpoint {
    int64_t run_id;                 /* in: the run */
    struct orch_pipeline *pipeline; /* in: caller-owned; out: the run's resolved config */
    char name[128];                 /* the run's name */
    char checkpoint[4096];          /* the newest checkpoint's path */
    char sha256[65];                /* its recorded sha256 */
    int64_t step;                   /* its step */
} orch_cli_run_checkpoint;

/* Fills run from the store at db (opened read-only): the run's config and
 * its newest checkpoint, whose weights file must verify (size and sha256;
 * the optimizer state beside it is not needed). ORCH_EINVAL
 * with one line for an unknown run ("no run 9 in PATH"), a run without a
 * checkpoint ("run 3 has no checkpoint; run with
 * schedule.checkpoint_every or to its end") or one that does not verify. */
int orch_cli_load_run_checkpoint(const char *db, orch_cli_run_checkpoint *run, orch_err *err);

/* Starts the kernels (BLIS on the right sub-configuration: a refused
 * BLIS_ARCH_TYPE is ORCH_EINVAL) and applies --threads, else $ORCH_THREADS
 * (one place for the thread count). Commands that compute call it after
 * parsing options. */
int orch_cli_apply_threads(orch_cli_globals *globals, orch_err *err);

/* Prints the kernels a run would use: BLIS version, sub-configuration and
 * why, CPU and features, thread count (cli_kernels.c); each line starts
 * with prefix ("-- " in a plan, where they are Lua comments). */
void orch_cli_print_kernels(FILE *out, const char *prefix);

/* The store path: --db, else $ORCH_DB, else "orch.db". */
const char *orch_cli_db_path(const orch_cli_globals *globals);

#endif
