/*
 * fuzz_pipeline_json.c - libFuzzer target: orch_pipeline_from_json on any
 * text (a store's config_json column may hold anything). When it accepts
 * the text, the documented round trip must hold: the struct written back
 * with orch_pipeline_to_json reads back to the same configuration hash.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/pipeline.h"
#include "core/pipeline_json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *json = malloc(size + 1); /* the reader takes a NUL-terminated string */
    if (json == NULL)
        return 0;
    memcpy(json, data, size);
    json[size] = '\0';
    orch_err err = {0};
    orch_pipeline p;
    int rc = orch_pipeline_from_json(json, &p, &err);
    free(json);
    if (rc != ORCH_OK)
        return 0;
    char *again = orch_pipeline_to_json(&p, 0);
    if (again == NULL)
        return 0;
    orch_pipeline q;
    char h1[65], h2[65];
    if (orch_pipeline_from_json(again, &q, &err) != ORCH_OK)
        abort(); /* what orch wrote, orch must read */
    if (orch_pipeline_hash(&p, h1) == ORCH_OK && orch_pipeline_hash(&q, h2) == ORCH_OK &&
        strcmp(h1, h2) != 0)
        abort();
    free(again);
    return 0;
}
