/*
 * gen_fields_doc.c - `make docs`: regenerates the field tables of
 * docs/pipelines.md from the field table (core/pipeline_fields.c), between
 * the "<!-- fields:SECTION -->" and "<!-- /fields -->" markers. The rest of
 * the file is left as it is. tests/test_pipeline_fields.c fails when the
 * committed doc differs from what this writes.
 *
 * usage: gen_fields_doc docs/pipelines.md
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/pipeline_fields.h"

/* The whole file at path, malloc'd and NUL-terminated, or NULL. */
static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    char *text = NULL;
    size_t len = 0, cap = 0, got;
    do {
        if (len + 4096 + 1 > cap) {
            cap = (len + 4096 + 1) * 2;
            char *grown = realloc(text, cap);
            if (grown == NULL) {
                free(text);
                fclose(f);
                return NULL;
            }
            text = grown;
        }
        got = fread(text + len, 1, 4096, f);
        len += got;
    } while (got > 0);
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        free(text);
        return NULL;
    }
    text[len] = '\0';
    return text;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: gen_fields_doc docs/pipelines.md\n");
        return 2;
    }
    char *text = slurp(argv[1]);
    if (text == NULL) {
        fprintf(stderr, "gen_fields_doc: cannot read %s\n", argv[1]);
        return 1;
    }
    char *updated = orch_fields_update_doc(text);
    if (updated == NULL) {
        fprintf(stderr, "gen_fields_doc: %s: a fields marker is not closed (or out of memory)\n",
                argv[1]);
        free(text);
        return 1;
    }
    int rc = 0;
    if (strcmp(text, updated) != 0) {
        FILE *f = fopen(argv[1], "wb");
        if (f == NULL || fputs(updated, f) == EOF || fclose(f) != 0) {
            fprintf(stderr, "gen_fields_doc: cannot write %s\n", argv[1]);
            rc = 1;
        } else {
            printf("%s: field tables regenerated\n", argv[1]);
        }
    } else {
        printf("%s: field tables up to date\n", argv[1]);
    }
    free(text);
    free(updated);
    return rc;
}
