/*
 * The gRPC front end: KServe v2 GRPCInferenceService (src/proto/grpc_service.proto) on gRPC
 * core's C completion-queue API. Calls are driven by method path
 * ("/inference.GRPCInferenceService/ModelInfer"); each is decoded (proto/kserve_pb.h for
 * ModelInfer, protoc-c for the rest), handed to the request core (serve/serve.h), the server
 * facts (serve/info.h) or the control plane (control/control.h), and answered with the gRPC
 * status that matches the HTTP status serve/status.h gives the failure, with the same message.
 *
 * Threads: `threads` completion-queue threads, each polling its own queue and running the
 * calls it receives to the end, model Run included, as an HTTP event loop does; gRPC spreads
 * new calls over the threads. ModelInfer for a version on the execution pool (serve/serve.h
 * mg_serve_on_pool) runs on `pool`: a pool thread runs it and starts the answer itself (gRPC's
 * batch API may be called from any thread, one batch of a call at a time), and the completion
 * frees the call on its thread. Repository load and unload are control operations: the thread
 * submits and moves on; the answer is started when the operation completes and finishes on
 * the call's thread.
 */
#ifndef MG_NET_GRPC_H
#define MG_NET_GRPC_H

#include "control/control.h"
#include "core/err.h"
#include "net/auth.h"
#include "serve/pool.h"
#include "serve/serve.h"
#include "serve/shm.h"

#include <stdbool.h>
#include <stddef.h>

typedef struct mg_grpc_opts {
    const char *host;         /* numeric IPv4 or IPv6 address */
    int port;                 /* 0: an ephemeral port (see mg_grpc_port) */
    int threads;              /* completion-queue threads; 0: number of cores */
    size_t max_message_bytes; /* larger request messages get RESOURCE_EXHAUSTED */
    mg_serve_t *serve;        /* the request core; must outlive the server */
    mg_control_t *control;    /* where repository changes go; must outlive the server */
    mg_pool_t *pool;          /* runs ModelInfer for models on the execution pool; NULL: none.
                                 Stop it before mg_grpc_stop (its jobs answer calls). */
    mg_shm_t *shm;            /* the system shared-memory regions, shared with HTTP */
    /* Repository load and unload and shared-memory (un)registration belong to the admin
       surface (net/api.h): */
    mg_auth_t admin_auth; /* set: they need "authorization: Bearer <token>" metadata */
    bool admin_elsewhere; /* --admin-listen: they are refused here (PERMISSION_DENIED) */
} mg_grpc_opts_t;

typedef struct mg_grpc_server mg_grpc_server_t;

/**
 * Binds host:port and starts the completion-queue threads. Returns 0, or MG_EINVAL (bad
 * address) / MG_EIO (address in use, cannot start a thread) / MG_ENOMEM with `err` filled;
 * nothing is left running or bound on failure. Thread: main.
 */
int mg_grpc_start(mg_grpc_server_t **out, const mg_grpc_opts_t *opts, mg_err_t *err);

/** Returns the bound TCP port. Thread: any. */
int mg_grpc_port(const mg_grpc_server_t *s);

/**
 * Starts draining: the calls already received are taken and answered, new calls are refused
 * (clients get GOAWAY and go elsewhere) once the server has read every call sent before the
 * signal, or at the latest half of `drain_ms` from now. Returns at once; mg_grpc_drained says
 * when it is done. Idempotent; accepts NULL. Thread: main.
 */
void mg_grpc_drain(mg_grpc_server_t *s, int drain_ms);

/** True once a drain has finished every call (NULL: true). Never blocks. Thread: main. */
bool mg_grpc_drained(mg_grpc_server_t *s);

/**
 * Drains (when mg_grpc_drain was not called: after serving on until the server is idle, at most
 * half of `drain_ms`), waits for the calls in flight until `drain_ms` milliseconds have passed,
 * cancels what is left, stops and joins the threads and frees the server. Stop the control
 * plane first, so every repository call has been answered. Accepts NULL. Thread: main.
 */
void mg_grpc_stop(mg_grpc_server_t *s, int drain_ms);

#endif
