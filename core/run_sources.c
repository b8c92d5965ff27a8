/* run_sources.c - pipeline files as source_file records; see run_sources.h. */
#include "core/run_sources.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int orch_run_sources_make(const orch_dsl_files *files, orch_run_sources *out, orch_err *err)
{
    memset(out, 0, sizeof *out);
    if (files == NULL || files->n == 0)
        return ORCH_OK;
    out->files = calloc((size_t)files->n, sizeof *out->files);
    out->sha256 = calloc((size_t)files->n, sizeof *out->sha256);
    if (out->files == NULL || out->sha256 == NULL) {
        orch_run_sources_free(out);
        return orch_seterr(err, ORCH_ENOMEM, "run: out of memory");
    }
    for (int i = 0; i < files->n; i++) {
        const orch_dsl_file *f = &files->files[i];
        unsigned char d[EVP_MAX_MD_SIZE];
        unsigned len = 0;
        if (EVP_Digest(f->text, f->len, d, &len, EVP_sha256(), NULL) != 1 || len != 32) {
            orch_run_sources_free(out);
            return orch_seterr(err, ORCH_ENOMEM, "run: cannot hash %s", f->path);
        }
        for (unsigned k = 0; k < len; k++)
            snprintf(out->sha256[i] + 2 * k, 3, "%02x", d[k]);
        out->files[i] = (orch_source_file){f->path, out->sha256[i], f->text, (int64_t)f->len};
    }
    out->n = files->n;
    return ORCH_OK;
}

void orch_run_sources_free(orch_run_sources *out)
{
    if (out == NULL)
        return;
    free(out->files);
    free(out->sha256);
    memset(out, 0, sizeof *out);
}
