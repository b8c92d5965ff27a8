/* pipeline_print.c - the `orch plan` listing; see pipeline_print.h. */
#include "core/pipeline_print.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/pipeline_fields.h"
#include "core/pipeline_json.h"

/* A real as the shortest of %.15g..%.17g that reads back exactly. */
static void put_real(FILE *out, double x)
{
    char buf[64];
    for (int digits = 15; digits <= 17; digits++) {
        snprintf(buf, sizeof buf, "%.*g", digits, x);
        if (strtod(buf, NULL) == x)
            break;
    }
    fputs(buf, out);
}

/* A Lua string literal. */
static void put_str(FILE *out, const char *s)
{
    fputc('"', out);
    for (; *s != '\0'; s++) {
        if (*s == '"' || *s == '\\')
            fputc('\\', out);
        fputc(*s, out);
    }
    fputc('"', out);
}

static int int_at(const void *at)
{
    int v;
    memcpy(&v, at, sizeof v);
    return v;
}

/* Writes the value of field f of p as a Lua literal. */
static void put_value(const orch_field *f, const orch_pipeline *p, FILE *out)
{
    const void *at = orch_field_cptr(f, p);
    int count = f->count_offset ? int_at((const char *)p + f->count_offset) : 0;
    switch (f->type) {
    case ORCH_FIELD_INT:
        fprintf(out, "%d", int_at(at));
        return;
    case ORCH_FIELD_U64:
        fprintf(out, "%llu", (unsigned long long)*(const uint64_t *)at);
        return;
    case ORCH_FIELD_REAL:
        put_real(out, *(const double *)at);
        return;
    case ORCH_FIELD_BOOL:
        fputs(int_at(at) ? "true" : "false", out);
        return;
    case ORCH_FIELD_ENUM:
        put_str(out, f->names[int_at(at)]);
        return;
    case ORCH_FIELD_STRING:
    case ORCH_FIELD_FILE:
        put_str(out, at);
        return;
    case ORCH_FIELD_INT_LIST:
        fputc('{', out);
        for (int i = 0; i < count; i++)
            fprintf(out, "%s%d", i ? ", " : "", ((const int *)at)[i]);
        fputc('}', out);
        return;
    case ORCH_FIELD_STRING_LIST:
        fputc('{', out);
        for (int i = 0; i < count; i++) {
            fputs(i ? ", " : "", out);
            put_str(out, (const char *)at + (size_t)i * ORCH_NAME_MAX);
        }
        fputc('}', out);
        return;
    case ORCH_FIELD_FILE_LIST:
        fputc('{', out);
        for (int i = 0; i < count; i++) {
            fputs(i ? ", " : "", out);
            put_str(out, (const char *)at + (size_t)i * ORCH_PATH_MAX);
        }
        fputc('}', out);
        return;
    case ORCH_FIELD_INT_PAIR:
        fprintf(out, "{%d, %d}", ((const int *)at)[0], ((const int *)at)[1]);
        return;
    case ORCH_FIELD_REAL_PAIR:
        fputc('{', out);
        put_real(out, ((const double *)at)[0]);
        fputs(", ", out);
        put_real(out, ((const double *)at)[1]);
        fputc('}', out);
        return;
    case ORCH_FIELD_GRIDS:
        fputc('{', out);
        for (int i = 0; i < count; i++) {
            const int64_t *g = (const int64_t *)at + 3 * i;
            fprintf(out, "%s{%lld, %lld, %lld}", i ? ", " : "", (long long)g[0], (long long)g[1],
                    (long long)g[2]);
        }
        fputc('}', out);
        return;
    case ORCH_FIELD_SECTION:
    case ORCH_FIELD_OPTIONAL:
    case ORCH_FIELD__COUNT:
        break;
    }
    ORCH_UNREACHABLE();
}

/* Writes the line of field f of p, named path. */
static void put_line(const orch_field *f, const char *path, const orch_pipeline *p, FILE *out)
{
    fprintf(out, "%s = ", path);
    put_value(f, p, out);
    if (f->note != NULL && (f->note_if == NULL || f->note_if(p)))
        fprintf(out, "  -- %s", f->note);
    fputc('\n', out);
}

/* Writes the lines of the section f with the rows of another (eval.data):
 * those rows, read through a view of p, under f's path. */
static void put_view(const orch_field *f, const orch_pipeline *p, FILE *out)
{
    orch_pipeline *view = malloc(sizeof *view); /* large: off the stack; freed below */
    if (view == NULL) {
        fprintf(out, "%s = ?  -- out of memory\n", f->path);
        return;
    }
    orch_field_view(f, p, view);
    size_t n = strlen(f->same_as);
    for (size_t i = 0; i < orch_fields_count; i++) {
        const orch_field *g = &orch_fields[i];
        if (strncmp(g->path, f->same_as, n) != 0 || g->path[n] != '.' ||
            g->type == ORCH_FIELD_SECTION || g->type == ORCH_FIELD_OPTIONAL ||
            (g->in_plan != NULL && !g->in_plan(view)))
            continue;
        char path[256];
        snprintf(path, sizeof path, "%s%s", f->path, g->path + n);
        put_line(g, path, view, out);
    }
    free(view);
}

void orch_pipeline_print(const orch_pipeline *p, FILE *out)
{
    char hash[65];
    fprintf(out, "-- pipeline %s\n", p->path);
    if (orch_pipeline_hash(p, hash) == ORCH_OK)
        fprintf(out, "-- config hash %s\n", hash);
    int printed = 0, pending_break = 0;
    for (size_t i = 0; i < orch_fields_count; i++) {
        const orch_field *f = &orch_fields[i];
        pending_break |= (f->flags & ORCH_FIELDF_BREAK) != 0;
        if ((f->type == ORCH_FIELD_SECTION && f->same_as == NULL) ||
            f->type == ORCH_FIELD_OPTIONAL || (f->in_plan != NULL && !f->in_plan(p)))
            continue;
        if (pending_break && printed)
            fputc('\n', out);
        pending_break = 0;
        printed = 1;
        if (f->same_as != NULL)
            put_view(f, p, out);
        else
            put_line(f, f->path, p, out);
    }
}
