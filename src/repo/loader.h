/*
 * Reading a model repository from disk: the model folders, their numeric version folders and
 * config.json, and building one version (read model.onnx once, SHA-256 those bytes, create the
 * sessions from the same bytes, warm them up). This is where verification and sandboxing of a
 * load belong. Runs on the control thread, never on an event loop.
 */
#ifndef MG_REPO_LOADER_H
#define MG_REPO_LOADER_H

#include "core/buf.h"
#include "core/err.h"
#include "repo/config.h"
#include "repo/version.h"

#include <stddef.h>
#include <stdint.h>

/** A model file larger than this is refused rather than read into memory. */
#define MG_MODEL_FILE_MAX ((size_t)4 << 30)

/** The most model folders a repository lists, and version folders a model considers. */
#define MG_MODELS_MAX   4096
#define MG_VERSIONS_MAX 256

/** Where and how to load; plain data, owned by the caller. */
typedef struct mg_loader {
    const char *repo_dir;
} mg_loader_t;

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
 * Builds version `number` of `model` with `cfg`. When `prev` is READY and built from the same
 * bytes (SHA-256) and the same session settings, returns `prev` itself: the caller keeps the
 * version that serves. Otherwise returns a new version, READY or UNAVAILABLE with the reason
 * (which is also logged). Returns NULL only when out of memory. Ownership: a new version
 * belongs to the caller (mg_model_version_free in src/repo). Thread: the control thread.
 */
mg_model_version_t *mg_loader_load_version(const mg_loader_t *l, const char *model, int64_t number,
                                           const mg_model_config_t *cfg,
                                           const mg_model_version_t *prev);

#endif
