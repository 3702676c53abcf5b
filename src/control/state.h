/*
 * The state file: the routing state (admin or fleet policies, the route table, the kill switch
 * and the fleet revision they came from), saved by the control plane after every routing change
 * with an atomic write-and-rename, so a restarted instance serves what it served before, also
 * when etcd cannot be reached. One JSON object:
 *
 *   {"format": 1, "source": "etcd" | "admin", "revision": 42, "digest": "9f0c...",
 *    "saved_at": 1733000000, "kill_switch": false,
 *    "policies": {"digits": { ...route/policy.h... }},
 *    "routes": {"routes": [ ...route/table.h... ]}}
 */
#ifndef MG_CONTROL_STATE_H
#define MG_CONTROL_STATE_H

#include "control/control.h"
#include "core/err.h"
#include "route/router.h"

#include <stdint.h>

/** The file's name inside --state-dir. */
#define MG_STATE_FILE "state.json"

/**
 * Writes the live routing state of `router` to `path`: a temporary file next to it, flushed to
 * disk, renamed over `path`, the folder flushed; a reader sees the old file or the new one,
 * never part of one. `source` and `digest` describe where the state came from. Returns 0, or
 * MG_EIO / MG_ENOMEM with `err` naming the file; the old file then stays. Thread: the
 * control thread (RCU-registered).
 */
int mg_state_save(const char *path, mg_router_t *router, const char *source, uint64_t revision,
                  uint64_t digest, mg_err_t *err);

/**
 * A mg_control_persist_fn (control/control.h) saving to the file `path` (a NUL-terminated
 * path that outlives the control plane) with mg_state_save; a failure is logged, and the old
 * file stays. Thread: the control thread.
 */
void mg_state_persist(void *path, mg_router_t *router, const char *source, uint64_t revision,
                      uint64_t digest);

/** A state file read back, as a fleet configuration ready to submit. */
typedef struct mg_state {
    mg_control_fleet_t fleet; /* source "state file"; points into the fields below */
    char saved_source[16];    /* the "source" the file names: "etcd" or "admin" */
    int64_t saved_at;         /* Unix seconds */
    mg_control_policy_text_t *policies;
    char **texts; /* the owned JSON texts and model names */
    size_t ntexts;
} mg_state_t;

/**
 * Reads the state file at `path` into *out (free with mg_state_free). Returns 0, MG_ENOENT
 * (no file), or MG_ECONFIG (not a state file: "line 3: ...", "unknown field 'x'") / MG_EIO /
 * MG_ENOMEM with `err` naming the file; *out is then empty. Policies and routes are checked
 * when the configuration is applied, not here. Thread: any.
 */
int mg_state_load(const char *path, mg_state_t *out, mg_err_t *err);

/** Frees what mg_state_load filled in. Accepts a zeroed struct. */
void mg_state_free(mg_state_t *s);

/** What mg_state_restore restored. */
typedef struct mg_state_restored {
    char source[16];   /* "etcd" or "admin": who made the state */
    uint64_t revision; /* the fleet revision it was at (0 for "admin") */
    uint64_t digest;
    int64_t saved_at; /* Unix seconds */
} mg_state_restored_t;

/**
 * Reads the state file at `path` and has the control plane apply it (one APPLY_FLEET, not
 * saved again), so the instance serves what it served before its restart. Returns 0 with *out
 * filled, MG_ENOENT when there is no file (nothing changes), or the error of the read or of the
 * configuration's validation (nothing changes) with `err` filled. Thread: start-up, after the
 * repository is loaded (policies are checked against it).
 */
int mg_state_restore(mg_control_t *c, const char *path, mg_state_restored_t *out, mg_err_t *err);

#endif
