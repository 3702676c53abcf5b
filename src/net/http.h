/*
 * The HTTP/1.1 front end: libh2o event loops, one per thread. Each loop has its own
 * SO_REUSEPORT socket on every listening address, so the kernel spreads connections and no
 * request ever crosses threads. A listener serves a set of surfaces (inference, admin,
 * metrics: net/api.h); a path outside them is answered 404 there. Requests go to the
 * endpoints of net/api.h; answers to control operations come back to the loop that received
 * the request.
 */
#ifndef MG_NET_HTTP_H
#define MG_NET_HTTP_H

#include "core/err.h"
#include "net/api.h"
#include "net/http1.h"

#include <stdbool.h>
#include <stddef.h>

/** One listening address and what it serves. */
typedef struct mg_http_listen {
    const char *host;  /* numeric IPv4 or IPv6 address */
    int port;          /* 0: an ephemeral port (see mg_http_port) */
    unsigned surfaces; /* MG_SURFACE_* bits */
} mg_http_listen_t;

#define MG_HTTP_LISTENERS_MAX 4

typedef struct mg_http_opts {
    const mg_http_listen_t *listen; /* 1..MG_HTTP_LISTENERS_MAX addresses */
    int nlisten;
    int threads;              /* event loops; 0: number of cores */
    mg_http1_limits_t limits; /* request and connection limits, body size among them */
    const mg_api_t *api;      /* endpoints and what they serve; must outlive the server */
} mg_http_opts_t;

typedef struct mg_http_server mg_http_server_t;

/**
 * Binds every listener and starts the event-loop threads. Returns 0, or MG_EINVAL / MG_EIO
 * (address in use, bad address) / MG_ENOMEM with `err` filled; nothing is left running or
 * bound on failure. Ownership: `opts->api` must outlive the server. Thread: main.
 */
int mg_http_start(mg_http_server_t **out, const mg_http_opts_t *opts, mg_err_t *err);

/** Returns the bound TCP port of listener `i` (in the order given). Thread: any. */
int mg_http_port(const mg_http_server_t *s, int i);

/**
 * Begins a graceful stop and returns at once. Each loop, within 100 ms: accepts the
 * connections the kernel already queued, closes its listening sockets (new connections are
 * refused), and from then on answers every request with "Connection: close"; a connection
 * with nothing in flight, nothing received and nothing waiting in the kernel is closed once it
 * stayed so for a second. Requests already received are answered. Follow with mg_http_stop
 * once mg_http_drained() or the drain deadline passed. Thread: main.
 */
void mg_http_drain(mg_http_server_t *s);

/** True once every loop closed its listeners and every connection is closed. Thread: any. */
bool mg_http_drained(const mg_http_server_t *s);

/** Connections open on every loop (as last published by the loops). Thread: any. */
size_t mg_http_open_connections(const mg_http_server_t *s);

/**
 * Stops accepting, answers the control operations still out, stops every loop, joins the
 * threads and frees the server. Stop the control plane first, so none is still running.
 * Accepts NULL. Thread: main.
 */
void mg_http_stop(mg_http_server_t *s);

#endif
