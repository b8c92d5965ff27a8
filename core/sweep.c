/* sweep.c - releasing and searching an expanded sweep; see sweep.h. */
#include "core/sweep.h"

#include <stdlib.h>
#include <string.h>

void orch_sweep_free(orch_sweep *s)
{
    if (s == NULL)
        return;
    for (int i = 0; s->runs != NULL && i < s->n_runs; i++)
        free(s->runs[i].pipeline);
    free(s->runs);
    memset(s, 0, sizeof *s);
}

int orch_sweep_find(const orch_sweep *s, const char *name)
{
    if (s == NULL || name == NULL || s->runs == NULL)
        return -1;
    /* a full name "<sweep>/<point>" only matches this sweep's runs */
    const char *slash = strchr(name, '/');
    for (int i = 0; i < s->n_runs; i++)
        if (strcmp(slash != NULL ? s->runs[i].name : s->runs[i].point, name) == 0)
            return i;
    return -1;
}
