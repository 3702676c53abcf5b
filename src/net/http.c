#include "net/http.h"

#include "core/buf.h"
#include "core/cpu.h"
#include "core/log.h"
#include "net/http1.h"
#include "repo/version.h"

#include <arpa/inet.h>
#include <h2o.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <urcu.h>

/* While draining, a connection with nothing in flight is closed once idle this long. */
#define IDLE_CLOSE_MS 1000

/* One listening socket of one loop; its accept context names the listener's hostconf. */
typedef struct loop_listener {
    h2o_accept_ctx_t accept_ctx;
    h2o_socket_t *sock;
    int fd;
    int index; /* the listener's place in mg_http_opts_t.listen */
    struct loop_thread *loop;
} loop_listener_t;

/*
 * One accepted connection, so a drain can tell the idle ones (nothing in flight, nothing
 * received since the last answer) from those with a request on its way. Freed when both the
 * socket and the last request that counted it are gone (`refs`).
 */
typedef struct conn_track {
    h2o_linklist_t link; /* in the loop's `conns` */
    h2o_socket_t *sock;  /* NULL once closed */
    struct loop_thread *loop;
    uint64_t started, done; /* requests handed to the endpoints, and those disposed of */
    size_t bytes_at_done;   /* sock->bytes_read when the last request was disposed of */
    int64_t idle_since_ms;  /* while draining: since when it has looked idle; 0: busy */
    int refs;               /* the socket, plus one per request not yet disposed of */
    int shut;               /* shutdown(2) was called to close it */
} conn_track_t;

/* One event loop: its h2o context first, so a request's ctx pointer leads back here. */
typedef struct loop_thread {
    h2o_context_t ctx;
    loop_listener_t listeners[MG_HTTP_LISTENERS_MAX];
    pthread_t tid;
    int started;
    sem_t ready; /* posted by the thread once `init_rc` is set */
    int init_rc; /* 0, or why the loop could not be made (MG_ENOMEM) */
    mg_api_loop_t *api;
    mg_http1_loop_t *http1; /* the loop's connections (net/http1.h) */
    struct mg_http_server *server;
    h2o_linklist_t conns;        /* conn_track_t, loop thread only */
    atomic_size_t nconns;        /* open connections, for the main thread */
    atomic_int listeners_closed; /* written by the loop, read by the main thread */
} loop_thread_t;

/* The handler of one listener's hostconf: it knows the surfaces the listener serves. */
typedef struct api_handler {
    h2o_handler_t super;
    unsigned surfaces;
} api_handler_t;

/*
 * Errors h2o raises itself (body over the limit, broken chunked encoding) are plain text;
 * this filter, on the path h2o uses for them, rewrites each to {"error": "..."} like every
 * other error of the server.
 */
typedef struct json_error_filter {
    h2o_filter_t super;
    size_t max_body_bytes;
} json_error_filter_t;

typedef struct json_error_ostream {
    h2o_ostream_t super;
    h2o_iovec_t body;
} json_error_ostream_t;

struct mg_http_server {
    h2o_globalconf_t config;
    h2o_hostconf_t *hosts[MG_HTTP_LISTENERS_MAX][2]; /* per listener: its hostconf, NULL */
    const mg_api_t *api;
    mg_http1_shared_t *http1; /* limits and connection counts, shared by the loops */
    int nlisten;
    int ports[MG_HTTP_LISTENERS_MAX];
    int nthreads;
    atomic_bool stopping;
    atomic_bool draining;
    loop_thread_t *threads;
};

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void track_unref(conn_track_t *c)
{
    if (--c->refs == 0)
        free(c);
}

/* The socket of a tracked connection closed. */
static void on_conn_close(void *data)
{
    conn_track_t *c = data;
    h2o_linklist_unlink(&c->link);
    atomic_fetch_sub_explicit(&c->loop->nconns, 1, memory_order_relaxed);
    c->sock = NULL;
    track_unref(c);
}

/* A request of a tracked connection is disposed of: its answer has been sent (or dropped). */
static void on_req_dispose(void *p)
{
    conn_track_t *c = *(conn_track_t **)p;
    c->done++;
    if (c->sock != NULL)
        c->bytes_at_done = c->sock->bytes_read;
    track_unref(c);
}

/* Counts the request on its connection, and asks for "Connection: close" while draining. */
static void track_request(loop_thread_t *t, h2o_req_t *req)
{
    if (atomic_load_explicit(&t->server->draining, memory_order_relaxed))
        req->http1_is_persistent = 0;
    if (req->conn->callbacks->get_socket == NULL)
        return;
    h2o_socket_t *sock = req->conn->callbacks->get_socket(req->conn);
    if (sock == NULL || sock->on_close.cb != on_conn_close)
        return;
    conn_track_t *c = sock->on_close.data;
    conn_track_t **slot = h2o_mem_alloc_shared(&req->pool, sizeof(*slot), on_req_dispose);
    *slot = c;
    c->started++;
    c->refs++;
}

static int on_req(h2o_handler_t *self, h2o_req_t *req)
{
    api_handler_t *h = (api_handler_t *)self;
    loop_thread_t *t = (loop_thread_t *)req->conn->ctx;
    track_request(t, req);
    return mg_api_handle(t->api, req, h->surfaces);
}

static void json_error_send(h2o_ostream_t *self, h2o_req_t *req, h2o_iovec_t *bufs, size_t bufcnt,
                            h2o_send_state_t state)
{
    (void)bufs;
    (void)bufcnt;
    json_error_ostream_t *o = (json_error_ostream_t *)self;
    h2o_iovec_t body = o->body;
    o->body = h2o_iovec_init(NULL, 0); /* sent once, whatever h2o sends after */
    h2o_ostream_send_next(self, req, &body, body.len ? 1 : 0, state);
}

static void json_error_setup(h2o_filter_t *self, h2o_req_t *req, h2o_ostream_t **slot)
{
    json_error_filter_t *f = (json_error_filter_t *)self;
    if (req->res.status >= 400) {
        mg_buf_t b = {0};
        char msg[200];
        if (req->res.status == 413)
            snprintf(msg, sizeof(msg),
                     "request body is larger than the %zu-byte limit (--max-body-bytes)",
                     f->max_body_bytes);
        else
            snprintf(msg, sizeof(msg), "%s", req->res.reason ? req->res.reason : "bad request");
        for (char *p = msg; *p && req->res.status != 413; p++)
            *p = (char)(*p >= 'A' && *p <= 'Z' ? *p + 32 : *p);
        if (mg_buf_puts(&b, "{\"error\":") == 0 && mg_buf_json_string(&b, msg, strlen(msg)) == 0 &&
            mg_buf_puts(&b, "}") == 0) {
            json_error_ostream_t *o =
                (json_error_ostream_t *)h2o_add_ostream(req, sizeof(*o), slot);
            o->super.do_send = json_error_send;
            o->body = h2o_strdup(&req->pool, b.data, b.len);
            req->res.content_length = b.len;
            h2o_set_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE,
                           H2O_STRLIT("application/json"), 1);
            slot = &o->super.next;
        }
        mg_buf_free(&b);
    }
    h2o_setup_next_ostream(req, slot);
}

/* Accepts one connection from `listener`; returns 0 when none was waiting. */
static int accept_one(h2o_socket_t *listener)
{
    loop_listener_t *l = listener->data;
    loop_thread_t *t = (loop_thread_t *)l->accept_ctx.ctx;
    h2o_socket_t *sock = h2o_evloop_socket_accept(listener);
    if (sock == NULL)
        return 0;
    /* Responses are single writes; don't let Nagle hold them back. */
    int one = 1;
    setsockopt(h2o_socket_get_fd(sock), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    conn_track_t *c = calloc(1, sizeof(*c));
    if (c != NULL) {
        c->sock = sock;
        c->loop = t;
        c->refs = 1;
        h2o_linklist_insert(&t->conns, &c->link);
        atomic_fetch_add_explicit(&t->nconns, 1, memory_order_relaxed);
        sock->on_close.cb = on_conn_close;
        sock->on_close.data = c;
    }
    mg_http1_accept(t->http1, l->index, l->accept_ctx.hosts, sock);
    return 1;
}

static void on_accept(h2o_socket_t *listener, const char *err)
{
    if (err == NULL)
        accept_one(listener);
}

/* Stops listening; when draining, what the kernel already queued is accepted (and served). */
static void close_listeners(loop_thread_t *t, int accept_queued)
{
    if (atomic_load_explicit(&t->listeners_closed, memory_order_relaxed))
        return;
    for (int i = 0; i < t->server->nlisten; i++) {
        while (accept_queued && accept_one(t->listeners[i].sock))
            ;
        h2o_socket_read_stop(t->listeners[i].sock);
        h2o_socket_close(t->listeners[i].sock);
        t->listeners[i].sock = NULL;
    }
    atomic_store_explicit(&t->listeners_closed, 1, memory_order_release);
}

/*
 * One drain step of a loop: connections with nothing in flight, nothing buffered and nothing
 * waiting in the kernel are closed once they stayed so for IDLE_CLOSE_MS (shutdown(2): h2o
 * sees the end of the stream and closes the connection itself). The others answer what they
 * received with "Connection: close" and close after it.
 */
static void drain_step(loop_thread_t *t)
{
    int64_t now = now_ms();
    for (h2o_linklist_t *n = t->conns.next; n != &t->conns; n = n->next) {
        conn_track_t *c = H2O_STRUCT_FROM_MEMBER(conn_track_t, link, n);
        int fd = h2o_socket_get_fd(c->sock), waiting = 0;
        int idle = !c->shut && c->started == c->done && c->sock->bytes_read == c->bytes_at_done &&
                   (c->sock->input == NULL || c->sock->input->size == 0) &&
                   ioctl(fd, FIONREAD, &waiting) == 0 && waiting == 0;
        if (!idle) {
            c->idle_since_ms = 0;
            continue;
        }
        if (c->idle_since_ms == 0)
            c->idle_since_ms = now;
        else if (now - c->idle_since_ms >= IDLE_CLOSE_MS) {
            shutdown(fd, SHUT_RDWR);
            c->shut = 1;
        }
    }
}

/* Opens a listening socket with SO_REUSEPORT on host:port. Returns the fd or -1 with err. */
static int open_listener(const char *host, int port, int reuseport, int *bound_port, mg_err_t *err)
{
    struct sockaddr_storage ss;
    socklen_t sslen;
    memset(&ss, 0, sizeof(ss));
    struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
    if (inet_pton(AF_INET, host, &sin->sin_addr) == 1) {
        sin->sin_family = AF_INET;
        sin->sin_port = htons((uint16_t)port);
        sslen = sizeof(*sin);
    } else if (inet_pton(AF_INET6, host, &sin6->sin6_addr) == 1) {
        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons((uint16_t)port);
        sslen = sizeof(*sin6);
    } else {
        mg_err_set(err, MG_EINVAL, "listen address '%s' is not a numeric IPv4 or IPv6 address",
                   host);
        return -1;
    }
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        mg_err_set(err, MG_EIO, "socket: %s", strerror(errno));
        return -1;
    }
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (reuseport)
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
    if (bind(fd, (struct sockaddr *)&ss, sslen) != 0 || listen(fd, SOMAXCONN) != 0) {
        mg_err_set(err, MG_EIO, "cannot listen on %s:%d: %s", host, port, strerror(errno));
        close(fd);
        return -1;
    }
    if (getsockname(fd, (struct sockaddr *)&ss, &sslen) == 0)
        *bound_port = ntohs(ss.ss_family == AF_INET ? sin->sin_port : sin6->sin6_port);
    return fd;
}

/* Returns the memory h2o keeps in this thread's socket-buffer recycle list to malloc's heap. */
static void drain_socket_buffers(void)
{
    h2o_mem_recycle_t *a = &h2o_socket_buffer_prototype.allocator;
    size_t n = a->cnt;
    a->max = 0; /* nothing is kept from now on */
    for (size_t i = 0; i < n; i++)
        free(h2o_mem_alloc_recycle(a, 1)); /* a kept chunk is a malloc'd block: hand it back */
}

/*
 * Frees what the loop's thread owns, on that thread (socket buffers refer to its thread-local
 * allocator): endpoint state, connections' timers, the h2o context; then runs the loop once
 * so the sockets closed on the way are freed. The loop itself stays: h2o 2.2 cannot free an
 * event loop (tests/valgrind.supp). Skipped when control operations are still out: their
 * answers would arrive at freed receivers.
 */
static void release_loop(loop_thread_t *t)
{
    if (mg_api_loop_pending(t->api) > 0) {
        mg_log(MG_LOG_WARN, "http", "loop stopped with %zu operations out; not freed",
               mg_api_loop_pending(t->api));
        return;
    }
    mg_api_loop_free(t->api);
    t->api = NULL;
    mg_http1_loop_free(t->http1);
    t->http1 = NULL;
    /* A drain's h2o_context_request_shutdown leaves HTTP/2's GOAWAY timer linked. */
    if (h2o_timeout_is_linked(&t->ctx.http2._graceful_shutdown_timeout))
        h2o_timeout_unlink(&t->ctx.http2._graceful_shutdown_timeout);
    h2o_context_dispose(&t->ctx);
    h2o_evloop_run(t->ctx.loop, 0);
    drain_socket_buffers();
}

/*
 * Makes the loop's h2o state on its own thread: the event loop, the context, the message
 * queue and the listening sockets. h2o's socket buffers come from a thread-local allocator of
 * the thread that made the socket, and are handed back to it when freed; a socket made on
 * another thread (the queue's pipe, read at every message) would have the loops share that
 * thread's allocator without a lock. Returns 0 or MG_ENOMEM; on failure, frees what it made.
 */
static int loop_init(loop_thread_t *t)
{
    mg_http_server_t *s = t->server;
    h2o_context_init(&t->ctx, h2o_evloop_create(), &s->config);
    if (mg_api_loop_new(&t->api, s->api, t->ctx.loop) != 0 ||
        mg_http1_loop_new(&t->http1, s->http1, &t->ctx) != 0) {
        mg_api_loop_free(t->api);
        t->api = NULL;
        h2o_context_dispose(&t->ctx);
        return MG_ENOMEM;
    }
    for (int i = 0; i < s->nlisten; i++) {
        loop_listener_t *l = &t->listeners[i];
        l->accept_ctx.ctx = &t->ctx;
        l->accept_ctx.hosts = s->hosts[i];
        l->index = i;
        l->loop = t;
        l->sock = h2o_evloop_socket_create(t->ctx.loop, l->fd, H2O_SOCKET_FLAG_DONT_READ);
        l->sock->data = l;
        h2o_socket_read_start(l->sock, on_accept);
    }
    return 0;
}

static void *loop_main(void *arg)
{
    loop_thread_t *t = arg;
    t->init_rc = loop_init(t);
    sem_post(&t->ready);
    if (t->init_rc != 0)
        return NULL;
    rcu_register_thread();
    /* Loop k runs small models on their k-th session (one per loop: see repo/loader.h). */
    mg_model_version_bind_thread((int)(t - t->server->threads));
    while (!atomic_load_explicit(&t->server->stopping, memory_order_relaxed)) {
        if (!atomic_load_explicit(&t->server->draining, memory_order_relaxed)) {
            h2o_evloop_run(t->ctx.loop, 100);
            continue;
        }
        if (!atomic_load_explicit(&t->listeners_closed, memory_order_relaxed)) {
            close_listeners(t, 1);
            h2o_context_request_shutdown(&t->ctx);
        }
        drain_step(t);
        h2o_evloop_run(t->ctx.loop, 10);
    }
    close_listeners(t, 0);
    /*
     * Answer the control operations still out (the control plane has stopped, so each has
     * completed or been cancelled and its message is on its way), and let the close complete.
     */
    for (int i = 0; i < 100 && mg_api_loop_pending(t->api) > 0; i++)
        h2o_evloop_run(t->ctx.loop, 10);
    /* Then close every connection, so nothing they hold outlives the server. */
    mg_http1_loop_close_all(t->http1);
    h2o_evloop_run(t->ctx.loop, 0);
    release_loop(t);
    rcu_unregister_thread();
    return NULL;
}

/* Registers listener `i`'s hostconf: the API handler for its surfaces, the JSON error filter. */
static void register_listener(mg_http_server_t *s, int i, unsigned surfaces, size_t max_body_bytes)
{
    char name[32];
    int n = snprintf(name, sizeof(name), "listener-%d", i);
    h2o_hostconf_t *host =
        h2o_config_register_host(&s->config, h2o_iovec_init(name, (size_t)n), 65535);
    h2o_pathconf_t *path = h2o_config_register_path(host, "/", 0);
    api_handler_t *h = (api_handler_t *)h2o_create_handler(path, sizeof(*h));
    h->super.on_req = on_req;
    h->surfaces = surfaces;
    json_error_filter_t *jf =
        (json_error_filter_t *)h2o_create_filter(&host->fallback_path, sizeof(*jf));
    jf->super.on_setup_ostream = json_error_setup;
    jf->max_body_bytes = max_body_bytes;
    /* A connection accepted on this listener sees this hostconf only, whatever its Host. */
    s->hosts[i][0] = host;
    s->hosts[i][1] = NULL;
}

/* Closes the listening fds of loops `from`.. that never made sockets of them. */
static void close_fds(mg_http_server_t *s, int from, int nthreads)
{
    for (int k = from; k < nthreads; k++) {
        for (int i = 0; i < s->nlisten; i++) {
            if (s->threads[k].listeners[i].fd >= 0)
                close(s->threads[k].listeners[i].fd);
            s->threads[k].listeners[i].fd = -1;
        }
    }
}

/*
 * Opens listener `i` on every loop. SO_REUSEPORT would let a second modelgate share (and
 * steal traffic from) a port already in use, so first bind once without it: that fails when
 * anyone else holds the port. The first socket picks the port (maybe ephemeral); the others
 * share it.
 */
static int open_listener_fds(mg_http_server_t *s, int i, const mg_http_listen_t *l, mg_err_t *err)
{
    int port = l->port;
    if (port != 0) {
        int probe = open_listener(l->host, port, 0, &port, err);
        if (probe < 0)
            return err->code;
        close(probe);
    }
    for (int k = 0; k < s->nthreads; k++) {
        s->threads[k].listeners[i].fd = open_listener(l->host, port, 1, &port, err);
        if (s->threads[k].listeners[i].fd < 0)
            return err->code;
    }
    s->ports[i] = port;
    return 0;
}

int mg_http_start(mg_http_server_t **out, const mg_http_opts_t *opts, mg_err_t *err)
{
    mg_err_t local;
    if (err == NULL)
        err = &local;
    if (opts->nlisten < 1 || opts->nlisten > MG_HTTP_LISTENERS_MAX)
        return mg_err_set(err, MG_EINVAL, "between 1 and %d listeners, not %d",
                          MG_HTTP_LISTENERS_MAX, opts->nlisten);
    int nthreads = mg_cpu_threads(opts->threads);
    mg_http_server_t *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return mg_err_set(err, MG_ENOMEM, "out of memory");
    s->threads = calloc((size_t)nthreads, sizeof(*s->threads));
    if (s->threads == NULL) {
        free(s);
        return mg_err_set(err, MG_ENOMEM, "out of memory");
    }
    s->api = opts->api;
    s->nthreads = nthreads;
    s->nlisten = opts->nlisten;
    atomic_init(&s->stopping, false);
    atomic_init(&s->draining, false);
    for (int k = 0; k < nthreads; k++)
        for (int i = 0; i < MG_HTTP_LISTENERS_MAX; i++)
            s->threads[k].listeners[i].fd = -1;

    h2o_config_init(&s->config);
    s->config.max_request_entity_size = opts->limits.max_body_bytes;
    s->config.server_name = h2o_iovec_init(H2O_STRLIT("modelgate"));
    for (int i = 0; i < s->nlisten; i++)
        register_listener(s, i, opts->listen[i].surfaces, opts->limits.max_body_bytes);
    if (mg_http1_shared_new(&s->http1, &opts->limits, s->nlisten) != 0) {
        h2o_config_dispose(&s->config);
        free(s->threads);
        free(s);
        return mg_err_set(err, MG_ENOMEM, "out of memory");
    }
    for (int i = 0; i < s->nlisten; i++) {
        if (open_listener_fds(s, i, &opts->listen[i], err) != 0) {
            close_fds(s, 0, nthreads);
            h2o_config_dispose(&s->config);
            mg_http1_shared_free(s->http1);
            free(s->threads);
            free(s);
            return err->code;
        }
    }

    for (int k = 0; k < nthreads; k++) {
        loop_thread_t *t = &s->threads[k];
        t->server = s;
        h2o_linklist_init_anchor(&t->conns);
        atomic_init(&t->nconns, 0);
        atomic_init(&t->listeners_closed, 0);
        sem_init(&t->ready, 0, 0);
        if (pthread_create(&t->tid, NULL, loop_main, t) != 0) {
            sem_destroy(&t->ready);
            s->nthreads = k;
            close_fds(s, k, nthreads);
            mg_http_stop(s);
            return mg_err_set(err, MG_EIO, "cannot start event loop thread: %s", strerror(errno));
        }
        t->started = 1;
        while (sem_wait(&t->ready) != 0)
            ; /* EINTR */
        sem_destroy(&t->ready);
        if (t->init_rc != 0) {
            s->nthreads = k + 1;
            close_fds(s, k, nthreads);
            mg_http_stop(s);
            return mg_err_set(err, MG_ENOMEM, "out of memory");
        }
    }
    for (int i = 0; i < s->nlisten; i++) {
        char names[64];
        mg_api_surface_names(opts->listen[i].surfaces, names, sizeof(names));
        mg_log(MG_LOG_INFO, "http", "listening addr=%s:%d serves=%s threads=%d max_body=%zu",
               opts->listen[i].host, s->ports[i], names, nthreads, opts->limits.max_body_bytes);
    }
    *out = s;
    return 0;
}

int mg_http_port(const mg_http_server_t *s, int i)
{
    return i >= 0 && i < s->nlisten ? s->ports[i] : -1;
}

void mg_http_drain(mg_http_server_t *s)
{
    if (s != NULL)
        atomic_store(&s->draining, true);
}

size_t mg_http_open_connections(const mg_http_server_t *s)
{
    size_t n = 0;
    for (int i = 0; s != NULL && i < s->nthreads; i++)
        n += atomic_load_explicit(&s->threads[i].nconns, memory_order_relaxed);
    return n;
}

bool mg_http_drained(const mg_http_server_t *s)
{
    for (int i = 0; s != NULL && i < s->nthreads; i++) {
        if (!atomic_load_explicit(&s->threads[i].listeners_closed, memory_order_acquire) ||
            atomic_load_explicit(&s->threads[i].nconns, memory_order_relaxed) != 0)
            return false;
    }
    return true;
}

void mg_http_stop(mg_http_server_t *s)
{
    if (s == NULL)
        return;
    atomic_store(&s->stopping, true);
    for (int i = 0; i < s->nthreads; i++) {
        if (s->threads[i].started)
            pthread_join(s->threads[i].tid, NULL);
        /* Each loop freed its state on its thread (release_loop, loop_init). */
    }
    mg_http1_shared_free(s->http1);
    h2o_config_dispose(&s->config);
    free(s->threads);
    /* h2o 2.2 cannot free an event loop; the process exits after stopping the server. */
    free(s);
}
