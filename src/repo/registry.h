/*
 * The model registry: every model of the repository, its versions, their ONNX Runtime
 * sessions and states, published as an immutable snapshot with liburcu.
 *
 * Request threads look a version up inside an RCU read section and pin it with an atomic
 * reference; they never take a lock. Writers (start-up load, the repository API) are
 * serialised by one mutex, build a new snapshot, swap the pointer and free the old snapshot
 * after a grace period. A version that leaves the registry is freed when its last in-flight
 * request releases it, so unload and reload drain without failing a request.
 */
#ifndef MG_REPO_REGISTRY_H
#define MG_REPO_REGISTRY_H

#include "core/buf.h"
#include "core/err.h"
#include "infer/session.h"
#include "repo/config.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

typedef enum {
    MG_MODEL_UNAVAILABLE = 0, /* failed to load, or unloaded; `reason` says why */
    MG_MODEL_READY,
} mg_model_state_t;

/** One loaded (or failed) version of a model. Immutable once published, except `refs`. */
typedef struct mg_model_version {
    atomic_int refs;
    atomic_uint next_instance;
    const char *model_name; /* points at the owning model's name copy */
    int64_t version;
    char version_str[24];
    mg_model_state_t state;
    char reason[256];
    mg_model_config_t config;
    unsigned char sha256[32];
    mg_session_t **sessions; /* config.instance_count sessions when READY */
    int nsessions;
} mg_model_version_t;

/** A model and its versions (ascending), as one snapshot sees it. */
typedef struct mg_model_entry {
    char *name;
    mg_model_state_t state; /* READY when at least one version is READY */
    char reason[256];       /* why the model is unavailable */
    mg_model_config_t config;
    mg_model_version_t **versions;
    int nversions;
    mg_model_version_t *default_version; /* READY default, or NULL */
    bool unloaded;                       /* taken out on purpose (repository API) */
} mg_model_entry_t;

/** True when the model should serve but cannot: it counts against server readiness. */
static inline bool mg_model_entry_failed(const mg_model_entry_t *e)
{
    return e->state != MG_MODEL_READY && !e->unloaded;
}

/** A model file larger than this is refused rather than read into memory. */
#define MG_MODEL_FILE_MAX ((size_t)4 << 30)

typedef struct mg_registry_snapshot mg_registry_snapshot_t;
typedef struct mg_registry mg_registry_t;

/** Options for sessions the registry creates. */
typedef struct mg_registry_opts {
    const char *repo_dir;
} mg_registry_opts_t;

/**
 * Creates an empty registry over the repository folder `opts->repo_dir` (which must exist).
 * Returns 0, MG_ENOENT or MG_ENOMEM with `err` filled. Thread: start-up.
 */
int mg_registry_new(mg_registry_t **out, const mg_registry_opts_t *opts, mg_err_t *err);

/** Frees the registry and every version; no request may be in flight. Accepts NULL. */
void mg_registry_free(mg_registry_t *r);

/**
 * Loads every model folder of the repository. A model that fails is published as
 * UNAVAILABLE with its reason (and logged); the others still serve. Returns the number of
 * models that failed. Thread: any thread registered with RCU, outside a read section.
 */
int mg_registry_load_all(mg_registry_t *r);

/**
 * Loads or reloads model `name` from the repository: versions selected by its config.json
 * policy are loaded (a version whose bytes and config are unchanged keeps its sessions),
 * versions no longer selected leave and drain. Returns 0; MG_ENOENT when the repository has
 * no such model folder; or MG_EMODEL / MG_ECONFIG when nothing could be loaded (the model is
 * then published UNAVAILABLE with the reason). Thread: as mg_registry_load_all.
 */
int mg_registry_load(mg_registry_t *r, const char *name, mg_err_t *err);

/**
 * Unloads model `name`: it stays listed as UNAVAILABLE ("unloaded"), its versions drain.
 * Returns 0 or MG_ENOENT. Thread: as mg_registry_load_all.
 */
int mg_registry_unload(mg_registry_t *r, const char *name, mg_err_t *err);

/**
 * Finds `model` and pins a version: `version` (decimal text) when not empty, else the
 * default. Returns 0 with *out pinned, MG_ENOENT (unknown model or version) or MG_EUNAVAIL
 * (known but not ready), with `err` saying which. Lock-free. Thread: any RCU-registered thread.
 */
int mg_registry_acquire(mg_registry_t *r, mg_str_t model, mg_str_t version,
                        mg_model_version_t **out, mg_err_t *err);

/** Takes one more reference on a pinned version. */
void mg_model_version_ref(mg_model_version_t *v);

/** Releases a reference; the last one frees the version and its sessions. Accepts NULL. */
void mg_model_version_unref(mg_model_version_t *v);

/** Picks the session for the next request on `v` (round robin over its instances). */
mg_session_t *mg_model_version_session(mg_model_version_t *v);

/**
 * Returns the live snapshot. Only valid between rcu_read_lock() and mg_rcu_read_unlock(),
 * which the caller takes. Thread: any RCU-registered thread.
 */
const mg_registry_snapshot_t *mg_registry_snapshot(mg_registry_t *r);

/** Number of models in a snapshot and the i-th (sorted by name). */
size_t mg_registry_snapshot_count(const mg_registry_snapshot_t *s);
const mg_model_entry_t *mg_registry_snapshot_model(const mg_registry_snapshot_t *s, size_t i);

/** Finds a model by name in a snapshot, or NULL. */
const mg_model_entry_t *mg_registry_snapshot_find(const mg_registry_snapshot_t *s, mg_str_t name);

/** Returns true once mg_registry_load_all has finished and every model in it is READY. */
bool mg_registry_all_ready(mg_registry_t *r);

/**
 * Lists the model folders of the repository (names sorted, one NUL-terminated string each,
 * packed into `out`, count in *n). Returns 0 or MG_EIO / MG_ENOMEM.
 */
int mg_registry_list_repository(mg_registry_t *r, mg_buf_t *out, size_t *n);

#endif
