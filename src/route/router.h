/*
 * The live routing state: the route table, the traffic policies set through the admin API or
 * the fleet's configuration (etcd), and the kill switch, published together as one immutable
 * snapshot (core/snapshot.h). Request threads read
 * it inside an RCU read section and never lock; the control thread builds a new snapshot from
 * a change (any number of policies and, optionally, a new table), publishes it at once and
 * frees the old one after a grace period. A change that cannot be built changes nothing.
 */
#ifndef MG_ROUTE_ROUTER_H
#define MG_ROUTE_ROUTER_H

#include "core/buf.h"
#include "core/err.h"
#include "route/policy.h"
#include "route/table.h"

#include <stddef.h>
#include <stdint.h>

typedef struct mg_router mg_router_t;

/** Creates a router with an empty route table, no policies, revision 1. Returns 0 or MG_ENOMEM. */
int mg_router_new(mg_router_t **out);

/** Frees the router; no reader may be inside a read section. Accepts NULL. */
void mg_router_free(mg_router_t *r);

/**
 * Inside an RCU read section: the policy set for `model` through the admin API, or NULL.
 * The pointer is valid until mg_rcu_read_unlock(). Thread: any RCU-registered thread.
 */
const mg_policy_t *mg_router_policy(mg_router_t *r, mg_str_t model);

/**
 * Inside an RCU read section: the first route-table rule matching `req`, or NULL; valid
 * until mg_rcu_read_unlock(). Thread: any RCU-registered thread.
 */
const mg_route_rule_t *mg_router_match(mg_router_t *r, const mg_route_request_t *req);

/** One policy of a change: `policy` NULL clears the model's admin policy. */
typedef struct mg_router_policy_change {
    const char *model;
    const mg_policy_t *policy;
} mg_router_policy_change_t;

/** The kill switch in a change: zero keeps it as it is. */
typedef enum {
    MG_ROUTER_KILL_KEEP = 0,
    MG_ROUTER_KILL_OFF,
    MG_ROUTER_KILL_ON, /* every policy's decision goes to its stable version */
} mg_router_kill_t;

/** What one publication changes; everything it does not name stays as it is. */
typedef struct mg_router_change {
    mg_route_table_t *table; /* the new route table, or NULL to keep the live one */
    const mg_router_policy_change_t *policies;
    size_t npolicies;         /* each model at most once */
    int replace_policies;     /* non-zero: policies the change does not name are cleared */
    mg_router_kill_t kill;    /* the kill switch */
    uint64_t config_revision; /* the fleet configuration's revision (etcd's); 0 keeps it */
} mg_router_change_t;

/**
 * Applies `c` as one new snapshot (readers see all of it or none of it) and returns its
 * revision in *revision (may be NULL). The caller has validated the policies and the table
 * against the registry. Ownership: takes `c->table`, also on failure. Returns 0 or MG_ENOMEM
 * (nothing changed) with `err` filled. Thread: the control thread (one writer at a time),
 * RCU-registered, outside a read section; blocks for a grace period.
 */
int mg_router_apply(mg_router_t *r, const mg_router_change_t *c, uint64_t *revision, mg_err_t *err);

/** mg_router_apply of one policy (`p` NULL clears it). Same contract. */
int mg_router_set_policy(mg_router_t *r, const char *model, const mg_policy_t *p, mg_err_t *err);

/** mg_router_apply of a new table (taken). Same contract. */
int mg_router_set_table(mg_router_t *r, mg_route_table_t *t, mg_err_t *err);

/** Appends the live route table as JSON. Returns 0 or MG_ENOMEM. Thread: RCU-registered. */
int mg_router_table_json(mg_router_t *r, mg_buf_t *out);

/** Number of rules in the live table. Thread: RCU-registered. */
size_t mg_router_table_count(mg_router_t *r);

/** Revision of the live snapshot: 1 at start, +1 per publication. Thread: RCU-registered. */
uint64_t mg_router_revision(mg_router_t *r);

/** The kill switch and the fleet configuration revision of one snapshot. */
typedef struct mg_router_flags {
    int kill_switch;
    uint64_t config_revision; /* 0: not from a fleet configuration */
} mg_router_flags_t;

/**
 * Inside an RCU read section: mg_router_policy of `model` and, in *flags, the kill switch and
 * configuration revision of the SAME snapshot (separate calls may each see a newer one). The
 * pointer is valid until mg_rcu_read_unlock(). Thread: any RCU-registered thread.
 */
const mg_policy_t *mg_router_lookup(mg_router_t *r, mg_str_t model, mg_router_flags_t *flags);

/** What the live snapshot is, read at once. */
typedef struct mg_router_info {
    uint64_t revision;        /* mg_router_revision */
    uint64_t config_revision; /* the fleet configuration's revision, 0: none */
    int kill_switch;
    size_t rules;     /* in the route table */
    size_t npolicies; /* admin / fleet policies */
} mg_router_info_t;

/** Fills `out` from the live snapshot. Thread: RCU-registered, outside a read section. */
void mg_router_info(mg_router_t *r, mg_router_info_t *out);

/**
 * Appends the live snapshot's admin / fleet policies as one JSON object, model name to policy
 * (route/policy.h's canonical form), sorted by model. Returns 0 or MG_ENOMEM. Thread:
 * RCU-registered, outside a read section.
 */
int mg_router_policies_json(mg_router_t *r, mg_buf_t *out);

#endif
