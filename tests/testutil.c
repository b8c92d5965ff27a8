/* testutil.c - see testutil.h. */
#include "testutil.h"

#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

const char *orch_bin(void)
{
    const char *bin = getenv("ORCH_BIN");
    if (bin != NULL && bin[0] != '\0')
        return bin;
    /* absolute, so tests that change directory still find it when run by
     * hand (make test sets ORCH_BIN) */
    static char resolved[PATH_MAX];
    if (resolved[0] == '\0' && realpath("./orch", resolved) == NULL)
        snprintf(resolved, sizeof resolved, "./orch");
    return resolved;
}

static char *slurp_fd(int fd)
{
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    if (buf == NULL)
        return NULL;
    lseek(fd, 0, SEEK_SET);
    for (;;) {
        if (len + 1 >= cap) {
            cap *= 2;
            char *grown = realloc(buf, cap);
            if (grown == NULL) {
                free(buf);
                return NULL;
            }
            buf = grown;
        }
        ssize_t got = read(fd, buf + len, cap - len - 1);
        if (got <= 0)
            break;
        len += (size_t)got;
    }
    buf[len] = '\0';
    return buf;
}

static int spawn_capture(const char *file, char *const argv[], const char *const env[],
                         cli_result *result)
{
    memset(result, 0, sizeof *result);
    FILE *out_file = tmpfile();
    FILE *err_file = tmpfile();
    if (out_file == NULL || err_file == NULL) {
        if (out_file)
            fclose(out_file);
        if (err_file)
            fclose(err_file);
        return -1;
    }
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) {
        fclose(out_file);
        fclose(err_file);
        return -1;
    }
    if (pid == 0) {
        int devnull = open("/dev/null", O_RDONLY);
        if (devnull >= 0)
            dup2(devnull, 0);
        dup2(fileno(out_file), 1);
        dup2(fileno(err_file), 2);
        for (size_t i = 0; env != NULL && env[i] != NULL; i++)
            putenv((char *)env[i]);
        execvp(file, argv);
        _exit(127);
    }
    int status = 0;
    while (waitpid(pid, &status, 0) < 0)
        ;
    result->exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    result->out = slurp_fd(fileno(out_file));
    result->err = slurp_fd(fileno(err_file));
    fclose(out_file);
    fclose(err_file);
    return 0;
}

int run_orch(const char *const argv[], const char *const env[], cli_result *result)
{
    size_t n = 0;
    while (argv[n] != NULL)
        n++;
    char **full = calloc(n + 2, sizeof *full);
    if (full == NULL)
        return -1;
    full[0] = (char *)orch_bin();
    for (size_t i = 0; i < n; i++)
        full[i + 1] = (char *)argv[i];
    int rc = spawn_capture(full[0], full, env, result);
    free(full);
    return rc;
}

int run_shell(const char *command, cli_result *result)
{
    static char shell[] = "/bin/sh", flag[] = "-c";
    char *argv[] = {shell, flag, (char *)command, NULL};
    return spawn_capture(shell, argv, NULL, result);
}

void cli_result_free(cli_result *result)
{
    free(result->out);
    free(result->err);
    result->out = result->err = NULL;
}

char *make_temp_dir(char *buf, size_t n)
{
    const char *base = getenv("TMPDIR");
    snprintf(buf, n, "%s/orch-test-XXXXXX", (base && base[0]) ? base : "/tmp");
    return mkdtemp(buf);
}

int make_temp_store(char *dir, size_t dir_n, char *db, size_t db_n)
{
    if (make_temp_dir(dir, dir_n) == NULL)
        return -1;
    snprintf(db, db_n, "%s/orch.db", dir);
    return 0;
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

void remove_tree(const char *path)
{
    nftw(path, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

int write_text_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (f == NULL)
        return -1;
    size_t len = strlen(text);
    int ok = fwrite(text, 1, len, f) == len;
    return (fclose(f) == 0 && ok) ? 0 : -1;
}

char *read_whole_file(const char *path, size_t *size)
{
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return NULL;
    char *buf = slurp_fd(fd);
    close(fd);
    if (buf != NULL && size != NULL)
        *size = strlen(buf);
    return buf;
}

static unsigned long long splitmix64(unsigned long long *state)
{
    unsigned long long z = (*state += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

void fill_uniform(float *out, size_t n, float lo, float hi, unsigned long long *state)
{
    for (size_t i = 0; i < n; i++) {
        double u = (double)(splitmix64(state) >> 11) * (1.0 / 9007199254740992.0);
        out[i] = lo + (float)u * (hi - lo);
    }
}

void tiny_pipeline(orch_pipeline *p, orch_strategy_kind kind)
{
    memset(p, 0, sizeof *p);
    snprintf(p->path, sizeof p->path, "tiny.lua");
    snprintf(p->name, sizeof p->name, "tiny");
    snprintf(p->model.preset, sizeof p->model.preset, "tiny");
    p->parallel.data = 1;
    orch_model_config *c = &p->model.config;
    c->depth = 4;
    c->hidden_size = 32;
    c->num_heads = 4;
    c->intermediate_size = 40;
    c->patch_size = 2;
    c->temporal_patch_size = 2;
    c->in_channels = 3;
    c->spatial_merge_size = 2;
    c->window_size = 8;
    c->out_hidden_size = 24;
    c->n_fullatt = 2;
    c->fullatt_block_indexes[0] = 1;
    c->fullatt_block_indexes[1] = 3;
    p->strategy.kind = kind;
    snprintf(p->strategy.replace, sizeof p->strategy.replace, "visual.merger.mlp.2");
    p->strategy.adapter = ORCH_ADAPTER_LINEAR;
    p->strategy.rank = 4;
    p->strategy.alpha = 8;
    p->strategy.n_targets = 2;
    snprintf(p->strategy.targets[0], ORCH_NAME_MAX, "visual.merger.mlp.0");
    snprintf(p->strategy.targets[1], ORCH_NAME_MAX, "visual.blocks.1.attn.qkv");
    p->data.source = ORCH_DATA_SYNTHETIC;
    p->data.n_samples = 8;
    p->data.n_classes = 3;
    p->data.image_height = 16;
    p->data.image_width = 16;
    p->data.shuffle = 1; /* the DSL's defaults: a full shuffle per epoch, the hub's bounds */
    p->processor.min_pixels = 3136;
    p->processor.max_pixels = 12845056;
    p->head.kind = ORCH_HEAD_CLASSIFIER;
    p->head.n_outputs = 3;
    p->loss = ORCH_LOSS_CROSS_ENTROPY;
    p->optimizer.kind = ORCH_OPT_ADAMW;
    p->optimizer.lr = 1e-3;
    p->optimizer.beta1 = 0.9;
    p->optimizer.beta2 = 0.999;
    p->optimizer.eps = 1e-8;
    p->optimizer.weight_decay = 0.01;
    p->schedule.steps = 3;
    p->schedule.batch_size = 2;
    p->schedule.grad_accum = 1;
    p->precision = ORCH_FP32;
    p->loss_scale.init = 1.0;
    p->loss_scale.growth_interval = 2000;
    p->seed = 7;
    p->checks.nan = 1;
}

void tiny_batch(orch_batch *b)
{
    memset(b, 0, sizeof *b);
    b->n_images = 2;
    b->n_patches = 76;
    b->patch_dim = 24;
    b->pixel_values = malloc(sizeof(float) * 76 * 24);
    b->grid_thw = malloc(sizeof(int64_t) * 6);
    b->class_labels = malloc(sizeof(int64_t) * 2);
    const int64_t grids[6] = {1, 6, 10, 1, 4, 4};
    memcpy(b->grid_thw, grids, sizeof grids);
    b->class_labels[0] = 2;
    b->class_labels[1] = 0;
    b->label_kind = ORCH_LABEL_CLASS;
    b->n_targets = 1;
    unsigned long long state = 42;
    fill_uniform(b->pixel_values, 76 * 24, -1.5f, 1.5f, &state);
}
