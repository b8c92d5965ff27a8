/* bundle_sha.c - SHA-256 of memory and of a stream; see bundle_int.h. */
#include "store/bundle_int.h"

#include <stdio.h>

static void to_hex(const unsigned char *d, unsigned n, char hex[65])
{
    for (unsigned i = 0; i < n && i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", d[i]);
    hex[64] = '\0';
}

int bundle_sha_start(bundle_sha *h)
{
    h->md = EVP_MD_CTX_new();
    if (h->md == NULL || EVP_DigestInit_ex(h->md, EVP_sha256(), NULL) != 1) {
        EVP_MD_CTX_free(h->md);
        h->md = NULL;
        return -1;
    }
    return 0;
}

void bundle_sha_add(bundle_sha *h, const void *data, size_t n)
{
    if (h->md != NULL && n > 0)
        EVP_DigestUpdate(h->md, data, n);
}

void bundle_sha_end(bundle_sha *h, char hex[65])
{
    unsigned char d[EVP_MAX_MD_SIZE];
    unsigned n = 0;
    hex[0] = '\0';
    if (h->md != NULL && EVP_DigestFinal_ex(h->md, d, &n) == 1)
        to_hex(d, n, hex);
    EVP_MD_CTX_free(h->md);
    h->md = NULL;
}

void bundle_sha256_hex(const void *data, size_t n, char hex[65])
{
    unsigned char d[EVP_MAX_MD_SIZE];
    unsigned len = 0;
    hex[0] = '\0';
    if (EVP_Digest(data, n, d, &len, EVP_sha256(), NULL) == 1)
        to_hex(d, len, hex);
}
