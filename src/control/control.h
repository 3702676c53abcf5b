/*
 * The control plane: every change to shared state is one operation, validated against the
 * registry and run on one control thread. The HTTP admin and repository endpoints submit
 * operations and answer when they complete, so an event loop never blocks on a load, a
 * warm-up or an RCU grace period; start-up (and later the repository watcher, SIGHUP and etcd)
 * submits the same operations. Only the control thread writes the registry and the router.
 */
#ifndef MG_CONTROL_CONTROL_H
#define MG_CONTROL_CONTROL_H

#include "core/err.h"
#include "repo/registry.h"
#include "route/router.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum {
    MG_CONTROL_LOAD_ALL = 0,    /* every model folder of the repository (start-up) */
    MG_CONTROL_LOAD,            /* (re)load `model` from the repository */
    MG_CONTROL_UNLOAD,          /* unload `model`; its versions drain */
    MG_CONTROL_SET_POLICY,      /* `body`: the admin traffic policy of `model` (route/policy.h) */
    MG_CONTROL_SET_ROUTES,      /* `body`: the whole route table (route/table.h) */
    MG_CONTROL_SET_KILL_SWITCH, /* `body`: {"enabled": true|false} */
    MG_CONTROL_APPLY_FLEET,     /* `fleet`: a whole routing configuration, one publication */
    MG_CONTROL_RESCAN,          /* bring `model` ("": the whole repository) in line with the disk */
} mg_control_kind_t;

/** One model's traffic policy in a fleet configuration, as JSON text (route/policy.h). */
typedef struct mg_control_policy_text {
    const char *model;
    const char *json;
    size_t len;
} mg_control_policy_text_t;

/** Which part of a fleet configuration was rejected (mg_control_fleet_t.rejected). */
enum {
    MG_CONTROL_FLEET_NONE = -1,   /* nothing: it applied */
    MG_CONTROL_FLEET_ROUTES = -2, /* the route table */
    MG_CONTROL_FLEET_OTHER = -3,  /* out of memory, or shutting down */
};

/**
 * A whole routing configuration (from etcd or the state file), applied as ONE router
 * publication: its policies replace every admin / fleet policy (a model it does not name has
 * none afterwards), its route table replaces the live one, and the kill switch is set. Each
 * part is validated as the admin API validates it (policies and rules against the registry);
 * one invalid part rejects the whole configuration and nothing changes. The submitter owns it.
 */
typedef struct mg_control_fleet {
    const char *source; /* "etcd" or "state file": for logs and the state file */
    uint64_t revision;  /* the configuration's revision (etcd's store revision); 0: none */
    uint64_t digest;    /* the content's digest (cluster/fleet.h), kept in the state file */
    const mg_control_policy_text_t *policies; /* each model at most once */
    size_t npolicies;
    const char *routes; /* the route table's JSON; NULL: an empty table */
    size_t routes_len;
    int kill_switch;
    int persist; /* non-zero: saved to the state file once applied */
    /* Set on the control thread: the rejected part, an index into `policies` or one of
     * MG_CONTROL_FLEET_*. */
    long rejected;
} mg_control_fleet_t;

typedef struct mg_control mg_control_t;
typedef struct mg_control_op mg_control_op_t;

/** Called once when an operation has run (or was cancelled), on the control thread. */
typedef void (*mg_control_done_fn)(mg_control_op_t *op);

/** One change. The submitter owns the struct and `body` until `done` has been called. */
struct mg_control_op {
    /* Set by the submitter. */
    mg_control_kind_t kind;
    char model[256];  /* LOAD, UNLOAD, SET_POLICY */
    const char *body; /* SET_POLICY, SET_ROUTES, SET_KILL_SWITCH: JSON, need not end in NUL;
                         LOAD: Triton's load request (repo/upload.h), or empty */
    size_t body_len;
    /* RESCAN of one model: the version folders settled on disk (the others keep what the
       registry has); NULL: all of them (repo/registry.h mg_registry_rescan). */
    const int64_t *settled;
    int nsettled;
    /* LOAD_ALL: with `listed_only`, only the `nmodels` names of `models` (--load-model). */
    bool listed_only;
    const char *const *models;
    size_t nmodels;
    mg_control_fleet_t *fleet; /* APPLY_FLEET */
    mg_control_done_fn done;   /* NULL with mg_control_run */
    void *ctx;                 /* the submitter's */
    /* Set on the control thread before `done`. */
    int rc;            /* 0 or an MG_E* code (MG_ECANCELED when shutting down) */
    mg_err_t err;      /* why, when rc != 0 */
    uint64_t revision; /* SET_*, APPLY_FLEET: the routing snapshot's new revision */
    size_t count;      /* SET_ROUTES: rules in the new table; LOAD_ALL, RESCAN of all: models that
                     failed */
    /* The queue's. */
    mg_control_op_t *next_;
};

/**
 * Starts the control thread over `reg` and `router` (which must outlive it). Returns 0 or
 * MG_ENOMEM / MG_EIO with `err` filled. Thread: start-up.
 */
int mg_control_start(mg_control_t **out, mg_registry_t *reg, mg_router_t *router, mg_err_t *err);

/**
 * Keeps the routing state somewhere a restart can read it (control/state.h's file): called on
 * the control thread after every routing change that applied (not after a fleet configuration
 * submitted without `persist`), with the router holding the new state and where it came from
 * ("admin", or the fleet's source with its revision and digest).
 */
typedef void (*mg_control_persist_fn)(void *ctx, mg_router_t *router, const char *source,
                                      uint64_t revision, uint64_t digest);

/**
 * Calls `fn(ctx, ...)` after every routing change that applies; NULL: none. Thread: start-up,
 * before the first operation is submitted.
 */
void mg_control_persist_with(mg_control_t *c, mg_control_persist_fn fn, void *ctx);

/**
 * Marks the routing state as owned by `source` ("etcd"): SET_POLICY, SET_ROUTES and
 * SET_KILL_SWITCH are then refused with MG_EMANAGED (only APPLY_FLEET changes routing), so the
 * admin API cannot make one instance differ from its fleet. NULL lifts it; a static string.
 * Thread: start-up,
 * before the first operation is submitted.
 */
void mg_control_managed_by(mg_control_t *c, const char *source);

/**
 * Parses the kill switch's JSON, {"enabled": true|false} (no other field). Returns 0 with *on,
 * or MG_EINVAL with `err` saying why. Thread: any.
 */
int mg_control_kill_switch_parse(const char *json, size_t len, int *on, mg_err_t *err);

/**
 * Lets the running operation finish, completes every queued one with MG_ECANCELED, stops
 * and frees the control thread. Accepts NULL. Thread: not the control thread.
 */
void mg_control_stop(mg_control_t *c);

/**
 * Queues `op`. Returns 0, after which op->done is called exactly once on the control thread;
 * or MG_ECANCELED when the control plane is stopping (done is then never called).
 * Thread: any; it takes a short lock and never waits for the operation.
 */
int mg_control_submit(mg_control_t *c, mg_control_op_t *op);

/**
 * Submits `op` and waits for it; returns op->rc. Thread: any but the control thread and the
 * event loops (it blocks for as long as the operation takes).
 */
int mg_control_run(mg_control_t *c, mg_control_op_t *op);

#endif
