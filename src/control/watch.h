/*
 * The repository watcher (--model-control-mode poll): inotify on the repository, its model
 * folders and their version folders, plus a full rescan every --repository-poll-secs. It is
 * one more source of change: it never touches the registry, it submits MG_CONTROL_RESCAN
 * operations to the control thread and waits for each.
 *
 * Debounce, so half-copied files are never picked up: a version folder is considered once its
 * contents (names, sizes, inodes, mtimes, recursively) have not changed for the debounce
 * interval and, when checksums are required, once its SHA256SUMS exists (or config.json pins
 * digests for it). A model's view (config.json's identity, its settled versions and what they
 * hold, the version folders on disk) is submitted whenever it differs from the last one
 * submitted; a model folder that disappears is submitted once so the model leaves.
 */
#ifndef MG_CONTROL_WATCH_H
#define MG_CONTROL_WATCH_H

#include "control/control.h"
#include "core/err.h"

#include <stdbool.h>

typedef struct mg_watch mg_watch_t;

/** How to watch; plain data, copied. */
typedef struct mg_watch_opts {
    const char *repo_dir;
    int poll_secs;          /* a full rescan at least this often (>= 1) */
    int debounce_ms;        /* a version folder is considered once unchanged this long */
    bool require_checksums; /* ... and once its SHA256SUMS (or a config.json pin) exists */
} mg_watch_opts_t;

/**
 * Starts the watcher thread over `control` (which must outlive it). What is on disk now counts
 * as already loaded (start-up loaded it); changes from here on are submitted. Returns 0, or
 * MG_EIO (inotify or the thread could not start) / MG_ENOMEM with `err` filled.
 * Thread: start-up.
 */
int mg_watch_start(mg_watch_t **out, const mg_watch_opts_t *opts, mg_control_t *control,
                   mg_err_t *err);

/**
 * Stops and frees the watcher; waits for an operation it submitted to complete. Accepts NULL.
 * Thread: not the watcher's, not the control thread.
 */
void mg_watch_stop(mg_watch_t *w);

#endif
