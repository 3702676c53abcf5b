/*
 * Reading whole files (models, config files) into memory.
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

#endif
