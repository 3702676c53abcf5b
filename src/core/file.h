/*
 * Reading whole files (models, config files) into memory, and replacing one atomically.
 */
#ifndef MG_CORE_FILE_H
#define MG_CORE_FILE_H

#include "core/err.h"

#include <stddef.h>

/**
 * Reads the regular file at `path` into a malloc'd buffer (NUL-terminated after `*len`
 * bytes). Returns 0, or MG_ENOENT / MG_EIO / MG_ETOOBIG (over `max` bytes) / MG_ENOMEM with
 * `err` naming the file; *out is untouched on failure. Ownership: the caller frees *out.
 */
int mg_file_read(const char *path, size_t max, char **out, size_t *len, mg_err_t *err);

/**
 * Replaces the file at `path` with `len` bytes of `data` so that a reader (or a crash) sees the
 * old content or the new one, never a mix: the bytes go to "<path>.tmp" (mode 0600), which is
 * flushed (fsync), renamed over `path`, and the folder is flushed. Returns 0, or MG_EIO with
 * `err` naming the file and why; `path` is then unchanged and the temporary file removed.
 * Thread: any, one writer per path.
 */
int mg_file_write_atomic(const char *path, const void *data, size_t len, mg_err_t *err);

#endif
