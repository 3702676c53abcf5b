/*
 * The live routing state: the route table and the traffic policies set through the admin
 * API, published together as one immutable snapshot (core/snapshot.h). Request threads read
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

/** What one publication changes; everything it does not name stays as it is. */
typedef struct mg_router_change {
    mg_route_table_t *table; /* the new route table, or NULL to keep the live one */
    const mg_router_policy_change_t *policies;
    size_t npolicies; /* each model at most once */
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

#endif
