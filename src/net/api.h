/*
 * The HTTP endpoints: KServe v2 (health, server and model metadata, readiness, infer with
 * JSON and binary tensors), the repository extension (index, load, unload), the simple
 * API (/predict, /healthz, /readyz), the admin API (traffic policies, route table), and the
 * operators' own URLs of the route table. Every error is {"error": "..."} with the status the
 * KServe protocol gives it; a bad request never affects another.
 */
#ifndef MG_NET_API_H
#define MG_NET_API_H

#include "core/buf.h"
#include "repo/registry.h"
#include "route/router.h"

#include <h2o.h>

/** What the endpoints serve. Shared read-only by every event loop. */
typedef struct mg_api {
    mg_registry_t *registry;
    mg_router_t *router;       /* route table and admin traffic policies */
    const char *default_model; /* for /predict without "model"; NULL: the only model, if one */
} mg_api_t;

/** Per-thread scratch memory, reused request after request. */
typedef struct mg_api_scratch {
    mg_arena_t arena;
    mg_buf_t out;
} mg_api_scratch_t;

void mg_api_scratch_init(mg_api_scratch_t *s);
void mg_api_scratch_deinit(mg_api_scratch_t *s);

/**
 * Answers one request (always: unknown paths get 404). Returns 0 as h2o handlers do.
 * Thread: the event loop that owns `scratch`, registered with RCU.
 */
int mg_api_handle(const mg_api_t *api, mg_api_scratch_t *scratch, h2o_req_t *req);

#endif
