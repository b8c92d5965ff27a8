/* checkpoint.c - trainable state to and from safetensors; see checkpoint.h. */
#include "core/checkpoint.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/regular_file.h"
#include "store/safetensors.h"
#include "store/store.h"

/* Hashes the open regular file fd (path for messages) into hex. */
static int hash_fd(int fd, const char *path, char hex[65], int64_t *bytes, orch_err *err)
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    int rc = ORCH_OK;
    if (md == NULL || EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1) {
        rc = orch_seterr(err, ORCH_ENOMEM, "sha256: cannot start a digest");
        goto out;
    }
    unsigned char buf[1 << 16];
    ssize_t got;
    *bytes = 0;
    while ((got = read(fd, buf, sizeof buf)) != 0) {
        if (got < 0) {
            if (errno == EINTR)
                continue;
            rc = orch_seterr(err, ORCH_EIO, "%s: cannot read: %s", path, strerror(errno));
            goto out;
        }
        EVP_DigestUpdate(md, buf, (size_t)got);
        *bytes += (int64_t)got;
    }
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    EVP_DigestFinal_ex(md, digest, &len);
    for (unsigned int i = 0; i < len && i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", digest[i]);
out:
    EVP_MD_CTX_free(md);
    return rc;
}

int orch_file_sha256(const char *path, char hex[65], int64_t *bytes, orch_err *err)
{
    int64_t size = 0;
    int fd = orch_open_regular(path, &size, ORCH_EIO, err);
    if (fd < 0)
        return ORCH_EIO;
    int rc = hash_fd(fd, path, hex, bytes, err);
    close(fd);
    return rc;
}

static int open_state(const orch_st_file *f, const char *path, orch_st_file **out, orch_err *err);
static int checkpoint_format(const orch_st_file *f);

/* A checkpoint whose optimizer state is a file of its own verifies only
 * with that file: of the size and sha256 the weights file records. Files
 * that are no checkpoint of that kind have nothing beside them to check. */
static int verify_state(const char *path, orch_err *err)
{
    orch_st_file *f = NULL, *state = NULL;
    orch_err ignored;
    if (orch_st_open(path, &f, &ignored) != ORCH_OK)
        return ORCH_OK;
    int rc = checkpoint_format(f) == 2 ? open_state(f, path, &state, err) : ORCH_OK;
    orch_st_close(state);
    orch_st_close(f);
    return rc == ORCH_OK ? ORCH_OK : ORCH_EINVAL;
}

int orch_checkpoint_verify_file(const char *path, int64_t bytes, const char *sha256, orch_err *err)
{
    int64_t size = 0, got = 0;
    char hex[65] = "";
    int fd = orch_open_regular(path, &size, ORCH_EIO, err);
    if (fd < 0)
        return ORCH_EINVAL;
    int rc = ORCH_OK;
    if (bytes >= 0 && size != bytes) {
        rc = orch_seterr(err, ORCH_EINVAL, "%s: %lld bytes, recorded as %lld", path,
                         (long long)size, (long long)bytes);
        goto out;
    }
    rc = hash_fd(fd, path, hex, &got, err);
    if (rc != ORCH_OK) {
        rc = ORCH_EINVAL;
        goto out;
    }
    if (sha256 != NULL && strcmp(hex, sha256) != 0)
        rc = orch_seterr(err, ORCH_EINVAL, "%s: does not match its recorded sha256", path);
out:
    close(fd);
    return rc;
}

int orch_checkpoint_verify(const char *path, int64_t bytes, const char *sha256, orch_err *err)
{
    int rc = orch_checkpoint_verify_file(path, bytes, sha256, err);
    return rc == ORCH_OK ? verify_state(path, err) : rc;
}

/* The optimizer-state tensors of a parameter: names and buffers. */
static int state_tensors(const orch_param *p, orch_optimizer_kind opt,
                         char names[2][ORCH_NAME_MAX + 32], float *bufs[2])
{
    if (opt == ORCH_OPT_ADAMW) {
        snprintf(names[0], sizeof names[0], "optimizer.%s.exp_avg", p->name);
        snprintf(names[1], sizeof names[1], "optimizer.%s.exp_avg_sq", p->name);
        bufs[0] = p->m;
        bufs[1] = p->v;
        return 2;
    }
    ORCH_ASSERT(opt == ORCH_OPT_SGD);
    snprintf(names[0], sizeof names[0], "optimizer.%s.momentum_buffer", p->name);
    bufs[0] = p->m;
    return 1;
}

/* The state file's path for the weights file path, or ORCH_EINVAL. */
static int state_path_of(const char *path, char *out, size_t n, orch_err *err)
{
    if (orch_checkpoint_optimizer_path(path, out, n) != 0)
        return orch_seterr(err, ORCH_EINVAL, "%s: a checkpoint's name ends in .safetensors", path);
    return ORCH_OK;
}

int orch_checkpoint_write(const char *path, const orch_graph *g, orch_optimizer_kind optimizer,
                          const orch_checkpoint_state *st, char sha256_hex[65], int64_t *bytes,
                          orch_err *err)
{
    char state_path[ORCH_CHECKPOINT_PATH_MAX];
    int rc = state_path_of(path, state_path, sizeof state_path, err);
    if (rc != ORCH_OK)
        return rc;
    int n_trainable = 0;
    for (int i = 0; i < g->n_params; i++)
        n_trainable += g->params[i].trainable;
    /* owned here: the entries borrow the graph's buffers and these names */
    orch_st_entry *weights = calloc((size_t)n_trainable + 1, sizeof *weights);
    orch_st_entry *state = calloc((size_t)n_trainable * 2 + 1, sizeof *state);
    char(*names)[ORCH_NAME_MAX + 32] = calloc((size_t)n_trainable * 2 + 1, sizeof *names);
    if (weights == NULL || state == NULL || names == NULL) {
        free(weights);
        free(state);
        free(names);
        return orch_seterr(err, ORCH_ENOMEM, "checkpoint: out of memory");
    }
    int n_weights = 0, n_state = 0;
    for (int i = 0; i < g->n_params; i++) {
        const orch_param *p = &g->params[i];
        if (!p->trainable)
            continue;
        orch_st_entry *w = &weights[n_weights++];
        w->name = p->name;
        w->ndim = p->ndim;
        memcpy(w->shape, p->shape, sizeof(int64_t) * (size_t)p->ndim);
        w->data = p->data;
        float *bufs[2];
        int k = state_tensors(p, optimizer, &names[n_state], bufs);
        for (int j = 0; j < k; j++) {
            state[n_state + j] = *w;
            state[n_state + j].name = names[n_state + j];
            state[n_state + j].data = bufs[j];
        }
        n_state += k;
    }
    /* the state first: a checkpoint exists once its weights file does, and
     * that file carries the state file's size and sha256 */
    char state_meta[256], state_sha[65] = "";
    int64_t state_bytes = 0;
    snprintf(state_meta, sizeof state_meta,
             "{\"format\": \"orch-optimizer-1\", \"optimizer\": \"%s\", \"step\": \"%" PRId64
             "\", \"config_hash\": \"%s\"}",
             orch_optimizer_name(optimizer), st->step, st->config_hash);
    rc = orch_st_write(state_path, state, n_state, state_meta, err);
    if (rc == ORCH_OK)
        rc = orch_file_sha256(state_path, state_sha, &state_bytes, err);
    /* early stopping's state only once an evaluation was compared: the
     * checkpoints of runs without one stay as they were */
    char stop[256] = "";
    if (st->stop.evals > 0)
        snprintf(stop, sizeof stop,
                 ", \"stop_evals\": \"%" PRId64 "\", \"stop_best\": \"%.17g\", "
                 "\"stop_best_step\": \"%" PRId64 "\", \"stop_since_best\": \"%" PRId64 "\"",
                 st->stop.evals, st->stop.best, st->stop.best_step, st->stop.since_best);
    char metadata[768];
    snprintf(metadata, sizeof metadata,
             "{\"format\": \"orch-checkpoint-2\", \"step\": \"%" PRId64
             "\", \"updates\": \"%" PRId64
             "\", \"loss_scale\": \"%.17g\", \"good_steps\": \"%d\", \"config_hash\": \"%s\", "
             "\"optimizer_bytes\": \"%" PRId64 "\", \"optimizer_sha256\": \"%s\"%s}",
             st->step, st->updates, st->loss_scale, st->good_steps, st->config_hash, state_bytes,
             state_sha, stop);
    if (rc == ORCH_OK)
        rc = orch_st_write(path, weights, n_weights, metadata, err);
    free(weights);
    free(state);
    free(names);
    if (rc == ORCH_OK)
        rc = orch_file_sha256(path, sha256_hex, bytes, err);
    return rc;
}

static int meta_int(const orch_st_file *f, const char *path, const char *key, int64_t *out,
                    orch_err *err)
{
    const char *v = orch_st_metadata(f, key);
    char *end = NULL;
    if (v == NULL || (*out = strtoll(v, &end, 10), end == v || *end != '\0'))
        return orch_seterr(err, ORCH_EINVAL, "%s: not an orch checkpoint (metadata '%s')", path,
                           key);
    return ORCH_OK;
}

/* 2 for a weights file with its state beside it, 1 for an older checkpoint
 * holding both, 0 for anything else. */
static int checkpoint_format(const orch_st_file *f)
{
    const char *format = orch_st_metadata(f, "format");
    if (format != NULL && strcmp(format, "orch-checkpoint-2") == 0)
        return 2;
    if (format != NULL && strcmp(format, "orch-checkpoint-1") == 0)
        return 1;
    return 0;
}

/* Opens the state file beside the weights file f (path) after checking it
 * against the size and sha256 f records, and that it is of f's step and
 * config. */
static int open_state(const orch_st_file *f, const char *path, orch_st_file **out, orch_err *err)
{
    char state_path[ORCH_CHECKPOINT_PATH_MAX];
    int64_t bytes = 0;
    const char *sha = orch_st_metadata(f, "optimizer_sha256");
    int rc = state_path_of(path, state_path, sizeof state_path, err);
    if (rc == ORCH_OK)
        rc = meta_int(f, path, "optimizer_bytes", &bytes, err);
    if (rc == ORCH_OK && sha == NULL)
        rc = orch_seterr(err, ORCH_EINVAL, "%s: not an orch checkpoint (metadata '%s')", path,
                         "optimizer_sha256");
    if (rc == ORCH_OK)
        rc = orch_checkpoint_verify_file(state_path, bytes, sha, err);
    if (rc == ORCH_OK)
        rc = orch_st_open(state_path, out, err);
    if (rc != ORCH_OK)
        return rc;
    const char *step = orch_st_metadata(*out, "step"),
               *hash = orch_st_metadata(*out, "config_hash");
    const char *want_step = orch_st_metadata(f, "step"),
               *want_hash = orch_st_metadata(f, "config_hash");
    if (step == NULL || hash == NULL || want_step == NULL || want_hash == NULL ||
        strcmp(step, want_step) != 0 || strcmp(hash, want_hash) != 0) {
        orch_st_close(*out);
        *out = NULL;
        return orch_seterr(err, ORCH_EINVAL, "%s: not the optimizer state of %s", state_path, path);
    }
    return ORCH_OK;
}

/* orch_checkpoint_read, and without the optimizer state when with_state is 0. */
static int read_checkpoint(const char *path, orch_graph *g, orch_optimizer_kind optimizer,
                           int with_state, const char *config_hash, orch_checkpoint_state *st,
                           orch_err *err)
{
    orch_st_file *f = NULL, *state = NULL;
    int rc = orch_st_open(path, &f, err);
    if (rc != ORCH_OK)
        return rc;
    memset(st, 0, sizeof *st);
    int format = checkpoint_format(f);
    const char *hash = orch_st_metadata(f, "config_hash");
    const char *scale = orch_st_metadata(f, "loss_scale");
    int64_t good = 0;
    if (format == 0 || hash == NULL || scale == NULL) {
        rc = orch_seterr(err, ORCH_EINVAL, "%s: not an orch checkpoint", path);
        goto out;
    }
    if (config_hash != NULL && strcmp(hash, config_hash) != 0) {
        rc = orch_seterr(err, ORCH_EINVAL,
                         "%s: written for config %.12s, this run's config is %.12s", path, hash,
                         config_hash);
        goto out;
    }
    if ((rc = meta_int(f, path, "step", &st->step, err)) != ORCH_OK ||
        (rc = meta_int(f, path, "updates", &st->updates, err)) != ORCH_OK ||
        (rc = meta_int(f, path, "good_steps", &good, err)) != ORCH_OK)
        goto out;
    st->good_steps = (int)good;
    st->loss_scale = strtod(scale, NULL);
    orch_early_stop_init(&st->stop);
    const char *best = orch_st_metadata(f, "stop_best");
    if (orch_st_metadata(f, "stop_evals") != NULL) {
        if ((rc = meta_int(f, path, "stop_evals", &st->stop.evals, err)) != ORCH_OK ||
            (rc = meta_int(f, path, "stop_best_step", &st->stop.best_step, err)) != ORCH_OK ||
            (rc = meta_int(f, path, "stop_since_best", &st->stop.since_best, err)) != ORCH_OK)
            goto out;
        if (best == NULL) {
            rc = orch_seterr(err, ORCH_EINVAL, "%s: not an orch checkpoint (metadata 'stop_best')",
                             path);
            goto out;
        }
        st->stop.best = strtod(best, NULL);
    }
    snprintf(st->config_hash, sizeof st->config_hash, "%s", hash);
    /* an orch-checkpoint-1 file holds the state itself */
    if (with_state && format == 2 && (rc = open_state(f, path, &state, err)) != ORCH_OK)
        goto out;
    const orch_st_file *state_file = format == 2 ? state : f;
    for (int i = 0; i < g->n_params && rc == ORCH_OK; i++) {
        orch_param *p = &g->params[i];
        if (!p->trainable)
            continue;
        rc = orch_st_read_f32(f, p->name, p->shape, p->ndim, p->data, err);
        char names[2][ORCH_NAME_MAX + 32];
        float *bufs[2];
        int k = with_state ? state_tensors(p, optimizer, names, bufs) : 0;
        for (int j = 0; j < k && rc == ORCH_OK; j++)
            rc = orch_st_read_f32(state_file, names[j], p->shape, p->ndim, bufs[j], err);
    }
out:
    orch_st_close(state);
    orch_st_close(f);
    return rc;
}

int orch_checkpoint_read(const char *path, orch_graph *g, orch_optimizer_kind optimizer,
                         const char *config_hash, orch_checkpoint_state *st, orch_err *err)
{
    return read_checkpoint(path, g, optimizer, 1, config_hash, st, err);
}

int orch_checkpoint_read_weights(const char *path, orch_graph *g, orch_checkpoint_state *st,
                                 orch_err *err)
{
    return read_checkpoint(path, g, ORCH_OPT_SGD, 0, NULL, st, err);
}
