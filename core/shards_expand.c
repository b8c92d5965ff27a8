/* shards_expand.c - shard patterns to file names; see shards_expand.h. */
#include "core/shards_expand.h"

#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* A growing list of malloc'd names. */
typedef struct name_list {
    char **v;
    int n, cap;
} name_list;

static int list_add(name_list *l, char *s)
{
    if (l->n == l->cap) {
        int cap = l->cap ? 2 * l->cap : 16;
        char **v = realloc(l->v, (size_t)cap * sizeof *v);
        if (v == NULL)
            return -1;
        l->v = v;
        l->cap = cap;
    }
    l->v[l->n++] = s;
    return 0;
}

void orch_shards_paths_free(char **paths, int n)
{
    for (int i = 0; paths != NULL && i < n; i++)
        free(paths[i]);
    free(paths);
}

/* The '}' matching the '{' at s[open], or -1. */
static long matching_brace(const char *s, long open)
{
    int depth = 0;
    for (long i = open; s[i] != '\0'; i++) {
        if (s[i] == '{')
            depth++;
        else if (s[i] == '}' && --depth == 0)
            return i;
    }
    return -1;
}

/* "A..B" with A, B decimal: 1 and the bounds and pad width. */
static int parse_range(const char *s, size_t len, long long *lo, long long *hi, int *width)
{
    const char *dots = NULL;
    for (size_t i = 0; i + 1 < len; i++)
        if (s[i] == '.' && s[i + 1] == '.') {
            dots = s + i;
            break;
        }
    if (dots == NULL)
        return 0;
    size_t la = (size_t)(dots - s), lb = len - la - 2;
    if (la == 0 || lb == 0 || la > 18 || lb > 18)
        return 0;
    for (size_t i = 0; i < la; i++)
        if (s[i] < '0' || s[i] > '9')
            return 0;
    for (size_t i = 0; i < lb; i++)
        if (dots[2 + i] < '0' || dots[2 + i] > '9')
            return 0;
    *lo = strtoll(s, NULL, 10);
    *hi = strtoll(dots + 2, NULL, 10);
    /* braceexpand pads when either bound is written with a leading zero */
    int padded = (la > 1 && s[0] == '0') || (lb > 1 && dots[2] == '0');
    *width = padded ? (int)(la > lb ? la : lb) : 0;
    return 1;
}

static int has_top_comma(const char *s, size_t len)
{
    int depth = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '{')
            depth++;
        else if (s[i] == '}')
            depth--;
        else if (s[i] == ',' && depth == 0)
            return 1;
    }
    return 0;
}

/* prefix + mid + suffix, malloc'd. */
static char *join3(const char *a, size_t la, const char *b, size_t lb, const char *c)
{
    size_t lc = strlen(c);
    char *s = malloc(la + lb + lc + 1);
    if (s == NULL)
        return NULL;
    memcpy(s, a, la);
    memcpy(s + la, b, lb);
    memcpy(s + la + lb, c, lc + 1);
    return s;
}

static int expand_from(const char *pattern, const char *s, long from, name_list *out,
                       orch_err *err);

/* Expands prefix+alt+suffix from offset `from` (alternatives may hold braces). */
static int expand_alt(const char *pattern, const char *s, long open, const char *alt, size_t alen,
                      const char *suffix, name_list *out, orch_err *err)
{
    char *t = join3(s, (size_t)open, alt, alen, suffix);
    if (t == NULL)
        return orch_seterr(err, ORCH_ENOMEM, "%s: out of memory", pattern);
    int rc = expand_from(pattern, t, open, out, err);
    free(t);
    return rc;
}

static int expand_from(const char *pattern, const char *s, long from, name_list *out, orch_err *err)
{
    for (long open = from; s[open] != '\0'; open++) {
        if (s[open] != '{')
            continue;
        long close = matching_brace(s, open);
        if (close < 0)
            break; /* an unmatched brace is literal, as in the shell */
        const char *body = s + open + 1;
        size_t blen = (size_t)(close - open - 1);
        const char *suffix = s + close + 1;
        long long lo, hi;
        int width;
        if (parse_range(body, blen, &lo, &hi, &width)) {
            long long step = lo <= hi ? 1 : -1, count = (hi - lo) * step + 1;
            if (count > ORCH_SHARDS_MAX_EXPANSION || out->n + count > ORCH_SHARDS_MAX_EXPANSION)
                return orch_seterr(err, ORCH_EINVAL, "%s: expands to more than %d names", pattern,
                                   ORCH_SHARDS_MAX_EXPANSION);
            for (long long v = lo;; v += step) {
                char num[32];
                int n = snprintf(num, sizeof num, "%0*lld", width, v);
                int rc = expand_alt(pattern, s, open, num, (size_t)n, suffix, out, err);
                if (rc != ORCH_OK)
                    return rc;
                if (v == hi)
                    break;
            }
            return ORCH_OK;
        }
        if (has_top_comma(body, blen)) {
            size_t start = 0;
            int depth = 0;
            for (size_t i = 0; i <= blen; i++) {
                if (i < blen && body[i] == '{')
                    depth++;
                else if (i < blen && body[i] == '}')
                    depth--;
                if (i == blen || (body[i] == ',' && depth == 0)) {
                    int rc =
                        expand_alt(pattern, s, open, body + start, i - start, suffix, out, err);
                    if (rc != ORCH_OK)
                        return rc;
                    if (out->n > ORCH_SHARDS_MAX_EXPANSION)
                        return orch_seterr(err, ORCH_EINVAL, "%s: expands to more than %d names",
                                           pattern, ORCH_SHARDS_MAX_EXPANSION);
                    start = i + 1;
                }
            }
            return ORCH_OK;
        }
        /* "{x}": literal, keep looking after it */
    }
    char *copy = strdup(s);
    if (copy == NULL || list_add(out, copy) != 0) {
        free(copy);
        return orch_seterr(err, ORCH_ENOMEM, "%s: out of memory", pattern);
    }
    return ORCH_OK;
}

int orch_shards_brace(const char *pattern, char ***names, int *n_names, orch_err *err)
{
    name_list l = {0};
    int rc = expand_from(pattern, pattern, 0, &l, err);
    if (rc != ORCH_OK) {
        orch_shards_paths_free(l.v, l.n);
        l.v = NULL;
        l.n = 0;
    }
    *names = l.v;
    *n_names = l.n;
    return rc;
}

static int has_glob(const char *s)
{
    return strpbrk(s, "*?[") != NULL;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The files name stands for: itself when it has no glob characters (and
 * is a regular file), else what glob(3) matches. */
static int resolve(const char *pattern, const char *name, name_list *out, orch_err *err)
{
    if (!has_glob(name)) {
        struct stat st;
        if (stat(name, &st) != 0)
            return strcmp(name, pattern) == 0
                       ? orch_seterr(err, ORCH_EINVAL, "%s: no such shard", name)
                       : orch_seterr(err, ORCH_EINVAL, "%s: no such shard (from %s)", name,
                                     pattern);
        if (!S_ISREG(st.st_mode))
            return orch_seterr(err, ORCH_EINVAL, "%s: not a regular file", name);
        char *copy = strdup(name);
        if (copy == NULL || list_add(out, copy) != 0) {
            free(copy);
            return orch_seterr(err, ORCH_ENOMEM, "%s: out of memory", pattern);
        }
        return ORCH_OK;
    }
    glob_t g;
    memset(&g, 0, sizeof g);
    int grc = glob(name, 0, NULL, &g);
    int rc = ORCH_OK;
    if (grc == GLOB_NOMATCH || (grc == 0 && g.gl_pathc == 0))
        rc = orch_seterr(err, ORCH_EINVAL, "%s: matches no shard", name);
    else if (grc != 0)
        rc =
            orch_seterr(err, grc == GLOB_NOSPACE ? ORCH_ENOMEM : ORCH_EIO, "%s: glob failed", name);
    for (size_t i = 0; rc == ORCH_OK && i < g.gl_pathc; i++) {
        struct stat st;
        if (stat(g.gl_pathv[i], &st) != 0 || !S_ISREG(st.st_mode))
            continue; /* a directory matched by a glob is not a shard */
        char *copy = strdup(g.gl_pathv[i]);
        if (copy == NULL || list_add(out, copy) != 0) {
            free(copy);
            rc = orch_seterr(err, ORCH_ENOMEM, "%s: out of memory", pattern);
        }
    }
    globfree(&g);
    return rc;
}

int orch_shards_expand(const char *const *patterns, int n, char ***paths, int *n_paths,
                       orch_err *err)
{
    name_list out = {0};
    int rc = ORCH_OK;
    *paths = NULL;
    *n_paths = 0;
    for (int p = 0; p < n && rc == ORCH_OK; p++) {
        char **names = NULL;
        int n_names = 0;
        int before = out.n;
        rc = orch_shards_brace(patterns[p], &names, &n_names, err);
        for (int i = 0; rc == ORCH_OK && i < n_names; i++)
            rc = resolve(patterns[p], names[i], &out, err);
        orch_shards_paths_free(names, n_names);
        if (rc == ORCH_OK && out.n == before)
            rc = orch_seterr(err, ORCH_EINVAL, "%s: matches no shard", patterns[p]);
    }
    if (rc != ORCH_OK) {
        orch_shards_paths_free(out.v, out.n);
        return rc;
    }
    if (out.n > 1)
        qsort(out.v, (size_t)out.n, sizeof *out.v, cmp_str);
    int kept = 0;
    for (int i = 0; i < out.n; i++) {
        if (kept > 0 && strcmp(out.v[kept - 1], out.v[i]) == 0) {
            free(out.v[i]);
            continue;
        }
        out.v[kept++] = out.v[i];
    }
    *paths = out.v;
    *n_paths = kept;
    return ORCH_OK;
}
