/*
 * Reading a model repository from disk: the model folders, their numeric version folders and
 * config.json, and building one version:
 *
 *   verify   read model.onnx and its external-data files once (paths must stay inside the
 *            version folder), SHA-256 those bytes, check SHA256SUMS and config.json's pins
 *   sandbox  a sealed child creates a session from the same bytes and warms it up
 *   load     the sessions in-process, from the same bytes again (never re-read from disk)
 *   warm up  config.json's runs on zeros of the declared shapes
 *
 * A version whose files have the same identities (device, inode, size, mtime, ctime) as when
 * it was built, with the same settings, is kept without reading anything. Runs on the control
 * thread, never on an event loop.
 */
#ifndef MG_REPO_LOADER_H
#define MG_REPO_LOADER_H

#include "core/buf.h"
#include "core/err.h"
#include "repo/config.h"
#include "repo/version.h"
#include "sandbox/sandbox.h"

#include <stddef.h>
#include <stdint.h>

/** A model file larger than this is refused rather than read into memory. */
#define MG_MODEL_FILE_MAX ((size_t)4 << 30)

/** The most model folders a repository lists, and version folders a model considers. */
#define MG_MODELS_MAX   4096
#define MG_VERSIONS_MAX 256

/** Called when a version is about to be built (not kept as it was): it is LOADING now. */
typedef void (*mg_loader_loading_fn)(void *ctx, const char *model, int64_t number);

/** Where and how to load; plain data, owned by the caller. */
typedef struct mg_loader {
    const char *repo_dir;
    bool require_checksums;       /* every loaded file covered by SHA256SUMS or a pin */
    mg_sandbox_t *sandbox;        /* NULL: no sandboxed validation */
    mg_loader_loading_fn loading; /* may be NULL */
    void *loading_ctx;
    int loop_threads; /* request threads: a model file up to MG_LOADER_SMALL_MODEL_BYTES gets at
                         least this many sessions, one per thread (repo/version.h) */
    bool pool;        /* an execution pool runs slow models: the measured default applies */
} mg_loader_t;

/**
 * Opportunistic batching's default (no "batching.opportunistic" in config.json) is on only for
 * a model whose Run took at most this long at load (microseconds).
 */
#define MG_LOADER_BATCH_RUN_MAX_US 200

/**
 * A version without "execution" in config.json runs on the execution pool (when the server has
 * one) if its Run took longer than this at load (microseconds): a Run that long on an event
 * loop would hold up every other request of that loop.
 */
#define MG_LOADER_POOL_RUN_MIN_US 500

/**
 * The largest model file that counts as small: it gets a session per request thread (beyond
 * instance_count) and its sessions run without ONNX Runtime's CPU arena (infer/session.h).
 */
#define MG_LOADER_SMALL_MODEL_BYTES (16u << 20)

/** Flags of mg_loader_load_version. */
enum {
    MG_LOADER_RETRY_FAILED = 1, /* build again a version that failed with the same files */
};

/**
 * Lists the model folders of the repository: names sorted, one NUL-terminated string each,
 * packed into `out` (appended), count in *n. Hidden entries and non-folders are skipped.
 * Returns 0 or MG_EIO / MG_ENOMEM. Thread: any.
 */
int mg_loader_list_models(const mg_loader_t *l, mg_buf_t *out, size_t *n);

/** True when `name` can be a model folder of the repository (no '/', not hidden, <= 255 bytes). */
bool mg_loader_valid_name(const char *name);

/**
 * Reads `<repo>/<model>/config.json` into `cfg` (the defaults when there is none). Returns 0,
 * MG_ENOENT when the repository has no folder `model`, or MG_ECONFIG with `err` saying what is
 * wrong with the file. Thread: any.
 */
int mg_loader_read_config(const mg_loader_t *l, const char *model, mg_model_config_t *cfg,
                          mg_err_t *err);

/**
 * Lists the version folders of `model` (canonical positive decimal names), up to `cap`, in
 * no particular order. Returns the count, or MG_ENOENT / MG_EIO. Thread: any.
 */
int mg_loader_list_versions(const mg_loader_t *l, const char *model, int64_t *found, int cap);

/**
 * Builds version `number` of `model` with `cfg` (verify, sandbox, load, warm up). Returns
 * `prev` itself when it can stay: READY, with the same session settings, its digests still
 * passing verification, and its files either unchanged on disk (then nothing is read) or
 * read again with the same SHA-256; or FAILED with exactly the same files and config (then it
 * is not retried, unless `flags` has MG_LOADER_RETRY_FAILED). Otherwise returns a new version,
 * READY or FAILED with the reason (which is also logged). Returns NULL only when out of
 * memory. Ownership: a new version belongs to the caller (mg_model_version_free in src/repo);
 * `prev` may have its recorded file identities refreshed. Thread: the control thread.
 */
mg_model_version_t *mg_loader_load_version(const mg_loader_t *l, const char *model, int64_t number,
                                           const mg_model_config_t *cfg, mg_model_version_t *prev,
                                           int flags);

#endif
