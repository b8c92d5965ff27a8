/* npy.c - numpy .npy reader and writer; see npy.h. */
#include "store/npy.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "npy.c assumes a little-endian host"
#endif

#define MAGIC      "\x93NUMPY"
#define MAGIC_LEN  6
#define HEADER_MAX (1u << 20) /* numpy itself refuses headers above 10000 bytes by default */

/* ------------------------------------------------------------ dtypes */

/* A file element type orch can load. */
typedef struct file_type {
    char kind; /* 'f', 'i', 'u' */
    int size;  /* bytes per element in the file */
    orch_npy_dtype loads_as;
} file_type;

static const file_type FILE_TYPES[] = {
    {'f', 4, ORCH_NPY_F32}, {'f', 8, ORCH_NPY_F32}, {'i', 8, ORCH_NPY_I64},
    {'i', 4, ORCH_NPY_I64}, {'i', 1, ORCH_NPY_I64}, {'u', 1, ORCH_NPY_I64},
};

static const char *expected_text(orch_npy_dtype want)
{
    switch (want) {
    case ORCH_NPY_F32:
        return "float32 '<f4'";
    case ORCH_NPY_I64:
        return "int64 '<i8'";
    case ORCH_NPY_ANY:
        break;
    }
    return "float32 '<f4' or int64 '<i8'";
}

/* Maps descr to a loadable type for want, or explains the refusal. */
static int parse_descr(const char *path, const char *descr, orch_npy_dtype want,
                       const file_type **out, orch_err *err)
{
    size_t len = strlen(descr);
    char order = len > 0 ? descr[0] : '?';
    if (order == '>' && !(len == 3 && descr[2] == '1'))
        return orch_seterr(err, ORCH_EINVAL,
                           "%s: big-endian dtype '%s' not supported (save a little-endian array, "
                           "e.g. a.astype('<%s'))",
                           path, descr, descr + 1);
    const file_type *ft = NULL;
    if ((order == '<' || order == '=' || order == '|' || order == '>') && len == 3 &&
        isdigit((unsigned char)descr[2]) && descr[3] == '\0') {
        for (size_t i = 0; i < sizeof FILE_TYPES / sizeof FILE_TYPES[0]; i++)
            if (FILE_TYPES[i].kind == descr[1] && FILE_TYPES[i].size == descr[2] - '0')
                ft = &FILE_TYPES[i];
    }
    /* '|' only goes with one-byte types, as numpy writes it */
    if (ft != NULL && order == '|' && ft->size != 1)
        ft = NULL;
    if (ft == NULL || (want != ORCH_NPY_ANY && ft->loads_as != want))
        return orch_seterr(err, ORCH_EINVAL, "%s: dtype '%s' not supported (expected %s)", path,
                           descr, expected_text(want));
    *out = ft;
    return ORCH_OK;
}

/* ------------------------------------------------------- header dict */

typedef struct dict_parser {
    const char *s;
    size_t n, i;
    const char *why; /* first problem found */
} dict_parser;

static void skip_ws(dict_parser *p)
{
    while (p->i < p->n &&
           (p->s[p->i] == ' ' || p->s[p->i] == '\t' || p->s[p->i] == '\n' || p->s[p->i] == '\r'))
        p->i++;
}

static int expect(dict_parser *p, char c, const char *why)
{
    skip_ws(p);
    if (p->i < p->n && p->s[p->i] == c) {
        p->i++;
        return 1;
    }
    p->why = why;
    return 0;
}

/* A quoted Python string without escapes into buf. */
static int parse_string(dict_parser *p, char *buf, size_t cap)
{
    skip_ws(p);
    if (p->i >= p->n || (p->s[p->i] != '\'' && p->s[p->i] != '"')) {
        p->why = "expected a quoted string";
        return 0;
    }
    char q = p->s[p->i++];
    size_t len = 0;
    while (p->i < p->n && p->s[p->i] != q) {
        if (p->s[p->i] == '\\' || len + 1 >= cap) {
            p->why = "unsupported string";
            return 0;
        }
        buf[len++] = p->s[p->i++];
    }
    if (p->i >= p->n) {
        p->why = "unterminated string";
        return 0;
    }
    p->i++;
    buf[len] = '\0';
    return 1;
}

static int parse_bool(dict_parser *p, int *v)
{
    skip_ws(p);
    if (p->n - p->i >= 4 && memcmp(p->s + p->i, "True", 4) == 0) {
        p->i += 4;
        *v = 1;
        return 1;
    }
    if (p->n - p->i >= 5 && memcmp(p->s + p->i, "False", 5) == 0) {
        p->i += 5;
        *v = 0;
        return 1;
    }
    p->why = "fortran_order is not True or False";
    return 0;
}

/* "(2, 3)", "(3,)", "()" */
static int parse_shape(dict_parser *p, int64_t *shape, int *ndim)
{
    if (!expect(p, '(', "shape is not a tuple"))
        return 0;
    *ndim = 0;
    for (;;) {
        skip_ws(p);
        if (p->i < p->n && p->s[p->i] == ')') {
            p->i++;
            return 1;
        }
        if (*ndim == ORCH_NPY_MAX_DIMS) {
            p->why = "more than 8 dimensions";
            return 0;
        }
        if (p->i >= p->n || !isdigit((unsigned char)p->s[p->i])) {
            p->why = "shape entry is not a non-negative integer";
            return 0;
        }
        int64_t v = 0;
        while (p->i < p->n && isdigit((unsigned char)p->s[p->i])) {
            if (v > (INT64_MAX - 9) / 10) {
                p->why = "shape entry too large";
                return 0;
            }
            v = v * 10 + (p->s[p->i++] - '0');
        }
        if (p->i < p->n && p->s[p->i] == 'L') /* Python 2 long */
            p->i++;
        shape[(*ndim)++] = v;
        skip_ws(p);
        if (p->i < p->n && p->s[p->i] == ',') {
            p->i++;
            continue;
        }
        if (!expect(p, ')', "shape tuple is not closed"))
            return 0;
        return 1;
    }
}

typedef struct header_dict {
    char descr[16];
    int fortran_order;
    int64_t shape[ORCH_NPY_MAX_DIMS];
    int ndim;
} header_dict;

static int parse_dict(const char *path, const char *text, size_t n, header_dict *h, orch_err *err)
{
    dict_parser p = {text, n, 0, NULL};
    int have_descr = 0, have_order = 0, have_shape = 0;
    if (!expect(&p, '{', "it does not start with '{'"))
        goto bad;
    for (;;) {
        skip_ws(&p);
        if (p.i < p.n && p.s[p.i] == '}') {
            p.i++;
            break;
        }
        char key[32];
        if (!parse_string(&p, key, sizeof key) || !expect(&p, ':', "expected ':' after a key"))
            goto bad;
        if (strcmp(key, "descr") == 0) {
            skip_ws(&p);
            if (p.i < p.n && (p.s[p.i] == '[' || p.s[p.i] == '(')) {
                return orch_seterr(err, ORCH_EINVAL,
                                   "%s: structured dtype not supported (expected a plain "
                                   "float32 or int64 array)",
                                   path);
            }
            if (!parse_string(&p, h->descr, sizeof h->descr))
                goto bad;
            have_descr = 1;
        } else if (strcmp(key, "fortran_order") == 0) {
            if (!parse_bool(&p, &h->fortran_order))
                goto bad;
            have_order = 1;
        } else if (strcmp(key, "shape") == 0) {
            if (!parse_shape(&p, h->shape, &h->ndim))
                goto bad;
            have_shape = 1;
        } else {
            return orch_seterr(err, ORCH_EINVAL, "%s: malformed header dict: unexpected key '%s'",
                               path, key);
        }
        skip_ws(&p);
        if (p.i < p.n && p.s[p.i] == ',') {
            p.i++;
            continue;
        }
        if (!expect(&p, '}', "expected ',' or '}'"))
            goto bad;
        break;
    }
    if (!have_descr || !have_order || !have_shape)
        return orch_seterr(err, ORCH_EINVAL, "%s: malformed header dict: it lacks '%s'", path,
                           !have_descr   ? "descr"
                           : !have_order ? "fortran_order"
                                         : "shape");
    return ORCH_OK;
bad:
    return orch_seterr(err, ORCH_EINVAL, "%s: malformed header dict: %s (at byte %zu of the dict)",
                       path, p.why ? p.why : "syntax error", p.i);
}

/* "(2, 3)" into buf. */
static const char *shape_tuple(const int64_t *shape, int ndim, char *buf, size_t n)
{
    size_t len = (size_t)snprintf(buf, n, "(");
    for (int i = 0; i < ndim && len < n; i++)
        len += (size_t)snprintf(buf + len, n - len, "%s%lld", i ? ", " : "", (long long)shape[i]);
    if (len < n)
        snprintf(buf + len, n - len, ndim == 1 ? ",)" : ")");
    return buf;
}

/* --------------------------------------------------------------- load */

static int read_exact(FILE *fp, void *buf, size_t n)
{
    return fread(buf, 1, n, fp) == n;
}

/* Reads numel elements of ft from fp into a->f32 / a->i64, converting. */
static int read_data(const char *path, FILE *fp, const file_type *ft, orch_npy *a, orch_err *err)
{
    size_t numel = (size_t)a->numel;
    size_t out_size = a->dtype == ORCH_NPY_F32 ? sizeof(float) : sizeof(int64_t);
    void *buf = malloc((numel > 0 ? numel : 1) * out_size);
    if (buf == NULL)
        return orch_seterr(err, ORCH_ENOMEM, "%s: out of memory for %zu elements", path, numel);
    if (a->dtype == ORCH_NPY_F32)
        a->f32 = buf;
    else
        a->i64 = buf;
    if ((size_t)ft->size == out_size && ft->kind != 'u') {
        if (!read_exact(fp, buf, numel * out_size))
            return orch_seterr(err, ORCH_EIO, "%s: read failed: %s", path, strerror(errno));
        return ORCH_OK;
    }
    unsigned char chunk[1 << 14];
    size_t per = sizeof chunk / (size_t)ft->size;
    for (size_t done = 0; done < numel;) {
        size_t m = numel - done < per ? numel - done : per;
        if (!read_exact(fp, chunk, m * (size_t)ft->size))
            return orch_seterr(err, ORCH_EIO, "%s: read failed: %s", path, strerror(errno));
        for (size_t k = 0; k < m; k++) {
            const unsigned char *src = chunk + k * (size_t)ft->size;
            if (ft->kind == 'f') { /* only f8 gets here */
                double d;
                memcpy(&d, src, sizeof d);
                a->f32[done + k] = (float)d;
            } else if (ft->size == 4) {
                int32_t v;
                memcpy(&v, src, sizeof v);
                a->i64[done + k] = v;
            } else {
                a->i64[done + k] = ft->kind == 'u' ? (int64_t)src[0] : (int64_t)(int8_t)src[0];
            }
        }
        done += m;
    }
    return ORCH_OK;
}

/* Opens path, reads and checks its header (including that the data size
 * matches the shape) and fills *out without data. On ORCH_OK *fpp is the
 * open file (the caller closes it) positioned at the data and *ftp its
 * element type; on error *fpp is NULL and *out zeroed. */
static int stream_header(const char *path, FILE *fp, int64_t size, orch_npy_dtype want,
                         orch_npy *out, FILE **fpp, const file_type **ftp, orch_err *err);

static int open_header(const char *path, orch_npy_dtype want, orch_npy *out, FILE **fpp,
                       const file_type **ftp, orch_err *err)
{
    memset(out, 0, sizeof *out);
    *fpp = NULL;
    /* O_NONBLOCK: a FIFO put in the file's place must not block the open;
     * fstat refuses it (and devices) before anything is read */
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0)
        return orch_seterr(err, ORCH_EINVAL, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return orch_seterr(err, ORCH_EINVAL, "%s: not a regular file", path);
    }
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
    FILE *fp = fdopen(fd, "rb");
    if (fp == NULL) {
        close(fd);
        return orch_seterr(err, ORCH_ENOMEM, "%s: cannot open: %s", path, strerror(errno));
    }
    return stream_header(path, fp, (int64_t)st.st_size, want, out, fpp, ftp, err);
}

/* open_header's checks on an open stream fp of size bytes (a file, or a
 * memory buffer through fmemopen); takes fp (closed on error, else handed
 * back in *fpp). */
static int stream_header(const char *path, FILE *fp, int64_t size, orch_npy_dtype want,
                         orch_npy *out, FILE **fpp, const file_type **ftp, orch_err *err)
{
    int rc = ORCH_OK;
    char *text = NULL;
    memset(out, 0, sizeof *out);
    *fpp = NULL;
    unsigned char pre[12];
    if (size < 10 || !read_exact(fp, pre, 10)) {
        rc = orch_seterr(err, ORCH_EINVAL, "%s: truncated: %lld bytes, too short for a .npy header",
                         path, (long long)size);
        goto out;
    }
    if (memcmp(pre, MAGIC, MAGIC_LEN) != 0) {
        rc = orch_seterr(err, ORCH_EINVAL, "%s: not a .npy file (bad magic)", path);
        goto out;
    }
    int major = pre[6], minor = pre[7];
    int64_t hlen, hstart;
    if (major == 1) {
        hlen = pre[8] | (pre[9] << 8);
        hstart = 10;
    } else if (major == 2 || major == 3) {
        if (size < 12 || !read_exact(fp, pre + 10, 2)) {
            rc = orch_seterr(err, ORCH_EINVAL,
                             "%s: truncated: %lld bytes, too short for a .npy "
                             "header",
                             path, (long long)size);
            goto out;
        }
        hlen = (int64_t)pre[8] | ((int64_t)pre[9] << 8) | ((int64_t)pre[10] << 16) |
               ((int64_t)pre[11] << 24);
        hstart = 12;
    } else {
        rc = orch_seterr(err, ORCH_EINVAL, "%s: unsupported .npy format version %d.%d", path, major,
                         minor);
        goto out;
    }
    if (hlen > (int64_t)HEADER_MAX) {
        rc = orch_seterr(err, ORCH_EINVAL, "%s: header length %lld is implausibly large", path,
                         (long long)hlen);
        goto out;
    }
    if (hstart + hlen > size) {
        rc = orch_seterr(err, ORCH_EINVAL,
                         "%s: truncated: header length %lld but only %lld bytes follow", path,
                         (long long)hlen, (long long)(size - hstart));
        goto out;
    }
    text = malloc((size_t)hlen + 1);
    if (text == NULL) {
        rc = orch_seterr(err, ORCH_ENOMEM, "%s: out of memory", path);
        goto out;
    }
    if (!read_exact(fp, text, (size_t)hlen)) {
        rc = orch_seterr(err, ORCH_EIO, "%s: read failed: %s", path, strerror(errno));
        goto out;
    }
    text[hlen] = '\0';
    header_dict h;
    memset(&h, 0, sizeof h);
    rc = parse_dict(path, text, (size_t)hlen, &h, err);
    if (rc != ORCH_OK)
        goto out;
    const file_type *ft = NULL;
    rc = parse_descr(path, h.descr, want, &ft, err);
    if (rc != ORCH_OK)
        goto out;
    if (h.fortran_order && h.ndim > 1) {
        rc = orch_seterr(err, ORCH_EINVAL,
                         "%s: fortran_order True not supported (save np.ascontiguousarray(a))",
                         path);
        goto out;
    }
    int64_t numel = 1;
    for (int i = 0; i < h.ndim; i++) {
        if (h.shape[i] > 0 && numel > (INT64_MAX / 8) / h.shape[i]) {
            rc = orch_seterr(err, ORCH_EINVAL, "%s: shape is implausibly large", path);
            goto out;
        }
        numel *= h.shape[i];
    }
    int64_t need = numel * ft->size, have = size - hstart - hlen;
    if (have != need) {
        char sbuf[200];
        shape_tuple(h.shape, h.ndim, sbuf, sizeof sbuf);
        rc = orch_seterr(
            err, ORCH_EINVAL, "%s: %s%lld bytes of data, but shape %s of '%s' needs %lld", path,
            have < need ? "truncated: " : "", (long long)have, sbuf, h.descr, (long long)need);
        goto out;
    }
    out->dtype = ft->loads_as;
    snprintf(out->descr, sizeof out->descr, "%s", h.descr);
    out->ndim = h.ndim;
    memcpy(out->shape, h.shape, sizeof h.shape);
    out->numel = numel;
    *ftp = ft;
out:
    free(text);
    if (rc != ORCH_OK) {
        memset(out, 0, sizeof *out);
        fclose(fp);
    } else {
        *fpp = fp;
    }
    return rc;
}

int orch_npy_read_header(const char *path, orch_npy_dtype want, orch_npy *out, orch_err *err)
{
    FILE *fp;
    const file_type *ft;
    int rc = open_header(path, want, out, &fp, &ft, err);
    if (rc == ORCH_OK)
        fclose(fp);
    return rc;
}

int orch_npy_load(const char *path, orch_npy_dtype want, orch_npy *out, orch_err *err)
{
    FILE *fp;
    const file_type *ft;
    int rc = open_header(path, want, out, &fp, &ft, err);
    if (rc != ORCH_OK)
        return rc;
    rc = read_data(path, fp, ft, out, err);
    if (rc != ORCH_OK)
        orch_npy_free(out);
    fclose(fp);
    return rc;
}

int orch_npy_load_mem(const char *name, const void *buf, size_t len, orch_npy_dtype want,
                      int header_only, orch_npy *out, orch_err *err)
{
    memset(out, 0, sizeof *out);
    if (len == 0)
        return orch_seterr(err, ORCH_EINVAL, "%s: truncated: 0 bytes, too short for a .npy header",
                           name);
    /* fmemopen only reads buf; its prototype takes a non-const pointer */
    FILE *fp = fmemopen((void *)(uintptr_t)buf, len, "rb");
    if (fp == NULL)
        return orch_seterr(err, ORCH_ENOMEM, "%s: cannot read from memory: %s", name,
                           strerror(errno));
    const file_type *ft;
    int rc = stream_header(name, fp, (int64_t)len, want, out, &fp, &ft, err);
    if (rc != ORCH_OK)
        return rc;
    if (!header_only) {
        rc = read_data(name, fp, ft, out, err);
        if (rc != ORCH_OK)
            orch_npy_free(out);
    }
    fclose(fp);
    return rc;
}

void orch_npy_free(orch_npy *a)
{
    if (a == NULL)
        return;
    free(a->f32);
    free(a->i64);
    memset(a, 0, sizeof *a);
}

/* --------------------------------------------------------------- save */

static int write_all(int fd, const void *buf, size_t n)
{
    const char *p = buf;
    while (n > 0) {
        ssize_t w = write(fd, p, n > (1u << 30) ? (1u << 30) : n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* numpy.lib.format._write_array_header + _wrap_header (numpy 1.24). */
/* The .npy header numpy.save writes for (descr, shape) into head (room for
 * 12 + 512 + 64 + 1 bytes); returns its length. */
static size_t build_header(const char *descr, const int64_t *shape, int ndim, unsigned char *head)
{
    char tuple[256], dict[512];
    shape_tuple(shape, ndim, tuple, sizeof tuple);
    int len = snprintf(dict, sizeof dict, "{'descr': '%s', 'fortran_order': False, 'shape': %s, }",
                       descr, tuple);
    /* spare room for growing axis 0 in place (numpy >= 1.23:
     * GROWTH_AXIS_MAX_DIGITS = 21 minus the digits of shape[0]) */
    if (ndim > 0) {
        char digits[32];
        int nd = snprintf(digits, sizeof digits, "%lld", (long long)shape[0]);
        for (int i = nd; i < 21; i++)
            dict[len++] = ' ';
    }
    int hlen = len + 1; /* the final '\n' */
    int prefix = 10, version = 1;
    int pad = 64 - ((prefix + hlen) % 64);
    if (hlen + pad > 65535) {
        version = 2;
        prefix = 12;
        pad = 64 - ((prefix + hlen) % 64);
    }
    memcpy(head, MAGIC, MAGIC_LEN);
    head[6] = (unsigned char)version;
    head[7] = 0;
    uint32_t stored = (uint32_t)(hlen + pad);
    for (int i = 0; i < prefix - 8; i++)
        head[8 + i] = (unsigned char)(stored >> (8 * i));
    memcpy(head + prefix, dict, (size_t)len);
    memset(head + prefix + len, ' ', (size_t)pad);
    head[prefix + len + pad] = '\n';
    return (size_t)(prefix + len + pad + 1);
}

static int encode(const char *descr, const void *data, size_t elem, const int64_t *shape, int ndim,
                  void **buf, size_t *len, orch_err *err)
{
    *buf = NULL;
    *len = 0;
    if (ndim < 0 || ndim > ORCH_NPY_MAX_DIMS)
        return orch_seterr(err, ORCH_EINVAL, "npy: %d dimensions (at most %d)", ndim,
                           ORCH_NPY_MAX_DIMS);
    int64_t numel = 1;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0)
            return orch_seterr(err, ORCH_EINVAL, "npy: negative dimension");
        numel *= shape[i];
    }
    unsigned char head[12 + 512 + 64 + 1];
    size_t head_size = build_header(descr, shape, ndim, head);
    size_t total = head_size + (size_t)numel * elem;
    unsigned char *out = malloc(total);
    if (out == NULL)
        return orch_seterr(err, ORCH_ENOMEM, "npy: out of memory for %zu bytes", total);
    memcpy(out, head, head_size);
    if (numel > 0)
        memcpy(out + head_size, data, (size_t)numel * elem);
    *buf = out;
    *len = total;
    return ORCH_OK;
}

int orch_npy_encode_f32(const float *data, const int64_t *shape, int ndim, void **buf, size_t *len,
                        orch_err *err)
{
    return encode("<f4", data, sizeof(float), shape, ndim, buf, len, err);
}

int orch_npy_encode_i64(const int64_t *data, const int64_t *shape, int ndim, void **buf,
                        size_t *len, orch_err *err)
{
    return encode("<i8", data, sizeof(int64_t), shape, ndim, buf, len, err);
}

int orch_npy_encode_u8(const uint8_t *data, const int64_t *shape, int ndim, void **buf, size_t *len,
                       orch_err *err)
{
    return encode("|u1", data, 1, shape, ndim, buf, len, err);
}

static int save(const char *path, const char *descr, const void *data, size_t elem,
                const int64_t *shape, int ndim, orch_err *err)
{
    int rc = ORCH_OK;
    int fd = -1, created = 0;
    char *tmp = NULL;
    if (ndim < 0 || ndim > ORCH_NPY_MAX_DIMS)
        return orch_seterr(err, ORCH_EINVAL, "%s: %d dimensions (at most %d)", path, ndim,
                           ORCH_NPY_MAX_DIMS);
    int64_t numel = 1;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0)
            return orch_seterr(err, ORCH_EINVAL, "%s: negative dimension", path);
        numel *= shape[i];
    }
    if (numel > 0 && data == NULL)
        return orch_seterr(err, ORCH_EINVAL, "%s: no data", path);
    unsigned char head[12 + 512 + 64 + 1];
    size_t head_size = build_header(descr, shape, ndim, head);

    tmp = malloc(strlen(path) + 16);
    if (tmp == NULL) {
        rc = orch_seterr(err, ORCH_ENOMEM, "%s: out of memory", path);
        goto out;
    }
    sprintf(tmp, "%s.tmp-XXXXXX", path);
    fd = mkstemp(tmp);
    created = fd >= 0;
    if (fd < 0) {
        rc = orch_seterr(err, ORCH_EIO, "%s: cannot create a temporary file: %s", path,
                         strerror(errno));
        goto out;
    }
    if (fchmod(fd, 0644) != 0 || write_all(fd, head, head_size) != 0 ||
        (numel > 0 && write_all(fd, data, (size_t)numel * elem) != 0) || fsync(fd) != 0) {
        rc = orch_seterr(err, ORCH_EIO, "%s: write failed: %s", path, strerror(errno));
        goto out;
    }
    int closed = close(fd);
    fd = -1;
    if (closed != 0 || rename(tmp, path) != 0) {
        rc = orch_seterr(err, ORCH_EIO, "%s: cannot finish the file: %s", path, strerror(errno));
        goto out;
    }
out:
    if (fd >= 0)
        close(fd);
    if (rc != ORCH_OK && created)
        unlink(tmp);
    free(tmp);
    return rc;
}

int orch_npy_save_f32(const char *path, const float *data, const int64_t *shape, int ndim,
                      orch_err *err)
{
    return save(path, "<f4", data, sizeof(float), shape, ndim, err);
}

int orch_npy_save_i64(const char *path, const int64_t *data, const int64_t *shape, int ndim,
                      orch_err *err)
{
    return save(path, "<i8", data, sizeof(int64_t), shape, ndim, err);
}
