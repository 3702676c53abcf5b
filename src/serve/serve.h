/*
 * The request core: the one place an inference request is decided. Every front end (HTTP
 * today, gRPC next) decodes into an mg_serve_call_t, calls mg_serve_infer, encodes the result
 * and sends it; it never routes, resolves models or touches the registry itself.
 *
 * One call runs, in order: model resolution (route rule, URL, /predict body, --default-model,
 * the only model), routing (serve/pick.h: policy precedence, version pin, fallback), the
 * deadline (serve/deadline.h), admission (serve/admit.h: the version's in-flight bound), input
 * binding for APIs that need the model's inputs to decode (/predict), the deadline check,
 * execution (serve/execute.h; a Run past the deadline is stopped) with the outcome recorded on
 * the version's circuit breaker, the replay, and the routing debug log. The pin on the serving
 * version is held until mg_serve_done.
 *
 * The replay: when the Run fails for a server-side reason (a 5xx code other than a deadline or
 * a shutdown) on a version the traffic policy chose that is not its stable version, the same
 * decoded request runs once more on the stable version, so the client gets the stable
 * version's answer (X-Route-Reason: fallback, X-Fallback-Reason: run-failed). Versions the
 * client named (URL, X-Model-Version) are not replayed elsewhere. The replay is admitted on the
 * stable version like any request (mg_admit_enter / mg_admit_leave around its execution), so
 * it counts against the stable version's bound; over it, the client gets the first failure.
 *
 * mg_serve_infer does it all in one go. A front end that keeps its event loop free while a
 * slow model runs splits it: mg_serve_begin (everything up to admission: cheap, never waits)
 * on the loop, mg_serve_run on the execution pool (serve/pool.h) when mg_serve_on_pool says
 * so, mg_serve_done back on the loop.
 *
 * The core is also where a request's whole life is visible, so it does the accounting every
 * front end shares: the per-request phases (queue, compute input, compute infer, compute
 * output, total) into the per-thread accumulators of obs/metrics.h, the routing decision,
 * fallbacks and replays, the trace (W3C context, the server, routing and inference spans) and
 * the log context (model, version, trace id, AB group, route reason on the thread's log lines).
 * A call split over the pool spends its queue phase waiting there: admitted, not running yet.
 */
#ifndef MG_SERVE_SERVE_H
#define MG_SERVE_SERVE_H

#include "core/buf.h"
#include "core/err.h"
#include "core/log.h"
#include "core/meta.h"
#include "core/version.h"
#include "infer/request.h"
#include "infer/session.h"
#include "obs/metrics.h"
#include "obs/trace.h"
#include "repo/registry.h"
#include "route/router.h"
#include "route/table.h"
#include "serve/deadline.h"
#include "serve/pick.h"

#include <stdbool.h>
#include <stdint.h>

typedef struct mg_serve mg_serve_t;

/** What the core serves; the registry and router must outlive it. */
typedef struct mg_serve_opts {
    mg_registry_t *registry;
    mg_router_t *router;         /* route table and admin traffic policies */
    const char *default_model;   /* for /predict without "model"; NULL: the only model, if one */
    int max_inflight;            /* per-version bound when config.json has none; 0: none */
    mg_deadline_opts_t deadline; /* request deadlines: cap and default */
} mg_serve_opts_t;

/** Creates the core (copies `default_model`). Returns 0 or MG_ENOMEM. Thread: start-up. */
int mg_serve_new(mg_serve_t **out, const mg_serve_opts_t *opts, mg_err_t *err);

/** Frees the core (not the registry or router). Accepts NULL. */
void mg_serve_free(mg_serve_t *s);

/** The registry and router the core serves from. */
mg_registry_t *mg_serve_registry(const mg_serve_t *s);
mg_router_t *mg_serve_router(const mg_serve_t *s);

/**
 * Marks the server as shutting down: readiness (serve/info.h) answers false from now on, so
 * balancers stop sending; requests that arrive still run. Thread: any.
 */
void mg_serve_drain(mg_serve_t *s);

/** True once mg_serve_drain was called. Thread: any. */
bool mg_serve_draining(const mg_serve_t *s);

/**
 * Fills `req`'s inputs once the serving version is known, for APIs whose body needs the
 * model's inputs to decode (/predict). `meta` describes the model's inputs and outputs,
 * `model` names it. Returns 0 or an MG_E* code with `err` filled.
 */
typedef int (*mg_serve_bind_fn)(void *ctx, const mg_session_t *meta, const char *model,
                                mg_infer_request_t *req, mg_err_t *err);

/** One inference call, as a front end decoded it. Everything it points to is the caller's. */
typedef struct mg_serve_call {
    mg_str_t model;              /* from the URL; empty: the rule's, the body's or the default */
    mg_str_t body_model;         /* the /predict body's "model", or empty */
    mg_str_t url_version;        /* from the URL or the /predict body's "version", or empty */
    const mg_route_rule_t *rule; /* the matched route-table rule (see mg_serve_match), or NULL */
    mg_meta_t meta;              /* request headers / metadata, looked up lower-case */
    mg_infer_request_t *req;     /* the decoded request (with `bind`: inputs filled later) */
    mg_serve_bind_fn bind;       /* NULL: the inputs are decoded already */
    void *bind_ctx;
    int64_t deadline_ns; /* CLOCK_MONOTONIC time by which the model must be done (a Run still going
                            is stopped); 0: from the request (serve/deadline.h). Capped by the
                            server maximum either way. */
    int64_t received_ns; /* CLOCK_MONOTONIC arrival (mg_obs_now_ns), for queue time; 0: now */
    mg_str_t operation;  /* low-cardinality name of the call, the server span's name
                            ("POST /v2/models/{}/infer"); empty: "infer" */
    mg_str_t target;     /* the request's path as sent, for the trace; may be empty */
} mg_serve_call_t;

/** The step of mg_serve_infer that failed, for logs and failure counts. */
typedef enum {
    MG_SERVE_STEP_RESOLVE = 0, /* which model */
    MG_SERVE_STEP_ROUTE,       /* which version, and its admission */
    MG_SERVE_STEP_BIND,        /* decoding inputs against the model */
    MG_SERVE_STEP_EXECUTE,     /* validation against the model, and the Run */
} mg_serve_step_t;

/** The core's accounting of one call, between mg_serve_infer and mg_serve_done. Private. */
typedef struct mg_serve_obs {
    const mg_serve_call_t *call;
    bool metrics, finished;
    bool traced; /* a trace to continue: sampled here, or the caller's (traceparent) */
    mg_obs_series_t series;
    uint64_t batch;        /* rows of the Run that served the call */
    uint64_t items;        /* of those, the call's own when the Run joined several; 0: all */
    uint32_t run_requests; /* requests the Run joined; 0: this one alone */
    bool shared_run;       /* another member of the joined Run counts the Run */
    int64_t start_ns, route_start_ns, route_end_ns, exec_ns;
    mg_session_timing_t run;
    mg_trace_ctx_t trace;
    char trace_hex[33];
    char traceparent[56];
    char version_text[MG_VERSION_TEXT_MAX]; /* the serving version's, valid after the unpin */
    mg_log_context_t log;
} mg_serve_obs_t;

/** What one call produced. Zero-initialisation is not needed: mg_serve_infer fills it. */
typedef struct mg_serve_result {
    int rc;                       /* 0, or the MG_E* code of the failure (mg_status_http maps it) */
    mg_serve_step_t step;         /* on failure: where */
    mg_err_t err;                 /* on failure: what, for the client */
    mg_str_t model;               /* the resolved model name (empty when resolution failed) */
    const char *rule;             /* the route rule's name, or "-" */
    mg_pick_t pick;               /* the version that serves (pinned) and why */
    mg_infer_response_t resp;     /* on success: the outputs */
    int64_t deadline_ns;          /* the call's deadline, 0: none */
    mg_model_version_t *admitted; /* the version counted in flight (serve/admit.h), or NULL */
    mg_serve_obs_t obs;           /* the core's accounting; front ends read only trace_hex */
} mg_serve_result_t;

/**
 * Runs one call to the end and fills `res`. On success `res->resp` holds the outputs and
 * `res->pick.version` stays pinned until mg_serve_done; on failure nothing stays pinned or
 * allocated but what the request arena holds, and the failure is already counted. `call`
 * must stay valid until mg_serve_done. Returns res->rc. Thread: any RCU-registered request
 * thread (the arena's owner), outside a read section.
 */
int mg_serve_infer(mg_serve_t *s, const mg_serve_call_t *call, mg_serve_result_t *res);

/**
 * The first part of mg_serve_infer: resolution, routing, the deadline and admission (an
 * over-bound version fails at once with MG_EOVERLOAD: answer 503 with the headers of
 * mg_serve_error_headers). Never blocks. On success the version is pinned and admitted; go
 * on with mg_serve_run (here or on the pool), or hold the call for a joined Run
 * (mg_serve_batchable, mg_serve_run_batch); either way end with mg_serve_done. On failure
 * nothing stays pinned or admitted. Returns res->rc. Thread: as mg_serve_infer.
 */
int mg_serve_begin(mg_serve_t *s, const mg_serve_call_t *call, mg_serve_result_t *res);

/**
 * Whether the version `res` picked runs on the execution pool ("execution": "pool" in its
 * config.json). Thread: the result's owner.
 */
bool mg_serve_on_pool(const mg_serve_result_t *res);

/**
 * The rest of mg_serve_infer after a successful mg_serve_begin: binding, the deadline check,
 * execution (the admission ends with it). Returns res->rc. Thread: any RCU-registered thread
 * that owns the request arena for the time of the call (a pool thread, or the loop).
 */
int mg_serve_run(mg_serve_t *s, const mg_serve_call_t *call, mg_serve_result_t *res);

/**
 * Moves a begun call's result to `dst` (a result refers to itself and to its call: it is not
 * copied with a plain assignment), whose call is now `call` (a copy of the one it began with,
 * that lives until mg_serve_done). The calling thread's log context is cleared: the call goes
 * on elsewhere. Thread: the result's owner, which hands it on.
 */
void mg_serve_move(mg_serve_result_t *dst, const mg_serve_result_t *src,
                   const mg_serve_call_t *call);

/**
 * True when a call mg_serve_begin routed may wait until the end of its event-loop wake to
 * share a Run with others: opportunistic batching is on for its version
 * (mg_model_version_batch_rows), its inputs are decoded already (no `bind`) and their first
 * dim is from 1 to the version's row limit. Thread: the call's.
 */
bool mg_serve_batchable(const mg_serve_call_t *call, const mg_serve_result_t *res);

/** The rows one joined Run may hold on the version `res` was routed to. Thread: the call's. */
int64_t mg_serve_batch_rows(const mg_serve_result_t *res);

/**
 * Runs `n` calls routed to the same version (mg_serve_batchable, their requests pairwise
 * mg_session_batch_compatible) as one Run. A call past its deadline or invalid on its own
 * fails alone and never joins; the others share the Run and each result gets its own rows,
 * figures and breaker record as if it had run alone. A failed joined Run is every member's
 * failure, and each member is replayed on the stable version as mg_serve_run would. The
 * joined memory is in `arena` and the shared outputs in *owner (NULL when none): once every
 * member's answer is encoded, release them with mg_session_owner_release, then reset `arena`.
 * Every result ends with mg_serve_done as usual. Thread: as mg_serve_infer, the owner of every
 * call's request arena.
 */
void mg_serve_run_batch(mg_serve_t *s, const mg_serve_call_t *const *calls,
                        mg_serve_result_t *const *res, size_t n, mg_arena_t *arena, void **owner);

/**
 * Ends a call once its answer is encoded: records a success's figures and spans (the response
 * encoding counts as compute output), clears the thread's log context, releases the outputs
 * and the pin. Call it after every mg_serve_infer, failed or not (a failure's error answer
 * may log with the call's context until then). Thread: the caller's.
 */
void mg_serve_done(mg_serve_result_t *res);

/** One response header / metadata entry every front end sends. */
typedef struct mg_serve_header {
    const char *name; /* lower-case, static */
    mg_str_t value;   /* points into the call, the result or the explain buffer */
} mg_serve_header_t;

#define MG_SERVE_HEADERS_MAX 8
#define MG_SERVE_EXPLAIN_MAX 400

/**
 * The response metadata of a successful call: x-model-version (the version that served),
 * x-route-reason, x-fallback-reason (with reason "fallback": not-loaded, not-ready,
 * breaker-open or run-failed), the echoes of x-trace-id and x-ab-group, traceparent (this
 * server's span) and the echo of tracestate when tracing is on and the call continues a trace
 * (sampled here, or sent with a traceparent), and x-route-explain when the
 * request asked with "X-Route-Explain: 1" (its text written to `explain`, MG_SERVE_EXPLAIN_MAX
 * bytes; "config-revision=R" ends it when the routing snapshot came from the fleet's
 * configuration). Fills out[0, MG_SERVE_HEADERS_MAX) and returns the count. Thread: the caller's.
 */
size_t mg_serve_headers(const mg_serve_call_t *call, const mg_serve_result_t *res,
                        mg_serve_header_t *out, char *explain);

/**
 * The response metadata of a failed call: retry-after (seconds) when the version was over
 * its in-flight bound. Fills out[0, MG_SERVE_HEADERS_MAX) and returns the count.
 * Thread: the caller's.
 */
size_t mg_serve_error_headers(const mg_serve_result_t *res, mg_serve_header_t *out);

/**
 * Matches a request against the route table (host without port, normalised path, headers)
 * and copies the first matching rule into `out`, its strings and policy into `arena`, so the
 * caller can use it after the read section. Returns 1 (matched), 0 (no rule) or MG_ENOMEM.
 * Thread: any RCU-registered thread (the arena's owner), outside a read section.
 */
int mg_serve_match(mg_serve_t *s, mg_str_t host, mg_str_t path, const mg_meta_t *meta,
                   mg_arena_t *arena, mg_route_rule_t *out);

#endif
