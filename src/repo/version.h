/*
 * One version of a model as the request path sees it: immutable once built (name, number,
 * state, config, sessions), plus a pin count of the requests in flight on it.
 *
 * A version is built by the loader (repo/loader.h) and owned by the registry
 * (repo/registry.h), which frees it on the control thread once no snapshot lists it and no
 * request holds a pin. Request threads pin it through mg_registry_acquire and unpin it when
 * their response is encoded; they never free it.
 */
#ifndef MG_REPO_VERSION_H
#define MG_REPO_VERSION_H

#include "infer/session.h"
#include "repo/config.h"
#include "repo/labels.h"
#include "route/breaker.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

/*
 * Lifecycle states. A built version is READY or FAILED; LOADING, DRAINING and UNLOADED are
 * what the repository index shows for versions being built, retired with requests still in
 * flight, and taken out (unloaded, or no longer selected by the version policy). A model as a
 * whole is READY when one of its versions is, else UNAVAILABLE.
 */
typedef enum {
    MG_MODEL_UNAVAILABLE = 0, /* a model none of whose versions serves; the reason says why */
    MG_MODEL_READY,
    MG_MODEL_LOADING,
    MG_MODEL_DRAINING,
    MG_MODEL_UNLOADED,
    MG_MODEL_FAILED, /* verification, the sandbox, the session or the warm-up failed: why */
} mg_model_state_t;

/** modelgate's name of a state ("READY", "DRAINING", ...). Static. Thread: any. */
const char *mg_model_state_name(mg_model_state_t s);

/**
 * Triton's name of a state for the index's `state` field: READY, LOADING, UNLOADING
 * (DRAINING) or UNAVAILABLE (UNLOADED, FAILED). Static. Thread: any.
 */
const char *mg_model_state_triton(mg_model_state_t s);

typedef struct mg_model_version mg_model_version_t;

/** The model's name. Owned by the version. Thread: any holder of a pin or read section. */
const char *mg_model_version_model(const mg_model_version_t *v);

/** The version number. */
int64_t mg_model_version_number(const mg_model_version_t *v);

/** The version number as decimal text ("2"). Owned by the version. */
const char *mg_model_version_text(const mg_model_version_t *v);

/** READY, or FAILED with mg_model_version_reason() saying why. */
mg_model_state_t mg_model_version_state(const mg_model_version_t *v);

/** Why the version is not ready ("" when it is). Owned by the version. */
const char *mg_model_version_reason(const mg_model_version_t *v);

/** The model config the version was built with. Owned by the version. */
const mg_model_config_t *mg_model_version_config(const mg_model_version_t *v);

/**
 * The classification labels of output `output` (read with the version from the file its
 * config.json "label_filename" names), or NULL when it has none. Owned by the version.
 */
const mg_labels_t *mg_model_version_labels(const mg_model_version_t *v, mg_str_t output);

/** SHA-256 of the model file the sessions were built from (32 bytes). */
const unsigned char *mg_model_version_sha256(const mg_model_version_t *v);

/**
 * A session to describe the model (inputs, outputs), or NULL when the version is not READY.
 * Owned by the version.
 */
const mg_session_t *mg_model_version_meta(const mg_model_version_t *v);

/** Instance `i` of the version's sessions, or NULL past the last (0 when not READY). */
const mg_session_t *mg_model_version_instance(const mg_model_version_t *v, int i);

/**
 * The session the next request on `v` runs on (round robin over its instances). `v` must be
 * READY and pinned. Thread: any request thread.
 */
mg_session_t *mg_model_version_session(mg_model_version_t *v);

/**
 * Binds the calling thread to session slot `index` (a request thread's number, from 0): from
 * then on mg_model_version_session gives it session `index` modulo the version's sessions, so
 * with a session per thread no two threads share one and no shared counter is written. A
 * thread that never binds (or binds -1) takes the sessions round robin. Thread: the caller's.
 */
void mg_model_version_bind_thread(int index);

/**
 * The rows one Run joining several requests (serve/batch.h) may hold on `v`, 0 when
 * opportunistic batching is off for it (config.json, a model without a batch dim, or joined
 * Runs that did not answer exactly like separate ones at load). Thread: any.
 */
int64_t mg_model_version_batch_rows(const mg_model_version_t *v);

/**
 * True when `v`'s Runs belong on the execution pool: config.json's "execution": "pool", or no
 * "execution" and a Run over MG_LOADER_POOL_RUN_MIN_US at load. Thread: any.
 */
bool mg_model_version_on_pool(const mg_model_version_t *v);

/**
 * The version's circuit breaker (route/breaker.h), made with its config.json "breaker"
 * settings. It lives as long as the version: a reload that keeps the version keeps its state,
 * a rebuilt version starts closed. Owned by the version. Thread: any holder of a pin or read
 * section.
 */
mg_breaker_t *mg_model_version_breaker(const mg_model_version_t *v);

/** Releases a pin taken by mg_registry_acquire. Accepts NULL. Thread: any. */
void mg_model_version_unpin(mg_model_version_t *v);

/** Requests in flight on `v` (pins held), as last seen. Thread: any. */
int mg_model_version_pins(const mg_model_version_t *v);

/**
 * The counter of requests admitted to `v` (running or queued), which only serve/admit.h
 * changes. Owned by `v`. Thread: any holder of a pin.
 */
atomic_int *mg_model_version_inflight(mg_model_version_t *v);

#endif
