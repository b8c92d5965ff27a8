/* suggest.c - edit distance and nearest names; see suggest.h. */
#include "lua/suggest.h"

#include <string.h>

#define MAX_LEN 255

int dsl_edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > MAX_LEN)
        la = MAX_LEN;
    if (lb > MAX_LEN)
        lb = MAX_LEN;
    int row[MAX_LEN + 1];
    for (size_t j = 0; j <= lb; j++)
        row[j] = (int)j;
    for (size_t i = 1; i <= la; i++) {
        int diag = row[0]; /* row[i-1][j-1] */
        row[0] = (int)i;
        for (size_t j = 1; j <= lb; j++) {
            int up = row[j]; /* row[i-1][j] */
            int cost = a[i - 1] == b[j - 1] ? 0 : 1;
            int best = diag + cost;
            if (up + 1 < best)
                best = up + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[lb];
}

const char *dsl_nearest(const char *word, const char *const *names, size_t n)
{
    int limit = (int)(strlen(word) / 3);
    if (limit < 2)
        limit = 2;
    const char *best = NULL;
    int best_d = limit + 1;
    for (size_t i = 0; i < n; i++) {
        int d = dsl_edit_distance(word, names[i]);
        if (d < best_d) {
            best_d = d;
            best = names[i];
        }
    }
    return best;
}

char *dsl_join_names(char *buf, size_t cap, const char *const *names, size_t n)
{
    if (cap == 0)
        return buf;
    buf[0] = '\0';
    size_t len = 0;
    for (size_t i = 0; i < n; i++) {
        size_t need = strlen(names[i]) + (i ? 2 : 0);
        if (len + need + 4 >= cap) {
            if (len + 4 < cap)
                memcpy(buf + len, "...", 4);
            break;
        }
        if (i) {
            memcpy(buf + len, ", ", 2);
            len += 2;
        }
        memcpy(buf + len, names[i], strlen(names[i]) + 1);
        len += strlen(names[i]);
    }
    return buf;
}
