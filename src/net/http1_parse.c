#include "net/http1_parse.h"

#include <string.h>

#define CHUNK_EXT_MAX 256 /* bytes of one chunk's extensions */
#define CHUNK_HEX_MAX 16  /* hex digits of one chunk size: 64 bits */
#define METHOD_MAX    32
#define LEADING_CRLF  8 /* bytes of blank lines skipped before a request line */

/*
 * RFC 9110 tchar: ALPHA, DIGIT and !#$%&'*+-.^_`|~, as one bit per byte value below 128
 * (bytes 0-63, then 64-127).
 */
static inline int is_tchar(unsigned char ch)
{
    static const uint64_t set[2] = {0x03ff6cfa00000000ull, 0x57ffffffc7fffffeull};
    return ch < 128 && (set[ch >> 6] >> (ch & 63) & 1);
}

/*
 * Whether any of the 8 bytes of w (loaded from the text in any order) is below 0x20 or is
 * 0x7f: the bytes a field value may hold only as HTAB, which the caller then looks at one
 * by one. Bytes of 0x80 and above are allowed (obs-text) and never flagged.
 */
static inline int word_has_ctl(uint64_t w)
{
    const uint64_t ones = 0x0101010101010101ull, highs = 0x8080808080808080ull;
    uint64_t low = (w & ~highs) + ones * (0x80 - 0x20); /* a byte's high bit: its low 7 >= 0x20 */
    uint64_t del = (w & ~highs) + ones;                 /* a byte's high bit: its low 7 == 0x7f */
    return ((~low | del) & ~w & highs) != 0;
}

static int crlf_expected(mg_err_t *err)
{
    return mg_err_set(err, MG_EPARSE, "malformed request: lines must end with CRLF");
}

int mg_http1_scan_head(mg_http1_head_t *h, const mg_http1_limits_t *lim, const char *b, size_t n,
                       mg_err_t *err)
{
    for (;;) {
        const char *nl = h->scan < n ? memchr(b + h->scan, '\n', n - h->scan) : NULL;
        if (nl == NULL) {
            size_t partial = n - h->line_start;
            if (h->nlines == 0 && partial > lim->max_request_line + 2)
                return mg_err_set(err, MG_EURITOOLONG, "request line is longer than %zu bytes",
                                  lim->max_request_line);
            if (h->nlines > 0 && partial > lim->max_header_field + 2)
                return mg_err_set(err, MG_EHEADERS, "header field %zu is longer than %zu bytes",
                                  h->nlines, lim->max_header_field);
            if (h->nlines > 0 && h->header_bytes + partial > lim->max_header_bytes + 2)
                return mg_err_set(err, MG_EHEADERS, "header section is larger than %zu bytes",
                                  lim->max_header_bytes);
            h->scan = n;
            return 0;
        }
        /* Limits before the CRLF check, so the verdict is the same however the input came. */
        size_t end = (size_t)(nl - b), raw = end - h->line_start;
        int cr = raw > 0 && b[end - 1] == '\r';
        size_t len = cr ? raw - 1 : raw;
        if (h->nlines == 0) {
            if (len > lim->max_request_line)
                return mg_err_set(err, MG_EURITOOLONG, "request line is longer than %zu bytes",
                                  lim->max_request_line);
            if (!cr)
                return crlf_expected(err);
            if (len == 0 && h->line_start < LEADING_CRLF) { /* blank lines before a request */
                h->line_start = h->scan = end + 1;
                continue;
            }
            h->line0 = (mg_http1_span_t){(uint32_t)h->line_start, (uint32_t)len};
        } else {
            if (len > lim->max_header_field)
                return mg_err_set(err, MG_EHEADERS, "header field %zu is longer than %zu bytes",
                                  h->nlines, lim->max_header_field);
            if (len > 0 && h->header_bytes + len + 2 > lim->max_header_bytes)
                return mg_err_set(err, MG_EHEADERS, "header section is larger than %zu bytes",
                                  lim->max_header_bytes);
            if (!cr)
                return crlf_expected(err);
            if (len == 0) {
                h->head_len = end + 1;
                return 1;
            }
            if (h->nlines > lim->max_headers)
                return mg_err_set(err, MG_EHEADERS, "more than %zu header fields",
                                  lim->max_headers);
            h->header_bytes += len + 2;
            h->hdrs[h->nlines - 1] = (mg_http1_span_t){(uint32_t)h->line_start, (uint32_t)len};
        }
        h->nlines++;
        h->line_start = h->scan = end + 1;
    }
}

static int lc_eq(const char *p, size_t n, const char *lit)
{
    if (n != strlen(lit))
        return 0;
    for (size_t i = 0; i < n; i++) {
        char ch = p[i];
        if (ch >= 'A' && ch <= 'Z')
            ch = (char)(ch + 32);
        if (ch != lit[i])
            return 0;
    }
    return 1;
}

/* Whether the comma-separated list `v` holds the token `tok` (case-insensitive). */
static int has_token(const char *v, size_t n, const char *tok)
{
    size_t i = 0;
    while (i < n) {
        while (i < n && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
            i++;
        size_t s = i;
        while (i < n && v[i] != ',')
            i++;
        size_t e = i;
        while (e > s && (v[e - 1] == ' ' || v[e - 1] == '\t'))
            e--;
        if (e > s && lc_eq(v + s, e - s, tok))
            return 1;
    }
    return 0;
}

void mg_http1_header(const mg_http1_head_t *h, const char *b, size_t i, mg_str_t *name,
                     mg_str_t *value)
{
    const char *p = b + h->hdrs[i].start;
    size_t n = h->hdrs[i].len, k = 0;
    while (k < n && p[k] != ':')
        k++;
    *name = (mg_str_t){p, k};
    size_t vs = k < n ? k + 1 : n, ve = n;
    while (vs < n && (p[vs] == ' ' || p[vs] == '\t'))
        vs++;
    while (ve > vs && (p[ve - 1] == ' ' || p[ve - 1] == '\t'))
        ve--;
    *value = (mg_str_t){p + vs, ve - vs};
}

/* Checks header line `i`, lower-casing its name in place. Returns 0 or MG_EPARSE. */
static int check_header(const mg_http1_head_t *h, char *b, size_t i, mg_err_t *err)
{
    char *p = b + h->hdrs[i].start;
    size_t n = h->hdrs[i].len, k = 0;
    if (p[0] == ' ' || p[0] == '\t')
        return mg_err_set(err, MG_EPARSE,
                          "malformed header: obsolete line folding is not accepted");
    while (k < n && is_tchar((unsigned char)p[k])) {
        if (p[k] >= 'A' && p[k] <= 'Z')
            p[k] = (char)(p[k] + 32);
        k++;
    }
    if (k == 0 || k == n || p[k] != ':')
        return mg_err_set(err, MG_EPARSE, "malformed header field '%.*s'", mg_err_quote_len(n), p);
    size_t j = k + 1;
    for (; j + 8 <= n; j += 8) { /* eight bytes a test; a flagged word is looked at below */
        uint64_t w;
        memcpy(&w, p + j, sizeof(w));
        if (word_has_ctl(w))
            break;
    }
    for (; j < n; j++) {
        unsigned char ch = (unsigned char)p[j];
        if ((ch < 0x20 && ch != '\t') || ch == 0x7f)
            return mg_err_set(err, MG_EPARSE, "header '%.*s' holds a control character",
                              mg_err_quote_len(k), p);
    }
    return 0;
}

static int parse_length(mg_http1_head_t *h, mg_str_t v, mg_err_t *err)
{
    size_t len = 0;
    if (v.len == 0 || v.len > 19)
        return mg_err_set(err, MG_EPARSE, "Content-Length must be a decimal byte count");
    for (size_t k = 0; k < v.len; k++) {
        if (v.ptr[k] < '0' || v.ptr[k] > '9')
            return mg_err_set(err, MG_EPARSE, "Content-Length must be a decimal byte count");
        len = len * 10 + (size_t)(v.ptr[k] - '0');
    }
    if (h->has_length && len != h->content_length)
        return mg_err_set(err, MG_EPARSE, "two different Content-Length values");
    h->has_length = 1;
    h->content_length = len;
    return 0;
}

static int bad_line(mg_err_t *err)
{
    return mg_err_set(err, MG_EPARSE, "malformed request line: expected METHOD /path HTTP/1.1");
}

int mg_http1_parse_head(mg_http1_head_t *h, const mg_http1_limits_t *lim, char *b, mg_err_t *err)
{
    const char *p = b + h->line0.start;
    size_t n = h->line0.len, i = 0;
    while (i < n && is_tchar((unsigned char)p[i]))
        i++;
    if (i == 0 || i > METHOD_MAX || i >= n || p[i] != ' ')
        return bad_line(err);
    h->method = (mg_http1_span_t){h->line0.start, (uint32_t)i};
    size_t t = ++i;
    while (i < n && (unsigned char)p[i] > 0x20 && (unsigned char)p[i] < 0x7f)
        i++;
    if (i == t || i + 1 >= n || p[i] != ' ')
        return bad_line(err);
    if (p[t] != '/')
        return mg_err_set(err, MG_EPARSE, "request target must be a path starting with '/'");
    h->target = (mg_http1_span_t){(uint32_t)(h->line0.start + t), (uint32_t)(i - t)};
    const char *ver = p + i + 1;
    size_t vlen = n - i - 1;
    if (vlen != 8 || memcmp(ver, "HTTP/1.", 7) != 0 || (ver[7] != '0' && ver[7] != '1'))
        return mg_err_set(err, MG_EPARSE, "unsupported protocol '%.*s': HTTP/1.0 and HTTP/1.1 only",
                          mg_err_quote_len(vlen), ver);
    h->version_minor = ver[7] - '0';
    h->keep_alive = h->version_minor == 1;
    h->is_head = h->method.len == 4 && memcmp(p, "HEAD", 4) == 0;

    int te = 0;
    for (size_t k = 0; k + 1 < h->nlines; k++) {
        int rc = check_header(h, b, k, err);
        if (rc != 0)
            return rc;
        mg_str_t name, value;
        mg_http1_header(h, b, k, &name, &value);
        if (mg_str_eq(name, "content-length")) {
            if ((rc = parse_length(h, value, err)) != 0)
                return rc;
        } else if (mg_str_eq(name, "transfer-encoding")) {
            if (te++ || !lc_eq(value.ptr, value.len, "chunked"))
                return mg_err_set(
                    err, MG_EPARSE,
                    "Transfer-Encoding '%.*s' is not supported: only a single chunked",
                    mg_err_quote_len(value.len), value.ptr);
        } else if (mg_str_eq(name, "connection")) {
            if (has_token(value.ptr, value.len, "close"))
                h->keep_alive = 0;
            else if (has_token(value.ptr, value.len, "keep-alive"))
                h->keep_alive = 1;
        } else if (mg_str_eq(name, "expect")) {
            if (!lc_eq(value.ptr, value.len, "100-continue"))
                return mg_err_set(err, MG_EPARSE, "Expect '%.*s' is not supported",
                                  mg_err_quote_len(value.len), value.ptr);
            h->expect_continue = 1;
        }
    }
    if (te && h->has_length)
        return mg_err_set(
            err, MG_EPARSE,
            "Content-Length and Transfer-Encoding together are refused (ambiguous framing)");
    if (te && h->version_minor == 0)
        return mg_err_set(err, MG_EPARSE, "Transfer-Encoding is not allowed in HTTP/1.0");
    h->chunked = te;
    if (h->has_length && h->content_length > lim->max_body_bytes)
        return mg_err_set(
            err, MG_ETOOBIG,
            "request body of %zu bytes is larger than the %zu-byte limit (--max-body-bytes)",
            h->content_length, lim->max_body_bytes);
    return 0;
}

/* ---- chunked bodies ---------------------------------------------------------------------- */

enum { CH_SIZE = 0, CH_EXT, CH_SIZE_LF, CH_DATA, CH_DATA_CR, CH_DATA_LF, CH_TRAILER };

static int hexval(char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

static int bad_chunk(mg_err_t *err, const char *why)
{
    return mg_err_set(err, MG_EPARSE, "malformed chunked body: %s", why);
}

int mg_http1_read_chunked(mg_http1_chunked_t *c, const mg_http1_limits_t *lim, const char *b,
                          size_t n, mg_buf_t *body, mg_err_t *err)
{
    size_t pos = c->pos;
    while (pos < n) {
        char ch = b[pos];
        switch (c->state) {
        case CH_SIZE: {
            int v = hexval(ch);
            if (v >= 0) {
                if (++c->digits > CHUNK_HEX_MAX)
                    return mg_err_set(err, MG_EPARSE, "chunk size of more than %d hex digits",
                                      CHUNK_HEX_MAX);
                c->size = c->size * 16 + (size_t)v;
            } else if (c->digits == 0) {
                return bad_chunk(err, "chunk size expected");
            } else if (ch == ';' || ch == ' ' || ch == '\t') {
                c->state = CH_EXT;
            } else if (ch == '\r') {
                c->state = CH_SIZE_LF;
            } else {
                return bad_chunk(err, "bad chunk size");
            }
            pos++;
            break;
        }
        case CH_EXT:
            if (ch == '\r')
                c->state = CH_SIZE_LF;
            else if (ch == '\n' || ++c->ext > CHUNK_EXT_MAX)
                return bad_chunk(err, "bad chunk extension");
            pos++;
            break;
        case CH_SIZE_LF:
            if (ch != '\n')
                return bad_chunk(err, "CRLF expected");
            pos++;
            if (++c->count > lim->max_chunks)
                return mg_err_set(err, MG_ETOOBIG, "chunked body of more than %zu chunks",
                                  lim->max_chunks);
            if (c->size == 0) {
                c->state = CH_TRAILER;
                c->line_start = pos;
            } else if (c->size > lim->max_body_bytes - body->len) {
                return mg_err_set(
                    err, MG_ETOOBIG,
                    "request body is larger than the %zu-byte limit (--max-body-bytes)",
                    lim->max_body_bytes);
            } else {
                c->state = CH_DATA;
            }
            break;
        case CH_DATA: {
            size_t take = n - pos < c->size ? n - pos : c->size;
            if (mg_buf_append(body, b + pos, take) != 0)
                return mg_err_set(err, MG_ENOMEM, "out of memory");
            pos += take;
            c->size -= take;
            if (c->size == 0)
                c->state = CH_DATA_CR;
            break;
        }
        case CH_DATA_CR:
        case CH_DATA_LF:
            if (ch != (c->state == CH_DATA_CR ? '\r' : '\n'))
                return bad_chunk(err, "chunk data longer than its size");
            pos++;
            if (c->state == CH_DATA_LF) {
                c->state = CH_SIZE;
                c->size = c->digits = c->ext = 0;
            } else {
                c->state = CH_DATA_LF;
            }
            break;
        case CH_TRAILER: {
            const char *nl = memchr(b + pos, '\n', n - pos);
            if (nl == NULL) {
                if (c->trailer + (n - c->line_start) > lim->max_header_bytes + 1)
                    return mg_err_set(err, MG_EHEADERS, "trailer section is larger than %zu bytes",
                                      lim->max_header_bytes);
                pos = n;
                break;
            }
            size_t end = (size_t)(nl - b);
            if (end > c->line_start + 1 &&
                c->trailer + end + 1 - c->line_start > lim->max_header_bytes)
                return mg_err_set(err, MG_EHEADERS, "trailer section is larger than %zu bytes",
                                  lim->max_header_bytes);
            if (end == c->line_start || b[end - 1] != '\r')
                return bad_chunk(err, "lines must end with CRLF");
            if (end - 1 == c->line_start) {
                c->pos = end + 1;
                return 1;
            }
            c->trailer += end + 1 - c->line_start;
            pos = c->line_start = end + 1;
            break;
        }
        default: return bad_chunk(err, "bad state");
        }
    }
    c->pos = pos;
    return 0;
}
