/* data_identity.c - a run's data files and their hash; see data_identity.h. */
#include "core/data_identity.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

/* (role name, path, sha256), each compared as bytes (strcmp on unsigned
 * chars, as SQLite's BINARY collation). */
static int input_cmp(const void *a, const void *b)
{
    const orch_run_input *x = a, *y = b;
    int c = strcmp(orch_data_role_name(x->role), orch_data_role_name(y->role));
    if (c == 0)
        c = strcmp(x->path, y->path);
    if (c == 0)
        c = strcmp(x->sha256, y->sha256);
    return c;
}

int orch_data_hash(orch_run_input *inputs, size_t n, char hex[65], orch_err *err)
{
    hex[0] = '\0';
    if (n == 0)
        return ORCH_OK;
    qsort(inputs, n, sizeof *inputs, input_cmp);
    EVP_MD_CTX *md = EVP_MD_CTX_new(); /* owned here */
    int ok = md != NULL && EVP_DigestInit_ex(md, EVP_sha256(), NULL);
    for (size_t i = 0; ok && i < n; i++) {
        const char *parts[3] = {orch_data_role_name(inputs[i].role), inputs[i].path,
                                inputs[i].sha256};
        for (int k = 0; ok && k < 3; k++)
            ok = EVP_DigestUpdate(md, parts[k], strlen(parts[k]) + 1); /* with its NUL */
    }
    unsigned char out[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    ok = ok && EVP_DigestFinal_ex(md, out, &len) && len == 32;
    EVP_MD_CTX_free(md);
    if (!ok)
        return orch_seterr(err, ORCH_ENOMEM, "run: cannot hash the data files");
    for (unsigned int i = 0; i < len; i++)
        snprintf(hex + 2 * i, 3, "%02x", out[i]);
    return ORCH_OK;
}

static void add_files(orch_data_identity *id, const orch_dataset *ds, orch_data_role role)
{
    for (int i = 0; ds != NULL && i < ds->n_files; i++) {
        const orch_data_file *f = &ds->files[i];
        id->inputs[id->n_inputs++] = (orch_run_input){role, f->path, f->sha256, f->bytes};
    }
}

int orch_data_identity_of(const orch_dataset *train, const orch_dataset *eval,
                          orch_data_identity *out, orch_err *err)
{
    memset(out, 0, sizeof *out);
    out->train = train;
    size_t n = (size_t)train->n_files + (eval != NULL ? (size_t)eval->n_files : 0);
    if (n == 0)
        return ORCH_OK;
    out->inputs = calloc(n, sizeof *out->inputs);
    if (out->inputs == NULL)
        return orch_seterr(err, ORCH_ENOMEM, "run: out of memory listing the data files");
    add_files(out, train, ORCH_ROLE_TRAIN);
    add_files(out, eval, ORCH_ROLE_EVAL);
    int rc = orch_data_hash(out->inputs, out->n_inputs, out->hash, err);
    if (rc != ORCH_OK)
        orch_data_identity_free(out);
    return rc;
}

const char *orch_data_identity_hash(const orch_data_identity *id)
{
    return id->hash[0] != '\0' ? id->hash : NULL;
}

int orch_data_identity_send(const orch_data_identity *id, orch_sink *sink, int64_t run_id,
                            orch_err *err)
{
    int rc = ORCH_OK;
    for (size_t i = 0; rc == ORCH_OK && sink->input != NULL && i < id->n_inputs; i++)
        rc = sink->input(sink->ctx, run_id, &id->inputs[i], err);
    const orch_dataset *ds = id->train;
    for (int i = 0; rc == ORCH_OK && sink->run_class != NULL && ds != NULL && i < ds->n_class_names;
         i++) {
        orch_run_class c = {i, ds->class_names[i]};
        rc = sink->run_class(sink->ctx, run_id, &c, err);
    }
    return rc;
}

void orch_data_identity_free(orch_data_identity *id)
{
    free(id->inputs);
    memset(id, 0, sizeof *id);
}
