/*
 * The model registry: every model of the repository, its versions and their states, published
 * as an immutable snapshot (core/snapshot.h).
 *
 * Request threads look a version up inside an RCU read section and pin it (an atomic count
 * apart from the snapshots that list it); they never lock and never free. Every change (load,
 * reload, unload) runs on one writer thread, the control thread (src/control): it builds a new
 * snapshot, publishes it and, after a grace period, retires the versions no snapshot lists any
 * more. A retired version drains: it is freed by mg_registry_reap once its last pin is gone,
 * so unload and reload never fail a request in flight.
 */
#ifndef MG_REPO_REGISTRY_H
#define MG_REPO_REGISTRY_H

#include "core/buf.h"
#include "core/err.h"
#include "repo/config.h"
#include "repo/loader.h"
#include "repo/version.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct mg_registry mg_registry_t;
typedef struct mg_registry_snapshot mg_registry_snapshot_t;

/** A model and its versions as one snapshot sees it. Read-only, valid inside the read section. */
typedef struct mg_model_entry mg_model_entry_t;

/** Options of a registry. */
typedef struct mg_registry_opts {
    const char *repo_dir;
    bool require_checksums;           /* --require-checksums (repo/loader.h) */
    const mg_sandbox_opts_t *sandbox; /* NULL: no sandboxed validation; copied (the registry
                                         owns the sandbox and its zygote) */
    bool explicit_mode; /* --model-control-mode explicit: a whole-repository rescan refreshes
                           the models loaded, never loads new folders */
    int loop_threads;   /* request threads that run models inline: small models get a session
                           each (repo/loader.h); 0: instance_count sessions only */
    bool pool;          /* an execution pool runs slow models (--exec-threads > 0) */
} mg_registry_opts_t;

/**
 * Creates an empty registry over the repository folder `opts->repo_dir` (which must exist).
 * Returns 0, MG_ENOENT or MG_ENOMEM with `err` filled. Thread: start-up.
 */
int mg_registry_new(mg_registry_t **out, const mg_registry_opts_t *opts, mg_err_t *err);

/**
 * Frees the registry and every version; no request may be in flight and the control thread
 * must have stopped. Accepts NULL. Thread: shutdown.
 */
void mg_registry_free(mg_registry_t *r);

/**
 * Loads every model folder of the repository. A model that fails is published as UNAVAILABLE
 * with its reason (and logged); the others still serve. Returns the number of models that
 * failed. Thread: the writer (control thread), RCU-registered, outside a read section.
 */
int mg_registry_load_all(mg_registry_t *r);

/**
 * Loads only the models named in `names` (`n` of them; --load-model in explicit mode) and
 * marks the repository loaded. Returns how many failed. Thread: as mg_registry_load_all.
 */
int mg_registry_load_list(mg_registry_t *r, const char *const *names, size_t n);

/**
 * Loads or reloads model `name` from the repository: versions selected by its config.json
 * policy are loaded (a version whose files and config are unchanged keeps its sessions and is
 * not even read), versions no longer selected leave and drain. A version that fails never
 * displaces one that serves: under `latest N` the N highest versions that load serve, the
 * failed ones above them are listed FAILED with the reason; a failed version is tried again.
 * Returns 0; MG_ENOMODEL when the repository has no such model folder; MG_EMODEL when a
 * version failed (the others serve: `err` says which failed and why, and what serves) or
 * nothing could be loaded; MG_ECONFIG for a bad config.json (what served keeps serving).
 * Thread: as mg_registry_load_all.
 */
int mg_registry_load(mg_registry_t *r, const char *name, mg_err_t *err);

/**
 * Brings model `name` in line with the repository, as the watcher sees it settled: only the
 * version folders in `settled` (`n`; NULL: every folder) are considered new or changed, the
 * others on disk keep what the registry has for them, and a version that failed with the same
 * files and config is not tried again. A model whose folder is gone leaves the registry (its
 * versions drain). Returns as mg_registry_load (0 when the folder is gone and the model left).
 * Thread: as mg_registry_load_all.
 */
int mg_registry_rescan(mg_registry_t *r, const char *name, const int64_t *settled, int n,
                       mg_err_t *err);

/**
 * Rescans the whole repository (every folder on disk, settled; in explicit mode only the
 * models loaded) and drops the models whose folder is gone. Returns how many models failed.
 * Thread: as mg_registry_load_all.
 */
int mg_registry_rescan_all(mg_registry_t *r);

/**
 * Unloads model `name`: it stays listed as UNAVAILABLE ("unloaded"), its versions drain.
 * Returns 0 or MG_ENOMODEL. Thread: as mg_registry_load_all.
 */
int mg_registry_unload(mg_registry_t *r, const char *name, mg_err_t *err);

/**
 * Frees the retired versions whose last pin is gone. Returns how many retired versions are
 * still draining (pinned by requests in flight). Thread: the writer.
 */
int mg_registry_reap(mg_registry_t *r);

/**
 * Finds `model` and pins a version: `version` when > 0, else the model's default version.
 * Returns 0 with *out pinned (release with mg_model_version_unpin), or MG_ENOMODEL,
 * MG_ENOVERSION, MG_EUNAVAIL (known but not ready), with `err` saying which. Lock-free.
 * Thread: any RCU-registered thread, inside or outside a read section.
 */
int mg_registry_acquire(mg_registry_t *r, mg_str_t model, int64_t version, mg_model_version_t **out,
                        mg_err_t *err);

/**
 * Writes the numbers of every version the registry lists for `model` (any state), ascending,
 * to `out` (room for `cap`) and returns the count, or MG_ENOMODEL. Thread: any RCU-registered
 * thread, outside a read section.
 */
int mg_registry_model_versions(mg_registry_t *r, mg_str_t model, int64_t *out, int cap);

/**
 * Returns true once mg_registry_load_all has finished and every model that should serve is
 * READY. Thread: any RCU-registered thread, outside a read section.
 */
bool mg_registry_all_ready(mg_registry_t *r);

/** The loader the registry loads with (its repository folder). Owned by `r`. Thread: any. */
const mg_loader_t *mg_registry_loader(const mg_registry_t *r);

/** One row of the repository index. Strings are valid for the duration of the callback. */
typedef struct mg_registry_row {
    const char *name;
    const char *version;    /* NULL: a row for the model as a whole */
    mg_model_state_t state; /* of the version (or the model) */
    const char *reason;     /* "" when there is nothing to say */
    bool known;             /* false: a folder the registry never loaded (state, reason unset) */
} mg_registry_row_t;

/** Receives one index row; a non-zero return stops the walk and is returned. */
typedef int (*mg_registry_row_fn)(void *ctx, const mg_registry_row_t *row);

/**
 * Walks the repository index: each model the registry knows, one row per version it lists
 * (READY, FAILED), per version being loaded (LOADING), draining (DRAINING) and taken out
 * (UNLOADED), or one row for the model when it has none of those; then the model folders never
 * loaded. With `ready_only`, only READY versions. The callback runs inside an RCU read section
 * with a short lock held: it must not block. Returns 0, MG_EIO (the repository folder cannot
 * be listed) or the callback's value. Thread: any RCU-registered thread, outside a read
 * section.
 */
int mg_registry_index(mg_registry_t *r, bool ready_only, mg_registry_row_fn fn, void *ctx);

/**
 * Returns the live snapshot. Only valid between rcu_read_lock() and mg_rcu_read_unlock(),
 * which the caller takes. Thread: any RCU-registered thread.
 */
const mg_registry_snapshot_t *mg_registry_snapshot(mg_registry_t *r);

/** The repository folder the registry loads from. Owned by the registry. Thread: any. */
const char *mg_registry_repo_dir(const mg_registry_t *r);

/*
 * Reading a snapshot: everything below returns memory the snapshot owns, valid only inside
 * the read section in which mg_registry_snapshot() was called. Thread: that reader.
 */

/** Number of models in a snapshot and the i-th (sorted by name). */
size_t mg_registry_snapshot_count(const mg_registry_snapshot_t *s);
const mg_model_entry_t *mg_registry_snapshot_model(const mg_registry_snapshot_t *s, size_t i);

/** Finds a model by name in a snapshot, or NULL. */
const mg_model_entry_t *mg_registry_snapshot_find(const mg_registry_snapshot_t *s, mg_str_t name);

/** The model's name. */
const char *mg_model_entry_name(const mg_model_entry_t *e);

/** READY when at least one version is READY. */
mg_model_state_t mg_model_entry_state(const mg_model_entry_t *e);

/** Why the model is not ready ("" when it is). */
const char *mg_model_entry_reason(const mg_model_entry_t *e);

/** True when the model was taken out on purpose (repository API unload). */
bool mg_model_entry_unloaded(const mg_model_entry_t *e);

/** True when the model should serve but cannot: it counts against server readiness. */
bool mg_model_entry_failed(const mg_model_entry_t *e);

/** The model's config.json (or the defaults). */
const mg_model_config_t *mg_model_entry_config(const mg_model_entry_t *e);

/** config.json's traffic policy, or NULL when it has none. */
const mg_policy_t *mg_model_entry_policy(const mg_model_entry_t *e);

/** Number of versions (any state) and the i-th, ascending by number. */
int mg_model_entry_nversions(const mg_model_entry_t *e);
const mg_model_version_t *mg_model_entry_version(const mg_model_entry_t *e, int i);

/** The version with number `number`, or NULL. */
const mg_model_version_t *mg_model_entry_find_version(const mg_model_entry_t *e, int64_t number);

/** The READY default version, or NULL. */
const mg_model_version_t *mg_model_entry_default(const mg_model_entry_t *e);

#endif
