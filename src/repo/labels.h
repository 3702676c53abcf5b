/*
 * A classification labels file (config.json's output "label_filename", Triton's format): one
 * label per line, line i naming class index i; a trailing newline is optional, "\r\n" is taken.
 */
#ifndef MG_REPO_LABELS_H
#define MG_REPO_LABELS_H

#include "core/buf.h"
#include "core/err.h"

#include <stddef.h>

/** The most bytes a labels file may have. */
#define MG_LABELS_MAX_BYTES (16u << 20)

/** A file's labels: `lines[i]` views `text`. Zeroed: no labels. */
typedef struct mg_labels {
    char *text;
    mg_str_t *lines;
    size_t n;
} mg_labels_t;

/**
 * Reads the labels file at `path` into `out` (zeroed first). Returns 0, or MG_EIO / MG_ETOOBIG /
 * MG_ENOMEM with `err` naming the file; `out` stays zeroed on failure. Thread: any (the
 * control thread loads them with a version).
 */
int mg_labels_read(const char *path, mg_labels_t *out, mg_err_t *err);

/** Frees what mg_labels_read gave; the labels are zeroed. Accepts zeroed labels. */
void mg_labels_deinit(mg_labels_t *l);

#endif
