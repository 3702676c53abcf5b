#include "net/http1.h"

#include "core/buf.h"
#include "core/err.h"
#include "proto/json.h"
#include "serve/status.h"

#include <netinet/in.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <xxhash.h>

#define CLIENT_SLOTS    16384 /* per-client connection counts, hashed by address */
#define LINGER_MS       2000  /* how long a connection closed on an error drains its input */
#define CHUNK_EXT_MAX   256   /* bytes of one chunk's extensions */
#define CHUNK_HEX_MAX   16    /* hex digits of one chunk size: 64 bits */
#define METHOD_MAX      32
#define TRAILER_MAX_LEN 8192

void mg_http1_limits_default(mg_http1_limits_t *l)
{
    *l = (mg_http1_limits_t){
        .max_request_line = 8192,
        .max_header_field = 8192,
        .max_header_bytes = 65536,
        .max_headers = 100,
        .max_body_bytes = (size_t)64 << 20,
        .max_chunks = 65536,
        .max_pipelined = 64,
        .max_connections = 10000,
        .max_client_conns = 256,
        .header_timeout_ms = 10000,
        .body_timeout_ms = 60000,
        .idle_timeout_ms = 30000,
    };
}

struct mg_http1_shared {
    mg_http1_limits_t limits;
    int nlisteners;
    atomic_size_t *listener_conns;          /* per listener */
    atomic_uint client_conns[CLIENT_SLOTS]; /* per hashed client address, all listeners */
};

struct mg_http1_loop {
    mg_http1_shared_t *shared;
    h2o_context_t *ctx;
    h2o_timeout_t header_timeout, body_timeout, idle_timeout, linger_timeout;
    h2o_linklist_t conns;
    size_t nconns;
};

typedef enum {
    ST_IDLE = 0, /* keep-alive: waiting for the next request's first byte */
    ST_HEAD,     /* reading the request line and headers */
    ST_BODY,     /* reading the body */
    ST_PROCESS,  /* handed to h2o; reading stopped until the response is written */
    ST_CLOSING,  /* writing an error answer, then lingering */
} conn_state_t;

typedef enum {
    CH_SIZE = 0,
    CH_EXT,
    CH_SIZE_LF,
    CH_DATA,
    CH_DATA_CR,
    CH_DATA_LF,
    CH_TRAILER,
} chunk_state_t;

/* One header line of the head being read: offsets into the input buffer. */
typedef struct hdr_span {
    uint32_t start, len;
} hdr_span_t;

typedef struct conn {
    h2o_conn_t super; /* first: h2o hands back this pointer */
    h2o_socket_t *sock;
    mg_http1_loop_t *loop;
    h2o_linklist_t link;
    h2o_timeout_entry_t timer;
    int listener;
    int counted_listener;
    int client_slot; /* -1: not counted */
    conn_state_t state;
    int req_live;         /* `req` initialised */
    int continue_pending; /* a "100 Continue" write is in flight */
    size_t burst;         /* requests answered since input last ran dry */
    /* The head being read. */
    size_t scan, line_start, nlines, header_bytes, head_len;
    hdr_span_t *hdrs; /* limits.max_headers entries */
    uint32_t line0_start, line0_len;
    /* Framing, from the head. */
    int version_minor, keep_alive, chunked, has_length, expect_continue, is_head;
    size_t content_length;
    /* Chunked body. */
    chunk_state_t ch;
    size_t ch_pos, ch_size, ch_digits, ch_ext, ch_count, ch_line_start, ch_trailer;
    mg_buf_t body;
    size_t reqsize; /* input bytes the request used, head and body */
    /* The response. */
    h2o_ostream_t ostr;
    int sent_headers, final_sent;
    mg_buf_t errbuf;
    h2o_req_t req; /* last: large */
} conn_t;

static void on_read(h2o_socket_t *sock, const char *err);
static void advance(conn_t *c);

/* ---- shared state and loops ------------------------------------------------------------- */

int mg_http1_shared_new(mg_http1_shared_t **out, const mg_http1_limits_t *limits, int nlisteners)
{
    mg_http1_shared_t *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return MG_ENOMEM;
    s->listener_conns = calloc((size_t)(nlisteners > 0 ? nlisteners : 1), sizeof(atomic_size_t));
    if (s->listener_conns == NULL) {
        free(s);
        return MG_ENOMEM;
    }
    s->limits = *limits;
    s->nlisteners = nlisteners;
    for (int i = 0; i < nlisteners; i++)
        atomic_init(&s->listener_conns[i], 0);
    for (int i = 0; i < CLIENT_SLOTS; i++)
        atomic_init(&s->client_conns[i], 0);
    *out = s;
    return 0;
}

void mg_http1_shared_free(mg_http1_shared_t *s)
{
    if (s == NULL)
        return;
    free(s->listener_conns);
    free(s);
}

int mg_http1_loop_new(mg_http1_loop_t **out, mg_http1_shared_t *shared, h2o_context_t *ctx)
{
    mg_http1_loop_t *l = calloc(1, sizeof(*l));
    if (l == NULL)
        return MG_ENOMEM;
    l->shared = shared;
    l->ctx = ctx;
    const mg_http1_limits_t *lim = &shared->limits;
    h2o_timeout_init(ctx->loop, &l->header_timeout, lim->header_timeout_ms);
    h2o_timeout_init(ctx->loop, &l->body_timeout, lim->body_timeout_ms);
    h2o_timeout_init(ctx->loop, &l->idle_timeout, lim->idle_timeout_ms);
    h2o_timeout_init(ctx->loop, &l->linger_timeout, LINGER_MS);
    h2o_linklist_init_anchor(&l->conns);
    *out = l;
    return 0;
}

size_t mg_http1_loop_connections(const mg_http1_loop_t *l)
{
    return l->nconns;
}

/* ---- connections ------------------------------------------------------------------------- */

static void set_timer(conn_t *c, h2o_timeout_t *t, h2o_timeout_cb cb)
{
    if (h2o_timeout_is_linked(&c->timer))
        h2o_timeout_unlink(&c->timer);
    if (t != NULL) {
        c->timer.cb = cb;
        h2o_timeout_link(c->loop->ctx->loop, t, &c->timer);
    }
}

static void reset_request(conn_t *c)
{
    c->scan = c->line_start = c->nlines = c->header_bytes = c->head_len = 0;
    c->line0_start = c->line0_len = 0;
    c->version_minor = c->keep_alive = c->chunked = c->has_length = 0;
    c->expect_continue = c->is_head = 0;
    c->content_length = 0;
    c->ch = CH_SIZE;
    c->ch_pos = c->ch_size = c->ch_digits = c->ch_ext = c->ch_count = 0;
    c->ch_line_start = c->ch_trailer = 0;
    mg_buf_free(&c->body);
    c->reqsize = 0;
    c->sent_headers = c->final_sent = 0;
}

static void close_conn(conn_t *c)
{
    set_timer(c, NULL, NULL);
    if (c->req_live) {
        c->req_live = 0;
        h2o_dispose_request(&c->req);
    }
    c->sock->data = NULL;
    h2o_socket_close(c->sock);
    mg_http1_shared_t *sh = c->loop->shared;
    if (c->counted_listener)
        atomic_fetch_sub_explicit(&sh->listener_conns[c->listener], 1, memory_order_relaxed);
    if (c->client_slot >= 0)
        atomic_fetch_sub_explicit(&sh->client_conns[c->client_slot], 1, memory_order_relaxed);
    h2o_linklist_unlink(&c->link);
    c->loop->nconns--;
    free(c->hdrs);
    mg_buf_free(&c->body);
    mg_buf_free(&c->errbuf);
    free(c);
}

void mg_http1_loop_close_all(mg_http1_loop_t *l)
{
    while (!h2o_linklist_is_empty(&l->conns))
        close_conn(H2O_STRUCT_FROM_MEMBER(conn_t, link, l->conns.next));
}

void mg_http1_loop_free(mg_http1_loop_t *l)
{
    if (l == NULL)
        return;
    h2o_timeout_dispose(l->ctx->loop, &l->header_timeout);
    h2o_timeout_dispose(l->ctx->loop, &l->body_timeout);
    h2o_timeout_dispose(l->ctx->loop, &l->idle_timeout);
    h2o_timeout_dispose(l->ctx->loop, &l->linger_timeout);
    free(l);
}

/* ---- answers that end a connection ------------------------------------------------------- */

static void on_linger_read(h2o_socket_t *sock, const char *err)
{
    conn_t *c = sock->data;
    if (err != NULL) {
        close_conn(c);
        return;
    }
    h2o_buffer_consume(&sock->input, sock->input->size);
}

static void on_linger_timeout(h2o_timeout_entry_t *entry)
{
    close_conn(H2O_STRUCT_FROM_MEMBER(conn_t, timer, entry));
}

/*
 * The answer is out: stop sending, and read (and drop) what the client still sends for a
 * moment, so closing with unread input does not reset the connection before it read the
 * answer.
 */
static void on_error_written(h2o_socket_t *sock, const char *err)
{
    conn_t *c = sock->data;
    if (err != NULL) {
        close_conn(c);
        return;
    }
    shutdown(h2o_socket_get_fd(sock), SHUT_WR);
    h2o_buffer_consume(&sock->input, sock->input->size);
    set_timer(c, &c->loop->linger_timeout, on_linger_timeout);
    h2o_socket_read_start(sock, on_linger_read);
}

/*
 * Answers {"error": msg} with the status of `code` and closes the connection. Only before a
 * request was handed to h2o (nothing else is being written). Returns -1, for parsers.
 */
static int fail(conn_t *c, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(conn_t *c, int code, const char *fmt, ...)
{
    char msg[300];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    int status = mg_status_http(code);
    mg_buf_t body = {0};
    mg_buf_reset(&c->errbuf);
    int rc = mg_json_put_error(&body, msg);
    if (rc == 0)
        rc = mg_buf_printf(
            &c->errbuf,
            "HTTP/1.1 %d %s\r\nServer: modelgate\r\nContent-Type: application/json\r\n"
            "Content-Length: %zu\r\nConnection: close\r\n%s\r\n",
            status, mg_status_phrase(status), body.len, status == 503 ? "Retry-After: 1\r\n" : "");
    if (rc == 0)
        rc = mg_buf_append(&c->errbuf, body.data, body.len);
    mg_buf_free(&body);
    c->state = ST_CLOSING;
    set_timer(c, NULL, NULL);
    h2o_socket_read_stop(c->sock);
    if (rc != 0) {
        close_conn(c);
        return -1;
    }
    h2o_iovec_t v = h2o_iovec_init(c->errbuf.data, c->errbuf.len);
    h2o_socket_write(c->sock, &v, 1, on_error_written);
    return -1;
}

static void on_head_timeout(h2o_timeout_entry_t *entry)
{
    conn_t *c = H2O_STRUCT_FROM_MEMBER(conn_t, timer, entry);
    fail(c, MG_ECLIENTSLOW, "the request line and headers did not arrive within %u ms",
         c->loop->shared->limits.header_timeout_ms);
}

static void on_body_timeout(h2o_timeout_entry_t *entry)
{
    conn_t *c = H2O_STRUCT_FROM_MEMBER(conn_t, timer, entry);
    fail(c, MG_ECLIENTSLOW, "the request body did not arrive within %u ms",
         c->loop->shared->limits.body_timeout_ms);
}

static void on_idle_timeout(h2o_timeout_entry_t *entry)
{
    close_conn(H2O_STRUCT_FROM_MEMBER(conn_t, timer, entry));
}

/* ---- the head ---------------------------------------------------------------------------- */

/* RFC 9110 tchar. */
static int is_tchar(unsigned char ch)
{
    static const char extra[] = "!#$%&'*+-.^_`|~";
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           (ch != 0 && strchr(extra, ch) != NULL);
}

/*
 * Scans the input for the end of the head, checking each line against its limit as soon as
 * it is known (an over-long line is refused before its end arrives). Returns 1 (complete:
 * c->head_len set), 0 (more input needed) or -1 (answered and closing).
 */
static int scan_head(conn_t *c)
{
    const mg_http1_limits_t *lim = &c->loop->shared->limits;
    const char *b = c->sock->input->bytes;
    size_t n = c->sock->input->size;
    for (;;) {
        const char *nl = c->scan < n ? memchr(b + c->scan, '\n', n - c->scan) : NULL;
        if (nl == NULL) {
            size_t partial = n - c->line_start;
            if (c->nlines == 0 && partial > lim->max_request_line + 2)
                return fail(c, MG_EURITOOLONG, "request line is longer than %zu bytes",
                            lim->max_request_line);
            if (c->nlines > 0 && partial > lim->max_header_field + 2)
                return fail(c, MG_EHEADERS, "header field %zu is longer than %zu bytes", c->nlines,
                            lim->max_header_field);
            if (c->nlines > 0 && c->header_bytes + partial > lim->max_header_bytes + 2)
                return fail(c, MG_EHEADERS, "header section is larger than %zu bytes",
                            lim->max_header_bytes);
            c->scan = n;
            return 0;
        }
        size_t end = (size_t)(nl - b);
        if (end == c->line_start || b[end - 1] != '\r')
            return fail(c, MG_EPARSE, "malformed request: lines must end with CRLF");
        size_t len = end - 1 - c->line_start;
        if (c->nlines == 0) {
            if (len == 0 && c->line_start < 8) { /* blank lines before a request may be skipped */
                c->line_start = c->scan = end + 1;
                continue;
            }
            if (len > lim->max_request_line)
                return fail(c, MG_EURITOOLONG, "request line is longer than %zu bytes",
                            lim->max_request_line);
            c->line0_start = (uint32_t)c->line_start;
            c->line0_len = (uint32_t)len;
        } else if (len == 0) {
            c->head_len = end + 1;
            return 1;
        } else {
            if (len > lim->max_header_field)
                return fail(c, MG_EHEADERS, "header field %zu is longer than %zu bytes", c->nlines,
                            lim->max_header_field);
            c->header_bytes += len + 2;
            if (c->header_bytes > lim->max_header_bytes)
                return fail(c, MG_EHEADERS, "header section is larger than %zu bytes",
                            lim->max_header_bytes);
            if (c->nlines > lim->max_headers)
                return fail(c, MG_EHEADERS, "more than %zu header fields", lim->max_headers);
            if (c->hdrs == NULL &&
                (c->hdrs = malloc(sizeof(*c->hdrs) * (lim->max_headers ? lim->max_headers : 1))) ==
                    NULL)
                return fail(c, MG_ENOMEM, "out of memory");
            c->hdrs[c->nlines - 1] = (hdr_span_t){(uint32_t)c->line_start, (uint32_t)len};
        }
        c->nlines++;
        c->line_start = c->scan = end + 1;
    }
}

static int lc_eq(const char *p, size_t n, const char *lit)
{
    size_t k = strlen(lit);
    if (n != k)
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

/* Splits header line `h` into a lower-cased name and a trimmed value. Returns 0 or -1. */
static int split_header(conn_t *c, const hdr_span_t *h, h2o_iovec_t *name, h2o_iovec_t *value)
{
    char *p = c->sock->input->bytes + h->start;
    size_t n = h->len, i = 0;
    if (p[0] == ' ' || p[0] == '\t')
        return fail(c, MG_EPARSE, "malformed header: obsolete line folding is not accepted");
    while (i < n && is_tchar((unsigned char)p[i])) {
        if (p[i] >= 'A' && p[i] <= 'Z')
            p[i] = (char)(p[i] + 32);
        i++;
    }
    if (i == 0 || i == n || p[i] != ':')
        return fail(c, MG_EPARSE, "malformed header field %.*s", mg_err_quote_len(n), p);
    *name = h2o_iovec_init(p, i);
    i++;
    while (i < n && (p[i] == ' ' || p[i] == '\t'))
        i++;
    size_t e = n;
    while (e > i && (p[e - 1] == ' ' || p[e - 1] == '\t'))
        e--;
    for (size_t k = i; k < e; k++) {
        unsigned char ch = (unsigned char)p[k];
        if ((ch < 0x20 && ch != '\t') || ch == 0x7f)
            return fail(c, MG_EPARSE, "header '%.*s' holds a control character",
                        mg_err_quote_len(name->len), name->base);
    }
    *value = h2o_iovec_init(p + i, e - i);
    return 0;
}

/* Reads a Content-Length value. Returns 0 or -1 (answered). */
static int parse_length(conn_t *c, h2o_iovec_t v)
{
    size_t len = 0;
    if (v.len == 0 || v.len > 19)
        return fail(c, MG_EPARSE, "Content-Length must be a decimal byte count");
    for (size_t k = 0; k < v.len; k++) {
        if (v.base[k] < '0' || v.base[k] > '9')
            return fail(c, MG_EPARSE, "Content-Length must be a decimal byte count");
        len = len * 10 + (size_t)(v.base[k] - '0');
    }
    if (c->has_length && len != c->content_length)
        return fail(c, MG_EPARSE, "two different Content-Length values");
    c->has_length = 1;
    c->content_length = len;
    return 0;
}

/* Parses the request line and the framing headers of a complete head. Returns 0 or -1. */
static int parse_head(conn_t *c)
{
    const mg_http1_limits_t *lim = &c->loop->shared->limits;
    const char *p = c->sock->input->bytes + c->line0_start;
    size_t n = c->line0_len, i = 0;
    while (i < n && is_tchar((unsigned char)p[i]))
        i++;
    if (i == 0 || i > METHOD_MAX || i >= n || p[i] != ' ')
        return fail(c, MG_EPARSE, "malformed request line: expected METHOD /path HTTP/1.1");
    size_t t = ++i;
    while (i < n && (unsigned char)p[i] > 0x20 && (unsigned char)p[i] < 0x7f)
        i++;
    if (i == t || i >= n || p[i] != ' ' || p[i + 1] == ' ')
        return fail(c, MG_EPARSE, "malformed request line: expected METHOD /path HTTP/1.1");
    if (p[t] != '/')
        return fail(c, MG_EPARSE, "request target must be a path starting with '/'");
    const char *ver = p + i + 1;
    size_t vlen = n - i - 1;
    if (vlen != 8 || memcmp(ver, "HTTP/1.", 7) != 0 || (ver[7] != '0' && ver[7] != '1'))
        return fail(c, MG_EPARSE, "unsupported protocol '%.*s': HTTP/1.0 and HTTP/1.1 only",
                    mg_err_quote_len(vlen), ver);
    c->version_minor = ver[7] - '0';
    c->keep_alive = c->version_minor == 1;
    c->is_head = t - 1 == 4 && memcmp(p, "HEAD", 4) == 0;

    int te = 0;
    for (size_t k = 0; k + 1 < c->nlines; k++) {
        h2o_iovec_t name = {NULL, 0}, value = {NULL, 0};
        if (split_header(c, &c->hdrs[k], &name, &value) != 0)
            return -1;
        if (h2o_memis(name.base, name.len, H2O_STRLIT("content-length"))) {
            if (parse_length(c, value) != 0)
                return -1;
        } else if (h2o_memis(name.base, name.len, H2O_STRLIT("transfer-encoding"))) {
            if (te++ || !lc_eq(value.base, value.len, "chunked"))
                return fail(c, MG_EPARSE,
                            "Transfer-Encoding '%.*s' is not supported: only a single chunked",
                            mg_err_quote_len(value.len), value.base);
        } else if (h2o_memis(name.base, name.len, H2O_STRLIT("connection"))) {
            if (has_token(value.base, value.len, "close"))
                c->keep_alive = 0;
            else if (has_token(value.base, value.len, "keep-alive"))
                c->keep_alive = 1;
        } else if (h2o_memis(name.base, name.len, H2O_STRLIT("expect"))) {
            if (!lc_eq(value.base, value.len, "100-continue"))
                return fail(c, MG_EPARSE, "Expect '%.*s' is not supported",
                            mg_err_quote_len(value.len), value.base);
            c->expect_continue = 1;
        }
    }
    if (te && c->has_length)
        return fail(
            c, MG_EPARSE,
            "Content-Length and Transfer-Encoding together are refused (ambiguous framing)");
    if (te && c->version_minor == 0)
        return fail(c, MG_EPARSE, "Transfer-Encoding is not allowed in HTTP/1.0");
    c->chunked = te;
    if (c->has_length && c->content_length > lim->max_body_bytes)
        return fail(
            c, MG_ETOOBIG,
            "request body of %zu bytes is larger than the %zu-byte limit (--max-body-bytes)",
            c->content_length, lim->max_body_bytes);
    return 0;
}

/* ---- the body ---------------------------------------------------------------------------- */

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

/*
 * Decodes chunked input from c->ch_pos on, appending data to c->body; a state machine over
 * the bytes, so no chunk costs stack or more than its bytes. Returns 1 (complete: c->reqsize
 * set), 0 (more input needed) or -1 (answered).
 */
static int read_chunked(conn_t *c)
{
    const mg_http1_limits_t *lim = &c->loop->shared->limits;
    const char *b = c->sock->input->bytes;
    size_t n = c->sock->input->size, pos = c->ch_pos;
    while (pos < n) {
        char ch = b[pos];
        switch (c->ch) {
        case CH_SIZE: {
            int v = hexval(ch);
            if (v >= 0) {
                if (++c->ch_digits > CHUNK_HEX_MAX)
                    return fail(c, MG_EPARSE, "chunk size of more than %d hex digits",
                                CHUNK_HEX_MAX);
                c->ch_size = c->ch_size * 16 + (size_t)v;
                pos++;
                break;
            }
            if (c->ch_digits == 0)
                return fail(c, MG_EPARSE, "malformed chunked body: chunk size expected");
            if (ch == ';' || ch == ' ' || ch == '\t')
                c->ch = CH_EXT;
            else if (ch == '\r')
                c->ch = CH_SIZE_LF;
            else
                return fail(c, MG_EPARSE, "malformed chunked body: bad chunk size");
            pos++;
            break;
        }
        case CH_EXT:
            if (ch == '\r')
                c->ch = CH_SIZE_LF;
            else if (ch == '\n' || ++c->ch_ext > CHUNK_EXT_MAX)
                return fail(c, MG_EPARSE, "malformed chunked body: bad chunk extension");
            pos++;
            break;
        case CH_SIZE_LF:
            if (ch != '\n')
                return fail(c, MG_EPARSE, "malformed chunked body: CRLF expected");
            pos++;
            if (++c->ch_count > lim->max_chunks)
                return fail(c, MG_ETOOBIG, "chunked body of more than %zu chunks", lim->max_chunks);
            if (c->ch_size == 0) {
                c->ch = CH_TRAILER;
                c->ch_line_start = pos;
            } else if (c->ch_size > lim->max_body_bytes - c->body.len) {
                return fail(c, MG_ETOOBIG,
                            "request body is larger than the %zu-byte limit (--max-body-bytes)",
                            lim->max_body_bytes);
            } else {
                c->ch = CH_DATA;
            }
            break;
        case CH_DATA: {
            size_t take = n - pos < c->ch_size ? n - pos : c->ch_size;
            if (mg_buf_append(&c->body, b + pos, take) != 0)
                return fail(c, MG_ENOMEM, "out of memory");
            pos += take;
            c->ch_size -= take;
            if (c->ch_size == 0)
                c->ch = CH_DATA_CR;
            break;
        }
        case CH_DATA_CR:
        case CH_DATA_LF:
            if (ch != (c->ch == CH_DATA_CR ? '\r' : '\n'))
                return fail(c, MG_EPARSE,
                            "malformed chunked body: chunk data longer than its size");
            pos++;
            if (c->ch == CH_DATA_LF) {
                c->ch = CH_SIZE;
                c->ch_size = c->ch_digits = c->ch_ext = 0;
            } else {
                c->ch = CH_DATA_LF;
            }
            break;
        case CH_TRAILER: {
            const char *nl = memchr(b + pos, '\n', n - pos);
            if (nl == NULL) {
                if (c->ch_trailer + (n - c->ch_line_start) > lim->max_header_bytes)
                    return fail(c, MG_EHEADERS, "trailer section is larger than %zu bytes",
                                lim->max_header_bytes);
                pos = n;
                break;
            }
            size_t end = (size_t)(nl - b);
            if (end == c->ch_line_start || b[end - 1] != '\r')
                return fail(c, MG_EPARSE, "malformed chunked body: lines must end with CRLF");
            if (end - 1 == c->ch_line_start) {
                c->reqsize = end + 1;
                c->ch_pos = end + 1;
                return 1;
            }
            c->ch_trailer += end + 1 - c->ch_line_start;
            if (c->ch_trailer > lim->max_header_bytes)
                return fail(c, MG_EHEADERS, "trailer section is larger than %zu bytes",
                            lim->max_header_bytes);
            pos = c->ch_line_start = end + 1;
            break;
        }
        }
    }
    c->ch_pos = pos;
    return 0;
}

/* ---- handing a request to h2o, writing its response -------------------------------------- */

static socklen_t get_sockname(h2o_conn_t *conn, struct sockaddr *sa)
{
    return h2o_socket_getsockname(((conn_t *)conn)->sock, sa);
}

static socklen_t get_peername(h2o_conn_t *conn, struct sockaddr *sa)
{
    return h2o_socket_getpeername(((conn_t *)conn)->sock, sa);
}

static h2o_socket_t *get_socket(h2o_conn_t *conn)
{
    return ((conn_t *)conn)->sock;
}

static const h2o_conn_callbacks_t conn_callbacks = {
    .get_sockname = get_sockname,
    .get_peername = get_peername,
    .get_socket = get_socket,
};

static void finish_request(conn_t *c);

static void on_written(h2o_socket_t *sock, const char *err)
{
    conn_t *c = sock->data;
    if (err != NULL) {
        close_conn(c);
        return;
    }
    if (!c->final_sent)
        h2o_proceed_response(&c->req);
    else
        finish_request(c);
}

/* Writes the status line and headers into the request pool. */
static h2o_iovec_t flatten_head(conn_t *c, h2o_req_t *req)
{
    h2o_timestamp_t ts;
    h2o_get_timestamp(c->super.ctx, &req->pool, &ts);
    const char *reason = req->res.reason != NULL ? req->res.reason : "OK";
    size_t cap =
        160 + strlen(reason) + sizeof(ts.str->rfc1123) + c->super.ctx->globalconf->server_name.len;
    for (size_t i = 0; i < req->res.headers.size; i++)
        cap += req->res.headers.entries[i].name->len + req->res.headers.entries[i].value.len + 4;
    char *buf = h2o_mem_alloc_pool(&req->pool, cap);
    int known = req->res.content_length != SIZE_MAX;
    if (!known)
        req->http1_is_persistent = 0;
    int n = snprintf(buf, cap, "HTTP/1.1 %d %s\r\nDate: %s\r\nServer: %s\r\nConnection: %s\r\n",
                     req->res.status, reason, ts.str->rfc1123,
                     c->super.ctx->globalconf->server_name.base,
                     req->http1_is_persistent ? "keep-alive" : "close");
    size_t len = n > 0 ? (size_t)n : 0;
    if (known)
        len += (size_t)snprintf(buf + len, cap - len, "Content-Length: %zu\r\n",
                                req->res.content_length);
    for (size_t i = 0; i < req->res.headers.size; i++) {
        const h2o_header_t *h = &req->res.headers.entries[i];
        memcpy(buf + len, h->name->base, h->name->len);
        len += h->name->len;
        buf[len++] = ':';
        buf[len++] = ' ';
        memcpy(buf + len, h->value.base, h->value.len);
        len += h->value.len;
        buf[len++] = '\r';
        buf[len++] = '\n';
    }
    buf[len++] = '\r';
    buf[len++] = '\n';
    return h2o_iovec_init(buf, len);
}

/* The final ostream: h2o's filters end here, and the bytes go to the socket. */
static void final_send(h2o_ostream_t *self, h2o_req_t *req, h2o_iovec_t *bufs, size_t bufcnt,
                       h2o_send_state_t state)
{
    conn_t *c = H2O_STRUCT_FROM_MEMBER(conn_t, ostr, self);
    if (state == H2O_SEND_STATE_ERROR)
        req->http1_is_persistent = 0;
    h2o_iovec_t *v = h2o_mem_alloc_pool(&req->pool, sizeof(*v) * (bufcnt + 1));
    size_t k = 0;
    if (!c->sent_headers) {
        v[k++] = flatten_head(c, req);
        c->sent_headers = 1;
    }
    for (size_t i = 0; i < bufcnt && !c->is_head; i++) {
        if (bufs[i].len > 0)
            v[k++] = bufs[i];
    }
    c->final_sent = !h2o_send_state_is_in_progress(state);
    if (k == 0) {
        on_written(c->sock, NULL);
        return;
    }
    h2o_socket_write(c->sock, v, k, on_written);
}

static void start_request(conn_t *c)
{
    char *b = c->sock->input->bytes;
    h2o_req_t *req = &c->req;
    h2o_init_request(req, &c->super, NULL);
    c->req_live = 1;
    req->_ostr_top = &c->ostr;
    c->ostr.do_send = final_send;
    c->ostr.start_pull = NULL;
    c->ostr.next = NULL;

    const char *line = b + c->line0_start;
    const char *sp = memchr(line, ' ', c->line0_len);
    const char *target = sp + 1;
    const char *sp2 = memchr(target, ' ', c->line0_len - (size_t)(target - line));
    req->input.scheme = &H2O_URL_SCHEME_HTTP;
    req->input.method = h2o_iovec_init(line, (size_t)(sp - line));
    req->input.path = h2o_iovec_init(target, (size_t)(sp2 - target));
    req->version = 0x100 | c->version_minor;
    for (size_t k = 0; k + 1 < c->nlines; k++) {
        /* Names were lower-cased and checked by parse_head; split again without failing. */
        char *p = b + c->hdrs[k].start;
        size_t n = c->hdrs[k].len, i = 0;
        while (p[i] != ':')
            i++;
        size_t vs = i + 1, ve = n;
        while (vs < n && (p[vs] == ' ' || p[vs] == '\t'))
            vs++;
        while (ve > vs && (p[ve - 1] == ' ' || p[ve - 1] == '\t'))
            ve--;
        if (h2o_memis(p, i, H2O_STRLIT("host"))) {
            req->input.authority = h2o_iovec_init(p + vs, ve - vs);
            continue;
        }
        if (h2o_memis(p, i, H2O_STRLIT("content-length")) ||
            h2o_memis(p, i, H2O_STRLIT("transfer-encoding")) ||
            h2o_memis(p, i, H2O_STRLIT("expect")) || h2o_memis(p, i, H2O_STRLIT("upgrade")))
            continue;
        h2o_add_header_by_str(&req->pool, &req->headers, p, i, 1, NULL, p + vs, ve - vs);
    }
    if (c->chunked)
        req->entity = h2o_iovec_init(c->body.data ? c->body.data : b + c->head_len, c->body.len);
    else if (c->has_length)
        req->entity = h2o_iovec_init(b + c->head_len, c->content_length);
    req->http1_is_persistent = c->keep_alive && !c->super.ctx->shutdown_requested;

    c->state = ST_PROCESS;
    set_timer(c, NULL, NULL);
    h2o_socket_read_stop(c->sock);
    h2o_process_request(req);
}

/* The response is written: the next request, from the input already read or a new read. */
static void finish_request(conn_t *c)
{
    int persistent = c->req.http1_is_persistent;
    c->req_live = 0;
    h2o_dispose_request(&c->req);
    h2o_buffer_consume(&c->sock->input, c->reqsize);
    reset_request(c);
    if (!persistent) {
        c->state = ST_CLOSING;
        on_error_written(c->sock, NULL); /* the same graceful close */
        return;
    }
    c->state = ST_IDLE;
    if (c->sock->input->size > 0) {
        if (++c->burst >= c->loop->shared->limits.max_pipelined) {
            fail(c, MG_ERATELIMIT, "more than %zu pipelined requests; wait for the answers",
                 c->loop->shared->limits.max_pipelined);
            return;
        }
        advance(c);
        return;
    }
    c->burst = 0;
    set_timer(c, &c->loop->idle_timeout, on_idle_timeout);
    h2o_socket_read_start(c->sock, on_read);
}

static void on_continue_written(h2o_socket_t *sock, const char *err)
{
    conn_t *c = sock->data;
    if (err != NULL) {
        close_conn(c);
        return;
    }
    c->continue_pending = 0;
    h2o_socket_read_start(sock, on_read);
    advance(c);
}

/* Moves the connection as far as the input allows. */
static void advance(conn_t *c)
{
    if (c->state == ST_IDLE) {
        if (c->sock->input->size == 0)
            return;
        c->state = ST_HEAD;
        set_timer(c, &c->loop->header_timeout, on_head_timeout);
    }
    if (c->state == ST_HEAD) {
        int r = scan_head(c);
        if (r <= 0)
            return;
        if (parse_head(c) != 0)
            return;
        c->state = ST_BODY;
        c->ch_pos = c->head_len;
        if (c->chunked || c->content_length > 0) {
            set_timer(c, &c->loop->body_timeout, on_body_timeout);
            size_t have = c->sock->input->size - c->head_len;
            if (c->expect_continue && (c->chunked || have < c->content_length)) {
                static h2o_iovec_t cont = {"HTTP/1.1 100 Continue\r\n\r\n", 25};
                c->continue_pending = 1;
                h2o_socket_read_stop(c->sock);
                h2o_socket_write(c->sock, &cont, 1, on_continue_written);
                return;
            }
        }
    }
    if (c->state == ST_BODY) {
        if (c->continue_pending)
            return;
        if (c->chunked) {
            if (read_chunked(c) <= 0)
                return;
        } else {
            if (c->sock->input->size - c->head_len < c->content_length)
                return;
            c->reqsize = c->head_len + c->content_length;
        }
        start_request(c);
    }
}

static void on_read(h2o_socket_t *sock, const char *err)
{
    conn_t *c = sock->data;
    if (err != NULL) {
        close_conn(c);
        return;
    }
    c->burst = 0;
    if (c->state == ST_CLOSING || c->state == ST_PROCESS)
        return;
    advance(c);
}

/* ---- accepting ------------------------------------------------------------------------------ */

static int client_slot(h2o_socket_t *sock)
{
    struct sockaddr_storage ss;
    socklen_t len = h2o_socket_getpeername(sock, (struct sockaddr *)&ss);
    XXH64_hash_t h;
    if (len != 0 && ss.ss_family == AF_INET)
        h = XXH3_64bits(&((struct sockaddr_in *)&ss)->sin_addr, 4);
    else if (len != 0 && ss.ss_family == AF_INET6)
        h = XXH3_64bits(&((struct sockaddr_in6 *)&ss)->sin6_addr, 16);
    else
        h = 0;
    return (int)(h % CLIENT_SLOTS);
}

void mg_http1_accept(mg_http1_loop_t *l, int listener, h2o_hostconf_t **hosts, h2o_socket_t *sock)
{
    conn_t *c = calloc(1, sizeof(*c));
    if (c == NULL) {
        h2o_socket_close(sock);
        return;
    }
    static atomic_ullong next_id;
    c->super.ctx = l->ctx;
    c->super.hosts = hosts;
    gettimeofday(&c->super.connected_at, NULL);
    c->super.id = atomic_fetch_add_explicit(&next_id, 1, memory_order_relaxed) + 1;
    c->super.callbacks = &conn_callbacks;
    c->sock = sock;
    c->loop = l;
    c->listener = listener;
    c->client_slot = -1;
    sock->data = c;
    h2o_linklist_insert(&l->conns, &c->link);
    l->nconns++;
    reset_request(c);

    mg_http1_shared_t *sh = l->shared;
    c->counted_listener = 1;
    if (atomic_fetch_add_explicit(&sh->listener_conns[listener], 1, memory_order_relaxed) >=
        sh->limits.max_connections) {
        fail(c, MG_EOVERLOAD, "too many open connections (limit %zu); retry later",
             sh->limits.max_connections);
        return;
    }
    c->client_slot = client_slot(sock);
    if (atomic_fetch_add_explicit(&sh->client_conns[c->client_slot], 1, memory_order_relaxed) >=
        sh->limits.max_client_conns) {
        fail(c, MG_ERATELIMIT, "too many open connections from this address (limit %zu)",
             sh->limits.max_client_conns);
        return;
    }
    c->state = ST_HEAD;
    set_timer(c, &l->header_timeout, on_head_timeout);
    h2o_socket_read_start(sock, on_read);
}
