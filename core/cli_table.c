/* cli_table.c - the list of orch commands and their help texts. */
#include "core/cli.h"

#include <string.h>

const orch_cmd orch_commands[] = {
    {"run", orch_cmd_run, "run a pipeline and record it in the store",
     "usage: orch run FILE.lua [--set key.sub=value]... [--name NAME] [--quiet | --json]\n"
     "                [--ranks N] [--db PATH] [--threads N]\n"
     "       orch run --from RUN [--name NAME] [--quiet | --json] [--db PATH]\n"
     "\n"
     "Validates the pipeline, then trains it and records every step, metric and\n"
     "NaN event in the store. Steps are numbered from 0, as in the store and\n"
     "--json; the progress line shows that number and the count done, e.g.\n"
     "\"step 41 (42/100 done)\".\n"
     "\n"
     "  --set key.sub=value  override a pipeline field (same validation as the file)\n"
     "  --name NAME          the run's name (default: the pipeline's name)\n"
     "  --quiet              no live progress line (it is shown only on a terminal)\n"
     "  --json               one JSON object per step on stdout, for other tools\n"
     "  --from RUN           a new run of run RUN's recorded configuration (the store\n"
     "                       alone: its pipeline file may have changed or be gone)\n"
     "  --ranks N            train over N MPI ranks (instead of parallel.data): under\n"
     "                       mpirun -np N or srun -n N, each rank takes its share of\n"
     "                       every batch; rank 0 records the run\n"
     "  --db PATH            the store (default: $ORCH_DB, else ./orch.db)\n"
     "  --threads N          threads for the kernels (default: $ORCH_THREADS, else the free "
     "cores)\n"
     "\n"
     "Checkpoints (schedule.checkpoint_every, and at the end) go to PATH.runs/RUN/.\n"
     "Ctrl-C or SIGTERM ends the run after its current step, recorded `interrupted`.\n"
     "\n"
     "Exit codes: 0 finished; 1 runtime failure, diverged or interrupted run;\n"
     "2 invalid input.\n"},
    {"sweep", orch_cmd_sweep, "run a sweep (many runs of one Lua file) in one process or under MPI",
     "usage: orch sweep FILE.lua [--set key.sub=value]... [--quiet] [--db PATH] [--threads N]\n"
     "       mpirun -np N orch sweep FILE.lua     (or srun orch sweep FILE.lua)\n"
     "\n"
     "Expands the sweep (a file returning sweep { ... }, docs/pipelines.md), checks\n"
     "every run and the DAG of runs, records the sweep and its runs (`queued`) in\n"
     "the store and runs them: dependencies first (output_of, after, the shared\n"
     "detach feature stages), the longest first. A run whose dependency failed or\n"
     "diverged is recorded `skipped`; a run that fails is recorded `failed` and the\n"
     "sweep goes on.\n"
     "\n"
     "Alone it runs one run at a time. Under mpirun or srun, rank 0 coordinates and\n"
     "trains too, every other rank trains; only rank 0 opens the store (the\n"
     "others stream their records to it), checkpoints go to PATH.runs/RUN/ on\n"
     "every rank (a shared file system). --threads and $ORCH_THREADS apply per rank;\n"
     "without them a rank takes the cores its launcher bound it to, else its share\n"
     "of the node's cores.\n"
     "\n"
     "Running the same command again continues the sweep: finished and diverged\n"
     "runs are kept, interrupted ones resume from their newest checkpoint, a run\n"
     "that killed its worker twice is quarantined (`failed`). Ctrl-C, SIGTERM (srun\n"
     "at a job's time limit) or SIGUSR1 (mpirun passes it on to every rank; a\n"
     "SIGTERM to mpirun itself kills the ranks) ends the running runs after their\n"
     "step, `interrupted`.\n"
     "\n"
     "What is to do, then one line per run as it ends, on stderr; a summary on\n"
     "stdout.\n"
     "\n"
     "  --set key.sub=value  override a field of every run (a key the grid, random\n"
     "                       or seeds also set is refused as ambiguous)\n"
     "  --quiet              no line per run, only the summary\n"
     "  --db PATH            the store (default: $ORCH_DB, else ./orch.db)\n"
     "  --threads N          kernel threads per rank (default: $ORCH_THREADS, else\n"
     "                       as above)\n"
     "\n"
     "Exit codes: 0 every run finished or diverged; 1 a run failed, was skipped or\n"
     "is left to do (interrupted); 2 invalid input (nothing is recorded).\n"},
    {"resume", orch_cmd_resume, "continue an interrupted run from its last checkpoint",
     "usage: orch resume RUN [--from-step N] [--quiet | --json] [--db PATH] [--threads N]\n"
     "\n"
     "Continues run RUN (interrupted, or failed) from its last checkpoint with the\n"
     "run's own resolved configuration, as recorded in the store. Steps recorded\n"
     "after that checkpoint are recomputed. With the same thread count the losses\n"
     "are bit for bit those of an uninterrupted run.\n"
     "\n"
     "A checkpoint must be a regular file of its recorded size and sha256; when the\n"
     "newest is not, the newest one that is is used (each one passed over is named\n"
     "on stderr, with the reason). Temporary files of a checkpoint write that was\n"
     "killed are removed from the run's folder.\n"
     "\n"
     "  --from-step N   resume from the checkpoint at step N instead\n"},
    {"rm", orch_cmd_rm, "delete runs: their rows, run folders and unused cached features",
     "usage: orch rm RUN... [--dry-run] [--db PATH]\n"
     "\n"
     "Deletes each run RUN from the store (its row and every step, metric, NaN\n"
     "event, statistic and artifact of it), then its folder PATH.runs/RUN/ with\n"
     "its checkpoints, and the detach feature cache entries in PATH.features/\n"
     "that it used and no remaining run uses (entries no run recorded using,\n"
     "made before orch recorded it, are kept). Run ids are never reused. A run\n"
     "that is running is refused unless its process is gone.\n"
     "\n"
     "  --dry-run   print what would be removed, remove nothing\n"
     "\n"
     "Exit codes: 0 removed; 2 an unknown or running run (nothing is removed).\n"},
    {"compare", orch_cmd_compare, "compare runs side by side, or the groups of a sweep",
     "usage: orch compare RUN... | --pipeline FILE | --tag TAG  [--csv | --json] [--db PATH]\n"
     "       orch compare --sweep ID [--csv | --json] [--db PATH]\n"
     "\n"
     "One row per run: strategy, precision, lr, seed, status, steps, final and best\n"
     "loss, max grad_norm, first NaN (step, phase, stage) and steps/s.\n"
     "\n"
     "With --sweep, one row per group of the sweep's runs that differ only in their\n"
     "seed, best first: n, finished, mean and sample standard deviation of the\n"
     "final loss (finished runs), best and worst seed with their losses, NaN events,\n"
     "and how many runs diverged, failed or were skipped.\n"
     "\n"
     "  --pipeline FILE   every run of this pipeline file\n"
     "  --tag TAG         every run whose pipeline has this tag\n"
     "  --sweep ID        the groups of sweep ID (see 'orch sweeps')\n"
     "  --csv, --json     machine-readable output\n"},
    {"report", orch_cmd_report, "write one HTML page with plots of runs or a sweep",
     "usage: orch report RUN... | --pipeline FILE | --tag TAG  -o FILE.html [--db PATH]\n"
     "       orch report --sweep ID -o FILE.html [--db PATH]\n"
     "\n"
     "Writes one self-contained HTML page (inline SVG, no network access): loss and\n"
     "grad_norm (log scale) per run on shared axes, one colour per strategy and a\n"
     "line style per seed, NaN/Inf steps marked at the top; evaluation metrics\n"
     "(eval/*) when recorded; the compare table with the first NaN's provenance;\n"
     "for runs with NaN events, a heat map of per-stage act_absmax around the\n"
     "first event; each run's pipeline and configuration. With --sweep, also each\n"
     "group of seeds' mean and spread and the ranked groups (orch compare --sweep).\n"
     "Runs are selected as for 'orch compare'. The page is written to a temporary\n"
     "file and renamed, so FILE.html is never half written. docs/report.md.\n"
     "\n"
     "  -o, --output FILE  the page to write (replaced when it exists)\n"
     "  --pipeline FILE    every run of this pipeline file\n"
     "  --tag TAG          every run whose pipeline has this tag\n"
     "  --sweep ID         every run of sweep ID (see 'orch sweeps')\n"
     "\n"
     "Exit codes: 0 written; 1 runtime failure; 2 a bad selection or no -o.\n"},
    {"sweeps", orch_cmd_sweeps, "list the sweeps in the store, with their runs by status",
     "usage: orch sweeps [--csv | --json] [--db PATH]\n"
     "\n"
     "One line per sweep: id, name, status (running, finished, interrupted), its\n"
     "runs and how many are queued, running, finished, diverged, failed, skipped\n"
     "or interrupted, and when it was created. 'orch show sweep ID' shows one;\n"
     "'orch compare --sweep ID' compares its groups of seeds.\n"
     "\n"
     "  --csv, --json     machine-readable output (every column, with file and\n"
     "                    finished_at)\n"},
    {"merge", orch_cmd_merge, "fold other stores (e.g. of separate jobs) into this one",
     "usage: orch merge OTHER.db... [--db PATH]\n"
     "\n"
     "Copies every run of each OTHER store that this store (--db, created if\n"
     "missing) does not have yet, with its steps, metrics, NaN events, statistics\n"
     "and checkpoints, and its sweeps: one transaction per OTHER. Runs are matched\n"
     "by their uuid, so merging the same store twice adds nothing; sweeps by name\n"
     "and hash, so parts of one sweep run by separate jobs end up in one sweep.\n"
     "Merged runs get new ids here; their checkpoints stay where they are and the\n"
     "recorded paths still open them. OTHER is only read; an older one is\n"
     "migrated in a temporary copy.\n"
     "\n"
     "Exit codes: 0 merged; 2 an OTHER that is missing, not an orch store, of a\n"
     "newer schema, or this store itself (checked before anything is merged).\n"},
    {"export", orch_cmd_export, "write runs into one bundle file to share them",
     "usage: orch export RUN... | --sweep ID | --tag T -o FILE [--db PATH]\n"
     "\n"
     "Writes the runs into one archive, its format from FILE's suffix: .tar,\n"
     ".tar.gz, .tar.zst, .tar.xz or .zip. For each run: the pipeline files exactly\n"
     "as they were run, the resolved configuration, its rows (run, steps, metrics,\n"
     "NaN events, statistics, artifacts, ...) as CSV, and its checkpoints; plus\n"
     "MANIFEST.json with every member's size and sha256. Exporting the same runs\n"
     "twice gives the same bytes. See docs/bundles.md.\n"
     "\n"
     "  -o, --output FILE  the bundle to write (replaced when it exists)\n"
     "  --sweep ID         every run of sweep ID\n"
     "  --tag T            every run whose pipeline has tag T\n"
     "\n"
     "Exit codes: 0 written; 2 an unknown run, sweep or suffix, or a checkpoint that\n"
     "no longer matches its recorded sha256.\n"},
    {"import", orch_cmd_import, "add the runs of a bundle to this store",
     "usage: orch import FILE... [--db PATH]\n"
     "\n"
     "Adds every run of the bundle that this store does not have (by run uuid), in\n"
     "one transaction; its checkpoints land in PATH.runs/RUN/. Importing a bundle\n"
     "twice adds nothing. A bundle that is truncated or corrupt, of an unknown\n"
     "format, with a member whose sha256 does not match, a malformed CSV, or a\n"
     "member that is a link, a device, a FIFO, an absolute path or leaves the\n"
     "bundle ('..'), or too big, is refused with one line and nothing imported.\n"
     "\n"
     "Exit codes: 0 imported; 2 a bundle refused.\n"},
    {"replay", orch_cmd_replay, "run a bundled or stored run again and compare its losses",
     "usage: orch replay FILE|RUN [--tolerance X] [--db PATH] [--threads N]\n"
     "\n"
     "Runs every run of the bundle FILE (or run RUN of the store) again from its\n"
     "recorded configuration, records nothing, and compares the new losses with\n"
     "the recorded ones: bit for bit when the thread count is the one it ran on,\n"
     "else the largest relative difference, which must be at most X (default\n"
     "1e-4).\n"
     "\n"
     "Exit codes: 0 every run matches; 1 a run differs; 2 invalid input.\n"},
    {"shards", orch_cmd_shards, "write tar shards (WebDataset style) from images or an .npy set",
     "usage: orch shards SRC -o 'out/train-%03d.tar' [--per-shard N] [--labels FILE.csv]\n"
     "                   [--force]\n"
     "\n"
     "Writes the samples of SRC into tar shards for data = shards { ... }\n"
     "(docs/data.md). SRC is one of:\n"
     "  a folder with one sub-folder per class   cat/001.jpg, dog/002.png, ...\n"
     "  a folder and --labels FILE.csv           rows `file,label` after a header row\n"
     "  a CSV file                                the same, files relative to the CSV\n"
     "  a folder with pixel_values.npy, image_grid_thw.npy and labels.npy\n"
     "Images are listed as images { dir, labels } lists them (docs/data.md: CSV\n"
     "rows in order, or classes sorted and their files sorted) and keyed 000000,\n"
     "000001, ...: KEY.jpg or KEY.png (the file's bytes, not decoded) and KEY.cls.\n"
     "Integer labels are class ids; names get ids in sorted order (printed).\n"
     "An .npy set gives KEY.pixel_values.npy, KEY.image_grid_thw.npy and KEY.cls\n"
     "in its order.\n"
     "\n"
     "  -o, --out PATTERN  shard names with one %d-style placeholder (shard 0, 1, ...);\n"
     "                     without one, a single shard. The suffix picks compression:\n"
     "                     .tar, .tar.gz (.tgz), .tar.zst, .tar.xz\n"
     "  --per-shard N      samples per shard (default 1000)\n"
     "  --labels FILE.csv  labels of an image folder\n"
     "  --force            overwrite existing shards\n"
     "\n"
     "The same input gives the same bytes (fixed member order, times and owners).\n"
     "Each shard is written under a temporary name and renamed when complete.\n"
     "\n"
     "Exit codes: 0 written; 1 a write failed; 2 invalid input (SRC, pattern,\n"
     "existing outputs).\n"},
    {"plan", orch_cmd_plan, "validate a pipeline or sweep and print it resolved, without running",
     "usage: orch plan FILE.lua [--set key.sub=value]... [--json | --dot]\n"
     "       orch plan --from RUN [--json | --dot] [--db PATH]   (run RUN's recorded config)\n"
     "\n"
     "Loads the pipeline in the sandbox, applies --set overrides, validates every\n"
     "field and the .npy data files (pixel_values by its header; labels against\n"
     "the head) and prints the resolved pipeline. Nothing runs, nothing is written.\n"
     "A qwen2.5-vl-* preset without model.weights gets a warning on stderr.\n"
     "\n"
     "  --set key.sub=value  override a pipeline field, e.g. --set optimizer.lr=3e-4\n"
     "  --json               print the resolved pipeline as JSON, with its config hash\n"
     "  --dot                print the stage graph in Graphviz DOT (trainable stages\n"
     "                       filled, stages without backward grey, the detach cut dashed)\n"
     "\n"
     "A sweep file (one that returns sweep { ... }) is expanded and every run\n"
     "validated; plan lists the runs in scheduling order (dependencies first) with\n"
     "their overrides, config hash and what each waits for, then the feature stages\n"
     "(one tower forward shared by detach runs) and the runs they feed. --set applies\n"
     "to every run. A cycle or a dependency on an unknown run is refused (exit 2).\n"
     "  --json               the sweep as one JSON object (runs, stages)\n"
     "  --dot                the sweep's DAG of runs in Graphviz DOT (runs boxes,\n"
     "                       feature stages ellipses, edges output_of/after/features)\n"},
    {"runs", orch_cmd_runs, "list the runs in the store",
     "usage: orch runs [--pipeline FILE] [--strategy S] [--status S] [--csv|--json] [--db PATH]\n"
     "\n"
     "Lists runs with their status, steps, final loss, max grad_norm, first NaN,\n"
     "and the host (and, for a sweep's run, the rank) that runs or ran it.\n"
     "\n"
     "  --pipeline FILE   only runs of this pipeline file\n"
     "  --strategy S      only runs of strategy S (surgery, detach, lora, full)\n"
     "  --status S        only runs with status S (queued, running, finished,\n"
     "                    diverged, failed, interrupted, skipped)\n"
     "  --csv, --json     machine-readable output\n"},
    {"show", orch_cmd_show, "show one run: config, summary, NaN events; or one sweep",
     "usage: orch show RUN [--files] [--db PATH]\n"
     "       orch show sweep ID [--db PATH]\n"
     "\n"
     "Prints a run's fields, resolved config, summary, data and NaN events (the\n"
     "first one with its provenance). RUN is a run id as listed by 'orch runs'.\n"
     "The data section gives the data hash's files per role (train, eval), the\n"
     "class names, and the files with their sha256 when there are few.\n"
     "  --files           list every data file\n"
     "\n"
     "'orch show sweep ID' prints a sweep's fields (as listed by 'orch sweeps') and\n"
     "a table of its runs: point, run id, status, rank, host, attempts, steps,\n"
     "final loss and error.\n"},
    {"query", orch_cmd_query, "run a read-only SQL query on the store",
     "usage: orch query \"SQL\" [--csv|--json] [--db PATH]\n"
     "\n"
     "Runs one SQL statement on the store opened read-only. Writes, ATTACH and\n"
     "PRAGMA assignments are refused (exit 2). Tables: runs, steps, metrics,\n"
     "nan_events, frozen_changes, stage_stats, artifacts, run_features, sweeps,\n"
     "sweep_runs, run_inputs, run_classes, run_sources, source_files; views:\n"
     "run_summary, run_checkpoints.\n"
     "See docs/store.md.\n"
     "\n"
     "  --csv    RFC 4180 CSV with a header row\n"
     "  --json   a JSON array of objects\n"
     "\n"
     "example: orch query \"SELECT strategy, status, final_loss FROM run_summary\" --csv\n"},
    {"export-adapter", orch_cmd_export_adapter,
     "write a run's adapter and head for PEFT / transformers / PyTorch",
     "usage: orch export-adapter RUN -o DIR [--force] [--db PATH]\n"
     "\n"
     "Writes the trained tensors of run RUN's last checkpoint into the folder DIR,\n"
     "float32, under the names PEFT and transformers use (docs/adapters.md):\n"
     "  lora     adapter_config.json + adapter_model.safetensors (PEFT's format:\n"
     "           PeftModel.from_pretrained(base_model, DIR) loads them)\n"
     "  surgery  replacement.safetensors: the replaced Linear, Hugging Face names\n"
     "  detach   adapter.safetensors: the adapter as nn.Linear's (or the MLP\n"
     "           adapter as nn.Sequential's) state_dict\n"
     "and for each head.safetensors (the head as nn.Linear's state_dict: it is no\n"
     "module of the base model) and export.json (run, step, checkpoint sha256,\n"
     "files and shapes). DIR is written whole or not at all (a temporary folder\n"
     "beside it, renamed).\n"
     "\n"
     "  -o, --output DIR  the folder to write (created; refused when it exists\n"
     "                    and is not empty)\n"
     "  --force           replace a non-empty DIR (its old content is removed)\n"
     "  --db PATH         the store (default: $ORCH_DB, else ./orch.db)\n"
     "\n"
     "Exit codes: 0 written; 2 an unknown run, a run without a checkpoint or of\n"
     "strategy full, a non-empty DIR; 1 a write that failed (DIR is untouched).\n"},
    {"predict", orch_cmd_predict, "write a trained run's logits on its data to a .npy",
     "usage: orch predict RUN -o LOGITS.npy [--db PATH] [--threads N]\n"
     "\n"
     "Runs every image of run RUN's data set (its recorded config; the images in\n"
     "their stored order, in batches of schedule.batch_size) forward once with the\n"
     "trainable tensors of its last checkpoint, in evaluation mode (no LoRA\n"
     "dropout), and writes the head's outputs as a float32 .npy of shape (images,\n"
     "outputs). For checking an exported adapter against orch\n"
     "(scripts/check_adapter.py, docs/adapters.md).\n"
     "\n"
     "  -o, --output FILE  the .npy to write (replaced atomically)\n"
     "\n"
     "Exit codes: 0 written; 2 an unknown run or one without a checkpoint; 1 a\n"
     "runtime failure.\n"},
    {"help", orch_cmd_help, "show help for orch or for a command", "usage: orch help [COMMAND]\n"},
    {NULL, NULL, NULL, NULL},
};

const orch_cmd *orch_cmd_find(const char *name)
{
    for (const orch_cmd *cmd = orch_commands; cmd->name != NULL; cmd++)
        if (strcmp(cmd->name, name) == 0)
            return cmd;
    return NULL;
}

void orch_cli_print_help(FILE *out)
{
    fprintf(out, "usage: orch [--db PATH] [--threads N] COMMAND [ARGS]\n"
                 "       orch --version | orch help [COMMAND] | orch COMMAND --help\n"
                 "\n"
                 "orch runs declarative training pipelines (Lua) over a Qwen2.5-VL vision\n"
                 "tower and records every run in SQLite.\n"
                 "\n"
                 "commands:\n");
    int width = 8;
    for (const orch_cmd *cmd = orch_commands; cmd->name != NULL; cmd++)
        if ((int)strlen(cmd->name) > width)
            width = (int)strlen(cmd->name);
    for (const orch_cmd *cmd = orch_commands; cmd->name != NULL; cmd++)
        fprintf(out, "  %-*s %s\n", width, cmd->name, cmd->summary);
    fprintf(out, "\n"
                 "The store is --db PATH, else $ORCH_DB, else ./orch.db.\n"
                 "Exit codes: 0 success, 1 runtime failure, 2 invalid input.\n");
}

void orch_cli_print_usage(const orch_cmd *cmd)
{
    fputs(cmd->usage, stdout);
}

int orch_cmd_help(int argc, char **argv, orch_cli_globals *globals, orch_err *err)
{
    (void)globals;
    if (argc < 2) {
        orch_cli_print_help(stdout);
        return ORCH_OK;
    }
    const orch_cmd *cmd = orch_cmd_find(argv[1]);
    if (cmd == NULL)
        return orch_seterr(err, ORCH_EINVAL, "help: '%s' is not an orch command", argv[1]);
    orch_cli_print_usage(cmd);
    return ORCH_OK;
}
