/*
 * Model upload and config override through the repository extension's load (Triton's
 * $repository_load_request, docs/protocol/extension_model_repository.md):
 *   {"parameters": {"config": "<config.json text>",
 *                   "file:<version>/model.onnx": "<base64>", "file:labels.txt": "<base64>", ...}}
 * With files, the model folder becomes exactly them plus config.json ("config" is required
 * then, as in Triton): they are written into a hidden staging folder of the repository
 * (".<model>.upload-<n>", which listings skip), flushed, and swapped with the model folder in
 * one rename (renameat2 RENAME_EXCHANGE, or a plain rename for a new model). With "config"
 * alone, config.json is replaced atomically (core/file.h). Either way the load then runs as
 * any load does (verification, the sandbox, warm-up); when it fails the previous folder or
 * config.json is put back, so the repository on disk always holds what serves and a restart
 * serves the same thing.
 */
#ifndef MG_REPO_UPLOAD_H
#define MG_REPO_UPLOAD_H

#include "core/err.h"

#include <stddef.h>

/** The most files one load may carry, and the longest "file:" path. */
#define MG_UPLOAD_FILES_MAX 64
#define MG_UPLOAD_PATH_MAX  256

typedef struct mg_upload_file {
    char path[MG_UPLOAD_PATH_MAX]; /* relative to the model folder: "1/model.onnx" */
    char *bytes;                   /* decoded */
    size_t len;
} mg_upload_file_t;

/** A decoded load body. Zeroed: a plain load (no override). */
typedef struct mg_upload {
    char *config; /* NUL-terminated config.json text, or NULL */
    size_t config_len;
    int nfiles;
    mg_upload_file_t files[MG_UPLOAD_FILES_MAX];
} mg_upload_t;

/**
 * Decodes a load request body (empty: a plain load) into `out` (zeroed first). Paths must be
 * "<name>" or "<version>/<name>" with a decimal version and a name that is not hidden and has
 * no '/'; config.json comes only as "config". Returns 0, or MG_EPARSE / MG_EINVAL / MG_ENOMEM
 * with `err` naming the parameter; `out` is released on failure. Thread: any.
 */
int mg_upload_parse(const char *body, size_t len, mg_upload_t *out, mg_err_t *err);

/** True when `u` overrides anything (a config or files). */
static inline int mg_upload_any(const mg_upload_t *u)
{
    return u->config != NULL || u->nfiles > 0;
}

/** Frees what mg_upload_parse decoded; `u` is zeroed. */
void mg_upload_deinit(mg_upload_t *u);

/**
 * Puts `u` in place for model `model` of repository `repo_dir` (see above), calls `load`, and
 * puts the previous state back when `load` fails. The config is parsed first (a bad one is
 * refused before anything is written). Returns 0, load's failure (its `err`), or MG_ECONFIG /
 * MG_ENOMODEL / MG_EINVAL / MG_EIO with `err` filled. Thread: the control thread.
 */
int mg_upload_apply(const char *repo_dir, const char *model, const mg_upload_t *u,
                    int (*load)(void *ctx, mg_err_t *err), void *ctx, mg_err_t *err);

#endif
