/*
 * The HTTP endpoints: KServe v2 (health, server and model metadata, readiness, infer with
 * JSON and binary tensors), the repository extension (index, load, unload), the simple API
 * (/predict, /healthz, /readyz), the admin API (traffic policies, route table), and the
 * operators' own URLs of the route table.
 *
 * This layer only speaks HTTP: it picks the endpoint from the method and path, decodes the
 * body (src/proto), hands the call to the request core (src/serve) or an operation to the
 * control plane (src/control), and encodes and sends the answer. Every error is
 * {"error": "..."} with the status serve/status.h gives its code; a bad request never
 * affects another.
 */
#ifndef MG_NET_API_H
#define MG_NET_API_H

#include "cluster/cluster.h"
#include "control/control.h"
#include "net/auth.h"
#include "serve/pool.h"
#include "serve/ratelimit.h"
#include "serve/serve.h"
#include "serve/shm.h"

#include <h2o.h>
#include <stdatomic.h>
#include <stddef.h>

/** The surfaces a listener may serve; an endpoint belongs to one. */
enum {
    MG_SURFACE_INFERENCE = 1u << 0, /* health, metadata, inference, /predict, route-table URLs */
    MG_SURFACE_ADMIN = 1u << 1,     /* the admin API and the repository load/unload calls */
    MG_SURFACE_METRICS = 1u << 2,   /* metrics for scrapers */
    MG_SURFACE_ALL = 7u,
};

/** Writes "inference,admin" (the names of `surfaces`) into `out`. Thread: any. */
void mg_api_surface_names(unsigned surfaces, char *out, size_t cap);

/** What the endpoints serve. Shared read-only by every event loop; outlives the server. */
typedef struct mg_api {
    mg_serve_t *serve;     /* the request core */
    mg_control_t *control; /* where changes go */
    size_t max_body_bytes; /* for messages about the body limit */
    mg_shm_t *shm;         /* registered system shared-memory regions */
    /* With --etcd: the fleet's status for readiness, set once it has started (the loops may
     * already run); else NULL. */
    _Atomic(mg_cluster_t *) cluster;
    mg_pool_t *pool;              /* runs models configured with "execution": "pool"; NULL: none */
    mg_auth_t admin_auth;         /* the admin surface's token (net/auth.h); unset: none required */
    mg_ratelimit_t *ratelimit;    /* per-client limit on inference requests; NULL: none */
    const char *ratelimit_header; /* lower-case header whose value is the client key; NULL: peer */
} mg_api_t;

/** One event loop's endpoint state: scratch memory and the mailbox for control results. */
typedef struct mg_api_loop mg_api_loop_t;

/**
 * Creates the endpoint state of the event loop `loop`: its per-request arena and output
 * buffer (reused request after request), and a receiver on `loop` for control operations
 * that complete. Returns 0 or MG_ENOMEM. Ownership: `api` must outlive it. Thread: the loop's
 * (before it runs) or start-up.
 */
int mg_api_loop_new(mg_api_loop_t **out, const mg_api_t *api, h2o_loop_t *loop);

/**
 * Frees the endpoint state. Call only once mg_api_loop_pending() is 0 and the loop no longer
 * runs handlers. Accepts NULL. Thread: the loop's, or after it stopped.
 */
void mg_api_loop_free(mg_api_loop_t *l);

/** Control operations submitted from this loop whose answer has not been sent. Thread: loop. */
size_t mg_api_loop_pending(const mg_api_loop_t *l);

/**
 * Answers one request that came in on a listener serving `surfaces`: at once, or (repository
 * and admin changes) when its control operation completes, on this loop. Paths of other
 * surfaces, and unknown ones, get 404. With a token set, an admin endpoint without
 * "Authorization: Bearer <token>" gets 401 (with WWW-Authenticate), with a wrong one 403,
 * before anything else (the method check included). Returns 0 as h2o handlers do.
 * Thread: the event loop that owns `l`, registered with RCU.
 */
int mg_api_handle(mg_api_loop_t *l, h2o_req_t *req, unsigned surfaces);

#endif
