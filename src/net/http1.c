#include "net/http1.h"

#include "net/http1_parse.h"
#include "proto/numfmt.h"

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

#define CLIENT_SLOTS 16384 /* per-client connection counts, hashed by address */
#define LINGER_MS    2000  /* how long a connection closed on an error drains its input */
/* Input buffers kept between requests (consume_request): sizes worth it, and a loop's total. */
#define KEEP_MIN_BYTES  ((size_t)64 << 10)
#define KEEP_MAX_BYTES  ((size_t)16 << 20)
#define KEEP_LOOP_BYTES ((size_t)32 << 20)

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
    size_t kept_bytes; /* capacity of the input buffers its connections keep (consume_request) */
};

typedef enum {
    ST_IDLE = 0, /* keep-alive: waiting for the next request's first byte */
    ST_HEAD,     /* reading the request line and headers */
    ST_BODY,     /* reading the body */
    ST_PROCESS,  /* handed to h2o; reading stopped until the response is written */
    ST_CLOSING,  /* writing an error answer, then lingering */
} conn_state_t;

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
    size_t kept;          /* the input buffer's capacity counted in loop->kept_bytes, or 0 */
    /* The request being read. */
    mg_http1_head_t head;
    mg_http1_span_t *hdrs; /* limits.max_headers lines, for head.hdrs */
    mg_http1_chunked_t chunked;
    mg_buf_t body;           /* a chunked request's decoded body */
    size_t reqsize;          /* input bytes the request used, head and body */
    struct timeval begin_at; /* the request's first byte (the connection, for its first one) */
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
    memset(&c->head, 0, sizeof(c->head));
    c->head.hdrs = c->hdrs;
    memset(&c->chunked, 0, sizeof(c->chunked));
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
    c->loop->kept_bytes -= c->kept;
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

static char *put(char *dst, const char *src, size_t n)
{
    memcpy(dst, src, n);
    return dst + n;
}

#define PUT_LIT(dst, lit) put((dst), (lit), sizeof(lit) - 1)

/* Writes the status line and headers into the request pool. */
static h2o_iovec_t flatten_head(conn_t *c, h2o_req_t *req)
{
    h2o_timestamp_t ts;
    h2o_get_timestamp(c->super.ctx, &req->pool, &ts);
    const char *reason = req->res.reason != NULL ? req->res.reason : "OK";
    size_t reason_len = strlen(reason);
    h2o_iovec_t server = c->super.ctx->globalconf->server_name;
    size_t cap = 160 + reason_len + H2O_TIMESTR_RFC1123_LEN + server.len;
    for (size_t i = 0; i < req->res.headers.size; i++)
        cap += req->res.headers.entries[i].name->len + req->res.headers.entries[i].value.len + 4;
    char *buf = h2o_mem_alloc_pool(&req->pool, cap), *o = buf;
    int known = req->res.content_length != SIZE_MAX;
    if (!known)
        req->http1_is_persistent = 0;
    /* Put by hand rather than printf'd: this runs once per answer. */
    int status = req->res.status >= 100 && req->res.status <= 999 ? req->res.status : 500;
    o = PUT_LIT(o, "HTTP/1.1 ");
    *o++ = (char)('0' + status / 100);
    *o++ = (char)('0' + status / 10 % 10);
    *o++ = (char)('0' + status % 10);
    *o++ = ' ';
    o = put(o, reason, reason_len);
    o = PUT_LIT(o, "\r\nDate: ");
    o = put(o, ts.str->rfc1123, H2O_TIMESTR_RFC1123_LEN);
    o = PUT_LIT(o, "\r\nServer: ");
    o = put(o, server.base, server.len);
    o = req->http1_is_persistent ? PUT_LIT(o, "\r\nConnection: keep-alive\r\n")
                                 : PUT_LIT(o, "\r\nConnection: close\r\n");
    if (known) {
        o = PUT_LIT(o, "Content-Length: ");
        o += mg_numfmt_write_u64(o, req->res.content_length);
        o = PUT_LIT(o, "\r\n");
    }
    for (size_t i = 0; i < req->res.headers.size; i++) {
        const h2o_header_t *h = &req->res.headers.entries[i];
        o = put(o, h->name->base, h->name->len);
        o = PUT_LIT(o, ": ");
        o = put(o, h->value.base, h->value.len);
        o = PUT_LIT(o, "\r\n");
    }
    o = PUT_LIT(o, "\r\n");
    return h2o_iovec_init(buf, (size_t)(o - buf));
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
    for (size_t i = 0; i < bufcnt && !c->head.is_head; i++) {
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
    req->timestamps.request_begin_at = c->begin_at; /* the access log's latency starts here */
    c->req_live = 1;
    req->_ostr_top = &c->ostr;
    c->ostr.do_send = final_send;
    c->ostr.start_pull = NULL;
    c->ostr.next = NULL;

    const mg_http1_head_t *h = &c->head;
    req->input.scheme = &H2O_URL_SCHEME_HTTP;
    req->input.method = h2o_iovec_init(b + h->method.start, h->method.len);
    req->input.path = h2o_iovec_init(b + h->target.start, h->target.len);
    req->version = 0x100 | h->version_minor;
    for (size_t k = 0; k + 1 < h->nlines; k++) {
        mg_str_t name, value;
        mg_http1_header(h, b, k, &name, &value);
        if (mg_str_eq(name, "host")) {
            req->input.authority = h2o_iovec_init(value.ptr, value.len);
            continue;
        }
        /* The framing is this layer's; h2o's own HTTP/1 leaves these out of the headers too. */
        if (mg_str_eq(name, "content-length") || mg_str_eq(name, "transfer-encoding") ||
            mg_str_eq(name, "expect") || mg_str_eq(name, "upgrade"))
            continue;
        h2o_add_header_by_str(&req->pool, &req->headers, name.ptr, name.len, 1, NULL, value.ptr,
                              value.len);
    }
    if (h->chunked)
        req->entity = h2o_iovec_init(c->body.data ? c->body.data : b + h->head_len, c->body.len);
    else if (h->has_length)
        req->entity = h2o_iovec_init(b + h->head_len, h->content_length);
    req->http1_is_persistent = h->keep_alive && !c->super.ctx->shutdown_requested;

    c->state = ST_PROCESS;
    set_timer(c, NULL, NULL);
    h2o_socket_read_stop(c->sock);
    h2o_process_request(req);
}

/*
 * Drops the request's bytes from the input. h2o 2.2 frees a buffer whose data is all
 * consumed, so a connection that sends large bodies would regrow it for every request, by
 * doubling from 8 KB with a copy of what had arrived at each step (about the body's size
 * again: a 600 KB tensor cost 4-5 % of the server's time in memmove). A buffer of
 * KEEP_MIN_BYTES to KEEP_MAX_BYTES, in memory (not file-backed), is emptied in place instead
 * and kept for the next request, while the loop's kept buffers stay within KEEP_LOOP_BYTES;
 * closing the connection frees it as before. Newer h2o empties buffers in place the same way.
 */
static void consume_request(conn_t *c)
{
    h2o_buffer_t *in = c->sock->input;
    mg_http1_loop_t *l = c->loop;
    l->kept_bytes -= c->kept;
    c->kept = 0;
    if (c->reqsize == in->size && in->_fd == -1 && in->capacity >= KEEP_MIN_BYTES &&
        in->capacity <= KEEP_MAX_BYTES && l->kept_bytes + in->capacity <= KEEP_LOOP_BYTES) {
        in->size = 0;
        in->bytes = in->_buf;
        c->kept = in->capacity;
        l->kept_bytes += c->kept;
        return;
    }
    h2o_buffer_consume(&c->sock->input, c->reqsize);
}

/* The response is written: the next request, from the input already read or a new read. */
static void finish_request(conn_t *c)
{
    int persistent = c->req.http1_is_persistent;
    c->req_live = 0;
    h2o_dispose_request(&c->req);
    consume_request(c);
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
        /* The next request may be here only in part: its rest must still be read. */
        h2o_socket_read_start(c->sock, on_read);
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
        gettimeofday(&c->begin_at, NULL);
        set_timer(c, &c->loop->header_timeout, on_head_timeout);
    }
    const mg_http1_limits_t *lim = &c->loop->shared->limits;
    mg_http1_head_t *h = &c->head;
    mg_err_t err;
    char *in = c->sock->input->bytes;
    size_t n = c->sock->input->size;
    if (c->state == ST_HEAD) {
        if (c->hdrs == NULL &&
            (c->hdrs = h->hdrs = malloc(sizeof(*c->hdrs) * (lim->max_headers + 1))) == NULL) {
            fail(c, MG_ENOMEM, "out of memory");
            return;
        }
        int r = mg_http1_scan_head(h, lim, in, n, &err);
        if (r == 1)
            r = mg_http1_parse_head(h, lim, in, &err) == 0 ? 1 : err.code;
        if (r < 0) {
            fail(c, err.code, "%s", err.msg);
            return;
        }
        if (r == 0)
            return;
        c->state = ST_BODY;
        c->chunked.pos = h->head_len;
        if (h->chunked || h->content_length > 0) {
            set_timer(c, &c->loop->body_timeout, on_body_timeout);
            if (h->expect_continue && (h->chunked || n - h->head_len < h->content_length)) {
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
        if (h->chunked) {
            int r = mg_http1_read_chunked(&c->chunked, lim, in, n, &c->body, &err);
            if (r < 0)
                fail(c, err.code, "%s", err.msg);
            if (r <= 0)
                return;
            c->reqsize = c->chunked.pos;
        } else {
            if (n - h->head_len < h->content_length)
                return;
            c->reqsize = h->head_len + h->content_length;
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
    c->begin_at = c->super.connected_at;
    set_timer(c, &l->header_timeout, on_head_timeout);
    h2o_socket_read_start(sock, on_read);
}
