/* locate.c - the source locator: field paths and their lines; see locate.h. */
#include "lua/locate.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ lexer */

enum { T_EOF, T_NAME, T_STRING, T_NUMBER, T_PUNCT, T_OTHER };

typedef struct token {
    int kind;
    int ch;        /* T_PUNCT: one of { } ( ) [ ] , ; = */
    const char *s; /* T_NAME: the name; T_STRING: the contents */
    size_t len;
    int line;
    int simple; /* T_STRING: a quoted string without escapes */
} token;

typedef struct lexer {
    const char *p, *end;
    int line;
} lexer;

/* At p == '[': the level of a long bracket "[==[" (number of '='), or -1. */
static int long_bracket_level(const lexer *lx)
{
    const char *q = lx->p + 1;
    int level = 0;
    while (q < lx->end && *q == '=') {
        level++;
        q++;
    }
    return (q < lx->end && *q == '[') ? level : -1;
}

/* Skips a long bracket of the given level starting at p == '['. */
static void skip_long(lexer *lx, int level)
{
    lx->p += level + 2;
    while (lx->p < lx->end) {
        if (*lx->p == '\n')
            lx->line++;
        if (*lx->p == ']') {
            const char *q = lx->p + 1;
            int n = 0;
            while (q < lx->end && *q == '=') {
                n++;
                q++;
            }
            if (n == level && q < lx->end && *q == ']') {
                lx->p = q + 1;
                return;
            }
        }
        lx->p++;
    }
}

static token lex(lexer *lx)
{
    token t = {T_EOF, 0, NULL, 0, 0, 0};
    for (;;) {
        while (lx->p < lx->end && isspace((unsigned char)*lx->p)) {
            if (*lx->p == '\n')
                lx->line++;
            lx->p++;
        }
        if (lx->p + 1 < lx->end && lx->p[0] == '-' && lx->p[1] == '-') {
            lx->p += 2;
            int level = (lx->p < lx->end && *lx->p == '[') ? long_bracket_level(lx) : -1;
            if (level >= 0) {
                skip_long(lx, level);
            } else {
                while (lx->p < lx->end && *lx->p != '\n')
                    lx->p++;
            }
            continue;
        }
        break;
    }
    t.line = lx->line;
    if (lx->p >= lx->end)
        return t;
    const char *start = lx->p;
    unsigned char c = (unsigned char)*lx->p;
    if (isalpha(c) || c == '_') {
        while (lx->p < lx->end && (isalnum((unsigned char)*lx->p) || *lx->p == '_'))
            lx->p++;
        t.kind = T_NAME;
    } else if (isdigit(c) ||
               (c == '.' && lx->p + 1 < lx->end && isdigit((unsigned char)lx->p[1]))) {
        char prev = 0;
        while (lx->p < lx->end) {
            char d = *lx->p;
            if (isalnum((unsigned char)d) || d == '.' || d == '_' ||
                ((d == '+' || d == '-') &&
                 (prev == 'e' || prev == 'E' || prev == 'p' || prev == 'P'))) {
                prev = d;
                lx->p++;
            } else {
                break;
            }
        }
        t.kind = T_NUMBER;
    } else if (c == '"' || c == '\'') {
        t.kind = T_STRING;
        t.simple = 1;
        lx->p++;
        t.s = lx->p;
        while (lx->p < lx->end && *lx->p != (char)c && *lx->p != '\n') {
            if (*lx->p == '\\') {
                t.simple = 0;
                lx->p++;
                if (lx->p < lx->end && *lx->p == '\n')
                    lx->line++;
            }
            if (lx->p < lx->end)
                lx->p++;
        }
        t.len = (size_t)(lx->p - t.s);
        if (lx->p < lx->end && *lx->p == (char)c)
            lx->p++;
        return t;
    } else if (c == '[' && long_bracket_level(lx) >= 0) {
        skip_long(lx, long_bracket_level(lx));
        t.kind = T_STRING;
    } else if (strchr("{}()[],;", c) != NULL) {
        lx->p++;
        t.kind = T_PUNCT;
        t.ch = c;
    } else if (c == '=') {
        lx->p++;
        if (lx->p < lx->end && *lx->p == '=') {
            lx->p++;
            t.kind = T_OTHER;
        } else {
            t.kind = T_PUNCT;
            t.ch = '=';
        }
    } else if ((c == '<' || c == '>' || c == '~') && lx->p + 1 < lx->end && lx->p[1] == '=') {
        lx->p += 2;
        t.kind = T_OTHER;
    } else {
        lx->p++;
        t.kind = T_OTHER;
    }
    if (t.s == NULL) {
        t.s = start;
        t.len = (size_t)(lx->p - start);
    }
    return t;
}

/* A lexer with up to LOOKAHEAD tokens of lookahead. */
#define LOOKAHEAD 16
typedef struct stream {
    lexer lx;
    token buf[LOOKAHEAD];
    int n; /* tokens buffered */
} stream;

static token *peek(stream *st, int k)
{
    while (st->n <= k)
        st->buf[st->n++] = lex(&st->lx);
    return &st->buf[k];
}

static token take(stream *st)
{
    token t = *peek(st, 0);
    memmove(st->buf, st->buf + 1, sizeof(token) * (size_t)(st->n - 1));
    st->n--;
    return t;
}

/* ---------------------------------------------------------------- scanner */

#define MAX_DEPTH 64

typedef struct frame {
    char kind;                   /* 'R' root, '{' constructor, '(' or '[' */
    int known;                   /* path is meaningful */
    char path[DSL_LOC_PATH_MAX]; /* '{': the table's path */
    char item[DSL_LOC_PATH_MAX]; /* '{': current item's path; '(' '[' 'R': inherited */
    int item_known;
    int index;    /* '{': positional items so far */
    int at_start; /* '{': the next token starts an item */
} frame;

/* Joins parent and key into out; returns 0 if it does not fit. */
static int join_key(char *out, const char *parent, const char *key, size_t key_len)
{
    size_t pl = strlen(parent);
    if (pl + 1 + key_len + 1 > DSL_LOC_PATH_MAX)
        return 0;
    memmove(out, parent, pl);
    if (pl)
        out[pl++] = '.';
    memcpy(out + pl, key, key_len);
    out[pl + key_len] = '\0';
    return 1;
}

static int join_index(char *out, const char *parent, int index)
{
    int n = snprintf(out, DSL_LOC_PATH_MAX, "%s[%d]", parent, index);
    return n > 0 && n < DSL_LOC_PATH_MAX;
}

static int is_name(const token *t, const char *name)
{
    return t->kind == T_NAME && t->len == strlen(name) && memcmp(t->s, name, t->len) == 0;
}

static int is_punct(const token *t, int ch)
{
    return t->kind == T_PUNCT && t->ch == ch;
}

static int is_dot(const token *t)
{
    return t->kind == T_OTHER && t->len == 1 && t->s[0] == '.';
}

static int is_keyword(const token *t)
{
    static const char *const words[] = {"and",   "break", "do",       "else", "elseif", "end",
                                        "false", "for",   "function", "goto", "if",     "in",
                                        "local", "nil",   "not",      "or",   "repeat", "return",
                                        "then",  "true",  "until",    "while"};
    for (size_t i = 0; i < sizeof words / sizeof words[0]; i++)
        if (is_name(t, words[i]))
            return 1;
    return 0;
}

/* At the top level, `var.a.b = value` (the variable assumed to hold the
 * declaration) records a.b; a table constructor or call that follows
 * directly (`= {`, `= lora {`, `= extend(`) inherits the path. Returns 1
 * when t started such an assignment (its tokens are consumed). */
static int root_assignment(stream *st, const token *t, frame *root,
                           void (*fn)(const char *path, int line, void *ud), void *ud)
{
    if (t->kind != T_NAME || is_keyword(t))
        return 0;
    char path[DSL_LOC_PATH_MAX] = "";
    int k = 0;
    while (k + 2 < LOOKAHEAD && is_dot(peek(st, k)) && peek(st, k + 1)->kind == T_NAME) {
        const token *name = peek(st, k + 1);
        if (!join_key(path, path, name->s, name->len))
            return 0;
        k += 2;
    }
    if (k == 0 || k + 1 >= LOOKAHEAD || !is_punct(peek(st, k), '='))
        return 0;
    fn(path, t->line, ud);
    for (int i = 0; i <= k; i++)
        take(st);
    const token *next = peek(st, 0);
    const token *after = peek(st, 1);
    int carries = is_punct(next, '{') ||
                  (next->kind == T_NAME && !is_keyword(next) &&
                   (is_punct(after, '{') || is_punct(after, '(') || after->kind == T_STRING));
    if (carries) {
        memcpy(root->item, path, sizeof root->item);
        root->item_known = 1;
    }
    return 1;
}

void dsl_loc_scan(const char *src, size_t len, void (*fn)(const char *path, int line, void *ud),
                  void *ud)
{
    frame *fr = malloc(sizeof(frame) * MAX_DEPTH);
    if (fr == NULL)
        return;
    stream st = {{src, src + len, 1}, {{0}}, 0};
    int depth = 0;    /* fr[depth] is the innermost tracked frame */
    int overflow = 0; /* brackets opened beyond MAX_DEPTH */
    fr[0].kind = 'R';
    fr[0].known = 1;
    fr[0].path[0] = fr[0].item[0] = '\0';
    fr[0].item_known = 1;
    fr[0].index = fr[0].at_start = 0;
    for (;;) {
        token t = take(&st);
        if (t.kind == T_EOF)
            break;
        frame *f = overflow ? NULL : &fr[depth];
        if (depth == 0 && !overflow && root_assignment(&st, &t, &fr[0], fn, ud))
            continue;
        if (f != NULL && f->kind == '{' && f->at_start) {
            f->at_start = 0;
            if (t.kind == T_NAME && is_punct(peek(&st, 0), '=')) {
                f->item_known = f->known && join_key(f->item, f->path, t.s, t.len);
                if (f->item_known)
                    fn(f->item, t.line, ud);
                take(&st); /* '=' */
                continue;
            }
            if (is_punct(&t, '[') && peek(&st, 0)->kind == T_STRING && peek(&st, 0)->simple &&
                is_punct(peek(&st, 1), ']') && is_punct(peek(&st, 2), '=')) {
                token key = take(&st);
                f->item_known = f->known && join_key(f->item, f->path, key.s, key.len);
                if (f->item_known)
                    fn(f->item, t.line, ud);
                take(&st); /* ']' */
                take(&st); /* '=' */
                continue;
            }
            if (is_punct(&t, '[')) {
                f->item_known = 0; /* a computed key */
            } else if (!is_punct(&t, '}')) {
                f->index++;
                f->item_known = f->known && join_index(f->item, f->path, f->index);
                if (f->item_known)
                    fn(f->item, t.line, ud);
            }
        }
        if (t.kind == T_PUNCT) {
            switch (t.ch) {
            case '{':
            case '(':
            case '[':
                if (overflow || depth + 1 >= MAX_DEPTH) {
                    overflow++;
                    break;
                }
                {
                    frame *g = &fr[++depth];
                    g->kind = (char)t.ch;
                    g->index = 0;
                    g->at_start = t.ch == '{';
                    if (t.ch == '{') {
                        g->known = f->item_known;
                        memcpy(g->path, f->item, sizeof g->path);
                        g->item[0] = '\0';
                        g->item_known = 0;
                    } else {
                        g->known = f->item_known;
                        g->path[0] = '\0';
                        memcpy(g->item, f->item, sizeof g->item);
                        g->item_known = f->item_known;
                    }
                }
                break;
            case '}':
            case ')':
            case ']':
                if (overflow) {
                    overflow--;
                } else if (depth > 0 && --depth == 0) {
                    fr[0].item[0] = '\0'; /* a top-level statement ended */
                }
                break;
            case ',':
            case ';':
                if (f != NULL && f->kind == '{')
                    f->at_start = 1;
                break;
            default:
                break;
            }
        } else if (depth == 0 && !overflow && is_name(&t, "return")) {
            fn(NULL, t.line, ud);
        }
    }
    free(fr);
}

/* ---------------------------------------------------------------- storage */

void dsl_loc_init(dsl_locator *loc)
{
    memset(loc, 0, sizeof *loc);
}

void dsl_loc_free(dsl_locator *loc)
{
    if (loc == NULL)
        return;
    for (size_t i = 0; i < loc->n_entries; i++)
        free(loc->entries[i].path);
    for (size_t i = 0; i < loc->n_sources; i++)
        free(loc->sources[i].name);
    free(loc->entries);
    free(loc->sources);
    memset(loc, 0, sizeof *loc);
}

static int add_source(dsl_locator *loc, const char *name, int is_set)
{
    if (loc->n_sources == loc->cap_sources) {
        size_t cap = loc->cap_sources ? loc->cap_sources * 2 : 8;
        dsl_loc_source *grown = realloc(loc->sources, cap * sizeof *grown);
        if (grown == NULL)
            return -1;
        loc->sources = grown;
        loc->cap_sources = cap;
    }
    char *copy = strdup(name);
    if (copy == NULL)
        return -1;
    dsl_loc_source *s = &loc->sources[loc->n_sources];
    s->name = copy;
    s->is_set = is_set;
    s->rank = 0;
    s->return_line = 0;
    return (int)loc->n_sources++;
}

static void add_entry(dsl_locator *loc, int source, const char *path, int line)
{
    if (loc->n_entries == loc->cap_entries) {
        size_t cap = loc->cap_entries ? loc->cap_entries * 2 : 64;
        dsl_loc_entry *grown = realloc(loc->entries, cap * sizeof *grown);
        if (grown == NULL)
            return;
        loc->entries = grown;
        loc->cap_entries = cap;
    }
    char *copy = strdup(path);
    if (copy == NULL)
        return;
    loc->entries[loc->n_entries].path = copy;
    loc->entries[loc->n_entries].line = line;
    loc->entries[loc->n_entries].source = source;
    loc->n_entries++;
}

typedef struct scan_sink {
    dsl_locator *loc;
    int source;
} scan_sink;

static void record(const char *path, int line, void *ud)
{
    scan_sink *sink = ud;
    if (path == NULL)
        sink->loc->sources[sink->source].return_line = line;
    else
        add_entry(sink->loc, sink->source, path, line);
}

int dsl_loc_add_file(dsl_locator *loc, const char *name, const char *src, size_t len)
{
    int source = add_source(loc, name, 0);
    if (source < 0)
        return -1;
    scan_sink sink = {loc, source};
    dsl_loc_scan(src, len, record, &sink);
    return source;
}

void dsl_loc_finish(dsl_locator *loc, int source)
{
    if (source >= 0 && (size_t)source < loc->n_sources)
        loc->sources[source].rank = ++loc->next_rank;
}

void dsl_loc_add_set(dsl_locator *loc, const char *path, const char *arg)
{
    int source = add_source(loc, arg, 1);
    if (source < 0)
        return;
    loc->sources[source].rank = ++loc->next_rank;
    add_entry(loc, source, path, 0);
}

int dsl_loc_add_derived(dsl_locator *loc, const char *file)
{
    int source = add_source(loc, file, 0);
    if (source >= 0)
        loc->sources[source].rank = ++loc->next_rank;
    return source;
}

void dsl_loc_add_entry(dsl_locator *loc, int source, const char *path, int line)
{
    if (source >= 0 && (size_t)source < loc->n_sources)
        add_entry(loc, source, path, line);
}

dsl_loc_mark dsl_loc_save(const dsl_locator *loc)
{
    dsl_loc_mark m = {loc->n_entries, loc->n_sources, loc->next_rank};
    return m;
}

void dsl_loc_rewind(dsl_locator *loc, dsl_loc_mark mark)
{
    while (loc->n_entries > mark.n_entries)
        free(loc->entries[--loc->n_entries].path);
    while (loc->n_sources > mark.n_sources)
        free(loc->sources[--loc->n_sources].name);
    loc->next_rank = mark.next_rank;
}

/* ----------------------------------------------------------------- lookup */

/* 1 if a is p or an ancestor of p ("optimizer" of "optimizer.lr"). */
static int covers(const char *a, const char *p)
{
    size_t n = strlen(a);
    if (strncmp(a, p, n) != 0)
        return 0;
    return p[n] == '\0' || p[n] == '.' || p[n] == '[';
}

/* Cuts the last component of path in place; returns 0 when nothing is left. */
static int to_parent(char *path)
{
    char *dot = strrchr(path, '.');
    char *bracket = strrchr(path, '[');
    char *cut = dot > bracket ? dot : bracket;
    if (cut == NULL || cut == path) {
        path[0] = '\0';
        return 0;
    }
    *cut = '\0';
    return 1;
}

/* Step 1: the most specific --set covering path, latest on ties. */
static const dsl_loc_entry *set_covering(const dsl_locator *loc, const char *path)
{
    const dsl_loc_entry *best = NULL;
    for (size_t i = 0; i < loc->n_entries; i++) {
        const dsl_loc_entry *e = &loc->entries[i];
        if (!loc->sources[e->source].is_set || !covers(e->path, path))
            continue;
        if (best == NULL || strlen(e->path) >= strlen(best->path))
            best = e;
    }
    return best;
}

/* Step 2: the file entry of the most specific recorded ancestor-or-self. */
static const dsl_loc_entry *file_entry(const dsl_locator *loc, const char *path)
{
    char p[DSL_LOC_PATH_MAX];
    snprintf(p, sizeof p, "%s", path);
    while (p[0] != '\0') {
        const dsl_loc_entry *best = NULL;
        for (size_t i = 0; i < loc->n_entries; i++) {
            const dsl_loc_entry *e = &loc->entries[i];
            if (loc->sources[e->source].is_set || strcmp(e->path, p) != 0)
                continue;
            /* >=: within a file the later assignment wins, as in Lua */
            if (best == NULL || loc->sources[e->source].rank >= loc->sources[best->source].rank)
                best = e;
        }
        if (best != NULL)
            return best;
        if (!to_parent(p))
            break;
    }
    return NULL;
}

int dsl_loc_find(const dsl_locator *loc, const char *path, const char *main, char *buf, size_t n)
{
    const dsl_loc_entry *e = set_covering(loc, path);
    if (e != NULL) {
        snprintf(buf, n, "%s", loc->sources[e->source].name);
        return 1;
    }
    e = file_entry(loc, path);
    if (e != NULL) {
        snprintf(buf, n, "%s:%d", loc->sources[e->source].name, e->line);
        return 1;
    }
    for (size_t i = loc->n_entries; i-- > 0;) { /* step 3, latest first */
        const dsl_loc_entry *s = &loc->entries[i];
        if (loc->sources[s->source].is_set && covers(path, s->path)) {
            snprintf(buf, n, "%s", loc->sources[s->source].name);
            return 1;
        }
    }
    for (size_t i = 0; i < loc->n_sources; i++) {
        const dsl_loc_source *s = &loc->sources[i];
        if (!s->is_set && strcmp(s->name, main) == 0 && s->return_line > 0) {
            snprintf(buf, n, "%s:%d", main, s->return_line);
            return 1;
        }
    }
    snprintf(buf, n, "%s", main);
    return 0;
}

const char *dsl_loc_origin(const dsl_locator *loc, const char *path, int *from_set)
{
    *from_set = 0;
    if (set_covering(loc, path) != NULL) {
        *from_set = 1;
        return NULL;
    }
    const dsl_loc_entry *e = file_entry(loc, path);
    return e != NULL ? loc->sources[e->source].name : NULL;
}
