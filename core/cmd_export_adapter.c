/*
 * cmd_export_adapter.c - `orch export-adapter RUN -o DIR`: a run's trained
 * tensors from its last checkpoint, in files PEFT, transformers and plain
 * PyTorch load (docs/adapters.md says what each file holds and how to load
 * it).
 *
 *   lora     adapter_config.json + adapter_model.safetensors, as PEFT's
 *            save_pretrained writes them (keys
 *            "base_model.model.<module>.lora_A.weight", no adapter name,
 *            F32, metadata {"format": "pt"})
 *   surgery  replacement.safetensors: the replaced Linear under its Hugging
 *            Face names ("visual.merger.mlp.2.weight", ".bias")
 *   detach   adapter.safetensors: the adapter as the state_dict of
 *            nn.Linear ("weight", "bias") or of nn.Sequential(Linear, GELU,
 *            Linear) ("0.weight", ..., "2.bias")
 *
 * and, for every strategy, head.safetensors (the classifier or regression
 * head as the state_dict of nn.Linear: it is no module of the base model,
 * so it cannot be one of PEFT's modules_to_save) and export.json, orch's
 * description of the export (run, step, checkpoint sha256, files, shapes).
 *
 * The directory is written whole or not at all: into DIR.tmp-XXXXXX beside
 * DIR, then renamed over it (with --force, exchanged with the old one,
 * which is then removed).
 */
/* renameat2 and RENAME_EXCHANGE: the Makefile defines _GNU_SOURCE */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/checkpoint.h"
#include "core/cli.h"
#include "core/pipeline.h"
#include "core/pipeline_json.h"
#include "store/safetensors.h"
#include "store/store.h"

#define EXPORT_MAX_TENSORS (2 * ORCH_MAX_TARGETS + 8)

/* One tensor of an output file: its name in the checkpoint and in the file. */
typedef struct export_tensor {
    char src[ORCH_NAME_MAX + 32];
    char dst[ORCH_NAME_MAX + 64];
} export_tensor;

/* One output safetensors file. */
typedef struct export_file {
    const char *name; /* in DIR */
    int n;
    export_tensor tensors[EXPORT_MAX_TENSORS];
} export_file;

static void add_tensor(export_file *f, const char *src, const char *dst)
{
    ORCH_ASSERT(f->n < EXPORT_MAX_TENSORS);
    snprintf(f->tensors[f->n].src, sizeof f->tensors[f->n].src, "%s", src);
    snprintf(f->tensors[f->n].dst, sizeof f->tensors[f->n].dst, "%s", dst);
    f->n++;
}

/* The files of a strategy's export, the head's last: *n_files of files[3]. */
static void plan_files(const orch_strategy *s, export_file files[3], int *n_files)
{
    memset(files, 0, sizeof(export_file) * 3);
    export_file *main_file = &files[0];
    char src[ORCH_NAME_MAX + 32], dst[ORCH_NAME_MAX + 64];
    if (s->kind == ORCH_STRATEGY_LORA) {
        main_file->name = "adapter_model.safetensors";
        for (int t = 0; t < s->n_targets; t++)
            for (int k = 0; k < 2; k++) {
                const char *ab = k == 0 ? "lora_A" : "lora_B";
                /* PEFT saves "base_model.model." + the module's name in the base
                 * model, with the adapter name ("default") taken out */
                snprintf(src, sizeof src, "%s.%s.weight", s->targets[t], ab);
                snprintf(dst, sizeof dst, "base_model.model.%s.%s.weight", s->targets[t], ab);
                add_tensor(main_file, src, dst);
            }
    } else if (s->kind == ORCH_STRATEGY_SURGERY) {
        main_file->name = "replacement.safetensors";
        for (int k = 0; k < 2; k++) {
            snprintf(src, sizeof src, "%s.%s", s->replace, k == 0 ? "weight" : "bias");
            add_tensor(main_file, src, src);
        }
    } else {
        ORCH_ASSERT(s->kind == ORCH_STRATEGY_DETACH);
        main_file->name = "adapter.safetensors";
        if (s->adapter == ORCH_ADAPTER_MLP) {
            static const char *const mlp[] = {"0.weight", "0.bias", "2.weight", "2.bias"};
            for (int k = 0; k < 4; k++) {
                snprintf(src, sizeof src, "adapter.%s", mlp[k]);
                add_tensor(main_file, src, mlp[k]);
            }
        } else {
            add_tensor(main_file, "adapter.weight", "weight");
            add_tensor(main_file, "adapter.bias", "bias");
        }
    }
    files[1].name = "head.safetensors";
    add_tensor(&files[1], "head.weight", "weight");
    add_tensor(&files[1], "head.bias", "bias");
    *n_files = 2;
}

/* ------------------------------------------------------- output folder */

static int remove_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path) != 0 && errno != ENOENT ? -1 : 0;
}

/* Removes the tree at path (not following symbolic links). */
static void remove_tree(const char *path)
{
    nftw(path, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* Whether path exists (as a directory) and has entries; ORCH_EINVAL when
 * it is something else than a directory. */
static int dir_state(const char *path, int *exists, int *non_empty, orch_err *err)
{
    struct stat sb;
    *exists = *non_empty = 0;
    if (lstat(path, &sb) != 0) {
        if (errno == ENOENT)
            return ORCH_OK;
        return orch_seterr(err, ORCH_EIO, "%s: %s", path, strerror(errno));
    }
    if (!S_ISDIR(sb.st_mode))
        return orch_seterr(err, ORCH_EINVAL, "%s: exists and is not a directory", path);
    *exists = 1;
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return orch_seterr(err, ORCH_EIO, "%s: %s", path, strerror(errno));
    DIR *d = fdopendir(fd);
    if (d == NULL) {
        close(fd);
        return orch_seterr(err, ORCH_EIO, "%s: %s", path, strerror(errno));
    }
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) {
            *non_empty = 1;
            break;
        }
    closedir(d);
    return ORCH_OK;
}

/* Writes text to dir/name (and a newline when newline) and fsyncs it. */
static int write_text(const char *dir, const char *name, const char *text, int newline,
                      orch_err *err)
{
    char path[4200];
    if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, name) >= sizeof path)
        return orch_seterr(err, ORCH_EINVAL, "%s: the path is too long", dir);
    FILE *f = fopen(path, "w");
    if (f == NULL)
        return orch_seterr(err, ORCH_EIO, "%s: %s", path, strerror(errno));
    size_t n = strlen(text);
    int ok = fwrite(text, 1, n, f) == n && (!newline || fputc('\n', f) != EOF) && fflush(f) == 0 &&
             fsync(fileno(f)) == 0;
    int saved = errno;
    if (fclose(f) != 0 && ok) {
        ok = 0;
        saved = errno;
    }
    if (!ok)
        return orch_seterr(err, ORCH_EIO, "%s: cannot write: %s", path, strerror(saved));
    return ORCH_OK;
}

/* fsync of a directory (its entries): 0, or -1 with errno. */
static int sync_dir(const char *path)
{
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int rc = fsync(fd);
    int saved = errno;
    close(fd);
    errno = saved;
    return rc;
}

/* The folder that holds path (a copy in out). */
static void parent_of(const char *path, char *out, size_t n)
{
    const char *slash = strrchr(path, '/');
    if (slash == NULL)
        snprintf(out, n, ".");
    else if (slash == path)
        snprintf(out, n, "/");
    else
        snprintf(out, n, "%.*s", (int)(slash - path), path);
}

/* Puts the finished tmp in place of dir: a rename, or with force an
 * exchange with the old dir, whose content is then removed. */
static int put_in_place(const char *tmp, const char *dir, int dir_non_empty, orch_err *err)
{
    if (!dir_non_empty) {
        /* an empty directory is replaced by rename(2) itself */
        if (rename(tmp, dir) != 0)
            return orch_seterr(err, ORCH_EIO, "%s: cannot rename %s to it: %s", dir, tmp,
                               strerror(errno));
        return ORCH_OK;
    }
    if (renameat2(AT_FDCWD, tmp, AT_FDCWD, dir, RENAME_EXCHANGE) == 0) {
        remove_tree(tmp); /* now the old content */
        return ORCH_OK;
    }
    /* a file system without RENAME_EXCHANGE: the old one aside, then the new in */
    char old[4200];
    if ((size_t)snprintf(old, sizeof old, "%s.old-XXXXXX", dir) >= sizeof old)
        return orch_seterr(err, ORCH_EINVAL, "%s: the path is too long", dir);
    int fd = mkstemp(old);
    if (fd < 0)
        return orch_seterr(err, ORCH_EIO, "%s: %s", old, strerror(errno));
    close(fd);
    unlink(old);
    if (rename(dir, old) != 0)
        return orch_seterr(err, ORCH_EIO, "%s: cannot move it aside: %s", dir, strerror(errno));
    if (rename(tmp, dir) != 0) {
        int saved = errno;
        rename(old, dir);
        return orch_seterr(err, ORCH_EIO, "%s: cannot rename %s to it: %s", dir, tmp,
                           strerror(saved));
    }
    remove_tree(old);
    return ORCH_OK;
}

/* ----------------------------------------------------------- the files */

/* Copies the tensors of f from the checkpoint ck into tmp/f->name. *info
 * shapes gets "dst": [shape...] of each, for export.json. */
static int write_safetensors(const orch_st_file *ck, const export_file *f, const char *tmp,
                             json_t *shapes, orch_err *err)
{
    orch_st_entry entries[EXPORT_MAX_TENSORS];
    float *bufs[EXPORT_MAX_TENSORS] = {0};
    int rc = ORCH_OK;
    for (int i = 0; i < f->n && rc == ORCH_OK; i++) {
        const orch_st_tensor *t = orch_st_find(ck, f->tensors[i].src);
        if (t == NULL) {
            rc = orch_seterr(err, ORCH_EINVAL, "%s: no tensor '%s'", orch_st_path(ck),
                             f->tensors[i].src);
            break;
        }
        if (t->dtype == ORCH_ST_OTHER) {
            rc = orch_seterr(err, ORCH_EINVAL, "%s: %s: dtype %s", orch_st_path(ck),
                             f->tensors[i].src, t->dtype_name);
            break;
        }
        /* owned here until the file is written; checkpoints are F32, the
         * conversion is a copy */
        bufs[i] = malloc(sizeof(float) * (size_t)(t->numel > 0 ? t->numel : 1));
        if (bufs[i] == NULL) {
            rc = orch_seterr(err, ORCH_ENOMEM, "export-adapter: out of memory");
            break;
        }
        orch_st_tensor_to_f32(t, bufs[i]);
        entries[i].name = f->tensors[i].dst;
        entries[i].ndim = t->ndim;
        memcpy(entries[i].shape, t->shape, sizeof(int64_t) * (size_t)t->ndim);
        entries[i].data = bufs[i];
        json_t *shape = json_array();
        for (int d = 0; d < t->ndim; d++)
            json_array_append_new(shape, json_integer(t->shape[d]));
        json_object_set_new(shapes, f->tensors[i].dst, shape);
    }
    char path[4200];
    if (rc == ORCH_OK && (size_t)snprintf(path, sizeof path, "%s/%s", tmp, f->name) >= sizeof path)
        rc = orch_seterr(err, ORCH_EINVAL, "%s: the path is too long", tmp);
    /* {"format": "pt"}: what safetensors.torch.save_file writes for PEFT */
    if (rc == ORCH_OK)
        rc = orch_st_write(path, entries, f->n, "{\"format\": \"pt\"}", err);
    for (int i = 0; i < f->n; i++)
        free(bufs[i]);
    return rc;
}

/* The precision that prints every value of vals[0..n-1] so that it reads
 * back as the same double, at most 17 digits: 0.1 stays "0.1". */
static int real_precision(const double *vals, int n)
{
    int prec = 1;
    for (int i = 0; i < n; i++) {
        int p = 15;
        char buf[64];
        for (; p < 17; p++) {
            snprintf(buf, sizeof buf, "%.*g", p, vals[i]);
            if (strtod(buf, NULL) == vals[i])
                break;
        }
        if (p > prec)
            prec = p;
    }
    return prec;
}

static json_t *json_number(double v)
{
    return v == (double)(json_int_t)v ? json_integer((json_int_t)v) : json_real(v);
}

/* The base model PEFT records: the weights' folder (a Hugging Face
 * snapshot) or file, the hub id of a qwen2.5-vl-* preset, else null. */
static json_t *base_model(const orch_model *m)
{
    if (m->weights[0] != '\0') {
        struct stat sb;
        const char *slash = strrchr(m->weights, '/');
        if (stat(m->weights, &sb) == 0 && S_ISREG(sb.st_mode) && slash != NULL)
            return json_stringn(m->weights, (size_t)(slash - m->weights));
        return json_string(m->weights);
    }
    if (strcmp(m->preset, "qwen2.5-vl-3b") == 0)
        return json_string("Qwen/Qwen2.5-VL-3B-Instruct");
    if (strcmp(m->preset, "qwen2.5-vl-7b") == 0)
        return json_string("Qwen/Qwen2.5-VL-7B-Instruct");
    return json_null();
}

/* adapter_config.json with the keys PEFT's LoraConfig saves (PEFT 0.13:
 * save_pretrained writes LoraConfig.to_dict() with sort_keys and indent 2;
 * tests/data/peft/adapter_config.json is that output for this tower). */
static char *lora_config_json(const orch_pipeline *p)
{
    const orch_strategy *s = &p->strategy;
    json_t *c = json_object();
    json_t *targets = json_array();
    for (int t = 0; t < s->n_targets; t++)
        json_array_append_new(targets, json_string(s->targets[t]));
    json_object_set_new(c, "alpha_pattern", json_object());
    json_object_set_new(c, "auto_mapping", json_null());
    json_object_set_new(c, "base_model_name_or_path", base_model(&p->model));
    json_object_set_new(c, "bias", json_string("none"));
    json_object_set_new(c, "fan_in_fan_out", json_false());
    json_object_set_new(c, "inference_mode", json_true());
    json_object_set_new(c, "init_lora_weights", json_true());
    json_object_set_new(c, "layer_replication", json_null());
    json_object_set_new(c, "layers_pattern", json_null());
    json_object_set_new(c, "layers_to_transform", json_null());
    json_object_set_new(c, "loftq_config", json_object());
    json_object_set_new(c, "lora_alpha", json_number(s->alpha));
    json_object_set_new(c, "lora_dropout", json_real(s->dropout));
    json_object_set_new(c, "megatron_config", json_null());
    json_object_set_new(c, "megatron_core", json_string("megatron.core"));
    /* the head is no module of the base model: head.safetensors */
    json_object_set_new(c, "modules_to_save", json_null());
    json_object_set_new(c, "peft_type", json_string("LORA"));
    json_object_set_new(c, "r", json_integer(s->rank));
    json_object_set_new(c, "rank_pattern", json_object());
    json_object_set_new(c, "revision", json_null());
    json_object_set_new(c, "target_modules", targets);
    /* the tower is a part of Qwen2_5_VLForConditionalGeneration: no PEFT task */
    json_object_set_new(c, "task_type", json_null());
    json_object_set_new(c, "use_dora", json_false());
    json_object_set_new(c, "use_rslora", json_false());
    double reals[2] = {s->alpha, s->dropout};
    char *text = json_dumps(c, JSON_INDENT(2) | JSON_SORT_KEYS |
                                   JSON_REAL_PRECISION(real_precision(reals, 2)));
    json_decref(c);
    return text;
}

/* export.json: what was exported, from where, and how the pieces fit. */
static char *export_json(const orch_cli_run_checkpoint *run, const export_file *files, int n_files,
                         json_t *const shapes[])
{
    const orch_pipeline *p = run->pipeline;
    const orch_strategy *s = &p->strategy;
    json_t *o = json_object();
    json_object_set_new(o, "format", json_string("orch-export-1"));
    json_object_set_new(o, "run", json_integer(run->run_id));
    json_object_set_new(o, "run_name", json_string(run->name));
    json_object_set_new(o, "strategy", json_string(orch_strategy_name(s->kind)));
    json_object_set_new(o, "step", json_integer(run->step));
    json_object_set_new(o, "checkpoint_sha256", json_string(run->sha256));
    json_object_set_new(o, "model_preset", json_string(p->model.preset));
    json_object_set_new(o, "base_model", base_model(&p->model));
    json_object_set_new(o, "dtype", json_string("float32"));
    json_t *f = json_object();
    for (int i = 0; i < n_files; i++)
        json_object_set(f, files[i].name, shapes[i]);
    if (s->kind == ORCH_STRATEGY_LORA)
        json_object_set_new(f, "adapter_config.json", json_string("PEFT LoraConfig"));
    json_object_set_new(o, "files", f);
    json_t *what = json_object();
    if (s->kind == ORCH_STRATEGY_LORA) {
        json_object_set_new(what, "kind", json_string("lora"));
        json_object_set_new(what, "r", json_integer(s->rank));
        json_object_set_new(what, "lora_alpha", json_number(s->alpha));
        json_object_set_new(what, "scaling", json_real(s->alpha / s->rank));
        json_object_set_new(what, "rule", json_string("W x + b + scaling * B (A x)"));
    } else if (s->kind == ORCH_STRATEGY_SURGERY) {
        json_object_set_new(what, "kind", json_string("surgery"));
        json_object_set_new(what, "module", json_string(s->replace));
        json_object_set_new(what, "rule",
                            json_string("replaces the base model's tensors of the same names"));
    } else {
        json_object_set_new(what, "kind", json_string("detach"));
        json_object_set_new(what, "adapter", json_string(orch_adapter_name(s->adapter)));
        json_object_set_new(
            what, "module",
            json_string(s->adapter == ORCH_ADAPTER_MLP
                            ? "torch.nn.Sequential(Linear, GELU(approximate='none'), Linear)"
                            : "torch.nn.Linear"));
        json_object_set_new(what, "rule",
                            json_string("applied to every row of the tower's output (the "
                                        "merger's, image order), before pooling"));
    }
    json_object_set_new(o, "adapter", what);
    json_t *head = json_object();
    json_object_set_new(head, "kind", json_string(orch_head_name(p->head.kind)));
    json_object_set_new(head, "outputs", json_integer(p->head.n_outputs));
    json_object_set_new(head, "loss", json_string(orch_loss_name(p->loss)));
    json_object_set_new(head, "module", json_string("torch.nn.Linear"));
    json_object_set_new(head, "input",
                        json_string(s->kind == ORCH_STRATEGY_DETACH
                                        ? "the mean over each image's rows of the adapter's output"
                                        : "the mean over each image's rows of the tower's output"));
    json_object_set_new(o, "head", head);
    char *text = json_dumps(o, JSON_INDENT(2) | JSON_SORT_KEYS | JSON_REAL_PRECISION(17));
    json_decref(o);
    return text;
}

/* Writes every file of the export into tmp. */
static int write_export(const orch_cli_run_checkpoint *run, const char *tmp, orch_err *err)
{
    export_file files[3];
    int n_files = 0;
    plan_files(&run->pipeline->strategy, files, &n_files);
    orch_st_file *ck = NULL;
    json_t *shapes[3] = {NULL, NULL, NULL};
    char *text = NULL;
    int rc = orch_st_open(run->checkpoint, &ck, err);
    for (int i = 0; i < n_files && rc == ORCH_OK; i++) {
        shapes[i] = json_object();
        if (shapes[i] == NULL)
            rc = orch_seterr(err, ORCH_ENOMEM, "export-adapter: out of memory");
        else
            rc = write_safetensors(ck, &files[i], tmp, shapes[i], err);
    }
    if (rc == ORCH_OK && run->pipeline->strategy.kind == ORCH_STRATEGY_LORA) {
        text = lora_config_json(run->pipeline);
        rc = text != NULL
                 ? write_text(tmp, "adapter_config.json", text, 0, err) /* as PEFT: no newline */
                 : orch_seterr(err, ORCH_ENOMEM, "export-adapter: out of memory");
        free(text);
    }
    if (rc == ORCH_OK) {
        text = export_json(run, files, n_files, shapes);
        rc = text != NULL ? write_text(tmp, "export.json", text, 1, err)
                          : orch_seterr(err, ORCH_ENOMEM, "export-adapter: out of memory");
        free(text);
    }
    for (int i = 0; i < n_files; i++)
        json_decref(shapes[i]);
    orch_st_close(ck);
    return rc;
}

int orch_cmd_export_adapter(int argc, char **argv, orch_cli_globals *globals, orch_err *err)
{
    enum { OPT_OUTPUT = 1, OPT_FORCE };
    static const orch_opt opts[] = {
        {"output", 1, OPT_OUTPUT}, {"force", 0, OPT_FORCE}, {NULL, 0, 0}};
    orch_opt_state st = {argc, argv, 1, NULL, "export-adapter"};
    const char *run_text = NULL, *out_arg = NULL;
    int force = 0, id, more;
    while ((more = orch_opt_each(&st, opts, globals, &id, err)) > 0) {
        switch (id) {
        case OPT_OUTPUT:
            out_arg = st.value;
            break;
        case OPT_FORCE:
            force = 1;
            break;
        case ORCH_OPT_POSITIONAL:
            if (strcmp(st.value, "-o") == 0) { /* the short form of --output */
                if (st.index >= st.argc)
                    return orch_seterr(err, ORCH_EINVAL,
                                       "export-adapter: option '-o' needs a value");
                out_arg = st.argv[st.index++];
            } else if (run_text != NULL) {
                return orch_seterr(err, ORCH_EINVAL, "export-adapter: one run at a time");
            } else {
                run_text = st.value;
            }
            break;
        }
    }
    if (more < 0)
        return err->code;
    if (run_text == NULL || out_arg == NULL)
        return orch_seterr(err, ORCH_EINVAL,
                           "export-adapter: usage: orch export-adapter RUN -o DIR [--force]");
    orch_cli_run_checkpoint run;
    memset(&run, 0, sizeof run);
    if (orch_parse_run_id("export-adapter", run_text, &run.run_id, err) != ORCH_OK)
        return err->code;
    /* DIR without trailing slashes: DIR.tmp-XXXXXX must sit beside it */
    char dir[4096];
    if ((size_t)snprintf(dir, sizeof dir, "%s", out_arg) >= sizeof dir - 16 || dir[0] == '\0')
        return orch_seterr(err, ORCH_EINVAL, "export-adapter: the output path is too long");
    for (size_t n = strlen(dir); n > 1 && dir[n - 1] == '/'; n--)
        dir[n - 1] = '\0';
    int exists = 0, non_empty = 0;
    int rc = dir_state(dir, &exists, &non_empty, err);
    if (rc == ORCH_OK && non_empty && !force)
        rc =
            orch_seterr(err, ORCH_EINVAL, "%s: exists and is not empty (--force replaces it)", dir);
    if (rc != ORCH_OK)
        return rc;
    run.pipeline = calloc(1, sizeof *run.pipeline);
    if (run.pipeline == NULL)
        return orch_seterr(err, ORCH_ENOMEM, "export-adapter: out of memory");
    rc = orch_cli_load_run_checkpoint(orch_cli_db_path(globals), &run, err);
    if (rc == ORCH_OK && run.pipeline->strategy.kind == ORCH_STRATEGY_FULL)
        rc = orch_seterr(err, ORCH_EINVAL,
                         "run %lld trained the whole tower (strategy full): export-adapter "
                         "exports lora, surgery and detach runs; its checkpoint holds every "
                         "tensor under its Hugging Face name",
                         (long long)run.run_id);
    char tmp[4200] = "";
    if (rc == ORCH_OK) {
        if ((size_t)snprintf(tmp, sizeof tmp, "%s.tmp-XXXXXX", dir) >= sizeof tmp ||
            mkdtemp(tmp) == NULL) {
            rc = orch_seterr(err, ORCH_EIO, "%s: cannot create: %s", tmp, strerror(errno));
            tmp[0] = '\0';
        }
    }
    if (rc == ORCH_OK)
        rc = write_export(&run, tmp, err);
    mode_t mask = umask(0); /* mkdtemp made it 0700; a folder gets 0777 & ~umask */
    umask(mask);
    if (rc == ORCH_OK && chmod(tmp, 0777 & ~mask) != 0)
        rc = orch_seterr(err, ORCH_EIO, "%s: %s", tmp, strerror(errno));
    if (rc == ORCH_OK && sync_dir(tmp) != 0)
        rc = orch_seterr(err, ORCH_EIO, "%s: cannot sync: %s", tmp, strerror(errno));
    if (rc == ORCH_OK)
        rc = put_in_place(tmp, dir, exists && non_empty, err);
    if (rc == ORCH_OK) { /* the rename itself, durable; it is done either way */
        char parent[4200];
        parent_of(dir, parent, sizeof parent);
        sync_dir(parent);
    }
    if (rc != ORCH_OK && tmp[0] != '\0')
        remove_tree(tmp);
    if (rc == ORCH_OK)
        printf("run %lld (%s, step %lld) exported to %s\n", (long long)run.run_id,
               orch_strategy_name(run.pipeline->strategy.kind), (long long)run.step, dir);
    free(run.pipeline);
    return rc;
}
