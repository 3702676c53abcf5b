/*
 * What the front ends report about the server and its models, computed in one place so HTTP
 * and gRPC answer alike: server readiness, a model's versions and metadata, the repository
 * index, the traffic policy in force, and the versions' circuit breakers.
 */
#ifndef MG_SERVE_INFO_H
#define MG_SERVE_INFO_H

#include "core/buf.h"
#include "core/err.h"
#include "repo/loader.h"
#include "route/breaker.h"
#include "route/policy.h"
#include "serve/pick.h"
#include "serve/serve.h"

#include <stdbool.h>

/**
 * True when the server is ready: the repository has been loaded, every model that should serve
 * does (a model unloaded on purpose does not count) and the server is not shutting down.
 * Otherwise false, with `why` (when not NULL) given "the server is shutting down", "model 'x'
 * is not ready (reason); ..." or "models are still loading".
 * Returns false with `why` unchanged when out of memory. Thread: any RCU-registered thread.
 */
bool mg_info_ready(mg_serve_t *s, mg_buf_t *why);

/**
 * Pins version `version` (decimal text; empty: the default version) of `model`, for metadata
 * and readiness. Returns 0 with *out pinned (mg_model_version_unpin), or MG_ENOMODEL,
 * MG_ENOVERSION (also for text that is not a version number: "unknown version 'x1' of model
 * 'm'") or MG_EUNAVAIL with `err` filled. Thread: any RCU-registered thread.
 */
int mg_info_acquire(mg_serve_t *s, mg_str_t model, mg_str_t version, mg_model_version_t **out,
                    mg_err_t *err);

/** Called per model entry by mg_info_each_entry; a non-zero return stops the walk. */
typedef int (*mg_info_entry_fn)(void *ctx, const mg_model_entry_t *e);

/**
 * Calls `fn` for the registry entry of `model`, or of every model (by name) when `model` is
 * empty, inside one RCU read section (entries and their versions are valid during the call).
 * Returns 0, MG_ENOMODEL (Triton's wording, with `err`) or the callback's value.
 * Thread: any RCU-registered thread, outside a read section.
 */
int mg_info_each_entry(mg_serve_t *s, mg_str_t model, mg_info_entry_fn fn, void *ctx,
                       mg_err_t *err);

/** The server's name, version and protocol extensions, as server metadata reports them. */
typedef struct mg_info_server {
    const char *name;    /* "modelgate" */
    const char *version; /* MG_VERSION */
    const char *const *extensions;
    size_t nextensions;
} mg_info_server_t;

/** Fills `out` with static facts. Thread: any. */
void mg_info_server(mg_info_server_t *out);

/** What model metadata reports about one model, or one version of it. */
typedef struct mg_info_model {
    mg_model_version_t *version; /* pinned until mg_info_model_done */
    const char *name;
    const char *platform;              /* "onnxruntime_onnx" */
    int64_t versions[MG_VERSIONS_MAX]; /* the version asked for; none asked: every READY one */
    int nversions;
    int64_t max_batch_size;
    const mg_tensor_info_t *inputs, *outputs; /* the version's session's; dynamic dims -1 */
    size_t ninputs, noutputs;
} mg_info_model_t;

/**
 * Fills `out` for version `version` of `model` (decimal text; empty: the default version,
 * with every READY version listed). Returns 0 with out->version pinned (mg_info_model_done),
 * or the codes of mg_info_acquire with `err` filled. Thread: any RCU-registered thread.
 */
int mg_info_model(mg_serve_t *s, mg_str_t model, mg_str_t version, mg_info_model_t *out,
                  mg_err_t *err);

/** Unpins what mg_info_model pinned. Accepts a zeroed `m`. Thread: the caller's. */
void mg_info_model_done(mg_info_model_t *m);

/**
 * Writes the READY versions of `model`, ascending, to `out` (room for `cap`) and returns how
 * many (0 for an unknown model). Thread: any RCU-registered thread.
 */
int mg_info_ready_versions(mg_serve_t *s, mg_str_t model, int64_t *out, int cap);

/** One row of the repository index. Strings are valid for the duration of the callback. */
typedef struct mg_info_index_row {
    const char *name;
    const char *version;         /* NULL: a row for the model as a whole */
    const char *state;           /* Triton's: READY, LOADING, UNLOADING, UNAVAILABLE; NULL: a
                                    folder never loaded */
    const char *modelgate_state; /* the finer state: READY, LOADING, DRAINING, UNLOADED, FAILED
                                    (UNAVAILABLE for a model row); NULL with state */
    const char *reason;          /* NULL with state */
} mg_info_index_row_t;

/** Receives one index row; a non-zero return stops the walk and is returned. */
typedef int (*mg_info_index_fn)(void *ctx, const mg_info_index_row_t *row);

/**
 * Walks the repository index (repo/registry.h mg_registry_index): each model the registry
 * knows, one row per version listed, loading, draining or taken out (a model without any: one
 * row with its reason), then the model folders never loaded. With `ready_only`, only READY
 * versions. The callback runs inside an RCU read section: it must not
 * block. Returns 0, MG_EIO (the repository folder cannot be listed) or the callback's
 * non-zero value. Thread: any RCU-registered thread, outside a read section.
 */
int mg_info_index(mg_serve_t *s, bool ready_only, mg_info_index_fn fn, void *ctx);

/**
 * The traffic policy in force for `model` (admin API, else config.json; route-rule overrides
 * are per rule and not included): copied to *out with *source set, or *source MG_PICK_NONE
 * when there is none. Returns 0 or MG_ENOMODEL ("unknown model 'x'"). Thread: any
 * RCU-registered thread, outside a read section.
 */
int mg_info_traffic(mg_serve_t *s, mg_str_t model, mg_policy_t *out, mg_pick_source_t *source,
                    mg_err_t *err);

/** One version's circuit breaker. Strings are valid for the duration of the callback. */
typedef struct mg_info_breaker_row {
    const char *model;
    const char *version;
    bool ready;                 /* the version is READY */
    mg_breaker_status_t status; /* a version that is not READY reads open, "load-failed" */
} mg_info_breaker_row_t;

/** Receives one breaker row; a non-zero return stops the walk and is returned. */
typedef int (*mg_info_breaker_fn)(void *ctx, const mg_info_breaker_row_t *row);

/**
 * The read side of the circuit breakers for observability and the admin API: walks every
 * version of `model` (empty: of every model), ascending, with its breaker's state and counters
 * (route/breaker.h). The callback runs inside an RCU read section: it must not block. Returns
 * 0, MG_ENOMODEL ("unknown model 'x'", with `err`) or the callback's non-zero value. Lock-free.
 * Thread: any RCU-registered thread, outside a read section.
 */
int mg_info_breakers(mg_serve_t *s, mg_str_t model, mg_info_breaker_fn fn, void *ctx,
                     mg_err_t *err);

#endif
