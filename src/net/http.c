#include "net/http.h"

#include "core/buf.h"
#include "core/log.h"

#include <arpa/inet.h>
#include <h2o.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <urcu.h>

/* One listening socket of one loop; its accept context names the listener's hostconf. */
typedef struct loop_listener {
    h2o_accept_ctx_t accept_ctx;
    h2o_socket_t *sock;
    int fd;
} loop_listener_t;

/* One event loop: its h2o context first, so a request's ctx pointer leads back here. */
typedef struct loop_thread {
    h2o_context_t ctx;
    loop_listener_t listeners[MG_HTTP_LISTENERS_MAX];
    pthread_t tid;
    int started;
    mg_api_loop_t *api;
    struct mg_http_server *server;
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
    int nlisten;
    int ports[MG_HTTP_LISTENERS_MAX];
    int nthreads;
    atomic_bool stopping;
    loop_thread_t *threads;
};

static int on_req(h2o_handler_t *self, h2o_req_t *req)
{
    api_handler_t *h = (api_handler_t *)self;
    loop_thread_t *t = (loop_thread_t *)req->conn->ctx;
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

static void on_accept(h2o_socket_t *listener, const char *err)
{
    if (err != NULL)
        return;
    loop_listener_t *l = listener->data;
    h2o_socket_t *sock = h2o_evloop_socket_accept(listener);
    if (sock == NULL)
        return;
    /* Responses are single writes; don't let Nagle hold them back. */
    int one = 1;
    setsockopt(h2o_socket_get_fd(sock), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    h2o_accept(&l->accept_ctx, sock);
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

static void *loop_main(void *arg)
{
    loop_thread_t *t = arg;
    rcu_register_thread();
    while (!atomic_load_explicit(&t->server->stopping, memory_order_relaxed))
        h2o_evloop_run(t->ctx.loop, 100);
    for (int i = 0; i < t->server->nlisten; i++) {
        h2o_socket_read_stop(t->listeners[i].sock);
        h2o_socket_close(t->listeners[i].sock);
    }
    /*
     * Answer the control operations still out (the control plane has stopped, so each has
     * completed or been cancelled and its message is on its way), and let the close complete.
     */
    for (int i = 0; i < 100 && mg_api_loop_pending(t->api) > 0; i++)
        h2o_evloop_run(t->ctx.loop, 10);
    h2o_evloop_run(t->ctx.loop, 0);
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

static void close_fds(mg_http_server_t *s, int nthreads)
{
    for (int k = 0; k < nthreads; k++) {
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
    int nthreads = opts->threads > 0 ? opts->threads : (int)sysconf(_SC_NPROCESSORS_ONLN);
    if (nthreads < 1)
        nthreads = 1;
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
    for (int k = 0; k < nthreads; k++)
        for (int i = 0; i < MG_HTTP_LISTENERS_MAX; i++)
            s->threads[k].listeners[i].fd = -1;

    h2o_config_init(&s->config);
    s->config.max_request_entity_size = opts->max_body_bytes;
    s->config.server_name = h2o_iovec_init(H2O_STRLIT("modelgate"));
    for (int i = 0; i < s->nlisten; i++)
        register_listener(s, i, opts->listen[i].surfaces, opts->max_body_bytes);
    for (int i = 0; i < s->nlisten; i++) {
        if (open_listener_fds(s, i, &opts->listen[i], err) != 0) {
            close_fds(s, nthreads);
            h2o_config_dispose(&s->config);
            free(s->threads);
            free(s);
            return err->code;
        }
    }

    for (int k = 0; k < nthreads; k++) {
        loop_thread_t *t = &s->threads[k];
        t->server = s;
        h2o_context_init(&t->ctx, h2o_evloop_create(), &s->config);
        if (mg_api_loop_new(&t->api, s->api, t->ctx.loop) != 0) {
            s->nthreads = k;
            close_fds(s, nthreads);
            mg_http_stop(s);
            return mg_err_set(err, MG_ENOMEM, "out of memory");
        }
        for (int i = 0; i < s->nlisten; i++) {
            loop_listener_t *l = &t->listeners[i];
            l->accept_ctx.ctx = &t->ctx;
            l->accept_ctx.hosts = s->hosts[i];
            l->sock = h2o_evloop_socket_create(t->ctx.loop, l->fd, H2O_SOCKET_FLAG_DONT_READ);
            l->sock->data = l;
            h2o_socket_read_start(l->sock, on_accept);
        }
        if (pthread_create(&t->tid, NULL, loop_main, t) != 0) {
            s->nthreads = k + 1;
            mg_http_stop(s);
            return mg_err_set(err, MG_EIO, "cannot start event loop thread: %s", strerror(errno));
        }
        t->started = 1;
    }
    for (int i = 0; i < s->nlisten; i++) {
        char names[64];
        mg_api_surface_names(opts->listen[i].surfaces, names, sizeof(names));
        mg_log(MG_LOG_INFO, "http", "listening addr=%s:%d serves=%s threads=%d max_body=%zu",
               opts->listen[i].host, s->ports[i], names, nthreads, opts->max_body_bytes);
    }
    *out = s;
    return 0;
}

int mg_http_port(const mg_http_server_t *s, int i)
{
    return i >= 0 && i < s->nlisten ? s->ports[i] : -1;
}

void mg_http_stop(mg_http_server_t *s)
{
    if (s == NULL)
        return;
    atomic_store(&s->stopping, true);
    for (int i = 0; i < s->nthreads; i++) {
        if (s->threads[i].started)
            pthread_join(s->threads[i].tid, NULL);
        mg_api_loop_free(s->threads[i].api);
    }
    free(s->threads);
    /* h2o 2.2 cannot free an event loop; the process exits after stopping the server. */
    free(s);
}
