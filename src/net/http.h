/*
 * The HTTP/1.1 front end: libh2o event loops, one per thread, each with its own
 * SO_REUSEPORT listener on the same address, so the kernel spreads connections and no
 * request ever crosses threads. Requests go to the endpoints of net/api.h; answers to control
 * operations come back to the loop that received the request.
 */
#ifndef MG_NET_HTTP_H
#define MG_NET_HTTP_H

#include "core/err.h"
#include "net/api.h"

#include <stddef.h>

typedef struct mg_http_opts {
    const char *host;      /* numeric IPv4 or IPv6 address to listen on */
    int port;              /* 0: an ephemeral port (see mg_http_port) */
    int threads;           /* event loops; 0: number of cores */
    size_t max_body_bytes; /* larger request bodies get 413 */
    const mg_api_t *api;   /* endpoints and what they serve; must outlive the server */
} mg_http_opts_t;

typedef struct mg_http_server mg_http_server_t;

/**
 * Binds the listeners and starts the event-loop threads. Returns 0, or MG_EINVAL / MG_EIO
 * (address in use, bad address) / MG_ENOMEM with `err` filled; nothing is left running on
 * failure. Ownership: `opts->api` must outlive the server. Thread: main.
 */
int mg_http_start(mg_http_server_t **out, const mg_http_opts_t *opts, mg_err_t *err);

/** Returns the bound TCP port. Thread: any. */
int mg_http_port(const mg_http_server_t *s);

/**
 * Stops accepting, answers the control operations still out, stops every loop, joins the
 * threads and frees the server. Stop the control plane first, so none is still running.
 * Accepts NULL. Thread: main.
 */
void mg_http_stop(mg_http_server_t *s);

#endif
