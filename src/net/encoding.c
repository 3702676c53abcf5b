/*
 * Content codings (net/encoding.h) over zlib: a bounded streaming inflate and a one-shot
 * compress into a reused buffer.
 */
#include "net/encoding.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <zlib.h>

/* zlib's window bits: 15 (32 KiB), +16 for the gzip wrapper; the zlib wrapper is the default. */
#define WBITS_ZLIB 15
#define WBITS_GZIP (15 + 16)

const char *mg_encoding_name(mg_encoding_t e)
{
    switch (e) {
    case MG_ENCODING_GZIP: return "gzip";
    case MG_ENCODING_DEFLATE: return "deflate";
    default: return "identity";
    }
}

/* Trims spaces and tabs around [*p, *p + *n). */
static void trim(const char **p, size_t *n)
{
    while (*n > 0 && (**p == ' ' || **p == '\t')) {
        (*p)++;
        (*n)--;
    }
    while (*n > 0 && ((*p)[*n - 1] == ' ' || (*p)[*n - 1] == '\t'))
        (*n)--;
}

static int is_token(const char *p, size_t n, const char *tok)
{
    return n == strlen(tok) && strncasecmp(p, tok, n) == 0;
}

/* The coding named by [p, p + n), or -1. */
static int coding_of(const char *p, size_t n)
{
    if (n == 0 || is_token(p, n, "identity"))
        return MG_ENCODING_IDENTITY;
    if (is_token(p, n, "gzip") || is_token(p, n, "x-gzip"))
        return MG_ENCODING_GZIP;
    if (is_token(p, n, "deflate"))
        return MG_ENCODING_DEFLATE;
    return -1;
}

int mg_encoding_parse(const char *value, size_t len, mg_encoding_t *out, mg_err_t *err)
{
    const char *p = value;
    size_t n = len;
    trim(&p, &n);
    int c = memchr(p, ',', n) != NULL ? -1 : coding_of(p, n);
    if (c < 0)
        return mg_err_set(err, MG_EENCODING,
                          "Content-Encoding '%.*s' is not supported: send the body as it is, or "
                          "in gzip or deflate",
                          mg_err_quote_len(n), p);
    *out = (mg_encoding_t)c;
    return 0;
}

/* The q-value of one Accept-Encoding element's parameters ("q=0.5"); 1 when absent, -1 bad. */
static double qvalue(const char *p, size_t n)
{
    /* Parameters are ";"-separated; only q matters. */
    double q = 1;
    while (n > 0) {
        const char *semi = memchr(p, ';', n);
        size_t k = semi ? (size_t)(semi - p) : n;
        const char *a = p;
        size_t an = k;
        trim(&a, &an);
        if (an >= 2 && (a[0] == 'q' || a[0] == 'Q') && a[1] == '=') {
            char num[16];
            size_t m = an - 2 < sizeof(num) - 1 ? an - 2 : sizeof(num) - 1;
            memcpy(num, a + 2, m);
            num[m] = '\0';
            char *end;
            q = strtod(num, &end);
            if (end == num || *end != '\0' || q < 0 || q > 1)
                return -1;
        }
        if (semi == NULL)
            break;
        p = semi + 1;
        n -= k + 1;
    }
    return q;
}

mg_encoding_t mg_encoding_accept(const char *value, size_t len)
{
    mg_encoding_t best = MG_ENCODING_IDENTITY;
    double best_q = 0;
    const char *p = value;
    size_t n = len;
    while (n > 0) {
        const char *comma = memchr(p, ',', n);
        size_t k = comma ? (size_t)(comma - p) : n;
        const char *semi = memchr(p, ';', k);
        const char *name = p;
        size_t nn = semi ? (size_t)(semi - p) : k;
        trim(&name, &nn);
        double q = semi ? qvalue(semi + 1, k - (size_t)(semi + 1 - p)) : 1;
        int c = nn > 0 ? coding_of(name, nn) : -1;
        /* Strictly greater: on a tie the coding listed first wins, as in Triton. */
        if (c >= 0 && q > best_q) {
            best = (mg_encoding_t)c;
            best_q = q;
        }
        if (comma == NULL)
            break;
        p = comma + 1;
        n -= k + 1;
    }
    return best;
}

int mg_encoding_inflate(mg_encoding_t e, const char *in, size_t len, size_t max, char **out,
                        size_t *out_len, mg_err_t *err)
{
    const char *name = mg_encoding_name(e);
    if (e == MG_ENCODING_IDENTITY)
        return mg_err_set(err, MG_EINVAL, "inflate: the body is not compressed");
    if (len > UINT32_MAX || max > SIZE_MAX - 1)
        return mg_err_set(err, MG_ETOOBIG, "the %s request body is too large", name);
    z_stream z;
    memset(&z, 0, sizeof(z));
    if (inflateInit2(&z, e == MG_ENCODING_GZIP ? WBITS_GZIP : WBITS_ZLIB) != Z_OK)
        return mg_err_set(err, MG_ENOMEM, "out of memory inflating the %s body", name);
    z.next_in = (unsigned char *)(uintptr_t)in;
    z.avail_in = (uInt)len;
    /* Start at four times the input (text compresses about that much), never past the bound. */
    size_t cap = len < SIZE_MAX / 4 ? len * 4 : SIZE_MAX;
    if (cap < 4096)
        cap = 4096;
    if (cap > max)
        cap = max;
    char *buf = malloc(cap + 1);
    size_t used = 0;
    int rc = buf == NULL ? MG_ENOMEM : 0;
    while (rc == 0) {
        if (used == cap && cap < max) {
            size_t ncap = cap <= max / 2 ? cap * 2 : max;
            char *nb = realloc(buf, ncap + 1);
            if (nb == NULL) {
                rc = MG_ENOMEM;
                break;
            }
            buf = nb;
            cap = ncap;
        }
        /* Full at the bound: inflate into one spare byte; producing it means too much. */
        unsigned char probe;
        bool probing = used == cap;
        size_t room = cap - used;
        z.next_out = probing ? &probe : (unsigned char *)buf + used;
        z.avail_out = probing ? 1 : room > UINT32_MAX ? UINT32_MAX : (uInt)room;
        uInt before = z.avail_out;
        int zr = inflate(&z, Z_NO_FLUSH);
        size_t produced = before - z.avail_out;
        if (probing && produced > 0) {
            rc = mg_err_set(err, MG_ETOOBIG,
                            "the %s request body inflates to more than the %zu-byte limit "
                            "(--max-body-bytes)",
                            name, max);
            break;
        }
        if (!probing)
            used += produced;
        if (zr == Z_STREAM_END) {
            /* gzip allows several members back to back; anything else after the end is junk. */
            if (z.avail_in == 0)
                break;
            if (e != MG_ENCODING_GZIP || inflateReset(&z) != Z_OK)
                rc = mg_err_set(err, MG_EPARSE, "%u bytes follow the end of the %s body",
                                z.avail_in, name);
            continue;
        }
        if (zr == Z_OK || zr == Z_BUF_ERROR) {
            /* No progress possible, or all input taken with room left: the stream wants more
               input than there is. */
            if (zr == Z_BUF_ERROR || (z.avail_in == 0 && z.avail_out > 0))
                rc = mg_err_set(err, MG_EPARSE, "the %s request body is truncated", name);
            continue;
        }
        if (zr == Z_MEM_ERROR)
            rc = MG_ENOMEM;
        else
            rc = mg_err_set(err, MG_EPARSE, "the request body is not valid %s data (%s)", name,
                            z.msg != NULL ? z.msg : "bad stream");
    }
    inflateEnd(&z);
    if (rc == MG_ENOMEM)
        mg_err_set(err, MG_ENOMEM, "out of memory inflating the %s body", name);
    if (rc != 0) {
        free(buf);
        return rc;
    }
    buf[used] = '\0';
    *out = buf;
    *out_len = used;
    return 0;
}

size_t mg_encoding_bound(size_t len)
{
    /* zlib's bound for its own wrapper, plus the gzip header and trailer's extra bytes. */
    return len > UINT32_MAX ? SIZE_MAX : (size_t)compressBound((uLong)len) + 32;
}

int mg_encoding_compress(mg_encoding_t e, const char *in, size_t len, char *out, size_t cap,
                         size_t *out_len)
{
    if (len > UINT32_MAX || cap > UINT32_MAX)
        return MG_ENOMEM;
    z_stream z;
    memset(&z, 0, sizeof(z));
    if (deflateInit2(&z, Z_BEST_SPEED, Z_DEFLATED, e == MG_ENCODING_GZIP ? WBITS_GZIP : WBITS_ZLIB,
                     8, Z_DEFAULT_STRATEGY) != Z_OK)
        return MG_ENOMEM;
    z.next_in = (unsigned char *)(uintptr_t)in;
    z.avail_in = (uInt)len;
    z.next_out = (unsigned char *)out;
    z.avail_out = (uInt)cap;
    int rc = deflate(&z, Z_FINISH) == Z_STREAM_END ? 0 : MG_ENOMEM;
    if (rc == 0)
        *out_len = cap - z.avail_out;
    deflateEnd(&z);
    return rc;
}
